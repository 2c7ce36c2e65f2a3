"""torch.export programs: graphopt.compile(exported_program), graphopt.compile(module,
example_inputs=...), and `graphopt compile model.pt2`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import tmodels
import torch

import graphopt
from graphopt.errors import GraphoptError


def test_compile_exported_program():
    model, x = tmodels.llama(), tmodels.tokens()
    ep = torch.export.export(model, (x,))
    compiled = graphopt.compile(ep, validate=True)
    assert compiled.report["validation"]["reference"] == "torch eager"
    assert compiled.report["weights"]["count"] > 0  # parameters became weights, not inputs
    assert compiled.input_names == ["input_ids"]
    out = compiled.run({"input_ids": x.numpy()})
    with torch.no_grad():
        expected = model(x).logits
    torch.testing.assert_close(torch.from_numpy(list(out.values())[-1]), expected)


def test_compile_module_with_example_inputs():
    model = tmodels.cnn()
    x = torch.randn(1, 3, 16, 16)
    compiled = graphopt.compile(model, example_inputs=(x,), validate=True)
    assert compiled.report["validation"]["passed"]
    assert compiled.report["patterns"] is not None
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(compiled.run([x.numpy()])[compiled.output_names[0]]), model(x))


def test_module_without_example_inputs_is_an_error():
    with pytest.raises(GraphoptError, match="example_inputs"):
        graphopt.compile(tmodels.moe())


def _save_pt2(tmp_path):
    model = tmodels.moe()
    path = tmp_path / "moe.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(2, 5, 32),)), str(path))
    return path


def test_cli_compiles_pt2(tmp_path):
    path = _save_pt2(tmp_path)
    script = os.path.join(os.path.dirname(sys.executable), "graphopt")
    proc = subprocess.run([script, "compile", str(path), "-o", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "validation vs torch eager: PASSED" in proc.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["validation"]["passed"] and report["model"] == str(path)


def test_pt2_with_pickled_payload_is_refused(tmp_path):
    path = _save_pt2(tmp_path)
    bad = tmp_path / "pickled.pt2"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("_weights_config.json"):
                config = json.loads(data)
                next(iter(config["config"].values()))["use_pickle"] = True
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    with pytest.raises(GraphoptError, match="pickled"):
        graphopt.compile(str(bad))


def test_pt2_not_an_archive(tmp_path):
    bad = tmp_path / "junk.pt2"
    bad.write_bytes(b"not a zip")
    with pytest.raises(GraphoptError, match=r"not a torch\.export archive"):
        graphopt.compile(str(bad))


def test_export_with_dynamic_dims_specialises_to_example():
    model = tmodels.moe()
    x = torch.randn(3, 7, 32)
    ep = torch.export.export(model, (x,), dynamic_shapes=({1: torch.export.Dim("seq", min=2, max=64)},))
    compiled = graphopt.compile(ep)
    assert compiled.input_specs[0][0] == (3, 7, 32)
    got = compiled.run([x.numpy()])[compiled.output_names[-1]]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=1.3e-6, atol=1e-5)


def test_program_exported_with_keyword_arguments():
    """A program exported with kwargs (transformers models take input_ids=...): validation
    calls eager with the exported (args, kwargs) structure."""
    model = tmodels.bert()
    program = torch.export.export(model, (), {"input_ids": tmodels.tokens()})
    compiled = graphopt.compile(program, validate=True)
    assert compiled.report["validation"]["passed"]


# A model output container registered with pytree by the exporting process only, as
# transformers registers its ModelOutput classes when imported.
class _Output(dict):
    pass


torch.utils._pytree.register_pytree_node(
    _Output, lambda d: (list(d.values()), list(d.keys())), lambda values, keys: _Output(zip(keys, values)),
    serialized_type_name="tests.torch.test_torch_export._Output")


def test_pt2_whose_output_container_this_process_does_not_know(tmp_path):
    """Every transformers model saved with torch.export.save returns a ModelOutput, which a
    process that has not imported transformers cannot deserialize: graphopt flattens the
    outputs, so the container becomes a tuple of the same leaves."""

    class Model(torch.nn.Module):
        def forward(self, x):
            return _Output(logits=x * 2, hidden=x + 1)

    path = tmp_path / "out.pt2"
    torch.export.save(torch.export.export(Model(), (torch.randn(2, 3),)), path)
    exe = os.path.join(os.path.dirname(sys.executable), "graphopt")
    proc = subprocess.run([exe, "compile", str(path), "-o", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "validation vs torch eager: PASSED" in proc.stdout


def test_exported_program_in_float16_is_judged_by_its_rounding_floor():
    """A .pt2 or ExportedProgram compiled for ascend-sim (force_fp16) is validated against
    the program run eagerly; past the fixed float16 tolerance, against the program run with
    every value rounded to float16 (transformers' ResNet: 0.011 on outputs of 6.8)."""
    torch.manual_seed(0)
    layers = [torch.nn.Linear(64, 64, bias=False) for _ in range(10)]
    for lin in layers:
        torch.nn.init.normal_(lin.weight, std=1.5 / 8)

    class Chain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(layers)

        def forward(self, x):
            for lin in self.layers:
                x = x + torch.tanh(lin(x))
            return x

    program = torch.export.export(Chain().eval(), (torch.randn(16, 64),))
    compiled = graphopt.compile(program, "ascend-sim", validate=True)
    out = compiled.report["validation"]["outputs"][0]
    assert out["passed"] and out.get("judged_by") == "rounding_floor" and out["rounding_floor"] > 0


def test_exported_program_float16_overflow_is_named():
    """DeBERTa's mask (float32's minimum over fully masked rows) through a .pt2: validation
    names the node whose float16 value overflows, as it does for an ONNX model."""
    from graphopt.errors import ValidationError

    class Masked(torch.nn.Module):
        def forward(self, s, m):
            return torch.softmax(s.masked_fill(m, torch.finfo(torch.float32).min), -1) @ s

    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[:, 2:, :] = True
    args = (torch.randn(2, 4, 4), mask)
    program = torch.export.export(Masked(), args)
    feeds = {"s": args[0].numpy(), "m": mask.numpy()}
    with pytest.raises(ValidationError, match=r"float16 overflow at node masked_fill \(aten.masked_fill") as e:
        graphopt.compile(program, "ascend-sim", validate=True, inputs=feeds)
    # What to keep is named as --keep-dtype takes it (the provenance of the imported ops),
    # and keeping it validates.
    keep = re.search(r"or keep (.*) in float32", str(e.value)).group(1).split(", ")
    assert any("where" in k for k in keep) and any("softmax" in k for k in keep), keep
    graphopt.compile(program, "ascend-sim", validate=True, inputs=feeds, target_options={"keep_dtype": keep})


class _TimeShift(torch.nn.Module):
    """RWKV's token shift: nn.ZeroPad2d((0, 0, 1, -1)) pads one step ahead of the sequence and
    crops one behind (a negative pad), then mixes the two; and a pad cropping on both sides."""

    def __init__(self) -> None:
        super().__init__()
        self.shift = torch.nn.ZeroPad2d((0, 0, 1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = x * 0.25 + self.shift(x) * 0.75
        return torch.nn.functional.pad(mixed, (-1, 2, 0, -2), value=1.5)


@pytest.mark.parametrize("target", ["cpu", "ascend-sim"])
def test_negative_padding_crops(target):
    """aten.constant_pad_nd with negative pads was refused; it is a Slice, then a Pad."""
    x = torch.randn(2, 6, 5)
    compiled = graphopt.compile(_TimeShift(), target, example_inputs=(x,),
                                target_options={"precision": "must_keep_origin_dtype"} if target != "cpu" else None)
    with torch.no_grad():
        want = _TimeShift()(x)
    got = compiled.run([x.numpy()])[compiled.output_names[0]]
    assert got.shape == tuple(want.shape) == (2, 4, 6)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)
