"""Memory maps: SVG for reports and reviews, a compact text map for the terminal.

A map shows one lane per node (its ranges filled, its span outlined, so interleaved nodes
show as overlapping outlines), a lane of all memory with the holes hatched, the zone
limits, the memory-section grid, and the witness of a refutation (a chunk, a section or a
pfn) highlighted, with a linear close-up of the witness below the map.

Real layouts mix 4 KiB holes with terabyte ranges, and solver layouts reach exabytes, so
a linear axis would hide most of them. The axis is cut at every range, zone and witness
boundary; when some piece would be thinner than two pixels, each piece's width grows with
the logarithm of its size instead, and the map says so. Every boundary keeps its real
address as a label, and the close-ups are always linear.

Everything is built with ElementTree, so text is escaped and the output is well-formed.
"""

from __future__ import annotations

import bisect
import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from khospec import ir
from khospec.explain import number as _num
from khospec.explain import size_text
from khospec.machine.importer import ZONE_ORDER, MachineLayout
from khospec.results import Result

SVG_NS = "http://www.w3.org/2000/svg"

# distinguishable on white, and for the common kinds of colour blindness in pairs
_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#9c755f",
    "#bab0ac",
    "#e15759",
    "#ff9da7",
    "#86bcb6",
    "#8cd17d",
)
_ZONE_COLOURS = {
    "DMA": "#dbe9f6",
    "DMA32": "#c6dbef",
    "Normal": "#e5f5e0",
    "Movable": "#fdd0a2",
    "Device": "#efedf5",
}
_ZONE_LETTERS = {"DMA": "D", "DMA32": "3", "Normal": "N", "Movable": "M", "Device": "V"}
_HIGHLIGHT = "#d62728"


@dataclass(frozen=True)
class Highlight:
    """Something to point at: ``[start, end)`` in bytes (a chunk, a section, one page)."""

    start: int
    end: int
    label: str
    kind: str = "chunk"  # "chunk", "section" or "pfn"
    nodes: tuple[int, ...] = ()
    short: str = ""  # a few words for the terminal map (default: the label)


@dataclass(frozen=True)
class MapData:
    """What a map draws, whatever the layout came from. Addresses in bytes."""

    title: str
    ranges: tuple[tuple[int, int, int], ...]  # (start, end, nid), sorted
    memoryless: tuple[int, ...] = ()
    zones: tuple[tuple[str, int, int], ...] = ()  # non-empty zone limits
    markers: tuple[
        tuple[int, int, str], ...
    ] = ()  # (address, nid, label): movable start, first_deferred_pfn
    page_shift: int = 12
    section_bits: int | None = None

    @property
    def nodes(self) -> tuple[int, ...]:
        return tuple(sorted({r[2] for r in self.ranges} | set(self.memoryless)))

    def by_node(self) -> dict[int, list[tuple[int, int]]]:
        """Each node's ranges (one pass: callers loop over nodes)."""
        out: dict[int, list[tuple[int, int]]] = {}
        for s, e, nid in self.ranges:
            out.setdefault(nid, []).append((s, e))
        return out

    def span(self, nid: int) -> tuple[int, int] | None:
        rs = self.by_node().get(nid)
        return (min(r[0] for r in rs), max(r[1] for r in rs)) if rs else None


LayoutLike = MachineLayout | ir.LayoutDef | MapData | Mapping[str, Any]


def map_data(
    layout: LayoutLike,
    page_shift: int = 12,
    section_bits: int | None = None,
    title: str | None = None,
) -> MapData:
    """Normalise a MachineLayout, a spec LayoutDef, a counterexample's ``layout`` dict."""
    if isinstance(layout, MapData):
        return layout
    if isinstance(layout, MachineLayout):
        return MapData(
            title=title or f"{layout.source} (boot {layout.boot} of {layout.boots})",
            ranges=tuple((r.start, r.end, r.nid) for r in layout.ranges),
            memoryless=layout.memoryless,
            zones=tuple((z, lim[0], lim[1]) for z, lim in layout.zones if lim is not None),
            markers=tuple((addr, nid, "movable") for nid, addr in layout.movable),
            page_shift=page_shift,
            section_bits=section_bits,
        )
    if isinstance(layout, ir.LayoutDef):
        return MapData(
            title=title or f"layout {layout.name}",
            ranges=tuple(sorted((r.start, r.end, r.nid) for r in layout.ranges)),
            zones=tuple(
                (ZONE_ORDER[zi], s, e)
                for zi, s, e in layout.zones
                if s < e and zi < len(ZONE_ORDER)
            ),
            markers=tuple((addr, nid, "movable") for nid, addr in layout.movable if addr),
            page_shift=page_shift,
            section_bits=section_bits,
        )
    return _from_json(layout, page_shift, section_bits, title)


