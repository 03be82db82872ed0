"""The four layout questions of ``khospec machine``, answered exactly for one machine.

No solver: a concrete layout has finitely many node boundaries, and every question
reduces to a test per boundary or per range. Ranges are sorted once; each question is
then one pass (the zone search one sweep over the node spans), so a 1,024-node machine
takes milliseconds. Memory means the node ranges of the log, in whole pages: a range
``[start, end)`` in bytes holds the pfns ``[ceil(start / PAGE_SIZE), end / PAGE_SIZE)``,
as in the engine's concrete layouts.

The reductions (``b`` a node boundary: a pfn where one node's memory ends and another's
begins with no hole between, ``c = ctz(b)``):

- ``section-single-node``: the ranges meeting a section are consecutive in address
  order, so two nodes share a section iff two *consecutive* ranges of different nodes
  meet the same section.
- A naturally aligned block lying in memory holds two nodes iff it holds some boundary
  ``b`` with ``b - 1`` and ``b`` both inside it. The aligned blocks holding both ``b - 1``
  and ``b`` are nested; the smallest is ``[b - 2^c, b + 2^c)`` of order ``c + 1``
  (kho-facts.md section 2), and every other one contains it. So such a block exists iff
  that smallest one lies in memory (and, for ``folio-alignment-single-node``, has order
  ``c + 1 <= MAX_PAGE_ORDER``).
- ``pages-chunk-single-node``: the chunks ``kho_preserve_pages`` makes for a range
  ``[s, e)`` with ``s >= 1`` are exactly the maximal aligned blocks inside it, and every
  aligned block ``[p, p + 2^k)`` with ``p >= 1`` is the single chunk of preserving exactly
  that block (``ctz(p) >= k``). A range starting at pfn 0 has no well-defined split
  (``ctz(0)``, design row 8), so chunks start at pfn >= 1: the smallest straddling block
  must start at ``b - 2^c >= 1`` (when ``b`` is a power of two every straddling block
  starts at pfn 0). There is no order cap.
- ``zone-search-nid``: the node the search finds for a pfn is the smallest id whose span
  contains it; a sweep over the span end points gives that id per segment, and one
  merge with the (sorted) ranges finds the lowest pfn where it is not the owner.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from khospec.counterexample import (
    Chunk,
    ChunkWitness,
    MachineCounterexample,
    MachineLayoutData,
    Node,
    Range,
    SectionWitness,
    Violated,
    Witness,
    WitnessChunk,
    WitnessPage,
    Zone,
    ZoneSearchWitness,
    is_machine,
)
from khospec.explain import size_text
from khospec.machine.importer import MachineLayout, MemRange
from khospec.results import Result, Verdict

# the questions' names: the `check` of each answer in every report
SECTION_SINGLE_NODE = "section-single-node"
FOLIO_ALIGNMENT_SINGLE_NODE = "folio-alignment-single-node"
PAGES_CHUNK_SINGLE_NODE = "pages-chunk-single-node"
ZONE_SEARCH_NID = "zone-search-nid"
QUESTIONS = (  # the order reports list the answers in
    SECTION_SINGLE_NODE,
    FOLIO_ALIGNMENT_SINGLE_NODE,
    PAGES_CHUNK_SINGLE_NODE,
    ZONE_SEARCH_NID,
)

# what each question claims, for reports
CLAIMS = {
    SECTION_SINGLE_NODE: "no memory section holds memory of two nodes",
    FOLIO_ALIGNMENT_SINGLE_NODE: (
        "no aligned block of order <= MAX_PAGE_ORDER in memory holds pages of two nodes"
    ),
    PAGES_CHUNK_SINGLE_NODE: (
        "no kho_preserve_pages chunk of a range in memory holds pages of two nodes"
    ),
    ZONE_SEARCH_NID: "the first node (ascending id) whose span holds a pfn owns it",
}


class UnknownProfile(ValueError):
    """The profile is not built in, or leaves a needed constant symbolic."""


@dataclass(frozen=True)
class ArchProfile:
    """The constants the questions need; read from the prelude's profiles."""

    name: str
    page_shift: int
    section_bits: int  # SECTION_SIZE_BITS: a sparsemem section is 2^section_bits bytes
    max_order: int  # MAX_PAGE_ORDER: the buddy allocator's largest order

    @property
    def section_pages_shift(self) -> int:
        """The kernel's PFN_SECTION_SHIFT: log2 of the pages per section."""
        return self.section_bits - self.page_shift


