"""A ``.pt2`` file (``torch.export.save``) read as data: graphopt's own loader.

``torch.export.load`` is not safe on an untrusted file: it unpickles the sample inputs
(retrying with ``weights_only=False`` when the safe load fails), legacy weight and constant
members, payloads marked ``use_pickle`` and custom objects; it evaluates every symbolic
shape expression with ``sympy.sympify`` (Python's ``eval``); it resolves a node's target
by walking attributes from the ``torch`` module (``torch.os.system`` is one); and
``ExportedProgram.module()`` generates and executes Python code that embeds the state
dict's names. So this module reads the archive itself:

1. The zip's directory is checked before any member is read: one top-level folder, no
   duplicate or escaping names, a bounded member count, and every member it reads is
   stored uncompressed and unencrypted (as torch writes them: so no member is a zip
   bomb) with a declared size under a limit (JSON: ``JSON_MAX``; tensors: the memory limit).
2. Only the members a program needs are read: ``models/<name>.json``, the weights and
   constants configs, and the raw tensor payloads they name. Pickled members (legacy
   ``data/weights/*.pt``, ``use_pickle`` payloads, custom and opaque objects) are refused
   by name; the sample inputs (pickled by design) and extra files are never opened.
3. The program JSON is checked before torch sees it: every node target is an ATen or
   higher-order op, or one of a few ``_operator``/``math``/``torch.sym_*`` functions;
   every symbolic expression parses as arithmetic over symbols and a fixed set of
   functions; every other name is a plain dotted identifier; node metadata is reduced to
   the stack trace and module stack.
4. Tensors are built from the raw bytes (``torch.frombuffer`` + ``as_strided``, the
   extent checked against the payload's size), and torch's deserializer turns the
   checked JSON and these tensors into an ExportedProgram, without example inputs.
"""

from __future__ import annotations

import ast
import json
import posixpath
import re
import zipfile
from pathlib import Path
from typing import Any

from graphopt.errors import GraphoptError
from graphopt.limits import check_bytes

_ARCHIVE_VERSIONS = (b"0",)  # the PT2 archive spec versions torch.export.save writes (torch 2.13: 0)
JSON_MAX = 256 << 20  # bytes of one JSON member (a large model's graph is tens of MB)
MEMBERS_MAX = 100_000

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")  # a plain (dotted) name, nothing to inject
_PAYLOAD = {"weights": re.compile(r"weight_\d+"), "constants": re.compile(r"tensor_\d+")}
# What a node may call. ATen and higher-order ops are resolved on torch.ops; these few
# functions appear in graphs with symbolic shapes.
_OPERATOR = {"getitem", "add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg", "pos", "abs",
             "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor", "not_", "invert"}
_MATH = {"ceil", "floor", "trunc", "sqrt"}
_TORCH = {"sym_int", "sym_float", "sym_max", "sym_min", "sym_not", "sym_ite", "sym_sqrt", "sym_sum", "_sym_sqrt"}
_TARGET = re.compile(r"torch\.ops\.(aten|higher_order)\.[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
# Functions a symbolic expression may call: torch's serializer writes sympy's srepr form
# (``Mul(Integer(2), Symbol('s0', positive=True, integer=True))``) or its printed form
# (``2*s0``, ``FloorDiv(s0, 2)``), over torch's own sympy functions.
_SYM_CALLS = {
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator",
    "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity", "OpaqueUnaryFn_sqrt",
    "Symbol", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Max", "Min", "Abs", "Eq", "Ne", "Lt", "Le", "Gt",
    "Ge", "Equality", "Unequality", "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan", "And", "Or",
    "Not", "floor", "ceiling", "sqrt", "Piecewise", "ITE",
}
_SYM_ASSUMPTIONS = {"positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite", "zero", "nonzero"}
_SYM_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call, ast.Name, ast.Constant,
              ast.Tuple, ast.Load, ast.keyword, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)
