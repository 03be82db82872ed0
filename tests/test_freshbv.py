"""engine/freshbv.py: a pure bit-vector query answered in a process of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import z3

from khospec.engine import freshbv
from khospec.engine.freshbv import Trial, solve_fresh

UNITS = 3_000_000
PER_UNIT = 5000 / 3_000_000
# one trial with z3's defaults and the whole budget
ONE = [Trial(0, "caching", UNITS)]


def _facts(ctx: z3.Context) -> list[z3.BoolRef]:
    # (x << k) >> k == x fails for some x != 0, k < 32: a small query with a model
    x, k = z3.BitVec("x", 32, ctx), z3.BitVec("k", 32, ctx)
    return [z3.ULT(k, 32), x != 0, z3.LShR(x << k, k) != x, z3.Bool("named", ctx)]


def test_model_comes_back_in_the_callers_context() -> None:
    ctx = z3.Context()
    facts = _facts(ctx)
    answer = solve_fresh(facts, ctx, UNITS, ONE, PER_UNIT)
    assert answer.result == "sat" and answer.units > 0
    for f in facts:
        assert z3.is_true(answer.model.eval(f, model_completion=True))


def test_same_answer_whatever_ran_before() -> None:
    first = solve_fresh(_facts(ctx := z3.Context()), ctx, UNITS, ONE, PER_UNIT)
    # unrelated solving in this process changes nothing in the child
    other = z3.Context()
    y = z3.BitVec("y", 64, other)
    z3.Solver(ctx=other).check(y * y == 12345678987654321)
    again = solve_fresh(_facts(ctx2 := z3.Context()), ctx2, UNITS, ONE, PER_UNIT)
    assert (first.result, first.units) == (again.result, again.units)
    assert sorted(map(str, first.model.decls())) == sorted(map(str, again.model.decls()))
    for d in first.model.decls():
        assert str(first.model[d]) == str(again.model[next(e for e in again.model.decls() if e.name() == d.name())])


def test_unsat_and_budget() -> None:
    ctx = z3.Context()
    x = z3.BitVec("x", 8, ctx)
    assert solve_fresh([x + 1 == x], ctx, UNITS, ONE, PER_UNIT).result == "unsat"
    # one unit per trial decides nothing; both trials are tried and charged
    tiny = [Trial(0, "caching", 1), Trial(0, "always_false", 1)]
    answer = solve_fresh(_facts(ctx), ctx, 2, tiny, PER_UNIT)
    assert (answer.result, answer.units, answer.model) == ("unknown", 2, None)
    # the schedule is cut at the budget: the second trial gets nothing
    assert solve_fresh(_facts(ctx), ctx, 1, tiny, PER_UNIT).units == 1


def test_a_later_trial_answers_with_its_own_search() -> None:
    # the first trial gets too few units to decide; the second, with another seed and
    # phase selection, decides it, and its model holds
    ctx = z3.Context()
    facts = _facts(ctx)
    answer = solve_fresh(facts, ctx, 2 * UNITS, [Trial(0, "caching", 1), Trial(1, "always_false", UNITS)], PER_UNIT)
    assert answer.result == "sat" and answer.units > 1
    for f in facts:
        assert z3.is_true(answer.model.eval(f, model_completion=True))


def test_a_child_that_cannot_start_is_an_unknown_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    ctx = z3.Context()
    answer = solve_fresh(_facts(ctx), ctx, UNITS, ONE, PER_UNIT)
    assert (answer.result, answer.units, answer.model) == ("unknown", 0, None)


def test_the_phase_selection_reaches_z3() -> None:
    # z3 rejects a phase it does not know: the child then fails, an unknown answer
    ctx = z3.Context()
    answer = solve_fresh(_facts(ctx), ctx, UNITS, [Trial(0, "no_such_phase", UNITS)], PER_UNIT)
    assert (answer.result, answer.units) == ("unknown", 0)


def test_a_query_after_others_in_the_same_helper_is_answered_as_by_a_new_one() -> None:
    # the helper forks a child per query and never searches itself: a query asked after
    # others spends the units, and gets the model, that a helper of its own gives
    ctx = z3.Context()
    x = z3.BitVec("x", 64, ctx)
    solve_fresh([x * x == 12345678987654321], ctx, UNITS, ONE, PER_UNIT)
    solve_fresh([x + 1 == x], ctx, UNITS, ONE, PER_UNIT)
    after = solve_fresh(_facts(ctx), ctx, UNITS, ONE, PER_UNIT)
    freshbv._helper(sys.executable).end()  # the next query starts a new helper
    alone = solve_fresh(_facts(ctx), ctx, UNITS, ONE, PER_UNIT)
    assert (after.result, after.units) == (alone.result, alone.units)
    assert [(d.name(), str(after.model[d])) for d in after.model.decls()] == \
        [(d.name(), str(alone.model[d])) for d in alone.model.decls()]


def test_threads_asking_at_once_each_get_their_answer() -> None:
    # a Dask worker runs jobs in threads: each thread has a helper of its own, so the
    # requests of two threads never share one helper's pipe
    def ask(k: int) -> tuple[str, int]:
        ctx = z3.Context()
        x = z3.BitVec("x", 16, ctx)
        answer = solve_fresh([x * 3 == k, z3.ULT(x, 1000)], ctx, UNITS, ONE, PER_UNIT)
        return answer.result, answer.model.eval(x).as_long() if answer.model is not None else -1

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(ask, range(0, 600, 3)))
    assert got == [("sat", k // 3) for k in range(0, 600, 3)]


def test_a_helper_that_died_is_replaced() -> None:
    ctx = z3.Context()
    held = freshbv._helper(sys.executable)
    os.kill(held.proc.pid, signal.SIGKILL)
    held.proc.wait()
    assert solve_fresh(_facts(ctx), ctx, UNITS, ONE, PER_UNIT).result == "sat"
    assert freshbv._helper(sys.executable) is not held


def test_a_helper_that_does_not_answer_in_time_is_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    # a stand-in helper that reads the request and never answers: past the wall-clock
    # limit the answer is unknown, nothing spent, and the helper and its session are killed
    ctx = z3.Context()
    stuck = freshbv.Zygote(sys.executable)
    stuck.end()
    stuck.proc = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.stdin.readline(); time.sleep(60)"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    monkeypatch.setattr(freshbv, "_helper", lambda executable: stuck)
    monkeypatch.setattr(freshbv, "WALL_BASE_S", 0.5)
    answer = solve_fresh(_facts(ctx), ctx, 1, ONE, 0.0)
    assert (answer.result, answer.units, answer.model) == ("unknown", 0, None)
    assert stuck.proc.returncode is not None
