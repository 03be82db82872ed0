"""The Python API: load spec files, plan their checks, run them, collect results.

The command line (cli.py) and the pytest plugin (pytest_plugin.py) are thin layers over
this module. Nothing here prints; z3 is imported only when a check actually runs.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from khospec import ir
from khospec.cache import VerdictCache, default_dir, job_key, job_name
from khospec.diagnostics import Diagnostic, InputError, Severity, SourceCache, Span
from khospec.resolve import ParseCache, check_program, spec_tree
from khospec.results import InternalError, Result, Verdict

if TYPE_CHECKING:
    from khospec.engine.solve import Outcome


@dataclass(frozen=True)
class Options:
    """What to check and how; every field has the command line's default."""

    timeout_s: float = 60.0  # per check, strategy and profile
    strategies: frozenset[str] | None = None  # run only these (None: all a check names)
    profiles: frozenset[str] | None = None
    checks: frozenset[str] | None = None
    layout: ir.LayoutDef | None = None  # a machine's layout for every strategy check
    jobs: int = 1  # worker processes; 1 runs in this process
    replay: bool = True  # replay every counterexample in the concrete interpreter
    cross_check: bool = False  # re-solve every query with a second solver
    unroll: int = 3
    cache: bool = True  # reuse and store results in the verdict cache (khospec/cache.py)
    import_roots: tuple[str, ...] = ()  # folders imports may reach besides the spec's project
    cache_dir: str | None = None  # None: KHOSPEC_CACHE_DIR, else the user cache directory
    scheduler: str | None = None  # a Dask scheduler's address: solve there (khospec.executor)


@dataclass(frozen=True)
class Job:
    """One check under one strategy, for one profile (a check over traces: the long
    proofs run in parallel) or for all its profiles (a claim over formulas, which the
    engine first tries to prove for every profile at once): the unit of work."""

    path: Path
    file: str
    check: str
    line: int
    strategy: str | None
    profiles: tuple[str, ...]
    index: int = 0


@dataclass
class Report:
    """What ``check_paths`` found: results in plan order, diagnostics, internal errors."""

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


def load(path: Path, display: str, sources: SourceCache, import_roots: tuple[str, ...] = (),
         parsed: ParseCache | None = None) -> tuple[ir.Program | None, list[Diagnostic]]:
    return check_program(path, sources, display, tuple(Path(r) for r in import_roots), parsed)


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
            if check.is_trace:
                # the long proofs: one job per profile, so that they run in parallel
                for prof in profiles:
                    jobs.append(Job(path, display, check.name, check.span.line, st, (prof,)))
            else:
                # claims over formulas: every profile in one job, where the engine proves
                # them for all profiles at once (the split's arithmetic is one query)
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


def open_cache(options: Options) -> VerdictCache | None:
    if not options.cache:
        return None
    return VerdictCache(Path(options.cache_dir) if options.cache_dir else default_dir())


def _cache_key(program: ir.Program, check: ir.CheckDef, job: Job, options: Options) -> str | None:
    if not job.profiles:
        return None
    layout, _ = _layout_for(program, check, options)
    return job_key(program, check, job.strategy, tuple(program.profiles[p] for p in job.profiles),
                   timeout_s=options.timeout_s, unroll=options.unroll, cross_check=options.cross_check,
                   layout=layout)


def _to_body(program: ir.Program, r: Result) -> dict[str, Any]:
    cx = r.counterexample
    site = None
    if cx is not None and isinstance(cx.get("violated"), dict) and "at" in cx["violated"]:
        at = cx["violated"]["at"]
        site = next((k for k, sp in program.site_spans.items() if str(sp) == at), None)
    return {"profile": r.profile, "verdict": r.verdict.value, "time_s": r.time_s, "counterexample": cx,
            "assumptions_used": list(r.assumptions_used) if r.assumptions_used is not None else None,
            "reason": r.reason, "depth": r.depth, "notes": list(r.notes), "violated_site": site}


