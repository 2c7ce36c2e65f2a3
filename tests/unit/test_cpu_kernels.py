"""The cpu target's own kernels agree with the reference rules they replace."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.special

from graphopt.semantics import get_rule
from graphopt.targets.cpu import gelu as gelu_module
from graphopt.targets.cpu import native
from graphopt.targets.cpu.gelu import gelu_f32
from graphopt.targets.cpu.kernels import KERNELS

X32 = np.concatenate([np.linspace(-12, 12, 4001), [0.0, -0.0, 1e-30, -1e-30]]).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_erf_matches_rule(dtype: type) -> None:
    x = X32.astype(dtype)
    got, want = KERNELS["graph.erf"](x), get_rule("Erf")(x)
    assert got.dtype == want.dtype == x.dtype
    np.testing.assert_allclose(got, want, rtol=2e-7 if dtype != np.float16 else 1e-3, atol=1e-37)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_gelu_matches_rule(approximate: str, dtype: type) -> None:
    x = X32.astype(dtype)
    got, want = KERNELS["graph.gelu"](x, approximate=approximate), get_rule("Gelu")(x, approximate=approximate)
    assert got.dtype == want.dtype == x.dtype
    # float64: the rule's erf is a Chebyshev fit good to ~1e-10 relative near its seams.
    # float32 (exact GELU): the kernel's own bound, see test_gelu_f32_relative_error.
    rtol = {np.float32: _gelu_f32_rtol(x), np.float64: 1e-9, np.float16: 1e-3}[dtype]
    if approximate == "tanh" and dtype == np.float32:
        rtol = 2e-6
    np.testing.assert_array_less(np.abs(got.astype(np.float64) - want), rtol * np.abs(want.astype(np.float64)) + 1e-30)


def _gelu_reference(x: np.ndarray) -> np.ndarray:
    """x * Phi(x) in float64 (scipy's ndtr keeps the tails exact)."""
    xd = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return xd * scipy.special.ndtr(xd)


def _gelu_f32_rtol(x: np.ndarray) -> np.ndarray:
    # The polynomial and the ufunc passes cost ~1e-6; in the tail exp(-x^2 / 2) is taken of
    # a float32 argument, whose rounding is a relative error of up to ~6e-8 * x^2 / 2.
    return 1e-6 + 4e-8 * x.astype(np.float64) ** 2


def _assert_gelu_f32_close(got: np.ndarray, x: np.ndarray) -> None:
    want = _gelu_reference(x)
    assert got.shape == x.shape and got.dtype == np.float32
    finite = np.isfinite(x)
    np.testing.assert_array_equal(got[~finite], want[~finite].astype(np.float32))
    err = np.abs(got[finite] - want[finite])
    # 1e-38: results below float32's smallest normal number lose relative precision
    assert np.all(err <= _gelu_f32_rtol(x[finite]) * np.abs(want[finite]) + 1e-38), err.max()


def test_gelu_f32_relative_error() -> None:
    """Relative accuracy down the negative tail, where GELU is tiny, not only absolute."""
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-13, 13, 200_001), rng.standard_normal(50_000) * 3]).astype(np.float32)
    got = gelu_f32(x)
    _assert_gelu_f32_close(got, x)
    # torch's float32 tolerance (assert_close: atol 1e-5, rtol 1.3e-6) with room to spare
    want = _gelu_reference(x)
    assert np.all(np.abs(got - want) <= 1e-7 + 1.3e-6 * np.abs(want))


def test_gelu_f32_far_tails_and_special_values() -> None:
    x = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0, 1e-30, -1e-30, 1e-40, -1e-40, -14, -20, -1e30, 1e30, 3e38,
                  -3e38, 20, 1e5], np.float32)
    got = gelu_f32(x)
    # -inf * Phi(-inf) is -inf * 0: nan, as the rule and torch's float64 gelu give
    assert np.isnan(got[0]) and got[1] == np.inf and np.isnan(got[2])
    _assert_gelu_f32_close(got, x)


