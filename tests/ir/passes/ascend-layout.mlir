// RUN: graphopt opt %s -p ascend-layout | filecheck %s
// RUN: graphopt opt %s -p 'ascend-layout{precision=must_keep_origin_dtype}' | filecheck %s --check-prefix=F32
// RUN: graphopt opt %s -p 'ascend-layout,ascend-lower' | filecheck %s --check-prefix=B910
// RUN: graphopt opt %s -p 'ascend-layout{chip=ascend310p},ascend-lower{chip=ascend310p}' | filecheck %s --check-prefix=P310

// A 1x1 convolution and its ReLU: NC1HWC0 between the TransData at the input and at the
// return, the constant weight converted to FRACTAL_Z at compile time. The passes take the
// chip and the precision mode as their own options (the compiling target's by default).
builtin.module {
  func.func @main(%x: tensor<1x8x64x64xf32>) -> tensor<1x16x64x64xf32> {
    %w = "graph.constant"() <{value = dense<[[[[0.75]], [[0.25]], [[0.00]], [[-0.50]], [[-0.50]], [[-1.00]], [[-1.00]], [[-1.00]]], [[[-0.75]], [[0.75]], [[0.25]], [[1.00]], [[0.00]], [[0.25]], [[1.00]], [[0.50]]], [[[0.25]], [[0.00]], [[0.25]], [[1.00]], [[-0.50]], [[0.75]], [[0.50]], [[-1.00]]], [[[-0.25]], [[0.75]], [[0.00]], [[-1.00]], [[0.50]], [[0.50]], [[0.75]], [[-0.75]]], [[[-1.00]], [[0.75]], [[-1.00]], [[0.00]], [[-1.00]], [[-0.50]], [[0.00]], [[-0.25]]], [[[-0.25]], [[-1.00]], [[-1.00]], [[-0.75]], [[-1.00]], [[0.50]], [[0.00]], [[0.25]]], [[[-0.50]], [[0.25]], [[0.50]], [[-0.25]], [[0.00]], [[1.00]], [[0.75]], [[1.00]]], [[[-0.25]], [[0.50]], [[1.00]], [[0.25]], [[0.75]], [[0.50]], [[0.50]], [[-0.25]]], [[[0.75]], [[-0.75]], [[0.25]], [[0.50]], [[0.75]], [[0.00]], [[-0.25]], [[-0.50]]], [[[-0.25]], [[0.00]], [[0.50]], [[1.00]], [[-1.00]], [[1.00]], [[0.00]], [[-0.25]]], [[[0.50]], [[0.25]], [[-0.50]], [[-0.50]], [[0.50]], [[0.25]], [[0.00]], [[-0.25]]], [[[0.50]], [[-0.25]], [[-0.50]], [[1.00]], [[-0.50]], [[-0.50]], [[0.50]], [[0.25]]], [[[-1.00]], [[-1.00]], [[-0.25]], [[0.75]], [[-0.25]], [[0.75]], [[-0.50]], [[-0.50]]], [[[0.75]], [[0.75]], [[-1.00]], [[-1.00]], [[0.50]], [[-0.25]], [[0.25]], [[-0.75]]], [[[0.75]], [[0.00]], [[1.00]], [[0.75]], [[0.50]], [[-0.50]], [[0.50]], [[-1.00]]], [[[0.25]], [[-0.25]], [[1.00]], [[-0.75]], [[1.00]], [[-1.00]], [[0.25]], [[0.25]]]]> : tensor<16x8x1x1xf32>}> {src = ["w"]} : () -> tensor<16x8x1x1xf32>
    %c = "graph.conv"(%x, %w) <{kernel_shape = array<i64: 1, 1>}> {src = ["conv"]} : (tensor<1x8x64x64xf32>, tensor<16x8x1x1xf32>) -> tensor<1x16x64x64xf32>
    %y = "graph.relu"(%c) {src = ["relu"]} : (tensor<1x16x64x64xf32>) -> tensor<1x16x64x64xf32>
    func.return %y : tensor<1x16x64x64xf32>
  }
}

// float16 blocks 16 channels and pads these 8 to 16; float32 blocks 8, with no padding.
// CHECK: ascend.layout = {transdata = 2 : i64, transdata_bytes = {{[0-9]+}} : i64, padding_bytes = 65792 : i64}
// F32: ascend.layout = {transdata = 2 : i64, transdata_bytes = {{[0-9]+}} : i64, padding_bytes = 0 : i64}
// CHECK: "ascend.trans_data"(%x) <{src_format = "ND", dst_format = "NC1HWC0"}>
// CHECK: "graph.weight"() <{name = "const.fractal_z"}> {src = ["w"]} : () -> tensor<16x8x1x1xf32, "FRACTAL_Z">
// CHECK: "graph.conv"({{.*}} -> tensor<1x16x64x64xf32, "NC1HWC0">
// CHECK: "graph.relu"({{.*}} -> tensor<1x16x64x64xf32, "NC1HWC0">
// CHECK: "ascend.trans_data"(%y) <{src_format = "NC1HWC0", dst_format = "ND"}>
// CHECK: func.return

// The 910B's 48 vector cores against the 310P's 8, on the TransData of the result.
// B910: sym_name = "k1_conv", kind = "cube"
// B910: sym_name = "k3_trans_data", kind = "vector", block_dim = 16
// P310: sym_name = "k1_conv", kind = "cube"
// P310: sym_name = "k3_trans_data", kind = "vector", block_dim = 8
