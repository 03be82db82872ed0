"""A QEMU machine whose NUMA layout recreates a counterexample's node boundaries.

The rule (QEMU's own, from its sources; khospec does not run QEMU):

- x86_64, `-machine q35` (hw/i386/pc_q35.c, pc_q35_init()): guest RAM starts at 0; of
  it, the first `lowmem` bytes lie below 4 GiB and the rest from 4 GiB up, where
  `lowmem` is 2 GiB when the RAM is 2.75 GiB or more, else 2.75 GiB. The SRAT (hw/i386/
  acpi-build.c, build_srat_memory()) gives node 0 the first `-numa node` size of that
  RAM in address order, node 1 the next, and so on, across the gap below 4 GiB. The
  firmware's e820 map keeps page 0 and [640 KiB, 1 MiB) out of usable memory.
- arm64, `-machine virt` (hw/arm/virt.c): guest RAM starts at 1 GiB in one piece; the
  nodes follow each other in the same way.

So a layout QEMU can make has each node in one piece (apart from the x86 gap), nodes in
id order, and node boundaries on whole MiB. The guest layout keeps every node boundary
of the counterexample at its address; node 0 grows down to the start of RAM and the
last node ends at the first whole GiB past the memory the finding touches. The check is
then run again on that layout (khospec.finding): the reproducer is one only if it is
refuted there too.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from khospec import ir

MIB = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True)
class Guest:
    """A QEMU guest: its command line and the memory map its kernel will see."""

    machine: str
    sizes: tuple[int, ...]  # bytes per node, node 0 first
    ranges: tuple[tuple[int, int, int], ...]  # (start, end, nid) in bytes

    def command(self) -> list[str]:
        """The command line: a RAM backend and a CPU per node (`-numa node` takes its
        memory from memdev=), and KHO switched on by the kernel's `kho=on`."""
        qemu = "qemu-system-x86_64" if self.machine == "q35" else "qemu-system-aarch64"
        # x86_64 under KVM; arm64 emulated with every feature QEMU has, so any host runs it
        cpu = ["-accel", "kvm", "-cpu", "host"] if self.machine == "q35" else ["-cpu", "max"]
        total = sum(self.sizes)
        line = [qemu, "-machine", self.machine, *cpu, "-smp", str(len(self.sizes)),
                "-m", f"{total // MIB}M"]
        for nid, size in enumerate(self.sizes):
            line += ["-object", f"memory-backend-ram,id=m{nid},size={size // MIB}M",
                     "-numa", f"node,nodeid={nid},cpus={nid},memdev=m{nid}"]
        # the boot images the kernel build leaves (arch/*/boot/) and the serial console
        # each machine has: a 16550 (ttyS0) on q35, a PL011 (ttyAMA0) on virt
        return [*line, "-kernel", "bzImage" if self.machine == "q35" else "Image",
                "-append", "console=ttyS0 kho=on" if self.machine == "q35" else "console=ttyAMA0 kho=on",
                "-nographic"]

    def layout(self, name: str) -> ir.LayoutDef:
        """The guest's memory map as a layout to check again: its RAM ranges only, no
        zone limits, no ZONE_MOVABLE."""
        return ir.LayoutDef(name=name, ranges=tuple(ir.LayoutRange(s, e, n) for s, e, n in self.ranges),
                            zones=(), movable=(), mirrored_kernelcore=False, bindings=())


def _lowmem(total: int) -> int:
    """pc_q35_init()'s split: 2 GiB of the RAM below 4 GiB when there is 2.75 GiB
    (0xB0000000) or more, else up to 2.75 GiB."""
    return 2 * GIB if total >= 0xB0000000 else 0xB0000000