def builtin_profiles() -> dict[str, ArchProfile]:
    """The prelude's profiles that bind PAGE_SHIFT, SECTION_SIZE_BITS and MAX_PAGE_ORDER
    (the prelude is the one table of architecture constants)."""
    return dict(_builtin_profiles())


@functools.cache
def _builtin_profiles() -> tuple[tuple[str, ArchProfile], ...]:
    # the prelude ships with khospec: reading it once per process serves a fleet's batches
    from khospec.resolve import load_prelude

    program = load_prelude()
    out: dict[str, ArchProfile] = {}
    for p in program.profiles.values():
        b = dict(p.bindings)
        vals = [b.get(k) for k in ("PAGE_SHIFT", "SECTION_SIZE_BITS", "MAX_PAGE_ORDER")]
        # a profile leaving one symbolic (`any`) describes no machine
        if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            ps, sb, mo = (int(v) for v in vals)  # type: ignore[arg-type]
            out[p.name] = ArchProfile(p.name, ps, sb, mo)
    return tuple(out.items())


def arch_profile(name: str, profiles: dict[str, ArchProfile] | None = None) -> ArchProfile:
    """The profile ``name``, of ``profiles`` or else the built-in ones; UnknownProfile,
    naming those there are, when it is none of them."""
    profiles = profiles if profiles is not None else builtin_profiles()
    found = profiles.get(name)
    if found is None:
        names = ", ".join(profiles)
        why = (
            "leaves PAGE_SHIFT, SECTION_SIZE_BITS or MAX_PAGE_ORDER symbolic; "
            "a machine needs numbers"
            if name == "any"
            else "is not a built-in profile"
        )
        raise UnknownProfile(f"profile `{name}` {why}; use one of: {names}")
    return found


# ---------------------------------------------------------------- pfn ranges


@dataclass(frozen=True)
class PfnRange:
    """A range of whole pages of one node, as the log gives it."""

    start: int  # first pfn
    end: int  # pfn after the last
    nid: int
    line: int  # log line (0: none)


def pfn_ranges(layout: MachineLayout, page_shift: int) -> list[PfnRange]:
    """Whole pages of each range, sorted (a partial page at either end is not memory)."""
    out = []
    for r in layout.ranges:
        s = -(-r.start >> page_shift)
        e = r.end >> page_shift
        if s < e:
            out.append(PfnRange(s, e, r.nid, r.line))
    out.sort(key=lambda r: r.start)
    return out


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _ctz(x: int) -> int:
    """Trailing zero bits of x > 0 (__ffs); a node boundary is never pfn 0."""
    return (x & -x).bit_length() - 1


def _hex(x: int) -> str:
    return hex(x)


def _page(pfn: int, r: PfnRange, page_shift: int) -> WitnessPage:
    """A witness page: its pfn and address, its node, and the log line of its range."""
    out: WitnessPage = {"pfn": _hex(pfn), "phys": _hex(pfn << page_shift), "nid": r.nid}
    if r.line:
        out["log_line"] = r.line
    return out


def _chunk(pfn: int, order: int, page_shift: int) -> WitnessChunk:
    return {
        "pfn": _hex(pfn),
        "order": order,
        "phys": _hex(pfn << page_shift),
        "size": size_text(1 << (order + page_shift)),
    }


@dataclass(frozen=True)
class Finding:
    """A question's answer before it becomes a Result: the lowest witness (or None),
    how many places break the claim, and a sentence for either verdict."""

    witness: Witness | None
    occurrences: int
    note: str


# ---------------------------------------------------------------- the questions


