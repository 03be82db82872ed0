"""The Python API: load spec files, plan their checks, run them, collect results.

The command line (cli.py) and the pytest plugin (pytest_plugin.py) are thin layers over
this module. Nothing here prints; z3 is imported only when a check actually runs.

The records it takes and returns live below it (``Options`` and ``Job`` in jobs.py,
``Report`` and ``Result`` in results.py) and deciding a job is the runner's (runner.py);
they are imported here under their public names, so that ``khospec.api`` stays the one
module a user of the API imports.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from khospec import ir
from khospec.diagnostics import Diagnostic, InputError, Severity, Span
from khospec.engine.version import mismatch_text, z3_mismatch
from khospec.executor import DaskExecutor
from khospec.jobs import Job, Options
from khospec.resolve import ParseCache, spec_tree
from khospec.results import InternalError, Report, Result
from khospec.runner import (
    cached_results,
    load,
    open_cache,
    recheck,
    run_job,
    run_on_executor,
    run_parallel,
)

__all__ = [
    "Job",
    "Options",
    "Report",
    "Result",
    "cache_warning",
    "cached_results",
    "check_file",
    "check_paths",
    "find_spec_files",
    "load",
    "numbered",
    "open_cache",
    "plan",
    "recheck",
    "record_times",
    "run_job",
    "schedule",
]


def find_spec_files(paths: Iterable[str]) -> tuple[list[tuple[Path, str]], list[Diagnostic]]:
    """Files and folders (searched recursively for *.kho) -> (path, display name)."""
    out: list[tuple[Path, str]] = []
    diags: list[Diagnostic] = []
    # by resolved path: a file given twice, or reached through a link, is checked once;
    # it is shown as the user named it
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(p.rglob("*.kho"))
            if not found:
                diags.append(Diagnostic("KHO006", Span.whole(raw), f"no .kho files in {raw}",
                                        "spec files end in .kho"))
            for f in found:
                if f.resolve() not in seen:
                    seen.add(f.resolve())
                    out.append((f, str(f)))
        elif p.exists() and p.suffix != ".kho":
            diags.append(Diagnostic("KHO006", Span.whole(raw), f"{raw} is not a spec file",
                                    "spec files end in .kho; give them, or a folder holding them"))
        elif p.exists():
            if p.resolve() not in seen:
                seen.add(p.resolve())
                out.append((p, raw))
        else:
            diags.append(Diagnostic("KHO201", Span.whole(raw), f"no such file or folder: {raw}"))
    return out, diags


def plan(program: ir.Program, path: Path, display: str, options: Options) -> list[Job]:
    """The jobs for the checks of ``program`` the options select, in the file's order."""
    jobs: list[Job] = []
    for check in program.checks:
        if options.checks is not None and check.name not in options.checks:
            continue
        profiles = tuple(p for p in check.profiles
                         if options.profiles is None or p in options.profiles)
        if not profiles:
            continue
        for st in check.strategies:
            # `--strategy base` selects the definitions outside any strategy
            if options.strategies is not None and (st or "base") not in options.strategies:
                continue
            if check.is_trace:
                # the long proofs: one job per profile, so that they run in parallel
                for prof in profiles:
                    jobs.append(Job(path, display, check.name, check.span.line, st, (prof,)))
            else:
                # claims over formulas: every profile in one job, where the engine proves
                # them for all profiles at once (the split's arithmetic is one query)
                jobs.append(Job(path, display, check.name, check.span.line, st, profiles))
    return jobs