def guest_for(arch: str, nodes: Sequence[Mapping[str, Any]], needed_end: int = 0) -> Guest | str:
    """The guest recreating ``nodes`` (a presented counterexample's layout; only their
    ids and range bounds are read, so plain dicts do too), or why none can: each node
    must be one piece, in id order, with boundaries on whole MiB. The last node ends at
    the first GiB past its start and ``needed_end`` (the end of the memory the finding
    touches), not at the counterexample's end: a smaller guest."""
    if arch.startswith("x86_64"):
        machine, base = "q35", 0
    elif arch.startswith("arm64"):
        machine, base = "virt", GIB
    else:
        return f"no QEMU machine is set up here for {arch} (x86_64 and arm64 are)"
    # the nodes in id order, as QEMU lays them out
    spans = []
    for node in sorted(nodes, key=lambda n: int(n["nid"])):
        rs = sorted((int(r["start"], 16), int(r["end"], 16)) for r in node["ranges"])
        if len(rs) != 1:
            return (f"node {node['nid']} has {len(rs)} memory ranges; QEMU gives each node one piece, "
                    "so interleaved or holed nodes cannot be made")
        spans.append(rs[0])
    if [n["nid"] for n in sorted(nodes, key=lambda n: int(n["nid"]))] != list(range(len(nodes))):
        return "the node ids are not 0, 1, ...: QEMU numbers nodes from 0"
    for (_, end_a), (start_b, _) in itertools.pairwise(spans):
        if end_a > start_b:
            return "the nodes are not in address order: QEMU lays node n after node n - 1"
    # where each node ends: the next one's start, and for the last its smaller end
    last_start = spans[-1][0]
    small_end = (max(last_start + 1, needed_end) + GIB - 1) // GIB * GIB
    bounds = [start for start, _ in spans[1:]] + [min(spans[-1][1], small_end)]
    if any(b % MIB for b in bounds):
        return "a node boundary is not on a whole MiB, which QEMU's memory backends need"
    # guest-physical address -> offset into guest RAM
    def ram_offset(addr: int, lowmem: int) -> int:
        if machine == "virt":
            return addr - base
        return addr if addr <= lowmem else lowmem + max(0, addr - 4 * GIB)

    # the RAM size picks the split and the split maps addresses to RAM: a split is the
    # guest's only if the RAM size it gives picks it again (an end at exactly 2.75 GiB
    # has neither: that much RAM puts 0.75 GiB of it above 4 GiB)
    lowmem = 0
    if machine == "q35":
        fits = [low for low in (2 * GIB, 0xB0000000) if _lowmem(ram_offset(bounds[-1], low)) == low]
        if not fits:
            return (f"no q35 guest's memory ends at {bounds[-1]:#x}: RAM large enough to reach it "
                    "is split at 2 GiB, which moves its end")
        lowmem = fits[0]
    offsets = [ram_offset(b, lowmem) for b in bounds]
    if machine == "q35" and any(lowmem < b < 4 * GIB for b in bounds):
        return f"a node boundary lies in q35's gap below 4 GiB [{lowmem:#x}, 4 GiB)"
    if offsets[0] <= 0:
        return "node 0 would be empty: its boundary lies at or below where guest RAM starts"
    # node 0 starts at the start of RAM: the counterexample's memory below its first
    # boundary is node 0's whatever its own start
    sizes = tuple(b - a for a, b in itertools.pairwise([0, *offsets]))
    if any(s <= 0 for s in sizes):
        return "a node would be empty"
    ranges = []
    for nid, (lo, hi) in enumerate(itertools.pairwise([0, *offsets])):
        ranges += _pieces(machine, base, lowmem, lo, hi, nid)
    return Guest(machine, sizes, tuple(ranges))


def two_node_guests(arch: str) -> list[Guest]:
    """Small two-node guests with the node boundary inside an aligned block (at 1.5, 5
    and 63 GiB), for a finding whose own layout QEMU cannot make: the check is run on
    each, and the first that refutes it is the reproducer."""
    out = []
    # the smallest aligned block across each: 1 GiB at 1.5 GiB, 2 GiB at 5 and 63 GiB
    for boundary in (GIB + GIB // 2, 5 * GIB, 63 * GIB):
        nodes = [{"nid": 0, "ranges": [{"start": hex(0), "end": hex(boundary)}]},
                 {"nid": 1, "ranges": [{"start": hex(boundary), "end": hex(boundary + GIB)}]}]
        g = guest_for(arch, nodes, boundary + GIB)
        if isinstance(g, Guest):
            out.append(g)
    return out


def _pieces(machine: str, base: int, lowmem: int, lo: int, hi: int, nid: int) -> list[tuple[int, int, int]]:
    """Guest-physical ranges of RAM offsets [lo, hi)."""
    if machine == "virt":
        return [(base + lo, base + hi, nid)]
    out = []
    if lo < lowmem:
        # the firmware keeps page 0 and [640 KiB, 1 MiB) (SeaBIOS's e820 map)
        low = [(max(lo, 0x1000), min(hi, 0x9F000)), (max(lo, 0x100000), min(hi, lowmem))]
        out += [(a, b, nid) for a, b in low if a < b]
    if hi > lowmem:
        # the RAM past lowmem continues at 4 GiB
        out.append((4 * GIB + max(lo, lowmem) - lowmem, 4 * GIB + hi - lowmem, nid))
    return out
