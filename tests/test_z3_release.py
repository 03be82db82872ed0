"""One z3 release: the one pyproject.toml requires is the one installed and the one the
installed metadata names; another release installed anyway is a warning (KHO007), in
``khospec check`` and in the pytest plugin's header, and the results still stand."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from khospec.engine import version
from tests.conftest import ROOT, run_cli

SPEC = "check c: 1 + 1 == 2\n  for x86_64\n"


def _pinned() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [m.group(1) for d in deps if (m := re.fullmatch(r"z3-solver==([\w.]+)", d))]
    assert len(pins) == 1, f"pyproject.toml requires no single z3-solver release: {deps}"
    return pins[0]


def test_the_tests_run_on_the_release_khospec_requires() -> None:
    pinned = _pinned()
    if version.required_z3() is None:
        pytest.skip("khospec runs from a source tree it was not installed from")
    assert version.required_z3() == pinned, "the installed metadata is older than pyproject.toml: install again"
    assert version.installed_z3() == pinned
    assert version.z3_mismatch() is None


def test_another_release_is_a_warning_and_the_results_stand(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version, "required_z3", lambda: "5.4.1.0")
    monkeypatch.setattr(version, "installed_z3", lambda: "4.13.4.0")
    (tmp_path / "t.kho").write_text(SPEC)
    r = run_cli("check", str(tmp_path / "t.kho"), "--no-cache", "-j", "1")
    assert r.code == 0
    assert r.err == (
        "z3-solver 4.13.4.0: warning[KHO007]: z3-solver 4.13.4.0 is installed where khospec requires 5.4.1.0: "
        "a verdict near its budget, a proof's assumptions_used and a counterexample can differ from that "
        "release's\n"
        "  hint: `pip install z3-solver==5.4.1.0` gives the results the spec library documents\n")
    assert " proved " in r.out


@pytest.mark.parametrize(("installed", "required"), [("5.4.1.0", "5.4.1.0"), (None, "5.4.1.0"),
                                                     ("4.13.4.0", None)])
def test_no_warning_where_the_release_is_the_one_required_or_unknown(
        installed: str | None, required: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version, "required_z3", lambda: required)
    monkeypatch.setattr(version, "installed_z3", lambda: installed)
    (tmp_path / "t.kho").write_text(SPEC)
    r = run_cli("check", str(tmp_path / "t.kho"), "--no-cache", "-j", "1")
    assert r.code == 0 and "KHO007" not in r.err, r.err


def test_the_plugin_header_names_another_release(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makefile(".kho", t=SPEC)
    pytester.makeini("[pytest]\nkhospec_paths = .\n")
    assert "khospec: warning" not in str(pytester.runpytest("--collect-only").outlines)
    monkeypatch.setattr(version, "required_z3", lambda: "5.4.1.0")
    monkeypatch.setattr(version, "installed_z3", lambda: "4.13.4.0")
    result = pytester.runpytest("--collect-only")
    result.stdout.fnmatch_lines(["khospec: warning: z3-solver 4.13.4.0 is installed where khospec requires "
                                 "5.4.1.0: a verdict near its budget*"])