def _from_body(program: ir.Program, check: ir.CheckDef, job: Job, layout_name: str | None,
               body: dict[str, Any]) -> Result:
    cx = body["counterexample"]
    site = body.get("violated_site")
    if cx is not None and site is not None and site in program.site_spans:
        # the position as the source has it now (a comment may have moved the line)
        cx = {**cx, "violated": {**cx["violated"], "at": str(program.site_spans[site])}}
    used = body["assumptions_used"]
    return Result(
        file=job.file, line=job.line, check=job.check, strategy=job.strategy, profile=body["profile"],
        verdict=Verdict(body["verdict"]), expected=check.expect, time_s=float(body["time_s"]),
        counterexample=cx, assumptions_used=tuple(used) if used is not None else None,
        reason=body["reason"], depth=body["depth"], notes=tuple(body["notes"]), layout=layout_name,
        cached=True)


def _entry(program: ir.Program, job: Job, options: Options) -> tuple[VerdictCache, str] | None:
    """The cache and the job's address in it (None: no cache, or nothing to address)."""
    cache = open_cache(options)
    if cache is None:
        return None
    check = next(c for c in program.checks if c.name == job.check)
    key = _cache_key(program, check, job, options)
    return (cache, key) if key is not None else None


def cached_results(program: ir.Program, job: Job, options: Options,
                   entry: tuple[VerdictCache, str] | None = None) -> list[Result] | None:
    """The job's results from the verdict cache, presented against the program as it is
    now; None when the cache has no entry to trust."""
    entry = entry or _entry(program, job, options)
    if entry is None:
        return None
    check = next(c for c in program.checks if c.name == job.check)
    body = entry[0].get(entry[1])
    if body is None:
        return None
    layout_name = _layout_for(program, check, options)[1]
    try:
        raws = [_from_body(program, check, job, layout_name, b) for b in body["results"]]
        replays = [b.get("replay") for b in body["results"]]
        reads = [b.get("reads") for b in body["results"]]
    except (KeyError, TypeError, ValueError):
        return None  # a body of another shape: solve again
    if [r.profile for r in raws] != list(job.profiles):
        return None
    return [_finish(program, check, r, options, rp, rd) for r, rp, rd in zip(raws, replays, reads, strict=True)]


def run_job(program: ir.Program, job: Job, options: Options) -> list[Result]:
    """Decide one job in this process, or take it from the verdict cache. Raises
    InternalError on a khospec bug."""
    entry = _entry(program, job, options)
    hit = cached_results(program, job, options, entry)
    if hit is not None:
        return hit
    check = next(c for c in program.checks if c.name == job.check)
    raws = _solve_job(program, check, job, options)
    done = [_finish(program, check, r, options) for r in raws]
    if (entry is not None and [r.profile for r in raws] == list(job.profiles)
            and all(r.verdict is not Verdict.UNKNOWN for r in done)):
        # an unknown depends on the machine's wall clock as a last resort: solve it again
        entry[0].put(entry[1], {"results": [{**_to_body(program, r), "replay": d.replay if options.replay else None,
                                             "reads": _reads_of(d)}
                                            for r, d in zip(raws, done, strict=True)]})
    return done


def _reads_of(r: Result) -> list[dict[str, Any]] | None:
    cx = r.counterexample or {}
    violated = cx.get("violated")
    return violated.get("reads") if isinstance(violated, dict) else None


def _finish(program: ir.Program, check: ir.CheckDef, r: Result, options: Options,
            replayed: str | None = None, reads: list[dict[str, Any]] | None = None) -> Result:
    """Present the counterexample and replay it. ``replayed``: the replay's status when
    the result comes from the cache: the interpreter is deterministic and the entry's
    address covers everything it reads, so its answer would be the same."""
    if r.counterexample is not None:
        r = _present(program, check, r)
        if options.replay and replayed:
            assert r.counterexample is not None
            r = replace(r, replay=replayed, counterexample=_with_reads(r.counterexample, reads))
        elif options.replay:
            r = _replay(program, check, r)
    return r