def section_single_node(
    ranges: Sequence[PfnRange], section_pages_shift: int, page_shift: int
) -> Finding:
    """The sections holding memory of two nodes: the lowest as the witness, and how many."""
    witness: SectionWitness | None = None
    shared: set[int] = set()
    for a, b in itertools.pairwise(ranges):
        if a.nid == b.nid:
            continue
        # a's last page and b's first: the only pages of the two that can share a section
        sec = (a.end - 1) >> section_pages_shift
        if sec != b.start >> section_pages_shift:
            continue
        shared.add(sec)
        if witness is None:
            lo = sec << (section_pages_shift + page_shift)
            witness = {
                "section": {
                    "number": sec,
                    "start": _hex(lo),
                    "end": _hex(lo + (1 << (section_pages_shift + page_shift))),
                    "size": size_text(1 << (section_pages_shift + page_shift)),
                },
                "nodes": [a.nid, b.nid],
                "pages": [_page(a.end - 1, a, page_shift), _page(b.start, b, page_shift)],
            }
    if witness is not None:
        return Finding(
            witness,
            len(shared),
            f"{_n(len(shared), 'section holds', 'sections hold')} memory of two nodes",
        )
    # for the note: where the node changes in address order, holes between or not
    changes = sum(1 for a, b in itertools.pairwise(ranges) if a.nid != b.nid)
    if not changes:
        return Finding(None, 0, "one node owns all memory")
    where = (
        "the change of node in address order is at a section boundary"
        if changes == 1
        else f"all {changes} changes of node in address order are at section boundaries"
    )
    return Finding(None, 0, where)


def _boundaries(ranges: Sequence[PfnRange]) -> Iterable[tuple[int, int, int, PfnRange, PfnRange]]:
    """Node boundaries inside contiguous memory: (b, run start, run end, left, right)."""
    # the run of contiguous memory (ranges that touch) each range lies in: its start
    # from the left, its end from the right
    n = len(ranges)
    run_start = [0] * n
    run_end = [0] * n
    for i, r in enumerate(ranges):
        run_start[i] = run_start[i - 1] if i and ranges[i - 1].end == r.start else r.start
    for i in range(n - 1, -1, -1):
        r = ranges[i]
        run_end[i] = run_end[i + 1] if i + 1 < n and ranges[i + 1].start == r.end else r.end
    for i in range(n - 1):
        a, b = ranges[i], ranges[i + 1]
        if a.end == b.start and a.nid != b.nid:
            yield b.start, run_start[i], run_end[i], a, b


def straddling_chunk(
    ranges: Sequence[PfnRange], page_shift: int, max_order: int | None, min_pfn: int
) -> Finding:
    """An aligned block lying in memory, of order <= max_order (None: any) and starting
    at pfn >= min_pfn, that holds pages of two nodes."""
    witness: ChunkWitness | None = None
    count = 0
    changes = 0
    smallest: int | None = None
    for b, run_lo, run_hi, left, right in _boundaries(ranges):
        changes += 1
        # the smallest aligned block holding b - 1 and b: [b - 2^c, b + 2^c)
        c = _ctz(b)
        order = c + 1
        p = b - (1 << c)
        smallest = order if smallest is None else min(smallest, order)  # for the note
        if max_order is not None and order > max_order:
            continue
        # it must start where a chunk may, and lie in memory (a larger block holds it)
        if p < min_pfn or p < run_lo or b + (1 << c) > run_hi:
            continue
        count += 1
        if witness is None:
            witness = {
                "chunk": _chunk(p, order, page_shift),
                "nodes": [left.nid, right.nid],
                "boundary": {"pfn": _hex(b), "phys": _hex(b << page_shift)},
                "pages": [_page(b - 1, left, page_shift), _page(b, right, page_shift)],
            }
    if witness is not None:
        return Finding(
            witness,
            count,
            f"{_n(count, 'node boundary', 'node boundaries')} in contiguous memory "
            "can be straddled",
        )
    if not changes:
        return Finding(None, 0, "no node boundary lies inside contiguous memory")
    why = (
        f"the smallest aligned block across a boundary has order {smallest} "
        f"> MAX_PAGE_ORDER {max_order}"
        if max_order is not None and smallest is not None and smallest > max_order
        else "no aligned block across a node boundary lies in memory"
    )
    return Finding(None, 0, f"{why} ({_n(changes, 'boundary', 'boundaries')} checked)")


