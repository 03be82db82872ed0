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


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def run_cli(*args: str) -> Run:
    from khospec.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out, err)
    return Run(code, out.getvalue(), err.getvalue())


# boot logs: the constructed ones in tests/data, and the real ones beside the project
DATA = Path(__file__).parent / "data" / "layouts"


def _shared_dir() -> Path | None:
    for cand in (ROOT.parent / "shared" / "layouts", Path("/work/shared/layouts")):
        if cand.is_dir():
            return cand
    return None


SHARED = _shared_dir()
needs_shared = pytest.mark.skipif(SHARED is None, reason="the shared boot logs (shared/layouts) are not here")

UPDATE_GOLDEN = os.environ.get("KHOSPEC_UPDATE_GOLDEN") == "1"

pytest_plugins = ["pytester"]
