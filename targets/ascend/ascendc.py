"""One ``ascend.kernel`` rendered as AscendC-style source (``emit.py`` writes the files).
Not compiled here; it shows what would run, in the TPipe/TQue paradigm a reader of AscendC
samples knows (reference/ascend.md section 4.1):

    class KernelK1Relu {
        Init     GlobalTensor::SetGlobalBuffer per GM argument, pipe.InitBuffer per queue
                 (BUFFER_NUM = 2 where the lowering double-buffered: ping-pong)
        Process  the kernel's loop nest over tiles (each parallel loop strided from its own
                 coordinate of GetBlockIdx())
        CopyIn   AllocTensor, DataCopy GM -> VECIN/A1/B1, EnQue
        Compute  DeQue, vector intrinsics (Add, Exp, ReduceSum ...) or LoadData + Mmad, EnQue
        CopyOut  DeQue, DataCopy to GM (Fixpipe from CO1), FreeTensor
    };
    extern "C" __global__ __aicore__ void k1_relu(GM_ADDR x0, GM_ADDR y0, GM_ADDR workspace, GM_ADDR tiling)

Algorithm (per kernel):
1. Names: the kernel's GM block arguments are x0.. (inputs) and y0.. (outputs); each
   ``ascend.buffer`` gets a queue position from its memory space and the copies touching it
   (UB read from GM -> VECIN, UB written to GM -> VECOUT, other UB -> VECCALC TBuf; L1 -> A1/B1
   by the L0 buffer it feeds; L0A -> A2, L0B -> B2, L0C -> CO1) and a name from the GM tensor
   it stages.
2. Stages: the body is walked in order; each ``ascend.for`` becomes a loop, and inside a
   loop body consecutive ops on the same stage (MTE2 copies: CopyIn; MTE1/V copies, mmad,
   vector and move ops: Compute; MTE3/FixPipe copies: CopyOut) become one method, called
   from Process with the loop indices in scope. Sync ops render in place as
   SetFlag/WaitFlag (the TQue calls already order the pipes the queues connect).
3. Queue calls per method: DeQue what an earlier stage enqueued, AllocTensor what this one
   writes, EnQue it if a later stage reads it, FreeTensor what it dequeued.
The tiling constants (the kernel's ``tiling`` dictionary, blockDim, tile lengths, loop trip
counts) are ``constexpr``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, MemRefType, TensorType
from xdsl.ir import Attribute, Block, Operation, SSAValue

from graphopt.targets.ascend.chip import Chip
from graphopt.targets.ascend.dialect import (
    BufferOp,
    ConstOp,
    CopyOp,
    ForOp,
    IndexAddOp,
    KernelOp,
    MmadOp,
    MoveOp,
    SyncOp,
    VecOp,
    space_of,
)
from graphopt.targets.ascend.formats import c0_for, format_of, storage_shape
from graphopt.targets.ascend.interpret import KernelInterpretation, rule
from graphopt.targets.ascend.kernel_facts import parallel_loops

_CTYPES = {"f16": "half", "f32": "float", "bf16": "bfloat16_t", "i8": "int8_t", "ui8": "uint8_t",
           "i16": "int16_t", "i32": "int32_t", "i64": "int64_t", "i1": "uint8_t"}
# ONNX op -> AscendC vector intrinsic (binary ops with a scalar operand use the "s" form).
_INTRINSICS = {
    "Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Max": "Max", "Min": "Min",
    "Exp": "Exp", "Log": "Ln", "Sqrt": "Sqrt", "Abs": "Abs", "Reciprocal": "Reciprocal",
    "Relu": "Relu", "LeakyRelu": "LeakyRelu", "Tanh": "Tanh", "Sigmoid": "Sigmoid", "Gelu": "Gelu",
    "Erf": "Erf", "Sin": "Sin", "Cos": "Cos", "Cast": "Cast", "Where": "Select", "Identity": "DataCopy",
    "ReduceSum": "ReduceSum", "ReduceMax": "ReduceMax", "ReduceMin": "ReduceMin", "ReduceMean": "ReduceSum",
    "Softmax": "SoftMax", "LayerNormalization": "LayerNorm", "RMSNormalization": "RmsNorm",
    "Swish": "Swish", "SwiGLU": "SwiGLU", "Neg": "Muls", "Floor": "Floor", "Ceil": "Ceil",
}
_SCALAR_FORMS = {"Add": "Adds", "Mul": "Muls", "Max": "Maxs", "Min": "Mins"}
_REDUCES = {"ReduceSum", "ReduceMax", "ReduceMin", "ReduceMean"}
_STAGE_OF_PIPE = {"MTE2": "CopyIn", "MTE3": "CopyOut", "FIX": "CopyOut", "MTE1": "Compute", "V": "Compute"}
_QUEUE_PREFIX = {"VECIN": "inQueue", "VECOUT": "outQueue", "VECCALC": "calcBuf", "A1": "inQueue",
                 "B1": "inQueue", "A2": "inQueue", "B2": "inQueue", "CO1": "outQueue", "GM": "workspace"}


def _ctype(t: Attribute) -> str:
    elem = t.element_type if isinstance(t, TensorType | MemRefType) else t
    return _CTYPES.get(str(elem), "float")


def _const_name(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).upper().replace("-", "_").replace(".", "_")


def _cap(name: str) -> str:
    return name[:1].upper() + name[1:]


@dataclass
class _Buffer:
    op: BufferOp
    position: str
    name: str  # base name: x0, a1, c1, tmp0 ...

    @property
    def space(self) -> str:
        return space_of(self.op.result.type)

    @property
    def local(self) -> str:
        return f"{self.name}Local"

    @property
    def queue(self) -> str:
        cube = self.position in ("A1", "B1", "A2", "B2", "CO1")
        return f"{_QUEUE_PREFIX[self.position]}{self.name.upper() if cube else _cap(self.name)}"

    @property
    def elems(self) -> int:
        t = self.op.result.type
        assert isinstance(t, MemRefType)
        return math.prod(t.get_shape())

    @property
    def tile(self) -> str:
        return f"{self.name.upper()}_TILE"

    @property
    def unaligned(self) -> bool:
        """A UB slot that is not a whole number of 32-byte blocks (a depthwise conv's
        per-group bias, rows of an odd-sized pooled plane): DataCopy moves whole blocks, so
        its copies in and out are DataCopyPad (the slot itself is allocated rounded up)."""
        return (self.op.footprint() // self.op.buffers.value.data) % 32 != 0


@dataclass
class _Group:
    stage: str
    ops: list[Operation]
    method: str = ""
    params: list[str] = field(default_factory=list)


class _KernelWriter(KernelInterpretation):
    """Renders one ``ascend.kernel`` (see the module docstring for the steps)."""

    def __init__(self, kernel: KernelOp, chip: Chip, precision: str) -> None:
        self.kernel, self.chip, self.precision = kernel, chip, precision
        self.name = kernel.sym_name.data
        self.cls = "Kernel" + "".join(_cap(p) for p in re.split(r"[^A-Za-z0-9]", self.name) if p)
        args = kernel.body.block.args
        n_in = len(kernel.inputs)
        self.gm: dict[SSAValue, str] = {a: (f"x{i}" if i < n_in else f"y{i - n_in}") for i, a in enumerate(args)}
        self.loops: dict[SSAValue, str] = {}  # index values in scope where _plan is
        self.names: dict[SSAValue, str] = {}  # every index value's variable, for the stage methods
        self.trips: dict[SSAValue, str] = {}
        # L0C buffers an Mmad accumulates into: allocated on the first K step, enqueued on the last.
        self.accumulators = {op.acc for op in kernel.walk() if isinstance(op, MmadOp)}
        self.consts: dict[SSAValue, str] = {}
        self.buffers: dict[SSAValue, _Buffer] = {}
        self.groups: list[_Group] = []
        self.constexpr: dict[str, int] = {}
        self.parallel = parallel_loops(kernel)
        self._name_buffers()

    # -- step 1: names ------------------------------------------------------------------
    def _name_buffers(self) -> None:
        copies = [op for op in self.kernel.walk() if isinstance(op, CopyOp)]
        taken: set[str] = set()
        for op in self.kernel.walk():
            if isinstance(op, ConstOp):
                self.consts[op.result] = f"SCALAR{len(self.consts)}"
            if not isinstance(op, BufferOp):
                continue
            space, v = space_of(op.result.type), op.result
            position = self._position(space, v, copies)
            linked = [self.gm[c.source] for c in copies if c.dest == v and c.source in self.gm]
            linked += [self.gm[c.dest] for c in copies if c.source == v and c.dest in self.gm]
            base = linked[0] if linked and space == "UB" else {"UB": "tmp", "GM": "ws"}.get(space, position.lower())
            name, k = base, 1
            while name in taken:
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
            self.buffers[v] = _Buffer(op, position, name)

    @staticmethod
    def _position(space: str, v: SSAValue, copies: list[CopyOp]) -> str:
        if space == "UB":
            if any(c.dest == v and space_of(c.source.type) in ("GM", "L0C") for c in copies):
                return "VECIN"
            return "VECOUT" if any(c.source == v and c.pipe.data == "MTE3" for c in copies) else "VECCALC"
        if space == "L1":
            feeds_b = any(c.source == v and space_of(c.dest.type) == "L0B" for c in copies)
            return "B1" if feeds_b else "A1"
        return {"L0A": "A2", "L0B": "B2", "L0C": "CO1"}.get(space, "GM")

    # -- step 2: stages -----------------------------------------------------------------
    def _core_coordinate(self, op: ForOp) -> tuple[str, str]:
        """(first iteration, stride) of a parallel loop on this block: its coordinate in the
        block index (``kernel_facts.parallel_loops``), one per GetBlockIdx() when it is the
        only parallel loop."""
        if len(self.parallel) == 1:
            return "GetBlockIdx()", "GetBlockNum()"
        stride = math.prod(loop.core_count for loop in self.parallel[: self.parallel.index(op)])
        block = "GetBlockIdx()" if stride == 1 else f"GetBlockIdx() / {stride}"
        return f"{block} % {op.core_count}", str(op.core_count)

    def _stage(self, op: Operation) -> str | None:
        if isinstance(op, CopyOp):
            return _STAGE_OF_PIPE.get(op.pipe.data, "Compute")
        if isinstance(op, MmadOp | VecOp | MoveOp):
            return "Compute"
        return None

    def _plan(self, block: Block, depth: int, indent: str) -> list[str]:
        """Process's body for ``block``: loops, stage-method calls and sync statements."""
        lines: list[str] = []
        current: _Group | None = None
        local: list[SSAValue] = []  # index_add values defined in this block: out of scope after it
        for op in block.ops:
            stage = self._stage(op)
            if isinstance(op, IndexAddOp):
                # A shifted block index of a software-pipelined loop (j + 2, 2p + e): a local
                # int32_t, passed to the stage methods like a loop index.
                current = None
                var = f"j{depth - 1}_{len(self.constexpr) + len(self.names)}"
                base = self.names.get(op.index, "0")
                mul = f" * {op.factor}" if op.factor != 1 else ""
                expr = f"{base}{mul} + {op.by.value.data}"
                if op.div is not None or op.mod is not None:  # a flat work index's coordinate
                    expr = f"({expr})" if op.by.value.data or op.factor != 1 else base
                    expr += f" / {op.div.value.data}" if op.div is not None else ""
                    expr = f"({expr}) % {op.mod.value.data}" if op.mod is not None and op.div is not None else expr
                    expr += f" % {op.mod.value.data}" if op.mod is not None and op.div is None else ""
                lines.append(f"{indent}int32_t {var} = {expr};")
                self.loops[op.result] = self.names[op.result] = var
                local.append(op.result)
            elif isinstance(op, ForOp):
                current = None
                var = f"i{depth}"
                self.loops[op.index] = self.names[op.index] = var
                trip = f"TRIP{depth}" if f"TRIP{depth}" not in self.constexpr else f"TRIP{depth}_{len(self.constexpr)}"
                self.constexpr[trip] = op.trip_count
                self.trips[op.index] = trip
                cores = op.core_count
                start, step = self._core_coordinate(op) if cores > 1 else ("0", "1")
                inc = f"{var} += {step}" if cores > 1 else f"{var}++"
                guarded = op.below is not None
                if guarded:
                    lines.append(f"{indent}if ({self.names.get(op.guard[0], '0')} < {op.below.value.data}) {{")  # pyright: ignore
                    indent += "    "
                lines.append(f"{indent}for (int32_t {var} = {start}; {var} < {trip}; {inc}) {{")
                lines += self._plan(op.body.block, depth + 1, indent + "    ")
                lines.append(f"{indent}}}")
                if guarded:
                    indent = indent[:-4]
                    lines.append(f"{indent}}}")
            elif isinstance(op, SyncOp):
                lines.append(indent + self._sync(op))
            elif stage is not None:
                if current is None or current.stage != stage:
                    used = {g.method for g in self.groups}
                    method, k = stage, 2
                    while method in used:
                        method, k = f"{stage}{k}", k + 1
                    params = list(dict.fromkeys(v for v in self.loops.values() if _in_scope(v, depth)))
                    current = _Group(stage, [], method, params)
                    self.groups.append(current)
                    lines.append(f"{indent}{method}({', '.join(current.params)});")
                current.ops.append(op)
        for v in local:
            del self.loops[v]
        return lines

    # -- step 3: stage methods ------------------------------------------------------------
    def _method(self, g: _Group, earlier: list[_Group], later: list[_Group]) -> list[str]:
        touched: list[_Buffer] = []
        writes: set[SSAValue] = set()
        for op in g.ops:
            src, dst = _io(op)
            for v in [*src, *dst]:
                if v in self.buffers and self.buffers[v] not in touched:
                    touched.append(self.buffers[v])
            writes |= set(dst)
        written_before = {v for h in earlier for op in h.ops for v in _io(op)[1]}
        read_later = {v for h in later for op in h.ops for v in _io(op)[0]}
        params = ", ".join(f"int32_t {p}" for p in g.params)
        head, tail = [], []
        for b in touched:
            t, v = _ctype(b.op.result.type), b.op.result
            if b.position in ("VECCALC", "GM"):
                head.append(f"LocalTensor<{t}> {b.local} = {b.queue}.Get<{t}>();")
                continue
            if v in self.accumulators and v in writes:  # held across the K loop: see _mmad
                continue
            decl = "" if v in self.accumulators else f"LocalTensor<{t}> "  # accumulators are members
            if v in written_before:  # an earlier stage enqueued it
                head.append(f"{decl}{b.local} = {b.queue}.DeQue<{t}>();")
            else:
                head.append(f"LocalTensor<{t}> {b.local} = {b.queue}.AllocTensor<{t}>();")
            if v in writes and v in read_later:
                tail.append(f"{b.queue}.EnQue({b.local});")
            elif v not in read_later:
                tail.append(f"{b.queue}.FreeTensor({b.local});")
        body = head + [s for op in g.ops for s in self.apply(op)] + tail  # each op's statements: its rule
        return [f"    __aicore__ inline void {g.method}({params})", "    {", *(f"        {line}" for line in body), "    }"]

    def unknown(self, op: Operation) -> list[str]:
        return []

    @rule(MmadOp)
    def _mmad(self, op: MmadOp) -> list[str]:
        a, b, c = (self.buffers[v] for v in (op.lhs, op.rhs, op.acc))
        init = " && ".join(f"{self.names.get(v, 'k')} == 0" for v in op.init_when) or "true"
        m, n, kk = (self._dim(key, v, i) for key, v, i in (("base_m", op.acc, 0), ("base_n", op.acc, 1), ("base_k", op.lhs, 1)))
        last = " && ".join(f"{self.names[v]} == {self.trips[v]} - 1" for v in op.init_when if v in self.names) or "true"
        t = _ctype(c.op.result.type)
        return [f"if ({init}) {{  // the first K step: a fresh accumulator, overwritten by Mmad",
                f"    {c.local} = {c.queue}.AllocTensor<{t}>();",
                "}",
                f"MmadParams mmadParams({m}, {n}, {kk});",
                f"mmadParams.cmatrixInitVal = ({init});",
                f"Mmad({c.local}, {a.local}, {b.local}, mmadParams);",
                f"if ({last}) {{  // the last K step: hand the accumulator to CopyOut",
                f"    {c.queue}.EnQue({c.local});",
                "}"]

    @rule(MoveOp)
    def _move(self, op: MoveOp) -> list[str]:
        ins = ", ".join(self._ref(v) for v in op.ins)
        outs = ", ".join(self._ref(v) for v in op.outs)
        return [f"// {op.op.data}: strided DataCopy through UB (MTE2 in, MTE3 out), values unchanged",
                f"DataCopyPad({outs}, {ins}, copyParams);"]

    @rule(CopyOp)
    def _copy(self, op: CopyOp) -> list[str]:
        src, dst, pipe = op.source, op.dest, op.pipe.data
        s_space, d_space = space_of(src.type), space_of(dst.type)
        if d_space in ("UB", "L1") and src in self.gm:
            b = self.buffers[dst]
            off = self._offset(op, src)
            if d_space == "L1" and format_of(src.type) == "ND":
                return [f"DataCopy({b.local}, {self.gm[src]}Gm[{off}], nd2nzParams);  // MTE2 with Nd2Nz: ND in GM -> NZ in L1"]
            if b.unaligned:
                return [f"DataCopyPad({b.local}, {self.gm[src]}Gm[{off}], {{1, {b.tile} * sizeof({_ctype(b.op.result.type)}), 0, 0}}, {{}});"
                        f"  // {pipe}: a tile of a partial 32 B block"]
            return [f"DataCopy({b.local}, {self.gm[src]}Gm[{off}], {b.tile});  // {pipe}: {format_of(src.type)} tile"]
        if dst in self.gm:
            b = self.buffers[src]
            off = self._offset(op, dst)
            if s_space == "L0C":
                nd = "  // NZ -> ND on the way out" if format_of(dst.type) == "ND" else ""
                return [f"Fixpipe({self.gm[dst]}Gm[{off}], {b.local}, fixpipeParams);{nd}"]
            if b.unaligned:
                return [f"DataCopyPad({self.gm[dst]}Gm[{off}], {b.local}, {{1, {b.tile} * sizeof({_ctype(b.op.result.type)}), 0, 0}});"
                        f"  // {pipe}: a tile of a partial 32 B block"]
            return [f"DataCopy({self.gm[dst]}Gm[{off}], {b.local}, {b.tile});  // {pipe}"]
        a, b = self.buffers[src], self.buffers[dst]
        if op.into is not None:
            # The whole source into a block of the destination (an L0C chunk into its S tile).
            at = self._buffer_offset(op, dst)
            call = "Fixpipe" if s_space == "L0C" and pipe == "FIX" else "DataCopy"
            extra = "fixpipeParams" if call == "Fixpipe" else a.tile
            return [f"{call}({b.local}[{at}], {a.local}, {extra});  // {pipe}: {s_space} -> a block of {d_space}"]
        if op.im2col is not None:
            return [f"LoadData({b.local}, {a.local}, loadData3DParams);  // Load3D: im2col of the NC1HWC0 input"]
        if d_space in ("L0A", "L0B"):
            return [f"LoadData({b.local}, {a.local}, loadData2DParams);  // MTE1: {s_space} -> {d_space}"]
        if op.index:  # a block of the source (rows of a workspace tile)
            at = self._buffer_offset(op, src)
            return [f"DataCopy({b.local}, {a.local}[{at}], {b.tile});  // {pipe}: a block of {s_space} -> {d_space}"]
        return [f"DataCopy({b.local}, {a.local}, {b.tile});  // {pipe}: {s_space} -> {d_space}"]

    @rule(VecOp)
    def _vector(self, op: VecOp) -> list[str]:
        name = op.op.data
        outs = [self._ref(v) for v in op.outs]
        ins = [v for v in op.ins if v in self.buffers or v in self.consts or v in self.gm]
        length = self.buffers[op.outs[0]].tile if op.outs and op.outs[0] in self.buffers else "TILE"
        scalars = [v for v in ins if v in self.consts]
        tensors = [self._ref(v) for v in ins if v not in self.consts]
        intrinsic = _INTRINSICS.get(name)
        if intrinsic is None:
            return [f"// {name}: no single AscendC intrinsic; the simulator runs its graphopt rule",
                    f"{name}Compute({', '.join(outs + tensors)}, {length});"]
        if name == "Neg":
            return [f"Muls({outs[0]}, {tensors[0]}, ({_ctype(op.outs[0].type)})-1, {length});"]
        if scalars and name in _SCALAR_FORMS and tensors:
            return [f"{_SCALAR_FORMS[name]}({outs[0]}, {tensors[0]}, {self.consts[scalars[0]]}, {length});"]
        if name in _REDUCES:
            extra = [f"Muls({outs[0]}, {outs[0]}, 1.0f / REDUCE_LEN, 1);"] if name == "ReduceMean" else []
            return [f"{intrinsic}({outs[0]}, {tensors[0]}, workLocal, {length});", *extra]
        if name == "Cast":
            return [f"Cast({outs[0]}, {tensors[0]}, RoundMode::CAST_NONE, {length});"]
        args = outs + tensors + [self.consts[s] for s in scalars]
        return [f"{intrinsic}({', '.join(args)}, {length});"]

    def _dim(self, key: str, v: SSAValue, axis: int) -> str:
        """A tile dimension: the tiling constant when the kernel has one, else the buffer's."""
        if key in self.kernel.tiling.data:
            return _const_name(key)
        t = v.type
        return str(t.get_shape()[axis]) if isinstance(t, MemRefType) and len(t.get_shape()) > axis else "1"

    def _sync(self, op: SyncOp) -> str:
        event = f"HardEvent::{op.src.data}_{op.dst.data}"
        if op.cross_core is not None:
            if op.action.data == "set":  # mode 0x2: between the AIC and its AIVs
                return f"CrossCoreSetFlag<0x2, PIPE_{op.src.data}>({op.event.value.data});  // AIC <-> AIV hand-off through GM"
            return f"CrossCoreWaitFlag({op.event.value.data});"
        call = "SetFlag" if op.action.data == "set" else "WaitFlag"
        return f"{call}<{event}>(EVENT_ID{op.event.value.data});"

    def _ref(self, v: SSAValue) -> str:
        if v in self.buffers:
            return self.buffers[v].local
        if v in self.gm:
            return f"{self.gm[v]}Gm"
        return self.consts.get(v, self.names.get(v, "_"))

    def _buffer_offset(self, op: CopyOp, buf: SSAValue) -> str:
        """Start of a copy's block in buffer ``buf`` (row-major elements): the destination's
        block of an ``into`` copy, the source's of a sliced one."""
        shape = buf.type.get_shape() if isinstance(buf.type, MemRefType) else (1,)
        terms = [f"{self.names.get(idx, 'i')} * {t * math.prod(shape[d + 1:])}"
                 for idx, d, t in zip(op.index, _ints(op.dims), _ints(op.tile), strict=True)]
        return " + ".join(terms) or "0"

    def _offset(self, op: CopyOp, gm: SSAValue) -> str:
        """Start of the tile in the GM tensor: sum of index * tile * (elements after dim)."""
        if not op.index:
            return "0"
        # Copy dims index the logical (origin) view; the DMA maps it onto the storage format.
        origin = gm.type.get_shape() if isinstance(gm.type, TensorType) else (1,)
        shape = op.view_spec.logical_shape(origin)
        dims, tile = list(_ints(op.dims)), list(_ints(op.tile))
        terms = []
        for idx, d, t in zip(op.index, dims, tile, strict=True):
            if d < len(shape) and shape[d] == 1:
                continue  # a dim the operand broadcasts along (a bias over the rows): every tile reads the same
            stride = t * math.prod(shape[d + 1 :]) if d < len(shape) else t
            terms.append(f"{self.names.get(idx, 'i')} * {stride}")
        return " + ".join(terms) or "0"

    # -- the file ---------------------------------------------------------------------
    def source(self) -> str:
        process = self._plan(self.kernel.body.block, 0, "        ")
        k = self.kernel
        tiling = {_const_name(key): v.value.data for key, v in k.tiling.data.items() if isinstance(v, IntegerAttr)}
        gm_args = list(self.gm.values())
        lines = [
            f"// {self.name}: {k.kind.data} kernel generated by graphopt for {self.chip.name} (not compiled here).",
            f"// blockDim {k.block_dim.value.data}; GM tensors are in their storage formats (reference/ascend.md section 3).",
            '#include "kernel_operator.h"',
            "using namespace AscendC;",
            "",
            "constexpr int32_t BUFFER_NUM = 2;  // double buffering: CopyIn of tile i+1 overlaps Compute of tile i",
            f"constexpr int32_t BLOCK_DIM = {k.block_dim.value.data};",
            *(f"constexpr int32_t {n} = {v};" for n, v in tiling.items()),
            *(f"constexpr int32_t {n} = {v};" for n, v in self.constexpr.items()),
            *(f"constexpr int32_t {b.tile} = {b.elems};  // {b.op.result.type}" for b in self.buffers.values()),
            *(self._gm_size(v, n) for v, n in self.gm.items()),
            *self._scalar_lines(),
            "",
            f"class {self.cls} {{",
            "public:",
            f"    __aicore__ inline {self.cls}() {{}}",
            f"    __aicore__ inline void Init({', '.join(f'GM_ADDR {n}' for n in gm_args)})",
            "    {",
            *(f"        {n}Gm.SetGlobalBuffer((__gm__ {_ctype(v.type)}*){n}, {n.upper()}_SIZE);" for v, n in self.gm.items()),
            *(f"        pipe.InitBuffer({b.queue}, {self._depth(b)}{b.tile} * sizeof({_ctype(b.op.result.type)}));"
              for b in self.buffers.values()),
            "    }",
            "    __aicore__ inline void Process()",
            "    {",
            *process,
            "    }",
            "",
            "private:",
        ]
        for i, g in enumerate(self.groups):
            lines += self._method(g, self.groups[:i], self.groups[i + 1 :])
        lines += [
            "",
            "private:",
            "    TPipe pipe;",
            *(f"    {self._queue_decl(b)} {b.queue};" for b in self.buffers.values()),
            *(f"    LocalTensor<{_ctype(b.op.result.type)}> {b.local};  // the L0C accumulator"
              for v, b in self.buffers.items() if v in self.accumulators),
            *(f"    GlobalTensor<{_ctype(v.type)}> {n}Gm;" for v, n in self.gm.items()),
            "};",
            "",
            f'extern "C" __global__ __aicore__ void {self.name}({", ".join(f"GM_ADDR {n}" for n in gm_args)}, GM_ADDR workspace, GM_ADDR tiling)',
            "{",
            *([f"    KERNEL_TASK_TYPE_DEFAULT({self._task_type()});"] if self.chip.split else []),
            f"    {self.cls} op;",
            f"    op.Init({', '.join(gm_args)});",
            "    op.Process();",
            "}",
        ]
        return "\n".join(lines) + "\n"

    def _depth(self, b: _Buffer) -> str:
        if b.position in ("VECCALC", "GM"):
            return ""
        n = b.op.buffers.value.data
        return "BUFFER_NUM, " if n == 2 else f"{n}, "

    @staticmethod
    def _queue_decl(b: _Buffer) -> str:
        if b.position in ("VECCALC", "GM"):
            return "TBuf<TPosition::VECCALC>"
        depth = "BUFFER_NUM" if b.op.buffers.value.data == 2 else str(b.op.buffers.value.data)
        return f"TQue<TPosition::{b.position}, {depth}>"

    def _task_type(self) -> str:
        if self.kernel.kind.data != "cube":
            return "KERNEL_TYPE_AIV_ONLY"
        has_vector = any(isinstance(op, VecOp) for op in self.kernel.walk())
        return "KERNEL_TYPE_MIX_AIC_1_2" if has_vector else "KERNEL_TYPE_AIC_ONLY"

    def _gm_size(self, v: SSAValue, name: str) -> str:
        t = v.type
        elems = math.prod(gm_shape(v, self.chip.k0, self.precision))
        note = f"  // {t}" if isinstance(t, TensorType) else ""
        return f"constexpr int32_t {name.upper()}_SIZE = {elems};{note}"

    def _scalar_lines(self) -> list[str]:
        out = []
        for v, name in self.consts.items():
            owner = v.owner
            assert isinstance(owner, ConstOp)
            values = owner.value.get_values()
            first = values[0] if len(values) else 0
            out.append(f"constexpr float {name} = {float(first)!r}f;" if not isinstance(first, int) else f"constexpr int64_t {name} = {first};")
        return out


