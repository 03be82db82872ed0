"""Benchmark checking the bundled spec library.

    python bench/library_bench.py [PATH ...] [--jobs N] [--timeout S]

Runs `khospec check PATH --format json` as a new process (interpreter start, z3 import,
parsing, lowering, solving and replay included) and reports

- the cold wall time of the whole command;
- in this process: parsing and type-checking every spec file, then lowering every
  check under each strategy to Z3 formulas (once, constants symbolic): the cost
  before any solving;
- per result (one check under one strategy and one profile): median, 90th percentile
  and maximum solver time, and how many results fall under 100 ms and under 1 s;
- the checks that cost the most, summed over their strategies and profiles.

The targets (design.md): the whole library cold under 5 s on 2 cores, median check
under 100 ms.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def front_end(paths: list[str]) -> tuple[float, float, int]:
    """Seconds to load and type-check every file, seconds to lower every check under
    each of its strategies to Z3 (once, constants symbolic), and the number of checks."""
    from khospec.api import find_spec_files, load
    from khospec.diagnostics import SourceCache

    t0 = time.perf_counter()
    files, _ = find_spec_files(paths)
    programs = []
    for path, display in files:
        program, _ = load(path, display, SourceCache())
        if program is not None:
            programs.append(program)
    parse = time.perf_counter() - t0

    from khospec.engine.solve import CheckRun  # z3 imported here, after the front end

    t1 = time.perf_counter()
    checks = 0
    for program in programs:
        for c in program.checks:
            checks += 1
            layout = program.layouts[c.layout] if c.layout is not None else None
            for st in c.strategies:
                CheckRun(program, c, st, layout, None, 60000, 0)
    return parse, time.perf_counter() - t1, checks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=["spec"])
    ap.add_argument("--jobs", "-j", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=None)
    args = ap.parse_args()

    print(f"machine: {platform.machine()}, {platform.system()} {platform.release()}, "
          f"{len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}")
    parse, lower, nchecks = front_end(args.paths)
    print(f"in process: parse + type-check {parse * 1000:.0f} ms, lowering to Z3 {lower * 1000:.0f} ms "
          f"({nchecks} checks, every strategy, once)")

    cmd = [sys.executable, "-m", "khospec", "check", *args.paths, "--format", "json"]
    if args.jobs:
        cmd += ["--jobs", str(args.jobs)]
    if args.timeout is not None:
        cmd += ["--timeout", str(args.timeout)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    results = json.loads(proc.stdout)["results"]
    times = sorted(r["time_s"] for r in results)
    met = sum(r["met"] for r in results)
    print(f"cold wall time: {wall:.1f} s for {len(results)} results ({met} as expected), exit {proc.returncode}")
    if not times:
        return 0
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    print(f"per result: median {statistics.median(times) * 1000:.0f} ms, 90th percentile {p90:.2f} s, "
          f"max {times[-1]:.1f} s; under 100 ms: {sum(t < 0.1 for t in times)}, "
          f"under 1 s: {sum(t < 1 for t in times)}; summed {sum(times):.0f} s")
    by_check: dict[tuple[str, str], float] = collections.defaultdict(float)
    for r in results:
        by_check[(r["file"], r["check"])] += r["time_s"]
    print("costliest checks (summed over strategies and profiles):")
    for (file, check), t in sorted(by_check.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {t:7.1f} s  {Path(file).name}::{check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
