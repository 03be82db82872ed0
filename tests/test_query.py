"""Asking a check's formulas (khospec/engine/query.py) on its own: the cone of a question,
the solver chosen for it, lazy instances added only when a model violates them, the
budget in resource units, the completion of a model to the formulas left out, and the
minimisation of an unsat core."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import z3

from khospec import ir
from khospec.api import Options, check_file
from khospec.engine.formulas import CheckFormulas
from khospec.engine.query import MINIMIZE_MS, RLIMIT_PER_SECOND, Queries, cone, units, unknown_reason
from khospec.results import Verdict
from tests.helpers import load_spec

# ---------------------------------------------------------------- the cone


def test_the_cone_follows_shared_symbols_transitively() -> None:
    ctx = z3.Context()
    a, b, c, d = (z3.BitVec(n, 8, ctx) for n in "abcd")
    f = z3.Function("f", z3.BitVecSort(8, ctx), z3.BitVecSort(8, ctx))
    formulas = [b == c, c == 1, f(d) == 0, z3.BoolVal(True, ctx), a == b]
    keep, left_out = cone([a > 0], formulas)
    # a -> b (last formula) -> c (first two); f(d) shares nothing; a formula without
    # symbols always goes in (it costs nothing and may be False)
    assert keep == {0, 1, 3, 4}
    assert left_out == {d.decl().get_id(), f.get_id()}


def test_the_cone_of_nothing_keeps_only_constant_formulas() -> None:
    ctx = z3.Context()
    x = z3.Bool("x", ctx)
    keep, left_out = cone([], [x, z3.BoolVal(False, ctx)])
    assert keep == {1}
    assert left_out == {x.decl().get_id()}


# ---------------------------------------------------------------- budgets


def test_budgets_are_resource_units_at_a_fixed_rate() -> None:
    assert units(1000) == RLIMIT_PER_SECOND
    assert units(MINIMIZE_MS) == 3 * RLIMIT_PER_SECOND


def test_an_exhausted_budget_is_unknown_without_asking() -> None:
    q, s, lits = _queries_on(_claim_program())
    q.budget = q.spent  # nothing left
    assert q.query(s, *lits) == z3.unknown


def test_a_solver_out_of_units_says_so_in_the_results_words() -> None:
    ctx = z3.Context()
    x, y = z3.BitVecs("x y", 64, ctx)
    s = z3.SolverFor("QF_BV", ctx=ctx)
    s.set("rlimit", 1)
    s.add(x * y == 0x1234567890ABCDEF, x > 1, y > 1)
    assert s.check() == z3.unknown
    assert unknown_reason(s) == "time limit reached (the solver's budget for --timeout ran out)"


# ---------------------------------------------------------------- the solver and its formulas


_SPEC = """
param limit_of(nid: int): ulong
assume small: forall n in nodes. limit_of(n) < 100
check c: forall n in nodes. limit_of(n) < 200
  assuming small
  for x86_64
