// RUN: graphopt opt %s -p canonicalize | filecheck %s

builtin.module {
  // identity, x * 1, a transpose pair and a dead op all go in one pass.
  func.func @chain(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
    %one = "graph.constant"() <{value = dense<1.0> : tensor<f32>}> : () -> tensor<f32>
    %i = "graph.identity"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    %m = "graph.mul"(%i, %one) : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
    %t = "graph.transpose"(%m) <{perm = array<i64: 1, 0>}> : (tensor<2x3xf32>) -> tensor<3x2xf32>
    %u = "graph.transpose"(%t) <{perm = array<i64: 1, 0>}> : (tensor<3x2xf32>) -> tensor<2x3xf32>
    %dead = "graph.exp"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    %y = "graph.relu"(%u) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    func.return %y : tensor<2x3xf32>
  }
  // Shape of a static tensor folds, and so does arithmetic on it.
  func.func @shape(%x: tensor<4x5xf32>) -> tensor<2xi64> {
    %s = "graph.shape"(%x) : (tensor<4x5xf32>) -> tensor<2xi64>
    %two = "graph.constant"() <{value = dense<2> : tensor<i64>}> : () -> tensor<i64>
    %d = "graph.mul"(%s, %two) : (tensor<2xi64>, tensor<i64>) -> tensor<2xi64>
    func.return %d : tensor<2xi64>
  }
  // x * 2 is not an identity: it stays.
  func.func @keep(%x: tensor<2xf32>) -> tensor<2xf32> {
    %two = "graph.constant"() <{value = dense<2.0> : tensor<f32>}> : () -> tensor<f32>
    %m = "graph.mul"(%x, %two) : (tensor<2xf32>, tensor<f32>) -> tensor<2xf32>
    func.return %m : tensor<2xf32>
  }
}

// CHECK-LABEL: func.func @chain
// CHECK-NEXT:    %[[Y:.*]] = "graph.relu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    func.return %[[Y]]
// CHECK-LABEL: func.func @shape
// CHECK-NEXT:    %[[C:.*]] = "graph.constant"() <{value = dense<[8, 10]> : tensor<2xi64>}>
// CHECK-NEXT:    func.return %[[C]]
// CHECK-LABEL: func.func @keep
// CHECK:         "graph.mul"(%x, %{{.*}})
