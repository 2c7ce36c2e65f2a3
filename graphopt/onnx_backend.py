"""graphopt as an ``onnx.backend.base.Backend``, so ONNX's official test runner can drive it:

    import onnx.backend.test
    from graphopt.onnx_backend import GraphoptBackend
    tests = onnx.backend.test.BackendTest(GraphoptBackend, __name__)

``prepare`` compiles the model (binding any dynamic dimensions the model leaves open is
the caller's job: pass ``shapes=``); ``BackendRep.run`` runs the compiled plan. Only
graphopt's own kernels run: onnxruntime is not involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep, Device, DeviceType

from graphopt.compiler import Compiled, compile


def _as_array(x: Any) -> np.ndarray:
    """ONNX test data holds types numpy lacks natively (int4, float8 ...) as TensorProto."""
    if isinstance(x, onnx.TensorProto):
        return onnx.numpy_helper.to_array(x)
    return np.asarray(x)


class GraphoptRep(BackendRep):
    def __init__(self, compiled: Compiled):
        self.compiled = compiled

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            arrays: dict[str, np.ndarray] | list[np.ndarray] = {k: _as_array(v) for k, v in inputs.items()}
        elif isinstance(inputs, list | tuple):
            arrays = [_as_array(x) for x in inputs]
        else:
            arrays = [_as_array(inputs)]
        return tuple(self.compiled.run(arrays).values())


class GraphoptBackend(Backend):
    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type == DeviceType.CPU

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> GraphoptRep:
        super().prepare(model, device, **kwargs)
        compiled = compile(
            model,
            kwargs.get("target", "cpu"),
            opt_level=kwargs.get("opt_level", 2),
            pipeline=kwargs.get("pipeline"),
            shapes=kwargs.get("shapes"),
        )
        return GraphoptRep(compiled)

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
