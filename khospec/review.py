"""Reports for review: SARIF 2.1.0 for code-scanning tools, plain text for a list reply.

``sarif`` turns a Report into one SARIF log: a result for every refutation and every
unmet expectation, at the check's file and line, its counterexample as a code flow (one
thread-flow location per trace step; for a machine answer one per witness: the pages of
the two nodes and the chunk, section or pfn, each at its line of the boot log). A
refutation the check expected is a result of kind ``informational`` (level ``none``), so
code scanning raises alerts only for what did not go as expected.

``mail`` is what a reviewer pastes into a reply on the list: plain text, no colour, no
line longer than 72 columns, the verdicts grouped per check with the profiles collapsed,
and short counterexamples.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from khospec import __version__, ir
from khospec.api import load
from khospec.counterexample import MachineCounterexample, SpecCounterexample, is_machine
from khospec.diagnostics import Severity, SourceCache
from khospec.engine.version import z3_version
from khospec.explain import reads_text, short_lines
from khospec.interp import Interp, json_value
from khospec.machine.questions import CLAIMS, witness_lines, witness_text
from khospec.report import summary
from khospec.results import Report, Result, Verdict

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
MAIL_WIDTH = 72  # the column plain-text mail to a kernel list is wrapped at


# ---------------------------------------------------------------- SARIF


def _uri(path: str) -> str:
    # a relative reference stays relative (code scanning resolves it against the checkout);
    # a Windows path's backslashes become slashes, RFC 3986's reserved characters stay
    return quote(path.replace("\\", "/"), safe="/:@-._~!$&'()*+,;=")


def _physical(file: str, line: int | None = None, col: int | None = None) -> dict[str, Any]:
    """A SARIF physicalLocation. SARIF counts lines and columns from 1: a region only
    where they are known (line 0 is a whole file, a machine answer's place)."""
    loc: dict[str, Any] = {"artifactLocation": {"uri": _uri(file)}}
    if line is not None and line >= 1:
        region: dict[str, Any] = {"startLine": line}
        if col is not None and col >= 1:
            region["startColumn"] = col
        loc["region"] = region
    return loc


def _parse_at(at: str) -> tuple[str, int | None, int | None] | None:
    """``file:line:col`` (or ``file:line``) of a spec location."""
    # from the right: a file name may hold a colon
    parts = at.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    parts = at.rsplit(":", 1)
    if len(parts) == 2 and parts[1].isdigit():
        return parts[0], int(parts[1]), None
    return None


def _context(r: Result) -> str:
    bits = []
    if r.strategy:
        bits.append(f"strategy {r.strategy}")
    if r.profile:
        bits.append(f"profile {r.profile}")
    return f" [{', '.join(bits)}]" if bits else ""


def _verdict_text(r: Result) -> str:
    """The verdict and how it compares with the expectation (none: proved)."""
    v = r.verdict.value
    if r.verdict is Verdict.HOLDS_TO_DEPTH and r.depth is not None:
        v = f"holds to depth {r.depth}"
    want = r.expected or "proved"
    return f"{v}, as expected" if r.met else f"{v}, expected {want}"


def _message(r: Result) -> str:
    text = f"{r.check}{_context(r)}: {_verdict_text(r)}."
    cx = r.counterexample
    if cx is not None and is_machine(cx):
        text += f" Witness: {witness_text(r)}."
    elif cx is not None:
        violated = cx["violated"]
        what = violated.get("text") or violated.get("name")
        if what:
            text += f" Violated: {what}."
        if violated.get("reads"):
            text += f" It reads {reads_text(violated['reads'])}."
    if r.reason:
        text += f" Reason: {r.reason}."
    return text


def _machine_flow(r: Result, cx: MachineCounterexample) -> list[dict[str, Any]]:
    """The witness of a machine answer as thread-flow locations: the two pages (each at
    its line of the boot log), then the section or chunk holding both; for the zone
    search, the pfn and the node whose span stops the search."""
    w = cx["witness"]
    steps: list[tuple[str, int | None]] = []
    if "pages" in w:
        for page in w["pages"]:
            steps.append(
                (
                    f"pfn {page['pfn']} ({page['phys']}) belongs to node {page['nid']}",
                    page.get("log_line"),
                )
            )
    if "section" in w:
        s = w["section"]
        steps.append((f"section {s['number']} [{s['start']}, {s['end']}) holds both pages", None))
    elif "chunk" in w:
        c = w["chunk"]
        call = f"; {w['call']} makes it" if "call" in w else ""
        steps.append(
            (
                f"chunk pfn {c['pfn']} order {c['order']} ({c['size']} at {c['phys']}) holds both"
                f"{call}",
                None,
            )
        )
    else:
        spans = w["spans"]
        steps.append(
            (f"pfn {w['pfn']} ({w['phys']}) is owned by node {w['owner']}", w.get("log_line"))
        )
        f = spans["found"]
        steps.append(
            (
                f"node {f['nid']} spans [{f['start_pfn']}, {f['end_pfn']}) and has a lower id, "
                "so the search stops there",
                None,
            )
        )
    out = []
    for i, (text, line) in enumerate(steps, start=1):
        loc: dict[str, Any] = {"message": {"text": text}}
        if line:  # None or 0: not read from a line of the log
            loc["physicalLocation"] = _physical(r.file, line)
        out.append({"location": loc, "executionOrder": i})
    return out


def _spec_flow(r: Result, cx: SpecCounterexample) -> list[dict[str, Any]]:
    """One thread-flow location per trace step, the last one carrying the violation at
    its source line; a claim without a trace gets the violation alone."""
    trace = [str(s) for s in cx["trace"]]
    violated = cx["violated"]
    at = _parse_at(str(violated.get("at", "")))
    what = violated.get("text") or violated.get("name") or "the claim"
    out: list[dict[str, Any]] = []
    for i, step in enumerate(trace, start=1):
        loc: dict[str, Any] = {"message": {"text": f"step {i}: {step}"}}
        last = i == len(trace)
        if last and (violated.get("step") in (None, step)):
            loc["message"]["text"] += f"; violates {what}"
            if violated.get("reads"):
                loc["message"]["text"] += f", reading {reads_text(violated['reads'])}"
            if at:
                loc["physicalLocation"] = _physical(*at)
        out.append({"location": loc, "executionOrder": i})
    if not trace:
        loc = {"message": {"text": f"violates {what}"}}
        if at:
            loc["physicalLocation"] = _physical(*at)
        out.append({"location": loc, "executionOrder": 1})
    return out


def _sarif_result(r: Result, rule_index: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": r.check,
        "ruleIndex": rule_index,
        "kind": "fail" if not r.met else "informational",
        "level": "error" if not r.met else "none",
        "message": {"text": _message(r)},
        "locations": [{"physicalLocation": _physical(r.file, r.line)}],
        # what makes this the same result in the next run, so code scanning keeps one
        # alert for it: not the line, which moves with every edit above the check
        "partialFingerprints": {
            "khospecResult/v1": f"{r.file}|{r.check}|{r.strategy or ''}|{r.profile or ''}"
        },
        "properties": {
            "verdict": r.verdict.value,
            "expected": r.expected,
            "met": r.met,
            "strategy": r.strategy,
            "profile": r.profile,
            "time_s": round(r.time_s, 4),
        },
    }
    cx = r.counterexample
    if cx:
        flow = _machine_flow(r, cx) if "witness" in cx else _spec_flow(r, cx)
        out["codeFlows"] = [
            {"message": {"text": "counterexample"}, "threadFlows": [{"locations": flow}]}
        ]
        # the raw model serves the replay only: bulky, and nothing a reviewer reads
        out["properties"]["counterexample"] = {k: v for k, v in cx.items() if k != "model"}
    if r.reason:
        out["properties"]["reason"] = r.reason
    if r.notes:
        out["properties"]["notes"] = list(r.notes)
    return out


def _rule(check: str, results: list[Result]) -> dict[str, Any]:
    """The SARIF rule of a check (or machine question), described by its claim."""
    first = results[0]
    text = CLAIMS.get(check) or f"check `{check}` of {first.file}"
    return {
        "id": check,
        "name": check,
        "shortDescription": {"text": text},
        "properties": {"file": first.file, "line": first.line},
    }


def sarif(report: Report) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log (one run)."""
    by_check: dict[str, list[Result]] = {}
    for r in report.results:
        by_check.setdefault(r.check, []).append(r)
    # ruleIndex: a check's place in the driver's rules, built in this order below
    index = {name: i for i, name in enumerate(by_check)}
    # refutations and unmet expectations only: a check proved as expected is no finding
    results = [
        _sarif_result(r, index[r.check])
        for r in report.results
        if r.verdict is Verdict.REFUTED or not r.met
    ]
    notifications: list[dict[str, Any]] = []
    for d in report.diagnostics:
        n: dict[str, Any] = {
            "level": "error" if d.severity is Severity.ERROR else "warning",
            "message": {"text": d.message + (f" (hint: {d.hint})" if d.hint else "")},
            "descriptor": {"id": d.code},
        }
        # <prelude>, <builtin>, <log>: no file a code-scanning tool can open
        if d.span.file and not d.span.file.startswith("<"):
            n["locations"] = [{"physicalLocation": _physical(d.span.file, d.span.line, d.span.col)}]
        notifications.append(n)
    for e in report.internal_errors:
        notifications.append(
            {
                "level": "error",
                "message": {"text": f"internal error: {e}"},
                "descriptor": {"id": "internal"},
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "khospec",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_rule(name, rs) for name, rs in by_check.items()],
                    }
                },
                "invocations": [
                    {
                        # false only for a bug in khospec (exit 3): input errors are the
                        # spec's, reported as notifications of a run that worked
                        "executionSuccessful": not report.internal_errors,
                        "exitCode": report.exit_code(),
                        "toolExecutionNotifications": notifications,
                    }
                ],
                # a Span's columns count characters of a Python string, not UTF-16 units
                "columnKind": "unicodeCodePoints",
                "results": results,
                "properties": {"summary": summary(report), "z3_version": z3_version()},
            }
        ],
    }


# ---------------------------------------------------------------- mail


def _wrap(text: str, indent: str, hang: str | None = None, max_lines: int = 0) -> list[str]:
    """``text`` wrapped at MAIL_WIDTH, ``hang`` indenting the lines after the first;
    with ``max_lines``, cut to that many, the last one "..."."""
    lines = textwrap.wrap(
        text,
        width=MAIL_WIDTH,
        initial_indent=indent,
        subsequent_indent=hang if hang is not None else indent,
        break_long_words=False,  # a path or a hex number stays whole, even past the width
        break_on_hyphens=False,
    ) or [indent.rstrip()]
    if max_lines and len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], (hang if hang is not None else indent) + "..."]
    return lines


def _profiles_text(results: list[Result]) -> str:
    names = [r.profile for r in results if r.profile]
    return ", ".join(names)


def _groups(results: Iterable[Result]) -> list[list[Result]]:
    """Results of one check under one strategy, in report order."""
    groups: dict[tuple[str, int, str, str | None], list[Result]] = {}
    for r in results:
        groups.setdefault((r.file, r.line, r.check, r.strategy), []).append(r)
    return list(groups.values())


def _where(r: Result) -> str:
    return f"{r.file}:{r.line}" if r.line >= 1 else r.file


def _group_lines(group: list[Result]) -> list[str]:
    """One check under one strategy: ok or FAIL, the verdicts with the profiles that
    gave each, and why the unmet ones are so."""
    first = group[0]
    ok = all(r.met for r in group)
    head = f"{'ok' if ok else 'FAIL':<5} {first.check}" + (
        f" [{first.strategy}]" if first.strategy else ""
    )
    out = _wrap(head, "  ", "        ")
    # collapse profiles with the same verdict and expectation
    parts: list[str] = []
    seen: dict[tuple[str, str], list[Result]] = {}
    for r in group:
        v = (
            f"holds to depth {r.depth}"
            if r.verdict is Verdict.HOLDS_TO_DEPTH and r.depth
            else r.verdict.value
        )
        seen.setdefault((v, "" if r.met else f" (expected {r.expected or 'proved'})"), []).append(r)
    for (verdict, unmet), rs in seen.items():
        profs = _profiles_text(rs)
        if not profs:
            parts.append(verdict + unmet)
        # "on all N profiles" only where naming them would take longer
        elif len(rs) == len(group) and len(group) > 2:
            parts.append(f"{verdict} on all {len(group)} profiles{unmet}")
        else:
            parts.append(f"{verdict} on {profs}{unmet}")
    out += _wrap("; ".join(parts), "        ")
    # distinct reasons, two at most: profiles that fail alike usually say the same
    reasons = list(dict.fromkeys(r.reason for r in group if r.reason and not r.met))
    for reason in reasons[:2]:
        out += _wrap(f"reason: {reason}", "        ", "          ")
    return out


def _cx_lines(r: Result) -> list[str]:
    cx = r.counterexample
    if cx is not None and is_machine(cx):
        body = witness_lines(cx)
    else:
        try:
            body = short_lines(r)
        except (KeyError, TypeError):  # a counterexample from an older or foreign report
            body = []
    out: list[str] = []
    # a `key: value` line keeps its key padded to 10 columns (as short_lines pads it);
    # its wrapped lines hang under the value (4 of indent + 10)
    for line in body:
        key, sep, rest = line.partition(":")
        text = f"{key}:".ljust(10) + rest.strip() if sep and len(key) <= 9 and rest.startswith(" ") else line
        out += _wrap(text, "    ", " " * 14, max_lines=6)
    return out


def mail(report: Report) -> str:
    """The report as plain text for a mailing-list reply (lines of at most 72 columns)."""
    s = summary(report)
    counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in s["verdicts"].items() if n)
    lines: list[str] = []
    lines += _wrap(
        f"khospec {__version__} (z3 {z3_version()}): {s['checks']} results"
        + (f" ({counts})" if counts else "")
        + f"; {s['met']} as expected, {s['not_met']} not; "
        f"{s['time_s']:.1f} s.",
        "",
    )
    if report.diagnostics:
        lines += ["", "Input errors:"]
        for d in report.diagnostics:
            text = f"{d.span}: {d.severity.value}[{d.code}]: {d.message}" + (
                f" ({d.hint})" if d.hint else ""
            )
            lines += _wrap(text, "  ", "    ")
    for e in report.internal_errors:
        lines += ["", "Internal error (a bug in khospec):"]
        # the first line: a replay mismatch's views and the like are for the bug report
        lines += _wrap(e.splitlines()[0] if e else "", "  ", "    ")
    groups = _groups(report.results)
    failing = [g for g in groups if not all(r.met for r in g)]
    if failing:
        lines += ["", "Not as expected:"]
        last_file = None
        for g in failing:
            if g[0].file != last_file:
                lines += _wrap(g[0].file, "  ")
                last_file = g[0].file
            lines += _group_lines(g)
    if groups:
        by_file: dict[str, list[list[Result]]] = {}
        for g in groups:
            by_file.setdefault(g[0].file, []).append(g)
        lines += ["", "Verdicts:"]
        for file, gs in by_file.items():
            lines += _wrap(file, "  ")
            for g in gs:
                lines += _group_lines(g)
    # one counterexample per check and strategy, the unexpected ones first
    shown: list[Result] = []
    keys: set[tuple[str, str, str | None]] = set()
    # a stable sort on met: the unmet first, each kind in report order
    for r in sorted((r for r in report.results if r.counterexample), key=lambda r: r.met):
        key = (r.file, r.check, r.strategy)
        if key not in keys:
            keys.add(key)
            shown.append(r)
    if shown:
        lines += ["", "Counterexamples:"]
        limit = 12  # a reply stays readable; `khospec explain` shows any of the rest
        for r in shown[:limit]:
            head = f"{r.check}{_context(r)}: {_verdict_text(r)} ({_where(r)})"
            lines += _wrap(head, "  ", "    ")
            lines += _cx_lines(r)
        if len(shown) > limit:
            lines += _wrap(
                f"... and {len(shown) - limit} more; "
                "`khospec explain FILE::CHECK` shows one in full.",
                "  ",
            )
    # no trailing blanks, which a padded key with nothing after it would leave
    text = "\n".join(line.rstrip() for line in lines)
    return text + "\n"


__all__ = ["MAIL_WIDTH", "SARIF_SCHEMA", "mail", "sarif"]


# ---------------------------------------------------------------- ITF traces


def _itf_value(v: object) -> object:
    """ITF (the Informal Trace Format of Apalache and Quint): big integers as
    {"#bigint": "..."}, records as objects, maps as {"#map": [[k, v], ...]}."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        # past 2^53 a JSON number loses digits in a reader that parses doubles (JavaScript)
        return v if -(2**53) < v < 2**53 else {"#bigint": str(v)}
    if isinstance(v, dict):
        return {k: _itf_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_itf_value(x) for x in v]
    return v


def itf_trace(report_result: Result, program: ir.Program) -> dict[str, Any]:
    """The counterexample's trace as ITF: one state per step, with the machine's scalar
    state and the struct pages at the pfns the counterexample is about."""
    cx = report_result.counterexample
    assert cx is not None and "model" in cx, "only a spec check's counterexample has a trace to run"
    model = cx["model"]
    interp = Interp(program, report_result.strategy, model)
    # the struct pages worth showing: each chunk's first and last pfn, and the pfns
    # the solver picked
    pfns: list[int] = []
    for c in cx["chunks"]:
        pfn = int(c["pfn"], 16)
        pfns.append(pfn)
        if c["order"] < 64:
            pfns.append(pfn + (1 << c["order"]) - 1)
    for w in model["witnesses"]:
        if w["type"] in ("ulong", "u64") and isinstance(w["value"], int):
            pfns.append(w["value"])
    pfns = sorted(set(pfns))[:32]  # every map of every state lists these cells
    states: list[dict[str, Any]] = []
    names: list[str] = []
    if model["trace"]:
        state = interp.initial_state()

        def snapshot(i: int, step: str | None) -> dict[str, Any]:
            out: dict[str, Any] = {"#meta": {"index": i, **({"step": step} if step else {})}}
            for k, v in state.scalars.items():
                out[k] = _itf_value(json_value(v))
            for k, m in state.maps.items():
                out[k] = {"#map": [[_itf_value(p), _itf_value(json_value(m.read(p)))] for p in pfns]}
            return out

        states.append(snapshot(0, None))
        for i, step in enumerate(model["trace"], 1):
            state, _, _ = interp.step(step, state)
            states.append(snapshot(i, step))
        names = [k for k in states[0] if k != "#meta"]
    else:
        # a claim without a trace: one state, the solver's witnesses
        values = {w["name"]: _itf_value(w["value"]) for w in model["witnesses"]}
        states.append({"#meta": {"index": 0}, **values})
        names = list(values)
    return {
        "#meta": {
            "format": "ITF",
            "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
            "source": report_result.file,
            "description": f"khospec {__version__}: counterexample of {report_result.check} "
                           f"[{report_result.strategy or 'base'}, {report_result.profile}]",
        },
        "vars": names,
        "states": states,
    }


def write_itf(report: Report, directory: str, import_roots: tuple[str, ...] = ()) -> list[str]:
    """One ITF file per refutation of a spec check, named FILE.CHECK.STRATEGY.PROFILE.itf.json;
    ``import_roots`` as the check had them (a spec that imports from there loads again)."""
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    programs: dict[str, ir.Program | None] = {}
    for r in report.results:
        # a machine's answer has no model and no trace
        if r.counterexample is None or "model" not in r.counterexample:
            continue
        # each file loaded once, for all its results; one that does not load gets none
        if r.file not in programs:
            programs[r.file], _ = load(Path(r.file), r.file, SourceCache(), import_roots)
        program = programs[r.file]
        if program is None:
            continue
        name = ".".join([Path(r.file).stem, r.check, r.strategy or "base", r.profile or "any"]) + ".itf.json"
        path = out_dir / name
        path.write_text(json.dumps(itf_trace(r, program), indent=1) + "\n", encoding="utf-8")
        written.append(str(path))
    return written
