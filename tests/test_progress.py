"""The progress display: counts and the estimate of the time left, across plans."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from khospec.progress import Progress
from khospec.results import Result, Verdict


def _result(check: str, strategy: str | None = None, profile: str = "x86_64") -> Result:
    return Result("f.kho", 1, check, strategy, profile, Verdict.PROVED, None, 0.1)


def test_a_second_plan_adds_to_the_first() -> None:
    p = Progress(io.StringIO(), workers=2)
    p.start([(_result("a").name, 4.0), (_result("b").name, None)])
    p.begin(_result("a").name)
    p.advance(_result("a"))
    # the next layout of a fleet (check --layout DIR) plans its own results
    p.start([(_result("c").name, 1.0)])
    task = p._bar.tasks[0]
    assert (task.completed, task.total) == (1, 3)
    assert "about 2 s left" in str(task.description)  # b unknown (2 s) + c (1 s), on 2 workers
    p.advance(_result("b"))
    p.advance(_result("c"))
    assert p._bar.tasks[0].completed == 3
    p.stop()


def _line(p: Progress, width: int) -> str:
    c = Console(width=width, file=io.StringIO(), record=True, color_system=None, force_terminal=True)
    c.print(p._bar.get_renderable())
    return c.export_text()


def test_the_names_in_flight_keep_their_strategy_and_profile() -> None:
    # rich read `[none, x86_64]` as markup and dropped it: two results of one check
    # looked the same
    p = Progress(io.StringIO(), workers=2)
    names = [_result("c", "none", prof).name for prof in ("x86_64", "s390x")]
    p.start([(n, 3.0) for n in names])
    for n in names:
        p.begin(n)
    assert "now: c[none, s390x], c[none, x86_64]" in _line(p, 200)
    p.stop()


@pytest.mark.parametrize("width", [80, 50])
def test_a_narrow_terminal_cuts_the_names_not_the_count(width: int) -> None:
    p = Progress(io.StringIO(), workers=2)
    names = [_result(f"a_long_check_name_{i}", "a_strategy", "arm64-16k").name for i in range(12)]
    p.start([(n, 3.0) for n in names])
    p.begin(names[0])
    p.begin(names[1])
    p.advance(_result("a_long_check_name_5", "a_strategy", "arm64-16k"))
    text = _line(p, width)
    assert text.count("\n") == 1 and len(text.rstrip("\n")) <= width, text
    assert text.startswith("checking ") and " 1/12 0:00:0" in text and text.rstrip().endswith("…"), text
    p.stop()
