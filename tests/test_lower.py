"""The lowering (khospec/engine/lower.py) on its own: typed programs of small inline specs
turned into z3 formulas, and the formulas checked with z3 (proved equal, satisfiable or
not) rather than read as text.

C arithmetic is checked against the reference on Python ints (khospec/carith.py);
functions, loops, emitted values, requires, the tree of traces and the layout builtins
against what the lowering's docstrings promise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from khospec import carith, ir
from khospec.engine.lower import Lowering
from khospec.engine.state import Frame, LowerError
from khospec.engine.trace import TraceNode, build_tree
from khospec.types import SCALARS, BoolType, IntType, Type, promote, usual_conversion
from tests.helpers import load_spec

# ---------------------------------------------------------------- helpers

_load = load_spec


def _lowering(program: ir.Program, **kw: Any) -> Lowering:
    # a context per lowering, as the engine makes one per check
    return Lowering(program, None, z3.Context(), **kw)


def _frame(low: Lowering, locs: dict[int, Any] | None = None, label: str = "test") -> Frame:
    t, f = z3.BoolVal(True, low.ctx), z3.BoolVal(False, low.ctx)
    return Frame(locals=dict(locs or {}), state=None, guard=t, returned=f, ret=None, emits=[], requires=[],
                 label=label)


def _int(ty: Type | None) -> IntType:
    assert isinstance(ty, IntType), ty
    return ty


def _bv(low: Lowering, value: int, ty: IntType) -> Any:
    return z3.BitVecVal(value & ((1 << ty.width) - 1), ty.width, low.ctx)


def _args(low: Lowering, fn: ir.FnDef, *values: int) -> dict[int, Any]:
    """Concrete arguments for fn's parameters, by local id."""
    return {p.uid: _bv(low, v, _int(p.ty)) for p, v in zip(fn.params, values, strict=True)}


def _symbolic(low: Lowering, fn: ir.FnDef) -> tuple[dict[int, Any], list[Any]]:
    """A free symbol per parameter of fn: the locals and the symbols in order."""
    syms = [z3.BitVec(p.name, _int(p.ty).width, low.ctx) for p in fn.params]
    return {p.uid: s for p, s in zip(fn.params, syms, strict=True)}, syms


def _value(term: Any, ty: Type) -> int | bool:
    v = z3.simplify(term)
    if isinstance(ty, BoolType):
        assert z3.is_true(v) or z3.is_false(v), v
        return bool(z3.is_true(v))
    assert z3.is_bv_value(v), v
    return _int(ty).wrap(v.as_long())


def _valid(ctx: z3.Context, formula: Any, *facts: Any) -> bool:
    """``formula`` holds in every model of ``facts``."""
    s = z3.Solver(ctx=ctx)
    s.add(*facts, z3.Not(formula))
    return bool(s.check() == z3.unsat)


def _sat(ctx: z3.Context, *formulas: Any) -> bool:
    s = z3.Solver(ctx=ctx)
    s.add(*formulas)
    return bool(s.check() == z3.sat)


def _let_value(fn: ir.FnDef) -> ir.Expr:
    """The expression of ``let r = ...``, the first statement of fn."""
    assert isinstance(fn.body, tuple)
    first = fn.body[0]
    assert isinstance(first, ir.SLet)
    return first.value


def _foralls(e: ir.Expr) -> tuple[list[ir.Local], ir.Expr]:
    """The variables of the leading `forall`s of a claim, and its body."""
    out: list[ir.Local] = []
    while isinstance(e, ir.Quant) and e.kind == "forall" and e.domain.kind == "type":
        out.append(e.var)
        e = e.body
    return out, e


def _claim(program: ir.Program, name: str) -> ir.Expr:
    check = next(c for c in program.checks if c.name == name)
    assert check.claim.expr is not None
    return check.claim.expr


# ---------------------------------------------------------------- C arithmetic

_VARS = {"a": "int", "b": "uint", "c": "long", "d": "ulong", "s": "u8", "h": "s16"}
_PARAMS = ", ".join(f"{n}: {t}" for n, t in _VARS.items())
# literals of every type C gives them: int, uint (a hex literal above INT_MAX), long
_LITERALS = ["1", "7", "255", "0x80000000", "3000000000"]
_ARITH = ["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"]
_COMPARE = ["<", "<=", ">", ">=", "==", "!="]
_CASTS = ["int", "uint", "long", "ulong", "u8", "s16"]