def _solve_job(program: ir.Program, check: ir.CheckDef, job: Job, options: Options) -> list[Result]:
    from khospec.engine import solve  # z3 is imported here, not before
    from khospec.engine.crosscheck import CrossCheckError
    from khospec.engine.lower import LowerError
    from khospec.machine.importer import shipped_layouts

    layout, layout_name = _layout_for(program, check, options)
    profiles = [program.profiles[p] for p in job.profiles]
    t0 = time.perf_counter()
    try:
        outcomes = solve.run(program, check, job.strategy, list(profiles),
                             timeout_ms=int(options.timeout_s * 1000), unroll=options.unroll,
                             layout=layout, cross_check=options.cross_check,
                             real_layouts=shipped_layouts() if layout is None else ())
    except LowerError as exc:
        if exc.diag.code == "KHO599":  # the lowering's own consistency checks: a bug, exit 3
            raise InternalError(f"{exc.diag.span}: {exc.diag.message}") from exc
        raise InputError([exc.diag], SourceCache()) from exc
    except CrossCheckError as exc:
        raise InternalError(f"{job.file}:{job.line}: `{job.check}` [{job.strategy or 'base'}]: "
                            f"second solver: {exc}") from exc
    results: list[Result] = []
    for prof, o in outcomes:
        results.append(_result_of(job.file, job.line, check, job.strategy,
                                  prof.name if prof is not None else None, o, layout_name))
    if not outcomes:
        results.append(Result(job.file, job.line, job.check, job.strategy, None, Verdict.UNKNOWN,
                              check.expect, time.perf_counter() - t0, reason="no profile to run"))
    return results


def recheck(program: ir.Program, check: ir.CheckDef, strategy: str | None, profile: str,
            layout: ir.LayoutDef, options: Options) -> Result:
    """``check`` decided on one concrete ``layout`` (a reproducer's), its counterexample
    presented and replayed."""
    from khospec.engine import solve

    [(_, o)] = solve.run(program, check, strategy, [program.profiles[profile]],
                         timeout_ms=int(options.timeout_s * 1000), unroll=options.unroll, layout=layout)
    r = _result_of(str(check.span.file), check.span.line, check, strategy, profile, o, layout.name)
    return _finish(program, check, r, options)


def _result_of(file: str, line: int, check: ir.CheckDef, strategy: str | None, profile: str | None,
               o: Outcome, layout_name: str | None) -> Result:
    """The result record of one engine outcome."""
    return Result(file=file, line=line, check=check.name, strategy=strategy, profile=profile,
                  verdict=o.verdict, expected=check.expect, time_s=o.time_s, counterexample=o.counterexample,
                  assumptions_used=o.assumptions_used, reason=o.reason, depth=o.depth,
                  notes=tuple(o.notes), layout=layout_name)


def _present(program: ir.Program, check: ir.CheckDef, r: Result) -> Result:
    from khospec.explain import present

    assert r.counterexample is not None
    return replace(r, counterexample=present(program, check, r))


def _replay(program: ir.Program, check: ir.CheckDef, r: Result) -> Result:
    from khospec.interp import Incomplete, ReplayMismatch, replay_details

    assert r.counterexample is not None
    try:
        status, reads = replay_details(program, check, r)
    except Incomplete as exc:
        return replace(r, verdict=Verdict.UNKNOWN, reason=str(exc), replay="failed: " + str(exc))
    except ReplayMismatch as exc:
        raise InternalError(
            f"{r.file}:{r.line}: counterexample of `{r.check}` [{r.strategy}, {r.profile}] "
            f"does not replay: {exc}\nsolver's view: {exc.solver_view}\ninterpreter's view: {exc.interp_view}"
        ) from exc
    return replace(r, replay=status, counterexample=_with_reads(r.counterexample, reads))


