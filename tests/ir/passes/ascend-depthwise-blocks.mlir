// RUN: graphopt opt %s -p ascend-depthwise-blocks | filecheck %s

builtin.module {
  // Four channels, one block of 4: the weights become block-diagonal [4, 4, 1, 1] and the
  // Conv one group; its model_flops stay the depthwise ones (2 x 4 channels x 4 pixels x 1 tap).
  func.func @main(%x: tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32> {
    %w = "graph.constant"() <{value = dense<[[[[1.0]]], [[[2.0]]], [[[3.0]]], [[[4.0]]]]> : tensor<4x1x1x1xf32>}> : () -> tensor<4x1x1x1xf32>
    %y = "graph.conv"(%x, %w) <{group = 4 : i64}> {src = ["dw"]} : (tensor<1x4x2x2xf32>, tensor<4x1x1x1xf32>) -> tensor<1x4x2x2xf32>
    func.return %y : tensor<1x4x2x2xf32>
  }
  // CHECK-LABEL: func.func @main
  // CHECK: "graph.constant"() <{value = dense<{{\[\[\[\[}}1.000000e+00]], {{\[\[}}0.000000e+00]], {{\[\[}}0.000000e+00]], {{\[\[}}0.000000e+00]]], {{\[\[\[}}0.000000e+00]], {{\[\[}}2.000000e+00]],
  // CHECK-SAME: tensor<4x4x1x1xf32>
  // CHECK: "graph.conv"(%x, %{{.*}}) <{group = 1 : i64}> {src = ["dw"], model_flops = 32 : i64} : (tensor<1x4x2x2xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x2x2xf32>

  // Weights fed at run time (torch.compile's parameters): kept, one matmul per channel.
  func.func @runtime_weights(%x: tensor<1x4x2x2xf32>, %w: tensor<4x1x1x1xf32>) -> tensor<1x4x2x2xf32> {
    %y = "graph.conv"(%x, %w) <{group = 4 : i64}> {src = ["dw_w"]} : (tensor<1x4x2x2xf32>, tensor<4x1x1x1xf32>) -> tensor<1x4x2x2xf32>
    func.return %y : tensor<1x4x2x2xf32>
  }
  // CHECK-LABEL: func.func @runtime_weights
  // CHECK: "graph.conv"(%x, %w) <{group = 4 : i64}> {src = ["dw_w"]}

  // 7 channels are one block of 7. Kept: a channel multiplier of 2 (8 outputs of 4 inputs)
  // and 17 channels (no divisor from 2 to 16).
  func.func @keep(%x: tensor<1x4x2x2xf32>, %x7: tensor<1x7x2x2xf32>, %x17: tensor<1x17x2x2xf32>) -> (tensor<1x8x2x2xf32>, tensor<1x7x2x2xf32>, tensor<1x17x2x2xf32>) {
    %w8 = "graph.constant"() <{value = dense<1.0> : tensor<8x1x1x1xf32>}> : () -> tensor<8x1x1x1xf32>
    %w7 = "graph.constant"() <{value = dense<1.0> : tensor<7x1x1x1xf32>}> : () -> tensor<7x1x1x1xf32>
    %w17 = "graph.constant"() <{value = dense<1.0> : tensor<17x1x1x1xf32>}> : () -> tensor<17x1x1x1xf32>
    %y = "graph.conv"(%x, %w8) <{group = 4 : i64}> {src = ["mult2"]} : (tensor<1x4x2x2xf32>, tensor<8x1x1x1xf32>) -> tensor<1x8x2x2xf32>
    %z = "graph.conv"(%x7, %w7) <{group = 7 : i64}> {src = ["seven"]} : (tensor<1x7x2x2xf32>, tensor<7x1x1x1xf32>) -> tensor<1x7x2x2xf32>
    %u = "graph.conv"(%x17, %w17) <{group = 17 : i64}> {src = ["prime"]} : (tensor<1x17x2x2xf32>, tensor<17x1x1x1xf32>) -> tensor<1x17x2x2xf32>
    func.return %y, %z, %u : tensor<1x8x2x2xf32>, tensor<1x7x2x2xf32>, tensor<1x17x2x2xf32>
  }
  // CHECK-LABEL: func.func @keep
  // CHECK: "graph.conv"(%x, %w8) <{group = 4 : i64}> {src = ["mult2"]}
  // CHECK: "graph.conv"(%x7, {{.*}}) <{group = 1 : i64}> {src = ["seven"]
  // CHECK: "graph.conv"(%x17, %w17) <{group = 17 : i64}> {src = ["prime"]}
}
