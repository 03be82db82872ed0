"""Progress on long runs, shown on a terminal only (rich)."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as _Bar

from khospec.results import Result


class Progress:
    def __init__(self, stream: TextIO) -> None:
        self._bar = _Bar(
            TextColumn("checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.description}"), console=Console(file=stream), transient=True,
        )
        self._task = self._bar.add_task("", total=None)

    def start(self, total: int) -> None:
        self._bar.update(self._task, total=total)
        self._bar.start()

    def advance(self, r: Result) -> None:
        self._bar.update(self._task, advance=1, description=r.check)

    def stop(self) -> None:
        self._bar.stop()
