"""A refutation as the mail a kernel developer sends: `khospec report FILE::CHECK`.

Plain text under 72 columns: a subject, the claim in the spec's own words (the comment
above the check, which names the kernel behaviour), the counterexample, the boot order,
the kernel code the spec file cites, and a reproducer: a QEMU command line recreating
the node layout (khospec.qemu), checked again on the layout that guest will have, the
kernel config it needs and a test-module skeleton in the style of the KHO selftests.
"""

from __future__ import annotations

import shlex
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from khospec import ir
from khospec.counterexample import Chunk, Counterexample
from khospec.explain import number, short_lines
from khospec.qemu import Guest, guest_for
from khospec.results import Result

WIDTH = 72  # the column plain-text mail to a kernel list is wrapped at

# the boot model's steps, in the kernel's words (spec/README.md, "The boot")
STEP_FUNCTIONS = {
    "memmap_init": "free_area_init() -> memmap_init()",
    "kho_memory_init": "mm_core_init() -> kho_memory_init()",
    "memblock_free_all": "mm_core_init() -> memblock_free_all()",
    "deferred_grow_zone": "deferred_grow_zone() (an allocation runs short)",
    "deferred_init": "page_alloc_init_late() -> deferred_init_memmap()",
    "memblock_discard": "page_alloc_init_late() -> memblock_discard()",
    "shuffle_free_memory": "page_alloc_init_late() -> shuffle_free_memory()",
    "set_zone_contiguous": "page_alloc_init_late() -> set_zone_contiguous()",
    "page_ext_init": "page_alloc_init_late() -> page_ext_init()",
    "free_initmem": "kernel_init() -> free_initmem()",
    "restore": "kho_restore_folio() / kho_restore_pages()",
}


def _comment_above(lines: list[str], line: int) -> list[str]:
    """The nearest comment block above line ``line`` (1-based), without the '#': the
    one right above the check, or a few lines up, above the function it states or the
    sibling check it shares the comment with."""
    out: list[str] = []
    i = line - 2
    # past blank lines, the function the claim calls, or a sibling check the comment
    # introduces together with this one; 15 lines up at most, farther a comment is
    # about something else
    while i >= 0 and line - i < 16 and not lines[i].lstrip().startswith("#"):
        i -= 1
    while i >= 0 and lines[i].lstrip().startswith("#"):
        out.insert(0, lines[i].lstrip()[1:].strip())
        i -= 1
    return out


def _header(lines: list[str]) -> list[str]:
    """The file's leading comment: where the spec says what kernel code it models."""
    out = []
    for text in lines:
        if not text.startswith("#"):
            break
        out.append(text[1:].strip())
    return out


def _paragraphs(lines: list[str]) -> list[str]:
    """Comment lines joined into paragraphs: a blank line or a "- " item starts one."""
    out: list[str] = []
    for text in lines:
        if not text or text.startswith("- ") or not out:
            out.append(text)
        else:
            out[-1] = f"{out[-1]} {text}".strip()
    return [p for p in out if p]


def _para(text: str, indent: str = "") -> list[str]:
    """``text`` wrapped at WIDTH; a path or a hex number stays whole, even past it."""
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False) or [""]


def _command_lines(cmd: list[str]) -> list[str]:
    """A shell command broken before options, each line under WIDTH with a backslash."""
    out: list[str] = []
    cur = "  " + cmd[0]
    for word in [shlex.quote(w) for w in cmd[1:]]:
        piece = " " + word
        # each option starts a line; WIDTH - 2 leaves room for the closing backslash
        if (word.startswith("-") and len(cur) > 2) or len(cur) + len(piece) > WIDTH - 2:
            out.append(cur + " \\")
            cur = "    " + word
        else:
            cur += piece
    return [*out, cur]


def _skeleton(cx: Counterexample | None) -> list[str]:
    """A test module in the style of lib/test_kho.c: what to preserve, what to check.
    ``cx``: a presented counterexample (a spec check's or a machine's), if any."""
    values: Mapping[str, Any] = cx["values"] if cx is not None else {}
    chunks: list[Chunk] = cx["chunks"] if cx is not None else []
    # a range the claim preserves with kho_preserve_pages (start, nr), else the first
    # chunk, preserved and restored whole
    if "start" in values and "nr" in values:
        what = [f"\tunsigned long start_pfn = {values['start']}, nr = {values['nr']};",
                "\t/* before kexec: */",
                "\terr = kho_preserve_pages(pfn_to_page(start_pfn), nr);",
                "\t/* after kexec: */",
                "\tpage = kho_restore_pages(PFN_PHYS(start_pfn), nr);"]
    elif chunks:
        c = chunks[0]
        what = [f"\tunsigned long pfn = {c['pfn']};\t/* order {c['order']} */",
                "\t/* before kexec: */",
                f"\terr = kho_preserve_pages(pfn_to_page(pfn), 1UL << {c['order']});",
                "\t/* after kexec: */",
                f"\tpage = kho_restore_pages(PFN_PHYS(pfn), 1UL << {c['order']});"]
    else:
        what = ["\t/* preserve and restore the range of the counterexample */"]
    return [
        "#include <linux/kexec_handover.h>",
        "#include <linux/module.h>",
        "",
        "static int __init kho_finding_init(void)",
        "{",
        "\tstruct page *page;",
        "\tint err;",
        "",
        *what,
        "\t/* check what the claim says: every page restored,",
        "\t * page_to_nid() the owner node, none given to the buddy */",
        "\treturn 0;",
        "}",
        "module_init(kho_finding_init);",
        'MODULE_LICENSE("GPL");',
    ]