def _in_scope(var: str, depth: int) -> bool:
    """Loop index i<d> (or index_add j<d>_<n>) is visible in blocks deeper than d."""
    return int(var[1:].split("_")[0]) < depth


def _io(op: Operation) -> tuple[list[SSAValue], list[SSAValue]]:
    """(values an op reads, values it writes) among its operands."""
    if isinstance(op, CopyOp):
        return [op.source], [op.dest]
    if isinstance(op, MmadOp):
        return [op.lhs, op.rhs, op.acc], [op.acc]
    if isinstance(op, VecOp | MoveOp):
        return list(op.ins), list(op.outs)
    return [], []


def _ints(attr: DenseArrayBase) -> list[int]:
    return [int(x) for x in attr.get_values()]  # pyright: ignore[reportUnknownArgumentType]


def gm_shape(v: SSAValue, k0: Mapping[str, int], precision: str) -> tuple[int, ...]:
    """The storage shape of a GM tensor (origin shape padded and blocked by its format)."""
    t = v.type
    if not isinstance(t, TensorType):
        return (1,)
    shape = tuple(t.get_shape())
    fmt = format_of(t)
    if fmt == "ND":
        return shape
    c0 = c0_for(t.element_type, k0, precision) or 16
    return storage_shape(shape, fmt, c0)


def render(kernel: KernelOp, chip: Chip, precision: str) -> str:
    """The AscendC-style source of a cube or vector kernel."""
    return _KernelWriter(kernel, chip, precision).source()
