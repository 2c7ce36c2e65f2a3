// RUN: graphopt opt %s | filecheck %s
// RUN: graphopt opt %s | graphopt opt - | filecheck %s

builtin.module {
  func.func @main(%x: tensor<1x2x4x4xf32>, %w: tensor<3x2x3x3xf32>) -> tensor<1x12xf32> {
    %s = "graph.constant"() <{value = dense<[1, -1]> : tensor<2xi64>}> {src = ["shp"]} : () -> tensor<2xi64>
    %c = "graph.conv"(%x, %w) <{pads = array<i64: 0, 0, 0, 0>}> {src = ["conv1"]} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x2x2xf32>
    %r = "graph.relu"(%c) {src = ["relu1"]} : (tensor<1x3x2x2xf32>) -> tensor<1x3x2x2xf32>
    %f = "graph.reshape"(%r, %s) {src = ["flat"]} : (tensor<1x3x2x2xf32>, tensor<2xi64>) -> tensor<1x12xf32>
    func.return %f : tensor<1x12xf32>
  }
}

// CHECK:      func.func @main(%x: tensor<1x2x4x4xf32>, %w: tensor<3x2x3x3xf32>) -> tensor<1x12xf32> {
// CHECK-NEXT:   %[[S:.*]] = "graph.constant"() <{value = dense<[1, -1]> : tensor<2xi64>}> {src = ["shp"]} : () -> tensor<2xi64>
// CHECK-NEXT:   %[[C:.*]] = "graph.conv"(%x, %w) <{pads = array<i64: 0, 0, 0, 0>}> {src = ["conv1"]} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x2x2xf32>
// CHECK-NEXT:   %[[R:.*]] = "graph.relu"(%[[C]]) {src = ["relu1"]} : (tensor<1x3x2x2xf32>) -> tensor<1x3x2x2xf32>
// CHECK-NEXT:   %[[F:.*]] = "graph.reshape"(%[[R]], %[[S]]) {src = ["flat"]} : (tensor<1x3x2x2xf32>, tensor<2xi64>) -> tensor<1x12xf32>
// CHECK-NEXT:   func.return %[[F]] : tensor<1x12xf32>
