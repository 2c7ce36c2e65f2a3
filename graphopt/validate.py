"""Validation: the same inputs through onnxruntime (the judge), outputs compared.

onnxruntime runs at its basic optimisation level (constant folding, no fusions), so it
computes what the ONNX spec says.

Tolerance per output: a base per dtype (float32: rtol 1e-4, atol 1e-5; float16: 1e-2, 1e-3;
bfloat16: 2e-2, 1e-2), the dtype being the output's or, when the target computes in a
narrower type (ascend-sim's force_fp16), that one; widened by sqrt(depth / covered) when
the model's deepest reduction (matmul K, conv C*kh*kw, reduce size) sums more terms than
the base covers (4096 at 32 bits, 256 at 16), since the rounding error of a sum grows with
the square root of its length. atol also scales with the output's largest finite magnitude
(when above 1). Integers and booleans must be equal.
An element passes when |ours - ref| <= atol + rtol * |ref|.

A target computing in the narrower type is then judged by what that type costs this very
model: an output the fixed tolerance fails passes when its worst error is within
FLOOR_FACTOR (2) times the judge's own error with every value rounded to the narrow type
(``rounding_floor``). An overflow is never within it (the floor is then not finite), and
validation names the node where the narrow type's range was left (``find_overflow``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Attribute, Operation

from graphopt import limits
from graphopt.errors import GraphoptError, ValidationError, escape

if TYPE_CHECKING:
    import onnx

    from graphopt.compiler import Compiled

_BASE_TOL = {
    "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-3),
    "bfloat16": (2e-2, 1e-2),
    "float64": (1e-7, 1e-9),
}


def random_inputs(specs: Sequence[tuple[str, tuple[int, ...], Any]], seed: int = 0) -> dict[str, Any]:
    """Seeded inputs, one per (name, shape, dtype); a dtype may also be the input's IR type
    (a sequence or optional: see ``compiled_inputs``).

    Floats (every width, bfloat16 and the float8s too) uniform in [-1, 1), rounded to their
    type; complex numbers with both parts so; integers 0 or 1, so that they are valid
    indices, token ids and attention masks (a mask of 3 makes attention ill-conditioned:
    its bias term grows to 2e4, where float32 rounding swamps the scores); booleans fair
    coins; strings short random words (object arrays of str, as onnxruntime takes them).
    A rank-0 input is a 0-d array, never a numpy scalar."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for name, shape, kind in specs:
        if isinstance(kind, np.dtype | type) or isinstance(kind, str):
            limits.check_shape(shape, kind, f"input {name}")  # before allocating it
            out[name] = random_array(rng, tuple(shape), np.dtype(kind))
        else:
            out[name] = random_value(rng, kind)
    return out


def random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """One seeded array of ``shape`` and ``dtype`` (see ``random_inputs``)."""
    from graphopt import dtypes

    if dtype.kind in "OUS":  # ONNX strings
        words = ["".join(chr(97 + int(c)) for c in rng.integers(0, 26, size=int(n))) for n in rng.integers(1, 6, size=math.prod(shape))]
        array = np.empty(len(words), dtype=object)
        array[:] = words
        return array.reshape(shape)
    if dtype == np.bool_:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.kind == "c":
        parts = rng.uniform(-1, 1, size=(2, *shape)).astype(np.float32)
        return np.asarray(parts[0] + 1j * parts[1]).astype(dtype)
    try:
        name = dtypes.from_numpy(dtype).name
    except KeyError:
        raise GraphoptError(f"validation: no random inputs of numpy dtype {dtype}; give --input files") from None
    if "int" in name:  # int8 ... uint64, and int4, uint4, int2, uint2
        return np.asarray(rng.integers(0, 2, size=shape)).astype(dtype)
    if name == "float8e8m0":  # powers of two only, no zero, no sign
        return np.asarray(2.0 ** rng.integers(-2, 3, size=shape)).astype(np.float32).astype(dtype)
    return np.asarray(rng.uniform(-1, 1, size=shape)).astype(np.float32).astype(dtype)


def random_value(rng: np.random.Generator, t: Attribute) -> Any:
    """A seeded value of IR type ``t``: a tensor (an unknown dimension is 2, an unranked
    tensor a vector of 2), a sequence (a list of two tensors) or an optional (present)."""
    from xdsl.dialects.builtin import UnrankedTensorType

    from graphopt import dtypes
    from graphopt.dialects.types import OptionalType, SequenceType, shape_of

    if isinstance(t, SequenceType):
        return [random_value(rng, t.element_type) for _ in range(2)]
    if isinstance(t, OptionalType):
        return random_value(rng, t.element_type)
    if isinstance(t, TensorType | UnrankedTensorType):
        shape = tuple(2 if d < 0 else d for d in shape_of(t)) if isinstance(t, TensorType) else (2,)
        return random_array(rng, shape, dtypes.from_ir(t.element_type).numpy)
    raise GraphoptError(f"validation: no random inputs of type {t}; give --input files")


def input_types(compiled: Compiled) -> list[Attribute | None]:
    """The IR type of each input of the compiled model (None where it cannot be told)."""
    return module_input_types(compiled.module, len(compiled.input_names))


