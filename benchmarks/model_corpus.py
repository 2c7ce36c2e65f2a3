"""A corpus of real model architectures through graphopt: breadth on ascend-sim, measured.

    .venv/bin/python benchmarks/model_corpus.py                  # everything; writes docs/model-corpus.md
    .venv/bin/python benchmarks/model_corpus.py --quick          # the subset tests/models runs
    .venv/bin/python benchmarks/model_corpus.py --only hf/bert@dynamo --only zoo/resnet50
    .venv/bin/python benchmarks/model_corpus.py --list           # the models, one a line

Models (all built from code with seeded random weights; nothing is downloaded):

- ``zoo/<name>``: every model of onnx's own light model zoo
  (``onnx/backend/test/data/light/*.onnx``, the nine CNNs ``data/real`` points at). Their
  weights are ConstantOfShape splats of 0.02 (every class scores the same and activations
  reach 1e20), so each float weight is replaced by a seeded random initializer: He normal
  (std sqrt(2 / fan_in)) for Conv and Gemm weights, small uniform biases, scales near 1,
  and every BatchNormalization's mean and variance set to the per-channel statistics of
  its own input, measured by onnxruntime on a seeded input (one run of the model with
  each BatchNormalization normalising by its input's statistics, which are what it then
  stores), so activations stay O(1). The logits (the input of the final Softmax) are an
  output too. ``zoo/<name>@64`` is the same model on a 64x64 image where it allows one.
- ``hf/<arch>@ts`` and ``hf/<arch>@dynamo``: transformers architectures from tiny configs
  (tools/torch_survey.py's 24, plus vision, speech, encoder-decoder, decoder and encoder
  families), exported by ``torch.onnx.export(dynamo=False)`` (TorchScript) and
  ``torch.onnx.export(dynamo=True)``; an exporter's failure is recorded as such.
  ``hf/<arch>@sdpa23``: the architectures of ``SDPA_ARCHS`` with transformers' default SDPA
  attention, exported by the dynamo exporter at opset 23 (ONNX Attention, boolean masks). Inputs
  are the module's own (token ids across the vocabulary, a mask, pixels, audio), saved
  beside the ONNX file and given to validation.
- ``timm/<name>@ts`` and ``timm/<name>@dynamo``: one architecture of each of timm's model
  families (``TIMM_MODELS``, its smallest variant), built by ``timm.create_model`` with random
  weights (100 classes, BatchNorm statistics calibrated as for transformers' models) on one
  image of the size its config names, exported by both exporters. Only when timm is
  installed (``pip install --no-deps timm pillow``; not a dependency of graphopt): timm
  imports torchvision for its data pipeline alone, and PyPI's torchvision does not load beside
  this machine's CPU build of torch, so without a torchvision the harness gives timm an empty
  stand-in for it (``_import_timm``); no model constructor uses it.
- ``tc/<arch>``: torch.compile(backend="graphopt") of the survey's modules, validated
  against eager per graph (the backend's ``validate`` option) and against eager's outputs.
- ``pt/<arch>``: the survey's modules exported by ``torch.export.export`` as a user calls it
  (keyword inputs, the model's own output container) and saved with ``torch.export.save``,
  compiled from the .pt2 file by graphopt's own loader and validated against the loaded
  program run eagerly.

Each model x target row (targets ``cpu``, ``ascend-sim`` (910B), ``ascend-sim:ascend310p``;
precision ``force_fp16`` unless ``--precision``) says whether it compiles (or the one-line
error), whether it validates against onnxruntime (worst absolute error, lowest cosine;
on an ascend target that fails, whether ``must_keep_origin_dtype`` validates: fp16 numerics
or a wrong lowering), the TransData count and bytes, the AI CPU op types, simulated time
and MFU, and the compile time. Every build and every row runs in its own subprocess with
a timeout, so a crash or a hang is a row, not the end of the run. Results are merged into
``<cache>/results.json`` (keyed by model and target), from which docs/model-corpus.md is
written (not with --quick or --no-doc).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("cpu", "ascend-sim", "ascend-sim:ascend310p")
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "graphopt-model-corpus"
DOC = ROOT / "docs" / "model-corpus.md"
EXPORTERS = ("ts", "dynamo", "sdpa23")
# Architectures also exported as users do by default: transformers' SDPA attention (not the
# eager one the tiny configs set), by the dynamo exporter at opset 23, which writes it as ONNX
# Attention with a boolean mask.
SDPA_ARCHS = frozenset("""llama bert gpt2 qwen2 qwen3 mistral phi3 gemma olmo stablelm starcoder2 vit dinov2
siglip-vision clip-text whisper-encoder t5 bart""".split())

# ---------------------------------------------------------------------------------------
# onnx's light model zoo, with random weights


def zoo_dir() -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def zoo_names() -> list[str]:
    return sorted(p.stem.removeprefix("light_") for p in zoo_dir().glob("light_*.onnx"))


def _consumers(graph: Any) -> dict[str, list[tuple[Any, int]]]:
    uses: dict[str, list[tuple[Any, int]]] = defaultdict(list)
    for node in graph.node:
        for k, name in enumerate(node.input):
            uses[name].append((node, k))
    return uses


def _role(name: str, uses: dict[str, list[tuple[Any, int]]]) -> tuple[str, int]:
    """What a weight is, from its first consumer (through an Unsqueeze): ("Conv", 1) ..."""
    for node, k in uses.get(name, []):
        if node.op_type == "Unsqueeze" and k == 0:
            inner = _role(node.output[0], uses)
            if inner[0] != "?":
                return inner
        return node.op_type, k
    return "?", -1


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def randomize_zoo(model: Any, seed: int = 0, size: int | None = None) -> Any:
    """The light zoo ``model`` with seeded random weights, calibrated BatchNormalization
    statistics and its logits as an output (see the module docstring); ``size`` changes
    the image's height and width."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    uses = _consumers(g)
    weights: dict[str, np.ndarray] = {}  # every float parameter, by name
    splats = []
    for node in g.node:
        if node.op_type == "ConstantOfShape" and node.input and node.input[0] in inits:
            value = numpy_helper.to_array(_attr(node, "value", None))
            if value.dtype == np.float32:
                weights[node.output[0]] = np.zeros(numpy_helper.to_array(inits[node.input[0]]), np.float32)
                splats.append(node)
    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT and t.name in uses:
            weights[t.name] = numpy_helper.to_array(t)
    bn_stats: list[tuple[Any, str, str]] = []  # (node, mean name, var name)
    for name, w in weights.items():
        op, k = _role(name, uses)
        if op == "Conv" and k == 1:
            w = rng.standard_normal(w.shape) * math.sqrt(2.0 / max(1, math.prod(w.shape[1:])))
        elif op == "Gemm" and k == 1:
            node = uses[name][0][0]
            fan_in = w.shape[1] if _attr(node, "transB", 0) else w.shape[0]
            w = rng.standard_normal(w.shape) * math.sqrt(2.0 / fan_in)
        elif (op == "BatchNormalization" and k == 1) or op == "Mul":
            w = rng.uniform(0.5, 1.5, w.shape)
        elif op == "BatchNormalization" and k == 2:
            w = rng.uniform(*BN_BETA, w.shape)
        elif op == "BatchNormalization" and k in (3, 4):
            w = np.full(w.shape, 0.0 if k == 3 else 1.0)  # measured below
        else:  # biases and whatever else
            w = rng.uniform(-0.1, 0.1, w.shape)
        weights[name] = np.asarray(w, np.float32)
    for node in g.node:
        if node.op_type == "BatchNormalization":
            bn_stats.append((node, node.input[3], node.input[4]))
    # The splats become initializers; their shape tensors go unless something else reads them.
    for node in splats:
        g.node.remove(node)
    still_read = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name not in weights and t.name in still_read | {o.name for o in g.output}]
    del g.initializer[:]
    g.initializer.extend(keep)
    g.initializer.extend(numpy_helper.from_array(w, name) for name, w in weights.items())
    data = [i for i in g.input if i.name not in inits]  # IR 3 listed every initializer as an input too
    del g.input[:]
    g.input.extend(data)
    model.ir_version = max(model.ir_version, 4)  # from IR 4 on, initializers need not be inputs
    if size is not None:
        dims = g.input[0].type.tensor_type.shape.dim
        dims[2].dim_value = dims[3].dim_value = size
    # Logits: the input of a final Softmax is an output too.
    outputs = {o.name for o in g.output}
    for node in g.node:
        if node.op_type == "Softmax" and node.output[0] in outputs and node.input[0] not in outputs:
            g.output.append(helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, None))
    model = onnx.shape_inference.infer_shapes(model)
    _calibrate_batchnorm(model, bn_stats, seed + 1)
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    return model


