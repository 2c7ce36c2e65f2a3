// RUN: graphopt opt %s | filecheck %s
// RUN: graphopt opt %s | grep -v '^$' | diff - <(grep -v -e '^//' -e '^$' %s)
// RUN: graphopt opt %s -p canonicalize,cse,dce | filecheck %s --check-prefix=OPT

// Loop and If as region ops: block arguments are the subgraph's inputs, graph.yield its
// outputs, and the bodies read outer values (%x, %2, %4) directly. Printing what was read
// gives the same text back.

builtin.module {
  func.func @main(%x: tensor<3xf32>) -> (tensor<3xf32>, tensor<?x3xf32>, tensor<3xf32>) {
    %0 = "graph.none"() : () -> none
    %1 = "graph.constant"() <{value = dense<4> : tensor<i64>}> {src = ["M"]} : () -> tensor<i64>
    %2 = "graph.constant"() <{value = dense<2.000000e+00> : tensor<f32>}> {src = ["two"]} : () -> tensor<f32>
    %3 = "graph.constant"() <{value = dense<0.000000e+00> : tensor<3xf32>}> {src = ["acc0"]} : () -> tensor<3xf32>
    %4, %5 = "graph.loop"(%1, %0, %3) ({
    ^bb0(%i: tensor<i64>, %cond_in: tensor<i1>, %acc_in: tensor<3xf32>):
      %6 = "graph.identity"(%cond_in) {src = ["cond_out"]} : (tensor<i1>) -> tensor<i1>
      %7 = "graph.mul"(%acc_in, %2) {src = ["m"]} : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
      %8 = "graph.add"(%7, %x) {src = ["acc_out"]} : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
      %9 = "graph.identity"(%8) {src = ["scan_out"]} : (tensor<3xf32>) -> tensor<3xf32>
      "graph.yield"(%6, %8, %9) : (tensor<i1>, tensor<3xf32>, tensor<3xf32>) -> ()
    }) {src = ["acc"]} : (tensor<i64>, none, tensor<3xf32>) -> (tensor<3xf32>, tensor<?x3xf32>)
    %10 = "graph.reduce_sum"(%x) <{keepdims = 0 : i64}> {src = ["s"]} : (tensor<3xf32>) -> tensor<f32>
    %11 = "graph.greater"(%10, %2) {src = ["c"]} : (tensor<f32>, tensor<f32>) -> tensor<i1>
    %12 = "graph.if"(%11) ({
      %13 = "graph.add"(%4, %x) {src = ["t"]} : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
      "graph.yield"(%13) : (tensor<3xf32>) -> ()
    }, {
      %14 = "graph.sub"(%4, %x) {src = ["e"]} : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
      "graph.yield"(%14) : (tensor<3xf32>) -> ()
    }) {src = ["y"]} : (tensor<i1>) -> tensor<3xf32>
    func.return %4, %5, %12 : tensor<3xf32>, tensor<?x3xf32>, tensor<3xf32>
  }
}

// CHECK:      "graph.loop"(%{{.*}}) ({
// CHECK-NEXT: ^bb0(%i: tensor<i64>, %cond_in: tensor<i1>, %acc_in: tensor<3xf32>):
// CHECK:      "graph.yield"
// CHECK:      -> (tensor<3xf32>, tensor<?x3xf32>)
// CHECK:      "graph.if"
// CHECK:      "graph.add"
// CHECK:      }, {
// CHECK:      "graph.sub"

// OPT: "graph.loop"
// OPT: "graph.yield"
// OPT: "graph.if"
// OPT: "graph.yield"
// OPT: "graph.yield"
