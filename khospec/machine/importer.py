"""A real machine's memory layout, read from a boot log (dmesg) or a /proc/zoneinfo dump.

The boot log is the better source. ``free_area_init()`` (mm/mm_init.c) prints three
blocks, every address in bytes with an *inclusive* end::

    Zone ranges:
      DMA      [mem 0x0000000000001000-0x0000000000ffffff]
      DMA32    empty
    Movable zone start for each node
      Node 0: 0x0000000100000000
    Early memory node ranges
      node   0: [mem 0x0000000000001000-0x000000000009afff]

and ``free_area_init_node()`` then prints ``Initmem setup node N [mem A-B]`` (or ``as
memoryless``), the node's span, which is used here to cross-check the ranges. Lines may
carry timestamps, caller ids, printk levels, ``dmesg -x`` facilities or syslog/journal
prefixes; all are stripped. A line inside a block that does not parse is skipped with a
warning naming it, so a damaged log never loses memory silently.

/proc/zoneinfo gives each zone's ``start_pfn`` and ``spanned``/``present`` page counts:
spans, not memory. Holes inside a span cannot be placed, so spans are taken as memory
(with a warning saying how many pages that over-counts). Older powerpc kernels also print
``Node N Memory: 0xA-0xB`` (exclusive ends, section granular); it is used only when the
log has no ``Early memory node ranges``.

A log holding several boots (a second ``Linux version`` banner, or a second layout
without one, as after kexec or with a persistent console log) is read boot by boot and
the last boot with a complete layout is used; a warning says which.

Addresses here are physical byte addresses, ranges ``[start, end)`` end-exclusive, as in
a spec's ``layout`` block (khospec.ir.LayoutDef).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from khospec import ir
from khospec.diagnostics import Diagnostic, Severity, SourceCache, Span, render
from khospec.explain import size_text

# include/linux/mmzone.h: enum zone_type, in the order the spec language numbers zones
ZONE_ORDER = ("DMA", "DMA32", "Normal", "Movable", "Device")
_ZONE_INDEX = {name: i for i, name in enumerate(ZONE_ORDER)}

# Names a layout may not take: the language's keywords and types.
_KEYWORDS = (
    "import param const enum struct fn emits axiom assume before state step when "
    "strategy extends profile layout node zone empty movable mirror check always after "
    "requirement under for assuming on depth expect let var if else in where nodes "
    "ranges while invariant require emit return true false or and not first forall "
    "exists bool int uint long ulong u8 u16 u32 u64 s8 s16 s32 s64 phys_addr_t "
    "mirrored_kernelcore"
)
_RESERVED = frozenset(_KEYWORDS.split())
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# How many lines that are not entries a block may hold between two of its entries
# (interleaved messages, garbage) before the block counts as ended.
_MAX_PENDING = 8
_DEFAULT_PAGE_SHIFT = 12


class ImportError_(Exception):
    """The file holds no usable layout. The message is shown as ``LOG: error[KHO601]: ...``
    and says what was expected."""


class LogLine(Span):
    """A whole line of a log. It prints as ``file:line``: a log message is about a line,
    and a column would point into timestamps and prefixes the reader strips anyway."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    @staticmethod
    def at(file: str, line: int) -> LogLine:
        # to the start of the next line: a caret under a source excerpt covers the line
        return LogLine(file, line, 1, line + 1, 1)


def log_warning(source: str, line: int, code: str, message: str) -> Diagnostic:
    """A warning of the reader at ``line`` of the log ``source``."""
    return Diagnostic(code, LogLine.at(source, line), message, severity=Severity.WARNING)


