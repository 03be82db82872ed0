"""The Python API: load spec files, plan their checks, run them, collect results.

The command line (cli.py) and the pytest plugin (pytest_plugin.py) are thin layers over
this module. Nothing here prints; z3 is imported only when a check actually runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from khospec import ir
from khospec.diagnostics import Diagnostic, InputError, Severity, SourceCache, Span
from khospec.resolve import check_program
from khospec.results import InternalError, Result, Verdict


@dataclass(frozen=True)
class Options:
    timeout_s: float = 60.0  # per check, strategy and profile
    strategies: frozenset[str] | None = None  # run only these (None: all a check names)
    profiles: frozenset[str] | None = None
    checks: frozenset[str] | None = None
    layout: ir.LayoutDef | None = None  # a machine's layout for every strategy check
    jobs: int = 1  # worker processes; 1 runs in this process
    replay: bool = True  # replay every counterexample in the concrete interpreter
    cross_check: bool = False  # re-solve every query with a second solver
    unroll: int = 3


@dataclass(frozen=True)
class Job:
    """One check under one strategy, for its profiles: the unit of work."""

    path: Path
    file: str
    check: str
    line: int
    strategy: str | None
    profiles: tuple[str, ...]
    index: int = 0


@dataclass
class Report:
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
        if self.internal_errors:
            return 3
        if self.has_input_errors:
            return 2
        return 0 if self.all_met else 1


def find_spec_files(paths: Iterable[str]) -> tuple[list[tuple[Path, str]], list[Diagnostic]]:
    """Files and folders (searched recursively for *.kho) -> (path, display name)."""
    out: list[tuple[Path, str]] = []
    diags: list[Diagnostic] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(p.rglob("*.kho"))
            if not found:
                diags.append(Diagnostic("KHO202", Span.point(raw), f"no .kho files in {raw}",
                                        "spec files end in .kho"))
            for f in found:
                if f.resolve() not in seen:
                    seen.add(f.resolve())
                    out.append((f, str(f)))
        elif p.exists():
            if p.resolve() not in seen:
                seen.add(p.resolve())
                out.append((p, raw))
        else:
            diags.append(Diagnostic("KHO201", Span.point(raw), f"no such file or folder: {raw}"))
    return out, diags


def load(path: Path, display: str, sources: SourceCache) -> tuple[ir.Program | None, list[Diagnostic]]:
    return check_program(path, sources, display)


def plan(program: ir.Program, path: Path, display: str, options: Options) -> list[Job]:
    jobs: list[Job] = []
    for check in program.checks:
        if options.checks is not None and check.name not in options.checks:
            continue
        profiles = tuple(p for p in check.profiles
                         if options.profiles is None or p in options.profiles)
        if not profiles:
            continue
        for st in check.strategies:
            if options.strategies is not None and (st or "base") not in options.strategies:
                continue
            jobs.append(Job(path, display, check.name, check.span.line, st, profiles))
    return jobs


def _layout_for(program: ir.Program, check: ir.CheckDef, options: Options) -> tuple[ir.LayoutDef | None, str | None]:
    if check.layout is not None:
        return program.layouts[check.layout], check.layout
    # --layout applies to the checks that run the machine or ask about layouts, not to
    # pure arithmetic claims
    if options.layout is not None and check.is_trace:
        return options.layout, options.layout.name
    return None, None


def run_job(program: ir.Program, job: Job, options: Options) -> list[Result]:
    """Decide one job in this process. Raises InternalError on a khospec bug."""
    from khospec.engine import solve  # z3 is imported here, not before
    from khospec.engine.crosscheck import CrossCheckError
    from khospec.engine.lower import LowerError

    check = next(c for c in program.checks if c.name == job.check)
    layout, layout_name = _layout_for(program, check, options)
    profiles = [program.profiles[p] for p in job.profiles]
    t0 = time.perf_counter()
    try:
        outcomes = solve.run(program, check, job.strategy, list(profiles),
                             timeout_ms=int(options.timeout_s * 1000), unroll=options.unroll,
                             layout=layout, cross_check=options.cross_check)
    except LowerError as exc:
        raise InputError([exc.diag], SourceCache()) from exc
    except CrossCheckError as exc:
        raise InternalError(f"{job.file}:{job.line}: `{job.check}` [{job.strategy or 'base'}]: "
                            f"second solver: {exc}") from exc
    results: list[Result] = []
    for prof, o in outcomes:
        r = Result(
            file=job.file, line=job.line, check=job.check, strategy=job.strategy,
            profile=prof.name if prof is not None else None, verdict=o.verdict,
            expected=check.expect, time_s=o.time_s, counterexample=o.counterexample,
            assumptions_used=o.assumptions_used, reason=o.reason, depth=o.depth,
            notes=tuple(o.notes), layout=layout_name,
        )
        if r.counterexample is not None:
            r = _present(program, check, r)
            if options.replay:
                r = _replay(program, check, r)
        results.append(r)
    if not outcomes:
        results.append(Result(job.file, job.line, job.check, job.strategy, None, Verdict.UNKNOWN,
                              check.expect, time.perf_counter() - t0, reason="no profile to run"))
    return results


def _present(program: ir.Program, check: ir.CheckDef, r: Result) -> Result:
    from khospec.explain import present

    assert r.counterexample is not None
    return replace(r, counterexample=present(program, check, r))


def _replay(program: ir.Program, check: ir.CheckDef, r: Result) -> Result:
    from khospec.interp import Incomplete, ReplayMismatch, replay

    assert r.counterexample is not None
    try:
        status = replay(program, check, r)
    except Incomplete as exc:
        return replace(r, verdict=Verdict.UNKNOWN, reason=str(exc), replay="failed: " + str(exc))
    except ReplayMismatch as exc:
        raise InternalError(
            f"{r.file}:{r.line}: counterexample of `{r.check}` [{r.strategy}, {r.profile}] "
            f"does not replay: {exc}\nsolver's view: {exc.solver_view}\ninterpreter's view: {exc.interp_view}"
        ) from exc
    return replace(r, replay=status)


def check_paths(paths: Iterable[str], options: Options | None = None,
                on_result: Callable[[Result], None] | None = None,
                on_plan: Callable[[int], None] | None = None) -> Report:
    """Load every spec file under ``paths`` and run its checks."""
    options = options or Options()
    report = Report()
    t0 = time.perf_counter()
    files, diags = find_spec_files(paths)
    report.diagnostics.extend(diags)
    programs: dict[str, ir.Program] = {}
    jobs: list[Job] = []
    for path, display in files:
        program, pdiags = load(path, display, report.sources)
        report.diagnostics.extend(pdiags)
        if program is None:
            continue
        programs[display] = program
        jobs.extend(plan(program, path, display, options))
    jobs = [replace(j, index=i) for i, j in enumerate(jobs)]
    if on_plan is not None:
        on_plan(sum(len(j.profiles) for j in jobs))
    if options.jobs > 1 and len(jobs) > 1:
        from khospec.runner import run_parallel

        results, internal, input_diags = run_parallel(jobs, options, on_result)
        report.results.extend(results)
        report.internal_errors.extend(internal)
        report.diagnostics.extend(input_diags)
    else:
        for job in jobs:
            try:
                rs = run_job(programs[job.file], job, options)
            except InputError as exc:
                report.diagnostics.extend(exc.diagnostics)
                continue
            except InternalError as exc:
                report.internal_errors.append(str(exc))
                continue
            for r in rs:
                report.results.append(r)
                if on_result is not None:
                    on_result(r)
    report.time_s = time.perf_counter() - t0
    return report


def check_file(path: str | Path, options: Options | None = None) -> list[Result]:
    """The results of every check in one spec file; raises InputError on bad input."""
    report = check_paths([str(path)], options)
    if report.has_input_errors:
        raise InputError([d for d in report.diagnostics if d.is_error], report.sources)
    if report.internal_errors:
        raise InternalError("\n".join(report.internal_errors))
    return report.results
