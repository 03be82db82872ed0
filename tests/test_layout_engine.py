"""The layouts of the lowering (khospec/engine/layout.py) on their own, without a spec:
a concrete layout's answers against the numbers, the symbolic and bounded layouts'
witness constraints, and the table of builtins against the resolver's."""

from __future__ import annotations

import inspect
from itertools import pairwise
from typing import Any

import pytest
import z3

from khospec import ir
from khospec.engine.bv import StructVal
from khospec.engine.layout import (
    LAYOUT_BUILTINS,
    BoundedLayout,
    ConcreteLayout,
    Layout,
    SymbolicLayout,
    answer_builtin,
    sort_of,
)
from khospec.resolve import expressions
from khospec.types import MEM_RANGE, StructType, Type

PAGE_SHIFT = 12
NO_NODE = 0xFFFFFFFF  # NUMA_NO_NODE as the 32-bit value z3 gives back

# Two nodes, node 0 with a hole below 1 MiB and ranges not on page boundaries, node 1
# with ZONE_MOVABLE from 3 GiB; DMA, DMA32 and Normal given, the device zone not.
LAYOUT = ir.LayoutDef(
    name="two_nodes",
    ranges=(
        ir.LayoutRange(0x100000, 0x80000000, 0),
        ir.LayoutRange(0x1000, 0x9F800, 0),  # ends inside pfn 0x9f: rounded down
        ir.LayoutRange(0x80000000, 0x100000000, 1, mirror=True),
    ),
    zones=((0, 0x1000, 0x1000000), (1, 0x1000000, 0x100000000), (2, 0x100000000, 0x180000000)),
    movable=((1, 0xC0000000),),
    mirrored_kernelcore=True,
    bindings=(),
)
# The same ranges in pfns: (start, end, nid, mirror), sorted
RANGES = [(0x1, 0x9F, 0, False), (0x100, 0x80000, 0, False), (0x80000, 0x100000, 1, True)]
SPANS = {0: (0x1, 0x80000), 1: (0x80000, 0x100000)}
MOVABLE = {0: 0, 1: 0xC0000}
# free_area_init()'s limits: consecutive from the first zone, the missing device zone
# empty where Normal ends, ZONE_MOVABLE (3) without limits of its own
ZONES = [(0x1, 0x1000), (0x1000, 0x100000), (0x100000, 0x180000), (0, 0), (0x180000, 0x180000)]

PFNS = [0, 0x1, 0x9E, 0x9F, 0xFF, 0x100, 0x7FFFF, 0x80000, 0xC0000, 0xFFFFF, 0x100000, (1 << 64) - 1]


def _no_params(name: str, args: tuple[Any, ...]) -> Any:
    raise AssertionError(f"a layout asked for param {name}")


def _value(term: Any) -> int | bool:
    v = z3.simplify(term)
    if z3.is_bool(v):
        assert z3.is_true(v) or z3.is_false(v), v
        return bool(z3.is_true(v))
    assert z3.is_bv_value(v), v
    return int(v.as_long())


def _concrete(ctx: z3.Context) -> ConcreteLayout:
    return ConcreteLayout(ctx, LAYOUT, PAGE_SHIFT, _no_params)


def _range_at(p: int) -> tuple[int, int, int, bool] | None:
    return next((r for r in RANGES if r[0] <= p < r[1]), None)


@pytest.mark.parametrize("p", PFNS)
def test_concrete_pfn_builtins(p: int) -> None:
    ctx = z3.Context()
    lay = _concrete(ctx)
    pv = z3.BitVecVal(p, 64, ctx)
    hit = _range_at(p)
    assert _value(answer_builtin(lay, "pfn_in_ram", [pv])) is (hit is not None)
    assert _value(answer_builtin(lay, "pfn_node", [pv])) == (hit[2] if hit else NO_NODE)
    r = answer_builtin(lay, "pfn_range", [pv])
    assert isinstance(r, StructVal) and r.ty == MEM_RANGE
    if hit is not None:
        assert tuple(_value(f) for f in r.fields) == hit


@pytest.mark.parametrize("nid", [0, 1, 2, -1])
def test_concrete_node_builtins(nid: int) -> None:
    ctx = z3.Context()
    lay = _concrete(ctx)
    n = z3.BitVecVal(nid & NO_NODE, 32, ctx)
    start, end = SPANS.get(nid, (0, 0))
    assert _value(answer_builtin(lay, "node_start_pfn", [n])) == start
    assert _value(answer_builtin(lay, "node_end_pfn", [n])) == end
    assert _value(answer_builtin(lay, "zone_movable_pfn", [n])) == MOVABLE.get(nid, 0)


@pytest.mark.parametrize("zone", range(5))
def test_concrete_zone_limits(zone: int) -> None:
    ctx = z3.Context()
    lay = _concrete(ctx)
    z = z3.BitVecVal(zone, 32, ctx)
    lo = _value(answer_builtin(lay, "arch_zone_lowest_possible_pfn", [z]))
    hi = _value(answer_builtin(lay, "arch_zone_highest_possible_pfn", [z]))
    assert (lo, hi) == ZONES[zone]