@dataclass(frozen=True)
class MemRange:
    """One memory range of a node: physical addresses ``[start, end)``."""

    start: int
    end: int
    nid: int
    line: int = 0  # the log line it was read from (0: not from a log line)

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class MachineLayout:
    """A machine's memory layout as its kernel saw it at boot.

    ``ranges`` are sorted and disjoint. ``zones`` holds the zones the log names, in zone
    order, each with its limits ``[start, end)`` or ``None`` when the log says ``empty``.
    ``movable`` is ``(nid, start address)`` of ZONE_MOVABLE per node ("Movable zone start
    for each node"); ``mirror`` the MEMBLOCK_MIRROR ranges if the log shows them.
    """

    ranges: tuple[MemRange, ...]
    zones: tuple[tuple[str, tuple[int, int] | None], ...] = ()
    movable: tuple[tuple[int, int], ...] = ()
    mirror: tuple[tuple[int, int], ...] = ()
    source: str = "<layout>"
    boot: int = 1  # which boot of the log was used (1-based)
    boots: int = 1  # how many boots the log holds
    diagnostics: tuple[Diagnostic, ...] = ()  # the reader's warnings, each at a line of the log
    memoryless: tuple[int, ...] = ()  # nodes the log names that own no memory
    mirrored_kernelcore: bool | None = None  # kernelcore=mirror on the command line
    origin: str = "Early memory node ranges"  # where the memory ranges were read
    page_shift: int | None = None  # the page size used to turn pfns into addresses, if any

    def __post_init__(self) -> None:
        for r in self.ranges:
            if not 0 <= r.start < r.end <= 1 << 64:
                raise ValueError(
                    f"range [{r.start:#x}, {r.end:#x}) of node {r.nid} is empty or outside 64 bits"
                )
        for a, b in itertools.pairwise(self.ranges):
            if b.start < a.end:
                raise ValueError(
                    f"ranges [{a.start:#x}, {a.end:#x}) and [{b.start:#x}, {b.end:#x}) "
                    "are not sorted and disjoint"
                )
        for name, _ in self.zones:
            if name not in _ZONE_INDEX:
                raise ValueError(f"unknown zone {name!r}")

    @property
    def warnings(self) -> tuple[str, ...]:
        """The diagnostics as the command line prints them: ``file:line: warning[KHO6xx]: ...``."""
        sources = SourceCache()  # no excerpt of the log: the message quotes what matters
        return tuple(render(d, sources) for d in self.diagnostics)

    @classmethod
    def from_ranges(cls, ranges: Iterable[tuple[int, int, int]], **kwargs: object) -> MachineLayout:
        """A layout from ``(start, end, nid)`` triples in any order (tests, scripts)."""
        rs = tuple(sorted((MemRange(s, e, n) for s, e, n in ranges), key=lambda r: r.start))
        return cls(rs, **kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------ views

    @property
    def nodes(self) -> tuple[int, ...]:
        """The nodes that own memory, ascending."""
        return tuple(sorted({r.nid for r in self.ranges}))

    @property
    def all_nodes(self) -> tuple[int, ...]:
        return tuple(sorted({r.nid for r in self.ranges} | set(self.memoryless)))

    @property
    def total(self) -> int:
        return sum(r.size for r in self.ranges)

    def by_node(self) -> dict[int, tuple[MemRange, ...]]:
        """Each node's ranges in address order (one pass: callers loop over nodes)."""
        out: dict[int, list[MemRange]] = {}
        for r in self.ranges:
            out.setdefault(r.nid, []).append(r)
        return {nid: tuple(rs) for nid, rs in sorted(out.items())}

    def node_ranges(self, nid: int) -> tuple[MemRange, ...]:
        return tuple(r for r in self.ranges if r.nid == nid)

    def node_span(self, nid: int) -> tuple[int, int] | None:
        """``[min start, max end)`` of the node's ranges (None for a memoryless node)."""
        rs = self.node_ranges(nid)
        if not rs:
            return None
        return min(r.start for r in rs), max(r.end for r in rs)

    def zone(self, name: str) -> tuple[int, int] | None:
        for z, lim in self.zones:
            if z == name:
                return lim
        return None

    @property
    def default_name(self) -> str:
        """A layout name made from the file name (a valid spec identifier)."""
        stem = (
            Path(self.source).stem if self.source and not self.source.startswith("<") else "machine"
        )
        name = re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_") or "machine"
        if name[0].isdigit():
            name = "m" + name
        return check_layout_name(name) if name not in _RESERVED else name + "_layout"

    # ------------------------------------------------------------ conversions

    def to_layout_def(self, name: str | None = None) -> ir.LayoutDef:
        """The layout as the type checker builds it from ``to_spec``'s text."""
        name = check_layout_name(name) if name is not None else self.default_name
        ranges = [ir.LayoutRange(r.start, r.end, r.nid) for r in self.ranges]
        if self.mirror:
            # as khospec.resolve does it: MEMBLOCK_MIRROR splits ranges at mirror boundaries
            cuts = sorted({x for m in self.mirror for x in m})
            split: list[ir.LayoutRange] = []
            for r in ranges:
                points = [r.start, *[c for c in cuts if r.start < c < r.end], r.end]
                for lo, hi in itertools.pairwise(points):
                    is_m = any(m0 <= lo and hi <= m1 for m0, m1 in self.mirror)
                    split.append(ir.LayoutRange(lo, hi, r.nid, is_m))
            ranges = split
        zones = tuple(
            (_ZONE_INDEX[z], lim[0], lim[1]) if lim is not None else (_ZONE_INDEX[z], 0, 0)
            for z, lim in self.zones
        )
        return ir.LayoutDef(
            name=name,
            ranges=tuple(ranges),
            zones=zones,
            movable=self.movable,
            mirrored_kernelcore=self.mirrored_kernelcore,
            bindings=(),
        )

    def to_spec(self, name: str | None = None) -> str:
        """A spec file declaring this layout (``layout NAME { ... }``)."""
        name = check_layout_name(name) if name is not None else self.default_name
        out = [
            f"# Memory layout imported by khospec from {_one_line(self.source)}",
            f"# ranges from: {self.origin}"
            + (f"; boot {self.boot} of {self.boots}" if self.boots > 1 else ""),
        ]
        prefix = f"{self.source}:"
        out += [
            f"# line {_one_line(w[len(prefix) :] if w.startswith(prefix) else w)}"
            for w in self.warnings
        ]
        total = self.total
        out.append(
            f"# {len(self.nodes)} node(s) with memory, {len(self.ranges)} range(s), {size_text(total)}"
        )
        out.append("")
        out.append(f"layout {name} {{")
        groups = self.by_node()
        for nid in self.all_nodes:
            rs = groups.get(nid, ())
            if not rs:
                out.append(f"  # node {nid}: memoryless")
            else:
                lo, hi = min(r.start for r in rs), max(r.end for r in rs)
                out.append(
                    f"  # node {nid}: span [{lo:#x}, {hi:#x}), "
                    f"{len(rs)} range(s), {size_text(sum(r.size for r in rs))}"
                )
        for r in self.ranges:
            where = f", line {r.line}" if r.line else ""
            out.append(f"  node {r.nid}: [{r.start:#x}, {r.end:#x})  # {size_text(r.size)}{where}")
        for z, lim in self.zones:
            out.append(
                f"  zone {z}: empty" if lim is None else f"  zone {z}: [{lim[0]:#x}, {lim[1]:#x})"
            )
        for nid, addr in self.movable:
            out.append(f"  movable node {nid}: {addr:#x}")
        if self.mirror:
            out.append("  mirror: " + ", ".join(f"[{a:#x}, {b:#x})" for a, b in self.mirror))
        if self.mirrored_kernelcore is not None:
            out.append(f"  mirrored_kernelcore = {'true' if self.mirrored_kernelcore else 'false'}")
        out.append("}")
        return "\n".join(out) + "\n"


def check_layout_name(name: str) -> str:
    """``name`` if it can name a layout in a spec file, else ValueError."""
    if not _NAME_RE.match(name) or name in _RESERVED:
        raise ValueError(
            f"`{name}` cannot name a layout: use letters, digits and _ "
            "(not starting with a digit, not a keyword)"
        )
    return name


def _one_line(s: str) -> str:
    return s.replace("\n", " ").replace("\r", " ")


# ---------------------------------------------------------------- reading


def read_layout_file(path: str, *, page_shift: int | None = None) -> MachineLayout:
    """Read a dmesg log or a /proc/zoneinfo dump. ``page_shift`` turns zoneinfo pfns into
    addresses (default: 4 KiB pages, with a warning); dmesg logs print addresses."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImportError_(f"cannot read the log: {exc.strerror or exc}") from exc
    # a damaged log may hold any bytes: they end up in the garbled-line warnings
    return parse_layout(data.decode("utf-8", errors="replace"), path, page_shift=page_shift)


@functools.cache
def shipped_layouts() -> tuple[ir.LayoutDef, ...]:
    """The real machines' layouts khospec ships (examples/layouts/ in the checkout,
    khospec/layouts in the wheel), for the search before a verdict is called unknown."""
    try:
        packaged = resources.files("khospec") / "layouts"
        folder: Any = packaged if packaged.is_dir() else None
    except (FileNotFoundError, ModuleNotFoundError):  # pragma: no cover - odd installs
        folder = None
    if folder is None:
        folder = Path(__file__).resolve().parent.parent.parent / "examples" / "layouts"
        if not folder.is_dir():
            return ()
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".txt"):
            out.append(parse_layout(entry.read_text(encoding="utf-8"), entry.name).to_layout_def())
    return tuple(out)


def parse_layout(
    text: str, source: str = "<log>", *, page_shift: int | None = None
) -> MachineLayout:
    """The layout in a log's text; ``source`` names the file in warnings."""
    return _Reader(text, source, page_shift).run()