def _grow(sub: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, op, b: f"({a} {op} {b})", sub, st.sampled_from(_ARITH), sub),
        st.builds(lambda op, a: f"({op}{a})", st.sampled_from(["-", "~"]), sub),
        st.builds(lambda t, a: f"(({t}){a})", st.sampled_from(_CASTS), sub),
        st.builds(lambda a, op, b, x, y: f"({a} {op} {b} ? {x} : {y})",
                  sub, st.sampled_from(_COMPARE), sub, sub, sub),
    )


_EXPRESSIONS = st.recursive(st.sampled_from([*_VARS, *_LITERALS]), _grow, max_leaves=8)


def _operand(ty: IntType) -> st.SearchStrategy[int]:
    edges = [ty.min, ty.max, 0, 1, -1 if ty.signed else 2, ty.min + 1, ty.max - 1]
    return st.one_of(st.sampled_from(edges), st.integers(ty.min, ty.max))


def _reference(e: ir.Expr, env: dict[int, int]) -> int | bool:
    """The typed expression on Python ints, with carith's C arithmetic."""
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.Local):
        return env[e.uid]
    if isinstance(e, ir.Convert):
        return carith.convert(_reference(e.operand, env), _int(e.ty))
    if isinstance(e, ir.Unary):
        v = _reference(e.operand, env)
        return (not v) if e.op == "!" else carith.unary(e.op, int(v), _int(e.ty))
    if isinstance(e, ir.Ite):
        return _reference(e.then, env) if _reference(e.cond, env) else _reference(e.else_, env)
    if isinstance(e, ir.Binary):
        a, b = _reference(e.left, env), _reference(e.right, env)
        if e.op in _COMPARE:
            return carith.compare(e.op, int(a), int(b))
        if e.op in ("<<", ">>"):
            return carith.binary(e.op, int(a), int(b), _int(e.ty), _int(e.right.ty))
        return carith.binary(e.op, int(a), int(b), _int(e.ty))
    raise AssertionError(f"no reference for {type(e).__name__}")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # module-scoped: hypothesis runs many examples in one test function
    return tmp_path_factory.mktemp("lower")


@settings(max_examples=40, deadline=None)
@given(_EXPRESSIONS, st.data())
def test_expression_trees_agree_with_carith(folder: Path, source: str, data: st.DataObject) -> None:
    # random expressions over variables of six types and literals of three: every
    # implicit conversion is the resolver's (explicit in the IR), the arithmetic the
    # lowering's, evaluated by z3 on concrete operands
    program = _load(folder, f"fn e({_PARAMS}) -> bool {{\n  let r = {source}\n  return true\n}}\n")
    fn = program.fns["e"]
    expr = _let_value(fn)
    env = {p.uid: data.draw(_operand(_int(p.ty)), label=p.name) for p in fn.params}
    low = _lowering(program)
    lowered = low.ev(expr, _frame(low, {p.uid: _bv(low, env[p.uid], _int(p.ty)) for p in fn.params}))
    assert _value(lowered, expr.ty) == _reference(expr, env), source


_TYPES = ["int", "uint", "long", "ulong", "u8", "u16", "s8", "s16"]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(_TYPES), st.sampled_from(_TYPES), st.sampled_from(_ARITH + _COMPARE), st.data())
def test_mixed_operands_follow_the_usual_arithmetic_conversions(
    folder: Path, left: str, right: str, op: str, data: st.DataObject
) -> None:
    # the reference here does not read the IR: it applies C's promotions and usual
    # arithmetic conversions (types.py) to the operands itself, so a conversion the
    # resolver forgot or the lowering dropped shows up
    lt, rt = _int(SCALARS[left]), _int(SCALARS[right])
    a, b = data.draw(_operand(lt), label="a"), data.draw(_operand(rt), label="b")
    program = _load(folder, f"fn e(a: {left}, b: {right}) -> bool {{\n  let r = a {op} b\n  return true\n}}\n")
    fn = program.fns["e"]
    expr = _let_value(fn)
    if op in ("<<", ">>"):
        ty, count_ty = promote(lt), promote(rt)
        want: int | bool = carith.binary(op, carith.convert(a, ty), carith.convert(b, count_ty), ty, count_ty)
    else:
        ty = usual_conversion(lt, rt)
        x, y = carith.convert(a, ty), carith.convert(b, ty)
        want = carith.compare(op, x, y) if op in _COMPARE else carith.binary(op, x, y, ty)
    if op not in _COMPARE:
        assert expr.ty == ty
    low = _lowering(program)
    assert _value(low.ev(expr, _frame(low, _args(low, fn, a, b))), expr.ty) == want


