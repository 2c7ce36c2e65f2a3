"""The ``ascend`` dialect: what graph ops are lowered into for a DaVinci chip.

``ascend.trans_data`` (layout.py) converts storage formats between kernels. ``lower.py``
turns every compute op into an ``ascend.kernel`` whose body is the kernel's program:
``ascend.buffer`` in a memory space (GM workspace, L1, L0A, L0B, L0C, UB), ``ascend.for``
tile loops, ``ascend.copy`` on an engine, ``ascend.mmad`` on the cube, ``ascend.vec`` on
the vector unit, ``ascend.const`` scalars, ``ascend.sync`` flags between pipes, ``ascend.index_add``
(a loop index plus a constant: software-pipelined loops address block j+1 while finishing
block j), and ``ascend.move`` for data-movement kernels; ``ascend.view`` is a free reshape between kernels.
Each op's docstring has a one-line IR example.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import (
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    IndexType,
    IntegerAttr,
    MemRefType,
    NoneAttr,
    StringAttr,
    TensorType,
    UnitAttr,
    i64,
)
from xdsl.ir import Attribute, Block, BlockArgument, Dialect, Region, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.traits import IsolatedFromAbove, NoTerminator, Pure
from xdsl.utils.exceptions import VerifyException

from graphopt.targets.ascend.formats import FORMATS, format_of, with_format


@irdl_op_definition
class TransDataOp(IRDLOperation):
    """Convert a tensor between storage formats; its logical value is unchanged.

    %y = "ascend.trans_data"(%x) <{src_format = "ND", dst_format = "NC1HWC0"}>
           : (tensor<1x3x8x8xf16>) -> tensor<1x3x8x8xf16, "NC1HWC0">

    ``per_update``: the input is a model parameter fed at run time (graph.PARAMETER), so
    its conversion runs when the parameter changes, not on every call: torch_npu keeps
    parameters in their storage format from the first use on. The timing report counts its
    kernel apart from the per-call time (``parameter_conversion_us``).
    """

    name = "ascend.trans_data"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    src_format = prop_def(StringAttr)
    dst_format = prop_def(StringAttr)
    per_update = opt_prop_def(UnitAttr)
    traits = traits_def(Pure())

    def __init__(self, value: SSAValue, dst_format: str, src: list[str] | None = None, per_update: bool = False):
        t = value.type
        assert isinstance(t, TensorType)
        from graphopt.dialects.graph import provenance_attr

        props: dict[str, Attribute] = {"src_format": StringAttr(format_of(t)), "dst_format": StringAttr(dst_format)}
        if per_update:
            props["per_update"] = UnitAttr()
        super().__init__(
            operands=[value],
            result_types=[with_format(t, dst_format)],
            properties=props,
            attributes=provenance_attr(src or []),
        )

    def verify_(self) -> None:
        src, dst = self.src_format.data, self.dst_format.data
        if src not in FORMATS or dst not in FORMATS:
            raise VerifyException(f"ascend.trans_data: unknown format {src} or {dst}")
        if format_of(self.input.type) != src or format_of(self.output.type) != dst:
            raise VerifyException("ascend.trans_data: formats must match its operand and result types")
        a, b = self.input.type, self.output.type
        assert isinstance(a, TensorType) and isinstance(b, TensorType)
        if a.get_shape() != b.get_shape() or a.element_type != b.element_type:
            raise VerifyException("ascend.trans_data keeps the origin shape and element type")


# ---------------------------------------------------------------------------------------
# Kernels (lower.py builds them, sim.py runs them, emit.py prints them as AscendC).

MEMORY_SPACES = ("GM", "L1", "L0A", "L0B", "L0C", "UB")
KERNEL_KINDS = ("cube", "vector", "aicpu", "comm")  # comm: a collective (HCCL), priced by the cluster's links
ENGINES = ("MTE1", "MTE2", "MTE3", "FIX", "V")


def buffer_type(space: str, shape: Sequence[int], element_type: Attribute) -> MemRefType:
    """The type of an on-chip buffer: ``memref<128x64xf16, "L0A">``."""
    return MemRefType(element_type, list(shape), NoneAttr(), StringAttr(space))  # pyright: ignore[reportArgumentType]


def space_of(t: Attribute) -> str:
    """The memory space of a value's type: GM for tensors, the memref's space for buffers."""
    if isinstance(t, MemRefType) and isinstance(t.memory_space, StringAttr):
        return t.memory_space.data
    return "GM"


def _ints(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


@irdl_op_definition
class KernelOp(IRDLOperation):
    """One launched kernel: its operands and results are GM tensors.

    ``kind`` is "cube" (AIC, with a vector epilogue), "vector" (AIV) or "aicpu". ``block_dim``
    is the number of cores launched; ``tiling`` holds the tiling constants the emitter writes
    to tiling.json (cube: base_m/n/k, step_k, grid_m/n; vector: tile_rows, row_elems ...).
    The body's block arguments are the GM inputs followed, for cube and vector kernels, by
    the GM outputs (destination passing: copies write them). An aicpu body keeps the graph
    ops and ends in graph.yield.

    %y = "ascend.kernel"(%x) <{sym_name = "k0_relu", kind = "vector", block_dim = 1 : i64,
           tiling = {tile_rows = 256 : i64}}> ({ ^0(%x: tensor<256xf16>, %out: tensor<256xf16>): ... })
           : (tensor<256xf16>) -> tensor<256xf16>
    """

    name = "ascend.kernel"
    inputs = var_operand_def()
    outputs = var_result_def()
    sym_name = prop_def(StringAttr)
    kind = prop_def(StringAttr)
    block_dim = prop_def(IntegerAttr)
    tiling = prop_def(DictionaryAttr)
    body = region_def("single_block")
    traits = traits_def(IsolatedFromAbove(), NoTerminator())

    def verify_(self) -> None:
        if self.kind.data not in KERNEL_KINDS:
            raise VerifyException(f"ascend.kernel kind {self.kind.data} is not one of {KERNEL_KINDS}")
        args = [a.type for a in self.body.block.args]
        ins = [v.type for v in self.inputs]
        outs = [r.type for r in self.outputs] if self.kind.data not in ("aicpu", "comm") else []
        if args != ins + outs:
            raise VerifyException(f"ascend.kernel {self.sym_name.data}: block arguments must be its inputs then its outputs")

    @property
    def out_args(self) -> list[BlockArgument]:
        """The block arguments standing for the GM outputs (cube and vector kernels)."""
        return list(self.body.block.args[len(self.inputs) :])

    @property
    def per_update(self) -> bool:
        """A parameter's conversion (TransDataOp.per_update): run when it changes, not per call."""
        first = self.body.block.first_op
        return isinstance(first, MoveOp) and "per_update" in first.attrs.data


