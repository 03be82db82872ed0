"""Reading machine layouts from boot logs and /proc/zoneinfo, and writing them as specs."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from khospec import ir
from khospec.cli import main
from khospec.diagnostics import SourceCache
from khospec.machine.importer import (
    ImportError_,
    MachineLayout,
    MemRange,
    parse_layout,
    read_layout_file,
    strip_prefix,
)
from khospec.resolve import check_program
from tests.conftest import DATA, ROOT, SHARED, needs_shared

EXAMPLES = ROOT / "examples" / "layouts"

SHARED_LOGS = sorted(SHARED.glob("*.txt")) if SHARED is not None else []
GOOD_LOGS = sorted(
    p
    for p in DATA.glob("*.txt")
    if p.name not in ("no_layout.txt", "overlap.txt", "zoneinfo_interleaved.txt")
)


def _shared(prefix: str) -> str:
    assert SHARED is not None
    return str(next(SHARED.glob(prefix + "*")))


def ranges(layout: MachineLayout) -> list[tuple[int, int, int]]:
    return [(r.start, r.end, r.nid) for r in layout.ranges]


def codes(layout: MachineLayout) -> list[str]:
    return [w.split("warning[")[1][:6] for w in layout.warnings]


# ---------------------------------------------------------------- round trip


def roundtrip(layout: MachineLayout, tmp_path: Path, name: str = "machine") -> ir.LayoutDef:
    spec = tmp_path / "machine.kho"
    spec.write_text(layout.to_spec(name), encoding="utf-8")
    program, diags = check_program(spec, SourceCache())
    assert program is not None, [d.message for d in diags]
    assert not [d for d in diags if d.is_error]
    return program.layouts[name]


@needs_shared
@pytest.mark.parametrize("log", SHARED_LOGS, ids=lambda p: p.name[:3])
def test_shared_logs_round_trip(log: Path, tmp_path: Path) -> None:
    layout = read_layout_file(str(log))
    assert roundtrip(layout, tmp_path) == layout.to_layout_def("machine")


@pytest.mark.parametrize("log", GOOD_LOGS, ids=lambda p: p.stem)
def test_constructed_logs_round_trip(log: Path, tmp_path: Path) -> None:
    layout = read_layout_file(str(log))
    assert roundtrip(layout, tmp_path, "m") == layout.to_layout_def("m")


def test_mirror_ranges_split_like_the_checker(tmp_path: Path) -> None:
    layout = read_layout_file(str(DATA / "movable_mirror_dmesg_x.txt"))
    lay = roundtrip(layout, tmp_path)
    assert lay == layout.to_layout_def("machine")
    assert [(r.start, r.end, r.nid, r.mirror) for r in lay.ranges] == [
        (0x1000, 0xA0000, 0, False),
        (0x100000, 0x40000000, 0, True),
        (0x40000000, 0x80000000, 0, False),
        (0x100000000, 0x140000000, 0, True),
        (0x140000000, 0x180000000, 1, True),
        (0x180000000, 0x240000000, 1, False),
    ]
    assert lay.mirrored_kernelcore is True
    assert lay.movable == ((0, 0x40000000), (1, 0x180000000))


def test_layout_def_zones_and_empty_zones() -> None:
    if SHARED is None:
        pytest.skip("the shared boot logs are not here")
    lay = read_layout_file(_shared("05_")).to_layout_def("rpi")
    assert lay.name == "rpi"
    assert lay.zones == ((0, 0, 0x100000000), (1, 0, 0), (2, 0x100000000, 0x200000000))
    assert lay.movable == () and lay.mirrored_kernelcore is None and lay.bindings == ()


def test_spec_text_reads_well() -> None:
    layout = read_layout_file(str(DATA / "memoryless_3node.txt"))
    text = layout.to_spec("box")
    assert text.startswith(
        f"# Memory layout imported by khospec from {DATA / 'memoryless_3node.txt'}\n"
    )
    assert "layout box {\n" in text
    assert "  # node 2: memoryless\n" in text
    assert "  node 1: [0x280000000, 0x480000000)  # 8 GiB, line 16\n" in text
    assert "  zone Device: empty\n" in text
    assert text.endswith("}\n")


def test_layout_names() -> None:
    layout = read_layout_file(str(DATA / "memoryless_3node.txt"))
    assert layout.default_name == "memoryless_3node"
    assert MachineLayout((), source="/logs/04_x86-64 box.txt").default_name == "m04_x86_64_box"
    assert MachineLayout((), source="<stdin>").default_name == "machine"
    for bad in ("layout", "1abc", "a-b", ""):
        with pytest.raises(ValueError, match="cannot name a layout"):
            layout.to_spec(bad)


# ---------------------------------------------------------------- shared logs


@needs_shared
def test_x86_two_sockets() -> None:
    layout = read_layout_file(_shared("04_"))
    assert ranges(layout) == [
        (0x1000, 0x9B000, 0),  # printed [mem 0x1000-0x9afff]: end inclusive
        (0x100000, 0x79FA0000, 0),
        (0x7B7CD000, 0x7B800000, 0),
        (0x100000000, 0x880000000, 0),
        (0x880000000, 0x1080000000, 1),
    ]
    assert [r.line for r in layout.ranges] == [23, 24, 25, 26, 27]
    assert layout.zones == (
        ("DMA", (0x1000, 0x1000000)),
        ("DMA32", (0x1000000, 0x100000000)),
        ("Normal", (0x100000000, 0x1080000000)),
        ("Device", None),
    )
    assert layout.warnings == () and (layout.boot, layout.boots) == (1, 1)
    assert layout.node_span(0) == (0x1000, 0x880000000)


@needs_shared
def test_rpi5_fake_numa() -> None:
    layout = read_layout_file(_shared("05_"))
    assert layout.nodes == tuple(range(8)) and len(layout.ranges) == 9
    assert layout.zone("DMA32") is None and layout.zone("Normal") == (0x100000000, 0x200000000)
    assert ("Device", None) not in layout.zones  # this kernel does not print Device
    assert layout.warnings == ()


@needs_shared
def test_ppc64_numa_prefixes() -> None:
    layout = read_layout_file(_shared("09_"))
    assert len(layout.nodes) == 16
    assert layout.ranges[1] == MemRange(0x1FB50000000, 0x3FA90000000, 1, 83)
    assert layout.zones == (("DMA", (0, 0x1E4600000000)), ("DMA32", None), ("Normal", None))
    assert layout.warnings == ()  # the `numa: Initmem setup` spans agree with the ranges


@needs_shared
def test_zoneinfo_with_movable_zones() -> None:
    layout = read_layout_file(_shared("15_"))
    assert ranges(layout) == [(0x1000, 0x140000000, 0), (0x140000000, 0x1C0000000, 1)]
    assert layout.movable == ((0, 0x100000000), (1, 0x140000000))
    assert layout.zone("Normal") == (0x100000000, 0x1C0000000)
    assert layout.page_shift == 12
    assert codes(layout) == ["KHO604", "KHO604", "KHO604"]
    assert "assuming 4 KiB pages" in layout.warnings[0]
    assert "holes inside a span cannot be placed" in layout.warnings[1]
    assert "262273 spanned pages are not present" in layout.warnings[1]
    quiet = read_layout_file(_shared("15_"), page_shift=12)
    assert not any("assuming 4 KiB" in w for w in quiet.warnings)


# ---------------------------------------------------------------- constructed logs


def test_memoryless_node() -> None:
    layout = read_layout_file(str(DATA / "memoryless_3node.txt"))
    assert layout.nodes == (0, 1) and layout.memoryless == (2,) and layout.all_nodes == (0, 1, 2)
    assert layout.node_span(2) is None
    assert layout.warnings == ()


def test_interleaved_nodes_with_syslog_prefixes() -> None:
    layout = read_layout_file(str(DATA / "interleaved_syslog.txt"))
    assert [r.nid for r in layout.ranges] == [0, 1, 0, 1]
    assert layout.node_span(0) == (0x1000, 0x180000000)
    assert layout.node_span(1) == (0x80000000, 0x200000000)
    assert layout.warnings == ()


def test_caller_ids_and_journal_stamps() -> None:
    layout = read_layout_file(str(DATA / "unaligned_16m_journal.txt"))
    assert ranges(layout)[-2:] == [(0x100000000, 0x881000000, 0), (0x881000000, 0x1080000000, 1)]
    assert layout.warnings == ()


def test_dmesg_x_movable_and_mirror() -> None:
    layout = read_layout_file(str(DATA / "movable_mirror_dmesg_x.txt"))
    assert layout.movable == ((0, 0x40000000), (1, 0x180000000))
    # adjacent EFI descriptors with the MR attribute merge
    assert layout.mirror == ((0x100000, 0x40000000), (0x100000000, 0x180000000))
    assert layout.mirrored_kernelcore is True
    assert layout.warnings == ()


def test_dmesg_t_and_64k_pages() -> None:
    layout = read_layout_file(str(DATA / "arm64_64k_dmesg_T.txt"))
    assert len(layout.ranges) == 6 and layout.nodes == (0, 1)
    assert layout.zone("DMA") == (0x88300000, 0x100000000)


def test_holes() -> None:
    layout = read_layout_file(str(DATA / "holes_same_section.txt"))
    assert ranges(layout)[-2:] == [(0x100000, 0x7C000000, 0), (0x7E000000, 0xC0000000, 1)]
    assert layout.zone("Normal") is None


def test_garbled_lines_are_skipped_and_named() -> None:
    log = DATA / "garbled.txt"
    layout = read_layout_file(str(log))
    assert ranges(layout) == [
        (0x1000, 0x9B000, 0),
        (0x100000, 0x79FA0000, 0),
        (0x100000000, 0x880000000, 0),
        (0x900000000, 0x1080000000, 1),
    ]
    assert layout.zone("DMA32") is None and "DMA32" not in dict(layout.zones)
    lines = [int(w.split(":")[1]) for w in layout.warnings]
    assert lines == [4, 11, 13, 14, 18]
    assert all(w.startswith(f"{log}:") for w in layout.warnings)
    assert codes(layout) == ["KHO602", "KHO602", "KHO602", "KHO602", "KHO605"]
    assert "inside the `Zone ranges` block" in layout.warnings[0]
    assert "inside the `Early memory node ranges` block" in layout.warnings[2]
    assert "differs from the span of its ranges" in layout.warnings[4]


def test_two_boots_use_the_last() -> None:
    layout = read_layout_file(str(DATA / "two_boots.txt"))
    assert (layout.boot, layout.boots) == (2, 2)
    assert layout.ranges[-1].start == 0x281000000
    assert len(layout.warnings) == 1
    assert "the log holds 2 boots (starting at lines 3, 18); using boot 2" in layout.warnings[0]


def test_a_cut_last_boot_is_skipped() -> None:
    layout = read_layout_file(str(DATA / "two_boots_cut.txt"))
    assert (layout.boot, layout.boots) == (1, 2)
    assert layout.ranges[-1].start == 0x280000000
    assert "using boot 1" in layout.warnings[0]
    assert (
        "boot 2 skipped: its `Early memory node ranges` block runs to the end of the log"
        in layout.warnings[1]
    )


def test_two_layouts_without_banners() -> None:
    layout = read_layout_file(str(DATA / "two_layouts_no_banner.txt"))
    assert (layout.boot, layout.boots) == (2, 2)
    assert layout.ranges[-1].start == 0x281000000


def test_powerpc_node_memory_lines() -> None:
    layout = read_layout_file(str(DATA / "ppc_node_memory_only.txt"))
    assert ranges(layout) == [
        (0, 0x20000000, 0),
        (0x20000000, 0x60000000, 1),
        (0x60000000, 0x80000000, 0),
    ]
    assert layout.memoryless == (2,)
    assert codes(layout) == ["KHO604"] and "`Node N Memory` lines" in layout.warnings[0]


def test_initmem_spans_as_last_resort() -> None:
    layout = read_layout_file(str(DATA / "initmem_only.txt"))
    assert ranges(layout) == [(0x1000, 0x880000000, 0), (0x880000000, 0x1080000000, 1)]
    assert "holes inside a span count as memory" in layout.warnings[0]


def test_zoneinfo_page_size() -> None:
    layout = read_layout_file(str(DATA / "zoneinfo_64k.txt"), page_shift=16)
    assert ranges(layout) == [(0x88300000, 0x800000000, 0), (0x800000000, 0x1000000000, 1)]
    assert layout.zone("DMA") == (0x88300000, 0x100000000)
    assert not any("assuming" in w for w in layout.warnings)


def test_headerless_block() -> None:
    layout = read_layout_file(str(DATA / "headerless.txt"))
    assert len(layout.ranges) == 2
    assert "without its header line" in layout.warnings[0] and ":8:" in layout.warnings[0]


@pytest.mark.parametrize(
    ("log", "message"),
    [
        ("no_layout.txt", "no memory layout found: expected the `Early memory node ranges` block"),
        ("overlap.txt", "memory ranges overlap: [0x1000, 0x880000000) of node 0 (line 3)"),
        (
            "zoneinfo_interleaved.txt",
            "nodes interleave, and zoneinfo cannot tell which node owns those pages",
        ),
        ("missing.txt", "cannot read the log"),
    ],
)
def test_unusable_logs(log: str, message: str) -> None:
    with pytest.raises(ImportError_) as info:
        read_layout_file(str(DATA / log))
    assert message in str(info.value)


# ---------------------------------------------------------------- prefixes and details


@pytest.mark.parametrize(
    "line",
    [
        "  node   0: [mem 0x1000-0x9afff]",
        "[    0.012688]   node   0: [mem 0x1000-0x9afff]",
        "[    0.012688][    T1]   node   0: [mem 0x1000-0x9afff]",
        "<6>[    0.012688]   node   0: [mem 0x1000-0x9afff]",
        "Nov 26 10:00:00 host kernel:   node   0: [mem 0x1000-0x9afff]",
        "Nov 26 host kernel:   node   0: [mem 0x1000-0x9afff]",
        "linux kernel:   node   0: [mem 0x1000-0x9afff]",
        "2024-11-26T10:00:00.123456+00:00 host kernel:   node   0: [mem 0x1000-0x9afff]",
        "[    0.012688] host kernel:   node   0: [mem 0x1000-0x9afff]",
        "kern  :info  : [    0.012688]   node   0: [mem 0x1000-0x9afff]",
        "[Tue Nov 26 10:00:00 2024]   node   0: [mem 0x1000-0x9afff]",
        "[    0.012688]   node   0: [mem 0x1000-0x9afff]\r\n",
    ],
)
def test_prefixes(line: str) -> None:
    assert strip_prefix(line) == "  node   0: [mem 0x1000-0x9afff]"


def test_details_from_text() -> None:
    log = """Zone ranges:
  DMA      [mem 0x0000000000001000-0x0000000000ffffff]
  HighMem  empty
  DMA      [mem 0x0000000000000000-0x0000000000ffffff]
