"""The ``graph`` dialect: tensor-level ops, one IRDL class per op.

Most ops mirror an ONNX operator at its newest version and are built from ONNX's own
op schemas (read from ``onnx_ops.py``, a table generated from them), so the dialect covers
every operator onnx knows:

    %y = "graph.conv"(%x, %w, %b) <{strides = array<i64: 1, 1>, group = 1 : i64}>
           {src = ["conv1"]} : (tensor<1x3x8x8xf32>, ...) -> tensor<1x4x8x8xf32>

- Operands are the ONNX inputs in order; a missing optional input in the middle is the
  result of ``graph.none``; trailing missing inputs are simply absent.
- Properties are the ONNX attributes, named as in ONNX (see ``attrs.py`` for encoding).
- ``src`` is the provenance: the source node names that the op came from.

The frontend rewrites older opset versions into the newest form (``frontends/onnx.py``),
so each op has a single meaning. Ops that are not ONNX operators (``graph.weight``,
``graph.constant``, ``graph.none``, and later fused and pattern ops) are written by hand
below the generated ones.

An ONNX op's class is defined the first time it is asked for (``ONNX_OPS["Conv"]``): a
compile uses a few dozen of the 226, and each IRDL definition costs import time and
long-lived objects (see ``torch_backend``). ``Graph``, the dialect with every op, is
built when the parser first needs it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    NoneType,
    StringAttr,
    TensorType,
    UnitAttr,
)
from xdsl.ir import Attribute, Block, BlockArgument, Dialect, Operation, OpResult, SSAValue
from xdsl.irdl import (
    AttrSizedRegionSegments,
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    opt_region_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.traits import ConstantLike, IsolatedFromAbove, IsTerminator, OpTrait, Pure
from xdsl.utils.exceptions import VerifyException

from graphopt.dialects import attrs as A
from graphopt.dialects.attrs import AttrType
from graphopt.dialects.shapes import check_result_types
from graphopt.dialects.structured import verify_structured
from graphopt.dialects.traits import Broadcasting, Cube, Elementwise, LayoutSensitive, Movement, Reduction
from graphopt.dialects.types import OptionalType, SequenceType, StringType

# ---------------------------------------------------------------------------------------
# Families, by ONNX op type. Passes query the traits these tables attach.

_UNARY = """Abs Neg Exp Log Sqrt Reciprocal Floor Ceil Round Sign Sin Cos Tan Asin Acos Atan
Sinh Cosh Tanh Asinh Acosh Atanh Erf IsNaN IsInf Not BitwiseNot Relu LeakyRelu Elu Selu Celu
Sigmoid HardSigmoid HardSwish Softplus Softsign ThresholdedRelu Gelu Mish Swish Shrink Cast
CastLike Identity SwiGLU""".split()
_BROADCAST = """Add Sub Mul Div Pow Mod Max Min Sum Mean BitShift BitwiseAnd BitwiseOr BitwiseXor
And Or Xor Equal Less Greater LessOrEqual GreaterOrEqual PRelu Where Clip""".split()
_REDUCE = """ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceSumSquare ArgMax ArgMin Softmax LogSoftmax Hardmax LayerNormalization
RMSNormalization LpNormalization""".split()
_CUBE = """MatMul Gemm Conv ConvTranspose MatMulInteger QLinearMatMul QLinearConv ConvInteger Einsum
Attention""".split()
_MOVEMENT = """Reshape Transpose Squeeze Unsqueeze Flatten Concat Split Slice Gather Expand Tile
Pad DepthToSpace SpaceToDepth Identity""".split()
_LAYOUT = """Conv ConvTranspose ConvInteger QLinearConv MaxPool AveragePool LpPool GlobalAveragePool
GlobalMaxPool GlobalLpPool MaxUnpool BatchNormalization InstanceNormalization GroupNormalization
LRN DepthToSpace SpaceToDepth Resize RoiAlign""".split()

# Ops that are not pure: they draw random numbers.
_IMPURE = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial"}

_NAME_OVERRIDES = {
    "MatMul": "matmul",
    "MatMulInteger": "matmul_integer",
    "QLinearMatMul": "qlinear_matmul",
    "QLinearConv": "qlinear_conv",
    "IsNaN": "isnan",
    "IsInf": "isinf",
    "Col2Im": "col2im",
    "PRelu": "prelu",
    "SwiGLU": "swiglu",
}


def op_name(onnx_type: str, domain: str = "") -> str:
    """``GlobalAveragePool`` -> ``graph.global_average_pool``."""
    snake = _NAME_OVERRIDES.get(onnx_type) or re.sub(
        r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", onnx_type
    ).lower()
    if domain:
        snake = domain.replace("ai.onnx.", "").replace(".", "_") + "." + snake
    return "graph." + snake


class GraphOp(IRDLOperation):
    """Base of every generated ONNX-mirroring op."""

    ONNX_TYPE: ClassVar[str]
    ONNX_DOMAIN: ClassVar[str] = ""
    ATTR_KINDS: ClassVar[dict[str, AttrType]]
    MAX_INPUTS: ClassVar[int]
    MAX_OUTPUTS: ClassVar[int]

    @classmethod
    def onnx_key(cls) -> str:
        """The op's key in ``ONNX_OPS`` and the rule tables: ``"Conv"``, ``"graphopt::MatMulBias"``."""
        return f"{cls.ONNX_DOMAIN}::{cls.ONNX_TYPE}" if cls.ONNX_DOMAIN else cls.ONNX_TYPE

    def onnx_attrs(self) -> dict[str, Any]:
        """The ONNX attributes set on this op, as Python values."""
        return {k: A.from_ir(v) for k, v in self.properties.items()}

    def verify_(self) -> None:
        if len(self.operands) > self.MAX_INPUTS:
            raise VerifyException(f"{self.name} takes at most {self.MAX_INPUTS} inputs, has {len(self.operands)}")
        if len(self.results) > self.MAX_OUTPUTS:
            raise VerifyException(f"{self.name} has at most {self.MAX_OUTPUTS} outputs, has {len(self.results)}")
        for key, value in self.properties.items():
            kind = self.ATTR_KINDS.get(key)
            if kind is None:
                raise VerifyException(f"{self.name} has no attribute {key}")
            if not A.kind_matches(value, kind):
                raise VerifyException(f"{self.name} attribute {key} should be {kind.name}, is {value}")

        if not verify_structured(self):  # control flow, sequences and optionals type themselves
            check_result_types(self)


