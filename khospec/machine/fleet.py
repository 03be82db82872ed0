"""Fleets: the four layout questions for every machine of a data centre.

A fleet is a set of boot logs (or /proc/zoneinfo dumps) as ``khospec machine`` reads
them: files, folders searched recursively, ``.tar``/``.tar.gz`` archives, or a list of
paths. Machines with the same layout are answered once: the answers depend only on the
architecture profile and the node ranges in whole pages (``questions.pfn_ranges``), so
that pair is the layout's key. Log noise (prefixes, timestamps, unrelated lines) and the
log's own line numbers do not enter it.

The work runs in two passes, each in batches on an executor (khospec.executor): reading
every log into its key, then answering every distinct key. Only a key and, for a key
seen first, its layout come back from a reader, so a fleet is streamed: no log text is
held after its batch. Every input ends up in the report exactly once, answered or
damaged with its reason; one damaged file never stops the rest. The report is sorted by
input order and the layouts are numbered by their first machine, so it is the same
whatever ran the batches, and in whatever order they finished.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import os
import tarfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from khospec import ir
from khospec.counterexample import is_machine
from khospec.diagnostics import Diagnostic, SourceCache, Span, render
from khospec.machine.importer import ImportError_, MachineLayout, parse_layout
from khospec.machine.questions import (
    QUESTIONS,
    ArchProfile,
    answer,
    builtin_profiles,
    pfn_ranges,
)
from khospec.results import Result, Verdict

# log lines a fleet's logs have at most before the layout blocks have been read; the
# importer reads the whole text, so the size is capped to keep a stray core dump out
MAX_LOG_BYTES = 64 << 20

# inputs per batch: large enough that a batch's cost dwarfs sending it, small enough
# that two workers share a small fleet
DEFAULT_BATCH = 64
# a Dask task costs the client a few milliseconds: 30,300 logs took 24-25 s in batches of
# 256 and 28-31 s in batches of 64 on a local two-worker cluster (BENCHMARKS.md)
DASK_BATCH = 256

_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")

LayoutKey = tuple[str, tuple[tuple[int, int, int], ...]]


class FleetError(Exception):
    """Bad arguments for the whole fleet (no inputs, an unreadable manifest)."""


@dataclass(frozen=True)
class FleetInput:
    """One machine's log: ``name`` is how the report calls it (the path as found, or
    ``ARCHIVE!MEMBER``); ``data`` is its bytes when they do not live at ``name``."""

    name: str
    arch: str | None
    data: bytes | None = None
    error: str | None = None  # why it could not even be read (archive damage)


@dataclass(frozen=True)
class Parsed:
    """A reader's answer for one input: its key, or why it is damaged."""

    index: int
    name: str
    arch: str | None
    key: LayoutKey | None
    layout: MachineLayout | None  # only when the reader saw ``key`` first in its batch
    error: str | None
    warnings: int


@dataclass(frozen=True)
class FleetMachine:
    file: str
    arch: str | None
    status: str  # "answered" | "damaged"
    layout: str | None  # the layout's id
    error: str | None
    warnings: int

    def to_json(self, answers: dict[str, str] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "arch": self.arch, "status": self.status}
        if self.status == "answered":
            out["layout"] = self.layout
            out["answers"] = answers or {}
        else:
            out["error"] = self.error
        if self.warnings:
            out["warnings"] = self.warnings
        return out


@dataclass(frozen=True)
class FleetLayout:
    id: str
    arch: str
    ranges: tuple[tuple[int, int, int], ...]  # (first pfn, pfn after the last, node)
    page_shift: int
    example: str  # the first machine with this layout: its log gives the witness' lines
    machines: int
    results: tuple[Result, ...]

    @property
    def answers(self) -> dict[str, str]:
        return {r.check: r.verdict.value for r in self.results}

    @property
    def at_risk(self) -> bool:
        return any(r.verdict is Verdict.REFUTED for r in self.results)

    def to_json(self) -> dict[str, Any]:
        from khospec.machine.questions import witness_text

        ps = self.page_shift
        return {
            "id": self.id,
            "arch": self.arch,
            "machines": self.machines,
            "example": self.example,
            "ranges": [
                {"start": hex(s << ps), "end": hex(e << ps), "node": n} for s, e, n in self.ranges
            ],
            "answers": self.answers,
            "witnesses": {
                r.check: witness_text(r) for r in self.results if r.verdict is Verdict.REFUTED
            },
        }


