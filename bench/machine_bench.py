"""Benchmark `khospec machine` on generated boot logs of growing size.

    python bench/machine_bench.py [--repeat N] [--no-cold]

Writes dmesg-style logs (timestamps, `Zone ranges`, `Movable zone start`, `Early memory
node ranges`, `Initmem setup` lines) for 32 nodes with 40 ranges and for 128 to 4,096
nodes, some nodes interleaved, and times

- in process: reading the log, loading the profile from the prelude, the four questions,
  and the whole command (`khospec.cli.main`, JSON output to a string);
- cold: `python -m khospec machine LOG --arch x86_64` as a new process (interpreter start
  and imports included).

Each time is the median of the repeats. The targets (design.md): 32 nodes with 40 ranges
under 1 s, 1,024 nodes under 10 s, cost growing at most linearly with the ranges.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

GIB = 1 << 30


def make_log(nodes: int, ranges: int) -> str:
    """A boot log of ``nodes`` nodes and ``ranges`` memory ranges (ranges >= nodes).

    Every node owns a 16 GiB slot; some even-numbered nodes lend the middle of their slot
    to the next node, so those two nodes interleave; every node boundary sits 16 MiB into
    a 128 MiB section, as on real SRAT layouts.
    """
    assert nodes <= ranges <= 3 * nodes
    low = (ranges - nodes) % 2  # a small first range below 1 MiB, as on x86
    pairs = (ranges - nodes - low) // 2  # each interleaved pair adds two ranges
    lines = [
        "Linux version 6.12.0-bench (bench@khospec) (gcc (GCC) 14.2.1) #1 SMP PREEMPT_DYNAMIC",
        "Zone ranges:",
        "  DMA      [mem 0x0000000000001000-0x0000000000ffffff]",
        "  DMA32    [mem 0x0000000001000000-0x00000000ffffffff]",
        f"  Normal   [mem 0x0000000100000000-{(nodes + 1) * 16 * GIB + (16 << 20) - 1:#018x}]",
        "  Device   empty",
        "Movable zone start for each node",
        "Early memory node ranges",
    ]
    spans: dict[int, list[int]] = {}

    def add(nid: int, start: int, end: int) -> None:
        lines.append(f"  node {nid:>3}: [mem {start:#018x}-{end - 1:#018x}]")
        lo, hi = spans.get(nid, [start, end])
        spans[nid] = [min(lo, start), max(hi, end)]

    if low:
        add(0, 0x1000, 0x9F000)
    for nid in range(nodes):
        base = (nid + 1) * 16 * GIB
        if nid < 2 * pairs and nid % 2 == 0:
            # node nid lends the middle of its slot to node nid + 1
            add(nid, base + (16 << 20), base + 8 * GIB)
            add(nid + 1, base + 8 * GIB, base + 12 * GIB + (16 << 20))
            add(nid, base + 12 * GIB + (16 << 20), base + 16 * GIB + (16 << 20))
        else:
            add(nid, base + (16 << 20), base + 16 * GIB + (16 << 20))
    for nid in sorted(spans):
        lo, hi = spans[nid]
        lines.append(f"Initmem setup node {nid} [mem {lo:#018x}-{hi - 1:#018x}]")
    return "".join(f"[{i / 1e6:12.6f}] {line}\n" for i, line in enumerate(lines))


def run_command(cli_main: Callable[..., int], argv: list[str]) -> int:
    return cli_main(argv, io.StringIO(), io.StringIO())


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-cold", action="store_true", help="skip the new-process runs")
    args = ap.parse_args()

    from khospec.cli import main as cli_main
    from khospec.machine.importer import read_layout_file
    from khospec.machine.questions import answer, arch_profile

    cases = [("32 nodes, 40 ranges", 32, 40)] + [
        (f"{n} nodes", n, n + n // 4) for n in (128, 256, 1024, 4096)
    ]
    header = (
        f"{'log':<22}{'ranges':>7}{'read':>9}{'profile':>9}{'answers':>9}"
        f"{'command':>10}{'cold':>9}  verdicts"
    )
    print(header)
    print("-" * len(header))
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, nodes, nranges in cases:
            path = Path(tmp) / f"bench-{nodes}.log"
            path.write_text(make_log(nodes, nranges), encoding="utf-8")
            layout = read_layout_file(str(path))
            assert len(layout.nodes) == nodes and len(layout.ranges) == nranges
            prof = arch_profile("x86_64")
            cold = [sys.executable, "-m", "khospec", "machine", str(path), "--arch", "x86_64"]
            argv = ["machine", str(path), "--arch", "x86_64", "--format", "json"]
            t_read = median_time(partial(read_layout_file, str(path)), args.repeat)
            t_prof = median_time(partial(arch_profile, "x86_64"), args.repeat)
            t_answer = median_time(partial(answer, layout, prof), args.repeat)
            t_cmd = median_time(partial(run_command, cli_main, argv), args.repeat)
            t_cold = float("nan")
            if not args.no_cold:
                t_cold = median_time(
                    partial(subprocess.run, cold, capture_output=True, check=False),
                    max(1, min(args.repeat, 3)),
                )
            verdicts = "".join(r.verdict.value[0].upper() for r in answer(layout, prof))
            results[label] = t_cmd
            print(
                f"{label:<22}{len(layout.ranges):>7}{t_read * 1e3:>7.1f}ms{t_prof * 1e3:>7.1f}ms"
                f"{t_answer * 1e3:>7.1f}ms{t_cmd * 1e3:>8.1f}ms{t_cold:>8.2f}s  {verdicts}"
            )
    print()
    print("read: parse the log; profile: the prelude's profile; answers: the four questions;")
    print("command: `khospec machine --format json` in process; cold: a new process (text output).")
    print("verdicts: P proved, R refuted, in the order section, folio, pages chunk, zone search.")
    ok32 = results["32 nodes, 40 ranges"] < 1.0
    ok1024 = results["1024 nodes"] < 10.0
    print(
        f"target 32 nodes / 40 ranges < 1 s: {'met' if ok32 else 'MISSED'}; "
        f"1,024 nodes < 10 s: {'met' if ok1024 else 'MISSED'}"
    )
    return 0 if ok32 and ok1024 else 1


if __name__ == "__main__":
    raise SystemExit(main())
