// RUN: graphopt opt %s -p fold-conv-bn | filecheck %s

builtin.module {
  // s = scale / sqrt(var + eps) = [0.5, 0.5]; W' = W * s = [1, 1.5];
  // b' = (b - mean) * s + B = [0.5, -0.5]. Without a Conv bias (and mean2 = [2, 2]),
  // b' = -mean2 * s + B = [-0.5, -1].
  func.func @main(%x: tensor<1x1x2x2xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) {
    %w = "graph.constant"() <{value = dense<[[[[2.0]]], [[[3.0]]]]> : tensor<2x1x1x1xf32>}> : () -> tensor<2x1x1x1xf32>
    %b = "graph.constant"() <{value = dense<[1.0, -1.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %scale = "graph.constant"() <{value = dense<[1.0, 2.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %shift = "graph.constant"() <{value = dense<[0.5, 0.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %mean = "graph.constant"() <{value = dense<[1.0, 0.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %var = "graph.constant"() <{value = dense<[3.0, 15.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %c = "graph.conv"(%x, %w, %b) {src = ["conv"]} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
    %y = "graph.batch_normalization"(%c, %scale, %shift, %mean, %var) <{epsilon = 1.0 : f32}> {src = ["bn"]} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
    %mean2 = "graph.constant"() <{value = dense<[2.0, 2.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %c2 = "graph.conv"(%x, %w) {src = ["conv_nobias"]} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
    %y2 = "graph.batch_normalization"(%c2, %scale, %shift, %mean2, %var) <{epsilon = 1.0 : f32}> {src = ["bn2"]} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
    func.return %y, %y2 : tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>
  }
  // Declined: the Conv's result has another user; training mode; weights that are not
  // constants (a function argument).
  func.func @keep(%x: tensor<1x1x2x2xf32>, %wx: tensor<2x1x1x1xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) {
    %w = "graph.constant"() <{value = dense<[[[[2.0]]], [[[3.0]]]]> : tensor<2x1x1x1xf32>}> : () -> tensor<2x1x1x1xf32>
    %scale = "graph.constant"() <{value = dense<[1.0, 2.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %shift = "graph.constant"() <{value = dense<[0.5, 0.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %mean = "graph.constant"() <{value = dense<[1.0, 0.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %var = "graph.constant"() <{value = dense<[3.0, 15.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %c1 = "graph.conv"(%x, %w) {src = ["shared_conv"]} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
    %y1 = "graph.batch_normalization"(%c1, %scale, %shift, %mean, %var) {src = ["bn_shared"]} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
    %c2 = "graph.conv"(%x, %w) {src = ["train_conv"]} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
    %y2, %rm, %rv = "graph.batch_normalization"(%c2, %scale, %shift, %mean, %var) <{training_mode = 1 : i64}> {src = ["bn_train"]} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>)
    %c3 = "graph.conv"(%x, %wx) {src = ["arg_conv"]} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
    %y3 = "graph.batch_normalization"(%c3, %scale, %shift, %mean, %var) {src = ["bn_arg"]} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
    func.return %c1, %y1, %y2, %y3 : tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>
  }
  // A batch norm written as per-channel Mul and Add (onnx's Inception v2): W' = W * s =
  // [4, 1.5], b' = b * s + c = [2 + 1, -0.5 + 2]. A Mul whose factor varies over the
  // plane is not per channel and stays.
  func.func @scale(%x: tensor<1x1x2x2xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) {
    %w = "graph.constant"() <{value = dense<[[[[2.0]]], [[[3.0]]]]> : tensor<2x1x1x1xf32>}> : () -> tensor<2x1x1x1xf32>
    %b = "graph.constant"() <{value = dense<[1.0, -1.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %s = "graph.constant"() <{value = dense<[[[2.0]], [[0.5]]]> : tensor<2x1x1xf32>}> : () -> tensor<2x1x1xf32>
    %c = "graph.constant"() <{value = dense<[[[[1.0]], [[2.0]]]]> : tensor<1x2x1x1xf32>}> : () -> tensor<1x2x1x1xf32>
    %plane = "graph.constant"() <{value = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>}> : () -> tensor<2x2xf32>
    %y0 = "graph.conv"(%x, %w, %b) {src = ["conv"]} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
    %y1 = "graph.mul"(%s, %y0) {src = ["mul"]} : (tensor<2x1x1xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
    %y2 = "graph.add"(%y1, %c) {src = ["add"]} : (tensor<1x2x2x2xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x2x2xf32>
    %z0 = "graph.conv"(%x, %w) {src = ["conv_plane"]} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
    %z1 = "graph.mul"(%z0, %plane) {src = ["mul_plane"]} : (tensor<1x2x2x2xf32>, tensor<2x2xf32>) -> tensor<1x2x2x2xf32>
    func.return %y2, %z1 : tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>
  }
}

// CHECK-LABEL: func.func @main
// CHECK-NOT:   "graph.batch_normalization"
// CHECK:       %[[W:.*]] = "graph.constant"() <{value = dense<{{\[\[\[\[}}1.000000e+00]]], {{\[\[\[}}1.500000e+00]]]]> : tensor<2x1x1x1xf32>}> {src = ["conv", "bn"]}
// CHECK-NEXT:  %[[B:.*]] = "graph.constant"() <{value = dense<[5.000000e-01, -5.000000e-01]> : tensor<2xf32>}> {src = ["conv", "bn"]}
// CHECK-NEXT:  %[[Y:.*]] = "graph.conv"(%x, %[[W]], %[[B]]) {src = ["conv", "bn"]} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
// CHECK:       %[[B2:.*]] = "graph.constant"() <{value = dense<[-5.000000e-01, -1.000000e+00]> : tensor<2xf32>}> {src = ["conv_nobias", "bn2"]}
// CHECK-NEXT:  %[[Y2:.*]] = "graph.conv"(%x, %{{.*}}, %[[B2]])
// CHECK-NOT:   "graph.batch_normalization"
// CHECK:       func.return %[[Y]], %[[Y2]]

// CHECK-LABEL: func.func @keep
// CHECK:       "graph.batch_normalization"({{.*}}) {src = ["bn_shared"]}
// CHECK:       "graph.batch_normalization"({{.*}}) <{training_mode = 1 : i64}> {src = ["bn_train"]}
// CHECK:       "graph.conv"(%x, %wx)
// CHECK:       "graph.batch_normalization"({{.*}}) {src = ["bn_arg"]}

// CHECK-LABEL: func.func @scale
// CHECK:       "graph.constant"() <{value = dense<{{\[\[\[\[}}4.000000e+00]]], {{\[\[\[}}1.500000e+00]]]]> : tensor<2x1x1x1xf32>}> {src = ["conv", "mul"]}
// CHECK:       %[[B:.*]] = "graph.constant"() <{value = dense<[3.000000e+00, 1.500000e+00]> : tensor<2xf32>}> {src = ["conv", "mul", "add"]}
// CHECK-NEXT:  %[[Y:.*]] = "graph.conv"(%x, %{{.*}}, %[[B]])
// CHECK:       %[[Z:.*]] = "graph.mul"({{.*}}) {src = ["mul_plane"]}
// CHECK:       func.return %[[Y]], %[[Z]]
