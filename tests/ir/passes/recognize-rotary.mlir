// RUN: graphopt opt %s -p recognize-rotary,dce | filecheck %s

builtin.module {
  // x * cos + Concat(Neg(x[..., 2:]), x[..., :2]) * sin on x [B, H, S, D] with tables
  // [1, 1, S, D] whose halves are equal: the caches are the first halves, [1, S, D/2].
  // Operands in either order.
  func.func @main(%x: tensor<1x2x2x4xf32>) -> tensor<1x2x2x4xf32> {
    %cos = "graph.constant"() <{value = dense<[[[[1.0, 0.5, 1.0, 0.5], [0.25, 0.75, 0.25, 0.75]]]]> : tensor<1x1x2x4xf32>}> : () -> tensor<1x1x2x4xf32>
    %sin = "graph.constant"() <{value = dense<[[[[0.0, 0.5, 0.0, 0.5], [0.5, 0.25, 0.5, 0.25]]]]> : tensor<1x1x2x4xf32>}> : () -> tensor<1x1x2x4xf32>
    %zero = "graph.constant"() <{value = dense<0> : tensor<1xi64>}> : () -> tensor<1xi64>
    %half = "graph.constant"() <{value = dense<2> : tensor<1xi64>}> : () -> tensor<1xi64>
    %end = "graph.constant"() <{value = dense<9223372036854775807> : tensor<1xi64>}> : () -> tensor<1xi64>
    %axis = "graph.constant"() <{value = dense<-1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %x1 = "graph.slice"(%x, %zero, %half, %axis) {src = ["x1"]} : (tensor<1x2x2x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x2x2x2xf32>
    %x2 = "graph.slice"(%x, %half, %end, %axis) {src = ["x2"]} : (tensor<1x2x2x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x2x2x2xf32>
    %n = "graph.neg"(%x2) {src = ["neg"]} : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
    %rot = "graph.concat"(%n, %x1) <{axis = 3 : i64}> {src = ["cat"]} : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x4xf32>
    %xc = "graph.mul"(%cos, %x) {src = ["xcos"]} : (tensor<1x1x2x4xf32>, tensor<1x2x2x4xf32>) -> tensor<1x2x2x4xf32>
    %rs = "graph.mul"(%rot, %sin) {src = ["rsin"]} : (tensor<1x2x2x4xf32>, tensor<1x1x2x4xf32>) -> tensor<1x2x2x4xf32>
    %y = "graph.add"(%rs, %xc) {src = ["add"]} : (tensor<1x2x2x4xf32>, tensor<1x2x2x4xf32>) -> tensor<1x2x2x4xf32>
    func.return %y : tensor<1x2x2x4xf32>
  }
  // Declined: the halves of cos differ along the last axis (RotaryEmbedding uses one
  // angle per pair).
  func.func @keep(%x: tensor<1x2x2x4xf32>) -> tensor<1x2x2x4xf32> {
    %cos = "graph.constant"() <{value = dense<[[[[1.0, 0.5, 0.9, 0.5], [0.25, 0.75, 0.25, 0.75]]]]> : tensor<1x1x2x4xf32>}> : () -> tensor<1x1x2x4xf32>
    %sin = "graph.constant"() <{value = dense<[[[[0.0, 0.5, 0.0, 0.5], [0.5, 0.25, 0.5, 0.25]]]]> : tensor<1x1x2x4xf32>}> : () -> tensor<1x1x2x4xf32>
    %zero = "graph.constant"() <{value = dense<0> : tensor<1xi64>}> : () -> tensor<1xi64>
    %half = "graph.constant"() <{value = dense<2> : tensor<1xi64>}> : () -> tensor<1xi64>
    %end = "graph.constant"() <{value = dense<4> : tensor<1xi64>}> : () -> tensor<1xi64>
    %axis = "graph.constant"() <{value = dense<3> : tensor<1xi64>}> : () -> tensor<1xi64>
    %x1 = "graph.slice"(%x, %zero, %half, %axis) : (tensor<1x2x2x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x2x2x2xf32>
    %x2 = "graph.slice"(%x, %half, %end, %axis) : (tensor<1x2x2x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x2x2x2xf32>
    %n = "graph.neg"(%x2) : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
    %rot = "graph.concat"(%n, %x1) <{axis = -1 : i64}> : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x4xf32>
    %xc = "graph.mul"(%x, %cos) : (tensor<1x2x2x4xf32>, tensor<1x1x2x4xf32>) -> tensor<1x2x2x4xf32>
    %rs = "graph.mul"(%rot, %sin) : (tensor<1x2x2x4xf32>, tensor<1x1x2x4xf32>) -> tensor<1x2x2x4xf32>
    %y = "graph.add"(%xc, %rs) {src = ["unequal_halves"]} : (tensor<1x2x2x4xf32>, tensor<1x2x2x4xf32>) -> tensor<1x2x2x4xf32>
    func.return %y : tensor<1x2x2x4xf32>
  }
}

// CHECK-LABEL: func.func @main
// CHECK-DAG:   %[[COS:.*]] = "graph.constant"() <{value = dense<{{\[\[}}[1.000000e+00, 5.000000e-01], [2.500000e-01, 7.500000e-01]]]> : tensor<1x2x2xf32>}>
// CHECK-DAG:   %[[SIN:.*]] = "graph.constant"() <{value = dense<{{\[\[}}[0.000000e+00, 5.000000e-01], [5.000000e-01, 2.500000e-01]]]> : tensor<1x2x2xf32>}>
// CHECK:       %[[Y:.*]] = "graph.rotary_embedding"(%x, %[[COS]], %[[SIN]]) {src = ["x2", "neg", "x1", "cat", "rsin", "xcos", "add"]} : (tensor<1x2x2x4xf32>, tensor<1x2x2xf32>, tensor<1x2x2xf32>) -> tensor<1x2x2x4xf32>
// CHECK-NOT:   "graph.slice"
// CHECK:       func.return %[[Y]]

// CHECK-LABEL: func.func @keep
// CHECK-NOT:   "graph.rotary_embedding"
// CHECK:       "graph.add"({{.*}}) {src = ["unequal_halves"]}
// CHECK-NOT:   "graph.rotary_embedding"