def _calibrate_batchnorm(model: Any, bn_stats: list[tuple[Any, str, str]], seed: int) -> None:
    """Set every BatchNormalization's mean and variance to its input's per-channel
    statistics on a seeded image: one onnxruntime run of a copy where each BN normalises by
    its input's own statistics (so each layer sees what it will see once they are stored),
    with those statistics as outputs."""
    if not bn_stats:
        return
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    calib = onnx.ModelProto.FromString(model.SerializeToString())
    g = calib.graph
    weights = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    rank = {vi.name: len(vi.type.tensor_type.shape.dim) for vi in [*g.value_info, *g.input, *g.output]}
    new_nodes, outs = [], []
    for node in g.node:
        if node.op_type != "BatchNormalization":
            new_nodes.append(node)
            continue
        x, scale, bias = node.input[0], node.input[1], node.input[2]
        r = rank.get(x, 4)
        axes = [0, *range(2, r)]
        eps = float(_attr(node, "epsilon", 1e-5))
        p = f"__calib_{len(outs)}"
        bshape = (-1, *([1] * (r - 2)))
        for name, src in ((p + "s", scale), (p + "b", bias)):
            g.initializer.append(numpy_helper.from_array(weights[src].reshape(bshape).astype(np.float32), name))
        g.initializer.append(numpy_helper.from_array(np.array([eps], np.float32), p + "eps"))
        new_nodes += [
            helper.make_node("ReduceMean", [x], [p + "mean"], axes=axes, keepdims=1),
            helper.make_node("Sub", [x, p + "mean"], [p + "d"]),
            helper.make_node("Mul", [p + "d", p + "d"], [p + "d2"]),
            helper.make_node("ReduceMean", [p + "d2"], [p + "var"], axes=axes, keepdims=1),
            helper.make_node("Add", [p + "var", p + "eps"], [p + "ve"]),
            helper.make_node("Sqrt", [p + "ve"], [p + "sd"]),
            helper.make_node("Div", [p + "d", p + "sd"], [p + "n"]),
            helper.make_node("Mul", [p + "n", p + "s"], [p + "ns"]),
            helper.make_node("Add", [p + "ns", p + "b"], [node.output[0]]),
        ]
        outs.append((node, p + "mean", p + "var"))
    del g.node[:]
    g.node.extend(new_nodes)
    del g.output[:]
    for _, m, v in outs:
        g.output.extend([helper.make_empty_tensor_value_info(m), helper.make_empty_tensor_value_info(v)])
    data = g.input[0]
    shape = [d.dim_value for d in data.type.tensor_type.shape.dim]
    x = np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.log_severity_level = 3  # the replaced BatchNormalizations' statistics are unused here
    sess = ort.InferenceSession(calib.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    stats = sess.run(None, {data.name: x})
    inits = {t.name: t for t in model.graph.initializer}
    for k, (node, mean_name, var_name) in enumerate(bn_stats):
        var = stats[2 * k + 1]
        var = np.maximum(var, VAR_FLOOR * var.mean())  # as calibrate_batchnorm: no channel amplified
        for name, value in ((mean_name, stats[2 * k]), (var_name, var)):
            inits[name].CopyFrom(numpy_helper.from_array(value.reshape(-1).astype(np.float32), name))


# ---------------------------------------------------------------------------------------
# transformers architectures (tiny configs, random weights)

V = 100  # vocabulary, as tools/torch_survey.py
SEQ = 8


def _survey() -> Any:
    sys.path.insert(0, str(ROOT / "tools"))
    import torch_survey

    return torch_survey


def _text(batch: int = 2, seq: int = SEQ) -> Any:
    import torch

    return torch.randint(0, V, (batch, seq), generator=torch.Generator().manual_seed(0))


def _pixels(size: int = 32, batch: int = 2) -> Any:
    import torch

    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def _audio(samples: int = 1600, batch: int = 2) -> Any:
    import torch

    return torch.randn(batch, samples, generator=torch.Generator().manual_seed(0))


Builder = Callable[[], tuple[Any, dict[str, Any]]]
VAR_FLOOR = 0.01  # of the layer's mean variance: see calibrate_batchnorm
# A BatchNormalization's shift: positive, so that the ReLU after it passes most values. Centred
# exactly (shift 0), a deep random ReLU network is chaotic: each layer grew a relative
# perturbation of the input by about 1.2, so zoo/resnet50's logits moved by 3 % for a 1e-3
# change of the input, and fp16 rounding alone failed validation. Shifted by U(0.5, 1), they
# move by 0.05 %, as a trained network's do.
BN_BETA = (0.5, 1.0)


def extra_models() -> dict[str, tuple[str, Builder]]:
    """name -> (family, builder) beyond the survey's 24: vision, dense prediction (detection,
    segmentation, depth), speech, encoder-decoder, decoder and encoder families, each from a
    config small enough to compile in seconds."""
    import transformers as T

    attn = {"attn_implementation": "eager"}
    small = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128, **attn}
    text = {**small, "vocab_size": V, "max_position_embeddings": 64}
    causal = {**text, "use_cache": False}
    vit = {**small, "image_size": 32, "patch_size": 8}
    audio = {**small, "conv_dim": (32, 32), "conv_stride": (5, 2), "conv_kernel": (10, 3),
             "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}
    seq2seq = {"d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
               "decoder_attention_heads": 4, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128, "vocab_size": V,
               "max_position_embeddings": 64, "use_cache": False, "pad_token_id": 1, "decoder_start_token_id": 2, **attn}

    def make(model: str, config: str, inputs: Callable[[], dict[str, Any]], **kw: Any) -> Builder:
        return lambda: (getattr(T, model)(getattr(T, config)(**kw)), inputs())

    def pix(size: int = 32) -> Callable[[], dict[str, Any]]:
        return lambda: {"pixel_values": _pixels(size)}

    def ids() -> dict[str, Any]:
        return {"input_ids": _text()}

    def pair() -> dict[str, Any]:
        return {"input_ids": _text(), "decoder_input_ids": _text(seq=5)}

    def wav() -> dict[str, Any]:
        return {"input_values": _audio()}

    m: dict[str, tuple[str, Builder]] = {
        # vision
        "mobilenet-v1": ("vision", make("MobileNetV1Model", "MobileNetV1Config", pix(), image_size=32, depth_multiplier=0.25)),
        "mobilenet-v2": ("vision", make("MobileNetV2Model", "MobileNetV2Config", pix(), image_size=32, depth_multiplier=0.25)),
        "efficientnet": ("vision", make("EfficientNetModel", "EfficientNetConfig", pix(), image_size=32,
                                        width_coefficient=0.25, depth_coefficient=0.25, hidden_dim=320)),
        "regnet": ("vision", make("RegNetModel", "RegNetConfig", pix(), embedding_size=16, hidden_sizes=[16, 32],
                                  depths=[1, 1], groups_width=8)),
        "deit": ("vision", make("DeiTModel", "DeiTConfig", pix(), **vit)),
        "beit": ("vision", make("BeitModel", "BeitConfig", pix(), use_relative_position_bias=True, **vit)),
        "data2vec-vision": ("vision", make("Data2VecVisionModel", "Data2VecVisionConfig", pix(), **vit)),
        "dinov2": ("vision", make("Dinov2Model", "Dinov2Config", pix(), mlp_ratio=2, **{k: v for k, v in vit.items() if k != "intermediate_size"})),
        "clip-vision": ("vision", make("CLIPVisionModel", "CLIPVisionConfig", pix(), **vit)),
        "siglip-vision": ("vision", make("SiglipVisionModel", "SiglipVisionConfig", pix(), **vit)),
        "levit": ("vision", make("LevitModel", "LevitConfig", pix(64), image_size=64, hidden_sizes=[32, 48, 64],
                                 num_attention_heads=[1, 2, 2], depths=[1, 1, 1], key_dim=[8, 8, 8])),
        "poolformer": ("vision", make("PoolFormerModel", "PoolFormerConfig", pix(), hidden_sizes=[16, 32, 48, 64],
                                      depths=[1, 1, 1, 1])),
        "mobilevit": ("vision", make("MobileViTModel", "MobileViTConfig", pix(64), image_size=64, hidden_sizes=[32, 48, 64],
                                     neck_hidden_sizes=[8, 16, 24, 32, 40, 48, 64])),
        "mobilevit-v2": ("vision", make("MobileViTV2Model", "MobileViTV2Config", pix(64), image_size=64, width_multiplier=0.25)),
        "convnext-v2": ("vision", make("ConvNextV2Model", "ConvNextV2Config", pix(), hidden_sizes=[16, 32], depths=[1, 1],
                                       num_stages=2, image_size=32)),
        "swin-v2": ("vision", make("Swinv2Model", "Swinv2Config", pix(), image_size=32, patch_size=4, embed_dim=16,
                                   depths=[1, 1], num_heads=[2, 2], window_size=4)),
        "focalnet": ("vision", make("FocalNetModel", "FocalNetConfig", pix(), image_size=32, patch_size=4, embed_dim=16,
                                    depths=[1, 1])),
        "bit": ("vision", make("BitModel", "BitConfig", pix(), embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1],
                                num_groups=8)),
        "pvt-v2": ("vision", make("PvtV2Model", "PvtV2Config", pix(64), hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1],
                                  num_attention_heads=[1, 1, 2, 2])),
        "segformer": ("vision", make("SegformerModel", "SegformerConfig", pix(64), hidden_sizes=[16, 32, 48, 64],
                                     depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 2, 2], decoder_hidden_size=64)),
        "swiftformer": ("vision", make("SwiftFormerModel", "SwiftFormerConfig", pix(64), depths=[1, 1, 1, 1],
                                       embed_dims=[16, 32, 48, 64])),
        # dense prediction: detection, segmentation and depth heads on the backbones above
        "detr": ("dense", make("DetrForObjectDetection", "DetrConfig", pix(64), use_timm_backbone=False,
                               use_pretrained_backbone=False, backbone_config=T.ResNetConfig(
                                   embedding_size=16, hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1],
                                   out_features=["stage4"]),
                               d_model=64, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                               decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, num_queries=10,
                               num_labels=5, **attn)),
        "yolos": ("dense", make("YolosForObjectDetection", "YolosConfig", pix(), image_size=[32, 32], patch_size=8,
                                num_detection_tokens=10, **{**small, "num_hidden_layers": 4})),
        # (its segmentation head: the depth head's ReLU output is ~1e-8 with random weights, below float16)
        "dpt": ("dense", make("DPTForSemanticSegmentation", "DPTConfig", pix(), image_size=32, patch_size=8,
                              backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[16, 32, 48, 64], fusion_hidden_size=32,
                              reassemble_factors=[4, 2, 1, 0.5], num_labels=5, **{**small, "num_hidden_layers": 4})),
        "glpn": ("dense", make("GLPNForDepthEstimation", "GLPNConfig", pix(64), hidden_sizes=[16, 32, 48, 64],
                               depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 2, 2], decoder_hidden_size=32)),
        # at 192 px the last feature map is 6 x 6, which every pyramid pooling scale (1, 2, 3, 6) divides:
        # the TorchScript exporter writes adaptive_avg_pool2d only then
        "upernet": ("dense", make("UperNetForSemanticSegmentation", "UperNetConfig", pix(192), backbone_config=T.ConvNextConfig(
                                      hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1],
                                      out_features=["stage1", "stage2", "stage3", "stage4"]),
                                  hidden_size=32, auxiliary_in_channels=48, num_labels=5)),
        # speech
        "wav2vec2": ("speech", make("Wav2Vec2Model", "Wav2Vec2Config", wav, **audio)),
        "hubert": ("speech", make("HubertModel", "HubertConfig", wav, **audio)),
        "wavlm": ("speech", make("WavLMModel", "WavLMConfig", wav, num_buckets=32, **audio)),
        "data2vec-audio": ("speech", make("Data2VecAudioModel", "Data2VecAudioConfig", wav, **audio)),
        "unispeech-sat": ("speech", make("UniSpeechSatModel", "UniSpeechSatConfig", wav, **audio)),
        "sew": ("speech", make("SEWModel", "SEWConfig", wav, squeeze_factor=2, **audio)),
        "ast": ("speech", make("ASTModel", "ASTConfig", lambda: {"input_values": _audio(16 * 64).reshape(2, 64, 16)},
                               max_length=64, num_mel_bins=16, patch_size=8, frequency_stride=8, time_stride=8, **small)),
        # encoder-decoder
        "mbart": ("enc-dec", make("MBartModel", "MBartConfig", pair, **seq2seq)),
        "pegasus": ("enc-dec", make("PegasusModel", "PegasusConfig", pair, **seq2seq)),
        "marian": ("enc-dec", make("MarianModel", "MarianConfig", pair, **seq2seq)),
        "blenderbot-small": ("enc-dec", make("BlenderbotSmallModel", "BlenderbotSmallConfig", pair, **seq2seq)),
        "m2m100": ("enc-dec", make("M2M100Model", "M2M100Config", pair, **seq2seq)),
        "mt5": ("enc-dec", make("MT5Model", "MT5Config", pair, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                                vocab_size=V, use_cache=False, **attn)),
        "whisper": ("enc-dec", make("WhisperModel", "WhisperConfig",
                                    lambda: {"input_features": _audio(16 * 16).reshape(2, 16, 16),
                                             "decoder_input_ids": _text(seq=5)},
                                    num_mel_bins=16, max_source_positions=8, max_target_positions=16, bos_token_id=1,
                                    eos_token_id=2, **{**seq2seq, "max_position_embeddings": 16})),
        "speech2text": ("enc-dec", make("Speech2TextModel", "Speech2TextConfig",
                                        lambda: {"input_features": _audio(16 * 16).reshape(2, 16, 16),
                                                 "decoder_input_ids": _text(seq=5)},
                                        input_feat_per_channel=16, conv_channels=32, max_source_positions=64,
                                        max_target_positions=64, **seq2seq)),
        # decoders
        "falcon": ("decoder", make("FalconForCausalLM", "FalconConfig", ids, **causal)),
        "bloom": ("decoder", make("BloomForCausalLM", "BloomConfig", ids, hidden_size=64, n_layer=2, n_head=4,
                                  vocab_size=V, use_cache=False, **attn)),
        "gpt-j": ("decoder", make("GPTJForCausalLM", "GPTJConfig", ids, n_embd=64, n_layer=2, n_head=4, rotary_dim=8,
                                  n_positions=64, vocab_size=V, use_cache=False, **attn)),
        "codegen": ("decoder", make("CodeGenForCausalLM", "CodeGenConfig", ids, n_embd=64, n_layer=2, n_head=4,
                                    rotary_dim=8, n_positions=64, n_ctx=64, vocab_size=V, use_cache=False, **attn)),
        "stablelm": ("decoder", make("StableLmForCausalLM", "StableLmConfig", ids, num_key_value_heads=2, **causal)),
        "phi3": ("decoder", make("Phi3ForCausalLM", "Phi3Config", ids, num_key_value_heads=2, pad_token_id=0, **causal)),
        "qwen3": ("decoder", make("Qwen3ForCausalLM", "Qwen3Config", ids, num_key_value_heads=2, head_dim=16, **causal)),
        "gemma2": ("decoder", make("Gemma2ForCausalLM", "Gemma2Config", ids, num_key_value_heads=2, head_dim=16, **causal)),
        "olmo": ("decoder", make("OlmoForCausalLM", "OlmoConfig", ids, **causal)),
        "olmo2": ("decoder", make("Olmo2ForCausalLM", "Olmo2Config", ids, num_key_value_heads=2, **causal)),
        "granite": ("decoder", make("GraniteForCausalLM", "GraniteConfig", ids, num_key_value_heads=2, **causal)),
        "cohere": ("decoder", make("CohereForCausalLM", "CohereConfig", ids, num_key_value_heads=2, **causal)),
        "gemma3": ("decoder", make("Gemma3ForCausalLM", "Gemma3TextConfig", ids, num_key_value_heads=2, head_dim=16,
                                   sliding_window=4, query_pre_attn_scalar=16, **causal)),
        "nemotron": ("decoder", make("NemotronForCausalLM", "NemotronConfig", ids, num_key_value_heads=2, **causal)),
        "helium": ("decoder", make("HeliumForCausalLM", "HeliumConfig", ids, num_key_value_heads=2, head_dim=16, **causal)),
        "persimmon": ("decoder", make("PersimmonForCausalLM", "PersimmonConfig", ids, **causal)),
        "gpt-neo": ("decoder", make("GPTNeoForCausalLM", "GPTNeoConfig", ids, attention_types=[[["global", "local"], 1]],
                                    window_size=4, **causal)),
        "mpt": ("decoder", make("MptForCausalLM", "MptConfig", ids, d_model=64, n_heads=4, n_layers=2, **causal)),
        "xglm": ("decoder", make("XGLMForCausalLM", "XGLMConfig", ids, d_model=64, ffn_dim=128, attention_heads=4, **causal)),
        # recurrent: state-space and linear-attention models, their scans unrolled by the exporters
        "mamba": ("decoder", make("MambaForCausalLM", "MambaConfig", ids, state_size=8, expand=2, conv_kernel=4, **causal)),
        "mamba2": ("decoder", make("Mamba2ForCausalLM", "Mamba2Config", ids, state_size=8, expand=2, conv_kernel=4, num_heads=8,
                                   head_dim=16, n_groups=1, chunk_size=4, **causal)),
        "rwkv": ("decoder", make("RwkvForCausalLM", "RwkvConfig", ids, attention_hidden_size=64, context_length=64, **causal)),
        "recurrent-gemma": ("decoder", make("RecurrentGemmaForCausalLM", "RecurrentGemmaConfig", ids, lru_width=64,
                                           attention_window_size=8, block_types=["recurrent", "attention"],
                                           num_key_value_heads=2, head_dim=16, **causal)),
        "starcoder2": ("decoder", make("Starcoder2ForCausalLM", "Starcoder2Config", ids, num_key_value_heads=2, **causal)),
        "gpt-bigcode": ("decoder", make("GPTBigCodeForCausalLM", "GPTBigCodeConfig", ids, n_embd=64, n_layer=2, n_head=4,
                                        n_positions=64, vocab_size=V, use_cache=False, **attn)),
        "biogpt": ("decoder", make("BioGptForCausalLM", "BioGptConfig", ids, **causal)),
        "qwen3-moe": ("decoder", make("Qwen3MoeForCausalLM", "Qwen3MoeConfig", ids, num_key_value_heads=2, head_dim=16,
                                      num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                                      experts_implementation="eager", **causal)),
        # encoders
        "xlm-roberta": ("encoder", make("XLMRobertaModel", "XLMRobertaConfig", ids, **text)),
        "mpnet": ("encoder", make("MPNetModel", "MPNetConfig", ids, **text)),
        "deberta": ("encoder", make("DebertaModel", "DebertaConfig", ids, **text)),
        "funnel": ("encoder", make("FunnelModel", "FunnelConfig", ids, d_model=64, n_head=4, d_head=16, d_inner=128,
                                   block_sizes=[1, 1], vocab_size=V, **attn)),
        "mobilebert": ("encoder", make("MobileBertModel", "MobileBertConfig", ids, embedding_size=32, intra_bottleneck_size=32,
                                       true_hidden_size=32, num_feedforward_networks=2, **text)),
        "squeezebert": ("encoder", make("SqueezeBertModel", "SqueezeBertConfig", ids, embedding_size=64, **text)),
        "convbert": ("encoder", make("ConvBertModel", "ConvBertConfig", ids, embedding_size=64, **text)),
        "roformer": ("encoder", make("RoFormerModel", "RoFormerConfig", ids, embedding_size=64, **text)),
        "ernie": ("encoder", make("ErnieModel", "ErnieConfig", ids, **text)),
        "esm": ("encoder", make("EsmModel", "EsmConfig", ids, pad_token_id=1, **text)),
        "fnet": ("encoder", make("FNetModel", "FNetConfig", ids, **{k: v for k, v in text.items() if k not in attn})),
    }
    return m


