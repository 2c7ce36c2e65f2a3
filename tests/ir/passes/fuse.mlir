// RUN: graphopt opt %s -p fuse | filecheck %s
// RUN: graphopt opt %s -p "fuse{max-ops=2}" | filecheck %s --check-prefix=CAP

builtin.module {
  // An elementwise chain exp -> relu -> neg -> tanh becomes one fused op.
  func.func @elementwise(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %0 = "graph.exp"(%x) {src = ["e0"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %1 = "graph.relu"(%0) {src = ["e1"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %2 = "graph.neg"(%1) {src = ["e2"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %3 = "graph.tanh"(%2) {src = ["e3"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    func.return %3 : tensor<4x8xf32>
  }
  // A matmul with its epilogue (bias add with a small constant cloned inside, relu).
  func.func @cube(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>) -> tensor<4x16xf32> {
    %b = "graph.constant"() <{value = dense<0.5> : tensor<16xf32>}> : () -> tensor<16xf32>
    %m = "graph.matmul"(%x, %w) {src = ["mm"]} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
    %a = "graph.add"(%m, %b) {src = ["bias"]} : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
    %r = "graph.relu"(%a) {src = ["act"]} : (tensor<4x16xf32>) -> tensor<4x16xf32>
    func.return %r : tensor<4x16xf32>
  }
  // A reduction takes its elementwise prologue (exp) and epilogue (log).
  func.func @reduce(%x: tensor<4x8xf32>) -> tensor<4x1xf32> {
    %axes = "graph.constant"() <{value = dense<1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %e = "graph.exp"(%x) {src = ["pro"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %s = "graph.reduce_sum"(%e, %axes) {src = ["sum"]} : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<4x1xf32>
    %l = "graph.log"(%s) {src = ["epi"]} : (tensor<4x1xf32>) -> tensor<4x1xf32>
    func.return %l : tensor<4x1xf32>
  }
  // Not fused: a lone op; growth stops at a value with two users (relu -> {exp, neg});
  // a cube op's epilogue that broadcasts to a larger shape.
  func.func @keep(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %big: tensor<3x4x16xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<3x4x16xf32>) {
    %lone = "graph.sigmoid"(%x) {src = ["lone"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %m = "graph.matmul"(%x, %w) {src = ["mm2"]} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
    %r = "graph.relu"(%x) {src = ["shared"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %e = "graph.exp"(%r) {src = ["user1"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %n = "graph.neg"(%r) {src = ["user2"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %b = "graph.add"(%m, %big) {src = ["widening"]} : (tensor<4x16xf32>, tensor<3x4x16xf32>) -> tensor<3x4x16xf32>
    func.return %lone, %e, %n, %b : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<3x4x16xf32>
  }
}

// CHECK-LABEL: func.func @elementwise
// CHECK-NEXT:  %[[F:.*]] = "graph.fused"(%x) <{kind = "elementwise"}> ({
// CHECK-NEXT:  ^{{[a-z0-9]+}}(%[[A:[^:]+]]: tensor<4x8xf32>):
// CHECK-NEXT:    %[[E0:.*]] = "graph.exp"(%[[A]])
// CHECK-NEXT:    %[[E1:.*]] = "graph.relu"(%[[E0]])
// CHECK-NEXT:    %[[E2:.*]] = "graph.neg"(%[[E1]])
// CHECK-NEXT:    %[[E3:.*]] = "graph.tanh"(%[[E2]])
// CHECK-NEXT:    "graph.yield"(%[[E3]])
// CHECK-NEXT:  }) {src = ["e0", "e1", "e2", "e3"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK-NEXT:  func.return %[[F]]

// CHECK-LABEL: func.func @cube
// CHECK:       %[[C:.*]] = "graph.fused"(%x, %w) <{kind = "cube"}> ({
// CHECK-NEXT:  ^{{[a-z0-9]+}}(%[[X:[^:]+]]: tensor<4x8xf32>, %[[W:[^:]+]]: tensor<8x16xf32>):
// CHECK-NEXT:    %[[M:.*]] = "graph.matmul"(%[[X]], %[[W]])
// CHECK-NEXT:    %[[B:.*]] = "graph.constant"() <{value = dense<5.000000e-01> : tensor<16xf32>}>
// CHECK-NEXT:    %[[AD:.*]] = "graph.add"(%[[M]], %[[B]])
// CHECK-NEXT:    %[[R:.*]] = "graph.relu"(%[[AD]])
// CHECK-NEXT:    "graph.yield"(%[[R]])
// CHECK-NEXT:  }) {src = ["mm", "bias", "act"]}
// CHECK-NEXT:  func.return %[[C]]

// CHECK-LABEL: func.func @reduce
// CHECK-NOT:   "graph.exp"
// CHECK:       %[[RD:.*]] = "graph.fused"(%x) <{kind = "reduce"}> ({
// CHECK-NEXT:  ^
// CHECK-NEXT:    "graph.exp"
// CHECK-NEXT:    "graph.constant"
// CHECK-NEXT:    "graph.reduce_sum"
// CHECK-NEXT:    "graph.log"
// CHECK-NEXT:    "graph.yield"
// CHECK-NEXT:  }) {src = ["pro", "sum", "epi"]}
// CHECK-NEXT:  func.return %[[RD]]

// CHECK-LABEL: func.func @keep
// CHECK-NOT:   "graph.fused"
// CHECK:       "graph.sigmoid"(%x) {src = ["lone"]}
// CHECK:       "graph.matmul"(%x, %w) {src = ["mm2"]}
// CHECK:       "graph.relu"(%x) {src = ["shared"]}
// CHECK:       "graph.exp"
// CHECK:       "graph.neg"
// CHECK:       "graph.add"({{.*}}) {src = ["widening"]}
// CHECK-NOT:   "graph.fused"

// max-ops=2: the chain of four splits into two groups of two; the cube op keeps only its
// bias add, the relu is left outside; the reduction keeps its prologue only.
// CAP-LABEL: func.func @elementwise
// CAP-NEXT:  %[[G1:.*]] = "graph.fused"(%x) <{kind = "elementwise"}>
// CAP-COUNT-2: "graph.
// CAP:       }) {src = ["e0", "e1"]}
// CAP-NEXT:  %[[G2:.*]] = "graph.fused"(%[[G1]]) <{kind = "elementwise"}>
// CAP:       }) {src = ["e2", "e3"]}
// CAP-NEXT:  func.return %[[G2]]
// CAP-LABEL: func.func @cube
// CAP:       %[[C:.*]] = "graph.fused"(%x, %w) <{kind = "cube"}>
// CAP:       }) {src = ["mm", "bias"]}
// CAP-NEXT:  %[[R:.*]] = "graph.relu"(%[[C]]) {src = ["act"]}
// CAP-NEXT:  func.return %[[R]]
// CAP-LABEL: func.func @reduce
// CAP:       %[[RD:.*]] = "graph.fused"(%x) <{kind = "reduce"}>
// CAP:       }) {src = ["pro", "sum"]}
// CAP-NEXT:  %[[L:.*]] = "graph.log"(%[[RD]]) {src = ["epi"]}
// CAP-NEXT:  func.return %[[L]]
