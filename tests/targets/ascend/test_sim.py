"""The functional simulator: examples on both chips, tile by tile equal to op by op, the
precision modes, validation against onnxruntime and the report's keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graphopt
from graphopt.validate import random_inputs

MODELS = sorted(p.stem for p in Path("examples/models").glob("*.onnx"))
CHIPS = ["ascend910b", "ascend310p"]


def _feeds(c: graphopt.Compiled) -> dict[str, np.ndarray]:
    return random_inputs([(n, s[0], s[1]) for n, s in zip(c.input_names, c.input_specs)], seed=3)


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("model", MODELS)
def test_tile_by_tile_equals_op_by_op(model: str, chip: str) -> None:
    c = graphopt.compile(f"examples/models/{model}.onnx", target=f"ascend-sim:{chip}")
    feeds = _feeds(c)
    exe = c.executable
    exe.mode = "tile"  # type: ignore[attr-defined]
    tiled = c.run(feeds)
    exe.mode = "whole"  # type: ignore[attr-defined]
    whole = c.run(feeds)
    for name in tiled:
        # The same fp16 inputs and fp32 accumulation; only the summation order over K tiles
        # (and flash attention's online softmax) differ: within a couple of fp16 ulps.
        np.testing.assert_allclose(tiled[name], whole[name], rtol=4e-3, atol=4e-3, err_msg=name)


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("model", MODELS)
def test_validates_against_onnxruntime(model: str, chip: str) -> None:
    c = graphopt.compile(f"examples/models/{model}.onnx", target=f"ascend-sim:{chip}", validate=True)
    assert c.report["validation"]["passed"]
    assert c.report["validation"]["compute_dtype"] == "float16"


def test_bert_keeps_origin_dtype_to_float32_tolerance() -> None:
    # force_fp16 keeps BERT's residual stream in fp16 (a LayerNorm of values ~10 stored with
    # an ulp of 2^-7 leaves ~4e-3 absolute error near zero, which validate's magnitude-scaled
    # atol accepts); must_keep_origin_dtype must meet float32's own tolerance.
    c = graphopt.compile("examples/models/bert_dynamo.onnx", target="ascend-sim", validate=True,
                         target_options={"precision": "must_keep_origin_dtype"})
    assert c.report["validation"]["compute_dtype"] == "float32"
    assert max(o["max_abs_err"] for o in c.report["validation"]["outputs"]) < 1e-4


def test_must_keep_origin_dtype_matches_cpu() -> None:
    path = "examples/models/resnet.onnx"
    c = graphopt.compile(path, target="ascend-sim", target_options={"precision": "must_keep_origin_dtype"})
    assert c.executable.compute_dtype == np.float32  # type: ignore[attr-defined]
    feeds = _feeds(c)
    ref = graphopt.compile(path, target="cpu").run(feeds)
    for name, value in c.run(feeds).items():
        np.testing.assert_allclose(value, ref[name], rtol=1e-4, atol=1e-5)


def test_precision_modes_and_report() -> None:
    c = graphopt.compile("examples/models/moe.onnx", target="ascend-sim")
    assert c.executable.compute_dtype == np.float16  # type: ignore[attr-defined]
    kinds = {k["kind"] for k in c.report["kernels"]}
    assert {"cube", "vector"} <= kinds and c.report["aicpu"] == []  # the router's TopK is a vector kernel
    assert {"transdata", "transdata_bytes"} <= set(c.report["layout"])
    cube = next(k for k in c.report["kernels"] if k["kind"] == "cube")
    assert {"base_m", "base_n", "base_k", "grid_m"} <= set(cube["tiling"])
    mix = graphopt.compile("examples/models/moe.onnx", target="ascend-sim", target_options={"precision": "allow_mix_precision"})
    out = mix.run(_feeds(mix))
    assert all(np.isfinite(v).all() for v in out.values())


def test_a_copy_view_reads_and_writes_through_its_steps() -> None:
    """ascend.copy's view (dialect.CopyView), the one reading the simulator, the timing walk
    and the emitter share: pre, bcast, split, perm, shape in that order; a write through a
    view without pre and bcast puts every element back where it came from."""
    from xdsl.dialects.builtin import DictionaryAttr
    from xdsl.utils.exceptions import VerifyException

    from graphopt.targets.ascend.builder import ir_dict
    from graphopt.targets.ascend.dialect import CopyView

    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    heads = CopyView.of(DictionaryAttr(ir_dict({"split": [2, 3, 2, 2], "perm": [0, 2, 1, 3], "shape": [4, 3, 2]})))
    seen = heads.apply(a)
    np.testing.assert_array_equal(seen, a.reshape(2, 3, 2, 2).transpose(0, 2, 1, 3).reshape(4, 3, 2))
    np.testing.assert_array_equal(heads.unapply(seen, a.shape), a)
    assert heads.logical_shape(a.shape) == [4, 3, 2] and CopyView().logical_shape((5, 6)) == [5, 6]
    bias = CopyView.of(DictionaryAttr(ir_dict({"pre": [1, 4], "bcast": [3, 4]})))
    np.testing.assert_array_equal(bias.apply(np.arange(4)), np.tile(np.arange(4), (3, 1)))
    with pytest.raises(VerifyException, match="transpose is not one of"):
        CopyView.of(DictionaryAttr(ir_dict({"transpose": [1, 0]})))
