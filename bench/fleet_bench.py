"""`khospec fleet` at scale: generated fleets (bench/fleetgen.py) checked cold, as a new
process each time, in process, with local workers and through a local Dask cluster.

    python bench/fleet_bench.py                  # 3,240 and 101,000 logs
    python bench/fleet_bench.py --large 20000    # a smaller large fleet
    python bench/fleet_bench.py --no-dask

Prints each run's wall time, rate and peak memory (the largest resident set of the
khospec process and its worker processes), beside `python -c 'import z3, lark'` timed in
the same run, and checks every report: every input exactly once, the damaged files
exactly the generated damaged ones, and each machine's answers equal to the answers for
its log read and answered alone (khospec.machine.questions, one machine at a time, with
no deduplication and no executor).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

import fleetgen

from khospec.machine.importer import ImportError_, read_layout_file
from khospec.machine.questions import answer, arch_profile


def timed(cmd: list[str], stdout: Any = subprocess.DEVNULL) -> tuple[float, float, int]:
    """Wall seconds, child CPU seconds and the peak resident set (MiB) of the command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert proc.returncode in (0, 1, 2), (cmd, proc.returncode)
    return wall, cpu, after.ru_maxrss // 1024


def reference(machines: list[fleetgen.Machine]) -> dict[str, dict[str, str] | None]:
    """Each log alone: read, answered, no deduplication."""
    out: dict[str, dict[str, str] | None] = {}
    profiles: dict[str, Any] = {}
    for m in machines:
        prof = profiles.setdefault(m.arch, arch_profile(m.arch))
        try:
            layout = read_layout_file(m.name, page_shift=prof.page_shift)
        except ImportError_:
            out[m.name] = None
            continue
        out[m.name] = {r.check: r.verdict.value for r in answer(layout, prof)}
    return out


def verify(report: dict[str, Any], machines: list[fleetgen.Machine],
           ref: dict[str, dict[str, str] | None]) -> str:
    rows = report["machines"]
    names = [r["file"] for r in rows]
    assert sorted(names) == sorted(m.name for m in machines), "an input lost or doubled"
    assert len(set(names)) == len(names)
    want_damaged = {m.name for m in machines if m.layout < 0}
    got_damaged = {r["file"] for r in rows if r["status"] == "damaged"}
    assert got_damaged == want_damaged, (len(got_damaged), len(want_damaged))
    wrong = [r["file"] for r in rows if r["status"] == "answered" and r["answers"] != ref[r["file"]]]
    assert not wrong, wrong[:5]
    s = report["summary"]
    return (f"all {len(rows):,} accounted for, {s['damaged']:,} damaged as generated, answers equal "
            f"to one machine at a time; {s['layouts']} distinct layouts, {s['at_risk']:,} machines at risk")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1."""

    def __init__(self, workers: int = 2) -> None:
        from distributed import Client

        exe = str(Path(sys.executable).with_name("dask"))
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        port = self.address.rsplit(":", 1)[1]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
        self.procs = [subprocess.Popen([exe, "scheduler", "--host", "127.0.0.1", "--port", port,
                                        "--no-dashboard"], **quiet)]  # type: ignore[call-overload]
        for i in range(workers):
            self.procs.append(subprocess.Popen(  # type: ignore[call-overload]
                [exe, "worker", self.address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                 "--host", "127.0.0.1", "--name", f"w{i}"], **quiet))
        with Client(self.address, timeout=60) as c:  # type: ignore[no-untyped-call]
            c.wait_for_workers(workers, timeout=60)

    def close(self) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            p.wait(20)


def run_fleet(name: str, folder: Path, machines: list[fleetgen.Machine], baseline: float,
              runs: list[tuple[str, list[str]]], ref: dict[str, dict[str, str] | None]) -> None:
    n = len(machines)
    print(f"\n## {name}: {n:,} logs ({sum(m.layout < 0 for m in machines):,} damaged)")
    print("| run | wall s | logs/s | x imports | CPU s | peak MiB | check |")
    print("|---|---|---|---|---|---|---|")
    for label, extra in runs:
        out = folder / f"report-{label.replace(' ', '_')}.json"
        cmd = [sys.executable, "-m", "khospec", "fleet", str(folder / "logs"), "--manifest",
               str(folder / "manifest.csv"), "--format", "json", *extra]
        with out.open("w") as f:
            wall, cpu, peak = timed(cmd, stdout=f)
        verdict = verify(json.loads(out.read_text()), machines, ref)
        print(f"| {label} | {wall:.1f} | {n / wall:,.0f} | {wall / baseline:,.0f} | {cpu:.1f} | {peak} | {verdict} |")
        sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=3200)
    ap.add_argument("--large", type=int, default=100_000)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--keep", metavar="DIR", help="write the fleets here and keep them")
    args = ap.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="khospec-fleet-"))
    baseline = min(timed([sys.executable, "-c", "import z3, lark"])[0] for _ in range(3))
    print(f"python -c 'import z3, lark': {baseline:.2f} s; {os.cpu_count()} cores")
    cluster = None
    try:
        for name, n, damaged in (("small", args.small, args.small // 80), ("large", args.large, args.large // 100)):
            if n <= 0:
                continue
            folder = base / name
            t0 = time.perf_counter()
            machines = fleetgen.write_fleet(folder, n, damaged, seed=11)
            t1 = time.perf_counter()
            ref = reference(machines)
            t2 = time.perf_counter()
            print(f"\n{name}: generated in {t1 - t0:.1f} s; reference (each log alone, in the bench "
                  f"process) {t2 - t1:.1f} s")
            runs = [("in process (-j 1)", ["-j", "1"]), ("2 local workers (-j 2)", ["-j", "2"])]
            if not args.no_dask:
                if cluster is None:
                    cluster = LocalCluster(2)
                runs.append(("local Dask cluster, 2 workers", ["--scheduler", cluster.address]))
            run_fleet(name, folder, machines, baseline, runs, ref)
            del machines, ref
    finally:
        if cluster is not None:
            cluster.close()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