@irdl_op_definition
class BufferOp(IRDLOperation):
    """An on-chip buffer (or a GM workspace) of the kernel: ``buffers`` copies (2 = double
    buffered, ping-pong), each of the memref's shape.

    %a = "ascend.buffer"() <{buffers = 2 : i64}> : () -> memref<128x64xf16, "L0A">
    """

    name = "ascend.buffer"
    buffers = prop_def(IntegerAttr)
    result = result_def(MemRefType)

    def __init__(self, space: str, shape: Sequence[int], element_type: Attribute, buffers: int = 1):
        super().__init__(
            properties={"buffers": IntegerAttr(buffers, i64)}, result_types=[buffer_type(space, shape, element_type)]
        )

    def footprint(self) -> int:
        """Bytes this buffer takes in its memory space, all copies included."""
        t = self.result.type
        assert isinstance(t, MemRefType)
        width = t.element_type.bitwidth // 8 if hasattr(t.element_type, "bitwidth") else 4  # pyright: ignore
        return max(width, 1) * math.prod(t.get_shape()) * self.buffers.value.data


@irdl_op_definition
class ForOp(IRDLOperation):
    """A loop over tiles: the body runs ``trip`` times with its index argument 0..trip-1.
    ``cores`` > 1 spreads the iterations over that many cores (iteration i on core i mod cores).

    "ascend.for"() <{trip = 4 : i64, cores = 4 : i64}> ({ ^0(%i: index): ... }) : () -> ()

    A guarded loop (an index operand and ``below``) runs only when that index is below
    ``below`` (``if (g < below)`` around the loop): a core's first or last work item of a
    flattened parallel loop, whose pipeline fill or drain the others overlap.

    "ascend.for"(%g) <{trip = 1 : i64, cores = 1 : i64, below = 24 : i64}> ({ ... }) : (index) -> ()
    """

    name = "ascend.for"
    guard = var_operand_def(IndexType)
    trip = prop_def(IntegerAttr)
    cores = prop_def(IntegerAttr)
    below = opt_prop_def(IntegerAttr)
    body = region_def("single_block")
    traits = traits_def(NoTerminator())

    def __init__(self, trip: int, cores: int = 1, guard: SSAValue | None = None, below: int = 0):
        block = Block(arg_types=[IndexType()])
        props: dict[str, Attribute] = {"trip": IntegerAttr(trip, i64), "cores": IntegerAttr(cores, i64)}
        if guard is not None:
            props["below"] = IntegerAttr(below, i64)
        super().__init__(operands=[[guard] if guard is not None else []], properties=props, regions=[Region(block)])

    def verify_(self) -> None:
        if (len(self.guard) == 1) != (self.below is not None) or len(self.guard) > 1:
            raise VerifyException("ascend.for: a guard needs one index operand and `below`")

    @property
    def index(self) -> BlockArgument:
        return self.body.block.args[0]

    @property
    def trip_count(self) -> int:
        return self.trip.value.data

    @property
    def core_count(self) -> int:
        return self.cores.value.data

    def runs(self, value_of: Callable[[SSAValue], int]) -> bool:
        """Whether the loop runs, given how to read an index operand: a guarded loop runs
        when its guard index is below ``below``; any other always."""
        return self.below is None or value_of(self.guard[0]) < self.below.value.data

    def core_order(self) -> list[int]:
        """Every iteration, core by core (iteration i on core i mod cores): the order in
        which a core's iterations may hand state on to its next one."""
        trip, cores = self.trip_count, self.core_count
        return [i for c in range(cores) for i in range(c, trip, cores)]

    def on_core(self, first: int) -> range:
        """The iterations of the core whose first iteration is ``first``."""
        return range(first, self.trip_count, self.core_count)


