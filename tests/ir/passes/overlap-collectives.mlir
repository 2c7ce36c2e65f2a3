// RUN: graphopt opt %s -p overlap-collectives | filecheck %s

// A gradient all-reduce written after the compute it does not depend on rises to just after
// its operand's producer (here: the function's start), never above the collective before
// it; its wait sinks to just before its first reader. The compute keeps its order.
builtin.module {
  func.func @main(%x: tensor<4x4xf32>, %g: tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<4x4xf32>) {
    %a = "graph.relu"(%x) {src = ["relu"]} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %h = "graph.neg"(%g) {src = ["grad"]} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %b = "graph.sigmoid"(%a) {src = ["sigmoid"]} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %c = "graph.tanh"(%b) {src = ["tanh"]} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %r1 = "graph.all_reduce"(%g) <{reduce_op = "sum", ranks = array<i64: 0, 1>}> {src = ["ar1"]} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %r2 = "graph.all_reduce"(%h) <{reduce_op = "sum", ranks = array<i64: 0, 1>}> {src = ["ar2"]} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %w1 = "graph.wait"(%r1) {src = ["w1"]} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %w2 = "graph.wait"(%r2) {src = ["w2"]} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %d = "graph.exp"(%c) {src = ["exp"]} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %e = "graph.add"(%d, %w1) {src = ["use1"]} : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
    %f = "graph.add"(%e, %w2) {src = ["use2"]} : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
    func.return %f, %c : tensor<4x4xf32>, tensor<4x4xf32>
  }
}

// CHECK:      func.func @main
// CHECK-NEXT:   "graph.all_reduce"(%{{.*}}) {{.*}}src = ["ar1"]
// CHECK-NEXT:   "graph.relu"
// CHECK-NEXT:   "graph.neg"
// CHECK-NEXT:   "graph.all_reduce"(%{{.*}}) {{.*}}src = ["ar2"]
// CHECK-NEXT:   "graph.sigmoid"
// CHECK-NEXT:   "graph.tanh"
// CHECK-NEXT:   "graph.exp"
// CHECK-NEXT:   "graph.wait"{{.*}}src = ["w1"]
// CHECK-NEXT:   "graph.add"{{.*}}src = ["use1"]
// CHECK-NEXT:   "graph.wait"{{.*}}src = ["w2"]
// CHECK-NEXT:   "graph.add"{{.*}}src = ["use2"]
