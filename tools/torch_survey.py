"""torch.compile(backend="graphopt") across transformers architectures, against eager.

Each architecture is built from a tiny config with random weights (nothing is downloaded),
run eagerly and through graphopt on the cpu target; inference compares every floating
output with torch's float32 tolerances (assert_close's defaults), training compares every
parameter's gradient of a sum-of-squares loss, relative to the largest gradient. Dropout
and drop-path probabilities are set to 0 for training (random numbers are refused).
Reproduces the survey in the torch issue's note; tests/torch holds the cases that need it.

    .venv/bin/python tools/torch_survey.py [--train | --export | --dynamic] [--attn eager|sdpa] [--target ascend-sim] [NAME ...]
"""

from __future__ import annotations

import argparse
import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch

V = 100  # vocabulary


def _ids(batch: int = 2, seq: int = 8) -> torch.Tensor:
    return torch.randint(0, V, (batch, seq), generator=torch.Generator().manual_seed(0))


def _image() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def models(attn: str) -> dict[str, Callable[[], tuple[torch.nn.Module, dict[str, Any]]]]:
    import transformers as T

    small = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
             "vocab_size": V, "max_position_embeddings": 64, "attn_implementation": attn}

    def lm(config: str, model: str, **kw: Any) -> Callable[[], tuple[torch.nn.Module, dict[str, Any]]]:
        return lambda: (getattr(T, model)(getattr(T, config)(**{**small, **kw})), {"input_ids": _ids()})

    causal = {"num_key_value_heads": 2, "use_cache": False}
    moe = {**causal, "experts_implementation": "eager"}
    return {
        "bert": lm("BertConfig", "BertModel"),
        "roberta": lm("RobertaConfig", "RobertaModel"),
        "albert": lm("AlbertConfig", "AlbertModel", embedding_size=32),
        "electra": lm("ElectraConfig", "ElectraModel", embedding_size=32),
        "distilbert": lambda: (T.DistilBertModel(T.DistilBertConfig(
            dim=64, n_layers=2, n_heads=4, hidden_dim=128, vocab_size=V, max_position_embeddings=64,
            attn_implementation=attn)), {"input_ids": _ids()}),
        "deberta-v2": lm("DebertaV2Config", "DebertaV2Model", attn_implementation="eager"),  # no sdpa
        "clip-text": lm("CLIPTextConfig", "CLIPTextModel"),
        "gpt2": lambda: (T.GPT2LMHeadModel(T.GPT2Config(
            n_embd=64, n_layer=2, n_head=4, vocab_size=V, n_positions=64, use_cache=False,
            attn_implementation=attn)), {"input_ids": _ids()}),
        "llama": lm("LlamaConfig", "LlamaForCausalLM", **causal),
        "mistral": lm("MistralConfig", "MistralForCausalLM", **causal),
        "qwen2": lm("Qwen2Config", "Qwen2ForCausalLM", **causal),
        "gemma": lm("GemmaConfig", "GemmaForCausalLM", head_dim=16, **causal),
        "phi": lm("PhiConfig", "PhiForCausalLM", use_cache=False),
        "gpt-neox": lm("GPTNeoXConfig", "GPTNeoXForCausalLM", use_cache=False),
        "opt": lambda: (T.OPTForCausalLM(T.OPTConfig(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, ffn_dim=128, vocab_size=V,
            max_position_embeddings=64, word_embed_proj_dim=64, use_cache=False, attn_implementation=attn)),
            {"input_ids": _ids()}),
        "mixtral": lm("MixtralConfig", "MixtralForCausalLM", num_local_experts=4, num_experts_per_tok=2, **moe),
        "qwen2-moe": lm("Qwen2MoeConfig", "Qwen2MoeForCausalLM", num_experts=4, num_experts_per_tok=2,
                        moe_intermediate_size=32, shared_expert_intermediate_size=64, **moe),
        "t5": lambda: (T.T5Model(T.T5Config(
            d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, vocab_size=V, use_cache=False,
            attn_implementation=attn)), {"input_ids": _ids(), "decoder_input_ids": _ids(seq=5)}),
        "bart": lambda: (T.BartModel(T.BartConfig(
            d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
            encoder_ffn_dim=128, decoder_ffn_dim=128, vocab_size=V, max_position_embeddings=64, use_cache=False,
            attn_implementation=attn)), {"input_ids": _ids()}),
        "whisper-encoder": lambda: (T.WhisperModel(T.WhisperConfig(
            d_model=64, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
            encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=16, max_source_positions=8,
            max_target_positions=16, vocab_size=V, pad_token_id=0, bos_token_id=1, eos_token_id=2,
            decoder_start_token_id=1, use_cache=False, attn_implementation=attn)).get_encoder(),
            {"input_features": torch.randn(2, 16, 16, generator=torch.Generator().manual_seed(0))}),
        "vit": lambda: (T.ViTModel(T.ViTConfig(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, image_size=32,
            patch_size=8, attn_implementation=attn)), {"pixel_values": _image()}),
        "swin": lambda: (T.SwinModel(T.SwinConfig(
            image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4)),
            {"pixel_values": _image()}),
        "convnext": lambda: (T.ConvNextModel(T.ConvNextConfig(
            hidden_sizes=[16, 32], depths=[1, 1], num_stages=2, image_size=32)), {"pixel_values": _image()}),
        "resnet": lambda: (T.ResNetModel(T.ResNetConfig(
            hidden_sizes=[16, 32], depths=[1, 1], embedding_size=16)), {"pixel_values": _image()}),
    }


