// RUN: graphopt opt %s -p recognize-layernorm | filecheck %s
// RUN: graphopt opt %s -p recognize-layernorm,dce | filecheck %s --check-prefix=DCE

builtin.module {
  // mean, x - mean, mean((x - mean)^2), + eps, sqrt, divide, * gamma, + beta.
  func.func @affine(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %axes = "graph.constant"() <{value = dense<-1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %eps = "graph.constant"() <{value = dense<1.0e-05> : tensor<f32>}> : () -> tensor<f32>
    %gamma = "graph.constant"() <{value = dense<2.0> : tensor<8xf32>}> : () -> tensor<8xf32>
    %beta = "graph.constant"() <{value = dense<0.5> : tensor<8xf32>}> : () -> tensor<8xf32>
    %m = "graph.reduce_mean"(%x, %axes) {src = ["mean"]} : (tensor<2x4x8xf32>, tensor<1xi64>) -> tensor<2x4x1xf32>
    %d = "graph.sub"(%x, %m) {src = ["sub"]} : (tensor<2x4x8xf32>, tensor<2x4x1xf32>) -> tensor<2x4x8xf32>
    %sq = "graph.mul"(%d, %d) {src = ["sq"]} : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %v = "graph.reduce_mean"(%sq, %axes) {src = ["var"]} : (tensor<2x4x8xf32>, tensor<1xi64>) -> tensor<2x4x1xf32>
    %ve = "graph.add"(%v, %eps) {src = ["add_eps"]} : (tensor<2x4x1xf32>, tensor<f32>) -> tensor<2x4x1xf32>
    %s = "graph.sqrt"(%ve) {src = ["sqrt"]} : (tensor<2x4x1xf32>) -> tensor<2x4x1xf32>
    %y = "graph.div"(%d, %s) {src = ["div"]} : (tensor<2x4x8xf32>, tensor<2x4x1xf32>) -> tensor<2x4x8xf32>
    %g = "graph.mul"(%y, %gamma) {src = ["gamma"]} : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %o = "graph.add"(%g, %beta) {src = ["beta"]} : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    func.return %o : tensor<2x4x8xf32>
  }
  // Over the last two axes, Pow(d, 2), multiply by Reciprocal(sqrt), no gamma/beta: gamma = ones.
  func.func @plain(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %axes = "graph.constant"() <{value = dense<[1, 2]> : tensor<2xi64>}> : () -> tensor<2xi64>
    %eps = "graph.constant"() <{value = dense<1.0e-06> : tensor<f32>}> : () -> tensor<f32>
    %two = "graph.constant"() <{value = dense<2.0> : tensor<f32>}> : () -> tensor<f32>
    %m = "graph.reduce_mean"(%x, %axes) {src = ["mean2"]} : (tensor<2x4x8xf32>, tensor<2xi64>) -> tensor<2x1x1xf32>
    %d = "graph.sub"(%x, %m) : (tensor<2x4x8xf32>, tensor<2x1x1xf32>) -> tensor<2x4x8xf32>
    %sq = "graph.pow"(%d, %two) : (tensor<2x4x8xf32>, tensor<f32>) -> tensor<2x4x8xf32>
    %v = "graph.reduce_mean"(%sq, %axes) : (tensor<2x4x8xf32>, tensor<2xi64>) -> tensor<2x1x1xf32>
    %ve = "graph.add"(%eps, %v) : (tensor<f32>, tensor<2x1x1xf32>) -> tensor<2x1x1xf32>
    %s = "graph.sqrt"(%ve) : (tensor<2x1x1xf32>) -> tensor<2x1x1xf32>
    %r = "graph.reciprocal"(%s) : (tensor<2x1x1xf32>) -> tensor<2x1x1xf32>
    %y = "graph.mul"(%d, %r) : (tensor<2x4x8xf32>, tensor<2x1x1xf32>) -> tensor<2x4x8xf32>
    func.return %y : tensor<2x4x8xf32>
  }
  // Declined: the mean is over a leading axis; the variance's mean is over other axes
  // than the first mean's.
  func.func @keep(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
    %a0 = "graph.constant"() <{value = dense<0> : tensor<1xi64>}> : () -> tensor<1xi64>
    %a1 = "graph.constant"() <{value = dense<1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %eps = "graph.constant"() <{value = dense<1.0e-05> : tensor<f32>}> : () -> tensor<f32>
    %m = "graph.reduce_mean"(%x, %a0) {src = ["lead_mean"]} : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<1x8xf32>
    %d = "graph.sub"(%x, %m) : (tensor<4x8xf32>, tensor<1x8xf32>) -> tensor<4x8xf32>
    %sq = "graph.mul"(%d, %d) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %v = "graph.reduce_mean"(%sq, %a0) : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<1x8xf32>
    %ve = "graph.add"(%v, %eps) : (tensor<1x8xf32>, tensor<f32>) -> tensor<1x8xf32>
    %s = "graph.sqrt"(%ve) : (tensor<1x8xf32>) -> tensor<1x8xf32>
    %y = "graph.div"(%d, %s) : (tensor<4x8xf32>, tensor<1x8xf32>) -> tensor<4x8xf32>
    %m2 = "graph.reduce_mean"(%x, %a1) {src = ["last_mean"]} : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<4x1xf32>
    %d2 = "graph.sub"(%x, %m2) : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
    %sq2 = "graph.mul"(%d2, %d2) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %v2 = "graph.reduce_mean"(%sq2, %a0) : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<1x8xf32>
    %ve2 = "graph.add"(%v2, %eps) : (tensor<1x8xf32>, tensor<f32>) -> tensor<1x8xf32>
    %s2 = "graph.sqrt"(%ve2) : (tensor<1x8xf32>) -> tensor<1x8xf32>
    %y2 = "graph.div"(%d2, %s2) : (tensor<4x8xf32>, tensor<1x8xf32>) -> tensor<4x8xf32>
    func.return %y, %y2 : tensor<4x8xf32>, tensor<4x8xf32>
  }
}

// One layer norm per matched chain: the pass must not match again on the dead remains
// of a chain it has already rewritten (a shorter chain each time: without beta, without gamma).
// CHECK-LABEL: func.func @affine
// CHECK:       %[[LN:.*]] = "graph.layer_normalization"(%x, %gamma, %beta) <{axis = 2 : i64, epsilon = {{9.99999974E-6|1.000000e-05}} : f32}> {src = ["mean", "sub", "sq", "var", "add_eps", "sqrt", "div", "gamma", "beta"]} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
// CHECK-NOT:   "graph.layer_normalization"
// CHECK:       func.return %[[LN]]

// CHECK-LABEL: func.func @plain
// CHECK:       %[[ONES:.*]] = "graph.constant"() <{value = dense<1.000000e+00> : tensor<4x8xf32>}>
// CHECK:       %[[LN2:.*]] = "graph.layer_normalization"(%x, %[[ONES]]) <{axis = 1 : i64, epsilon = {{.*}} : f32}>
// CHECK-NOT:   "graph.layer_normalization"
// CHECK:       func.return %[[LN2]]

// CHECK-LABEL: func.func @keep
// CHECK:       "graph.reduce_mean"(%x, %{{.*}}) {src = ["lead_mean"]}
// CHECK:       "graph.reduce_mean"(%x, %{{.*}}) {src = ["last_mean"]}
// CHECK-NOT:   "graph.layer_normalization"

// After dce only the layer norms remain of the decomposed chains.
// DCE-LABEL: func.func @affine
// DCE-NEXT:  "graph.constant"
// DCE-NEXT:  "graph.constant"
// DCE-NEXT:  %[[LN:.*]] = "graph.layer_normalization"(%x, %gamma, %beta)
// DCE-NEXT:  func.return %[[LN]]
// DCE-LABEL: func.func @plain
// DCE-NEXT:  %[[ONES:.*]] = "graph.constant"
// DCE-NEXT:  %[[LN2:.*]] = "graph.layer_normalization"(%x, %[[ONES]])
// DCE-NEXT:  func.return %[[LN2]]
