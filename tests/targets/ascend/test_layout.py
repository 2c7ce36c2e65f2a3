"""ascend-layout: formats propagate from convolutions through channel-local and elementwise
ops, weights are converted at compile time, and TransData is left only where a consumer
needs another format (for ResNet-style CNNs: only at the graph's input and output)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from graphopt.compiler import PipelineOptions, parse_pipeline, run_pipeline
from graphopt.dialects.graph import WeightOp
from graphopt.frontends.onnx import import_model, load_model
from graphopt.ir import CompileContext, make_context, parse_module, print_module
from graphopt.target import GENERIC_PIPELINES
from graphopt.targets.ascend.dialect import TransDataOp
from graphopt.targets.ascend.formats import format_of, from_format, storage_shape
from graphopt.targets.ascend.layout import layout_report
from graphopt.weights import WeightStore

MODELS = Path(__file__).parents[3] / "examples" / "models"


def _layout(name: str) -> tuple[ModuleOp, CompileContext, dict[str, np.ndarray]]:
    imported = import_model(load_model(MODELS / name), {})
    ctx = make_context(imported.weights)
    run_pipeline(imported.module, ctx, parse_pipeline(GENERIC_PIPELINES[2]), PipelineOptions())
    before = {h: np.array(ctx.weights[h]) for h in ctx.weights}
    run_pipeline(imported.module, ctx, parse_pipeline("ascend-layout"), PipelineOptions())
    return imported.module, ctx, before


def _at_the_edges(td: TransDataOp) -> bool:
    """At the graph input (reads a function argument) or output (only feeds the return)."""
    at_input = isinstance(td.input.owner, func.FuncOp) or td.input.owner is td.parent
    at_output = all(isinstance(u.operation, func.ReturnOp) for u in td.output.uses)
    return at_input or at_output


@pytest.mark.parametrize("model", ["resnet.onnx", "zoo_cnn.onnx"])
def test_cnn_keeps_transdata_at_the_edges(model: str) -> None:
    module, _, _ = _layout(model)
    tds = [op for op in module.walk() if isinstance(op, TransDataOp)]
    assert len(tds) == 1 and all(_at_the_edges(td) for td in tds), [str(td) for td in tds]
    assert tds[0].dst_format.data == "NC1HWC0"
    formats = {format_of(op.results[0].type) for op in module.walk() if op.name == "graph.conv"}
    assert formats == {"NC1HWC0"}
    report = layout_report(module)
    assert report["transdata"] == 1 and report["transdata_bytes"] > 0 and report["padding_bytes"] > 0


def test_weights_are_converted_at_compile_time() -> None:
    module, ctx, before = _layout("resnet.onnx")
    converted = [op for op in module.walk() if isinstance(op, WeightOp) and format_of(op.result.type) != "ND"]
    assert {format_of(op.result.type) for op in converted} == {"FRACTAL_Z", "FRACTAL_NZ"}
    for op in converted:
        shape, fmt = op.result.type.get_shape(), format_of(op.result.type)  # pyright: ignore
        stored = ctx.weights[op.ref.data]
        assert stored.shape == storage_shape(shape, fmt, 16)  # f32 under force_fp16: C0 = 16
        origin = op.ref.data.rsplit(".", 1)[0]
        np.testing.assert_array_equal(from_format(stored, fmt, shape, 16), before[origin])


IR = """
builtin.module {
  func.func @main(%x: tensor<1x3x8x8xf32>, %b: tensor<8xf32>) -> (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) {
    %w = "graph.weight"() <{name = "w"}> {src = ["w"]} : () -> tensor<4x3x3x3xf32>
    %y = "graph.conv"(%x, %w) <{pads = array<i64: 1, 1, 1, 1>}> {src = ["conv"]} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32>
    %r = "graph.relu"(%y) {src = ["relu"]} : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    %p = "graph.max_pool"(%r) <{kernel_shape = array<i64: 1, 1>}> {src = ["pool"]} : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    %t = "graph.add"(%r, %b) {src = ["bcast"]} : (tensor<1x4x8x8xf32>, tensor<8xf32>) -> tensor<1x4x8x8xf32>
    func.return %p, %t : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>
  }
}
"""


def _run_text(text: str, weights: dict[str, np.ndarray]) -> tuple[ModuleOp, CompileContext]:
    store = WeightStore()
    for name, array in weights.items():
        store.add(name, array)
    ctx = make_context(store)
    module = parse_module(ctx, text)
    run_pipeline(module, ctx, parse_pipeline("ascend-layout"), PipelineOptions())
    return module, ctx


def test_boundaries_and_remarks() -> None:
    module, ctx = _run_text(IR, {"w": np.ones((4, 3, 3, 3), np.float32)})
    text = print_module(module)
    # The conv's input is converted once; its weight at compile time (no TransData for it).
    tds = [op for op in module.walk() if isinstance(op, TransDataOp)]
    pairs = sorted((td.src_format.data, td.dst_format.data) for td in tds)
    # pool output -> ND for the return; relu -> ND for the add that broadcasts along W.
    assert pairs == [("NC1HWC0", "ND"), ("NC1HWC0", "ND"), ("ND", "NC1HWC0")], text
    assert '"graph.weight"() <{name = "w.fractal_z"}>' in text
    reasons = [r["reason"] for r in ctx.remarks if r["pass"] == "ascend-layout"]
    assert any("broadcasts across a blocked axis" in r for r in reasons)
    # C = 3 and C = 4 pad to 16 channels: the padding is accounted for.
    assert layout_report(module)["padding_bytes"] > 0


def test_cancelling_pairs_are_removed() -> None:
    text = """
