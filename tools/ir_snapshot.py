"""What the generic passes make of many graphs, as one hash per graph: run it on two trees and
diff the outputs to check that a refactor of the passes changed nothing.

    .venv/bin/python tools/ir_snapshot.py OUT.txt --fuzz 1500 [--models DIR]
    diff before.txt after.txt

Each graph (the fuzz generator's seeds 0..N-1, and every .onnx / .pt2 file in --models, e.g.
the model corpus's cache: benchmarks/model_corpus.py) is compiled for the cpu target with the
generic pipeline up to fusion (cleanup, recognizers, canonicalize, cse, dce) and its module
text hashed without provenance (``src``, which lists source nodes and may be reordered by a
refactor without changing meaning). A line per graph: name, hash (or the error), and which
recognized ops it holds. Session 8 used it on 170 corpus ONNX files, 22 .pt2 files and 4500
fuzz graphs to check the pattern-language rewrite of the recognizers.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECOGNIZED = ("graph.gelu", "graph.attention", "graph.layer_normalization", "graph.rms_normalization",
              "graph.rotary_embedding", "graph.swiglu")


def snapshot(model, label: str) -> str:
    import graphopt
    from graphopt.ir import print_module
    from graphopt.target import _CLEANUP, _RECOGNIZE

    try:
        compiled = graphopt.compile(model, "cpu", pipeline=f"{_CLEANUP},{_RECOGNIZE},canonicalize,cse,dce")
    except Exception as e:  # a refusal (or a crash) is part of the snapshot too
        return f"{label} ERROR {type(e).__name__}: {str(e)[:100]}"
    text = print_module(compiled.module)
    text = re.sub(r" ?\{src = \[[^\]]*\]\}", "", re.sub(r"src = \[[^\]]*\], ?", "", text))
    found = sorted({op for op in RECOGNIZED if f'"{op}"' in text})
    return f"{label} {hashlib.sha1(text.encode()).hexdigest()[:12]} {','.join(found)}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--fuzz", type=int, default=1500, help="fuzz seeds 0..N-1 (default 1500)")
    ap.add_argument("--models", type=Path, help="a folder of .onnx / .pt2 files")
    args = ap.parse_args(argv)
    from tests.fuzz.graphs import make_graph

    with args.out.open("w") as out:
        for path in sorted(args.models.glob("*")) if args.models else []:
            if path.suffix in (".onnx", ".pt2") and path.stat().st_size <= 300e6:
                print(snapshot(str(path), path.name), file=out, flush=True)
        for seed in range(args.fuzz):
            print(snapshot(make_graph(seed), f"fuzz{seed}"), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
