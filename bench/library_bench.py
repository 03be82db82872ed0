"""Benchmark checking the bundled spec library.

    python bench/library_bench.py [PATH ...] [--jobs N] [--timeout S]

Runs `khospec check PATH --format json` as a new process (interpreter start, z3 import,
parsing, lowering, solving and replay included) and reports

- the cold wall time of the whole command, with an empty verdict cache (a temporary
  KHOSPEC_CACHE_DIR), beside `python -c 'import z3, lark'` timed in the same run;
- the warm wall time: the same cache, the spec library copied into another folder, and
  how many results were solved again (none should be);
- the wall time after editing one strategy (late_init gives every page the head's node)
  in that copy, and which results were solved again (only late_init's should be);
- the ideal wall time on 2, 8 and 64 cores from the per-result times (list scheduling,
  longest first);
- in this process: parsing and type-checking every spec file, then lowering every
  check under each strategy to Z3 formulas (once, constants symbolic): the cost
  before any solving;
- per result (one check under one strategy and one profile): median, 90th percentile
  and maximum solver time, and how many results fall under 100 ms and under 1 s;
- the checks that cost the most, summed over their strategies and profiles.

The targets (design.md): the whole library cold under 60 s on 2 cores (aim 15 s), warm
under 2 s, median result under 100 ms, none over 10 s.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


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


def _run(paths: list[str], extra: list[str], env: dict[str, str], cwd: Path
         ) -> tuple[list[dict[str, Any]] | None, float, int]:
    cmd = [sys.executable, "-m", "khospec", "check", *paths, "--format", "json", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd=cwd)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        print(proc.stderr, file=sys.stderr)
        return None, wall, proc.returncode
    results: list[dict[str, Any]] = json.loads(proc.stdout)["results"]
    return results, wall, proc.returncode


def _list_schedule(times: list[float], cores: int) -> float:
    """The makespan of longest-first list scheduling on ``cores`` workers."""
    load = [0.0] * cores
    for t in sorted(times, reverse=True):
        i = min(range(cores), key=load.__getitem__)
        load[i] += t
    return max(load)


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

    extra = (["--jobs", str(args.jobs)] if args.jobs else []) + (
        ["--timeout", str(args.timeout)] if args.timeout is not None else [])
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import z3, lark"], check=True)
    base = time.perf_counter() - t0
    print(f"python -c 'import z3, lark': {base:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "KHOSPEC_CACHE_DIR": str(Path(tmp) / "cache")}
        results, wall, code = _run(args.paths, extra, env, Path.cwd())
        if results is None:
            return code
        times = sorted(r["time_s"] for r in results)
        met = sum(r["met"] for r in results)
        print(f"cold wall time: {wall:.1f} s ({wall / base:.0f}x the imports) for {len(results)} results "
              f"({met} as expected), exit {code}")
        copy = Path(tmp) / "elsewhere"
        for p in args.paths:
            shutil.copytree(p, copy / p) if Path(p).is_dir() else shutil.copy2(p, copy / p)
        warm, wall_w, _ = _run(args.paths, extra, env, copy)
        print(f"warm wall time (a copy in another folder): {wall_w:.2f} s ({wall_w / base:.1f}x the imports), "
              f"{sum(not r['cached'] for r in warm or [])} of {len(warm or [])} solved again")
        late = copy / "spec" / "strategies" / "late_init.kho"
        if late.exists():
            late.write_text(late.read_text().replace("init_deferred_page(pfn, early_pfn_to_nid(pfn))",
                                                     "init_deferred_page(pfn, early_pfn_to_nid(c.pfn))"))
            edited, wall_e, _ = _run(args.paths, extra, env, copy)
            again = sorted({f"{r['check']}[{r['strategy']}]" for r in edited or [] if not r["cached"]})
            print(f"after editing strategy late_init: {wall_e:.1f} s, "
                  f"{sum(not r['cached'] for r in edited or [])} results solved again: {', '.join(again)}")
    if not times:
        return 0
    for cores in (2, 8, 64):
        print(f"ideal wall time on {cores} cores (list scheduling of the per-result times): "
              f"{_list_schedule(times, cores):.1f} s")
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
