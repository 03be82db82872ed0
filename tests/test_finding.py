"""`khospec report`: the finding as a mail, and the QEMU guests it proposes."""

from __future__ import annotations

import io

from khospec.cli import main
from khospec.qemu import GIB, MIB, guest_for


def _node(nid: int, *ranges: tuple[int, int]) -> dict[str, object]:
    return {"nid": nid, "ranges": [{"start": hex(a), "end": hex(b)} for a, b in ranges]}


def test_q35_guest_keeps_the_node_boundary_above_4_gib() -> None:
    # boundary at 63 GiB: node 0 holds 2 GiB below the gap and 59 GiB above it
    g = guest_for("x86_64", [_node(0, (4 * GIB, 63 * GIB)), _node(1, (63 * GIB, 64 * GIB))], 64 * GIB)
    assert not isinstance(g, str)
    assert g.sizes == (61 * GIB, 1 * GIB)
    assert (4 * GIB, 63 * GIB, 0) in g.ranges and (63 * GIB, 64 * GIB, 1) in g.ranges
    line = " ".join(g.command())
    assert "-machine q35" in line and "size=62464M" in line and "-m 63488M" in line


def test_virt_guest_starts_at_1_gib() -> None:
    g = guest_for("arm64-4k", [_node(0, (GIB, 3 * GIB)), _node(1, (3 * GIB, 4 * GIB))], 4 * GIB)
    assert not isinstance(g, str)
    assert g.machine == "virt" and g.ranges == ((GIB, 3 * GIB, 0), (3 * GIB, 4 * GIB, 1))


def test_q35_split_is_the_one_the_guests_ram_size_picks() -> None:
    # below 2.75 GiB of RAM all of it lies below 4 GiB
    g = guest_for("x86_64", [_node(0, (0, GIB)), _node(1, (GIB, 8 * GIB))], 2 * GIB)
    assert not isinstance(g, str)
    assert g.sizes == (GIB, GIB) and g.ranges[-1][1] == 2 * GIB
    # RAM ending at 2.75 GiB, or at 4 GiB: that much RAM is split at 2 GiB (pc_q35_init()),
    # so no guest has memory up to there; the split of the smaller RAM is not the guest's
    for end in (0xB0000000, 4 * GIB):
        why = guest_for("x86_64", [_node(0, (0, GIB)), _node(1, (GIB, end))], end)
        assert isinstance(why, str) and "split at 2 GiB" in why, why


def test_layouts_qemu_cannot_make_are_refused_with_the_reason() -> None:
    interleaved = [_node(0, (GIB, 2 * GIB), (3 * GIB, 4 * GIB)), _node(1, (2 * GIB, 3 * GIB))]
    assert "interleaved" in str(guest_for("x86_64", interleaved))
    odd = [_node(0, (0, GIB + 4096)), _node(1, (GIB + 4096, 2 * GIB))]
    assert "MiB" in str(guest_for("arm64-4k", odd))
    assert "gap" in str(guest_for("x86_64", [_node(0, (0, 3 * GIB)), _node(1, (3 * GIB, 5 * GIB))], 5 * GIB))
    assert "ppc64" in str(guest_for("ppc64-4k", [_node(0, (0, GIB))]))
    assert MIB == 1 << 20


def test_report_is_a_mail_with_a_checked_reproducer() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", "spec/upstream/handover.kho::preserved_kept_from_buddy_72", "--profile", "x86_64"],
                out, err)
    text = out.getvalue()
    assert code == 0, err.getvalue()
    lines = text.splitlines()
    assert lines[0].startswith("Subject: kho: ") and all(len(x) <= 72 for x in lines)
    assert "qemu-system-x86_64" in text and "-numa node,nodeid=0" in text
    assert "khospec refutes the claim on the memory map it will have too" in " ".join(text.split())
    assert "CONFIG_KEXEC_HANDOVER=y" in text and "kho_preserve_pages(" in text
    assert "CONFIG_DEFERRED_STRUCT_PAGE_INIT=y" in lines[lines.index("Kernel config:") + 4]
    assert "kexec_handover.c @ c6073743d0c7" in " ".join(text.split())


def test_report_of_a_kernel_without_deferred_init_says_so_in_its_config() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", "spec/upstream/handover.kho::preserved_kept_from_buddy_72_no_deferred_init",
                 "--profile", "x86_64"], out, err)
    assert code == 0, err.getvalue()
    config = out.getvalue().split("Kernel config:")[1].split("Test module")[0].split()
    assert "CONFIG_DEFERRED_STRUCT_PAGE_INIT=y" not in config
    assert "CONFIG_DEFERRED_STRUCT_PAGE_INIT" in config  # "# ... is not set"


def test_nothing_to_report_for_a_proof() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", "spec/upstream/handover.kho::order_survives_72"], out, err)
    assert code == 1 and "not refuted (proved)" in err.getvalue() and out.getvalue() == ""
