"""The Chrome/Perfetto trace: lanes per pipe per core, perfect nesting, validated before writing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphopt.cli import main
from graphopt.errors import GraphoptError
from graphopt.targets.ascend.trace import check_nesting

EXAMPLE = Path(__file__).parents[3] / "examples" / "models" / "llama_layer.onnx"


def test_cli_writes_a_nested_trace(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    assert main(["compile", str(EXAMPLE), "--target", "ascend-sim", "--no-validate", "--trace", str(out)]) == 0
    data = json.loads(out.read_text())
    events = data["traceEvents"]
    check_nesting(events)
    names = {e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    assert any("AIC M" in n for n in names) and any("AIV V" in n for n in names)
    slices = [e for e in events if e["ph"] == "X"]
    assert any("mmad [" in e["name"] for e in slices)  # kernel name + tile indices
    assert all(e["dur"] >= 0 for e in slices)


def test_overlap_in_a_lane_is_rejected() -> None:
    bad = [{"ph": "X", "pid": 1, "tid": 1, "name": "a", "ts": 0.0, "dur": 2.0},
           {"ph": "X", "pid": 1, "tid": 1, "name": "b", "ts": 1.0, "dur": 2.0}]
    with pytest.raises(GraphoptError, match="overlaps"):
        check_nesting(bad)
    check_nesting([{**bad[0]}, {**bad[1], "tid": 2}])
