"""graphopt.patterns and patterns files: what matches, what binds, what is refused."""

from __future__ import annotations

import pytest
from gp_models import cli

from graphopt.errors import GraphoptError
from graphopt.ir import make_context, parse_module, print_module
from graphopt.pattern_file import parse_patterns
from graphopt.patterns import Const, OneOf, Op, Pattern, Tensor, Var, patterns_pass
from graphopt.rewrite import build

T = "tensor<2x4xf32>"


def run(body: str, *patterns: Pattern, args: str = f"%x: {T}, %z: {T}") -> str:
    """Apply ``patterns`` to a function of ``body`` (its last line returns %r); the printed result."""
    text = f"builtin.module {{\n func.func @main({args}) -> {T} {{\n{body}\n func.return %r : {T}\n }}\n}}"
    ctx = make_context()
    module = parse_module(ctx, text)
    patterns_pass("test", patterns)().apply(ctx, module)
    module.verify()
    return print_module(module)


SIG_X = f'%s = "graph.sigmoid"(%x) {{src = ["s"]}} : ({T}) -> {T}'
x = Var("x")
SILU = Pattern("silu", Op("Mul", x, Op("Sigmoid", x)), lambda m: build("Swish", [m["x"]], {}, m.src))


def mul(a: str, b: str, out: str = "%r", src: str = "m") -> str:
    return f'{out} = "graph.mul"({a}, {b}) {{src = ["{src}"]}} : ({T}, {T}) -> {T}'


@pytest.mark.parametrize("operands", [("%x", "%s"), ("%s", "%x")])
def test_commutative_op_matches_either_order_and_erases_the_dead(operands):
    out = run("\n".join([SIG_X, mul(*operands)]), SILU)
    assert '"graph.swish"(%x) {src = ["s", "m"]}' in out
    assert "graph.sigmoid" not in out and "graph.mul" not in out


def test_a_name_bound_twice_must_bind_the_same_value():
    out = run("\n".join([SIG_X, mul("%z", "%s")]), SILU)
    assert "graph.swish" not in out and "graph.mul" in out


def test_one_use_keeps_a_shared_value_out_and_shared_ops_stay():
    body = "\n".join([SIG_X, mul("%x", "%s", out="%t", src="t"), mul("%t", "%s")])
    gated = Pattern("g", Op("Mul", Op("Mul", x, Op("Sigmoid", x, one_use=True)), Var("b")),
                    lambda m: build("SwiGLU", [m["x"], m["b"]], {}, m.src))
    assert "graph.swiglu" not in run(body, gated)  # the sigmoid has two users
    out = run(body, SILU)  # the sigmoid stays for its other user
    assert "graph.swish" in out and "graph.sigmoid" in out


def const(name: str, value: float) -> str:
    return f'{name} = "graph.constant"() <{{value = dense<{value}> : tensor<f32>}}> : () -> tensor<f32>'


def half_of(value: float) -> str:
    return "\n".join([const("%c", value), f'%r = "graph.mul"(%x, %c) : ({T}, tensor<f32>) -> {T}'])


@pytest.mark.parametrize(("value", "rel", "matches"), [(0.5, 1e-3, True), (0.5004, 1e-3, True), (0.51, 1e-3, False),
                                                        (0.5004, 0.0, False)])
def test_constants_match_within_the_tolerance(value, rel, matches):
    p = Pattern("half", Op("Mul", x, Const(0.5, rel=rel)), lambda m: build("Neg", [m["x"]], {}, m.src))
    assert ("graph.neg" in run(half_of(value), p)) == matches


def test_alternatives_backtrack_until_the_rewrite_accepts():
    tried = []

    def rewrite(m):
        tried.append(sorted(m.values))
        return None if "c" in m.values else build("Neg", [m["x"]], {}, m.src)

    p = Pattern("alt", OneOf(Op("Mul", x, Const(name="c")), Op("Mul", x, Var("y"))), rewrite)
    assert "graph.neg" in run(half_of(0.5), p)
    assert tried[0] == ["c", "x"] and "y" in tried[-1]


