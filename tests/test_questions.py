"""The four machine questions: exact answers, checked against brute force and real logs."""

from __future__ import annotations

import io
import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khospec.cli import main
from khospec.counterexample import MachineCounterexample, is_machine
from khospec.machine.importer import MachineLayout, read_layout_file
from khospec.machine.questions import (
    FOLIO_ALIGNMENT_SINGLE_NODE,
    PAGES_CHUNK_SINGLE_NODE,
    QUESTIONS,
    SECTION_SINGLE_NODE,
    ZONE_SEARCH_NID,
    ArchProfile,
    UnknownProfile,
    answer,
    arch_profile,
    builtin_profiles,
)
from khospec.results import Result, Verdict
from tests.conftest import DATA, SHARED


def _shared(prefix: str) -> str:
    assert SHARED is not None
    return str(next(SHARED.glob(prefix + "*")))


def verdicts(layout: MachineLayout, profile: str | ArchProfile) -> dict[str, str]:
    return {r.check: r.verdict.value for r in answer(layout, profile)}


def machine_cx(r: Result) -> MachineCounterexample:
    """The counterexample of a refuted answer: a machine's."""
    cx = r.counterexample
    assert cx is not None and is_machine(cx)
    return cx


def by_name(layout: MachineLayout, profile: str | ArchProfile) -> dict[str, MachineCounterexample]:
    """The counterexamples of the refuted answers, by question."""
    return {r.check: machine_cx(r) for r in answer(layout, profile) if r.counterexample is not None}


# ---------------------------------------------------------------- brute force
#
# Independent of the fast answers: enumerate every pfn, section, aligned block and every
# range to preserve, with the kho_preserve_pages loop written out as in the kernel.


def owners(layout: MachineLayout, page_shift: int) -> dict[int, int]:
    own: dict[int, int] = {}
    for r in layout.ranges:
        for pfn in range(-(-r.start >> page_shift), r.end >> page_shift):
            own[pfn] = r.nid
    return own


def brute_section(own: dict[int, int], sec_shift: int, top: int) -> list[int]:
    bad = []
    for sec in range((top >> sec_shift) + 1):
        nids = {own[p] for p in range(sec << sec_shift, (sec + 1) << sec_shift) if p in own}
        if len(nids) > 1:
            bad.append(sec)
    return bad


def brute_folio(own: dict[int, int], max_order: int, top: int) -> list[tuple[int, int]]:
    bad = []
    for order in range(max_order + 1):
        for p in range(0, top + 1, 1 << order):
            block = range(p, p + (1 << order))
            if all(q in own for q in block) and len({own[q] for q in block}) > 1:
                bad.append((p, order))
    return bad


def preserve_split(start: int, nr: int) -> list[tuple[int, int]]:
    """kho_preserve_pages: order = min(ctz(pfn), ilog2(end - pfn)), no cap."""
    out = []
    pfn, end = start, start + nr
    while pfn < end:
        ctz = (pfn & -pfn).bit_length() - 1
        order = min(ctz, (end - pfn).bit_length() - 1)
        out.append((pfn, order))
        pfn += 1 << order
    return out


def brute_pages_chunk(own: dict[int, int], top: int) -> list[tuple[int, int]]:
    bad = set()
    for s in range(1, top + 1):  # a range at pfn 0 has no defined split
        e = s
        while e in own:
            e += 1
            for pfn, order in preserve_split(s, e - s):
                if len({own[q] for q in range(pfn, pfn + (1 << order))}) > 1:
                    bad.add((pfn, order))
    return sorted(bad)


def brute_zone(own: dict[int, int]) -> list[int]:
    spans: dict[int, tuple[int, int]] = {}
    for p, n in own.items():
        lo, hi = spans.get(n, (p, p + 1))
        spans[n] = (min(lo, p), max(hi, p + 1))
    bad = []
    for p in sorted(own):
        found = next(n for n in sorted(spans) if spans[n][0] <= p < spans[n][1])
        if found != own[p]:
            bad.append(p)
    return bad


@st.composite
def small_layouts(draw: st.DrawFn) -> tuple[MachineLayout, ArchProfile]:
    """Up to 64 pfns cut into pieces, each a hole or a node's range (page_shift 0, so
    addresses are pfns), with small sections and MAX_PAGE_ORDER."""
    top = 64
    cuts = sorted(draw(st.sets(st.integers(1, top - 1), max_size=9)))
    points = [0, *cuts, top]
    ranges = []
    for lo, hi in itertools.pairwise(points):
        nid = draw(st.sampled_from([-1, 0, 0, 1, 1, 2, 3]))
        if nid >= 0:
            ranges.append((lo, hi, nid))
    section_bits = draw(st.integers(1, 5))
    max_order = draw(st.integers(0, section_bits))
    return MachineLayout.from_ranges(ranges), ArchProfile("tiny", 0, section_bits, max_order)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_layouts())
