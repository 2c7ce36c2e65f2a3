"""Types of the graph dialect that builtin has no spelling for."""

from __future__ import annotations

from xdsl.ir import ParametrizedAttribute, TypeAttribute
from xdsl.irdl import irdl_attr_definition


@irdl_attr_definition
class StringType(ParametrizedAttribute, TypeAttribute):
    """The element type of ONNX string tensors: ``tensor<3x!graph.string>``."""

    name = "graph.string"
