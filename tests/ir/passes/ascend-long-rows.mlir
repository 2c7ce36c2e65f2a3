// RUN: graphopt opt %s -p ascend-long-rows | filecheck %s

builtin.module {
  // A log-softmax over 32000 logits: max and sum in two levels of 16 x 2000 (chunks of at most UB / 64 float32).
  func.func @logits(%x: tensor<2x32000xf32>) -> tensor<2x32000xf32> {
    %y = "graph.log_softmax"(%x) <{axis = -1 : i64}> {src = ["lsm"]} : (tensor<2x32000xf32>) -> tensor<2x32000xf32>
    func.return %y : tensor<2x32000xf32>
  }
  // CHECK-LABEL: func.func @logits
  // CHECK: "graph.reshape"(%x, {{.*}} -> tensor<2x16x2000xf32>
  // CHECK: "graph.reduce_max"({{.*}} -> tensor<2x16xf32>
  // CHECK: "graph.reduce_max"({{.*}} -> tensor<2x1xf32>
  // CHECK: "graph.sub"
  // CHECK: "graph.exp"
  // CHECK: "graph.reduce_sum"({{.*}} -> tensor<2x16xf32>
  // CHECK: "graph.reduce_sum"({{.*}} -> tensor<2x1xf32>
  // CHECK: "graph.log"
  // CHECK-NOT: graph.log_softmax

  // Short rows, and a reduction over another axis, stay as they are.
  func.func @kept(%x: tensor<2x1000xf32>, %z: tensor<32000x2xf32>) -> (tensor<2x1000xf32>, tensor<1x2xf32>) {
    %axes = "graph.constant"() <{value = dense<[0]> : tensor<1xi64>}> : () -> tensor<1xi64>
    %a = "graph.softmax"(%x) <{axis = -1 : i64}> : (tensor<2x1000xf32>) -> tensor<2x1000xf32>
    %b = "graph.reduce_max"(%z, %axes) : (tensor<32000x2xf32>, tensor<1xi64>) -> tensor<1x2xf32>
    func.return %a, %b : tensor<2x1000xf32>, tensor<1x2xf32>
  }
  // CHECK-LABEL: func.func @kept
  // CHECK: graph.softmax
  // CHECK: graph.reduce_max
  // CHECK-NOT: graph.reshape
}
