// RUN: graphopt opt %s -p ascend-conv-transpose | filecheck %s

builtin.module {
  // Stride 2, kernel 2x2, no padding: zeros between the pixels (Reshape to unit axes, Pad
  // them to 2, Reshape, Slice the trailing zeros: 2x2 -> 3x3), pad by k-1 = 1 on each side
  // (5x5), then a Conv with the kernel flipped in space.
  func.func @main(%x: tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32> {
    %w = "graph.constant"() <{value = dense<[[[[1.0, 2.0], [3.0, 4.0]]]]> : tensor<1x1x2x2xf32>}> : () -> tensor<1x1x2x2xf32>
    %y = "graph.conv_transpose"(%x, %w) <{strides = array<i64: 2, 2>}> {src = ["up"]} : (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32>
    func.return %y : tensor<1x1x4x4xf32>
  }
  // CHECK-LABEL: func.func @main
  // CHECK: "graph.reshape"(%x, {{.*}} -> tensor<1x1x2x1x2x1xf32>
  // CHECK: dense<[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]>
  // CHECK: "graph.pad"({{.*}} -> tensor<1x1x2x2x2x2xf32>
  // CHECK: "graph.reshape"({{.*}} -> tensor<1x1x4x4xf32>
  // CHECK: "graph.slice"({{.*}} -> tensor<1x1x3x3xf32>
  // CHECK: dense<[0, 0, 1, 1, 0, 0, 1, 1]>
  // CHECK: "graph.pad"({{.*}} -> tensor<1x1x5x5xf32>
  // CHECK: dense<{{\[\[\[\[}}4.000000e+00, 3.000000e+00], [2.000000e+00, 1.000000e+00]]]]>
  // The model's FLOPs, 2 x 4 input pixels x 4 taps, not the Conv's 2 x 16 x 4 (MFU counts these).
  // CHECK: "graph.conv"({{.*}} {src = ["up"], model_flops = 32 : i64} : (tensor<1x1x5x5xf32>, tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32>
  // CHECK-NOT: graph.conv_transpose
  // CHECK: func.return

  // Weights fed at run time: flipped in space by a Slice with negative steps, in/out
  // channels swapped by a Transpose, both data movement the target runs as kernels.
  func.func @runtime_weights(%x: tensor<1x1x2x2xf32>, %w: tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32> {
    %y = "graph.conv_transpose"(%x, %w) <{strides = array<i64: 2, 2>}> {src = ["up_w"]} : (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32>
    func.return %y : tensor<1x1x4x4xf32>
  }
  // CHECK-LABEL: func.func @runtime_weights
  // CHECK: dense<-1> : tensor<2xi64>
  // CHECK: dense<-9223372036854775808> : tensor<2xi64>
  // CHECK: %[[FLIP:.*]] = "graph.slice"(%w,
  // CHECK: %[[SWAP:.*]] = "graph.transpose"(%[[FLIP]]) <{perm = array<i64: 1, 0, 2, 3>}>
  // CHECK: "graph.conv"({{.*}}, %[[SWAP]])
  // CHECK-NOT: graph.conv_transpose

  // Declined: auto_pad is not rewritten; the op stays (and runs on the AI CPU).
  func.func @keep(%x: tensor<1x1x2x2xf32>, %w: tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32> {
    %y = "graph.conv_transpose"(%x, %w) <{strides = array<i64: 2, 2>, auto_pad = "SAME_UPPER"}> {src = ["up_auto"]} : (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32>
    func.return %y : tensor<1x1x4x4xf32>
  }
  // CHECK-LABEL: func.func @keep
  // CHECK: "graph.conv_transpose"(%x, %w)
}