def _from_json(
    layout: Mapping[str, Any], page_shift: int, section_bits: int | None, title: str | None
) -> MapData:
    ranges: list[tuple[int, int, int]] = []
    memoryless: list[int] = []
    markers: list[tuple[int, int, str]] = []
    for node in layout.get("nodes", []):
        nid = int(node["nid"])
        rs = node.get("ranges", [])
        for r in rs:
            s, e = _num(r.get("start")), _num(r.get("end"))
            if s is None or e is None:
                s0, e0 = _num(r.get("start_pfn")), _num(r.get("end_pfn"))
                if s0 is None or e0 is None:
                    continue
                s, e = s0 << page_shift, e0 << page_shift
            if s < e:
                ranges.append((s, e, nid))
        if not rs:
            memoryless.append(nid)
        mv = _num(node.get("zone_movable_pfn"))
        if mv:
            markers.append((mv << page_shift, nid, "movable"))
        fdp = _num(node.get("first_deferred_pfn"))
        if fdp is not None and fdp < 1 << (64 - page_shift):
            markers.append((fdp << page_shift, nid, "first_deferred_pfn"))
    zones: list[tuple[str, int, int]] = []
    for z in layout.get("zones", []):
        s, e = _num(z.get("start")), _num(z.get("end"))
        if s is None or e is None:
            s0, e0 = _num(z.get("start_pfn")), _num(z.get("end_pfn"))
            if s0 is None or e0 is None:
                continue
            s, e = s0 << page_shift, e0 << page_shift
        if s < e and z.get("zone") in _ZONE_COLOURS:
            zones.append((str(z["zone"]), s, e))
    src = layout.get("source")
    return MapData(
        title=title or (f"{src}" if src else "counterexample layout"),
        ranges=tuple(sorted(ranges)),
        memoryless=tuple(memoryless),
        zones=tuple(zones),
        markers=tuple(markers),
        page_shift=page_shift,
        section_bits=section_bits,
    )


# ---------------------------------------------------------------- the axis


@dataclass(frozen=True)
class _Axis:
    """Addresses -> x: piecewise linear between breakpoints."""

    points: tuple[int, ...]
    xs: tuple[float, ...]
    compressed: bool

    def x(self, addr: int) -> float:
        pts = self.points
        if addr <= pts[0]:
            return self.xs[0]
        if addr >= pts[-1]:
            return self.xs[-1]
        i = bisect.bisect_right(pts, addr) - 1
        a, b = pts[i], pts[i + 1]
        return self.xs[i] + (self.xs[i + 1] - self.xs[i]) * ((addr - a) / (b - a))

    def addr(self, x: float) -> int:
        xs = self.xs
        if x <= xs[0]:
            return self.points[0]
        if x >= xs[-1]:
            return self.points[-1]
        i = bisect.bisect_right(xs, x) - 1
        while i + 1 < len(xs) and xs[i + 1] <= xs[i]:
            i += 1
        a, b = self.points[i], self.points[i + 1]
        frac = (x - xs[i]) / (xs[i + 1] - xs[i]) if xs[i + 1] > xs[i] else 0.0
        return a + int((b - a) * frac)


def _make_axis(points: Iterable[int], x0: float, width: float, min_px: float = 2.0) -> _Axis:
    pts = sorted(set(points))
    if len(pts) < 2:  # nothing to draw: a one-byte axis keeps the scale defined
        base = pts[0] if pts else 0
        pts = [base, base + 1]
    sizes = [b - a for a, b in itertools.pairwise(pts)]
    total = pts[-1] - pts[0]
    compressed = any(s / total * width < min_px for s in sizes)
    if compressed:
        # the smallest piece weighs 1 and each doubling of size adds 1: no piece vanishes,
        # and a bigger piece is still wider
        smallest = min(sizes)
        weights = [1.0 + math.log2(s / smallest) for s in sizes]
    else:
        weights = [float(s) for s in sizes]
    scale = width / sum(weights)
    xs = [x0]
    for w in weights:
        xs.append(xs[-1] + w * scale)
    return _Axis(tuple(pts), tuple(xs), compressed)


def _extent(data: MapData, highlights: Sequence[Highlight]) -> tuple[int, int]:
    lo = min([r[0] for r in data.ranges] + [h.start for h in highlights], default=0)
    hi = max([r[1] for r in data.ranges] + [h.end for h in highlights], default=lo + 1)
    return lo, max(hi, lo + 1)


def _breakpoints(data: MapData, highlights: Sequence[Highlight]) -> list[int]:
    lo, hi = _extent(data, highlights)
    pts = {lo, hi}
    for s, e, _ in data.ranges:
        pts.update((s, e))
    for _, s, e in data.zones:
        pts.update(min(max(x, lo), hi) for x in (s, e))
    # witnesses are drawn at least 3 px wide and get a linear close-up, so they do not
    # cut the axis (a 4 KiB page would force a compressed axis on a uniform machine)
    return sorted(pts)


def _colour(nid: int) -> str:
    return _PALETTE[nid % len(_PALETTE)]


def _grid(lo: int, hi: int, section_bits: int, limit: int = 64) -> tuple[int, int]:
    """(step in bytes, sections per step): at most ``limit`` grid lines over [lo, hi)."""
    step_bits = section_bits
    while (hi - lo) >> step_bits > limit:
        step_bits += 1
    return 1 << step_bits, 1 << (step_bits - section_bits)


# ---------------------------------------------------------------- SVG


