"""The hostile-input corpus: fork servers for the CLI cases (one without torch, one with),
and a folder per case that nobody but the case writes into."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "unit"))  # gp_models


@pytest.fixture(scope="session")
def light_runner(tmp_path_factory):
    from hostile_harness import Runner

    runner = Runner(tmp_path_factory.mktemp("hostile-io"))
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def torch_runner(tmp_path_factory):
    pytest.importorskip("torch")
    from hostile_harness import Runner

    runner = Runner(tmp_path_factory.mktemp("hostile-io-torch"), with_torch=True)
    yield runner
    runner.close()


def _writable(path: Path) -> None:
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            p = Path(dirpath) / d
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IRWXU)


@pytest.fixture
def case_folder(request, tmp_path):
    """The case's working folder. A case run as another user gets one in /tmp that the
    user can reach and write in (pytest's own are private to their owner)."""
    case = request.node.callspec.params.get("case")
    if getattr(case, "as_nobody", False):
        folder = Path(tempfile.mkdtemp(prefix="graphopt-hostile-"))
        folder.chmod(0o777)
        yield folder
        _writable(folder)
        shutil.rmtree(folder, ignore_errors=True)
    else:
        folder = tmp_path / "case"
        folder.mkdir()
        yield folder
        _writable(folder)
