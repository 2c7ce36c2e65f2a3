// RUN: graphopt opt %s -p merge-parallel-matmuls | filecheck %s

builtin.module {
  // Three projections of x (two with a bias, one without: it joins with zeros) become one
  // matmul_bias of width 2 + 3 + 1 and a Split.
  func.func @qkv(%x: tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<4x3xf32>, tensor<4x1xf32>) {
    %wq = "graph.constant"() <{value = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>}> : () -> tensor<2x2xf32>
    %bq = "graph.constant"() <{value = dense<[0.5, -0.5]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %wk = "graph.constant"() <{value = dense<[[5.0, 6.0, 7.0], [8.0, 9.0, 10.0]]> : tensor<2x3xf32>}> : () -> tensor<2x3xf32>
    %bk = "graph.constant"() <{value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>}> : () -> tensor<3xf32>
    %wv = "graph.constant"() <{value = dense<[[11.0], [12.0]]> : tensor<2x1xf32>}> : () -> tensor<2x1xf32>
    %q = "graph.matmul_bias"(%x, %wq, %bq) {src = ["q"]} : (tensor<4x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
    %k = "graph.matmul_bias"(%x, %wk, %bk) {src = ["k"]} : (tensor<4x2xf32>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<4x3xf32>
    %v = "graph.matmul"(%x, %wv) {src = ["v"]} : (tensor<4x2xf32>, tensor<2x1xf32>) -> tensor<4x1xf32>
    func.return %q, %k, %v : tensor<4x2xf32>, tensor<4x3xf32>, tensor<4x1xf32>
  }
  // Declined: a weight that is not a constant; x used on the right; a single matmul.
  func.func @keep(%x: tensor<4x2xf32>, %w: tensor<2x2xf32>, %y: tensor<4x4xf32>) -> (tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>) {
    %c = "graph.constant"() <{value = dense<1.0> : tensor<2x2xf32>}> : () -> tensor<2x2xf32>
    %a = "graph.matmul"(%x, %w) {src = ["arg_weight"]} : (tensor<4x2xf32>, tensor<2x2xf32>) -> tensor<4x2xf32>
    %b = "graph.matmul"(%x, %c) {src = ["const_weight"]} : (tensor<4x2xf32>, tensor<2x2xf32>) -> tensor<4x2xf32>
    %d = "graph.matmul"(%y, %x) {src = ["x_right"]} : (tensor<4x4xf32>, tensor<4x2xf32>) -> tensor<4x2xf32>
    %e = "graph.relu"(%x) : (tensor<4x2xf32>) -> tensor<4x2xf32>
    func.return %a, %b, %d, %e : tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>
  }
  // A bias of one element broadcast over the columns (what fold-matmul-add accepts as
  // a bias) must be widened to the member's width before the biases are concatenated.
  func.func @broadcast_bias(%x: tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<4x3xf32>) {
    %w1 = "graph.constant"() <{value = dense<1.0> : tensor<2x2xf32>}> : () -> tensor<2x2xf32>
    %b1 = "graph.constant"() <{value = dense<0.5> : tensor<1xf32>}> : () -> tensor<1xf32>
    %w2 = "graph.constant"() <{value = dense<2.0> : tensor<2x3xf32>}> : () -> tensor<2x3xf32>
    %b2 = "graph.constant"() <{value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>}> : () -> tensor<3xf32>
    %m1 = "graph.matmul_bias"(%x, %w1, %b1) {src = ["m1"]} : (tensor<4x2xf32>, tensor<2x2xf32>, tensor<1xf32>) -> tensor<4x2xf32>
    %m2 = "graph.matmul_bias"(%x, %w2, %b2) {src = ["m2"]} : (tensor<4x2xf32>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<4x3xf32>
    func.return %m1, %m2 : tensor<4x2xf32>, tensor<4x3xf32>
  }
}

// The members' order (hence the column order) is free; each result is the Split's.
// CHECK-LABEL: func.func @qkv
// CHECK:       %[[M:.*]] = "graph.matmul_bias"(%x, %{{.*}}, %{{.*}}) {src = ["{{[qkv]}}", "{{[qkv]}}", "{{[qkv]}}"]} : (tensor<4x2xf32>, tensor<2x6xf32>, tensor<6xf32>) -> tensor<4x6xf32>
// CHECK-NEXT:  {{.*}} = "graph.split"(%[[M]], %{{.*}}) <{axis = 1 : i64}>
// CHECK-NOT:   "graph.matmul
// CHECK:       func.return {{.*}} : tensor<4x2xf32>, tensor<4x3xf32>, tensor<4x1xf32>

// CHECK-LABEL: func.func @keep
// CHECK-NOT:   "graph.split"
// CHECK:       "graph.matmul"(%x, %w) {src = ["arg_weight"]}
// CHECK:       "graph.matmul"(%x, %c) {src = ["const_weight"]}
// CHECK:       "graph.matmul"(%y, %x) {src = ["x_right"]}
// CHECK-NOT:   "graph.split"

// CHECK-LABEL: func.func @broadcast_bias
// CHECK:       "graph.matmul_bias"(%x, %{{.*}}, %{{.*}}) {{.*}} : (tensor<4x2xf32>, tensor<2x5xf32>, tensor<5xf32>) -> tensor<4x5xf32>
// CHECK-NEXT:  "graph.split"
