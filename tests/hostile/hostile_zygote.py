"""The corpus's fork server: imports graphopt (and torch, with --torch) once, then runs each
CLI case in a forked child, as `python -m graphopt.cli` would run it, under limits.

Protocol: one JSON request per line on stdin ({argv, cwd, stdin, stdout, stderr, timeout,
mem, as_nobody}), one JSON reply per line on stdout ({rc, seconds, rss_growth_kb}). ``rc``
is the exit code, or minus the signal that ended the child (SIGALRM: the timeout; SIGXFSZ:
it wrote past the file size cap). A forked child costs milliseconds where a fresh
interpreter costs 1.5 s (5 s with torch): 200 fresh processes would not fit the corpus's
time budget. GRAPHOPT_HOSTILE_FRESH=1 runs fresh processes instead (hostile_harness.py).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
import traceback

FILE_SIZE_CAP = 512 << 20  # no case writes more; a runaway writer gets SIGXFSZ, not a full disk


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def limits(mem: int, timeout: int) -> None:
    """The caps every case runs under (also the fresh mode's preexec_fn)."""
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_CAP, FILE_SIZE_CAP))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (timeout + 5, timeout + 10))
    signal.alarm(timeout)  # SIGALRM's default action ends the child, even one blocked in open()


def _child(req: dict) -> None:
    fd_in = os.open(req["stdin"] or os.devnull, os.O_RDONLY)
    fd_out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    fd_err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for fd, std in ((fd_in, 0), (fd_out, 1), (fd_err, 2)):
        os.dup2(fd, std)
        os.close(fd)
    os.chdir(req["cwd"])
    if req.get("as_nobody"):
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    limits(req["mem"], req["timeout"])
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    sys.argv = ["graphopt", *req["argv"]]
    os.environ.pop("GRAPHOPT_DEBUG", None)
    rc = 1
    try:
        from graphopt.cli import main

        rc = main(req["argv"])
    except SystemExit as e:  # argparse, as `python -m graphopt.cli` would exit
        if e.code is None:
            rc = 0
        elif isinstance(e.code, int):
            rc = e.code
        else:
            print(e.code, file=sys.stderr)
            rc = 1
    except BaseException:  # what the interpreter would print for an uncaught exception
        traceback.print_exc()
        rc = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(rc & 0xFF if isinstance(rc, int) else 1)


def _preload(with_torch: bool) -> None:
    import numpy as np
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401  (imported, never run here: sessions start in the children)
    from onnx import TensorProto, helper

    import graphopt
    import graphopt.cli
    import graphopt.validate

    graphopt.cli.build_parser()  # its flags come from every target's declared options: loads the target classes

    # One compile without validation loads the lazily imported passes, ops and cpu target.
    # Only a warm-up: if graphopt cannot compile it, each case will say so.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "x"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "warm", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    try:
        graphopt.compile(model).run({"x": np.ones((2, 3), np.float32)})
    except Exception as e:
        print(f"hostile_zygote: the warm-up compile failed ({type(e).__name__}: {e})", file=sys.stderr)
    if with_torch:
        import torch
        import torch._export.serde.serialize
        import torch.export  # noqa: F401

        import graphopt.frontends.fx.capture


def main() -> None:
    with_torch = "--torch" in sys.argv
    proto_in, proto_out = sys.stdin, sys.stdout
    sys.stdout = sys.stderr  # nothing but replies on the protocol pipe
    _preload(with_torch)
    base_mem = _vm_size()
    proto_out.write(json.dumps({"ready": True, "vm_size": base_mem}) + "\n")
    proto_out.flush()
    for line in proto_in:
        req = json.loads(line)
        base_rss = _rss_kb()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            try:
                _child(req)
            finally:
                os._exit(120)
        _, status, usage = os.wait4(pid, 0)
        reply = {
            "rc": os.waitstatus_to_exitcode(status),
            "seconds": time.monotonic() - t0,
            "rss_growth_kb": max(0, usage.ru_maxrss - base_rss),
        }
        proto_out.write(json.dumps(reply) + "\n")
        proto_out.flush()


if __name__ == "__main__":
    main()