_METADATA_KEPT = ("stack_trace", "nn_module_stack")
# Strings that are text, not names: torch never resolves or executes them (string
# arguments are printed with repr; tree specs are looked up in pytree's registry).
_TEXT_KEYS = {"as_string", "as_strings", "in_spec", "out_spec", "torch_version", "verifiers"}


def load_pt2(path: str | Path) -> Any:
    """The ExportedProgram saved in ``path``, read without unpickling or evaluating anything."""
    p = Path(path)
    if not p.is_file():
        raise GraphoptError(f"{p}: no such file; check the path")
    try:
        with zipfile.ZipFile(p) as z:
            return _Archive(p, z).program()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as e:
        raise GraphoptError(f"{p}: not a torch.export archive ({type(e).__name__}: {_first_line(e)})") from None


class _Archive:
    def __init__(self, path: Path, z: zipfile.ZipFile):
        self.path, self.z = path, z
        infos = z.infolist()
        if len(infos) > MEMBERS_MAX:
            self.refuse(f"holds {len(infos)} members, more than {MEMBERS_MAX}")
        self.members: dict[str, zipfile.ZipInfo] = {}
        prefixes = set()
        for info in infos:
            name = info.filename
            if info.is_dir():
                continue
            norm = posixpath.normpath(name)
            if name.startswith(("/", "\\")) or "\\" in name or norm != name or norm.startswith("..") or "\0" in name:
                self.refuse(f"member {name!r} has an unsafe name")
            top, sep, rest = name.partition("/")
            if not sep:
                self.refuse(f"member {name!r} is outside the archive's folder; not written by torch.export.save")
            if rest in self.members:
                self.refuse(f"member {name!r} appears twice")
            prefixes.add(top)
            self.members[rest] = info
        if len(prefixes) != 1:
            self.refuse("is not a torch.export archive (it needs exactly one top-level folder)")
        self.prefix = prefixes.pop()

    def refuse(self, why: str) -> None:
        raise GraphoptError(f"{self.path}: {why}")

    def read(self, name: str, limit: int | None = None) -> bytes:
        info = self.members.get(name)
        if info is None:
            self.refuse(f"member {self.prefix}/{name} is missing; was the file written by torch.export.save?")
        if info.flag_bits & 0x1:
            self.refuse(f"member {info.filename} is encrypted")
        if info.compress_type != zipfile.ZIP_STORED:  # so no member can be a zip bomb
            self.refuse(f"member {info.filename} is compressed; torch.export.save stores members uncompressed "
                        "(re-save the program rather than re-zipping the file)")
        if limit is not None and info.file_size > limit:
            self.refuse(f"member {info.filename} declares {info.file_size} bytes, more than the {limit} allowed")
        check_bytes(info.file_size, f"{self.path}: member {info.filename}")
        with self.z.open(info) as f:
            data = f.read(info.file_size + 1)
        if len(data) != info.file_size:
            self.refuse(f"member {info.filename} is not the size its header declares")
        return data

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name, JSON_MAX).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            self.refuse(f"member {self.prefix}/{name} is not valid JSON ({_first_line(e)})")

    # -- what the archive holds --------------------------------------------------------
    def program(self) -> Any:
        self.check_members()
        version = self.read("archive_version", 16).strip() if "archive_version" in self.members else b"0"
        if version not in _ARCHIVE_VERSIONS:
            self.refuse(f"archive_version {version[:16]!r} is not one graphopt reads ({', '.join(v.decode() for v in _ARCHIVE_VERSIONS)}); "
                        "re-save it with this torch")
        byteorder = self.members.get("byteorder")
        if byteorder is not None and self.read("byteorder", 16).strip() not in (b"little", b""):
            self.refuse("stores tensors big-endian; re-save it on a little-endian machine")
        program = self.json("models/model.json")
        if not isinstance(program, dict):
            self.refuse("models/model.json is not a JSON object")
        # Guards are Python source that ExportedProgram.module() compiles and runs; they
        # only check a call's inputs, and graphopt specialises to one shape anyway.
        program["guards_code"] = []
        _ProgramCheck(self).check(program)
        _plain_tree_specs(program)
        state_dict = self.payloads("weights")
        constants = self.payloads("constants")
        return self.deserialize(program, state_dict, constants)

    def check_members(self) -> None:
        """Every member is one torch.export.save writes for a program; pickled ones are refused."""
        if "models/model.json" not in self.members:
            self.refuse("holds no models/model.json; is it a torch.export archive? (AOTInductor packages and "
                        "the pre-2.6 format are not loaded)")
        models = [n for n in self.members if n.startswith("models/")]
        if models != ["models/model.json"]:
            self.refuse(f"holds several programs ({', '.join(sorted(models))}); graphopt loads one named 'model'")
        for name in self.members:
            if name in ("archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id",
                        "models/model.json", "data/weights/model_weights_config.json",
                        "data/constants/model_constants_config.json") or name.startswith(("extra/", "data/sample_inputs/")):
                continue  # sample inputs are pickled: never read; extra files: not needed
            kind, _, leaf = name.removeprefix("data/").partition("/")
            if kind in _PAYLOAD and _PAYLOAD[kind].fullmatch(leaf):
                continue
            if name.endswith((".pt", ".pkl", ".pickle")) or leaf.startswith(("custom_obj_", "opaque_obj_")):
                self.refuse(f"member {self.prefix}/{name} is stored pickled; graphopt loads no pickles from model files")
            self.refuse(f"member {self.prefix}/{name} is not part of a torch.export program; graphopt does not load it")

    def payloads(self, kind: str) -> dict[str, Any]:
        """The weights (parameters and buffers) or constants, built from their raw bytes."""
        import torch

        config_name = f"data/{kind}/model_{kind}_config.json"
        if config_name not in self.members:
            self.refuse(f"holds no {config_name}; re-save it with torch.export.save")
        config = self.json(config_name)
        entries = config.get("config") if isinstance(config, dict) else None
        if not isinstance(entries, dict):
            self.refuse(f"{config_name} has no 'config' object")
        flat: dict[str, Any] = {}  # payload file -> its 1-D tensor (aliases share one)
        out: dict[str, Any] = {}
        for fqn, meta in entries.items():
            where = f"{kind[:-1]} {fqn!r}"
            if not isinstance(meta, dict) or not isinstance(fqn, str) or not _NAME.fullmatch(fqn):
                self.refuse(f"{config_name}: {where} is malformed")
            path_name = meta.get("path_name")
            if meta.get("use_pickle") or not isinstance(path_name, str) or not _PAYLOAD[kind].fullmatch(path_name):
                self.refuse(f"{where} is stored pickled or as an object ({path_name!r}); graphopt loads no pickles "
                            "from model files")
            tensor_meta = meta.get("tensor_meta")
            dtype, sizes, strides, offset = self.tensor_meta(tensor_meta, where)
            if path_name not in flat:
                data = self.read(f"data/{kind}/{path_name}")
                itemsize = dtype.itemsize
                if len(data) % itemsize:
                    self.refuse(f"{where}: its payload of {len(data)} bytes is not a whole number of {dtype}")
                flat[path_name] = torch.frombuffer(bytearray(data), dtype=dtype) if data else torch.empty(0, dtype=dtype)
            base = flat[path_name]
            if base.dtype != dtype:
                self.refuse(f"{where}: its payload {path_name} is read as {base.dtype} by another entry, not {dtype}")
            extent = offset + sum((s - 1) * st for s, st in zip(sizes, strides, strict=True)) + 1 if all(sizes) else 0
            if extent > base.numel():
                if base.numel() == 0:  # torch.export.save writes an all-zero tensor as an empty payload
                    check_bytes(extent * dtype.itemsize, f"{self.path}: {where}")
                    base = flat[path_name] = torch.zeros(extent, dtype=dtype)
                else:
                    self.refuse(f"{where}: shape {sizes} with strides {strides} needs {extent} elements, its payload "
                                f"holds {base.numel()}")
            tensor = torch.as_strided(base, sizes, strides, offset)
            if meta.get("is_param"):
                tensor = torch.nn.Parameter(tensor, requires_grad=bool(tensor_meta.get("requires_grad")) and tensor.is_floating_point())
            out[fqn] = tensor
        return out

    def tensor_meta(self, meta: Any, where: str) -> tuple[Any, list[int], list[int], int]:
        from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

        if not isinstance(meta, dict):
            self.refuse(f"{where}: no tensor_meta")
        try:
            dtype = _SERIALIZE_TO_TORCH_DTYPE[meta["dtype"]]
            sizes = [_as_int(d) for d in meta["sizes"]]
            strides = [_as_int(d) for d in meta["strides"]]
            offset = _as_int(meta["storage_offset"])
        except (KeyError, TypeError, ValueError):
            self.refuse(f"{where}: tensor_meta is malformed (dtype, sizes, strides, storage_offset)")
        if dtype.is_complex or len(sizes) != len(strides) or len(sizes) > 64 or min([offset, *sizes, *strides]) < 0:
            self.refuse(f"{where}: tensor_meta is not a tensor graphopt reads ({dtype}, sizes {sizes}, strides {strides})")
        device = meta.get("device") or {}
        if isinstance(device, dict) and device.get("type") not in (None, "cpu"):
            self.refuse(f"{where}: is stored for device {device.get('type')!r}; export the program on the cpu")
        return dtype, sizes, strides, offset

    def deserialize(self, program: dict[str, Any], state_dict: dict[str, Any], constants: dict[str, Any]) -> Any:
        from torch._export.serde import schema
        from torch._export.serde.serialize import ExportedProgramDeserializer, _dict_to_dataclass

        try:
            serialized = _dict_to_dataclass(schema.ExportedProgram, program)
            return ExportedProgramDeserializer().deserialize(serialized, state_dict, constants, None)
        except GraphoptError:
            raise
        except Exception as e:  # torch's deserializer on JSON it does not accept
            raise GraphoptError(f"{self.path}: cannot be loaded as a torch.export program "
                                f"({type(e).__name__}: {_first_line(e)})") from None