@dataclass(frozen=True)
class CopyView:
    """How an ``ascend.copy`` sees its GM operand, the one reading of its ``view`` property:
    reshape to ``pre``, broadcast to ``bcast``, reshape to ``split``, transpose by ``perm``,
    reshape to ``shape``, each step only when given, in that order."""

    pre: tuple[int, ...] | None = None
    bcast: tuple[int, ...] | None = None
    split: tuple[int, ...] | None = None
    perm: tuple[int, ...] | None = None
    shape: tuple[int, ...] | None = None

    @staticmethod
    @functools.lru_cache(maxsize=4096)  # the interpreters ask once per copy executed
    def of(view: DictionaryAttr | None) -> CopyView:
        if view is None:
            return CopyView()
        fields: dict[str, tuple[int, ...]] = {}
        for key, value in view.data.items():
            if key not in _VIEW_KEYS or not isinstance(value, DenseArrayBase):
                raise VerifyException(f"ascend.copy view: {key} is not one of {', '.join(_VIEW_KEYS)} as an i64 array")
            fields[key] = tuple(int(x) for x in value.get_values())  # pyright: ignore[reportArgumentType]
        return CopyView(**fields)

    def apply(self, a: np.ndarray) -> np.ndarray:
        """The GM array ``a`` as the copy sees it."""
        if self.pre is not None:
            a = a.reshape(self.pre)
        if self.bcast is not None:
            a = np.broadcast_to(a, self.bcast)
        if self.split is not None:
            a = a.reshape(self.split)
        if self.perm is not None:
            a = a.transpose(self.perm)
        if self.shape is not None:
            a = a.reshape(self.shape)
        return a

    def unapply(self, a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        """The GM array of ``shape`` whose view is ``a`` (a view without pre and bcast: a
        copy writing through it)."""
        base = list(self.split) if self.split is not None else list(shape)
        if self.perm is not None:
            a = a.reshape([base[p] for p in self.perm]).transpose(np.argsort(self.perm))
        return a.reshape(shape)

    def logical_shape(self, gm_shape: Sequence[int]) -> list[int]:
        """The shape whose dims the copy's ``dims`` index: the view's last shape."""
        return list(self.shape) if self.shape is not None else list(gm_shape)


_VIEW_KEYS = tuple(CopyView.__dataclass_fields__)


@irdl_op_definition
class CopyOp(IRDLOperation):
    """A copy on a data-movement engine (``pipe``: MTE2 GM->L1/UB, MTE1 L1->L0A/L0B, FIX
    L0C->GM, V L0C->UB, MTE3 UB->GM), converting the element type when the two sides differ.

    The GM side is seen through ``view`` (``CopyView``: reshape ``pre``, broadcast to
    ``bcast``, reshape ``split``, transpose ``perm``, reshape ``shape``); the tile is the block of
    ``tile[d]`` elements at ``index[d] * tile[d]`` along each view dim ``dims[d]``, the
    other dims whole. Buffer-to-buffer copies slice the source the same way. On the cube
    path (L1, L0A, L0B) partial edge tiles are zero-padded to the buffer (fractal padding);
    UB tiles keep their real size (DataCopyPad). ``im2col`` (conv kernels, Load3D) makes the
    A matrix of a convolution from its input before tiling. ``into`` (buffer-to-buffer copies
    only) puts the tiling on the destination instead: the whole source is written into the
    destination's block (a FixPipe writing one L0C chunk of a wider workspace tile).

    "ascend.copy"(%x, %l1a, %m, %k) <{pipe = "MTE2", dims = array<i64: 1, 2>, tile = array<i64: 128, 256>,
        view = {shape = array<i64: 1, 512, 1024>}}> : (tensor<512x1024xf16>, memref<128x256xf16, "L1">, index, index) -> ()
    """

    name = "ascend.copy"
    source = operand_def()
    dest = operand_def()
    index = var_operand_def(IndexType)
    pipe = prop_def(StringAttr)
    dims = prop_def(DenseArrayBase)
    tile = prop_def(DenseArrayBase)
    view = opt_prop_def(DictionaryAttr)
    im2col = opt_prop_def(DictionaryAttr)
    into = opt_prop_def(UnitAttr)

    def __init__(
        self,
        source: SSAValue,
        dest: SSAValue,
        pipe: str,
        index: Sequence[SSAValue] = (),
        dims: Sequence[int] = (),
        tile: Sequence[int] = (),
        view: dict[str, Attribute] | None = None,
        im2col: dict[str, Attribute] | None = None,
        into: bool = False,
    ):
        props: dict[str, Attribute] = {"pipe": StringAttr(pipe), "dims": _ints(dims), "tile": _ints(tile)}
        if view:
            props["view"] = DictionaryAttr(view)
        if im2col:
            props["im2col"] = DictionaryAttr(im2col)
        if into:
            props["into"] = UnitAttr()
        super().__init__(operands=[source, dest, list(index)], properties=props)

    def verify_(self) -> None:
        if self.pipe.data not in ENGINES:
            raise VerifyException(f"ascend.copy pipe {self.pipe.data} is not one of {ENGINES}")
        if not (len(self.dims) == len(self.tile) == len(self.index)):
            raise VerifyException("ascend.copy needs one index and one tile size per tiled dim")
        if self.into is not None and not (isinstance(self.source.type, MemRefType) and isinstance(self.dest.type, MemRefType)):
            raise VerifyException("ascend.copy into: only between buffers")
        CopyView.of(self.view)

    @property
    def view_spec(self) -> CopyView:
        return CopyView.of(self.view)


@irdl_op_definition
class IndexAddOp(IRDLOperation):
    """An affine function of a loop index, ``index * mul + by``, for software-pipelined
    loops: iteration j of the steady state starts block j + 2 (its QK^T and softmax) while
    it finishes block j (its P.V); a steady state unrolled by two names block 2p + e.

    %j2 = "ascend.index_add"(%j) <{by = 2 : i64}> : (index) -> index
    %je = "ascend.index_add"(%p) <{by = 1 : i64, mul = 2 : i64}> : (index) -> index

    ``div`` and ``mod`` (optional) then map a flat work-item index to its coordinates,
    ``((index * mul + by) // div) % mod``: a core's (head, q tile) from its position in one
    flattened loop over work items, and the next item's from ``by`` = the core count.

    %h = "ascend.index_add"(%w) <{by = 0 : i64, div = 64 : i64}> : (index) -> index
    """

    name = "ascend.index_add"
    index = operand_def(IndexType)
    by = prop_def(IntegerAttr)
    mul = opt_prop_def(IntegerAttr)
    div = opt_prop_def(IntegerAttr)
    mod = opt_prop_def(IntegerAttr)
    result = result_def(IndexType)
    traits = traits_def(Pure())

    def __init__(self, index: SSAValue, by: int, mul: int = 1, div: int = 1, mod: int = 0):
        props: dict[str, Attribute] = {"by": IntegerAttr(by, i64)}
        if mul != 1:
            props["mul"] = IntegerAttr(mul, i64)
        if div != 1:
            props["div"] = IntegerAttr(div, i64)
        if mod:
            props["mod"] = IntegerAttr(mod, i64)
        super().__init__(operands=[index], properties=props, result_types=[IndexType()])

    def verify_(self) -> None:
        if (self.div is not None and self.div.value.data < 1) or (self.mod is not None and self.mod.value.data < 1):
            raise VerifyException("ascend.index_add: div and mod must be positive")

    def apply(self, i: int) -> int:
        """The value for index value ``i``."""
        v = i * self.factor + self.by.value.data
        if self.div is not None:
            v //= self.div.value.data
        if self.mod is not None:
            v %= self.mod.value.data
        return v

    @property
    def factor(self) -> int:
        """The multiplier of the index (1 when the ``mul`` property is absent)."""
        return 1 if self.mul is None else self.mul.value.data


@irdl_op_definition
class MmadOp(IRDLOperation):
    """The cube: ``acc (L0C, fp32) += lhs (L0A) @ rhs (L0B)``; the accumulator is
    overwritten instead when every index in ``init_when`` is 0 (the first K step).

    "ascend.mmad"(%c, %a, %b, %ko, %ki) : (memref<128x128xf32, "L0C">, memref<128x64xf16, "L0A">,
        memref<64x128xf16, "L0B">, index, index) -> ()
    """

    name = "ascend.mmad"
    acc = operand_def(MemRefType)
    lhs = operand_def(MemRefType)
    rhs = operand_def(MemRefType)
    init_when = var_operand_def(IndexType)

    def __init__(self, acc: SSAValue, lhs: SSAValue, rhs: SSAValue, init_when: Sequence[SSAValue]):
        super().__init__(operands=[acc, lhs, rhs, list(init_when)])


@irdl_op_definition
class VecOp(IRDLOperation):
    """A vector instruction on UB tiles: ``outs = op(ins)``. ``op`` names a row of
    vector.VECTOR_OPS (an ONNX op type, with ``attrs`` its attributes) or an internal
    instruction (``attn.*``); index operands among ``ins`` pass tile positions.

    "ascend.vec"(%x, %y) <{op = "Relu", attrs = {}, operandSegmentSizes = array<i32: 1, 1>}>
        : (memref<256xf16, "UB">, memref<256xf16, "UB">) -> ()
    """

    name = "ascend.vec"
    ins = var_operand_def()
    outs = var_operand_def(MemRefType)
    op = prop_def(StringAttr)
    attrs = prop_def(DictionaryAttr)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    def __init__(self, op: str, ins: Sequence[SSAValue], outs: Sequence[SSAValue], attrs: dict[str, Attribute] | None = None):
        super().__init__(
            operands=[list(ins), list(outs)], properties={"op": StringAttr(op), "attrs": DictionaryAttr(attrs or {})}
        )


@irdl_op_definition
class ConstOp(IRDLOperation):
    """A small constant placed in UB (scalars and shapes of the fused group).

    %c = "ascend.const"() <{value = dense<0.5> : tensor<f32>}> : () -> memref<f32, "UB">
    """

    name = "ascend.const"
    value = prop_def(DenseIntOrFPElementsAttr)
    result = result_def(MemRefType)

    def __init__(self, value: DenseIntOrFPElementsAttr):
        t = value.get_type()
        assert isinstance(t, TensorType)
        super().__init__(properties={"value": value}, result_types=[buffer_type("UB", t.get_shape(), t.element_type)])


@irdl_op_definition
class SyncOp(IRDLOperation):
    """Pipe synchronisation: ``set`` fires event ``event`` from pipe ``src`` when its prior
    work is done; ``wait`` blocks pipe ``dst`` until then (SetFlag/WaitFlag<HardEvent::SRC_DST>).
    ``cross_core`` marks the AIC<->AIV hand-off (CrossCoreSetFlag/WaitFlag) on split chips.

    "ascend.sync"() <{action = "set", src = "MTE2", dst = "V", event = 0 : i64}> : () -> ()
    """

    name = "ascend.sync"
    action = prop_def(StringAttr)
    src = prop_def(StringAttr)
    dst = prop_def(StringAttr)
    event = prop_def(IntegerAttr)
    cross_core = opt_prop_def(UnitAttr)

    def __init__(self, action: str, src: str, dst: str, event: int = 0, cross_core: bool = False):
        props: dict[str, Attribute] = {
            "action": StringAttr(action), "src": StringAttr(src), "dst": StringAttr(dst), "event": IntegerAttr(event, i64)
        }
        if cross_core:
            props["cross_core"] = UnitAttr()
        super().__init__(properties=props)


@irdl_op_definition
class MoveOp(IRDLOperation):
    """A data-movement kernel's work (Transpose, Slice, Concat, Gather, TransData ...): strided
    DMA through UB (MTE2 in, MTE3 out) that moves values without computing on them.
    ``op`` is the ONNX op type (or "TransData"), ``attrs`` its attributes.

    "ascend.move"(%x, %out) <{op = "Transpose", attrs = {perm = array<i64: 1, 0>},
        operandSegmentSizes = array<i32: 1, 1>}> : (tensor<4x8xf16>, tensor<8x4xf16>) -> ()
    """

    name = "ascend.move"
    ins = var_operand_def()
    outs = var_operand_def()
    op = prop_def(StringAttr)
    attrs = prop_def(DictionaryAttr)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    def __init__(self, op: str, ins: Sequence[SSAValue], outs: Sequence[SSAValue], attrs: dict[str, Attribute] | None = None):
        super().__init__(
            operands=[list(ins), list(outs)], properties={"op": StringAttr(op), "attrs": DictionaryAttr(attrs or {})}
        )


@irdl_op_definition
class ViewOp(IRDLOperation):
    """A reshape that moves no data (Reshape, Flatten, Squeeze, Unsqueeze of an ND tensor):
    the result aliases the operand's GM bytes, so it launches no kernel.

    %y = "ascend.view"(%x) : (tensor<1x16x64xf16>) -> tensor<16x64xf16>
    """

    name = "ascend.view"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, value: SSAValue, result_type: Attribute, src: list[str] | None = None):
        from graphopt.dialects.graph import provenance_attr

        super().__init__(operands=[value], result_types=[result_type], attributes=provenance_attr(src or []))

    def verify_(self) -> None:
        a, b = self.input.type, self.output.type
        assert isinstance(a, TensorType) and isinstance(b, TensorType)
        if math.prod(a.get_shape()) != math.prod(b.get_shape()) or a.element_type != b.element_type:
            raise VerifyException("ascend.view keeps the element count and type")


Ascend = Dialect(
    "ascend",
    [TransDataOp, KernelOp, BufferOp, ForOp, CopyOp, MmadOp, VecOp, ConstOp, SyncOp, MoveOp, ViewOp, IndexAddOp],
    [],
)
