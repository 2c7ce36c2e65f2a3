// RUN: graphopt opt %s -p ascend-attention-fallback | filecheck %s

builtin.module {
  // A head dimension of 8192 (DaViT's channel attention attends over tokens, so its "head
  // dimension" is their count): the flash kernel's smallest block of 16 x 16 needs more L1
  // than the 910B has, so the Attention runs as matmuls and a softmax. Fully masked rows
  // give zeros, as ONNX's Attention does (the IsNaN guard).
  func.func @wide(%q: tensor<1x2x16x8192xf16>, %k: tensor<1x2x16x8192xf16>, %v: tensor<1x2x16x8192xf16>) -> tensor<1x2x16x8192xf16> {
    %y = "graph.attention"(%q, %k, %v) <{scale = 5.000000e-01 : f32}> {src = ["channel_attention"]} : (tensor<1x2x16x8192xf16>, tensor<1x2x16x8192xf16>, tensor<1x2x16x8192xf16>) -> tensor<1x2x16x8192xf16>
    func.return %y : tensor<1x2x16x8192xf16>
  }

  // A head dimension of 64 fits: the Attention stays for the flash kernel.
  func.func @narrow(%q: tensor<1x2x16x64xf16>, %k: tensor<1x2x16x64xf16>, %v: tensor<1x2x16x64xf16>) -> tensor<1x2x16x64xf16> {
    %y = "graph.attention"(%q, %k, %v) <{scale = 1.250000e-01 : f32}> {src = ["attention"]} : (tensor<1x2x16x64xf16>, tensor<1x2x16x64xf16>, tensor<1x2x16x64xf16>) -> tensor<1x2x16x64xf16>
    func.return %y : tensor<1x2x16x64xf16>
  }
}

// CHECK-LABEL: func.func @wide
// CHECK-NOT:   graph.attention
// CHECK:       %[[KT:.*]] = "graph.transpose"(%k) <{perm = array<i64: 0, 1, 3, 2>}> {src = ["channel_attention"]}
// CHECK:       %[[S:.*]] = "graph.matmul"(%q, %[[KT]]) {{.*}} -> tensor<1x2x16x16xf16>
// CHECK:       "graph.mul"(%[[S]],
// CHECK:       %[[P:.*]] = "graph.softmax"({{.*}}) <{axis = -1 : i64}>
// CHECK:       %[[NAN:.*]] = "graph.isnan"(%[[P]])
// CHECK:       %[[G:.*]] = "graph.where"(%[[NAN]], %{{.*}}, %[[P]])
// CHECK:       %[[Y:.*]] = "graph.matmul"(%[[G]], %v) {{.*}} -> tensor<1x2x16x8192xf16>
// CHECK:       func.return %[[Y]]
// CHECK-LABEL: func.func @narrow
// CHECK:       "graph.attention"(%q, %k, %v)