def _traits_for(onnx_type: str) -> list[OpTrait]:
    traits: list[OpTrait] = [] if onnx_type in _IMPURE else [Pure()]
    for table, trait in (
        (_UNARY, Elementwise()),
        (_BROADCAST, Elementwise()),
        (_BROADCAST, Broadcasting()),
        (_REDUCE, Reduction()),
        (_CUBE, Cube()),
        (_MOVEMENT, Movement()),
        (_LAYOUT, LayoutSensitive()),
    ):
        if onnx_type in table and trait not in traits:
            traits.append(trait)
    return traits


def _make_op(key: str, operands: dict[str, Any] | None = None) -> type[GraphOp]:
    """The op class of ONNX op ``key``: its operands ``operands`` (IRDL operand defs by
    name; by default one variadic ``inputs``), variadic results, and the schema's attributes
    as optional properties."""
    from graphopt.dialects.onnx_ops import OPS

    domain, _, onnx_type = key.rpartition("::")
    since, max_inputs, max_outputs, table_kinds, required, _ = OPS[key]
    # An old opset's attribute that a later one made an input (Reshape's shape, Squeeze's
    # axes: the frontend's legalize moves it there) is not the typed op's attribute.
    kinds = {name: AttrType(kind) for name, kind in table_kinds.items() if name not in (operands or {})}
    fields: dict[str, Any] = {
        "name": op_name(onnx_type, domain),
        **(operands or {"inputs": var_operand_def()}),
        "outputs": var_result_def(),
        "traits": traits_def(*_traits_for(onnx_type)),
        "__doc__": f"ONNX {onnx_type} (opset {since}).",
        "__module__": __name__,
    }
    optional_regions = 0
    # An If's regions read then-before-else (the schema lists its attributes alphabetically).
    for attr, kind in sorted(kinds.items(), key=lambda kv: kv[0] == "else_branch"):
        if kind in (AttrType.GRAPH, AttrType.GRAPHS):
            # A graph attribute the schema does not require (FlexAttention's score_mod) is
            # an optional region: absent, the op has none.
            fields[attr] = region_def() if attr in required else opt_region_def()
            optional_regions += attr not in required
        else:
            fields[attr] = opt_prop_def(Attribute)
    if optional_regions > 1:  # IRDL needs to be told which optional regions are present
        fields["irdl_options"] = (AttrSizedRegionSegments(),)
    cls = irdl_op_definition(type(onnx_type + "Op", (GraphOp,), fields))
    # Class constants are set after definition: IRDL only accepts op fields in the body.
    cls.ONNX_TYPE = onnx_type
    cls.ONNX_DOMAIN = domain
    cls.ATTR_KINDS = {k: v for k, v in kinds.items() if v not in (AttrType.GRAPH, AttrType.GRAPHS)}
    cls.MAX_INPUTS = max_inputs
    cls.MAX_OUTPUTS = max_outputs
    return cls


