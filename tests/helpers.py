"""Helpers shared by the engine's unit tests."""

from __future__ import annotations

from pathlib import Path

from khospec import ir
from khospec.diagnostics import SourceCache
from khospec.runner import load


def load_spec(folder: Path, text: str) -> ir.Program:
    """``text`` checked as a spec file of its own in ``folder`` (a new name each time:
    nothing read for an earlier program can be reused)."""
    path = folder / f"spec{sum(1 for _ in folder.glob('spec*.kho'))}.kho"
    path.write_text(text, encoding="utf-8")
    program, diags = load(path, str(path), SourceCache())
    assert program is not None, [d.message for d in diags if d.is_error]
    return program
