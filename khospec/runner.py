"""Deciding jobs: one in this process, or many in worker processes with hard time limits.

``run_job`` decides one job where it is called: the verdict cache first, else the
engine (z3 is imported then, not before); every counterexample is presented and
replayed. ``recheck`` decides a check on one concrete layout the same way.

``run_parallel`` runs jobs in worker processes. Each worker loads spec files itself and
decides one job at a time, each in a fork of itself that ends with the job: the worker
never makes a z3 context, so every job starts from the z3 of a new process, whatever
jobs the worker was given before (z3 keeps state across contexts in a process, and its
search moved with it). A worker that exceeds its job's budget (the solver did not
return) is killed and replaced; the job's results become ``unknown`` with the reason.
Results come back in plan order.

``run_on_executor`` sends the same jobs to a khospec.executor instead (a Dask cluster):
each job is a task that loads its spec file where it runs, so the workers must see the
files at the same paths (one machine, or a shared file system). A task on a thread other
than the main one (a Dask worker's) is decided by a helper process of that thread: z3's
search in a worker's thread was not always the one it takes in a process of its own.
The solver budgets end every check; the hard time limit, which needs a process to kill,
is this module's only.

The API (api.py) plans the jobs and calls this module; nothing here imports the API.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import multiprocessing as mp
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from khospec import ir
from khospec.cache import VerdictCache, default_dir, job_key
from khospec.diagnostics import Diagnostic, InputError, SourceCache
from khospec.jobs import Job, Options
from khospec.resolve import ParseCache, check_program
from khospec.results import InternalError, Result, Verdict

if TYPE_CHECKING:
    from multiprocessing.context import ForkContext, SpawnContext

    from khospec.counterexample import ModelData, Read, SpecCounterexample
    from khospec.engine.solve import Outcome
    from khospec.executor import Executor


def load(path: Path, display: str, sources: SourceCache, import_roots: tuple[str, ...] = (),
         parsed: ParseCache | None = None) -> tuple[ir.Program | None, list[Diagnostic]]:
    """One spec file, type-checked: the program (None on an error) and the diagnostics."""
    return check_program(path, sources, display, tuple(Path(r) for r in import_roots), parsed)


# ---------------------------------------------------------------- one job, in this process


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


@dataclass(frozen=True)
class _Solved:
    """A result as the engine gives it, or the verdict cache gives it back: its model not
    yet presented nor replayed, so the result holds no counterexample yet."""

    result: Result
    model: ModelData | None


def _to_body(program: ir.Program, solved: _Solved) -> dict[str, Any]:
    r, model = solved.result, solved.model
    site = None
    if model is not None and "at" in model["violated"]:
        at = model["violated"]["at"]
        site = next((k for k, sp in program.site_spans.items() if str(sp) == at), None)
    return {"profile": r.profile, "verdict": r.verdict.value, "time_s": r.time_s, "counterexample": model,
            "assumptions_used": list(r.assumptions_used) if r.assumptions_used is not None else None,
            "reason": r.reason, "depth": r.depth, "notes": list(r.notes), "violated_site": site}


def _expected(check: ir.CheckDef) -> str | None:
    """The check's `expect` as a result records it: the verdict's name, which the JSON,
    the reports and the mail show as they always have (None: no `expect`, a proof)."""
    return check.expect.value if check.expect is not None else None


def _from_body(program: ir.Program, check: ir.CheckDef, job: Job, layout_name: str | None,
               body: dict[str, Any]) -> _Solved:
    # the verdict cache's JSON: the model _to_body stored, its tuples come back as lists
    # (ModelLayout's readers take both)
    model = cast("ModelData | None", body["counterexample"])
    site = body.get("violated_site")
    if model is not None and site is not None and site in program.site_spans:
        # the position as the source has it now (a comment may have moved the line)
        model = {**model, "violated": {**model["violated"], "at": str(program.site_spans[site])}}
    used = body["assumptions_used"]
    return _Solved(Result(
        file=job.file, line=job.line, check=job.check, strategy=job.strategy, profile=body["profile"],
        verdict=Verdict(body["verdict"]), expected=_expected(check), time_s=float(body["time_s"]),
        assumptions_used=tuple(used) if used is not None else None,
        reason=body["reason"], depth=body["depth"], notes=tuple(body["notes"]), layout=layout_name,
        cached=True), model)


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
        solved = [_from_body(program, check, job, layout_name, b) for b in body["results"]]
        replays = [b.get("replay") for b in body["results"]]
        reads = [b.get("reads") for b in body["results"]]
    except (KeyError, TypeError, ValueError):
        return None  # a body of another shape: solve again
    if [s.result.profile for s in solved] != list(job.profiles):
        return None
    return [_finish(program, check, s, options, rp, rd) for s, rp, rd in zip(solved, replays, reads, strict=True)]


def run_job(program: ir.Program, job: Job, options: Options) -> list[Result]:
    """Decide one job in this process, or take it from the verdict cache. Raises
    InternalError on a khospec bug."""
    entry = _entry(program, job, options)
    hit = cached_results(program, job, options, entry)
    if hit is not None:
        return hit
    check = next(c for c in program.checks if c.name == job.check)
    solved = _solve_job(program, check, job, options)
    done = [_finish(program, check, s, options) for s in solved]
    if (entry is not None and [s.result.profile for s in solved] == list(job.profiles)
            and all(r.verdict is not Verdict.UNKNOWN for r in done)):
        # an unknown depends on the machine's wall clock as a last resort: solve it again
        entry[0].put(entry[1], {"results": [{**_to_body(program, s), "replay": d.replay if options.replay else None,
                                             "reads": _reads_of(d)}
                                            for s, d in zip(solved, done, strict=True)]})
    return done


def _reads_of(r: Result) -> list[Read] | None:
    cx = r.counterexample
    return cx["violated"].get("reads") if cx is not None else None


def _finish(program: ir.Program, check: ir.CheckDef, solved: _Solved, options: Options,
            replayed: str | None = None, reads: list[Read] | None = None) -> Result:
    """Present the counterexample and replay it. ``replayed``: the replay's status when
    the result comes from the cache: the interpreter is deterministic and the entry's
    address covers everything it reads, so its answer would be the same."""
    r = solved.result
    if solved.model is not None:
        from khospec.explain import present

        cx = present(program, check, r.strategy, solved.model)
        r = replace(r, counterexample=cx)
        if options.replay and replayed:
            r = replace(r, replay=replayed, counterexample=_with_reads(cx, reads))
        elif options.replay:
            r = _replay(program, check, r, cx)
    return r


def _solve_job(program: ir.Program, check: ir.CheckDef, job: Job, options: Options) -> list[_Solved]:
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
    results: list[_Solved] = []
    for prof, o in outcomes:
        results.append(_result_of(job.file, job.line, check, job.strategy,
                                  prof.name if prof is not None else None, o, layout_name))
    if not outcomes:
        results.append(_Solved(Result(job.file, job.line, job.check, job.strategy, None, Verdict.UNKNOWN,
                                      _expected(check), time.perf_counter() - t0, reason="no profile to run"),
                               None))
    return results


def recheck(program: ir.Program, check: ir.CheckDef, strategy: str | None, profile: str,
            layout: ir.LayoutDef, options: Options) -> Result:
    """``check`` decided on one concrete ``layout`` (a reproducer's), its counterexample
    presented and replayed."""
    from khospec.engine import solve

    [(_, o)] = solve.run(program, check, strategy, [program.profiles[profile]],
                         timeout_ms=int(options.timeout_s * 1000), unroll=options.unroll, layout=layout)
    solved = _result_of(str(check.span.file), check.span.line, check, strategy, profile, o, layout.name)
    return _finish(program, check, solved, options)


def _result_of(file: str, line: int, check: ir.CheckDef, strategy: str | None, profile: str | None,
               o: Outcome, layout_name: str | None) -> _Solved:
    """The result record of one engine outcome, and its model."""
    return _Solved(Result(file=file, line=line, check=check.name, strategy=strategy, profile=profile,
                          verdict=o.verdict, expected=_expected(check), time_s=o.time_s,
                          assumptions_used=o.assumptions_used, reason=o.reason, depth=o.depth,
                          notes=tuple(o.notes), layout=layout_name), o.counterexample)


def _replay(program: ir.Program, check: ir.CheckDef, r: Result, cx: SpecCounterexample) -> Result:
    """``r`` with its counterexample ``cx`` replayed."""
    from khospec.interp import Incomplete, ReplayMismatch, replay_details

    try:
        status, reads = replay_details(program, check, r)
    except Incomplete as exc:
        return replace(r, verdict=Verdict.UNKNOWN, reason=str(exc), replay="failed: " + str(exc))
    except ReplayMismatch as exc:
        raise InternalError(
            f"{r.file}:{r.line}: counterexample of `{r.check}` [{r.strategy}, {r.profile}] "
            f"does not replay: {exc}\nsolver's view: {exc.solver_view}\ninterpreter's view: {exc.interp_view}"
        ) from exc
    return replace(r, replay=status, counterexample=_with_reads(cx, reads))


def _with_reads(cx: SpecCounterexample, reads: list[Read] | None) -> SpecCounterexample:
    """The presented counterexample with the struct pages the failed requirement read."""
    if not reads:
        return cx
    return {**cx, "violated": {**cx["violated"], "reads": reads}}


# ---------------------------------------------------------------- worker processes


@dataclass(frozen=True)
class Decided:
    """A worker's reply: the job's results."""

    index: int  # the job's (Job.index)
    results: list[Result]


@dataclass(frozen=True)
class BadInput:
    """A worker's reply: the job's spec file does not load where the worker runs."""

    index: int
    diagnostics: list[Diagnostic]


@dataclass(frozen=True)
class Crashed:
    """A worker's reply: a bug in khospec (or an unreadable file) stopped the job."""

    index: int
    text: str


# what a worker process or an executor's task sends back for one job
Reply = Decided | BadInput | Crashed


def _take(reply: Reply, done: dict[int, list[Result]], internal: list[str],
          input_diags: list[Diagnostic], on_result: Callable[[Result], None] | None) -> None:
    """File one worker's reply where it belongs."""
    match reply:
        case Decided(index, results):
            done[index] = results
            if on_result is not None:
                for r in results:
                    on_result(r)
        case BadInput(_, diagnostics):
            input_diags.extend(diagnostics)
        case Crashed(_, text):
            internal.append(text)


class _Slot:
    """One worker process and the job it is deciding (None: idle)."""

    def __init__(self, ctx: ForkContext | SpawnContext) -> None:
        parent, child = ctx.Pipe()
        self.conn: Connection = parent
        self.proc = ctx.Process(target=_local_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.job: Job | None = None
        self.deadline = 0.0

    def kill(self) -> None:
        """The worker and the fork deciding its job (its process group)."""
        if self.proc.pid is not None:
            _kill_group(self.proc.pid)
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def _kill_group(pid: int) -> None:
    """SIGKILL to the process group ``pid`` leads (a worker or helper and the fork
    deciding its job), if there is one."""
    if hasattr(os, "killpg"):
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)


def _timeout_results(job: Job, options: Options) -> list[Result]:
    program, _ = load(job.path, job.file, SourceCache(), options.import_roots)
    expect = None
    if program is not None:
        expect = next((_expected(c) for c in program.checks if c.name == job.check), None)
    return [
        Result(job.file, job.line, job.check, job.strategy, p, Verdict.UNKNOWN, expect,
               options.timeout_s, reason="time limit reached: the solver did not return, its process was stopped")
        for p in job.profiles
    ]


def run_parallel(jobs: list[Job], options: Options,
                 on_result: Callable[[Result], None] | None = None,
                 on_start: Callable[[str], None] | None = None,
                 ) -> tuple[list[Result], list[str], list[Diagnostic]]:
    """Run ``jobs`` in the order given (the caller schedules), results in plan order."""
    ctx: ForkContext | SpawnContext
    try:
        ctx = mp.get_context("fork")
    except ValueError:  # pragma: no cover - platforms without fork
        ctx = mp.get_context("spawn")
    n = max(1, min(options.jobs, len(jobs)))
    slots: list[_Slot] = []
    pending = list(jobs)
    done: dict[int, list[Result]] = {}
    internal: list[str] = []
    input_diags: list[Diagnostic] = []

    def assign(slot: _Slot) -> None:
        if pending:
            job = pending.pop(0)
            slot.job = job
            # a safety net only: the solver budgets (engine/solve.py) end a check first;
            # every profile may take two solving phases and a vacuity check, each with a
            # wall-clock limit of several times its nominal budget
            slot.deadline = time.monotonic() + options.timeout_s * 10 * len(job.profiles) + 60
            slot.conn.send((job, options))
            if on_start is not None:
                for name in job.names:
                    on_start(name)
        else:
            slot.job = None

    def replace_slot(s: _Slot) -> None:
        with stop.held():
            new = _Slot(ctx)
            slots[slots.index(s)] = new
        assign(new)

    with _Termination() as stop:
        try:
            for _ in range(n):
                with stop.held():
                    slots.append(_Slot(ctx))
            for s in slots:
                assign(s)
            while any(s.job is not None for s in slots):
                busy = [(s, s.job) for s in slots if s.job is not None]
                # at most a second between looks at a SIGTERM whose exception was lost
                timeout = min(1.0, max(0.05, min(s.deadline for s, _ in busy) - time.monotonic()))
                ready = wait([s.conn for s, _ in busy], timeout=timeout)
                stop.check()
                for s, job in busy:
                    if s.conn in ready:
                        try:
                            reply: Reply = s.conn.recv()
                        except EOFError:
                            internal.append(f"worker died while checking {job.file}::{job.check}")
                            s.kill()
                            replace_slot(s)
                            continue
                        _take(reply, done, internal, input_diags, on_result)
                        assign(s)
                    elif time.monotonic() > s.deadline:
                        s.kill()
                        rs = _timeout_results(job, options)
                        done[job.index] = rs
                        if on_result is not None:
                            for r in rs:
                                on_result(r)
                        replace_slot(s)
        finally:
            with stop.held():
                _end(slots)
    results = [r for i in sorted(done) for r in done[i]]
    return results, internal, input_diags


def _end(slots: list[_Slot]) -> None:
    """Ends the workers: an idle one when told, a busy one killed."""
    for s in slots:
        try:
            if s.proc.is_alive():
                s.conn.send(None)
                s.proc.join(1)
            if s.proc.is_alive():
                s.kill()
        except (OSError, BrokenPipeError):
            pass


class _Termination:
    """While workers run, SIGTERM (`timeout`, a CI runner stopping a job) raises
    SystemExit, so that run_parallel's cleanup ends the workers: a process killed
    outright leaves each of them waiting for its next job for ever (a worker holds the
    pipe ends of the workers forked before it, so none sees the end of its pipe).
    Only where the handler is the default one, and only in the main thread (the only
    one that may set it); the default is put back on leaving.

    Python drops an exception its signal handler raises inside a fork hook (logging's
    releases its lock after every fork) or a finaliser, and the run then went on to
    its end, 50 s and more after the signal under load. So a worker is started and put
    in its slot with the signal ``held`` (it is raised after), and ``check``, called
    between waits, raises it again if it was lost."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._holding = 0
        self._installed = False

    def __enter__(self) -> _Termination:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        if not self._holding:
            raise SystemExit(128 + signum)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A SIGTERM received within is raised at its end."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            self.check()

    def check(self) -> None:
        """The SystemExit of a SIGTERM received, raised if nothing holds it."""
        if self.signum is not None and not self._holding:
            raise SystemExit(128 + self.signum)


@functools.lru_cache(maxsize=64)
def _program(path: str, file: str, import_roots: tuple[str, ...], mtime_ns: int) -> ir.Program | list[Diagnostic]:
    """A worker's loaded programs, by file and modification time: the jobs of one file
    load it once, and an edited file is loaded again (a Dask worker outlives a run)."""
    program, diags = load(Path(path), file, SourceCache(), import_roots)
    return program if program is not None else [d for d in diags if d.is_error]


def _loaded(job: Job, options: Options) -> ir.Program | list[Diagnostic]:
    """The job's spec file, as this process loaded it (``_program``)."""
    return _program(str(job.path), job.file, options.import_roots, os.stat(job.path).st_mtime_ns)


def remote_job(task: tuple[Job, Options]) -> Reply:
    """One job, decided wherever the executor runs it: the reply a local worker sends.

    On any thread but the main one (a Dask worker runs tasks in threads), the job goes
    to this thread's helper process (``_JobHelper``), which decides it on its main
    thread. z3 in a Dask worker's thread sometimes searched differently on the same
    input: the first query of `eager_owner_node_pages` (x86_64), the same SMT text,
    spent 4.4 million resource units instead of 10.0 million and the counterexample
    was another, in 9 of 118 runs of the cluster test; through a helper, in none of 90
    (CHANGELOG.md has the details)."""
    if threading.current_thread() is not threading.main_thread():
        return _helper_of(os.getpid(), threading.get_ident()).decide(task)
    return _decide(task)


def _decide(task: tuple[Job, Options]) -> Reply:
    """One job in this process: a local worker's, a helper's, or an executor's task on
    its main thread. The spec file is loaded once per modification (``_program``)."""
    job, options = task
    try:
        loaded = _loaded(job, options)
        if isinstance(loaded, list):
            return BadInput(job.index, loaded)
        return Decided(job.index, run_job(loaded, job, options))
    except InputError as exc:
        return BadInput(job.index, exc.diagnostics)
    except InternalError as exc:
        return Crashed(job.index, str(exc))
    except OSError as exc:
        return Crashed(job.index, f"cannot read {job.path} where the job ran: {exc}")
    except Exception:  # a bug in khospec: report it, keep the worker
        return Crashed(job.index, traceback.format_exc())


_SERVE = "import sys; from khospec.runner import serve_jobs; serve_jobs(int(sys.argv[1]))"


class _JobHelper:
    """A single-threaded Python process that decides the jobs of one thread, one at a
    time, over a socket pair (``serve_jobs`` is its loop), each in a fork of its own as
    a local worker does. It ends when its socket closes: when the thread's process
    ends, or is killed with it."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        # the khospec this process runs, wherever it was imported from
        here = str(Path(__file__).resolve().parent.parent)
        path = os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])
        with theirs:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _SERVE, str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": path},
                start_new_session=True)
        self.conn = Connection(ours.detach())
        self.owner = os.getpid()
        atexit.register(self.close)

    def decide(self, task: tuple[Job, Options]) -> Reply:
        job = task[0]
        try:
            self.conn.send(task)
            return cast(Reply, self.conn.recv())
        except (EOFError, OSError) as exc:
            self.close()
            return Crashed(job.index, f"the helper process deciding {job.file}::{job.check} ended "
                                      f"(exit code {self.proc.returncode}): {exc}")

    def alive(self) -> bool:
        return not self.conn.closed and self.proc.poll() is None

    def close(self) -> None:
        """The helper's socket closed, so that it ends; killed if it does not. Only by the
        process that started it (a forked worker inherits the exit hooks too)."""
        if os.getpid() != self.owner:
            return
        atexit.unregister(self.close)
        with contextlib.suppress(OSError):
            self.conn.close()
        try:
            self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc.pid)  # the fork deciding a job too
            self.proc.kill()
            self.proc.wait()


@functools.cache
def _helpers(pid: int, thread: int) -> list[_JobHelper]:
    """This thread's helper (a list, so that an ended one is replaced in place). Keyed by
    the pid, since a process forked after its parent started one starts its own."""
    return []


def _helper_of(pid: int, thread: int) -> _JobHelper:
    held = _helpers(pid, thread)
    if not held or not held[0].alive():
        held[:] = [_JobHelper()]
    return held[0]


def _local_worker(conn: Connection) -> None:
    """A local worker's process: forked with its parent's SIGTERM handler, which
    belongs to the parent's run; the default ends the worker at once. A process group
    of its own, so that killing it kills the job it forked too."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    _serve(conn)


def serve_jobs(fd: int) -> None:
    """A helper process's loop (``_serve``) on the socket ``fd``."""
    _serve(Connection(fd))


def _decide_in_fork(task: tuple[Job, Options]) -> Reply:
    """``_decide`` in a fork of this process, which never makes a z3 context itself.

    z3 keeps state across contexts in a process, and a job decided after others could
    search differently: in one of five runs of the whole library at `-j 2`, the
    arm64-16k proof of `eager_no_uninit_read_folio` spent all 9 million units of a
    minimisation trial where a new process needs 4.8, so its note named one more
    assumption as not shown unnecessary. Which jobs a worker gets depends on timing, so
    the result did too. A fork costs about what it saves: the whole library took 350
    CPU-s this way against 369 (one pair run in turn, BENCHMARKS.md). The spec file is
    loaded here first, for every fork to reuse."""
    if not hasattr(os, "fork"):  # pragma: no cover - platforms without fork
        return _decide(task)
    from khospec.engine.freshbv import in_fork

    job, options = task
    with contextlib.suppress(OSError):
        _loaded(job, options)
    data = in_fork(lambda: _pickled(task))
    try:
        return cast(Reply, pickle.loads(data))
    except Exception:  # nothing, or a part: the fork died before it had written its reply
        return Crashed(job.index, f"the process deciding {job.file}::{job.check} ended without a reply")


def _pickled(task: tuple[Job, Options]) -> bytes:
    """A fork's reply, pickled; a reply that does not pickle (a bug in khospec) is a
    crash of its job."""
    try:
        return pickle.dumps(_decide(task))
    except Exception:
        return pickle.dumps(Crashed(task[0].index, traceback.format_exc()))


def _preload() -> None:
    """What every job needs besides its spec file, imported (and the shipped layouts
    parsed) once in the worker, before the forks that decide its jobs: each fork starts
    with it. Nothing here makes a z3 context, so each fork still starts from a z3 that
    has run nothing. Left to each fork, the engine's modules that solving does not
    import first (the interpreter that replays counterexamples, their presentation, the
    machine importer and its layouts) cost every job 30-60 ms again."""
    import khospec.engine.crosscheck
    import khospec.engine.solve
    import khospec.explain
    import khospec.interp  # noqa: F401
    from khospec.machine.importer import shipped_layouts

    shipped_layouts()


def _serve(conn: Connection) -> None:
    """A worker's loop: a job and its options in, its reply out, until None comes or
    the connection closes."""
    _preload()
    while True:
        try:
            task: tuple[Job, Options] | None = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            conn.send(_decide_in_fork(task))
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception:  # the reply does not pickle: a bug in khospec, keep the worker
            conn.send(Crashed(task[0].index, traceback.format_exc()))


def run_on_executor(jobs: list[Job], options: Options, executor: Executor,
                    on_result: Callable[[Result], None] | None = None,
                    on_start: Callable[[str], None] | None = None,
                    ) -> tuple[list[Result], list[str], list[Diagnostic]]:
    """``run_parallel``'s contract, the jobs sent to ``executor`` one task each."""
    done: dict[int, list[Result]] = {}
    internal: list[str] = []
    input_diags: list[Diagnostic] = []
    if on_start is not None:
        for job in jobs:
            for name in job.names:
                on_start(name)
    # a worker may run elsewhere in the file system tree: absolute paths only
    options = replace(options, import_roots=tuple(str(Path(r).resolve()) for r in options.import_roots))
    tasks = [(replace(j, path=Path(j.path).resolve()), options) for j in jobs]
    for _, reply in executor.map_unordered(remote_job, tasks):
        _take(reply, done, internal, input_diags, on_result)
    results = [r for i in sorted(done) for r in done[i]]
    return results, internal, input_diags