Movable zone start for each node
  Node 7: 0x0000000100000000
Early memory node ranges
  node   0: [mem 0x0000000000001000-0x000000000009efff]
  node   0: [mem 0x0000000000001000-0x000000000009efff]
  node   1: [mem 0x0000000000100000-0x00000000bfffffff]
Initmem setup node 0 [mem 0x0000000000001000-0x000000000009efff]
Initmem setup node 1 as memoryless
"""
    layout = parse_layout(log, "t.log")
    assert ranges(layout) == [(0x1000, 0x9F000, 0), (0x100000, 0xC0000000, 1)]
    assert layout.zones == (("DMA", (0x1000, 0x1000000)),)
    text = "\n".join(layout.warnings)
    assert "t.log:3: warning[KHO605]: zone `HighMem` ignored" in text
    assert "t.log:4: warning[KHO605]: zone `DMA` listed twice" in text
    assert "t.log:9: warning[KHO605]: range [0x1000, 0x9f000) of node 0 listed twice" in text
    assert "t.log:12: warning[KHO605]: node 1 is called memoryless" in text
    assert "t.log:6: warning[KHO605]: ZONE_MOVABLE start 0x100000000 given for node 7" in text


def test_interleaved_messages_inside_a_block_are_not_lost() -> None:
    log = """Early memory node ranges
  node   0: [mem 0x0000000000001000-0x000000000009efff]
