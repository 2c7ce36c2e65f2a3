"""The hostile-input corpus's machinery: a case, a runner, a snapshot, the checks.

A case builds its inputs in a fresh folder and names the command to run there (or, for the
API cases, a call). What every case is held to:

- the exit code it names: 0 where the input is valid, 2 for bad input, never 3 (an internal
  error), never a signal (a crash, the timeout, the memory or file size cap);
- on exit 2, exactly one stderr line, starting ``graphopt: error:``, with every substring
  the case names (the model element, file or option) and no traceback;
- no raw control characters in what graphopt prints (names are escaped);
- every file that was in the folder before is byte-identical after, and nothing appeared
  but what the case says it creates (so no half-written output and no payload effect);
- the limits the case sets on time and memory growth.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ZYGOTE = HERE / "hostile_zygote.py"
GiB = 1 << 30
TIMEOUT = 60  # seconds per CLI case
HASH_MAX = 64 << 20  # larger files (sparse ones) are compared by size and mtime


@dataclass
class Case:
    """One hostile input. ``build(folder)`` writes the inputs into ``folder`` (the command's
    working directory) and returns the arguments after ``graphopt``."""

    id: str
    build: Callable[[Path], list[str]]
    exit: int = 2
    names: Sequence[str] = ()  # each must appear in the error line
    any_of: Sequence[str] = ()  # at least one must appear in the error line
    creates: Sequence[str] = ()  # paths (relative) that must appear on exit 0; nothing else may
    modifies: Sequence[str] = ()  # paths (relative) whose contents may change (an output replaced)
    absent: Sequence[str] = ()  # payload side effects that must not exist afterwards
    setup: Sequence[Sequence[str]] = ()  # graphopt commands run first, each must exit 0
    after_setup: Callable[[Path], None] | None = None  # then this, before the snapshot
    stdin: str | None = None  # a file (relative) fed to stdin
    torch: bool = False
    as_nobody: bool = False  # run as uid 65534 (root ignores folder permissions)
    max_seconds: float | None = None
    max_rss_growth_mb: float | None = None
    timeout: int = TIMEOUT
    note: str = ""


@dataclass
class ApiCase:
    """A call of the Python API: ``build(folder)`` returns a no-argument callable. With
    ``raises``, it must raise GraphoptError (one line, naming ``names``); else return."""

    id: str
    build: Callable[[Path], Callable[[], Any]]
    raises: bool = True
    names: Sequence[str] = ()
    any_of: Sequence[str] = ()
    creates: Sequence[str] = ()
    torch: bool = False
    note: str = ""


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    rss_growth_kb: int | None = None

    def summary(self) -> str:
        first = self.stderr.splitlines()[0] if self.stderr.strip() else "(empty stderr)"
        return f"rc={self.rc} {first[:300]!r}"


# -- running ----------------------------------------------------------------------------------


def _python() -> str:
    return sys.executable


class Runner:
    """Runs CLI cases in children of a fork server (or fresh processes with
    GRAPHOPT_HOSTILE_FRESH=1), each under the time, memory and file size caps."""

    def __init__(self, io_dir: Path, with_torch: bool = False):
        self.io_dir = io_dir
        self.with_torch = with_torch
        self.fresh = os.environ.get("GRAPHOPT_HOSTILE_FRESH") == "1"
        self.count = 0
        self.proc: subprocess.Popen[str] | None = None
        self.mem = 4 * GiB
        if not self.fresh:
            self._start()

    def _start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "GRAPHOPT_DEBUG"}
        args = [_python(), str(ZYGOTE), *(["--torch"] if self.with_torch else [])]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
        assert self.proc.stdout is not None
        ready = json.loads(self.proc.stdout.readline() or "{}")
        if not ready.get("ready"):
            raise RuntimeError("the corpus's fork server did not start (see stderr)")
        # 4 GiB beyond what the server has mapped already (torch maps a lot up front).
        self.mem = max(4 * GiB, ready["vm_size"] + 3 * GiB)

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
            self.proc = None

    def run(self, argv: Sequence[str], cwd: Path, stdin: Path | None = None, timeout: int = TIMEOUT,
            as_nobody: bool = False) -> Result:
        self.count += 1
        out, err = self.io_dir / f"{self.count}.out", self.io_dir / f"{self.count}.err"
        req = {"argv": [str(a) for a in argv], "cwd": str(cwd), "stdin": str(stdin) if stdin else None,
               "stdout": str(out), "stderr": str(err), "timeout": timeout, "mem": self.mem, "as_nobody": as_nobody}
        if self.fresh:
            rc, seconds = self._run_fresh(req)
            growth = None
        else:
            assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the corpus's fork server died")
            reply = json.loads(line)
            rc, seconds, growth = reply["rc"], reply["seconds"], reply["rss_growth_kb"]
        return Result(rc, _read_text(out), _read_text(err), seconds, growth)

    def _run_fresh(self, req: dict[str, Any]) -> tuple[int, float]:
        sys.path.insert(0, str(HERE))
        from hostile_zygote import limits

        env = {k: v for k, v in os.environ.items() if k != "GRAPHOPT_DEBUG"}

        def pre() -> None:
            if req["as_nobody"]:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            limits(req["mem"], req["timeout"])

        t0 = time.monotonic()
        with open(req["stdin"] or os.devnull, "rb") as fin, open(req["stdout"], "wb") as fout, \
                open(req["stderr"], "wb") as ferr:
            proc = subprocess.run([_python(), "-m", "graphopt.cli", *req["argv"]], cwd=req["cwd"], env=env,
                                  stdin=fin, stdout=fout, stderr=ferr, preexec_fn=pre, check=False)
        return proc.returncode, time.monotonic() - t0


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="backslashreplace")


# -- snapshots --------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every path under ``root`` (relative) -> what it is: a file's bytes (a digest; size
    and mtime for large sparse files), a link's target, a folder's mode."""
    found: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", stat.S_IMODE(st.st_mode))
            elif stat.S_ISREG(st.st_mode):
                if st.st_size <= HASH_MAX:
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                else:
                    digest = f"mtime={st.st_mtime_ns}"
                found[rel] = ("file", st.st_size, stat.S_IMODE(st.st_mode), digest)
            else:
                found[rel] = ("other", stat.S_IFMT(st.st_mode))
    return found


