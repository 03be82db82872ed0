"""Every malformed spec under tests/golden/diagnostics gives exactly the diagnostics in
its .expected file: code, location, message, source line, caret and hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from khospec.api import load
from khospec.diagnostics import SourceCache, render
from tests.conftest import ROOT, UPDATE_GOLDEN

CASES = sorted((ROOT / "tests" / "golden" / "diagnostics").glob("*.kho"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden_diagnostics(path: Path) -> None:
    sources = SourceCache()
    display = str(path.relative_to(ROOT))
    program, diags = load(path, display, sources)
    assert program is None, "a golden diagnostics case must not type-check"
    got = "\n".join(render(d, sources) for d in diags) + "\n"
    expected = path.with_suffix(".expected")
    if UPDATE_GOLDEN:
        expected.write_text(got, encoding="utf-8")
    assert expected.exists(), f"{expected.name} is missing: write it (KHOSPEC_UPDATE_GOLDEN=1) and read it"
    assert got == expected.read_text(encoding="utf-8")