class _ProgramCheck:
    """Walks the program's JSON and refuses anything torch would evaluate or resolve
    beyond ATen: it sees every string of the document."""

    def __init__(self, archive: _Archive):
        self.archive = archive

    def refuse(self, why: str) -> None:
        self.archive.refuse(f"models/model.json: {why}; graphopt loads only ATen programs")

    def check(self, value: Any, key: str = "", depth: int = 0) -> None:
        if depth > 200:
            self.refuse("is nested too deeply")
        if isinstance(value, dict):
            if {"target", "inputs", "outputs"} <= value.keys():  # a node
                self.target(value["target"])
                metadata = value.get("metadata")
                if isinstance(metadata, dict):
                    value["metadata"] = {k: v for k, v in metadata.items() if k in _METADATA_KEPT and isinstance(v, str)}
            node = {"target", "inputs", "outputs"} <= value.keys()
            for k, v in value.items():
                if (node and k == "target") or (k in _METADATA_KEPT and isinstance(v, str)):
                    continue
                if k in ("class_fqn", "as_custom_obj", "as_opaque_obj", "custom_obj_fqn"):
                    self.refuse(f"it uses a custom object ({k}), which torch would unpickle")
                if key == "range_constraints" and isinstance(k, str):
                    self.sym_expr(k)  # keyed by expression; torch only looks these up
                elif not isinstance(k, str) or not (k == "" or _NAME.fullmatch(k)):
                    self.refuse(f"key {k!r} is not a plain name")
                self.check(v, k, depth + 1)
        elif isinstance(value, list):
            for v in value:
                self.check(v, key, depth + 1)
        elif isinstance(value, str):
            if key == "expr_str":
                self.sym_expr(value)
            elif key in _TEXT_KEYS:
                pass
            elif value and not _NAME.fullmatch(value):
                self.refuse(f"{key} {value[:80]!r} is not a plain name")

    def target(self, target: Any) -> None:
        if not isinstance(target, str):
            self.refuse(f"a node's target {target!r} is not an op name")
        module, _, name = target.rpartition(".")
        ok = (_TARGET.fullmatch(target) is not None or (module == "_operator" and name in _OPERATOR)
              or (module == "math" and name in _MATH) or (module == "torch" and name in _TORCH))
        if not ok:
            self.refuse(f"a node calls {target[:80]!r}")

    def sym_expr(self, text: str) -> None:
        """A symbolic shape expression: arithmetic and comparisons over symbols, numbers and
        the functions torch's serializer writes; nothing else reaches sympify."""
        try:
            tree = ast.parse(text, mode="eval") if len(text) < 10_000 else None
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None
        ok = tree is not None
        for node in ast.walk(tree) if tree is not None else ():
            if not isinstance(node, _SYM_NODES):
                ok = False
            elif isinstance(node, ast.Call):
                ok &= isinstance(node.func, ast.Name) and node.func.id in _SYM_CALLS
                if ok and node.func.id == "Symbol":  # Symbol('s0', positive=True): a name and assumptions
                    ok = (len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
                          and isinstance(node.args[0].value, str) and re.fullmatch(r"[a-z][a-z0-9_]*", node.args[0].value)
                          is not None and all(k.arg in _SYM_ASSUMPTIONS and isinstance(k.value, ast.Constant)
                                              and type(k.value.value) is bool for k in node.keywords))
                else:
                    ok &= not node.keywords
            elif isinstance(node, ast.Name):
                ok &= not node.id.startswith("_")
            elif isinstance(node, ast.Constant):
                ok &= type(node.value) in (int, float, bool, str)  # strings: Symbol's name, checked above
        if not ok:
            self.refuse(f"the symbolic expression {text[:80]!r} is not arithmetic over shape symbols")