_HEX = r"0[xX][0-9a-fA-F]+"
_MEM = rf"\[mem ({_HEX})-({_HEX})\]"

# prefixes in front of a kernel message, stripped in this order
_PREFIXES = (
    re.compile(r"^<\d{1,3}>"),  # printk level, /dev/kmsg or console
    re.compile(r"^[^\[\]<>]*?\bkernel: ?"),  # syslog, journalctl: "Nov 26 12:00:00 host kernel: "
    re.compile(r"^(?:kern|user|daemon|syslog|local[0-7])\s*:\s*[a-z]+\s*: ?"),  # dmesg -x
    re.compile(r"^<\d{1,3}>"),
    # timestamp (dmesg -d adds the delta in <>, dmesg -H prints deltas as +s.us) and an
    # optional caller id ([T1] or [C0], CONFIG_PRINTK_CALLER)
    re.compile(r"^\[\s*\+?\d+\.\d+(?:\s*<\s*\d+\.\d+>)?\](?:\s*\[\s*[TC]\d+\])? ?"),
    re.compile(r"^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\] ?"),  # dmesg -T
    re.compile(r"^\[[A-Z][a-z]{2}\s?\d{1,2} \d\d:\d\d\] ?"),  # dmesg -H: the minute's first line
    # dmesg --time-format iso, and syslog lines that lead with an RFC 3339 time
    re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)? ?"),
)

_ZONES_HDR = re.compile(r"Zone ranges:?\Z")
_MOVABLE_HDR = re.compile(r"Movable zone start for each node:?\Z")
_EARLY_HDR = re.compile(r"Early memory node ranges:?\Z")
_BANNER = re.compile(r"Linux version \d")
_ZONE_ITEM = re.compile(rf"(\w+)\s+(?:(empty)|{_MEM})\Z")
_ZONE_ITEM_KNOWN = re.compile(rf"(DMA|DMA32|Normal|Movable|Device|HighMem)\s+(?:(empty)|{_MEM})\Z")
_MOVABLE_ITEM = re.compile(rf"Node\s+(\d+):\s*({_HEX})\Z")
_EARLY_ITEM = re.compile(rf"node\s+(\d+):\s*{_MEM}\Z")
_INITMEM = re.compile(rf"\bInitmem setup node (\d+)\s+(?:{_MEM}|(as memoryless))")
_NODE_MEMORY = re.compile(rf"(?:numa:\s+)?Node (\d+) Memory:((?:\s+{_HEX}-{_HEX})*)\s*\Z")
_NODE_MEMORY_RANGE = re.compile(rf"({_HEX})-({_HEX})")
_EFI_MEM = re.compile(rf"efi:\s+mem\d+: \[([^\]]*)\] range=\[({_HEX})-({_HEX})\]")
_EFI_MIRRORED = re.compile(r"efi: Memory: \d+M/\d+M mirrored memory")
_CMDLINE = re.compile(r"(?:Kernel )?[Cc]ommand line: (.*)\Z")
_ZI_ZONE = re.compile(r"Node\s+(\d+),\s+zone\s+(\w+)\Z")
_ZI_FIELD = re.compile(r"(spanned|present|start_pfn:)\s+(\d+)\Z")