def _floats(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out] if out.dtype.is_floating_point else []
    if hasattr(out, "to_tuple"):
        out = out.to_tuple()
    if isinstance(out, list | tuple):
        return [t for x in out for t in _floats(x)]
    return []


def inference(model: torch.nn.Module, kwargs: dict[str, Any], target: str = "cpu") -> str:
    model.eval()
    # ascend-sim computes in fp16: each graph is validated against eager with its tolerances.
    options = {"target": target, "validate": target != "cpu"}
    with torch.no_grad():
        expected = _floats(model(**kwargs))
        got = _floats(torch.compile(model, backend="graphopt", options=options)(**kwargs))
    if target == "cpu":
        torch.testing.assert_close(got, expected)
    return f"max abs err {max((a - b).abs().max().item() for a, b in zip(got, expected)):.1e}"


def dynamic(model: torch.nn.Module, kwargs: dict[str, Any], target: str = "cpu") -> str:
    """torch.compile(dynamic=True), called with the inputs, then with their token sequences
    2 shorter (images and audio features keep their size): every call against eager."""
    model.eval()
    compiled = torch.compile(model, backend="graphopt", dynamic=True, options={"target": target})
    worst = 0.0
    for cut in (0, 2):
        kw = {k: v[..., : v.shape[-1] - cut] if cut and not v.is_floating_point() else v for k, v in kwargs.items()}
        with torch.no_grad():
            expected, got = _floats(model(**kw)), _floats(compiled(**kw))
        torch.testing.assert_close(got, expected)
        worst = max(worst, *((a - b).abs().max().item() for a, b in zip(got, expected)))
    return f"max abs err {worst:.1e} over two shapes"


def exported(model: torch.nn.Module, kwargs: dict[str, Any], target: str = "cpu") -> str:
    """torch.export, then graphopt.compile(program, validate=True): the program's outputs
    against eager on seeded inputs, with the target's tolerances."""
    import graphopt

    program = torch.export.export(model.eval(), (), kwargs)
    compiled = graphopt.compile(program, target=target, validate=True)
    worst = max(o["max_abs_err"] for o in compiled.report["validation"]["outputs"])
    return f"max abs err {worst:.1e} (validated)"


def training(model: torch.nn.Module, kwargs: dict[str, Any]) -> str:
    model.train()
    for m in model.modules():
        for key, value in list(vars(m).items()):
            if isinstance(value, float) and (key == "p" or "dropout" in key or "drop_prob" in key):
                setattr(m, key, 0.0)
    twin = copy.deepcopy(model)
    sum(t.float().pow(2).mean() for t in _floats(model(**kwargs))).backward()
    sum(t.float().pow(2).mean() for t in _floats(torch.compile(twin, backend="graphopt")(**kwargs))).backward()
    grads = [(n, p.grad, q.grad) for (n, p), (_, q) in zip(model.named_parameters(), twin.named_parameters())]
    missing = [n for n, a, b in grads if (a is None) != (b is None)]
    if missing:
        raise AssertionError(f"gradient of {missing[0]} missing on one side")
    scale = max(a.abs().max().item() for _, a, _ in grads if a is not None)
    worst, name = max(((b - a).abs().max().item() / scale, n) for n, a, b in grads if a is not None)
    if worst > 1e-4:
        raise AssertionError(f"gradient of {name} differs by {worst:.1e} of the largest gradient")
    return f"worst gradient difference {worst:.1e} of the largest"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--train", action="store_true", help="compare gradients instead of outputs")
    ap.add_argument("--export", action="store_true", help="torch.export and graphopt.compile(program) instead of torch.compile")
    ap.add_argument("--dynamic", action="store_true", help="torch.compile(dynamic=True), called with two input shapes")
    ap.add_argument("--attn", default="eager", choices=["eager", "sdpa"], help="transformers attention implementation")
    ap.add_argument("--target", default="cpu", choices=["cpu", "ascend-sim"],
                    help="ascend-sim: inference in its functional simulator, each graph validated with fp16 tolerances")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    table = models(args.attn)
    failed = 0
    for name in args.names or list(table):
        torch.manual_seed(0)
        torch._dynamo.reset()
        model, kwargs = table[name]()
        try:
            if args.train:
                verdict = training(model, kwargs)
            elif args.export:
                verdict = exported(model, kwargs, args.target)
            elif args.dynamic:
                verdict = dynamic(model, kwargs, args.target)
            else:
                verdict = inference(model, kwargs, args.target)
            verdict = "ok    " + verdict
        except Exception as e:  # a survey: report and go on
            failed += 1
            verdict = f"FAIL  {type(e).__name__}: {' '.join(str(e).split())[:300]}"
        print(f"{name:16s} {verdict}", flush=True)
    return int(failed > 0)


if __name__ == "__main__":
    raise SystemExit(main())