def check_paths(paths: Iterable[str], options: Options | None = None,
                on_result: Callable[[Result], None] | None = None,
                on_plan: Callable[[list[tuple[str, float | None]]], None] | None = None,
                on_start: Callable[[str], None] | None = None) -> Report:
    """Load every spec file under ``paths`` and run its checks."""
    options = options or Options()
    report = Report()
    t0 = time.perf_counter()
    paths = list(paths)
    files, diags = find_spec_files(paths)
    report.diagnostics.extend(diags)
    # imports may reach anywhere in the folders given (or the projects holding them)
    trees = tuple(str(spec_tree(Path(p))) for p in paths if Path(p).exists())
    options = replace(options, import_roots=(*options.import_roots, *trees))
    programs: dict[str, ir.Program] = {}
    loaded: list[tuple[Path, str, ir.Program]] = []
    parsed: ParseCache = {}  # the files several roots import are parsed once
    for path, display in files:
        program, pdiags = load(path, display, report.sources, options.import_roots, parsed)
        report.diagnostics.extend(pdiags)
        if program is None:
            continue
        programs[display] = program
        loaded.append((path, display, program))
    options, name_diags = _check_names(options, [p for _, _, p in loaded])
    report.diagnostics.extend(name_diags)
    jobs: list[Job] = []
    # an input error anywhere, in a file or an option, and nothing is solved: the exit
    # code is 2 whatever the checks would find
    if not report.has_input_errors:
        for path, display, program in loaded:
            jobs.extend(plan(program, path, display, options))
        if not jobs and files:
            report.diagnostics.append(Diagnostic(
                "KHO004", Span.whole(", ".join(str(p) for p in paths)),
                "nothing to check: no check matches" + _selection(options),
                "a file with definitions only is checked through the files that import it"))
    if jobs:
        report.diagnostics.extend(_z3_release_warning())
        report.diagnostics.extend(cache_warning(options))
    jobs, known = numbered(jobs, options)
    # cache hits here, with the programs already loaded (workers only for solving), and
    # before the plan is shown: the estimate of the time left counts what is to be solved
    hits = {j.index: hit for j in jobs if (hit := _hit(programs[j.file], j, options)) is not None}
    # every result's name and its last run's time, for the progress display's estimate
    if on_plan is not None:
        on_plan([(name, 0.0 if j.index in hits else known.get(name)) for j in jobs for name in j.names])
    if (options.jobs > 1 and len(jobs) > 1) or options.scheduler:
        by_index: dict[int, list[Result]] = {}
        todo: list[Job] = []
        for job in jobs:
            hit = hits.get(job.index)
            if hit is None:
                todo.append(job)
                continue
            by_index[job.index] = hit
            for r in hit:
                if on_result is not None:
                    on_result(r)
        if todo and options.scheduler:
            executor = DaskExecutor(options.scheduler)
            try:
                results, internal, input_diags = run_on_executor(
                    schedule(todo, known, programs), options, executor, on_result, on_start)
            finally:
                executor.close()
        elif todo:
            results, internal, input_diags = run_parallel(schedule(todo, known, programs), options, on_result,
                                                          on_start)
        if todo:
            report.internal_errors.extend(internal)
            report.diagnostics.extend(input_diags)
            where: dict[tuple[str, str, str | None, str | None], int] = {
                (j.file, j.check, j.strategy, p): j.index for j in todo for p in j.profiles}
            # a result no planned job names (one with no profile to run) sorts first
            for r in results:  # in plan order, one job's results together
                by_index.setdefault(where.get((r.file, r.check, r.strategy, r.profile), -1), []).append(r)
        report.results.extend(r for i in sorted(by_index) for r in by_index[i])
    else:
        # in this process, one job after the other
        for job in jobs:
            if on_start is not None and job.index not in hits:
                for name in job.names:
                    on_start(name)
            try:
                rs = hits[job.index] if job.index in hits else run_job(programs[job.file], job, options)
            except InputError as exc:
                # a construct the lowering refuses (KHO5xx): bad input, exit 2
                report.diagnostics.extend(exc.diagnostics)
                continue
            except InternalError as exc:
                # a bug (exit 3) stops this job only: the others still run
                report.internal_errors.append(str(exc))
                continue
            for r in rs:
                report.results.append(r)
                if on_result is not None:
                    on_result(r)
    report.time_s = time.perf_counter() - t0
    record_times(report.results, options)
    return report


def _hit(program: ir.Program, job: Job, options: Options) -> list[Result] | None:
    """The job's results from the verdict cache, if it has them. An entry that cannot be
    presented is left to the job, which solves it again and reports what goes wrong
    there, as for any job, without ending the run."""
    try:
        return cached_results(program, job, options)
    except (InputError, InternalError):
        return None


def numbered(jobs: list[Job], options: Options) -> tuple[list[Job], dict[str, float]]:
    """The jobs with their places in the plan (``Job.index``: the results come back in
    this order, however the jobs are scheduled), and the previous run's times by job
    name from the verdict cache (none without one)."""
    cache = open_cache(options)
    return [replace(j, index=i) for i, j in enumerate(jobs)], cache.times() if cache is not None else {}


def schedule(jobs: list[Job], known: dict[str, float], programs: dict[str, ir.Program]) -> list[Job]:
    """Longest expected first (list scheduling): the previous run's times (``known``, by
    job name) where there are some, else trace checks before the others. Results still
    come back in plan order (``Job.index``)."""

    def expected(j: Job) -> float:
        ts = [known.get(name) for name in j.names]
        if ts and all(t is not None for t in ts):
            return sum(t for t in ts if t is not None)
        program = programs.get(j.file)
        check = next((c for c in program.checks if c.name == j.check), None) if program else None
        return 10.0 if check is not None and check.is_trace else 1.0

    return sorted(jobs, key=lambda j: (-expected(j), j.index))