# C facts written out by hand, independent of carith: (parameters, expression,
# arguments, the value C gives)
C_FACTS = [
    # -1 becomes UINT_MAX against an unsigned int, stays -1 against a long
    ("a: int, b: uint", "a < b", (-1, 1), False),
    ("a: int, b: long", "a < b", (-1, 1), True),
    # integer promotion: u8 arithmetic happens in int
    ("x: u8", "~x", (0,), -1),
    ("x: u8, y: u8", "x + y", (200, 100), 300),
    # unsigned wrap-around, in the type of the wider operand
    ("x: uint", "x - 1", (0,), 0xFFFF_FFFF),
    ("x: uint, y: ulong", "x - y", (0, 1), 0xFFFF_FFFF_FFFF_FFFF),
    # shifts: arithmetic for signed, logical for unsigned, the count modulo the width
    ("x: int", "x >> 1", (-4,), -2),
    ("x: uint", "x >> 1", (0x8000_0000,), 0x4000_0000),
    ("x: int, k: int", "x << k", (1, 32), 1),
    ("x: int, k: int", "x << k", (1, 31), -(1 << 31)),
    # division truncates toward zero, the remainder has the dividend's sign
    ("x: long, y: int", "x / y", (-7, 2), -3),
    ("x: int, y: int", "x % y", (-7, 2), -1),
    ("x: int, y: int", "x / y", (-(1 << 31), -1), -(1 << 31)),
    # include/linux/align.h: the macros' arithmetic promotes x, so a narrow x aligns in int
    ("x: s8", "ALIGN(x, 2)", (127,), 128),
    ("x: u8", "ALIGN(x, 2)", (255,), 256),
    ("x: s8", "ALIGN_DOWN(x, 4)", (-1,), -4),
    ("x: uint", "ALIGN(x, 2)", (0xFFFF_FFFF,), 0),
]


@pytest.mark.parametrize(("params", "source", "args", "want"), C_FACTS)
def test_c_facts(tmp_path: Path, params: str, source: str, args: tuple[int, ...], want: int | bool) -> None:
    program = _load(tmp_path, f"fn e({params}) -> bool {{\n  let r = {source}\n  return true\n}}\n")
    fn = program.fns["e"]
    expr = _let_value(fn)
    low = _lowering(program)
    assert _value(low.ev(expr, _frame(low, _args(low, fn, *args))), expr.ty) == want


# (source type, destination type): widening extends by the source's signedness,
# narrowing keeps the low bits
CONVERSIONS = [
    ("int", "ulong"), ("int", "long"), ("s8", "uint"), ("s16", "ulong"),
    ("uint", "ulong"), ("uint", "long"), ("u8", "int"), ("u16", "long"),
    ("long", "int"), ("ulong", "uint"), ("int", "u8"), ("long", "s16"),
]


@pytest.mark.parametrize(("src", "dst"), CONVERSIONS)
def test_implicit_conversions_extend_by_the_source_signedness(tmp_path: Path, src: str, dst: str) -> None:
    # implicit at a function's result and at a call's argument: both become the same
    # C conversion, proved for every value of x
    program = _load(tmp_path, f"""
fn direct(x: {src}) -> {dst} = x
fn take(y: {dst}) -> {dst} = y
fn passed(x: {src}) -> {dst} = take(x)
""")
    s, d = _int(SCALARS[src]), _int(SCALARS[dst])
    low = _lowering(program)
    x = z3.BitVec("x", s.width, low.ctx)
    if d.width > s.width:
        want = (z3.SignExt if s.signed else z3.ZeroExt)(d.width - s.width, x)
    elif d.width < s.width:
        want = z3.Extract(d.width - 1, 0, x)
    else:
        want = x
    for name in ("direct", "passed"):
        fn = program.fns[name]
        assert not isinstance(fn.body, tuple)
        got = low.ev(fn.body, _frame(low, {fn.params[0].uid: x}))
        assert _valid(low.ctx, got == want), (name, src, dst)


