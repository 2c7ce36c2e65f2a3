"""The Model Explorer adapter and overlays, loaded with Model Explorer's own Python package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gp_models import assert_one_line_error, cli

pytest.importorskip("model_explorer")

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """BERT and ResNet compiled for ascend-sim, each into a folder (as a user would, by the CLI)."""
    root = tmp_path_factory.mktemp("explore")
    out = {}
    for name in ("bert_dynamo", "resnet"):
        folder = root / name
        proc = cli("compile", MODELS / f"{name}.onnx", "--target", "ascend-sim", "-o", folder)
        assert proc.returncode == 0, proc.stderr
        out[name] = folder
    return out


@pytest.fixture(scope="module")
def manager():
    from model_explorer.extension_manager import ExtensionManager

    m = ExtensionManager(["graphopt.explorer"])
    m.load_extensions()
    return m


def _convert(manager, folder):
    return manager.run_cmd({"extensionId": "graphopt", "cmdId": "convert", "modelPath": str(folder / ".graphopt-output"),
                            "settings": {}, "deleteAfterConversion": False})


@pytest.mark.parametrize("name", ["bert_dynamo", "resnet"])
def test_model_explorer_loads_the_adapter_and_converts_the_folder(manager, folders, name):
    meta = {e["id"]: e for e in manager.get_extensions_metadata()}
    assert meta["graphopt"]["type"] == "adapter" and "graphopt-output" in meta["graphopt"]["fileExts"]
    graphs = _convert(manager, folders[name])["graphs"]
    nodes = graphs[0]["nodes"]
    ids = {n["id"] for n in nodes}
    assert len(ids) == len(nodes) > 10
    for n in nodes:  # every edge comes from a node of the graph
        assert all(e["sourceNodeId"] in ids for e in n["incomingEdges"]), n
    report = json.loads((folders[name] / "report.json").read_text())
    kernels = {k["name"] for k in report["timing"]["kernels"]}
    layers = {n["namespace"] for n in nodes if n.get("namespace") not in (None, "", "inputs", "outputs")}
    assert layers and layers <= kernels  # fused groups are layers named by their kernels
    shapes = [a["value"] for n in nodes for m in n["outputsMetadata"] for a in m["attrs"] if a["key"] == "tensor_shape"]
    assert shapes and all("[" in s for s in shapes)
    if name == "resnet":
        storage = {a["value"] for n in nodes for m in n["outputsMetadata"] for a in m["attrs"] if a["key"] == "storage"}
        assert "NC1HWC0" in storage


@pytest.mark.parametrize("name", ["bert_dynamo", "resnet"])
def test_the_three_overlays_load_as_node_data(manager, folders, name, tmp_path):
    import dacite
    from model_explorer.node_data_builder import GraphNodeData

    proc = cli("explore", folders[name], "--export", tmp_path / "me")
    assert proc.returncode == 0, proc.stderr
    graph = json.loads((tmp_path / "me" / "graph.json").read_text())
    ids = {n["id"] for n in graph["graphs"][0]["nodes"]}
    report = json.loads((folders[name] / "report.json").read_text())
    loaded = {}
    for overlay in ("error", "time_us", "placement"):
        data = json.loads((tmp_path / "me" / f"{overlay}.json").read_text())
        (gid, body), = data.items()
        assert gid == graph["graphs"][0]["id"]
        node_data = dacite.from_dict(GraphNodeData, body, config=dacite.Config(strict=True))
        assert node_data.results and set(node_data.results) <= ids
        loaded[overlay] = node_data
    # error: compare's rows, each within tolerance on these models (ratio <= 1)
    assert all(r.value <= 1.0 for r in loaded["error"].results.values())
    # time: each kernel's time on one node, so the nodes add up to the kernels drawn
    timed = {k["name"]: k["time_us"] for k in report["timing"]["kernels"]}
    assert sum(r.value for r in loaded["time_us"].results.values()) <= sum(timed.values()) + 1e-6
    assert sum(r.value for r in loaded["time_us"].results.values()) > 0.5 * sum(timed.values())
    # placement: the cube runs the matmuls or convolutions, the vector units the rest
    assert {r.value for r in loaded["placement"].results.values()} >= {0, 1}


def test_bad_folder_is_one_line(tmp_path):
    assert_one_line_error(cli("explore", tmp_path))
    (tmp_path / "x").mkdir()
    assert_one_line_error(cli("explore", tmp_path / "x", "--export", tmp_path / "out"))
