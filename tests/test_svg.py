"""Memory maps: SVG documents and the terminal map."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from khospec import ir
from khospec.cli import main
from khospec.counterexample import SpecCounterexample
from khospec.machine.importer import MachineLayout, read_layout_file
from khospec.machine.questions import answer
from khospec.machine.svg import (
    Highlight,
    highlights_for,
    map_data,
    svg_for_layout,
    svg_for_result,
    terminal_map,
)
from khospec.results import Result, Verdict
from tests.helpers import byte_range, empty_model

DATA = Path(__file__).parent / "data" / "layouts"
NS = {"s": "http://www.w3.org/2000/svg"}
LOGS = sorted(
    p
    for p in DATA.glob("*.txt")
    if p.name not in ("no_layout.txt", "overlap.txt", "zoneinfo_interleaved.txt")
)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert int(root.attrib["width"]) > 0 and int(root.attrib["height"]) > 0
    return root


def by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.attrib.get("class") == cls]


def group(root: ET.Element, gid: str) -> ET.Element:
    found = root.find(f".//s:g[@id='{gid}']", NS)
    assert found is not None, gid
    return found


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.stem)
def test_every_constructed_log_draws(log: Path) -> None:
    layout = read_layout_file(str(log))
    root = parse(svg_for_layout(layout, 12, 27))
    # each range twice: the memory lane and its node's lane
    assert len(by_class(group(root, "ram"), "range")) == len(layout.ranges)
    assert len(by_class(group(root, "nodes"), "range")) == len(layout.ranges)
    assert len(by_class(root, "span")) == len(layout.nodes)
    for gid in ("header", "axis", "zones", "sections", "legend"):
        group(root, gid)


def test_map_elements_and_witness() -> None:
    layout = read_layout_file(str(DATA / "unaligned_16m_journal.txt"))
    results = answer(layout, "x86_64")
    hls = [h for r in results if r.counterexample for h in highlights_for(r.counterexample, 12)]
    assert [h.kind for h in hls] == ["section", "chunk"]
    root = parse(svg_for_layout(layout, 12, 27, hls))
    assert len(by_class(root, "hole")) == 2  # [0xa0000, 0x100000) and [0x80000000, 0x100000000)
    assert len(by_class(group(root, "zones"), "zone")) == 3
    assert by_class(group(root, "highlights"), "section") and by_class(
        group(root, "highlights"), "chunk"
    )
    detail = group(root, "detail-0")  # the close-up of the section
    assert "close-up: section-single-node: section 272 holds nodes 0 and 1" in "".join(
        detail.itertext()
    )
    assert len(by_class(detail, "range")) == 2
    texts = "".join(root.itertext())
    assert "0x881000000" in texts  # the boundary is labelled in the close-up
    assert "node 0" in texts and "legend" in texts


def test_section_grid_is_thinned() -> None:
    layout = MachineLayout.from_ranges([(0, 30 << 40, 0), (30 << 40, 31 << 40, 1)])
    root = parse(svg_for_layout(layout, 12, 24))  # 16 MiB sections over 31 TiB: 2 million of them
    lines = by_class(group(root, "sections"), "section-line")
    assert 8 <= len(lines) <= 65
    assert "section grid: every 32768 sections (512 GiB)" in "".join(
        group(root, "legend").itertext()
    )


def test_compressed_axis_is_announced() -> None:
    layout = MachineLayout.from_ranges([(0x1000, 0x2000, 0), (1 << 40, 2 << 40, 1)])
    root = parse(svg_for_layout(layout, 12, 27))
    assert "axis compressed" in "".join(group(root, "header").itertext())
    linear = MachineLayout.from_ranges([(0, 1 << 30, 0), (1 << 30, 2 << 30, 1)])
    assert "linear axis" in "".join(
        group(parse(svg_for_layout(linear, 12, 27)), "header").itertext()
    )


def test_text_is_escaped() -> None:
    layout = MachineLayout.from_ranges([(0, 1 << 30, 0)], source="<a & b>.log")
    root = parse(svg_for_layout(layout, 12, 27, title='x < y & "z"'))
    assert 'Memory map: x < y & "z"' in "".join(root.itertext())


def test_many_nodes() -> None:
    layout = MachineLayout.from_ranges([(n << 32, (n << 32) + (3 << 30), n) for n in range(200)])
    root = parse(svg_for_layout(layout, 12, 27))
    assert len(by_class(root, "span")) == 200
    assert int(root.attrib["height"]) < 1200
    assert "... 188 more nodes" in "".join(group(root, "legend").itertext())


def test_memoryless_nodes_are_drawn() -> None:
    layout = read_layout_file(str(DATA / "memoryless_3node.txt"))
    root = parse(svg_for_layout(layout, 12, 27))
    assert len(by_class(root, "memoryless")) == 1


def test_layout_def_input() -> None:
    lay = ir.LayoutDef(
        "l",
        (ir.LayoutRange(0, 1 << 30, 0), ir.LayoutRange(1 << 30, 2 << 30, 1)),
        ((0, 0, 1 << 24), (1, 0, 0)),
        ((1, 3 << 29),),
        None,
        (),
    )
    data = map_data(lay)
    assert data.zones == (("DMA", 0, 1 << 24),) and data.markers == ((3 << 29, 1, "movable"),)
    root = parse(svg_for_layout(lay, 12, 27))
    assert len(by_class(root, "marker")) == 1


def machine_refutation() -> Result:
    layout = read_layout_file(str(DATA / "interleaved_syslog.txt"))
    return next(r for r in answer(layout, "x86_64") if r.check == "zone-search-nid")


def test_svg_for_a_machine_answer() -> None:
    root = parse(svg_for_result(machine_refutation()))
    pfn = by_class(group(root, "highlights"), "pfn")
    assert len(pfn) == 1
    title = pfn[0].find("s:title", NS)
    assert title is not None and title.text == (
        "zone-search-nid: pfn 0x80000 owned by node 1, found node 0"
    )


def spec_refutation() -> Result:
    """A counterexample of the shape the spec checks report (solver layouts reach 2^64)."""
    cx: SpecCounterexample = {
        "layout": {
            "nodes": [
                {
                    "nid": 1,
                    "ranges": [
                        byte_range(0x800412FFFFFF9000, 0xA000000000002000),
                        byte_range(0xA800000000001000, 0x10000000000000000),
                    ],
                    "first_deferred_pfn": "ULONG_MAX",
                },
                {
                    "nid": 33,
                    "ranges": [byte_range(0x33FFFFFFFA000000, 0x800412FFFFFF9000)],
                    "first_deferred_pfn": "0x8000000000000",
                    "zone_movable_pfn": "0x9000000000000",
                },
            ],
            "zones": [
                {"zone": "DMA", "start_pfn": "0x3ffffffffffa", "end_pfn": "0xa2bfffffffffa"},
                {"zone": "Normal", "start_pfn": "0xa2bfffffffffa", "end_pfn": "0x8000000000000000"},
            ],
        },
        "chunks": [
            {"name": "kho_chunk", "pfn": "0x800412ffffff8", "order": 3},
            {"name": "huge", "pfn": "0x8000000000000", "order": 2147483691},
        ],
        "values": {"p": "0x800412ffffff9", "owner": 3},
        "params": {"PAGE_SHIFT": 12, "SECTION_SIZE_BITS": 27, "MAX_PAGE_ORDER": 10},
        "trace": [],
        "violated": {
            "kind": "claim",
            "text": "same_node_in_small_chunk()",
            "at": "spec/one_node.kho:32:44",
        },
        "model": empty_model(),
    }
    return Result(
        "spec/one_node.kho",
        32,
        "aligned_chunk_in_one_node_unaligned",
        None,
        "x86_64",
        Verdict.REFUTED,
        "refuted",
        0.5,
        counterexample=cx,
    )


def test_svg_for_a_spec_counterexample() -> None:
    r = spec_refutation()
    assert r.counterexample is not None
    hls = highlights_for(r.counterexample, 12)
    assert [(h.kind, h.start) for h in hls] == [
        ("chunk", 0x800412FFFFFF8000),
        ("pfn", 0x800412FFFFFF9000),
    ]
    root = parse(svg_for_result(r))
    assert len(by_class(group(root, "nodes"), "range")) == 3
    assert len(by_class(root, "marker")) == 2  # node 33's first_deferred_pfn and movable start
    assert group(root, "detail-0") is not None and group(root, "detail-1") is not None


def test_svg_for_result_without_layout() -> None:
    r = Result("f", 1, "c", None, None, Verdict.PROVED, None, 0.0)
    with pytest.raises(ValueError, match="no counterexample layout"):
        svg_for_result(r)


# ---------------------------------------------------------------- terminal


def test_terminal_map() -> None:
    layout = read_layout_file(str(DATA / "interleaved_syslog.txt"))
    r = machine_refutation()
    assert r.counterexample is not None
    text = terminal_map(layout, 12, highlights_for(r.counterexample, 12), width=40)
    lines = text.splitlines()
    assert lines[0].startswith("memory map, 0x1000 .. 0x200000000 (8.00 GiB)")
    bars = [line for line in lines if "|" in line]
    assert [b[:10].strip() for b in bars] == ["zones", "node 0", "node 1", "witness"]
    assert {len(b.split("|")[1]) for b in bars} == {40}
    node0 = bars[1].split("|")[1]
    assert set(node0) <= set("#+- ") and "-" in node0  # node 1's memory is a hole in node 0's span
    assert "^" in bars[3] and bars[3].endswith("zone-search-nid: pfn 0x80000")
    assert "\x1b" not in text


def test_terminal_map_caps_nodes_but_keeps_the_witness_nodes() -> None:
    layout = MachineLayout.from_ranges([(n << 32, (n << 32) + (3 << 30), n) for n in range(100)])
    h = Highlight(90 << 32, (90 << 32) + 4096, "page", "pfn", (90,))
    text = terminal_map(layout, 12, h, max_nodes=8)
    assert "node 90" in text and "node 6 " in text and "node 7 " not in text
    assert "... 92 more node(s) not shown" in text


def test_machine_command_writes_svg(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    target = tmp_path / "map.svg"
    code = main(
        [
            "machine",
            str(DATA / "unaligned_16m_journal.txt"),
            "--arch",
            "x86_64",
            "--svg",
            str(target),
        ],
        out,
        err,
    )
    assert code == 1
    root = parse(target.read_text())
    assert by_class(group(root, "highlights"), "chunk")
    code = main(
        [
            "machine",
            str(DATA / "unaligned_16m_journal.txt"),
            "--arch",
            "x86_64",
            "--svg",
            str(tmp_path / "no" / "such" / "dir.svg"),
        ],
        out,
        err,
    )
    assert code == 2 and "cannot write" in err.getvalue()
