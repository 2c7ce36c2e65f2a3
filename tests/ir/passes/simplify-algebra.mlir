// RUN: graphopt opt %s -p simplify-algebra | filecheck %s

// x*1, 1*x, x+0, 0+x, x-0, x/1, x**1, neg(neg(x)) and not(not(b)) all become x (or b).
builtin.module {
  func.func @main(%x: tensor<4x8xf32>, %b: tensor<4xi1>) -> (tensor<4x8xf32>, tensor<4xi1>) {
    %one = "graph.constant"() <{value = dense<1.0> : tensor<f32>}> : () -> tensor<f32>
    %zero = "graph.constant"() <{value = dense<0.0> : tensor<f32>}> : () -> tensor<f32>
    %ones = "graph.constant"() <{value = dense<1.0> : tensor<8xf32>}> : () -> tensor<8xf32>
    %0 = "graph.mul"(%x, %one) {src = ["m1"]} : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
    %1 = "graph.mul"(%ones, %0) {src = ["m2"]} : (tensor<8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %2 = "graph.add"(%1, %zero) {src = ["a1"]} : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
    %3 = "graph.add"(%zero, %2) {src = ["a2"]} : (tensor<f32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %4 = "graph.sub"(%3, %zero) {src = ["s1"]} : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
    %5 = "graph.div"(%4, %one) {src = ["d1"]} : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
    %6 = "graph.pow"(%5, %one) {src = ["p1"]} : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
    %7 = "graph.neg"(%6) {src = ["n1"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %8 = "graph.neg"(%7) {src = ["n2"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %9 = "graph.relu"(%8) {src = ["relu"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %n1 = "graph.not"(%b) {src = ["not1"]} : (tensor<4xi1>) -> tensor<4xi1>
    %n2 = "graph.not"(%n1) {src = ["not2"]} : (tensor<4xi1>) -> tensor<4xi1>
    func.return %9, %n2 : tensor<4x8xf32>, tensor<4xi1>
  }
  func.func @keep(%v: tensor<8xf32>, %x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) {
    %ones = "graph.constant"() <{value = dense<1.0> : tensor<4x8xf32>}> : () -> tensor<4x8xf32>
    %one = "graph.constant"() <{value = dense<1.0> : tensor<f32>}> : () -> tensor<f32>
    %zero = "graph.constant"() <{value = dense<0.0> : tensor<f32>}> : () -> tensor<f32>
    %two = "graph.constant"() <{value = dense<2.0> : tensor<f32>}> : () -> tensor<f32>
    %mixed = "graph.constant"() <{value = dense<[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0]> : tensor<8xf32>}> : () -> tensor<8xf32>
    %0 = "graph.mul"(%v, %ones) {src = ["broadcasting_mul"]} : (tensor<8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %1 = "graph.sub"(%zero, %x) {src = ["zero_minus"]} : (tensor<f32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %2 = "graph.div"(%one, %x) {src = ["one_over"]} : (tensor<f32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %3 = "graph.mul"(%x, %zero) {src = ["times_zero"]} : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
    %4 = "graph.mul"(%x, %mixed) {src = ["not_all_ones"]} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    %r1 = "graph.reciprocal"(%x) {src = ["rec1"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %5 = "graph.reciprocal"(%r1) {src = ["rec2"]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    func.return %0, %1, %2, %3, %4, %5 : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
  }

  // torch.stack then a sum over the stacked axis (SKNet's branches, weighted by a softmax
  // over them): the sum of the branches, each times its weight, with no 5-D tensor.
  func.func @stack(%a: tensor<1x8x4x4xf32>, %b: tensor<1x8x4x4xf32>, %w: tensor<1x2x8x1x1xf32>) -> (tensor<1x8x4x4xf32>, tensor<1x8x4x4xf32>) {
    %one = "graph.constant"() <{value = dense<1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %ua = "graph.unsqueeze"(%a, %one) {src = ["ua"]} : (tensor<1x8x4x4xf32>, tensor<1xi64>) -> tensor<1x1x8x4x4xf32>
    %ub = "graph.unsqueeze"(%b, %one) {src = ["ub"]} : (tensor<1x8x4x4xf32>, tensor<1xi64>) -> tensor<1x1x8x4x4xf32>
    %s = "graph.concat"(%ua, %ub) <{axis = 1 : i64}> {src = ["stack"]} : (tensor<1x1x8x4x4xf32>, tensor<1x1x8x4x4xf32>) -> tensor<1x2x8x4x4xf32>
    %gap = "graph.reduce_sum"(%s, %one) <{keepdims = 0 : i64}> {src = ["branch_sum"]} : (tensor<1x2x8x4x4xf32>, tensor<1xi64>) -> tensor<1x8x4x4xf32>
    %m = "graph.mul"(%s, %w) {src = ["weigh"]} : (tensor<1x2x8x4x4xf32>, tensor<1x2x8x1x1xf32>) -> tensor<1x2x8x4x4xf32>
    %y = "graph.reduce_sum"(%m, %one) <{keepdims = 0 : i64}> {src = ["select"]} : (tensor<1x2x8x4x4xf32>, tensor<1xi64>) -> tensor<1x8x4x4xf32>
    func.return %gap, %y : tensor<1x8x4x4xf32>, tensor<1x8x4x4xf32>
  }

  // ResNeSt's split attention: the stack is a Reshape of the channels into radix groups;
  // its entries are slices of the channels.
  func.func @radix(%x: tensor<1x16x4x4xf32>) -> tensor<1x8x4x4xf32> {
    %one = "graph.constant"() <{value = dense<1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %shape = "graph.constant"() <{value = dense<[1, 2, 8, 4, 4]> : tensor<5xi64>}> : () -> tensor<5xi64>
    %r = "graph.reshape"(%x, %shape) {src = ["radix"]} : (tensor<1x16x4x4xf32>, tensor<5xi64>) -> tensor<1x2x8x4x4xf32>
    %y = "graph.reduce_sum"(%r, %one) <{keepdims = 0 : i64}> {src = ["gap"]} : (tensor<1x2x8x4x4xf32>, tensor<1xi64>) -> tensor<1x8x4x4xf32>
    func.return %y : tensor<1x8x4x4xf32>
  }
}

// CHECK:      func.func @main
// CHECK-NOT:  "graph.mul"
// CHECK-NOT:  "graph.add"
// CHECK-NOT:  "graph.sub"
// CHECK-NOT:  "graph.div"
// CHECK-NOT:  "graph.pow"
// CHECK-NOT:  "graph.neg"
// CHECK-NOT:  "graph.not"
// CHECK:      %[[R:.*]] = "graph.relu"(%x) {src = ["relu"]}
// CHECK-NOT:  "graph.not"
// CHECK:      func.return %[[R]], %b

// Not identities: x * ones that broadcasts x to a larger shape, 0 - x, 1 / x, x * 0
// (NaN * 0 is NaN), a constant that is not all ones, 1/(1/x) (not exact in floats).
// CHECK:      func.func @keep
// CHECK:      "graph.mul"(%v, %{{.*}}) {src = ["broadcasting_mul"]}
// CHECK:      "graph.sub"(%{{.*}}, %x) {src = ["zero_minus"]}
// CHECK:      "graph.div"(%{{.*}}, %x) {src = ["one_over"]}
// CHECK:      "graph.mul"(%x, %{{.*}}) {src = ["times_zero"]}
// CHECK:      "graph.mul"(%x, %{{.*}}) {src = ["not_all_ones"]}
// CHECK:      "graph.reciprocal"(%x)
// CHECK:      "graph.reciprocal"

// CHECK:      func.func @stack
// CHECK-NOT:  "graph.reduce_sum"
// CHECK:      %[[GAP:.*]] = "graph.add"(%a, %b) {src = ["branch_sum"]}
// CHECK:      %[[W0:.*]] = "graph.squeeze"
// CHECK:      %[[A0:.*]] = "graph.mul"(%a, %[[W0]]) {src = ["select"]} : (tensor<1x8x4x4xf32>, tensor<1x8x1x1xf32>) -> tensor<1x8x4x4xf32>
// CHECK:      %[[A1:.*]] = "graph.mul"(%b,
// CHECK:      %[[Y:.*]] = "graph.add"(%[[A0]], %[[A1]]) {src = ["select"]}
// CHECK-NOT:  "graph.reduce_sum"
// CHECK:      func.return %[[GAP]], %[[Y]]

// CHECK:      func.func @radix
// CHECK:      %[[S0:.*]] = "graph.slice"(%x, {{.*}} -> tensor<1x8x4x4xf32>
// CHECK:      %[[S1:.*]] = "graph.slice"(%x, {{.*}} -> tensor<1x8x4x4xf32>
// CHECK:      %[[Y:.*]] = "graph.add"(%[[S0]], %[[S1]]) {src = ["gap"]}
// CHECK:      func.return %[[Y]]
