"""The fast subset of the model corpus (benchmarks/model_corpus.py --quick): a CNN of onnx's
light model zoo with random weights on a 64x64 image (squeezenet), BERT by both torch.onnx
exporters, LLaMA, ViT and ConvNeXt, each compiled for the cpu target and both Ascend chips
and validated against onnxruntime (ascend-sim with its default force_fp16 tolerances). The
full corpus and every failure in it are in docs/model-corpus.md."""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _corpus_module():
    spec = importlib.util.spec_from_file_location("model_corpus", ROOT / "benchmarks" / "model_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("model_corpus", module)
    spec.loader.exec_module(module)
    return module


mc = _corpus_module()
QUICK = sorted(mc.QUICK)
# (model, target) pairs of the subset that fail today, with why: none at the moment. A pair
# that starts failing is a regression; one listed here that passes again should leave.
KNOWN_FAILING: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    cache = tmp_path_factory.mktemp("corpus")

    @functools.cache
    def built(name: str) -> tuple[Path, dict]:
        entry = mc.entry_named(name)
        if entry.source != "zoo":
            pytest.importorskip("torch")
            pytest.importorskip("transformers")
        result = mc.build(entry, cache)
        assert "exporter_error" not in result, result
        return mc._file(cache, entry), result

    return built


@pytest.mark.parametrize("target", mc.TARGETS)
@pytest.mark.parametrize("name", QUICK)
def test_quick_corpus(build, name, target):
    if (name, target) in KNOWN_FAILING:
        pytest.xfail(KNOWN_FAILING[(name, target)])
    path, built = build(name)
    # Random weights that make a comparison mean something: outputs far from 0.
    assert built["out_absmax"] > 0.1, built
    row = mc.run_onnx(path, target, "force_fp16")
    assert row["compiled"], row.get("error")
    assert row["validated"], row.get("error")
    assert row["cosine"] > 0.99
    if target.startswith("ascend-sim"):
        assert row["time_us"] > 0 and "transdata" in row


def test_zoo_weights_are_seeded_random_he_init_with_calibrated_batchnorm():
    """shufflenet's splat weights (every one 0.02) become random, BatchNormalization's
    statistics are its input's, so the logits are O(1), and the same seed gives the same model."""
    import onnx
    from onnx import numpy_helper

    original = onnx.load(str(mc.zoo_dir() / "light_shufflenet.onnx"))
    model = mc.randomize_zoo(original, seed=0)
    assert not [n for n in model.graph.node if n.op_type == "ConstantOfShape"]
    assert [i.name for i in model.graph.input] == ["gpu_0/data_0"]
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    w = weights[conv.input[1]]
    assert abs(w.std() / np.sqrt(2 / np.prod(w.shape[1:])) - 1) < 0.2
    bn = next(n for n in model.graph.node if n.op_type == "BatchNormalization")
    assert np.abs(weights[bn.input[3]]).max() > 0 and not np.allclose(weights[bn.input[4]], 1)
    stats = mc._zoo_magnitude(model)
    assert 1 < stats["out_absmax"] < 100, stats
    assert [o.name for o in model.graph.output] == ["gpu_0/softmax_1", "r201"]  # the logits too
    again = mc.randomize_zoo(original, seed=0)
    assert again.SerializeToString() == model.SerializeToString()


def test_a_worker_over_its_time_is_a_row_not_the_end_of_the_run(build, tmp_path):
    """Each row runs in a subprocess: one that overruns its timeout is killed and recorded."""
    path, built = build("zoo/squeezenet@64")
    entry = mc.entry_named("zoo/squeezenet@64")
    cache = path.parents[1]
    path.with_suffix(".build.json").write_text(json.dumps(built))
    rows = mc.run_entry(entry, ["cpu"], "force_fp16", cache, timeout=0.5, rebuild=False)
    assert [(r["target"], r["kind"], r["compiled"]) for r in rows] == [("cpu", "timeout", False)]
    assert rows[0]["error"].startswith("timeout after")


def test_failures_group_by_cause():
    rows = [
        {"model": "a", "family": "cnn", "source": "zoo", "target": "cpu", "compiled": False, "kind": "error",
         "error": "node 'conv_7' (Conv): the weight [64, 3, 7, 7] is not constant"},
        {"model": "b", "family": "cnn", "source": "zoo", "target": "cpu", "compiled": False, "kind": "error",
         "error": "node 'conv_12' (Conv): the weight [32, 8, 3, 3] is not constant"},
    ]
    entries = [mc.Entry("a", "cnn", "zoo", "a"), mc.Entry("b", "cnn", "zoo", "b")]
    text = mc.render(rows, entries, ["cpu"], "# t")
    assert "| 2 | error | node '…' (Conv): the weight […] is not constant | a on cpu, b on cpu |" in text
    assert "| cpu | 2 | 0 | 0 / 2 | 0 / 2 | 0 |" in text