def test_sign_and_zero_extension_on_concrete_values(tmp_path: Path) -> None:
    program = _load(tmp_path, """
fn from_int(x: int) -> ulong = x
fn from_uint(x: uint) -> ulong = x
""")
    low = _lowering(program)
    for name, want in (("from_int", 0xFFFF_FFFF_FFFF_FFFF), ("from_uint", 0xFFFF_FFFF)):
        fn = program.fns[name]
        assert not isinstance(fn.body, tuple) and fn.ret is not None
        assert _value(low.ev(fn.body, _frame(low, _args(low, fn, -1))), fn.ret) == want


# ---------------------------------------------------------------- functions

FUNCTIONS = """
fn f(x: uint) -> uint = x * 3 + 1
fn g(x: int) -> int {
  if x < 0 {
    return -x
  }
  return x
}
fn h(x: uint) -> uint {
  require positive: x > 0
  return x - 1
}
fn k(x: uint) {
  if x > 10 {
    require big: x > 20
  }
}
fn calls_f(x: uint) -> uint = f(x)
fn calls_g(x: int) -> int = g(x)
fn calls_h(x: uint) -> uint = h(x)
fn twice_f(x: uint) -> uint = f(x) + f(x)
check k_requires: forall x: uint. requires_hold(k(x))
"""


def test_a_call_is_the_callee_body_on_the_arguments(tmp_path: Path) -> None:
    program = _load(tmp_path, FUNCTIONS)
    low = _lowering(program)
    ctx = low.ctx
    for caller in ("calls_f", "calls_g"):
        fn = program.fns[caller]
        assert not isinstance(fn.body, tuple)
        locs, [x] = _symbolic(low, fn)
        got = low.ev(fn.body, _frame(low, locs))
        zero = z3.BitVecVal(0, 32, ctx)
        want = x * 3 + 1 if caller == "calls_f" else z3.If(x < zero, -x, x)
        assert _valid(ctx, got == want), caller
        # and the term differs from a wrong body: the comparison above can fail
        assert not _valid(ctx, got == x)


def test_a_pure_function_is_lowered_once_per_argument_term(tmp_path: Path) -> None:
    # memoised per argument terms: f(x) + f(x) reads one term twice
    program = _load(tmp_path, FUNCTIONS)
    low = _lowering(program)
    fn = program.fns["twice_f"]
    assert not isinstance(fn.body, tuple)
    locs, [x] = _symbolic(low, fn)
    got = low.ev(fn.body, _frame(low, locs))
    assert got.num_args() == 2 and got.arg(0).eq(got.arg(1))
    assert _valid(low.ctx, got == 2 * (x * 3 + 1))


def test_a_call_brings_its_requires_with_their_guards(tmp_path: Path) -> None:
    program = _load(tmp_path, FUNCTIONS)
    low = _lowering(program)
    ctx = low.ctx
    fn = program.fns["calls_h"]
    assert not isinstance(fn.body, tuple)
    locs, [x] = _symbolic(low, fn)
    fr = _frame(low, locs)
    got = low.ev(fn.body, fr)
    assert _valid(ctx, got == x - 1)
    [req] = fr.requires
    assert req.name == "positive"
    assert _valid(ctx, req.guard)
    assert _valid(ctx, req.cond == z3.UGT(x, 0))


def test_requires_hold_is_every_require_under_its_guard(tmp_path: Path) -> None:
    program = _load(tmp_path, FUNCTIONS)
    low = _lowering(program)
    ctx = low.ctx
    [var], body = _foralls(_claim(program, "k_requires"))
    x = z3.BitVec("x", 32, ctx)
    got = low.ev(body, _frame(low, {var.uid: x}), -1)
    # the require runs only where x > 10
    assert _valid(ctx, got == z3.Implies(z3.UGT(x, 10), z3.UGT(x, 20)))
    assert _sat(ctx, z3.Not(got)) and _sat(ctx, got, z3.UGT(x, 10))


