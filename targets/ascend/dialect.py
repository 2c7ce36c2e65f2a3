"""The ``ascend`` dialect: what graph ops are lowered into for a DaVinci chip.

Ops are added here by the lowering (kernels, buffers, copies, cube and vector ops).
"""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr, TensorType
from xdsl.ir import Dialect, SSAValue
from xdsl.irdl import IRDLOperation, irdl_op_definition, operand_def, prop_def, result_def, traits_def
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from graphopt.targets.ascend.formats import FORMATS, format_of, with_format


@irdl_op_definition
class TransDataOp(IRDLOperation):
    """Convert a tensor between storage formats; its logical value is unchanged.

    %y = "ascend.trans_data"(%x) <{src_format = "ND", dst_format = "NC1HWC0"}>
           : (tensor<1x3x8x8xf16>) -> tensor<1x3x8x8xf16, "NC1HWC0">
    """

    name = "ascend.trans_data"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    src_format = prop_def(StringAttr)
    dst_format = prop_def(StringAttr)
    traits = traits_def(Pure())

    def __init__(self, value: SSAValue, dst_format: str, src: list[str] | None = None):
        t = value.type
        assert isinstance(t, TensorType)
        from graphopt.dialects.graph import provenance_attr

        super().__init__(
            operands=[value],
            result_types=[with_format(t, dst_format)],
            properties={"src_format": StringAttr(format_of(t)), "dst_format": StringAttr(dst_format)},
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


Ascend = Dialect("ascend", [TransDataOp], [])
