"""Shapes that real models have and the bundled examples did not: each case here came from
a model nobody on this project wrote (onnx's own light model zoo), reduced to the op that
failed. Every case compiles for both chips and agrees with the cpu target in float32
(must_keep_origin_dtype)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphopt

CHIPS = ["ascend-sim", "ascend-sim:ascend310p"]
EXACT = {"precision": "must_keep_origin_dtype"}


def _model(nodes, inputs, outputs, inits=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _agree(model, feeds, target, rtol=1e-5, atol=1e-5):
    want = graphopt.compile(model, "cpu").run(feeds)
    compiled = graphopt.compile(model, target, target_options=EXACT)
    got = compiled.run(feeds)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol, err_msg=name)
    return compiled


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_max_pool_over_odd_planes(target, ceil_mode):
    """squeezenet and inception_v1 stopped in ascend-lower: a plane of 111 x 111 halves is
    24642 bytes, so a UB tile of a few planes is off the 32-byte block; the tile is now a
    DataCopyPad into a slot rounded up to a block."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 111, 111])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    pool = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=ceil_mode)
    feeds = {"x": np.random.default_rng(0).standard_normal((1, 8, 111, 111)).astype(np.float32)}
    _agree(_model([pool], [x], [y]), feeds, target)


def test_unaligned_tiles_are_data_copy_pad_in_the_emitted_source(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 111, 111])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    pool = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2])
    compiled = graphopt.compile(_model([pool], [x], [y]), "ascend-sim")
    compiled.save(tmp_path / "out")
    source = "\n".join(p.read_text() for p in (tmp_path / "out" / "kernels").glob("*.cpp"))
    assert "DataCopyPad(" in source


@pytest.mark.parametrize("target", CHIPS)
def test_a_blocked_value_that_is_also_a_graph_output(target):
    """inception_v1 with its intermediate values as outputs: a [1, C, 1, 1] pooled value
    has the same bytes in NC1HWC0 and ND, so no TransData was put before the return and
    the function returned a blocked type (a verifier error)."""
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((32, 8, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["pooled"]),
        helper.make_node("Relu", ["pooled"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 9, 9])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "pooled")]
    feeds = {"x": rng.standard_normal((1, 8, 9, 9)).astype(np.float32)}
    _agree(_model(nodes, [x], outs, [w]), feeds, target, rtol=1e-4, atol=1e-4)


def test_weights_written_as_constant_of_shape_are_folded():
    """onnx's light zoo writes every weight as a ConstantOfShape splat: above fold-constants'
    size limit they stayed run-time values, so Conv+BatchNormalization did not fold and 69
    kernels of resnet50 ran on the AI CPU. A ConstantOfShape is a weight, whatever its size."""
    def splat(name, shape, value):
        return helper.make_node("ConstantOfShape", [name + "_shape"], [name],
                                value=numpy_helper.from_array(np.array([value], np.float32)))

    shapes = {"w": [128, 64, 3, 3], "scale": [128], "bias": [128], "mean": [128], "var": [128]}
    inits = [numpy_helper.from_array(np.array(s, np.int64), n + "_shape") for n, s in shapes.items()]
    nodes = [splat(n, s, v) for (n, s), v in zip(shapes.items(), [0.01, 1.5, 0.1, 0.2, 2.0])]
    nodes += [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 14, 14])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = _model(nodes, [x], [y], inits)
    feeds = {"x": np.random.default_rng(2).standard_normal((1, 64, 14, 14)).astype(np.float32)}
    compiled = _agree(model, feeds, "ascend-sim", rtol=1e-4, atol=1e-4)
    assert compiled.report["aicpu"] == []
    assert set(compiled.report["ops"]["final"]) <= {"ascend.kernel", "ascend.trans_data", "ascend.launch"}, compiled.report["ops"]["final"]


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("batch, seq", [(1, 512), (2, 40)])
def test_rotary_in_transformers_layout_is_tiled(target, batch, seq):
    """LLaMA as transformers writes it: q [B, heads, S, d] rotated with cos/sin [1, 1, S, d]
    (rotate_half: Slice, Neg, Concat). recognize-rotary makes it the 4-D RotaryEmbedding,
    which ran as one UB tile (a LLaMA-7B layer's needed 101711872 bytes); it is now tiled
    by sequence blocks of one head, the caches read by (batch, block)."""
    heads, d = 4, 64
    rng = np.random.default_rng(3)
    ang = np.outer(np.arange(seq), 1.0 / 10000 ** (np.arange(0, d, 2) / d))
    ang = np.concatenate([ang, ang], axis=-1)[None, None]
    inits = [numpy_helper.from_array(np.cos(ang).astype(np.float32), "cos"),
             numpy_helper.from_array(np.sin(ang).astype(np.float32), "sin")]
    for name, value in (("s0", 0), ("e0", d // 2), ("s1", d // 2), ("e1", d), ("ax", 3)):
        inits.append(numpy_helper.from_array(np.array([value], np.int64), name))
    nodes = [
        helper.make_node("Slice", ["q", "s0", "e0", "ax"], ["x1"]),
        helper.make_node("Slice", ["q", "s1", "e1", "ax"], ["x2"]),
        helper.make_node("Neg", ["x2"], ["nx2"]),
        helper.make_node("Concat", ["nx2", "x1"], ["rot"], axis=3),
        helper.make_node("Mul", ["q", "cos"], ["qc"]),
        helper.make_node("Mul", ["rot", "sin"], ["rs"]),
        helper.make_node("Add", ["qc", "rs"], ["y"]),
    ]
    q = helper.make_tensor_value_info("q", TensorProto.FLOAT, [batch, heads, seq, d])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = _model(nodes, [q], [y], inits, opset=23)
    feeds = {"q": rng.standard_normal((batch, heads, seq, d)).astype(np.float32)}
    compiled = _agree(model, feeds, target)
    rope = [k for k in compiled.report["kernels"] if "rotary" in k["name"]]
    assert len(rope) == 1 and rope[0]["kind"] == "vector" and rope[0]["tiling"]["tiles"] > 1, rope


def _overflowing_model():
    """y = Softmax(x * 1e5 - x * 1e5 ...): the product leaves float16's range (65504), the
    float32 reference does not, and the output is NaN in float16 (inf - inf)."""
    big = numpy_helper.from_array(np.array(1e5, np.float32), "big")
    nodes = [helper.make_node("Mul", ["x", "big"], ["scaled"], name="scale_up"),
             helper.make_node("Sub", ["scaled", "scaled"], ["zero"], name="cancel"),
             helper.make_node("Softmax", ["zero"], ["y"], name="sm")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return _model(nodes, [x], [y], [big])


def test_float16_overflow_is_named_with_what_to_do():
    """resnet50 of the light zoo under force_fp16 gave a NaN cosine, then validation died
    (ValueError: All-NaN slice, exit 3). Now the failure names the first node whose value
    left float16's range, and must_keep_origin_dtype validates."""
    from graphopt.errors import ValidationError

    model = _overflowing_model()
    with pytest.raises(ValidationError, match=r"float16 overflow at node scale_up \(Mul\): \|x\| reaches .*must_keep_origin_dtype") as info:
        graphopt.compile(model, "ascend-sim", validate=True)
    assert "\n" not in str(info.value)
    graphopt.compile(model, "ascend-sim", validate=True, target_options=EXACT)


def test_a_value_kept_in_float32_is_not_blamed_for_float16_overflow():
    """timm's Visformer: keeping what the overflow message named (the attention scores'
    MatMul and Mul) in float32, the message named the same MatMul again, though its value no
    longer passes through float16. A value a kept node makes and only kept nodes read is
    not an overflow; one a float16 node reads still is."""
    from graphopt.validate import find_overflow

    model = _overflowing_model()
    feeds = {"x": np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)}
    assert find_overflow(model, feeds, np.dtype(np.float16))["node"] == "scale_up"
    assert find_overflow(model, feeds, np.dtype(np.float16), ["scale_up"])["node"] == "scale_up"  # cancel reads it in float16
    assert find_overflow(model, feeds, np.dtype(np.float16), ["scale_up", "cancel"]) is None
    assert find_overflow(model, feeds, np.dtype(np.float16), ["Mul", "Sub"]) is None  # by op type


def test_a_nan_output_is_a_mismatch_not_a_crash():
    from graphopt.validate import compare

    entry = compare("y", np.full(4, np.nan, np.float32), np.ones(4, np.float32), depth=1)
    assert not entry["passed"] and entry["max_abs_err"] == np.inf


def _conv_pad_conv(pads, mode="constant"):
    """Conv, Relu, Pad, strided Conv: transformers' MobileNetV2 pads "same" as TensorFlow
    does, with a Pad before each strided conv."""
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array(rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.2, "w1"),
             numpy_helper.from_array(rng.standard_normal((16, 16 + pads[1] + pads[5], 3, 3)).astype(np.float32) * 0.1, "w2"),
             numpy_helper.from_array(np.array(pads, np.int64), "pads")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Pad", ["b", "pads"], ["c"], mode=mode),
             helper.make_node("Conv", ["c", "w2"], ["y"], strides=[2, 2])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    feeds = {"x": rng.standard_normal((1, 8, 16, 16)).astype(np.float32)}
    return _model(nodes, [x], [y], inits), feeds


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_a_spatial_pad_between_convolutions_stays_blocked(target, mode):
    """hf/mobilenet-v2 of the model corpus kept 32 TransData: each Pad ran in ND, so the
    value went NC1HWC0 -> ND before it and back after it. A Pad of H and W pads every
    (n, c) plane on its own, so it stays NC1HWC0: TransData only at the input and output."""
    model, feeds = _conv_pad_conv([0, 0, 0, 0, 0, 0, 1, 1], mode)
    compiled = _agree(model, feeds, target, rtol=1e-4, atol=1e-4)
    assert compiled.report["layout"]["transdata"] == 2, compiled.report["kernels"]


def test_a_pad_of_the_channels_runs_in_nd():
    model, feeds = _conv_pad_conv([0, 0, 0, 0, 0, 2, 0, 0])
    compiled = _agree(model, feeds, "ascend-sim", rtol=1e-4, atol=1e-4)
    assert compiled.report["layout"]["transdata"] == 4
    assert any("pads the batch or channel axis" in r["reason"] for r in compiled.report["remarks"])


@pytest.mark.parametrize("target", CHIPS)
def test_a_per_channel_constant_of_rank_three_stays_blocked(target):
    """densenet121 and inception_v2 of the light zoo scale and shift each channel after
    BatchNormalization with Unsqueeze'd [C, 1, 1] constants: the Mul ran in ND ("broadcasts
    across a blocked axis"), which put a TransData inside each conv's fused epilogue, and
    the conv group went to the AI CPU (densenet121: 244 TransData, 121 AI CPU kernels). A
    constant [C, 1, 1] is now stored as an NC1HWC0 [1, C, 1, 1]: the conv and its epilogue
    run on the cube."""
    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(rng.standard_normal((32, 16, 3, 3)).astype(np.float32) * 0.1, "w"),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, 32).astype(np.float32), "s"),
             numpy_helper.from_array(rng.uniform(-0.1, 0.1, 32).astype(np.float32), "b"),
             numpy_helper.from_array(np.array([1, 2], np.int64), "axes")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Unsqueeze", ["s", "axes"], ["s3"]),
             helper.make_node("Unsqueeze", ["b", "axes"], ["b3"]),
             helper.make_node("Mul", ["c", "s3"], ["m"]),
             helper.make_node("Add", ["m", "b3"], ["a"]),
             helper.make_node("Relu", ["a"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16, 14, 14])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    feeds = {"x": rng.standard_normal((2, 16, 14, 14)).astype(np.float32)}
    compiled = _agree(_model([*nodes], [x], [y], inits), feeds, target, rtol=1e-4, atol=1e-4)
    assert compiled.report["aicpu"] == []
    assert [k["kind"] for k in compiled.report["kernels"]] == ["vector", "cube", "vector"]  # TransData, conv, TransData


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("op, shape", [("BatchNormalization", (3, 40, 56, 56)), ("BatchNormalization", (2, 24, 100)),
                                       ("InstanceNormalization", (2, 40, 56, 56))])