def hf_models() -> dict[str, tuple[str, Builder]]:
    """Every transformers architecture of the corpus: name -> (family, builder)."""
    survey = _survey().models("eager")
    family = {"whisper-encoder": "speech", "vit": "vision", "swin": "vision", "convnext": "vision", "resnet": "vision",
              "t5": "enc-dec", "bart": "enc-dec", "bert": "encoder", "roberta": "encoder", "albert": "encoder",
              "electra": "encoder", "distilbert": "encoder", "deberta-v2": "encoder", "clip-text": "encoder"}
    table = {name: (family.get(name, "decoder"), build) for name, build in survey.items()}
    return {**table, **extra_models()}


def _with_mask(model: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Token models get an attention mask where their forward takes one: all ones for a
    causal model (and an encoder-decoder's decoder), the last two positions padded for the
    others (without one, transformers checks position ids for packed sequences with
    aten::diff, which the TorchScript exporter cannot export)."""
    import inspect

    import torch

    takes = inspect.signature(model.forward).parameters
    if "decoder_input_ids" in kwargs and "decoder_attention_mask" in takes:  # the decoder's causal mask likewise
        kwargs = {**kwargs, "decoder_attention_mask": torch.ones_like(kwargs["decoder_input_ids"])}
    if "input_ids" not in kwargs or "attention_mask" not in takes:
        return kwargs
    mask = torch.ones_like(kwargs["input_ids"])
    if not type(model).__name__.endswith("ForCausalLM") and "decoder_input_ids" not in kwargs:
        mask[:, -2:] = 0
    return {**kwargs, "attention_mask": mask}


def calibrate_batchnorm(model: Any, kwargs: dict[str, Any]) -> None:
    """Give every BatchNorm the statistics of its own input: one forward pass with the
    BatchNorms alone in training mode, averaging (momentum None) over a calibration batch of
    16 seeded samples shaped like ``kwargs`` (not the inputs validation uses: statistics of
    the very batch they normalise make a model ill-conditioned where a plane is 1x1, two
    samples standardised to exactly +-1 whatever their difference). transformers
    initialises CNN weights with std 0.02 and leaves running statistics at 0 and 1, so
    without this a MobileNetV2's features are 1e-30 and any comparison passes. Variances
    are kept above VAR_FLOOR of their layer's mean, so no near-constant channel is
    amplified."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    gen = torch.Generator().manual_seed(1)
    batch = {k: torch.randn((16, *v.shape[1:]), generator=gen, dtype=v.dtype) if v.is_floating_point()
             else v[torch.arange(16) % v.shape[0]] for k, v in kwargs.items()}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
        if m.bias is not None:  # see BN_BETA
            m.bias.data.uniform_(*BN_BETA, generator=gen)
    with torch.no_grad():
        model(**batch)
        for m in norms:
            floor = torch.maximum(VAR_FLOOR * m.running_var.mean(), VAR_FLOOR * m.running_mean.square())
            m.running_var.copy_(torch.maximum(m.running_var, floor))
    model.eval()


def _magnitude(outputs: Sequence[Any]) -> dict[str, float]:
    """The reference outputs' scale: a model whose outputs are all near 0 validates trivially."""
    flat = [o.detach().double().abs().flatten() for o in outputs if o.numel()]
    if not flat:
        return {}
    import torch

    every = torch.cat(flat)
    return {"out_absmax": float(every.max()), "out_rms": float(every.pow(2).mean().sqrt())}


def fp16_eager_error(model: Any, kwargs: dict[str, Any], reference: Sequence[Any]) -> dict[str, float]:
    """How far the model's own float16 run (torch eager, module and float inputs in half)
    is from its float32 outputs: the rounding a float16 computation cannot avoid, beside
    which an ascend-sim force_fp16 error can be read (empty if eager cannot run in half)."""
    import copy

    import torch

    try:
        half = copy.deepcopy(model).half()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = _survey()._floats(half(**{k: v.half() if v.is_floating_point() else v for k, v in kwargs.items()}))
        errs = [float((a.double() - b.double()).abs().max()) for a, b in zip(reference, got) if a.numel()]
    except Exception:  # an op without a half kernel on the CPU
        return {}
    return {"out_fp16_err": max(errs)} if errs and all(math.isfinite(e) for e in errs) else {}


def _built(arch: str) -> tuple[Any, dict[str, Any]]:
    """``arch`` with seeded random weights in eval mode, its inputs (with their mask), its
    BatchNormalization statistics calibrated on them."""
    import torch

    _, build_model = hf_models()[arch]
    torch.manual_seed(0)
    model, kwargs = build_model()
    model.eval()
    kwargs = _with_mask(model, kwargs)
    calibrate_batchnorm(model, kwargs)
    return model, kwargs


def export_hf(arch: str, exporter: str, out: Path) -> dict[str, Any]:
    """Build ``arch`` and export it with ``exporter`` to ``out`` (.onnx) and its inputs to
    ``out.with_suffix('.npz')``; returns {"ok": True} or {"exporter_error": line}."""
    import torch

    model, kwargs = _built(arch)
    if exporter == "sdpa23":
        model.set_attn_implementation("sdpa")
    names = list(kwargs)
    floats = _survey()._floats

    class Flat(torch.nn.Module):
        """The model's floating outputs as a flat tuple, its inputs positional."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> tuple[Any, ...]:
            return tuple(floats(self.inner(**dict(zip(names, args)))))

    flat = Flat(model).eval()
    args = tuple(kwargs.values())
    with torch.no_grad():
        reference = flat(*args)
    n_out = len(reference)
    out_names = [f"out{k}" for k in range(n_out)]
    failed = _export(flat, args, names, out_names, exporter, out) or _loadable(out)
    if failed:
        return failed
    import onnx

    # The inputs the export kept: TorchScript drops one the model never reads (RWKV's mask).
    kept = {i.name for i in onnx.load(str(out), load_external_data=False).graph.input}
    feeds = {k: v.numpy() for k, v in kwargs.items() if k in kept}
    np.savez(out.with_suffix(".npz"), **feeds)
    return {"ok": True, **_magnitude(reference), **fp16_eager_error(model, kwargs, reference),
            **_judge_error(out, feeds, reference)}


def _loadable(out: Path) -> dict[str, Any]:
    """{} when onnxruntime (the judge) loads the exported model; else the exporter's failure:
    TorchScript writes Mamba2's Transpose with perm [0, -2, -1, 1], which the ONNX spec, the
    checker in onnxruntime and graphopt all refuse."""
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    except Exception as e:
        out.unlink(missing_ok=True)
        return {"exporter_error": "an invalid model, which onnxruntime refuses too: " + _root_cause(e)}
    return {}


def _export(module: Any, args: tuple[Any, ...], names: list[str], out_names: list[str], exporter: str,
            out: Path) -> dict[str, Any]:
    """``torch.onnx.export`` by ``exporter`` (ts: TorchScript at opset 17; dynamo at 18;
    sdpa23: dynamo at 23) to ``out``, written whole or not at all; {} or {"exporter_error": line}."""
    import torch

    tmp = out.with_suffix(".tmp.onnx")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "ts":
                torch.onnx.export(module, args, str(tmp), dynamo=False, opset_version=17, input_names=names,
                                  output_names=out_names)
            else:
                torch.onnx.export(module, args, str(tmp), dynamo=True, opset_version=23 if exporter == "sdpa23" else 18,
                                  input_names=names, output_names=out_names, external_data=False)
    except Exception as e:  # the exporter's failure, recorded as such
        tmp.unlink(missing_ok=True)
        return {"exporter_error": _root_cause(e)}
    os.replace(tmp, out)
    return {}


# One model of each of timm's families (timm.list_modules()), its smallest variant; left out:
# those over 100 M parameters or 384 px (nasnetalarge, pnasnet5large, samvit at 1024 px ...),
# and those whose TorchScript export fails (halonet's and csatv2's data-dependent shapes,
# eva02's tensor is_causal, volo's col2im before opset 18).
TIMM_MODELS = """repvgg_b0 cait_xs24_384 coat_tiny convit_tiny convmixer_768_32 convnext_atto cpubone_nano
crossvit_tiny_240 darknet17 cspnext_tiny davit_tiny deit_tiny_patch16_224 densenet121 dla34 dpn68
edgenext_small efficientformer_l1 efficientformerv2_s0 tinynet_a efficientvim_m1 efficientvit_b0 efficientvit_m0
fasternet_t0 fastvit_t8 focalnet_tiny_lrf gcvit_tiny ghostnet_050 hardcorenas_a hgnet_tiny hiera_tiny_224
hieradet_small hrnet_w18_small iformer_t inception_next_atto inception_v3 lcnetv2_small levit_128 lowformer_b0
mambaout_tiny maxvit_nano_rw_256 caformer_s18 gmlp_ti16_224 mobilenetv3_small_050 mobilevit_xs mvitv2_tiny
nest_tiny nextvit_small nf_regnet_b0 pit_ti_224 pvt_v2_b0 rdnet_tiny regnetx_004_tv repghostnet_050 repvit_m1
res2net50d resnest14d resnet18 resnetv2_18 rexnet_100 selecsls42 legacy_seresnet18 shvit_s1 skresnet18
starnet_s050 swiftformer_xs swin_s3_tiny_224 swinv2_tiny_window8_256 swinv2_cr_tiny_224 tiny_vit_5m_224
twins_svt_small vgg11 visformer_tiny flexivit_small vit_small_r26_s32_224 vit_relpos_small_patch16_224
vitamin_small_224 vovnet39a legacy_xception xception41 xcit_nano_12_p8_224""".split()


# Of TIMM_MODELS, the convolutional networks (no attention, no token mixing by matmul):
# their rows count towards "every CNN keeps at most 2 TransData".
TIMM_CNNS = frozenset("""repvgg_b0 convnext_atto convmixer_768_32 darknet17 cspnext_tiny densenet121 dla34 dpn68
tinynet_a fasternet_t0 fastvit_t8 ghostnet_050 hardcorenas_a hgnet_tiny hrnet_w18_small inception_next_atto
inception_v3 lcnetv2_small mobilenetv3_small_050 nf_regnet_b0 rdnet_tiny regnetx_004_tv repghostnet_050 repvit_m1
res2net50d resnest14d resnet18 resnetv2_18 rexnet_100 selecsls42 legacy_seresnet18 skresnet18 starnet_s050 vgg11
vovnet39a legacy_xception xception41 mambaout_tiny""".split())


def _has_timm() -> bool:
    import importlib.util

    return importlib.util.find_spec("timm") is not None


def _import_timm() -> Any:
    """timm, with an empty stand-in for torchvision when there is none (see the module doc):
    its modules are created on demand, their attributes are inert classes."""
    import importlib.abc
    import importlib.machinery
    import importlib.util
    import types

    if importlib.util.find_spec("torchvision") is None and "torchvision" not in sys.modules:
        class _Inert(type):
            def __getattr__(cls, name: str) -> Any:
                if name.startswith("__"):
                    raise AttributeError(name)
                return name

        class _Stub(types.ModuleType):
            def __getattr__(self, name: str) -> Any:
                if name.startswith("__"):
                    raise AttributeError(name)
                return _Inert(name, (), {"__init__": lambda self, *a, **k: None})

        class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
            def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
                if fullname == "torchvision" or fullname.startswith("torchvision."):
                    return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
                return None

            def create_module(self, spec: Any) -> Any:
                module = _Stub(spec.name)
                module.__path__ = []
                return module

            def exec_module(self, module: Any) -> None:
                pass

        sys.meta_path.insert(0, _Finder())
    import timm

    return timm


def export_timm(name: str, exporter: str, out: Path) -> dict[str, Any]:
    """timm's ``name`` with random weights (100 classes, BatchNorm calibrated) on one image of
    its config's size, exported by ``exporter`` to ``out``, the image beside it."""
    import torch

    timm = _import_timm()
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=100).eval()
    size = tuple((model.pretrained_cfg or {}).get("input_size", (3, 224, 224)))
    kwargs = {"x": torch.randn((1, *size), generator=torch.Generator().manual_seed(0))}
    calibrate_batchnorm(model, kwargs)
    with torch.no_grad():
        reference = (model(kwargs["x"]),)
    failed = _export(model, (kwargs["x"],), ["x"], ["out0"], exporter, out)
    if failed:
        return failed
    feeds = {"x": kwargs["x"].numpy()}
    np.savez(out.with_suffix(".npz"), **feeds)
    return {"ok": True, **_magnitude(reference), **_judge_error(out, feeds, reference)}


def _judge_error(path: Path, feeds: dict[str, np.ndarray], reference: Sequence[Any]) -> dict[str, float]:
    """How far onnxruntime (validation's judge) is from torch eager on the exported model, both
    in float32: a cpu row's error near this is the judge's own rounding, not a fault."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
    except Exception:  # onnxruntime cannot run it: validation will say so
        return {}
    errs = [float(np.abs(np.asarray(a, np.float64) - r.detach().double().numpy()).max())
            for a, r in zip(got, reference) if r.numel() and np.shape(a) == tuple(r.shape)]
    return {"out_judge_err": max(errs)} if errs else {}


# ---------------------------------------------------------------------------------------
# The corpus


@dataclass(frozen=True)
class Entry:
    name: str  # zoo/resnet50, hf/bert@ts, tc/bert
    family: str  # cnn, vision, dense, speech, enc-dec, decoder, encoder
    source: str  # zoo, ts, dynamo, sdpa23, torch.compile, torch.export, timm-ts, timm-dynamo
    arch: str
    size: int | None = None  # zoo: image size
    quick: bool = False


QUICK = {"zoo/squeezenet@64", "hf/bert@ts", "hf/bert@dynamo", "hf/llama@ts", "hf/llama@sdpa23", "hf/vit@ts", "hf/convnext@ts"}
# zoo models whose head takes any image size (global pooling, no fixed Reshape) and that have no
# BatchNormalization (calibrated on one 64x64 image, the last stages of 2x2 planes have statistics
# of four values, which another image does not share: densenet121@64 ends with std 100 logits)
RESIZABLE = {"squeezenet": 64}


def corpus() -> list[Entry]:
    entries = []
    for name in zoo_names():
        entries.append(Entry(f"zoo/{name}", "cnn", "zoo", name))
        if name in RESIZABLE:
            size = RESIZABLE[name]
            entries.append(Entry(f"zoo/{name}@{size}", "cnn", "zoo", name, size))
    hf = hf_models()
    for arch, (family, _) in hf.items():
        for exporter in EXPORTERS:
            if exporter == "sdpa23" and arch not in SDPA_ARCHS:
                continue
            entries.append(Entry(f"hf/{arch}@{exporter}", family, exporter, arch))
    for arch in _survey().models("eager"):
        entries.append(Entry(f"tc/{arch}", hf[arch][0], "torch.compile", arch))
        entries.append(Entry(f"pt/{arch}", hf[arch][0], "torch.export", arch))
    if _has_timm():
        entries += [Entry(f"timm/{name}@{exporter}", "timm", f"timm-{exporter}", name)
                    for name in TIMM_MODELS for exporter in ("ts", "dynamo")]
    return [Entry(**{**e.__dict__, "quick": e.name in QUICK}) for e in entries]


def _file(cache: Path, entry: Entry) -> Path:
    suffix = ".pt2" if entry.source == "torch.export" else ".onnx"
    return cache / "models" / (re.sub(r"[^A-Za-z0-9_.-]", "_", entry.name) + suffix)


def build(entry: Entry, cache: Path) -> dict[str, Any]:
    """Write the entry's ONNX file (and inputs) into the cache; {"ok": True} or {"exporter_error": ...}."""
    path = _file(cache, entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    if entry.source == "zoo":
        import onnx

        model = randomize_zoo(onnx.load(str(zoo_dir() / f"light_{entry.arch}.onnx")), seed=0, size=entry.size)
        tmp = path.with_suffix(".tmp.onnx")
        onnx.save(model, str(tmp))
        os.replace(tmp, path)
        return {"ok": True, **_zoo_magnitude(model)}
    if entry.source == "torch.export":
        return export_pt2(entry.arch, path)
    if entry.source.startswith("timm-"):
        return export_timm(entry.arch, entry.source.removeprefix("timm-"), path)
    return export_hf(entry.arch, entry.source, path)


def export_pt2(arch: str, out: Path) -> dict[str, Any]:
    """``torch.export.export`` of ``arch`` as a user calls it (keyword inputs, the model's own
    output container), saved with ``torch.export.save`` to ``out`` (.pt2), its inputs beside it."""
    import torch

    model, kwargs = _built(arch)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(model, (), kwargs)
    except Exception as e:
        return {"exporter_error": _root_cause(e)}
    tmp = out.with_suffix(".tmp.pt2")
    torch.export.save(program, tmp)
    os.replace(tmp, out)
    with torch.no_grad():
        reference = _survey()._floats(model(**kwargs))
    np.savez(out.with_suffix(".npz"), **{k: v.numpy() for k, v in kwargs.items()})
    return {"ok": True, **_magnitude(reference)}


def _zoo_magnitude(model: Any) -> dict[str, float]:
    import onnxruntime as ort

    from graphopt.validate import random_inputs

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    specs = [(i.name, tuple(i.shape), np.float32) for i in sess.get_inputs()]
    outs = sess.run(None, random_inputs(specs))
    every = np.concatenate([np.abs(o.astype(np.float64)).ravel() for o in outs])
    return {"out_absmax": float(every.max()), "out_rms": float(np.sqrt(np.mean(every**2)))}


# ---------------------------------------------------------------------------------------
# One row: compile and validate one model for one target (run in a worker process)


def _root_cause(e: BaseException) -> str:
    """The innermost exception of a chain, its first line (torch.onnx wraps torch.export's
    reason in paragraphs of advice)."""
    seen = {id(e)}
    while (inner := e.__cause__ or e.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        e = inner
    first = next((line for line in str(e).splitlines() if line.strip()), "")
    text = f"{type(e).__name__}: {' '.join(_ANSI.sub('', first).split())}"
    return text if len(text) <= 400 else text[:397] + "..."


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(e: BaseException) -> str:
    text = " ".join(_ANSI.sub("", str(e)).split()) or type(e).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def _classify(e: BaseException) -> tuple[str, str]:
    """(kind, line): "error" for a GraphoptError (exit 2), "mismatch" for a failed
    validation (exit 1), "internal" for anything else (exit 3)."""
    from graphopt.errors import GraphoptError, ValidationError

    if isinstance(e, ValidationError):
        return "mismatch", one_line(e)
    if isinstance(e, GraphoptError):
        return "error", one_line(e)
    return "internal", f"{type(e).__name__}: {one_line(e)}"


def _target_facts(report: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if "layout" in report:
        facts["transdata"] = report["layout"].get("transdata", 0)
        facts["transdata_bytes"] = report["layout"].get("transdata_bytes", 0)
        facts["parameter_transdata"] = report["layout"].get("parameter_transdata", 0)
    if "aicpu" in report:
        facts["aicpu_kernels"] = len(report["aicpu"])
        facts["aicpu"] = sorted({op.removeprefix("graph.") for a in report["aicpu"] for op in a["ops"]})
    if "timing" in report:
        facts["time_us"] = report["timing"]["total_us"]
        facts["flops"] = report["timing"]["flops"]
        facts["mfu"] = report["timing"]["mfu"]
        facts["untimed"] = len(report["timing"].get("untimed", []))  # run-time sizes: time is a lower bound
    return facts


def _target_options(target: str, precision: str) -> dict[str, Any] | None:
    return {"precision": precision} if target.startswith("ascend-sim") else None


def run_onnx(path: Path, target: str, precision: str) -> dict[str, Any]:
    """Compile ``path`` for ``target`` and validate it against onnxruntime, as
    `graphopt compile` does (the inputs saved beside the model, else seeded random ones)."""
    import graphopt

    feeds_file = path.with_suffix(".npz")
    feeds = dict(np.load(feeds_file, allow_pickle=False)) if feeds_file.exists() else None
    row, compiled = _compile_row(path, target, precision)
    if compiled is None:
        return row
    row.update(_validate(compiled, feeds))
    if row["validated"] is False and target.startswith("ascend-sim") and precision != "must_keep_origin_dtype":
        # fp16 numerics or a wrong lowering? The same model in float32 says which.
        try:
            exact = graphopt.compile(str(path), target, target_options={"precision": "must_keep_origin_dtype"})
            fp32 = _validate(exact, feeds)
            row["fp32_validated"] = bool(fp32["validated"])
            row["fp32_max_abs_err"] = fp32.get("max_abs_err")
            if fp32.get("error"):
                row["fp32_error"] = fp32["error"]
        except Exception as e:
            row["fp32_validated"] = False
            row["fp32_error"] = _classify(e)[1]
    suggested = row.pop("keep_suggested", None)
    if suggested:  # a float16 overflow: validation named what to keep in float32; does keeping it validate?
        row.update(_validate_kept(path, target, precision, feeds, suggested))
    return row


def _validate_kept(path: Path, target: str, precision: str, feeds: dict[str, Any] | None,
                   suggested: list[str]) -> dict[str, Any]:
    """The same model with what the overflow message names kept in float32 (--keep-dtype),
    kept again with what the next message names, up to three rounds (a deeper layer's
    overflow shows once the first is kept)."""
    import graphopt

    keep: list[str] = []
    for _ in range(3):
        keep = list(dict.fromkeys(keep + suggested))
        try:
            kept = graphopt.compile(str(path), target, target_options={"precision": precision, "keep_dtype": keep})
        except Exception as e:
            return {"keep_dtype": keep, "keep_validated": False, "keep_error": _classify(e)[1]}
        got = _validate(kept, feeds)
        suggested = got.pop("keep_suggested", [])
        if got["validated"] or not set(suggested) - set(keep):
            return {"keep_dtype": keep, "keep_validated": bool(got["validated"]), "keep_max_abs_err": got.get("max_abs_err")}
    return {"keep_dtype": keep, "keep_validated": False}


def run_pt2(path: Path, target: str, precision: str) -> dict[str, Any]:
    """Compile a saved torch.export program as `graphopt compile model.pt2` does (graphopt's
    own loader) and validate it against the program run eagerly, on the saved inputs."""
    row, compiled = _compile_row(path, target, precision)
    if compiled is None:
        return row
    saved = dict(np.load(path.with_suffix(".npz"), allow_pickle=False))
    feeds = saved if set(compiled.input_names) <= set(saved) else None
    row.update(_validate(compiled, feeds))
    suggested = row.pop("keep_suggested", None)
    if suggested:  # as for an ONNX row: does keeping what the overflow names validate?
        row.update(_validate_kept(path, target, precision, feeds, suggested))
    return row


def _compile_row(path: Path, target: str, precision: str) -> tuple[dict[str, Any], Any]:
    """(the row so far, the compiled model or None): compile time, or the one-line error."""
    import graphopt

    row: dict[str, Any] = {"compiled": False, "validated": None}
    t0 = time.perf_counter()
    try:
        compiled = graphopt.compile(str(path), target, target_options=_target_options(target, precision))
    except Exception as e:
        row["kind"], row["error"] = _classify(e)
        row["compile_s"] = round(time.perf_counter() - t0, 2)
        return row, None
    row.update(compiled=True, compile_s=round(time.perf_counter() - t0, 2), **_target_facts(compiled.report))
    return row, compiled


def _validate(compiled: Any, feeds: dict[str, Any] | None) -> dict[str, Any]:
    """Validation as `graphopt compile` runs it: against onnxruntime for an ONNX model, torch
    eager for a torch program (a .pt2)."""
    from graphopt.validate import check, validate_against_onnxruntime, validate_against_torch

    try:
        result = validate_against_onnxruntime(compiled, compiled.source, feeds) if compiled.reference is None else \
            validate_against_torch(compiled, compiled.reference, feeds)
    except Exception as e:
        kind, line = _classify(e)
        return {"validated": False, "kind": kind, "error": f"validation: {line}"}
    outs = result["outputs"]
    row = {"validated": bool(result["passed"]),
           "max_abs_err": max((o["max_abs_err"] for o in outs), default=0.0),
           "cosine": min((o["cosine"] for o in outs), default=1.0)}
    if result.get("overflow", {}).get("keep"):
        row["keep_suggested"] = result["overflow"]["keep"]
    try:
        check(result)
    except Exception as e:
        row["kind"], row["error"] = _classify(e)
    return row


def run_torch_compile(arch: str, target: str, precision: str, report_dir: Path) -> dict[str, Any]:
    """torch.compile(backend="graphopt") of the survey's ``arch`` on ``target``: each graph
    validated against eager by the backend, the outputs compared with eager's here."""
    import torch

    survey = _survey()
    torch.manual_seed(0)
    model, kwargs = survey.models("eager")[arch]()
    model.eval()
    calibrate_batchnorm(model, kwargs)
    options: dict[str, Any] = {"target": target, "validate": True, "report_dir": str(report_dir)}
    if precision != "force_fp16" and target.startswith("ascend-sim"):
        return {"compiled": False, "kind": "error", "error": "torch.compile rows run only in the default precision"}
    row: dict[str, Any] = {"compiled": False, "validated": None}
    t0 = time.perf_counter()
    with torch.no_grad():
        expected = survey._floats(model(**kwargs))
        row.update(_magnitude(expected), **fp16_eager_error(model, kwargs, expected))
        try:
            got = survey._floats(torch.compile(model, backend="graphopt", options=options)(**kwargs))
        except Exception as e:
            inner = e
            while inner.__cause__ is not None and type(inner).__name__ == "BackendCompilerFailed":
                inner = inner.__cause__
            kind, line = _classify(inner)
            compiled = kind == "mismatch"  # the backend validates after compiling
            row.update(compiled=compiled, kind=kind, error=line, validated=False if compiled else None)
            errs = [float(x) for x in re.findall(r"max abs err ([-+0-9.e]+|inf|nan)", line)]
            if errs:
                row["max_abs_err"] = max(errs)
            row["compile_s"] = round(time.perf_counter() - t0, 2)
            row.update(_torch_reports(report_dir))
            return row
    row["compile_s"] = round(time.perf_counter() - t0, 2)
    row["compiled"] = True
    errs = [float((a.float() - b.float()).abs().max()) for a, b in zip(got, expected)]
    row["max_abs_err"] = max(errs, default=0.0)
    row["validated"] = True
    row.update(_torch_reports(report_dir))
    return row


def _torch_reports(folder: Path) -> dict[str, Any]:
    """The graphs' reports summed: TransData, AI CPU ops, time, MFU over the graphs."""
    reports = [json.loads(p.read_text()) for p in sorted(folder.glob("graph*.json"))]
    if not reports:
        return {}
    facts: dict[str, Any] = {"graphs": len(reports)}
    parts = [_target_facts(r) for r in reports]
    for key in ("transdata", "transdata_bytes", "parameter_transdata", "aicpu_kernels", "time_us", "flops", "untimed"):
        if any(key in p for p in parts):
            facts[key] = sum(p.get(key, 0) for p in parts)
    if any("aicpu" in p for p in parts):
        facts["aicpu"] = sorted({op for p in parts for op in p.get("aicpu", [])})
    if facts.get("time_us"):
        peak = reports[0]["timing"]["peak_tflops"] * 1e12
        facts["mfu"] = round(facts["flops"] / (facts["time_us"] * 1e-6 * peak), 4)
    return facts


def worker(argv: Sequence[str]) -> int:
    """``--worker build NAME CACHE OUT`` or ``--worker run NAME TARGET PRECISION CACHE OUT``:
    one step in this process; the result as JSON in OUT."""
    warnings.filterwarnings("ignore")
    step, name, *rest = argv
    entry = entry_named(name)
    if step == "build":
        cache, out = Path(rest[0]), Path(rest[1])
        result = build(entry, cache)
    else:
        target, precision, cache, out = rest[0], rest[1], Path(rest[2]), Path(rest[3])
        if entry.source == "torch.compile":
            with tempfile.TemporaryDirectory() as reports:
                result = run_torch_compile(entry.arch, target, precision, Path(reports))
        elif entry.source == "torch.export":
            result = run_pt2(_file(cache, entry), target, precision)
        else:
            result = run_onnx(_file(cache, entry), target, precision)
    out.write_text(json.dumps(result, default=float))
    return 0


def entry_named(name: str) -> Entry:
    """The entry from its name alone (a worker running an ONNX file imports neither torch
    nor transformers): zoo/<arch>[@size], hf/<arch>@<exporter>, tc/<arch>."""
    kind, _, rest = name.partition("/")
    arch, _, tail = rest.partition("@")
    if kind == "zoo":
        return Entry(name, "cnn", "zoo", arch, int(tail) if tail else None)
    if kind == "hf" and tail in EXPORTERS:
        return Entry(name, "", tail, arch)
    if kind == "tc":
        return Entry(name, "", "torch.compile", arch)
    if kind == "pt":
        return Entry(name, "", "torch.export", arch)
    if kind == "timm" and tail in ("ts", "dynamo"):
        return Entry(name, "timm", f"timm-{tail}", arch)
    raise ValueError(f"no model {name!r}")


# ---------------------------------------------------------------------------------------
# The driver


@dataclass
class Step:
    entry: Entry
    target: str | None  # None: the build


def _subprocess(args: list[str], timeout: float) -> tuple[dict[str, Any] | None, str]:
    """Run this script as a worker; (its JSON result, or None and why it has none)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    try:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *args, str(out)]
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=str(ROOT), start_new_session=True)
        try:
            log, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the worker we started, and its children
            proc.communicate()
            return None, f"timeout after {timeout:.0f} s"
        text = out.read_text() if out.exists() else ""
        if proc.returncode == 0 and text:
            return json.loads(text), ""
        tail = [line for line in log.strip().splitlines() if line.strip()]
        why = tail[-1] if tail else ""
        return None, f"crash (exit {proc.returncode}): {' '.join(why.split())[:300]}"
    finally:
        out.unlink(missing_ok=True)


def run_entry(entry: Entry, targets: Sequence[str], precision: str, cache: Path, timeout: float,
              rebuild: bool) -> list[dict[str, Any]]:
    base: dict[str, Any] = {"model": entry.name, "family": entry.family, "source": entry.source}
    if entry.source != "torch.compile":
        path = _file(cache, entry)
        meta = path.with_suffix(".build.json")  # the build's result: an exporter's error, the outputs' scale
        if rebuild or not meta.exists() or not (path.exists() or "exporter_error" in json.loads(meta.read_text())):
            path.unlink(missing_ok=True)
            t0 = time.perf_counter()
            result, why = _subprocess(["build", entry.name, str(cache)], timeout)
            if result is None:
                result = {"exporter_error": f"build {why}"}
            meta.write_text(json.dumps(result))
            print(f"  built {entry.name} in {time.perf_counter() - t0:.1f} s"
                  + (f": {result['exporter_error'][:120]}" if "exporter_error" in result else ""), flush=True)
        built = json.loads(meta.read_text())
        base.update({k: v for k, v in built.items() if k.startswith("out_")})
        if "exporter_error" in built or not path.exists():
            return [{**base, "target": t, "compiled": None, "validated": None, "kind": "exporter",
                     "error": built.get("exporter_error", "not built")} for t in targets]
    rows = []
    if entry.source == "torch.compile":  # the cpu target's torch.compile is tools/torch_survey.py's
        targets = [t for t in targets if t.startswith("ascend-sim")]
    for target in targets:
        t0 = time.perf_counter()
        result, why = _subprocess(["run", entry.name, target, precision, str(cache)], timeout)
        if result is None:
            kind = "timeout" if why.startswith("timeout") else "crash"
            result = {"compiled": False, "validated": None, "kind": kind, "error": why}
        row = {**base, "target": target, "precision": precision, **result, "wall_s": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print("  " + _short(row), flush=True)
    return rows


def _short(row: dict[str, Any]) -> str:
    status = _status(row)
    extra = f"  {row.get('error', '')[:150]}" if row.get("error") else ""
    return f"{row['model']:32s} {row['target']:22s} {status}{extra}"


def _status(row: dict[str, Any]) -> str:
    if row.get("kind") == "exporter":
        return "exporter failed"
    if not row.get("compiled"):
        return {"timeout": "TIMEOUT", "crash": "CRASH"}.get(row.get("kind", ""), "compile FAILED")
    if row.get("validated"):
        return "ok"
    fp32 = row.get("fp32_validated")
    return "validate FAILED" + ("" if fp32 is None else " (fp32 ok)" if fp32 else " (fp32 too)")


# ---------------------------------------------------------------------------------------
# The table


def _fmt_err(row: dict[str, Any]) -> str:
    if row.get("max_abs_err") is None:
        return ""
    e = row["max_abs_err"]
    return f"{e:.1e}" if math.isfinite(e) else str(e)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _cause(line: str) -> str:
    """An error line with its model-specific parts (names, numbers, shapes) generalised,
    so rows failing for one reason group together."""
    line = re.sub(r"'[^']*'", "'…'", line)
    line = re.sub(r"\"[^\"]*\"", "\"…\"", line)
    line = re.sub(r"\b\d+(\.\d+)?(e[-+]?\d+)?\b", "N", line)
    line = re.sub(r"(N[x, ]*)+N", "N", line)
    line = re.sub(r"\[[^\]]*\]", "[…]", line)
    return line[:220]


# Causes seen in the corpus, explained once (a cause pattern, what it is and where).
CAUSE_NOTES = [
    (r"float16 rounding",
     "**float16 rounding**: the error is what torch itself loses running the module in float16 (column fp16 "
     "eager), and must_keep_origin_dtype validates: the lowering is right and as exact as float16 allows. "
     "graphopt/validate.py judges a float16 target against the judge with every value rounded to float16 "
     "(within 2x passes); a row here exceeds even that."),
    (r"float16 overflow",
     "**float16 overflow**: a value beyond float16's 65504 (an attention mask's float32 minimum in DeBERTa "
     "and Funnel, T5's unscaled residual stream in mT5); validation names the node and what to keep in "
     "float32, and the row says whether keeping it (--keep-dtype) validates. CANN has the same limit in "
     "force_fp16, and ATC's --keep_dtype the same remedy."),
    (r"float32 rounding|within 2x onnxruntime",
     "**float32 rounding**: the cpu target (or must_keep_origin_dtype) differs from onnxruntime by about what "
     "onnxruntime differs from torch eager (column judge)."),
]


def _mismatch_cause(row: dict[str, Any]) -> str:
    if row.get("keep_validated") is not None:
        keep = ", ".join(row.get("keep_dtype", []))
        return (f"float16 overflow named by validation; keeping {keep} in float32 (--keep-dtype) "
                + ("validates" if row["keep_validated"] else "does not validate"))
    """A failed validation, by what explains it."""
    if row.get("validated") is None:  # validation could not run
        return _cause(row.get("error", ""))
    judge = row.get("out_judge_err")
    if not row["target"].startswith("ascend-sim"):
        if judge is not None and row.get("max_abs_err", math.inf) <= 2 * judge:
            return (f"{row['target']} target: float32 rounding, the error within 2x onnxruntime's own difference "
                    "from torch eager (the validator's float32 tolerance is tighter than the judge)")
        return f"{row['target']} target: outputs differ from the reference"
    fp16 = row.get("out_fp16_err")
    if row.get("fp32_validated") is None:  # torch.compile rows: no float32 rerun
        if fp16 is not None and row.get("max_abs_err", math.inf) <= 2 * fp16:
            return "force_fp16 (torch.compile, not rerun in float32): the error is within 2x torch eager's own float16 error"
        return "force_fp16 (torch.compile, not rerun in float32): outputs differ from eager"
    if not row["fp32_validated"]:
        if judge is not None and (row.get("fp32_max_abs_err") or math.inf) <= 2 * judge:
            return ("force_fp16 fails, and must_keep_origin_dtype is within 2x onnxruntime's own difference from "
                    "torch eager (float32 rounding; the validator's float32 tolerance is tighter than the judge)")
        return "outputs differ in must_keep_origin_dtype too (float32)"
    if fp16 is not None and row.get("max_abs_err", math.inf) <= 2 * fp16:
        return "float16 rounding: must_keep_origin_dtype validates, and the error is within 2x torch eager's own float16 error"
    if fp16 is not None:
        return "force_fp16 only (must_keep_origin_dtype validates), the error over 2x torch eager's own float16 error"
    return "force_fp16 only: must_keep_origin_dtype validates (no torch float16 run to compare with)"


# transformers' vision models that are convolutional networks (no attention blocks).
_HF_CNNS = frozenset("resnet regnet mobilenet-v1 mobilenet-v2 efficientnet convnext convnext-v2 poolformer bit upernet".split())


def _is_cnn(model: str) -> bool:
    """zoo/<name>, or <source>/<arch>[@exporter] with arch a convolutional network."""
    source, _, rest = model.partition("/")
    return source == "zoo" or rest.split("@")[0] in (TIMM_CNNS if source == "timm" else _HF_CNNS)


def render(rows: list[dict[str, Any]], entries: list[Entry], targets: Sequence[str], header: str) -> str:
    order = {e.name: k for k, e in enumerate(entries)}
    rows = sorted((r for r in rows if r["model"] in order and r["target"] in targets),
                  key=lambda r: (order[r["model"]], targets.index(r["target"])))
    out = [header, ""]
    # Totals per target and per source
    out += ["## Totals", "", "Per target (N = model rows with an ONNX file or a torch.compile module; "
            "exporter failures are counted apart):", "",
            "| target | rows | exporter failed | compiled | validated | fp16 overflow named, kept ops validate "
            "| other fp16 mismatch, fp32 ok |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for t in targets:
        mine = [r for r in rows if r["target"] == t]
        exp = sum(r.get("kind") == "exporter" for r in mine)
        n = len(mine) - exp
        comp = sum(bool(r.get("compiled")) for r in mine)
        val = sum(bool(r.get("validated")) for r in mine)
        kept = sum(r.get("validated") is False and r.get("keep_validated") is True for r in mine)
        fp = sum(r.get("validated") is False and r.get("fp32_validated") is True and not r.get("keep_validated")
                 for r in mine)
        out.append(f"| {t} | {len(mine)} | {exp} | {comp} / {n} | {val} / {n} | {kept} | {fp} |")
    out += ["", "Per source and target (compiled / validated of the rows that have a model):", "",
            "| source | " + " | ".join(targets) + " |", "|---|" + "---:|" * len(targets)]
    for src in ("zoo", *EXPORTERS, "torch.compile", "torch.export", "timm-ts", "timm-dynamo"):
        if not any(r["source"] == src for r in rows):
            continue
        cells = []
        for t in targets:
            mine = [r for r in rows if r["target"] == t and r["source"] == src and r.get("kind") != "exporter"]
            cells.append(f"{sum(bool(r.get('compiled')) for r in mine)} / {sum(bool(r.get('validated')) for r in mine)}"
                         f" of {len(mine)}")
        out.append(f"| {src} | " + " | ".join(cells) + " |")
    cnn = [r for r in rows if _is_cnn(r["model"]) and r["target"].startswith("ascend-sim") and r.get("compiled")]
    if cnn:
        worst: dict[str, int] = {}
        for r in cnn:
            worst[r["model"]] = max(worst.get(r["model"], 0), int(r.get("transdata", 0)))
        out += ["", "Most TransData kept by a CNN (the zoo's, transformers' convolutional vision models, timm's TIMM_CNNS) on "
                "either chip: " + ", ".join(f"{m.removeprefix('zoo/')} {n}" for m, n in worst.items()) + "."]
        out += ["", "ConvNeXt's channels-last blocks (Transpose to NHWC, LayerNorm over C, Linear layers, "
                "Transpose back) run channels-first in NC1HWC0 (ascend-channels-first: a ChannelLayerNorm and 1x1 "
                "convolutions; the norm's tiles are rows of pixels with every channel); where it cannot (a value "
                "escapes the block, a row too wide for UB) the block keeps its Transposes, with a remark. torch.compile hands the backend a module's parameters as graph inputs: their "
                "TransData (conv weights to FRACTAL_Z) run when the parameters change, not per call, as torch_npu "
                "keeps parameters in their storage format; the TD column counts them apart (+n param)."]
        if any(n > 2 for n in worst.values()):
            out += ["", "Where a CNN keeps more than 2, the report's remarks (ascend-layout, ascend-channels-first) "
                    "say why."]
    flat = sorted({r["model"] for r in rows if r.get("out_absmax") is not None and r["out_absmax"] < 1e-3})
    if flat:
        out += ["", "Outputs near 0 (largest magnitude under 1e-3: a comparison says little): " + ", ".join(flat) + "."]
    # Failures grouped by cause
    failed = [r for r in rows if r.get("error") and r.get("kind") != "exporter" and not r.get("validated")]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in failed:
        groups[(r.get("kind", ""), _mismatch_cause(r) if r.get("kind") == "mismatch" else _cause(r["error"]))].append(r)
    out += ["", "## Failures by cause", "",
            "Each error line with names and numbers generalised (a validation mismatch by what the float32 "
            "run and torch's own float16 error say of it); kind: error = GraphoptError (exit 2), "
            "mismatch = validation (exit 1), internal = a graphopt bug (exit 3), timeout, crash.", "",
            "| rows | kind | cause | rows (model on target) |", "|---:|---|---|---|"]
    for (kind, cause), rs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        who = ", ".join(f"{r['model']} on {r['target']}" for r in rs[:8]) + (f", … {len(rs) - 8} more" if len(rs) > 8 else "")
        out.append(f"| {len(rs)} | {kind} | {_cell(cause)} | {_cell(who)} |")
    notes = [(pattern, note) for pattern, note in CAUSE_NOTES if any(re.search(pattern, c) for _, c in groups)]
    if notes:
        out += ["", "What the recurring causes are (hand-written in benchmarks/model_corpus.py, CAUSE_NOTES):", ""]
        out += [f"- {note}" for _, note in notes]
    exporter = [r for r in rows if r.get("kind") == "exporter" and r["target"] == targets[0]]
    if exporter:
        out += ["", "## Exporter failures", "", "Not graphopt's: the exporter could not write the model.", "",
                "| model | exporter's error |", "|---|---|"]
        out += [f"| {r['model']} | {_cell(r['error'][:200])} |" for r in exporter]
    # Every row
    out += ["", "## Every row", "",
            "|ref|: the reference outputs' largest magnitude (a model whose outputs are all near 0 would "
            "validate trivially); err: worst absolute error over the outputs; judge: onnxruntime's own "
            "difference from torch eager in float32 (transformers exports); fp16 eager: torch eager's own "
            "error when it runs the module in float16 (what float16 rounding alone costs; transformers "
            "models); cos: lowest cosine; fp32: on an "
            "ascend row that fails validation, whether must_keep_origin_dtype validates (and its worst error), and after a float16 overflow whether keeping what validation names in float32 validates; TD: TransData count / MB per call (+n param: TransData of parameters torch.compile feeds at run time, run when they change, as torch_npu keeps parameters converted; not in the time); "
            "AI CPU: op types placed on the AI CPU; time: simulated us (>= when kernels with run-time sizes are not timed); MFU %; s: compile seconds.", "",
            "| model | target | compiles | validates | \\|ref\\| | err | judge | fp16 eager | cos | fp32 | TD | AI CPU | time us | MFU % | s | error |",
            "|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---|"]
    for r in rows:
        if r.get("kind") == "exporter":
            out.append(f"| {r['model']} | {r['target']} | exporter failed | | | | | | | | | | | | | |")
            continue
        comp = "y" if r.get("compiled") else {"timeout": "timeout", "crash": "crash"}.get(r.get("kind", ""), "n")
        val = "" if r.get("validated") is None else "y" if r["validated"] else "n"
        fp32 = {None: "", True: "y", False: "n"}[r.get("fp32_validated")]
        if r.get("fp32_max_abs_err") is not None:
            fp32 += f" {r['fp32_max_abs_err']:.1e}"
        if r.get("keep_validated") is not None:
            fp32 += f"; keep {', '.join(r.get('keep_dtype', []))}: {'y' if r['keep_validated'] else 'n'}"
        td = f"{r['transdata']} / {r.get('transdata_bytes', 0) / 1e6:.2f}" if "transdata" in r else ""
        if r.get("parameter_transdata"):  # torch.compile's parameters, converted when they change
            td += f" (+{r['parameter_transdata']} param)"
        aicpu = ", ".join(r.get("aicpu", []))
        t_us = f"{'>=' if r.get('untimed') else ''}{r['time_us']:.1f}" if r.get("time_us") is not None else ""
        mfu = f"{'<=' if r.get('untimed') else ''}{100 * r['mfu']:.2f}" if r.get("mfu") is not None else ""
        cos = f"{r['cosine']:.4f}" if r.get("cosine") is not None else ""
        err = _cell(r.get("error", ""))[:160]
        ref = f"{r['out_absmax']:.1e}" if r.get("out_absmax") is not None else ""
        fp16_eager = f"{r['out_fp16_err']:.1e}" if r.get("out_fp16_err") is not None else ""
        judge = f"{r['out_judge_err']:.1e}" if r.get("out_judge_err") is not None else ""
        out.append(f"| {r['model']} | {r['target']} | {comp} | {val} | {ref} | {_fmt_err(r)} | {judge} | {fp16_eager} | {cos} | {fp32} | {td} | "
                   f"{_cell(aicpu)} | {t_us} | {mfu} | {r.get('compile_s', '')} | {err} |")
    return "\n".join(out) + "\n"


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        return worker(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=[], help="a model (repeatable); a trailing * matches a prefix")
    ap.add_argument("--quick", action="store_true", help="the subset tests/models/test_model_corpus.py runs")
    ap.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated (default {','.join(TARGETS)})")
    ap.add_argument("--precision", default="force_fp16", choices=["force_fp16", "allow_mix_precision", "must_keep_origin_dtype"])
    ap.add_argument("--jobs", type=int, default=1, help="models in parallel (default 1: the machine is shared)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per build and per row")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"built models and results.json (default {DEFAULT_CACHE})")
    ap.add_argument("--rebuild", action="store_true", help="build the models again")
    ap.add_argument("--doc", type=Path, default=DOC, help="where the table goes (default docs/model-corpus.md)")
    ap.add_argument("--no-doc", action="store_true", help="print the table only")
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    ap.add_argument("--render", action="store_true", help="run nothing: write the table from <cache>/results.json")
    args = ap.parse_args(argv)
    entries = corpus()
    if args.list:
        for e in entries:
            print(f"{e.name:34s} {e.family:8s} {e.source}{'  (quick)' if e.quick else ''}")
        return 0
    chosen = entries
    if args.quick:
        chosen = [e for e in chosen if e.quick]
    if args.only:
        def picked(e: Entry) -> bool:
            return any(e.name == o or (o.endswith("*") and e.name.startswith(o[:-1])) for o in args.only)
        chosen = [e for e in chosen if picked(e)]
        unknown = [o for o in args.only if not o.endswith("*") and o not in {e.name for e in entries}]
        if unknown:
            print(f"model_corpus: no model {unknown[0]!r} (see --list)", file=sys.stderr)
            return 2
    targets = [t for t in args.targets.split(",") if t]
    args.cache.mkdir(parents=True, exist_ok=True)
    results_file = args.cache / "results.json"
    results: dict[str, dict[str, Any]] = json.loads(results_file.read_text()) if results_file.exists() else {}
    commit, started = _git_commit(), time.perf_counter()
    print(f"{len(chosen)} models x {len(targets)} targets, cache {args.cache}, jobs {args.jobs}", flush=True)

    def one(entry: Entry) -> list[dict[str, Any]]:
        rows = run_entry(entry, targets, args.precision, args.cache, args.timeout, args.rebuild)
        for r in rows:
            r["commit"] = commit
        return rows

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for rows in pool.map(one, [] if args.render else chosen):
            for r in rows:
                results[f"{r['model']} | {r['target']}"] = r
            tmp = results_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=1, default=float))
            os.replace(tmp, results_file)
    ran = set() if args.render else {e.name for e in chosen}
    shown = chosen if (args.quick or args.no_doc or (args.render and args.only)) else entries
    have = {r["model"] for r in results.values()}
    shown = [e for e in shown if e.name in have]  # a cache holding part of the corpus shows that part
    rows = [r for r in results.values() if r["model"] in ({e.name for e in shown})]
    commits = sorted({r.get("commit", "?") for r in rows})
    header = "\n".join([
        "# Model corpus: graphopt on real architectures",
        "",
        "Written by `benchmarks/model_corpus.py` (do not edit by hand; rerun it). Every model is built from code",
        "with seeded random weights (onnx's light model zoo with its splat weights replaced and BatchNormalization",
        "calibrated; transformers architectures from tiny configs exported by both torch.onnx exporters, and",
        "with transformers' SDPA attention at opset 23 (@sdpa23: ONNX Attention with boolean masks); the",
        "survey's modules through torch.compile and as saved torch.export programs); each row compiles one model",
        "for one target and validates it against onnxruntime (torch eager for torch.compile and .pt2) with the",
        f"target's tolerances, ascend-sim in {args.precision}.",
        f"Rows from commit(s) {', '.join(commits)}; {len(shown)} models "
        f"({sum(e.source == 'zoo' for e in shown)} zoo, {sum(e.source in EXPORTERS for e in shown)} exports of "
        f"{len({e.arch for e in shown if e.source in EXPORTERS})} transformers architectures, "
        f"{sum(e.source == 'torch.compile' for e in shown)} torch.compile, {sum(e.source == 'torch.export' for e in shown)} .pt2, "
        f"{sum(e.source.startswith('timm-') for e in shown)} exports of {len({e.arch for e in shown if e.source.startswith('timm-')})} "
        "timm architectures).",
    ])
    table = render(rows, shown, targets, header)
    print(table)
    if not (args.quick or args.no_doc):
        args.doc.write_text(table)
        print(f"wrote {args.doc}")
    print(f"{len(ran)} models in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
