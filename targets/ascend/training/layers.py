"""One layer's shard, built in torch, captured forward and backward, timed by ascend-sim.

A ``Shard`` is everything a layer's kernels depend on: its kind (a dense or MoE decoder
layer, the embedding, the head), the micro-batch, the local sequence and the shapes the
plan leaves on one chip (heads / tp, FFN / tp, experts / ep, ...). ``time_shard`` builds the
layer as a torch function of its inputs and weights on fake tensors (no memory, no
weights), lets aot_autograd partition it into a forward and a backward graph (what a
training framework runs, with the tensors the forward saves for the backward), compiles
both for ascend-sim at -O2 and returns the simulated times, the FLOPs and the saved bytes.

Attention is the exception: its fused op is cut out of both graphs (its operands stay
computed, its results become inputs) and timed apart, as ascend-sim's flash-attention
kernel on the shard's shapes (``Attention``, causal). The backward of attention is taken
as 2.5 times that kernel's time: FlashAttention's backward recomputes the scores and runs
five matmuls of the forward's two over the same tiles; ascend-sim has no backward attention
kernel yet, and the unfused backward it would otherwise compile (the S x S probabilities
in HBM) is not what any framework runs.

Results are cached on disk (``$GRAPHOPT_CACHE_DIR``, else ``~/.cache/graphopt``) by the
shard, the chip file and the sources of graphopt's ascend target, so a plan search
compiles each distinct shard once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from graphopt.targets.ascend.training.shard import Shard

ATTENTION_BACKWARD_FACTOR = 2.5  # FlashAttention-2's backward: 5 matmuls of S x S x d against the forward's 2


@dataclass
class ShardTime:
    fw_us: float
    bw_us: float
    attn_fw_us: float
    attn_bw_us: float
    fw_flops: float
    bw_flops: float
    attn_flops: float  # the forward attention kernel's
    saved_bytes: int  # what the forward keeps for the backward (without recompute)
    attn_saved_bytes: int  # of which the attention's operands and results
    input_bytes: int  # the layer's input activation (what full recompute keeps)
    aicpu_kernels: int
    cube_fw_us: float  # the matmul kernels' share (what MC2 overlaps tensor-parallel communication with)
    cube_bw_us: float
    top_kernels: list[dict[str, Any]]
    compile_s: float
    cached: bool = False

    @classmethod
    def empty(cls) -> ShardTime:
        """No time, no FLOPs, nothing saved (the static memory check's stand-in)."""
        return cls(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, [], 0)

    @property
    def total_fw_us(self) -> float:
        return self.fw_us + self.attn_fw_us

    @property
    def total_bw_us(self) -> float:
        return self.bw_us + self.attn_bw_us


def cache_dir() -> Path:
    root = os.environ.get("GRAPHOPT_CACHE_DIR") or Path.home() / ".cache" / "graphopt"
    return Path(root) / "train-sim"


@functools.cache  # the sources do not change under a running process
def _source_hash(chip_file: str) -> str:
    """What a layer's kernel times depend on: graphopt's version, the chip file, and the
    sources of the capture (build, layers, shard), the torch frontend, the passes and the
    ascend target (its lowering and kernel model)."""
    import graphopt.frontends.fx as fx
    import graphopt.passes as passes
    from graphopt.version import __version__

    here = Path(__file__).parent
    files = [here / "build.py", here / "layers.py", here / "shard.py", *here.parent.glob("*.py"),
             *Path(fx.__file__).parent.glob("*.py"), *Path(passes.__file__).parent.glob("*.py")]
    h = hashlib.sha256(__version__.encode())
    for p in sorted(files):
        h.update(p.read_bytes())
    h.update(Path(chip_file).read_bytes())
    return h.hexdigest()[:16]


def _cached(path: Path, use_cache: bool, compute: Any, parse: Any) -> tuple[Any, bool]:
    """(``parse`` of the JSON at ``path``, True) when caching and it reads and parses; else
    (``parse(compute())``, False), the computed JSON written there atomically. A damaged entry
    is recomputed; a read-only cache only costs time."""
    if use_cache and path.is_file():
        try:
            return parse(json.loads(path.read_text())), True
        except (OSError, ValueError, TypeError, KeyError):
            pass
    data = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    except OSError:
        pass
    return parse(data), False


def time_shard(shard: Shard, chip: str, use_cache: bool = True) -> ShardTime:
    from graphopt.targets.ascend.chip import load_chip

    chip_file = load_chip(chip).source_file
    key = hashlib.sha256(json.dumps([asdict(shard), _source_hash(chip_file)], sort_keys=True).encode()).hexdigest()[:24]

    def compile_it() -> dict[str, Any]:
        t0 = time.perf_counter()
        result = _compile_shard(shard, chip_file)
        result.compile_s = round(time.perf_counter() - t0, 2)
        return asdict(result)

    result, hit = _cached(cache_dir() / f"{shard.kind}-{key}.json", use_cache, compile_it, lambda d: ShardTime(**d))
    result.cached = hit
    return result


def _compile_shard(shard: Shard, chip_file: str) -> ShardTime:
    from graphopt.targets.ascend.training import build

    fw, bw, (saved, attn_saved), in_bytes, attn_shapes = build.capture(shard)
    f = _timed(fw, chip_file)
    b = _timed(bw, chip_file)
    a_us, a_flops = _attention_time(attn_shapes, shard.cp, chip_file) if attn_shapes else (0.0, 0.0)
    kernels = sorted(f["kernels"] + b["kernels"], key=lambda k: -k["time_us"])[:8]
    return ShardTime(
        fw_us=f["total_us"], bw_us=b["total_us"], attn_fw_us=a_us, attn_bw_us=ATTENTION_BACKWARD_FACTOR * a_us,
        fw_flops=f["flops"], bw_flops=b["flops"], attn_flops=a_flops,
        saved_bytes=saved, attn_saved_bytes=attn_saved, input_bytes=in_bytes,
        aicpu_kernels=sum(k["kind"] == "aicpu" for k in f["kernels"] + b["kernels"]),
        cube_fw_us=sum(k["time_us"] for k in f["kernels"] if k["kind"] == "cube"),
        cube_bw_us=sum(k["time_us"] for k in b["kernels"] if k["kind"] == "cube"),
        top_kernels=[{x: k[x] for x in ("name", "kind", "time_us", "bound")} for k in kernels], compile_s=0.0)


def _timed(gm: Any, chip_file: str) -> dict[str, Any]:
    """A captured graph compiled for ascend-sim (-O2, no validation: there are no weights)."""
    from graphopt.compiler import build_compiled
    from graphopt.frontends.fx.walk import lower_graph
    from graphopt.registry import get_target

    compiled = build_compiled(lower_graph(gm), get_target("ascend-sim", chip=chip_file), opt_level=2)
    t = compiled.report["timing"]
    return {"total_us": t["total_us"], "flops": t["flops"], "kernels": t["kernels"]}


def _attention_time(shapes: tuple[tuple[int, ...], ...], cp: int, chip_file: str) -> tuple[float, float]:
    """This chip's attention forward: (us, FLOPs). Without context parallelism, the causal
    flash kernel on the layer's q, k, v. With it (Megatron's ring, each rank holding two
    chunks of the sequence so the causal work balances), the rank meets every other chunk:
    cp / 2 blocks' worth of the non-causal kernel on its own q and one chunk's k and v
    ([S/cp] each), which is the kernel each ring step launches."""
    from graphopt.targets.ascend.training import build

    t = _timed(build.attention_graph(*shapes, causal=cp == 1), chip_file)
    share = 1.0 if cp == 1 else cp / 2
    return t["total_us"] * share, t["flops"] * share


ADAM_CHUNK = 1 << 24  # parameters per timed optimizer chunk; the update streams, so time scales with the count


def adam_us_per_param(chip: str, use_cache: bool = True) -> float:
    """ascend-sim's time for one parameter's Adam update (a chunk of ADAM_CHUNK, compiled and
    timed as vector kernels), cached like the layers."""
    from graphopt.targets.ascend.chip import load_chip
    from graphopt.targets.ascend.training import build

    chip_file = load_chip(chip).source_file

    def compile_it() -> dict[str, Any]:
        return {"us_per_param": _timed(build.adam_graph(ADAM_CHUNK), chip_file)["total_us"] / ADAM_CHUNK}

    us, _ = _cached(cache_dir() / f"adam-{_source_hash(chip_file)}.json", use_cache, compile_it,
                    lambda d: float(d["us_per_param"]))
    return us
