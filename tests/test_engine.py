"""Verdicts of small specs through the API, one behaviour per test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from khospec.api import Options, check_file
from khospec.results import Verdict


def _verdicts(tmp_path: Path, text: str) -> dict[str, Verdict]:
    spec = tmp_path / "t.kho"
    spec.write_text(text)
    return {r.check: r.verdict for r in check_file(spec, Options(timeout_s=30))}


def test_basic_verdicts() -> None:
    got = {r.check: r.verdict for r in check_file("tests/golden/specs/basic.kho")}
    assert got == {
        "wraps": Verdict.PROVED,
        "sign_conversion": Verdict.PROVED,
        "not_monotone": Verdict.REFUTED,
        "int_shift": Verdict.PROVED,
        "two_nodes_possible": Verdict.REFUTED,
    }


# The solver only sees the formulas connected to the claim (about X); the vacuity check
# sees them all, so assumptions contradicting each other about Y count too.
@pytest.mark.parametrize("about", ["X", "Y"])
def test_contradiction_is_never_proved(tmp_path: Path, about: str) -> None:
    got = _verdicts(tmp_path, f"""
param X: int
param Y: int
assume small: {about} < 5
assume big: {about} > 10
check c: X == X + 0
  for x86_64
  assuming small, big
  expect vacuous
""")
    assert got["c"] is Verdict.VACUOUS


def test_proof_names_its_assumptions(tmp_path: Path) -> None:
    spec = tmp_path / "t.kho"
    spec.write_text("""
param X: int
assume positive: X > 0
assume unused: X < 1000000
check c: X >= 1
  for x86_64
  assuming positive, unused
""")
    [r] = check_file(spec)
    assert r.verdict is Verdict.PROVED
    assert r.assumptions_used == ("positive",)


def test_proof_names_no_axiom_it_does_not_need(tmp_path: Path) -> None:
    # every profile in one solver: the core may name the prelude's build checks; for a
    # concrete profile they are constant truths, and deletion removes any other axiom
    # the proof can do without
    spec = tmp_path / "t.kho"
    spec.write_text("""
param X: int
axiom noise: X != 7 or X == 7
assume positive: X > 0
check c: X >= 1 and PAGE_SHIFT >= 12
  for x86_64, arm64-64k, ppc64-4k
  assuming positive
""")
    results = check_file(spec)
    assert [r.verdict for r in results] == [Verdict.PROVED] * 3
    for r in results:
        assert r.assumptions_used == ("positive",), r
        assert not r.notes, r


def test_machine_trace_and_requirement(tmp_path: Path) -> None:
    got = _verdicts(tmp_path, """
state { n: int = 0, ok: bool = true }
step inc when n < 3 { n = n + 1 }
step check_it when n == 3 and ok {
  require small: n <= 3
  ok = false
}
check stays_small: requirement small
  for x86_64
check reaches_three: always n <= 2
  for x86_64
  expect refuted
""")
    assert got == {"stays_small": Verdict.PROVED, "reaches_three": Verdict.REFUTED}


def test_step_never_enabled_is_vacuous(tmp_path: Path) -> None:
    got = _verdicts(tmp_path, """
state { n: int = 0 }
step never when n > 5 {
  require r: n == 0
}
check c: requirement r
  for x86_64
  expect vacuous
""")
    assert got["c"] is Verdict.VACUOUS


def test_loop_with_invariant_is_proved(tmp_path: Path) -> None:
    got = _verdicts(tmp_path, """
fn sum_to(n: uint) -> uint {
  var i: uint = 0
  while i < n
    invariant i <= n
  {
    require bounded: i < n
    i = i + 1
  }
  require done: i == n
  return i
}
check all_iterations: forall n: uint. requires_hold(sum_to(n))
  for x86_64
""")
    # proved, not holds_to_depth: the exit i == n satisfies the invariant wherever the
    # loop runs, so the stand-in's exit excludes no execution
    assert got["all_iterations"] is Verdict.PROVED


def test_layout_witnesses_are_exact(tmp_path: Path) -> None:
    # any layout may have a pfn of node 3 next to one of node 7: refuted with a real layout
    got = _verdicts(tmp_path, """
