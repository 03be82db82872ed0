"""The concrete interpreter on its own (khospec/interp.py): C arithmetic, functions and
loops, steps on concrete state, exact quantifiers, and the replay of counterexamples.

Programs come from spec text through the public loader (api.load), so every implicit
C conversion is the one the type checker inserts. Functions are called with constant
arguments through an ``ir.CallFn``, which is how a claim's call reaches the
interpreter; the expected values are C's, written out or computed with carith.py and
the conversion rules of types.py, independently of the interpreter's dispatch.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from khospec import carith, ir
from khospec.api import Options, check_file, load
from khospec.counterexample import ModelData, ModelLayout, SpecCounterexample
from khospec.diagnostics import SourceCache
from khospec.interp import Frame, Incomplete, Interp, ReplayMismatch, Undetermined, replay
from khospec.results import Result, Verdict
from khospec.types import INT, LONG, SCALARS, UINT, ULONG, IntType, promote, usual_conversion

# ---------------------------------------------------------------- helpers


def _int_type(name: str) -> IntType:
    t = SCALARS[name]
    assert isinstance(t, IntType)
    return t


U8, U16, S8, S16 = (_int_type(n) for n in ("u8", "u16", "s8", "s16"))
TYPES = [INT, UINT, LONG, ULONG, U8, U16, S8, S16]
WIDE = [INT, UINT, LONG, ULONG]
ARITH = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "and": "&", "or": "|", "xor": "^"}
SHIFT = {"shl": "<<", "shr": ">>"}
COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
UNARY = {"neg": "-", "inv": "~"}

INT_MIN, INT_MAX = INT.min, INT.max

# a layout of two nodes, one range each (pfns), as a counterexample gives it
LAYOUT: ModelLayout = {"ranges": [(0x1000, 0x2000, 0, False), (0x2000, 0x3000, 1, False)], "nodes": [0, 1],
                       "zone_movable_pfn": {}, "arch_zones": [], "mirrored_kernelcore": False}
NO_LAYOUT: ModelLayout = {"ranges": [], "nodes": [], "zone_movable_pfn": {}, "arch_zones": [],
                          "mirrored_kernelcore": False}


def _model(params: dict[str, Any] | None = None, layout: ModelLayout | None = None,
           trace: list[str] | None = None) -> ModelData:
    # the replay reads no more of the violation than a requirement's position
    return {"params": params or {}, "param_functions": {}, "layout": layout or NO_LAYOUT,
            "witnesses": [], "initial": [], "trace": trace or [], "violated": {"kind": "claim"}}


def _load(path: Path, text: str) -> ir.Program:
    path.write_text(text)
    program, diags = load(path, path.name, SourceCache())
    assert program is not None, diags
    assert all(not d.is_error for d in diags)
    return program


def _call(interp: Interp, name: str, *args: int) -> Any:
    """``name(args)`` with constant arguments, as a claim calls it."""
    fn = interp.program.fn(name, None)
    assert fn.ret is not None
    consts = tuple(ir.Const(a, p.ty) for a, p in zip(args, fn.params, strict=True))
    return interp.ev(ir.CallFn(name, consts, fn.ret), Frame({}, None))


def _holds(interp: Interp, name: str) -> Any:
    return interp.ev(interp.program.assumes[name].formula, Frame({}, None))


def _arith_spec() -> str:
    """One function per operator and operand types, typed as C types the result."""
    lines = []
    for t in TYPES:
        r = usual_conversion(t, t)
        for name, op in ARITH.items():
            lines.append(f"fn t_{name}_{t}(a: {t}, b: {t}) -> {r} = a {op} b")
        for name, op in UNARY.items():
            lines.append(f"fn t_{name}_{t}(a: {t}) -> {promote(t)} = {op}a")
        for u in TYPES:
            lines.append(f"fn t_to_{u}_{t}(a: {t}) -> {u} = ({u}) a")
            for name, op in COMPARE.items():
                lines.append(f"fn t_{name}_{t}_{u}(a: {t}, b: {u}) -> bool = a {op} b")
        for u in WIDE:
            for name, op in SHIFT.items():
                lines.append(f"fn t_{name}_{t}_{u}(a: {t}, b: {u}) -> {promote(t)} = a {op} b")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def arith(tmp_path_factory: pytest.TempPathFactory) -> Interp:
    program = _load(tmp_path_factory.mktemp("arith") / "arith.kho", _arith_spec())
    return Interp(program, None, _model())


def _c_binary(op: str, a: int, b: int, t: IntType, u: IntType) -> int | bool:
    """The reference: C's conversions (types.py) then carith on the converted values."""
    if op in SHIFT.values():
        lt, rt = promote(t), promote(u)
        return carith.binary(op, carith.convert(a, lt), carith.convert(b, rt), lt, rt)
    c = usual_conversion(t, u)
    x, y = carith.convert(a, c), carith.convert(b, c)
    if op in COMPARE.values():
        return carith.compare(op, x, y)
    return carith.binary(op, x, y, c)


