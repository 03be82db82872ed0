"""Where batches of independent work run: in this process, a pool of local worker
processes, or an existing Dask distributed cluster.

Every executor takes a function (importable at module level, so that a worker process or
a Dask worker can load it) and an iterable of batches, and yields ``(batch index,
result)`` pairs as batches finish, in any order. At most a few batches per worker are in
flight, so a fleet of any size is streamed: neither the inputs nor the results of batches
not yet asked for are held. Callers that need a stable order sort by the index; the
answers never depend on which worker ran a batch or when.

Dask is optional (``pip install 'khospec[dist]'``) and imported only when a scheduler
address is given. A worker lost mid-run is Dask's to handle: the scheduler gives its
unfinished tasks to the remaining workers, and ``retries`` covers a task that failed
with its worker.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing.context import BaseContext
from typing import Any, Protocol, TypeVar

B = TypeVar("B")
R = TypeVar("R")

# batches in flight per worker: enough to keep each busy while results travel back
_IN_FLIGHT_PER_WORKER = 3


class ExecutorError(Exception):
    """The executor cannot start or lost its cluster; the message says what to do."""


class Executor(Protocol):
    """Runs ``fn`` on each batch; yields ``(index, fn(batch))`` as batches finish."""

    workers: int
    description: str

    def map_unordered(self, fn: Callable[[B], R], batches: Iterable[B]) -> Iterator[tuple[int, R]]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """One worker: this process. No pickling, and a traceback stays readable."""

    workers = 1
    description = "in process"

    def map_unordered(self, fn: Callable[[B], R], batches: Iterable[B]) -> Iterator[tuple[int, R]]:
        for i, b in enumerate(batches):
            yield i, fn(b)

    def close(self) -> None:
        pass


def _drain(
    submit: Callable[[B], Future[R]], batches: Iterable[B], limit: int
) -> Iterator[tuple[int, R]]:
    """Keep ``limit`` batches in flight; yield each result as its batch finishes."""
    pending: dict[Future[R], int] = {}
    it = enumerate(batches)
    exhausted = False
    while True:
        while not exhausted and len(pending) < limit:
            nxt = next(it, None)
            if nxt is None:
                exhausted = True
                break
            pending[submit(nxt[1])] = nxt[0]
        if not pending:
            return
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for f in done:
            yield pending.pop(f), f.result()


class LocalExecutor:
    """``workers`` local processes (fork where the platform has it)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"{workers} local worker process{'es' if workers != 1 else ''}"
        ctx: BaseContext
        try:
            ctx = mp.get_context("fork")
        except ValueError:  # pragma: no cover - platforms without fork
            ctx = mp.get_context("spawn")
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)

    def map_unordered(self, fn: Callable[[B], R], batches: Iterable[B]) -> Iterator[tuple[int, R]]:
        yield from _drain(lambda b: self._pool.submit(fn, b), batches, self.workers * _IN_FLIGHT_PER_WORKER)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """The workers of a running Dask distributed scheduler at ``address``."""

    def __init__(self, address: str, connect_timeout_s: float = 20.0) -> None:
        try:
            import distributed
        except ImportError as exc:
            raise ExecutorError(
                "--scheduler needs Dask distributed; install it with "
                "`pip install 'khospec[dist]'`"
            ) from exc
        self._dist: Any = distributed
        try:
            self._client: Any = self._dist.Client(address, timeout=connect_timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
        info = self._client.scheduler_info()["workers"].values()
        self.workers = max(1, sum(int(w.get("nthreads", 1)) for w in info))
        self.description = (
            f"Dask scheduler {address} ({self.workers} worker thread{'s' if self.workers != 1 else ''})"
        )

    def map_unordered(self, fn: Callable[[B], R], batches: Iterable[B]) -> Iterator[tuple[int, R]]:
        it = enumerate(batches)
        index: dict[Any, int] = {}

        def submit(i: int, b: B) -> Any:
            # pure=False: two equal batches (the same logs twice) are still two tasks;
            # retries: a task whose worker died is run again elsewhere
            f = self._client.submit(fn, b, pure=False, retries=3)
            index[f] = i
            return f

        for i, b in itertools.islice(it, self.workers * _IN_FLIGHT_PER_WORKER):
            submit(i, b)
        if not index:
            return
        # this client is not the process' default one: as_completed must be given its loop
        ac = self._dist.as_completed(list(index), loop=self._client.loop)
        for f in ac:
            yield index.pop(f), f.result()
            nxt = next(it, None)
            if nxt is not None:
                ac.add(submit(*nxt))

    def close(self) -> None:
        self._client.close()


def make_executor(workers: int, scheduler: str | None = None) -> Executor:
    """The executor a command line asks for: Dask if ``scheduler``, else local."""
    if scheduler:
        return DaskExecutor(scheduler)
    if workers <= 1:
        return InlineExecutor()
    return LocalExecutor(workers)


__all__ = [
    "DaskExecutor",
    "Executor",
    "ExecutorError",
    "InlineExecutor",
    "LocalExecutor",
    "make_executor",
]