def test_requires_are_not_collected_when_only_reachability_matters(tmp_path: Path) -> None:
    program = _load(tmp_path, FUNCTIONS)
    low = _lowering(program)
    low.collect_requires = False
    fn = program.fns["calls_h"]
    assert not isinstance(fn.body, tuple)
    locs, _ = _symbolic(low, fn)
    fr = _frame(low, locs)
    low.ev(fn.body, fr)
    assert fr.requires == []


# ---------------------------------------------------------------- quantifiers

QUANTIFIERS = """
fn none_below_four(x: uint) -> bool = forall i in [0, 4). x != (uint)i
check no_wrap: forall y: uint. y + 1 != 0
check both_ways: (forall y: uint. y + 1 != 0) <-> true
"""


def test_a_quantifier_over_a_constant_interval_is_expanded(tmp_path: Path) -> None:
    program = _load(tmp_path, QUANTIFIERS)
    low = _lowering(program)
    fn = program.fns["none_below_four"]
    assert not isinstance(fn.body, tuple)
    locs, [x] = _symbolic(low, fn)
    # whatever the polarity, and without a witness
    for pol in (-1, 0, 1):
        got = low.ev(fn.body, _frame(low, locs), pol)
        assert _valid(low.ctx, got == z3.UGE(x, 4)), pol
    assert low.skolems == []


def test_a_denied_forall_gets_a_witness(tmp_path: Path) -> None:
    program = _load(tmp_path, QUANTIFIERS)
    low = _lowering(program)
    got = low.ev(_claim(program, "no_wrap"), _frame(low), -1)
    [w] = low.skolems
    assert w.role == "witness" and w.name == "y"
    s = z3.Solver(ctx=low.ctx)
    s.add(z3.Not(got))
    assert s.check() == z3.sat
    assert s.model().eval(w.sym).as_long() == 0xFFFF_FFFF  # the only y with y + 1 == 0


def test_a_quantifier_both_asserted_and_denied_is_refused(tmp_path: Path) -> None:
    program = _load(tmp_path, QUANTIFIERS)
    low = _lowering(program)
    with pytest.raises(LowerError) as info:
        low.ev(_claim(program, "both_ways"), _frame(low), -1)
    assert info.value.diag.code == "KHO510"


# ---------------------------------------------------------------- loops

def _count(invariant: str) -> str:
    return f"""
fn count(n: uint) -> uint {{
  var i: uint = 0
  while i < n
    {invariant}
  {{
    require inside: i < n
    i = i + 1
  }}
  return i
}}
fn calls_count(n: uint) -> uint = count(n)
"""


def _lower_count(tmp_path: Path, invariant: str, unroll: int) -> tuple[Lowering, Any, Any, Frame]:
    """count(n) lowered for a symbolic n: (lowering, n, the result, the caller's frame)."""
    program = _load(tmp_path, _count(invariant))
    low = _lowering(program, unroll=unroll)
    fn = program.fns["calls_count"]
    assert not isinstance(fn.body, tuple)
    locs, [n] = _symbolic(low, fn)
    fr = _frame(low, locs)
    return low, n, low.ev(fn.body, fr), fr


@pytest.mark.parametrize("unroll", [1, 2, 4])
def test_a_loop_without_invariant_is_unrolled_n_times(tmp_path: Path, unroll: int) -> None:
    low, n, result, fr = _lower_count(tmp_path, "", unroll)
    ctx = low.ctx
    [loop] = low.loops
    assert loop.fn == "count"
    # no stand-in for the iterations past the unrolling
    assert loop.tail is None and loop.entry_violation is None and loop.consecution is None
    # the loop may still run exactly when n exceeds the unrolled iterations
    assert _valid(ctx, loop.open == z3.UGT(n, unroll))
    # within the bound the result is exact; beyond it, i stopped after `unroll` steps
    assert _valid(ctx, result == z3.If(z3.ULE(n, unroll), n, z3.BitVecVal(unroll, 32, ctx)))
    # one require per unrolled iteration, each where that iteration runs
    assert [r.label.rsplit("#", 1)[1] for r in fr.requires] == [str(k) for k in range(unroll)]
    for k, r in enumerate(fr.requires):
        assert _valid(ctx, r.guard == z3.UGT(n, k))


