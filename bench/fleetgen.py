"""Generated fleets: copies of the real boot logs in examples/layouts/ with the noise of
real log collection, plus damaged files. Used by bench/fleet_bench.py and the fleet tests.

Each of the four real logs gives two layouts: the machine as logged, and a variant: for
the boot logs the same machine with node 0 only (one socket populated, which no
question refutes), for the /proc/zoneinfo dump its last zone halved (fewer DIMMs).
A copy is the log with another prefix style (syslog, journal, ``dmesg -T``, ``dmesg -H``,
``--time-format iso``, printk level or none), other timestamps and unrelated lines
between the kernel's blocks; none of that changes the layout, so a fleet of any size
has exactly eight distinct layouts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LAYOUTS = Path(__file__).resolve().parent.parent / "examples" / "layouts"

# each shipped log and the profile of the machine it came from
BASES = (
    ("04_x86_64-intel-s2600wtt-broadwell-2node.txt", "x86_64"),
    ("05_arm64-raspberrypi5-numa-fake8.txt", "arm64-4k"),
    ("09_ppc64-powervm-lpar-16node-30TiB.txt", "ppc64-64k"),
    ("15_x86_64-kvm-movablecore-zoneinfo-2node.txt", "x86_64"),
)

_TS = re.compile(r"^\[\s*\d+\.\d+\] ?")
_EARLY_ITEM = re.compile(r"(node\s+\d+:\s*\[mem )(0x[0-9a-f]+)-(0x[0-9a-f]+)\]")
_ZI_SPANNED = re.compile(r"^(\s*spanned\s+)(\d+)\s*$")

UNRELATED = (
    "e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex",
    "audit: type=1400 audit(1700000000.123:42): apparmor=\"STATUS\"",
    "usb 1-1: new high-speed USB device number 2 using xhci_hcd",
    "systemd[1]: Started Journal Service.",
    "EXT4-fs (sda1): mounted filesystem with ordered data mode",
    "random: crng init done",
)


@dataclass(frozen=True)
class Machine:
    name: str
    arch: str
    text: str
    layout: int  # which of the eight layouts (or -1: damaged)


def _body(name: str) -> list[str]:
    """The log's lines without the provenance header (`#` lines)."""
    lines = (LAYOUTS / name).read_text(encoding="utf-8").splitlines()
    return [ln for ln in lines if not ln.startswith("#")]


