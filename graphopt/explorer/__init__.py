"""A compiled folder as Model Explorer sees it: the graph and three node-data overlays.

Model Explorer (Google's ``ai-edge-model-explorer``, an optional extra: ``pip install
'graphopt[explore]'``) draws graphs that an adapter extension converts into its JSON graph
format, and colours nodes by node-data files. This module builds both as plain JSON-ready
dicts, so ``graphopt explore OUT/ --export DIR`` needs no Model Explorer installed;
``graphopt.explorer.main`` is the adapter Model Explorer loads (``--extensions
graphopt.explorer``), a thin wrapper over :func:`folder_graph`.

The graph: the fused graph of a compiled folder (``graph.mlir``, the IR before the target
lowered it; else ``model.mlir``): one node per graph op, labelled with its op type, its id
its source node name; each ``graph.fused`` group a collapsible layer (Model Explorer's
namespace) named after the kernel that runs it on the target; edges carry the tensor type
and, on ascend-sim, the storage format of the kernel's output (NC1HWC0, FRACTAL_NZ).

The overlays (each a ``GraphNodeData`` of Model Explorer's node-data format, keyed by node id):
- ``error``: ``graphopt compare``'s max relative error per value against the cpu -O0
  reference (the node whose value a kernel stores), red where out of tolerance;
- ``time_us``: the timing model's simulated microseconds of each kernel, on the node
  whose value the kernel stores (a layer's aggregate is then the kernel's time);
- ``placement``: 0 cube, 1 vector, 2 AI CPU, per node, from the kernel that runs it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graphopt.errors import GraphoptError

PLACEMENT = {"cube": 0, "vector": 1, "aicpu": 2}
PLACEMENT_COLOURS = {0: "#f4a261", 1: "#8ecae6", 2: "#e76f51"}
OVERLAYS = ("error", "time_us", "placement")


def _read_folder(folder: Path) -> tuple[Any, Any | None, dict[str, Any]]:
    """(graph-level module, lowered module or None, report) of a compiled folder."""
    from graphopt.ir import make_context, parse_module, read_text
    from graphopt.weights import WeightStore

    if not (folder / "model.mlir").is_file() or not (folder / "report.json").is_file():
        raise GraphoptError(f"{folder}: not a compiled folder (model.mlir and report.json missing); "
                            "write one with graphopt compile MODEL -o FOLDER")
    try:
        report = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError) as e:
        raise GraphoptError(f"{folder / 'report.json'}: not readable JSON ({e}); compile the folder again") from None
    weights = WeightStore.load(folder) if (folder / "weights.json").is_file() else WeightStore()
    ctx = make_context(weights)
    model = parse_module(ctx, read_text(folder / "model.mlir"), str(folder / "model.mlir"))
    if (folder / "graph.mlir").is_file():
        graph = parse_module(ctx, read_text(folder / "graph.mlir"), str(folder / "graph.mlir"))
        return graph, model, report
    return model, None, report


def _main_ops(module: Any) -> list[Any]:
    from xdsl.dialects import func

    fn = next((op for op in module.ops if isinstance(op, func.FuncOp)), None)
    if fn is None:
        raise GraphoptError("the folder's IR has no function to draw")
    return list(fn.body.block.ops)


def _type_text(t: Any) -> str:
    """``float32[1,64,56,56]`` for a tensor type, as Model Explorer's adapters write it."""
    from xdsl.dialects.builtin import TensorType

    from graphopt import dtypes

    if isinstance(t, TensorType):
        try:
            el = dtypes.from_ir(t.element_type).numpy.name
        except Exception:
            el = str(t.element_type)
        return f"{el}[{','.join(str(d) for d in t.get_shape())}]"
    return str(t)


def _storage(t: Any) -> str:
    """A tensor type's storage format: its encoding, which a target sets (ND: none)."""
    encoding = getattr(t, "encoding", None)
    return getattr(encoding, "data", None) or "ND"


def _kernels(lowered: Any | None) -> dict[tuple[str, ...], dict[str, Any]]:
    """The lowered module's kernels by their provenance: name, kind, output formats."""
    from graphopt.dialects.graph import provenance

    if lowered is None:
        return {}
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for op in _main_ops(lowered):
        if op.name != "ascend.kernel":
            continue
        src = tuple(provenance(op))
        found.setdefault(src, {"name": op.sym_name.data, "kind": op.kind.data,
                               "formats": [_storage(r.type) for r in op.results]})
    return found