@dataclass(frozen=True)
class FleetReport:
    machines: tuple[FleetMachine, ...]
    layouts: tuple[FleetLayout, ...]
    time_s: float
    executor: str

    @functools.cached_property
    def _answers(self) -> dict[str, dict[str, str]]:
        # every machine's answers are its layout's: looked up once per layout, not per machine
        return {lay.id: lay.answers for lay in self.layouts}

    def answers_of(self, m: FleetMachine) -> dict[str, str] | None:
        return self._answers.get(m.layout) if m.layout is not None else None

    def summary(self) -> dict[str, Any]:
        # each layout knows how many machines have it: the counts follow from the layouts
        per_q: dict[str, Counter[str]] = {q: Counter() for q in QUESTIONS}
        for lay in self.layouts:
            for q, v in lay.answers.items():
                per_q[q][v] += lay.machines
        answered = sum(lay.machines for lay in self.layouts)
        return {
            "inputs": len(self.machines),
            "answered": answered,
            "damaged": len(self.machines) - answered,
            "layouts": len(self.layouts),
            "at_risk": sum(lay.machines for lay in self.layouts if lay.at_risk),
            "questions": {
                q: {v.value: per_q[q].get(v.value, 0) for v in (Verdict.PROVED, Verdict.REFUTED)}
                for q in QUESTIONS
            },
            "time_s": round(self.time_s, 3),
        }

    def exit_code(self) -> int:
        """As ``khospec machine``: 2 when an input is damaged (bad input), else 1 when a
        machine is at risk, else 0."""
        if any(m.status == "damaged" for m in self.machines):
            return 2
        return 1 if any(lay.at_risk for lay in self.layouts) else 0


# ---------------------------------------------------------------- inputs


def _is_archive(path: str) -> bool:
    return path.endswith(_ARCHIVE_SUFFIXES)


def is_fleet_path(path: str) -> bool:
    """A folder or an archive: many machines, not one log."""
    return os.path.isdir(path) or (_is_archive(path) and os.path.isfile(path))


def _archive_members(path: str, arch: Callable[[str], str | None]) -> Iterator[FleetInput]:
    """The regular files of a tar archive, read one at a time."""
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = f"{path}!{member.name}"
                f = tar.extractfile(member)
                data = f.read(MAX_LOG_BYTES + 1) if f is not None else b""
                yield FleetInput(name, arch(name), data)
    except (OSError, tarfile.TarError, EOFError) as exc:
        # the members read so far stay in the report; the archive itself is damaged
        yield FleetInput(path, arch(path), error=f"cannot read the archive: {exc}")


def iter_inputs(
    paths: Iterable[str], arch: Callable[[str], str | None]
) -> Iterator[FleetInput]:
    """Every log under ``paths``: files, folders (recursively, in name order) and tar
    archives (wherever found). A path that does not exist is an input too, damaged."""
    for raw in paths:
        if os.path.isdir(raw):
            for root, dirs, files in os.walk(raw):
                dirs.sort()
                for fn in sorted(files):
                    full = os.path.join(root, fn)
                    if _is_archive(full):
                        yield from _archive_members(full, arch)
                    else:
                        yield FleetInput(full, arch(full))
        elif _is_archive(raw) and os.path.isfile(raw):
            yield from _archive_members(raw, arch)
        else:
            yield FleetInput(raw, arch(raw))


def read_path_list(stream: io.TextIOBase | Any) -> Iterator[str]:
    """``-``: one path per line; blank lines and ``#`` comments are skipped."""
    for line in stream:
        s = line.strip()
        if s and not s.startswith("#"):
            yield s


