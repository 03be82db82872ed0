"""What a new user or a CI job meets: a typo never checks nothing and passes, imports stay
in the spec tree, every file written is named, colours follow NO_COLOR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

ONE = "spec/one_node.kho"


@pytest.mark.parametrize(("flag", "name", "suggestion"), [
    ("--profile", "x86-64", "`x86_64`"),
    ("--check", "aligned_chunk_in_one_nod", "`aligned_chunk_in_one_node`"),
    ("--strategy", "lazy_tale", "`lazy_tail`"),
])
def test_a_mistyped_name_is_an_error_with_a_suggestion(flag: str, name: str, suggestion: str) -> None:
    path = "spec/deferred_init.kho" if flag == "--strategy" else ONE
    r = run_cli("check", path, flag, name, "--no-cache")
    assert r.code == 2
    assert f"{flag}: error[KHO003]: no " in r.err and f"`{name}`" in r.err
    assert f"did you mean {suggestion}" in r.err


def test_a_profile_set_selects_its_profiles() -> None:
    r = run_cli("check", ONE, "--check", "buddy_folio_in_one_node", "--profile", "kho_archs", "--format", "json")
    assert r.code == 0, r.err
    assert sorted(x["profile"] for x in json.loads(r.out)["results"]) == [
        "arm64-16k", "arm64-4k", "arm64-64k", "x86_64"]


def test_the_api_checks_names_too() -> None:
    from khospec.api import Options, check_file
    from khospec.diagnostics import InputError

    with pytest.raises(InputError, match="KHO003"):
        check_file(ONE, Options(profiles=frozenset({"x86-64"})))


def test_nothing_to_check_is_an_error() -> None:
    r = run_cli("check", "spec/lib/layout.kho")
    assert r.code == 2 and "error[KHO004]: nothing to check" in r.err


@pytest.mark.parametrize(("path", "code"), [("spec/nope.kho", "KHO201"), ("README.md", "KHO006")])
def test_paths_that_are_no_spec_get_a_plain_error(path: str, code: str) -> None:
    r = run_cli("check", path)
    assert r.code == 2
    assert r.err.startswith(f"{path}: error[{code}]")  # no invented line and column
    assert "# khospec" not in r.err  # README's content is not echoed


def test_a_strategy_no_check_runs_is_named(tmp_path: Path) -> None:
    spec = tmp_path / "s.kho"
    spec.write_text("strategy lonely {\n  fn f(x: uint) -> uint = x\n}\nfn f(x: uint) -> uint = x + 1\n"
                    "check c: f(1) == 2\n  for x86_64\n")
    r = run_cli("check", str(spec))
    assert r.code == 0
    assert "warning[KHO005]: strategy `lonely` is run by no check" in r.err


@pytest.mark.parametrize("target", ["../../../../etc/passwd", "../../../../etc/passwd.kho"])
def test_imports_stay_in_the_spec_tree(tmp_path: Path, target: str) -> None:
    spec = tmp_path / "evil.kho"
    spec.write_text(f'import "{target}"\n')
    r = run_cli("check", str(spec))
    assert r.code == 2 and "error[KHO206]" in r.err
    assert "root:" not in r.err  # nothing of the target is read, let alone quoted


def _linked_out(tmp_path: Path, check: str) -> tuple[Path, Path]:
    """A spec tree whose s.kho imports, through a symlink, a file outside it (``outside``
    holds f() = 1); ``check`` is s.kho's check. (tree, outside)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.kho").write_text("fn f() -> int = 1\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "pyproject.toml").write_text("")
    (tree / "link.kho").symlink_to(outside / "x.kho")
    (tree / "s.kho").write_text('import "link.kho"\n' + check)
    return tree, outside


def test_a_symlink_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    tree, outside = _linked_out(tmp_path, "check c: f() == 1\n  for x86_64\n")
    r = run_cli("check", str(tree / "s.kho"))
    assert r.code == 2 and "outside the spec tree" in r.err
    r = run_cli("check", str(tree / "s.kho"), "--import-root", str(outside))
    assert r.code == 0, r.err