def test_concrete_quantifiers_and_flags() -> None:
    ctx = z3.Context()
    lay = _concrete(ctx)
    assert _value(answer_builtin(lay, "mirrored_kernelcore", [])) is True
    assert _value(lay.forall_nodes(lambda n: z3.ULT(n, 2))) is True
    assert _value(lay.exists_node(lambda n: n == 2, "n")) is False
    assert _value(lay.forall_ranges(lambda r: z3.ULT(r.get("start"), r.get("end")))) is True
    assert _value(lay.exists_range(lambda r: r.get("mirror"), "r")) is True
    default = z3.BitVecVal(NO_NODE, 32, ctx)
    assert _value(lay.first_node(lambda n: z3.UGE(lay.node_start_pfn(n), 0x80000), default, "first")) == 1
    assert _value(lay.first_node(lambda n: n == 5, default, "first")) == NO_NODE


def test_concrete_extract() -> None:
    ctx = z3.Context()
    lay = _concrete(ctx)
    s = z3.Solver(ctx=ctx)
    assert s.check() == z3.sat
    got = lay.extract(s.model())
    assert got == {
        "ranges": RANGES,
        "nodes": [0, 1],
        "zone_movable_pfn": MOVABLE,
        "arch_zones": ZONES,
        "mirrored_kernelcore": True,
    }


def _two_nodes(lay: Layout, ctx: z3.Context) -> tuple[z3.Solver, Any, Any]:
    """A solver holding the layout's constraints and: pfn p in node 0, pfn q in node 1,
    q at the start of its node."""
    p, q = z3.BitVec("p", 64, ctx), z3.BitVec("q", 64, ctx)
    one = z3.BitVecVal(1, 32, ctx)
    facts = [
        lay.pfn_in_ram(p), lay.pfn_in_ram(q),
        lay.pfn_node(p) == 0, lay.pfn_node(q) == one,
        lay.node_start_pfn(lay.pfn_node(q)) == q,
        z3.ULT(q, lay.node_end_pfn(one)),
        lay.forall_ranges(lambda r: z3.ULT(r.get("end"), z3.BitVecVal(1 << 20, 64, ctx))),
    ]
    eager, lazy = lay.close()
    s = z3.Solver(ctx=ctx)
    s.add(*eager, *lazy, *facts)
    return s, p, q


def _check_extracted(lay: Layout, s: z3.Solver, p: Any, q: Any) -> None:
    m = s.model()
    got = lay.extract(m)
    assert got["nodes"] == [0, 1]
    ranges = got["ranges"]
    assert all(s_ < e for s_, e, _, _ in ranges)
    assert all(a[1] <= b[0] for a, b in pairwise(ranges))  # sorted and disjoint
    pv, qv = m.eval(p).as_long(), m.eval(q).as_long()
    assert any(s_ <= pv < e and n == 0 for s_, e, n, _ in ranges)
    assert min(s_ for s_, _, n, _ in ranges if n == 1) == qv


@pytest.mark.parametrize("kind", ["symbolic", "bounded"])
def test_two_node_layout_is_satisfiable(kind: str) -> None:
    ctx = z3.Context()
    lay: Layout = SymbolicLayout(ctx, _no_params) if kind == "symbolic" else BoundedLayout(ctx, _no_params, 2)
    assert lay.kind == kind
    s, p, q = _two_nodes(lay, ctx)
    assert s.check() == z3.sat
    _check_extracted(lay, s, p, q)


def test_symbolic_witness_ranges_are_disjoint() -> None:
    # two witnesses answering for the same pfn are one range: the pairwise disjointness
    # instances make "same pfn, different nodes" impossible
    ctx = z3.Context()
    lay = SymbolicLayout(ctx, _no_params)
    p, q = z3.BitVec("p", 64, ctx), z3.BitVec("q", 64, ctx)
    facts = [p == q, lay.pfn_in_ram(p), lay.pfn_in_ram(q), lay.pfn_node(p) != lay.pfn_node(q)]
    eager, lazy = lay.close()
    assert len(lay.ranges) == 2
    s = z3.Solver(ctx=ctx)
    s.add(*eager, *facts)
    assert s.check() == z3.sat  # the disjointness is among the lazy instances
    s.add(*lazy)
    assert s.check() == z3.unsat


