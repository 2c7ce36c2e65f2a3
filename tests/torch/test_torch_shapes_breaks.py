"""Shapes (specialised per shape, cached), graph breaks, and unsupported ops."""

from __future__ import annotations

import pytest
import tmodels
import torch

from graphopt.torch_backend import GraphRunner


@pytest.fixture
def builds(monkeypatch):
    """Counts the executables graphopt builds (one per graph and input shape)."""
    count = {"n": 0}
    original = GraphRunner._build

    def counting(self, args):
        count["n"] += 1
        return original(self, args)

    monkeypatch.setattr(GraphRunner, "_build", counting)
    return count


def test_new_input_shape(builds):
    model = tmodels.bert()
    f = torch.compile(model, backend="graphopt")
    with torch.no_grad():
        for batch, seq in ((2, 8), (3, 8), (1, 6), (3, 8)):
            x = tmodels.tokens(batch, seq)
            torch.testing.assert_close(f(x).last_hidden_state, model(x).last_hidden_state)
    assert builds["n"] == 3  # (3, 8) twice: the second call reuses the cached executable


def test_dynamic_true(builds):
    model = tmodels.gpt2()
    f = torch.compile(model, backend="graphopt", dynamic=True)
    with torch.no_grad():
        for seq in (8, 5, 11, 5):
            x = tmodels.tokens(2, seq)
            torch.testing.assert_close(f(x).logits, model(x).logits)
    assert builds["n"] == 3  # one symbolic graph from dynamo, specialised per sequence length


def test_dynamic_training():
    model = tmodels.moe().train()
    f = torch.compile(model, backend="graphopt", dynamic=True)
    for tokens in (5, 7):
        x = torch.randn(2, tokens, 32, requires_grad=True)
        f(x).sum().backward()
        got = x.grad.clone()
        x.grad = None
        model(x).sum().backward()
        torch.testing.assert_close(got, x.grad)


def _with_break(x):
    y = torch.sin(x) * 2
    torch._dynamo.graph_break()
    return torch.cos(y) + y.sum(-1, keepdim=True)


def test_graph_breaks_each_fragment_compiles(builds):
    x = torch.randn(4, 5)
    assert torch._dynamo.explain(_with_break)(x).graph_count == 2
    torch._dynamo.reset()
    torch.testing.assert_close(torch.compile(_with_break, backend="graphopt")(x), _with_break(x))
    assert builds["n"] == 2


def _unsupported(x):
    return torch.special.bessel_j0(x) + 1  # no row in FX_TO_GRAPH


def test_unsupported_op_names_op_and_source_line():
    with pytest.raises(Exception) as info:
        torch.compile(_unsupported, backend="graphopt")(torch.randn(3))
    text = str(info.value)
    assert "aten.special_bessel_j0" in text
    line = _unsupported.__code__.co_firstlineno + 1
    assert f"test_torch_shapes_breaks.py:{line}" in text, text


def test_unsupported_op_under_dynamic_fails_at_compile_time():
    with pytest.raises(Exception, match="special_bessel_j0"):
        torch.compile(_unsupported, backend="graphopt", dynamic=True)(torch.randn(3))


def test_compile_keeps_no_ir_and_restores_the_gc(monkeypatch):
    """A compiled graph holds its executable, not its IR: the module is garbage once built
    (the compile ran with the GC paused; it is back on, and collected the young IR)."""
    import gc
    import weakref

    import graphopt.compiler

    modules = []
    original = graphopt.compiler.build_compiled

    def recording(*args, **kwargs):
        compiled = original(*args, **kwargs)
        modules.append(weakref.ref(compiled.module))
        return compiled

    monkeypatch.setattr(graphopt.compiler, "build_compiled", recording)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), torch.nn.Linear(8, 4))
    f = torch.compile(model, backend="graphopt")
    x = torch.randn(2, 8)
    with torch.no_grad():
        torch.testing.assert_close(f(x), model(x))
    assert gc.isenabled()
    gc.collect()
    assert modules and all(ref() is None for ref in modules)


def test_compile_leaves_a_disabled_gc_disabled():
    import gc

    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU())
    gc.disable()
    try:
        f = torch.compile(model, backend="graphopt")
        with torch.no_grad():
            f(torch.randn(2, 8))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_outputs_written_in_place_after_a_graph_break():
    """Buffers a graph returns and eager code then writes in place (MoE layers' zeros_like +
    index_add_): every output is a tensor of its own, and no run changes the next one's."""

    def f(x):
        a, b = torch.zeros(4), torch.zeros(4)  # one constant after CSE, in both outputs
        torch._dynamo.graph_break()
        a.add_(x)
        b.add_(2 * x)
        return a, b

    compiled = torch.compile(f, backend="graphopt")
    for _ in range(2):
        x = torch.randn(4)
        a, b = compiled(x)
        torch.testing.assert_close(a, x)
        torch.testing.assert_close(b, 2 * x)