class _OpTable(Mapping[str, type[GraphOp]]):
    """Op classes by ONNX op type (``"Conv"``, ``"ai.onnx.ml::Scaler"``, or
    ``"graphopt::MatMulBias"`` for graphopt's own), each ONNX one defined on first use."""

    def __init__(self) -> None:
        from graphopt.dialects.onnx_ops import OPS

        self._keys = dict.fromkeys(OPS)  # ordered, and a set
        self._classes: dict[str, type[GraphOp]] = {}
        self._lock = threading.Lock()

    def __getitem__(self, key: str) -> type[GraphOp]:
        cls = self._classes.get(key)
        if cls is None:
            if key not in self._keys:
                raise KeyError(key)
            with self._lock:  # one class per op, even when two threads ask first
                cls = self._classes.get(key) or _make_op(key, _operand_defs(key))
                self._classes[key] = cls
        return cls

    def __contains__(self, key: object) -> bool:
        return key in self._classes or key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str, cls: type[GraphOp]) -> None:
        self._keys[key] = None
        self._classes[key] = cls


ONNX_OPS = _OpTable()
"""Op classes by ONNX op type (``"Conv"``, or ``"ai.onnx.ml::Scaler"``)."""


# ---------------------------------------------------------------------------------------
# Typed core ops: the ops passes and targets name, with their operands named after the ONNX
# schema's inputs (lower case), so code can read ``conv.w`` for ``conv.operands[1]`` and a
# rewrite can dispatch on the class (``isinstance(op, Conv)``, xDSL's
# ``@op_type_rewrite_pattern`` on ``op: Conv``). The arity is checked by IRDL. Their IR text is
# every graph op's. Like every op class they are defined on first use (``from
# graphopt.dialects.graph import Conv`` defines Conv); every other ONNX op has variadic operands.

