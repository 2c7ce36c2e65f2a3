"""The ``graphopt`` command: a thin shell over the Python API.

stdout carries only what the user asked for (the summary, IR, results); progress and
diagnostics go to stderr. Exit codes: 0 ok, 1 validation mismatch or unsupported ops,
2 bad input (one line, no traceback), 3 internal error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from graphopt.errors import GraphoptError, escape


def _shape_arg(text: str) -> tuple[str, tuple[int, ...]]:
    name, sep, dims = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        shape = tuple(int(d) for d in dims.lower().split("x")) if dims else ()
        if any(d < 0 or d >= 1 << 63 for d in shape):  # an ONNX dimension is an int64
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=1x3x224x224") from None
    return name, shape


def _size_arg(text: str) -> int:
    from graphopt.limits import parse_size

    try:
        return parse_size(text, "--max-memory")
    except GraphoptError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--max-memory ")) from None


def _input_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=file.npy")
    return name, path


def _add_plugin_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--load-pass-plugin", action="append", default=[], metavar="FILE.py",
                   help="register the ModulePass classes defined in a Python file (runs its code)")
    p.add_argument("--load-patterns", action="append", default=[], metavar="FILE",
                   help="register the pass a patterns file defines (text: no code runs; see docs/writing-passes.md)")


def _load_plugins(args: argparse.Namespace) -> None:
    from graphopt.registry import load_pass_plugin, load_patterns

    for path in args.load_pass_plugin:
        load_pass_plugin(path)
    for path in args.load_patterns:
        load_patterns(path)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an .onnx file, or a torch.export .pt2 file")
    p.add_argument("-t", "--target", default="cpu", help="target to compile for (see `graphopt targets`); default cpu")
    p.add_argument("--shape", action="append", type=_shape_arg, default=[], metavar="NAME=DxDx..",
                   help="bind an input's dynamic dimensions, e.g. --shape x=1x3x224x224")
    p.add_argument("-O", dest="opt_level", type=int, default=2, choices=range(4), metavar="LEVEL",
                   help="optimisation level 0-3 (default 2)")
    p.add_argument("-p", "--pipeline", help="pass pipeline in MLIR syntax, e.g. 'canonicalize,cse'")
    _add_plugin_options(p)
    p.add_argument("--max-memory", type=_size_arg, metavar="SIZE",
                   help="refuse any single tensor larger than this, e.g. 8G (default: half the physical memory)")
    for target, target_options in _declared_options().items():  # each target's own, as it declares them
        group = p.add_argument_group(f"{target} options") if target_options else None
        for o in target_options:
            assert group is not None
            group.add_argument(o.flag, dest=o.name, metavar=o.metavar, help=o.help)


def _declared_options() -> dict[str, list[Any]]:
    """Target name -> the options it declares (``Target.options``) that no earlier target did."""
    from graphopt.registry import all_targets

    seen: set[str] = set()
    found: dict[str, list[Any]] = {}
    for name, get in sorted(all_targets().items()):
        cls = get()
        mine = [o for o in getattr(cls, "options", ()) if o.name not in seen]
        seen |= {o.name for o in mine}
        found[name] = mine
    return found


def _add_pipeline_debug(p: argparse.ArgumentParser) -> None:
    p.add_argument("--print-ir-after-all", action="store_true", help="print the IR after every pass (to stderr)")
    p.add_argument("--print-ir-after", action="append", default=[], metavar="PASS", help="print the IR after PASS")
    p.add_argument("--dump-dir", type=Path, help="write the IR after each pass into this folder")
    p.add_argument("--time-passes", action="store_true", help="print each pass's time (to stderr)")
    p.add_argument("--verify-each", action="store_true",
                   help="verify the IR after every pass that changed it (default: once, after the pipeline; always for opt)")


def _add_input_options(p: argparse.ArgumentParser, verb: str) -> None:
    p.add_argument("--input", action="append", type=_input_arg, default=[], metavar="NAME=file.npy",
                   help=f"{verb} on these inputs instead of seeded random ones")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")


class _Parser(argparse.ArgumentParser):
    """argparse, with an argument error as one line (what is wrong, where help is) instead
    of a usage block; exit 2 as for any bad input. Subcommands' parsers are of this class
    too (add_subparsers makes them of the parent's class)."""

    def error(self, message: str, prog: str | None = None) -> NoReturn:
        self.exit(2, f"graphopt: error: {escape(message)}; see {prog or self.prog} --help\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        # What a subcommand did not recognise reaches the top parser: point at its help.
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            self.error(f"unrecognized arguments: {' '.join(extras)}", f"{self.prog} {command}" if command else None)
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graphopt", description="A graph compiler for neural networks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("compile", help="compile a model for a target, validate it, write the output folder")
    _add_model_options(c)
    _add_pipeline_debug(c)
    c.add_argument("-o", "--output", type=Path, help="output folder: model.mlir, weights, report.json")
    c.add_argument("--no-validate", action="store_true", help="skip the comparison with onnxruntime (torch eager for .pt2)")
    _add_input_options(c, "validate")
    c.add_argument("--emit", choices=["dot"], help="also write the optimized graph as Graphviz DOT "
                   "(OUT/model.dot, plus an SVG where `dot` is installed; to stdout without -o)")

    r = sub.add_parser("run", help="compile a model and run it on inputs")
    _add_model_options(r)
    r.add_argument("--input", action="append", type=_input_arg, default=[], metavar="NAME=file.npy")
    r.add_argument("-o", "--output", type=Path, help="write the outputs to this .npz file")

    m = sub.add_parser("compare", help="compare every intermediate value of the compiled model with the "
                       "reference (cpu -O0, float32), node by node; name the first out of tolerance")
    _add_model_options(m)
    _add_input_options(m, "compare")
    m.add_argument("--json", action="store_true", help='print {"first_bad", "rows": [...]} as JSON')

    b = sub.add_parser("bisect", help="find the first pass, and the rewrite in it, after which the model's answer "
                       "leaves tolerance; write a reproducer folder")
    _add_model_options(b)
    _add_input_options(b, "run")
    b.add_argument("-o", "--output", type=Path, default=None,
                   help="the reproducer folder (default: MODEL's name + .bisect, in the current folder)")
    b.add_argument("--json", action="store_true", help='print {"pass", "pattern", "nodes", "reproducer"} as JSON')

    a = sub.add_parser("precision", help="find a small set of nodes to keep in float32 so a float16 compile "
                       "validates; write it as a --keep-dtype file")
    _add_model_options(a)
    _add_input_options(a, "validate")
    a.add_argument("--rtol", type=float, help="relative tolerance instead of validation's own (give --atol too)")
    a.add_argument("--atol", type=float, help="absolute tolerance instead of validation's own (give --rtol too)")
    a.add_argument("-o", "--output", type=Path, help="write the keep set here (.txt; one node per line), for --keep-dtype")
    a.add_argument("--json", action="store_true",
                   help='print {"keep", "time_us", "time_us_all_fp16", "time_us_all_fp32"} as JSON')

    e = sub.add_parser("explore", help="show a compiled folder in Model Explorer, with error, simulated time "
                       "and placement overlays (needs the explore extra)")
    e.add_argument("folder", type=Path, help="a folder written by graphopt compile -o")
    e.add_argument("--export", type=Path, metavar="DIR",
                   help="write graph.json and the node-data files (error, time_us, placement) here; start no server")
    e.add_argument("--port", type=int, default=8080, help="the server's port (default 8080)")
    e.add_argument("--no-open", action="store_true", help="do not open a browser")
    e.add_argument("--no-compare", action="store_true", help="skip the error overlay (it runs graphopt compare)")

    o = sub.add_parser("opt", help="run passes over IR text and print the result")
    o.add_argument("file", help="an .mlir file, or - for stdin")
    o.add_argument("-p", "--pipeline", default="", help="pass pipeline in MLIR syntax")
    o.add_argument("-o", "--output", type=Path, help="write the IR here instead of stdout")
    o.add_argument("--emit", choices=["mlir", "dot"], default="mlir", help="print IR (default) or Graphviz DOT")
    _add_plugin_options(o)
    _add_pipeline_debug(o)

    k = sub.add_parser("check", help="list the model's ops, opsets and dtypes and whether each target supports them")
    k.add_argument("model", help="an .onnx file")
    k.add_argument("-t", "--target", action="append", default=[], metavar="T",
                   help="check only this target (repeatable); default: every target")

    sub.add_parser("targets", help="list the targets")
    pl = sub.add_parser("passes", help="list the passes")
    _add_plugin_options(pl)
    from graphopt import registry

    for name, path in sorted(registry.target_rows("commands").items()):  # a target's own (ascend-sim: train-sim)
        module, _, attr = path.partition(":")
        TARGET_COMMANDS[name] = getattr(importlib.import_module(module), attr)(sub)
    return parser


def _progress() -> Any:
    if not sys.stderr.isatty():
        return None

    def show(message: str) -> None:
        sys.stderr.write(f"\r\x1b[K{message}")
        sys.stderr.flush()

    return show


def _clear_progress() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")


def _load_inputs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    inputs = {}
    for name, path in pairs:
        inputs[name] = _load_npy(f"--input {name}={path}", Path(path))
    return inputs


def _inputs_and_shapes(args: argparse.Namespace) -> tuple[dict[str, Any] | None, dict[str, tuple[int, ...]]]:
    """The --input arrays (None without any) and the shapes to bind: --shape's, then each
    input array's own."""
    inputs = _load_inputs(args.input) if args.input else None
    shapes = dict(args.shape)
    for name, arr in (inputs or {}).items():
        shapes.setdefault(name, arr.shape)
    return inputs, shapes


def _load_npy(where: str, path: Path) -> Any:
    """One .npy file, its header checked first: no object or structured dtype, a size
    within the memory limit, a file as long as the header says; then read."""
    import numpy as np

    from graphopt import limits

    if not path.is_file():
        raise GraphoptError(f"{where}: no such file")
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read_header(f)
            data_start = f.tell()
    except (Exception, RecursionError) as e:  # numpy parses the header's text with tokenize and ast: any failure
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GraphoptError(f"{where}: not a readable .npy file ({why}); give one array saved with numpy.save") from None
    if dtype.hasobject or dtype.fields is not None:
        raise GraphoptError(f"{where}: holds {'Python objects' if dtype.hasobject else 'structured records'} ({dtype}); "
                            "give a numeric array")
    if any(d < 0 for d in shape):
        raise GraphoptError(f"{where}: the header gives a negative dimension {list(shape)}")
    size = limits.nbytes(shape, dtype.itemsize)
    limits.check_bytes(size, where)
    if data_start + size > path.stat().st_size:
        raise GraphoptError(f"{where}: the header says {dtype}{list(shape)} ({size} bytes), "
                            f"but the file holds only {path.stat().st_size - data_start}; is it truncated?")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise GraphoptError(f"{where}: not a readable .npy file ({str(e).strip().splitlines()[0]})") from None


def _options(args: argparse.Namespace) -> Any:
    from graphopt.compiler import PipelineOptions

    return PipelineOptions(
        print_ir_after_all=args.print_ir_after_all,
        print_ir_after=frozenset(args.print_ir_after),
        dump_dir=args.dump_dir,
        verify_each=getattr(args, "verify_each", False) or args.command == "opt" or PipelineOptions().verify_each,
        progress=_progress(),
        ir_sink=lambda text: print(text, file=sys.stderr),
    )


def _target_options(args: argparse.Namespace) -> dict[str, Any]:
    """The target options given on the command line (get_target refuses one the target lacks)."""
    return {o.name: getattr(args, o.name, None) for opts in _declared_options().values() for o in opts}


def _print_pass_times(report: dict[str, Any]) -> None:
    total = sum(p["seconds"] for p in report["passes"])
    print(f"{'pass':<28} {'seconds':>9}", file=sys.stderr)
    for p in report["passes"]:
        print(f"{p['name']:<28} {p['seconds']:>9.4f}", file=sys.stderr)
    print(f"{'total':<28} {total:>9.4f}", file=sys.stderr)


_OPT_SUFFIXES = {"mlir": (".mlir",), "dot": (".dot", ".gv")}


def _opt_output_kind(emit: str) -> Any:
    """opt -o overwrites only a file named as what it writes (IR: .mlir; DOT: .dot, .gv)."""
    return lambda path: path.suffix.lower() in _OPT_SUFFIXES[emit]


def _is_npz(path: Path) -> bool:
    """A .npz archive of .npy members: an earlier `run -o` output, which may be replaced."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return all(name.endswith(".npy") for name in z.namelist())


def _check_outputs(args: argparse.Namespace, keep: list[str]) -> None:
    """Refuse an output path that graphopt must not write to, before the compile it waits for."""
    from graphopt import outputs

    output = getattr(args, "output", None)
    if args.command in ("compile", "bisect") and output is not None:
        outputs.check_output_folder(output, f"-o {output}", keep)
    if getattr(args, "dump_dir", None) is not None:
        label = f"--dump-dir {args.dump_dir}"
        outputs.check_dump_dir(args.dump_dir, label, keep)
        if args.command == "compile" and output is not None and _within(args.dump_dir, output):
            raise GraphoptError(f"{label}: inside the -o folder, which is written whole; dump elsewhere")
    for o in (o for opts in _declared_options().values() for o in opts if o.writes):  # a file a target writes
        written = getattr(args, o.name, None)
        if written is None:
            continue
        label, suffix = f"{o.flag} {written}", o.writes
        outputs.check_output_file(written, label, lambda p, suffix=suffix: p.suffix.lower() == suffix, f"a {suffix} file",
                                  [*keep, *([output] if args.command == "run" and output else [])])
        if args.command == "compile" and output is not None and _within(written, output):
            raise GraphoptError(f"{label}: inside the -o folder, which is written whole; write it elsewhere")
    if args.command == "run" and output is not None:
        outputs.check_output_file(output, f"-o {output}", _is_npz, "a .npz file of arrays", keep)
    if args.command == "opt" and output is not None:
        outputs.check_output_file(output, f"-o {output}", _opt_output_kind(args.emit), f"a {_OPT_SUFFIXES[args.emit][0]} file")


def _within(path: str | Path, folder: str | Path) -> bool:
    p, f = (Path.cwd() / path).resolve(), (Path.cwd() / folder).resolve()
    return p == f or f in p.parents


def cmd_compile(args: argparse.Namespace) -> int:
    import graphopt
    from graphopt import limits
    from graphopt.validate import check, summary_lines

    _check_outputs(args, [args.model, *(path for _, path in args.input)])
    _load_plugins(args)
    limits.set_max_memory(args.max_memory)  # for the inputs, the import and validation
    inputs, shapes = _inputs_and_shapes(args)
    options = _options(args)
    options.keep_graph_ir = args.output is not None  # graph.mlir in the folder, for `graphopt explore`
    compiled = graphopt.compile(
        args.model, args.target, opt_level=args.opt_level, pipeline=args.pipeline, shapes=shapes,
        options=options, target_options=_target_options(args),
    )
    result = None
    if not args.no_validate:
        from graphopt.validate import validate

        result = validate(compiled, inputs, seed=args.seed)  # torch eager judges a .pt2, onnxruntime the rest
    _clear_progress()
    # DOT on stdout (--emit dot without -o) keeps stdout for the DOT alone.
    info = sys.stderr if args.emit and not args.output else sys.stdout

    def say(line: str) -> None:
        print(escape(line), file=info)  # lines name the model's file, outputs and nodes

    rep = compiled.report
    imported, final = sum(rep["ops"]["imported"].values()), sum(rep["ops"]["final"].values())
    seconds = sum(p["seconds"] for p in rep["passes"])
    say(f"compiled {args.model} for {rep['target']} in {seconds:.2f} s")
    how = f"-p {args.pipeline}" if args.pipeline is not None else f"-O{args.opt_level}"
    say(f"  ops: {imported} imported -> {final} after {how}")
    fusion, patterns = rep["fusion"], {k: v for k, v in rep["patterns"].items() if v}
    if fusion["groups"] or patterns:
        kinds = ", ".join(f"{n} {k}" for k, n in fusion["by_kind"].items())
        say(f"  fused: {fusion['groups']} groups" + (f" ({kinds})" if kinds else "") + f", {len(fusion['missed'])} missed")
        if patterns:
            say("  patterns: " + ", ".join(f"{k} {v}" for k, v in patterns.items()))
    say(f"  weights: {rep['weights']['count']} tensors, {rep['weights']['bytes'] / 1e6:.2f} MB")
    for line in compiled.target.summary_lines(rep):
        say(line)
    if args.time_passes:
        _print_pass_times(rep)
    if result is not None:
        for line in summary_lines(result):
            say(line)
    if args.output:
        folder = compiled.save(args.output, dot=args.emit == "dot", label=f"-o {args.output}")
        say(f"  wrote {folder}/ (model.mlir, weights.bin, report.json)")
        if args.emit == "dot":
            written = [folder / name for name in ("model.dot", "model.svg") if (folder / name).is_file()]
            say(f"  wrote {', '.join(str(p) for p in written)}")
    elif args.emit == "dot":
        from graphopt.dot import to_dot

        sys.stdout.write(to_dot(compiled.module, Path(args.model).stem))
    if result is not None:
        check(result)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    import graphopt
    from graphopt import limits

    keep = [args.model, *(path for _, path in args.input)]
    _check_outputs(args, keep)
    _load_plugins(args)
    limits.set_max_memory(args.max_memory)  # for the inputs, the import and the run
    inputs = _load_inputs(args.input)
    shapes = dict(args.shape)
    for name, arr in inputs.items():
        shapes.setdefault(name, arr.shape)
    compiled = graphopt.compile(
        args.model, args.target, opt_level=args.opt_level, pipeline=args.pipeline, shapes=shapes,
        target_options=_target_options(args),
    )
    outputs = compiled.run(inputs)
    if args.output:
        from graphopt import outputs as out_files

        label = f"-o {args.output}"
        out_files.check_output_file(args.output, label, _is_npz, "a .npz file of arrays", keep)
        # Into an open file: np.savez would add .npz to a name without it.
        out_files.write_output_file(args.output, label, lambda f: np.savez(f, **outputs))
        print(f"wrote {len(outputs)} outputs to {args.output}")
        return 0
    with np.printoptions(precision=5, threshold=8, edgeitems=3):
        for name, value in outputs.items():
            print(f"{name}: {value.dtype}{list(value.shape)}\n{value}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Exit 0 when every value is within tolerance, 1 when one is not."""
    import json

    from graphopt import limits
    from graphopt.compare import compare_model, table_lines, verdict_lines

    _check_outputs(args, [args.model])
    _load_plugins(args)
    limits.set_max_memory(args.max_memory)
    inputs, shapes = _inputs_and_shapes(args)
    result = compare_model(args.model, args.target, target_options=_target_options(args), opt_level=args.opt_level,
                           pipeline=args.pipeline, shapes=shapes, inputs=inputs, seed=args.seed)
    _clear_progress()
    if args.json:
        rows = [{k: r[k] for k in ("node", "op", "kernel", "shape", "dtype", "max_abs_err", "max_rel_err", "cosine",
                                   "tolerance", "ok", "nonfinite")} for r in result["rows"]]
        print(json.dumps(_strict_json({"first_bad": result["first_bad"], "overflow": result["overflow"],
                                       "cancellation": result["cancellation"],
                                       "reference_check": result["reference_check"], "rows": rows})))
    else:
        print(f"compare {escape(str(args.model))} on {result['target']} against the reference (cpu -O0, "
              f"checked against {result['reference_check']['judge']}: "
              f"{'passed' if result['reference_check']['passed'] else 'FAILED'})")
        for line in table_lines(result):
            print(escape(line))
        for line in verdict_lines(result):
            print(escape(line))
    return 0 if result["first_bad"] is None else 1


def cmd_bisect(args: argparse.Namespace) -> int:
    """Exit 0 when no pass changes the answer beyond tolerance, 1 when one does."""
    import json

    from graphopt import limits
    from graphopt.bisect import bisect_model

    if args.output is None:
        args.output = Path(Path(args.model).name.rsplit(".", 1)[0] + ".bisect")
    _check_outputs(args, [args.model, *(path for _, path in args.input)])
    _load_plugins(args)
    limits.set_max_memory(args.max_memory)
    inputs, shapes = _inputs_and_shapes(args)
    result = bisect_model(args.model, args.target, target_options=_target_options(args), opt_level=args.opt_level,
                          pipeline=args.pipeline, shapes=shapes, inputs=inputs, seed=args.seed, output=args.output,
                          plugins=args.load_pass_plugin)
    _clear_progress()
    if args.json:
        print(json.dumps({k: result[k] for k in ("pass", "pattern", "nodes", "reproducer")}))
    elif result["pass"] is None:
        print(f"every pass keeps the answer within tolerance ({len(result['passes'])} checked)")
    else:
        for p in result["passes"]:
            verdict = "ok" if p["passed"] else "LEAVES TOLERANCE" + (f" ({p['output']}: max abs err {p['max_abs_err']:.3g})"
                                                                    if p.get("max_abs_err") is not None else
                                                                    f" ({p.get('error', 'does not run')})")
            rewrites = "" if p["rewrites"] is None else f"  {p['rewrites']} rewrites"
            print(escape(f"{p['pass']:<40} {verdict}{rewrites}"))
        print(escape(f"first bad pass: {result['pass']}"))
        if result["pattern"]:
            print(escape(f"first bad rewrite: {result['rewrite']} of {result['rewrites']}, pattern {result['pattern']}, "
                         f"nodes {', '.join(result['nodes'])}"))
        elif result.get("target_passes"):
            print("every graph-level pass keeps the answer: the target's own passes change it (see graphopt compare)")
        if result["reproducer"]:
            print(escape(f"wrote {result['reproducer']}/ (before.mlir, after.mlir, README.txt"
                         + (", subgraph.onnx)" if result.get("subgraph_nodes") else ")")))
    return 0 if result["pass"] is None else 1


def cmd_precision(args: argparse.Namespace) -> int:
    """Exit 0 with a keep set that validates, 1 when none was found."""
    import json

    from graphopt import limits
    from graphopt import outputs as out_files
    from graphopt.precision import advise

    keep_files = [args.model, *(path for _, path in args.input)]
    _check_outputs(args, keep_files)
    if (args.rtol is None) != (args.atol is None):
        raise GraphoptError("--rtol and --atol go together: give both, or neither for validation's own tolerance")
    if args.output is not None:
        out_files.check_output_file(args.output, f"-o {args.output}", _is_text_file, "a .txt file", keep_files)
    _load_plugins(args)
    limits.set_max_memory(args.max_memory)
    inputs, shapes = _inputs_and_shapes(args)
    tol = (args.rtol, args.atol) if args.rtol is not None else None
    result = advise(args.model, args.target, target_options=_target_options(args), opt_level=args.opt_level,
                    shapes=shapes, inputs=inputs, seed=args.seed, tol=tol)
    _clear_progress()
    if args.output is not None and result["passed"]:
        text = "".join(f"{name}\n" for name in result["keep"])
        out_files.write_output_file(args.output, f"-o {args.output}", lambda f: f.write(text.encode()))
    if args.json:
        print(json.dumps({k: result[k] for k in ("keep", "passed", "nodes", "time_us", "time_us_all_fp16", "time_us_all_fp32")}))
    else:
        fp16, fp32, ours = result["time_us_all_fp16"], result["time_us_all_fp32"], result["time_us"]
        if not result["passed"]:
            print(escape(f"no keep set found that validates (tried {result['trials']}); the last tried: "
                         f"{', '.join(result['keep']) or 'none'}; see graphopt compare"))
        elif not result["keep"]:
            print("the model validates in float16 as it is: nothing to keep")
        else:
            print(escape(f"keep {len(result['keep'])} of {result['nodes']} nodes in float32: {', '.join(result['keep'])}"))
        if ours is not None:
            print(f"simulated time: {ours:.1f} us with this set; all float16 {fp16:.1f} us, all float32 {fp32:.1f} us")
        if args.output is not None and result["passed"]:
            print(escape(f"wrote {args.output}: compile with --keep-dtype {args.output}"))
    return 0 if result["passed"] else 1


def _is_text_file(path: Path) -> bool:
    return path.suffix.lower() == ".txt"


def cmd_explore(args: argparse.Namespace) -> int:
    import tempfile

    from graphopt import explorer

    folder = args.folder
    if not (folder / ".graphopt-output").is_file():
        raise GraphoptError(f"{folder}: not a folder graphopt compile -o wrote (no .graphopt-output marker)")
    def write(dest: Path) -> list[Path]:
        written, compared = explorer.export(folder, dest, compare=not args.no_compare)
        if not compared and not args.no_compare:
            print(escape("note: no error overlay: the model the folder's report names is not there "
                         "(moved or deleted since the compile; pass --no-compare)"), file=sys.stderr)
        return written

    if args.export is not None:
        print(escape(f"wrote {', '.join(str(p) for p in write(args.export))}"))
        return 0
    try:
        import model_explorer
    except ImportError:
        raise GraphoptError("Model Explorer is not installed: pip install 'graphopt[explore]' "
                            "(or use --export DIR to write the graph and overlays)") from None
    import shutil

    data = Path(tempfile.mkdtemp(prefix="graphopt-explore-"))
    try:
        write(data / "export")
        config = model_explorer.config().add_model_from_path(str(folder / ".graphopt-output"), adapterId="graphopt")
        for name in explorer.OVERLAYS:
            config.add_node_data_from_path(str(data / "export" / f"{name}.json"))
        model_explorer.visualize_from_config(config, extensions=["graphopt.explorer"], port=args.port,
                                             no_open_in_browser=args.no_open)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return 0


def _strict_json(o: Any) -> Any:
    """``o`` with numpy scalars as Python numbers and infinities and NaN as the strings
    "inf", "-inf", "nan" (JSON has no such numbers; jq and JavaScript reject Infinity)."""
    import math

    import numpy as np

    if isinstance(o, dict):
        return {k: _strict_json(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_strict_json(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return "nan" if math.isnan(o) else "inf" if o > 0 else "-inf"
    return o


def cmd_opt(args: argparse.Namespace) -> int:
    from graphopt import limits
    from graphopt.compiler import parse_pipeline, run_pipeline, verify
    from graphopt.ir import (
        TEXT_MAX_BYTES,
        check_defined_before_use,
        check_weights,
        decode_text,
        make_context,
        parse_module,
        print_module,
        read_text,
    )
    from graphopt.weights import WeightStore

    keep = [] if args.file == "-" else [args.file]
    _check_outputs(args, keep)
    _load_plugins(args)
    if args.file == "-":
        source = "<stdin>"
        text = decode_text(sys.stdin.buffer.read(TEXT_MAX_BYTES + 1), source)
    else:
        source = args.file
        text = read_text(Path(args.file))
    # A saved compile folder keeps its weights beside model.mlir; passes may read them.
    folder = Path(args.file).parent if args.file != "-" else Path()
    weights = WeightStore.load(folder) if (folder / "weights.json").is_file() else WeightStore()
    ctx = make_context(weights)
    passes = parse_pipeline(args.pipeline)
    module = parse_module(ctx, text, source)
    try:
        verify(module, "parsing")
    except RuntimeError as e:
        raise GraphoptError(f"{source}: {e}") from None
    check_defined_before_use(module, source)
    check_weights(module, weights, source)
    limits.check_module(module)
    report = {"passes": run_pipeline(module, ctx, passes, _options(args))}
    _clear_progress()
    if args.time_passes:
        _print_pass_times(report)
    if args.emit == "dot":
        from graphopt.dot import to_dot

        out = to_dot(module, Path(args.file).stem if args.file != "-" else "graphopt")
    else:
        out = print_module(module)
    if args.output:
        from graphopt import outputs as out_files

        label = f"-o {args.output}"
        # The input itself may be rewritten (as mlir-opt does): it was read whole above.
        out_files.check_output_file(args.output, label, _opt_output_kind(args.emit), f"a {_OPT_SUFFIXES[args.emit][0]} file")
        out_files.write_output_file(args.output, label, lambda f: f.write(out.encode()))
    else:
        sys.stdout.write(out)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 if every target checked supports every op of the model, 1 if not."""
    from graphopt.check import check_model, format_report
    from graphopt.frontends.onnx import load_model
    from graphopt.registry import all_targets, get_target

    targets = [get_target(spec) for spec in args.target or sorted(all_targets())]
    model = load_model(args.model)
    report = check_model(model, targets)
    for line in format_report(report):
        print(escape(line))  # lines name the model's nodes
    return 1 if report.unsupported else 0


def cmd_targets(args: argparse.Namespace) -> int:
    from graphopt.registry import all_targets

    for name, get in sorted(all_targets().items()):
        cls = get()
        print(f"{name:<14} {cls.description}")
        for variant, about in getattr(cls, "variants", lambda: {})().items():
            print(f"  {name}:{variant:<10} {about}")
    return 0


def cmd_passes(args: argparse.Namespace) -> int:
    from graphopt.registry import all_passes

    _load_plugins(args)
    for name, get in sorted(all_passes().items()):
        doc = (get().__doc__ or "").strip().splitlines()
        print(f"{name:<28} {doc[0] if doc else ''}")
    return 0


TARGET_COMMANDS: dict[str, Any] = {}  # filled by build_parser from the targets' ``commands``
COMMANDS = {
    "compile": cmd_compile,
    "run": cmd_run,
    "compare": cmd_compare,
    "bisect": cmd_bisect,
    "precision": cmd_precision,
    "explore": cmd_explore,
    "opt": cmd_opt,
    "check": cmd_check,
    "targets": cmd_targets,
    "passes": cmd_passes,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return (COMMANDS.get(args.command) or TARGET_COMMANDS[args.command])(args)
    except GraphoptError as e:
        _clear_progress()
        # One line, whatever the model's names hold (a newline or an ANSI escape in a node name).
        print(f"graphopt: error: {escape(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # stdout closed early (`graphopt passes | head`): no bug, nothing to say
        try:  # and nothing more to flush into the closed pipe at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 141  # as a process the pipe's SIGPIPE ended
    except Exception as e:  # a bug in graphopt, not in the user's input
        if os.environ.get("GRAPHOPT_DEBUG"):
            raise
        _clear_progress()
        print(f"graphopt: internal error: {type(e).__name__}: {escape(str(e))} (GRAPHOPT_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