def zone_search_nid(ranges: Sequence[PfnRange], page_shift: int) -> Finding:
    """The pages whose owner is not the lowest-id node whose span holds them: what the
    `zone_search` strategy's for_each_zone walk would get wrong, at node granularity.
    The lowest such page is the witness; the count is of pages."""
    # a node's span: its lowest start to its highest end, holes included, as the spans
    # zone_spans_pfn tests are
    spans: dict[int, tuple[int, int]] = {}
    for r in ranges:
        lo, hi = spans.get(r.nid, (r.start, r.end))
        spans[r.nid] = (min(lo, r.start), max(hi, r.end))
    # sweep: the smallest node id whose span covers each elementary segment
    points = sorted({x for s in spans.values() for x in s})
    by_start = sorted((lo, hi, nid) for nid, (lo, hi) in spans.items())
    heap: list[tuple[int, int]] = []  # (nid, span end), lazily pruned
    segs: list[tuple[int, int, int]] = []  # (start, end, smallest covering nid or -1)
    k = 0
    for x, y in itertools.pairwise(points):
        while k < len(by_start) and by_start[k][0] <= x:
            heapq.heappush(heap, (by_start[k][2], by_start[k][1]))
            k += 1
        while heap and heap[0][1] <= x:
            heapq.heappop(heap)
        segs.append((x, y, heap[0][0] if heap else -1))
    witness: ZoneSearchWitness | None = None
    pages = 0
    # a merge: the segments and the ranges both ascend, so j only moves forward
    j = 0
    for r in ranges:
        while j < len(segs) and segs[j][1] <= r.start:
            j += 1
        i = j
        while i < len(segs) and segs[i][0] < r.end:
            lo, hi, found = segs[i]
            if found != r.nid:
                x = max(lo, r.start)
                pages += min(hi, r.end) - x
                if witness is None:
                    flo, fhi = spans[found]
                    olo, ohi = spans[r.nid]
                    witness = {
                        "pfn": _hex(x),
                        "phys": _hex(x << page_shift),
                        "owner": r.nid,
                        "found": found,
                        "spans": {
                            "owner": {"nid": r.nid, "start_pfn": _hex(olo), "end_pfn": _hex(ohi)},
                            "found": {"nid": found, "start_pfn": _hex(flo), "end_pfn": _hex(fhi)},
                        },
                    }
                    if r.line:
                        witness["log_line"] = r.line
            i += 1
    if witness is not None:
        return Finding(
            witness,
            pages,
            f"{_n(pages, 'page lies', 'pages lie')} in the span of a node with a "
            "lower id than their owner",
        )
    # for the note: whether any spans overlap at all (nodes interleave)
    overlap = any(
        a[1] > b[0]
        for a, b in zip(sorted(spans.values()), sorted(spans.values())[1:], strict=False)
    )
    return Finding(
        None,
        0,
        "node spans overlap, but only where the lowest node owns the pages"
        if overlap
        else "node spans do not overlap",
    )


# ---------------------------------------------------------------- results


def _range(r: MemRange, page_shift: int) -> Range:
    """A log's range: its byte bounds, and its whole pages as pfn_ranges counts them."""
    out: Range = {
        "start": _hex(r.start),
        "end": _hex(r.end),
        "start_pfn": _hex(-(-r.start >> page_shift)),
        "end_pfn": _hex(r.end >> page_shift),
        "size": size_text(r.size),
    }
    if r.line:
        out["log_line"] = r.line
    return out


