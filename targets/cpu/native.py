"""The cpu target's native kernels (native_kernels.c), built on first use by the system C
compiler and loaded with ctypes, as Inductor's C++ backend and tinygrad's CLANG backend do.

The shared library is cached under ``$GRAPHOPT_CACHE_DIR/native`` (default
``~/.cache/graphopt/native``), named by a hash of the source, the compiler's version and
the flags, and written atomically (built beside, then renamed), so concurrent first uses
neither collide nor load half a file. Where no compiler works (or ``GRAPHOPT_NATIVE=0``),
``library()`` is None and every kernel runs its numpy form: the numpy rules stay the
reference the native kernels are tested against, and the path that always exists.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

SOURCE = Path(__file__).with_name("native_kernels.c")
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fopenmp")
_PTR = ctypes.c_void_p  # an array's address (a.ctypes.data): data_as() costs microseconds a call
_I64 = ctypes.c_int64
# Each kernel's argument types after its arrays (see native_kernels.c).
_SIGNATURES: dict[str, tuple[int, list[Any]]] = {
    "dw_conv2d": (4, [_I64] * 14 + [ctypes.c_int]),
    "pool2d": (2, [_I64] * 15 + [ctypes.c_int, ctypes.c_int]),
    "layer_norm": (6, [_I64, _I64, ctypes.c_float, ctypes.c_int]),
    "softmax": (2, [_I64, _I64, ctypes.c_int]),
}


def cache_dir() -> Path:
    root = os.environ.get("GRAPHOPT_CACHE_DIR")
    if not root:
        try:
            root = str(Path.home() / ".cache" / "graphopt")
        except RuntimeError:  # no home directory to be found
            root = str(Path(tempfile.gettempdir()) / "graphopt-cache")
    return Path(root) / "native"


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def _cpu() -> str:
    """What -march=native compiles for: a cache shared by different machines (a network home)
    must not hand one machine's library to another."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), platform.machine())
    except OSError:
        return platform.machine() + platform.processor()


def _build(cc: str) -> Path | None:
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    key = hashlib.sha256("\0".join([SOURCE.read_text(), version, _cpu(), *FLAGS]).encode()).hexdigest()[:16]
    lib = cache_dir() / f"graphopt-native-{key}.so"
    if lib.exists():
        return lib
    try:  # a cache folder that cannot be written (a read-only home) leaves the numpy forms
        lib.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=lib.parent)
        os.close(fd)
    except OSError:
        return None
    try:
        subprocess.run([cc, *FLAGS, str(SOURCE), "-o", tmp, "-lm"], capture_output=True, timeout=120, check=True)
        os.replace(tmp, lib)
    except (OSError, subprocess.SubprocessError):
        Path(tmp).unlink(missing_ok=True)
        return None
    return lib


@cache
def threads() -> int:
    """Threads for native kernels: OMP_NUM_THREADS if set, else every core (onnxruntime's
    intra-op default). Read once, as OpenMP reads it."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)


# Work (values read or written, taps counted) below which a kernel runs on one thread: waking
# a pool costs more than such a loop (a GPT-2 block's LayerNorm of 16 x 64 took 0.2 ms on two
# threads with the other core busy, a few us on one); onnxruntime's thread pool decides by
# cost likewise.
PARALLEL_MIN = 1 << 16


def threads_for(work: int) -> int:
    """Threads for a kernel doing ``work``: ``threads()``, or one for small work."""
    return threads() if work >= PARALLEL_MIN else 1


@cache
def library() -> ctypes.CDLL | None:
    """The loaded kernels, or None (no compiler, a failed build, or GRAPHOPT_NATIVE=0)."""
    if os.environ.get("GRAPHOPT_NATIVE", "1") == "0":
        return None
    cc = _compiler()
    lib_path = _build(cc) if cc else None
    if lib_path is None:
        return None
    try:
        lib = ctypes.CDLL(str(lib_path))
    except OSError:
        return None
    for name, (arrays, rest) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes = [_PTR] * arrays + rest
        fn.restype = None
    return lib


def ptr(a: np.ndarray | None) -> Any:
    """A float32 C-contiguous array's address (None: a NULL pointer)."""
    return None if a is None else a.__array_interface__["data"][0]