def test_a_predicate_declines_and_named_constants_bind_values():
    seen = {}

    def where(m):
        seen["c"] = m.const("c")
        return m.const("c") > 1

    p = Pattern("w", Op("Mul", x, Const(name="c")), lambda m: build("Neg", [m["x"]], {}, m.src), where=where)
    assert "graph.neg" not in run(half_of(0.5), p)
    assert seen["c"] == 0.5


def test_attributes_read_onnx_defaults_when_unset():
    body = f'%r = "graph.softmax"(%x) : ({T}) -> {T}'
    for axis, matches in ((-1, True), (0, False)):
        p = Pattern("sm", Op("Softmax", x, attrs={"axis": axis}), lambda m: build("Neg", [m["x"]], {}, m.src))
        assert ("graph.neg" in run(body, p)) == matches


def test_ops_match_by_trait_and_by_typed_class():
    from graphopt.dialects.graph import Sigmoid
    from graphopt.dialects.traits import Elementwise, Reduction

    body = "\n".join([SIG_X, f'%r = "graph.exp"(%s) : ({T}) -> {T}'])
    for root, matches in ((Op(Elementwise, Op(Elementwise, x)), True), (Op(Elementwise, Op(Sigmoid, x)), True),
                          (Op(Reduction, Op(Elementwise, x)), False), (Op("Exp", Op("Relu", x)), False)):
        out = run(body, Pattern("t", root, lambda m: build("Neg", [m["x"]], {}, m.src)))
        assert ("graph.neg" in out) == matches, root


def test_a_replacement_of_another_type_is_discarded():
    body = mul("%x", "%z")
    p = Pattern("t", Op("Mul", x, Var("y")), lambda m: build("ReduceSum", [m["x"]], {"keepdims": 0}, m.src))
    out = run(body, p)
    assert "graph.mul" in out and "reduce_sum" not in out


def test_an_existing_value_can_replace_the_root():
    body = "\n".join([f'%n = "graph.neg"(%x) : ({T}) -> {T}', f'%r = "graph.neg"(%n) : ({T}) -> {T}'])
    out = run(body, Pattern("nn", Op("Neg", Op("Neg", x)), lambda m: m["x"]))
    assert "graph.neg" not in out and "func.return %x" in out


def test_rest_binds_further_operands_and_tensor_matches_arrays():
    body = "\n".join([
        '%w = "graph.constant"() <{value = dense<1.0> : tensor<4xf32>}> : () -> tensor<4xf32>',
        f'%r = "graph.sum"(%x, %z, %w) : ({T}, {T}, tensor<4xf32>) -> {T}',
    ])
    got = {}

    def rewrite(m):
        got["rest"] = len(m.rest.get("more", []))
        if m.get("w") is not None:
            got["w"] = m.array("w").tolist()
        return None

    run(body, Pattern("r", Op("Sum", x, rest="more"), rewrite))
    assert got["rest"] == 2
    assert "w" not in got
    run(body, Pattern("r", Op("Sum", x, Var(), Tensor("w")), rewrite))
    assert got == {"rest": 0, "w": [1.0] * 4}
    assert "graph.sum" in run(body, Pattern("r2", Op("Sum", x, Var()), lambda m: m["x"]))  # 3 operands, not 2


# -- patterns files --------------------------------------------------------------------


def test_a_patterns_file_rewrites():
    _, _, rules = parse_patterns("silu: Mul(x, Sigmoid(x)) -> Swish(x)\nnn: Neg(Neg(x)) -> x\n")
    assert "graph.swish" in run("\n".join([SIG_X, mul("%s", "%x")]), *rules)
    out = run("\n".join([f'%n = "graph.neg"(%x) : ({T}) -> {T}', f'%r = "graph.neg"(%n) : ({T}) -> {T}']), *rules)
    assert "graph.neg" not in out


def test_a_patterns_file_matches_attributes_and_numbers():
    _, _, rules = parse_patterns("p: Mul(x, 0.5) -> Neg(x)\nsm: Softmax(x, axis=-1) -> LogSoftmax(x, axis=-1)")
    assert "graph.neg" in run(half_of(0.5), *rules)
    assert "graph.log_softmax" in run(f'%r = "graph.softmax"(%x) : ({T}) -> {T}', *rules)


