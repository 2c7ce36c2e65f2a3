// RUN: graphopt opt %s -p ascend-layout | filecheck %s

// A convolution whose weights are a parameter fed at run time (torch.compile lifts
// parameters into graph inputs; the fx frontend marks them graphopt.parameter). Its
// FRACTAL_Z TransData runs when the parameter changes, not per call: the layout summary
// counts it apart, and the TransData says so (per_update).
builtin.module {
  func.func @main(%x: tensor<1x16x8x8xf32>, %w: tensor<16x16x1x1xf32> {graphopt.parameter}) -> tensor<1x16x8x8xf32> {
    %c = "graph.conv"(%x, %w) <{kernel_shape = array<i64: 1, 1>}> {src = ["conv"]} : (tensor<1x16x8x8xf32>, tensor<16x16x1x1xf32>) -> tensor<1x16x8x8xf32>
    func.return %c : tensor<1x16x8x8xf32>
  }
}

// CHECK: ascend.layout = {transdata = 2 : i64, transdata_bytes = {{[0-9]+}} : i64, padding_bytes = {{[0-9]+}} : i64, parameter_transdata = 1 : i64, parameter_transdata_bytes = {{[0-9]+}} : i64}
// CHECK-DAG: "ascend.trans_data"(%x) <{src_format = "ND", dst_format = "NC1HWC0"}>
// CHECK-DAG: "ascend.trans_data"(%w) <{src_format = "ND", dst_format = "FRACTAL_Z", per_update}>
