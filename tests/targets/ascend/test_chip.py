"""Chip descriptions: both bundled chips load, every number is tagged, malformed files fail in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from graphopt.errors import GraphoptError
from graphopt.targets.ascend.chip import CHIPS_DIR, available_chips, load_chip

TAG = re.compile(r"\[(OFF|OFF data|3P-ini|3P|PRESS|DER|EST)")


def test_bundled_chips() -> None:
    assert {"ascend910b", "ascend310p"} <= set(available_chips())
    b = load_chip()  # the default
    assert b.name == "ascend910b" and b.split and b.cube_cores == 24 and b.vector_cores == 48
    assert b.peak_flops("fp16") / 1e12 == pytest.approx(353.9, abs=0.1)
    assert b.peak_flops("int8") / 1e12 == pytest.approx(707.8, abs=0.1)
    assert b.peak_flops("fp32") / 1e12 == pytest.approx(88.5, abs=0.1)
    p = load_chip("ascend310p")
    assert not p.split and p.cube_cores == 8
    assert "bf16" not in p.macs_per_cycle
    assert p.peak_flops("fp16") / 1e12 == pytest.approx(70.0, abs=0.1)


@pytest.mark.parametrize("name", ["ascend910b", "ascend310p"])
def test_every_number_has_a_source_tag(name: str) -> None:
    chip = load_chip(name)
    assert len(chip.sources) > 50
    for key, src in chip.sources.items():
        assert TAG.search(src), f"{key}: {src!r} has no reference tag"


def test_capabilities_not_names() -> None:
    # The coupled chip has no FixPipe: its cube output goes L0C -> UB (vector) -> GM (MTE3).
    assert [p.pipe for p in load_chip("ascend310p").cube_output_path()] == ["V", "MTE3"]
    assert [p.pipe for p in load_chip("ascend910b").cube_output_path()] == ["FIX"]


def _write(tmp_path: Path, edit: tuple[str, str]) -> Path:
    text = (CHIPS_DIR / "ascend910b.toml").read_text()
    old, new = edit
    assert old in text
    path = tmp_path / "my_chip.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (('l0a = { value = 65536, src = "[OFF] catlass, AscendNPU-IR: 64 KB" }\n', ""), "buffers.l0a"),
        (("l0a = { value = 65536,", "l0a = { value = 512,"), "buffers.l0a"),
        (("l0c = { value = 131072,", "l0c = { value = 1024,"), "buffers.l0c"),
        (("l1 = { value = 524288,", "l1 = { value = 1024,"), "buffers.l1"),
        (("cube_cores = { value = 24, src", "cube_cores = { value = 24, xsrc"), "chip.cube_cores"),
        (("fixed_cycles = { value = 720,", "fixed_cycles = { value = -1,"), "dma.fixed_cycles"),
        (("[copy.GM_L1]", "[copy.GM_L1_renamed]"), "copy.GM_L1"),
        (("fp32 = { value = 8, src", "fp64 = { value = 8, src"), "cube.k0.fp32"),
        (("exp_fp32 = { value = 31,", "exp_fp3 = { value = 31,"), "vector.fixed_cycles.exp_fp3"),
        (("fixed_cycles = { value = 1180,", "fixed_cycles = { value = -5,"), "copy.L0C_GM.fixed_cycles"),
    ],
)
def test_malformed_chip_one_line_error(tmp_path: Path, edit: tuple[str, str], field: str) -> None:
    path = _write(tmp_path, edit)
    with pytest.raises(GraphoptError) as info:
        load_chip(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and f"'{field}'" in message


def test_bare_number_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, ('ub = { value = 196608, src = "[OFF] Vector逻辑架构.md: 16 bank groups x 3 x 4 KB" }', "ub = 196608"))
    with pytest.raises(GraphoptError, match=r"'buffers.ub' needs a value and a source tag"):
        load_chip(str(path))


def test_unknown_chip_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(GraphoptError, match=r"unknown chip 'nope'.*ascend310p"):
        load_chip("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("[chip\n")
    with pytest.raises(GraphoptError, match="not valid TOML"):
        load_chip(str(bad))


def test_user_chip_file_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, ("cube_cores = { value = 24,", "cube_cores = { value = 20,"))
    chip = load_chip(str(path))
    assert chip.cube_cores == 20 and chip.source_file == str(path.resolve())
