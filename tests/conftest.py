"""Shared test helpers: run the CLI in-process with captured streams."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # spec paths in messages are relative to the repository's root
    monkeypatch.chdir(ROOT)


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    # every test starts from an empty verdict cache of its own: a result taken from an
    # earlier test's run would make a test of the solver pass without solving
    d = tmp_path / "khospec-cache"
    monkeypatch.setenv("KHOSPEC_CACHE_DIR", str(d))
    return d


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def run_cli(*args: str) -> Run:
    from khospec.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out, err)
    return Run(code, out.getvalue(), err.getvalue())


# boot logs: the constructed ones in tests/data, and the real ones shipped in
# examples/layouts (each with a header naming its public source)
DATA = Path(__file__).parent / "data" / "layouts"
_REAL = ROOT / "examples" / "layouts"
SHARED: Path | None = _REAL if _REAL.is_dir() else None
needs_shared = pytest.mark.skipif(SHARED is None, reason="examples/layouts is missing")

UPDATE_GOLDEN = os.environ.get("KHOSPEC_UPDATE_GOLDEN") == "1"

pytest_plugins = ["pytester"]
