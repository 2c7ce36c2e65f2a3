"""Hostile .npy inputs (`--input NAME=FILE`): pickled object arrays, headers that lie about
the shape, truncated data, files that are not .npy, and arrays that do not fit the model."""

from __future__ import annotations

from pathlib import Path

from hostile_harness import Case
from hostile_models import mkdir_payload, np, npy_header, relu, sparse_file, write

ONE_TIB = 1 << 40


class _Evil:
    """An object whose unpickling makes a folder (the payload)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        import os

        return os.mkdir, (self.path,)


def _models(folder: Path) -> None:
    write(folder, "m.onnx", relu((2, 3), x="pix", y="out"))
    write(folder, "dyn.onnx", relu(("N", 8), x="seq", y="out"))


def npy_case(id: str, make, *, command="compile", model="m.onnx", input_name="pix", file="in.npy", extra=(), **kw) -> Case:
    """``make(folder, path)`` writes the array file; the command feeds it as ``input_name``."""

    def build(folder: Path) -> list[str]:
        _models(folder)
        make(folder, folder / file)
        argv = [command, model, "--input", f"{input_name}={file}", *extra]
        return [*argv, "-o", "out"] if command == "compile" else argv

    if kw.get("exit", 2) == 2:
        kw.setdefault("names", (file,))
    return Case(id, build, **kw)


def _array(a):
    def make(folder: Path, path: Path) -> None:
        with open(path, "wb") as f:
            np.save(f, a)
    return make


def _raw(data):
    def make(folder: Path, path: Path) -> None:
        path.write_bytes(data)
    return make


def _object_payload(folder: Path, path: Path) -> None:
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = _Evil(folder / "pwned"), 1.0
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=True)


def _pickle_after_header(folder: Path, path: Path) -> None:
    """A header declaring an object array, then a bare pickle as its data."""
    path.write_bytes(npy_header((2, 3), descr="|O") + mkdir_payload(folder / "pwned"))


def _header_huge(folder: Path, path: Path) -> None:
    path.write_bytes(npy_header((10**6, 10**6)) + b"\0" * 16)


def _header_sparse_1tib(folder: Path, path: Path) -> None:
    """A consistent header (seq: (2**35, 8) float32) whose data is 1 TiB of holes."""
    header = npy_header((1 << 35, 8))
    sparse_file(path, len(header) + ONE_TIB)
    with open(path, "r+b") as f:
        f.write(header)


def _truncated(folder: Path, path: Path) -> None:
    path.write_bytes(npy_header((2, 3)) + b"\0" * 8)


def _header_code(folder: Path, path: Path) -> None:
    """A header that is code, not a literal (numpy reads it with ast.literal_eval)."""
    d = f"{{'descr': __import__('os').mkdir({str(folder / 'pwned')!r}), 'fortran_order': False, 'shape': (2, 3)}}"
    header = d.encode() + b" " * (-(10 + len(d) + 1) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 24)


def _header_len_huge(folder: Path, path: Path) -> None:
    path.write_bytes(b"\x93NUMPY\x02\x00" + (0xFFFFFFF0).to_bytes(4, "little") + b"{'descr': '<f4'")


def _npz(folder: Path, path: Path) -> None:
    np.savez(path, pix=np.ones((2, 3), np.float32), other=np.zeros(3))


def _npz_single(folder: Path, path: Path) -> None:
    with open(path, "wb") as f:
        np.savez(f, pix=np.ones((2, 3), np.float32))


def _structured(folder: Path, path: Path) -> None:
    np.save(path, np.zeros((2, 3), dtype=[("a", "<f4")]))


def _valid_fortran(folder: Path, path: Path) -> None:
    np.save(path, np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))


F32 = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5

CASES: list[Case] = [
    npy_case("npy-object-array-pickle", _object_payload, absent=("pwned",)),
    npy_case("npy-object-array-pickle-run", _object_payload, command="run", absent=("pwned",)),
    npy_case("npy-object-header-then-pickle", _pickle_after_header, absent=("pwned",)),
    npy_case("npy-header-code-not-literal", _header_code, absent=("pwned",)),
    npy_case("npy-header-1e12-elements", _header_huge, max_rss_growth_mb=300),
    npy_case("npy-header-1e12-elements-run", _header_huge, command="run", max_rss_growth_mb=300),
    npy_case("npy-sparse-1tib-data", _header_sparse_1tib, model="dyn.onnx", input_name="seq", max_seconds=30,
             max_rss_growth_mb=300),
    npy_case("npy-truncated-data", _truncated),
    npy_case("npy-header-length-4g", _header_len_huge, max_seconds=30),
    npy_case("npy-empty-file", _raw(b"")),
    npy_case("npy-text-file", _raw(b"1 2 3\n4 5 6\n")),
    npy_case("npy-magic-only", _raw(b"\x93NUMPY")),
    npy_case("npy-version-9", _raw(b"\x93NUMPY\x09\x00" + b"\x10\x00" + b"{}".ljust(16))),
    npy_case("npz-several-arrays", _npz, file="in.npz"),
    npy_case("npz-one-array", _npz_single, file="one.npz"),
    npy_case("npy-is-folder", lambda f, p: p.mkdir()),
    npy_case("npy-missing", lambda f, p: None, file="nothere.npy"),
    npy_case("npy-structured-dtype", _structured, names=("pix",)),
    npy_case("npy-zero-d", _array(np.float32(1.0)), names=("pix",)),
    npy_case("npy-wrong-dtype-int64", _array(F32.astype(np.int64)), names=("pix",)),
    npy_case("npy-wrong-dtype-int64-run", _array(F32.astype(np.int64)), command="run", names=("pix",)),
    npy_case("npy-wrong-dtype-float64", _array(F32.astype(np.float64)), names=("pix",)),
    npy_case("npy-wrong-dtype-float16", _array(F32.astype(np.float16)), names=("pix",)),
    npy_case("npy-wrong-dtype-bool", _array(F32 > 0), names=("pix",)),
    npy_case("npy-wrong-dtype-complex", _array(F32.astype(np.complex128)), names=("pix",)),
    npy_case("npy-wrong-dtype-unicode", _array(np.array([["a", "b", "c"]] * 2)), names=("pix",)),
    npy_case("npy-wrong-shape", _array(np.zeros((3, 3), np.float32)), names=("pix",)),
    npy_case("npy-wrong-shape-run", _array(np.zeros((3, 3), np.float32)), command="run", names=("pix",)),
    npy_case("npy-wrong-rank", _array(np.zeros((2, 3, 1), np.float32)), names=("pix",)),
    npy_case("npy-unknown-input-name", _array(F32), input_name="nosuch", names=("nosuch",)),
    npy_case("npy-valid", _array(F32), exit=0, creates=("out",)),
    npy_case("npy-valid-run", _array(F32), command="run", exit=0),
    npy_case("npy-valid-fortran-order-run", _valid_fortran, command="run", exit=0),
    npy_case("npy-valid-dynamic-shape-run", _array(np.ones((5, 8), np.float32)), command="run", model="dyn.onnx",
             input_name="seq", exit=0),
]