class _Builder:
    """Graph ops -> Model Explorer nodes, with unique ids (a source name, made unique)."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.ids: set[str] = set()
        self.value_id: dict[Any, tuple[str, str]] = {}  # SSA value -> (node id, output index)
        self.output_node: dict[str, str] = {}  # source node name -> the node id holding its value
        self.kernel_of: dict[str, dict[str, Any]] = {}  # node id -> its kernel

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.ids:
            k += 1
            name = f"{base}#{k}"
        self.ids.add(name)
        return name

    def add(self, op: Any, namespace: str, kernel: dict[str, Any] | None, formats: list[str] | None = None) -> str:
        from graphopt.dialects.graph import GraphOp, provenance, result_sources

        src = provenance(op)
        label = op.ONNX_TYPE if isinstance(op, GraphOp) else op.name
        node_id = self.unique(src[-1] if src else f"{label}_{len(self.nodes)}")
        attrs = [{"key": "op", "value": op.name}]
        if src:
            attrs.append({"key": "source nodes", "value": ", ".join(src)})
        for key, value in op.properties.items():
            text = str(value)
            attrs.append({"key": key, "value": text if len(text) <= 200 else text[:197] + "..."})
        if kernel is not None:
            attrs += [{"key": "kernel", "value": kernel["name"]}, {"key": "placement", "value": kernel["kind"]}]
        edges = []
        for k, v in enumerate(op.operands):
            if v in self.value_id:
                source, index = self.value_id[v]
                edges.append({"sourceNodeId": source, "sourceNodeOutputId": index, "targetNodeInputId": str(k)})
        outputs = []
        for k, r in enumerate(op.results):
            meta = [{"key": "tensor_shape", "value": _type_text(r.type)}]
            if formats and k < len(formats) and formats[k] not in ("ND", None):
                meta.append({"key": "storage", "value": formats[k]})
            outputs.append({"id": str(k), "attrs": meta})
            self.value_id[r] = (node_id, str(k))
        for s in result_sources(op):
            if s is not None:
                self.output_node.setdefault(s[0], node_id)
        self.nodes.append({"id": node_id, "label": label, "namespace": namespace, "attrs": attrs,
                           "incomingEdges": edges, "outputsMetadata": outputs})
        if kernel is not None:
            self.kernel_of[node_id] = kernel
        return node_id


def folder_graph(folder: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the Model Explorer graph collection of a compiled folder, what the overlays need)."""
    from graphopt.dialects.graph import ConstantOp, FusedOp, NoneOp, WeightOp, YieldOp, provenance

    folder = Path(folder)
    graph, lowered, report = _read_folder(folder)
    kernels = _kernels(lowered)
    b = _Builder()
    fn_args = None
    for op in _main_ops(graph):
        if fn_args is None:
            fn_args = op.parent_block().args  # pyright: ignore
            for k, arg in enumerate(fn_args):
                node = b.unique(f"input_{k}")
                b.value_id[arg] = (node, "0")
                b.nodes.append({"id": node, "label": "Input", "namespace": "inputs", "attrs": [],
                                "incomingEdges": [], "outputsMetadata": [
                                    {"id": "0", "attrs": [{"key": "tensor_shape", "value": _type_text(arg.type)}]}]})
        if isinstance(op, ConstantOp | WeightOp | NoneOp):
            continue  # weights and constants: in the attributes of what reads them, not nodes
        if op.name == "func.return":
            for k, v in enumerate(op.operands):
                if v in b.value_id:
                    source, index = b.value_id[v]
                    b.nodes.append({"id": b.unique(f"output_{k}"), "label": "Output", "namespace": "outputs", "attrs": [],
                                    "incomingEdges": [{"sourceNodeId": source, "sourceNodeOutputId": index,
                                                       "targetNodeInputId": "0"}], "outputsMetadata": []})
            continue
        kernel = kernels.get(tuple(provenance(op)))
        formats = kernel["formats"] if kernel is not None else None
        if isinstance(op, FusedOp):
            layer = kernel["name"] if kernel is not None else f"fused_{op.kind.data}_{len(b.nodes)}"
            inner = op.body.block
            for arg, outer in zip(inner.args, op.operands):
                if outer in b.value_id:
                    b.value_id[arg] = b.value_id[outer]
            for o in inner.ops:
                if isinstance(o, ConstantOp | WeightOp | NoneOp):
                    continue
                if isinstance(o, YieldOp):
                    for r, v in zip(op.results, o.operands):
                        if v in b.value_id:
                            b.value_id[r] = b.value_id[v]
                    continue
                b.add(o, layer, kernel)
            # the storage formats of the kernel's outputs, on the nodes holding them
            last = inner.last_op
            assert isinstance(last, YieldOp)
            for k, v in enumerate(last.operands):
                node = b.value_id.get(v)
                if node is not None and formats and k < len(formats) and formats[k] != "ND":
                    _set_storage(b, node, formats[k])
        else:
            b.add(op, "", kernel, formats)
    for n in b.nodes:
        if not n["namespace"]:
            del n["namespace"]
    label = Path(str(report.get("model", folder.name))).name
    graph_json = {"label": label, "graphs": [{"id": report.get("target", "graph"), "nodes": b.nodes}]}
    info = {"graph_id": graph_json["graphs"][0]["id"], "report": report, "output_node": b.output_node,
            "kernel_of": b.kernel_of, "kernels": kernels, "folder": folder}
    return graph_json, info


