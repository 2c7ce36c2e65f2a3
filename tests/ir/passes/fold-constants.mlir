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

// A random op is impure: never folded, even with constant inputs.
// CHECK:      func.func @impure
// CHECK:      "graph.random_uniform_like"

// With max-elements=4 the 8-element results are not folded; the scalar one is.
// CAP:      "graph.constant"() <{value = dense<1.41421354> : tensor<f32>}>
// CAP:      "graph.add"(%{{.*}}, %{{.*}}) {src = ["d"]}
// CAP:      "graph.mul"
// CAP:      "graph.add"(%x,