def test_answers_match_brute_force(case: tuple[MachineLayout, ArchProfile]) -> None:
    layout, prof = case
    own = owners(layout, 0)
    top = 64
    res = {r.check: r for r in answer(layout, prof)}

    bad_sections = brute_section(own, prof.section_bits, top)
    r = res[SECTION_SINGLE_NODE]
    assert (r.verdict is Verdict.REFUTED) == bool(bad_sections)
    if bad_sections:
        cx = machine_cx(r)
        w = cx["witness"]
        assert "section" in w
        assert w["section"]["number"] == bad_sections[0]
        assert cx["occurrences"] == len(bad_sections)
        assert w["nodes"][0] != w["nodes"][1]

    for q, bad in (
        (FOLIO_ALIGNMENT_SINGLE_NODE, brute_folio(own, prof.max_order, top)),
        (PAGES_CHUNK_SINGLE_NODE, brute_pages_chunk(own, top)),
    ):
        r = res[q]
        assert (r.verdict is Verdict.REFUTED) == bool(bad), q
        if bad:
            cw = machine_cx(r)["witness"]
            assert "chunk" in cw
            c = cw["chunk"]
            chunk = (int(c["pfn"], 16), c["order"])
            assert chunk in bad, (q, chunk, bad)

    bad_pfns = brute_zone(own)
    r = res[ZONE_SEARCH_NID]
    assert (r.verdict is Verdict.REFUTED) == bool(bad_pfns)
    if bad_pfns:
        cx = machine_cx(r)
        zw = cx["witness"]
        assert "owner" in zw
        assert int(zw["pfn"], 16) == bad_pfns[0]
        assert zw["owner"] == own[bad_pfns[0]]
        assert zw["found"] != zw["owner"]
        assert cx["occurrences"] == len(bad_pfns)


def test_brute_force_split_matches_the_kernel_example() -> None:
    # kho-facts.md: preserving [62 GiB, 66 GiB) gives two order-19 chunks split at 64 GiB
    gib = 1 << 18  # pfns per GiB with 4 KiB pages
    assert preserve_split(62 * gib, 4 * gib) == [(62 * gib, 19), (64 * gib, 19)]


def test_page_shift_rounds_partial_pages_away() -> None:
    # a range that ends inside a page does not own that page
    layout = MachineLayout.from_ranges([(0x1000, 0x2800, 0), (0x2800, 0x4000, 1)])
    prof = ArchProfile("t", 12, 14, 1)
    assert verdicts(layout, prof)[FOLIO_ALIGNMENT_SINGLE_NODE] == "proved"  # hole at page 2


# ---------------------------------------------------------------- the pfn 0 edge


def test_chunks_at_pfn_zero_are_not_preserve_pages_chunks() -> None:
    # node boundary at pfn 2 (a power of two): every aligned block across it starts at pfn
    # 0, which a folio may do but kho_preserve_pages cannot (ctz(0) is undefined)
    layout = MachineLayout.from_ranges([(0, 2 << 12, 0), (2 << 12, 16 << 12, 1)])
    prof = ArchProfile("t", 12, 20, 4)
    w = by_name(layout, prof)[FOLIO_ALIGNMENT_SINGLE_NODE]["witness"]
    assert "chunk" in w
    assert w["chunk"]["pfn"] == "0x0"
    assert verdicts(layout, prof)[PAGES_CHUNK_SINGLE_NODE] == "proved"


# ---------------------------------------------------------------- profiles


def test_profiles_come_from_the_prelude() -> None:
    profs = builtin_profiles()
    assert list(profs) == [
        "x86_64",
        "arm64-4k",
        "arm64-16k",
        "arm64-64k",
        "ppc64-4k",
        "ppc64-64k",
        "riscv64",
        "s390x",
        "loongarch64-16k",
    ]
    assert profs["x86_64"] == ArchProfile("x86_64", 12, 27, 10)
    assert profs["arm64-64k"] == ArchProfile("arm64-64k", 16, 29, 13)
    assert profs["ppc64-64k"] == ArchProfile("ppc64-64k", 16, 24, 8)


@pytest.mark.parametrize("name", ["any", "sparc64", ""])
def test_unknown_profiles_are_rejected(name: str) -> None:
    with pytest.raises(UnknownProfile, match="x86_64, arm64-4k"):
        arch_profile(name)


# ---------------------------------------------------------------- real and constructed logs

P, R = "proved", "refuted"


