"""Counterexamples made readable: hex and sizes, chunks, the violated condition.

``present`` turns the engine's raw model data into the counterexample of the JSON
contract (layout, chunks, trace, violated condition) and keeps the raw data under
``model`` for replay. ``short_lines`` is the few-line version the table prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from khospec import ir
from khospec.counterexample import (
    Chunk,
    Layout,
    ModelData,
    ModelLayout,
    ModelWitness,
    Node,
    Range,
    Read,
    SpecCounterexample,
    Violated,
    Zone,
)
from khospec.results import Result

# enum zone_type of a 64-bit kernel (no ZONE_HIGHMEM), by the index arch_zones uses
ZONE_NAMES = ["DMA", "DMA32", "Normal", "Movable", "Device"]


def number(v: Any) -> int | None:
    """An integer of a presented counterexample (an int, or "0x..." text); None else."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            return None
    return None


def size_text(n: int) -> str:
    """Bytes as the largest unit that divides them (else two decimals)."""
    if n <= 0:
        return f"{n} B"
    for unit, shift in (("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return f"{int(v)} {unit}" if n % (1 << shift) == 0 else f"{v:.2f} {unit}"
    return f"{n} B"


def _source_line(span_text: str, program: ir.Program) -> str | None:
    """The line a ``file:line:col`` span names, stripped; None if it cannot be read.
    The program's own copy of its sources comes first: the file's name is the one the
    user gave, relative to where the check was started, which need not be where the
    counterexample is presented (a worker of a cluster)."""
    try:
        # from the right: a file name may hold a colon
        file, line, _ = span_text.rsplit(":", 2)
        lines = program.source_lines.get(file) or _read(file)
        return lines[int(line) - 1].strip() if lines else None
    except (ValueError, IndexError):
        return None


def _read(file: str) -> list[str] | None:
    # the prelude ships inside khospec, not as a file a span can name
    if file == "<prelude>":
        from khospec.resolve import prelude_text

        return prelude_text().splitlines()
    try:
        return Path(file).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None


def present(program: ir.Program, check: ir.CheckDef, strategy: str | None, raw: ModelData) -> SpecCounterexample:
    """The engine's model of a refutation of ``check`` under ``strategy``, made readable."""
    params: dict[str, Any] = raw["params"]
    page_shift = params.get("PAGE_SHIFT", 12)
    layout: ModelLayout = raw["layout"]
    # first_deferred_pfn(nid): the model's rows, by node id (a row's arguments are a list)
    fdp = {next(iter(a)): v for a, v in raw["param_functions"].get("first_deferred_pfn", [])}
    # a model read back from the verdict cache has the node ids as text
    movable: Mapping[Any, int] = layout["zone_movable_pfn"]
    nodes: list[Node] = []
    for nid in layout["nodes"]:
        rs = [x for x in layout["ranges"] if x[2] == nid]
        node: Node = {
            "nid": nid,
            "ranges": [_range(s, e, bool(m), page_shift) for s, e, _, m in rs],
        }
        # first_deferred_pfn plays a part only where the boot runs (a claim over traces)
        if nid in fdp and check.is_trace:
            v = fdp[nid]
            # ULONG_MAX: the kernel's value for a node with nothing deferred
            node["first_deferred_pfn"] = "ULONG_MAX" if v == (1 << 64) - 1 else hex(v)
        mv = movable.get(nid) or movable.get(str(nid))
        if mv:  # 0: the node has no ZONE_MOVABLE
            node["zone_movable_pfn"] = hex(mv)
        nodes.append(node)
    zones: list[Zone] = []
    for z, (lo, hi) in enumerate(layout["arch_zones"]):
        # an empty zone, or an index past ZONE_DEVICE, is left out
        if z < len(ZONE_NAMES) and lo < hi:
            zones.append({"zone": ZONE_NAMES[z], "start_pfn": hex(lo), "end_pfn": hex(hi)})
    chunks: list[Chunk] = []
    values: dict[str, Any] = {}
    used = ir.used_params(program, check, strategy)
    # a chunk-shaped param the check reads is one of the finding's chunks
    for name, v in params.items():
        if isinstance(v, dict) and set(v) == {"pfn", "order"} and name in used:
            chunks.append(_chunk(name, v, page_shift))
    # a trace violation happens at one node of the tree of traces: the witnesses of the
    # other nodes played no part in it
    at_node = raw["violated"].get("node")
    witnesses: list[ModelWitness] = raw["witnesses"]
    for w in witnesses:
        v = w["value"]
        if at_node is not None and w["label"] not in ("claim", at_node):
            continue
        if isinstance(v, dict) and set(v) == {"pfn", "order"}:
            chunks.append(_chunk(w["name"], v, page_shift))
        # the claim's and the loops' witnesses; functions' arguments and initial values
        # stay in the model
        elif w["label"] in ("claim",) or w["role"] == "witness":
            values.setdefault(w["name"], _fmt(v, w["type"]))
    # the engine's description but the trace node, in its order
    found = raw["violated"]
    violated: Violated = {"kind": found["kind"]}
    if "check" in found:
        violated["check"] = found["check"]
    if "name" in found:
        violated["name"] = found["name"]
    if "step" in found:
        violated["step"] = found["step"]
    if "at" in found:
        violated["at"] = found["at"]
    at = violated.get("at")
    if at:
        text = _source_line(at, program)
        if text:
            violated["text"] = text
    elif violated.get("kind") in ("claim", "after", "always"):
        # a claim has no place of its own in the model: the check's claim is the place
        violated["text"] = _source_line(str(check.claim.span), program) or check.name
        violated["at"] = str(check.claim.span)
    if not ir.uses_layout(program, check, strategy):
        # the solver gave the unread layout some values; they are no part of the finding
        nodes, zones = [], []
    shown: Layout = {"nodes": nodes, "zones": zones}
    # kernelcore=mirror is a fact about the layout: shown only with it
    if layout.get("mirrored_kernelcore") and nodes:
        shown["mirrored_kernelcore"] = True
    return {
        "layout": shown,
        "chunks": chunks,
        "values": values,
        "params": {k: v for k, v in params.items() if not isinstance(v, dict) and k in used},
        "trace": list(raw["trace"]),
        "violated": violated,
        "model": raw,
    }


def _range(start: int, end: int, mirror: bool, page_shift: int) -> Range:
    """A range of pfns ``[start, end)`` in bytes and pfns."""
    out: Range = {
        "start": hex(start << page_shift),
        "end": hex(end << page_shift),
        "start_pfn": hex(start),
        "end_pfn": hex(end),
        "size": size_text((end - start) << page_shift),
    }
    if mirror:
        out["mirror"] = True
    return out


def _chunk(name: str, v: dict[str, int], page_shift: int) -> Chunk:
    """A chunk (pfn, order) as the finding shows it: hex pfn and address, and its size."""
    pfn, order = v["pfn"], v["order"]
    out: Chunk = {"name": name, "pfn": hex(pfn), "order": order}
    # from order 64 up, 1UL << order is no size: no phys, no size (counterexample.Chunk)
    if order < 64:
        out["phys"] = hex(pfn << page_shift)
        # below 2^70 bytes a size reads as at most 512 EiB; past it, a power of two
        out["size"] = size_text((1 << order) << page_shift) if order + page_shift < 70 else f"2^{order + page_shift} B"
    return out


def _fmt(v: Any, ty: str) -> Any:
    """A witness's value for ``values``: a 64-bit unsigned one (a pfn or an address) in
    hex, any other as it is."""
    if isinstance(v, bool) or not isinstance(v, int):
        return v
    if ty in ("ulong", "u64", "phys_addr_t"):
        return hex(v)
    return v


def short_lines(r: Result) -> list[str]:
    """The counterexample in a few lines, for the text table."""
    cx = r.counterexample
    if not cx:
        return []
    out = []
    nodes: list[Node] = cx["layout"]["nodes"]
    parts = []
    for n in nodes:
        rs = ", ".join(f"[{x['start']}, {x['end']})" for x in n["ranges"])
        extra = f" first_deferred_pfn {n['first_deferred_pfn']}" if "first_deferred_pfn" in n else ""
        parts.append(f"node {n['nid']}: {rs}{extra}")
    if parts:
        out.append("layout:   " + "; ".join(parts))
    chunks: list[Chunk] = cx["chunks"]
    for c in chunks:
        size = f", {c['size']} at {c['phys']}" if "size" in c else ""
        out.append(f"chunk:    {c['name']} pfn {c['pfn']} order {c['order']}{size}")
    # structs do not fit on the line; six values at most keep the table's detail short
    vals = {k: v for k, v in cx["values"].items() if not isinstance(v, dict)}
    if vals:
        out.append("values:   " + ", ".join(f"{k} = {v}" for k, v in list(vals.items())[:6]))
    if cx["trace"]:
        out.append("trace:    " + " -> ".join(cx["trace"]))
    v: Violated = cx["violated"]
    where = f" in {v['step']}" if v.get("step") else ""
    text = v.get("text") or v.get("name") or ""
    out.append(f"violated: {text}{where} ({v.get('at', '')})")
    if v.get("reads"):
        out.append("reads:    " + reads_text(v["reads"]))
    return out


def reads_text(reads: Sequence[Read]) -> str:
    """The struct pages a failed requirement read, in the kernel's terms."""
    return ", ".join(f"the struct page of pfn {x['pfn']} ({x['read']})" for x in reads)
