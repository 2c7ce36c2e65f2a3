// RUN: graphopt opt %s -p 'ascend-dft-matmul{by-cost=false},dce' | filecheck %s
// RUN: graphopt opt %s -p ascend-dft-matmul,dce | filecheck %s --check-prefix=COST

// FNet's token mixing: a real signal made complex with a zero imaginary half, a DFT over
// the hidden axis, one over the sequence axis, and the real part kept. Each DFT becomes a
// matmul by its constant Fourier matrix: the first multiplies from the right (its axis is
// the last), giving both halves [re | im]; the second from the left over [re; im] stacked
// along the sequence axis, and only the real half's rows are computed, since only the real
// part is read. No DFT, Gather or complex [..., 2] value is left. (by-cost=false: at these
// tiny sizes the AI CPU's one kernel beats the launches of four, so by default, COST, the
// DFTs stay.)
builtin.module {
  func.func @fnet(%x: tensor<2x4x3xf32>) -> tensor<2x4x3xf32> {
    %none = "graph.none"() : () -> none
    %hidden = "graph.constant"() <{value = dense<2> : tensor<i64>}> {src = ["axis"]} : () -> tensor<i64>
    %seq = "graph.constant"() <{value = dense<1> : tensor<i64>}> {src = ["axis"]} : () -> tensor<i64>
    %m1 = "graph.constant"() <{value = dense<-1> : tensor<1xi64>}> {src = ["m1"]} : () -> tensor<1xi64>
    %z = "graph.constant"() <{value = dense<0.0> : tensor<2x4x3x1xf32>}> {src = ["zeros"]} : () -> tensor<2x4x3x1xf32>
    %i0 = "graph.constant"() <{value = dense<0> : tensor<i64>}> {src = ["real"]} : () -> tensor<i64>
    %u = "graph.unsqueeze"(%x, %m1) {src = ["u"]} : (tensor<2x4x3xf32>, tensor<1xi64>) -> tensor<2x4x3x1xf32>
    %c = "graph.concat"(%u, %z) <{axis = -1 : i64}> {src = ["complex"]} : (tensor<2x4x3x1xf32>, tensor<2x4x3x1xf32>) -> tensor<2x4x3x2xf32>
    %d1 = "graph.dft"(%c, %none, %hidden) {src = ["fft_hidden"]} : (tensor<2x4x3x2xf32>, none, tensor<i64>) -> tensor<2x4x3x2xf32>
    %d2 = "graph.dft"(%d1, %none, %seq) {src = ["fft_seq"]} : (tensor<2x4x3x2xf32>, none, tensor<i64>) -> tensor<2x4x3x2xf32>
    %y = "graph.gather"(%d2, %i0) <{axis = 3 : i64}> {src = ["real_part"]} : (tensor<2x4x3x2xf32>, tensor<i64>) -> tensor<2x4x3xf32>
    func.return %y : tensor<2x4x3xf32>
  }

  // Longer than MAX_LENGTH (1024): the quadratic matmul would outgrow the FFT it replaces;
  // the DFT stays.
  func.func @long(%x: tensor<1x2048x2xf32>) -> tensor<1x2048x2xf32> {
    %none = "graph.none"() : () -> none
    %axis = "graph.constant"() <{value = dense<1> : tensor<i64>}> {src = ["axis"]} : () -> tensor<i64>
    %y = "graph.dft"(%x, %none, %axis) {src = ["fft"]} : (tensor<1x2048x2xf32>, none, tensor<i64>) -> tensor<1x2048x2xf32>
    func.return %y : tensor<1x2048x2xf32>
  }
}

// CHECK-LABEL: func.func @fnet
// CHECK-NOT:   graph.dft
// CHECK:       %[[W1:.*]] = "graph.constant"() <{value = dense<{{.*}}> : tensor<3x6xf32>}> {src = ["fft_hidden"]}
// CHECK:       %[[H:.*]] = "graph.matmul"(%x, %[[W1]]) {src = ["fft_hidden"]} : (tensor<2x4x3xf32>, tensor<3x6xf32>) -> tensor<2x4x6xf32>
// CHECK:       %[[RE:.*]], %[[IM:.*]] = "graph.split"(%[[H]], %{{.*}}) <{axis = -1 : i64}> {{.*}} -> (tensor<2x4x3xf32>, tensor<2x4x3xf32>)
// CHECK:       %[[RI:.*]] = "graph.concat"(%[[RE]], %[[IM]]) <{axis = -2 : i64}> {src = ["fft_seq"]} : {{.*}} -> tensor<2x8x3xf32>
// CHECK:       %[[W2:.*]] = "graph.constant"() <{value = dense<{{.*}}> : tensor<4x8xf32>}> {src = ["fft_seq"]}
// CHECK:       %[[Y:.*]] = "graph.matmul"(%[[W2]], %[[RI]]) {src = ["fft_seq"]} : (tensor<4x8xf32>, tensor<2x8x3xf32>) -> tensor<2x4x3xf32>
// CHECK-NOT:   graph.gather
// CHECK:       func.return %[[Y]]
// CHECK-LABEL: func.func @long
// CHECK:       "graph.dft"

// COST-LABEL: func.func @fnet
// COST:       "graph.dft"
// COST:       "graph.dft"
