"""The SMT-LIB2 export handed to the second solvers."""

from __future__ import annotations

import pytest
import z3

from khospec.engine.crosscheck import _strict, bitwuzla_verdict, cvc5_verdict, smtlib


def _query(ctx: z3.Context) -> list[z3.BoolRef]:
    x, y = z3.BitVecs("x y", 8, ctx=ctx)
    p = z3.Bool("p", ctx)
    # z3 keeps an `or`/`and` of one argument; SMT-LIB needs two or more
    return [z3.Or(z3.And(x + y == 3)), z3.Implies(p, z3.Or(x == 1)),
            z3.And(p, z3.ULT(y, 3))]


def test_export_has_no_single_argument_and_or() -> None:
    ctx = z3.Context()
    text = smtlib(_query(ctx))
    assert text.startswith("(set-logic QF_UFBV)")
    for f in _query(ctx):
        g = _strict(f, {})
        assert z3.Solver(ctx=ctx).check(z3.Not(f == g)) == z3.unsat
        todo = [g]
        while todo:
            e = todo.pop()
            if z3.is_and(e) or z3.is_or(e):
                assert e.num_args() >= 2, e
            todo.extend(e.children())


def test_deep_formula_does_not_hit_the_recursion_limit() -> None:
    ctx = z3.Context()
    x = z3.BitVec("x", 16, ctx=ctx)
    e = x
    for i in range(5000):
        e = z3.If(z3.Or(e == i), e + 1, e)
    assert _strict(e == 7, {}) is not None


@pytest.mark.parametrize("verdict", [bitwuzla_verdict, cvc5_verdict])
def test_both_solvers_read_the_export(verdict: object) -> None:
    ctx = z3.Context()
    assert callable(verdict)
    answer = verdict(smtlib(_query(ctx)), 10_000)
    if answer is None:
        pytest.skip("solver not installed")
    assert answer == "sat"  # x = 1, y = 2, p
    x = z3.BitVec("x", 8, ctx=ctx)
    assert verdict(smtlib([*_query(ctx), x != 1]), 10_000) == "unsat"
