"""Helpers shared by the unit tests: spec programs for the engine's, counterexamples
built by hand for the reports'."""

from __future__ import annotations

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
