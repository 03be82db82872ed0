"""engine/terms.py: conj, disj, choose and Substitution build the very terms z3.And,
z3.Or, z3.If and z3.substitute build."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import z3

from khospec.engine import terms
from khospec.engine.terms import Substitution, choose, conj, disj

PAIRS = [(conj, z3.And), (disj, z3.Or)]


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_the_same_term_as_z3s(ours: Callable[..., Any], theirs: Callable[..., Any]) -> None:
    ctx = z3.Context()
    a, b, c = (z3.Bool(n, ctx) for n in "abc")
    x = z3.BitVec("x", 8, ctx)
    for args in ((a, b, c), (a,), ([a, b],), ((a, x == 1),), (z3.ForAll([x], x == x), a)):
        mine = ours(*args)
        # z3 shares structurally equal terms: the same term has the same id
        assert mine.get_id() == theirs(*args).get_id()
        assert mine.ctx is ctx


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_anything_else_goes_to_z3(ours: Callable[..., Any], theirs: Callable[..., Any]) -> None:
    ctx = z3.Context()
    a = z3.Bool("a", ctx)
    assert ours(a, True).eq(theirs(a, True))
    assert ours([], ctx).eq(theirs([], ctx))
    with pytest.raises(z3.Z3Exception):
        ours(a, z3.Bool("b"))  # two contexts: z3's own error
    with pytest.raises(z3.Z3Exception):
        ours(a, z3.BitVec("y", 8, ctx))  # not a boolean


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_no_other_term_is_made(ours: Callable[..., Any], theirs: Callable[..., Any]) -> None:
    # z3's search depends on the ids of the terms: the next term gets the same id
    # whichever function built the one before
    ids = []
    for build in (ours, theirs):
        ctx = z3.Context()
        a, b = z3.Bool("a", ctx), z3.Bool("b", ctx)
        build(a, b, z3.Not(a))
        ids.append(z3.Bool("next", ctx).get_id())
    assert ids[0] == ids[1]


def test_choose_is_z3s_if() -> None:
    ctx = z3.Context()
    c, p = z3.Bool("c", ctx), z3.Bool("p", ctx)
    x, y = z3.BitVec("x", 64, ctx), z3.BitVec("y", 64, ctx)
    f = z3.Function("f", z3.BitVecSort(32, ctx), z3.BitVecSort(32, ctx))
    cases = [(c, x, y), (c, p, z3.Not(p)), (x == y, z3.BitVecVal(3, 64, ctx), x), (c, x, x),
             (z3.BoolVal(True, ctx), x, y), (c, f(z3.BitVecVal(1, 32, ctx)), z3.BitVecVal(0, 32, ctx)),
             # Python values, arrays: z3's own function, which converts them
             (c, x, 7), (c, True, p), (c, z3.K(z3.BitVecSort(8, ctx), x), z3.K(z3.BitVecSort(8, ctx), y))]
    for args in cases:
        mine, theirs = choose(*args), z3.If(*args)
        assert mine.get_id() == theirs.get_id() and type(mine) is type(theirs)
    with pytest.raises(z3.Z3Exception):
        choose(c, x, z3.BitVec("narrow", 32, ctx))  # branches of two sorts: z3's C call refuses
    with pytest.raises(z3.Z3Exception):
        choose(c, x, z3.BitVec("elsewhere", 64))  # two contexts


def test_choose_makes_no_other_term() -> None:
    ids = []
    for build in (choose, z3.If):
        ctx = z3.Context()
        c, x = z3.Bool("c", ctx), z3.BitVec("x", 16, ctx)
        build(c, x, z3.BitVecVal(0, 16, ctx))
        ids.append(z3.Bool("next", ctx).get_id())
    assert ids[0] == ids[1]


# (ours, z3's) for the boolean terms made with one C call
BOOLEAN = [("negate", z3.Not), ("implies", z3.Implies), ("equal", lambda a, b: a == b),
           ("ule", z3.ULE), ("ult", z3.ULT), ("uge", z3.UGE), ("ugt", z3.UGT),
           ("slt", lambda a, b: a < b), ("sle", lambda a, b: a <= b), ("sgt", lambda a, b: a > b),
           ("sge", lambda a, b: a >= b)]


@pytest.mark.parametrize(("name", "theirs"), BOOLEAN, ids=[n for n, _ in BOOLEAN])
def test_boolean_terms_are_z3s(name: str, theirs: Callable[..., Any]) -> None:
    ours = getattr(terms, name)
    ctx = z3.Context()
    p, q = z3.Bool("p", ctx), z3.Bool("q", ctx)
    x, y = z3.BitVec("x", 64, ctx), z3.BitVec("y", 64, ctx)
    arity = 1 if name == "negate" else 2
    boolean = name in ("negate", "implies", "equal")
    cases = [(p, q), (p, z3.BoolVal(False, ctx)), (p, True)] if boolean else []
    if name not in ("negate", "implies"):
        # a numeral right of a term: Python asks the numeral first, z3 mirrors the term
        cases += [(x, y), (x, z3.BitVecVal(4096, 64, ctx)), (z3.BitVecVal(4096, 64, ctx), x), (x + 1, 7), (3, y)]
    for args in cases:
        mine = ours(*args[:arity])
        assert mine.get_id() == theirs(*args[:arity]).get_id() and isinstance(mine, z3.BoolRef)
    if name == "negate":
        with pytest.raises(z3.Z3Exception):
            ours(x)  # not a boolean
        return
    with pytest.raises(z3.Z3Exception):
        ours(*((p, x) if boolean else (x, z3.BitVec("narrow", 32, ctx))))  # sorts that do not fit
    with pytest.raises(z3.Z3Exception):
        ours(z3.Bool("elsewhere") if boolean else z3.BitVec("elsewhere", 64), p if boolean else y)  # two contexts


def test_bv_value_is_z3s() -> None:
    ids = []
    for make in (terms.bv_value, z3.BitVecVal):
        ctx = z3.Context()
        made = [make(v, w, ctx) for v, w in ((0, 1), (1, 1), (4096, 64), ((1 << 64) - 1, 64), (7, 13),
                                             (1 << 70, 128), (-1, 32), (True, 8))]
        assert all(type(m) is z3.BitVecNumRef for m in made)
        # the same terms, and no other: the next term gets the same id either way
        ids.append([m.get_id() for m in made] + [z3.BitVec("next", 8, ctx).get_id()])
        assert [m.as_long() for m in made] == [0, 1, 4096, (1 << 64) - 1, 7, 1 << 70, (1 << 32) - 1, 1]
    assert ids[0] == ids[1]


def test_apply_is_z3s_call() -> None:
    ctx = z3.Context()
    f = z3.Function("f", z3.BitVecSort(32, ctx), z3.BitVecSort(64, ctx))
    g = z3.Function("g", z3.BitVecSort(32, ctx), z3.BoolSort(ctx), z3.BoolSort(ctx))
    x, p = z3.BitVec("x", 32, ctx), z3.Bool("p", ctx)
    for fn, args in ((f, (x,)), (f, (z3.BitVecVal(3, 32, ctx),)), (g, (x, p)), (f, (3,)), (g, (x, True))):
        mine, theirs = terms.apply(fn, *args), fn(*args)
        assert mine.get_id() == theirs.get_id() and type(mine) is type(theirs)
    with pytest.raises(z3.Z3Exception):
        terms.apply(f, z3.BitVec("narrow", 8, ctx))  # z3's C call checks the sort


def test_is_true_and_is_false_are_z3s() -> None:
    ctx = z3.Context()
    p, x = z3.Bool("p", ctx), z3.BitVec("x", 8, ctx)
    for a in (z3.BoolVal(True, ctx), z3.BoolVal(False, ctx), p, z3.Not(z3.BoolVal(True, ctx)), x == x,
              z3.ForAll([x], x == x), x, 3, True):
        assert (terms.is_true(a), terms.is_false(a)) == (z3.is_true(a), z3.is_false(a))


def _substitution_case() -> tuple[z3.Context, list[tuple[Any, Any]], list[Any]]:
    ctx = z3.Context()
    shift, order = z3.BitVec("PAGE_SHIFT", 32, ctx), z3.BitVec("MAX_PAGE_ORDER", 32, ctx)
    x = z3.BitVec("x", 64, ctx)
    f = z3.Function("f", z3.BitVecSort(32, ctx), z3.BoolSort(ctx))
    pairs = [(shift, z3.BitVecVal(12, 32, ctx)), (order, z3.BitVecVal(10, 32, ctx))]
    formulas = [x << z3.ZeroExt(32, shift) == 4096, f(order), z3.ForAll([x], z3.Implies(f(shift), x == x)),
                x == 1, z3.And(f(shift), z3.Not(f(order + 1)))]
    return ctx, pairs, formulas


def test_a_substitution_is_z3s() -> None:
    ctx, pairs, formulas = _substitution_case()
    sub = Substitution(pairs)
    for g in formulas:
        mine = sub(g)
        assert mine.get_id() == z3.substitute(g, *pairs).get_id()
        # the same wrapper class as z3's: a bit-vector stays one for its operators
        assert type(mine) is type(z3.substitute(g, *pairs))
    assert type(sub(z3.BitVec("y", 32, ctx) + pairs[0][0])) is z3.BitVecRef
    # what is not a term of the pairs' context goes to z3.substitute (and its errors)
    with pytest.raises(z3.Z3Exception):
        sub(True)


def test_a_substitution_makes_no_other_term() -> None:
    ids = []
    for prepared in (True, False):
        ctx, pairs, formulas = _substitution_case()
        sub = Substitution(pairs)
        for g in formulas:
            sub(g) if prepared else z3.substitute(g, *pairs)
        ids.append(z3.Bool("next", ctx).get_id())
    assert ids[0] == ids[1]