Kernel command line: ro kernelcore=mirror
  node   1: [mem 0x0000000000100000-0x00000000bfffffff]
Initmem setup node 0 [mem 0x0000000000001000-0x000000000009efff]
"""
    layout = parse_layout(log, "t.log")
    assert len(layout.ranges) == 2 and layout.mirrored_kernelcore is True
    assert layout.warnings == ()


def test_layout_validation() -> None:
    with pytest.raises(ValueError, match="not sorted and disjoint"):
        MachineLayout.from_ranges([(0, 10, 0), (5, 20, 1)])
    with pytest.raises(ValueError, match="empty or outside 64 bits"):
        MachineLayout.from_ranges([(10, 10, 0)])
    with pytest.raises(ValueError, match="unknown zone"):
        MachineLayout((), zones=(("HighMem", None),))


# ---------------------------------------------------------------- the command


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_import_command(tmp_path: Path) -> None:
    code, out, err = run("import", str(DATA / "garbled.txt"), "--name", "damaged")
    assert code == 0
    assert "layout damaged {" in out and "# line 11: warning[KHO602]" in out
    assert err.count("warning[KHO602]") == 4
    spec = tmp_path / "d.kho"
    spec.write_text(out)
    program, _ = check_program(spec, SourceCache())
    assert program is not None and "damaged" in program.layouts


def test_import_command_errors() -> None:
    code, out, err = run("import", str(DATA / "garbled.txt"), "--name", "not-a-name")
    assert code == 2 and not out and "khospec: error: `not-a-name` cannot name a layout" in err
    code, out, err = run("import", str(DATA / "no_layout.txt"))
    assert code == 2 and not out and "error[KHO601]" in err and "Traceback" not in err


_STAMP = re.compile(r"^\[\s*\d+\.\d+\] ")


@pytest.mark.parametrize(
    "style",
    [
        "[  +0.000004] ",  # dmesg -H (deltas)
        "[Nov30 02:40] ",  # dmesg -H (the minute's first line)
        "[    1.234567 <    0.000123>] ",  # dmesg -d
        "2026-11-30T02:40:21,123456+00:00 ",  # dmesg --time-format iso
        "2026-11-30T02:40:21.123456+00:00 host-17 kernel: ",  # journalctl -o short-iso-precise
        "<6>Nov 30 02:40:21 host-17 kernel: [    0.012688] ",  # syslog over a raw console
        "[    0.012688] [    T0] ",  # a caller id after a blank
    ],
)
def test_other_timestamps_give_the_same_layout(style: str) -> None:
    log = EXAMPLES / "04_x86_64-intel-s2600wtt-broadwell-2node.txt"
    text = "\n".join(_STAMP.sub(style, line) for line in log.read_text().splitlines())
    assert ranges(parse_layout(text, "t.log")) == ranges(read_layout_file(str(log)))
    assert parse_layout(text, "t.log").warnings == ()
