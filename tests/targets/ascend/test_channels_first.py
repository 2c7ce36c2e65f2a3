"""ascend-channels-first: ConvNeXt-style channels-last islands (Transpose to NHWC,
LayerNorm over C, Linear layers, layer scale, Transpose back) run channels-first, so the
blocked NC1HWC0 layout of the convolutions around them needs no TransData; islands with no
channels-first form stay as they were, with a remark. Checked against the cpu target."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphopt
from graphopt.semantics import get_rule
from graphopt.semantics.norm import layer_normalization

C, D = 16, 64


def _block(shape=(2, C, 8, 8), *, flatten_linear=False, escape=False, grn=False):
    """conv -> ConvNeXt block (depthwise conv, T, LN, Linear, Gelu, [GRN], Linear, gamma, T, residual)."""
    n, c, h, w = shape
    rng = np.random.default_rng(0)
    inits = {
        "w0": rng.standard_normal((c, 3, 1, 1)) * 0.5,
        "wd": rng.standard_normal((c, 1, 3, 3)) * 0.3,
        "ln_s": 1 + 0.1 * rng.standard_normal(c), "ln_b": 0.1 * rng.standard_normal(c),
        "w1": rng.standard_normal((c, D)) / np.sqrt(c), "b1": 0.1 * rng.standard_normal(D),
        "w2": rng.standard_normal((D, c)) / np.sqrt(D),
        "gamma": rng.standard_normal(c) * 0.5,
        "grn_g": rng.standard_normal((1, 1, 1, D)) * 0.1, "grn_b": rng.standard_normal((1, 1, 1, D)) * 0.1,
    }
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"]),
        helper.make_node("Conv", ["a", "wd"], ["dw"], group=c, pads=[1, 1, 1, 1]),
        helper.make_node("Transpose", ["dw"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("LayerNormalization", ["t", "ln_s", "ln_b"], ["ln"], axis=-1, epsilon=1e-6),
    ]
    if flatten_linear:  # torch.export's view, addmm, view
        inits["flat"], inits["back"] = np.array([n * h * w, c]), np.array([n, h, w, D])
        nodes += [helper.make_node("Reshape", ["ln", "flat"], ["f"]), helper.make_node("MatMul", ["f", "w1"], ["m"]),
                  helper.make_node("Reshape", ["m", "back"], ["m1"])]
    else:
        nodes += [helper.make_node("MatMul", ["ln", "w1"], ["m1"])]
    nodes += [helper.make_node("Add", ["m1", "b1"], ["m1b"]), helper.make_node("Gelu", ["m1b"], ["g"])]
    hidden = "g"
    if grn:  # ConvNeXt-v2's global response normalisation, channels-last
        inits["hw"], inits["last"] = np.array([1, 2]), np.array([-1])
        nodes += [
            helper.make_node("ReduceL2", ["g", "hw"], ["gx"], keepdims=1),
            helper.make_node("ReduceMean", ["gx", "last"], ["gm"], keepdims=1),
            helper.make_node("Div", ["gx", "gm"], ["nx"]),
            helper.make_node("Mul", ["g", "nx"], ["gn"]),
            helper.make_node("Mul", ["grn_g", "gn"], ["gg"]),
            helper.make_node("Add", ["gg", "grn_b"], ["gb"]),
            helper.make_node("Add", ["gb", "g"], ["grn"]),
        ]
        hidden = "grn"
    nodes += [
        helper.make_node("MatMul", [hidden, "w2"], ["m2"]),
        helper.make_node("Mul", ["gamma", "m2"], ["ls"]),
        helper.make_node("Transpose", ["ls"], ["back_t"], perm=[0, 3, 1, 2]),
        helper.make_node("Add", ["a", "back_t"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if escape:  # the channels-last LayerNorm is also a result of the model
        outputs.append(helper.make_tensor_value_info("ln", TensorProto.FLOAT, None))
    inits_pb = [numpy_helper.from_array(np.asarray(v, np.int64 if k in ("flat", "back", "hw", "last") else np.float32), k)
                for k, v in inits.items()]
    graph = helper.make_graph(nodes, "convnext", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, 3, h, w])],
                              outputs, inits_pb)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def _compare(model, shape, chip="ascend910b", precision="must_keep_origin_dtype"):
    x = np.random.default_rng(1).standard_normal((shape[0], 3, *shape[2:])).astype(np.float32)
    ref = graphopt.compile(model).run({"x": x})
    compiled = graphopt.compile(model, target=f"ascend-sim:{chip}", target_options={"precision": precision})
    got = compiled.run({"x": x})
    tol = 1e-4 if precision == "must_keep_origin_dtype" else 3e-2
    for name, want in ref.items():
        np.testing.assert_allclose(got[name], want, rtol=tol, atol=tol * float(np.abs(want).max()))
    return compiled


def _op_types(compiled):
    return {op for k in compiled.report["kernels"] for op in k.get("ops", [])}


@pytest.mark.parametrize("chip", ["ascend910b", "ascend310p"])
@pytest.mark.parametrize("variant", ["onnx", "flatten_linear", "grn"])
def test_island_runs_channels_first(chip, variant):
    model = _block(flatten_linear=variant == "flatten_linear", grn=variant == "grn")
    compiled = _compare(model, (2, C, 8, 8), chip)
    # Only the graph input and the result change format: the island's Transposes are gone.
    assert compiled.report["layout"]["transdata"] == 2
    assert not [r for r in compiled.report["remarks"] if r.get("pass") == "ascend-channels-first"]
    _compare(model, (2, C, 8, 8), chip, "force_fp16")


def _gated_network(c=32, hidden=(64, 32, 32)):
    """MambaOut's layout: a stem conv, then a channels-last residual stream of gated blocks
    (LayerNorm, Linear to gate + identity + conv channels, Split, the conv channels through a
    depthwise Conv between Transposes, Concat, Gelu(gate) * it, Linear, residual), two of
    them, and a mean over H and W without keepdims as the head."""
    rng = np.random.default_rng(2)
    g, i, k = hidden
    inits = {"w0": rng.standard_normal((c, 3, 3, 3)) * 0.3, "sizes": np.array(hidden), "hw": np.array([1, 2])}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Transpose", ["a"], ["r0"], perm=[0, 2, 3, 1])]
    for b in range(2):
        inits |= {f"s{b}": 1 + 0.1 * rng.standard_normal(c), f"b{b}": 0.1 * rng.standard_normal(c),
                  f"fc1_{b}": rng.standard_normal((c, g + i + k)) / np.sqrt(c),
                  f"dw{b}": rng.standard_normal((k, 1, 7, 7)) * 0.15, f"fc2_{b}": rng.standard_normal((g, c)) / np.sqrt(g)}
        r, n = f"r{b}", f"_{b}"
        nodes += [
            helper.make_node("LayerNormalization", [r, f"s{b}", f"b{b}"], ["ln" + n], axis=-1, epsilon=1e-6),
            helper.make_node("MatMul", ["ln" + n, f"fc1_{b}"], ["h" + n]),
            helper.make_node("Split", ["h" + n, "sizes"], ["gate" + n, "id" + n, "cv" + n], axis=-1),
            helper.make_node("Transpose", ["cv" + n], ["cvt" + n], perm=[0, 3, 1, 2]),
            helper.make_node("Conv", ["cvt" + n, f"dw{b}"], ["dwo" + n], group=k, pads=[3, 3, 3, 3]),
            helper.make_node("Transpose", ["dwo" + n], ["dwl" + n], perm=[0, 2, 3, 1]),
            helper.make_node("Concat", ["id" + n, "dwl" + n], ["cat" + n], axis=-1),
            helper.make_node("Gelu", ["gate" + n], ["act" + n]),
            helper.make_node("Mul", ["act" + n, "cat" + n], ["m" + n]),
            helper.make_node("MatMul", ["m" + n, f"fc2_{b}"], ["o" + n]),
            helper.make_node("Add", ["o" + n, r], [f"r{b + 1}"]),
        ]
    nodes.append(helper.make_node("ReduceMean", ["r2", "hw"], ["y"], keepdims=0))
    inits_pb = [numpy_helper.from_array(np.asarray(v, np.int64 if k_ in ("sizes", "hw") else np.float32), k_)
                for k_, v in inits.items()]
    graph = helper.make_graph(nodes, "gated", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits_pb)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


@pytest.mark.parametrize("chip", ["ascend910b", "ascend310p"])
def test_a_channels_last_network_runs_channels_first(chip):
    """Split, Concat and the pooling head keep the whole network in NC1HWC0: two TransData are
    left, the input's and one before the mean without keepdims, whose 2-D result is ND (timm's
    MambaOut went from 44 TransData to these 2)."""
    model = _gated_network()
    for precision in ("must_keep_origin_dtype", "force_fp16"):
        compiled = _compare(model, (1, 32, 16, 16), chip, precision)
        assert compiled.report["layout"]["transdata"] == 2
        assert not [r for r in compiled.report["remarks"] if r.get("pass") == "ascend-channels-first"]
        assert "Transpose" not in _op_types(compiled)


def test_escaping_value_keeps_the_island():
    compiled = _compare(_block(escape=True), (2, C, 8, 8))
    reasons = [r["reason"] for r in compiled.report["remarks"] if r.get("pass") == "ascend-channels-first"]
    assert reasons == ["stays channels-last: func.return reads a channels-last value"]


@pytest.mark.parametrize("precision", ["must_keep_origin_dtype", "force_fp16"])
def test_large_samples_are_tiled_by_rows(precision):
    """ConvNeXt-T's stage 1 at 224 x 224 holds 96 x 56 x 56 values per sample, more than UB:
    the channel LayerNorm's tiles are rows of pixels with every channel, [1, C, r, W]."""
    shape = (2, 96, 56, 56)
    compiled = _compare(_block(shape), shape, precision=precision)
    assert compiled.report["layout"]["transdata"] == 2
    norm = next(k for k in compiled.report["kernels"] if "channel_layer_norm" in k["name"])
    assert norm["tiling"]["tiles"] > shape[0] and norm["block_dim"] > 1