def _with_reads(cx: dict[str, Any], reads: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The presented counterexample with the struct pages the failed requirement read."""
    if not reads or "violated" not in cx:
        return cx
    return {**cx, "violated": {**cx["violated"], "reads": reads}}


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
    if not report.has_input_errors:
        for path, display, program in loaded:
            jobs.extend(plan(program, path, display, options))
        if not jobs and files:
            report.diagnostics.append(Diagnostic(
                "KHO004", Span.whole(", ".join(str(p) for p in paths)),
                "nothing to check: no check matches" + _selection(options),
                "a file with definitions only is checked through the files that import it"))
    jobs = [replace(j, index=i) for i, j in enumerate(jobs)]
    cache = open_cache(options)
    known = cache.times() if cache is not None else {}
    if on_plan is not None:
        on_plan([(job_name(j.file, j.check, j.strategy, p), known.get(job_name(j.file, j.check, j.strategy, p)))
                 for j in jobs for p in j.profiles])
    if (options.jobs > 1 and len(jobs) > 1) or options.scheduler:
        from khospec.runner import run_on_executor, run_parallel

        # cache hits here, with the programs already loaded: workers only for solving
        by_index: dict[int, list[Result]] = {}
        todo: list[Job] = []
        for job in jobs:
            hit = cached_results(programs[job.file], job, options)
            if hit is None:
                todo.append(job)
                continue
            by_index[job.index] = hit
            for r in hit:
                if on_result is not None:
                    on_result(r)
        if todo and options.scheduler:
            from khospec.executor import DaskExecutor

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
            for r in results:  # in plan order, one job's results together
                by_index.setdefault(where.get((r.file, r.check, r.strategy, r.profile), -1), []).append(r)
        report.results.extend(r for i in sorted(by_index) for r in by_index[i])
    else:
        for job in jobs:
            if on_start is not None:
                for p in job.profiles:
                    on_start(job_name(job.file, job.check, job.strategy, p))
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
    record_times(report.results, options)
    return report


def schedule(jobs: list[Job], known: dict[str, float], programs: dict[str, ir.Program]) -> list[Job]:
    """Longest expected first (list scheduling): the previous run's times (``known``, by
    job name) where there are some, else trace checks before the others. Results still
    come back in plan order (``Job.index``)."""

    def expected(j: Job) -> float:
        ts = [known.get(job_name(j.file, j.check, j.strategy, p)) for p in j.profiles]
        if ts and all(t is not None for t in ts):
            return sum(t for t in ts if t is not None)
        program = programs.get(j.file)
        check = next((c for c in program.checks if c.name == j.check), None) if program else None
        return 10.0 if check is not None and check.is_trace else 1.0

    return sorted(jobs, key=lambda j: (-expected(j), j.index))


def record_times(results: list[Result], options: Options) -> None:
    cache = open_cache(options)
    if cache is not None:
        cache.record_times({job_name(r.file, r.check, r.strategy, r.profile): r.time_s
                            for r in results if not r.cached})


def _selection(options: Options) -> str:
    parts = [f"{flag} {', '.join(sorted(names))}" for flag, names in
             (("--check", options.checks), ("--strategy", options.strategies), ("--profile", options.profiles))
             if names is not None]
    return " (" + "; ".join(parts) + ")" if parts else " (the files define no check)"


def _unknown(kind: str, flag: str, name: str, known: Iterable[str]) -> Diagnostic:
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
    run_under: set[str] = set()
    for p in programs:
        for c in p.checks:
            for under in c.strategies:
                run_under.update(p.strategy_chain(under) if under is not None else ())
    for p in programs:
        for name, sdef in p.strategies.items():
            if name not in run_under and p.checks and sdef.span.file == p.root:
                diags.append(Diagnostic(
                    "KHO005", sdef.span, f"strategy `{name}` is run by no check: nothing checks it",
                    "name it in a check's `under` clause", severity=Severity.WARNING))
    return options, diags


def check_file(path: str | Path, options: Options | None = None) -> list[Result]:
    """The results of every check in one spec file; raises InputError on bad input."""
    report = check_paths([str(path)], options)
    if report.has_input_errors:
        raise InputError([d for d in report.diagnostics if d.is_error], report.sources)
    if report.internal_errors:
        raise InternalError("\n".join(report.internal_errors))
    return report.results
