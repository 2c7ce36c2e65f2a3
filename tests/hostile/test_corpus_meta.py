"""The corpus itself: big enough, every input kind covered, ids unique, every case with an
expectation a wrong behaviour can miss."""

from __future__ import annotations

from hostile_cases_api import CASES as API_CASES
from hostile_cases_args import CASES as ARG_CASES
from hostile_cases_args import OUTPUT_CASES
from hostile_cases_mlir import CASES as MLIR_CASES
from hostile_cases_npy import CASES as NPY_CASES
from hostile_cases_onnx import CASES as ONNX_CASES
from hostile_cases_pt2 import API_CASES as PT2_API_CASES
from hostile_cases_pt2 import CASES as PT2_CASES
from hostile_harness import Case, unique_ids

ALL = [*ONNX_CASES, *PT2_CASES, *MLIR_CASES, *NPY_CASES, *ARG_CASES, *OUTPUT_CASES, *API_CASES, *PT2_API_CASES]


def test_corpus_size_and_ids():
    assert len(ALL) >= 170, len(ALL)
    assert not unique_ids(ALL), unique_ids(ALL)
    for prefix in ("onnx-", "pt2-", "mlir-", "npy-", "args-", "out-", "run-o-", "dump-dir-", "api-"):
        assert sum(c.id.startswith(prefix) for c in ALL) >= 2, prefix


def test_every_refusal_names_something():
    """A refusal must say what it refuses: each exit-2 case names at least one substring
    (argparse's own usage errors excepted, which have nothing to name)."""
    unnamed = [c.id for c in ALL if getattr(c, "exit", 2) == 2 and getattr(c, "raises", True)
               and not c.names and not c.any_of and c.id not in ("args-no-command", "args-missing-model",
                                                                 "api-compile-empty-modelproto")]
    assert not unnamed, unnamed


def test_valid_cases_write_only_what_they_declare():
    for c in ALL:
        if isinstance(c, Case) and c.exit != 0:
            assert not c.creates and not c.modifies, c.id
