"""The pytest plugin on a spec of its own: items per check, strategy and profile;
expectations enforced; a failure shows the verdict and the counterexample."""

from __future__ import annotations

import pytest

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
    result = pytester.runpytest("-v", "--khospec-jobs", "1")
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
    result = pytester.runpytest("-k", "fast", "--khospec-jobs", "1")
    result.assert_outcomes(passed=2)


def test_input_errors_fail_the_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(".kho", broken="check c: 1 +\n")
    pytester.makeini("[pytest]\nkhospec_paths = .\n")
    result = pytester.runpytest()
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
    result = pytester.runpytest("-v", "--khospec-jobs", "1")
    result.stdout.fnmatch_lines(["*machine.kho::bounded[[]base-x86_64[]] PASSED*",
                                 "*machine.kho::wrong[[]base-x86_64[]] FAILED*"])
    result.assert_outcomes(passed=5, failed=1)