def _layout_json(layout: MachineLayout, page_shift: int) -> MachineLayoutData:
    """The layout in the shape of a spec counterexample's (hex byte addresses)."""
    movable = dict(layout.movable)
    groups = layout.by_node()
    nodes: list[Node] = []
    for nid in layout.all_nodes:
        node: Node = {
            "nid": nid,
            "ranges": [_range(r, page_shift) for r in groups.get(nid, ())],
        }
        if nid in movable:
            # the log gives an address; the contract, like a spec's, a pfn
            node["zone_movable_pfn"] = _hex(movable[nid] >> page_shift)
        if nid in layout.memoryless:
            node["memoryless"] = True
        nodes.append(node)
    zones: list[Zone] = [
        {
            "zone": z,
            "start_pfn": _hex(-(-lim[0] >> page_shift)),
            "end_pfn": _hex(lim[1] >> page_shift),
            "start": _hex(lim[0]),
            "end": _hex(lim[1]),
        }
        for z, lim in layout.zones
        if lim is not None  # a zone the log gives no limits for is left out
    ]
    out: MachineLayoutData = {
        "source": layout.source,
        "boot": layout.boot,
        "nodes": nodes,
        "zones": zones,
    }
    if layout.mirrored_kernelcore:
        out["mirrored_kernelcore"] = True
    return out


def _witness_text(w: Witness) -> str:
    """One line naming the witness (tables, mail, SARIF messages). Its keys say which
    question found it: a section, a chunk, or else a pfn the zone search gets wrong."""
    if "section" in w:
        s = w["section"]
        a, b = w["nodes"]
        return f"section {s['number']} [{s['start']}, {s['end']}) holds memory of nodes {a} and {b}"
    if "chunk" in w:
        c = w["chunk"]
        a, b = w["nodes"]
        return (
            f"chunk pfn {c['pfn']} order {c['order']} ({c['size']} at {c['phys']}) holds pages "
            f"of nodes {a} and {b}"
        )
    return (
        f"pfn {w['pfn']} ({w['phys']}) is owned by node {w['owner']}, "
        f"the search finds node {w['found']}"
    )


def witness_text(result: Result) -> str:
    """The witness line of a machine's answer; "-" for any other result (a table cell)."""
    cx = result.counterexample
    if not cx or not is_machine(cx):
        return "-"
    return _witness_text(cx["witness"])


def witness_lines(cx: MachineCounterexample) -> list[str]:
    """A machine answer's counterexample in a few ``key: value`` lines."""
    w = cx["witness"]
    q = cx["question"]
    out: list[str] = []

    def page(p: WitnessPage) -> str:
        line = f", log line {p['log_line']}" if "log_line" in p else ""
        return f"{p['nid']} (pfn {p['pfn']}{line})"

    if "section" in w:
        s = w["section"]
        out.append(f"section:  {s['number']}, [{s['start']}, {s['end']}) ({s['size']})")
    if "chunk" in w:
        c = w["chunk"]
        out.append(f"chunk:    pfn {c['pfn']} order {c['order']}, {c['size']} at {c['phys']}")
    if "pages" in w and len(w["pages"]) == 2:
        a, b = w["pages"]
        out.append(f"nodes:    {page(a)} and {page(b)}")
    if "call" in w:
        out.append(f"preserve: {w['call']}")
    if "owner" in w:
        line = f", log line {w['log_line']}" if "log_line" in w else ""
        sp = w["spans"]
        out.append(f"pfn:      {w['pfn']} ({w['phys']}), owned by node {w['owner']}{line}")
        out.append(
            f"found:    node {w['found']}, whose span "
            f"[{sp['found']['start_pfn']}, {sp['found']['end_pfn']}) holds it and whose id is lower"
        )
    n = cx["occurrences"]
    if q == SECTION_SINGLE_NODE:
        what = _n(n, "section holds", "sections hold") + " two nodes"
    elif q == ZONE_SEARCH_NID:
        what = _n(n, "page gets", "pages get") + " the wrong node"
    else:
        what = _n(n, "node boundary", "node boundaries") + " can be straddled"
    out.append(f"count:    {what}")
    return out


