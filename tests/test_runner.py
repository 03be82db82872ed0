"""The runner's task for executors (``remote_job``): decided in this process on the main
thread, and in a helper process of the thread's own on any other thread (a Dask worker's)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from khospec import runner
from khospec.jobs import Job, Options
from tests.conftest import ROOT
from tests.helpers import processes_left

SPEC = ROOT / "spec" / "split.kho"
# a claim refuted, with a counterexample, in a fraction of a second
TASK = (Job(SPEC, "spec/split.kho", "split_from_pfn_0", 75, None, ("x86_64",)), Options(cache=False, jobs=1))


def _this_thread() -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


def _plain(reply: runner.Reply) -> Any:
    assert isinstance(reply, runner.Decided), reply
    assert [r.verdict.name for r in reply.results] == ["REFUTED"] and reply.results[0].counterexample
    return [dataclasses.replace(r, time_s=0.0) for r in reply.results]


def test_a_job_from_another_thread_is_decided_in_a_helper_process_as_on_the_main_thread() -> None:
    here = runner.remote_job(TASK)
    with ThreadPoolExecutor(1) as pool:
        there = pool.submit(runner.remote_job, TASK).result()
        thread = pool.submit(_this_thread).result()
        helper = runner._helpers(*thread)[0]
        assert helper.alive() and helper.proc.pid != os.getpid()
        assert _plain(there) == _plain(here)
        # the same thread's next job goes to the same helper
        again = pool.submit(runner.remote_job, TASK).result()
        assert runner._helpers(*thread)[0] is helper and _plain(again) == _plain(here)
        helper.close()
    assert helper.proc.returncode is not None


def test_a_helper_that_died_is_a_crash_of_its_job_and_is_replaced() -> None:
    with ThreadPoolExecutor(1) as pool:
        thread = pool.submit(_this_thread).result()
        first = pool.submit(runner._helper_of, *thread).result()
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
        crashed = pool.submit(first.decide, TASK).result()
        assert isinstance(crashed, runner.Crashed)
        assert "the helper process deciding spec/split.kho::split_from_pfn_0 ended" in crashed.text
        replaced = pool.submit(runner.remote_job, TASK).result()
        assert isinstance(replaced, runner.Decided) and runner._helpers(*thread)[0] is not first
        runner._helpers(*thread)[0].close()


def test_a_spec_path_the_helper_cannot_read_is_reported(tmp_path: Path) -> None:
    task = (dataclasses.replace(TASK[0], path=tmp_path / "gone.kho"), TASK[1])
    with ThreadPoolExecutor(1) as pool:
        reply = pool.submit(runner.remote_job, task).result()
        thread = pool.submit(_this_thread).result()
        runner._helpers(*thread)[0].close()
    assert isinstance(reply, runner.Crashed) and "cannot read" in reply.text and "gone.kho" in reply.text


# run_parallel in a process that sends itself SIGTERM from inside the first worker's fork
_TERM_IN_FORK = """
import os, signal, sys
from pathlib import Path
from khospec import runner
from khospec.jobs import Job, Options

def hook():
    if not sent:
        sent.append(1)
        os.kill(os.getpid(), signal.SIGTERM)

sent = []
os.register_at_fork(after_in_parent=hook)
job = Job(Path(sys.argv[1]), "spec/split.kho", "split_from_pfn_0", 75, None, ("x86_64",))
runner.run_parallel([job, job], Options(cache=False, jobs=2))
print("ran to the end")
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers in /proc")
def test_sigterm_during_a_workers_fork_still_ends_the_run(tmp_path: Path) -> None:
    """Python drops the exception a signal handler raises inside a fork hook (logging
    has one): SIGTERM then went unheeded and the run went on to its end. The command
    line names tmp_path, so the forked workers are found by it too."""
    proc = subprocess.run([sys.executable, "-c", _TERM_IN_FORK, str(SPEC), str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (128 + signal.SIGTERM, ""), proc.stderr
    assert processes_left(tmp_path) == []


def test_a_worker_decides_each_job_in_a_fork_that_gives_the_same_reply() -> None:
    """The fork's reply is the one deciding the job here gives, a counterexample
    included (it comes back pickled, as a worker's reply does)."""
    assert _plain(runner._decide_in_fork(TASK)) == _plain(runner._decide(TASK))


def test_the_fork_is_another_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def where(task: tuple[Job, Options]) -> runner.Reply:
        return runner.Crashed(task[0].index, str(os.getpid()))

    monkeypatch.setattr(runner, "_decide", where)
    reply = runner._decide_in_fork(TASK)
    assert isinstance(reply, runner.Crashed) and int(reply.text) != os.getpid()


def test_a_fork_that_dies_is_a_crash_of_its_job(monkeypatch: pytest.MonkeyPatch) -> None:
    def dies(task: tuple[Job, Options]) -> runner.Reply:
        os._exit(9)

    monkeypatch.setattr(runner, "_decide", dies)
    reply = runner._decide_in_fork(TASK)
    assert isinstance(reply, runner.Crashed)
    assert reply.text == "the process deciding spec/split.kho::split_from_pfn_0 ended without a reply"


def test_a_worker_imports_before_forking_all_a_job_needs() -> None:
    """The modules a job needs are imported in the worker (``_preload``), so that no fork
    imports them again: a trace refutation, presented and replayed, imports nothing more
    of khospec in a new process where the worker's preparation has run."""
    script = """
import sys
from pathlib import Path
from khospec import runner
from khospec.jobs import Job, Options

task = (Job(Path("spec/handover.kho"), "spec/handover.kho", "restore_accepts_pages_chunk", 1, "none",
            ("x86_64",)), Options(cache=False, jobs=1))
runner._preload()
runner._loaded(*task)
before = set(sys.modules)
reply = runner._decide(task)
assert reply.results[0].verdict.name == "REFUTED" and reply.results[0].replay == "confirmed", reply
print(sorted(m for m in set(sys.modules) - before if m.startswith("khospec")))
"""
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
