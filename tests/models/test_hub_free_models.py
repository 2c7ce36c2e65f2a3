"""Transformer models from the `transformers` library, built from small configs with
random (seeded) weights -- nothing is downloaded from a model hub -- exported with
torch.onnx.export and compiled with graphopt (validate=True), then compared with
onnxruntime on seeded inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest

RTOL, ATOL = 1e-4, 1e-5
SEQ = 16


def _export(module, args, input_names, output_names, tmp_path, dynamo):
    import onnx
    import torch

    path = os.path.join(tmp_path, "model.onnx")
    module.eval()
    with torch.no_grad():
        if dynamo:
            torch.onnx.export(module, args, path, dynamo=True, opset_version=20,
                              input_names=input_names, output_names=output_names,
                              external_data=False)
        else:
            torch.onnx.export(module, args, path, dynamo=False, opset_version=17,
                              input_names=input_names, output_names=output_names)
    model = onnx.load(path, load_external_data=True)
    onnx.checker.check_model(model)
    return path


def _compile_and_compare(path, feeds):
    import onnxruntime as ort

    import graphopt

    compiled = graphopt.compile(path, target="cpu", opt_level=2, validate=True)
    got = compiled.run(feeds)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    ref = dict(zip(names, sess.run(names, feeds)))
    assert list(got) == names
    for name, b in ref.items():
        a = np.asarray(got[name])
        assert a.shape == b.shape and a.dtype == b.dtype, name
        err = np.abs(a.astype(np.float64) - b.astype(np.float64))
        bound = ATOL + RTOL * np.abs(b.astype(np.float64))
        assert np.all(err <= bound), f"{name}: max_abs_err {err.max():.3e}"
    # The same export on both Ascend chips' functional simulators, validated against
    # onnxruntime with the fp16 tolerances of their default precision mode.
    for chip in ("ascend910b", "ascend310p"):
        on_chip = graphopt.compile(path, target=f"ascend-sim:{chip}", validate=True, inputs=feeds)
        assert on_chip.report["validation"]["passed"], chip
    return compiled


def _ids(vocab, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, size=(1, SEQ), dtype=np.int64)


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_transformers_bert(tmp_path, exporter):
    transformers = pytest.importorskip(
        "transformers", reason="transformers not installed: hub-free HF model tests skipped")
    import torch

    cfg = transformers.BertConfig(vocab_size=128, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=64,
                                  max_position_embeddings=64, attn_implementation="eager")
    torch.manual_seed(0)
    bert = transformers.BertModel(cfg, add_pooling_layer=False).eval()

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = _ids(cfg.vocab_size)
    mask = np.ones((1, SEQ), dtype=np.int64)
    mask[:, -4:] = 0
    path = _export(Wrapper(bert), (torch.from_numpy(ids), torch.from_numpy(mask)),
                   ["input_ids", "attention_mask"], ["last_hidden_state"], str(tmp_path),
                   dynamo=exporter == "dynamo")
    _compile_and_compare(path, {"input_ids": ids, "attention_mask": mask})


# GPT-2 only with the dynamo exporter: transformers 5.x builds its causal mask with
# aten::diff, which the legacy TorchScript exporter cannot export.
@pytest.mark.parametrize("exporter", ["dynamo"])
def test_transformers_gpt2(tmp_path, exporter):
    transformers = pytest.importorskip(
        "transformers", reason="transformers not installed: hub-free HF model tests skipped")
    import torch

    cfg = transformers.GPT2Config(vocab_size=128, n_positions=64, n_embd=32, n_layer=2,
                                  n_head=4, use_cache=False, attn_implementation="eager",
                                  bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    gpt2 = transformers.GPT2LMHeadModel(cfg).eval()

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids):
            return self.m(input_ids=input_ids, use_cache=False).logits

    ids = _ids(cfg.vocab_size, seed=1)
    path = _export(Wrapper(gpt2), (torch.from_numpy(ids),), ["input_ids"], ["logits"],
                   str(tmp_path), dynamo=exporter == "dynamo")
    _compile_and_compare(path, {"input_ids": ids})