def module_input_types(module: ModuleOp, count: int) -> list[Attribute | None]:
    """The IR types of the main function's ``count`` arguments (None where it cannot be told)."""
    from xdsl.dialects import func

    fn = next((op for op in module.ops if isinstance(op, func.FuncOp)), None)
    types = list(fn.function_type.inputs) if fn is not None else []
    return types if len(types) == count else [None] * count


def compiled_inputs(compiled: Compiled, seed: int = 0) -> dict[str, Any]:
    """Seeded inputs for every input of ``compiled`` (seeded_inputs)."""
    return seeded_inputs(compiled.input_names, compiled.input_specs, input_types(compiled), seed)


def seeded_inputs(names: Sequence[str], specs: Sequence[tuple[tuple[int, ...], np.dtype]],
                  types: Sequence[Attribute | None], seed: int = 0) -> dict[str, Any]:
    """Seeded inputs: tensors by their spec; sequences and optionals (whose spec is an
    object placeholder) and strings by their IR type."""
    found: list[tuple[str, tuple[int, ...], Any]] = []
    for name, (shape, dtype), t in zip(names, specs, types):
        found.append((name, shape, t if dtype == np.dtype(object) and t is not None and not isinstance(t, TensorType) else dtype))
    return random_inputs(found, seed)


def reduction_depth(module: ModuleOp) -> int:
    """The longest sum any op of ``module`` computes: what widens the tolerance."""
    return max((op_reduction_depth(op) for op in module.walk()), default=1)


