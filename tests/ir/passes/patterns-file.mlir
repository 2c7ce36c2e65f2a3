// RUN: graphopt opt %s --load-patterns ../../../examples/silu.patterns -p recognize-silu-text | filecheck %s

// The rules of a patterns file (text, no code runs): Mul(x, Sigmoid(x)) -> Swish(x) with
// the operands either way, Log(Add(Exp(x), 1.0)) -> Softplus(x), Neg(Neg(x)) -> x.
builtin.module {
  func.func @main(%x: tensor<2x8xf32>, %z: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>) {
    %s = "graph.sigmoid"(%x) {src = ["sig"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %y = "graph.mul"(%s, %x) {src = ["silu"]} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %n = "graph.neg"(%x) {src = ["n1"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %nn = "graph.neg"(%n) {src = ["n2"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %one = "graph.constant"() <{value = dense<1.0> : tensor<f32>}> : () -> tensor<f32>
    %e = "graph.exp"(%x) {src = ["e"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %a = "graph.add"(%one, %e) {src = ["a"]} : (tensor<f32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %l = "graph.log"(%a) {src = ["l"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    // not rules: the sigmoid of another value, and 1.1 instead of 1
    %s2 = "graph.sigmoid"(%z) {src = ["sig_z"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %y2 = "graph.mul"(%x, %s2) {src = ["not_silu"]} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %c = "graph.constant"() <{value = dense<1.1> : tensor<f32>}> : () -> tensor<f32>
    %a2 = "graph.add"(%e, %c) {src = ["not_one"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %l2 = "graph.log"(%a2) {src = ["l2"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    func.return %y, %nn, %l, %y2, %l2 : tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>
  }
}

// CHECK:      %y = "graph.swish"(%x) {src = ["sig", "silu"]}
// CHECK-NOT:  "graph.neg"
// CHECK:      "graph.softplus"(%x) {src = ["e", "a", "l"]}
// CHECK:      "graph.mul"(%x, %{{.*}}) {src = ["not_silu"]}
// CHECK:      "graph.log"(%{{.*}}) {src = ["l2"]}
// CHECK:      func.return %y, %x, %l