CORE_OPERANDS: dict[str, tuple[str, ...]] = {  # "b?": optional, and last
    "MatMul": ("a", "b"),
    "Gemm": ("a", "b", "c?"),
    "Conv": ("x", "w", "b?"),
    "ConvTranspose": ("x", "w", "b?"),
    **{t: ("a", "b") for t in ("Add", "Sub", "Mul", "Div", "Pow")},
    "Where": ("condition", "x", "y"),
    **{t: ("x",) for t in ("Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Sqrt", "Neg", "Reciprocal", "Gelu", "MaxPool",
                           "AveragePool", "GlobalAveragePool")},
    **{t: ("input",) for t in ("Softmax", "LogSoftmax", "Cast", "Flatten")},
    "Transpose": ("data",),
    "Reshape": ("data", "shape"),
    "Expand": ("input", "shape"),
    "Gather": ("data", "indices"),
    **{t: ("data", "axes?") for t in ("Squeeze", "Unsqueeze", "ReduceMean", "ReduceSum", "ReduceMax")},
    "LayerNormalization": ("x", "scale", "b?"),
    "RMSNormalization": ("x", "scale"),
    "BatchNormalization": ("x", "scale", "b", "input_mean", "input_var"),
}


def _operand_defs(key: str) -> dict[str, Any] | None:
    names = CORE_OPERANDS.get(key)
    if names is None:
        return None
    return {n.rstrip("?"): opt_operand_def() if n.endswith("?") else operand_def() for n in names}


# ---------------------------------------------------------------------------------------
# Compute ops of graphopt's own (domain "graphopt"): what passes fold ONNX patterns into
# when ONNX has no single op for them. Their shape rules are in shapes.py and their
# semantics in semantics/extra.py, under the key "graphopt::<Type>".


def _own_op(cls: type[GraphOp], onnx_type: str, max_inputs: int, max_outputs: int = 1) -> type[GraphOp]:
    cls.ONNX_TYPE, cls.ONNX_DOMAIN, cls.ATTR_KINDS = onnx_type, "graphopt", {}
    cls.MAX_INPUTS, cls.MAX_OUTPUTS = max_inputs, max_outputs
    ONNX_OPS.add(f"graphopt::{onnx_type}", cls)
    return cls


@irdl_op_definition
class MatMulBiasOp(GraphOp):
    """MatMul then Add of a bias that broadcasts along the last axis (a linear layer).

    %y = "graph.matmul_bias"(%x, %w, %b) : (tensor<2x8x64xf32>, tensor<64x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
    """

    name = "graph.matmul_bias"
    inputs = var_operand_def()
    outputs = var_result_def()
    traits = traits_def(Pure(), Cube())


_own_op(MatMulBiasOp, "MatMulBias", 3)


@irdl_op_definition
class ChannelLayerNormOp(GraphOp):
    """LayerNormalization over the channel axis (1) of an [N, C, ...] tensor, each spatial
    position on its own: the LayerNormalization (axis -1) of its channels-last transpose,
    transposed back. ConvNeXt-style blocks written channels-last become this (ascend's
    channels-first pass) so that they keep the convolutions' blocked layout.

    %y = "graph.channel_layer_norm"(%x, %scale, %bias) <{epsilon = 1.0e-06 : f32}>
        : (tensor<2x16x8x8xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x16x8x8xf32>
    """

    name = "graph.channel_layer_norm"
    inputs = var_operand_def()
    outputs = var_result_def()
    epsilon = opt_prop_def(Attribute)
    stash_type = opt_prop_def(Attribute)
    traits = traits_def(Pure(), Reduction(), LayoutSensitive())


_own_op(ChannelLayerNormOp, "ChannelLayerNorm", 3)
ChannelLayerNormOp.ATTR_KINDS = {"epsilon": AttrType.FLOAT, "stash_type": AttrType.INT}