"""


def _claim_program(tmp: Path | None = None) -> tuple[ir.Program, ir.CheckDef]:
    import tempfile

    folder = tmp or Path(tempfile.mkdtemp())
    program = load_spec(folder, _SPEC)
    return program, next(c for c in program.checks if c.name == "c")


def _queries_on(pc: tuple[ir.Program, ir.CheckDef]) -> tuple[Queries, z3.Solver, list[Any]]:
    program, check = pc
    f = CheckFormulas(program, check, None, None, None, 0)
    q = Queries(f)
    q.start(20_000, 20_000)
    s, lits = q.solver(program.profiles["x86_64"], 20_000, f.seed())
    return q, s, lits


def test_the_profile_constants_are_substituted(tmp_path: Path) -> None:
    program, check = _claim_program(tmp_path)
    f = CheckFormulas(program, check, None, None, None, 0)
    q = Queries(f)
    q.solver(program.profiles["x86_64"], 1000)
    shift = f.low.param("PAGE_SHIFT")
    assert z3.simplify(q.sub(shift)).as_long() == 12


def test_the_solvers_formulas_are_folded_once_the_constants_are_in(tmp_path: Path) -> None:
    # z3's incremental path (a check with assumptions) skips most of the preprocessing
    # a fresh check does: the formulas go in rewritten already
    program, check = _claim_program(tmp_path)
    f = CheckFormulas(program, check, None, None, None, 0)
    q = Queries(f)
    s, _ = q.solver(program.profiles["x86_64"], 1000)
    shift = f.low.param("PAGE_SHIFT")
    assert q.sub(shift).as_long() == 12
    one = z3.BitVecVal(1, shift.size(), f.ctx)
    assert z3.is_true(q.sub((one << shift) == 4096))
    assert s.assertions() and all(z3.simplify(a).eq(a) for a in s.assertions())


def test_the_claim_is_proved_with_the_assumption_in_the_core(tmp_path: Path) -> None:
    q, s, lits = _queries_on(_claim_program(tmp_path))
    f = q.f
    violation = z3.Or(*[v.formula for v in f.violations])
    lit = z3.Bool("violation", f.ctx)
    s.add(z3.Implies(lit, q.sub(violation)))
    assert q.query(s, *lits, lit) == z3.unsat
    core = [c for c in s.unsat_core() if c.get_id() in f.names()]
    kept, undecided = q.minimize(s, core, [lit])
    assert [f.names()[c.get_id()] for c in kept] == ["small"]
    assert undecided == []


def test_without_the_assumption_a_model_comes_back_complete(tmp_path: Path) -> None:
    q, s, lits = _queries_on(_claim_program(tmp_path))
    f = q.f
    violation = q.sub(z3.Or(*[v.formula for v in f.violations]))
    others = [lit for lit in lits if f.names()[lit.get_id()] != "small"]
    assert q.query(s, *others, violation) == z3.sat
    model = q.complete(s, others, [z3.Or(*[v.formula for v in f.violations])])
    assert model is not None
    # the model violates the claim: some node's limit is at least 200
    assert any(z3.is_true(model.eval(q.sub(v.formula), model_completion=True)) for v in f.violations)


def test_lazy_instances_are_added_only_when_a_model_violates_them(tmp_path: Path) -> None:
    q, s, lits = _queries_on(_claim_program(tmp_path))
    instances = list(q._pending)
    assert instances  # the assumption's instances on the layout's witnesses
    added_before = len(s.assertions())
    assert q.query(s, *lits) == z3.sat
    added = len(s.assertions()) - added_before
    # what was not added, the model satisfies anyway: it is a model of them all
    assert added + len(q._pending) == len(instances)
    m = q.model(s)
    assert all(z3.is_true(m.eval(f, model_completion=True)) for f in instances)


def test_a_completed_model_satisfies_the_lazy_instances_not_yet_asked(tmp_path: Path) -> None:
    # the completion solves again with the formulas the cone left out; a lazy instance
    # not yet in the solver binds that model too (without it, a library counterexample
    # broke an axiom over a range the first model never needed, and did not replay)
    q, s, lits = _queries_on(_claim_program(tmp_path))
    ctx = q.f.ctx
    x, y = z3.BitVecs("x y", 64, ctx)
    s.add(x >= 0)
    assert q.query(s, *lits) == z3.sat
    q._dropped = [y > 3]  # shares no symbol with the solver's formulas
    instance = y == 0x7777
    q._pending = [instance]
    model = q.complete(s, lits, [])
    assert model is not None
    assert z3.is_true(model.eval(y > 3, model_completion=True))
    assert z3.is_true(model.eval(instance, model_completion=True))


def test_a_library_proof_names_the_assumptions_it_named_before() -> None:
    # z3's search follows the ids of the terms, and the ids of freed terms are reused:
    # a refactoring that freed a model one round earlier made this proof name five
    # assumptions (two of them unsure) in 12 s instead of these two in 3 s. Which
    # profile's proof names only these two moves with the terms the solver is given:
    # x86_64's before the solver's formulas were simplified (Queries.sub), arm64-4k's
    # until a trace proof's violations of one condition became one case (CheckRun._cases),
    # arm64-64k's since; on the others the proof takes more than the 3 s below which
    # axioms are tried, and it names three more, marked unsure
    spec = Path(__file__).resolve().parent.parent / "spec" / "deferred_init.kho"
    [r] = check_file(spec, Options(checks=frozenset({"zone_search_owner_node"}), profiles=frozenset({"arm64-64k"}),
                                   cache=False))
    assert r.verdict is Verdict.PROVED
    assert r.assumptions_used == ("arch_zone_limits", "disjoint_node_spans"), r.assumptions_used


def test_a_case_whose_core_lies_within_the_assumptions_is_not_asked_again(tmp_path: Path) -> None:
    # minimising a proof's core over the cases of a trace check asks again only the
    # cases whose core held the member left out: the others stay unsat, since the
    # solver's assertions only grow
    q, s, _ = _queries_on(_claim_program(tmp_path))
    ctx = q.f.ctx
    a, b, case1, case2 = (z3.Bool(n, ctx) for n in ("a", "b", "case 1", "case 2"))
    x, y = z3.BitVecs("x y", 8, ctx)
    s.add(z3.Implies(a, x == 1), z3.Implies(b, y == 1), z3.Implies(case1, x == 2), z3.Implies(case2, y == 2))
    asked: list[str] = []
    query = q.query

    def counting(solver: z3.Solver, *assumptions: Any) -> Any:
        asked.append(str(assumptions[-1]))
        return query(solver, *assumptions)

    q.query = counting  # type: ignore[method-assign,assignment]
    cores: dict[int, list[Any]] = {}
    r, core = q.all_unsat(s, [a, b], [case1, case2], cores)
    assert r == z3.unsat and asked == ["case 1", "case 2"]
    assert sorted(str(c) for c in core) == ["a", "b", "case 1", "case 2"]
    assert sorted(str(c) for c in cores[case1.get_id()]) == ["a", "case 1"]
    # without b: case 1 is unsat by its core alone and is not asked; case 2 is, and is sat
    asked.clear()
    assert q.all_unsat(s, [a], [case1, case2], cores)[0] == z3.sat
    assert asked == ["case 2"]
    # both again: neither is asked, and the union of their cores is the same
    asked.clear()
    r, again = q.all_unsat(s, [a, b], [case1, case2], cores)
    assert r == z3.unsat and asked == []
    assert sorted(str(c) for c in again) == sorted(str(c) for c in core)
    # without the kept cores every case is asked, as before
    asked.clear()
    assert q.all_unsat(s, [a, b], [case1, case2])[0] == z3.unsat
    assert asked == ["case 1", "case 2"]
