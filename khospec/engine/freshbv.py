"""A pure bit-vector query on fresh QF_BV solvers, in a fresh process.

Why a process: z3's SAT-based bit-vector solver does not give the same search for the
same formulas, seed and budget in every process. In one khospec worker, after other
checks had run, the same query with the same seed and resource limit spent a different
number of units and returned a different model than in a worker that had run nothing
before (`split_partition_huge_range` on 5 of 9 profiles). The state it depends on
outlives z3 contexts, so a new context is not enough. A process that has run no z3
search reads the query as SMT-LIB text and starts from the same state every time: its
answer, its model and the units it spent depend on the text alone.

Such a process is forked, not started: starting Python and importing z3 took 0.09 s a
query, about as long as the search of most of them. The parent (``solve_fresh``) keeps
one helper process per process and thread (``Zygote``): a new interpreter that imports z3, never
uses it, and forks a child per query. A child has the helper's memory, so its z3 has run
nothing either. The child (``_answer``) tries the query one trial after another, each on
a new solver with its own seed and SAT phase selection, within the given resource units;
it stops at the first trial that decides the query. Without ``os.fork`` the helper
answers one query itself and ends.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import z3

# the wall-clock seconds a query may take beyond its units' nominal time
WALL_BASE_S = 5.0


@dataclass(frozen=True)
class Trial:
    """One try at the query: a new solver with this seed and phase selection (z3's SAT
    ``phase``; "caching" is its default), stopped after ``units`` resource units."""

    seed: int
    phase: str
    units: int


@dataclass(frozen=True)
class FreshAnswer:
    result: str  # "sat" | "unsat" | "unknown"
    units: int  # resource units the trials spent in all
    model: Any  # z3.ModelRef in the caller's context when result == "sat", else None


class ZygoteGone(Exception):
    """The helper process ended, or did not answer within the wall-clock limit."""


class Zygote:
    """The helper process of one process: a request (a JSON line with the query's length
    in bytes, then the query) goes in, one JSON line comes out per request."""

    def __init__(self, executable: str) -> None:
        # a fixed hash seed: nothing in the helper's Python varies from one run to the
        # next; a session of its own, so that one kill ends it and the child it forked
        self.proc = subprocess.Popen([executable, os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env={**os.environ, "PYTHONHASHSEED": "0"},
                                     start_new_session=True)
        self.owner = os.getpid()
        atexit.register(self.close)

    def ask(self, request: dict[str, Any], text: str, wall_s: float) -> dict[str, Any]:
        body = text.encode()
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps({**request, "bytes": len(body)}).encode() + b"\n" + body)
            stdin.flush()
            line = _line_within(stdout, time.monotonic() + wall_s)
            return dict(json.loads(line))
        except (OSError, ValueError, ZygoteGone) as e:
            self.end()
            raise ZygoteGone(str(e)) from e

    def close(self) -> None:
        """At exit: the helper ends when its input does; killed if it does not. Only by
        the process that started it (a forked worker inherits the exit hooks too)."""
        if os.getpid() != self.owner:
            return
        self._close_pipes()
        try:
            self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self.end()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def end(self) -> None:
        """Kill the helper and a child it may be running (its session), reap it, close
        its pipes; its exit hook goes too (a replaced helper leaves nothing behind)."""
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._close_pipes()
        atexit.unregister(self.close)

    def _close_pipes(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _line_within(stream: IO[bytes], deadline: float) -> bytes:
    """One line of ``stream``, read straight from its descriptor, by ``deadline``."""
    fd, buf = stream.fileno(), b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise ZygoteGone("no answer within the wall-clock limit")
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise ZygoteGone("the helper process ended")
        buf += chunk
    return buf.split(b"\n", 1)[0]


@functools.cache
def _zygote(pid: int, thread: int, executable: str) -> list[Zygote]:
    """This thread's helper (a list, so that a dead one is replaced in place). Keyed by
    the pid, since a worker forked after its parent started one starts its own, and by
    the thread, since a Dask worker runs jobs in threads and a helper answers one
    request at a time."""
    return []


def _helper(executable: str) -> Zygote:
    held = _zygote(os.getpid(), threading.get_ident(), executable)
    if not held or not held[0].alive():
        held[:] = [Zygote(executable)]
    return held[0]


def solve_fresh(facts: list[Any], ctx: z3.Context, units: int, schedule: list[Trial],
                wall_ms_per_unit: float) -> FreshAnswer:
    """Decide the conjunction of ``facts`` (pure QF_BV) within ``units`` resource units,
    trying ``schedule`` in order, in a child of this thread's helper. A helper that
    cannot start, dies or answers late, or an answer in a form not understood, is an
    unknown answer with nothing spent: the caller then asks its own solver."""
    # a solver only to print the facts: its sexpr() is the declarations and assertions
    # the child parses
    printer = z3.Solver(ctx=ctx)
    printer.add(*facts)
    request = {"units": units, "schedule": [[t.seed, t.phase, t.units] for t in schedule],
               "wall_ms_per_unit": wall_ms_per_unit}
    # the units decide; the wall clock only stops a child that stops counting (and pays
    # for starting the helper)
    wall_s = WALL_BASE_S + units * wall_ms_per_unit / 1000
    try:
        reply = _helper(sys.executable).ask(request, printer.sexpr(), wall_s)
        result, spent, values = str(reply["result"]), int(reply["units"]), reply["model"]
    except (OSError, ZygoteGone, ValueError, KeyError, TypeError):
        return FreshAnswer("unknown", 0, None)
    if result != "sat":
        return FreshAnswer(result if result == "unsat" else "unknown", spent, None)
    # a sat answer without a usable model (see _values) cannot show a counterexample
    model = _model(values, ctx)
    return FreshAnswer("sat", spent, model) if model is not None else FreshAnswer("unknown", spent, None)


def _model(values: Any, ctx: z3.Context) -> Any:
    """The child's constants as a model in ``ctx``: the same names and sorts name the
    same constants there, since a khospec query has only named constants."""
    if not isinstance(values, list):
        return None
    m = z3.Model(ctx)
    for name, width, value in values:
        if width == 0:
            m.update_value(z3.Bool(name, ctx), z3.BoolVal(bool(value), ctx))
        else:
            m.update_value(z3.BitVec(name, int(width), ctx), z3.BitVecVal(int(value), int(width), ctx))
    return m


def rlimit_count(s: z3.Solver) -> int:
    """The resource units z3 has counted in the solver's context so far."""
    st = s.statistics()
    # the key is absent until the context has done any work
    return int(st.get_key_value("rlimit count")) if "rlimit count" in list(st.keys()) else 0