def test_a_normalization_of_large_planes_is_tiled_by_channel(target, op, shape):
    """densenet121 normalises each dense block's concatenation on its own (pre-activation):
    a BatchNormalization over [1, 256, 56, 56] needed a whole (C, H, W) item per UB tile
    ("a row does not fit in UB"), so 62 of them ran on the AI CPU. A tile is now a block
    of (n, c) planes with the slice of the per-channel parameters they need (tiles that
    straddle two batch items included: 40 channels in tiles of 3)."""
    rng = np.random.default_rng(6)
    names = ["s", "b", "m", "v"] if op == "BatchNormalization" else ["s", "b"]
    inits = [numpy_helper.from_array(rng.uniform(0.5, 1.5, shape[1]).astype(np.float32), n) for n in names]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = _model([helper.make_node(op, ["x", *names], ["y"])], [x], [y], inits, opset=15)
    feeds = {"x": rng.standard_normal(shape).astype(np.float32)}
    compiled = _agree(model, feeds, target, rtol=1e-5, atol=1e-5)
    norm = [k for k in compiled.report["kernels"] if "normalization" in k["name"]]
    assert [k["kind"] for k in norm] == ["vector"], compiled.report["kernels"]
    if len(shape) == 4:
        assert norm[0]["tiling"]["tiles"] > 1 and norm[0]["tiling"]["row_axes"] == 2


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("attrs", [{"pads": [1, 1]}, {"strides": [5], "kernel": 10, "cin": 1},
                                   {"group": 4, "kernel": 16, "pads": [8, 8]}, {"dilations": [2], "pads": [2, 2]},
                                   {"auto_pad": "SAME_UPPER", "strides": [2]}])
