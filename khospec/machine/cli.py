"""``khospec import`` and ``khospec machine``: the command line for real machines.

Both write only to the streams they are given. Exit codes as for ``khospec check``: 0 all
four answers proved, 1 some refuted, 2 bad input (unreadable or layout-less log, unknown
profile, bad layout name).
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Iterable
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from khospec.api import Report
from khospec.counterexample import is_machine
from khospec.diagnostics import Diagnostic, SourceCache, Span, render
from khospec.explain import size_text
from khospec.machine.importer import ImportError_, MachineLayout, read_layout_file
from khospec.machine.questions import (
    CLAIMS,
    ArchProfile,
    UnknownProfile,
    answer,
    arch_profile,
    witness_lines,
    witness_text,
)
from khospec.results import Result, Verdict


def _read(log: str, err: TextIO, page_shift: int | None = None) -> MachineLayout | None:
    """The layout of ``log``, its warnings printed; None, after saying why (KHO601),
    when the log gives none. ``page_shift`` turns a zoneinfo dump's pfns into bytes."""
    try:
        layout = read_layout_file(log, page_shift=page_shift)
    except ImportError_ as exc:
        err.write(render(Diagnostic("KHO601", Span.whole(log), str(exc)), SourceCache()) + "\n")
        return None
    # the renderer of a spec's diagnostics, as `khospec check` prints them:
    # `boot.log:11: warning[KHO602]: ...`
    sources = SourceCache()
    for d in layout.diagnostics:
        err.write(render(d, sources) + "\n")
    return layout


def import_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the log's layout as a spec file."""
    layout = _read(args.log, err)
    if layout is None:
        return 2
    try:
        text = layout.to_spec(args.name)
    except ValueError as exc:  # a --name that is no layout name: bad input
        err.write(f"khospec: error: {exc}\n")
        return 2
    out.write(text)
    return 0