class _Svg:
    """A small builder over ElementTree (coordinates rounded for compact output)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.root = ET.Element(
            "svg",
            {"xmlns": SVG_NS, "version": "1.1", "font-family": "monospace", "font-size": "11"},
        )

    @staticmethod
    def _fmt(v: object) -> str:
        return f"{v:.1f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)

    def el(self, parent: ET.Element, tag: str, **attrs: object) -> ET.Element:
        return ET.SubElement(
            parent, tag, {k.rstrip("_").replace("_", "-"): self._fmt(v) for k, v in attrs.items()}
        )

    def text(self, parent: ET.Element, x: float, y: float, s: str, **attrs: object) -> ET.Element:
        t = self.el(parent, "text", x=x, y=y, **attrs)
        t.text = s
        return t

    def group(self, parent: ET.Element, gid: str) -> ET.Element:
        return ET.SubElement(parent, "g", {"id": gid})

    def finish(self, height: float) -> str:
        self.root.set("width", str(self.width))
        self.root.set("height", str(int(height)))
        self.root.set("viewBox", f"0 0 {self.width} {int(height)}")
        ET.indent(self.root)
        return ET.tostring(self.root, encoding="unicode") + "\n"


def svg_for_layout(
    layout: LayoutLike,
    page_shift: int = 12,
    section_bits: int | None = None,
    highlight: Sequence[Highlight] | Highlight | None = None,
    title: str | None = None,
    width: int = 960,
) -> str:
    """An SVG memory map of ``layout`` with the optional highlights."""
    data = map_data(layout, page_shift, section_bits, title)
    hls = _highlight_tuple(highlight)
    geo = _geometry(data, hls, width)
    svg = _Svg(width)
    # drawn in this order, so later parts paint over earlier ones
    _frame(svg, data.title)
    _header(svg, data, geo)
    grid_note = _section_grid(svg, data, geo)
    _axis_labels(svg, geo)
    _zone_row(svg, data, geo)
    _memory_row(svg, data, geo)
    _node_lanes(svg, data, geo)
    y = _map_highlights(svg, hls, geo)
    for k, h in enumerate(hls):
        y = _detail(svg, svg.root, data, h, k, geo.left, geo.plot_w, y) + 12
    shown_zones = [z for z in data.zones if z[1] < geo.hi and z[2] > geo.lo]
    y = _legend(
        svg,
        svg.root,
        data,
        data.nodes,
        grid_note,
        geo.axis.compressed,
        bool(hls),
        y + 6,
        width,
        shown_zones,
    )
    return svg.finish(y + 10)


def _highlight_tuple(highlight: Sequence[Highlight] | Highlight | None) -> tuple[Highlight, ...]:
    return (highlight,) if isinstance(highlight, Highlight) else tuple(highlight or ())


@dataclass(frozen=True)
class _Geometry:
    """Where the parts of the map go: the margins, the address axis over ``[lo, hi)``
    and the rows from the top (address labels, zones, all memory, one lane per node)."""

    width: int
    left: int
    right: int
    lo: int
    hi: int
    axis: _Axis
    many: bool  # too many nodes for full-height lanes
    lane_h: float
    y_axis: float
    y_zone: float
    y_ram: float
    y_nodes: float
    y_end: float  # the bottom of the last lane

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right


def _geometry(data: MapData, hls: Sequence[Highlight], width: int) -> _Geometry:
    # the left margin holds the lane labels: "node 12 512.00 GiB" is 18 characters of
    # 11 px monospace (about 6.6 px each) after the 12 px indent
    left, right = 132, 24
    plot_w = width - left - right
    lo, hi = _extent(data, hls)
    axis = _make_axis(_breakpoints(data, hls), left, plot_w)
    nodes = data.nodes
    # up to 48 nodes each get an 18 px lane; more share 640 px (at least 3 px each), so a
    # large machine's map stays about a screen high
    many = len(nodes) > 48
    lane_h = 18.0 if not many else max(3.0, 640.0 / len(nodes))
    y_axis = 60.0  # below the two header lines
    y_zone = y_axis + 22
    y_ram = y_zone + 24
    y_nodes = y_ram + 26
    y_end = y_nodes + lane_h * max(len(nodes), 1)
    return _Geometry(
        width, left, right, lo, hi, axis, many, lane_h, y_axis, y_zone, y_ram, y_nodes, y_end
    )


def _frame(svg: _Svg, title: str) -> None:
    """The document's title, a white background and the hatching that marks holes."""
    root = svg.root
    ET.SubElement(root, "title").text = f"khospec memory map: {title}"
    svg.el(root, "rect", x=0, y=0, width=svg.width, height="100%", fill="white")
    defs = ET.SubElement(root, "defs")
    pat = svg.el(
        defs,
        "pattern",
        id="hole",
        width=6,
        height=6,
        patternUnits="userSpaceOnUse",
        patternTransform="rotate(45)",
    )
    svg.el(pat, "rect", width=6, height=6, fill="#f4f4f4")
    svg.el(pat, "line", x1=0, y1=0, x2=0, y2=6, stroke="#9a9a9a", stroke_width=2)


