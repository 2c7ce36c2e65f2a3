"""graphopt train-sim on small configs: the step composed from compiled layers, the plan's
checks, memory refusal, the 1F1B schedule, the cache, the report and the trace."""

from __future__ import annotations

import json

import pytest

from graphopt.cli import main
from graphopt.errors import GraphoptError
from graphopt.targets.ascend.cluster import load_cluster
from graphopt.targets.ascend.training.config import from_dict, load_config
from graphopt.targets.ascend.training.plan import Plan, check_plan, parse_plan
from graphopt.targets.ascend.training.step import StageWork, one_f_one_b

TINY = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4,
        "num_key_value_heads": 2, "num_hidden_layers": 4, "vocab_size": 1024}
TINY_MOE = {**TINY, "model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 2}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHOPT_CACHE_DIR", str(tmp_path / "cache"))


def _config(tmp_path, d, name="tiny"):
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(d))
    return p


def _run(capsys, *args):
    rc = main(["train-sim", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_a_dense_step_composes_its_parts(tmp_path, capsys):
    cfg = _config(tmp_path, TINY)
    rc, out, err = _run(capsys, cfg, "--chips", 4, "--parallel", "tp=2,pp=2", "--seq", 512, "--global-batch", 8,
                        "--sequence-parallel", "--distributed-optimizer", "-o", tmp_path / "out",
                        "--trace", tmp_path / "trace.json")
    assert rc == 0, err
    r = json.loads((tmp_path / "out" / "report.json").read_text())["training"]
    assert r["plan"]["tp"] == 2 and r["plan"]["pp"] == 2 and r["plan"]["dp"] == 1
    # the breakdown's parts add up to the step
    assert sum(r["breakdown_s"].values()) == pytest.approx(r["step_time_s"], rel=1e-6)
    assert r["tokens_per_s"] == pytest.approx(8 * 512 / r["step_time_s"])
    assert 0 < r["mfu"] < 1 and r["hfu"] >= r["mfu"] * 0.99
    assert r["breakdown_s"]["pipeline_bubble"] > 0  # 2 stages, 8 micro-batches
    assert all(s["aicpu_kernels"] == 0 for s in r["shards"].values())
    assert "tokens/s per chip" in out
    trace = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    compute = [e for e in trace if e["ph"] == "X" and e["tid"] % 2 == 0]
    assert {e["tid"] for e in compute} == {0, 2} and len(compute) == 2 * 2 * 8  # F and B per micro-batch per stage


def test_layers_are_compiled_once_then_cached(tmp_path, capsys):
    cfg = _config(tmp_path, TINY)
    args = (cfg, "--chips", 1, "--seq", 256, "--global-batch", 2, "--json")
    rc, out, _ = _run(capsys, *args)
    first = json.loads(out)
    rc2, out2, _ = _run(capsys, *args)
    second = json.loads(out2)
    assert rc == rc2 == 0
    assert not any(s["cached"] for s in first["shards"].values())
    assert all(s["cached"] for s in second["shards"].values())
    assert second["step_time_s"] == first["step_time_s"]


def test_a_moe_step_with_expert_parallelism(tmp_path, capsys):
    cfg = _config(tmp_path, TINY_MOE, "tiny_moe")
    rc, out, err = _run(capsys, cfg, "--chips", 4, "--parallel", "tp=2,ep=2", "--seq", 256, "--global-batch", 4, "--json",
                        "--trace", tmp_path / "trace.json")
    assert rc == 0, err
    r = json.loads(out)
    assert "moe" in r["shards"] and r["breakdown_s"]["exposed_ep"] > 0
    trace = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    comm = [e for e in trace if e["ph"] == "X" and e["tid"] == 1]  # stage 0's exposed communication lane
    assert comm and all(e["dur"] > 0 for e in comm)


def test_a_plan_that_does_not_fit_is_refused_with_its_numbers(capsys):
    rc, _, err = _run(capsys, "examples/configs/llama2-70b.json", "--chips", 8, "--parallel", "tp=8", "--global-batch", 64)
    assert rc == 2
    assert "GB per chip" in err and "optimizer_states" in err and "Traceback" not in err


@pytest.mark.parametrize("parallel, why", [("tp=3", "does not divide"), ("tp=2,pp=3", "do not fill"),
                                           ("ep=2", "mixture-of-experts"), ("xx=2", "is not one of")])
def test_bad_plans_are_one_line_errors(tmp_path, capsys, parallel, why):
    cfg = _config(tmp_path, TINY)
    rc, _, err = _run(capsys, cfg, "--chips", 6 if "pp=3" in parallel else 4, "--parallel", parallel, "--global-batch", 8)
    assert rc == 2 and why in err and err.count("\n") == 1


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(GraphoptError, match="hidden_size"):
        from_dict({k: v for k, v in TINY.items() if k != "hidden_size"})
    with pytest.raises(GraphoptError, match="model_type 'bert'"):
        from_dict({**TINY, "model_type": "bert"})
    with pytest.raises(GraphoptError, match="no such file"):
        load_config(tmp_path / "missing.json")


def test_bundled_configs_count_their_parameters():
    """The parameter counts the published names give (7B, 13B, 46.7B total / 12.9B active)."""
    assert load_config("examples/configs/llama2-7b.json").params()["total"] == pytest.approx(6.74e9, rel=0.01)
    assert load_config("examples/configs/llama2-13b.json").params()["total"] == pytest.approx(13.0e9, rel=0.01)
    mix = load_config("examples/configs/mixtral-8x7b.json").params()
    assert mix["total"] == pytest.approx(46.7e9, rel=0.01) and mix["active"] == pytest.approx(12.9e9, rel=0.01)


def test_one_f_one_b_matches_its_closed_form():
    """Equal stages: (m + pp - 1)(f + b), plus a send per boundary each way on the fill and drain."""
    stages = [StageWork([], 1.0, 2.0) for _ in range(4)]
    total, events = one_f_one_b(stages, 8, 0.0)
    assert total == pytest.approx((8 + 4 - 1) * 3.0)
    assert len(events) == 4 * 8 * 2
    one, _ = one_f_one_b([StageWork([], 1.0, 2.0)], 8, 5.0)
    assert one == pytest.approx(8 * 3.0)  # one stage: no pipeline, no sends


def test_plan_parsing_and_rank_constraints():
    assert parse_plan("tp=2,pp=2", 8) == {"tp": 2, "pp": 2, "dp": 2}
    model = from_dict(TINY)
    check_plan(Plan(tp=2, pp=2, dp=2), model, 8, 512, 8, load_cluster().chips_per_server)
    with pytest.raises(GraphoptError, match="inside a server"):
        check_plan(Plan(tp=16, dp=1), from_dict({**TINY, "num_attention_heads": 16, "num_key_value_heads": 16}),
                   16, 512, 8, 8)


def test_parallel_auto_ranks_compiled_plans(tmp_path, capsys):
    cfg = _config(tmp_path, TINY)
    rc, out, err = _run(capsys, cfg, "--chips", 4, "--parallel", "auto", "--seq", 256, "--global-batch", 8,
                        "-o", tmp_path / "out")
    assert rc == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    rates = [p["tokens_per_s_per_chip"] for p in report["search"]]
    assert rates == sorted(rates, reverse=True) and len(rates) >= 2
    assert report["training"]["tokens_per_s_per_chip"] == rates[0]
    # the winner, simulated as an explicit plan, gives the same figure
    best = report["training"]["plan"]
    rc, out, _ = _run(capsys, cfg, "--chips", 4, "--parallel", f"tp={best['tp']},pp={best['pp']},vpp={best['vpp']}",
                      "--micro-batch", best["micro_batch"], "--recompute", best["recompute"], "--seq", 256,
                      "--global-batch", 8, "--json", *(["--sequence-parallel"] if best["sequence_parallel"] else []),
                      *(["--distributed-optimizer"] if best["distributed_optimizer"] else []))
    assert json.loads(out)["tokens_per_s_per_chip"] == pytest.approx(rates[0])


def test_an_mla_moe_model_with_dense_first_layers(tmp_path, capsys):
    ds = {**TINY, "model_type": "deepseek_v3", "n_routed_experts": 8, "num_experts_per_tok": 2,
          "moe_intermediate_size": 128, "n_shared_experts": 1, "first_k_dense_replace": 1, "q_lora_rank": 64,
          "kv_lora_rank": 32, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32}
    rc, out, err = _run(capsys, _config(tmp_path, ds, "ds"), "--chips", 8, "--parallel", "tp=2,pp=2,ep=2", "--seq", 256,
                        "--global-batch", 8, "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert {"dense", "moe"} <= set(r["shards"]) and all(s["aicpu_kernels"] <= 1 for s in r["shards"].values())


@pytest.mark.parametrize("args, why", [(["--seq", "0"], "--seq 0"), (["--chips", "-3"], "--chips -3"),
                                       (["--global-batch", "99999999"], "--global-batch")])
def test_out_of_range_arguments_are_one_line_errors(tmp_path, capsys, args, why):
    base = {"--chips": "4", "--global-batch": "8"}
    for k, v in zip(args[::2], args[1::2], strict=True):
        base[k] = v
    rc, _, err = _run(capsys, _config(tmp_path, TINY), *[x for kv in base.items() for x in kv])
    assert rc == 2 and why in err and err.count("\n") == 1
