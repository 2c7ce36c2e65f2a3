// RUN: graphopt opt %s -p fold-matmul-add | filecheck %s

builtin.module {
  // matmul + b and b + matmul (b of shape [N] or [1, N]) become graph.matmul_bias.
  func.func @main(%x: tensor<2x4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>, %b2: tensor<1x16xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x16xf32>) {
    %m = "graph.matmul"(%x, %w) {src = ["mm"]} : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %y = "graph.add"(%m, %b) {src = ["bias"]} : (tensor<2x4x16xf32>, tensor<16xf32>) -> tensor<2x4x16xf32>
    %m2 = "graph.matmul"(%x, %w) {src = ["mm2"]} : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %y2 = "graph.add"(%b2, %m2) {src = ["bias2"]} : (tensor<1x16xf32>, tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
    func.return %y, %y2 : tensor<2x4x16xf32>, tensor<2x4x16xf32>
  }
  // Declined: the matmul has another user; the addend is a full tensor, not a bias;
  // the addend broadcasts along another axis ([M, 1]); the addend widens the result; a
  // [1, N] bias raises a vector's product [N] to rank 2 (found by fuzz seed 1287).
  func.func @keep(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %full: tensor<4x16xf32>, %col: tensor<4x1xf32>, %wide: tensor<3x1x16xf32>, %v: tensor<8xf32>, %b2: tensor<1x16xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<3x4x16xf32>, tensor<1x16xf32>) {
    %b = "graph.constant"() <{value = dense<1.0> : tensor<16xf32>}> : () -> tensor<16xf32>
    %m1 = "graph.matmul"(%x, %w) {src = ["shared"]} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
    %y1 = "graph.add"(%m1, %b) {src = ["add_shared"]} : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
    %m2 = "graph.matmul"(%x, %w) {src = ["mm_full"]} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
    %y2 = "graph.add"(%m2, %full) {src = ["add_full"]} : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
    %m3 = "graph.matmul"(%x, %w) {src = ["mm_col"]} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
    %y3 = "graph.add"(%m3, %col) {src = ["add_col"]} : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
    %m4 = "graph.matmul"(%x, %w) {src = ["mm_wide"]} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
    %y4 = "graph.add"(%m4, %wide) {src = ["add_wide"]} : (tensor<4x16xf32>, tensor<3x1x16xf32>) -> tensor<3x4x16xf32>
    %m5 = "graph.matmul"(%v, %w) {src = ["mm_vec"]} : (tensor<8xf32>, tensor<8x16xf32>) -> tensor<16xf32>
    %y5 = "graph.add"(%m5, %b2) {src = ["add_rank_up"]} : (tensor<16xf32>, tensor<1x16xf32>) -> tensor<1x16xf32>
    func.return %m1, %y1, %y2, %y3, %y4, %y5 : tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<3x4x16xf32>, tensor<1x16xf32>
  }
}

// CHECK-LABEL: func.func @main
// CHECK-NEXT:  %[[Y:.*]] = "graph.matmul_bias"(%x, %w, %b) {src = ["mm", "bias"]} : (tensor<2x4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<2x4x16xf32>
// CHECK-NEXT:  %[[Y2:.*]] = "graph.matmul_bias"(%x, %w, %b2) {src = ["mm2", "bias2"]} : (tensor<2x4x8xf32>, tensor<8x16xf32>, tensor<1x16xf32>) -> tensor<2x4x16xf32>
// CHECK-NEXT:  func.return %[[Y]], %[[Y2]]

// CHECK-LABEL: func.func @keep
// CHECK-NOT:   "graph.matmul_bias"
// CHECK:       "graph.add"({{.*}}) {src = ["add_shared"]}
// CHECK:       "graph.add"({{.*}}) {src = ["add_full"]}
// CHECK:       "graph.add"({{.*}}) {src = ["add_col"]}
// CHECK:       "graph.add"({{.*}}) {src = ["add_wide"]}
// CHECK:       "graph.add"({{.*}}) {src = ["add_rank_up"]}