def _values(t: IntType) -> st.SearchStrategy[int]:
    edges = [t.min, t.max, 0, 1, t.min + 1, t.max - 1, *([-1] if t.signed else [])]
    return st.one_of(st.sampled_from(edges), st.integers(t.min, t.max))


# ---------------------------------------------------------------- C arithmetic


def test_calls_reach_the_interpreter_unfolded(arith: Interp) -> None:
    # the functions' bodies are operators on locals, so a call is computed by the
    # interpreter, not folded away by the type checker
    body = arith.program.fn("t_add_u8", None).body
    assert isinstance(body, ir.Binary) and body.ty == INT
    assert isinstance(body.left, ir.Convert) and isinstance(body.left.operand, ir.Local)


@pytest.mark.parametrize(("name", "args", "want"), [
    # signed overflow wraps (-fno-strict-overflow)
    ("t_add_int", (INT_MAX, 1), INT_MIN),
    ("t_mul_int", (1 << 16, 1 << 16), 0),
    ("t_mul_long", (1 << 62, 4), 0),
    ("t_sub_uint", (0, 1), UINT.max),
    ("t_add_ulong", (ULONG.max, 2), 1),
    # narrow operands are promoted to int first: no wrap at 8 or 16 bits
    ("t_add_u8", (255, 1), 256),
    ("t_sub_u8", (0, 1), -1),
    ("t_mul_u16", (0xFFFF, 0xFFFF), INT.wrap(0xFFFF * 0xFFFF)),
    ("t_add_s8", (127, 1), 128),
    # division truncates toward zero; the remainder takes the dividend's sign
    ("t_div_int", (-7, 2), -3),
    ("t_mod_int", (-7, 2), -1),
    ("t_div_int", (7, -2), -3),
    ("t_mod_int", (7, -2), 1),
    ("t_mod_int", (-7, -2), -1),
    ("t_div_long", (-(1 << 40) - 1, 1 << 20), -(1 << 20)),
    ("t_div_uint", (UINT.max, 2), UINT.max // 2),
    # shift counts are taken modulo the width, as x86-64 and arm64 do at run time
    ("t_shl_int_int", (1, 31), INT_MIN),
    ("t_shl_int_int", (1, 32), 1),
    ("t_shl_int_int", (1, 33), 2),
    ("t_shl_int_int", (1, -1), INT_MIN),
    ("t_shl_ulong_int", (1, 64), 1),
    ("t_shl_ulong_ulong", (1, 63), 1 << 63),
    ("t_shr_long_uint", (-1, 70), -1),
    # >> is arithmetic on signed values, logical on unsigned ones
    ("t_shr_int_int", (-8, 1), -4),
    ("t_shr_uint_int", (UINT.max - 7, 1), (UINT.max - 7) >> 1),
    ("t_shl_u8_int", (0x80, 1), 0x100),
    # the usual arithmetic conversions in comparisons
    ("t_lt_int_uint", (-1, 1), False),
    ("t_eq_int_uint", (-1, UINT.max), True),
    ("t_lt_int_long", (-1, 1), True),
    ("t_lt_long_uint", (-1, 1), True),
    ("t_lt_long_ulong", (-1, 1), False),
    ("t_lt_s8_u8", (-1, 1), True),
    ("t_gt_uint_long", (UINT.max, -1), True),
    # unary operators on promoted values
    ("t_neg_int", (INT_MIN,), INT_MIN),
    ("t_neg_uint", (1,), UINT.max),
    ("t_neg_u8", (1,), -1),
    ("t_inv_u8", (0,), -1),
    ("t_inv_ulong", (0,), ULONG.max),
    # conversions: sign extension, truncation, reinterpretation
    ("t_to_ulong_int", (-1,), ULONG.max),
    ("t_to_ulong_int", (INT_MIN,), 0xFFFFFFFF80000000),
    ("t_to_long_uint", (UINT.max,), UINT.max),
    ("t_to_int_uint", (1 << 31,), INT_MIN),
    ("t_to_u8_ulong", (300,), 44),
    ("t_to_s8_int", (200,), -56),
    ("t_to_uint_long", (-1,), UINT.max),
    ("t_to_s16_u16", (0x8000,), -0x8000),
])
def test_c_arithmetic_edge_case(arith: Interp, name: str, args: tuple[int, ...], want: int | bool) -> None:
    got = _call(arith, name, *args)
    assert got == want and type(got) is type(want)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(TYPES), st.sampled_from(sorted(ARITH)), st.data())
