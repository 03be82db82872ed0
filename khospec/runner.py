"""Running jobs in worker processes: parallel, and with hard time limits.

Each worker loads spec files itself and decides one job at a time. A worker that
exceeds its job's budget (the solver did not return) is killed and replaced; the job's
results become ``unknown`` with the reason. Results come back in plan order.

``run_on_executor`` sends the same jobs to a khospec.executor instead (a Dask cluster):
each job is a task that loads its spec file where it runs, so the workers must see the
files at the same paths (one machine, or a shared file system). The solver budgets end
every check; the hard time limit, which needs a process to kill, is this module's only.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from khospec.cache import job_name
from khospec.diagnostics import Diagnostic, InputError, SourceCache
from khospec.results import InternalError, Result, Verdict


def _worker(conn: Connection, options: Any) -> None:
    from khospec.api import load, run_job

    programs: dict[str, Any] = {}
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        job = msg
        try:
            if job.file not in programs:
                program, diags = load(job.path, job.file, SourceCache(), options.import_roots)
                if program is None:
                    conn.send(("input", job.index, [d for d in diags if d.is_error]))
                    continue
                programs[job.file] = program
            results = run_job(programs[job.file], job, options)
            conn.send(("ok", job.index, results))
        except InputError as exc:
            conn.send(("input", job.index, exc.diagnostics))
        except InternalError as exc:
            conn.send(("internal", job.index, str(exc)))
        except Exception:  # a bug in khospec: report it, keep the worker
            conn.send(("internal", job.index, traceback.format_exc()))


def _take(kind: str, idx: int, payload: Any, done: dict[int, list[Result]], internal: list[str],
          input_diags: list[Diagnostic], on_result: Callable[[Result], None] | None) -> None:
    """File one worker message ``(kind, job index, payload)`` where it belongs."""
    if kind == "ok":
        done[idx] = payload
        if on_result is not None:
            for r in payload:
                on_result(r)
    elif kind == "input":
        input_diags.extend(payload)
    else:
        internal.append(payload)


class _Slot:
    def __init__(self, ctx: Any, options: Any) -> None:
        parent, child = ctx.Pipe()
        self.conn: Connection = parent
        self.proc = ctx.Process(target=_worker, args=(child, options), daemon=True)
        self.proc.start()
        child.close()
        self.job: Any = None
        self.deadline = 0.0

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def _timeout_results(job: Any, options: Any) -> list[Result]:
    from khospec.api import load

    program, _ = load(job.path, job.file, SourceCache())
    expect = None
    if program is not None:
        expect = next((c.expect for c in program.checks if c.name == job.check), None)
    return [
        Result(job.file, job.line, job.check, job.strategy, p, Verdict.UNKNOWN, expect,
               options.timeout_s, reason="time limit reached: the solver did not return, its process was stopped")
        for p in job.profiles
    ]


def run_parallel(jobs: list[Any], options: Any,
                 on_result: Callable[[Result], None] | None = None,
                 on_start: Callable[[str], None] | None = None,
                 ) -> tuple[list[Result], list[str], list[Diagnostic]]:
    """Run ``jobs`` in the order given (the caller schedules), results in plan order."""
    try:
        ctx: BaseContext = mp.get_context("fork")
    except ValueError:  # pragma: no cover - platforms without fork
        ctx = mp.get_context("spawn")
    n = max(1, min(options.jobs, len(jobs)))
    slots = [_Slot(ctx, options) for _ in range(n)]
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
            slot.conn.send(job)
            if on_start is not None:
                for p in job.profiles:
                    on_start(job_name(job.file, job.check, job.strategy, p))
        else:
            slot.job = None

    for s in slots:
        assign(s)
    try:
        while any(s.job is not None for s in slots):
            busy = [s for s in slots if s.job is not None]
            timeout = max(0.05, min(s.deadline for s in busy) - time.monotonic())
            ready = wait([s.conn for s in busy], timeout=timeout)
            for s in busy:
                if s.conn in ready:
                    try:
                        kind, idx, payload = s.conn.recv()
                    except EOFError:
                        internal.append(f"worker died while checking {s.job.file}::{s.job.check}")
                        s.kill()
                        new = _Slot(ctx, options)
                        slots[slots.index(s)] = new
                        assign(new)
                        continue
                    _take(kind, idx, payload, done, internal, input_diags, on_result)
                    assign(s)
                elif time.monotonic() > s.deadline:
                    job = s.job
                    s.kill()
                    rs = _timeout_results(job, options)
                    done[job.index] = rs
                    if on_result is not None:
                        for r in rs:
                            on_result(r)
                    new = _Slot(ctx, options)
                    slots[slots.index(s)] = new
                    assign(new)
    finally:
        for s in slots:
            try:
                if s.proc.is_alive():
                    s.conn.send(None)
                    s.proc.join(1)
                if s.proc.is_alive():
                    s.kill()
            except (OSError, BrokenPipeError):
                pass
    results = [r for i in sorted(done) for r in done[i]]
    return results, internal, input_diags


@functools.lru_cache(maxsize=16)
def _program(path: str, file: str, import_roots: tuple[str, ...], mtime_ns: int) -> Any:
    """A worker's loaded programs, by file and modification time: the jobs of one file
    load it once, and an edited file is loaded again."""
    from khospec.api import load

    program, diags = load(Path(path), file, SourceCache(), import_roots)
    return program if program is not None else [d for d in diags if d.is_error]


def remote_job(task: tuple[Any, Any]) -> tuple[str, int, Any]:
    """One job, decided wherever the executor runs it: ``(kind, job index, payload)`` as
    the local workers send it."""
    from khospec.api import run_job

    job, options = task
    try:
        loaded = _program(str(job.path), job.file, options.import_roots, os.stat(job.path).st_mtime_ns)
        if isinstance(loaded, list):
            return "input", job.index, loaded
        return "ok", job.index, run_job(loaded, job, options)
    except InputError as exc:
        return "input", job.index, exc.diagnostics
    except InternalError as exc:
        return "internal", job.index, str(exc)
    except OSError as exc:
        return "internal", job.index, f"cannot read {job.path} where the job ran: {exc}"
    except Exception:  # a bug in khospec: report it, keep the worker
        return "internal", job.index, traceback.format_exc()


def run_on_executor(jobs: list[Any], options: Any, executor: Any,
                    on_result: Callable[[Result], None] | None = None,
                    on_start: Callable[[str], None] | None = None,
                    ) -> tuple[list[Result], list[str], list[Diagnostic]]:
    """``run_parallel``'s contract, the jobs sent to ``executor`` one task each."""
    done: dict[int, list[Result]] = {}
    internal: list[str] = []
    input_diags: list[Diagnostic] = []
    if on_start is not None:
        for job in jobs:
            for p in job.profiles:
                on_start(job_name(job.file, job.check, job.strategy, p))
    # a worker may run elsewhere in the file system tree: absolute paths only
    options = replace(options, import_roots=tuple(str(Path(r).resolve()) for r in options.import_roots))
    tasks = [(replace(j, path=Path(j.path).resolve()), options) for j in jobs]
    for _, (kind, idx, payload) in executor.map_unordered(remote_job, tasks):
        _take(kind, idx, payload, done, internal, input_diags, on_result)
    results = [r for i in sorted(done) for r in done[i]]
    return results, internal, input_diags
