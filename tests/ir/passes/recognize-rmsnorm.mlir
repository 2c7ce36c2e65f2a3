// RUN: graphopt opt %s -p recognize-rmsnorm | filecheck %s
// RUN: graphopt opt %s -p recognize-rmsnorm,dce | filecheck %s --check-prefix=DCE

builtin.module {
  // x * Reciprocal(Sqrt(mean(Pow(x, 2)) + eps)) * w (how exporters write rsqrt).
  func.func @weighted(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %axes = "graph.constant"() <{value = dense<-1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %eps = "graph.constant"() <{value = dense<1.0e-06> : tensor<f32>}> : () -> tensor<f32>
    %two = "graph.constant"() <{value = dense<2.0> : tensor<f32>}> : () -> tensor<f32>
    %w = "graph.constant"() <{value = dense<1.5> : tensor<8xf32>}> : () -> tensor<8xf32>
    %sq = "graph.pow"(%x, %two) {src = ["pow"]} : (tensor<2x4x8xf32>, tensor<f32>) -> tensor<2x4x8xf32>
    %ms = "graph.reduce_mean"(%sq, %axes) {src = ["mean"]} : (tensor<2x4x8xf32>, tensor<1xi64>) -> tensor<2x4x1xf32>
    %a = "graph.add"(%ms, %eps) {src = ["add"]} : (tensor<2x4x1xf32>, tensor<f32>) -> tensor<2x4x1xf32>
    %s = "graph.sqrt"(%a) {src = ["sqrt"]} : (tensor<2x4x1xf32>) -> tensor<2x4x1xf32>
    %r = "graph.reciprocal"(%s) {src = ["rsqrt"]} : (tensor<2x4x1xf32>) -> tensor<2x4x1xf32>
    %y = "graph.mul"(%x, %r) {src = ["norm"]} : (tensor<2x4x8xf32>, tensor<2x4x1xf32>) -> tensor<2x4x8xf32>
    %o = "graph.mul"(%w, %y) {src = ["weight"]} : (tensor<8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    func.return %o : tensor<2x4x8xf32>
  }
  // x / Sqrt(mean(x * x) + eps) with no weight: w = ones.
  func.func @plain(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %axes = "graph.constant"() <{value = dense<1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %eps = "graph.constant"() <{value = dense<1.0e-05> : tensor<f32>}> : () -> tensor<f32>
    %sq = "graph.mul"(%x, %x) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %ms = "graph.reduce_mean"(%sq, %axes) {src = ["mean2"]} : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<4x1xf32>
    %a = "graph.add"(%ms, %eps) : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
    %s = "graph.sqrt"(%a) : (tensor<4x1xf32>) -> tensor<4x1xf32>
    %y = "graph.div"(%x, %s) : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
    func.return %y : tensor<4x8xf32>
  }
  // Declined: x - mean(x) squared is a layer norm's variance; a mean over a leading axis;
  // the numerator is another tensor than the one squared.
  func.func @keep(%x: tensor<4x8xf32>, %z: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) {
    %a1 = "graph.constant"() <{value = dense<1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %a0 = "graph.constant"() <{value = dense<0> : tensor<1xi64>}> : () -> tensor<1xi64>
    %eps = "graph.constant"() <{value = dense<1.0e-05> : tensor<f32>}> : () -> tensor<f32>
    %m = "graph.reduce_mean"(%x, %a1) : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<4x1xf32>
    %d = "graph.sub"(%x, %m) : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
    %dd = "graph.mul"(%d, %d) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %v = "graph.reduce_mean"(%dd, %a1) {src = ["variance"]} : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<4x1xf32>
    %ve = "graph.add"(%v, %eps) : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
    %vs = "graph.sqrt"(%ve) : (tensor<4x1xf32>) -> tensor<4x1xf32>
    %y1 = "graph.div"(%d, %vs) : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
    %sq = "graph.mul"(%x, %x) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %ms = "graph.reduce_mean"(%sq, %a0) {src = ["lead_mean"]} : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<1x8xf32>
    %ma = "graph.add"(%ms, %eps) : (tensor<1x8xf32>, tensor<f32>) -> tensor<1x8xf32>
    %s = "graph.sqrt"(%ma) : (tensor<1x8xf32>) -> tensor<1x8xf32>
    %y2 = "graph.div"(%x, %s) : (tensor<4x8xf32>, tensor<1x8xf32>) -> tensor<4x8xf32>
    %sq3 = "graph.mul"(%x, %x) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %ms3 = "graph.reduce_mean"(%sq3, %a1) {src = ["other_numerator"]} : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<4x1xf32>
    %a3 = "graph.add"(%ms3, %eps) : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
    %s3 = "graph.sqrt"(%a3) : (tensor<4x1xf32>) -> tensor<4x1xf32>
    %y3 = "graph.div"(%z, %s3) : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
    func.return %y1, %y2, %y3 : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
  }
}

// CHECK-LABEL: func.func @weighted
// CHECK:       %[[R:.*]] = "graph.rms_normalization"(%x, %w) <{axis = 2 : i64, epsilon = {{.*}} : f32}> {src = [{{.*}}"weight"]} : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
// CHECK-NOT:   "graph.rms_normalization"
// CHECK:       func.return %[[R]]

// CHECK-LABEL: func.func @plain
// CHECK:       %[[ONES:.*]] = "graph.constant"() <{value = dense<1.000000e+00> : tensor<8xf32>}>
// CHECK-NEXT:  %[[R2:.*]] = "graph.rms_normalization"(%x, %[[ONES]]) <{axis = 1 : i64, epsilon = {{.*}} : f32}>
// CHECK-NOT:   "graph.rms_normalization"
// CHECK:       func.return %[[R2]]

// CHECK-LABEL: func.func @keep
// CHECK:       "graph.reduce_mean"({{.*}}) {src = ["variance"]}
// CHECK:       "graph.reduce_mean"({{.*}}) {src = ["lead_mean"]}
// CHECK:       "graph.reduce_mean"({{.*}}) {src = ["other_numerator"]}
// CHECK-NOT:   "graph.rms_normalization"

// DCE-LABEL: func.func @weighted
// DCE-NEXT:  "graph.constant"
// DCE-NEXT:  %[[R:.*]] = "graph.rms_normalization"(%x, %w)
// DCE-NEXT:  func.return %[[R]]