def test_arithmetic_agrees_with_carith(arith: Interp, t: IntType, name: str, data: st.DataObject) -> None:
    a, b = data.draw(_values(t)), data.draw(_values(t))
    assert _call(arith, f"t_{name}_{t}", a, b) == _c_binary(ARITH[name], a, b, t, t)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(TYPES), st.sampled_from(WIDE), st.sampled_from(sorted(SHIFT)), st.data())
def test_shifts_agree_with_carith(arith: Interp, t: IntType, u: IntType, name: str, data: st.DataObject) -> None:
    a = data.draw(_values(t))
    # counts around the width matter most: below, at and beyond it, and negative ones
    b = data.draw(st.one_of(st.integers(-2, 70).filter(u.fits), _values(u)))
    assert _call(arith, f"t_{name}_{t}_{u}", a, b) == _c_binary(SHIFT[name], a, b, t, u)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(TYPES), st.sampled_from(TYPES), st.sampled_from(sorted(COMPARE)), st.data())
def test_comparisons_agree_with_carith(arith: Interp, t: IntType, u: IntType, name: str,
                                       data: st.DataObject) -> None:
    a, b = data.draw(_values(t)), data.draw(_values(u))
    assert _call(arith, f"t_{name}_{t}_{u}", a, b) is _c_binary(COMPARE[name], a, b, t, u)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(TYPES), st.sampled_from(TYPES), st.data())
def test_conversions_and_unary_agree_with_carith(arith: Interp, t: IntType, u: IntType,
                                                 data: st.DataObject) -> None:
    a = data.draw(_values(t))
    assert _call(arith, f"t_to_{u}_{t}", a) == carith.convert(a, u)
    p = promote(t)
    for name, op in UNARY.items():
        assert _call(arith, f"t_{name}_{t}", a) == carith.unary(op, carith.convert(a, p), p)


# ---------------------------------------------------------------- functions, loops, steps

PROGRAM = """
param N: ulong
state {
  phase: int = 0
  total: ulong = 0
  seen: [ulong] bool = false
}

fn triangle(n: int) -> int {
  var s: int = 0
  var i: int = 0
  while i < n {
    s += i
    i += 1
  }
  return s
}

fn squares() -> int {
  var s: int = 0
  for i in [0, 10) {
    s += i * i
  }
  return s
}

fn collatz(n: ulong) -> int {
  var steps: int = 0
  var x: ulong = n
  while x != 1 {
    if x % 2 == 0 {
      x = x / 2
    } else {
      x = 3 * x + 1
    }
    steps += 1
  }
  return steps
}

fn sign(x: long) -> int {
  if x < 0 {
    return -1
  } else if x == 0 {
    return 0
  }
  return 1
}

fn evens(n: int) emits int {
  var i: int = 0
  while i < n {
    if i % 2 == 0 {
      emit i
    }
    i += 1
  }
}

fn low_bit(x: ulong) -> int = count_trailing_zeros(x)
fn round_up(x: ulong) -> ulong = ALIGN(x, 4096UL)

assume evens_listed: evens(7) == [0, 2, 4, 6]
assume four_is_even: 4 in evens(7)
assume five_is_not: !(5 in evens(7))

step fill when phase == 0 {
  phase = 1
  # steps have no while loops: a loop with constant bounds is unrolled
  for i in [0UL, 8UL) {
    if i < N {
      total += i
    }
  }
  for p: ulong where p >= 10 and p < 10 + N {
    seen[p] = true
  }
}
"""


