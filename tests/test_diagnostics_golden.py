"""Every malformed spec under tests/golden/diagnostics gives exactly the diagnostics in
its .expected file: code, location, message, source line, caret and hint.

A case without its .expected file fails: an expectation is written on purpose, never as
a side effect of a run that then passes. To write or refresh the expectations, run with
``KHOSPEC_UPDATE_GOLDEN=1`` (``KHOSPEC_UPDATE_GOLDEN=1 pytest tests/test_diagnostics_golden.py``)
and read the diff before committing it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from khospec.api import load
from khospec.diagnostics import SourceCache, render
from tests.conftest import ROOT, UPDATE_GOLDEN

GOLDEN = ROOT / "tests" / "golden" / "diagnostics"
CASES = sorted(GOLDEN.glob("*.kho"))


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
    if not expected.exists():
        pytest.fail(f"{expected.relative_to(ROOT)} is missing: write it with KHOSPEC_UPDATE_GOLDEN=1 and read it")
    assert got == expected.read_text(encoding="utf-8")


def test_every_expectation_has_its_case() -> None:
    # an .expected file whose spec was renamed or deleted would pass unnoticed forever
    orphans = sorted(p.name for p in GOLDEN.glob("*.expected") if not p.with_suffix(".kho").exists())
    assert not orphans, f"expectations without a case: {orphans}"
