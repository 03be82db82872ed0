"""The interpreter decides quantifiers over pfns exactly (interp.PV), or names them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from khospec.api import Options, check_file, load
from khospec.counterexample import ModelLayout, ModelValues
from khospec.diagnostics import SourceCache
from khospec.interp import Frame, Interp

LAYOUT: ModelLayout = {"ranges": [(0x1000, 0x2000, 0, False), (0x2000, 0x3000, 1, False)], "nodes": [0, 1],
                       "zone_movable_pfn": {}, "arch_zones": [], "mirrored_kernelcore": False}


def _assumptions(tmp_path: Path, text: str, params: dict[str, Any]) -> tuple[Interp, dict[str, Any]]:
    spec = tmp_path / "t.kho"
    spec.write_text(text)
    program, diags = load(spec, str(spec), SourceCache())
    assert program is not None, diags
    model: ModelValues = {"params": params, "param_functions": {}, "layout": LAYOUT, "witnesses": [], "initial": []}
    interp = Interp(program, None, model)
    return interp, {name: a.formula for name, a in program.assumes.items()}


@pytest.mark.parametrize(("formula", "holds"), [
    # false at one pfn only, X + 37, which is none of the counterexample's numbers
    ("forall p: ulong. p < X or p >= X + 100 or p != X + 37", False),
    ("forall p: ulong. p < X or p >= X + 100 or p != X + 100", True),
    # the wrap-around of p + X: true below it, false above it
    ("forall p: ulong. p + X >= X", False),
    ("exists p: ulong. p + 0x1000 == 0", True),
    # layout reads: every pfn of node 1 lies in [0x2000, 0x3000)
    ("forall p: ulong. pfn_in_ram(p) and pfn_node(p) == 1 -> p >= 0x2000 and p < 0x3000", True),
    ("forall p: ulong. pfn_in_ram(p) -> pfn_node(p) == 0", False),
    # alignment: the only 64-aligned pfns of [X, X + 128) are X and X + 64
    ("forall p: ulong. p >= X and p < X + 128 and IS_ALIGNED(p, 64) -> p == X or p == X + 64", True),
    ("forall p: ulong. p >= X and p < X + 128 and (p & 31) == 0 -> p == X or p == X + 64", False),
])
def test_quantifier_is_decided_exactly(tmp_path: Path, formula: str, holds: bool) -> None:
    interp, assumes = _assumptions(tmp_path, f"param X: ulong\nassume a: {formula}\n", {"X": 0x1000})
    assert interp.ev(assumes["a"], Frame({}, None)) is holds
    assert interp.sampled == 0 and interp.undecided == []


def test_what_cells_cannot_follow_is_named(tmp_path: Path) -> None:
    # p * 3 is not followed: the quantifier is evaluated at the counterexample's numbers
    # and named, never called exact
    interp, assumes = _assumptions(tmp_path, "param X: ulong\nassume a: forall p: ulong. p * 3 != X + 1\n",
                                   {"X": 0x1000})
    assert interp.ev(assumes["a"], Frame({}, None)) is True
    assert interp.sampled == 1
    [note] = interp.undecided
    assert note.startswith("`forall p` at ") and "`*` on it" in note


def test_library_style_refutation_replays_exactly(tmp_path: Path) -> None:
    # an assumption over every pfn of the chunk, as buddy_folio has: the replay decides
    # it over all 2^64 values, so the status is a plain "confirmed"
    spec = tmp_path / "t.kho"
    spec.write_text("""
param C: chunk
assume in_node: forall p: ulong. p >= C.pfn and p < C.pfn + (1UL << C.order) ->
  pfn_in_ram(p) and pfn_node(p) == pfn_node(C.pfn)
check order_small: C.order <= 3
  for x86_64
  assuming in_node
  expect refuted
""")
    [r] = check_file(spec, Options(timeout_s=30))
    assert r.replay == "confirmed"


def test_counterexample_chunk_is_small(tmp_path: Path) -> None:
    # any order >= 5 refutes the claim: the chunk shown lies below 1 TiB
    spec = tmp_path / "t.kho"
    spec.write_text("""
param C: chunk
check big_or_zero: C.order < 5 or C.pfn == 0
  for x86_64
  expect refuted
""")
    [r] = check_file(spec, Options(timeout_s=30))
    assert r.counterexample is not None and r.replay == "confirmed"
    [chunk] = r.counterexample["chunks"]
    assert 5 <= chunk["order"] <= 40 - 12
    assert int(chunk["pfn"], 16) + (1 << chunk["order"]) <= 1 << (40 - 12)
    assert r.counterexample["layout"]["nodes"] == []  # the claim reads no layout


def test_failed_requirement_names_the_struct_page_it_read(tmp_path: Path) -> None:
    spec = tmp_path / "t.kho"
    spec.write_text("""
state { seen: [ulong] bool }
param C: chunk
step touch {
  let last: ulong = C.pfn + 3
  require read_initialised: seen[last]
}
check touch_reads_initialised: requirement read_initialised
  for x86_64
  expect refuted
""")
    [r] = check_file(spec, Options(timeout_s=30))
    assert r.counterexample is not None and r.replay == "confirmed"
    [read] = r.counterexample["violated"]["reads"]
    assert read["read"] == "seen[last]"
    assert int(read["pfn"], 16) == int(r.counterexample["chunks"][0]["pfn"], 16) + 3


def test_undecided_query_tries_real_machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # every query on a symbolic or generated layout comes back undecided: the memory map
    # of a real machine (examples/layouts, two nodes) still refutes the claim
    from khospec.engine import solve
    from khospec.results import Verdict

    real_attempt = solve.CheckRun.attempt

    def undecided(self: solve.CheckRun, profile: Any, timeout_ms: int | None = None) -> solve.Outcome:
        if self.low.layout.kind != "concrete":
            return solve.Outcome(Verdict.UNKNOWN, 0.0, reason="time limit reached")
        return real_attempt(self, profile, timeout_ms)

    monkeypatch.setattr(solve.CheckRun, "attempt", undecided)
    spec = tmp_path / "t.kho"
    spec.write_text("""
check all_node_0: forall p: ulong. pfn_in_ram(p) -> pfn_node(p) == 0
  for x86_64
  expect proved
""")
    [r] = check_file(spec, Options(timeout_s=30, jobs=1, cache=False))
    assert r.verdict is Verdict.REFUTED and r.replay == "confirmed"
    assert "memory map of a real machine" in r.notes[0]
