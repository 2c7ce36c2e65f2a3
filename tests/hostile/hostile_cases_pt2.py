"""Hostile .pt2 files (torch.export archives): pickles where torch.export.load would unpickle
them (sample inputs, legacy weights and constants, use_pickle, custom and opaque objects),
zip bombs, lying zip directories, traversal member names, broken configs. Every payload is
harmless (it makes a folder or a file in the case's folder); the check is that it never ran."""

from __future__ import annotations

import functools
import io
import json
import struct
import zipfile
from pathlib import Path

from hostile_harness import ApiCase, Case
from hostile_models import mkdir_payload, np, open_payload

BOMB_BYTES = 100 << 20


@functools.cache
def base_pt2() -> bytes:
    """A valid archive from torch.export.save: y = relu(x @ W.T + b), x of shape (2, 4)."""
    import tempfile

    import torch

    class Lin(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            return torch.relu(self.fc(x))

    torch.manual_seed(0)
    ep = torch.export.export(Lin(), (torch.randn(2, 4),))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "lin.pt2"
        torch.export.save(ep, str(path))
        return path.read_bytes()


def _root(names: list[str]) -> str:
    return names[0].split("/")[0]


def rewrite(dst: Path, replace=None, add=(), drop=(), first=()) -> None:
    """A copy of the base archive at ``dst``: members whose name ends with a key of
    ``replace`` get its bytes (or a callable zipfile -> None writing them), ``drop`` suffixes
    are left out, ``add``/``first`` (name under the root, bytes) are appended / prepended."""
    replace = replace or {}
    with zipfile.ZipFile(io.BytesIO(base_pt2())) as src, zipfile.ZipFile(dst, "w") as out:
        root = _root(src.namelist())
        for name, data in first:
            out.writestr(f"{root}/{name}" if not name.startswith(("/", "..")) else name, data)
        for info in src.infolist():
            key = next((k for k in replace if info.filename.endswith(k)), None)
            if any(info.filename.endswith(d) for d in drop):
                continue
            if key is None:
                out.writestr(info, src.read(info.filename))
            elif callable(replace[key]):
                replace[key](out, info.filename)
            else:
                out.writestr(info, replace[key])
        for name, data in add:
            out.writestr(f"{root}/{name}" if not name.startswith(("/", "..")) else name, data)


def _config(kind="weights"):
    with zipfile.ZipFile(io.BytesIO(base_pt2())) as z:
        name = next(n for n in z.namelist() if n.endswith(f"model_{kind}_config.json"))
        return json.loads(z.read(name))


def _bomb(out: zipfile.ZipFile, name: str) -> None:
    """``name`` as 100 MB of zeros, deflated to about 100 KB, written in 1 MB pieces."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with out.open(info, "w") as f:
        chunk = bytes(1 << 20)
        for _ in range(BOMB_BYTES >> 20):
            f.write(chunk)


def _patch_flags(data: bytes, member_suffix: str, *, flag: int | None = None, method: int | None = None) -> bytes:
    """Set a member's general purpose flag bits or compression method in both its local
    header and its central directory entry."""
    buf = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(member_suffix))
    local = info.header_offset
    cd = buf.find(b"PK\x01\x02")
    while cd != -1:
        n = struct.unpack_from("<H", buf, cd + 28)[0]
        if bytes(buf[cd + 46: cd + 46 + n]).decode() == info.filename:
            break
        cd = buf.find(b"PK\x01\x02", cd + 4)
    for off, flag_at, method_at in ((local, 6, 8), (cd, 8, 10)):
        if flag is not None:
            struct.pack_into("<H", buf, off + flag_at, struct.unpack_from("<H", buf, off + flag_at)[0] | flag)
        if method is not None:
            struct.pack_into("<H", buf, off + method_at, method)
    return bytes(buf)


def _eocd_count(data: bytes, count: int) -> bytes:
    """The end of central directory record claiming ``count`` entries."""
    buf = bytearray(data)
    at = buf.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", buf, at + 8, count, count)
    return bytes(buf)


def _zip64_count(data: bytes, count: int) -> bytes:
    """A zip64 end record (and locator) claiming ``count`` entries in front of the end record."""
    at = data.rfind(b"PK\x05\x06")
    _, _, _, _, _, cd_size, cd_off, _ = struct.unpack_from("<IHHHHIIH", data, at)
    rec = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, cd_size, cd_off)
    loc = struct.pack("<IIQI", 0x07064B50, 0, at, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:at] + rec + loc + end


def pt2_case(id: str, make, *, name: str = "bad.pt2", command=("compile",), extra=("-o", "out"), **kw) -> Case:
    """``make(folder, path)`` writes the archive at ``path``."""

    def build(folder: Path) -> list[str]:
        make(folder, folder / name)
        return [*command, name, *extra]

    kw.setdefault("names", (name,))
    return Case(id, build, torch=True, **kw)


def _valid(folder: Path, path: Path) -> None:
    path.write_bytes(base_pt2())


def _valid_with_input(folder: Path, path: Path) -> None:
    path.write_bytes(base_pt2())
    np.save(folder / "x.npy", np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32))


def _replace(suffix, payload):
    def make(folder: Path, path: Path) -> None:
        rewrite(path, {suffix: payload(folder) if callable(payload) else payload})
    return make


def _bomb_in(suffix):
    def make(folder: Path, path: Path) -> None:
        rewrite(path, {suffix: _bomb})
    return make


def _add(member, payload):
    def make(folder: Path, path: Path) -> None:
        rewrite(path, add=[(member, payload(folder) if callable(payload) else payload)])
    return make


def _use_pickle(folder: Path, path: Path) -> None:
    config = _config()
    entry = next(iter(config["config"].values()))
    entry["use_pickle"] = True
    target = entry["path_name"]
    rewrite(path, {"model_weights_config.json": json.dumps(config).encode(),
                   f"data/weights/{target}": mkdir_payload(folder / "pwned")})


def _constant_object(prefix):
    def make(folder: Path, path: Path) -> None:
        config = {"config": {"evil": {"path_name": f"{prefix}0", "is_param": False, "use_pickle": False,
                                      "tensor_meta": None}}}
        rewrite(path, {"model_constants_config.json": json.dumps(config).encode()},
                add=[(f"data/constants/{prefix}0", mkdir_payload(folder / "pwned"))])
    return make


def _tensor_constant_pickled(folder: Path, path: Path) -> None:
    config = {"config": {"evil": {"path_name": "tensor_0", "is_param": False, "use_pickle": True, "tensor_meta": None}}}
    rewrite(path, {"model_constants_config.json": json.dumps(config).encode()},
            add=[("data/constants/tensor_0", mkdir_payload(folder / "pwned"))])


def _config_text(text: bytes, kind="weights"):
    def make(folder: Path, path: Path) -> None:
        rewrite(path, {f"model_{kind}_config.json": text})
    return make


def _huge_meta(folder: Path, path: Path) -> None:
    config = _config()
    entry = next(iter(config["config"].values()))
    entry["tensor_meta"]["sizes"] = [{"as_int": 10**6}, {"as_int": 10**6}]
    entry["tensor_meta"]["strides"] = [{"as_int": 10**6}, {"as_int": 1}]
    rewrite(path, {"model_weights_config.json": json.dumps(config).encode()})


def _dup_config(pickle_first: bool):
    """Two weight configs of the same name: one clean, one marking a weight pickled (with
    the payload as that weight). Zip readers differ in which copy they return."""

    def make(folder: Path, path: Path) -> None:
        import warnings

        bad = _config()
        entry = next(iter(bad["config"].values()))
        entry["use_pickle"] = True
        members = [("data/weights/model_weights_config.json", json.dumps(bad).encode()),
                   (f"data/weights/{entry['path_name']}", mkdir_payload(folder / "pwned"))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile: "Duplicate name", the point of the case
            rewrite(path, first=members) if pickle_first else rewrite(path, add=members)
    return make


def _bytes(fn):
    def make(folder: Path, path: Path) -> None:
        path.write_bytes(fn(base_pt2()))
    return make


def _onnx_inside(folder: Path, path: Path) -> None:
    from gp_models import cnn_model

    path.write_bytes(cnn_model().SerializeToString())


def _empty_zip(folder: Path, path: Path) -> None:
    with zipfile.ZipFile(path, "w"):
        pass


def _as_folder(folder: Path, path: Path) -> None:
    path.mkdir()


_PAYLOAD = {"absent": ("pwned",)}

CASES: list[Case] = [
    pt2_case("pt2-valid", _valid, name="good.pt2", exit=0, creates=("out",), names=()),
    pt2_case("pt2-valid-run", _valid_with_input, name="good.pt2", command=("run",), extra=("--input", "x=x.npy"), exit=0,
             names=()),
    # pickles torch.export.load would run
    # sample inputs are pickled in every .pt2 torch writes: graphopt never opens them, so the
    # file compiles (exit 0) and the payload never runs
    pt2_case("pt2-sample-inputs-mkdir-payload", _replace("data/sample_inputs/model.pt", lambda f: mkdir_payload(f / "pwned")),
             exit=0, creates=("out",), names=(), **_PAYLOAD),
    pt2_case("pt2-sample-inputs-open-payload",
             _replace("data/sample_inputs/model.pt", lambda f: open_payload(f / "pwned.txt")), exit=0, creates=("out",),
             names=(), absent=("pwned.txt",)),
    pt2_case("pt2-legacy-weights-pickle", _add("data/weights/model.pt", lambda f: mkdir_payload(f / "pwned")), **_PAYLOAD),
    pt2_case("pt2-legacy-constants-pickle", _add("data/constants/model.pt", lambda f: mkdir_payload(f / "pwned")),
             **_PAYLOAD),
    pt2_case("pt2-use-pickle-weight", _use_pickle, **_PAYLOAD),
    pt2_case("pt2-use-pickle-tensor-constant", _tensor_constant_pickled, **_PAYLOAD),
    pt2_case("pt2-custom-object-constant", _constant_object("custom_obj_"), **_PAYLOAD),
    pt2_case("pt2-opaque-object-constant", _constant_object("opaque_obj_"), **_PAYLOAD),
    pt2_case("pt2-duplicate-config-pickled-first", _dup_config(True), **_PAYLOAD),
    pt2_case("pt2-duplicate-config-pickled-last", _dup_config(False), **_PAYLOAD),
    # zip bombs: refused without reading the member whole
    pt2_case("pt2-zip-bomb-weight", _bomb_in("data/weights/weight_0"), max_seconds=20, max_rss_growth_mb=60),
    pt2_case("pt2-zip-bomb-model-json", _bomb_in("models/model.json"), max_seconds=20, max_rss_growth_mb=60),
    pt2_case("pt2-zip-bomb-weights-config", _bomb_in("model_weights_config.json"), max_seconds=20,
             max_rss_growth_mb=60),
    pt2_case("pt2-zip-bomb-sample-inputs", _bomb_in("data/sample_inputs/model.pt"), max_seconds=20,
             max_rss_growth_mb=60, exit=0, creates=("out",), names=()),  # never opened
    # lying zip structure
    pt2_case("pt2-path-traversal-member", _add("../../escaped-by-zip.txt", b"x"), absent=("../../escaped-by-zip.txt",)),
    pt2_case("pt2-absolute-member-name", _add("/hostile-absolute-member.txt", b"x")),
    pt2_case("pt2-not-a-zip", lambda f, p: p.write_bytes(b"this is not a zip archive\n")),
    pt2_case("pt2-empty-zip", _empty_zip),
    # the end record's entry count is not what zipfile reads (it walks the central directory): the
    # real members load, within time
    pt2_case("pt2-eocd-count-65535", _bytes(lambda b: _eocd_count(b, 0xFFFF)), max_seconds=30, exit=0,
             creates=("out",), names=()),
    pt2_case("pt2-zip64-count-2e40", _bytes(lambda b: _zip64_count(b, 1 << 40)), max_seconds=30, max_rss_growth_mb=300),
    pt2_case("pt2-truncated-half", _bytes(lambda b: b[: len(b) // 2])),
    pt2_case("pt2-empty-file", _bytes(lambda b: b"")),
    pt2_case("pt2-missing-file", lambda f, p: None, name="nothere.pt2"),
    pt2_case("pt2-is-a-folder", _as_folder, name="dir.pt2"),
    pt2_case("pt2-encrypted-member", _bytes(lambda b: _patch_flags(b, "model_weights_config.json", flag=1))),
    pt2_case("pt2-unknown-compression", _bytes(lambda b: _patch_flags(b, "model_weights_config.json", method=99))),
    pt2_case("pt2-onnx-inside", _onnx_inside),
    # broken content
    pt2_case("pt2-config-invalid-json", _config_text(b"{not json")),
    pt2_case("pt2-config-is-a-list", _config_text(b"[1, 2, 3]")),
    pt2_case("pt2-config-entry-not-object", _config_text(b'{"config": {"fc.weight": 5}}')),
    pt2_case("pt2-config-not-utf8", _config_text(b'{"config": "\xff\xfe"}')),
    pt2_case("pt2-constants-config-wrong-types", _config_text(b'{"config": {"c": {"path_name": 7}}}', "constants")),
    pt2_case("pt2-model-json-garbage", _replace("models/model.json", b"\x00garbage{{{")),
    pt2_case("pt2-weight-member-missing", lambda f, p: rewrite(p, drop=("data/weights/weight_0",))),
    pt2_case("pt2-weight-member-short", _replace("data/weights/weight_0", b"\0" * 10)),
    pt2_case("pt2-weight-meta-1e12-elements", _huge_meta, max_rss_growth_mb=300),
    pt2_case("pt2-archive-version-999", _replace("archive_version", b"999")),
]


def _api_payload(folder: Path):
    import graphopt

    rewrite(folder / "payload.pt2", {"data/sample_inputs/model.pt": mkdir_payload(folder / "pwned")})

    def call():  # compiles: sample inputs are never opened, so the payload never runs
        graphopt.compile(str(folder / "payload.pt2"))
        assert not (folder / "pwned").exists(), "the sample inputs' payload ran"

    return call


def _api_legacy(folder: Path):
    import graphopt

    rewrite(folder / "legacy.pt2", add=[("data/weights/model.pt", mkdir_payload(folder / "pwned"))])
    return lambda: graphopt.compile(folder / "legacy.pt2")


def _api_module_without_inputs(folder: Path):
    import torch

    import graphopt

    return lambda: graphopt.compile(torch.nn.Linear(2, 2))


def _api_example_inputs_wrong(folder: Path):
    import torch

    import graphopt

    return lambda: graphopt.compile(torch.nn.Linear(2, 2), example_inputs=("not a tensor",))


API_CASES: list[ApiCase] = [
    ApiCase("api-pt2-sample-inputs-payload", _api_payload, raises=False, torch=True),
    ApiCase("api-pt2-legacy-weights-payload", _api_legacy, names=("legacy.pt2",), torch=True),
    ApiCase("api-torch-module-without-example-inputs", _api_module_without_inputs, names=("example_inputs",), torch=True),
    ApiCase("api-torch-example-inputs-not-tensors", _api_example_inputs_wrong, names=("Linear",), torch=True),
]