def test_itf_of_a_spec_that_imports_through_an_import_root(tmp_path: Path) -> None:
    # the trace file loads the spec again: with the roots the check was given
    tree, outside = _linked_out(tmp_path, "check c: f() == 2\n  for x86_64\n  expect refuted\n")
    r = run_cli("check", str(tree / "s.kho"), "--import-root", str(outside), "--itf", str(tmp_path / "itf"),
                "--no-cache")
    assert r.code == 0, r.err
    assert [p.name for p in (tmp_path / "itf").iterdir()] == ["s.c.base.x86_64.itf.json"]
    # a job stopped at its time limit still carries the check's expectation
    from khospec.jobs import Job, Options
    from khospec.runner import _timeout_results

    job = Job(path=tree / "s.kho", file=str(tree / "s.kho"), check="c", line=2, strategy=None, profiles=("x86_64",))
    [timed_out] = _timeout_results(job, Options(import_roots=(str(outside),)))
    assert timed_out.expected == "refuted"


def test_explain_takes_import_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree, outside = _linked_out(tmp_path, "check c: f() == 2\n  for x86_64\n  expect refuted\n")
    monkeypatch.setenv("KHOSPEC_CACHE_DIR", str(tmp_path / "cache"))
    r = run_cli("explain", f"{tree / 's.kho'}::c")
    assert r.code == 2 and "outside the spec tree" in r.err
    r = run_cli("explain", f"{tree / 's.kho'}::c", "--import-root", str(outside))
    assert r.code == 0, r.err
    assert "f() == 2" in r.out


def test_no_color_and_the_files_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from khospec.cli import _color

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert _color("auto", Tty()) is True  # type: ignore[arg-type]
    monkeypatch.setenv("NO_COLOR", "1")
    assert _color("auto", Tty()) is False  # type: ignore[arg-type]
    assert _color("always", Tty()) is True  # type: ignore[arg-type]
    svg = tmp_path / "x.svg"
    r = run_cli("check", "tests/golden/specs/basic.kho", "--svg", str(svg), "--itf", str(tmp_path / "itf"))
    assert svg.exists() and f"wrote {svg}" in r.err and "ITF trace(s) into" in r.err


def test_machine_exit_code_means_at_risk() -> None:
    log = str(ROOT / "examples/layouts/04_x86_64-intel-s2600wtt-broadwell-2node.txt")
    r = run_cli("machine", log, "--arch", "x86_64", "--format", "json")
    assert r.code == 1
    results = json.loads(r.out)["results"]
    assert {x["expected"] for x in results} == {"proved"}
    assert [x["check"] for x in results if not x["met"]] == ["pages-chunk-single-node"]
    assert "at risk: pages-chunk-single-node refuted" in r.err


def test_public_api() -> None:
    import khospec

    assert khospec.InputError is __import__("khospec.diagnostics").diagnostics.InputError
    for name in ("check_file", "check_paths", "Options", "Result", "Verdict", "InputError"):
        assert getattr(khospec, name).__doc__, name


def test_explain_speaks_kernel_terms() -> None:
    r = run_cli("explain", "spec/handover.kho::order_survives_deserialize_first", "--profile", "x86_64")
    assert r.code == 0, r.err
    assert "phase: SETUP_ARCH -> MM_CORE_INIT" in r.out
    assert "zone=ZONE_" in r.out


def test_the_library_copied_out_of_the_project_still_imports(tmp_path: Path) -> None:
    """The tree is the folder given on the command line when no project holds it."""
    import shutil

    shutil.copytree(ROOT / "spec", tmp_path / "spec")
    r = run_cli("check", str(tmp_path / "spec"), "--check", "reserve_size_u64", "--profile", "x86_64")
    assert r.code == 0, r.err
    assert "KHO206" not in r.err
