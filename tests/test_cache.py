"""The verdict cache: what addresses an entry, and that it never changes a result."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
from pathlib import Path

import pytest

from khospec import cache as cache_mod
from khospec.api import Options, check_paths, load
from khospec.cache import VerdictCache, job_key
from khospec.diagnostics import SourceCache
from khospec.jobs import Job
from khospec.results import InternalError
from khospec.runner import run_job
from tests.conftest import ROOT, run_cli

SPEC = """\
# a strategy and a check under it, another under the base model
param k: uint

fn twice(x: uint) -> uint = x + x

strategy thrice {
  fn twice(x: uint) -> uint = x + x + x
}

check even: forall x: uint. twice(x) % 2 == 0
  for x86_64
  expect proved

check even_thrice: forall x: uint. twice(x) % 2 == 0
  under thrice
  for x86_64
  expect refuted
"""


def _keys(path: Path) -> dict[str, str]:
    program, diags = load(path, str(path), SourceCache())
    assert program is not None, diags
    out = {}
    for c in program.checks:
        for st in c.strategies:
            for p in c.profiles:
                out[f"{c.name}[{st}]"] = job_key(program, c, st, (program.profiles[p],), timeout_s=60.0,
                                                  unroll=3, cross_check=False, layout=None)
    return out


def _write(tmp_path: Path, text: str, name: str = "s.kho") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_key_ignores_comments_paths_and_unrelated_checks(tmp_path: Path) -> None:
    base = _keys(_write(tmp_path, SPEC))
    # a comment (which moves every line), another folder, an unrelated check at the end
    (tmp_path / "moved").mkdir()
    assert _keys(_write(tmp_path / "moved", "# a comment\n\n" + SPEC)) == base
    more = _keys(_write(tmp_path, SPEC + "\ncheck other: 1 + 1 == 2\n  for x86_64\n", "t.kho"))
    assert {k: v for k, v in more.items() if not k.startswith("other")} == base


def test_key_follows_the_strategy_edited(tmp_path: Path) -> None:
    base = _keys(_write(tmp_path, SPEC))
    edited = _keys(_write(tmp_path, SPEC.replace("x + x + x", "x + x + x + x"), "t.kho"))
    assert edited["even[None]"] == base["even[None]"]
    assert edited["even_thrice[thrice]"] != base["even_thrice[thrice]"]


def test_key_follows_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = _keys(_write(tmp_path, SPEC))
    monkeypatch.setattr(cache_mod, "ENGINE_VERSION", "another engine")
    assert set(_keys(tmp_path / "s.kho").values()).isdisjoint(base.values())
    monkeypatch.undo()
    monkeypatch.setattr(cache_mod, "solver_versions", lambda cross: "z3-solver=0.0.0")
    assert set(_keys(tmp_path / "s.kho").values()).isdisjoint(base.values())


def _run(path: Path, **kw: object) -> list[dict[str, object]]:
    kw.setdefault("jobs", 1)
    report = check_paths([str(path)], Options(**kw))  # type: ignore[arg-type]
    assert not report.diagnostics and not report.internal_errors
    return [r.to_json() for r in report.results]


def _same(a: list[dict[str, object]], b: list[dict[str, object]]) -> None:
    """The same results, as JSON text, but for being cached and how long they took."""
    def strip(rs: list[dict[str, object]]) -> str:
        # as a user receives them: JSON text, key order included
        return json.dumps([{k: v for k, v in r.items() if k not in ("cached", "time_s")} for r in rs])

    assert strip(a) == strip(b)


def test_cached_result_is_the_solved_one() -> None:
    spec = ROOT / "tests/golden/specs/basic.kho"
    first = _run(spec)
    second = _run(spec)
    assert [r["cached"] for r in first] == [False] * len(first)
    assert [r["cached"] for r in second] == [True] * len(second)
    _same(first, second)  # counterexamples (presented and replayed again) included
    assert any("counterexample" in r for r in second)
    assert all(r["cached"] is False for r in _run(spec, cache=False))


def test_comment_moves_the_position_of_a_cached_counterexample(tmp_path: Path) -> None:
    src = (ROOT / "spec").resolve()
    dst = tmp_path / "spec"
    shutil.copytree(src, dst)
    target = dst / "handover.kho"
    opts = {"checks": frozenset({"order_survives_deserialize_first"}), "profiles": frozenset({"x86_64"})}
    first = _run(target, **opts)
    boot = dst / "lib" / "boot.kho"
    boot.write_text("# one more line\n" + boot.read_text())
    second = _run(target, **opts)
    assert second[0]["cached"] is True
    at1 = first[0]["counterexample"]["violated"]["at"]  # type: ignore[index]
    at2 = second[0]["counterexample"]["violated"]["at"]  # type: ignore[index]
    f1, l1, _ = at1.rsplit(":", 2)
    f2, l2, _ = at2.rsplit(":", 2)
    assert f1 == f2 and int(l2) == int(l1) + 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "checksum", "foreign"])
def test_damaged_entries_are_solved_again(damage: str, _own_cache: Path) -> None:
    spec = ROOT / "tests/golden/specs/basic.kho"
    first = _run(spec)
    files = sorted(p for p in _own_cache.rglob("*.json") if p.name != "times.json")
    assert files
    for f in files:
        text = f.read_text()
        if damage == "truncate":
            f.write_text(text[: len(text) // 2])
        elif damage == "garbage":
            f.write_bytes(b"\xff\x00not json")
        elif damage == "checksum":
            entry = json.loads(text)
            for r in entry["body"]["results"]:  # a verdict flipped, the checksum left as it was
                r["verdict"] = "proved" if r["verdict"] == "refuted" else "refuted"
            f.write_text(json.dumps(entry))
        else:  # an entry moved under another key's name
            entry = json.loads(text)
            entry["key"] = "0" * 64
            f.write_text(json.dumps(entry))
    again = _run(spec)
    assert all(r["cached"] is False for r in again)
    _same(first, again)


def _hammer(root: str, key: str, n: int) -> None:
    c = VerdictCache(Path(root))
    for i in range(n):
        c.put(key, {"verdict": "proved", "i": i, "pad": "x" * 20000})


def test_concurrent_writers_leave_a_whole_entry(tmp_path: Path) -> None:
    key = "ab" * 32
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), key, 200)) for _ in range(3)]
    for p in procs:
        p.start()
    reader = VerdictCache(tmp_path)
    seen = 0
    while any(p.is_alive() for p in procs):
        body = reader.get(key)
        if body is not None:
            assert body["verdict"] == "proved"
            seen += 1
    for p in procs:
        p.join()
    body = reader.get(key)
    assert body is not None and body["i"] == 199
    assert not list(tmp_path.rglob(".tmp-*"))


def test_cache_command(_own_cache: Path) -> None:
    run_cli("check", "tests/golden/specs/basic.kho", "--jobs", "1")
    r = run_cli("cache", "info")
    assert r.code == 0 and str(_own_cache) in r.out and "5 entries" in r.out
    r = run_cli("cache", "clear")
    assert r.code == 0 and "removed 5 entries" in r.out
    assert "0 entries" in run_cli("cache", "info").out
    r = run_cli("check", "tests/golden/specs/basic.kho", "--jobs", "1", "--no-cache")
    assert "0 from the cache" in r.out and "0 entries" in run_cli("cache", "info").out


def _cache_in_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # a file where the folder should be: every run would solve everything again, silently
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("KHOSPEC_CACHE_DIR", str(blocked))
    return blocked


def test_a_cache_that_cannot_be_written_is_a_warning_and_the_run_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = _cache_in_a_file(tmp_path, monkeypatch)
    r = run_cli("check", "tests/golden/specs/basic.kho", "--jobs", "1")
    assert r.code == 0 and "5 solved, 0 from the cache" in r.out
    assert r.err == (
        f"{blocked}: warning[KHO008]: the verdict cache cannot be written (Not a directory): the results "
        "solved now are not kept, and the next run solves them again\n"
        "  hint: point KHOSPEC_CACHE_DIR at a folder you can write, or pass --no-cache\n")
    # --no-cache asks for none: nothing to warn of
    assert run_cli("check", "tests/golden/specs/basic.kho", "--jobs", "1", "--no-cache").err == ""
    info = run_cli("cache", "info")
    assert info.code == 0 and "cannot be written (Not a directory)" in info.out


def test_the_plugin_header_names_a_cache_that_cannot_be_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> None:
    blocked = _cache_in_a_file(tmp_path, monkeypatch)
    pytester.makefile(".kho", t="check c: 1 + 1 == 2\n  for x86_64\n")
    pytester.makeini("[pytest]\nkhospec_paths = .\n")
    pytester.runpytest("--collect-only").stdout.fnmatch_lines(
        [f"khospec: warning: {blocked}: the verdict cache cannot be written (Not a directory)*"])
    assert "cannot be written" not in str(pytester.runpytest("--collect-only", "--khospec-no-cache").outlines)


def test_a_cache_that_cannot_be_cleared_is_an_error_not_a_traceback(
        _own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_cli("check", "tests/golden/specs/basic.kho", "--jobs", "1")

    def refuse(path: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("khospec.cache.shutil.rmtree", refuse)
    r = run_cli("cache", "clear")
    assert (r.code, r.out) == (2, "")
    assert r.err == (f"khospec: cannot clear the verdict cache at {_own_cache}: Permission denied\n"
                     "  hint: remove the folder by hand, or point KHOSPEC_CACHE_DIR elsewhere\n")


def test_a_writable_cache_is_no_warning(_own_cache: Path) -> None:
    r = run_cli("check", "tests/golden/specs/basic.kho", "--jobs", "1")
    assert r.code == 0 and r.err == ""
    assert "cannot be written" not in run_cli("cache", "info").out


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_plan_shown_counts_no_time_for_the_results_the_cache_has(jobs: int, _own_cache: Path) -> None:
    # the progress display's estimate of the time left: a warm run showed the whole
    # library's time until the hits had been taken
    plans: list[list[tuple[str, float | None]]] = []
    spec = str(ROOT / "tests/golden/specs/basic.kho")
    cold = check_paths([spec], Options(jobs=jobs), on_plan=plans.append)
    assert [t for _, t in plans[0]] == [None] * 5 and not any(r.cached for r in cold.results)
    started: list[str] = []
    warm = check_paths([spec], Options(jobs=jobs), on_plan=plans.append, on_start=started.append)
    assert all(r.cached for r in warm.results) and len(warm.results) == 5
    assert [t for _, t in plans[1]] == [0.0] * 5 and started == []


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_hit_that_cannot_be_presented_is_left_to_its_job(jobs: int, _own_cache: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    spec = str(ROOT / "tests/golden/specs/basic.kho")
    cold = check_paths([spec], Options(jobs=jobs))

    def broken(*_: object, **__: object) -> None:
        raise InternalError("presenting an entry failed")

    # the hits taken before the plan is shown; the jobs still run and take their own
    monkeypatch.setattr("khospec.api.cached_results", broken)
    warm = check_paths([spec], Options(jobs=jobs))
    assert not warm.internal_errors and len(warm.results) == len(cold.results) == 5
    assert [r.verdict for r in warm.results] == [r.verdict for r in cold.results]


def test_parallel_run_takes_hits_in_process_and_keeps_the_order() -> None:
    spec = ROOT / "tests/golden/specs/basic.kho"
    serial = _run(spec)
    cold = _run(spec, jobs=2)
    warm = _run(spec, jobs=2)
    assert [r["cached"] for r in cold] == [True] * len(cold)  # the serial run filled the cache
    _same(serial, warm)
    _same(serial, _run(spec, jobs=2, cache=False))


def test_counterexample_quotes_its_claim_wherever_it_is_presented(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # a worker of a cluster presents what it solved in a directory of its own, where the
    # file's name as the user gave it names nothing: the claim's text comes with the program
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "a.kho").write_text(SPEC)
    monkeypatch.chdir(tmp_path / "proj")
    program, diags = load(Path("a.kho"), "a.kho", SourceCache())
    assert program is not None, diags
    check = next(c for c in program.checks if c.name == "even_thrice")
    job = Job(path=tmp_path / "proj" / "a.kho", file="a.kho", check=check.name, line=check.span.line,
              strategy="thrice", profiles=("x86_64",))
    monkeypatch.chdir(tmp_path)
    [r] = run_job(program, job, Options(cache=False))
    assert r.counterexample is not None
    assert r.counterexample["violated"]["text"] == "check even_thrice: forall x: uint. twice(x) % 2 == 0"
