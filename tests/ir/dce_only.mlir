// RUN: graphopt opt %s -p dce | filecheck %s

// dce removes dead pure ops (also chains of them) but does not merge duplicates.
builtin.module {
  func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
    %0 = "graph.neg"(%a) : (tensor<4xf32>) -> tensor<4xf32>
    %1 = "graph.neg"(%a) : (tensor<4xf32>) -> tensor<4xf32>
    %d1 = "graph.exp"(%a) : (tensor<4xf32>) -> tensor<4xf32>
    %d2 = "graph.sqrt"(%d1) : (tensor<4xf32>) -> tensor<4xf32>
    %2 = "graph.sub"(%0, %1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    func.return %2 : tensor<4xf32>
  }
}

// CHECK:      "graph.neg"(%a)
// CHECK-NEXT: "graph.neg"(%a)
// CHECK-NEXT: "graph.sub"
// CHECK-NOT:  "graph.exp"
// CHECK-NOT:  "graph.sqrt"
