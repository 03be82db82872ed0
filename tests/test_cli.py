"""The command line as a user meets it: exit codes, the JSON contract, bad input."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.helpers import processes_left, processes_naming

BASIC = "tests/golden/specs/basic.kho"


def test_version() -> None:
    r = run_cli("--version")
    assert r.code == 0
    assert r.out.startswith("khospec ")


def test_check_table_and_exit_code() -> None:
    r = run_cli("check", BASIC, "--jobs", "1")
    assert r.code == 0, r.out + r.err
    assert "wraps" in r.out and "proved" in r.out and "refuted" in r.out
    assert "as expected, 0 not" in r.out


def test_json_contract() -> None:
    r = run_cli("check", BASIC, "--format", "json", "--jobs", "1")
    assert r.code == 0
    doc = json.loads(r.out)
    assert set(doc) >= {"tool", "version", "z3_version", "results", "summary"}
    assert doc["tool"] == "khospec"
    for res in doc["results"]:
        assert set(res) >= {"file", "line", "check", "strategy", "profile", "verdict",
                            "expected", "met", "time_s"}
        assert res["verdict"] in ("proved", "holds_to_depth", "refuted", "vacuous", "unknown")
        if res["verdict"] == "proved":
            assert "assumptions_used" in res
        if res["verdict"] == "refuted":
            cx = res["counterexample"]
            assert set(cx) >= {"layout", "chunks", "trace", "violated"}
            assert res["replay"].startswith("confirmed")


def test_unmet_expectation_exits_1(tmp_path: Path) -> None:
    spec = tmp_path / "wrong.kho"
    spec.write_text("check wrong: 1 + 1 == 3\n  for x86_64\n  expect proved\n")
    r = run_cli("check", str(spec))
    assert r.code == 1
    assert "MISMATCH" in r.out


def test_contradictory_assumptions_are_vacuous() -> None:
    r = run_cli("check", "tests/golden/specs/vacuous.kho", "--format", "json")
    doc = json.loads(r.out)
    assert [x["verdict"] for x in doc["results"]] == ["vacuous"]
    assert r.code == 0  # it expects vacuous


@pytest.mark.parametrize(
    "content,code",
    [
        (b"\x00\x01\x02", "KHO102"),
        (b"check c: \xff\xfe", "KHO101"),
        (b"check c: " + b"(" * 300 + b"1" + b")" * 300, "KHO104"),
        (b"check c: 1 +", "KHO112"),
        (b"fn f( -> int = 1", "KHO111"),
        (b"check c: nosuch == 1", "KHO210"),
        (b"check c: 1 + true", "KHO301"),
    ],
)
def test_bad_input_is_located_never_a_traceback(tmp_path: Path, content: bytes, code: str) -> None:
    spec = tmp_path / "bad.kho"
    spec.write_bytes(content)
    r = run_cli("check", str(spec))
    assert r.code == 2
    assert f"error[{code}]" in r.err
    assert f"{spec}:1:" in r.err
    assert "Traceback" not in r.err + r.out


def test_usage_errors_exit_2() -> None:
    assert run_cli("check").code == 2
    assert run_cli("check", "does/not/exist.kho").code == 2
    assert run_cli("nonsense").code == 2
    assert run_cli("check", BASIC, "--timeout", "0").code == 2


def test_filters() -> None:
    r = run_cli("check", BASIC, "--check", "wraps", "--format", "json")
    doc = json.loads(r.out)
    assert {x["check"] for x in doc["results"]} == {"wraps"}


def test_explain() -> None:
    r = run_cli("explain", f"{BASIC}::not_monotone")
    assert r.code == 0
    assert "refuted" in r.out and "violated" in r.out


def test_reruns_give_identical_results() -> None:
    """Verdicts, cores and counterexamples do not depend on the run: two processes with
    different hash seeds print the same JSON, times aside."""
    import json
    import os
    import subprocess
    import sys

    def run(seed: str) -> list[dict[str, object]]:
        cmd = [sys.executable, "-m", "khospec", "check", "spec/deferred_init.kho", "spec/split.kho",
               "--check", "none_restore_reads_initialized", "--check", "split_from_pfn_0",
               "--check", "split_62_66_gib", "--profile", "x86_64", "--profile", "arm64-64k",
               "--format", "json", "--no-cache"]  # both solved, not the second read back
        out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                             env={**os.environ, "PYTHONHASHSEED": seed})
        assert out.returncode == 0, out.stderr
        results: list[dict[str, object]] = json.loads(out.stdout)["results"]
        for r in results:
            r.pop("time_s")
        return results

    first = run("1")
    assert any(r["verdict"] == "refuted" for r in first) and any(r["verdict"] == "proved" for r in first)
    assert run("2") == first


def test_a_profile_verdict_does_not_depend_on_the_other_profiles() -> None:
    """Each profile is solved in a z3 context of its own: the same result, counterexample
    included, whether the profile is checked alone or after others."""
    def run(*profiles: str) -> dict[str, dict[str, object]]:
        args = [a for p in profiles for a in ("--profile", p)]
        r = run_cli("check", "spec/split.kho", "--check", "split_from_pfn_0", *args, "--format", "json", "-j", "1",
                    "--no-cache")
        out: dict[str, dict[str, object]] = {}
        for res in json.loads(r.out)["results"]:
            res.pop("time_s")
            out[res["profile"]] = res
        return out

    alone = run("arm64-64k")
    after = run("x86_64", "ppc64-4k", "arm64-64k")
    assert alone["arm64-64k"]["verdict"] == "refuted"
    assert alone["arm64-64k"] == after["arm64-64k"]


@pytest.mark.parametrize("solver", ["bitwuzla", "cvc5"])
def test_cross_check_agrees_on_every_query(solver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each second solver on its own, on every query of a small spec."""
    from khospec.engine import crosscheck

    pytest.importorskip(solver)
    real = crosscheck.solvers()
    monkeypatch.setattr(crosscheck, "solvers", lambda: [s for s in real if s[0] == solver])
    r = run_cli("check", "tests/golden/specs/basic.kho", "--cross-check", "--format", "json", "-j", "1")
    assert r.code == 0, r.err
    results = json.loads(r.out)["results"]
    assert results
    for res in results:
        assert f"{solver} agrees ({'unsat' if res['verdict'] == 'proved' else 'sat'})" in res["notes"], res