def _under(rel: str, roots: Sequence[str]) -> bool:
    return any(rel == r or rel.startswith(r.rstrip("/") + "/") for r in roots)


def snapshot_problems(before: dict[str, tuple[Any, ...]], after: dict[str, tuple[Any, ...]],
                      creates: Sequence[str], modifies: Sequence[str]) -> list[str]:
    problems = []
    for rel, what in before.items():
        if _under(rel, modifies):
            continue
        if rel not in after:
            problems.append(f"{rel} was deleted")
        elif after[rel] != what and not (what[0] == "dir" and _under(rel, creates)):
            problems.append(f"{rel} changed ({what[0]})")
    appeared = [rel for rel in after if rel not in before and not _under(rel, [*creates, *modifies])]
    for rel in appeared:  # a new folder is one problem, not one per file in it
        if not any(rel.startswith(other + "/") for other in appeared):
            problems.append(f"{rel} appeared")
    return problems


# -- checks -----------------------------------------------------------------------------------

_ALLOWED_CONTROLS = {"\n", "\t"}


def control_chars(text: str) -> list[str]:
    """Raw C0/C1 control characters (and DEL) in ``text``, other than newline and tab."""
    return sorted({repr(c) for c in text if (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0) and c not in _ALLOWED_CONTROLS})


def error_line_problems(line: str, names: Sequence[str], any_of: Sequence[str]) -> list[str]:
    problems = []
    for n in names:
        if n not in line:
            problems.append(f"the error does not name {n!r}")
    if any_of and not any(n in line for n in any_of):
        problems.append(f"the error names none of {list(any_of)!r}")
    return problems


