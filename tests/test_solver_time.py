"""bench/solver_time.py: its wrappers time every solver call and change no result.

Its first version named the check from the stack frames' locals, which kept z3 terms
alive longer; the terms made after them got other ids, z3's search followed, and three
of these four counterexamples came out otherwise. Both runs are new processes: the
wrappers replace engine functions, and z3 keeps state across the contexts of a process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

BENCH = ROOT / "bench" / "solver_time.py"
SELECTION = ["spec/handover.kho", "--check", "restore_accepts_pages_chunk", "--strategy", "none"]


def _results(report: str) -> list[dict[str, Any]]:
    rows = json.loads(report)["results"]
    return [{k: v for k, v in r.items() if k not in ("time_s", "cached")} for r in rows]


def _run(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``argv`` in a new Python process at the repository's root, with a cache of its own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KHOSPEC_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_timed_run_gives_the_plain_runs_results(tmp_path: Path) -> None:
    timed_json = tmp_path / "timed.json"
    # with bitwuzla timed on every query too where it is installed (not on macOS): the
    # export runs in a z3 context of its own, so the results stay the plain run's
    second = ["--bitwuzla"] if importlib.util.find_spec("bitwuzla") else []
    timed = _run(tmp_path, str(BENCH), *SELECTION, "--jobs", "1", "--json", str(timed_json), *second)
    assert timed.returncode == 0, timed.stderr
    plain = _run(tmp_path, "-m", "khospec", "check", *SELECTION, "--jobs", "1", "--no-cache", "--format", "json")
    assert plain.returncode == 0, plain.stderr
    results = _results(timed_json.read_text())
    assert len(results) == 4
    assert results == _results(plain.stdout)

    head = re.match(r"(\d+) results in [\d.]+ s wall at -j 1 \(exit 0\); (\d+) solver calls, ([\d.]+) s in them",
                    timed.stdout)
    assert head is not None, timed.stdout
    assert int(head[1]) == 4 and int(head[2]) > 0
    # every refutation's counterexample was shaped: its shortest violation asked, then
    # the readability steps
    assert re.search(r"^ +[\d.]+ s +\d+ +[\d.]+% +_shortest sat", timed.stdout, re.M), timed.stdout
    assert re.search(r"^ +[\d.]+ s +_roundest for refuted$", timed.stdout, re.M), timed.stdout
    if second:
        # every call timed on both: the last row sums them, as many calls as the head says
        total = re.search(r"^ +[\d.]+ +[\d.]+ +[\d.]+ +(\d+) +\d+  in all$", timed.stdout, re.M)
        assert total is not None and total[1] == head[2], timed.stdout
        assert "DISAGREEMENT" not in timed.stdout


def test_bad_input_is_khospecs_error_and_exit_code(tmp_path: Path) -> None:
    spec = tmp_path / "bad.kho"
    spec.write_text("check x: nosuch(1)\n  for x86_64\n")
    run = _run(tmp_path, str(BENCH), str(spec))
    assert run.returncode == 2
    assert run.stdout == ""
    assert "error[KHO210]: unknown function `nosuch`" in run.stderr