def test_an_inductive_invariant_covers_every_iteration(tmp_path: Path) -> None:
    low, n, result, fr = _lower_count(tmp_path, "invariant i <= n", 2)
    ctx = low.ctx
    [loop] = low.loops
    assert loop.tail is not None and loop.entry_violation is not None and loop.consecution is not None
    # entry: the invariant holds after the unrolled iterations
    assert not _sat(ctx, loop.entry_violation)
    # consecution: one more iteration keeps it
    assert not _sat(ctx, loop.consecution)
    # exit: a state satisfying the invariant where the condition fails, so i == n
    assert _valid(ctx, result == n, *low.hard)
    assert not _valid(ctx, result == n)  # without the exit formula, nothing is known
    # the iteration standing for all the others is guarded by the tail flag
    beyond = [r for r in fr.requires if r.label.endswith("#beyond")]
    assert len(beyond) == 1 and _valid(ctx, z3.Implies(beyond[0].guard, loop.tail))
    assert _valid(ctx, loop.open == z3.UGT(n, 2))


def test_a_non_inductive_invariant_is_found(tmp_path: Path) -> None:
    # i < n holds on entry (wherever the loop still runs) but not after the last step
    low, _, _, _ = _lower_count(tmp_path, "invariant i < n", 2)
    [loop] = low.loops
    assert not _sat(low.ctx, loop.entry_violation)
    assert _sat(low.ctx, loop.consecution)


def test_an_invariant_false_on_entry_is_found(tmp_path: Path) -> None:
    # inductive (i only grows) but false after the unrolled iterations
    low, _, _, _ = _lower_count(tmp_path, "invariant i >= 5", 2)
    [loop] = low.loops
    assert _sat(low.ctx, loop.entry_violation)
    assert not _sat(low.ctx, loop.consecution)


def test_a_loop_with_concrete_bounds_is_unrolled_completely(tmp_path: Path) -> None:
    program = _load(tmp_path, """
fn sum10() -> uint {
  var i: uint = 0
  var s: uint = 0
  while i < 10 {
    s = s + i
    i = i + 1
  }
  return s
}
fn calls_sum10() -> uint = sum10()
""")
    low = _lowering(program, unroll=1)
    fn = program.fns["calls_sum10"]
    assert not isinstance(fn.body, tuple) and fn.ret is not None
    assert _value(low.ev(fn.body, _frame(low)), fn.ret) == 45
    assert low.loops == []  # nothing left open: no loop to account for


# ---------------------------------------------------------------- emitted values

EMITS = """
fn pair(x: uint) emits uint {
  emit x
  if x > 10 {
    emit x + 1
  }
}
fn evens() emits uint {
  for i in [0, 6) {
    if i % 2 == 0 {
      emit (uint)i
    }
  }
}
check member: forall x: uint, y: uint. y in pair(x)
check even: forall y: uint. y in evens()
check exactly: forall x: uint. pair(x) == [x]
check two: forall x: uint. pair(x) == [x, x + 1]
"""


def _claim_body(low: Lowering, program: ir.Program, name: str) -> tuple[list[Any], Any]:
    """A claim's body lowered as a claim is (denied), on a symbol per forall variable."""
    variables, body = _foralls(_claim(program, name))
    syms = [z3.BitVec(v.name, _int(v.ty).width, low.ctx) for v in variables]
    return syms, low.ev(body, _frame(low, {v.uid: s for v, s in zip(variables, syms, strict=True)}), -1)


def test_membership_in_emitted_values(tmp_path: Path) -> None:
    program = _load(tmp_path, EMITS)
    low = _lowering(program)
    ctx = low.ctx
    [x, y], got = _claim_body(low, program, "member")
    assert _valid(ctx, got == z3.Or(y == x, z3.And(z3.UGT(x, 10), y == x + 1)))
    [y2], got2 = _claim_body(low, program, "even")
    assert _valid(ctx, got2 == z3.Or(y2 == 0, y2 == 2, y2 == 4))


def test_emitted_sequence_compared_whole(tmp_path: Path) -> None:
    program = _load(tmp_path, EMITS)
    low = _lowering(program)
    ctx = low.ctx
    [x], one = _claim_body(low, program, "exactly")
    assert _valid(ctx, one == z3.ULE(x, 10))
    [x2], two = _claim_body(low, program, "two")
    assert _valid(ctx, two == z3.UGT(x2, 10))


# ---------------------------------------------------------------- the machine