def check_cli(case: Case, res: Result, before: dict[str, tuple[Any, ...]], after: dict[str, tuple[Any, ...]],
              folder: Path) -> list[str]:
    problems: list[str] = []
    if res.rc != case.exit:
        what = {3: " (internal error)", -14: " (killed by the timeout)", -25: " (past the file size cap)",
                -9: " (killed)", -11: " (segfault)", -6: " (abort)"}.get(res.rc, "")
        problems.append(f"exit {res.rc}{what}, expected {case.exit}")
    for stream, text in (("stderr", res.stderr), ("stdout", res.stdout)):
        if "Traceback (most recent call last)" in text:
            problems.append(f"a traceback on {stream}")
        bad = control_chars(text)
        if bad:
            problems.append(f"raw control characters on {stream}: {', '.join(bad)}")
    lines = res.stderr.splitlines()
    if case.exit == 2:
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines, expected exactly one")
        if not lines or not lines[0].startswith("graphopt: error:"):
            problems.append("stderr does not start with 'graphopt: error:'")
        line = lines[0] if len(lines) == 1 else res.stderr
        problems += error_line_problems(line, case.names, case.any_of)
    elif "internal error" in res.stderr:
        problems.append("an internal error on stderr")
    if case.exit == 0:
        for rel in case.creates:
            if rel not in after:
                problems.append(f"{rel} was not written")
    problems += snapshot_problems(before, after, case.creates if case.exit == 0 else (), case.modifies if case.exit == 0 else ())
    for rel in case.absent:
        if (folder / rel).exists() or (folder / rel).is_symlink():
            problems.append(f"the payload ran: {rel} exists")
    if case.max_seconds is not None and res.seconds > case.max_seconds:
        problems.append(f"took {res.seconds:.1f} s, more than {case.max_seconds} s")
    if case.max_rss_growth_mb is not None and res.rss_growth_kb is not None and \
            res.rss_growth_kb > case.max_rss_growth_mb * 1024:
        problems.append(f"memory grew by {res.rss_growth_kb / 1024:.0f} MB, more than {case.max_rss_growth_mb} MB")
    return problems


def run_cli_case(case: Case, runner: Runner, folder: Path) -> tuple[Result, list[str]]:
    argv = case.build(folder)
    for cmd in case.setup:
        pre = runner.run(cmd, folder)
        if pre.rc != 0:
            return pre, [f"setup `graphopt {' '.join(cmd)}` failed: {pre.summary()}"]
    if case.after_setup is not None:
        case.after_setup(folder)
    before = snapshot(folder)
    res = runner.run(argv, folder, folder / case.stdin if case.stdin else None, case.timeout, case.as_nobody)
    after = snapshot(folder)
    return res, check_cli(case, res, before, after, folder)


def run_api_case(case: ApiCase, folder: Path) -> tuple[str, list[str]]:
    from graphopt.errors import GraphoptError

    act = case.build(folder)
    before = snapshot(folder)
    problems: list[str] = []
    outcome = "returned"
    try:
        act()
    except GraphoptError as e:
        message = str(e)
        outcome = f"GraphoptError: {message[:300]!r}"
        if not case.raises:
            problems.append("raised GraphoptError, expected to succeed")
        else:
            if "\n" in message or "\r" in message:
                problems.append("the message is more than one line")
            bad = control_chars(message)
            if bad:
                problems.append(f"raw control characters in the message: {', '.join(bad)}")
            problems += error_line_problems(message, case.names, case.any_of)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        outcome = f"{type(e).__name__}: {first[:300]!r}"
        problems.append(f"raised {type(e).__name__}, not GraphoptError")
    else:
        if case.raises:
            problems.append("returned, expected GraphoptError")
    after = snapshot(folder)
    problems += snapshot_problems(before, after, case.creates if not case.raises else (), ())
    return outcome, problems


def unique_ids(cases: Sequence[Case | ApiCase]) -> list[str]:
    ids = [c.id for c in cases]
    return sorted({i for i in ids if ids.count(i) > 1})