def record_times(results: list[Result], options: Options) -> None:
    """Keep the solving times of the results solved now, for the next run's
    ``schedule`` and progress estimate; a cached result's time is no solving time."""
    cache = open_cache(options)
    if cache is not None:
        cache.record_times({r.name: r.time_s for r in results if not r.cached})


def cache_warning(options: Options) -> list[Diagnostic]:
    """KHO008 where the verdict cache cannot be written: the run goes on and its results
    stand, but it keeps none of them, and a silently empty cache looks like a slow
    khospec."""
    cache = open_cache(options)
    reason = cache.unwritable() if cache is not None else None
    if cache is None or reason is None:
        return []
    return [Diagnostic(
        "KHO008", Span.whole(str(cache.root)),
        f"the verdict cache cannot be written ({reason}): the results solved now are not kept, "
        "and the next run solves them again",
        "point KHOSPEC_CACHE_DIR at a folder you can write, or pass --no-cache",
        severity=Severity.WARNING)]


def _z3_release_warning() -> list[Diagnostic]:
    """KHO007 where the installed z3 is not the release khospec requires: the results
    stand, but they need not be the ones the spec library documents
    (engine/version.py)."""
    mismatch = z3_mismatch()
    if mismatch is None:
        return []
    installed, required = mismatch
    return [Diagnostic(
        "KHO007", Span.whole(f"z3-solver {installed}"), mismatch_text(installed, required),
        f"`pip install z3-solver=={required}` gives the results the spec library documents",
        severity=Severity.WARNING)]


def _selection(options: Options) -> str:
    """What the options select, for the "nothing to check" message."""
    parts = [f"{flag} {', '.join(sorted(names))}" for flag, names in
             (("--check", options.checks), ("--strategy", options.strategies), ("--profile", options.profiles))
             if names is not None]
    return " (" + "; ".join(parts) + ")" if parts else " (the files define no check)"


def _unknown(kind: str, flag: str, name: str, known: Iterable[str]) -> Diagnostic:
    """KHO003: ``name``, given to ``flag``, names nothing the files define; the hint
    offers near misses, else the names there are."""
    close = difflib.get_close_matches(name, sorted(set(known)), n=3, cutoff=0.6)
    hint = (f"did you mean {' or '.join(f'`{c}`' for c in close)}?" if close
            else f"the files define: {', '.join(sorted(set(known))) or 'none'}")
    return Diagnostic("KHO003", Span.whole(flag), f"no {kind} `{name}` in the files given", hint)


def _check_names(options: Options, programs: list[ir.Program]) -> tuple[Options, list[Diagnostic]]:
    """Every name in ``options`` must match something the files define: a typo must not
    select nothing and pass. Profile sets expand to their profiles. A strategy that no
    check runs under is worth a warning: its definitions are checked by nothing."""
    diags: list[Diagnostic] = []
    if not programs:
        return options, diags
    checks = {c.name for p in programs for c in p.checks}
    strategies = {"base"} | {st for p in programs for st in p.strategies}
    profiles = {n for p in programs for n in p.profiles}
    sets = {k: v for p in programs for k, v in p.profile_sets.items()}
    for name in sorted(options.checks or ()):
        if name not in checks:
            diags.append(_unknown("check", "--check", name, checks))
    for name in sorted(options.strategies or ()):
        if name not in strategies:
            diags.append(_unknown("strategy", "--strategy", name, strategies))
    if options.profiles is not None:
        expanded: set[str] = set()
        for name in sorted(options.profiles):
            if name in sets:
                expanded.update(sets[name])
            elif name in profiles:
                expanded.add(name)
            else:
                diags.append(_unknown("profile or profile set", "--profile", name, profiles | set(sets)))
        options = replace(options, profiles=frozenset(expanded))
    # a check under a strategy runs the strategies it extends too (strategy_chain)
    run_under: set[str] = set()
    for p in programs:
        for c in p.checks:
            for under in c.strategies:
                run_under.update(p.strategy_chain(under) if under is not None else ())
    for p in programs:
        for name, sdef in p.strategies.items():
            # only a strategy its own root file defines, in a file with checks: a
            # library's strategies are checked through the files that import it
            if name not in run_under and p.checks and sdef.span.file == p.root:
                diags.append(Diagnostic(
                    "KHO005", sdef.span, f"strategy `{name}` is run by no check: nothing checks it",
                    "name it in a check's `under` clause", severity=Severity.WARNING))
    return options, diags


def check_file(path: str | Path, options: Options | None = None) -> list[Result]:
    """The results of every check in one spec file; raises InputError on bad input."""
    report = check_paths([str(path)], options)
    # warnings are not raised: the results stand
    if report.has_input_errors:
        raise InputError([d for d in report.diagnostics if d.is_error], report.sources)
    if report.internal_errors:
        raise InternalError("\n".join(report.internal_errors))
    return report.results