@pytest.mark.parametrize("shape", [(0,), (), (1,), (3, 5), (gelu_module.BLOCK + 7,), (2, gelu_module.BLOCK // 2 + 3, 3)])
def test_gelu_f32_shapes_and_blocks(shape: tuple[int, ...]) -> None:
    x = (np.random.default_rng(1).standard_normal(shape) * 4).astype(np.float32)
    _assert_gelu_f32_close(gelu_f32(x), x)


def test_gelu_f32_strided_input_and_inf_in_one_block_only() -> None:
    x = (np.random.default_rng(2).standard_normal((3 * gelu_module.BLOCK // 64, 128)) * 3).astype(np.float32)
    x[-1, -1] = np.inf  # in the last block: the nan fix-up must leave the other blocks alone
    view = x.T  # not contiguous
    got = gelu_f32(view)
    assert got[-1, -1] == np.inf
    _assert_gelu_f32_close(got, view)


def test_gelu_f32_threads_do_not_share_scratch() -> None:
    rng = np.random.default_rng(3)
    inputs = [(rng.standard_normal(3 * gelu_module.BLOCK) * s).astype(np.float32) for s in (1, 2, 3, 4)]
    expected = [gelu_f32(x) for x in inputs]
    results: dict[int, list[np.ndarray]] = {}

    def work(k: int) -> None:
        results[k] = [gelu_f32(inputs[k]) for _ in range(20)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, runs in results.items():
        for got in runs:
            np.testing.assert_array_equal(got, expected[k])


@pytest.mark.parametrize("bias_shape", [(6,), (4, 6), (1, 6), (2, 4, 6), ()])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_matmul_bias_matches_rule(bias_shape: tuple[int, ...], dtype: type) -> None:
    rng = np.random.default_rng(4)
    a = (rng.standard_normal((4, 5)) * 3).astype(dtype)
    b = (rng.standard_normal((6, 5)) * 3).astype(dtype).T  # a transposed view, as torch gives weights
    bias = (rng.standard_normal(bias_shape) * 3).astype(dtype)
    got, want = KERNELS["graph.matmul_bias"](a, b, bias), get_rule("graphopt::MatMulBias")(a, b, bias)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_matmul_bias_mixed_dtypes_and_vectors_match_rule() -> None:
    rng = np.random.default_rng(5)
    cases = [
        (rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32), np.ones(2)),
        (rng.standard_normal(4), rng.standard_normal(4), np.ones(())),  # vector . vector: a scalar
    ]
    for a, b, bias in cases:
        got, want = KERNELS["graph.matmul_bias"](a, b, bias), get_rule("graphopt::MatMulBias")(a, b, bias)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@pytest.fixture(params=["native", "numpy"])
def native_or_numpy(request, monkeypatch) -> bool:
    """Each kernel with a native form runs twice: the C kernel (when a compiler is here) and
    its numpy form, which computes what the rule does in the same order (bit for bit)."""
    if request.param == "numpy":
        monkeypatch.setattr(native, "library", lambda: None)
        return False
    if native.library() is None:
        pytest.skip("no C compiler here: the numpy form is what runs")
    return True


def _same(got: np.ndarray, want: np.ndarray, native_run: bool) -> None:
    """Bit for bit from the numpy form; from the C kernels, within a few float32 ulp (their
    sums run in another order, in double) with NaN and inf where the rule has them."""
    assert got.dtype == want.dtype and got.shape == want.shape
    if native_run and got.dtype == np.float32:
        np.testing.assert_allclose(got, want, rtol=4e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("axis", [-1, 1, 0])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_layer_normalization_matches_rule(axis: int, with_bias: bool, dtype: type, native_or_numpy: bool) -> None:
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((2, 3, 8)) * 5 + 2).astype(dtype)
    norm_shape = x.shape[axis % x.ndim :]
    scale = rng.standard_normal(norm_shape).astype(dtype)
    b = rng.standard_normal(norm_shape).astype(dtype) if with_bias else None
    kwargs = {"axis": axis, "epsilon": 1e-5, "stash_type": 1}
    got = KERNELS["graph.layer_normalization"](x, scale, b, **kwargs)
    want = get_rule("LayerNormalization")(x, scale, b, **kwargs)
    for g, w in zip(got, want, strict=True):
        _same(g, w, native_or_numpy)


@pytest.mark.parametrize("axis", [-1, 0, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_softmax_matches_rule(axis: int, dtype: type, native_or_numpy: bool) -> None:
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((3, 4, 5)) * 10).astype(dtype)
    x[0, 0, :2] = -np.inf  # a masked position
    x[1] = -np.inf  # every position masked: nan, as exp(-inf - -inf) is
    got, want = KERNELS["graph.softmax"](x, axis=axis), get_rule("Softmax")(x, axis=axis)
    _same(got, want, native_or_numpy)


@pytest.mark.parametrize("case", [
    dict(x=(2, 16, 9, 9), w=(32, 16, 1, 1)),  # 1x1: one matmul on the input as it lies
    dict(x=(1, 8, 11, 13), w=(12, 8, 3, 3), pads=[1, 2, 1, 0], strides=[2, 1]),
    dict(x=(2, 6, 15, 15), w=(6, 3, 3, 5), group=2, dilations=[2, 1], pads=[1, 1, 1, 1]),
    dict(x=(1, 24, 14, 14), w=(24, 1, 3, 3), group=24, pads=[1, 1, 1, 1], strides=[2, 2]),  # depthwise
    dict(x=(1, 4, 10, 10), w=(8, 4, 2, 2), auto_pad="SAME_UPPER", strides=[3, 3]),
    dict(x=(1, 4, 7, 7), w=(4, 4, 1, 1), strides=[2, 2]),  # 1x1 strided: im2col
    dict(x=(1, 3, 20), w=(5, 3, 4), pads=[1, 2]),  # 1-D: the rule
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("bias", [False, True])
def test_conv_matches_rule(case: dict, dtype: type, bias: bool, native_or_numpy: bool) -> None:
    rng = np.random.default_rng(0)
    case = dict(case)
    x = rng.standard_normal(case.pop("x")).astype(dtype)
    w = rng.standard_normal(case.pop("w")).astype(dtype)
    b = rng.standard_normal(w.shape[0]).astype(dtype) if bias else None
    got, want = KERNELS["graph.conv"](x, w, b, **case), get_rule("Conv")(x, w, b, **case)
    assert got.dtype == want.dtype == x.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol={np.float32: 1e-5, np.float64: 1e-12, np.float16: 0}[dtype],
                               atol={np.float32: 1e-4, np.float64: 1e-12, np.float16: 0}[dtype])


@pytest.mark.parametrize("op, kwargs", [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[9, 9], strides=[1, 1])),  # more positions than are folded one by one
])
def test_pools_fold_window_positions_as_the_reduction_does(op: str, kwargs: dict) -> None:
    """The pools fold a window position at a time; the same answer as reducing the windows
    (float64), NaN kept by MaxPool as its argmax form keeps it."""
    from graphopt.semantics.nn_common import pad_spatial, pool_geometry, windows

    x = np.random.default_rng(1).standard_normal((2, 3, 12, 11)).astype(np.float32)
    x[0, 1, 4, 4] = np.nan
    rule = get_rule(op)
    got = rule(x, **kwargs, **({"_num_outputs": 1} if op == "MaxPool" else {}))
    if op == "MaxPool":
        np.testing.assert_array_equal(got, rule(x, **kwargs)[0])  # with indices: argmax over the windows
        return
    k, st = kwargs["kernel_shape"], kwargs["strides"]
    out, begin, end = pool_geometry(x.shape[2:], k, st, None, kwargs.get("pads"), "NOTSET")
    total = windows(pad_spatial(x.astype(np.float64), begin, end, 0), out, k, st, [1, 1]).sum(axis=(-2, -1))
    ones = pad_spatial(np.ones(x.shape[2:]), begin, end, 1 if kwargs.get("count_include_pad") else 0)
    want = total / windows(ones, out, k, st, [1, 1]).sum(axis=(-2, -1))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)  # NaN where the windows hold it


@pytest.mark.parametrize("op, kwargs", [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2])),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 2], ceil_mode=1, dilations=[1, 2])),
    ("MaxPool", dict(kernel_shape=[2, 2], auto_pad="SAME_UPPER", strides=[2, 2])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[3, 2], strides=[2, 2], pads=[0, 1, 1, 0], ceil_mode=1, count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[2, 2], auto_pad="SAME_LOWER", count_include_pad=1)),
])
def test_pool_kernels_match_rule(op: str, kwargs: dict, native_or_numpy: bool) -> None:
    x = np.random.default_rng(4).standard_normal((2, 3, 11, 12)).astype(np.float32)
    x[1, 2, 5, 5] = np.nan
    key = {"MaxPool": "graph.max_pool", "AveragePool": "graph.average_pool"}[op]
    extra = {"_num_outputs": 1} if op == "MaxPool" else {}
    got, want = KERNELS[key](x, **kwargs, **extra), get_rule(op)(x, **kwargs, **extra)
    _same(got, want, native_or_numpy)


def test_native_kernels_fall_back_to_numpy_when_the_cache_cannot_be_written(tmp_path, monkeypatch) -> None:
    """A cache folder that cannot be made (here a file stands where it would be) leaves the
    numpy forms, with no error; so does GRAPHOPT_NATIVE=0."""
    (tmp_path / "blocked").write_text("a file, not a folder")
    monkeypatch.setenv("GRAPHOPT_CACHE_DIR", str(tmp_path / "blocked"))
    native.library.cache_clear()
    try:
        assert native.library() is None
        monkeypatch.delenv("GRAPHOPT_CACHE_DIR")
        monkeypatch.setenv("GRAPHOPT_NATIVE", "0")
        native.library.cache_clear()
        assert native.library() is None
        x = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
        np.testing.assert_array_equal(KERNELS["graph.softmax"](x, axis=-1), get_rule("Softmax")(x, axis=-1))
    finally:
        native.library.cache_clear()
