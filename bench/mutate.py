"""Mutation check of the spec library: which verdicts hang on which assumption or step.

For every named assumption and axiom, and every step of the boot machine, the library
is checked again with that piece weakened:
- an assumption or axiom is dropped (its formula becomes `true`);
- a step keeps its guard and its phase change but does nothing else.
Each check that uses the piece (an axiom: every check; an assumption: the checks that
name it; a step: the checks that run the machine) is re-decided on one profile, and
every verdict that changes is reported. Dropping an assumption cannot undo a
counterexample, nor a proof whose unsat core does not name it: those checks are counted
as re-run without solving them again. A piece whose removal changes no verdict is
flagged as dead: either it is redundant, or no check exercises it.

    python bench/mutate.py [SPEC_DIR] [--profile x86_64] [--timeout 60] [--out FILE]
                           [--piece NAME ...]

It prints a Markdown report (the one in MUTATION.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from khospec import ir
from khospec.api import Job, Options, find_spec_files, load, run_job
from khospec.diagnostics import SourceCache
from khospec.results import Result, Verdict
from khospec.types import BOOL

Key = tuple[str, str | None]


def _verdicts(
    program: ir.Program, path: Path, checks: list[ir.CheckDef], profile: str, timeout: float,
    only: set[Key] | None = None,
) -> dict[Key, Result]:
    """The result per check and strategy, on one profile. Through the API, so that every
    counterexample, the mutants' included, is replayed: one that does not replay stops
    the script with an internal error."""
    out: dict[Key, Result] = {}
    for c in checks:
        prof = profile if profile in c.profiles else c.profiles[0]
        for st in c.strategies:
            if only is not None and (c.name, st) not in only:
                continue
            job = Job(path, str(path), c.name, c.span.line, st, (prof,))
            [out[(c.name, st)]] = run_job(program, job, Options(timeout_s=timeout))
    return out


def _shown(r: Result) -> str:
    return f"unknown ({r.reason})" if r.verdict is Verdict.UNKNOWN else r.verdict.value


def _may_change(base: Result, dropped: str) -> bool:
    """Whether dropping an assumption can change a verdict. A counterexample stays one
    with fewer constraints, and a proof whose unsat core lacks the assumption stands;
    only proofs that used it, and verdicts that were not decided, can move."""
    if base.verdict is Verdict.REFUTED:
        return False
    return base.verdict is not Verdict.PROVED or dropped in (base.assumptions_used or ())


def _drop_assumption(program: ir.Program, name: str) -> ir.Program:
    true = ir.Const(True, BOOL)
    p = dataclasses.replace(program)
    p.axioms = [dataclasses.replace(a, formula=true) if a.name == name else a for a in program.axioms]
    p.assumes = {k: dataclasses.replace(a, formula=true) if k == name else a for k, a in program.assumes.items()}
    return p


def _hollow_step(program: ir.Program, name: str) -> ir.Program:
    p = dataclasses.replace(program)
    steps = dict(program.steps)
    st = steps[name]
    keep = tuple(s for s in st.body if isinstance(s, ir.SStateAssign) and s.name == "phase")
    steps[name] = dataclasses.replace(st, body=keep)
    p.steps = steps
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", nargs="?", default="spec")
    ap.add_argument("--profile", default="x86_64")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--piece", action="append", default=None,
                    help="only this assumption, axiom or step (repeatable)")
    args = ap.parse_args(argv)
    files, _ = find_spec_files([args.spec])
    lines = ["| piece | kind | checks solved again (of those using it) | verdicts changed | changes |",
             "|---|---|---|---|---|"]
    used: dict[str, int] = {}
    t0 = time.perf_counter()
    for path, display in files:
        program, _diags = load(path, display, SourceCache())
        if program is None or not program.checks:
            continue
        base = _verdicts(program, path, program.checks, args.profile, args.timeout)
        pieces: list[tuple[str, str, ir.Program, list[ir.CheckDef], set[Key] | None]] = []
        for a in program.axioms:
            pieces.append((a.name, "axiom", _drop_assumption(program, a.name), program.checks,
                           {k for k, b in base.items() if _may_change(b, a.name)}))
        for name in sorted({n for c in program.checks for n in c.assuming}):
            pieces.append((name, "assume", _drop_assumption(program, name),
                           [c for c in program.checks if name in c.assuming],
                           {k for k, b in base.items() if _may_change(b, name)}))
        trace_checks = [c for c in program.checks if c.is_trace]
        if trace_checks:
            for name in program.steps:
                pieces.append((name, "step", _hollow_step(program, name), trace_checks, None))
        if args.piece:
            pieces = [p for p in pieces if p[0] in args.piece]
        for name, kind, mutant, checks, only in pieces:
            after = _verdicts(mutant, path, checks, args.profile, args.timeout, only)
            changes = [f"{c}[{s or 'base'}] {_shown(base[(c, s)])} -> {_shown(r)}"
                       for (c, s), r in after.items() if r.verdict is not base[(c, s)].verdict]
            used[f"{kind} {name}"] = used.get(f"{kind} {name}", 0) + len(changes)
            lines.append(
                f"| `{name}` ({display}) | {kind} | {len(after)} of {sum(len(c.strategies) for c in checks)} "
                f"| {len(changes)} | {'; '.join(changes) or '-'} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    dead = sorted(k for k, n in used.items() if n == 0)
    report = [
        f"# Mutation check of the spec library ({args.profile}, {time.perf_counter() - t0:.0f} s)",
        "",
        "Each assumption or axiom dropped, each boot step hollowed out (guard and phase kept),",
        "and the checks that use it decided again. A piece whose removal changes nothing is dead.",
        "",
        *lines,
        "",
        "Dead (no verdict depends on it): " + (", ".join(dead) if dead else "none"),
        "",
    ]
    text = "\n".join(report)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
