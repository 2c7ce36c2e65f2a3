// RUN: graphopt opt %s -p ascend-column-reduce | filecheck %s

builtin.module {
  // A norm weight's gradient: the sum over batch and sequence of [2, 1024, 64], far more
  // than a quarter of UB, becomes ones [1, 2048] x x [2048, 64] on the cube.
  func.func @weight_grad(%x: tensor<2x1024x64xf16>) -> tensor<64xf16> {
    %axes = "graph.constant"() <{value = dense<[0, 1]> : tensor<2xi64>}> : () -> tensor<2xi64>
    %y = "graph.reduce_sum"(%x, %axes) <{keepdims = 0 : i64}> {src = ["gsum"]} : (tensor<2x1024x64xf16>, tensor<2xi64>) -> tensor<64xf16>
    func.return %y : tensor<64xf16>
  }
  // CHECK-LABEL: func.func @weight_grad
  // CHECK: "graph.reshape"(%x, {{.*}} -> tensor<2048x64xf16>
  // CHECK: "graph.matmul"({{.*}} : (tensor<1x2048xf16>, tensor<2048x64xf16>) -> tensor<1x64xf16>
  // CHECK: "graph.reshape"({{.*}} -> tensor<64xf16>
  // CHECK-NOT: graph.reduce_sum

  // A sum over the last axis, and a small column sum, stay as they are (vector kernels).
  func.func @kept(%x: tensor<2x1024x64xf16>, %s: tensor<4x8xf32>) -> (tensor<2x1024xf16>, tensor<8xf32>) {
    %last = "graph.constant"() <{value = dense<[2]> : tensor<1xi64>}> : () -> tensor<1xi64>
    %first = "graph.constant"() <{value = dense<[0]> : tensor<1xi64>}> : () -> tensor<1xi64>
    %a = "graph.reduce_sum"(%x, %last) <{keepdims = 0 : i64}> : (tensor<2x1024x64xf16>, tensor<1xi64>) -> tensor<2x1024xf16>
    %b = "graph.reduce_sum"(%s, %first) <{keepdims = 0 : i64}> : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<8xf32>
    func.return %a, %b : tensor<2x1024xf16>, tensor<8xf32>
  }
  // CHECK-LABEL: func.func @kept
  // CHECK-COUNT-2: graph.reduce_sum
  // CHECK-NOT: graph.matmul

  // A block in the middle: [4, 8, 512, 64] summed over axis 1 -> ones [1, 8] x [4, 8, 32768], batched.
  func.func @middle(%x: tensor<4x8x512x64xf16>) -> tensor<4x512x64xf16> {
    %axes = "graph.constant"() <{value = dense<[1]> : tensor<1xi64>}> : () -> tensor<1xi64>
    %y = "graph.reduce_sum"(%x, %axes) <{keepdims = 0 : i64}> : (tensor<4x8x512x64xf16>, tensor<1xi64>) -> tensor<4x512x64xf16>
    func.return %y : tensor<4x512x64xf16>
  }
  // CHECK-LABEL: func.func @middle
  // CHECK: "graph.reshape"(%x, {{.*}} -> tensor<4x8x32768xf16>
  // CHECK: "graph.matmul"({{.*}} : (tensor<1x8xf16>, tensor<4x8x32768xf16>) -> tensor<4x1x32768xf16>
  // CHECK: "graph.reshape"({{.*}} -> tensor<4x512x64xf16>
}