MACHINE = """
state { phase: int = 0, x: uint = 0, mem: [ulong] uint }
step a when phase == 0 {
  x = 5
  mem[3] = 7
  phase = 1
}
step b when phase == 1 {
  require five: x == 5
  phase = 2
}
"""


def _paths(nodes: list[TraceNode]) -> list[list[str]]:
    return sorted(n.path() for n in nodes)


def test_the_tree_of_a_two_step_machine(tmp_path: Path) -> None:
    program = _load(tmp_path, MACHINE)
    low = _lowering(program)
    nodes = build_tree(low, 5, {})
    # the guards are concrete: only the order a, b is possible, and nothing after b
    assert _paths(nodes) == [[], ["a"], ["a", "b"]]
    assert [n.depth for n in nodes] == [0, 1, 2]
    assert all(n.open is None for n in nodes)
    leaf = nodes[-1]
    assert _value(leaf.state.scalars["phase"], SCALARS["int"]) == 2
    assert _value(leaf.state.scalars["x"], SCALARS["uint"]) == 5
    [req] = leaf.requires
    assert req.name == "five"
    assert _valid(low.ctx, z3.Implies(req.guard, req.cond))
    assert [r.name for n in nodes[:-1] for r in n.requires] == []


def test_map_state_is_read_through_the_writes(tmp_path: Path) -> None:
    program = _load(tmp_path, MACHINE)
    low = _lowering(program)
    ctx = low.ctx
    nodes = build_tree(low, 5, {})
    after_a = next(n for n in nodes if n.step == "a")
    mem = after_a.state.maps["mem"]
    assert _value(mem.read(z3.BitVecVal(3, 64, ctx)), SCALARS["uint"]) == 7
    # elsewhere: memory nobody initialised, any value
    p = z3.BitVec("p", 64, ctx)
    assert _valid(ctx, z3.Implies(p == 3, mem.read(p) == 7))
    assert _sat(ctx, p != 3, mem.read(p) != 7)
    # the root's map is the initial one: pfn 3 is not 7 there necessarily
    assert _sat(ctx, nodes[0].state.maps["mem"].read(z3.BitVecVal(3, 64, ctx)) != 7)


def test_the_tree_is_cut_at_the_depth(tmp_path: Path) -> None:
    program = _load(tmp_path, MACHINE)
    low = _lowering(program)
    nodes = build_tree(low, 1, {})
    assert _paths(nodes) == [[], ["a"]]
    after_a = nodes[-1]
    # b could still run there: the tree is not complete
    assert after_a.open is not None and _sat(low.ctx, after_a.open)


def test_paths_to_one_control_state_share_a_node(tmp_path: Path) -> None:
    program = _load(tmp_path, """
state { phase: int = 0, side: int = 0 }
step left when phase == 0 {
  side = 1
  phase = 1
}
step right when phase == 0 {
  side = 2
  phase = 1
}
step join when phase == 1 {
  side = 0
  phase = 2
}
""")
    low = _lowering(program)
    nodes = build_tree(low, 5, {})
    assert sorted(str(n.step) for n in nodes) == ["None", "join", "left", "right"]
    [join] = [n for n in nodes if n.step == "join"]
    assert sorted(str(p.step) for p, _ in join.parents) == ["left", "right"]
    assert join.depth == 2


def test_a_symbolic_guard_becomes_the_path_condition(tmp_path: Path) -> None:
    program = _load(tmp_path, """
state { done: bool = false, x: uint }
step go when !done and x > 3 {
  done = true
}
""")
    low = _lowering(program)
    nodes = build_tree(low, 5, {})
    [initial] = [sk for sk in low.skolems if sk.role == "initial"]
    assert initial.name == "x"
    [go] = [n for n in nodes if n.step == "go"]
    assert _valid(low.ctx, go.pc == z3.UGT(initial.sym, 3))
    assert len(nodes) == 2


# ---------------------------------------------------------------- layouts

LAYOUT = """
param LIMIT: ulong
layout two {
  node 0: [0x1000, 0x9f000), [0x100000, 0x80000000)
  node 1: [0x80000000, 0x100000000)
  LIMIT = 0x42
}
fn in_ram(p: ulong) -> bool = pfn_in_ram(p)
fn nid(p: ulong) -> int = pfn_node(p)
fn range_end(p: ulong) -> ulong = pfn_range(p).end
fn start(n: int) -> ulong = node_start_pfn(n)
fn end(n: int) -> ulong = node_end_pfn(n)
fn first_ending_above(p: ulong) -> int = first n in nodes where node_end_pfn(n) > p else -1
check ranges_below: forall r in ranges. r.end <= 0x100000
check ranges_below_less: forall r in ranges. r.end < 0x100000
"""