def test_cross_check_changes_no_verdict_nor_counterexample() -> None:
    """The export works in a z3 context of its own, so the checking context's terms and
    hence z3's search are the same with and without --cross-check."""
    def run(*extra: str) -> list[dict[str, object]]:
        r = run_cli("check", "tests/golden/specs/basic.kho", "--format", "json", "-j", "1", *extra)
        results: list[dict[str, object]] = json.loads(r.out)["results"]
        for res in results:
            res.pop("time_s")
            res.pop("notes", None)
        return results

    assert run("--cross-check") == run()


def test_cross_check_disagreement_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from khospec.engine import crosscheck

    flip = {"sat": "unsat", "unsat": "sat"}

    def wrong(verdict: Callable[[str, int], str | None]) -> Callable[[str, int], str | None]:
        def answer(smt2: str, ms: int) -> str | None:
            a = verdict(smt2, ms)  # None (absent: no bitwuzla wheel on macOS) and unknown stay
            return flip.get(a, a) if a is not None else None
        return answer

    real = crosscheck.solvers()
    monkeypatch.setattr(crosscheck, "solvers", lambda: [(name, wrong(f)) for name, f in real])
    r = run_cli("check", "tests/golden/specs/basic.kho", "--check", "wraps", "--cross-check", "-j", "1")
    assert r.code == 3
    assert "second solver" in r.err and re.search(r"z3 says unsat, (bitwuzla|cvc5) says sat", r.err)


@pytest.mark.parametrize("command", ["explain", "report"])
def test_explain_and_report_exit_3_on_an_internal_error(command: str, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    # the result the bug cost is missing: not "no such check" (2) nor "nothing to report" (1)
    from khospec import runner
    from khospec.results import InternalError

    def broken(*_: object) -> list[object]:
        raise InternalError("the counterexample does not replay")

    monkeypatch.setattr(runner, "_solve_job", broken)
    monkeypatch.setenv("KHOSPEC_CACHE_DIR", str(tmp_path))  # no cached result to stand in
    r = run_cli(command, "tests/golden/specs/basic.kho::wraps")
    assert r.code == 3, r.err
    assert "internal error" in r.err and "the counterexample does not replay" in r.err


def test_cross_check_asks_cvc5_when_bitwuzla_cannot_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    from khospec.engine import crosscheck

    real = dict(crosscheck.solvers())
    monkeypatch.setattr(crosscheck, "solvers", lambda: [("bitwuzla", lambda smt2, ms: "unknown"),
                                                       ("cvc5", real["cvc5"])])
    r = run_cli("check", "tests/golden/specs/basic.kho", "--check", "wraps", "--cross-check",
                "--format", "json", "-j", "1")
    assert r.code == 0, r.err
    [res] = json.loads(r.out)["results"]
    assert "cvc5 agrees (unsat) after bitwuzla could not decide" in res["notes"]


def test_explain_shows_what_each_step_changed() -> None:
    r = run_cli("explain", "spec/handover.kho::order_survives_deserialize_first", "--profile", "x86_64")
    assert r.code == 0, r.err
    steps = r.out.split("\n  2. memmap_init\n")
    assert len(steps) == 2
    # kho_memory_init writes the head's magic and order into page->private ...
    assert "private=0 ->" not in steps[0] and "private=0x4b484f50" in steps[0]
    # ... and memmap_init, running after it in this variant, wipes it
    after = steps[1].split("\n  3.")[0]
    # (magic KHOP in the high half, the chunk's order, whichever the solver chose, in the low)
    assert re.search(r"private=0x4b484f50[0-9a-f]{8}\} -> \{init=true", after), after
    assert after.rstrip().endswith("private=0}")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers in /proc")
def test_sigterm_ends_the_workers_too(tmp_path: Path) -> None:
    """`timeout` or a CI runner stops a run with SIGTERM: the workers end with it, none
    is left waiting for a next job. The unused import root puts tmp_path into the
    command line, which the forked workers share."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "khospec", "check", "spec/deferred_init.kho", "--check", "eager_no_uninit_read_folio",
         "--no-cache", "-j", "2", "--import-root", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(processes_naming(tmp_path)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        # the command and its two workers, and at most one fork per worker deciding a job
        assert 3 <= len(processes_naming(tmp_path)) <= 5
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
        assert processes_left(tmp_path) == []
    finally:
        proc.kill()
        for pid in processes_naming(tmp_path):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