def _values(m: Any) -> list[list[Any]] | None:
    """The model as [name, width (0 for a bool), value] rows, sorted so that the reply
    is the same text for the same model; None if it gives anything but constants with
    values (a pure bit-vector query has nothing else)."""
    out: list[list[Any]] = []
    for d in m.decls():
        v = m[d]
        if d.arity() != 0:
            return None
        if z3.is_bool(v):
            out.append([d.name(), 0, z3.is_true(v)])
        elif z3.is_bv_value(v):
            out.append([d.name(), v.size(), v.as_long()])
        else:
            return None
    return sorted(out)


def _answer(request: dict[str, Any], text: str) -> dict[str, Any]:
    """The child's work: try the trials in order on the query ``text``; the result, the
    units spent and the model's values."""
    left = int(request["units"])
    per_unit = float(request["wall_ms_per_unit"])
    spent = 0
    result, values = "unknown", None
    for seed, phase, cap in request["schedule"]:
        # a trial's share of the schedule, never more than what is left of the budget
        cap = min(int(cap), left - spent)
        if cap <= 0:
            break
        # a new solver per trial: none starts from what an earlier one learnt
        s = z3.SolverFor("QF_BV")
        s.set("random_seed", int(seed))
        if phase != "caching":
            # z3's default left as it is: the same search as a solver never told
            s.set("phase", str(phase))
        s.from_string(text)
        # parsing counts units too: only the search is charged
        before = rlimit_count(s)
        s.set("rlimit", cap)
        s.set("timeout", max(1, int(cap * per_unit)))
        r = s.check()
        spent += rlimit_count(s) - before
        if r == z3.sat:
            result, values = "sat", _values(s.model())
            break
        if r == z3.unsat:
            result = "unsat"
            break
    return {"result": result, "units": spent, "model": values}


def _reply(request: dict[str, Any], text: str) -> bytes:
    """``_answer`` as the line the parent reads; a failure (z3 rejecting an option, say)
    is a line the parent does not take as an answer."""
    try:
        return json.dumps(_answer(request, text)).encode() + b"\n"
    except Exception as e:  # any failure is an unknown answer upstream
        return json.dumps({"error": f"{type(e).__name__}: {e}"}).encode() + b"\n"


def in_fork(compute: Callable[[], bytes]) -> bytes:
    """``compute()`` in a forked child, its bytes read back through a pipe: this
    process's z3 stays untouched. A child that dies early gives what it wrote (perhaps
    nothing): the caller tells a whole answer from a part. The runner decides each job
    this way too."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            data = compute()
            while data:
                data = data[os.write(w, data):]
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks)


def _in_child(request: dict[str, Any], text: str) -> bytes:
    """``_reply`` computed in a forked child (``in_fork``); a child that dies without a
    line gives an error line."""
    data = in_fork(lambda: _reply(request, text))
    return data if data.endswith(b"\n") else b'{"error": "the child ended without an answer"}\n'


def serve() -> None:
    """The helper: for every request on standard input, one line on standard output,
    until the input ends."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while head := inp.readline():
        request = json.loads(head)
        text = inp.read(int(request["bytes"])).decode()
        if not hasattr(os, "fork"):
            out.write(_reply(request, text))
            out.flush()
            return
        out.write(_in_child(request, text))
        out.flush()


if __name__ == "__main__":
    serve()
