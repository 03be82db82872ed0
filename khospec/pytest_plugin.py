"""The pytest plugin: every check of a spec file is a test item, its `expect` enforced.

Spec files are collected from the paths in the ini option ``khospec_paths``. Items are
named ``CHECK[STRATEGY-PROFILE]`` so that ``pytest -k`` selects them; a failing item
shows the verdict, the expectation and the counterexample. The checks selected are
decided once, in worker processes (``--khospec-jobs``), started when the test loop
starts; z3 is imported by the workers only. They solve in the background while the
other tests run (a test suite that holds both keeps every core busy), and a spec item
waits for its result.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    # types only: the plugin is loaded by every pytest run, so khospec itself is
    # imported when a spec file is collected, not before
    from khospec import ir
    from khospec.api import Options
    from khospec.jobs import Job
    from khospec.results import Result

# a result by (file, check, strategy, profile); None: the run failed before deciding it
_Key = tuple[str, str, str | None, str | None]
_RESULTS: pytest.StashKey[dict[_Key, Result | None]] = pytest.StashKey()
_JOBS: pytest.StashKey[list[Job]] = pytest.StashKey()
_BACKGROUND: pytest.StashKey[_Background] = pytest.StashKey()
_ERRORS: pytest.StashKey[list[str]] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("khospec_paths", "spec files and folders whose checks are collected as tests",
                  type="paths", default=[])
    group = parser.getgroup("khospec")
    group.addoption("--khospec-timeout", type=float, default=60.0,
                    help="solver budget per check, strategy and profile (seconds of a current x86-64 core)")
    group.addoption("--khospec-jobs", type=int, default=0,
                    help="worker processes for the spec checks (default: one per core)")
    group.addoption("--khospec-no-cache", action="store_true",
                    help="solve every spec check again; neither read nor write the verdict cache")


def _in_paths(config: pytest.Config, path: Path) -> bool:
    roots = [Path(p).resolve() for p in config.getini("khospec_paths")]
    rp = path.resolve()
    return any(rp == r or r in rp.parents for r in roots)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".kho" and _in_paths(parent.config, file_path):
        return KhoFile.from_parent(parent, path=file_path)
    return None


def _display(config: pytest.Config, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path(config.rootpath).resolve()))
    except ValueError:
        return str(path)


class KhoFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from khospec.api import Options, load, plan
        from khospec.diagnostics import SourceCache, render

        sources = SourceCache()
        display = _display(self.config, self.path)
        program, diags = load(self.path, display, sources)
        errors = [d for d in diags if d.is_error]
        if program is None or errors:
            yield KhoInputError.from_parent(self, name="input",
                                            text="\n".join(render(d, sources) for d in errors))
            return
        for job in plan(program, self.path, display, Options()):
            for prof in job.profiles:
                name = f"{job.check}[{job.strategy or 'base'}-{prof}]"
                yield KhoItem.from_parent(self, name=name, job=job, profile=prof, program=program)


class KhoInputError(pytest.Item):
    def __init__(self, *, text: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = text

    def runtest(self) -> None:
        raise KhoSpecError(self.text)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: str | None = None) -> str:
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, "spec input"


class KhoSpecError(Exception):
    pass


class KhoMismatch(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)


class KhoItem(pytest.Item):
    def __init__(self, *, job: Job, profile: str, program: ir.Program, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.profile = profile
        self.program = program
        self.add_marker("khospec")

    def _key(self) -> _Key:
        return (self.job.file, self.job.check, self.job.strategy, self.profile)

    def runtest(self) -> None:
        stash = self.config.stash
        results = stash.setdefault(_RESULTS, {})
        background = stash.get(_BACKGROUND, None)
        if self._key() not in results and background is not None:
            del stash[_BACKGROUND]
            _store(self.config, background.jobs, background.collect())
        if self._key() not in results:
            _run([self.job], self.config)
        r = results.get(self._key())
        if r is None:
            raise KhoSpecError("\n".join([f"{self.job.check}: no result", *stash.get(_ERRORS, [])]))
        if not r.met:
            raise KhoMismatch(_describe(r))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: str | None = None) -> str:
        if isinstance(excinfo.value, KhoMismatch | KhoSpecError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.job.line - 1, f"check {self.name}"


def _describe(r: Result) -> str:
    from khospec.explain import short_lines

    lines = [f"{r.file}:{r.line}: check {r.check} [{r.strategy or 'base'}, {r.profile}]",
             f"verdict {r.verdict.value}, expected {r.expected or 'proved'}"]
    if r.assumptions_used:
        lines.append("assumptions used: " + ", ".join(r.assumptions_used))
    lines.extend("  " + s for s in short_lines(r))
    if r.reason:
        lines.append("reason: " + r.reason)
    lines.extend("note: " + n for n in r.notes)
    return "\n".join(lines)


# what solving the spec checks gave: results, internal errors, input errors as text
_Solved = tuple[list["Result"], list[str], list[str]]


def _options(config: pytest.Config) -> Options:
    import os

    from khospec.api import Options

    n = config.getoption("--khospec-jobs") or max(1, os.cpu_count() or 1)
    return Options(timeout_s=config.getoption("--khospec-timeout"), jobs=n,
                   cache=not config.getoption("--khospec-no-cache"))


def _solve(jobs: list[Job], options: Options) -> _Solved:
    from khospec.api import record_times
    from khospec.runner import run_parallel

    results, internal, diags = run_parallel(jobs, options)
    record_times(results, options)
    return results, internal, [f"{d.span}: {d.message}" for d in diags]


def _store(config: pytest.Config, jobs: list[Job], solved: _Solved) -> None:
    """The results where the items find them; the jobs left without one get None, and
    the errors that explain why."""
    results, internal, diags = solved
    store = config.stash.setdefault(_RESULTS, {})
    for r in results:
        store[(r.file, r.check, r.strategy, r.profile)] = r
    if internal or diags:
        config.stash.setdefault(_ERRORS, []).extend(internal + diags)
        for j in jobs:
            for p in j.profiles:
                store.setdefault((j.file, j.check, j.strategy, p), None)


class _Background:
    """The spec checks solved by a process of their own (which starts the workers)
    while the other tests run in this one. A process, not a thread: the tests fork and
    patch the environment, and the workers must be forked before any of that."""

    def __init__(self, jobs: list[Job], options: Options) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        self.jobs = jobs
        self._conn, child = ctx.Pipe(duplex=False)
        # not a daemon: a daemon may not start the worker processes
        self._proc = ctx.Process(target=_solve_and_send, args=(jobs, options, child), name="khospec checks")
        self._proc.start()
        child.close()

    def collect(self) -> _Solved:
        """The results, once the solving process sends them (it blocks until then)."""
        try:
            solved: _Solved = self._conn.recv()
        except (EOFError, OSError):
            solved = ([], [f"the process solving the spec checks ended without results "
                           f"(exit code {self._proc.exitcode})"], [])
        self._proc.join()
        self._conn.close()
        return solved

    def stop(self) -> None:
        """Ends the solving process if the session ends before it is collected (-x, ^C)."""
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(60)
        if self._proc.is_alive():
            self._proc.kill()
        self._conn.close()


def _solve_and_send(jobs: list[Job], options: Options, conn: Any) -> None:
    import signal

    # stop() ends this process with SIGTERM, which run_parallel turns into an exit
    # that ends its workers too, where the handler is the default one: this process's
    # own, whatever pytest's process had
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        solved = _solve(jobs, options)
    except Exception as exc:  # the items report it, as a failure each
        solved = ([], [f"solving the spec checks failed: {type(exc).__name__}: {exc}"], [])
    conn.send(solved)
    conn.close()


def _run(jobs: list[Job], config: pytest.Config) -> None:
    if jobs:
        _store(config, jobs, _solve(jobs, _options(config)))


def pytest_collection_finish(session: pytest.Session) -> None:
    """The jobs of the spec items selected, for the test loop to start solving, in the
    order `khospec check` gives them (api.schedule): longest expected first, by the
    previous run's times, else the checks over traces first. Results come back in the
    files' order (the jobs' index)."""
    seen: dict[tuple[str, str, str | None, tuple[str, ...]], Job] = {}
    programs: dict[str, ir.Program] = {}
    for item in session.items:
        if isinstance(item, KhoItem):
            j = item.job  # one per check and strategy, and per profile for trace checks
            seen.setdefault((j.file, j.check, j.strategy, j.profiles), j)
            programs[j.file] = item.program
    if not seen:
        return
    from khospec.api import numbered, schedule

    jobs, known = numbered(list(seen.values()), _options(session.config))
    session.config.stash[_JOBS] = schedule(jobs, known, programs)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    import multiprocessing as mp

    jobs = session.config.stash.get(_JOBS, [])
    if not jobs or session.config.option.collectonly:
        return
    if "fork" in mp.get_all_start_methods():
        session.config.stash[_BACKGROUND] = _Background(jobs, _options(session.config))
    else:  # pragma: no cover - platforms without fork: solved before the tests run
        _run(jobs, session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    background = session.config.stash.get(_BACKGROUND, None)
    if background is not None:
        del session.config.stash[_BACKGROUND]
        background.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "khospec: a check of a khospec spec file")
    # khospec_paths are collected wherever they point (relative to the rootdir, `..`
    # included), not only under the paths pytest walks: a run with no path arguments
    # adds those the walk does not reach
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        walked = [Path(a).resolve() for a in config.args]
        for p in config.getini("khospec_paths"):
            rp = Path(p).resolve()
            if rp.exists() and not any(rp == w or w in rp.parents for w in walked):
                config.args.append(str(rp))


def pytest_report_header(config: pytest.Config) -> list[str]:
    """What ``khospec check`` would warn of before solving, in the header: another z3
    release than khospec requires (KHO007: the expectations were set with that
    release), and a verdict cache that cannot be written (KHO008)."""
    if not config.getini("khospec_paths"):
        return []
    from khospec.api import cache_warning
    from khospec.engine.version import mismatch_text, z3_mismatch

    mismatch = z3_mismatch()
    lines = [] if mismatch is None else [f"khospec: warning: {mismatch_text(*mismatch)}"]
    # as `khospec check` warns (KHO008): a cache that cannot be written keeps nothing
    return lines + [f"khospec: warning: {d.span}: {d.message}" for d in cache_warning(_options(config))]
