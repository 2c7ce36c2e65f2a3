// RUN: graphopt opt %s -p recognize-attention | filecheck %s
// RUN: graphopt opt %s -p recognize-attention,dce | filecheck %s --check-prefix=DCE

builtin.module {
  // The 4-D core: softmax(q @ kT * c + mask) @ v -> Attention(q, Transpose(kT), v, mask) {scale = c}.
  func.func @core(%q: tensor<1x2x4x8xf32>, %kt: tensor<1x2x8x4xf32>, %v: tensor<1x2x4x8xf32>, %mask: tensor<1x1x1x4xf32>) -> tensor<1x2x4x8xf32> {
    %c = "graph.constant"() <{value = dense<0.25> : tensor<f32>}> : () -> tensor<f32>
    %s = "graph.matmul"(%q, %kt) {src = ["qk"]} : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
    %s2 = "graph.mul"(%s, %c) {src = ["scale"]} : (tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
    %s3 = "graph.add"(%s2, %mask) {src = ["mask"]} : (tensor<1x2x4x4xf32>, tensor<1x1x1x4xf32>) -> tensor<1x2x4x4xf32>
    %p = "graph.softmax"(%s3) <{axis = -1 : i64}> {src = ["softmax"]} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
    %y = "graph.matmul"(%p, %v) {src = ["pv"]} : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
    func.return %y : tensor<1x2x4x8xf32>
  }
  // Division by a constant (1 / 4 = 0.25), sqrt(scale) split over q and kT (0.5 * 0.5), no mask.
  func.func @split_scale(%q: tensor<1x2x4x8xf32>, %kt: tensor<1x2x8x4xf32>, %v: tensor<1x2x4x8xf32>) -> (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) {
    %four = "graph.constant"() <{value = dense<4.0> : tensor<f32>}> : () -> tensor<f32>
    %half = "graph.constant"() <{value = dense<0.5> : tensor<f32>}> : () -> tensor<f32>
    %s = "graph.matmul"(%q, %kt) : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
    %s2 = "graph.div"(%s, %four) : (tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
    %p = "graph.softmax"(%s2) <{axis = 3 : i64}> : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
    %y = "graph.matmul"(%p, %v) {src = ["div_form"]} : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
    %qs = "graph.mul"(%q, %half) : (tensor<1x2x4x8xf32>, tensor<f32>) -> tensor<1x2x4x8xf32>
    %ks = "graph.mul"(%kt, %half) : (tensor<1x2x8x4xf32>, tensor<f32>) -> tensor<1x2x8x4xf32>
    %t = "graph.matmul"(%qs, %ks) : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
    %pt = "graph.softmax"(%t) <{axis = -1 : i64}> : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
    %z = "graph.matmul"(%pt, %v) {src = ["split_form"]} : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
    func.return %y, %z : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>
  }
  // The multi-head plumbing (x [B, S, H*D] -> reshape [B, S, H, D] -> transpose) around
  // the core folds away: one 3-D Attention with q_num_heads = kv_num_heads = 2.
  func.func @heads(%xq: tensor<1x4x16xf32>, %xk: tensor<1x4x16xf32>, %xv: tensor<1x4x16xf32>) -> tensor<1x4x16xf32> {
    %shape4 = "graph.constant"() <{value = dense<[1, 4, 2, 8]> : tensor<4xi64>}> : () -> tensor<4xi64>
    %shape3 = "graph.constant"() <{value = dense<[1, 4, 16]> : tensor<3xi64>}> : () -> tensor<3xi64>
    %c = "graph.constant"() <{value = dense<0.353553385> : tensor<f32>}> : () -> tensor<f32>
    %rq = "graph.reshape"(%xq, %shape4) : (tensor<1x4x16xf32>, tensor<4xi64>) -> tensor<1x4x2x8xf32>
    %q = "graph.transpose"(%rq) <{perm = array<i64: 0, 2, 1, 3>}> : (tensor<1x4x2x8xf32>) -> tensor<1x2x4x8xf32>
    %rk = "graph.reshape"(%xk, %shape4) : (tensor<1x4x16xf32>, tensor<4xi64>) -> tensor<1x4x2x8xf32>
    %kt = "graph.transpose"(%rk) <{perm = array<i64: 0, 2, 3, 1>}> : (tensor<1x4x2x8xf32>) -> tensor<1x2x8x4xf32>
    %rv = "graph.reshape"(%xv, %shape4) : (tensor<1x4x16xf32>, tensor<4xi64>) -> tensor<1x4x2x8xf32>
    %v = "graph.transpose"(%rv) <{perm = array<i64: 0, 2, 1, 3>}> : (tensor<1x4x2x8xf32>) -> tensor<1x2x4x8xf32>
    %s = "graph.matmul"(%q, %kt) : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
    %s2 = "graph.mul"(%s, %c) : (tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
    %p = "graph.softmax"(%s2) <{axis = -1 : i64}> : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
    %y = "graph.matmul"(%p, %v) : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
    %yt = "graph.transpose"(%y) <{perm = array<i64: 0, 2, 1, 3>}> : (tensor<1x2x4x8xf32>) -> tensor<1x4x2x8xf32>
    %o = "graph.reshape"(%yt, %shape3) {src = ["merge"]} : (tensor<1x4x2x8xf32>, tensor<3xi64>) -> tensor<1x4x16xf32>
    func.return %o : tensor<1x4x16xf32>
  }
  // Declined: softmax over another axis; a scale that is not a scalar; 3-D scores; the
  // probabilities are used elsewhere too.
  func.func @keep(%q: tensor<1x2x4x8xf32>, %kt: tensor<1x2x8x4xf32>, %v: tensor<1x2x4x8xf32>, %w: tensor<1x1x4x4xf32>, %q3: tensor<2x4x8xf32>, %kt3: tensor<2x8x4xf32>, %v3: tensor<2x4x8xf32>) -> (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x4xf32>) {
    %s = "graph.matmul"(%q, %kt) : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
    %p = "graph.softmax"(%s) <{axis = 2 : i64}> : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
    %y = "graph.matmul"(%p, %v) {src = ["wrong_axis"]} : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
    %s2 = "graph.matmul"(%q, %kt) : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
    %s2w = "graph.mul"(%s2, %w) : (tensor<1x2x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32>
    %p2 = "graph.softmax"(%s2w) <{axis = -1 : i64}> : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
    %y2 = "graph.matmul"(%p2, %v) {src = ["tensor_scale"]} : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
    %s3 = "graph.matmul"(%q3, %kt3) : (tensor<2x4x8xf32>, tensor<2x8x4xf32>) -> tensor<2x4x4xf32>
    %p3 = "graph.softmax"(%s3) <{axis = -1 : i64}> : (tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
    %y3 = "graph.matmul"(%p3, %v3) {src = ["rank3"]} : (tensor<2x4x4xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %s4 = "graph.matmul"(%q, %kt) : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
    %p4 = "graph.softmax"(%s4) <{axis = -1 : i64}> : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
    %y4 = "graph.matmul"(%p4, %v) {src = ["probs_used"]} : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
    func.return %y, %y2, %y3, %y4, %p4 : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x4xf32>
  }
}

// CHECK-LABEL: func.func @core
// CHECK:       %[[K:.*]] = "graph.transpose"(%kt) <{perm = array<i64: 0, 1, 3, 2>}> {src = ["qk"]} : (tensor<1x2x8x4xf32>) -> tensor<1x2x4x8xf32>
// CHECK-NEXT:  %[[A:.*]] = "graph.attention"(%q, %[[K]], %v, %mask) <{scale = 2.500000e-01 : f32}> {src = ["qk", "scale", "mask", "softmax", "pv"]} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x1x1x4xf32>) -> tensor<1x2x4x8xf32>
// CHECK-NOT:   "graph.softmax"
// CHECK:       func.return %[[A]]

// CHECK-LABEL: func.func @split_scale
// CHECK:       %[[A1:.*]] = "graph.attention"(%q, %{{.*}}, %v) <{scale = 2.500000e-01 : f32}> {src = [{{.*}}"div_form"{{.*}}]}
// CHECK:       %[[A2:.*]] = "graph.attention"(%q, %{{.*}}, %v) <{scale = 2.500000e-01 : f32}> {src = [{{.*}}"split_form"{{.*}}]}
// CHECK-NOT:   "graph.softmax"
// CHECK:       func.return %[[A1]], %[[A2]]

// CHECK-LABEL: func.func @heads
// CHECK:       %[[H:.*]] = "graph.attention"(%xq, %xk, %xv) <{scale = 0.353553385 : f32, q_num_heads = 2 : i64, kv_num_heads = 2 : i64}> {{.*}} : (tensor<1x4x16xf32>, tensor<1x4x16xf32>, tensor<1x4x16xf32>) -> tensor<1x4x16xf32>
// CHECK-NEXT:  func.return %[[H]]

// CHECK-LABEL: func.func @keep
// CHECK-NOT:   "graph.attention"
// CHECK:       "graph.matmul"(%{{.*}}, %v) {src = ["wrong_axis"]}
// CHECK:       "graph.matmul"(%{{.*}}, %v) {src = ["tensor_scale"]}
// CHECK:       "graph.matmul"(%{{.*}}, %v3) {src = ["rank3"]}
// CHECK:       "graph.matmul"(%{{.*}}, %v) {src = ["probs_used"]}
// CHECK-NOT:   "graph.attention"

// What is left once the dead plumbing is gone: one attention per block.
// DCE-LABEL: func.func @heads
// DCE-NOT:   "graph.reshape"
// DCE-NOT:   "graph.transpose"
// DCE:       %[[H:.*]] = "graph.attention"(%xq, %xk, %xv)
// DCE-NEXT:  func.return %[[H]]