# ---------------------------------------------------------------------------------------
# Collectives (domain "graphopt"), point to point included: what torch's functional
# collectives lower to. Like
# torch's, each is asynchronous: its result may be read only through graph.wait, so a pass
# can move the wait later and overlap the communication with compute. They are not Pure:
# no pass folds, merges, fuses or drops one. ``group`` names the process group as torch
# does (its group name), ``ranks`` the global ranks in it; ``reduce_op`` is torch's name
# ("sum", "avg", "max", "min", "product"). Each target gives them meaning its own way
# (cpu: torch.distributed on the live group; ascend-sim: a link model's time).
COLLECTIVES = {  # type -> (doc line, its attributes)
    "AllReduce": ("every rank's x reduced elementwise, on every rank", {"reduce_op": AttrType.STRING}),
    "AllGather": ("the ranks' x concatenated along axis 0, on every rank", {"group_size": AttrType.INT}),
    "ReduceScatter": ("the ranks' x reduced, then split along axis 0: rank r keeps part r",
                      {"reduce_op": AttrType.STRING, "group_size": AttrType.INT}),
    "AllToAll": ("x split along axis 0 by input_split_sizes, part r sent to rank r; the received parts "
                 "concatenated by output_split_sizes", {"input_split_sizes": AttrType.INTS,
                                                        "output_split_sizes": AttrType.INTS}),
    "Broadcast": ("rank src's x, on every rank", {"src": AttrType.INT}),
    # Point to point: Send's result is x itself, once sent (wait for it before x may change);
    # Recv reads nothing and makes the tensor the peer sent (shape and dtype: its type).
    "Send": ("x sent to global rank peer; its result is x, once sent", {"peer": AttrType.INT}),
    "Recv": ("the tensor global rank peer sends, of the result's type", {"peer": AttrType.INT,
                                                                          "shape": AttrType.INTS, "dtype": AttrType.INT}),
    "Wait": ("x once the collective producing it has completed", {}),
}
COLLECTIVE_ATTRS = {"group": AttrType.STRING, "ranks": AttrType.INTS, "mesh_dim": AttrType.STRING}


def _collective(onnx_type: str) -> type[GraphOp]:
    doc, attrs = COLLECTIVES[onnx_type]
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in onnx_type).lstrip("_")
    kinds = {**attrs, **({} if onnx_type == "Wait" else COLLECTIVE_ATTRS)}
    body = {"name": f"graph.{snake}", "inputs": var_operand_def(), "outputs": var_result_def(),
            "__doc__": f"{onnx_type}: {doc}.", "__module__": __name__, **{k: opt_prop_def(Attribute) for k in kinds}}
    cls = irdl_op_definition(type(f"{onnx_type}Op", (GraphOp,), body))
    _own_op(cls, onnx_type, 1)
    cls.ATTR_KINDS = kinds
    return cls


for _type in COLLECTIVES:
    _collective(_type)


def is_collective(op: Operation, *, wait: bool = True) -> bool:
    """Whether ``op`` is one of the COLLECTIVES (``wait=False``: not counting graph.wait)."""
    return isinstance(op, GraphOp) and op.ONNX_DOMAIN == "graphopt" and op.ONNX_TYPE in COLLECTIVES \
        and (wait or op.ONNX_TYPE != "Wait")


# ---------------------------------------------------------------------------------------
# Function arguments that are the model's parameters.

PARAMETER = "graphopt.parameter"
"""A function argument's attribute (``%w: tensor<16x3x3x3xf32> {graphopt.parameter}``): the
argument is a parameter or buffer of the model, fed at run time (torch.compile lifts them
into graph inputs: aot_autograd's static inputs). It is the same tensor call after call and
changes only when the user or an optimizer updates it, so a target may keep it converted
(ascend-sim: in its storage format, as torch_npu keeps parameters) instead of converting it
on every call."""


def mark_parameters(fn: Operation, indices: Sequence[int]) -> None:
    """Mark arguments ``indices`` of the function ``fn`` as the model's parameters."""
    args = fn.regions[0].block.args
    wanted = set(indices)
    if not wanted:
        return
    fn.properties["arg_attrs"] = ArrayAttr([DictionaryAttr({PARAMETER: UnitAttr()} if k in wanted else {})
                                            for k in range(len(args))])


_VIEWS = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten"})


