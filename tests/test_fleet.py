"""`khospec fleet`: every input accounted for, answers equal to one machine at a time,
the same report from every executor, including a real Dask cluster on 127.0.0.1."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from khospec.cli import main
from khospec.executor import InlineExecutor, LocalExecutor
from khospec.machine import fleet
from khospec.machine.importer import ImportError_, read_layout_file
from khospec.machine.questions import answer, arch_profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import contextlib

import fleetgen


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(argv), stdout=out, stderr=err)
    finally:
        sys.stdin = old
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[fleetgen.Machine]]:
    folder = tmp_path_factory.mktemp("fleet")
    return folder, fleetgen.write_fleet(folder, 120, 8, seed=7)


def one_machine(path: str, arch: str) -> dict[str, str] | None:
    """What `khospec machine` answers for the file alone (None: it cannot read it)."""
    prof = arch_profile(arch)
    try:
        layout = read_layout_file(path, page_shift=prof.page_shift)
    except ImportError_:
        return None
    return {r.check: r.verdict.value for r in answer(layout, prof)}


def test_every_input_once_answers_as_one_machine(fleet_dir: tuple[Path, list[fleetgen.Machine]]) -> None:
    folder, machines = fleet_dir
    code, out, err = run("fleet", str(folder / "logs"), "--manifest", str(folder / "manifest.csv"),
                         "--format", "json", "-j", "2")
    data = json.loads(out)
    got = {m["file"]: m for m in data["machines"]}
    assert len(data["machines"]) == len(got) == len(machines)
    for m in machines:
        row = got[m.name]
        expected = one_machine(m.name, m.arch)
        if m.layout < 0:
            assert row["status"] == "damaged" and "error[KHO601]" in row["error"], row
            assert expected is None
        else:
            assert row["status"] == "answered" and row["answers"] == expected, row
    assert data["summary"]["layouts"] == len({m.layout for m in machines if m.layout >= 0}) == 8
    assert data["summary"]["damaged"] == 8 and code == 2
    assert sum(lay["machines"] for lay in data["layouts"]) == data["summary"]["answered"] == 120
    # the layouts are numbered by their first machine in input order
    firsts = [next(i for i, m in enumerate(data["machines"]) if m.get("layout") == lay["id"])
              for lay in data["layouts"]]
    assert firsts == sorted(firsts) and [lay["id"] for lay in data["layouts"]] == [f"L{i}" for i in range(1, 9)]
    assert "8 damaged" in err and "exit code 2" in err


def test_archives_folders_and_stdin_lists(tmp_path: Path) -> None:
    ms = fleetgen.write_fleet(tmp_path / "src", 12, 2, seed=3)
    archive = tmp_path / "fleet.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for m in ms[:6]:
            tar.add(m.name, arcname=f"rack/{Path(m.name).name}")
    listing = "\n".join(m.name for m in ms[6:]) + "\n# a comment\n\n"
    _code, out, _ = run("fleet", str(archive), "-", "--arch", "x86_64", "--format", "jsonl", stdin=listing)
    rows = [json.loads(line) for line in out.splitlines()]
    names = [r["file"] for r in rows]
    assert names == [f"{archive}!rack/{Path(m.name).name}" for m in ms[:6]] + [m.name for m in ms[6:]]
    # with one --arch for all, a machine of another architecture is answered as x86_64
    for m, r in zip(ms, rows, strict=True):
        assert r["status"] == ("damaged" if m.layout < 0 else "answered")
        if m.layout >= 0:
            assert r["answers"] == one_machine(m.name, "x86_64")


def test_damaged_archive_and_missing_files_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "cut.tar.gz"
    good = tmp_path / "good.tar"
    log = fleetgen.LAYOUTS / fleetgen.BASES[0][0]
    with tarfile.open(good, "w") as tar:
        tar.add(log, arcname="a.log")
    bad.write_bytes(good.read_bytes()[:700])  # not even gzip
    code, out, _ = run("fleet", str(good), str(bad), str(tmp_path / "nope.log"), "--arch", "x86_64",
                       "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["file"] for r in rows] == [f"{good}!a.log", str(bad), str(tmp_path / "nope.log")]
    assert [r["status"] for r in rows] == ["answered", "damaged", "damaged"]
    assert "cannot read the archive" in rows[1]["error"] and "cannot read the log" in rows[2]["error"]
    assert list(rows[0])[: len(fleet.CSV_FIELDS)] == list(fleet.CSV_FIELDS) and code == 2


def test_manifest_jsonl_and_unknown_architectures(tmp_path: Path) -> None:
    log = str(fleetgen.LAYOUTS / fleetgen.BASES[1][0])  # the arm64 machine
    other = str(fleetgen.LAYOUTS / fleetgen.BASES[0][0])
    strange = str(fleetgen.LAYOUTS / fleetgen.BASES[2][0])
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"file": log, "arch": "arm64-4k"}) + "\n"
                        + json.dumps({"file": strange, "arch": "vax"}) + "\n")
    code, out, _ = run("fleet", log, other, strange, "--manifest", str(manifest), "--format", "json")
    rows = json.loads(out)["machines"]
    assert rows[0]["arch"] == "arm64-4k" and rows[0]["answers"] == one_machine(log, "arm64-4k")
    assert rows[1]["status"] == "damaged" and "error[KHO606]" in rows[1]["error"] and "--arch" in rows[1]["error"]
    assert rows[2]["status"] == "damaged" and "`vax` is not a built-in profile" in rows[2]["error"]
    assert code == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("fleet",), "nothing to check"),
        (("fleet", "x.log", "--arch", "vax"), "`vax` is not a built-in profile"),
        (("fleet", "x.log", "--manifest", "/nonexistent.csv"), "cannot read the manifest"),
        (("fleet", "x.log", "--batch", "0"), "--batch must be at least 1"),
    ],
)
def test_bad_arguments_exit_2(argv: tuple[str, ...], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 2 and message in err and "Traceback" not in err and not out


def test_unreachable_scheduler_is_an_error_not_a_hang() -> None:
    from khospec.executor import DaskExecutor, ExecutorError

    pytest.importorskip("distributed")
    with pytest.raises(ExecutorError, match=re.escape("cannot reach the Dask scheduler at tcp://127.0.0.1:1")):
        DaskExecutor("tcp://127.0.0.1:1", connect_timeout_s=1)


def test_bad_csv_manifest_names_the_line(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("path,profile\nx.log,x86_64\n")
    code, _, err = run("fleet", "--manifest", str(m))
    assert code == 2 and f"{m}:1: a CSV manifest needs the header `file,arch`" in err


def test_manifest_alone_lists_the_fleet(fleet_dir: tuple[Path, list[fleetgen.Machine]]) -> None:
    folder, machines = fleet_dir
    code, out, _ = run("fleet", "--manifest", str(folder / "manifest.csv"), "--format", "csv", "-j", "1")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["file"] for r in rows] == [m.name for m in machines] and code == 2


def report_json(report: fleet.FleetReport) -> dict[str, Any]:
    data = fleet.to_json(report)
    data["summary"].pop("time_s")
    return data


def test_same_report_in_process_and_with_workers(fleet_dir: tuple[Path, list[fleetgen.Machine]]) -> None:
    folder, _ = fleet_dir
    manifest = fleet.read_manifest(str(folder / "manifest.csv"))

    def inputs() -> Iterator[fleet.FleetInput]:
        return fleet.iter_inputs([str(folder / "logs")], fleet.arch_lookup(manifest, None))

    inline = fleet.run_fleet(inputs(), InlineExecutor(), batch_size=64)
    pool = LocalExecutor(2)
    try:
        local = fleet.run_fleet(inputs(), pool, batch_size=5)
    finally:
        pool.close()
    assert report_json(inline) == report_json(local)


def test_json_is_written_as_it_would_be_built(fleet_dir: tuple[Path, list[fleetgen.Machine]]) -> None:
    folder, _ = fleet_dir
    report = fleet.run_fleet(fleet.iter_inputs([str(folder / "logs")], fleet.arch_lookup(None, "x86_64")),
                             InlineExecutor())
    for r in (report, fleet.FleetReport((), (), 0.0, "none")):
        assert json.loads("".join(fleet.json_chunks(r))) == fleet.to_json(r)


def test_text_report_leads_with_machines_at_risk_and_svg(
    fleet_dir: tuple[Path, list[fleetgen.Machine]], tmp_path: Path
) -> None:
    folder, _ = fleet_dir
    svg = tmp_path / "fleet.svg"
    code, out, err = run("fleet", "--manifest", str(folder / "manifest.csv"), "--svg", str(svg), "-j", "1")
    lines = out.splitlines()
    assert lines[0].startswith("khospec fleet: 128 inputs, 120 answered, 8 damaged, 8 distinct layouts")
    assert lines[2].startswith("At risk: ") and "pages-chunk-single-node: refuted" in out
    assert "holds pages of nodes" in out  # the witness, as `khospec machine` prints it
    assert out.index("At risk") < out.index("Answers per question") < out.index("Damaged: 8 inputs")
    root = ET.fromstring(svg.read_text())
    assert root.tag.endswith("svg") and len(root.findall("{http://www.w3.org/2000/svg}rect")) == 9
    assert f"wrote {svg}" in err and code == 2


# ---------------------------------------------------------------- a real Dask cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dask(*args: str) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("dask")
    return subprocess.Popen([str(exe), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


@pytest.fixture
def cluster() -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    pytest.importorskip("distributed")
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")]
    workers = [
        _dask("worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
              "--host", "127.0.0.1", "--name", f"w{i}")
        for i in range(2)
    ]
    try:
        with Client(address, timeout=60) as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for p in [*workers, *procs]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def test_dask_cluster_gives_the_local_report_even_when_a_worker_dies(
    fleet_dir: tuple[Path, list[fleetgen.Machine]],
    cluster: tuple[str, list[subprocess.Popen[bytes]]],
) -> None:
    from khospec.executor import DaskExecutor

    folder, _ = fleet_dir
    address, workers = cluster
    manifest = fleet.read_manifest(str(folder / "manifest.csv"))

    def inputs() -> Iterator[fleet.FleetInput]:
        return fleet.iter_inputs([str(folder / "logs")], fleet.arch_lookup(manifest, None))

    local = fleet.run_fleet(inputs(), InlineExecutor())
    code, out, _ = run("fleet", str(folder / "logs"), "--manifest", str(folder / "manifest.csv"),
                       "--format", "json", "--scheduler", address, "--batch", "16")
    assert json.loads(out)["machines"] == fleet.to_json(local)["machines"] and code == 2

    # the library's checks solved on the cluster: the same results as in process
    _, here, _ = run(*CHECK)
    code, there, err = run(*CHECK, "--scheduler", address)
    assert code == 0, err
    assert _results(there) == _results(here), _differences(_results(there), _results(here))

    # one batch per log, and a worker killed once some batches are back: the scheduler
    # hands its tasks to the other worker and the report is the same
    seen = threading.Event()
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if done[0] >= 10 and not seen.is_set():
            seen.set()
            os.killpg(workers[0].pid, signal.SIGKILL)

    ex = DaskExecutor(address)
    try:
        t0 = time.monotonic()
        remote = fleet.run_fleet(inputs(), ex, batch_size=1, on_progress=progress)
    finally:
        ex.close()
    assert seen.is_set() and workers[0].wait(10) is not None
    assert report_json(remote) == report_json(local), time.monotonic() - t0
    assert remote.executor.startswith(f"Dask scheduler {address}")


# ---------------------------------------------------------------- the library on a fleet


def _results(out: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(out)["results"]
    for r in rows:
        r.pop("time_s")
    return rows


def _differences(there: list[dict[str, Any]], here: list[dict[str, Any]]) -> str:
    """Which fields of which results differ, with the notes of both: enough to tell a
    readability pass that ended early (its note) from another search."""
    out = []
    for a, b in zip(there, here, strict=False):
        keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        if keys:
            out.append(f"{a['check']} {a['profile']}: {keys}; notes there {a.get('notes')!r}, here {b.get('notes')!r}")
    return "\n".join([*out, f"{len(there)} results there, {len(here)} here"])


CHECK = ("check", "spec/deferred_init.kho", "--check", "eager_owner_node_pages", "--profile", "x86_64",
         "--format", "json", "--no-cache", "-j", "1")


def test_check_on_every_distinct_layout_of_a_fleet(tmp_path: Path) -> None:
    logs = [fleetgen.LAYOUTS / name for name, _ in fleetgen.BASES[:2]]
    fleet_dir = tmp_path / "fleet"
    fleet_dir.mkdir()
    for i, log in enumerate([logs[0], logs[1], logs[0]]):
        (fleet_dir / f"m{i}.log").write_text(log.read_text())
    (fleet_dir / "broken.log").write_text("nothing here\n")
    code, out, err = run(*CHECK, "--layout", str(fleet_dir))
    rows = _results(out)
    assert [r["layout"] for r in rows] == ["m0", "m1"] and code == 2
    assert "2 distinct layout(s) in 3 log(s), 1 damaged" in err and "m0: 2 machine(s)" in err
    assert f"{fleet_dir / 'broken.log'}: error[KHO601]" in err
    for r, log in zip(rows, logs, strict=True):
        # each layout's result is the one `--layout LOG` gives for that machine alone
        (tmp_path / f"{r['layout']}.log").write_text(log.read_text())
        _, one, _ = run(*CHECK, "--layout", str(tmp_path / f"{r['layout']}.log"))
        assert _results(one) == [r]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_leaves_the_report_alone(fleet_dir: tuple[Path, list[fleetgen.Machine]]) -> None:
    folder, _ = fleet_dir
    out, err = io.StringIO(), _Terminal()
    code = main(["fleet", "--manifest", str(folder / "manifest.csv"), "--format", "csv", "-j", "1"],
                stdout=out, stderr=err)
    assert code == 2 and out.getvalue().startswith("file,arch,status")
    assert "reading logs" in err.getvalue() and "/s)" in err.getvalue()


def test_manifest_names_match_however_the_paths_are_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "a.log"
    log.write_text((fleetgen.LAYOUTS / fleetgen.BASES[1][0]).read_text())
    # relative to the manifest's folder, with a detour; the fleet given as an absolute path
    (tmp_path / "m.csv").write_text("file,arch\n./logs//a.log,arm64-4k\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, _ = run("fleet", str(tmp_path / "logs"), "--manifest", str(tmp_path / "m.csv"), "--format", "jsonl")
    [row] = [json.loads(line) for line in out.splitlines()]
    assert row["arch"] == "arm64-4k" and row["status"] == "answered" and code == 1, row
    # the manifest alone: its names, found from the manifest's folder
    _, out, _ = run("fleet", "--manifest", str(tmp_path / "m.csv"), "--format", "jsonl")
    [row] = [json.loads(line) for line in out.splitlines()]
    assert row["status"] == "answered" and row["file"] == os.path.join(str(tmp_path), "./logs//a.log")


def test_gzipped_logs_are_read_and_damaged_gzip_is_reported(tmp_path: Path) -> None:
    import gzip

    log = fleetgen.LAYOUTS / fleetgen.BASES[0][0]
    (tmp_path / "a.log.gz").write_bytes(gzip.compress(log.read_bytes()))
    (tmp_path / "b.log").write_bytes(gzip.compress(log.read_bytes()))  # gzip data, whatever the name
    (tmp_path / "c.log.gz").write_bytes(gzip.compress(log.read_bytes())[:200])
    code, out, _ = run("fleet", str(tmp_path), "--arch", "x86_64", "--format", "jsonl")
    rows = {Path(r["file"]).name: r for r in map(json.loads, out.splitlines())}
    assert rows["a.log.gz"]["answers"] == rows["b.log"]["answers"] == one_machine(str(log), "x86_64")
    assert rows["c.log.gz"]["status"] == "damaged"
    assert "error[KHO601]: cannot read the log: the gzip data ends early" in rows["c.log.gz"]["error"]
    assert code == 2
