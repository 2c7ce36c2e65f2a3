// RUN: graphopt opt %s -p recognize-gelu | filecheck %s

builtin.module {
  // erf form, written three ways: (x/2) * (1 + erf(x / sqrt2)), (x * (1 + erf(x * 1/sqrt2))) * 0.5,
  // ((1 + erf(x / sqrt2)) * 0.5) * x.
  func.func @erf(%x: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>) {
    %half = "graph.constant"() <{value = dense<0.5> : tensor<f32>}> : () -> tensor<f32>
    %two = "graph.constant"() <{value = dense<2.0> : tensor<f32>}> : () -> tensor<f32>
    %one = "graph.constant"() <{value = dense<1.0> : tensor<f32>}> : () -> tensor<f32>
    %sqrt2 = "graph.constant"() <{value = dense<1.41421354> : tensor<f32>}> : () -> tensor<f32>
    %isqrt2 = "graph.constant"() <{value = dense<0.707106769> : tensor<f32>}> : () -> tensor<f32>
    %a0 = "graph.div"(%x, %two) {src = ["a_half"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %a1 = "graph.div"(%x, %sqrt2) {src = ["a_div"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %a2 = "graph.erf"(%a1) {src = ["a_erf"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %a3 = "graph.add"(%a2, %one) {src = ["a_add"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %a4 = "graph.mul"(%a0, %a3) {src = ["a_mul"]} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %b1 = "graph.mul"(%x, %isqrt2) {src = ["b_scale"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %b2 = "graph.erf"(%b1) {src = ["b_erf"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %b3 = "graph.add"(%one, %b2) {src = ["b_add"]} : (tensor<f32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %b4 = "graph.mul"(%x, %b3) {src = ["b_mul"]} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %b5 = "graph.mul"(%b4, %half) {src = ["b_half"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %c1 = "graph.div"(%x, %sqrt2) {src = ["c_div"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %c2 = "graph.erf"(%c1) {src = ["c_erf"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %c3 = "graph.add"(%c2, %one) {src = ["c_add"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %c4 = "graph.mul"(%c3, %half) {src = ["c_half"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %c5 = "graph.mul"(%c4, %x) {src = ["c_mul"]} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    func.return %a4, %b5, %c5 : tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>
  }
  // tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), x^3 as x*x*x and as Pow(x, 3).
  func.func @tanh(%x: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
    %half = "graph.constant"() <{value = dense<0.5> : tensor<f32>}> : () -> tensor<f32>
    %one = "graph.constant"() <{value = dense<1.0> : tensor<f32>}> : () -> tensor<f32>
    %three = "graph.constant"() <{value = dense<3.0> : tensor<f32>}> : () -> tensor<f32>
    %k = "graph.constant"() <{value = dense<0.044715> : tensor<f32>}> : () -> tensor<f32>
    %s = "graph.constant"() <{value = dense<0.797884583> : tensor<f32>}> : () -> tensor<f32>
    %sq = "graph.mul"(%x, %x) {src = ["t_sq"]} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %cube = "graph.mul"(%x, %sq) {src = ["t_cube"]} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %kc = "graph.mul"(%cube, %k) {src = ["t_k"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %in = "graph.add"(%x, %kc) {src = ["t_inner"]} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %sc = "graph.mul"(%in, %s) {src = ["t_scale"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %th = "graph.tanh"(%sc) {src = ["t_tanh"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %op = "graph.add"(%th, %one) {src = ["t_add"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %u = "graph.mul"(%x, %op) {src = ["t_mul"]} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %y = "graph.mul"(%u, %half) {src = ["t_half"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %pc = "graph.pow"(%x, %three) {src = ["p_cube"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %pk = "graph.mul"(%k, %pc) {src = ["p_k"]} : (tensor<f32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %pin = "graph.add"(%pk, %x) {src = ["p_inner"]} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %psc = "graph.mul"(%s, %pin) {src = ["p_scale"]} : (tensor<f32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %pth = "graph.tanh"(%psc) {src = ["p_tanh"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %pop = "graph.add"(%pth, %one) {src = ["p_add"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %ph = "graph.mul"(%x, %half) {src = ["p_halfx"]} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %py = "graph.mul"(%ph, %pop) {src = ["p_mul"]} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    func.return %y, %py : tensor<2x8xf32>, tensor<2x8xf32>
  }
  // Not GELU: erf(x / 2) (wrong constant); the 0.5 missing; the outer factor is another
  // tensor than erf's argument.
  func.func @keep(%x: tensor<2x8xf32>, %z: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>) {
    %half = "graph.constant"() <{value = dense<0.5> : tensor<f32>}> : () -> tensor<f32>
    %one = "graph.constant"() <{value = dense<1.0> : tensor<f32>}> : () -> tensor<f32>
    %two = "graph.constant"() <{value = dense<2.0> : tensor<f32>}> : () -> tensor<f32>
    %sqrt2 = "graph.constant"() <{value = dense<1.41421354> : tensor<f32>}> : () -> tensor<f32>
    %a1 = "graph.div"(%x, %two) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %a2 = "graph.erf"(%a1) {src = ["k_wrong_const"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %a3 = "graph.add"(%a2, %one) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %a4 = "graph.mul"(%x, %a3) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %a5 = "graph.mul"(%a4, %half) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %b1 = "graph.div"(%x, %sqrt2) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %b2 = "graph.erf"(%b1) {src = ["k_no_half"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %b3 = "graph.add"(%b2, %one) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %b4 = "graph.mul"(%x, %b3) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %c1 = "graph.div"(%x, %sqrt2) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %c2 = "graph.erf"(%c1) {src = ["k_other_x"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %c3 = "graph.add"(%c2, %one) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %c4 = "graph.mul"(%z, %c3) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
    %c5 = "graph.mul"(%c4, %half) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    func.return %a5, %b4, %c5 : tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>
  }
}

// CHECK-LABEL: func.func @erf
// CHECK-NOT:   "graph.erf"
// CHECK-DAG:   %[[A:.*]] = "graph.gelu"(%x) {src = ["a_half", "a_div", "a_erf", "a_add", "a_mul"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
// CHECK-DAG:   %[[B:.*]] = "graph.gelu"(%x) {src = ["b_scale", "b_erf", "b_add", "b_mul", "b_half"]}
// CHECK-DAG:   %[[C:.*]] = "graph.gelu"(%x) {src = ["c_div", "c_erf", "c_add", "c_half", "c_mul"]}
// CHECK-NOT:   "graph.erf"
// CHECK:       func.return %[[A]], %[[B]], %[[C]]

// CHECK-LABEL: func.func @tanh
// CHECK-NOT:   "graph.tanh"
// CHECK-DAG:   %[[Y:.*]] = "graph.gelu"(%x) <{approximate = "tanh"}>
// CHECK-DAG:   %[[PY:.*]] = "graph.gelu"(%x) <{approximate = "tanh"}>
// CHECK-NOT:   "graph.tanh"
// CHECK-NOT:   "graph.pow"
// CHECK:       func.return %[[Y]], %[[PY]]

// CHECK-LABEL: func.func @keep
// CHECK-NOT:   "graph.gelu"
// CHECK:       "graph.erf"({{.*}}) {src = ["k_wrong_const"]}
// CHECK:       "graph.erf"({{.*}}) {src = ["k_no_half"]}
// CHECK:       "graph.erf"({{.*}}) {src = ["k_other_x"]}
// CHECK-NOT:   "graph.gelu"