def is_parameter(v: SSAValue) -> bool:
    """Whether ``v`` is a function argument marked as a parameter (``mark_parameters``), or
    a view of one (a Reshape, Squeeze, Unsqueeze or Flatten: the same bytes)."""
    while isinstance(v.owner, GraphOp) and v.owner.ONNX_TYPE in _VIEWS and not v.owner.ONNX_DOMAIN:
        v = v.owner.operands[0]
    if not isinstance(v, BlockArgument) or not isinstance(v.owner, Block):
        return False
    fn = v.owner.parent_op()
    attrs = fn.properties.get("arg_attrs") if fn is not None else None
    if not isinstance(attrs, ArrayAttr) or v.index >= len(attrs.data):
        return False
    entry = attrs.data[v.index]
    return isinstance(entry, DictionaryAttr) and PARAMETER in entry.data


# ---------------------------------------------------------------------------------------
# Ops that are not ONNX operators.


@irdl_op_definition
class WeightOp(IRDLOperation):
    """A tensor from the weight store, by handle; no bytes in the IR.

    %w = graph.weight <{name = "conv1.w"}> : () -> tensor<8x3x3x3xf32>
    """

    name = "graph.weight"
    ref = prop_def(StringAttr, prop_name="name")
    result = result_def(TensorType)
    traits = traits_def(Pure(), ConstantLike())

    def __init__(self, ref: str, type: TensorType, src: Sequence[str] = ()):
        super().__init__(
            properties={"name": StringAttr(ref)}, result_types=[type], attributes=provenance_attr(src)
        )


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A small constant held in the IR (shapes, scalars).

    %c = "graph.constant"() <{value = dense<[1, -1]> : tensor<2xi64>}> : () -> tensor<2xi64>
    """

    name = "graph.constant"
    value = prop_def(DenseIntOrFPElementsAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure(), ConstantLike())

    def __init__(self, array: np.ndarray, src: Sequence[str] = ()):
        value = A.dense(array)
        super().__init__(properties={"value": value}, result_types=[value.get_type()], attributes=provenance_attr(src))

    def verify_(self) -> None:
        if self.value.get_type() != self.result.type:
            raise VerifyException(f"graph.constant value type {self.value.get_type()} != result {self.result.type}")

    def array(self) -> np.ndarray:
        return A.dense_to_numpy(self.value)


@irdl_op_definition
class NoneOp(IRDLOperation):
    """The absent value of an optional input in the middle of an op's inputs.

    %n = "graph.none"() : () -> none
    """

    name = "graph.none"
    result = result_def(NoneType)
    traits = traits_def(Pure())

    def __init__(self) -> None:
        super().__init__(result_types=[NoneType()])


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Ends a region of a graph op, yielding its results.

    "graph.yield"(%0, %1) : (tensor<4xf32>, tensor<4xf32>) -> ()
    """

    name = "graph.yield"
    values = var_operand_def()
    traits = traits_def(IsTerminator(), Pure())

    def __init__(self, *values: SSAValue):
        super().__init__(operands=[list(values)])


@irdl_op_definition
class FusedOp(IRDLOperation):
    """A group of ops that a target compiles into one kernel.

    The region is isolated from above: its block arguments are the op's operands, and
    small constants are cloned inside. ``kind`` says what the group is built around:
    "elementwise", "reduce" (a reduction with its elementwise prologue and epilogue),
    "cube" (a matmul-like op with its elementwise epilogue), "attention".

    %r = "graph.fused"(%x, %w) <{kind = "cube"}> ({
    ^0(%a: tensor<4x8xf32>, %b: tensor<8x2xf32>):
      %m = "graph.matmul"(%a, %b) : (...) -> tensor<4x2xf32>
      %y = "graph.relu"(%m) : (tensor<4x2xf32>) -> tensor<4x2xf32>
      "graph.yield"(%y) : (tensor<4x2xf32>) -> ()
    }) : (tensor<4x8xf32>, tensor<8x2xf32>) -> tensor<4x2xf32>
    """

    name = "graph.fused"
    inputs = var_operand_def()
    outputs = var_result_def()
    kind = prop_def(StringAttr)
    body = region_def("single_block")
    traits = traits_def(IsolatedFromAbove(), Pure())

    def verify_(self) -> None:
        block = self.body.block
        if [a.type for a in block.args] != [v.type for v in self.inputs]:
            raise VerifyException("graph.fused block arguments must match its operands")
        last = block.last_op
        if not isinstance(last, YieldOp):
            raise VerifyException("graph.fused must end with graph.yield")
        if [v.type for v in last.values] != [r.type for r in self.outputs]:
            raise VerifyException("graph.fused results must match what its body yields")


