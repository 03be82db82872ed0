"""Witnesses shared between the nodes of a trace (khospec/engine/lower.py).

In a check over traces, the claim at each node, and each require, is a case of the
violation of its own: one witness per quantifier site can serve every node, since no
model needs two of them at once. It cannot serve two evaluations that one model needs
together: the instances of a quantifier instantiated on every witness range, the values
of an expanded interval, two calls with different arguments, or a `before` assumption,
which is asserted on every edge of its step along a path and under the claims below it.
Each spec here is proved when such evaluations share one witness and refuted otherwise;
the others check that the sharing the long trace proofs rely on is kept."""

from __future__ import annotations

from pathlib import Path

from khospec import ir
from khospec.api import Options, check_file
from khospec.engine.formulas import CheckFormulas
from khospec.engine.solve import run
from khospec.results import Result, Verdict
from tests.helpers import load_spec

TIMEOUT_MS = 20_000

# the assumption `trivially` is true of every layout; one `s` for every `r` would put
# every range in one node, and P and Q in the same one
NESTED_RANGES = """
param P: ulong
param Q: ulong
assume both_in_ram: pfn_in_ram(P) and pfn_in_ram(Q)
assume trivially: forall r in ranges. exists s in ranges. s.nid == r.nid
state { x: int = 0 }
step go when x == 0 { x = 1 }
check same_node: always pfn_node(P) == pfn_node(Q)
  for x86_64
  assuming both_in_ram, trivially
  expect EXPECT
"""

# the same with a number for the witness: the layout's closure settles, and the general
# query decides
NESTED_VALUE = """
param P: ulong
param Q: ulong
assume both_in_ram: pfn_in_ram(P) and pfn_in_ram(Q)
assume trivially: forall r in ranges. exists k: int. k == r.nid
state { x: int = 0 }
step go when x == 0 { x = 1 }
check same_node: always pfn_node(P) == pfn_node(Q)
  for x86_64
  assuming both_in_ram, trivially
"""

# `pick` holds before each run of `go`, at x == 0 and at x == 1: one k for both would
# make the second run impossible
BEFORE_TWICE = """
state { x: int = 0 }
assume pick: before go: exists k: int. k == x
step go when x < 2 { x = x + 1 }
check below_two: always x < 2
  for x86_64
  assuming pick
"""

# `current()` is asserted before `go` (x == 0) and is the claim's premise after it
# (x == 1): one k for both would make the premise false there
BEFORE_AND_CLAIM = """
state { x: int = 0 }
fn current() -> bool = exists k: int. k == x
assume pick: before go: current()
step go when x == 0 { x = 1 }
check stays: always current() -> x == 0
  for x86_64
  assuming pick
"""

# an interval expanded into three instances, one k each
EXPANDED = """
state { x: int = 0 }
step go when x == 0 { x = 1 }
check stays: always (forall i in [0, 3). exists k: int. k == i) -> x == 0
  for x86_64
"""

# one site, two calls with different arguments in one claim
TWO_CALLS = """
state { x: int = 0 }
fn is_value(v: int) -> bool = exists k: int. k == v
step go when x == 0 { x = 1 }
check stays: always (is_value(1) and is_value(2)) -> x == 0
  for x86_64
"""

# the claim's own witnesses, one per site for the whole tree
TOP_LEVEL = """
param P: ulong
state { m: [ulong] int = 0, x: int = 0 }
step a when x == 0 {
  m[P] = 1
  x = 1
}
step b when x == 1 { x = 2 }
check zero_elsewhere: always forall p: ulong. p != P -> m[p] == 0
  for x86_64
check zero_everywhere: always forall p: ulong. m[p] == 0
  for x86_64
  expect refuted
check pairs: always forall p: ulong. forall q: ulong. p != P and q != P -> m[p] == m[q]
  for x86_64
"""

# a loop that only checks, in a step that runs twice
LOOP = """
state { x: int = 0 }
step go when x < 2 {
  for n in nodes { require nonneg: n >= 0 }
  for p: ulong where p < 4 { require small: p < 4 }
  x = x + 1
}
check nonneg_holds: requirement nonneg
  for x86_64
"""

