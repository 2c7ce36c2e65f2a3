// RUN: graphopt opt %s -p cse,dce | filecheck %s
// RUN: graphopt opt %s -p canonicalize,cse | filecheck %s

// Two identical pure graph.add ops become one; the unused graph.exp disappears.
builtin.module {
  func.func @main(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
    %0 = "graph.add"(%a, %b) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    %1 = "graph.add"(%a, %b) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    %dead = "graph.exp"(%a) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    %2 = "graph.mul"(%0, %1) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    func.return %2 : tensor<2x3xf32>
  }
}

// CHECK:       func.func @main
// CHECK-NEXT:    %[[SUM:.*]] = "graph.add"(%a, %b)
// CHECK-NOT:     "graph.add"
// CHECK-NOT:     "graph.exp"
// CHECK-NEXT:    %[[P:.*]] = "graph.mul"(%[[SUM]], %[[SUM]])
// CHECK-NEXT:    func.return %[[P]] : tensor<2x3xf32>
