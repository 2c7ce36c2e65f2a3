"""The bundled examples' simulated timing is what tests/targets/ascend/timing_golden.json
says, kernel by kernel: a refactor leaves it identical, and a change to the timing model
shows up here and is re-recorded on purpose (tools/timing_golden.py --update)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("timing_golden", ROOT / "tools" / "timing_golden.py")
assert spec is not None and spec.loader is not None
tg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tg)
GOLDEN = json.loads(tg.GOLDEN.read_text())
MODELS = sorted((ROOT / "examples" / "models").glob("*.onnx"))


def test_golden_covers_every_bundled_model():
    assert sorted(GOLDEN) == sorted(f"{m.stem}@{chip}" for m in MODELS for chip in tg.CHIPS)


@pytest.mark.parametrize("chip", tg.CHIPS)
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_timing_matches_the_golden_file(model, chip):
    key = f"{model.stem}@{chip}"
    diff = tg.differences({key: GOLDEN[key]}, {key: tg.measure(model, chip)})
    assert not diff, f"{diff[0]}: if the timing model changed on purpose, run tools/timing_golden.py --update"


def test_differences_sees_a_moved_kernel():
    key = next(iter(GOLDEN))
    moved = json.loads(json.dumps(GOLDEN[key]))
    moved["kernels"][0][1] *= 1.001
    assert tg.differences({key: GOLDEN[key]}, {key: moved})