@pytest.fixture(scope="module")
def prog(tmp_path_factory: pytest.TempPathFactory) -> ir.Program:
    return _load(tmp_path_factory.mktemp("prog") / "prog.kho", PROGRAM)


@pytest.mark.parametrize(("name", "args", "want"), [
    ("triangle", (10,), 45),
    ("triangle", (0,), 0),
    ("triangle", (-5,), 0),
    ("triangle", (4096,), 4096 * 4095 // 2),  # MAX_LOOP iterations exactly
    ("squares", (), 285),
    ("collatz", (27,), 111),
    ("collatz", (1,), 0),
    ("sign", (-(1 << 40),), -1),
    ("sign", (0,), 0),
    ("sign", (7,), 1),
    ("low_bit", (0x50,), 4),
    ("low_bit", (0,), -1),
    ("round_up", (4097,), 8192),
    ("round_up", (ULONG.max,), 0),  # ALIGN wraps as in C
])
def test_function_evaluates(prog: ir.Program, name: str, args: tuple[int, ...], want: int) -> None:
    assert _call(Interp(prog, None, _model()), name, *args) == want


PURE = """
fn node_end(n: int) -> ulong = node_end_pfn(n) - 1
fn ends(n: int) -> ulong = node_end(n) + node_end(n)
fn checked(x: ulong) -> ulong {
  require small: x < 5
  return x
}
"""


def test_a_pure_functions_value_is_computed_once_per_arguments(tmp_path: Path) -> None:
    # zone_span_of() is read at every index of a loop over a zone's pfns: a function of
    # its arguments, the layout and the params is computed once per arguments
    interp = Interp(_load(tmp_path / "pure.kho", PURE), None, _model(layout=LAYOUT))
    assert _call(interp, "ends", 1) == 2 * 0x2FFF
    assert _call(interp, "ends", 1) == 2 * 0x2FFF
    assert _call(interp, "node_end", 0) == 0x1FFF
    assert interp._values == {("ends", 1): 2 * 0x2FFF, ("node_end", 1): 0x2FFF, ("node_end", 0): 0x1FFF}
    # a require fails on every call, so a function with one is run every time
    fn = interp.program.fn("checked", None)
    call = ir.CallFn("checked", (ir.Const(9, ULONG),), ULONG)
    for _ in range(2):
        fr = Frame({}, None)
        assert interp.ev(call, fr) == 9
        assert [f.name for f in fr.failures] == ["small"]
    assert fn.ret is not None and not any(k[0] == "checked" for k in interp._values)


def test_loop_beyond_the_bound_is_undetermined(prog: ir.Program) -> None:
    # a loop longer than MAX_LOOP is not run to the end: the replay says so, it does not hang
    with pytest.raises(Undetermined, match="more than 4096 iterations"):
        _call(Interp(prog, None, _model()), "triangle", 5000)


@pytest.mark.parametrize("name", ["evens_listed", "four_is_even", "five_is_not"])
def test_emitted_values(prog: ir.Program, name: str) -> None:
    assert _holds(Interp(prog, None, _model()), name) is True


def test_step_runs_on_concrete_state(prog: ir.Program) -> None:
    interp = Interp(prog, None, _model({"N": 5}))
    start = interp.initial_state()
    assert start.scalars == {"phase": 0, "total": 0}
    after, failures, enabled = interp.step("fill", start)
    assert enabled and failures == []
    assert after.scalars == {"phase": 1, "total": 10}
    # the pointwise loop wrote exactly [10, 15)
    assert [after.maps["seen"].read(p) for p in range(8, 17)] == [False] * 2 + [True] * 5 + [False] * 2
    # the state before the step is left as it was
    assert start.scalars["total"] == 0 and start.maps["seen"].read(12) is False
    # a second step finds its guard false
    _, _, again = interp.step("fill", after)
    assert not again


# A loop over a set of indices runs for every index at once: a local declared before it
# cannot accumulate, so the type checker refuses the assignment (KHO419), as it does for
# a state scalar. (It was accepted, and the assignment silently lost.)
@pytest.mark.parametrize("where", ["fn", "step"])
def test_local_accumulated_in_a_filtered_for_loop(tmp_path: Path, where: str) -> None:
    loop = "var t: int = 0\n  for i in [0, 10) where i < 5 {\n    t += i\n  }\n"
    text = ("state { total: int = 0 }\n"
            + (f"fn f() -> int {{\n  {loop}  return t\n}}\n" if where == "fn"
               else f"step s {{\n  {loop}  total = t\n}}\n"))
    path = tmp_path / "t.kho"
    path.write_text(text)
    program, diags = load(path, path.name, SourceCache())
    assert program is None
    assert [(d.code, d.span.line) for d in diags if d.is_error] == [("KHO419", 5)]


# ---------------------------------------------------------------- quantifiers


QUANTIFIED = """
param X: ulong
param Y: ulong
assume mul_hit: forall i in [0, 100). i * 3 != 150
assume mul_miss: forall i in [0, 100). i * 3 != 151
assume square: exists i in [0, 100). i * i == 49
assume multiple_of_5: exists i in [X, X + 8). i % 5 == 0
assume no_multiple_of_16: exists i in [X + 1, X + 8). i % 16 == 0
assume pairs: forall i in [0, 10). exists j in [0, 10). i + j == 9
assume spans: forall n in nodes. node_start_pfn(n) < node_end_pfn(n)
assume node_2: exists n in nodes. n == 2
assume sizes: forall r in ranges. r.end - r.start == 0x1000
assume all_node_0: forall r in ranges. r.nid == 0
assume excluded_middle: forall b: bool. b or !b
assume contradiction: exists b: bool. b and !b
assume large_interval: forall i in [0, Y). i * 3 != 150
"""


@pytest.fixture(scope="module")
def quantified(tmp_path_factory: pytest.TempPathFactory) -> ir.Program:
    return _load(tmp_path_factory.mktemp("quant") / "q.kho", QUANTIFIED)


@pytest.mark.parametrize(("name", "want"), [
    # a small interval is enumerated: exact even where the body multiplies the variable,
    # and the value deciding it (50, 7, 4100) is none of the counterexample's numbers
    ("mul_hit", False),
    ("mul_miss", True),
    ("square", True),
    ("multiple_of_5", True),
    ("no_multiple_of_16", False),
    ("pairs", True),
    # the layout's nodes and ranges are the whole domain
    ("spans", True),
    ("node_2", False),
    ("sizes", True),
    ("all_node_0", False),
    ("excluded_middle", True),
    ("contradiction", False),
])
def test_quantifier_over_a_small_domain_is_exact(quantified: ir.Program, name: str, want: bool) -> None:
    interp = Interp(quantified, None, _model({"X": 0x1000, "Y": 1 << 20}, LAYOUT))
    assert _holds(interp, name) is want
    assert interp.sampled == 0 and interp.undecided == []


def test_large_interval_the_cells_cannot_follow_is_named(quantified: ir.Program) -> None:
    # [0, 2^20) is too large to enumerate and `*` is not followed by the cells: the
    # answer rests on the counterexample's numbers (and is wrong: i = 50), so it is named
    interp = Interp(quantified, None, _model({"X": 0x1000, "Y": 1 << 20}, LAYOUT))
    assert _holds(interp, "large_interval") is True
    assert interp.sampled == 1
    [note] = interp.undecided
    assert note.startswith("`forall i` at ") and "`*` on it" in note


EXACT_TYPES = [U8, INT, UINT, LONG, ULONG]


def _exact_spec() -> str:
    lines = []
    for t in EXACT_TYPES:
        lines += [f"param A_{t}: {t}", f"param B_{t}: {t}", f"param C_{t}: {t}", f"param D_{t}: {t}",
                  f"assume miss_{t}: forall p: {t}. p < A_{t} or p >= B_{t} or p + C_{t} != D_{t}"]
    lines += ["param A: ulong", "param K: ulong",
              "assume aligned_in: exists p: ulong. p >= A and p < A + K and IS_ALIGNED(p, 64)"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory) -> ir.Program:
    return _load(tmp_path_factory.mktemp("exact") / "exact.kho", _exact_spec())


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(EXACT_TYPES), st.data())
def test_quantifier_over_a_whole_type_is_decided_exactly(exact: ir.Program, t: IntType, data: st.DataObject) -> None:
    # `forall p. p outside [A, B) or p + C != D`: C's p + C wraps in promote(t), so the one
    # p with p + C == D is (D - C) wrapped, and the formula is false exactly when that p
    # is a value of t inside [A, B)
    a, b, c, d = (data.draw(_values(t)) for _ in range(4))
    if data.draw(st.booleans()):
        d = t.wrap(data.draw(st.integers(a, max(a, b))) + c)  # often a hit
    r = promote(t)
    p = r.wrap(d - c)
    want = not (t.fits(p) and a <= p < b)
    params = {f"A_{t}": a, f"B_{t}": b, f"C_{t}": c, f"D_{t}": d}
    interp = Interp(exact, None, _model(params, LAYOUT))
    assert _holds(interp, f"miss_{t}") is want
    assert interp.sampled == 0 and interp.decided >= 1


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 1 << 62), st.integers(1, 300))
def test_alignment_inside_a_window_is_decided_exactly(exact: ir.Program, a: int, k: int) -> None:
    want = (a + 63) // 64 * 64 < a + k
    interp = Interp(exact, None, _model({"A": a, "K": k}, LAYOUT))
    assert _holds(interp, "aligned_in") is want
    assert interp.sampled == 0


