"""--keep-dtype: ops computed and stored in float32 under force_fp16 (ATC's --keep_dtype).

The case is DeBERTa's: attention scores masked with float32's minimum, so rows whose keys
are all masked are -inf everywhere in float16 and their softmax is NaN, while the float32
reference is a finite, uniform row. Validation names the overflow and what to keep;
keeping it validates.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphopt
from graphopt.errors import GraphoptError, ValidationError
from graphopt.targets.ascend.keep_dtype import KEPT

CHIPS = ["ascend-sim", "ascend-sim:ascend310p"]


def _masked_attention() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 16])
    m = helper.make_tensor_value_info("m", TensorProto.BOOL, [2, 8, 8])
    w = numpy_helper.from_array((rng.standard_normal((16, 16)) / 4).astype(np.float32), "w")
    lowest = numpy_helper.from_array(np.array(np.finfo(np.float32).min, np.float32), "lowest")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["q"], name="proj"),
        helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1], name="qt"),
        helper.make_node("MatMul", ["q", "qt"], ["s"], name="scores"),
        helper.make_node("Where", ["m", "lowest", "s"], ["masked"], name="masked_fill"),
        helper.make_node("Softmax", ["masked"], ["p"], axis=-1, name="softmax"),
        helper.make_node("MatMul", ["p", "x"], ["y"], name="mix"),
    ]
    graph = helper.make_graph(nodes, "g", [x, m], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, lowest])
    mask = np.zeros((2, 8, 8), bool)
    mask[:, :, 6:] = True
    mask[:, 6:, :] = True  # padded queries: every key masked
    feeds = {"x": rng.standard_normal((2, 8, 16)).astype(np.float32), "m": mask}
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), feeds


@pytest.mark.parametrize("target", CHIPS)
def test_overflow_names_what_to_keep_and_keeping_it_validates(target):
    model, feeds = _masked_attention()
    with pytest.raises(ValidationError, match=r"float16 overflow at node masked_fill \(Where\).*"
                                              r"keep masked_fill, softmax in float32 \(--keep-dtype"):
        graphopt.compile(model, target, inputs=feeds, validate=True)
    # The Where alone is not enough: the softmax reads its result in float16 (-inf).
    with pytest.raises(ValidationError, match="float16 overflow"):
        graphopt.compile(model, target, target_options={"keep_dtype": ["masked_fill"]}, inputs=feeds, validate=True)
    for keep in (["masked_fill", "softmax"], ["Where", "Softmax"]):
        compiled = graphopt.compile(model, target, target_options={"keep_dtype": keep}, inputs=feeds, validate=True)
        kept = [k for k in compiled.module.walk() if KEPT in k.attributes]
        assert kept and all(k.name == "ascend.kernel" for k in kept)
        assert compiled.report["chip"]["keep_dtype"] == keep
    # Everything else stays float16: the unkept run and the kept run differ only near the mask.
    assert compiled.executable.compute_dtype == np.float16


def test_kept_ops_stay_nd_with_a_remark():
    model, _ = _masked_attention()
    compiled = graphopt.compile(model, "ascend-sim", target_options={"keep_dtype": ["Softmax"]})
    assert any("kept in its own dtype" in r["reason"] for r in compiled.report["remarks"])


def test_a_name_that_matches_nothing_is_refused():
    model, _ = _masked_attention()
    with pytest.raises(GraphoptError, match=r"'?masked_fil'? names no node or op type"):
        graphopt.compile(model, "ascend-sim", target_options={"keep_dtype": ["masked_fil"]})


def test_cli_reads_a_keep_file(tmp_path):
    model, _ = _masked_attention()
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    keep = tmp_path / "keep.txt"
    keep.write_text("# the mask and its reader\nmasked_fill\n\nsoftmax   # trailing comment\n")
    exe = Path(sys.executable).parent / "graphopt"
    ok = subprocess.run([str(exe), "compile", str(path), "--target", "ascend-sim", "--keep-dtype", str(keep),
                         "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    for bad, why in ((tmp_path / "missing.txt", "cannot read it"), (tmp_path / "typo.txt", "names no node")):
        if bad.name == "typo.txt":
            bad.write_text("softmx\n")
        proc = subprocess.run([str(exe), "compile", str(path), "--target", "ascend-sim", "--keep-dtype", str(bad)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and why in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