def test_a_one_dimensional_convolution_runs_on_the_cube(target, attrs):
    """Whisper's encoder starts with two 1-D convs (each with GELU after it), wav2vec2 and
    its family with a stack of them and a grouped positional one: "a convolution that is not
    2-D" sent each, with its epilogue, to the AI CPU. A 1-D Conv is now the 2-D one over
    H = 1 on the cube."""
    rng = np.random.default_rng(7)
    attrs = dict(attrs)
    k, cin = attrs.pop("kernel", 3), attrs.pop("cin", 16)
    g = attrs.get("group", 1)
    w = numpy_helper.from_array((rng.standard_normal((32, cin // g, k)) / np.sqrt(cin * k / g)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.uniform(-0.1, 0.1, 32).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], **attrs), helper.make_node("Gelu", ["c"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, cin, 160])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    feeds = {"x": rng.standard_normal((2, cin, 160)).astype(np.float32)}
    compiled = _agree(_model(nodes, [x], [y], [w, b], opset=20), feeds, target, rtol=1e-4, atol=1e-5)
    assert [(k["kind"]) for k in compiled.report["kernels"]] == ["cube"], compiled.report["kernels"]


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("opset", [13, 18])  # axes an attribute, then an input
def test_squeeze_and_excitation_keeps_nc1hwc0(target, opset):
    """transformers' EfficientNet squeezes with x.mean((2, 3), keepdim=True): a ReduceMean
    over H and W, which ran in ND, with a TransData before it (and after it where C is not
    whole C0 blocks): 7 TransData in a two-block EfficientNet. Over H and W with keepdims a
    reduction is a global pool and stays NC1HWC0: TransData only at the input and output."""
    rng = np.random.default_rng(8)
    inits = [numpy_helper.from_array(rng.standard_normal((24, 16, 3, 3)).astype(np.float32) * 0.1, "w"),
             numpy_helper.from_array(rng.standard_normal((8, 24, 1, 1)).astype(np.float32) * 0.2, "w1"),
             numpy_helper.from_array(rng.standard_normal((24, 8, 1, 1)).astype(np.float32) * 0.2, "w2")]
    if opset >= 18:
        inits.append(numpy_helper.from_array(np.array([2, 3], np.int64), "axes"))
        mean = helper.make_node("ReduceMean", ["a", "axes"], ["m"], keepdims=1)
    else:
        mean = helper.make_node("ReduceMean", ["a"], ["m"], axes=[-2, -1], keepdims=1)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c"], ["sg"]), helper.make_node("Mul", ["c", "sg"], ["a"]),
             mean,
             helper.make_node("Conv", ["m", "w1"], ["r"]), helper.make_node("Relu", ["r"], ["rr"]),
             helper.make_node("Conv", ["rr", "w2"], ["e"]), helper.make_node("Sigmoid", ["e"], ["es"]),
             helper.make_node("Mul", ["a", "es"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16, 14, 14])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    feeds = {"x": rng.standard_normal((2, 16, 14, 14)).astype(np.float32)}
    compiled = _agree(_model(nodes, [x], [y], inits, opset=opset), feeds, target, rtol=1e-4, atol=1e-5)
    assert compiled.report["layout"]["transdata"] == 2, compiled.report["kernels"]


def _residual_in_two_formats():
    """SwiftFormer's block: x + layer_scale * f(x), f ending in ND (a channels-last
    softmax, which has no channels-first form; a channels-last matmul would become a 1x1
    conv), x a conv output in NC1HWC0. Fusion makes one group of the Mul and the Add;
    ascend-layout puts a TransData between them, inside the group."""
    rng = np.random.default_rng(9)
    inits = [numpy_helper.from_array(rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.2, "w"),
             numpy_helper.from_array(np.full((16, 1, 1), 0.5, np.float32), "scale")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("Softmax", ["t"], ["l"], axis=-1),
             helper.make_node("Transpose", ["l"], ["u"], perm=[0, 3, 1, 2]),
             helper.make_node("Mul", ["scale", "u"], ["m"]),
             helper.make_node("Add", ["c", "m"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return _model(nodes, [x], [y], inits), {"x": rng.standard_normal((2, 8, 16, 16)).astype(np.float32)}


def _conv_with_spatial_mask():
    """A conv (NC1HWC0) times a [1, 1, H, W] mask, which broadcasts across the blocked C
    axis, so the Mul runs in ND: a TransData inside the conv's fused epilogue."""
    rng = np.random.default_rng(10)
    w = numpy_helper.from_array(rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.2, "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["c", "mask"], ["m"]),
             helper.make_node("Relu", ["m"], ["y"])]
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 12, 12]),
           helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, 12, 12])]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    feeds = {"x": rng.standard_normal((2, 8, 12, 12)).astype(np.float32),
             "mask": rng.uniform(0, 1, (1, 1, 12, 12)).astype(np.float32)}
    return _model(nodes, ins, [y], [w]), feeds


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("case, kind", [(_residual_in_two_formats, "vector"), (_conv_with_spatial_mask, "cube")])
def test_a_format_change_inside_a_group_stays_on_the_ai_core(target, case, kind):
    """hf/swiftformer of the model corpus ran four mul+add groups on the AI CPU ("Add has
    an operand the kernel cannot load"): a TransData inside a fused group. A kernel holds
    its tiles as logical values (each GM operand's DMA converts its own format), so in UB
    the TransData is the tile it reads: vector kernels and cube epilogues take it so."""
    model, feeds = case()
    compiled = _agree(model, feeds, target, rtol=1e-4, atol=1e-5)
    assert compiled.report["aicpu"] == []
    assert any(k["kind"] == kind and ("mul" in k["name"]) for k in compiled.report["kernels"]), compiled.report["kernels"]


@pytest.mark.parametrize("target", CHIPS)
def test_run_time_sizes_are_not_timed(target):
    """MoE routing exported by TorchScript selects tokens with NonZero, so every kernel after
    it has a size known only at run time; the timing model multiplied the unknown dims
    (-2**63) and reported 2e36 us. Those kernels are now listed as untimed and the totals
    are a lower bound."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32), "w")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    axes0 = numpy_helper.from_array(np.array([0], np.int64), "axes0")
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["m"]),
        helper.make_node("NonZero", ["m"], ["nz"]),
        helper.make_node("Squeeze", ["nz", "axes0"], ["rows"]),
        helper.make_node("Gather", ["x", "rows"], ["picked"]),
        helper.make_node("MatMul", ["picked", "w"], ["y"]),
    ]
    compiled = _agree(_model(nodes, [x], [y], [w, axes, axes0, zero]), {"x": np.random.default_rng(1).standard_normal((8, 16)).astype(np.float32)},
                      target, rtol=1e-4, atol=1e-4)
    timing = compiled.report["timing"]
    assert timing["untimed"] and not timing["complete"]
    assert 0 < timing["total_us"] < 1e4
    assert any("not timed" in line for line in compiled.target.summary_lines(compiled.report))


@pytest.mark.parametrize("target", CHIPS)
def test_shufflenet_unit_keeps_nc1hwc0(target):
    """onnx's ShuffleNet kept 39 TransData: each channel shuffle (reshape, transpose, reshape)
    went to ND and back, and so did each concat of 24 pooled channels with 216 convolved
    ones (not whole C0 blocks). The shuffle is now a gather of channels and both stay
    NC1HWC0: one TransData in, one out."""
    rng = np.random.default_rng(0)
    n, c, h, w, g = 1, 48, 14, 14, 3
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, h, w])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [
        numpy_helper.from_array((rng.standard_normal((c, c // g, 1, 1)) / 4).astype(np.float32), "w1"),
        numpy_helper.from_array((rng.standard_normal((c, 1, 3, 3)) / 3).astype(np.float32), "w2"),
        numpy_helper.from_array((rng.standard_normal((40, c, 1, 1)) / 7).astype(np.float32), "w3"),
        numpy_helper.from_array(np.array([n, g, c // g, h, w], np.int64), "split"),
        numpy_helper.from_array(np.array([n, c, h, w], np.int64), "merge"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], group=g),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Reshape", ["r1", "split"], ["s1"]),
        helper.make_node("Transpose", ["s1"], ["s2"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["s2", "merge"], ["shuffled"]),
        helper.make_node("Conv", ["shuffled", "w2"], ["c2"], group=c, pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Conv", ["c2", "w3"], ["c3"]),  # 40 channels: 2.5 C0 blocks
        helper.make_node("AveragePool", ["x"], ["pooled"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Concat", ["c3", "pooled"], ["y"], axis=1),
    ]
    feeds = {"x": rng.standard_normal((n, c, h, w)).astype(np.float32)}
    compiled = _agree(_model(nodes, [x], [y], inits), feeds, target, rtol=1e-4, atol=1e-4)
    assert compiled.report["layout"]["transdata"] <= 2


@pytest.mark.parametrize("target", CHIPS)
def test_gathers_and_scatters_by_run_time_indices_run_on_the_ai_core(target):
    """torch.export's ONNX writes a sequence classifier's pooling (the hidden state at each
    sequence's last token) as GatherND and BART's shift-right as ScatterND: both went to the
    AI CPU, where CANN runs GatherNd and ScatterNdUpdate on the AI Core. They are move
    kernels now, addressing by the index values they read."""
    rng = np.random.default_rng(0)
    h = helper.make_tensor_value_info("h", TensorProto.FLOAT, [2, 7, 32])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, [2, 2])
    upd = helper.make_tensor_value_info("upd", TensorProto.FLOAT, [2, 32])
    tok = helper.make_tensor_value_info("tok", TensorProto.INT64, [2, 7])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("picked", "scattered")]
    outs.append(helper.make_tensor_value_info("shifted", TensorProto.INT64, None))
    col = numpy_helper.from_array(np.array([[0], [0]], np.int64), "col")
    start = numpy_helper.from_array(np.array([[1], [1]], np.int64), "start")
    nodes = [
        helper.make_node("GatherND", ["h", "idx"], ["picked"]),
        helper.make_node("ScatterND", ["h", "idx", "upd"], ["scattered"]),
        helper.make_node("ScatterElements", ["tok", "col", "start"], ["shifted"], axis=1),
    ]
    feeds = {"h": rng.standard_normal((2, 7, 32)).astype(np.float32), "idx": np.array([[0, 6], [1, 3]], np.int64),
             "upd": rng.standard_normal((2, 32)).astype(np.float32), "tok": rng.integers(0, 100, (2, 7))}
    compiled = _agree(_model(nodes, [h, idx, upd, tok], outs, [col, start]), feeds, target)
    assert not compiled.report["aicpu"]


@pytest.mark.parametrize("target", CHIPS)
def test_argmax_and_cumsum_run_on_the_vector_unit(target):
    """CLIP's text pooling (ArgMax over token ids) and BLOOM's and ESM's position ids
    (CumSum over the mask) went to the AI CPU; CANN runs ArgMaxV2 and Cumsum on the AI
    Core. Tiled over the axes before theirs, several tiles here."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 300, 16])
    outs = [helper.make_tensor_value_info("am", TensorProto.INT64, None),
            helper.make_tensor_value_info("cs", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("csr", TensorProto.FLOAT, None)]
    axis = numpy_helper.from_array(np.array(1, np.int64), "axis")
    nodes = [
        helper.make_node("ArgMax", ["x"], ["am"], axis=1, keepdims=0),
        helper.make_node("CumSum", ["x", "axis"], ["cs"]),
        helper.make_node("CumSum", ["x", "axis"], ["csr"], exclusive=1, reverse=1),
    ]
    feeds = {"x": rng.standard_normal((64, 300, 16)).astype(np.float32)}
    compiled = _agree(_model(nodes, [x], outs, [axis]), feeds, target, rtol=1e-4, atol=1e-3)
    assert not compiled.report["aicpu"]
    assert all(k["kind"] == "vector" for k in compiled.report["kernels"])


@pytest.mark.parametrize("target", CHIPS)
def test_moe_routing_runs_on_the_vector_unit(target):
    """Mixtral's and Qwen-MoE's router (TopK over the experts, OneHot of the chosen ones) ran
    on the AI CPU; CANN runs TopKV2 and OneHot on the AI Core. OneHot's result has one more
    axis than its indices, which line up with its leading axes (not numpy's from the right)."""
    rng = np.random.default_rng(0)  # distinct values: no ties for the tie rule to decide
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 256])
    outs = [helper.make_tensor_value_info(n, t, None) for n, t in (("v", TensorProto.FLOAT), ("h", TensorProto.FLOAT))]
    consts = [numpy_helper.from_array(np.array([8], np.int64), "kk"), numpy_helper.from_array(np.array(256, np.int64), "n"),
              numpy_helper.from_array(np.array([0, 1], np.float32), "onoff")]
    nodes = [helper.make_node("TopK", ["x", "kk"], ["v", "i"], axis=-1),
             helper.make_node("OneHot", ["i", "n", "onoff"], ["h"], axis=-1)]
    feeds = {"x": np.stack([rng.permutation(256) / 8 for _ in range(64)]).astype(np.float32)}
    compiled = _agree(_model(nodes, [x], outs, consts), feeds, target)
    assert not compiled.report["aicpu"]
    assert [k["kind"] for k in compiled.report["kernels"]] == ["vector", "vector"]


@pytest.mark.parametrize("target", CHIPS)
def test_float64_kept_is_computed_in_float64_on_the_ai_cpu(target):
    """onnx's pytorch-operator models add float64 tensors; the vector unit has no float64 and
    computed them in float32 (1e200 became inf). Kept as float64 (must_keep_origin_dtype),
    they run on the AI CPU, as CANN's float64 kernels do; a float64 Transpose is a move."""
    x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)
    nodes = [helper.make_node("Add", ["x", "x"], ["s"]), helper.make_node("Transpose", ["s"], ["y"], perm=[1, 0])]
    feeds = {"x": np.array([[1e200, 1e-310, 1.0], [-2.5, 3.0, 1e100]])}
    compiled = _agree(_model(nodes, [x], [y]), feeds, target, rtol=0, atol=0)
    assert [k["kind"] for k in compiled.report["kernels"]] == ["aicpu", "vector"]
    assert "float64" in " ".join(str(r) for r in compiled.report["remarks"])


@pytest.mark.parametrize("target", CHIPS)
def test_attention_with_a_boolean_mask_runs_the_flash_kernel(target):
    """torch.onnx.export at opset 23 writes transformers' SDPA as ONNX Attention with a
    boolean mask (keep where True); it ran on the AI CPU. The flash kernel loads the mask
    tile as bytes and sets masked scores to -inf; a row with every key masked gives zeros."""
    b, h, s, d = 2, 4, 64, 32
    q, k, v = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [b, h, s, d]) for n in "qkv")
    m = helper.make_tensor_value_info("m", TensorProto.BOOL, [b, 1, s, s])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    rng = np.random.default_rng(5)
    mask = rng.random((b, 1, s, s)) > 0.3
    mask[0, 0, 3] = False  # a row that sees no key
    feeds = {n: rng.standard_normal((b, h, s, d)).astype(np.float32) for n in "qkv"} | {"m": mask}
    compiled = _agree(_model([helper.make_node("Attention", ["q", "k", "v", "m"], ["y"])], [q, k, v, m], [y], opset=23),
                      feeds, target)
    assert [kk["kind"] for kk in compiled.report["kernels"]] == ["cube"]
    np.testing.assert_array_equal(compiled.run(feeds)["y"][0, :, 3], 0)


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("weights_given", [False, True])
def test_depthwise_convolution_runs_as_blocks_of_channels(target, weights_given):
    """EfficientNet's and MobileNet's depthwise convolutions ran as one cube matmul per
    channel (3840 of them, 169.5 us for a 7 x 7 plane); as CANN's DepthwiseConv2D, blocks of
    16 channels with block-diagonal weights now share each matmul. Weights fed at run time
    (torch.compile's parameters) keep one matmul per channel."""
    c = 144
    rng = np.random.default_rng(8)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 28, 28])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = rng.standard_normal((c, 1, 3, 3)).astype(np.float32)
    bias = numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "b")
    conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=c, pads=[1, 1, 1, 1], strides=[2, 2])
    feeds = {"x": rng.standard_normal((1, c, 28, 28)).astype(np.float32)}
    if weights_given:
        model = _model([conv], [x, helper.make_tensor_value_info("w", TensorProto.FLOAT, [c, 1, 3, 3])], [y], [bias])
        feeds["w"] = w
    else:
        model = _model([conv], [x], [y], [numpy_helper.from_array(w, "w"), bias])
    compiled = _agree(model, feeds, target, rtol=1e-4, atol=1e-4)
    (cube,) = [k for k in compiled.report["kernels"] if k["kind"] == "cube"]
    assert cube["tiling"]["batch"] == (c if weights_given else c // 16)
    assert compiled.report["timing"]["flops"] == 2 * c * 14 * 14 * 9  # the depthwise FLOPs, not the zeros'


@pytest.mark.parametrize("target", CHIPS)
def test_col2im_runs_on_the_vector_unit(target):
    """MobileViT-v2's fold (Col2Im: overlapping patches summed into the image) ran on the AI
    CPU; CANN runs Col2im on the AI Core. Tiles of whole samples; shapes are parameters."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 12, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    consts = [numpy_helper.from_array(np.array([14, 14], np.int64), "img"), numpy_helper.from_array(np.array([2, 2], np.int64), "blk")]
    node = helper.make_node("Col2Im", ["x", "img", "blk"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1])
    feeds = {"x": np.random.default_rng(3).standard_normal((2, 12, 64)).astype(np.float32)}
    compiled = _agree(_model([node], [x], [y], consts, opset=18), feeds, target)
    assert not compiled.report["aicpu"]


@pytest.mark.parametrize("target", CHIPS)
def test_lrn_over_a_sample_larger_than_ub_is_tiled_by_rows(target):
    """AlexNet's, ZFNet's and Inception v1's LRN (96 x 55 x 55 per sample) ran on the AI CPU:
    its tile was a whole sample. LRN mixes only each pixel's channels, so a tile is rows of
    pixels with every channel, as ChannelLayerNorm's."""
    shape = (1, 96, 55, 55)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    lrn = helper.make_node("LRN", ["x"], ["y"], size=5, alpha=1e-4, beta=0.75, bias=1.0)
    feeds = {"x": np.random.default_rng(1).standard_normal(shape).astype(np.float32)}
    compiled = _agree(_model([lrn], [x], [y]), feeds, target)
    (k,) = [k for k in compiled.report["kernels"] if "lrn" in k["name"]]
    assert k["kind"] == "vector" and k["tiling"]["tiles"] > 1


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("op, shape, attrs", [
    ("MaxPool", (1, 64, 224, 224), {"kernel_shape": [2, 2], "strides": [2, 2]}),  # VGG19's first pool
    ("AveragePool", (2, 20, 201, 203), {"kernel_shape": [2, 3], "strides": [3, 1], "pads": [0, 1, 0, 1]}),
    ("MaxPool", (1, 24, 192, 190), {"kernel_shape": [3, 3], "strides": [3, 3], "ceil_mode": 1}),
])
def test_a_pool_over_planes_larger_than_ub_is_tiled_along_h(target, op, shape, attrs):
    """VGG19's first MaxPool (a 224 x 224 plane per channel) ran on the AI CPU: a tile held
    whole planes. Windows that do not overlap along H are cut there, r output rows reading
    r * stride input rows (W pads and ceil_mode on W kept)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    feeds = {"x": np.random.default_rng(2).standard_normal(shape).astype(np.float32)}
    compiled = _agree(_model([helper.make_node(op, ["x"], ["y"], **attrs)], [x], [y]), feeds, target)
    assert not compiled.report["aicpu"]
    (k,) = [k for k in compiled.report["kernels"] if "pool" in k["name"]]
    assert k["kind"] == "vector" and k["tiling"]["tiles"] > shape[0] * shape[1]


@pytest.mark.parametrize("target", CHIPS)
def test_a_fused_reduction_that_drops_axes_broadcasts_its_operands_at_their_own_rank(target):
    """Fuzz seed 24670: Where(mask, c[2, 6, 4], x[1, 2, 6, 4]) then ReduceMin over axis 2
    without keepdims, fused in one vector kernel. The constant was padded to the rank of
    the kernel's result (3), not of the values it broadcasts against (4): a broadcast error."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 4])
    m = helper.make_tensor_value_info("m", TensorProto.BOOL, [1, 2, 6, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    c = numpy_helper.from_array(rng.standard_normal((2, 6, 4)).astype(np.float32), "c")
    axes = numpy_helper.from_array(np.array([2], np.int64), "axes")
    nodes = [helper.make_node("Where", ["m", "c", "x"], ["w"]), helper.make_node("ReduceMin", ["w", "axes"], ["y"], keepdims=0)]
    feeds = {"x": rng.standard_normal((1, 2, 6, 4)).astype(np.float32), "m": rng.random((1, 2, 6, 4)) > 0.5}
    _agree(_model(nodes, [x, m], [y], [c, axes], opset=18), feeds, target)


def _group_norm_block(c: int, groups: int, hw: int, rng):
    """Conv -> GroupNorm as both ONNX exporters write torch's group_norm (Reshape to
    [N, G, -1], InstanceNormalization with per-group ones and zeros, Reshape back, then the
    per-channel affine) -> ReLU -> Conv: PoolFormer (G = 1) and BiT (G = 32)."""
    inits = [numpy_helper.from_array(rng.standard_normal((c, 8, 3, 3)).astype(np.float32) * 0.2, "w"),
             numpy_helper.from_array(rng.standard_normal((8, c, 1, 1)).astype(np.float32) * 0.2, "w2"),
             numpy_helper.from_array(np.array([0, groups, -1], np.int64), "grouped"),
             numpy_helper.from_array(np.array([2, c, hw, hw], np.int64), "back"),
             numpy_helper.from_array(np.ones(groups, np.float32), "ones"),
             numpy_helper.from_array(np.zeros(groups, np.float32), "zeros"),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, (c, 1, 1)).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.uniform(-0.5, 0.5, (c, 1, 1)).astype(np.float32), "beta")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Reshape", ["c", "grouped"], ["r"]),
             helper.make_node("InstanceNormalization", ["r", "ones", "zeros"], ["n"], epsilon=1e-5),
             helper.make_node("Reshape", ["n", "back"], ["b"]),
             helper.make_node("Mul", ["b", "gamma"], ["s"]), helper.make_node("Add", ["s", "beta"], ["a"]),
             helper.make_node("Relu", ["a"], ["rr"]), helper.make_node("Conv", ["rr", "w2"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, hw, hw])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    feeds = {"x": rng.standard_normal((2, 8, hw, hw)).astype(np.float32)}
    return _model(nodes, [x], [y], inits), feeds


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("c, groups", [(16, 1), (64, 32), (24, 3)])
def test_group_norm_between_convolutions_keeps_nc1hwc0(target, c, groups):
    """transformers' PoolFormer kept 13 TransData and BiT 16: the Reshapes around the
    InstanceNormalization are not NC1HWC0 ops, so every group norm cost one on each side.
    ascend-layout rewrites the three into a GroupNormalization whose tiles hold whole
    samples, which stays NC1HWC0 (groups of 2 channels inside a C0 block included)."""
    rng = np.random.default_rng(11)
    model, feeds = _group_norm_block(c, groups, 8, rng)
    compiled = _agree(model, feeds, target, rtol=1e-4, atol=1e-4)
    assert compiled.report["layout"]["transdata"] == 2, compiled.report["kernels"]
    fp16 = graphopt.compile(model, target)  # force_fp16 too: the kernel's tiles in half
    np.testing.assert_allclose(fp16.run(feeds)["y"], graphopt.compile(model, "cpu").run(feeds)["y"], rtol=0.05, atol=0.05)


def test_a_group_norm_whose_sample_does_not_fit_ub_keeps_its_groups_as_rows():
    """A sample of 64 x 64 x 64 float32 is over UB: the rewrite is not made, and the
    InstanceNormalization's rows (one group each) tile as before."""
    rng = np.random.default_rng(12)
    model, feeds = _group_norm_block(64, 32, 64, rng)
    compiled = _agree(model, feeds, "ascend-sim", rtol=1e-4, atol=1e-4)
    assert compiled.report["layout"]["transdata"] > 2
    assert not compiled.report["aicpu"]


@pytest.mark.parametrize("target", CHIPS)
def test_a_pooled_output_beside_its_feature_map_runs_on_the_nd_copy(target):
    """transformers' ResNet and RegNet return the last feature map and its global average
    pool: the pool stayed NC1HWC0 and took a TransData of its own back to ND, 3 in all.
    Its input is converted for the return anyway, so it runs in ND on that copy."""
    rng = np.random.default_rng(13)
    inits = [numpy_helper.from_array(rng.standard_normal((32, 8, 3, 3)).astype(np.float32) * 0.2, "w"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"]),
             helper.make_node("ReduceMean", ["y", "axes"], ["p"], keepdims=1)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 4, 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "p")]
    feeds = {"x": rng.standard_normal((2, 8, 4, 4)).astype(np.float32)}
    compiled = _agree(_model(nodes, [x], outs, inits, opset=18), feeds, target, rtol=1e-4, atol=1e-5)
    assert compiled.report["layout"]["transdata"] == 2, compiled.report["kernels"]


@pytest.mark.parametrize("target", CHIPS)
def test_a_pad_after_a_one_by_one_plane_stays_blocked(target):
    """transformers' MobileNetV2 (TorchScript export) at the last stages: a conv's [N, 240,
    1, 1] output (the same bytes in NC1HWC0 and ND), a Clip, then a spatial Pad before the
    next conv. The Clip took ND (its operand looked ND) and the Pad followed it, so a
    TransData came back before the conv; an elementwise op now keeps its operand's format."""
    rng = np.random.default_rng(14)
    inits = [numpy_helper.from_array(rng.standard_normal((32, 8, 3, 3)).astype(np.float32) * 0.2, "w"),
             numpy_helper.from_array(rng.standard_normal((32, 1, 3, 3)).astype(np.float32) * 0.2, "dw"),
             numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
             numpy_helper.from_array(np.array(0, np.float32), "lo"), numpy_helper.from_array(np.array(6, np.float32), "hi")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["r"]), helper.make_node("Pad", ["r", "pads"], ["p"]),
             helper.make_node("Conv", ["p", "dw"], ["y"], group=32)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    feeds = {"x": rng.standard_normal((2, 8, 3, 3)).astype(np.float32)}
    compiled = _agree(_model(nodes, [x], [y], inits), feeds, target, rtol=1e-4, atol=1e-5)
    assert compiled.report["layout"]["transdata"] == 2, compiled.report["kernels"]


@pytest.mark.parametrize("target", CHIPS)
def test_operands_after_a_reduction_that_drops_axes_broadcast_at_the_rank_of_their_readers(target):
    """Fuzz seed 32151: ReduceMean over the last axis without keepdims, then ops that add a
    constant [5] to the [2, 3, 5] result, fused in one vector kernel. The constant was padded
    to the rank of the reduction's input (4), which aligned it with the reduced axis."""
    rng = np.random.default_rng(1)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 5, 9])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    c = numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "c")
    axes = numpy_helper.from_array(np.array([3], np.int64), "axes")
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
             helper.make_node("LeakyRelu", ["m"], ["l"]), helper.make_node("Tanh", ["l"], ["t"]),
             helper.make_node("Add", ["t", "c"], ["y"])]
    feeds = {"x": rng.standard_normal((2, 3, 5, 9)).astype(np.float32)}
    _agree(_model(nodes, [x], [y], [c, axes], opset=18), feeds, target)


