"""graphopt as an ``onnx.backend.base.Backend``, so ONNX's official test runner can drive it:

    import onnx.backend.test
    from graphopt.onnx_backend import GraphoptBackend
    tests = onnx.backend.test.BackendTest(GraphoptBackend, __name__)

``prepare`` compiles the model (binding any dynamic dimensions the model leaves open is
the caller's job: pass ``shapes=``); ``BackendRep.run`` runs the compiled plan. Only
graphopt's own kernels run: onnxruntime is not involved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep, Device, DeviceType

from graphopt.compiler import Compiled, compile


def _as_array(x: Any) -> Any:
    """ONNX test data holds types numpy lacks natively (int4, float8 ...) as TensorProto.
    A sequence stays a list of arrays and an empty optional stays None."""
    if x is None:
        return None
    if isinstance(x, list):
        return [_as_array(v) for v in x]
    if isinstance(x, onnx.TensorProto):
        return onnx.numpy_helper.to_array(x)
    return np.asarray(x)


class GraphoptRep(BackendRep):
    """A compiled model. A model whose inputs have dynamic dimensions (and no ``shapes=``)
    is compiled at its first run, with those dimensions bound to the inputs' shapes: the
    backend API gives no shapes before data arrives. Other shapes compile again."""

    def __init__(self, compiled: Compiled | None, build: Callable[[dict[str, tuple[int, ...]]], Compiled] | None = None,
                 inputs: Sequence[str] = (), dynamic: Sequence[str] = ()):
        self.compiled = compiled
        self._build = build
        self._inputs, self._dynamic = list(inputs), set(dynamic)
        self._cache: dict[tuple[tuple[str, tuple[int, ...]], ...], Compiled] = {}

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            arrays: dict[str, np.ndarray] | list[np.ndarray] = {k: _as_array(v) for k, v in inputs.items()}
        elif isinstance(inputs, list | tuple):
            arrays = [_as_array(x) for x in inputs]
        else:
            arrays = [_as_array(inputs)]
        compiled = self.compiled or self._for_shapes(arrays)
        return tuple(compiled.run(arrays).values())

    def _for_shapes(self, arrays: dict[str, np.ndarray] | list[np.ndarray]) -> Compiled:
        assert self._build is not None
        named = arrays if isinstance(arrays, dict) else dict(zip(self._inputs, arrays))
        shapes = {n: tuple(a.shape) for n, a in named.items() if n in self._dynamic and isinstance(a, np.ndarray)}
        key = tuple(sorted(shapes.items()))
        if key not in self._cache:
            self._cache[key] = self._build(shapes)
        return self._cache[key]


def _dynamic_inputs(model: onnx.ModelProto, bound: Any) -> list[str]:
    """Tensor inputs with a dimension the model leaves open and the caller did not bind."""
    inits = {t.name for t in model.graph.initializer}
    found = []
    for vi in model.graph.input:
        if vi.name in inits or vi.name in (bound or {}) or not vi.type.HasField("tensor_type"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") for d in dims):
            found.append(vi.name)
    return found


class GraphoptBackend(Backend):
    """Compiles for ``target`` (default TARGET, cpu) with ``target_options`` (default
    TARGET_OPTIONS) at ``opt_level`` (default OPT_LEVEL), each overridable as a keyword
    argument of ``prepare``: ``prepare(model, target="ascend-sim",
    target_options={"precision": "must_keep_origin_dtype"})``."""

    OPT_LEVEL = 2
    TARGET = "cpu"
    TARGET_OPTIONS: ClassVar[dict[str, Any]] = {}

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type == DeviceType.CPU

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> GraphoptRep:
        super().prepare(model, device, **kwargs)

        def build(bind: dict[str, tuple[int, ...]]) -> Compiled:
            return compile(
                model,
                kwargs.get("target", cls.TARGET),
                opt_level=kwargs.get("opt_level", cls.OPT_LEVEL),
                pipeline=kwargs.get("pipeline"),
                shapes={**(kwargs.get("shapes") or {}), **bind},
                target_options=kwargs.get("target_options", cls.TARGET_OPTIONS),
            )

        dynamic = _dynamic_inputs(model, kwargs.get("shapes"))
        if not dynamic:
            return GraphoptRep(build({}))
        inits = {t.name for t in model.graph.initializer}
        names = [vi.name for vi in model.graph.input if vi.name not in inits]
        return GraphoptRep(None, build, names, dynamic)

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU", outputs_info: Sequence[Any] | None = None, **kwargs: Any
    ) -> tuple[np.ndarray, ...]:
        arrays = [_as_array(x) for x in inputs]
        graph_inputs = [
            onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for name, a in zip(node.input, arrays)
            if name
        ]
        outputs = [onnx.helper.make_empty_tensor_value_info(name) for name in node.output if name]
        graph = onnx.helper.make_graph([node], "run_node", graph_inputs, outputs)
        opset = kwargs.pop("opset_version", onnx.defs.onnx_opset_version())
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid(node.domain, opset)])
        return cls.run_model(model, [a for name, a in zip(node.input, arrays) if name], device, **kwargs)


prepare = GraphoptBackend.prepare
run_model = GraphoptBackend.run_model
run_node = GraphoptBackend.run_node
supports_device = GraphoptBackend.supports_device