# pfn -> (in RAM, node, end of its range) with 4 KiB pages; -1 is NUMA_NO_NODE
PFNS_4K: dict[int, tuple[bool, int, int | None]] = {
    0x0: (False, -1, None),
    0x1: (True, 0, 0x9F),
    0x9E: (True, 0, 0x9F),
    0x9F: (False, -1, None),
    0xFF: (False, -1, None),
    0x100: (True, 0, 0x80000),
    0x7FFFF: (True, 0, 0x80000),
    0x80000: (True, 1, 0x100000),
    0xFFFFF: (True, 1, 0x100000),
    0x100000: (False, -1, None),
}


def _concrete(tmp_path: Path, page_shift: int) -> tuple[ir.Program, Lowering]:
    program = _load(tmp_path, LAYOUT)
    return program, _lowering(program, layout=program.layouts["two"], page_shift=page_shift)


def _call(low: Lowering, fn: ir.FnDef, *args: int) -> int | bool:
    assert not isinstance(fn.body, tuple) and fn.ret is not None
    return _value(low.ev(fn.body, _frame(low, _args(low, fn, *args))), fn.ret)


@pytest.mark.parametrize(("pfn", "want"), sorted(PFNS_4K.items()))
def test_pfn_builtins_on_a_concrete_layout(tmp_path: Path, pfn: int, want: tuple[bool, int, int | None]) -> None:
    program, low = _concrete(tmp_path, 12)
    in_ram, nid, end = want
    assert _call(low, program.fns["in_ram"], pfn) is in_ram
    assert _call(low, program.fns["nid"], pfn) == nid
    if end is not None:
        assert _call(low, program.fns["range_end"], pfn) == end


def test_node_builtins_on_a_concrete_layout(tmp_path: Path) -> None:
    program, low = _concrete(tmp_path, 12)
    spans = {0: (0x1, 0x80000), 1: (0x80000, 0x100000)}
    for n, (lo, hi) in spans.items():
        assert _call(low, program.fns["start"], n) == lo
        assert _call(low, program.fns["end"], n) == hi
    first = program.fns["first_ending_above"]
    assert [_call(low, first, p) for p in (0x10, 0x80000, 0x100000)] == [0, 1, -1]


def test_a_concrete_layout_in_pages_of_the_profile(tmp_path: Path) -> None:
    # 64 KiB pages: [0x1000, 0x9f000) keeps the pfns [1, 9), the rest are 16 times fewer
    program, low = _concrete(tmp_path, 16)
    assert _call(low, program.fns["in_ram"], 0x0) is False
    assert _call(low, program.fns["in_ram"], 0x8) is True
    assert _call(low, program.fns["nid"], 0x8000) == 1
    assert _call(low, program.fns["in_ram"], 0x80000) is False
    assert _call(low, program.fns["end"], 1) == 0x10000


def test_quantifiers_and_params_of_a_concrete_layout(tmp_path: Path) -> None:
    program, low = _concrete(tmp_path, 12)
    # every range of the layout, instantiated: true with 0x100000, false with less
    assert _valid(low.ctx, low.ev(_claim(program, "ranges_below"), _frame(low), 1))
    assert not _sat(low.ctx, low.ev(_claim(program, "ranges_below_less"), _frame(low), 1))
    # the layout binds LIMIT
    assert _valid(low.ctx, low.param("LIMIT") == 0x42, *low.hard)


def test_a_symbolic_layout_leaves_the_answer_open(tmp_path: Path) -> None:
    program = _load(tmp_path, LAYOUT)
    low = _lowering(program)
    fn = program.fns["in_ram"]
    assert not isinstance(fn.body, tuple)
    locs, _ = _symbolic(low, fn)
    got = low.ev(fn.body, _frame(low, locs))
    eager, lazy = low.layout.close()
    assert _sat(low.ctx, got, *eager, *lazy) and _sat(low.ctx, z3.Not(got), *eager, *lazy)

