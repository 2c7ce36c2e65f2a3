// RUN: graphopt opt %s -p decompose-einsum | filecheck %s

builtin.module {
  // Funnel's attention scores: batch b n, rows i, contracted d, columns j.
  func.func @scores(%q: tensor<2x5x4x8xf32>, %k: tensor<2x6x4x8xf32>) -> tensor<2x4x5x6xf32> {
    %s = "graph.einsum"(%q, %k) <{equation = "bind,bjnd->bnij"}> {src = ["e1"]} : (tensor<2x5x4x8xf32>, tensor<2x6x4x8xf32>) -> tensor<2x4x5x6xf32>
    func.return %s : tensor<2x4x5x6xf32>
  }
  // Two contracted indices (j, l) merge into one K of 8, the free i and k into rows.
  func.func @merged(%a: tensor<3x4x2x5xf32>, %b: tensor<4x2x7xf32>) -> tensor<3x5x7xf32> {
    %y = "graph.einsum"(%a, %b) <{equation = "ijlk,jlm->ikm"}> {src = ["e2"]} : (tensor<3x4x2x5xf32>, tensor<4x2x7xf32>) -> tensor<3x5x7xf32>
    func.return %y : tensor<3x5x7xf32>
  }
  // A trace, and an index summed out of one operand, stay Einsums.
  func.func @keep(%a: tensor<3x3xf32>, %b: tensor<3x4xf32>) -> (tensor<f32>, tensor<3xf32>) {
    %t = "graph.einsum"(%a) <{equation = "ii->"}> {src = ["e3"]} : (tensor<3x3xf32>) -> tensor<f32>
    %s = "graph.einsum"(%a, %b) <{equation = "ij,jk->i"}> {src = ["e4"]} : (tensor<3x3xf32>, tensor<3x4xf32>) -> tensor<3xf32>
    func.return %t, %s : tensor<f32>, tensor<3xf32>
  }
}

// CHECK-LABEL: func.func @scores
// CHECK:       %[[Q:.*]] = "graph.transpose"(%q) <{perm = array<i64: 0, 2, 1, 3>}> {src = ["e1"]} : (tensor<2x5x4x8xf32>) -> tensor<2x4x5x8xf32>
// CHECK-NEXT:  %[[K:.*]] = "graph.transpose"(%k) <{perm = array<i64: 0, 2, 3, 1>}> {src = ["e1"]} : (tensor<2x6x4x8xf32>) -> tensor<2x4x8x6xf32>
// CHECK-NEXT:  %[[S:.*]] = "graph.matmul"(%[[Q]], %[[K]]) {src = ["e1"]} : (tensor<2x4x5x8xf32>, tensor<2x4x8x6xf32>) -> tensor<2x4x5x6xf32>
// CHECK-NEXT:  func.return %[[S]]

// CHECK-LABEL: func.func @merged
// CHECK:       "graph.transpose"(%a) <{perm = array<i64: 0, 3, 1, 2>}>
// CHECK:       "graph.reshape"
// CHECK-SAME:  -> tensor<15x8xf32>
// CHECK:       "graph.reshape"(%b,
// CHECK-SAME:  -> tensor<8x7xf32>
// CHECK:       "graph.matmul"
// CHECK-SAME:  -> tensor<15x7xf32>
// CHECK:       "graph.reshape"
// CHECK-SAME:  -> tensor<3x5x7xf32>
// CHECK-NEXT:  func.return

// CHECK-LABEL: func.func @keep
// CHECK:       "graph.einsum"(%a) <{equation = "ii->"}>
// CHECK:       "graph.einsum"(%a, %b) <{equation = "ij,jk->i"}>