def read_manifest(path: str) -> dict[str, str]:
    """``file,arch`` pairs from a CSV file (with that header) or JSON Lines (``.jsonl``,
    ``.json``: one ``{"file": ..., "arch": ...}`` per line), in the manifest's order. A
    relative file name is taken from the current folder, or from the manifest's folder
    where only that one has it."""
    base = os.path.dirname(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FleetError(f"cannot read the manifest {path}: {exc}") from exc
    out: dict[str, str] = {}
    if path.endswith((".jsonl", ".json")):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out[_resolve(str(row["file"]), base)] = str(row["arch"])
            except (ValueError, KeyError, TypeError) as exc:
                raise FleetError(
                    f"{path}:{n}: not a manifest line (want {{\"file\": ..., \"arch\": ...}}): {exc}"
                ) from exc
        return out
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"file", "arch"} <= set(reader.fieldnames):
        raise FleetError(f"{path}:1: a CSV manifest needs the header `file,arch`")
    for row in reader:
        if row.get("file") and row.get("arch"):
            out[_resolve(row["file"].strip(), base)] = row["arch"].strip()
    return out


def _resolve(name: str, base: str) -> str:
    archive, sep, member = name.partition("!")
    if (base and not os.path.isabs(archive) and not os.path.exists(archive)
            and os.path.exists(os.path.join(base, archive))):
        archive = os.path.join(base, archive)
    return archive + sep + member


def _key(name: str) -> str:
    """Manifest names and found paths compare as absolute, normalised paths (``./a//b``
    is ``$PWD/a/b``); an archive member by the archive's path and its own."""
    archive, sep, member = name.partition("!")
    return os.path.abspath(archive) + sep + (os.path.normpath(member) if sep else "")


def arch_lookup(manifest: dict[str, str] | None, default: str | None) -> Callable[[str], str | None]:
    table = {_key(k): v for k, v in (manifest or {}).items()}

    def arch(name: str) -> str | None:
        return table.get(_key(name), default)

    return arch


# ---------------------------------------------------------------- the two passes


def layout_key(layout: MachineLayout, prof: ArchProfile) -> LayoutKey:
    return prof.name, tuple((r.start, r.end, r.nid) for r in pfn_ranges(layout, prof.page_shift))


def _damage(name: str, code: str, message: str) -> str:
    """Why an input is damaged, as the command line prints a diagnostic (the fleet's JSON
    carries the text)."""
    return render(Diagnostic(code, Span.whole(name), message), SourceCache())


def read_batch(batch: Sequence[tuple[int, FleetInput]]) -> list[Parsed]:
    """Pass 1, in a worker: each log's layout key, or why it is damaged."""
    profiles = builtin_profiles()
    seen: set[LayoutKey] = set()
    out = []
    for index, item in batch:
        prof = profiles.get(item.arch) if item.arch else None
        if item.error is not None:  # unreadable before its architecture matters
            out.append(Parsed(index, item.name, item.arch, None, None, _damage(item.name, "KHO601", item.error), 0))
            continue
        if prof is None:
            why = (
                f"no architecture: `{item.arch}` is not a built-in profile (see `khospec profiles`)"
                if item.arch
                else "no architecture: give --arch, or list the file in the --manifest"
            )
            out.append(Parsed(index, item.name, item.arch, None, None, _damage(item.name, "KHO606", why), 0))
            continue
        try:
            layout = _read_layout(item, prof.page_shift)
            key = layout_key(layout, prof)
            if not key[1]:
                raise ImportError_("no whole page of memory in the layout")
        except ImportError_ as exc:
            out.append(Parsed(index, item.name, item.arch, None, None, _damage(item.name, "KHO601", str(exc)), 0))
            continue
        first = key not in seen
        seen.add(key)
        out.append(Parsed(index, item.name, item.arch, key, layout if first else None, None, len(layout.diagnostics)))
    return out


_GZIP_MAGIC = b"\x1f\x8b"


def _read_layout(item: FleetInput, page_shift: int | None = None) -> MachineLayout:
    """The input's layout as ``khospec machine`` reads it; ImportError_ says why not."""
    if item.error is not None:
        raise ImportError_(item.error)
    return parse_layout(_log_bytes(item).decode("utf-8", errors="replace"), item.name, page_shift=page_shift)


