"""A concrete layout (a `layout` block, `on LAYOUT`) proves no more than its ranges
allow: every element a refuted quantifier picks is a constant of its own, and the
range of a pfn in no range (a hole) is left open, as the symbolic layout leaves it and
the documentation does, while the answers inside the ranges stay exact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import z3

from khospec import ir
from khospec.api import Options, check_file
from khospec.engine.layout import BoundedLayout, ConcreteLayout, Layout, SymbolicLayout
from khospec.engine.solve import run
from khospec.results import Verdict
from tests.helpers import load_spec

TIMEOUT_S = 30

# two nodes, a hole below 1 MiB and none between the nodes (QEMU's x86_64 map, shrunk)
TWO = """
layout two {
  node 0: [0x1000, 0x9f000), [0x100000, 0x80000000)
  node 1: [0x80000000, 0x100000000)
}
"""

# the pfns of TWO: (start, end, nid, mirror), sorted
TWO_IR = ir.LayoutDef(
    name="two",
    ranges=(ir.LayoutRange(0x1000, 0x9F000, 0), ir.LayoutRange(0x100000, 0x80000000, 0),
            ir.LayoutRange(0x80000000, 0x100000000, 1)),
    zones=(), movable=(), mirrored_kernelcore=False, bindings=(),
)
EMPTY_IR = ir.LayoutDef(name="empty", ranges=(), zones=(), movable=(), mirrored_kernelcore=False, bindings=())
HOLES = [0, 0x9F, 0xFF, 0x100000, (1 << 64) - 1]


def _results(tmp_path: Path, text: str) -> dict[str, Any]:
    spec = tmp_path / "t.kho"
    spec.write_text(text, encoding="utf-8")
    return {r.check: r for r in check_file(spec, Options(timeout_s=TIMEOUT_S, cache=False))}


def _decided(r: Any, verdict: Verdict = Verdict.REFUTED) -> None:
    """``r`` has ``verdict``, and a refutation is one the interpreter confirms."""
    assert r.verdict is verdict, (r.check, r.verdict, r.reason)
    if verdict is Verdict.REFUTED:
        assert r.replay is not None and r.replay.startswith("confirmed"), (r.check, r.replay)


def _verdict(tmp_path: Path, text: str, name: str) -> Verdict:
    """The engine's verdict alone (no replay): for a claim the interpreter cannot
    decide the way the engine does, since it gives a hole one range of its own."""
    program = load_spec(tmp_path, text)
    check = next(c for c in program.checks if c.name == name)
    layout = program.layouts[check.layout] if check.layout is not None else None
    [(_, o)] = run(program, check, None, [program.profiles[p] for p in check.profiles], TIMEOUT_S * 1000,
                   layout=layout)
    return o.verdict


def _no_params(name: str, args: tuple[Any, ...]) -> Any:
    raise AssertionError(f"a layout asked for param {name}")


LAYOUTS: dict[str, Callable[[z3.Context], Layout]] = {
    "symbolic": lambda ctx: SymbolicLayout(ctx, _no_params),
    "bounded": lambda ctx: BoundedLayout(ctx, _no_params),
    "concrete": lambda ctx: ConcreteLayout(ctx, TWO_IR, 12, _no_params),
}


# ---------------------------------------------------------------- witnesses


@pytest.mark.parametrize("kind", sorted(LAYOUTS))
@pytest.mark.parametrize("origin", ["n at t.kho:5:8", ""])
def test_every_witness_node_is_its_own_constant(kind: str, origin: str) -> None:
    # two refuted `forall n in nodes` with the same origin (or the first 8 characters
    # of it) may fail at different nodes
    ctx = z3.Context()
    lay = LAYOUTS[kind](ctx)
    (e1, n1), (e2, n2) = lay.witness_node(origin), lay.witness_node(origin)
    assert not n1.eq(n2)
    s = z3.Solver(ctx=ctx)
    eager, lazy = lay.close()
    s.add(*eager, *lazy, e1, e2, n1 != n2)
    assert s.check() == z3.sat


@pytest.mark.parametrize("kind", sorted(LAYOUTS))
def test_every_witness_range_is_its_own(kind: str) -> None:
    ctx = z3.Context()
    lay = LAYOUTS[kind](ctx)
    (e1, r1), (e2, r2) = lay.witness_range("r at t.kho:5:8"), lay.witness_range("r at t.kho:5:8")
    s = z3.Solver(ctx=ctx)
    eager, lazy = lay.close()
    s.add(*eager, *lazy, e1, e2, r1.get("nid") != r2.get("nid"))
    assert s.check() == z3.sat


def test_concrete_witnesses_after_a_pfn_question_are_their_own() -> None:
    # a pfn asked about in between (the old names counted those) changes nothing
    ctx = z3.Context()
    lay = LAYOUTS["concrete"](ctx)
    _, a = lay.witness_node("n")
    lay.pfn_in_ram(z3.BitVec("p", 64, ctx))
    _, b = lay.witness_node("n")
    _, c = lay.witness_node("m")
    assert len({a.get_id(), b.get_id(), c.get_id()}) == 3


WITNESSES = TWO + """
check one_node_everywhere: (forall n in nodes. n == 0) or (forall n in nodes. n == 1)
  on two
  for x86_64
  expect refuted