# ---------------------------------------------------------------- replay


SMALL = """
param X: ulong
check small: X < 10
  for x86_64
  expect refuted
"""


def test_refuted_check_replays(tmp_path: Path) -> None:
    spec = tmp_path / "small.kho"
    spec.write_text(SMALL)
    [r] = check_file(spec, Options(timeout_s=30, jobs=1, cache=False))
    assert r.verdict is Verdict.REFUTED and r.replay == "confirmed"
    cx = r.counterexample
    assert cx is not None and "model" in cx and cx["params"]["X"] >= 10
    # the same replay by hand, on the program loaded again
    program = _load(spec, SMALL)
    [check] = program.checks
    assert replay(program, check, r) == "confirmed"
    # a counterexample where the claim holds does not replay
    model = cx["model"]
    holds: SpecCounterexample = {**cx, "model": {**model, "params": {**model["params"], "X": 3}}}
    wrong = replace(r, counterexample=holds)
    with pytest.raises(ReplayMismatch, match="the claim holds on the counterexample"):
        replay(program, check, wrong)


MACHINE = """
state {
  phase: int = 0
  total: ulong = 0
}
param N: ulong
param X: ulong

# a function called by a step: no while loop, a loop with constant bounds
fn triangle(n: ulong) -> ulong {
  var s: ulong = 0
  for i in [0UL, 32UL) {
    if i < n {
      s += i
    }
  }
  return s
}

assume big_n: N > 2
assume ram_above_x: forall p: ulong. pfn_in_ram(p) -> p >= X

step boot when phase == 0 {
  phase = 1
  total = triangle(N)
}
step run when phase == 1 {
  phase = 2
  require small_total: total < 100
}

check run_small: requirement small_total
  for x86_64
  assuming big_n
  expect refuted
check always_small: always total < 100
  for x86_64
  expect refuted
check x_small: X < 0x100
  for x86_64
  assuming ram_above_x
  expect refuted
"""


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> ir.Program:
    return _load(tmp_path_factory.mktemp("machine") / "machine.kho", MACHINE)


