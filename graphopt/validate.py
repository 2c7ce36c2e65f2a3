"""Validation: the same inputs through onnxruntime (the judge), outputs compared.

onnxruntime runs at its basic optimisation level (constant folding, no fusions), so it
computes what the ONNX spec says.

Tolerance per output: a base per dtype (float32: rtol 1e-4, atol 1e-5; float16: 1e-2, 1e-3;
bfloat16: 2e-2, 1e-2), the dtype being the output's or, when the target computes in a
narrower type (ascend-sim's force_fp16), that one; widened by sqrt(depth / covered) when
the model's deepest reduction (matmul K, conv C*kh*kw, reduce size) sums more terms than
the base covers (4096 at 32 bits, 256 at 16), since the rounding error of a sum grows with
the square root of its length. When the target computes in the narrower type, atol also
scales with the output's largest magnitude. Integers and booleans must be equal.
An element passes when |ours - ref| <= atol + rtol * |ref|.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp, TensorType

from graphopt.errors import GraphoptError, ValidationError

if TYPE_CHECKING:
    import onnx

    from graphopt.compiler import Compiled

_BASE_TOL = {
    "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-3),
    "bfloat16": (2e-2, 1e-2),
    "float64": (1e-7, 1e-9),
}


def random_inputs(specs: list[tuple[str, tuple[int, ...], np.dtype]], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs: floats uniform in [-1, 1); integers 0 or 1, so that they are valid
    indices, token ids and attention masks (a mask of 3 makes attention ill-conditioned:
    its bias term grows to 2e4, where float32 rounding swamps the scores); booleans fair
    coins."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape, dtype in specs:
        if dtype == np.bool_:
            out[name] = rng.random(shape) < 0.5
        elif np.issubdtype(dtype, np.integer):
            out[name] = rng.integers(0, 2, size=shape).astype(dtype)
        else:
            out[name] = rng.uniform(-1, 1, size=shape).astype(np.float32).astype(dtype)
    return out


def reduction_depth(module: ModuleOp) -> int:
    from graphopt.dialects.graph import GraphOp
    from graphopt.dialects.traits import Cube, Reduction

    def numel(v: Any) -> int:
        t = v.type
        return math.prod(t.get_shape()) if isinstance(t, TensorType) else 1

    depth = 1
    for op in module.walk():
        if not isinstance(op, GraphOp) or not op.operands or not op.results:
            continue
        if op.has_trait(Cube) and len(op.operands) >= 2:
            w = op.operands[1].type
            assert isinstance(w, TensorType)
            shape = w.get_shape()
            if op.ONNX_TYPE in ("Conv", "ConvInteger", "QLinearConv") and shape:
                depth = max(depth, math.prod(shape) // max(shape[0], 1))
            elif op.operands[0].type and isinstance(op.operands[0].type, TensorType):
                a = op.operands[0].type.get_shape()
                depth = max(depth, a[-1] if a else 1)
        elif op.has_trait(Reduction):
            depth = max(depth, numel(op.operands[0]) // max(numel(op.results[0]), 1))
    return depth


def tolerance(dtype: np.dtype, depth: int, compute_dtype: np.dtype | None = None) -> tuple[float, float]:
    """(rtol, atol) for an output of ``dtype`` computed in ``compute_dtype`` (a target that
    computes a float32 model in float16 is judged by float16's rounding)."""
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
    if ours.shape != ref.shape or ours.dtype != ref.dtype:
        entry.update(passed=False, why=f"got {ours.dtype}{list(ours.shape)}, expected {ref.dtype}{list(ref.shape)}",
                     max_abs_err=math.inf, max_rel_err=math.inf, cosine=0.0)
        return entry
    rtol, atol = tol if tol is not None else tolerance(ref.dtype, depth, compute_dtype)
    narrower = compute_dtype is not None and np.dtype(compute_dtype).itemsize < ref.dtype.itemsize
    # A value beyond the narrower type's range is infinite there (IEEE overflow: an
    # attention mask's float32 minimum is -inf in float16): that is the value to expect.
    overflow = None
    magnitude = np.abs(ref.astype(np.float64)) if narrower and ref.dtype.kind == "f" else None
    if magnitude is not None and np.dtype(compute_dtype).kind == "f":
        overflow = magnitude > float(np.finfo(compute_dtype).max)
    if tol is None and magnitude is not None and ref.size:
        # Computed in a narrower type, values went through storage whose rounding step is
        # relative to their own magnitude: near zero an output inherits the absolute error
        # of the large values it was computed from (a LayerNorm's input), so the absolute
        # tolerance scales with the largest magnitude involved (that the type can hold).
        held = magnitude[~overflow] if overflow is not None else magnitude
        atol *= max(1.0, float(np.nanmax(held))) if held.size else 1.0
    if ref.dtype.kind in "OUS":
        equal = bool(np.array_equal(ours, ref))
        entry.update(passed=equal, max_abs_err=0.0 if equal else math.inf, max_rel_err=0.0 if equal else math.inf, cosine=1.0)
        return entry
    a, b = ours.astype(np.float64), ref.astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    diff = np.where(np.isinf(a) & np.isinf(b) & (a == b), 0.0, diff)
    if overflow is not None:
        diff = np.where(overflow & np.isinf(a) & (np.sign(a) == np.sign(b)), 0.0, diff)
    ok = diff <= atol + rtol * np.abs(b)
    rel = diff / np.maximum(np.abs(b), np.finfo(np.float64).tiny)
    cos = _cosine(a, b)
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


def validate_against_onnxruntime(
    compiled: Compiled, model: onnx.ModelProto, inputs: Mapping[str, np.ndarray] | None = None, seed: int = 0
) -> dict[str, Any]:
    import onnxruntime as ort

    specs = [(n, s[0], s[1]) for n, s in zip(compiled.input_names, compiled.input_specs)]
    feeds = dict(inputs) if inputs is not None else random_inputs(specs, seed)
    ours = compiled.run(feeds)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # Basic level only: the extended fusions assume things ONNX does not say (a fused
    # attention treats any mask value as 0/1), and the judge must follow the ONNX spec.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:
        session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        refs = session.run(compiled.output_names, feeds)
    except Exception as e:  # the judge cannot run the model: say so, do not guess
        raise GraphoptError(f"onnxruntime cannot run the model to validate it ({str(e).strip().splitlines()[0]}); use --no-validate") from None
    depth = reduction_depth(compiled.module)
    compute = getattr(compiled.executable, "compute_dtype", None)
    outputs = [compare(name, ours[name], np.asarray(ref), depth, compute) for name, ref in zip(compiled.output_names, refs)]
    return {
        "reference": f"onnxruntime {ort.__version__}",
        "seed": None if inputs is not None else seed,
        "reduction_depth": depth,
        "compute_dtype": None if compute is None else np.dtype(compute).name,
        "passed": all(o["passed"] for o in outputs),
        "outputs": outputs,
    }


def compare_with_torch(
    name: str, ours: np.ndarray, ref: np.ndarray, depth: int, compute_dtype: np.dtype | None = None
) -> dict[str, Any]:
    """``compare`` with torch's own tolerances, except for a target that computes in a
    narrower type (ascend-sim's float16): torch's float16 table assumes both sides computed
    in float16, so such a target is judged as against onnxruntime (rounding and depth)."""
    if compute_dtype is not None and np.dtype(compute_dtype).itemsize < ref.dtype.itemsize:
        return compare(name, ours, ref, depth, compute_dtype=compute_dtype)
    return compare(name, ours, ref, depth, tol=torch_tolerance(ref.dtype))


def validate_against_torch(
    compiled: Compiled,
    reference: Callable[[Sequence[np.ndarray]], list[np.ndarray]],
    inputs: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Our outputs against torch eager (``reference`` runs it on numpy inputs), with
    torch's own tolerances (``torch.testing.assert_close``'s defaults per dtype)."""
    specs = [(n, s[0], s[1]) for n, s in zip(compiled.input_names, compiled.input_specs)]
    feeds = dict(inputs) if inputs is not None else random_inputs(specs, seed)
    ours = compiled.run(feeds)
    refs = reference([feeds[n] for n in compiled.input_names])
    # An exported program returns its buffer mutations first: compare the user outputs, last.
    names = compiled.output_names[len(compiled.output_names) - len(refs):]
    compute = getattr(compiled.executable, "compute_dtype", None)
    depth = reduction_depth(compiled.module)
    outputs = [compare_with_torch(name, ours[name], np.asarray(ref), depth, compute) for name, ref in zip(names, refs)]
    return {
        "reference": "torch eager",
        "seed": None if inputs is not None else seed,
        "reduction_depth": depth,
        "compute_dtype": None if compute is None else np.dtype(compute).name,
        "passed": all(o["passed"] for o in outputs),
        "outputs": outputs,
    }


def check(result: dict[str, Any]) -> None:
    """Raise ValidationError naming the worst outputs if validation failed."""
    if result["passed"]:
        return
    bad = sorted((o for o in result["outputs"] if not o["passed"]), key=lambda o: -o["max_abs_err"])
    names = ", ".join(f"{o['name']} (max abs err {o['max_abs_err']:.3g}, max rel err {o['max_rel_err']:.3g})" for o in bad[:3])
    raise ValidationError(f"validation against {result['reference']} failed for {len(bad)} output(s): {names}")


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"validation vs {result['reference']}: {'PASSED' if result['passed'] else 'FAILED'}"]
    width = max((len(o["name"]) for o in result["outputs"]), default=4)
    lines.append(f"  {'output':<{width}}  {'max_abs_err':>11}  {'max_rel_err':>11}  {'cosine':>9}")
    for o in result["outputs"]:
        mark = "" if o["passed"] else "  <-- mismatch"
        lines.append(f"  {o['name']:<{width}}  {o['max_abs_err']:>11.3g}  {o['max_rel_err']:>11.3g}  {o['cosine']:>9.6f}{mark}")
    return lines