def touched_end(cx: Counterexample) -> int:
    """The end (bytes) of the memory the finding involves: its chunks and range.
    ``cx``: a presented counterexample (a spec check's or a machine's)."""
    ps = number(cx["params"].get("PAGE_SHIFT")) or 12
    ends = [0]
    for c in cx["chunks"]:
        pfn, order = number(c["pfn"]), c["order"]
        # a chunk whose end lies past 64-bit addresses is in no memory a guest can have
        if pfn is not None and order < 64 - ps:
            ends.append((pfn + (1 << order)) << ps)
    start, nr = number(cx["values"].get("start")), number(cx["values"].get("nr"))
    if start is not None and nr is not None:
        ends.append((start + nr) << ps)
    return max(ends)


def mail(program: ir.Program, check: ir.CheckDef, r: Result, guest: Guest | str,
         again: Result | None, own_layout: bool = True, also_tried: int = 0) -> str:
    """The finding for refutation ``r``; ``guest``: the QEMU machine, or why none can be
    made; ``again``: the check decided on that guest's layout; ``own_layout``: whether
    the guest recreates the finding's layout (else it is a two-node guest);
    ``also_tried``: how many two-node guests were tried besides, none refuting it."""
    cx = r.counterexample
    src = Path(r.file).read_text(encoding="utf-8").splitlines() if Path(r.file).is_file() else []
    said = _comment_above(src, r.line)
    # the subject: the comment's first sentence, or what precedes its first colon
    first = " ".join(said).split(":")[0].split(". ")[0].rstrip(".") if said else check.name
    subject = f"Subject: kho: {first}"
    if len(subject) > WIDTH:
        subject = subject[:WIDTH - 3].rstrip() + "..."
    under = f" under {r.strategy}" if r.strategy else ""
    out = [subject, ""]
    out += _para(f"khospec refutes `{check.name}` ({r.file}:{r.line}){under} on {r.profile}.")
    out += ["", "The claim:", ""]
    for para in _paragraphs(said):
        out += _para(para, "  ")
    # the check's own line: the claim as the spec writes it
    claim_line = src[r.line - 1].strip() if 0 < r.line <= len(src) else check.name
    out += ["", *_para(claim_line, "  "), "", "The smallest layout and chunk khospec found:", ""]
    # long words broken here: a layout line of ranges must stay under WIDTH too
    for line in short_lines(r):
        out += textwrap.wrap(line, WIDTH, initial_indent="  ", subsequent_indent="            ",
                             break_long_words=True) or [""]
    if cx is not None and cx["trace"]:
        out += ["", "The boot order:", ""]
        # a step of the boot model in the kernel's words; a strategy's own as named
        for i, step in enumerate(cx["trace"], 1):
            out += _para(f"{i}. {STEP_FUNCTIONS.get(step, step)}", "  ")
    header = _header(src)
    if header:
        out += ["", "The kernel code involved (as the spec file cites it):", ""]
        for para in _paragraphs(header):
            # a list item sits deeper than the prose around it
            out += _para(para, "    " if para.startswith("- ") else "  ")
    out += ["", "Reproducer:", ""]
    if isinstance(guest, str):
        out += _para(f"No QEMU machine recreates this layout: {guest}.", "  ")
        if also_tried:
            out += ["", *_para(f"Nor is the claim refuted on the {also_tried} small two-node "
                               "guests khospec tries (node boundary at 1.5, 5 and 63 GiB).", "  ")]
    else:
        out += _command_lines(guest.command())
        out += ["", "  The guest's memory map (node: range):"]
        for start, end, nid in guest.ranges:
            out.append(f"    {nid}: [{start:#x}, {end:#x})")
        verdict = again.verdict.value if again is not None else "not checked"
        if verdict == "refuted" and again is not None:
            how = ("recreates the finding's node layout" if own_layout else
                   "is a small two-node guest (QEMU cannot make the finding's own layout)")
            out += ["", *_para(f"This guest {how}; khospec refutes the claim on the memory "
                               "map it will have too, with:", "  "), ""]
            # the guest's layout was printed above as its memory map
            for line in short_lines(again):
                if not line.startswith("layout:"):
                    out += textwrap.wrap(line, WIDTH, initial_indent="    ",
                                         subsequent_indent="              ", break_long_words=True)
        else:
            out += ["", *_para(f"On this guest's memory map the claim comes back {verdict}: "
                               "no reproducer could be made.", "  ")]
    # KHO itself, and NUMA: every finding is about memory of more than one node
    config = ["CONFIG_KEXEC_HANDOVER=y", "CONFIG_NUMA=y"]
    if check.is_trace:
        # the boot model is the kernel with deferred init unless the check assumes it off
        # (spec/upstream/handover.kho, no_deferred_struct_page_init)
        off = "no_deferred_struct_page_init" in check.assuming
        config.append("# CONFIG_DEFERRED_STRUCT_PAGE_INIT is not set" if off else "CONFIG_DEFERRED_STRUCT_PAGE_INIT=y")
    out += ["", "Kernel config:", "", *["  " + c for c in config], "",
            "Test module skeleton (the style of lib/test_kho.c):", ""]
    # the guest's own counterexample where there is one: its pfns are the guest's
    shown = again.counterexample if again is not None and again.counterexample else cx
    out += ["  " + line.replace("\t", "    ") for line in _skeleton(shown)]
    return "\n".join(line.rstrip() for line in out) + "\n"


__all__ = ["guest_for", "mail", "touched_end"]