def _log_bytes(item: FleetInput) -> bytes:
    """The log's bytes, gunzipped if they are gzip data (``dmesg.log.gz``, whatever the
    name), at most MAX_LOG_BYTES of them."""
    data = item.data if item.data is not None else _read_bytes(item.name)
    if data.startswith(_GZIP_MAGIC):
        # a bounded decompressor: a small file may unpack to any size
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            data = d.decompress(data, MAX_LOG_BYTES + 1)
        except zlib.error as exc:
            raise ImportError_(f"cannot read the log: damaged gzip data ({exc})") from exc
        if not d.eof and len(data) <= MAX_LOG_BYTES:
            raise ImportError_("cannot read the log: the gzip data ends early (a truncated file)")
    if len(data) > MAX_LOG_BYTES:
        raise ImportError_(f"the file is over {MAX_LOG_BYTES >> 20} MiB: not a boot log")
    return data


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(MAX_LOG_BYTES + 1)
    except OSError as exc:
        raise ImportError_(f"cannot read the log: {exc.strerror or exc}") from exc


def answer_batch(batch: Sequence[tuple[LayoutKey, MachineLayout, str]]) -> list[tuple[LayoutKey, list[Result]]]:
    """Pass 2, in a worker: the four answers for each distinct layout."""
    profiles = builtin_profiles()
    return [(key, answer(layout, profiles[key[0]], file=example)) for key, layout, example in batch]


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for it in items:
        batch.append(it)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_fleet(
    inputs: Iterable[FleetInput],
    executor: Any,
    batch_size: int = DEFAULT_BATCH,
    on_progress: Callable[[int], None] | None = None,
) -> FleetReport:
    """Read and answer every input on ``executor`` (khospec.executor)."""
    t0 = time.perf_counter()
    # machine index -> (name, arch, key | None, error | None, warnings)
    machines: dict[int, tuple[str, str | None, LayoutKey | None, str | None, int]] = {}
    first: dict[LayoutKey, tuple[int, MachineLayout, str]] = {}
    # one copy of each key and architecture name, whatever number of machines share it
    interned: dict[Any, Any] = {}
    for _, parsed in executor.map_unordered(read_batch, _batches(enumerate(inputs), batch_size)):
        for p in parsed:
            key = interned.setdefault(p.key, p.key)
            arch = interned.setdefault(p.arch, p.arch)
            machines[p.index] = (p.name, arch, key, p.error, p.warnings)
            if p.key is not None and p.layout is not None:
                known = first.get(p.key)
                # the layout shown is the first machine's in input order, whoever read it
                if known is None or p.index < known[0]:
                    first[p.key] = (p.index, p.layout, p.name)
        if on_progress is not None:
            on_progress(len(parsed))
    keys = sorted(first, key=lambda k: first[k][0])
    ids = {k: f"L{i}" for i, k in enumerate(keys, 1)}
    counts = Counter(m[2] for m in machines.values() if m[2] is not None)
    answered: dict[LayoutKey, list[Result]] = {}
    todo = [(k, first[k][1], first[k][2]) for k in keys]
    per = max(1, min(batch_size, -(-len(todo) // max(1, executor.workers))))
    for _, batch_out in executor.map_unordered(answer_batch, _batches(todo, per)):
        answered.update(batch_out)
    profiles = builtin_profiles()
    layouts = tuple(
        FleetLayout(ids[k], k[0], k[1], profiles[k[0]].page_shift, first[k][2], counts[k], tuple(answered[k]))
        for k in keys
    )
    out = tuple(
        FleetMachine(
            name, arch, "answered" if key is not None else "damaged",
            ids[key] if key is not None else None, err, warns,
        )
        for _, (name, arch, key, err, warns) in sorted(machines.items())
    )
    return FleetReport(out, layouts, time.perf_counter() - t0, executor.description)


# ---------------------------------------------------------------- for `check --layout`


@dataclass(frozen=True)
class FleetLayoutDef:
    """A distinct layout of a fleet as a spec layout, for the library's machine checks."""

    layout: ir.LayoutDef
    machines: int
    example: str


def def_batch(batch: Sequence[tuple[int, FleetInput]]) -> list[tuple[int, str, ir.LayoutDef | None, str | None]]:
    """Each log's layout as ``khospec check --layout LOG`` reads it, or why it is damaged."""
    out: list[tuple[int, str, ir.LayoutDef | None, str | None]] = []
    for index, item in batch:
        try:
            layout = _read_layout(item)
            # the name is given once per distinct layout, by its first machine
            out.append((index, item.name, dataclasses.replace(layout.to_layout_def(), name="machine"), None))
        except ImportError_ as exc:
            out.append((index, item.name, None, _damage(item.name, "KHO601", str(exc))))
    return out


def distinct_layout_defs(
    paths: Iterable[str], executor: Any, batch_size: int = DEFAULT_BATCH
) -> tuple[list[FleetLayoutDef], list[str]]:
    """The fleet's distinct layouts in the order of their first machine, each named after
    that machine's file (made unique), and the damaged inputs' errors."""
    rows: dict[int, tuple[str, ir.LayoutDef | None, str | None]] = {}
    inputs = iter_inputs(paths, lambda _: None)
    for _, got in executor.map_unordered(def_batch, _batches(enumerate(inputs), batch_size)):
        for index, name, ld, err in got:
            rows[index] = (name, ld, err)
    first: dict[ir.LayoutDef, tuple[str, int]] = {}
    errors = []
    for _, (name, ld, err) in sorted(rows.items()):
        if ld is None:
            errors.append(err or name)
            continue
        example, n = first.get(ld, (name, 0))
        first[ld] = (example, n + 1)
    out: list[FleetLayoutDef] = []
    taken: set[str] = set()
    for ld, (example, n) in first.items():
        base = MachineLayout((), source=example.rpartition("!")[2]).default_name
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        out.append(FleetLayoutDef(dataclasses.replace(ld, name=name), n, example))
    return out, errors


# ---------------------------------------------------------------- reports


def to_json(report: FleetReport) -> dict[str, Any]:
    from khospec import __version__

    return {
        "tool": "khospec",
        "version": __version__,
        "machines": [m.to_json(report.answers_of(m)) for m in report.machines],
        "layouts": [lay.to_json() for lay in report.layouts],
        "summary": report.summary(),
    }


def json_chunks(report: FleetReport) -> Iterator[str]:
    """``to_json`` as text, one machine per line, without building the whole document:
    a fleet of 100,000 machines would hold it several times over in memory."""
    from khospec import __version__

    def nested(value: Any) -> str:
        return json.dumps(value, indent=2).replace("\n", "\n  ")

    yield "{\n"
    yield f'  "tool": "khospec",\n  "version": {json.dumps(__version__)},\n'
    yield '  "machines": ['
    for i, m in enumerate(report.machines):
        yield ("\n" if i == 0 else ",\n") + "    " + json.dumps(m.to_json(report.answers_of(m)))
    yield "\n  ],\n" if report.machines else "],\n"
    yield f'  "layouts": {nested([lay.to_json() for lay in report.layouts])},\n'
    yield f'  "summary": {nested(report.summary())}\n'
    yield "}\n"


def jsonl_lines(report: FleetReport) -> Iterator[str]:
    """One machine per line, in input order (the layouts and summary are in ``json``)."""
    for m in report.machines:
        yield json.dumps(m.to_json(report.answers_of(m)), separators=(",", ":"))


CSV_FIELDS = ("file", "arch", "status", "layout", *QUESTIONS, "error")


def csv_text(report: FleetReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for m in report.machines:
        answers = report.answers_of(m) or {}
        w.writerow([m.file, m.arch or "", m.status, m.layout or "",
                    *(answers.get(q, "") for q in QUESTIONS), m.error or ""])
    return buf.getvalue()


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def fleet_text(report: FleetReport, color: bool = False, damaged_shown: int = 20) -> str:
    """At-risk machines first, grouped by layout with the witness; then the counts."""
    from rich.console import Console
    from rich.table import Table

    from khospec.machine.questions import witness_lines, witness_text

    s = report.summary()
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color, width=100, highlight=False, soft_wrap=True)
    console.print(
        f"khospec fleet: {_count(s['inputs'], 'input')}, {s['answered']:,} answered, "
        f"{s['damaged']:,} damaged, {_count(s['layouts'], 'distinct layout')} "
        f"({report.time_s:.1f} s, {report.executor})"
    )
    risky = [lay for lay in report.layouts if lay.at_risk]
    console.print()
    if risky:
        n = sum(lay.machines for lay in risky)
        console.print(f"[bold red]At risk[/]: {_count(n, 'machine')} in {_count(len(risky), 'layout')}")
        for lay in sorted(risky, key=lambda la: (-la.machines, la.id)):
            console.print(
                f"  {lay.id}  {lay.arch}  {_count(lay.machines, 'machine')}, "
                f"e.g. {lay.example}", markup=False,
            )
            for r in lay.results:
                if r.verdict is Verdict.REFUTED:
                    # the witness as `khospec machine` prints it, lines of the example's log
                    console.print(f"    {r.check}: refuted: {witness_text(r)}", markup=False)
                    cx = r.counterexample
                    if cx is not None and is_machine(cx):
                        for line in witness_lines(cx):
                            console.print(f"      {line}", markup=False)
    else:
        console.print("No machine at risk.")
    console.print()
    table = Table(title="Answers per question (machines)", title_justify="left", box=None)
    table.add_column("question")
    table.add_column("proved", justify="right")
    table.add_column("refuted", justify="right")
    for q, counts in s["questions"].items():
        table.add_row(q, f"{counts['proved']:,}", f"{counts['refuted']:,}")
    console.print(table)
    damaged = [m for m in report.machines if m.status == "damaged"]
    if damaged:
        console.print()
        console.print(f"Damaged: {_count(len(damaged), 'input')}")
        for m in damaged[:damaged_shown]:
            console.print(f"  {m.error}", markup=False)
        if len(damaged) > damaged_shown:
            console.print(f"  ... and {len(damaged) - damaged_shown:,} more (all in --format json/csv)")
    # the table pads its cells; trailing blanks only get in the way of a paste
    return "\n".join(line.rstrip(" ") for line in buf.getvalue().split("\n"))


def fleet_svg(report: FleetReport) -> str:
    """The distribution: one bar per layout, as long as its share of machines, red when
    the layout is at risk; damaged inputs as a grey bar."""
    from xml.sax.saxutils import escape

    rows = [(lay.id, f"{lay.arch}, e.g. {lay.example}", lay.machines, "#c0392b" if lay.at_risk else "#27ae60")
            for lay in sorted(report.layouts, key=lambda la: (-la.machines, la.id))]
    damaged = sum(1 for m in report.machines if m.status == "damaged")
    if damaged:
        rows.append(("damaged", "no layout read", damaged, "#95a5a6"))
    total = max(1, len(report.machines))
    width, bar_x, bar_w, row_h = 900, 90, 420, 22
    height = 50 + row_h * len(rows)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<text x="10" y="20" font-size="14">{escape(_count(len(report.machines), "machine"))} in '
        f'{escape(_count(len(report.layouts), "layout"))}: red at risk, green safe</text>',
    ]
    for i, (label, note, n, fill) in enumerate(rows):
        y = 40 + i * row_h
        w = max(1, round(bar_w * n / total))
        parts.append(f'<text x="10" y="{y + 14}">{escape(label)}</text>')
        parts.append(f'<rect x="{bar_x}" y="{y + 2}" width="{w}" height="{row_h - 6}" fill="{fill}">'
                     f'<title>{escape(label)}: {n} machines</title></rect>')
        parts.append(f'<text x="{bar_x + w + 6}" y="{y + 14}">{n:,}  {escape(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


__all__ = [
    "FleetError",
    "FleetInput",
    "FleetLayout",
    "FleetMachine",
    "FleetReport",
    "answer_batch",
    "arch_lookup",
    "csv_text",
    "def_batch",
    "distinct_layout_defs",
    "fleet_svg",
    "fleet_text",
    "is_fleet_path",
    "iter_inputs",
    "json_chunks",
    "jsonl_lines",
    "layout_key",
    "read_batch",
    "read_manifest",
    "read_path_list",
    "run_fleet",
    "to_json",
]