_BLOCK_NAMES = {
    "zones": "Zone ranges",
    "movable": "Movable zone start for each node",
    "early": "Early memory node ranges",
}


def strip_prefix(line: str) -> str:
    """The kernel message of a log line: timestamps, levels and syslog prefixes removed
    (the message's own leading spaces kept)."""
    t = line.rstrip("\r\n")
    # prefixes nest in either order ("[ 0.1] host kernel: ", "host kernel: [ 0.1] "),
    # so strip until none is left
    for _ in range(4):
        before = t
        for rx in _PREFIXES:
            m = rx.match(t)
            if m:
                t = t[m.end() :]
        if t == before:
            break
    return t


def _looks_like(block: str, t: str, s: str) -> bool:
    """Could this line be a damaged entry of the block? Entries are indented; binary
    garbage or a cut timestamp also make a line suspect."""
    if t[:1].isspace() or any(ch == "\ufffd" or (ord(ch) < 32 and ch != "\t") for ch in s):
        return True
    if block == "early":
        return bool(re.match(r"node\s+\d", s)) or "[mem" in s
    if block == "movable":
        return bool(re.match(r"Node\s+\d+\s*:", s))
    return bool(re.match(r"(DMA|DMA32|Normal|Movable|Device|HighMem)\b", s)) or "[mem" in s


@dataclass
class _Boot:
    """What one boot's messages say (a builder, private to the reader)."""

    line: int
    banner: int | None = None
    zone_header: int | None = None
    zones: dict[str, tuple[tuple[int, int] | None, int]] = field(default_factory=dict)
    movable_header: int | None = None
    movable: dict[int, tuple[int, int]] = field(default_factory=dict)
    early_header: int | None = None
    early_closed: bool = False  # some other line followed the block's last entry
    ranges: list[MemRange] = field(default_factory=list)
    initmem: dict[int, tuple[tuple[int, int] | None, int]] = field(default_factory=dict)
    node_memory: list[MemRange] = field(default_factory=list)
    node_memory_empty: set[int] = field(default_factory=set)
    mirrors: list[tuple[int, int, int]] = field(default_factory=list)
    mirror_reported: int | None = None
    kernelcore_mirror: int | None = None  # the command line's line
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def start(self) -> int:
        """The first line that belongs to this boot."""
        marks = [
            x for x in (self.banner, self.zone_header, self.movable_header, self.early_header) if x
        ]
        return min(marks) if marks else self.line

    def has_content(self) -> bool:
        return (
            self.banner is not None
            or self.zone_header is not None
            or self.movable_header is not None
            or self.early_header is not None
            or bool(self.initmem)
            or bool(self.node_memory)
        )


@dataclass
class _ZiZone:
    nid: int
    name: str
    line: int
    spanned: int | None = None
    present: int | None = None
    start_pfn: int | None = None