def test_a_row_too_wide_for_ub_keeps_the_island():
    """Even one row of pixels' channels [1, C, 1, W] must fit UB."""
    shape = (1, 256, 2, 128)
    compiled = _compare(_block(shape), shape)
    reasons = [r["reason"] for r in compiled.report["remarks"] if r.get("pass") == "ascend-channels-first"]
    assert len(reasons) == 1 and "does not fit UB" in reasons[0]
    assert compiled.report["layout"]["transdata"] > 2


def test_channel_layer_norm_is_layer_norm_of_the_transpose():
    rng = np.random.default_rng(0)
    x, s, b = rng.standard_normal((2, 5, 3, 4)), rng.standard_normal(5), rng.standard_normal(5)
    got = get_rule("graphopt::ChannelLayerNorm")(x, s, b, epsilon=1e-3)
    want = layer_normalization(x.transpose(0, 2, 3, 1), s, b, epsilon=1e-3)[0].transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(got, want)


def _random_island(seed: int):
    """conv -> Transpose to NHWC -> 2-6 random per-pixel ops (elementwise with constants that
    broadcast from the right, LayerNorm over C, x @ W, reductions with keepdims, a residual
    inside the island, a Split along any axis and its parts joined again by Concat) ->
    Transpose back -> + the conv output when the shapes agree; sometimes also a reduction
    without keepdims of the last value as a second result."""
    rng = np.random.default_rng(seed)
    n, c, h, w = 2, int(rng.choice([8, 16, 24])), int(rng.integers(2, 6)), int(rng.integers(2, 6))
    inits: dict[str, np.ndarray] = {"w0": rng.standard_normal((c, 3, 1, 1)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"]), helper.make_node("Transpose", ["a"], ["v0"], perm=[0, 2, 3, 1])]
    shape, cur, k = [n, h, w, c], "v0", 0
    values = {"v0": list(shape)}

    def const(shape_: tuple[int, ...], positive: bool = False) -> str:
        name = f"c{len(inits)}"
        a = rng.standard_normal(shape_).astype(np.float32)
        inits[name] = np.abs(a) + 0.5 if positive else a
        return name

    for _ in range(int(rng.integers(2, 7))):
        k += 1
        out = f"v{k}"
        kind = rng.choice(["binary", "unary", "ln", "matmul", "reduce", "residual", "split"])
        if kind == "binary":
            bshape = [shape[-1]] if rng.random() < 0.5 else [1] * int(rng.integers(1, 4)) + [shape[-1]]
            if rng.random() < 0.2:
                bshape = []
            op = str(rng.choice(["Add", "Mul", "Sub", "Div"]))
            b = const(tuple(bshape), positive=op == "Div")
            ins = [cur, b] if rng.random() < 0.5 or op == "Div" else [b, cur]  # never divide by the data
            nodes.append(helper.make_node(op, ins, [out]))
        elif kind == "unary":
            nodes.append(helper.make_node(str(rng.choice(["Relu", "Sigmoid", "Tanh", "Gelu", "Abs"])), [cur], [out]))
        elif kind == "ln":
            s, b = const((shape[-1],)), const((shape[-1],))
            nodes.append(helper.make_node("LayerNormalization", [cur, s, b], [out], axis=-1, epsilon=1e-5))
        elif kind == "matmul":
            d = int(rng.choice([8, 16, 32]))
            nodes.append(helper.make_node("MatMul", [cur, const((shape[-1], d))], [out]))
            shape = [*shape[:-1], d]
        elif kind == "reduce":
            axes = sorted(int(a) for a in rng.choice([1, 2, 3], size=int(rng.integers(1, 3)), replace=False))
            inits[f"axes{k}"] = np.array(axes, np.int64)
            nodes.append(helper.make_node(str(rng.choice(["ReduceMean", "ReduceMax", "ReduceSum"])), [cur, f"axes{k}"], [out], keepdims=1))
            shape = [1 if i in axes else s for i, s in enumerate(shape)]
        elif kind == "split":
            axis = int(rng.choice([a for a in (1, 2, 3) if shape[a] > 1] or [3]))
            if shape[axis] < 2:
                k -= 1
                continue
            first = int(rng.integers(1, shape[axis]))
            inits[f"sizes{k}"] = np.array([first, shape[axis] - first], np.int64)
            nodes += [helper.make_node("Split", [cur, f"sizes{k}"], [f"p{k}", f"q{k}"], axis=axis - 4 * int(rng.random() < 0.5)),
                      helper.make_node("Sigmoid", [f"p{k}"], [f"s{k}"]),
                      helper.make_node("Concat", [f"q{k}", f"s{k}"], [out], axis=axis)]
        else:
            same = [v for v, s in values.items() if s == shape and v != cur]
            if not same:
                k -= 1
                continue
            nodes.append(helper.make_node("Add", [cur, str(rng.choice(same))], [out]))
        cur = out
        values[out] = list(shape)
    nodes.append(helper.make_node("Transpose", [cur], ["back"], perm=[0, 3, 1, 2]))
    result = "back"
    if [shape[0], shape[3], shape[1], shape[2]] == [n, c, h, w]:
        nodes.append(helper.make_node("Add", ["a", "back"], ["y"]))
        result = "y"
    outputs = [helper.make_tensor_value_info(result, TensorProto.FLOAT, None)]
    if rng.random() < 0.4:  # a global pool as the network's head writes it: no keepdims
        kept = [[0, 3], [0, 1, 2], [0]][int(rng.integers(3))]
        inits["pool_axes"] = np.array([a for a in range(4) if a not in kept], np.int64)
        nodes.append(helper.make_node("ReduceMean", [cur, "pool_axes"], ["pooled"], keepdims=0))
        outputs.append(helper.make_tensor_value_info("pooled", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "island", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, 3, h, w])],
                              outputs,
                              [numpy_helper.from_array(v, name) for name, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), (n, c, h, w)


@pytest.mark.parametrize("seed", range(32))
def test_random_islands_agree_with_cpu(seed):
    """Islands nobody wrote by hand: channels-first or left alone, the answer is the cpu target's."""
    model, shape = _random_island(seed)
    _compare(model, shape)


def test_an_op_joining_two_islands_twice():
    """Sum(t1, t2, t2): an op joining two islands, one of them read twice (each island is joined once)."""
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.standard_normal((C, 3, 1, 1)).astype(np.float32), "w0"),
             numpy_helper.from_array(rng.standard_normal((C, 3, 1, 1)).astype(np.float32), "w1")]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"]), helper.make_node("Conv", ["x", "w1"], ["b"]),
             helper.make_node("Transpose", ["a"], ["ta"], perm=[0, 2, 3, 1]),
             helper.make_node("Transpose", ["b"], ["tb"], perm=[0, 2, 3, 1]),
             helper.make_node("Sum", ["ta", "tb", "tb"], ["s"]), helper.make_node("Mul", ["s", "tb"], ["m"]),
             helper.make_node("Transpose", ["m"], ["y"], perm=[0, 3, 1, 2])]
    graph = helper.make_graph(nodes, "two", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    compiled = _compare(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), (2, C, 4, 4))
    assert compiled.report["layout"]["transdata"] == 2