def _plain_tree_specs(program: dict[str, Any]) -> None:
    """Tree specs whose container types this process has not registered with pytree (a
    transformers ModelOutput: transformers registers it when imported, in the exporting
    process) become tuples of the same leaves: graphopt flattens a call's inputs and
    outputs anyway, and the order of the leaves is the spec's."""
    import torch.utils._pytree as pytree

    known = pytree.SERIALIZED_TYPE_TO_PYTHON_TYPE

    def plain(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        children = [plain(c) for c in node.get("children_spec") or []]
        if kind is not None and kind not in known:
            return {"type": "builtins.tuple", "context": "null", "children_spec": children}
        return {**node, "children_spec": children}

    graph_module = program.get("graph_module")
    calls = graph_module.get("module_call_graph") if isinstance(graph_module, dict) else None
    for entry in calls if isinstance(calls, list) else []:
        signature = entry.get("signature") if isinstance(entry, dict) else None
        if not isinstance(signature, dict):
            continue
        for key in ("in_spec", "out_spec"):
            text = signature.get(key)
            if not isinstance(text, str):
                continue
            try:
                version, tree = json.loads(text)
            except (ValueError, TypeError):
                continue  # torch's deserializer says what is wrong with it
            signature[key] = json.dumps([version, plain(tree)])


def _as_int(d: Any) -> int:
    """A serialized size, stride or offset: {"as_int": n} (symbolic ones are refused)."""
    if isinstance(d, dict) and isinstance(d.get("as_int"), int) and not isinstance(d.get("as_int"), bool):
        return d["as_int"]
    raise ValueError(d)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else ""