def _cx(program: ir.Program, params: dict[str, int] | None = None, layout: ModelLayout | None = None,
        trace: list[str] | None = None) -> ModelData:
    """A counterexample's model for the x86_64 profile: the prelude's axioms read its constants."""
    profile = dict(program.profiles["x86_64"].bindings)
    return _model({**profile, **(params or {})}, layout, trace)


def _result(check: str, model: ModelData) -> Result:
    # the replay runs the model alone: what a report shows of it can stay empty
    cx: SpecCounterexample = {"layout": {"nodes": [], "zones": []}, "chunks": [], "values": {}, "params": {},
                              "trace": model["trace"], "violated": {"kind": "claim"}, "model": model}
    return Result("machine.kho", 1, check, None, "x86_64", Verdict.REFUTED, "refuted", 0.0, counterexample=cx)


def _check(program: ir.Program, name: str) -> ir.CheckDef:
    return next(c for c in program.checks if c.name == name)


def test_trace_counterexample_replays(machine: ir.Program) -> None:
    # triangle(20) = 190: the requirement fails in `run`, the claim after `boot`
    model = _cx(machine, {"N": 20}, trace=["boot", "run"])
    assert replay(machine, _check(machine, "run_small"), _result("run_small", model)) == "confirmed"
    model = _cx(machine, {"N": 20}, trace=["boot"])
    assert replay(machine, _check(machine, "always_small"), _result("always_small", model)) == "confirmed"