@pytest.mark.parametrize(("text", "says"), [
    ("bad: Mul(x, Foo(x)) -> x", "Foo is not an ONNX op type"),
    ("bad: Mul(x, y) -> Swish(z)", "z on the right of -> is not bound"),
    ("bad: Mul(x, 2.0) -> Mul(x, 3.0)", "a number on the right of ->"),
    ("bad Mul(x) -> x", "write a rule as"),
    ('bad: Softmax(x, axis="a") -> x', "Softmax's axis is int"),
    ("bad: Softmax(x, axes=1) -> x", "Softmax has no attribute 'axes'"),
    ("bad: Mul(x, y -> x", "expected ','"),
    ("bad: x -> x", "the left of -> must be an op"),
    ("pass Bad_Name", "write `pass kebab-case-name"),
    ("bad: Mul(x, y) -> Add(x, y) extra", "unexpected text"),
    ("bad: Mul(x, y) -> Div|Mul(x, y)", "build one op type"),
    ("# nothing", "no rules"),
    ("deep: " + "Neg(" * 5000 + "x" + ")" * 5000 + " -> x", "nests too deeply"),
    ("deep: Transpose(x, perm=" + "[" * 5000 + "]" * 5000 + ") -> x", "nests too deeply"),
    ("big: Softmax(x, axis=" + "9" * 5000 + ") -> x", "not a usable value"),
    ("arity: Neg(x) -> Add(x)", "Add takes 2 operands (a, b), not 1"),
    ("arity: Neg(x) -> Gemm(x)", "Gemm takes 2-3 operands (a, b, c?), not 1"),
    ("arity: Relu(x, y) -> x", "Relu takes 1 operand (x), not 2"),
])
def test_patterns_file_errors_name_the_line(text, says):
    with pytest.raises(GraphoptError, match=r"f\.patterns") as e:
        parse_patterns("# header\n" + text, "f.patterns")
    assert says in str(e.value)
    assert "f.patterns:2" in str(e.value) or says == "no rules"


def test_a_rule_that_never_ends_is_stopped():
    _, _, rules = parse_patterns("loop: Neg(x) -> Neg(Neg(x))")
    with pytest.raises(GraphoptError, match="keeps rewriting"):
        run(f'%r = "graph.neg"(%x) : ({T}) -> {T}', *rules)


def test_cli_refuses_a_bad_patterns_file_with_exit_2(tmp_path):
    bad = tmp_path / "bad.patterns"
    bad.write_text("r: Mul(x, Nope(x)) -> x\n")
    proc = cli("passes", "--load-patterns", bad)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "bad.patterns:1: Nope" in proc.stderr


def _random_term(rng, depth: int, source: bool) -> str:
    unary = ["Neg", "Exp", "Sigmoid", "Relu", "Log", "Sqrt", "Abs", "Softmax", "Transpose", "Swish", "Gelu", "Identity"]
    binary = ["Add", "Mul", "Sub", "Div", "Pow", "Max"]
    r = rng.random()
    if depth > 3 or r < 0.3:
        return rng.choice(["x", "y"] + (["_", "1.0", "0.5"] if source else []))
    if r < 0.65:
        return f"{rng.choice(unary)}({_random_term(rng, depth + 1, source)})"
    return f"{rng.choice(binary)}({_random_term(rng, depth + 1, source)}, {_random_term(rng, depth + 1, source)})"


def test_random_rules_load_or_refuse_and_apply_or_stop():
    """Random rules: each is refused when it loads, or applies (or is stopped) on a graph; none crashes."""
    import random

    rng = random.Random(11)
    body = "\n".join([SIG_X, mul("%x", "%s", out="%t", src="t"), f'%e = "graph.exp"(%t) : ({T}) -> {T}',
                      f'%n = "graph.neg"(%e) : ({T}) -> {T}', mul("%n", "%z")])
    applied = 0
    for _ in range(80):
        head = rng.choice(["Neg", "Exp", "Mul", "Add"])
        rule = f"r: {head}({_random_term(rng, 1, True)}, {_random_term(rng, 1, True)}) -> {_random_term(rng, 1, False)}"
        if head in ("Neg", "Exp"):
            rule = f"r: {head}({_random_term(rng, 1, True)}) -> {_random_term(rng, 1, False)}"
        try:
            _, _, rules = parse_patterns(rule)
            run(body, *rules)
            applied += 1
        except GraphoptError:
            pass
    assert applied > 5