@pytest.mark.parametrize("target", CHIPS)
def test_a_fused_group_broadcasting_a_narrower_value_against_a_wider_one(target):
    """Fuzz seed 32402: Where(m [2, 2, 2, 8], a * x, a) with a, x [2, 2, 8], in one vector
    kernel. Tiles are cut along leading axes and numpy broadcasts from the trailing ones, so
    a [2, 2, 8] tile beside a [2, 2, 2, 8] one paired the wrong axes (and a, read at both
    ranks, got one buffer for both): the group now runs as one whole tile."""
    rng = np.random.default_rng(2)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2, 8])
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 2, 8])
    m = helper.make_tensor_value_info("m", TensorProto.BOOL, [2, 2, 2, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Tanh", ["a"], ["t"]), helper.make_node("Mul", ["t", "x"], ["p"]),
             helper.make_node("Where", ["m", "p", "t"], ["y"])]
    feeds = {"x": rng.standard_normal((2, 2, 8)).astype(np.float32), "a": rng.standard_normal((2, 2, 8)).astype(np.float32),
             "m": rng.random((2, 2, 2, 8)) > 0.5}
    _agree(_model(nodes, [x, a, m], [y]), feeds, target)


@pytest.mark.parametrize("target", CHIPS)
def test_optional_ops_on_the_ai_cpu_under_float16_storage(target):
    """The node suite's optional cases at force_fp16: GM holds the float32 input in float16,
    the AI CPU widens its inputs back to the model's dtypes, but not a tensor inside an
    optional, so its own type check failed (an internal error reported as a refusal)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    outs = [helper.make_tensor_value_info("h", TensorProto.BOOL, []), helper.make_tensor_value_info("g", TensorProto.FLOAT, [4])]
    nodes = [helper.make_node("Optional", ["x"], ["o"]), helper.make_node("OptionalHasElement", ["o"], ["h"]),
             helper.make_node("OptionalGetElement", ["o"], ["g"])]
    feeds = {"x": np.array([1.0, 2.5, -3.0, 0.5], np.float32)}
    got = graphopt.compile(_model(nodes, [x], outs, opset=18), target).run(feeds)
    assert got["h"] and np.array_equal(got["g"], feeds["x"])


def _conv_resize(resize_inputs, inits, attrs, opset, shape=(2, 16, 9, 7)):
    """Conv -> Resize -> Conv, as an FPN or U-Net upsamples a feature map."""
    rng = np.random.default_rng(5)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(rng.standard_normal((16, 16, 3, 3)).astype(np.float32) * 0.1, "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["c", *resize_inputs], ["r"], **attrs),
             helper.make_node("Conv", ["r", "w"], ["y"], pads=[1, 1, 1, 1])]
    feeds = {"x": rng.standard_normal(shape).astype(np.float32)}
    return _model(nodes, [x], [y], [w, *inits], opset=opset), feeds


_SCALES = numpy_helper.from_array(np.array([1, 1, 2, 1.5], np.float32), "scales")
_SIZES = numpy_helper.from_array(np.array([2, 16, 17, 12], np.int64), "sizes")


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize(("inputs", "inits", "attrs", "opset"), [
    (["", "scales"], [_SCALES], {"mode": "nearest"}, 13),
    (["", "scales"], [_SCALES], {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, 13),
    (["", "", "sizes"], [_SIZES], {"mode": "linear"}, 18),
    (["", "", "sizes"], [_SIZES], {"mode": "cubic", "coordinate_transformation_mode": "asymmetric"}, 13),
])
def test_an_upsample_between_convolutions_runs_on_the_vector_unit_in_nc1hwc0(target, inputs, inits, attrs, opset):
    """timm's CoaT, CPUBone and CrossViT resize feature maps; Resize ran on the AI CPU (CANN:
    ResizeBilinearV2 / ResizeNearestNeighborV2 on the AI Core) and stayed ND between
    convolutions. Over H and W only it becomes its axes = [2, 3] form: planes are tiles, and
    NC1HWC0 passes through it."""
    model, feeds = _conv_resize(inputs, inits, attrs, opset)
    compiled = _agree(model, feeds, target, rtol=1e-4, atol=1e-4)
    assert not compiled.report["aicpu"]
    assert compiled.report["layout"]["transdata"] == 2  # the input's and the output's


_UP2 = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
_DOWN = numpy_helper.from_array(np.array([1, 1, 0.6, 0.45], np.float32), "scales")
_ROI = numpy_helper.from_array(np.array([0, 0, 0.1, -0.2, 1, 1, 0.8, 1.3], np.float32), "roi")
_CROP = numpy_helper.from_array(np.array([1, 16, 150, 170], np.int64), "sizes")


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize(("shape", "inputs", "inits", "attrs", "opset"), [
    ((1, 16, 96, 80), ["", "scales"], [_UP2], {"mode": "nearest"}, 13),
    ((1, 16, 96, 80), ["", "scales"], [_UP2], {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, 13),
    ((1, 16, 200, 240), ["", "scales"], [_DOWN], {"mode": "cubic", "antialias": 1, "exclude_outside": 1}, 18),
    ((1, 16, 120, 100), ["roi", "", "sizes"], [_ROI, _CROP],
     {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 0.5}, 13),
])
def test_a_resize_of_planes_larger_than_ub_runs_as_two_one_axis_resizes(target, shape, inputs, inits, attrs, opset):
    """A plane and its resized copy that do not fit UB together (CrossViT resizes its
    240 x 240 input to 224; a segmentation head upsamples to the input's size) ran on the AI
    CPU. ONNX's interpolation is separable: one Resize of W (tiles of rows) and one of H
    (tiles of columns) give its result, each tiled in UB, and NC1HWC0 passes through both."""
    model, feeds = _conv_resize(inputs, inits, attrs, opset, shape)
    compiled = _agree(model, feeds, target, rtol=1e-4, atol=1e-4)
    assert not compiled.report["aicpu"]
    assert compiled.report["layout"]["transdata"] == 2  # the input's and the output's
    resizes = [k for k in compiled.report["kernels"] if "resize" in k["name"]]
    assert len(resizes) == 2 and all(k["tiling"]["tiles"] > 1 for k in resizes)


def test_a_resize_of_the_channels_stays_whole():
    """Scaling C as well: planes are not independent, so the kernel is one tile (or the AI
    CPU when that does not fit), and the result is still the op's."""
    scales = numpy_helper.from_array(np.array([1, 2, 2, 1], np.float32), "scales")
    model, feeds = _conv_resize(["", "scales"], [scales], {"mode": "nearest"}, 13)
    model.graph.node[2].input[1] = "w2"
    w2 = np.random.default_rng(6).standard_normal((16, 32, 3, 3)).astype(np.float32) * 0.1
    model.graph.initializer.append(numpy_helper.from_array(w2, "w2"))
    _agree(model, feeds, "ascend-sim", rtol=1e-4, atol=1e-4)


def test_a_linear_over_attention_heads_is_not_made_a_convolution():
    """CaiT's talking heads: a Linear over the heads of [B, N, N, H] scores between two
    Transposes. With no convolution beside it the channels-first form only added a TransData
    on each side (98 in cait_xs24_384); it stays a MatMul."""
    rng = np.random.default_rng(7)
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 6, 10, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(rng.standard_normal((6, 6)).astype(np.float32), "w")
    nodes = [helper.make_node("Transpose", ["s"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("MatMul", ["t", "w"], ["m"]),
             helper.make_node("Transpose", ["m"], ["u"], perm=[0, 3, 1, 2]),
             helper.make_node("Softmax", ["u"], ["y"], axis=-1)]
    feeds = {"s": rng.standard_normal((1, 6, 10, 10)).astype(np.float32)}
    compiled = _agree(_model(nodes, [s], [y], [w]), feeds, "ascend-sim")
    assert compiled.report["layout"]["transdata"] == 0
    assert any("stays channels-last: no convolution" in r["reason"] for r in compiled.report["remarks"])


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize(("form", "attrs", "mask"), [
    ("4d", {}, None),  # DaViT's channel attention: the "head dimension" is the token count
    ("4d", {"is_causal": 1}, "bool"),
    ("3d", {"q_num_heads": 4, "kv_num_heads": 2}, "float"),  # grouped-query heads
])
def test_an_attention_too_wide_for_the_flash_kernel_runs_as_matmuls(target, form, attrs, mask):
    """timm's DaViT stopped in ascend-lower: its channel attention, found by
    recognize-attention, has a head dimension of 3136 and no flash-kernel block fits L1.
    ascend-attention-fallback runs such an Attention as matmuls and a softmax."""
    rng = np.random.default_rng(8)
    b, s, d = 1, 24, 8192
    heads = (2, 2) if form == "4d" else (4, 2)
    def shaped(h):
        return [b, h, s, d] if form == "4d" else [b, s, h * d]
    names = ["q", "k", "v"]
    shapes = [shaped(heads[0]), shaped(heads[1]), shaped(heads[1])]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, sh) for n, sh in zip(names, shapes)]
    feeds = {n: rng.standard_normal(sh).astype(np.float32) * 0.02 for n, sh in zip(names, shapes)}
    if mask is not None:
        m = rng.random((s, s)) < 0.3
        m[:, 0] = mask == "bool"  # a bool mask keeps column 0; a float one masks none of it with -inf
        feeds["m"] = m if mask == "bool" else np.where(m, -1e4, 0).astype(np.float32)
        kind = TensorProto.BOOL if mask == "bool" else TensorProto.FLOAT
        inputs.append(helper.make_tensor_value_info("m", kind, [s, s]))
        names.append("m")
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("Attention", names, ["y"], **attrs)
    compiled = _agree(_model([node], inputs, [y], opset=23), feeds, target, rtol=1e-4, atol=1e-5)
    assert not compiled.report["aicpu"]
    assert any(r["pass"] == "ascend-attention-fallback" for r in compiled.report["remarks"])


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("form", ["split", "slice", "slice_h"])
def test_parts_of_a_blocked_feature_map_stay_blocked(target, form):
    """timm's FasterNet splits a quarter of the channels off for its partial convolution,
    DPN slices each block's output into residual and dense channels: in ND that was 40 and
    50 TransData. Split and Slice keep NC1HWC0, channel parts that start mid-block shifted
    across C0 lanes."""
    rng = np.random.default_rng(9)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 40, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(rng.standard_normal((40, 40, 1, 1)).astype(np.float32) * 0.2, "w")
    wa = numpy_helper.from_array(rng.standard_normal((10, 10, 3, 3)).astype(np.float32) * 0.2, "wa")
    inits = [w, wa]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"])]
    if form == "split":
        inits.append(numpy_helper.from_array(np.array([10, 30], np.int64), "parts"))
        nodes.append(helper.make_node("Split", ["c", "parts"], ["a", "b"], axis=1))
    else:
        axis = 1 if form == "slice" else 2
        cut = 10 if form == "slice" else 3
        for name, lo, hi in (("a", 0, cut), ("b", cut, 1 << 30)):
            inits += [numpy_helper.from_array(np.array([v], np.int64), f"{name}_{k}") for k, v in (("lo", lo), ("hi", hi), ("ax", axis))]
            nodes.append(helper.make_node("Slice", ["c", f"{name}_lo", f"{name}_hi", f"{name}_ax"], [name]))
    if form == "slice_h":
        inits[1] = numpy_helper.from_array(rng.standard_normal((40, 40, 3, 3)).astype(np.float32) * 0.2, "wa")
    nodes += [helper.make_node("Conv", ["a", "wa"], ["a2"], pads=[1, 1, 1, 1]),
              helper.make_node("Concat", ["a2", "b"], ["cat"], axis=1 if form != "slice_h" else 2),
              helper.make_node("Conv", ["cat", "w"], ["y"])]
    feeds = {"x": rng.standard_normal((1, 40, 6, 6)).astype(np.float32)}
    compiled = _agree(_model(nodes, [x], [y], inits), feeds, target, rtol=1e-4, atol=1e-4)
    assert compiled.report["layout"]["transdata"] == 2  # the input's and the output's
    assert not compiled.report["aicpu"]


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("gate", ["computed", "split"])
def test_a_spatial_gate_multiplies_a_blocked_feature_map_in_place(target, gate):
    """A one-channel map [N, 1, H, W] times a feature map [N, C, H, W] (CBAM's spatial
    attention; timm's FocalNet gates each focal level with a channel it splits off): the Mul
    ran in ND, a TransData around every gate (97 in focalnet_tiny_lrf). The kernel reads the
    map as it is stored and broadcasts it across the channel lanes."""
    rng = np.random.default_rng(10)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 32, 5, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(rng.standard_normal((33, 32, 1, 1)).astype(np.float32) * 0.2, "w")
    w2 = numpy_helper.from_array(rng.standard_normal((32, 32, 3, 3)).astype(np.float32) * 0.1, "w2")
    inits = [w, w2, numpy_helper.from_array(np.array([32, 1], np.int64), "parts"),
             numpy_helper.from_array(np.array([1], np.int64), "one")]
    if gate == "split":  # FocalNet: the gate is a channel of the same convolution
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
                 helper.make_node("Split", ["c", "parts"], ["f", "g"], axis=1)]
    else:  # CBAM: the gate is computed from a channel-wise mean
        nodes = [helper.make_node("Conv", ["x", "w2"], ["f"], pads=[1, 1, 1, 1]),
                 helper.make_node("ReduceMean", ["f", "one"], ["g"], keepdims=1)]
    nodes += [helper.make_node("Sigmoid", ["g"], ["s"]),
              helper.make_node("Mul", ["f", "s"], ["m"]),
              helper.make_node("Conv", ["m", "w2"], ["y"], pads=[1, 1, 1, 1])]
    feeds = {"x": rng.standard_normal((2, 32, 5, 5)).astype(np.float32)}
    compiled = _agree(_model(nodes, [x], [y], inits, opset=18), feeds, target, rtol=1e-4, atol=1e-4)
    assert not compiled.report["aicpu"]
    assert compiled.report["layout"]["transdata"] <= (2 if gate == "split" else 4)