builtin.module {
  func.func @main(%x: tensor<1x16x4x4xf32>) -> tensor<1x16x4x4xf32> {
    %a = "ascend.trans_data"(%x) <{src_format = "ND", dst_format = "NC1HWC0"}> : (tensor<1x16x4x4xf32>) -> tensor<1x16x4x4xf32, "NC1HWC0">
    %b = "ascend.trans_data"(%a) <{src_format = "NC1HWC0", dst_format = "ND"}> : (tensor<1x16x4x4xf32, "NC1HWC0">) -> tensor<1x16x4x4xf32>
    %r = "graph.relu"(%b) : (tensor<1x16x4x4xf32>) -> tensor<1x16x4x4xf32>
    func.return %r : tensor<1x16x4x4xf32>
  }
}
"""
    module, _ = _run_text(text, {})
    assert not [op for op in module.walk() if isinstance(op, TransDataOp)]
    assert layout_report(module)["transdata"] == 0


def test_matmul_weights_nz_unless_padding_doubles_them() -> None:
    text = """
builtin.module {
  func.func @main(%x: tensor<8x64xf32>, %v: tensor<1x64xf32>) -> (tensor<8x32xf32>, tensor<1x1xf32>) {
    %w = "graph.weight"() <{name = "w"}> : () -> tensor<64x32xf32>
    %u = "graph.weight"() <{name = "u"}> : () -> tensor<64x1xf32>
    %y = "graph.matmul"(%x, %w) : (tensor<8x64xf32>, tensor<64x32xf32>) -> tensor<8x32xf32>
    %z = "graph.matmul"(%v, %u) : (tensor<1x64xf32>, tensor<64x1xf32>) -> tensor<1x1xf32>
    func.return %y, %z : tensor<8x32xf32>, tensor<1x1xf32>
  }
}
"""
    module, ctx = _run_text(text, {"w": np.ones((64, 32), np.float32), "u": np.ones((64, 1), np.float32)})
    weights = {op.ref.data: format_of(op.result.type) for op in module.walk() if isinstance(op, WeightOp)}
    assert weights == {"w.fractal_nz": "FRACTAL_NZ", "u": "ND"}
    # Activations stay ND (the cube's Nd2Nz on MTE2 converts them): no TransData at all.
    assert not [op for op in module.walk() if isinstance(op, TransDataOp)]
    assert any("FRACTAL_NZ would pad" in r["reason"] for r in ctx.remarks)
