"""Helpers shared by the unit tests: spec programs for the engine's, counterexamples
built by hand for the reports'."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from khospec import ir
from khospec.counterexample import ModelData, Range
from khospec.diagnostics import SourceCache
from khospec.explain import size_text
from khospec.runner import load


def load_spec(folder: Path, text: str) -> ir.Program:
    """``text`` checked as a spec file of its own in ``folder`` (a new name each time:
    nothing read for an earlier program can be reused)."""
    path = folder / f"spec{sum(1 for _ in folder.glob('spec*.kho'))}.kho"
    path.write_text(text, encoding="utf-8")
    program, diags = load(path, str(path), SourceCache())
    assert program is not None, [d.message for d in diags if d.is_error]
    return program


def byte_range(start: int, end: int, page_shift: int = 12) -> Range:
    """The bytes ``[start, end)`` as a presented counterexample shows a node's range."""
    return {"start": hex(start), "end": hex(end), "start_pfn": hex(start >> page_shift),
            "end_pfn": hex(end >> page_shift), "size": size_text(end - start)}


def empty_model(trace: list[str] | None = None) -> ModelData:
    """The engine's model under a counterexample built by hand, which no test replays:
    it gives nothing a value."""
    return {"params": {}, "param_functions": {}, "witnesses": [], "initial": [], "trace": trace or [],
            "layout": {"ranges": [], "nodes": [], "zone_movable_pfn": {}, "arch_zones": [],
                       "mirrored_kernelcore": False},
            "violated": {"kind": "claim"}}


def processes_naming(folder: Path) -> list[int]:
    """The processes whose command line names ``folder`` (Linux's /proc): a command and
    the workers it forked, which carry its command line."""
    out = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and str(folder).encode() in (proc / "cmdline").read_bytes():
                out.append(int(proc.name))
    return out


def processes_left(folder: Path, within_s: float = 10.0) -> list[int]:
    """Those of ``processes_naming(folder)`` still there after up to ``within_s``."""
    deadline = time.monotonic() + within_s
    while processes_naming(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    return processes_naming(folder)