check one_node: forall p: ulong. pfn_in_ram(p) and pfn_in_ram(p + 1) -> pfn_node(p) == pfn_node(p + 1)
  for x86_64
  expect refuted
assume aligned: forall a in ranges. IS_ALIGNED(a.start, 4) and IS_ALIGNED(a.end, 4)
check one_node_aligned: forall p: ulong. IS_ALIGNED(p, 4) and pfn_in_ram(p) and pfn_in_ram(p + 1)
    -> pfn_node(p) == pfn_node(p + 1)
  for x86_64
  assuming aligned
  expect proved
""")
    assert got == {"one_node": Verdict.REFUTED, "one_node_aligned": Verdict.PROVED}


def test_counterexample_satisfies_assumptions_apart_from_the_claim(tmp_path: Path) -> None:
    # Y is outside the claim's cone: the counterexample is completed with a Y that
    # satisfies its assumption, and the replay checks it
    spec = tmp_path / "t.kho"
    spec.write_text("""
param X: uint
param Y: uint
assume y_range: Y > 100 and Y < 103
check c: X + 1 > X
  for x86_64
  assuming y_range
  expect refuted
""")
    [r] = check_file(spec)
    assert r.verdict is Verdict.REFUTED and r.replay == "confirmed"
    assert r.counterexample is not None
    assert r.counterexample["params"]["Y"] in ("101", "102", 101, 102, "0x65", "0x66")


def test_counterexample_completed_when_rounding_reached_left_out_ranges() -> None:
    # handover.kho with `restore` hollowed out (as bench/mutate.py does): the violation
    # involves no layout range, so the query leaves the layout's formulas out; rounding
    # the layout then gave the ranges values those formulas forbid, and completing the
    # counterexample failed (the verdict was unknown)
    import dataclasses

    from khospec import ir
    from khospec.api import Job, load, run_job
    from khospec.diagnostics import SourceCache

    path = Path("spec/handover.kho")
    program, _ = load(path, str(path), SourceCache())
    assert program is not None
    steps = dict(program.steps)
    restore = steps["restore"]
    steps["restore"] = dataclasses.replace(restore, body=tuple(
        s for s in restore.body if isinstance(s, ir.SStateAssign) and s.name == "phase"))
    mutant = dataclasses.replace(program)
    mutant.steps = steps
    check = next(c for c in mutant.checks if c.name == "restore_accepts_pages_chunk")
    job = Job(path, str(path), check.name, check.span.line, "eager_head_nid", ("x86_64",))
    [r] = run_job(mutant, job, Options(timeout_s=30))
    assert r.verdict is Verdict.REFUTED and r.replay == "confirmed"


# A pure bit-vector claim: the expectation decides whether the decision query asks fresh
# QF_BV solvers first, seed after seed, in another process (engine/freshbv.py). Expected
# refuted, the counterexample is their model; expected proved, the incremental decision
# finds the violation, and its model, an execution already, is the counterexample
# (solve.py, CheckRun._shortest). Either way the verdict, and the counterexample, are the
# same on every run, and the counterexample replays.
@pytest.mark.parametrize("expect", ["refuted", "proved"])
def test_bit_vector_refutation_from_fresh_solvers(
    tmp_path: Path, expect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from khospec.engine import freshbv, query

    answers: list[str] = []
    real = freshbv.solve_fresh

    def spy(*args: Any) -> Any:
        r = real(*args)
        answers.append(r.result)
        return r

    monkeypatch.setattr(query, "solve_fresh", spy)
    spec = tmp_path / "t.kho"
    spec.write_text(f"""
check shift_wraps:
  forall x: uint, k: uint.
    k < 32 and x != 0 -> (x << k) >> k == x
  for x86_64
  expect {expect}
""")
    runs = [check_file(spec, Options(cache=False)) for _ in range(2)]
    [r], [again] = runs
    assert r.verdict is Verdict.REFUTED and r.replay == "confirmed"
    assert r.counterexample == again.counterexample
    assert answers == (["sat", "sat"] if expect == "refuted" else []), answers