def _counterexample(
    question: str,
    f: Finding,
    layout_json: MachineLayoutData,
    profile: ArchProfile,
) -> MachineCounterexample:
    """A refuted question's answer in the JSON contract's shape: the witness, and the
    keys of a spec check's counterexample besides."""
    w = f.witness
    assert w is not None
    chunks: list[Chunk] = []
    values: dict[str, str | int] = {}
    if "chunk" in w:
        chunks.append({"name": "chunk", **w["chunk"]})
        values = {"boundary_pfn": w["boundary"]["pfn"]}
        # the call whose only chunk this block is: preserving exactly the block
        if question == PAGES_CHUNK_SINGLE_NODE:
            c = w["chunk"]
            w = {**w, "call": f"kho_preserve_pages(pfn_to_page({c['pfn']}), {1 << c['order']:#x})"}
    elif "section" in w:
        values = {"section": w["section"]["number"]}
    else:
        values = {"pfn": w["pfn"], "owner": w["owner"], "found": w["found"]}
    violated: Violated = {
        "kind": "machine",
        "name": question,
        "text": f"{CLAIMS[question]}: {_witness_text(w)}",
    }
    return {
        "question": question,
        "witness": w,
        "occurrences": f.occurrences,
        # the keys of a spec check's counterexample, so every report reads both
        "layout": layout_json,
        "chunks": chunks,
        "values": values,
        "params": {
            "PAGE_SHIFT": profile.page_shift,
            "SECTION_SIZE_BITS": profile.section_bits,
            "MAX_PAGE_ORDER": profile.max_order,
        },
        "trace": [],  # a fact of the layout, not of a boot
        "violated": violated,
    }


def answer(
    layout: MachineLayout, profile: str | ArchProfile, file: str | None = None
) -> list[Result]:
    """The four answers for ``layout`` under ``profile`` (a name or the constants)."""
    prof = arch_profile(profile) if isinstance(profile, str) else profile
    # a section smaller than a page leaves a negative shift: no such kernel builds
    if prof.section_bits < prof.page_shift:
        raise UnknownProfile(f"profile `{prof.name}`: sections smaller than a page")
    t0 = time.perf_counter()
    ranges = pfn_ranges(layout, prof.page_shift)
    prep = time.perf_counter() - t0
    ps = prof.page_shift
    ask = {
        SECTION_SINGLE_NODE: lambda: section_single_node(ranges, prof.section_pages_shift, ps),
        # a buddy folio: order capped, pfn 0 allowed; a kho_preserve_pages chunk: no
        # cap, and pfn >= 1 (ctz(0) gives no split)
        FOLIO_ALIGNMENT_SINGLE_NODE: lambda: straddling_chunk(ranges, ps, prof.max_order, 0),
        PAGES_CHUNK_SINGLE_NODE: lambda: straddling_chunk(ranges, ps, None, 1),
        ZONE_SEARCH_NID: lambda: zone_search_nid(ranges, ps),
    }
    layout_json: MachineLayoutData | None = None
    results = []
    for q in QUESTIONS:
        t1 = time.perf_counter()
        f = ask[q]()
        cx = None
        if f.witness is not None:
            layout_json = layout_json or _layout_json(layout, ps)  # once, shared
            cx = _counterexample(q, f, layout_json, prof)
        results.append(
            Result(
                file=file if file is not None else layout.source,
                line=0,  # no spec line: the answer is about a log
                check=q,
                strategy=None,
                profile=prof.name,
                verdict=Verdict.REFUTED if f.witness is not None else Verdict.PROVED,
                # the safe answer: a refuted question is a machine at risk (exit code 1)
                expected="proved",
                # the shared preparation split evenly among the answers
                time_s=time.perf_counter() - t1 + prep / len(QUESTIONS),
                counterexample=cx,
                # proved from the layout alone: no assumption used
                assumptions_used=None if f.witness is not None else (),
                notes=(f.note,),
                layout=layout.default_name,
            )
        )
    return results


__all__ = [
    "CLAIMS",
    "FOLIO_ALIGNMENT_SINGLE_NODE",
    "PAGES_CHUNK_SINGLE_NODE",
    "QUESTIONS",
    "SECTION_SINGLE_NODE",
    "ZONE_SEARCH_NID",
    "ArchProfile",
    "Finding",
    "PfnRange",
    "UnknownProfile",
    "answer",
    "arch_profile",
    "builtin_profiles",
    "pfn_ranges",
    "section_single_node",
    "straddling_chunk",
    "witness_lines",
    "witness_text",
    "zone_search_nid",
]