def _one_op(node, shape, inits=(), out_type=TensorProto.FLOAT):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", out_type, None)
    return _model([node], [x], [y], inits, opset=18)


def _axes(values):
    return [numpy_helper.from_array(np.array(values, np.int64), "ax")]


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize(("node", "shape", "inits", "out_type"), [
    (helper.make_node("ArgMax", ["x"], ["y"], axis=1, keepdims=0), [1, 21, 96, 96], [], TensorProto.INT64),
    (helper.make_node("Softmax", ["x"], ["y"], axis=1), [1, 21, 96, 96], [], TensorProto.FLOAT),
    (helper.make_node("ReduceMax", ["x", "ax"], ["y"], keepdims=0), [2, 4, 3136, 24], _axes([1]), TensorProto.FLOAT),
    (helper.make_node("ReduceMean", ["x", "ax"], ["y"], keepdims=1), [2, 4, 50, 1000], _axes([1, 2]), TensorProto.FLOAT),
    (helper.make_node("CumSum", ["x", "ax"], ["y"]), [2, 300, 200], [numpy_helper.from_array(np.array(1, np.int64), "ax")],
     TensorProto.FLOAT),
], ids=["argmax_classes", "softmax_classes", "reducemax_units", "reducemean_span", "cumsum"])
def test_an_op_along_a_middle_axis_too_long_for_ub_tiles_the_columns_after_it(target, node, shape, inits, out_type):
    """timm's Hiera takes the max over its mask units (ReduceMax over axis 1 of [B, 4, N, C]),
    CoaT a softmax over tokens, a segmentation head the ArgMax over classes of [N, K, H, W]:
    the generic tiling holds everything from the mixed axis on as a row, which did not fit
    UB, and they ran on the AI CPU. The axes after the span are independent columns."""
    feeds = {"x": np.random.default_rng(11).standard_normal(shape).astype(np.float32)}
    compiled = _agree(_one_op(node, shape, inits, out_type), feeds, target, rtol=1e-5, atol=1e-5)
    assert not compiled.report["aicpu"]
    (kernel,) = compiled.report["kernels"]
    assert kernel["tiling"]["tiles"] > 1


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize(("op", "opset", "per"), [
    ("InstanceNormalization", 18, "channel"),
    ("GroupNormalization", 21, "channel"),
    ("GroupNormalization", 18, "group"),
])
def test_a_norm_over_rows_longer_than_ub_runs_in_two_levels(target, op, opset, per):
    """A diffusion U-Net's GroupNorm (32 groups of 10 x 64 x 64 values) or CPUBone's
    normalization over a whole sample: a row does not fit UB and it ran on the AI CPU.
    ascend-long-rows computes mean and variance as reductions of [N, G, -1], which split."""
    rng = np.random.default_rng(12)
    c = 64
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, c, 64, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    n = c if per == "channel" else 8
    inits = [numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), k) for k in ("s", "b")]
    attrs = {"num_groups": 8} if op == "GroupNormalization" else {}
    node = helper.make_node(op, ["x", "s", "b"], ["y"], epsilon=1e-5, **attrs)
    feeds = {"x": (rng.standard_normal((2, c, 64, 64)) * 3 + 1).astype(np.float32)}
    compiled = _agree(_model([node], [x], [y], inits, opset=opset), feeds, target, rtol=1e-4, atol=1e-4)
    assert not compiled.report["aicpu"]


