// RUN: graphopt opt %s -p recognize-swiglu | filecheck %s

builtin.module {
  // (a * sigmoid(a)) * b, b * (sigmoid(a) * a) and Swish(a) * b become graph.swiglu.
  func.func @main(%a: tensor<2x16xf32>, %b: tensor<2x16xf32>) -> (tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>) {
    %s = "graph.sigmoid"(%a) {src = ["sig"]} : (tensor<2x16xf32>) -> tensor<2x16xf32>
    %g = "graph.mul"(%a, %s) {src = ["silu"]} : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
    %y = "graph.mul"(%g, %b) {src = ["gate"]} : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
    %s2 = "graph.sigmoid"(%a) {src = ["sig2"]} : (tensor<2x16xf32>) -> tensor<2x16xf32>
    %g2 = "graph.mul"(%s2, %a) {src = ["silu2"]} : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
    %y2 = "graph.mul"(%b, %g2) {src = ["gate2"]} : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
    %w = "graph.swish"(%a) <{alpha = 1.5 : f32}> {src = ["swish"]} : (tensor<2x16xf32>) -> tensor<2x16xf32>
    %y3 = "graph.mul"(%w, %b) {src = ["gate3"]} : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
    func.return %y, %y2, %y3 : tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>
  }
  // Declined: b broadcasts (SwiGLU does not); the SiLU value has another user; the
  // sigmoid is of another tensor than the one it multiplies.
  func.func @keep(%a: tensor<2x16xf32>, %b: tensor<16xf32>, %c: tensor<2x16xf32>) -> (tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>) {
    %s = "graph.sigmoid"(%a) : (tensor<2x16xf32>) -> tensor<2x16xf32>
    %g = "graph.mul"(%a, %s) : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
    %y = "graph.mul"(%g, %b) {src = ["broadcast_b"]} : (tensor<2x16xf32>, tensor<16xf32>) -> tensor<2x16xf32>
    %s2 = "graph.sigmoid"(%a) : (tensor<2x16xf32>) -> tensor<2x16xf32>
    %g2 = "graph.mul"(%a, %s2) : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
    %y2 = "graph.mul"(%g2, %c) {src = ["shared_silu"]} : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
    %s3 = "graph.sigmoid"(%c) : (tensor<2x16xf32>) -> tensor<2x16xf32>
    %g3 = "graph.mul"(%a, %s3) : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
    %y3 = "graph.mul"(%g3, %c) {src = ["mixed"]} : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
    func.return %y, %y2, %g2, %y3 : tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>
  }
}

// CHECK-LABEL: func.func @main
// CHECK-DAG:   %[[Y:.*]] = "graph.swiglu"(%a, %b) {src = ["sig", "silu", "gate"]} : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
// CHECK-DAG:   %[[Y2:.*]] = "graph.swiglu"(%a, %b) {src = ["sig2", "silu2", "gate2"]}
// CHECK-DAG:   %[[Y3:.*]] = "graph.swiglu"(%a, %b) <{alpha = 1.500000e+00 : f32}> {src = ["swish", "gate3"]}
// CHECK:       func.return %[[Y]], %[[Y2]], %[[Y3]]

// CHECK-LABEL: func.func @keep
// CHECK-NOT:   "graph.swiglu"
// CHECK:       "graph.mul"({{.*}}) {src = ["broadcast_b"]}
// CHECK:       "graph.mul"({{.*}}) {src = ["shared_silu"]}
// CHECK:       "graph.mul"({{.*}}) {src = ["mixed"]}
// CHECK-NOT:   "graph.swiglu"