check one_range_everywhere: (forall r in ranges. r.nid == 0) or (forall r in ranges. r.nid == 1)
  on two
  for x86_64
  expect refuted
check one_node_everywhere_symbolic: (forall n in nodes. n == 0) or (forall n in nodes. n == 1)
  for x86_64
  expect refuted
check one_range_everywhere_symbolic: (forall r in ranges. r.nid == 0) or (forall r in ranges. r.nid == 1)
  for x86_64
  expect refuted
check nodes_are_0_and_1: (forall n in nodes. n >= 0) and (forall n in nodes. n <= 1)
  on two
  for x86_64
check both_nodes_exist: (exists n in nodes. n == 0) and (exists n in nodes. n == 1)
  on two
  for x86_64
"""


def test_universals_over_nodes_and_ranges_fail_at_elements_of_their_own(tmp_path: Path) -> None:
    got = _results(tmp_path, WITNESSES)
    for name in ("one_node_everywhere", "one_range_everywhere",
                 "one_node_everywhere_symbolic", "one_range_everywhere_symbolic"):
        _decided(got[name])
    _decided(got["nodes_are_0_and_1"], Verdict.PROVED)
    _decided(got["both_nodes_exist"], Verdict.PROVED)


# ---------------------------------------------------------------- holes

HOLE_CLAIMS = TWO + """
check hole_range_nonzero: forall p: ulong. !pfn_in_ram(p) -> pfn_range(p).end != 0
  on two
  for x86_64
  expect refuted
check hole_range_nonempty: forall p: ulong. !pfn_in_ram(p) -> pfn_range(p).start < pfn_range(p).end
  on two
  for x86_64
  expect refuted
check hole_range_of_a_node: forall p: ulong. !pfn_in_ram(p) -> pfn_range(p).nid >= 0
  on two
  for x86_64
  expect refuted
check hole_range_nonzero_symbolic: forall p: ulong. !pfn_in_ram(p) -> pfn_range(p).end != 0
  for x86_64
  expect refuted
check ram_range_holds_it: forall p: ulong. pfn_in_ram(p) ->
    pfn_range(p).start <= p and p < pfn_range(p).end and pfn_range(p).nid == pfn_node(p)
  on two
  for x86_64
check ram_range_is_one_of_three: forall p: ulong. pfn_in_ram(p) ->
    pfn_range(p).end == 0x9f or pfn_range(p).end == 0x80000 or pfn_range(p).end == 0x100000
  on two
  for x86_64
check range_is_a_function: forall p: ulong, q: ulong. p == q -> pfn_range(p) == pfn_range(q)
  on two
  for x86_64
check hole_node: forall p: ulong. !pfn_in_ram(p) -> pfn_node(p) == -1
  on two
  for x86_64
"""


def test_a_hole_has_no_range_of_the_layout(tmp_path: Path) -> None:
    got = _results(tmp_path, HOLE_CLAIMS)
    for name in ("hole_range_nonzero", "hole_range_nonempty", "hole_range_of_a_node", "hole_range_nonzero_symbolic"):
        _decided(got[name])
    for name in ("ram_range_holds_it", "ram_range_is_one_of_three", "range_is_a_function", "hole_node"):
        _decided(got[name], Verdict.PROVED)


# the interpreter gives a hole (0, 0, NUMA_NO_NODE, false); the documentation does not
# say what pfn_range() of a hole is, so no layout proves a claim that needs either
UNSPECIFIED = TWO + """
check hole_range_is_zero: forall p: ulong. !pfn_in_ram(p) -> pfn_range(p).end == 0
  on two
  for x86_64
check hole_range_not_mirrored: forall p: ulong. !pfn_in_ram(p) -> !pfn_range(p).mirror
  on two
  for x86_64
check hole_range_is_zero_symbolic: forall p: ulong. !pfn_in_ram(p) -> pfn_range(p).end == 0
  for x86_64