def test_weights_standardised_in_the_graph_are_folded():
    """timm's NF-Nets standardise every convolution weight in the graph (a training-mode
    BatchNormalization of the weight): larger than fold-constants' size cap, it ran on the AI
    CPU every call (12 kernels, 13 TransData in nf_regnet_b0). A result no larger than the
    constant it reads is a weight, folded whatever its size."""
    rng = np.random.default_rng(13)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = rng.standard_normal((1, 256, 64 * 9)).astype(np.float32)  # over 65536 elements
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros(256, np.float32), "zero"),
             numpy_helper.from_array(np.ones(256, np.float32), "one"),
             numpy_helper.from_array(np.array([256, 64, 3, 3], np.int64), "shape")]
    nodes = [helper.make_node("BatchNormalization", ["w", "one", "zero", "zero", "one"], ["ws", "rm", "rv"], training_mode=1),
             helper.make_node("Reshape", ["ws", "shape"], ["k"]),
             helper.make_node("Conv", ["x", "k"], ["y"], pads=[1, 1, 1, 1])]
    feeds = {"x": rng.standard_normal((1, 64, 8, 8)).astype(np.float32)}
    compiled = _agree(_model(nodes, [x], [y], inits, opset=15), feeds, "ascend-sim", rtol=1e-4, atol=1e-4)
    assert not compiled.report["aicpu"]
    assert [k["kind"] for k in compiled.report["kernels"]].count("cube") == 1