def provenance_attr(src: Sequence[str]) -> dict[str, Attribute]:
    return {"src": ArrayAttr([StringAttr(s) for s in src])} if src else {}


def provenance(op: Operation) -> list[str]:
    """The source node names an op came from (empty if unknown)."""
    attr = op.attributes.get("src")
    return [s.data for s in attr.data] if isinstance(attr, ArrayAttr) else []  # pyright: ignore


RESULT_SRC = "result_src"  # a lowered kernel's result_sources, kept from the op it replaced


def result_sources(op: Operation) -> list[tuple[str, int] | None]:
    """For each result of ``op``, the source node and output index whose value it holds:
    the last node of its provenance (rewrites order it producers first, so that is the
    root) for a plain op; for a graph.fused, what the op yielding it holds; for a target's
    kernel, what its lowering recorded (``RESULT_SRC``, "k:node" strings; "" unknown).
    None where nothing says. A node decomposed into several ops gives its intermediate
    values its own name too: the caller tells them apart (compare.node_values)."""
    attr = op.attributes.get(RESULT_SRC)
    if isinstance(attr, ArrayAttr):
        out: list[tuple[str, int] | None] = []
        for s in attr.data:
            k, _, name = s.data.partition(":")  # pyright: ignore
            out.append((name, int(k)) if name else None)
        return out
    if isinstance(op, FusedOp):
        last = op.body.block.last_op
        assert isinstance(last, YieldOp)
        found: list[tuple[str, int] | None] = []
        for v in last.values:
            owner = v.owner
            found.append(result_sources(owner)[v.index] if isinstance(owner, Operation) and isinstance(v, OpResult) else None)
        return found
    src = provenance(op)
    return [(src[-1], k) if src else None for k in range(len(op.results))]


def node_results(block: Block) -> dict[SSAValue, tuple[str, int]]:
    """The values of ``block`` (a function's body) that are a source node's result, with
    that node and output index, in execution order. A node its frontend or a rewrite
    decomposed into several ops names each of them: a value is the node's *result* only
    when no op reading it came from the same node (else it is a step inside the node).
    What an executable's observer is told (graphopt.target.Observer)."""
    from xdsl.dialects.builtin import TensorType

    found: dict[SSAValue, tuple[str, int]] = {}
    for op in block.ops:
        if isinstance(op, ConstantOp | WeightOp | NoneOp) or not op.results:
            continue
        for r, src in zip(op.results, result_sources(op)):
            if src is None or not isinstance(r.type, TensorType):
                continue
            if any(src[0] in provenance(use.operation) for use in r.uses):
                continue
            found[r] = src
    return found


def result_sources_attr(sources: Sequence[tuple[str, int] | None]) -> dict[str, Attribute]:
    return {RESULT_SRC: ArrayAttr([StringAttr(f"{s[1]}:{s[0]}" if s else "") for s in sources])}


def is_none(value: SSAValue) -> bool:
    return isinstance(value.type, NoneType)


def __getattr__(name: str) -> Any:
    """``Graph``: the dialect with every op, for the parser; a typed core op's class
    (``Conv``); each defined on first use."""
    if name in CORE_OPERANDS:
        return ONNX_OPS[name]
    if name == "Graph":
        dialect = Dialect("graph", [*ONNX_OPS.values(), WeightOp, ConstantOp, NoneOp, YieldOp, FusedOp],
                          [StringType, SequenceType, OptionalType])
        globals()["Graph"] = dialect
        return dialect
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
