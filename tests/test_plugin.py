"""The pytest plugin on a spec of its own: items per check, strategy and profile;
expectations enforced; a failure shows the verdict and the counterexample.

Each run is a process of its own, as a user's is: an in-process run imports khospec
again, and the solving processes it forks can then mix the IR classes of two runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import processes_left

SPEC = """
state { n: int = 0 }
step inc when n < 2 { n = n + 1 }
strategy fast {
  step inc when n < 2 { n = n + 2 }
}
check bounded: always n <= 2
  under base, fast
  for x86_64, arm64-4k
check wrong: always n <= 1
  for x86_64
  expect proved
"""


def test_items_and_failures(pytester: pytest.Pytester) -> None:
    pytester.makefile(".kho", machine=SPEC)
    pytester.makeini("[pytest]\nkhospec_paths = .\n")
    result = pytester.runpytest_subprocess("-v", "--khospec-jobs", "1")
    result.stdout.fnmatch_lines([
        "*bounded[[]base-x86_64[]] PASSED*",
        "*bounded[[]fast-arm64-4k[]] PASSED*",
        "*wrong[[]base-x86_64[]] FAILED*",
        "*verdict refuted, expected proved*",
        "*trace:*inc -> inc*",
    ])
    result.assert_outcomes(passed=4, failed=1)


def test_keyword_selection(pytester: pytest.Pytester) -> None:
    pytester.makefile(".kho", machine=SPEC)
    pytester.makeini("[pytest]\nkhospec_paths = .\n")
    result = pytester.runpytest_subprocess("-k", "fast", "--khospec-jobs", "1")
    result.assert_outcomes(passed=2)


def test_input_errors_fail_the_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(".kho", broken="check c: 1 +\n")
    pytester.makeini("[pytest]\nkhospec_paths = .\n")
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*error[[]KHO112[]]*"])
    result.assert_outcomes(failed=1)


def test_paths_outside_the_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """khospec_paths may point out of the rootdir (`..`): collected, ids carry the file."""
    lib = pytester.path.parent / (pytester.path.name + "-speclib")
    lib.mkdir()
    (lib / "machine.kho").write_text(SPEC)
    proj = pytester.mkdir("proj")
    (proj / "pytest.ini").write_text(f"[pytest]\nkhospec_paths = ../../{lib.name}\n")
    (proj / "test_a.py").write_text("def test_x():\n    pass\n")
    monkeypatch.chdir(proj)
    result = pytester.runpytest_subprocess("-v", "--khospec-jobs", "1")
    result.stdout.fnmatch_lines(["*machine.kho::bounded[[]base-x86_64[]] PASSED*",
                                 "*machine.kho::wrong[[]base-x86_64[]] FAILED*"])
    result.assert_outcomes(passed=5, failed=1)


def test_checks_are_solved_while_the_other_tests_run(pytester: pytest.Pytester) -> None:
    """The spec checks are being decided by a process of their own when the test files
    before them run (they share the cores), and their items then take the results."""
    pytester.makefile(".kho", machine=SPEC)
    pytester.makeini("[pytest]\nkhospec_paths = .\n")
    pytester.makepyfile(test_first="""
        import multiprocessing

        def test_solving_has_started():
            assert [p.name for p in multiprocessing.active_children()] == ["khospec checks"]
    """)
    result = pytester.runpytest_subprocess("test_first.py", "machine.kho", "-v", "--khospec-jobs", "1")
    result.stdout.fnmatch_lines(["*test_solving_has_started PASSED*", "*bounded[[]fast-arm64-4k[]] PASSED*"])
    result.assert_outcomes(passed=5, failed=1)


def test_a_session_stopped_early_ends_the_solving(pytester: pytest.Pytester) -> None:
    """-x stops before the spec items: the process solving them is ended, not waited for."""
    pytester.makefile(".kho", machine=SPEC)
    pytester.makeini("[pytest]\nkhospec_paths = .\n")
    pytester.makepyfile(test_first="def test_fails():\n    assert False\n")
    # after the session has finished: the processes this one still has
    pytester.makeconftest("""
        import multiprocessing

        def pytest_unconfigure(config):
            with open("children.txt", "w") as f:
                f.write(repr([p.name for p in multiprocessing.active_children()]))
    """)
    result = pytester.runpytest_subprocess("test_first.py", "machine.kho", "-x", "--khospec-jobs", "1", timeout=60)
    result.assert_outcomes(failed=1)
    assert (pytester.path / "children.txt").read_text() == "[]"
    # nor are its workers left behind (forked, they carry the run's command line)
    if Path("/proc").is_dir():
        assert processes_left(pytester.path) == []


def test_a_first_run_solves_the_trace_checks_first(pytester: pytest.Pytester) -> None:
    """With no times in the cache, the work is ordered as `khospec check` orders it: the
    checks over traces (the long proofs) before the claims over formulas, whatever the
    file's order."""
    pytester.makefile(".kho", machine="""
state { n: int = 0 }
step inc when n < 2 { n = n + 1 }
check plain: forall x: uint. x + 0 == x
  for x86_64
  expect proved
check bounded: always n <= 2
  for x86_64
""")
    pytester.makeini("[pytest]\nkhospec_paths = .\n")
    # the order the jobs reach the workers in, written by the solving process
    pytester.makeconftest("""
        import khospec.runner

        _run_parallel = khospec.runner.run_parallel

        def _recording(jobs, *args, **kwargs):
            with open("order.txt", "w") as f:
                f.write(" ".join(j.check for j in jobs))
            return _run_parallel(jobs, *args, **kwargs)

        khospec.runner.run_parallel = _recording
    """)
    result = pytester.runpytest_subprocess("--khospec-jobs", "1", "--khospec-no-cache")
    result.assert_outcomes(passed=2)
    assert (pytester.path / "order.txt").read_text() == "bounded plain"
