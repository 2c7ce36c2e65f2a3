// RUN: graphopt opt %s -p ascend-channels-first | filecheck %s
// RUN: graphopt opt %s -p 'ascend-channels-first,ascend-layout' | filecheck %s --check-prefix=LAYOUT

// A ConvNeXt block's pointwise half, channels-last between two Transposes: LayerNorm over
// C, a Linear layer, GELU, layer scale, after the block's depthwise convolution.
// Channels-first it is a ChannelLayerNorm, a 1x1 Conv (W^T as its kernel), the GELU and a
// per-channel Mul, with no Transpose left, so the layout keeps NC1HWC0 from the input's
// TransData to the return's.
builtin.module {
  func.func @main(%in: tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32> {
    %dw = "graph.constant"() <{value = dense<[[[[1.0]]], [[[0.5]]], [[[2.0]]], [[[1.0]]]]> : tensor<4x1x1x1xf32>}> {src = ["dw.w"]} : () -> tensor<4x1x1x1xf32>
    %x = "graph.conv"(%in, %dw) <{group = 4 : i64, kernel_shape = array<i64: 1, 1>}> {src = ["dwconv"]} : (tensor<1x4x2x2xf32>, tensor<4x1x1x1xf32>) -> tensor<1x4x2x2xf32>
    %s = "graph.constant"() <{value = dense<[1.0, 0.5, 2.0, 1.0]> : tensor<4xf32>}> {src = ["s"]} : () -> tensor<4xf32>
    %b = "graph.constant"() <{value = dense<[0.0, 0.25, 0.0, -0.5]> : tensor<4xf32>}> {src = ["b"]} : () -> tensor<4xf32>
    %w = "graph.constant"() <{value = dense<[[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.25, 0.0, 0.0, 1.0]]> : tensor<4x4xf32>}> {src = ["w"]} : () -> tensor<4x4xf32>
    %g = "graph.constant"() <{value = dense<[0.5, 0.5, 1.0, 1.0]> : tensor<4xf32>}> {src = ["gamma"]} : () -> tensor<4xf32>
    %t = "graph.transpose"(%x) <{perm = array<i64: 0, 2, 3, 1>}> {src = ["permute"]} : (tensor<1x4x2x2xf32>) -> tensor<1x2x2x4xf32>
    %ln = "graph.layer_normalization"(%t, %s, %b) <{axis = -1 : i64, epsilon = 1.0e-06 : f32}> {src = ["ln"]} : (tensor<1x2x2x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x2x2x4xf32>
    %m = "graph.matmul"(%ln, %w) {src = ["fc"]} : (tensor<1x2x2x4xf32>, tensor<4x4xf32>) -> tensor<1x2x2x4xf32>
    %a = "graph.gelu"(%m) {src = ["act"]} : (tensor<1x2x2x4xf32>) -> tensor<1x2x2x4xf32>
    %l = "graph.mul"(%g, %a) {src = ["scale"]} : (tensor<4xf32>, tensor<1x2x2x4xf32>) -> tensor<1x2x2x4xf32>
    %y = "graph.transpose"(%l) <{perm = array<i64: 0, 3, 1, 2>}> {src = ["permute_back"]} : (tensor<1x2x2x4xf32>) -> tensor<1x4x2x2xf32>
    func.return %y : tensor<1x4x2x2xf32>
  }

  // The same Linear over the last axis of attention scores (CaiT's talking heads over
  // [B, N, N, heads]): no convolution on either side keeps NC1HWC0, so the 1x1 Conv would
  // only add a TransData on each side. The island stays as it is.
  func.func @heads(%x: tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32> {
    %w = "graph.constant"() <{value = dense<[[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.25, 0.0, 0.0, 1.0]]> : tensor<4x4xf32>}> {src = ["proj_l.w"]} : () -> tensor<4x4xf32>
    %t = "graph.transpose"(%x) <{perm = array<i64: 0, 2, 3, 1>}> {src = ["permute"]} : (tensor<1x4x2x2xf32>) -> tensor<1x2x2x4xf32>
    %m = "graph.matmul"(%t, %w) {src = ["proj_l"]} : (tensor<1x2x2x4xf32>, tensor<4x4xf32>) -> tensor<1x2x2x4xf32>
    %y = "graph.transpose"(%m) <{perm = array<i64: 0, 3, 1, 2>}> {src = ["permute_back"]} : (tensor<1x2x2x4xf32>) -> tensor<1x4x2x2xf32>
    func.return %y : tensor<1x4x2x2xf32>
  }

  // MambaOut's gated block: a Split along C (gate, identity, conv channels), a Concat along
  // C, and the network's global mean over H and W without keepdims at the end. Split and
  // Concat move to axis 1; the mean keeps N and C in the same order either way, so its
  // result leaves the island as it is.
  func.func @gated(%in: tensor<1x4x2x2xf32>) -> (tensor<1x4x2x2xf32>, tensor<1x4xf32>) {
    %dw = "graph.constant"() <{value = dense<[[[[1.0]]], [[[0.5]]], [[[2.0]]], [[[1.0]]]]> : tensor<4x1x1x1xf32>}> {src = ["dw.w"]} : () -> tensor<4x1x1x1xf32>
    %x = "graph.conv"(%in, %dw) <{group = 4 : i64, kernel_shape = array<i64: 1, 1>}> {src = ["dwconv"]} : (tensor<1x4x2x2xf32>, tensor<4x1x1x1xf32>) -> tensor<1x4x2x2xf32>
    %sz = "graph.constant"() <{value = dense<[2, 2]> : tensor<2xi64>}> {src = ["sizes"]} : () -> tensor<2xi64>
    %hw = "graph.constant"() <{value = dense<[1, 2]> : tensor<2xi64>}> {src = ["hw"]} : () -> tensor<2xi64>
    %t = "graph.transpose"(%x) <{perm = array<i64: 0, 2, 3, 1>}> {src = ["permute"]} : (tensor<1x4x2x2xf32>) -> tensor<1x2x2x4xf32>
    %g, %i = "graph.split"(%t, %sz) <{axis = 3 : i64}> {src = ["split"]} : (tensor<1x2x2x4xf32>, tensor<2xi64>) -> (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>)
    %m = "graph.mul"(%g, %i) {src = ["gate"]} : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
    %c = "graph.concat"(%m, %i) <{axis = -1 : i64}> {src = ["cat"]} : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x4xf32>
    %y = "graph.transpose"(%c) <{perm = array<i64: 0, 3, 1, 2>}> {src = ["permute_back"]} : (tensor<1x2x2x4xf32>) -> tensor<1x4x2x2xf32>
    %r = "graph.reduce_mean"(%c, %hw) <{keepdims = 0 : i64}> {src = ["mean"]} : (tensor<1x2x2x4xf32>, tensor<2xi64>) -> tensor<1x4xf32>
    func.return %y, %r : tensor<1x4x2x2xf32>, tensor<1x4xf32>
  }
}

// CHECK-NOT: graph.transpose
// CHECK: %x = "graph.conv"
// CHECK: "graph.channel_layer_norm"(%x, {{.*}}) <{epsilon = 1.000000e-06 : f32}> {src = ["ln"]} : (tensor<1x4x2x2xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x2x2xf32>
// CHECK: dense<{{.*}}> : tensor<4x4x1x1xf32>
// CHECK: "graph.conv"({{.*}} <{kernel_shape = array<i64: 1, 1>}> {src = ["fc"]} : (tensor<1x4x2x2xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x2x2xf32>
// CHECK: "graph.gelu"({{.*}} -> tensor<1x4x2x2xf32>
// CHECK: dense<{{.*}}> : tensor<1x4x1x1xf32>
// CHECK: "graph.mul"({{.*}} {src = ["scale"]} : (tensor<1x4x1x1xf32>, tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
// CHECK-NOT: graph.transpose
// CHECK: func.return
// CHECK: func.func @heads
// CHECK: "graph.transpose"
// CHECK: "graph.matmul"
// CHECK: "graph.transpose"
// CHECK: func.func @gated
// CHECK-NOT: graph.transpose
// CHECK: "graph.split"(%x, %sz) <{axis = 1 : i64}> {{.*}} -> (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>)
// CHECK: "graph.concat"({{.*}}) <{axis = 1 : i64}> {{.*}} -> tensor<1x4x2x2xf32>
// CHECK: dense<[2, 3]>
// CHECK: "graph.reduce_mean"({{.*}}) <{keepdims = 0 : i64}> {src = ["mean"]} : (tensor<1x4x2x2xf32>, tensor<2xi64>) -> tensor<1x4xf32>
// CHECK-NOT: graph.transpose
// CHECK: func.return

// Two TransData in @main and two in @gated (the input's and the return's); @heads has none.
// LAYOUT: ascend.layout = {transdata = 4 : i64
// LAYOUT: "graph.channel_layer_norm"({{.*}} -> tensor<1x4x2x2xf32, "NC1HWC0">
// LAYOUT: "graph.conv"({{.*}} -> tensor<1x4x2x2xf32, "NC1HWC0">
// LAYOUT: func.func @gated
// LAYOUT: "graph.split"({{.*}} -> (tensor<1x2x2x2xf32, "NC1HWC0">, tensor<1x2x2x2xf32, "NC1HWC0">)
// LAYOUT: "graph.concat"({{.*}} -> tensor<1x4x2x2xf32, "NC1HWC0">