def test_a_pfn_chosen_among_pfns_already_asked_about_takes_their_answers() -> None:
    # kho_preserve_pages()'s node cut: pfn_node() at the end of a block whose order is
    # the loop's choice among the orders its condition tried. The answer is the choice
    # among their answers, with no witness of its own: equal to them without the
    # disjointness instances, where a witness of its own is equal only through them
    ctx = z3.Context()
    lay = SymbolicLayout(ctx, _no_params)
    p, o1, o2 = z3.BitVec("p", 64, ctx), z3.BitVec("o1", 32, ctx), z3.BitVec("o2", 32, ctx)
    c = z3.Bool("c", ctx)

    def end(o: Any) -> Any:
        return p + (z3.BitVecVal(1, 64, ctx) << z3.ZeroExt(32, o)) - 1

    nodes = [lay.pfn_node(end(o1)), lay.pfn_node(end(o2))]
    asked = len(lay.ranges)
    chosen = end(z3.If(c, o1, o2))
    node, in_ram, rng = lay.pfn_node(chosen), lay.pfn_in_ram(chosen), lay.pfn_range(chosen)
    assert len(lay.ranges) == asked
    eager, _ = lay.close()
    s = z3.Solver(ctx=ctx)
    s.add(*eager)
    assert s.check(node != z3.If(c, nodes[0], nodes[1])) == z3.unsat
    assert s.check(in_ram != z3.If(c, lay.pfn_in_ram(end(o1)), lay.pfn_in_ram(end(o2)))) == z3.unsat
    assert s.check(rng.get("start") != z3.If(c, lay.pfn_range(end(o1)).get("start"),
                                              lay.pfn_range(end(o2)).get("start"))) == z3.unsat
    # a choice with a pfn not asked about gets a witness of its own, as any new pfn does,
    # and trying to split it made no term in the query's context, whose ids steer z3
    other = end(z3.If(c, o1, o1 + 1))
    before = z3.BitVec("before", 64, ctx).get_id()
    assert lay._cases(other) is None
    assert z3.BitVec("after", 64, ctx).get_id() == before + 1
    lay.pfn_node(other)
    assert len(lay.ranges) == asked + 1


def test_pfns_the_rewriter_makes_equal_are_one_question() -> None:
    # the loop's exit state 0 in kho_preserve_pages(): the block's end is pfn itself
    ctx = z3.Context()
    lay = SymbolicLayout(ctx, _no_params)
    p = z3.BitVec("p", 64, ctx)
    node = lay.pfn_node(p)
    asked = len(lay.ranges)
    end = p + (z3.BitVecVal(1, 64, ctx) << (z3.ZeroExt(32, z3.BitVecVal(0, 32, ctx)) & 63)) - 1
    assert lay.pfn_node(end).eq(node)
    assert len(lay.ranges) == asked
    # the rewriting happens in a context of its own: no term is made in the query's
    # context, whose ids steer z3's search
    q = p * z3.BitVec("n", 64, ctx) + 1
    before = z3.BitVec("before", 64, ctx).get_id()
    assert lay._key(q) == q.get_id()
    assert z3.BitVec("after", 64, ctx).get_id() == before + 1
    # and that context is made only once a term has constants to fold
    other = SymbolicLayout(ctx, _no_params)
    other.pfn_node(p)
    other.pfn_in_ram(q)
    assert other._normal is None


def test_bounded_layout_has_at_most_k_ranges() -> None:
    ctx = z3.Context()
    lay = BoundedLayout(ctx, _no_params, 2)
    ps = [z3.BitVec(f"p{i}", 64, ctx) for i in range(3)]
    facts = [lay.pfn_node(p) == i for i, p in enumerate(ps)]
    eager, lazy = lay.close()
    s = z3.Solver(ctx=ctx)
    s.add(*eager, *lazy, *facts)
    assert s.check() == z3.unsat  # three nodes need three ranges


def _resolver_layout_builtins() -> dict[str, tuple[tuple[Type, ...], Type]]:
    out = dict(expressions.LAYOUT_BUILTINS)
    out.update({name: ((), ty) for name, ty in expressions.LAYOUT_CONSTANTS.items()})
    return out


def test_builtin_table_matches_the_resolver() -> None:
    resolver = _resolver_layout_builtins()
    assert set(LAYOUT_BUILTINS) == set(resolver) == set(ir.LAYOUT_BUILTINS)
    for name, builtin in LAYOUT_BUILTINS.items():
        assert builtin.arity == len(resolver[name][0]), name
        method = getattr(Layout, builtin.method)
        assert len(inspect.signature(method).parameters) == builtin.arity + 1, name  # self


@pytest.mark.parametrize("kind", ["symbolic", "concrete", "bounded"])
@pytest.mark.parametrize("name", sorted(LAYOUT_BUILTINS))
def test_every_layout_answers_every_builtin_in_its_type(kind: str, name: str) -> None:
    ctx = z3.Context()
    lay: Layout
    if kind == "symbolic":
        lay = SymbolicLayout(ctx, _no_params)
    elif kind == "concrete":
        lay = _concrete(ctx)
    else:
        lay = BoundedLayout(ctx, _no_params)
    arg_types, ret = _resolver_layout_builtins()[name]
    args = [z3.Const(f"a{i}", sort_of(t, ctx)) for i, t in enumerate(arg_types)]
    got = answer_builtin(lay, name, args)
    if isinstance(ret, StructType):
        assert isinstance(got, StructVal) and got.ty == ret
        assert [f.sort() for f in got.fields] == [sort_of(t, ctx) for _, t in ret.fields]
    else:
        assert got.sort() == sort_of(ret, ctx)
