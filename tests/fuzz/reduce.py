"""Reduce a failing fuzz case to a small graph that fails the same way.

    small = reduce_case(case, still_fails)      # still_fails(Case) -> bool

A greedy delta-debugging loop over the graph (each candidate is kept if ``still_fails``):
1. cut: the graph up to one value only (that value the single output, only its
   ancestors kept), trying the values with the fewest ancestors first;
2. bypass: drop a node whose output has the shape and dtype of one of its inputs, its
   users reading that input instead;
3. detach: a node's computed operand becomes a new graph input of its shape and dtype
   (cutting the nodes that computed it);
until no candidate is kept. Dynamic inputs are bound first (the reduced case is static).
Shapes and dtypes of the intermediate values come from one onnxruntime run of the
original graph with every value exposed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper

from tests.fuzz.graphs import Case, _feeds


def _static(case: Case) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    for vi in model.graph.input:
        if vi.name in case.shapes:
            for d, size in zip(vi.type.tensor_type.shape.dim, case.shapes[vi.name]):
                d.Clear()
                d.dim_value = size
    return model


def _value_types(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, tuple[tuple[int, ...], int]]:
    """Every top-level value's (shape, onnx elem type), from one onnxruntime run."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = [o for n in model.graph.node for o in n.output if o]
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_value_info(o, onnx.TypeProto()) for o in names)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    out = {}
    for name, value in zip(names, session.run(names, feeds)):
        a = np.asarray(value)
        out[name] = (tuple(a.shape), helper.np_dtype_to_tensor_dtype(a.dtype))
    for vi in model.graph.input:
        t = vi.type.tensor_type
        out[vi.name] = (tuple(d.dim_value for d in t.shape.dim), t.elem_type)
    for init in model.graph.initializer:
        out[init.name] = (tuple(init.dims), init.data_type)
    return out


def _rebuild(model: onnx.ModelProto, nodes: list[onnx.NodeProto], outputs: list[str],
             types: dict[str, tuple[tuple[int, ...], int]], extra_inputs: list[str] = ()) -> onnx.ModelProto:
    """``model`` with ``nodes``, ``outputs``, and only the inputs and initializers they read."""
    used = {i for n in nodes for i in n.input} | set(outputs) | _subgraph_reads(nodes)
    g = model.graph
    inputs = [vi for vi in g.input if vi.name in used]
    for name in extra_inputs:
        shape, elem = types[name]
        inputs.append(helper.make_tensor_value_info(name, elem, shape))
    inits = [t for t in g.initializer if t.name in used and t.name not in extra_inputs]
    outs = [helper.make_tensor_value_info(o, types[o][1], types[o][0]) for o in outputs]
    graph = helper.make_graph(nodes, g.name, inputs, outs, inits)
    new = helper.make_model(graph, opset_imports=list(model.opset_import))
    new.ir_version = model.ir_version
    new.metadata_props.extend(model.metadata_props)
    return new


def _subgraph_reads(nodes: list[onnx.NodeProto]) -> set[str]:
    """Names read inside the nodes' subgraphs (If branches, Loop bodies): outer values."""
    names: set[str] = set()
    for n in nodes:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                for m in a.g.node:
                    names.update(m.input)
                names.update(o.name for o in a.g.output)
    return names


def _ancestors(nodes: list[onnx.NodeProto], wanted: set[str]) -> list[onnx.NodeProto]:
    keep, need = [], set(wanted)
    for n in reversed(nodes):
        if any(o in need for o in n.output):
            keep.append(n)
            need.update(i for i in n.input if i)
            need |= _subgraph_reads([n])
    return list(reversed(keep))


def _case(template: Case, model: onnx.ModelProto) -> Case:
    return Case(template.seed, model, {}, _feeds(model, template.seed), template.features)


def reduce_case(case: Case, still_fails: Callable[[Case], bool], log: Callable[[str], None] | None = None) -> Case:
    """The smallest graph the greedy loop finds that ``still_fails``; ``case`` must fail."""
    model = _static(case)
    types = _value_types(model, _feeds(model, case.seed))
    current = _case(case, model)
    if not still_fails(current):
        current = case  # the failure needs the dynamic binding: reduce without cutting it
        return current

    def attempt(candidate: onnx.ModelProto) -> bool:
        nonlocal current
        try:
            trial = _case(case, candidate)
            if still_fails(trial):
                current = trial
                if log:
                    log(f"  {len(candidate.graph.node)} nodes")
                return True
        except Exception:  # a candidate that onnxruntime or the generator's helpers reject
            pass
        return False

    changed = True
    while changed:
        changed = False
        g = current.model.graph
        nodes = list(g.node)
        outputs = [o.name for o in g.output]
        # 1. cut at one value
        produced = [o for n in nodes for o in n.output if o and o in types and types[o][1] != 0]
        by_size = sorted(produced, key=lambda v: len(_ancestors(nodes, {v})))
        for v in by_size:
            if [v] == outputs or len(_ancestors(nodes, {v})) >= len(nodes):
                continue
            if attempt(_rebuild(current.model, _ancestors(nodes, {v}), [v], types)):
                changed = True
                break
        if changed:
            continue
        # 2. bypass a node
        for n in reversed(nodes):
            if len(n.output) != 1 or n.output[0] not in types:
                continue
            for i in n.input:
                if not i or i not in types or types[i] != types[n.output[0]]:
                    continue
                rest = []
                for m in nodes:
                    if m is n:
                        continue
                    m2 = onnx.NodeProto()
                    m2.CopyFrom(m)
                    for k, name in enumerate(m2.input):
                        if name == n.output[0]:
                            m2.input[k] = i
                    rest.append(m2)
                outs = [i if o == n.output[0] else o for o in outputs]
                if len(set(outs)) != len(outs) or any(o in {vi.name for vi in g.input} for o in outs):
                    continue
                if attempt(_rebuild(current.model, _ancestors(rest, set(outs)), outs, types)):
                    changed = True
                    break
            if changed:
                break
        if changed:
            continue
        # 3. detach a computed operand as a new input
        inputs = [vi.name for vi in g.input]
        for n in nodes:
            for i in n.input:
                if not i or i in inputs or i not in types or not any(i in m.output for m in nodes):
                    continue
                if types[i][1] not in (onnx.TensorProto.FLOAT, onnx.TensorProto.BOOL):
                    continue
                kept = _ancestors([m for m in nodes if i not in m.output], set(outputs))
                if len(kept) >= len(nodes) - 0 or not any(i in m.input for m in kept):
                    continue
                if attempt(_rebuild(current.model, kept, outputs, types, extra_inputs=[i])):
                    changed = True
                    break
            if changed:
                break
    return current
