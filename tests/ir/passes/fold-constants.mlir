// RUN: graphopt opt %s -p fold-constants | filecheck %s
// RUN: graphopt opt %s -p "fold-constants{max-elements=4}" | filecheck %s --check-prefix=CAP

// sqrt(2) of a constant folds to a constant; add(constant, constant) folds, then the
// op using it folds too (the walker revisits); an op reading a function argument stays.
builtin.module {
  func.func @main(%x: tensor<8xf32>) -> (tensor<f32>, tensor<8xf32>, tensor<8xf32>) {
    %a = "graph.constant"() <{value = dense<2.0> : tensor<f32>}> {src = ["a"]} : () -> tensor<f32>
    %b = "graph.sqrt"(%a) {src = ["s"]} : (tensor<f32>) -> tensor<f32>
    %c = "graph.constant"() <{value = dense<1.0> : tensor<8xf32>}> {src = ["c"]} : () -> tensor<8xf32>
    %d = "graph.add"(%c, %c) {src = ["d"]} : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
    %e = "graph.mul"(%d, %d) {src = ["e"]} : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
    %f = "graph.add"(%x, %e) {src = ["f"]} : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
    func.return %b, %e, %f : tensor<f32>, tensor<8xf32>, tensor<8xf32>
  }
  func.func @grow() -> tensor<8xf32> {
    %s = "graph.constant"() <{value = dense<3.0> : tensor<f32>}> {src = ["s3"]} : () -> tensor<f32>
    %shape = "graph.constant"() <{value = dense<8> : tensor<1xi64>}> {src = ["shape"]} : () -> tensor<1xi64>
    %g = "graph.expand"(%s, %shape) {src = ["grow"]} : (tensor<f32>, tensor<1xi64>) -> tensor<8xf32>
    func.return %g : tensor<8xf32>
  }
  func.func @impure() -> tensor<4xf32> {
    %z = "graph.constant"() <{value = dense<0.0> : tensor<4xf32>}> : () -> tensor<4xf32>
    %r = "graph.random_uniform_like"(%z) <{seed = 1.0 : f32}> {src = ["rand"]} : (tensor<4xf32>) -> tensor<4xf32>
    func.return %r : tensor<4xf32>
  }
}

// CHECK:      func.func @main
// CHECK-NOT:  "graph.sqrt"
// CHECK-DAG:  %[[B:.*]] = "graph.constant"() <{value = dense<1.41421354> : tensor<f32>}> {src = ["s"]}
// CHECK-DAG:  %[[E:.*]] = "graph.constant"() <{value = dense<4.000000e+00> : tensor<8xf32>}> {src = ["e"]}
// CHECK:      %[[F:.*]] = "graph.add"(%x, %[[E]]) {src = ["f"]}
// CHECK-NOT:  "graph.mul"
// CHECK:      func.return %[[B]], %[[E]], %[[F]]

// An Expand of constants folds too (no cap by default).
// CHECK:      func.func @grow
// CHECK:      "graph.constant"() <{value = dense<3.000000e+00> : tensor<8xf32>}> {src = ["grow"]}

// A random op is impure: never folded, even with constant inputs.
// CHECK:      func.func @impure
// CHECK:      "graph.random_uniform_like"

// With max-elements=4 an 8-element result still folds when no operand is smaller than it
// (d and e: a weight computed from weights does not grow the model), but not when it is
// larger than all it reads (the Expand of a scalar).
// CAP:      func.func @main
// CAP-NOT:  "graph.mul"
// CAP:      "graph.add"(%x,
// CAP:      func.func @grow
// CAP:      "graph.expand"

