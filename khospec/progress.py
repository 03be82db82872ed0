"""Progress on long runs, shown on a terminal only (rich): how many results are done,
which are being solved now, and an estimate of the time left from the times the
previous run took (the verdict cache keeps them)."""

from __future__ import annotations

import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.progress import Progress as _Bar
from rich.table import Column
from rich.text import Text

from khospec.results import Result

# a result with no time on record is guessed at this many seconds
UNKNOWN_S = 2.0


class Progress:
    def __init__(self, stream: TextIO, workers: int = 1) -> None:
        # On a narrow terminal rich narrows the columns that may wrap: the bar and the
        # description give way, the label, the count and the time never do.
        fixed = Column(no_wrap=True)
        self._bar = _Bar(
            TextColumn("checking", table_column=fixed), BarColumn(bar_width=20),
            MofNCompleteColumn(table_column=fixed), TimeElapsedColumn(table_column=fixed),
            _Description(), console=Console(file=stream), transient=True,
        )
        self._task = self._bar.add_task("", total=None)
        self._workers = max(1, workers)
        self._expected: dict[str, float] = {}
        self._running: dict[str, float] = {}  # name -> when it started
        self._total = 0
        self._started = False

    def start(self, plan: list[tuple[str, float | None]]) -> None:
        """``plan``: each result's name and its time in the previous run, if known. A
        later plan (the next layout of a fleet, `check --layout DIR`) adds to the first."""
        self._expected.update({name: (t if t is not None else UNKNOWN_S) for name, t in plan})
        self._total += len(plan)
        self._bar.update(self._task, total=self._total)
        if not self._started:
            self._bar.start()
            self._started = True
        self._show()

    def begin(self, name: str) -> None:
        self._running[name] = time.monotonic()
        self._show()

    def advance(self, r: Result) -> None:
        name = r.name
        self._running.pop(name, None)
        self._expected.pop(name, None)
        self._bar.update(self._task, advance=1)
        self._show()

    def _show(self) -> None:
        now = time.monotonic()
        left = sum(max(self._expected.get(n, UNKNOWN_S) - (now - t0), 0.0) for n, t0 in self._running.items())
        left += sum(t for n, t in self._expected.items() if n not in self._running)
        names = sorted(n.split("::", 1)[-1] for n in self._running)  # check[strategy, profile]
        flight = ", ".join(names[:2]) + (f" (+{len(names) - 2})" if len(names) > 2 else "")
        eta = f"about {_duration(left / self._workers)} left"
        self._bar.update(self._task, description=f"{eta}; now: {flight}" if flight else eta)

    def stop(self) -> None:
        self._bar.stop()


class _Description(ProgressColumn):
    """The estimate and the results in flight, as plain text: a result's name ends in
    ``[strategy, profile]``, which rich would read as markup and drop. One line, cut
    with an ellipsis where the terminal is too narrow for it."""

    def render(self, task: Task) -> Text:
        return Text(task.description, no_wrap=True, overflow="ellipsis")


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.0f} s"
    return f"{s / 60:.0f} min"