def test_a_split_whose_parts_go_to_nd_ops_splits_in_nd():
    """MobileViT-v2's linear attention splits a convolution's output into q, k and v; q goes
    to a Softmax, which reads ND. Kept NC1HWC0, every part an ND op reads needs a TransData
    (44 in hf/mobilevit-v2@dynamo); split in ND, only the input does (35)."""
    rng = np.random.default_rng(14)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 4, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(rng.standard_normal((33, 16, 1, 1)).astype(np.float32) * 0.3, "w_qkv"),
             numpy_helper.from_array(rng.standard_normal((16, 16, 1, 1)).astype(np.float32) * 0.3, "w_out"),
             numpy_helper.from_array(np.array([1, 16, 16], np.int64), "parts"),
             numpy_helper.from_array(np.array([-1], np.int64), "last")]
    nodes = [helper.make_node("Conv", ["x", "w_qkv"], ["qkv"]),
             helper.make_node("Split", ["qkv", "parts"], ["q", "k", "v"], axis=1),
             helper.make_node("Softmax", ["q"], ["score"], axis=-1),
             helper.make_node("Mul", ["k", "score"], ["ks"]),
             helper.make_node("ReduceSum", ["ks", "last"], ["context"], keepdims=1),
             helper.make_node("Relu", ["v"], ["rv"]),
             helper.make_node("Mul", ["rv", "context"], ["out"]),
             helper.make_node("Conv", ["out", "w_out"], ["y"])]
    feeds = {"x": rng.standard_normal((1, 16, 4, 16)).astype(np.float32)}
    compiled = _agree(_model(nodes, [x], [y], inits), feeds, "ascend-sim", rtol=1e-4, atol=1e-4)
    assert not any("stays NC1HWC0: its parts" in r["reason"] for r in compiled.report["remarks"])
    (split,) = [k for k in compiled.report["kernels"] if k["name"].endswith("_split")]
    assert split  # one move kernel, in ND
