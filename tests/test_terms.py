"""engine/terms.py: conj and disj build the very terms z3.And and z3.Or build."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import z3

from khospec.engine.terms import conj, disj

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