"""


@pytest.mark.parametrize("name", ["hole_range_is_zero", "hole_range_not_mirrored", "hole_range_is_zero_symbolic"])
def test_a_hole_range_value_is_never_proved(tmp_path: Path, name: str) -> None:
    assert _verdict(tmp_path, UNSPECIFIED, name) is Verdict.REFUTED


# each claim is violated at one X with a hole's range other than the interpreter's, and
# at the other X with that one: the counterexample shown is the second, which the replay
# confirms (whichever the solver would find first)
REPLAYABLE = TWO + """
param X: int
check end_at_2: forall p: ulong. !pfn_in_ram(p) ->
    (X != 1 or pfn_range(p).end == 0) and (X != 2 or pfn_range(p).end != 0)
  on two
  for x86_64
  expect refuted
check end_at_1: forall p: ulong. !pfn_in_ram(p) ->
    (X != 1 or pfn_range(p).end != 0) and (X != 2 or pfn_range(p).end == 0)
  on two
  for x86_64
  expect refuted
check mirror_at_2: forall p: ulong. !pfn_in_ram(p) ->
    (X != 1 or !pfn_range(p).mirror) and (X != 2 or pfn_range(p).mirror)
  on two
  for x86_64
  expect refuted
check mirror_at_1: forall p: ulong. !pfn_in_ram(p) ->
    (X != 1 or pfn_range(p).mirror) and (X != 2 or !pfn_range(p).mirror)
  on two
  for x86_64
  expect refuted
"""


def test_a_hole_counterexample_takes_the_interpreters_range(tmp_path: Path) -> None:
    got = _results(tmp_path, REPLAYABLE)
    assert set(got) == {"end_at_1", "end_at_2", "mirror_at_1", "mirror_at_2"}
    for name, r in got.items():
        _decided(r)
        assert r.counterexample["params"]["X"] == int(name[-1]), name


@pytest.mark.parametrize("layout", [TWO_IR, EMPTY_IR], ids=["two", "empty"])
@pytest.mark.parametrize("pfn", HOLES)
def test_concrete_hole_range_is_open(layout: ir.LayoutDef, pfn: int) -> None:
    # at a pfn in no range each field of pfn_range() may take any value, the
    # interpreter's (0, 0, NUMA_NO_NODE, false) among them
    ctx = z3.Context()
    lay = ConcreteLayout(ctx, layout, 12, _no_params)
    p = z3.BitVecVal(pfn, 64, ctx)
    assert z3.is_false(z3.simplify(lay.pfn_in_ram(p)))
    r = lay.pfn_range(p)
    eager, lazy = lay.close()
    for fixed in ([0, 0, 0xFFFFFFFF, False], [1, 2, 0, True], [0x9F, 0x100, 1, False]):
        s = z3.Solver(ctx=ctx)
        s.add(*eager, *lazy)
        s.add(*[f == (z3.BoolVal(v, ctx) if isinstance(v, bool) else v) for f, v in zip(r.fields, fixed, strict=True)])
        assert s.check() == z3.sat, fixed


def test_concrete_range_of_ram_is_exact() -> None:
    ctx = z3.Context()
    lay = ConcreteLayout(ctx, TWO_IR, 12, _no_params)
    for pfn, want in [(0x1, (0x1, 0x9F, 0, False)), (0x9E, (0x1, 0x9F, 0, False)),
                      (0x100, (0x100, 0x80000, 0, False)), (0xFFFFF, (0x80000, 0x100000, 1, False))]:
        r = lay.pfn_range(z3.BitVecVal(pfn, 64, ctx))
        got = tuple(z3.is_true(v) if z3.is_bool(v) else v.as_long() for v in map(z3.simplify, r.fields))
        assert got == want


def test_concrete_hole_range_stays_bit_vector() -> None:
    # no uninterpreted function: a query on a layout with zone lines keeps the pure
    # bit-vector solver, and equal pfns get the same range through the lazy instances
    ctx = z3.Context()
    lay = ConcreteLayout(ctx, TWO_IR, 12, _no_params)
    p, q = z3.BitVec("p", 64, ctx), z3.BitVec("q", 64, ctx)
    rp, rq = lay.pfn_range(p), lay.pfn_range(q)
    lay.pfn_range(z3.BitVecVal(0x9F, 64, ctx))
    eager, lazy = lay.close()
    goal = z3.Goal(ctx=ctx)
    goal.add(*eager, *lazy, p == q, rp.get("end") != rq.get("end"))
    assert z3.Probe("is-qfbv", ctx)(goal) == 1.0
    assert len(lazy) == 3  # p with q and with 0x9f, q with 0x9f
    s = z3.Solver(ctx=ctx)
    s.add(goal.as_expr())
    assert s.check() == z3.unsat