@pytest.mark.parametrize(
    ("log", "profile", "expected"),
    [
        ("memoryless_3node.txt", "x86_64", (P, P, R, P)),
        ("interleaved_syslog.txt", "x86_64", (P, P, R, R)),
        ("unaligned_16m_journal.txt", "x86_64", (R, P, R, P)),
        ("holes_same_section.txt", "x86_64", (R, P, P, P)),
        ("arm64_64k_dmesg_T.txt", "arm64-64k", (P, P, P, P)),
        ("ppc_node_memory_only.txt", "ppc64-64k", (P, P, R, R)),
        ("movable_mirror_dmesg_x.txt", "x86_64", (P, P, R, P)),
    ],
)
def test_constructed_logs(log: str, profile: str, expected: tuple[str, ...]) -> None:
    layout = read_layout_file(str(DATA / log), page_shift=arch_profile(profile).page_shift)
    got = verdicts(layout, profile)
    assert tuple(got[q] for q in QUESTIONS) == expected


def test_witnesses_of_the_interleaved_machine() -> None:
    layout = read_layout_file(str(DATA / "interleaved_syslog.txt"))
    res = by_name(layout, "x86_64")
    zone = res[ZONE_SEARCH_NID]
    assert zone["witness"] == {  # node 1's first page lies in node 0's span [0x1, 0x180000)
        "pfn": "0x80000",
        "phys": "0x80000000",
        "owner": 1,
        "found": 0,
        "spans": {
            "owner": {"nid": 1, "start_pfn": "0x80000", "end_pfn": "0x200000"},
            "found": {"nid": 0, "start_pfn": "0x1", "end_pfn": "0x180000"},
        },
        "log_line": 16,
    }
    assert zone["occurrences"] == 0x80000  # all of [2 GiB, 4 GiB)
    # the boundaries at 2 GiB and 4 GiB are powers of two: every aligned block across them
    # starts at pfn 0; the first chunk is the one across 6 GiB
    chunk = res[PAGES_CHUNK_SINGLE_NODE]["witness"]
    assert "chunk" in chunk
    assert chunk["chunk"] == {
        "pfn": "0x100000",
        "order": 20,
        "phys": "0x100000000",
        "size": "4 GiB",
    }
    assert chunk["nodes"] == [0, 1]
    assert chunk["call"] == "kho_preserve_pages(pfn_to_page(0x100000), 0x100000)"


def test_witness_of_a_boundary_inside_a_section() -> None:
    layout = read_layout_file(str(DATA / "unaligned_16m_journal.txt"))
    res = by_name(layout, "x86_64")
    w = res[SECTION_SINGLE_NODE]["witness"]
    assert "section" in w
    assert w["section"] == {
        "number": 0x110,
        "start": "0x880000000",
        "end": "0x888000000",
        "size": "128 MiB",
    }
    assert w["pages"] == [
        {"pfn": "0x880fff", "phys": "0x880fff000", "nid": 0, "log_line": 13},
        {"pfn": "0x881000", "phys": "0x881000000", "nid": 1, "log_line": 14},
    ]
    cw = res[PAGES_CHUNK_SINGLE_NODE]["witness"]
    assert "chunk" in cw
    assert cw["chunk"] == {"pfn": "0x880000", "order": 13, "phys": "0x880000000", "size": "32 MiB"}


@pytest.mark.skipif(SHARED is None, reason="the shared boot logs are not here")
@pytest.mark.parametrize(
    ("prefix", "profile", "expected", "chunk"),
    [
        ("04_", "x86_64", (P, P, R, P), ("0x800000", 20)),
        ("05_", "arm64-16k", (P, P, R, P), ("0x20000", 17)),
        ("09_", "ppc64-64k", (P, P, R, P), ("0x1fb4000", 13)),
        ("09_", "arm64-64k", (R, R, R, P), ("0x1fb4000", 13)),
        ("15_", "x86_64", (P, P, R, P), ("0x100000", 19)),
    ],
)
def test_shared_logs(
    prefix: str, profile: str, expected: tuple[str, ...], chunk: tuple[str, int]
) -> None:
    layout = read_layout_file(_shared(prefix), page_shift=arch_profile(profile).page_shift)
    results = answer(layout, profile)
    assert tuple(r.verdict.value for r in results) == expected
    w = machine_cx(next(r for r in results if r.check == PAGES_CHUNK_SINGLE_NODE))["witness"]
    assert "chunk" in w
    c = w["chunk"]
    assert (c["pfn"], c["order"]) == chunk


def test_rpi5_boundary_at_a_power_of_two_is_skipped() -> None:
    if SHARED is None:
        pytest.skip("the shared boot logs are not here")
    # node 1 / node 2 meet at 2 GiB; with 16 KiB pages the block across it starts at pfn 0
    layout = read_layout_file(_shared("05_"), page_shift=14)
    cx = by_name(layout, "arm64-16k")[PAGES_CHUNK_SINGLE_NODE]
    assert "nodes" in cx["witness"]
    assert cx["witness"]["nodes"] == [2, 3]
    assert cx["occurrences"] == 4  # boundaries at 3, 5, 6 and 7 GiB (not 2 and 4 GiB)


