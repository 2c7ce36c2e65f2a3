// RUN: graphopt opt %s -p simplify-transpose-reshape | filecheck %s

builtin.module {
  // transpose(transpose(x, [1,2,0]), [1,0,2]) is transpose(x, [2,1,0]); a pair that
  // composes to the identity disappears; a perm-less transpose reverses the axes.
  func.func @transposes(%x: tensor<2x3x4xf32>) -> (tensor<4x3x2xf32>, tensor<2x3x4xf32>, tensor<3x2x4xf32>) {
    %a = "graph.transpose"(%x) <{perm = array<i64: 1, 2, 0>}> {src = ["t1"]} : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32>
    %b = "graph.transpose"(%a) <{perm = array<i64: 1, 0, 2>}> {src = ["t2"]} : (tensor<3x4x2xf32>) -> tensor<4x3x2xf32>
    %c = "graph.transpose"(%x) <{perm = array<i64: 2, 0, 1>}> {src = ["t3"]} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
    %d = "graph.transpose"(%c) <{perm = array<i64: 1, 2, 0>}> {src = ["t4"]} : (tensor<4x2x3xf32>) -> tensor<2x3x4xf32>
    %e = "graph.transpose"(%x) {src = ["t5"]} : (tensor<2x3x4xf32>) -> tensor<4x3x2xf32>
    %f = "graph.transpose"(%e) <{perm = array<i64: 1, 2, 0>}> {src = ["t6"]} : (tensor<4x3x2xf32>) -> tensor<3x2x4xf32>
    func.return %b, %d, %f : tensor<4x3x2xf32>, tensor<2x3x4xf32>, tensor<3x2x4xf32>
  }
  // reshape -> flatten -> unsqueeze -> squeeze -> reshape collapses to one reshape of x.
  func.func @reshapes(%x: tensor<2x3x4xf32>) -> tensor<4x6xf32> {
    %s1 = "graph.constant"() <{value = dense<[6, 4]> : tensor<2xi64>}> : () -> tensor<2xi64>
    %a = "graph.reshape"(%x, %s1) {src = ["r1"]} : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<6x4xf32>
    %b = "graph.flatten"(%a) <{axis = 1 : i64}> {src = ["f1"]} : (tensor<6x4xf32>) -> tensor<6x4xf32>
    %ax = "graph.constant"() <{value = dense<0> : tensor<1xi64>}> : () -> tensor<1xi64>
    %c = "graph.unsqueeze"(%b, %ax) {src = ["u1"]} : (tensor<6x4xf32>, tensor<1xi64>) -> tensor<1x6x4xf32>
    %d = "graph.squeeze"(%c, %ax) {src = ["s1"]} : (tensor<1x6x4xf32>, tensor<1xi64>) -> tensor<6x4xf32>
    %s2 = "graph.constant"() <{value = dense<[4, 6]> : tensor<2xi64>}> : () -> tensor<2xi64>
    %e = "graph.reshape"(%d, %s2) {src = ["r2"]} : (tensor<6x4xf32>, tensor<2xi64>) -> tensor<4x6xf32>
    func.return %e : tensor<4x6xf32>
  }
  // ShuffleNet's channel shuffle (groups 2 of 3 channels) only reorders axis 1: a gather.
  func.func @shuffle(%x: tensor<1x6x2x2xf32>) -> tensor<1x6x2x2xf32> {
    %s1 = "graph.constant"() <{value = dense<[1, 2, 3, 2, 2]> : tensor<5xi64>}> : () -> tensor<5xi64>
    %a = "graph.reshape"(%x, %s1) {src = ["c1"]} : (tensor<1x6x2x2xf32>, tensor<5xi64>) -> tensor<1x2x3x2x2xf32>
    %b = "graph.transpose"(%a) <{perm = array<i64: 0, 2, 1, 3, 4>}> {src = ["c2"]} : (tensor<1x2x3x2x2xf32>) -> tensor<1x3x2x2x2xf32>
    %s2 = "graph.constant"() <{value = dense<[1, 6, 2, 2]> : tensor<4xi64>}> : () -> tensor<4xi64>
    %c = "graph.reshape"(%b, %s2) {src = ["c3"]} : (tensor<1x3x2x2x2xf32>, tensor<4xi64>) -> tensor<1x6x2x2xf32>
    func.return %c : tensor<1x6x2x2xf32>
  }
  // A transpose between reshapes, or a reshape of an elementwise op, is not a chain.
  func.func @keep(%x: tensor<2x3x4xf32>) -> tensor<12x2xf32> {
    %s1 = "graph.constant"() <{value = dense<[6, 4]> : tensor<2xi64>}> : () -> tensor<2xi64>
    %a = "graph.reshape"(%x, %s1) {src = ["k1"]} : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<6x4xf32>
    %b = "graph.transpose"(%a) <{perm = array<i64: 1, 0>}> {src = ["k2"]} : (tensor<6x4xf32>) -> tensor<4x6xf32>
    %c = "graph.relu"(%b) {src = ["k3"]} : (tensor<4x6xf32>) -> tensor<4x6xf32>
    %s2 = "graph.constant"() <{value = dense<[12, 2]> : tensor<2xi64>}> : () -> tensor<2xi64>
    %d = "graph.reshape"(%c, %s2) {src = ["k4"]} : (tensor<4x6xf32>, tensor<2xi64>) -> tensor<12x2xf32>
    func.return %d : tensor<12x2xf32>
  }
}

// CHECK-LABEL: func.func @transposes
// CHECK-DAG:   %[[B:.*]] = "graph.transpose"(%x) <{perm = array<i64: 2, 1, 0>}> {src = ["t1", "t2"]} : (tensor<2x3x4xf32>) -> tensor<4x3x2xf32>
// CHECK-DAG:   %[[F:.*]] = "graph.transpose"(%x) <{perm = array<i64: 1, 0, 2>}> {src = ["t5", "t6"]} : (tensor<2x3x4xf32>) -> tensor<3x2x4xf32>
// CHECK-NOT:   "graph.transpose"
// CHECK:       func.return %[[B]], %x, %[[F]]

// CHECK-LABEL: func.func @reshapes
// CHECK:       %[[S:.*]] = "graph.constant"() <{value = dense<[4, 6]> : tensor<2xi64>}>
// CHECK-NEXT:  %[[R:.*]] = "graph.reshape"(%x, %[[S]]) {{.*}} : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<4x6xf32>
// CHECK-NOT:   "graph.flatten"
// CHECK-NOT:   "graph.squeeze"
// CHECK-NOT:   "graph.unsqueeze"
// CHECK:       func.return %[[R]]

// CHECK-LABEL: func.func @shuffle
// CHECK:       %[[I:.*]] = "graph.constant"() <{value = dense<[0, 3, 1, 4, 2, 5]> : tensor<6xi64>}>
// CHECK-NEXT:  %[[G:.*]] = "graph.gather"(%x, %[[I]]) <{axis = 1 : i64}> {src = ["c1", "c2", "c3"]} : (tensor<1x6x2x2xf32>, tensor<6xi64>) -> tensor<1x6x2x2xf32>
// CHECK-NEXT:  func.return %[[G]]

// CHECK-LABEL: func.func @keep
// CHECK:       "graph.reshape"(%x,
// CHECK:       "graph.transpose"
// CHECK:       "graph.relu"
// CHECK:       "graph.reshape"