def machine_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Answer the four layout questions for the machine of one log."""
    try:
        prof = arch_profile(args.arch)
    except UnknownProfile as exc:
        err.write(f"khospec: error: {exc}\n")
        return 2
    t0 = time.perf_counter()
    # the profile's page size: /proc/zoneinfo counts pages, not bytes
    layout = _read(args.log, err, prof.page_shift)
    if layout is None:
        return 2
    results = answer(layout, prof, file=args.log)
    report = Report(results=results, time_s=time.perf_counter() - t0)
    if args.format == "json":
        from khospec.report import to_json

        out.write(json.dumps(to_json(report), indent=2) + "\n")
    elif args.format == "sarif":
        from khospec.review import sarif

        out.write(json.dumps(sarif(report), indent=2) + "\n")
    elif args.format == "mail":
        from khospec.review import mail

        out.write(mail(report))
    else:
        out.write(machine_text(layout, prof, report, color=out.isatty()))
    if args.svg:
        from khospec.machine.svg import highlights_for, svg_for_layout

        highlights = [
            h
            for r in results
            if r.counterexample
            for h in highlights_for(r.counterexample, prof.page_shift)
        ]
        svg = svg_for_layout(
            layout,
            prof.page_shift,
            prof.section_bits,
            highlights,
            title=f"{args.log} ({prof.name})",
        )
        # an --svg path that cannot be written is bad input, as an unreadable log is
        try:
            with open(args.svg, "w", encoding="utf-8") as f:
                f.write(svg)
        except OSError as exc:
            err.write(f"khospec: error: cannot write {args.svg}: {exc.strerror or exc}\n")
            return 2
        err.write(f"khospec: wrote {args.svg}\n")
    at_risk = [r.check for r in results if r.verdict is Verdict.REFUTED]
    if at_risk:
        # exit 1 means the machine is at risk, whatever the format; say so where it is read
        err.write(f"khospec: {args.log}: at risk: {', '.join(at_risk)} refuted (exit code 1)\n")
    return report.exit_code()


def fleet_command(args: argparse.Namespace, out: TextIO, err: TextIO, jobs: int, stdin: TextIO) -> int:
    """Answer the four questions for every machine of a fleet (khospec/machine/fleet.py)."""
    from khospec.executor import ExecutorError, make_executor
    from khospec.machine import fleet

    batch = args.batch if args.batch is not None else (fleet.DASK_BATCH if args.scheduler else fleet.DEFAULT_BATCH)
    if batch < 1:
        err.write("khospec: error: --batch must be at least 1\n")
        return 2
    # a wrong --arch fails now, before the first log is read
    if args.arch is not None:
        try:
            arch_profile(args.arch)
        except UnknownProfile as exc:
            err.write(f"khospec: error: {exc}\n")
            return 2
    try:
        manifest = fleet.read_manifest(args.manifest) if args.manifest else None
    except fleet.FleetError as exc:
        err.write(f"khospec: error: {exc}\n")
        return 2
    if not args.paths and manifest is None:
        err.write("khospec: error: nothing to check: give a PATH, `-` for paths on stdin, or --manifest\n")
        return 2
    # `-` stands for the paths on stdin, read as the fleet is streamed; no PATH: the manifest's
    paths: Iterable[str] = (
        (q for p in args.paths for q in (fleet.read_path_list(stdin) if p == "-" else (p,)))
        if args.paths else list(manifest or ())
    )
    inputs = fleet.iter_inputs(paths, fleet.arch_lookup(manifest, args.arch))
    try:
        executor = make_executor(jobs, args.scheduler)
    except ExecutorError as exc:
        err.write(f"khospec: error: {exc}\n")
        return 2
    # on stderr, and only on a terminal: a redirected stream gets no redraws
    bar = _FleetProgress(err) if err.isatty() else None
    try:
        report = fleet.run_fleet(inputs, executor, batch, on_progress=bar.advance if bar else None)
    finally:
        if bar is not None:
            bar.stop()
        executor.close()
    if args.format == "json":
        for chunk in fleet.json_chunks(report):
            out.write(chunk)
    elif args.format == "jsonl":
        for line in fleet.jsonl_lines(report):
            out.write(line + "\n")
    elif args.format == "csv":
        out.write(fleet.csv_text(report))
    else:
        out.write(fleet.fleet_text(report, color=out.isatty()))
    if args.svg:
        try:
            with open(args.svg, "w", encoding="utf-8") as f:
                f.write(fleet.fleet_svg(report))
        except OSError as exc:
            err.write(f"khospec: error: cannot write {args.svg}: {exc.strerror or exc}\n")
            return 2
        err.write(f"khospec: wrote {args.svg}\n")
    s = report.summary()
    # the exit code folds damaged inputs and machines at risk into one number: say both
    err.write(
        f"khospec: fleet: {s['inputs']} inputs, {s['damaged']} damaged, {s['at_risk']} at risk, "
        f"{s['layouts']} distinct layouts (exit code {report.exit_code()})\n"
    )
    return report.exit_code()


class _FleetProgress:
    """Logs read so far and the rate, on a terminal only."""

    def __init__(self, stream: TextIO) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            SpinnerColumn(), TextColumn("reading logs: {task.completed:,.0f}"),
            TextColumn("({task.fields[rate]})"), TimeElapsedColumn(),
            console=Console(file=stream), transient=True,
        )
        # no total: the paths stream in, so their number is not known up front
        self._task = self._bar.add_task("", total=None, rate="")
        self._t0 = time.monotonic()
        self._done = 0
        self._bar.start()

    def advance(self, n: int) -> None:
        self._done += n
        dt = max(1e-9, time.monotonic() - self._t0)
        self._bar.update(self._task, advance=n, rate=f"{self._done / dt:,.0f}/s")

    def stop(self) -> None:
        self._bar.stop()


_STYLE = {Verdict.PROVED: "green", Verdict.REFUTED: "red"}


def machine_text(
    layout: MachineLayout, prof: ArchProfile, report: Report, color: bool = False, width: int = 140
) -> str:
    """The answers as a table, each refutation's witness, and a map of the machine."""
    from khospec.machine.svg import highlights_for, terminal_map

    buf = io.StringIO()
    # the caller decides colour and width; highlight off: rich would colour numbers
    console = Console(
        file=buf,
        force_terminal=color,
        no_color=not color,
        width=width,
        highlight=False,
        soft_wrap=True,
    )
    # a log of several boots: the importer took the last with a complete layout
    boot = f", boot {layout.boot} of {layout.boots}" if layout.boots > 1 else ""
    memoryless = (
        f", memoryless: {', '.join(map(str, layout.memoryless))}" if layout.memoryless else ""
    )
    console.print(f"machine:  {layout.source}{boot}", markup=False)
    console.print(
        f"memory:   {len(layout.nodes)} node(s), {len(layout.ranges)} range(s), "
        f"{size_text(layout.total)}{memoryless} (from {layout.origin})",
        markup=False,
    )
    console.print(
        f"profile:  {prof.name}: {size_text(1 << prof.page_shift)} pages, "
        f"{size_text(1 << prof.section_bits)} sections, MAX_PAGE_ORDER {prof.max_order} "
        f"({size_text(1 << (prof.max_order + prof.page_shift))} blocks)",
        markup=False,
    )
    console.print()
    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    t.add_column("question", no_wrap=True)
    t.add_column("verdict", no_wrap=True)
    t.add_column("why")
    # a refuted answer shows its witness, a proved one the sentence saying why
    for r in report.results:
        why = witness_text(r) if r.counterexample else (r.notes[0] if r.notes else "")
        t.add_row(r.check, Text(r.verdict.value, style=_STYLE.get(r.verdict, "")), Text(why))
    console.print(t)
    for r in report.results:
        cx = r.counterexample
        if cx is None or not is_machine(cx):
            continue
        console.print()
        console.print(Text(f"refuted: {r.check}: {CLAIMS.get(r.check, '')}", style="red"))
        for line in witness_lines(cx):
            console.print("  " + line, markup=False)
    highlights = [
        h
        for r in report.results
        if r.counterexample
        for h in highlights_for(r.counterexample, prof.page_shift)
    ]
    console.print()
    console.print(terminal_map(layout, prof.page_shift, highlights).rstrip("\n"), markup=False)
    console.print()
    console.print(
        Text(
            _summary(report.results, report.time_s), style="bold" if report.all_met else "bold red"
        )
    )
    # the table pads its last column; trailing blanks only get in the way of a paste
    return "\n".join(line.rstrip(" ") for line in buf.getvalue().split("\n"))


def _summary(results: list[Result], time_s: float) -> str:
    """The closing line: the answers by verdict and the time they took."""
    proved = sum(1 for r in results if r.verdict is Verdict.PROVED)
    refuted = sum(1 for r in results if r.verdict is Verdict.REFUTED)
    return f"{len(results)} answers: {proved} proved, {refuted} refuted; {time_s:.3f}s"


__all__ = ["fleet_command", "import_command", "machine_command", "machine_text"]