def _set_storage(b: _Builder, node: tuple[str, str], fmt: str) -> None:
    node_id, index = node
    for n in b.nodes:
        if n["id"] == node_id:
            for meta in n["outputsMetadata"]:
                if meta["id"] == index and not any(a["key"] == "storage" for a in meta["attrs"]):
                    meta["attrs"].append({"key": "storage", "value": fmt})


def time_overlay(info: Mapping[str, Any]) -> dict[str, Any]:
    """Simulated microseconds per kernel, on the node holding the value the kernel stores."""
    timing = info["report"].get("timing") or {}
    by_name = {k["name"]: k for k in timing.get("kernels", [])}
    results: dict[str, Any] = {}
    for src, kernel in info["kernels"].items():
        timed = by_name.get(kernel["name"])
        if timed is None or not src:
            continue
        node = info["output_node"].get(src[-1])
        if node is not None:
            results[node] = {"value": round(float(timed["time_us"]), 3)}
    return {"name": "simulated us", "results": results,
            "gradient": [{"stop": 0, "bgColor": "#ffffff"}, {"stop": 1, "bgColor": "#d62828"}]}


def placement_overlay(info: Mapping[str, Any]) -> dict[str, Any]:
    """0 cube, 1 vector, 2 AI CPU: where each node runs."""
    results = {}
    for node, kernel in info["kernel_of"].items():
        code = PLACEMENT.get(kernel["kind"])
        if code is not None:
            results[node] = {"value": code, "bgColor": PLACEMENT_COLOURS[code]}
    return {"name": "placement (0 cube, 1 vector, 2 AI CPU)", "results": results}


def error_overlay(info: Mapping[str, Any], compared: Mapping[str, Any] | None) -> dict[str, Any]:
    """compare's error per value, as a multiple of its tolerance (at most 1 within it)."""
    results = {}
    for row in (compared or {}).get("rows", []):
        node = info["output_node"].get(row["node"].rsplit(":", 1)[0] if ":" in row["node"] else row["node"])
        if node is not None:
            ratio = row["tolerance_ratio"]
            results[node] = {"value": round(ratio, 4) if ratio != float("inf") else 1e30}
    return {"name": "error / tolerance vs cpu -O0", "results": results,
            "thresholds": [{"value": 0.1, "bgColor": "#b7e4c7"}, {"value": 1.0, "bgColor": "#ffe066"},
                           {"value": 1e30, "bgColor": "#d62828"}]}


def compare_folder(info: Mapping[str, Any]) -> dict[str, Any] | None:
    """Run graphopt compare on the folder's source model with its target settings; None
    when the source model is not where the report says."""
    from graphopt.compare import compare_model

    report = info["report"]
    model = Path(str(report.get("model_path") or report.get("model", "")))
    if not model.is_file():
        return None
    options = {}
    chip = report.get("chip")
    if isinstance(chip, dict):
        options = {"precision": chip.get("precision"), "tiling": chip.get("tiling"),
                   "keep_dtype": chip.get("keep_dtype") or None}
    return compare_model(str(model), str(report.get("target", "cpu")), target_options={k: v for k, v in options.items() if v is not None},
                         pipeline=report.get("pipeline"))


def export(folder: str | Path, dest: str | Path, compare: bool = True) -> tuple[list[Path], bool]:
    """Write graph.json and the three node-data files into ``dest`` (all or nothing).
    Returns the files and whether the error overlay has data (``compare`` runs graphopt
    compare on the folder's source model, when it is where the report says)."""
    from graphopt import outputs

    graph_json, info = folder_graph(folder)
    compared = compare_folder(info) if compare else None
    gid = info["graph_id"]
    files = {"graph.json": graph_json}
    for name, data in (("error", error_overlay(info, compared)), ("time_us", time_overlay(info)),
                       ("placement", placement_overlay(info))):
        files[f"{name}.json"] = {gid: data}

    def fill(tmp: Path) -> None:
        for name, data in files.items():
            (tmp / name).write_text(json.dumps(data, indent=1) + "\n")

    outputs.write_folder(dest, f"--export {dest}", fill)
    return [Path(dest) / name for name in files], compared is not None