def _check(program: ir.Program, name: str) -> ir.CheckDef:
    return next(c for c in program.checks if c.name == name)


def _verdict(program: ir.Program, name: str) -> Verdict:
    check = _check(program, name)
    [(_, o)] = run(program, check, None, [program.profiles[p] for p in check.profiles], TIMEOUT_MS)
    return o.verdict


def _results(tmp_path: Path, text: str) -> dict[str, Result]:
    spec = tmp_path / "t.kho"
    spec.write_text(text, encoding="utf-8")
    return {r.check: r for r in check_file(spec, Options(cache=False))}


def _refuted_and_replayed(r: Result) -> None:
    assert r.verdict is Verdict.REFUTED, r
    assert r.replay is not None and r.replay.startswith("confirmed"), r


def _witnesses(f: CheckFormulas, site: int) -> int:
    return sum(1 for sk in f.low.skolems if sk.site == site and sk.role == "witness")


def _sites(expr: ir.Expr) -> list[int]:
    return [n.site for n in ir.walk([expr]) if isinstance(n, ir.Quant)]


# ---------------------------------------------------------------- not one witness for all


def test_an_exists_under_forall_ranges_is_not_one_range(tmp_path: Path) -> None:
    # the general query has no closure (each instance asks for a new range): undecided,
    # not proved
    program = load_spec(tmp_path, NESTED_RANGES.replace("EXPECT", "proved"))
    assert _verdict(program, "same_node") is not Verdict.PROVED


def test_an_exists_under_forall_ranges_is_refuted_on_small_layouts(tmp_path: Path) -> None:
    r = _results(tmp_path, NESTED_RANGES.replace("EXPECT", "refuted"))["same_node"]
    _refuted_and_replayed(r)


def test_an_exists_under_forall_ranges_has_a_witness_per_instance(tmp_path: Path) -> None:
    _refuted_and_replayed(_results(tmp_path, NESTED_VALUE)["same_node"])


def test_a_before_assumption_has_witnesses_per_edge(tmp_path: Path) -> None:
    _refuted_and_replayed(_results(tmp_path, BEFORE_TWICE)["below_two"])


def test_a_before_assumption_does_not_share_with_the_claim(tmp_path: Path) -> None:
    _refuted_and_replayed(_results(tmp_path, BEFORE_AND_CLAIM)["stays"])


def test_an_expanded_interval_has_a_witness_per_value(tmp_path: Path) -> None:
    _refuted_and_replayed(_results(tmp_path, EXPANDED)["stays"])


def test_calls_with_different_arguments_have_witnesses_of_their_own(tmp_path: Path) -> None:
    _refuted_and_replayed(_results(tmp_path, TWO_CALLS)["stays"])


# ---------------------------------------------------------------- sharing kept where sound


def test_the_claims_witnesses_give_the_same_verdicts(tmp_path: Path) -> None:
    results = _results(tmp_path, TOP_LEVEL)
    assert results["zero_elsewhere"].verdict is Verdict.PROVED
    assert results["pairs"].verdict is Verdict.PROVED
    _refuted_and_replayed(results["zero_everywhere"])


def test_a_claims_witness_serves_every_node(tmp_path: Path) -> None:
    program = load_spec(tmp_path, TOP_LEVEL)
    for name in ("zero_everywhere", "pairs"):
        check = _check(program, name)
        f = CheckFormulas(program, check, None, None, None, 0)
        assert len(f.nodes) == 3
        assert check.claim.expr is not None
        for site in _sites(check.claim.expr):
            assert _witnesses(f, site) == 1, (name, site)


def test_a_loop_witness_serves_every_node(tmp_path: Path) -> None:
    program = load_spec(tmp_path, LOOP)
    f = CheckFormulas(program, _check(program, "nonneg_holds"), None, None, None, 0)
    assert len(f.nodes) == 3
    counts = {sk.name: 0 for sk in f.low.skolems}
    for sk in f.low.skolems:
        counts[sk.name] += 1
    assert counts == {"n": 1}, counts
