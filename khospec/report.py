"""Reports: the verdict table, the JSON contract, diagnostics (text only, no printing)."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from khospec import __version__
from khospec.diagnostics import render
from khospec.engine.version import z3_version
from khospec.explain import short_lines
from khospec.results import Report, Result, Verdict

# the table's verdict colours: the two undecided verdicts share yellow
_STYLE = {
    Verdict.PROVED: "green",
    Verdict.REFUTED: "red",
    Verdict.HOLDS_TO_DEPTH: "yellow",
    Verdict.VACUOUS: "magenta",
    Verdict.UNKNOWN: "yellow",
}


def summary(report: Report) -> dict[str, Any]:
    """The ``summary`` object of the JSON contract, which the table's last line, the
    mail and SARIF's run properties repeat."""
    counts = Counter(r.verdict.value for r in report.results)
    return {
        "checks": len(report.results),
        "met": sum(1 for r in report.results if r.met),
        "not_met": sum(1 for r in report.results if not r.met),
        # every verdict a key, zeros included: a reader need not know which can occur
        "verdicts": {v.value: counts.get(v.value, 0) for v in Verdict},
        "input_errors": sum(1 for d in report.diagnostics if d.is_error),
        "internal_errors": len(report.internal_errors),
        "solved": sum(1 for r in report.results if not r.cached),
        "cached": sum(1 for r in report.results if r.cached),
        "time_s": round(report.time_s, 3),
    }


def to_json(report: Report) -> dict[str, Any]:
    """The report as ``--format json`` prints it: ``diagnostics`` and
    ``internal_errors`` only when there are some."""
    out: dict[str, Any] = {
        "tool": "khospec",
        "version": __version__,
        # a verdict within a time limit may change with the solver: the report names it
        "z3_version": z3_version(),
        "results": [r.to_json() for r in report.results],
        "summary": summary(report),
    }
    if report.diagnostics:
        out["diagnostics"] = [
            {
                "code": d.code,
                "severity": d.severity.value,
                "file": d.span.file,
                "line": d.span.line,
                "column": d.span.col,
                "message": d.message,
                **({"hint": d.hint} if d.hint else {}),
            }
            for d in report.diagnostics
        ]
    if report.internal_errors:
        out["internal_errors"] = report.internal_errors
    return out


def diagnostics_text(report: Report) -> str:
    """The diagnostics as the command line prints them on stderr, each with its
    source line and a caret."""
    return "\n".join(render(d, report.sources) for d in report.diagnostics)


def _expected_cell(r: Result) -> Text:
    want = r.expected or "proved"
    mark = "ok" if r.met else "MISMATCH"
    return Text(f"{want} ({mark})", style="" if r.met else "bold red")


def table_text(report: Report, color: bool, width: int = 140) -> str:
    """The text table: a row per result, then the counterexamples in a few lines each
    and why the unmet results are so, then the summary line."""
    buf = io.StringIO()
    # the caller decides colour (--color) and the width: rich would guess from the stream
    console = Console(file=buf, force_terminal=color, no_color=not color, width=width,
                      highlight=False, soft_wrap=False)
    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    # a fleet's layouts (check --layout DIR) each get their rows: say which is which
    by_layout = len({r.layout for r in report.results if r.layout}) > 1
    for col in ("check", "strategy", "profile", *(("layout",) if by_layout else ()), "verdict", "expected", "time"):
        t.add_column(col, no_wrap=True, justify="right" if col == "time" else "left")
    for r in report.results:
        verdict = r.verdict.value
        if r.verdict is Verdict.HOLDS_TO_DEPTH and r.depth is not None:
            verdict = f"holds_to_depth {r.depth}"
        t.add_row(
            f"{r.file}:{r.line} {r.check}",
            r.strategy or "-",
            r.profile or "-",
            *((r.layout or "-",) if by_layout else ()),
            Text(verdict, style=_STYLE[r.verdict]),
            _expected_cell(r),
            f"{r.time_s:.2f}s" + (" (cached)" if r.cached else ""),
        )
    console.print(t)
    # worth lines under the table: every counterexample, and the reasons and notes of
    # what did not go as expected
    details = [r for r in report.results if r.counterexample or (not r.met and (r.reason or r.notes))]
    shown: set[tuple[str, str, str | None, str | None]] = set()
    for r in details:
        key = (r.file, r.check, r.strategy, r.layout if by_layout else None)
        if key in shown and r.met:
            continue  # one counterexample per check and strategy is enough on screen
        shown.add(key)
        on = f", layout {r.layout}" if by_layout and r.layout else ""
        head = f"{r.verdict.value}: {r.check} [{r.strategy or 'base'}, {r.profile}{on}] ({r.file}:{r.line})"
        console.print(Text(head, style=_STYLE[r.verdict]))
        # markup off: spec text and ranges like [0x1000, 0x2000) are no rich markup
        for line in short_lines(r):
            console.print("  " + line, markup=False)
        if r.reason:
            console.print("  reason:   " + r.reason, markup=False)
        for n in r.notes:
            console.print("  note:     " + n, markup=False)
    s = summary(report)
    v = s["verdicts"]
    parts = ", ".join(f"{n} {k}" for k, n in v.items() if n)
    line = (f"{s['checks']} results: {parts}; {s['met']} as expected, {s['not_met']} not; "
            f"{s['solved']} solved, {s['cached']} from the cache; {s['time_s']:.1f}s")
    console.print(Text(line, style="bold" if s["not_met"] == 0 else "bold red"))
    for e in report.internal_errors:
        console.print(Text("internal error: " + e, style="bold red"))
    return buf.getvalue()
