"""The progress display: counts and the estimate of the time left, across plans."""

from __future__ import annotations

import io

from khospec.progress import Progress
from khospec.results import Result, Verdict


def _result(check: str) -> Result:
    return Result("f.kho", 1, check, None, "x86_64", Verdict.PROVED, None, 0.1)


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
