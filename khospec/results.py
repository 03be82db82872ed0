"""Verdicts and result records: what a check returns, independent of the solver.

``Result`` is one check under one strategy and one profile; ``Report`` is what a run of
many checks found (results, diagnostics, internal errors), which the reports render.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from khospec.counterexample import Counterexample
from khospec.diagnostics import Diagnostic, Severity, SourceCache

# the closed enum of verdicts, defined with the typed program (a check's `expect` is one)
from khospec.ir import Verdict as Verdict


@dataclass(frozen=True)
class Result:
    """One check under one strategy and one profile: the verdict and what explains it."""

    file: str
    line: int  # the check's line; 0 for a machine's answer, which has none
    check: str
    strategy: str | None  # None: the base definitions (`base` in reports)
    profile: str | None
    verdict: Verdict
    expected: str | None  # the check's `expect`; None: it must be proved
    time_s: float
    counterexample: Counterexample | None = None  # presented (counterexample.py)
    # proved: what the proof needed; vacuous: the contradiction (to_json's names)
    assumptions_used: tuple[str, ...] | None = None
    reason: str | None = None  # why a verdict is not a decision, or what limited it
    depth: int | None = None  # holds_to_depth: the bound it holds to
    notes: tuple[str, ...] = field(default=())
    # the interpreter's status for the counterexample: "confirmed[, ...]",
    # "unchecked: ...", "failed: ..."; None where none ran (--no-replay, a machine's)
    replay: str | None = None
    layout: str | None = None  # the layout it ran on: the check's `on`, --layout's, a machine's
    cached: bool = False  # taken from the verdict cache (khospec/cache.py), not solved now

    @property
    def met(self) -> bool:
        """A check without `expect` must be proved."""
        want = self.expected or "proved"
        return self.verdict.value == want

    @property
    def name(self) -> str:
        """file::check[strategy, profile]: names this result across runs (cache.job_name)."""
        from khospec.cache import job_name

        return job_name(self.file, self.check, self.strategy, self.profile)

    @property
    def test_id(self) -> str:
        """A test-style id: ``[check-strategy-profile]`` with the parts there are, or the
        check alone (the pytest plugin names its items ``CHECK[STRATEGY-PROFILE]`` itself)."""
        parts = [self.check]
        if self.strategy:
            parts.append(self.strategy)
        if self.profile:
            parts.append(self.profile)
        return "[" + "-".join(parts) + "]" if len(parts) > 1 else self.check

    def to_json(self) -> dict[str, Any]:
        """One result of the JSON contract: the keys every result has, then those that
        apply to its verdict."""
        out: dict[str, Any] = {
            "file": self.file,
            "line": self.line,
            "check": self.check,
            "strategy": self.strategy,
            "profile": self.profile,
            "verdict": self.verdict.value,
            "expected": self.expected,
            "met": self.met,
            "time_s": round(self.time_s, 4),
            "cached": self.cached,
        }
        if self.layout is not None:
            out["layout"] = self.layout
        # always present for proved: [] says the proof needed no assumption
        if self.verdict is Verdict.PROVED:
            out["assumptions_used"] = list(self.assumptions_used or ())
        # replay goes with the counterexample: null where it was not replayed
        if self.counterexample is not None:
            out["counterexample"] = self.counterexample
            out["replay"] = self.replay
        if self.assumptions_used is not None and self.verdict is Verdict.VACUOUS:
            out["contradiction"] = list(self.assumptions_used)
        if self.reason is not None:
            out["reason"] = self.reason
        if self.depth is not None:
            out["depth"] = self.depth
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass
class Report:
    """What a run of checks found (``api.check_paths``): results in plan order,
    diagnostics, internal errors. Mutable: a run over several layouts adds to it."""

    results: list[Result] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: SourceCache = field(default_factory=SourceCache)
    internal_errors: list[str] = field(default_factory=list)
    time_s: float = 0.0

    @property
    def has_input_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def all_met(self) -> bool:
        return all(r.met for r in self.results)

    def exit_code(self) -> int:
        """The command line's: 3 a bug in khospec, else 2 bad input, else 1 a result not
        as expected, else 0."""
        # in that order: a bug puts every result in doubt, and bad input means some
        # checks never ran, so neither may pass for a mere unmet expectation
        if self.internal_errors:
            return 3
        if self.has_input_errors:
            return 2
        return 0 if self.all_met else 1


class InternalError(Exception):
    """A bug in khospec itself (exit code 3), e.g. a counterexample that does not replay."""
