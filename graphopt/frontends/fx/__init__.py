"""An aten-level torch.fx GraphModule (aot_autograd with the core ATen decompositions, or a
``torch.export`` program after ``run_decompositions()``) -> graph IR.

The result is what the ONNX frontend produces (a ``builtin.module`` with ``func.func @main``,
weights in a ``WeightStore``), so every pass and target works unchanged.

Algorithm:
1. Every node gets a *concrete* meta value: ``node.meta["val"]`` (FakeTensors) when all
   shapes are static; otherwise (SymInt shapes, ``dynamic=True``) the graph is re-run
   under a FakeTensorMode with the concrete input shapes of this call, so the IR is
   specialised to one shape (the caller caches one executable per shape). No tensor
   value is ever read; scalars computed from shapes (``sym_size``, ``operator.mul``) are
   compile-time Python numbers.
2. Placeholders become block arguments, except the parameters, buffers and constants of
   an ``ExportedProgram``, which become ``graph.weight`` (or ``graph.constant``) ops.
3. Each ``call_function`` node is lowered by its row in ``FX_TO_GRAPH`` (keyed by aten
   OpOverload) into one or more graph ops with ONNX semantics. Result types come from
   the op's rule, and the last op of a row must agree with the node's meta value.
4. A node with no row is an ``UnsupportedOp`` error naming the aten op and the user's
   source line, from the node's ``stack_trace``.

Files:
- ``lowering.py``: the ``Lowering`` context a row works with, the spec/rank/axis and
  dtype helpers, and the table ``FX_TO_GRAPH`` with its ``@row`` decorator.
- ``rows_elementwise.py``, ``rows_nn.py``, ``rows_reduce.py``, ``rows_tensor.py``: the
  rows, one per aten OpOverload; each registers its rows when imported, and this
  package imports all of them, so ``FX_TO_GRAPH`` is complete once it is imported.
- ``rows_complex.py``: complex tensors as [..., 2] real pairs (``COMPLEX_ROWS``), used when
  an op reads or makes a complex tensor (Meta's LLaMA rotary).
- ``walk.py``: concrete meta values, the unsupported-op checks and ``lower_graph``.
- ``capture.py``: ``torch.export`` programs, ``.pt2`` files and ``import_torch``.

torch is imported by this package: import it only when a torch model is compiled.
"""

from graphopt.frontends.fx import (  # noqa: F401  (they fill FX_TO_GRAPH)
    rows_collectives,
    rows_complex,
    rows_elementwise,
    rows_nn,
    rows_reduce,
    rows_tensor,
)
from graphopt.frontends.fx.capture import Reference, decompose, import_exported, import_torch
from graphopt.frontends.fx.lowering import (
    FX_TO_GRAPH,
    TORCH_TO_NUMPY,
    Lowering,
    Row,
    UnsupportedOp,
    aten,
    axis,
    np_dtype,
    rank,
    row,
    source_line,
    spec,
)
from graphopt.frontends.fx.pt2 import load_pt2
from graphopt.frontends.fx.walk import (
    FxImported,
    concrete_values,
    is_static,
    lower_graph,
    module_path,
    to_numpy,
    unsupported_error,
    unsupported_nodes,
)

__all__ = [
    "FX_TO_GRAPH",
    "TORCH_TO_NUMPY",
    "FxImported",
    "Lowering",
    "Reference",
    "Row",
    "UnsupportedOp",
    "aten",
    "axis",
    "concrete_values",
    "decompose",
    "import_exported",
    "import_torch",
    "is_static",
    "load_pt2",
    "lower_graph",
    "module_path",
    "np_dtype",
    "rank",
    "row",
    "source_line",
    "spec",
    "to_numpy",
    "unsupported_error",
    "unsupported_nodes",
]