@pytest.mark.parametrize(("check", "params", "trace", "message"), [
    # triangle(10) = 45 < 100: nothing fails
    ("run_small", {"N": 10}, ["boot", "run"], "does not fail in the last step"),
    ("always_small", {"N": 10}, ["boot"], "the claim holds in the final state"),
    # `run` cannot come first
    ("run_small", {"N": 20}, ["run"], r"step 1 \(run\) is not enabled"),
    # the check assumes N > 2
    ("run_small", {"N": 2}, ["boot", "run"], "assumption `big_n` does not hold"),
])
def test_wrong_trace_counterexample_does_not_replay(machine: ir.Program, check: str, params: dict[str, int],
                                                    trace: list[str], message: str) -> None:
    with pytest.raises(ReplayMismatch, match=message):
        replay(machine, _check(machine, check), _result(check, _cx(machine, params, trace=trace)))


def test_replay_decides_a_pfn_assumption_exactly(machine: ir.Program) -> None:
    # every RAM pfn is >= X: decided over all 2^64 pfns, so the status is plain
    model = _cx(machine, {"X": 0x800}, LAYOUT)
    assert replay(machine, _check(machine, "x_small"), _result("x_small", model)) == "confirmed"


def test_counterexample_breaking_a_pfn_assumption_is_incomplete(machine: ir.Program) -> None:
    # pfn 0x1000 is RAM and below X: the solver only instantiated the assumption at some
    # pfns, so this is a limit of the query (unknown), not a refutation
    model = _cx(machine, {"X": 0x1800}, LAYOUT)
    with pytest.raises(Incomplete, match="ram_above_x"):
        replay(machine, _check(machine, "x_small"), _result("x_small", model))


def test_counterexample_without_a_value_is_unchecked(machine: ir.Program) -> None:
    # N missing from the counterexample: the replay cannot run, and says why
    status = replay(machine, _check(machine, "always_small"), _result("always_small", _cx(machine, trace=["boot"])))
    assert status == "unchecked: param N is not in the counterexample"


def test_overlapping_ranges_are_not_a_layout(machine: ir.Program) -> None:
    layout: ModelLayout = {**LAYOUT, "ranges": [(0x1000, 0x2000, 0, False), (0x1800, 0x3000, 1, False)]}
    with pytest.raises(ReplayMismatch, match="the layout is not a layout"):
        replay(machine, _check(machine, "x_small"), _result("x_small", _cx(machine, {"X": 0x800}, layout)))
