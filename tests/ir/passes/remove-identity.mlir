// RUN: graphopt opt %s -p remove-identity | filecheck %s

// Identity, inference Dropout (with its mask), a Cast to the same type, a Reshape to the
// same shape, the identity Transpose, a one-input Concat and a zero Pad all disappear.
builtin.module {
  func.func @main(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xi1>) {
    %0 = "graph.identity"(%x) {src = ["id"]} : (tensor<2x3xf32>) -> tensor<2x3xf32>
    %1, %m = "graph.dropout"(%0) {src = ["drop"]} : (tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xi1>)
    %2 = "graph.cast"(%1) <{to = 1 : i64}> {src = ["cast"]} : (tensor<2x3xf32>) -> tensor<2x3xf32>
    %s = "graph.constant"() <{value = dense<[2, 3]> : tensor<2xi64>}> : () -> tensor<2xi64>
    %3 = "graph.reshape"(%2, %s) {src = ["reshape"]} : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<2x3xf32>
    %4 = "graph.transpose"(%3) <{perm = array<i64: 0, 1>}> {src = ["transpose"]} : (tensor<2x3xf32>) -> tensor<2x3xf32>
    %5 = "graph.concat"(%4) <{axis = 0 : i64}> {src = ["concat"]} : (tensor<2x3xf32>) -> tensor<2x3xf32>
    %p = "graph.constant"() <{value = dense<0> : tensor<4xi64>}> : () -> tensor<4xi64>
    %6 = "graph.pad"(%5, %p) {src = ["pad"]} : (tensor<2x3xf32>, tensor<4xi64>) -> tensor<2x3xf32>
    %7 = "graph.relu"(%6) {src = ["relu"]} : (tensor<2x3xf32>) -> tensor<2x3xf32>
    func.return %7, %m : tensor<2x3xf32>, tensor<2x3xi1>
  }
  func.func @keep(%x: tensor<2x3xf32>, %y: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf16>, tensor<3x2xf32>, tensor<3x2xf32>, tensor<4x3xf32>, tensor<2x3xf32>) {
    %none = "graph.none"() : () -> none
    %train = "graph.constant"() <{value = dense<true> : tensor<i1>}> : () -> tensor<i1>
    %0 = "graph.dropout"(%x, %none, %train) {src = ["train_drop"]} : (tensor<2x3xf32>, none, tensor<i1>) -> tensor<2x3xf32>
    %1 = "graph.cast"(%x) <{to = 10 : i64}> {src = ["to_half"]} : (tensor<2x3xf32>) -> tensor<2x3xf16>
    %2 = "graph.transpose"(%x) <{perm = array<i64: 1, 0>}> {src = ["real_transpose"]} : (tensor<2x3xf32>) -> tensor<3x2xf32>
    %s = "graph.constant"() <{value = dense<[3, 2]> : tensor<2xi64>}> : () -> tensor<2xi64>
    %3 = "graph.reshape"(%x, %s) {src = ["real_reshape"]} : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<3x2xf32>
    %4 = "graph.concat"(%x, %y) <{axis = 0 : i64}> {src = ["real_concat"]} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<4x3xf32>
    %pp = "graph.constant"() <{value = dense<[1, 0, -1, 0]> : tensor<4xi64>}> : () -> tensor<4xi64>
    %5 = "graph.pad"(%x, %pp) {src = ["shift_pad"]} : (tensor<2x3xf32>, tensor<4xi64>) -> tensor<2x3xf32>
    %st = "graph.constant"() <{value = dense<-1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %en = "graph.constant"() <{value = dense<-100> : tensor<1xi64>}> : () -> tensor<1xi64>
    %ax = "graph.constant"() <{value = dense<1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %step = "graph.constant"() <{value = dense<-1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %6 = "graph.slice"(%5, %st, %en, %ax, %step) {src = ["reverse"]} : (tensor<2x3xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x3xf32>
    func.return %0, %1, %2, %3, %4, %6 : tensor<2x3xf32>, tensor<2x3xf16>, tensor<3x2xf32>, tensor<3x2xf32>, tensor<4x3xf32>, tensor<2x3xf32>
  }
  func.func @slice(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
    %st = "graph.constant"() <{value = dense<0> : tensor<1xi64>}> : () -> tensor<1xi64>
    %en = "graph.constant"() <{value = dense<3> : tensor<1xi64>}> : () -> tensor<1xi64>
    %ax = "graph.constant"() <{value = dense<1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %sl = "graph.slice"(%x, %st, %en, %ax) {src = ["slice_all"]} : (tensor<2x3xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x3xf32>
    %r = "graph.relu"(%sl) {src = ["relu"]} : (tensor<2x3xf32>) -> tensor<2x3xf32>
    func.return %r : tensor<2x3xf32>
  }
}

// CHECK:      func.func @main
// CHECK-NOT:  "graph.identity"
// CHECK-NOT:  "graph.dropout"
// CHECK-NOT:  "graph.cast"
// CHECK-NOT:  "graph.reshape"
// CHECK-NOT:  "graph.transpose"
// CHECK-NOT:  "graph.concat"
// CHECK-NOT:  "graph.pad"
// CHECK-DAG:  %[[M:.*]] = "graph.constant"() <{value = dense<true> : tensor<2x3xi1>}> {src = ["drop"]}
// CHECK-DAG:  %[[R:.*]] = "graph.relu"(%x) {src = ["relu"]}
// CHECK:      func.return %[[R]], %[[M]]

// Ops that do change something stay: training-mode Dropout, a Cast to another type,
// a real Transpose, a Reshape to another shape, a two-input Concat, a Pad that shifts
// (same shape, nonzero pads), a Slice that reverses (same shape, step -1).
// CHECK:      func.func @keep
// CHECK:      "graph.dropout"(%x, %{{.*}}, %{{.*}}) {src = ["train_drop"]}
// CHECK:      "graph.cast"(%x) <{to = 10 : i64}>
// CHECK:      "graph.transpose"(%x) <{perm = array<i64: 1, 0>}>
// CHECK:      "graph.reshape"(%x,
// CHECK:      "graph.concat"(%x, %y)
// CHECK:      "graph.pad"(%x, %{{.*}}) {src = ["shift_pad"]}
// CHECK:      "graph.slice"({{.*}}) {src = ["reverse"]}

// The docstring's "a Slice that changes nothing": same type, steps 1 (or absent).
// CHECK:      func.func @slice
// CHECK-NOT:  "graph.slice"
// CHECK:      "graph.relu"(%x)