def _halved(lines: list[str]) -> list[str]:
    """The last memory range cut to its first half (2 MiB aligned)."""
    out = list(lines)
    idx = [i for i, ln in enumerate(out) if _EARLY_ITEM.search(ln)]
    if idx:
        i = idx[-1]
        m = _EARLY_ITEM.search(out[i])
        assert m is not None
        start, end = int(m.group(2), 16), int(m.group(3), 16) + 1
        new_end = max(start + (2 << 20), (start + (end - start) // 2) & ~((2 << 20) - 1))
        out[i] = out[i][: m.start(3)] + f"{new_end - 1:#018x}" + out[i][m.end(3):]
        # the node's `Initmem setup` line keeps the old span: the importer warns, as it
        # would on a machine whose firmware table and memblock disagree
        return out
    # a /proc/zoneinfo dump: halve the last zone with memory
    for i in range(len(out) - 1, -1, -1):
        z = _ZI_SPANNED.match(out[i])
        if z and int(z.group(2)) > 1:
            out[i] = f"{z.group(1)}{int(z.group(2)) // 2}"
            for j in range(i - 1, max(-1, i - 8), -1):
                if out[j].strip().startswith("present"):
                    out[j] = re.sub(r"\d+\s*$", str(int(z.group(2)) // 2), out[j])
            return out
    return out


_OTHER_NODE = re.compile(
    r"(node\s+[1-9]\d*:\s*\[mem |Initmem setup node [1-9]|Node [1-9]\d* Memory:|^\s*Node [1-9]\d*: 0x)"
)


def _node0_only(lines: list[str]) -> list[str]:
    """The machine with only node 0's memory: every other node's lines left out."""
    return [ln for ln in lines if not _OTHER_NODE.search(_TS.sub("", ln))]


def _is_zoneinfo(lines: list[str]) -> bool:
    return any(ln.startswith("Node 0, zone") for ln in lines)


def base_logs() -> list[tuple[str, list[str]]]:
    """The eight (arch, lines) layouts."""
    out = []
    for name, arch in BASES:
        body = _body(name)
        out.append((arch, body))
        out.append((arch, _halved(body) if _is_zoneinfo(body) else _node0_only(body)))
    return out


def _noisy(lines: list[str], rng: random.Random, host: str) -> str:
    if _is_zoneinfo(lines):
        # a /proc/zoneinfo dump is a file, not a log: collected as is
        return "\n".join(lines) + "\n"
    style = rng.choice(("kernel", "syslog", "journal", "dmesg-T", "level", "bare", "iso", "delta"))
    t = rng.uniform(0, 0.01)
    out = []
    in_block = False
    for ln in lines:
        msg = _TS.sub("", ln)
        starts_block = msg.endswith(("Zone ranges:", "Early memory node ranges", "Movable zone start for each node"))
        in_block = starts_block or (in_block and msg.startswith("  "))
        if not in_block and rng.random() < 0.3:
            out.append(_prefix(style, rng.choice(UNRELATED), t, host))
        t += rng.uniform(0, 0.0005)
        out.append(_prefix(style, msg, t, host))
    for _ in range(rng.randint(0, 20)):
        t += rng.uniform(0, 2)
        out.append(_prefix(style, rng.choice(UNRELATED), t, host))
    return "\n".join(out) + "\n"


def _prefix(style: str, msg: str, t: float, host: str) -> str:
    if style == "kernel":
        return f"[{t:12.6f}] {msg}"
    if style == "syslog":
        return f"Nov 30 02:{int(t) // 60 % 60:02d}:{int(t) % 60:02d} {host} kernel: [{t:12.6f}] {msg}"
    if style == "journal":
        return f"Nov 30 02:40:{int(t) % 60:02d} {host} kernel: {msg}"
    if style == "dmesg-T":
        return f"[Mon Nov 30 02:40:{int(t) % 60:02d} 2026] {msg}"
    if style == "level":
        return f"<6>[{t:12.6f}] {msg}"
    if style == "iso":  # dmesg --time-format iso
        return f"2026-11-30T02:40:{int(t) % 60:02d},{int(t * 1e6) % 1000000:06d}+00:00 {msg}"
    if style == "delta":  # dmesg -H, a delta on every line but the first
        return f"[  +{t % 1:.6f}] {msg}"
    return msg


def damaged(rng: random.Random, lines: list[str]) -> str:
    """A file a collector might produce for a machine, with no layout to read."""
    kind = rng.choice(("empty", "binary", "late", "cut"))
    if kind == "empty":
        return ""
    if kind == "binary":
        return "".join(chr(rng.randint(0, 255)) for _ in range(200))
    if kind == "late":  # collected after the early boot messages scrolled out
        return "\n".join(rng.choice(UNRELATED) for _ in range(50)) + "\n"
    # cut before the first line a layout is read from
    first = next((i for i, ln in enumerate(lines) if _LAYOUT_LINE.search(ln)), 1)
    return "\n".join(lines[:first]) + "\n"


_LAYOUT_LINE = re.compile(r"Zone ranges|Node 0, zone|Node \d+ Memory:|Early memory node ranges|Initmem setup")


def fleet(n: int, n_damaged: int, seed: int = 1) -> Iterator[Machine]:
    """``n`` noisy machines spread over the eight layouts, then ``n_damaged`` damaged ones,
    interleaved at random positions (deterministic for a seed)."""
    rng = random.Random(seed)
    bases = base_logs()
    damaged_at = set(rng.sample(range(n + n_damaged), n_damaged))
    width = len(str(n + n_damaged))
    for i in range(n + n_damaged):
        which = rng.randrange(len(bases))
        arch, lines = bases[which]
        host = f"host{i:0{width}d}"
        if i in damaged_at:
            yield Machine(f"{host}.log", arch, damaged(rng, lines), -1)
        else:
            yield Machine(f"{host}.log", arch, _noisy(lines, rng, host), which)


def write_fleet(folder: Path, n: int, n_damaged: int, seed: int = 1) -> list[Machine]:
    """The fleet as files under ``folder`` (100 per subfolder) and a manifest.csv; the
    machines returned name their file and leave the text there."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    rows = ["file,arch"]
    for i, m in enumerate(fleet(n, n_damaged, seed)):
        sub = folder / "logs" / f"rack{i // 100:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / m.name
        path.write_text(m.text, encoding="utf-8", errors="surrogateescape")
        rows.append(f"{path},{m.arch}")
        out.append(Machine(str(path), m.arch, "", m.layout))  # the text is on disk
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out