def _header(svg: _Svg, data: MapData, geo: _Geometry) -> None:
    head = svg.group(svg.root, "header")
    svg.text(head, 12, 22, f"Memory map: {data.title}", font_size=14, font_weight="bold")
    total = sum(e - s for s, e, _ in data.ranges)
    info = [
        f"{len(data.by_node())} node(s) with memory",
        f"{len(data.ranges)} range(s)",
        size_text(total),
        f"{size_text(1 << data.page_shift)} pages",
    ]
    if data.section_bits is not None:
        info.append(f"{size_text(1 << data.section_bits)} sections")
    info.append(
        "axis compressed (log of each piece's size)" if geo.axis.compressed else "linear axis"
    )
    svg.text(head, 12, 40, ", ".join(info))


def _section_grid(svg: _Svg, data: MapData, geo: _Geometry) -> str:
    """The section grid, behind everything else; returns its legend entry ("" if none)."""
    grid_g = svg.group(svg.root, "sections")
    if data.section_bits is None:
        return ""
    step, per = _grid(geo.lo, geo.hi, data.section_bits)
    a = -(-geo.lo // step) * step  # the first line at or above lo (ceiling division)
    while a <= geo.hi:
        x = geo.axis.x(a)
        svg.el(
            grid_g,
            "line",
            x1=x,
            y1=geo.y_zone - 4,
            x2=x,
            y2=geo.y_end,
            stroke="#c8c8c8",
            stroke_width=0.6,
            class_="section-line",
        )
        a += step
    return f"section grid: every {'section' if per == 1 else f'{per} sections'} ({size_text(step)})"


def _axis_labels(svg: _Svg, geo: _Geometry) -> None:
    """Address labels at the breakpoints, thinned so they do not overlap, with ticks."""
    axis_g = svg.group(svg.root, "axis")
    y_axis = geo.y_axis
    for p, x, anchor in _labels(geo.axis.points, geo.axis.x):
        svg.text(axis_g, x, y_axis + 8, hex(p), text_anchor=anchor, font_size=9, fill="#333")
        svg.el(
            axis_g,
            "line",
            x1=x,
            y1=y_axis + 11,
            x2=x,
            y2=geo.y_zone - 4,
            stroke="#666",
            stroke_width=0.6,
        )


def _zone_row(svg: _Svg, data: MapData, geo: _Geometry) -> None:
    zone_g = svg.group(svg.root, "zones")
    y_zone = geo.y_zone
    svg.text(zone_g, 12, y_zone + 13, "zones")
    for name, s, e in data.zones:
        s2, e2 = max(s, geo.lo), min(e, geo.hi)
        if s2 >= e2:
            continue
        x0, x1 = geo.axis.x(s2), geo.axis.x(e2)
        r = svg.el(
            zone_g,
            "rect",
            x=x0,
            y=y_zone,
            width=max(x1 - x0, 1.0),
            height=18,
            fill=_ZONE_COLOURS.get(name, "#eee"),
            stroke="#777",
            stroke_width=0.5,
            class_="zone",
        )
        ET.SubElement(r, "title").text = f"zone {name}: [{s:#x}, {e:#x})"
        # the name only where it fits with room to spare (its tooltip always names it)
        if x1 - x0 > 8 * len(name) + 6:
            svg.text(zone_g, (x0 + x1) / 2, y_zone + 13, name, text_anchor="middle")


def _memory_row(svg: _Svg, data: MapData, geo: _Geometry) -> None:
    """All memory in one row, each range in its node's colour, the holes hatched."""
    ram_g = svg.group(svg.root, "ram")
    y_ram, axis = geo.y_ram, geo.axis
    svg.text(ram_g, 12, y_ram + 13, "memory")
    prev = geo.lo
    for s, e, nid in data.ranges:
        if s > prev:
            _hole(svg, ram_g, axis, prev, s, y_ram)
        x0, x1 = axis.x(s), axis.x(e)
        r = svg.el(
            ram_g,
            "rect",
            x=x0,
            y=y_ram,
            width=max(x1 - x0, 0.8),
            height=18,
            fill=_colour(nid),
            class_="range",
        )
        ET.SubElement(r, "title").text = f"node {nid}: [{s:#x}, {e:#x}) {size_text(e - s)}"
        # max: ranges of different nodes may overlap, and a hole starts after both
        prev = max(prev, e)
    if geo.hi > prev:
        _hole(svg, ram_g, axis, prev, geo.hi, y_ram)


def _node_lanes(svg: _Svg, data: MapData, geo: _Geometry) -> None:
    """One lane per node: its label, its span outlined, its ranges and markers."""
    nodes_g = svg.group(svg.root, "nodes")
    groups = data.by_node()
    markers: dict[int, list[tuple[int, str]]] = {}
    for addr, n, label in data.markers:
        markers.setdefault(n, []).append((addr, label))
    many, lane_h = geo.many, geo.lane_h
    # thin lanes: label every k-th, so the (8 px) labels stand at least 11 px apart
    label_every = 1 if not many else max(1, math.ceil(11 / lane_h))
    for i, nid in enumerate(data.nodes):
        y = geo.y_nodes + i * lane_h
        lane = svg.group(nodes_g, f"node-{nid}")
        if i % label_every == 0:
            size = sum(e - s for s, e in groups.get(nid, ()))
            svg.text(
                lane,
                12,
                y + min(lane_h, 18) * 0.75,  # the baseline three quarters down the lane
                f"node {nid}" + ("" if many else f" {size_text(size)}"),
                font_size=11 if not many else 8,
            )
        own = groups.get(nid, [])
        if not own:
            svg.text(
                lane,
                geo.left + 4,
                y + lane_h * 0.75,
                "memoryless",
                fill="#777",
                class_="memoryless",
            )
            continue
        _node_memory(svg, lane, nid, own, y, geo)
        for addr, label in markers.get(nid, ()):
            mx = geo.axis.x(addr)
            # a small triangle standing on the lane's top edge, pointing down at addr
            m = svg.el(
                lane, "path", d=f"M{mx:.1f},{y + 1:.1f} l-4,-5 h8 z", fill="#222", class_="marker"
            )
            ET.SubElement(m, "title").text = f"node {nid} {label}: {addr:#x}"


def _node_memory(
    svg: _Svg, lane: ET.Element, nid: int, own: Sequence[tuple[int, int]], y: float, geo: _Geometry
) -> None:
    """A node's span as a dashed outline and its ranges filled inside it."""
    axis = geo.axis
    inner = max(geo.lane_h - 4, 2.0)
    span = (min(s for s, _ in own), max(e for _, e in own))
    x0, x1 = axis.x(span[0]), axis.x(span[1])
    sp = svg.el(
        lane,
        "rect",
        x=x0,
        y=y + 1,
        width=max(x1 - x0, 1.0),
        height=inner,
        fill="none",
        stroke=_colour(nid),
        stroke_dasharray="4 2",
        stroke_width=1,
        class_="span",
    )
    ET.SubElement(sp, "title").text = f"node {nid} span [{span[0]:#x}, {span[1]:#x})"
    for s, e in own:
        xa, xb = axis.x(s), axis.x(e)
        r = svg.el(
            lane,
            "rect",
            x=xa,
            y=y + 2,
            width=max(xb - xa, 0.8),
            height=max(inner - 2, 1.0),
            fill=_colour(nid),
            class_="range",
        )
        ET.SubElement(r, "title").text = f"node {nid}: [{s:#x}, {e:#x}) {size_text(e - s)}"


def _map_highlights(svg: _Svg, hls: Sequence[Highlight], geo: _Geometry) -> float:
    """Each witness as a band across all rows, captioned below the map, one caption a
    line; returns the y below the captions."""
    hl_g = svg.group(svg.root, "highlights")
    width, y_zone, y_end = geo.width, geo.y_zone, geo.y_end
    for k, h in enumerate(hls):
        x0, x1 = geo.axis.x(h.start), geo.axis.x(h.end)
        # a page on a terabyte map has no width: at least 3 px, centred on it
        if x1 - x0 < 3:
            mid = (x0 + x1) / 2
            x0, x1 = mid - 1.5, mid + 1.5
        r = svg.el(
            hl_g,
            "rect",
            x=x0,
            y=y_zone - 6,
            width=x1 - x0,
            height=y_end - y_zone + 8,
            fill=_HIGHLIGHT,
            fill_opacity=0.12,
            stroke=_HIGHLIGHT,
            stroke_width=1.5,
            class_=h.kind,
        )
        ET.SubElement(r, "title").text = h.label
        # under the witness, but inside the plot, and running away from the nearer edge
        svg.text(
            hl_g,
            min(max(x0, geo.left), width - geo.right),
            y_end + 14 + 13 * k,
            f"{h.kind}: {h.label}",
            fill=_HIGHLIGHT,
            font_size=10,
            text_anchor="start" if x0 < width / 2 else "end",
        )
    return y_end + 14 + 13 * len(hls) + 10


def _labels(points: Sequence[int], to_x: Any, gap: float = 84.0) -> list[tuple[int, float, str]]:
    """Address labels that do not overlap: the first and last always, others when there
    is room on both sides. The default gap is about the width of a 15-character label
    ("0x" and 13 hex digits: any address below 2^52) at 9 px monospace."""
    if not points:
        return []
    first, last = points[0], points[-1]
    x_first, x_last = to_x(first), to_x(last)
    out = [(first, x_first, "start")]
    prev = x_first
    for p in points[1:-1]:
        x = to_x(p)
        if x - prev >= gap and x_last - x >= gap:
            out.append((p, x, "middle"))
            prev = x
    if last != first:
        out.append((last, x_last, "end"))
    return out


def _hole(svg: _Svg, parent: ET.Element, axis: _Axis, s: int, e: int, y: float) -> None:
    x0, x1 = axis.x(s), axis.x(e)
    r = svg.el(
        parent,
        "rect",
        x=x0,
        y=y,
        width=max(x1 - x0, 0.8),
        height=18,
        fill="url(#hole)",
        class_="hole",
    )
    ET.SubElement(r, "title").text = f"hole [{s:#x}, {e:#x}) {size_text(e - s)}"


def _detail(
    svg: _Svg,
    root: ET.Element,
    data: MapData,
    h: Highlight,
    k: int,
    left: int,
    plot_w: int,
    y: float,
) -> float:
    """A linear close-up around one highlight: the nodes there, sections, pages."""
    g = svg.group(root, f"detail-{k}")
    ws, we = _detail_window(h, data.page_shift)
    axis = _make_axis([ws, we], left, plot_w, min_px=0.0)
    svg.text(g, 12, y + 12, f"close-up: {h.label}", font_weight="bold")
    y += 22
    here = [r for r in data.ranges if r[0] < we and r[1] > ws]
    inside = sorted({x for r in here for x in r[:2] if ws < x < we} | {h.start, h.end} | {ws, we})
    # wider apart than on the map: witness boundaries can take all 64 bits (18 characters)
    for p, x, anchor in _labels(inside, axis.x, gap=96.0):
        svg.text(g, x, y + 8, hex(p), font_size=9, fill="#333", text_anchor=anchor)
    y += 22
    nids = sorted({r[2] for r in here} | set(h.nodes))
    if data.section_bits is not None:
        _detail_sections(svg, g, axis, ws, we, data.section_bits, y, len(nids))
    _detail_lanes(svg, g, axis, here, nids, ws, we, data.page_shift, y)
    y_bot = y + 18 * max(len(nids), 1)
    _detail_witness(svg, g, axis, h, data.page_shift, left, y, y_bot)
    return y_bot + 20


def _detail_window(h: Highlight, page_shift: int) -> tuple[int, int]:
    """The close-up's range: the witness (at least a page) and half its size on either
    side, so its neighbourhood shows; clipped to the 64-bit address space unless the
    witness itself runs past it."""
    size = max(h.end - h.start, 1 << page_shift)
    return max(h.start - size // 2, 0), min(h.end + size // 2, max(1 << 64, h.end))


def _detail_sections(
    svg: _Svg,
    g: ET.Element,
    axis: _Axis,
    ws: int,
    we: int,
    section_bits: int,
    y_top: float,
    lanes: int,
) -> None:
    """Dashed section boundaries across the close-up's lanes, numbered where there is
    room; none when more than 64 sections would fall in the window."""
    sec = 1 << section_bits
    a = -(-ws // sec) * sec  # the first boundary at or above ws (ceiling division)
    if (we - ws) // sec > 64:
        return
    last_label = -1e9
    while a <= we:
        x = axis.x(a)
        svg.el(
            g,
            "line",
            x1=x,
            y1=y_top - 4,
            x2=x,
            y2=y_top + 18 * max(lanes, 1) + 4,
            stroke="#aaa",
            stroke_width=0.8,
            stroke_dasharray="2 2",
            class_="section-line",
        )
        # 70 px: about the width of "section 1234567" at 8 px
        if x - last_label >= 70:
            svg.text(
                g,
                x + 2,
                y_top - 6,
                f"section {a >> section_bits}",
                font_size=8,
                fill="#777",
            )
            last_label = x
        a += sec


def _detail_lanes(
    svg: _Svg,
    g: ET.Element,
    axis: _Axis,
    here: Sequence[tuple[int, int, int]],
    nids: Sequence[int],
    ws: int,
    we: int,
    page_shift: int,
    y: float,
) -> None:
    """An 18 px lane per node in the close-up, its ranges filled; when the window holds
    at most 64 pages, white ticks at every page boundary."""
    pages = (we - ws) >> page_shift
    for i, nid in enumerate(nids):
        yy = y + 18 * i
        svg.text(g, 12, yy + 13, f"node {nid}")
        for s, e, n in here:
            if n != nid:
                continue
            xa, xb = axis.x(max(s, ws)), axis.x(min(e, we))
            r = svg.el(
                g,
                "rect",
                x=xa,
                y=yy + 2,
                width=max(xb - xa, 0.8),
                height=14,
                fill=_colour(nid),
                class_="range",
            )
            ET.SubElement(r, "title").text = f"node {nid}: [{s:#x}, {e:#x})"
        if pages <= 64:
            p = ws >> page_shift << page_shift
            while p <= we:
                x = axis.x(p)
                svg.el(
                    g, "line", x1=x, y1=yy + 2, x2=x, y2=yy + 16, stroke="white", stroke_width=0.6
                )
                p += 1 << page_shift


def _detail_witness(
    svg: _Svg,
    g: ET.Element,
    axis: _Axis,
    h: Highlight,
    page_shift: int,
    left: int,
    y_top: float,
    y_bot: float,
) -> None:
    """The witness outlined across the close-up's lanes, its bounds written below."""
    x0, x1 = axis.x(h.start), axis.x(h.end)
    # the window is at least a page, so only a witness much smaller than a page gets
    # this thin: then 3 px from its start
    if x1 - x0 < 3:
        x0, x1 = x0 - 1.5, x0 + 1.5
    r = svg.el(
        g,
        "rect",
        x=x0,
        y=y_top - 3,
        width=x1 - x0,
        height=y_bot - y_top + 6,
        fill="none",
        stroke=_HIGHLIGHT,
        stroke_width=2,
        class_=h.kind,
    )
    ET.SubElement(r, "title").text = h.label
    svg.text(
        g,
        left,
        y_bot + 14,
        f"[{h.start:#x}, {h.end:#x}): {size_text(h.end - h.start)}"
        + (f", pfn {h.start >> page_shift:#x}" if h.kind != "section" else ""),
        fill=_HIGHLIGHT,
        font_size=10,
    )


def _legend(
    svg: _Svg,
    root: ET.Element,
    data: MapData,
    nodes: Sequence[int],
    grid_note: str,
    compressed: bool,
    has_hl: bool,
    y: float,
    width: int,
    visible_zones: Sequence[tuple[str, int, int]] = (),
) -> float:
    g = svg.group(root, "legend")
    svg.text(g, 12, y + 10, "legend", font_weight="bold")
    x, yy = 70.0, y  # the items flow right of the heading, wrapping at the right edge

    def item(
        draw: str, label: str, fill: str = "none", stroke: str = "none", dash: str = ""
    ) -> None:
        nonlocal x, yy
        # the swatch (its label starts 18 px in), about 7 px a character of 11 px
        # monospace, and a gap before the next item
        w = 14 + 7 * len(label) + 18
        if x + w > width - 12:
            x, yy = 70.0, yy + 18
        if draw == "rect":
            attrs: dict[str, object] = {
                "x": x,
                "y": yy,
                "width": 14,
                "height": 12,
                "fill": fill,
                "stroke": stroke,
            }
            if dash:
                attrs["stroke_dasharray"] = dash
            svg.el(g, "rect", **attrs)
        else:
            svg.el(
                g, "line", x1=x + 7, y1=yy - 2, x2=x + 7, y2=yy + 14, stroke=stroke, stroke_width=1
            )
        svg.text(g, x + 18, yy + 10, label)
        x += w

    shown = list(nodes[: len(_PALETTE)])  # past those, the colours repeat
    for nid in shown:
        item("rect", f"node {nid}", fill=_colour(nid))
    if len(nodes) > len(shown):
        item("rect", f"... {len(nodes) - len(shown)} more nodes (colours repeat)", fill="#ddd")
    item("rect", "node span (dashed)", stroke="#444", dash="4 2")
    item("rect", "hole (no memory)", fill="url(#hole)", stroke="#999")
    for name, _, _ in visible_zones:
        item("rect", f"zone {name}", fill=_ZONE_COLOURS.get(name, "#eee"), stroke="#777")
    if grid_note:
        item("line", grid_note, stroke="#c8c8c8")
    if data.markers:
        item("rect", "marker: movable start / first_deferred_pfn", fill="#222")
    if has_hl:
        item("rect", "witness (chunk, section or pfn)", fill="#f7d4d4", stroke=_HIGHLIGHT)
    if compressed:
        yy += 18
        svg.text(
            g,
            70,
            yy + 10,
            "The axis is not to scale: each piece between two labelled boundaries is as "
            "wide as the log of its size.",
            fill="#555",
            font_size=10,
        )
    return yy + 18


# ---------------------------------------------------------------- results


def highlights_for(counterexample: Mapping[str, Any], page_shift: int) -> tuple[Highlight, ...]:
    """The witness of a machine answer, or the chunks and pfn values of a spec check."""
    out: list[Highlight] = []
    w = counterexample.get("witness")
    q = counterexample.get("question", "")
    if isinstance(w, Mapping):
        nodes = tuple(int(n) for n in w.get("nodes", []))
        if "section" in w:
            s = w["section"]
            out.append(
                Highlight(
                    int(s["start"], 0),
                    int(s["end"], 0),
                    f"{q}: section {s['number']} holds nodes {nodes[0]} and {nodes[1]}",
                    "section",
                    nodes,
                    f"{q}: section {s['number']}",
                )
            )
        elif "chunk" in w:
            c = w["chunk"]
            p = int(c["pfn"], 0)
            out.append(
                Highlight(
                    p << page_shift,
                    (p + (1 << int(c["order"]))) << page_shift,
                    f"{q}: chunk pfn {c['pfn']} order {c['order']} "
                    f"holds nodes {nodes[0]} and {nodes[1]}",
                    "chunk",
                    nodes,
                    f"{q}: order {c['order']} at pfn {c['pfn']}",
                )
            )
        elif "pfn" in w:
            p = int(w["pfn"], 0)
            out.append(
                Highlight(
                    p << page_shift,
                    (p + 1) << page_shift,
                    f"{q}: pfn {w['pfn']} owned by node {w['owner']}, found node {w['found']}",
                    "pfn",
                    (int(w["owner"]), int(w["found"])),
                    f"{q}: pfn {w['pfn']}",
                )
            )
        return tuple(out)
    for c in counterexample.get("chunks", []):
        cp, order = _num(c.get("pfn")), _num(c.get("order"))
        if cp is None or order is None or order + page_shift > 64:
            continue
        out.append(
            Highlight(
                cp << page_shift,
                (cp + (1 << order)) << page_shift,
                f"{c.get('name', 'chunk')}: pfn {c['pfn']} order {order}",
                "chunk",
            )
        )
    for name, v in counterexample.get("values", {}).items():
        vp = _num(v)
        if (
            vp is None
            or not (name in ("p", "q", "pfn") or "pfn" in name)
            or vp >= 1 << (64 - page_shift)
        ):
            continue
        out.append(Highlight(vp << page_shift, (vp + 1) << page_shift, f"{name} = {v}", "pfn"))
    return tuple(out)


def svg_for_result(result: Result) -> str:
    """The layout of a refutation, its chunk, section or pfn highlighted."""
    cx = result.counterexample
    if not cx or "layout" not in cx:
        raise ValueError(f"`{result.check}` has no counterexample layout to draw")
    params = cx.get("params", {})
    ps = int(params.get("PAGE_SHIFT", 12)) if isinstance(params.get("PAGE_SHIFT", 12), int) else 12
    sb = params.get("SECTION_SIZE_BITS")
    sb = int(sb) if isinstance(sb, int) and not isinstance(sb, bool) else None
    title = (
        f"{result.check}"
        + (f" [{result.strategy}]" if result.strategy else "")
        + (f" [{result.profile}]" if result.profile else "")
        + f" ({result.verdict.value})"
    )
    data = map_data(
        cx["layout"], ps, sb, title=f"{title} — {result.file}" if result.file else title
    )
    return svg_for_layout(data, ps, sb, highlights_for(cx, ps))


# ---------------------------------------------------------------- terminal


def terminal_map(
    layout: LayoutLike,
    page_shift: int = 12,
    highlight: Sequence[Highlight] | Highlight | None = None,
    width: int = 60,
    max_nodes: int = 24,
) -> str:
    """One line per node, an ASCII bar across the address space (same axis as the SVG)."""
    data = map_data(layout, page_shift)
    hls = _highlight_tuple(highlight)
    lo, hi = _extent(data, hls)
    # one column is a character: a piece may be as thin as one before the axis compresses
    axis = _make_axis(_breakpoints(data, hls), 0.0, float(width), min_px=1.0)
    cols = [(axis.addr(c), axis.addr(c + 1)) for c in range(width)]
    by_node = data.by_node()
    out = [
        f"memory map, {hex(lo)} .. {hex(hi)} ({size_text(hi - lo)}), "
        + ("axis compressed (log of each piece's size)" if axis.compressed else "linear axis")
    ]
    if data.zones:
        out.append(_zone_line(data.zones, cols))
    nodes = list(data.nodes)
    shown = _shown_nodes(nodes, hls, max_nodes)
    for nid in shown:
        rs = by_node.get(nid, [])
        if not rs:
            out.append(_row(f"node {nid}", " " * width, "memoryless"))
            continue
        size = size_text(sum(e - s for s, e in rs))
        out.append(_row(f"node {nid}", _coverage_bar(rs, cols), size))
    if len(shown) < len(nodes):
        out.append(f"{'':<{_LABEL_W}} ... {len(nodes) - len(shown)} more node(s) not shown")
    for h in hls:
        # the columns it overlaps, and the one holding its start: an empty witness, or a
        # column narrower than a byte, overlaps nothing
        marks = "".join(
            "^" if (h.start < b and a < h.end) or a <= h.start < max(b, a + 1) else " "
            for a, b in cols
        )
        out.append(_row("witness", marks, h.short or h.label))
    out.append("'#' memory, '+' partly memory, '-' hole inside the node's span")
    return "\n".join(out) + "\n"


_LABEL_W = 10  # the terminal map's row labels, "node 1023" and a space


def _row(label: str, bar: str, tail: str = "") -> str:
    return (f"{label:<{_LABEL_W}}|{bar}|" + (f" {tail}" if tail else "")).rstrip()


def _zone_line(zones: Sequence[tuple[str, int, int]], cols: Sequence[tuple[int, int]]) -> str:
    """Each column's zone (at its middle address) as a letter, then the letters used."""
    zone_bar = []
    seen_zones: set[str] = set()
    for a, b in cols:
        mid = a + (b - a) // 2
        z = next((n for n, s, e in zones if s <= mid < e), None)
        zone_bar.append(_ZONE_LETTERS.get(z, "?") if z else " ")
        if z:
            seen_zones.add(z)
    return _row(
        "zones",
        "".join(zone_bar),
        " ".join(f"{_ZONE_LETTERS[n]}={n}" for n, _, _ in zones if n in seen_zones),
    )


def _shown_nodes(nodes: Sequence[int], hls: Sequence[Highlight], max_nodes: int) -> list[int]:
    """At most ``max_nodes`` nodes, in order: the witnesses' nodes first, then the lowest."""
    focus = {n for h in hls for n in h.nodes}
    shown = [n for n in nodes if n in focus]
    shown += [n for n in nodes if n not in focus][: max(max_nodes - len(shown), 0)]
    shown.sort()
    return shown


def _coverage_bar(rs: Sequence[tuple[int, int]], cols: Sequence[tuple[int, int]]) -> str:
    """A node's bar: how much of each column its ranges (sorted) cover."""
    starts = [s for s, _ in rs]
    span = (min(s for s, _ in rs), max(e for _, e in rs))
    bar = []
    for a, b in cols:
        if b <= a:  # a column narrower than a byte
            b = a + 1
        i = max(bisect.bisect_right(starts, a) - 1, 0)
        cov = 0
        while i < len(rs) and rs[i][0] < b:
            cov += max(0, min(rs[i][1], b) - max(rs[i][0], a))
            i += 1
        if cov >= b - a:
            bar.append("#")
        elif cov > 0:
            bar.append("+")
        elif span[0] < b and a < span[1]:
            bar.append("-")
        else:
            bar.append(" ")
    return "".join(bar)


__all__ = [
    "Highlight",
    "MapData",
    "highlights_for",
    "map_data",
    "svg_for_layout",
    "svg_for_result",
    "terminal_map",
]
