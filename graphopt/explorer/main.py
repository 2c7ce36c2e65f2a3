"""The Model Explorer adapter: ``model-explorer OUT/.graphopt-output --extensions graphopt.explorer``.

Model Explorer loads ``<extension>.main`` and registers every ``Adapter`` subclass there.
This one opens a graphopt compiled folder through its ``.graphopt-output`` marker (the file
every ``graphopt compile -o`` folder has) and returns :func:`graphopt.explorer.folder_graph`'s
graph as Model Explorer's own dataclasses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dacite
from model_explorer import Adapter, AdapterMetadata, ModelExplorerGraphs, graph_builder

from graphopt.explorer import folder_graph


def to_graph(data: dict[str, Any]) -> graph_builder.Graph:
    """One graph of folder_graph's JSON as Model Explorer's Graph (checked field by field)."""
    return dacite.from_dict(graph_builder.Graph, data, config=dacite.Config(strict=True))


class GraphoptAdapter(Adapter):
    metadata = AdapterMetadata(
        id="graphopt",
        name="graphopt compiled folder",
        description="The fused graph of a graphopt compile -o folder: kernels as layers, storage formats on edges",
        source_repo="https://github.com/graphopt/graphopt",
        fileExts=["graphopt-output"],
    )

    def __init__(self) -> None:
        super().__init__()

    def convert(self, model_path: str, settings: dict[str, Any]) -> ModelExplorerGraphs:
        collection, _ = folder_graph(Path(model_path).parent)
        return {"graphs": [to_graph(g) for g in collection["graphs"]]}