def op_reduction_depth(op: Operation) -> int:
    """How many terms one result element of ``op`` sums: a matmul's K, a convolution's
    C/group x kernel size, a reduction's reduced count; 1 for anything else."""
    from graphopt.dialects.graph import GraphOp
    from graphopt.dialects.traits import Cube, Reduction

    def numel(v: Any) -> int:
        t = v.type
        return math.prod(t.get_shape()) if isinstance(t, TensorType) else 1

    if not isinstance(op, GraphOp) or not op.operands or not op.results:
        return 1
    if op.has_trait(Cube) and len(op.operands) >= 2:
        w = op.operands[1].type
        assert isinstance(w, TensorType)
        shape = w.get_shape()
        if op.ONNX_TYPE in ("Conv", "ConvInteger", "QLinearConv") and shape:
            return max(1, math.prod(shape) // max(shape[0], 1))
        if op.operands[0].type and isinstance(op.operands[0].type, TensorType):
            a = op.operands[0].type.get_shape()
            return max(1, a[-1] if a else 1)
    elif op.has_trait(Reduction):
        return max(1, numel(op.operands[0]) // max(numel(op.results[0]), 1))
    return 1


def tolerance(dtype: np.dtype, depth: int, compute_dtype: np.dtype | None = None) -> tuple[float, float]:
    """(rtol, atol) for an output of ``dtype`` computed in ``compute_dtype`` (a target that
    computes a float32 model in float16 is judged by float16's rounding)."""
    if dtype.kind == "c":  # each part is a float of half the width
        dtype = np.dtype(np.float32 if dtype.itemsize == 8 else np.float64)
    if dtype.kind != "f" and dtype.name != "bfloat16":
        return 0.0, 0.0
    name = dtype.name
    if compute_dtype is not None and np.dtype(compute_dtype).itemsize < dtype.itemsize:
        name = np.dtype(compute_dtype).name
    if name not in _BASE_TOL:
        return 0.0, 0.0
    rtol, atol = _BASE_TOL[name]
    # Rounding error of a length-n sum grows like sqrt(n): past the depth the base
    # tolerance covers (4096 terms at 32 bits, 256 at 16), widen by that factor.
    covered = 4096 if np.dtype(name if name != "bfloat16" else "float16").itemsize >= 4 else 256
    scale = math.sqrt(depth / covered) if depth > covered else 1.0
    return rtol * scale, atol * scale


# torch.testing.assert_close's defaults: the judge's own tolerances when torch eager judges.
TORCH_TOL = {
    "float32": (1.3e-6, 1e-5),
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
    "float64": (1e-7, 1e-7),
}


def torch_tolerance(dtype: np.dtype) -> tuple[float, float]:
    """torch's (rtol, atol) for ``dtype`` (``torch.testing.assert_close``'s defaults)."""
    return TORCH_TOL.get(dtype.name, (0.0, 0.0))


def compare(name: str, ours: np.ndarray, ref: np.ndarray, depth: int, compute_dtype: np.dtype | None = None,
            tol: tuple[float, float] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "shape": list(ref.shape), "dtype": str(ref.dtype)}
    if ours.dtype.kind in "OUS" and ref.dtype.kind in "OUS":  # strings, however numpy holds them
        ours, ref = ours.astype(object), ref.astype(object)
    if ours.shape != ref.shape or ours.dtype != ref.dtype:
        entry.update(passed=False, why=f"got {ours.dtype}{list(ours.shape)}, expected {ref.dtype}{list(ref.shape)}",
                     max_abs_err=math.inf, max_rel_err=math.inf, cosine=0.0)
        return entry
    rtol, atol = tol if tol is not None else tolerance(ref.dtype, depth, compute_dtype)
    narrower = compute_dtype is not None and np.dtype(compute_dtype).itemsize < ref.dtype.itemsize
    # A value beyond the narrower type's range is infinite there (IEEE overflow: an
    # attention mask's float32 minimum is -inf in float16): that is the value to expect.
    overflow = None
    magnitude = np.abs(ref.astype(np.float64)) if ref.dtype.kind == "f" else None
    if magnitude is not None and narrower and np.dtype(compute_dtype).kind == "f":
        overflow = magnitude > float(np.finfo(compute_dtype).max)
    if tol is None and magnitude is not None and ref.size:
        # Values went through storage whose rounding step is relative to their own
        # magnitude: near zero an output inherits the absolute error of the large values it
        # was computed from (a LayerNorm's input), so the absolute tolerance scales with the
        # largest magnitude involved (that the type can hold; infinities aside). In float32
        # too: two float32 implementations of wav2vec-like audio models (onnxruntime, torch
        # eager) differ by 4e-6 of their largest output.
        held = magnitude[~overflow] if overflow is not None else magnitude
        held = held[np.isfinite(held)]
        largest = float(held.max()) if held.size else 0.0
        # Computed in a narrower type, the step is relative below 1 too: a float16 atol of
        # 1e-3 would pass any error in a softmax over 1000 classes (every value 1e-3).
        atol *= max(1.0, largest) if not narrower else largest if largest > 0 else 1.0
    if ref.dtype.kind in "OUS":
        equal = all(_same_text(a, b) for a, b in zip(ours.reshape(-1), ref.reshape(-1)))
        entry.update(passed=equal, max_abs_err=0.0 if equal else math.inf, max_rel_err=0.0 if equal else math.inf, cosine=1.0)
        return entry
    wide = np.complex128 if ref.dtype.kind == "c" else np.float64
    a, b = ours.astype(wide), ref.astype(wide)
    both_nan = np.isnan(a) & np.isnan(b)
    # NaN on one side only is as far off as a value can be (a float16 overflow's inf - inf)
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, replaced below
        diff = np.where(both_nan, 0.0, np.where(np.isnan(a) | np.isnan(b), np.inf, np.abs(a - b)))
    diff = np.where(np.isinf(a) & np.isinf(b) & (a == b), 0.0, diff)
    if overflow is not None:
        diff = np.where(overflow & np.isinf(a) & (np.sign(a) == np.sign(b)), 0.0, diff)
    ok = (diff == 0) | (diff <= atol + rtol * np.abs(b))  # diff 0: equal, or NaN on both sides (atol + NaN fails)
    rel = diff / np.maximum(np.abs(b), np.finfo(np.float64).tiny)
    cos = _cosine(np.stack([a.real, a.imag]), np.stack([b.real, b.imag])) if wide is np.complex128 else _cosine(a, b)
    entry.update(
        passed=bool(ok.all()),
        max_abs_err=float(np.nanmax(diff)) if diff.size else 0.0,
        max_rel_err=float(np.nanmax(rel)) if rel.size else 0.0,
        cosine=cos,
        rtol=rtol,
        atol=atol,
    )
    if not entry["passed"]:
        worst = np.unravel_index(int(np.nanargmax(np.where(ok, -1.0, diff))), diff.shape) if diff.ndim else ()
        entry["worst_index"] = [int(i) for i in worst]
    return entry


def _same_text(a: Any, b: Any) -> bool:
    """Two ONNX strings are the same when equal, or when both write the same number: the
    spec leaves the digits of a number cast to a string to the implementation ("plain
    floating-point representation"), so onnxruntime's "0" and "0.62654048" are our "0.0"
    and "0.6265405" (compared as float32, the narrowest type such a string comes from)."""
    if a == b:
        return True
    try:
        x, y = np.float32(float(a)), np.float32(float(b))
    except (TypeError, ValueError, OverflowError):
        return False
    return bool(x == y or (np.isnan(x) and np.isnan(y)))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity over the elements finite on both sides, each side scaled by its
    largest magnitude first (a mask's -3.4e38 would overflow the dot product)."""
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    sa, sb = (float(np.abs(v).max()) if v.size else 0.0 for v in (a, b))
    if not sa or not sb:
        return float(sa == sb)
    a, b = a / sa, b / sb
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def validate(compiled: Compiled, inputs: Mapping[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """Compare ``compiled`` with its judge and record the result as its report's
    ``validation``: torch eager for a model that came from torch (``compiled.reference``),
    else onnxruntime on the ONNX model it was compiled from."""
    if compiled.reference is not None:
        result = validate_against_torch(compiled, compiled.reference, inputs, seed=seed)
    else:
        assert compiled.source is not None, "a compiled model keeps its ONNX source for validation"
        result = validate_against_onnxruntime(compiled, compiled.source, inputs, seed=seed)
    compiled.report["validation"] = result
    return result


def validate_against_onnxruntime(
    compiled: Compiled, model: onnx.ModelProto, inputs: Mapping[str, Any] | None = None, seed: int = 0
) -> dict[str, Any]:
    import onnxruntime as ort

    feeds = dict(inputs) if inputs is not None else compiled_inputs(compiled, seed)
    ours = compiled.run(feeds)
    refs = run_onnxruntime(model, compiled.output_names, feeds)
    depth = reduction_depth(compiled.module)
    compute = getattr(compiled.executable, "compute_dtype", None)
    outputs = [compare_value(name, ours[name], ref, depth, compute) for name, ref in zip(compiled.output_names, refs)]
    result = {
        "reference": f"onnxruntime {ort.__version__}",
        "seed": None if inputs is not None else seed,
        "reduction_depth": depth,
        "compute_dtype": None if compute is None else np.dtype(compute).name,
        "passed": all(o["passed"] for o in outputs),
        "outputs": outputs,
    }
    narrow = compute is not None and np.dtype(compute).kind == "f"
    if not result["passed"] and narrow:
        floors = rounding_floor(model, compiled.output_names, feeds, refs, np.dtype(compute))
        for o, floor in zip(outputs, floors):
            judge_by_floor(o, floor)
        result["passed"] = all(o["passed"] for o in outputs)
    if not result["passed"] and not narrow:
        for o, floor in zip(outputs, conditioning_floor(model, compiled.output_names, feeds, refs)):
            judge_by_floor(o, floor, "conditioning_floor")
        result["passed"] = all(o["passed"] for o in outputs)
    if not result["passed"] and narrow:
        kept = (compiled.report.get("chip") or {}).get("keep_dtype") or ()
        overflow = find_overflow(model, feeds, np.dtype(compute), kept)
        if overflow is not None:
            result["overflow"] = overflow
    return result


FLOOR_FACTOR = 2.0  # how far past the judge's own narrow-type rounding error a target may be
LOSSY_COSINE = 0.999  # below this, an output passing by the floor gets a word that the narrow type loses it


def judge_by_floor(entry: dict[str, Any], floor: float | None, kind: str = "rounding_floor") -> None:
    """An output the fixed tolerance failed passes when its worst error is within
    FLOOR_FACTOR times ``floor``: what rounding to the narrow type alone costs it
    (``rounding_floor``), or how far one rounding of the inputs moves the judge's own output
    (``conditioning_floor``)."""
    if floor is None:
        return
    entry[kind] = floor
    if not entry["passed"] and entry["max_abs_err"] <= FLOOR_FACTOR * floor + entry.get("atol", 0.0):
        entry.update(passed=True, judged_by=kind)


def conditioning_floor(model: onnx.ModelProto, names: Sequence[str], feeds: Mapping[str, Any],
                       refs: Sequence[Any]) -> list[float | None]:
    """How far the judge's own float32 outputs move when every float input and initializer
    is rounded once more (each value times 1 +- 2^-24, a seeded sign per element): what
    float32 rounding costs a model that amplifies it, as an implementation's own rounding
    at every op does. A fixed tolerance assumes errors stay near the rounding they start as;
    timm's ConvMixer (32 blocks, each normalised by BatchNorm) turns one rounding of its
    input into 2e-4 at its logits, and onnxruntime and torch differ from each other by as
    much. Per output, the largest difference from ``refs``; None when nothing is float or
    the judge cannot run."""
    from onnx import numpy_helper

    rng = np.random.default_rng(0)

    def nudge(a: np.ndarray) -> np.ndarray:
        sign = rng.choice(np.array([-1.0, 1.0]), size=a.shape)
        return (a.astype(np.float64) * (1 + sign * 2.0 ** -24)).astype(a.dtype)

    nudged = {k: nudge(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size else v for k, v in feeds.items()}
    moved = model.__class__()
    moved.CopyFrom(model)
    try:
        for k, init in enumerate(moved.graph.initializer):
            a = numpy_helper.to_array(init)
            if a.dtype.kind == "f" and a.size:
                moved.graph.initializer[k].CopyFrom(numpy_helper.from_array(nudge(a), init.name))
        again = run_onnxruntime(moved, names, nudged)
    except Exception:  # data the judge cannot reread or run: no floor, the tolerance stands
        return [None] * len(names)
    return [max_finite_diff(a, b) for a, b in zip(again, refs)]


def rounding_floor(model: onnx.ModelProto, names: Sequence[str], feeds: Mapping[str, Any], refs: Sequence[Any],
                   narrow: np.dtype) -> list[float | None]:
    """What storing every value in ``narrow`` (float16) costs this model, measured by the
    judge: onnxruntime runs the model once more with its float32 inputs, initializers and
    every float32 result of the main graph rounded to ``narrow`` (a Cast there and back after
    each node) and computes everything else in float32, as a chip in force_fp16 stores each
    kernel's result in fp16 and accumulates in fp32. Per output, the largest difference from
    the float32 reference ``refs``; None where it is not finite (an overflow: find_overflow
    says where) or the judge cannot run the rounded model.

    A fixed tolerance cannot judge a narrow type: what rounding costs grows with the model's
    depth and conditioning (torch itself, run in float16, is 1 % of the largest output off on
    MobileNet and 0.05 % on GPT-2), so the target is judged against this floor instead."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    code = {np.dtype(np.float16): TensorProto.FLOAT16}.get(np.dtype(narrow))
    if code is None:
        return [None] * len(names)
    try:
        typed = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # onnx cannot infer this model's types: no floor, the base tolerance stands
        return [None] * len(names)
    elem = {vi.name: vi.type.tensor_type.elem_type for vi in (*typed.graph.value_info, *typed.graph.output, *typed.graph.input)
            if vi.type.HasField("tensor_type")}
    rounded = onnx.ModelProto()
    rounded.CopyFrom(model)
    g = rounded.graph
    nodes = []
    for k, node in enumerate(g.node):
        nodes.append(node)
        for j, out in enumerate(node.output):
            if out and elem.get(out) == TensorProto.FLOAT:
                wide = f"{out}__graphopt_f32_{k}"
                node.output[j] = wide
                nodes.append(helper.make_node("Cast", [wide], [f"{wide}_narrow"], to=code))
                nodes.append(helper.make_node("Cast", [f"{wide}_narrow"], [out], to=TensorProto.FLOAT))
    del g.node[:]
    g.node.extend(nodes)
    for k, init in enumerate(g.initializer):
        if init.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(init)
            with np.errstate(over="ignore"):
                g.initializer[k].CopyFrom(numpy_helper.from_array(arr.astype(narrow).astype(np.float32), init.name))
    with np.errstate(over="ignore"):
        given = {n: v.astype(narrow).astype(v.dtype) if isinstance(v, np.ndarray) and v.dtype == np.float32 else v
                 for n, v in feeds.items()}
    try:
        got = run_onnxruntime(rounded, names, given, optimize=False)
    except GraphoptError:
        return [None] * len(names)
    return [max_finite_diff(a, b) for a, b in zip(got, refs)]


def node_values(model: onnx.ModelProto, feeds: Mapping[str, Any]) -> dict[str, Any]:
    """Every value of the main graph as the judge computes it (its outputs and each node's
    results), by name: onnxruntime runs once more with every node's output exposed."""
    import onnx

    seen = {o.name for o in model.graph.output}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for node in model.graph.node:
        for out in node.output:
            if out and out not in seen:
                seen.add(out)
                probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(out))
    names = [o.name for o in probe.graph.output]
    return dict(zip(names, run_onnxruntime(probe, names, feeds)))


def max_finite_diff(a: Any, b: Any) -> float | None:
    """The largest |a - b| of two float arrays of one shape; None when they are not that,
    or when a difference is not finite (an overflow on one side)."""
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray) or a.shape != b.shape or a.dtype.kind != "f" or not a.size:
        return None
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return float(d.max()) if np.isfinite(d).all() else None


def find_overflow(model: onnx.ModelProto, feeds: Mapping[str, Any], narrow: np.dtype,
                  kept: Collection[str] = ()) -> dict[str, Any] | None:
    """Why a target computing in ``narrow`` (float16) failed where the float32 reference did
    not, when the cause is range: the first node, in the graph's (execution) order, whose
    reference result has a finite value beyond ``narrow``'s largest, or that divides by a
    nonzero value below its smallest normal (zero there). The judge runs once more with
    every node's output exposed. ``keep`` says what to keep in float32: every node whose
    result leaves the range and the nodes reading it (their op types when more than three).
    ``kept``: node names and op types computed in float32 already (--keep-dtype); a value that
    a kept node makes and only kept nodes read never passes through ``narrow``."""
    finfo = np.finfo(narrow)
    main = [n for n in model.graph.node]
    stays = lambda n: (n.name or n.output[0]) in kept or n.op_type in kept  # noqa: E731
    try:
        values = node_values(model, feeds)
    except GraphoptError:
        return None
    first: dict[str, Any] | None = None
    beyond: list[tuple[str, str]] = []  # (node, op type) of every node leaving the range, and of its readers
    for node in main:
        divisor = values.get(node.input[1]) if node.op_type in ("Div", "Mod", "Reciprocal") and len(node.input) > 1 else None
        if node.op_type == "Reciprocal":
            divisor = values.get(node.input[0])
        if first is None and isinstance(divisor, np.ndarray) and divisor.dtype.kind == "f":
            d = np.abs(divisor[np.isfinite(divisor) & (divisor != 0)].astype(np.float64))
            if d.size and float(d.min()) < float(finfo.tiny) and narrow.itemsize < divisor.dtype.itemsize:
                return {"node": node.name or node.output[0], "op_type": node.op_type, "kind": "underflow",
                        "magnitude": float(d.min()), "limit": float(finfo.tiny)}
        for out in node.output:
            v = values.get(out)
            if not isinstance(v, np.ndarray) or v.dtype.kind != "f" or v.dtype.itemsize <= narrow.itemsize or not v.size:
                continue
            finite = np.abs(v[np.isfinite(v)].astype(np.float64))
            if finite.size and float(finite.max()) > float(finfo.max):
                readers = [n for n in main if out in n.input]
                if stays(node) and all(stays(r) for r in readers):
                    continue
                if first is None:
                    first = {"node": node.name or out, "op_type": node.op_type, "kind": "overflow", "value": out,
                             "magnitude": float(finite.max()), "limit": float(finfo.max)}
                beyond += [(n.name or n.output[0], n.op_type) for n in ([node] if node.op_type != "Constant" else []) + readers]
    if first is not None:
        # What --keep-dtype must name: these nodes, or (when more than one) their op types.
        first["keep"] = list(dict.fromkeys(n for n, _ in beyond)) if len(beyond) <= 3 else \
            sorted({t for _, t in beyond})
    return first


def overflow_advice(o: dict[str, Any], narrow: str = "float16") -> str:
    """One line: where the narrow type's range was left, and what to do."""
    where = f"node {escape(o['node'])} ({o['op_type']})"
    if o["kind"] == "underflow":
        what = f"{narrow} underflow at {where}: a divisor of {o['magnitude']:.3g} is zero in {narrow}"
    else:
        what = f"{narrow} overflow at {where}: |x| reaches {o['magnitude']:.3g}, beyond {narrow}'s {o['limit']:.6g}"
    fix = "compile with --precision must_keep_origin_dtype"
    if o.get("keep"):
        fix += f", or keep {', '.join(escape(k) for k in o['keep'])} in float32 (--keep-dtype FILE, one per line)"
    return f"{what}, where the float32 reference stays finite; {fix}"


def judge_cannot_run(judge: str, e: BaseException) -> GraphoptError:
    """The error for a judge that cannot run the model: its own reason, never a verdict."""
    import re

    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    reason = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", lines[0]) if lines else type(e).__name__
    if len(reason) > 300:
        reason = reason[:297] + "..."
    return GraphoptError(f"validation: {judge} cannot run this model ({reason}); use --no-validate")


# Element types numpy knows only through ml_dtypes: onnxruntime takes and gives them as
# OrtValues; the sub-byte ones packed, the first element in the lowest bits.
_PACKED_BITS = {"int4": 4, "uint4": 4, "float4e2m1": 4, "int2": 2, "uint2": 2}


def _is_extended(dtype: np.dtype) -> bool:
    """A numpy dtype of ml_dtypes (bfloat16, float8s, int4 ...): numpy's user-defined types
    (whose kind is not a reliable sign: float8_e5m2's is "f")."""
    return dtype.num >= 256


def _to_ortvalue(array: np.ndarray) -> Any:
    import ctypes

    import onnxruntime as ort

    from graphopt import dtypes

    d = dtypes.from_numpy(array.dtype)
    codes = np.ascontiguousarray(array).view(np.uint8).reshape(-1)
    bits = _PACKED_BITS.get(d.name)
    if bits:
        per = 8 // bits
        codes = np.concatenate([codes & ((1 << bits) - 1), np.zeros(-len(codes) % per, np.uint8)]).reshape(-1, per)
        codes = np.bitwise_or.reduce(codes << (np.arange(per, dtype=np.uint8) * bits), axis=1).astype(np.uint8)
    value = ort.OrtValue.ortvalue_from_shape_and_type(list(array.shape), d.onnx)
    if value.tensor_size_in_bytes() != codes.nbytes:
        raise ValueError(f"{d.name} tensors of shape {list(array.shape)} take {value.tensor_size_in_bytes()} bytes there, not {codes.nbytes}")
    if codes.nbytes:
        ctypes.memmove(value.data_ptr(), codes.ctypes.data, codes.nbytes)
    return value


def _from_ortvalue(value: Any) -> np.ndarray:
    import ctypes

    from graphopt import dtypes

    if not value.is_tensor():
        raise ValueError("an output that is not a tensor has an element type numpy lacks")
    d = dtypes.from_onnx(value.element_type())
    shape = tuple(value.shape())
    if not _is_extended(d.numpy):
        return np.asarray(value.numpy())
    size = value.tensor_size_in_bytes()
    raw = np.frombuffer(ctypes.string_at(value.data_ptr(), size), np.uint8) if size else np.zeros(0, np.uint8)
    bits = _PACKED_BITS.get(d.name)
    if bits:
        per = 8 // bits
        raw = ((raw[:, None] >> (np.arange(per, dtype=np.uint8) * bits)) & ((1 << bits) - 1)).reshape(-1)
        raw = raw[: math.prod(shape)]
    return raw.astype(np.uint8).view(d.numpy).reshape(shape).copy()


def _ort_feed(value: Any) -> Any:
    if isinstance(value, list):
        return [_ort_feed(v) for v in value]
    if isinstance(value, np.ndarray) and _is_extended(value.dtype):
        return _to_ortvalue(value)
    if isinstance(value, np.generic):
        return np.asarray(value)
    return value


def _dense_if_sparse(value: Any) -> Any:
    """onnxruntime returns a sparse Constant's value as its own SparseTensor (COO): the
    dense tensor the ONNX spec says the node outputs."""
    if not hasattr(value, "get_coo_data") or not hasattr(value, "dense_shape"):
        return value
    shape = tuple(int(d) for d in value.dense_shape())
    values = np.asarray(value.values()).reshape(-1)
    indices = np.asarray(value.get_coo_data().indices()).astype(np.int64)
    flat = np.ravel_multi_index(tuple(indices.reshape(len(values), -1).T), shape) if indices.ndim == 2 and len(shape) > 1 \
        else indices.reshape(-1)
    out = np.zeros(shape, values.dtype)
    out.reshape(-1)[flat] = values
    return out


def run_onnxruntime(model: onnx.ModelProto, names: Sequence[str], feeds: Mapping[str, Any], *,
                    optimize: bool = True) -> list[Any]:
    """The judge's outputs ``names`` on ``feeds`` (arrays; lists for sequences; None for an
    empty optional). A model onnxruntime refuses to load, lacks a kernel for or fails to
    run is a GraphoptError saying so: that is no verdict on our outputs. ``optimize=False``
    runs the graph exactly as written (no constant folding, no cast elimination)."""
    import onnxruntime as ort

    from graphopt import dtypes

    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # fatal only: a failing run is reported in our one line, not logged too
    # Basic level only: the extended fusions assume things ONNX does not say (a fused
    # attention treats any mask value as 0/1), and the judge must follow the ONNX spec.
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_BASIC if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    declared = {vi.name: vi.type.tensor_type.elem_type for vi in model.graph.output if vi.type.HasField("tensor_type")}
    extended = any(code in dtypes.BY_ONNX and _is_extended(dtypes.BY_ONNX[code].numpy) for code in declared.values())
    try:
        session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        given = {k: _ort_feed(v) for k, v in feeds.items()}
        if not extended:
            return [_dense_if_sparse(v) for v in session.run(list(names), given)]
        # An output numpy cannot hold (bfloat16, float8 ...): read it from its OrtValue.
        values = {k: v if isinstance(v, ort.OrtValue) else ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v)) for k, v in given.items()}
        return [_from_ortvalue(v) for v in session.run_with_ort_values(list(names), values)]
    except Exception as e:  # the judge cannot run the model: say so, do not guess
        raise judge_cannot_run("onnxruntime", e) from None


def compare_value(name: str, ours: Any, ref: Any, depth: int, compute_dtype: np.dtype | None = None,
                  tol: tuple[float, float] | None = None) -> dict[str, Any]:
    """``compare`` for any value an output can be: a tensor, a sequence (a list: equal
    lengths, each element compared) or an optional (None when empty)."""
    if isinstance(ours, list | tuple) or isinstance(ref, list | tuple) or ours is None or ref is None:
        kind = "sequence" if isinstance(ref, list | tuple) else "optional" if ref is None else "tensor"
        entry: dict[str, Any] = {"name": name, "shape": [len(ref)] if isinstance(ref, list | tuple) else [], "dtype": kind}
        same_kind = (ours is None) == (ref is None) and isinstance(ours, list | tuple) == isinstance(ref, list | tuple)
        if not same_kind or (isinstance(ref, list | tuple) and len(ours) != len(ref)):
            got = "nothing" if ours is None else f"a sequence of {len(ours)}" if isinstance(ours, list | tuple) else "a tensor"
            want = "nothing" if ref is None else f"a sequence of {len(ref)}" if isinstance(ref, list | tuple) else "a tensor"
            entry.update(passed=False, why=f"got {got}, expected {want}", max_abs_err=math.inf, max_rel_err=math.inf, cosine=0.0)
            return entry
        parts = [compare_value(f"{name}[{k}]", o, r, depth, compute_dtype, tol) for k, (o, r) in enumerate(zip(ours, ref))] if ref is not None else []
        entry.update(
            passed=all(p["passed"] for p in parts),
            max_abs_err=max((p["max_abs_err"] for p in parts), default=0.0),
            max_rel_err=max((p["max_rel_err"] for p in parts), default=0.0),
            cosine=min((p["cosine"] for p in parts), default=1.0),
        )
        bad = [p for p in parts if not p["passed"]]
        if bad:
            entry["why"] = f"{bad[0]['name']}: {bad[0].get('why', 'values differ')}"
        return entry
    return compare(name, np.asarray(ours), np.asarray(ref), depth, compute_dtype, tol)


def compare_with_torch(
    name: str, ours: Any, ref: Any, depth: int, compute_dtype: np.dtype | None = None
) -> dict[str, Any]:
    """``compare`` with torch's own tolerances, except for a target that computes in a
    narrower type (ascend-sim's float16): torch's float16 table assumes both sides computed
    in float16, so such a target is judged as against onnxruntime (rounding and depth)."""
    if isinstance(ref, list | tuple) or ref is None or isinstance(ours, list | tuple) or ours is None:
        return compare_value(name, ours, ref, depth, compute_dtype)
    ref = np.asarray(ref)
    if compute_dtype is not None and np.dtype(compute_dtype).itemsize < ref.dtype.itemsize:
        return compare(name, np.asarray(ours), ref, depth, compute_dtype=compute_dtype)
    return compare(name, np.asarray(ours), ref, depth, tol=torch_tolerance(ref.dtype))


def validate_against_torch(
    compiled: Compiled,
    reference: Callable[[Sequence[np.ndarray]], list[np.ndarray]],
    inputs: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Our outputs against torch eager (``reference`` runs it on numpy inputs), with
    torch's own tolerances (``torch.testing.assert_close``'s defaults per dtype)."""
    feeds = dict(inputs) if inputs is not None else compiled_inputs(compiled, seed)
    ours = compiled.run(feeds)
    try:
        refs = reference([feeds[n] for n in compiled.input_names])
    except Exception as e:  # eager refuses the inputs or fails: no verdict on our outputs
        raise judge_cannot_run("torch eager", e) from None
    # An exported program returns its buffer mutations first: compare the user outputs, last.
    names = compiled.output_names[len(compiled.output_names) - len(refs):]
    compute = getattr(compiled.executable, "compute_dtype", None)
    depth = reduction_depth(compiled.module)
    outputs = [compare_with_torch(name, ours[name], ref, depth, compute) for name, ref in zip(names, refs)]
    rounded = getattr(reference, "rounded_to_half", None)
    if not all(o["passed"] for o in outputs) and rounded is not None and compute is not None and np.dtype(compute) == np.float16:
        # Past the fixed tolerance, the float16 floor: eager with every value rounded to float16.
        halves = rounded([feeds[n] for n in compiled.input_names])
        halves = halves[len(halves) - len(refs):]  # the user outputs, last (as refs)
        for o, h, r in zip(outputs, halves, refs):
            judge_by_floor(o, max_finite_diff(h, r))
    result = {
        "reference": "torch eager",
        "seed": None if inputs is not None else seed,
        "reduction_depth": depth,
        "compute_dtype": None if compute is None else np.dtype(compute).name,
        "passed": all(o["passed"] for o in outputs),
        "outputs": outputs,
    }
    finder = getattr(reference, "find_overflow", None)
    if not result["passed"] and finder is not None and compute is not None and np.dtype(compute).kind == "f":
        overflow = finder([feeds[n] for n in compiled.input_names], np.dtype(compute))
        if overflow is not None:
            result["overflow"] = overflow
    return result


def check(result: dict[str, Any]) -> None:
    """Raise ValidationError naming the worst outputs if validation failed."""
    if result["passed"]:
        return
    bad = sorted((o for o in result["outputs"] if not o["passed"]), key=lambda o: -o["max_abs_err"])
    names = ", ".join(f"{escape(o['name'])} (max abs err {o['max_abs_err']:.3g}, max rel err {o['max_rel_err']:.3g}"
                      + (f", {result.get('compute_dtype')} rounding alone costs {o['rounding_floor']:.3g}" if "rounding_floor" in o else "")
                      + ")" for o in bad[:3])
    if "overflow" in result:
        raise ValidationError(f"validation against {result['reference']} failed for {len(bad)} output(s): {names}: "
                              f"{overflow_advice(result['overflow'], result.get('compute_dtype') or 'float16')}")
    narrow = result.get("compute_dtype")
    hint = (f": no value left {narrow}'s range; to tell {narrow} rounding from a wrong result, compile with --precision "
            "must_keep_origin_dtype, and `graphopt compare` names the first node out of tolerance") \
        if narrow in ("float16", "bfloat16") else ""
    raise ValidationError(f"validation against {result['reference']} failed for {len(bad)} output(s): {names}{hint}")


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"validation vs {result['reference']}: {'PASSED' if result['passed'] else 'FAILED'}"]
    names = [escape(o["name"]) for o in result["outputs"]]  # the model's names: one line each, whatever they hold
    width = max((len(n) for n in names), default=4)
    lines.append(f"  {'output':<{width}}  {'max_abs_err':>11}  {'max_rel_err':>11}  {'cosine':>9}")
    for name, o in zip(names, result["outputs"]):
        mark = "" if o["passed"] else "  <-- mismatch"
        lines.append(f"  {name:<{width}}  {o['max_abs_err']:>11.3g}  {o['max_rel_err']:>11.3g}  {o['cosine']:>9.6f}{mark}")
    for name, o in zip(names, result["outputs"]):
        if o.get("judged_by") == "conditioning_floor":
            lines.append(f"  {name}: within {FLOOR_FACTOR:g}x of how far one float32 rounding of the inputs moves the judge's "
                         f"own output (max abs err {o['conditioning_floor']:.3g}): the model amplifies rounding")
    floored = [(n, o) for n, o in zip(names, result["outputs"]) if o.get("judged_by") == "rounding_floor"]
    for name, o in floored:
        lines.append(f"  {name}: within {FLOOR_FACTOR:g}x of what {result.get('compute_dtype')} storage costs this model "
                     f"(the judge with every value rounded to it: max abs err {o['rounding_floor']:.3g})")
        if o["cosine"] < LOSSY_COSINE:
            lines.append(f"  {name}: {result.get('compute_dtype')} itself loses this model (cosine {o['cosine']:.4f} against "
                         "float32); compile with --precision must_keep_origin_dtype to keep float32")
    if "overflow" in result:
        lines.append(f"  why: {overflow_advice(result['overflow'], result.get('compute_dtype') or 'float16')}")
    return lines
