// RUN: graphopt opt %s -p fold-shapes | filecheck %s

// The Shape/Gather/Unsqueeze/Concat chain an exporter writes for a reshape target
// collapses to one constant once x's shape is static; the reshape then reads it.
builtin.module {
  func.func @main(%x: tensor<2x16x64xf32>) -> (tensor<2x16x4x16xf32>, tensor<i64>, tensor<2xi64>) {
    %s = "graph.shape"(%x) {src = ["shape"]} : (tensor<2x16x64xf32>) -> tensor<3xi64>
    %i0 = "graph.constant"() <{value = dense<0> : tensor<i64>}> : () -> tensor<i64>
    %i1 = "graph.constant"() <{value = dense<1> : tensor<i64>}> : () -> tensor<i64>
    %b = "graph.gather"(%s, %i0) <{axis = 0 : i64}> {src = ["g0"]} : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
    %n = "graph.gather"(%s, %i1) <{axis = 0 : i64}> {src = ["g1"]} : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
    %ax = "graph.constant"() <{value = dense<0> : tensor<1xi64>}> : () -> tensor<1xi64>
    %ub = "graph.unsqueeze"(%b, %ax) {src = ["u0"]} : (tensor<i64>, tensor<1xi64>) -> tensor<1xi64>
    %un = "graph.unsqueeze"(%n, %ax) {src = ["u1"]} : (tensor<i64>, tensor<1xi64>) -> tensor<1xi64>
    %hd = "graph.constant"() <{value = dense<[4, 16]> : tensor<2xi64>}> : () -> tensor<2xi64>
    %t = "graph.concat"(%ub, %un, %hd) <{axis = 0 : i64}> {src = ["cat"]} : (tensor<1xi64>, tensor<1xi64>, tensor<2xi64>) -> tensor<4xi64>
    %r = "graph.reshape"(%x, %t) {src = ["reshape"]} : (tensor<2x16x64xf32>, tensor<4xi64>) -> tensor<2x16x4x16xf32>
    %sz = "graph.size"(%x) {src = ["size"]} : (tensor<2x16x64xf32>) -> tensor<i64>
    %sl = "graph.shape"(%x) <{start = 1 : i64}> {src = ["tail"]} : (tensor<2x16x64xf32>) -> tensor<2xi64>
    func.return %r, %sz, %sl : tensor<2x16x4x16xf32>, tensor<i64>, tensor<2xi64>
  }
  func.func @data() -> tensor<512xf32> {
    %c = "graph.constant"() <{value = dense<1.0> : tensor<512xf32>}> : () -> tensor<512xf32>
    %d = "graph.add"(%c, %c) {src = ["big"]} : (tensor<512xf32>, tensor<512xf32>) -> tensor<512xf32>
    func.return %d : tensor<512xf32>
  }
}

// CHECK:      func.func @main
// CHECK-NOT:  "graph.shape"
// CHECK-NOT:  "graph.gather"
// CHECK-NOT:  "graph.unsqueeze"
// CHECK-NOT:  "graph.concat"
// CHECK:      %[[T:.*]] = "graph.constant"() <{value = dense<[2, 16, 4, 16]> : tensor<4xi64>}> {src = ["cat"]}
// CHECK-NEXT: %[[R:.*]] = "graph.reshape"(%x, %[[T]])
// CHECK-NEXT: %[[SZ:.*]] = "graph.constant"() <{value = dense<2048> : tensor<i64>}> {src = ["size"]}
// CHECK-NEXT: %[[SL:.*]] = "graph.constant"() <{value = dense<[16, 64]> : tensor<2xi64>}> {src = ["tail"]}
// CHECK-NEXT: func.return %[[R]], %[[SZ]], %[[SL]]
// CHECK-NOT:  "graph.size"

// Constant data larger than a shape (more than 256 elements) is left to fold-constants.
// CHECK:      func.func @data
// CHECK:      "graph.add"(%{{.*}}, %{{.*}}) {src = ["big"]}