# ---------------------------------------------------------------- results and scale


def test_results_follow_the_contract() -> None:
    layout = read_layout_file(str(DATA / "memoryless_3node.txt"))
    results = answer(layout, "x86_64", file="machine.log")
    assert [r.check for r in results] == list(QUESTIONS)
    for r in results:
        assert (r.file, r.line, r.strategy, r.profile, r.expected) == (
            "machine.log",
            0,
            None,
            "x86_64",
            "proved",  # the safe answer: a refuted question is a machine at risk
        )
        j = r.to_json()
        assert {
            "file",
            "line",
            "check",
            "strategy",
            "profile",
            "verdict",
            "expected",
            "met",
            "time_s",
        } <= set(j)
        if r.verdict is Verdict.REFUTED:
            assert not r.met
            cx = j["counterexample"]
            assert {"layout", "chunks", "trace", "violated", "witness"} <= set(cx)
            json.dumps(cx)  # JSON-friendly
        else:
            assert r.met and j["assumptions_used"] == []


def _many_nodes(n: int, interleave: bool) -> MachineLayout:
    gib = 1 << 30
    ranges = []
    for nid in range(n):
        base = nid * 4 * gib
        ranges.append((base + (1 << 20), base + 2 * gib + (16 << 20), nid))
        other = (nid + 1) % n if interleave else nid
        ranges.append((base + 2 * gib + (16 << 20), base + 4 * gib, other))
    return MachineLayout.from_ranges(ranges)


def test_a_thousand_nodes() -> None:
    layout = _many_nodes(1024, interleave=True)
    got = verdicts(layout, "x86_64")
    assert got == {
        SECTION_SINGLE_NODE: R,
        FOLIO_ALIGNMENT_SINGLE_NODE: P,
        PAGES_CHUNK_SINGLE_NODE: R,
        ZONE_SEARCH_NID: R,
    }


# ---------------------------------------------------------------- the command


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_machine_json_contract() -> None:
    code, out, err = run(
        "machine", str(DATA / "memoryless_3node.txt"), "--arch", "x86_64", "--format", "json"
    )
    assert code == 1
    doc = json.loads(out)
    assert list(doc)[:5] == ["tool", "version", "z3_version", "results", "summary"]
    assert doc["tool"] == "khospec"
    assert [r["check"] for r in doc["results"]] == list(QUESTIONS)
    assert doc["summary"]["checks"] == 4 and doc["summary"]["not_met"] == 1
    assert "Traceback" not in err


def test_machine_exit_codes() -> None:
    assert run("machine", str(DATA / "arm64_64k_dmesg_T.txt"), "--arch", "arm64-64k")[0] == 0
    assert run("machine", str(DATA / "holes_same_section.txt"), "--arch", "x86_64")[0] == 1
    code, out, err = run("machine", str(DATA / "holes_same_section.txt"), "--arch", "vax")
    assert code == 2 and "profile `vax` is not a built-in profile" in err and not out
    code, out, err = run("machine", str(DATA / "no_layout.txt"), "--arch", "x86_64")
    assert code == 2 and f"{DATA / 'no_layout.txt'}: error[KHO601]: no memory layout found" in err
    code, out, err = run("machine", str(DATA / "does-not-exist.txt"), "--arch", "x86_64")
    assert code == 2 and "error[KHO601]: cannot read the log" in err and "Traceback" not in err


def test_machine_text_output() -> None:
    code, out, _err = run("machine", str(DATA / "unaligned_16m_journal.txt"), "--arch", "x86_64")
    assert code == 1
    assert (
        "section-single-node          refuted  section 272 [0x880000000, 0x888000000) "
        "holds memory of nodes 0 and 1" in out
    )
    assert "preserve: kho_preserve_pages(pfn_to_page(0x880000), 0x2000)" in out
    assert "\nnode 0    |" in out and "\nwitness   |" in out
    assert out.rstrip().endswith("s") and "4 answers: 2 proved, 2 refuted" in out
    assert "\x1b" not in out  # not a terminal: no colour
    assert all(line == line.rstrip() for line in out.splitlines())


def test_machine_warnings_go_to_stderr() -> None:
    _code, out, err = run(
        "machine", str(DATA / "garbled.txt"), "--arch", "x86_64", "--format", "json"
    )
    assert json.loads(out)["tool"] == "khospec"
    assert f"{DATA / 'garbled.txt'}:11: warning[KHO602]" in err