class _Reader:
    """One pass over the log, block by block; then the choice of boot and the checks."""

    def __init__(self, text: str, source: str, page_shift: int | None) -> None:
        self.source = source
        self.lines = text.splitlines()
        self.page_shift = page_shift
        self.boots: list[_Boot] = [_Boot(1)]
        self.state: str | None = None
        self.pending: list[tuple[int, str, bool]] = []  # (line, text, looks like an entry)
        self.zoneinfo: list[_ZiZone] = []
        self.file_warnings: list[Diagnostic] = []

    # ---------------------------------------------------------- warnings

    def _warn(self, line: int, code: str, message: str, boot: _Boot | None = None) -> None:
        diag = log_warning(self.source, line, code, message)
        (boot.warnings if boot is not None else self.file_warnings).append(diag)

    def _garbled(self, line: int, text: str, block: str, looks: bool) -> None:
        shown = text if len(text) <= 72 else text[:69] + "..."
        what = "a garbled line" if looks else "a line that is not an entry"
        self._warn(
            line,
            "KHO602",
            f"skipped {what} inside the `{_BLOCK_NAMES[block]}` block: {shown!r}",
            self.boot,
        )

    @property
    def boot(self) -> _Boot:
        return self.boots[-1]

    # ---------------------------------------------------------- the pass

    def run(self) -> MachineLayout:
        zi: _ZiZone | None = None
        for idx, raw in enumerate(self.lines, start=1):
            if raw.lstrip().startswith("#"):
                continue  # a header comment of a saved log, never a kernel message
            t = strip_prefix(raw)
            s = t.strip()
            # /proc/zoneinfo: a zone header, then indented fields
            m = _ZI_ZONE.match(s)
            if m:
                zi = _ZiZone(int(m.group(1)), m.group(2), idx)
                self.zoneinfo.append(zi)
            elif zi is not None:
                f = _ZI_FIELD.match(s)
                if f:
                    key = f.group(1).rstrip(":")
                    setattr(zi, key, int(f.group(2)))
                elif s and not raw[:1].isspace():
                    zi = None
            self._line(idx, t, s)
        self._close_block(eof=True)
        return self._finish()

    def _line(self, idx: int, t: str, s: str) -> None:
        if self.state is not None:
            item = self._item(self.state, s)
            if item is not None:
                for line, text, looks in self.pending:
                    self._garbled(line, text, self.state, looks)
                self.pending = []
                self._add_item(self.state, idx, item, s)
                return
            if self._passive(idx, s):
                return  # an interleaved message that matters, not part of the block
            if not self._is_header(s) and self._foreign_item(s) is None:
                self.pending.append((idx, s, _looks_like(self.state, t, s)))
                if sum(1 for p in self.pending if not p[2]) > _MAX_PENDING:
                    self._close_block(eof=False)
                return
            self._close_block(eof=False)
        self._outside(idx, s)

    def _is_header(self, s: str) -> bool:
        return bool(
            _ZONES_HDR.match(s)
            or _MOVABLE_HDR.match(s)
            or _EARLY_HDR.match(s)
            or _BANNER.match(s)
            or _INITMEM.search(s)
            or _NODE_MEMORY.match(s)
            or _ZI_ZONE.match(s)
        )

    @staticmethod
    def _item(block: str, s: str) -> re.Match[str] | None:
        if block == "zones":
            return _ZONE_ITEM.match(s)
        if block == "movable":
            return _MOVABLE_ITEM.match(s)
        return _EARLY_ITEM.match(s)

    @staticmethod
    def _foreign_item(s: str) -> str | None:
        """The block a well-formed entry belongs to, whatever block we are in."""
        if _EARLY_ITEM.match(s):
            return "early"
        if _MOVABLE_ITEM.match(s):
            return "movable"
        if _ZONE_ITEM_KNOWN.match(s):
            return "zones"
        return None

    def _close_block(self, eof: bool) -> None:
        if self.state is None:
            return
        followed = not eof or any(not looks for _, _, looks in self.pending)
        # after the last entry only the suspect lines right behind it count as damaged
        # entries; what follows them is the next message
        for line, text, looks in self.pending:
            if not looks:
                break
            self._garbled(line, text, self.state, looks)
        if self.state == "early":
            self.boot.early_closed = followed
        self.state = None
        self.pending = []

    def _new_boot_if(self, cond: bool, idx: int) -> None:
        if cond:
            self.boots.append(_Boot(idx))

    def _outside(self, idx: int, s: str) -> None:
        b = self.boot
        if _BANNER.match(s):
            self._new_boot_if(b.has_content(), idx)
            self.boot.banner = idx
            return
        if _ZONES_HDR.match(s):
            # a second layout without a banner between: another boot
            self._new_boot_if(b.early_header is not None or b.zone_header is not None, idx)
            self.boot.zone_header = idx
            self.state = "zones"
            return
        if _MOVABLE_HDR.match(s):
            self._new_boot_if(b.early_header is not None or b.movable_header is not None, idx)
            self.boot.movable_header = idx
            self.state = "movable"
            return
        if _EARLY_HDR.match(s):
            self._new_boot_if(b.early_header is not None, idx)
            self.boot.early_header = idx
            self.state = "early"
            return
        m = _INITMEM.search(s)
        if m:
            nid = int(m.group(1))
            if m.group(4):
                b.initmem[nid] = (None, idx)
            else:
                lo, hi = int(m.group(2), 16), int(m.group(3), 16)
                # kernels before 5.13 printed a memoryless node as [mem 0x0-0x0]
                b.initmem[nid] = ((lo, hi + 1) if hi > lo else None, idx)
            return
        m = _NODE_MEMORY.match(s)
        if m:
            nid = int(m.group(1))
            found = _NODE_MEMORY_RANGE.findall(m.group(2))
            if not found:
                b.node_memory_empty.add(nid)
            for lo_s, hi_s in found:
                lo, hi = int(lo_s, 16), int(hi_s, 16)
                if lo < hi:
                    b.node_memory.append(MemRange(lo, hi, nid, idx))
            return
        if self._passive(idx, s):
            return
        kind = self._foreign_item(s)
        if kind is not None:
            # an entry without its header: the header line was garbled or cut
            self._warn(
                idx,
                "KHO602",
                f"entries of the `{_BLOCK_NAMES[kind]}` block without its header "
                "line (garbled or missing?); reading them anyway",
                b,
            )
            if kind == "early":
                self._new_boot_if(b.early_header is not None, idx)
                self.boot.early_header = idx
            self.state = kind
            item = self._item(kind, s)
            assert item is not None
            self._add_item(kind, idx, item, s)

    def _passive(self, idx: int, s: str) -> bool:
        """Messages read wherever they appear (they never start or end a block)."""
        b = self.boot
        m = _EFI_MEM.match(s)
        if m:
            attrs = {a.strip() for a in m.group(1).split("|")}
            if (
                "MR" in attrs
            ):  # EFI_MEMORY_MORE_RELIABLE: efi_find_mirror() marks it MEMBLOCK_MIRROR
                lo, hi = int(m.group(2), 16), int(m.group(3), 16) + 1
                if lo < hi:
                    b.mirrors.append((lo, hi, idx))
            return True
        if _EFI_MIRRORED.match(s):
            b.mirror_reported = idx
            return True
        m = _CMDLINE.match(s)
        if m:
            if re.search(r"(?:^|\s)kernelcore=mirror(?:\s|$)", m.group(1)):
                b.kernelcore_mirror = idx
            return True
        return False

    def _add_item(self, block: str, idx: int, m: re.Match[str], s: str) -> None:
        b = self.boot
        if block == "zones":
            name = m.group(1)
            lim: tuple[int, int] | None = None
            if not m.group(2):
                lo, hi = int(m.group(3), 16), int(m.group(4), 16) + 1
                if hi <= lo:
                    self._garbled(idx, s, block, True)
                    return
                lim = (lo, hi)
            if name not in _ZONE_INDEX:
                self._warn(
                    idx,
                    "KHO605",
                    f"zone `{name}` ignored: khospec models the zones " + ", ".join(ZONE_ORDER),
                    b,
                )
                return
            if name in b.zones:
                self._warn(
                    idx,
                    "KHO605",
                    f"zone `{name}` listed twice; the first one (line {b.zones[name][1]}) is used",
                    b,
                )
                return
            b.zones[name] = (lim, idx)
        elif block == "movable":
            nid, addr = int(m.group(1)), int(m.group(2), 16)
            b.movable[nid] = (addr, idx)
        else:
            nid, lo, hi = int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16) + 1
            if hi <= lo or hi > 1 << 64:
                self._garbled(idx, s, block, True)
                return
            b.ranges.append(MemRange(lo, hi, nid, idx))

    # ---------------------------------------------------------- the result

    def _complete(self, b: _Boot) -> tuple[bool, str]:
        """Does this boot's layout look whole? (and why not)"""
        if not b.ranges:
            return False, "it has no `Early memory node ranges`"
        have = {r.nid for r in b.ranges}
        missing = sorted(
            n for n, (span, _) in b.initmem.items() if span is not None and n not in have
        )
        if missing:
            return (
                False,
                f"`Initmem setup` names node(s) {', '.join(map(str, missing))} with memory "
                "but no ranges",
            )
        if not b.early_closed:
            return (
                False,
                "its `Early memory node ranges` block runs to the end of the log (cut short?)",
            )
        return True, ""

    def _finish(self) -> MachineLayout:
        boots = [b for b in self.boots if b.has_content()] or self.boots[:1]
        warnings: list[Diagnostic] = []
        with_ranges = [b for b in boots if b.ranges]
        chosen: _Boot | None = None
        if with_ranges:
            complete = [b for b in with_ranges if self._complete(b)[0]]
            if complete:
                chosen = complete[-1]
            elif len(with_ranges) == 1:
                chosen = with_ranges[0]  # a log excerpt that ends with the block: nothing better
            else:
                chosen = with_ranges[-1]
        number = boots.index(chosen) + 1 if chosen is not None else len(boots)
        if len(boots) > 1:
            starts = ", ".join(str(b.start) for b in boots)
            used = chosen if chosen is not None else boots[-1]
            warnings.append(
                log_warning(
                    self.source,
                    used.start,
                    "KHO603",
                    f"the log holds {len(boots)} boots (starting at lines {starts}); "
                    f"using boot {number}, the last one with a complete memory layout",
                )
            )
            for later in boots[number:]:
                why = self._complete(later)[1]
                warnings.append(
                    log_warning(
                        self.source,
                        later.start,
                        "KHO603",
                        f"boot {boots.index(later) + 1} skipped: {why}",
                    )
                )
        if chosen is not None:
            if not self._complete(chosen)[0] and len(with_ranges) > 1:
                warnings.append(
                    log_warning(
                        self.source,
                        chosen.early_header or chosen.line,
                        "KHO603",
                        f"no boot has a complete layout; boot {number} may be cut short",
                    )
                )
            return self._from_boot(chosen, number, len(boots), warnings)
        # no `Early memory node ranges` anywhere: the fallbacks, best first
        last = boots[-1]
        if any(z.spanned for z in self.zoneinfo):
            return self._from_zoneinfo(last, len(boots), warnings)
        for b in reversed(boots):
            if b.node_memory:
                return self._from_fallback(
                    b,
                    boots.index(b) + 1,
                    len(boots),
                    warnings,
                    b.node_memory,
                    "`Node N Memory` lines (section granular)",
                    "the log has no `Early memory node ranges`; using the "
                    "`Node N Memory` lines, which are rounded to memory sections",
                )
        for b in reversed(boots):
            spans = [
                MemRange(span[0], span[1], nid, line)
                for nid, (span, line) in b.initmem.items()
                if span is not None
            ]
            if spans:
                return self._from_fallback(
                    b,
                    boots.index(b) + 1,
                    len(boots),
                    warnings,
                    spans,
                    "`Initmem setup node` spans (holes unknown)",
                    "the log has no `Early memory node ranges`; using the node spans "
                    "of `Initmem setup node`, so holes inside a span count as memory",
                )
        raise ImportError_(
            "no memory layout found: expected the `Early memory node ranges` block of a boot log "
            "(`dmesg` or `journalctl -k -b`; early boot messages must not have scrolled out of the "
            "buffer) or a /proc/zoneinfo dump"
        )

    def _check_overlaps(self, ranges: list[MemRange], b: _Boot) -> list[MemRange]:
        ranges = sorted(ranges, key=lambda r: (r.start, r.end, r.nid))
        out: list[MemRange] = []
        for r in ranges:
            if out and out[-1].start == r.start and out[-1].end == r.end and out[-1].nid == r.nid:
                self._warn(
                    r.line,
                    "KHO605",
                    f"range [{r.start:#x}, {r.end:#x}) of node {r.nid} listed twice "
                    f"(also line {out[-1].line}); counted once",
                    b,
                )
                continue
            if out and r.start < out[-1].end:
                p = out[-1]
                raise ImportError_(
                    f"memory ranges overlap: [{p.start:#x}, {p.end:#x}) of node {p.nid} "
                    f"(line {p.line}) and [{r.start:#x}, {r.end:#x}) of node {r.nid} "
                    f"(line {r.line}); memblock ranges never do, so the log is damaged"
                )
            out.append(r)
        return out

    def _common(self, b: _Boot) -> dict[str, object]:
        """Zones, movable starts, mirrors and the command line of one boot."""
        zones = tuple((z, b.zones[z][0]) for z in ZONE_ORDER if z in b.zones)
        mirrors: list[tuple[int, int]] = []
        for lo, hi, _ in sorted(b.mirrors):
            if mirrors and lo <= mirrors[-1][1]:
                mirrors[-1] = (mirrors[-1][0], max(mirrors[-1][1], hi))
            else:
                mirrors.append((lo, hi))
        if b.mirror_reported is not None and not mirrors:
            self._warn(
                b.mirror_reported,
                "KHO604",
                "the firmware reports mirrored memory, but the log has no "
                "EFI memory map (boot with efi=debug), so the mirror ranges are unknown",
                b,
            )
        return {
            "zones": zones,
            "movable": tuple(sorted((nid, addr) for nid, (addr, _) in b.movable.items())),
            "mirror": tuple(mirrors),
            "mirrored_kernelcore": True if b.kernelcore_mirror is not None else None,
        }

    def _memoryless(self, b: _Boot, have: set[int]) -> tuple[int, ...]:
        named = {n for n, (span, _) in b.initmem.items() if span is None} | b.node_memory_empty
        return tuple(sorted(named - have))

    def _from_boot(
        self, b: _Boot, number: int, boots: int, warnings: list[Diagnostic]
    ) -> MachineLayout:
        ranges = self._check_overlaps(b.ranges, b)
        have = {r.nid for r in ranges}
        groups: dict[int, list[MemRange]] = {}
        for r in ranges:
            groups.setdefault(r.nid, []).append(r)
        # cross-check with the node spans free_area_init_node() printed
        for nid, (span, line) in sorted(b.initmem.items()):
            rs = groups.get(nid, [])
            if span is None:
                if rs:
                    self._warn(
                        line,
                        "KHO605",
                        f"node {nid} is called memoryless but has "
                        f"{len(rs)} range(s) in `Early memory node ranges`",
                        b,
                    )
                continue
            if not rs:
                self._warn(
                    line,
                    "KHO605",
                    f"`Initmem setup node {nid}` gives it memory "
                    f"[{span[0]:#x}, {span[1]:#x}), but `Early memory node ranges` has none",
                    b,
                )
                continue
            got = (min(r.start for r in rs), max(r.end for r in rs))
            if got != span:
                self._warn(
                    line,
                    "KHO605",
                    f"node {nid}: `Initmem setup` span [{span[0]:#x}, {span[1]:#x}) "
                    f"differs from the span of its ranges [{got[0]:#x}, {got[1]:#x})",
                    b,
                )
        for nid, (addr, line) in sorted(b.movable.items()):
            if nid not in have:
                self._warn(
                    line,
                    "KHO605",
                    f"ZONE_MOVABLE start {addr:#x} given for node {nid}, which has no "
                    "memory ranges",
                    b,
                )
        common = self._common(b)
        return MachineLayout(
            ranges=tuple(ranges),
            source=self.source,
            boot=number,
            boots=boots,
            diagnostics=tuple(warnings + b.warnings + self.file_warnings),
            memoryless=self._memoryless(b, have),
            origin=f"`Early memory node ranges`, line {b.early_header}"
            if b.early_header
            else "`Early memory node ranges` entries",
            **common,  # type: ignore[arg-type]
        )

    def _from_fallback(
        self,
        b: _Boot,
        number: int,
        boots: int,
        warnings: list[Diagnostic],
        ranges: list[MemRange],
        origin: str,
        why: str,
    ) -> MachineLayout:
        self._warn(ranges[0].line, "KHO604", why, b)
        rs = self._check_overlaps(ranges, b)
        common = self._common(b)
        return MachineLayout(
            ranges=tuple(rs),
            source=self.source,
            boot=number,
            boots=boots,
            diagnostics=tuple(warnings + b.warnings + self.file_warnings),
            memoryless=self._memoryless(b, {r.nid for r in rs}),
            origin=origin,
            **common,  # type: ignore[arg-type]
        )

    def _from_zoneinfo(self, b: _Boot, boots: int, warnings: list[Diagnostic]) -> MachineLayout:
        shift = self.page_shift
        first = self.zoneinfo[0].line
        if shift is None:
            shift = _DEFAULT_PAGE_SHIFT
            self._warn(
                first,
                "KHO604",
                "/proc/zoneinfo counts pages: assuming 4 KiB pages (PAGE_SHIFT 12) to "
                "turn pfns into addresses (`khospec machine --arch` uses the profile's page size)",
            )
        spans: list[tuple[int, int, int, int]] = []  # (start pfn, end pfn, nid, line)
        holes: list[str] = []
        hole_pages = 0
        for z in self.zoneinfo:
            if not z.spanned:
                continue
            if z.start_pfn is None:
                self._warn(
                    z.line,
                    "KHO602",
                    f"node {z.nid} zone {z.name} spans {z.spanned} pages but has no "
                    "`start_pfn` line; zone skipped",
                )
                continue
            spans.append((z.start_pfn, z.start_pfn + z.spanned, z.nid, z.line))
            if z.present is not None and z.present < z.spanned:
                hole_pages += z.spanned - z.present
                holes.append(f"node {z.nid} {z.name} {z.spanned - z.present}")
        if not spans:
            raise ImportError_("the /proc/zoneinfo dump has no populated zone with a `start_pfn`")
        detail = (
            (
                f"; {hole_pages} spanned pages are not present ({', '.join(holes[:4])}"
                + (f" and {len(holes) - 4} more" if len(holes) > 4 else "")
                + ")"
            )
            if holes
            else ""
        )
        self._warn(
            first,
            "KHO604",
            "/proc/zoneinfo gives zone spans, not memory ranges: holes inside a span "
            f"cannot be placed, so every span is taken as memory{detail}",
        )
        # a node's memory: the union of its zones' spans (Normal and Movable overlap with
        # kernelcore=mirror)
        merged: list[MemRange] = []
        for nid in sorted({s[2] for s in spans}):
            cur: list[int] | None = None
            for lo, hi, _, line in sorted(s for s in spans if s[2] == nid):
                if cur is not None and lo <= cur[1]:
                    cur[1] = max(cur[1], hi)
                else:
                    if cur is not None:
                        merged.append(MemRange(cur[0] << shift, cur[1] << shift, nid, cur[2]))
                    cur = [lo, hi, line]
            if cur is not None:
                merged.append(MemRange(cur[0] << shift, cur[1] << shift, nid, cur[2]))
        merged.sort(key=lambda r: r.start)
        for a, c in itertools.pairwise(merged):
            if c.start < a.end:
                raise ImportError_(
                    f"in /proc/zoneinfo the spans of node {a.nid} (line {a.line}) and node {c.nid} "
                    f"(line {c.line}) overlap at [{c.start:#x}, {min(a.end, c.end):#x}): "
                    "nodes interleave, and zoneinfo cannot tell which node owns those pages; "
                    "use the boot log's `Early memory node ranges` instead"
                )
        movable = tuple(
            sorted(
                (z.nid, z.start_pfn << shift)
                for z in self.zoneinfo
                if z.name == "Movable" and z.spanned and z.start_pfn is not None
            )
        )
        zones = self._zoneinfo_zones(b, shift, merged)
        common = self._common(b)
        common["zones"] = zones
        common["movable"] = movable
        return MachineLayout(
            ranges=tuple(merged),
            source=self.source,
            boot=boots,
            boots=boots,
            diagnostics=tuple(warnings + b.warnings + self.file_warnings),
            memoryless=tuple(sorted({z.nid for z in self.zoneinfo} - {r.nid for r in merged})),
            origin=f"/proc/zoneinfo zone spans, line {first}",
            page_shift=shift,
            **common,  # type: ignore[arg-type]
        )

    def _zoneinfo_zones(
        self, b: _Boot, shift: int, merged: list[MemRange]
    ) -> tuple[tuple[str, tuple[int, int] | None], ...]:
        if b.zones:
            # the same boot's `Zone ranges` block knows the real limits
            return tuple((z, b.zones[z][0]) for z in ZONE_ORDER if z in b.zones)
        named = {z.name for z in self.zoneinfo}
        lims: dict[str, tuple[int, int] | None] = {}
        for name in ("DMA", "DMA32", "Normal", "Device"):
            if name not in named:
                continue
            zs = [
                z for z in self.zoneinfo if z.name == name and z.spanned and z.start_pfn is not None
            ]
            lims[name] = (
                (
                    min(z.start_pfn for z in zs if z.start_pfn is not None) << shift,
                    max(z.start_pfn + (z.spanned or 0) for z in zs if z.start_pfn is not None)
                    << shift,
                )
                if zs
                else None
            )
        # ZONE_MOVABLE is carved out of the highest zone (find_usable_zone_for_movable), so
        # that zone's limits reach over the movable memory; DMA and DMA32 end below 4 GiB,
        # so movable memory above the other zones belongs to Normal
        top = max((r.end for r in merged), default=0)
        covered = max((lim[1] for lim in lims.values() if lim is not None), default=0)
        extended = ""
        if top > covered and "Normal" in named:
            normal = lims.get("Normal")
            lims["Normal"] = (normal[0] if normal is not None else covered, top)
            extended = f"; Normal extended to {top:#x} over the ZONE_MOVABLE memory"
        self._warn(
            self.zoneinfo[0].line,
            "KHO604",
            "zone limits inferred from the zone spans (zoneinfo does not "
            f"print the architecture's limits){extended}",
        )
        return tuple((z, lims[z]) for z in ZONE_ORDER if z in lims)


__all__ = [
    "ZONE_ORDER",
    "ImportError_",
    "LogLine",
    "MachineLayout",
    "MemRange",
    "check_layout_name",
    "log_warning",
    "parse_layout",
    "read_layout_file",
    "strip_prefix",
]
