"""The fast tier of the differential test: the solver against brute force on narrowed
instances of library checks (khospec/engine/differential.py explains the narrowing).
The full tier, every check of the library on a larger memory, is bench/differential.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from khospec.api import load
from khospec.diagnostics import SourceCache
from khospec.engine.differential import Narrowing, compare

SMALL = Narrowing(space=8, grid=4)

# (file, check, what both sides must find on the narrowed memory). That can differ from
# the library's verdict on the full 64-bit space: eager_owner_node_pages is refuted there
# by chunks the narrowed memory has no room for.
CASES = [
    ("spec/one_node.kho", "aligned_chunk_in_one_node", "none"),
    ("spec/one_node.kho", "aligned_chunk_in_one_node_unaligned", "violation"),
    ("spec/one_node.kho", "zone_span_inside_node_span", "none"),
    ("spec/split.kho", "split_is_partition", "none"),
    ("spec/deferred_init.kho", "eager_owner_node_pages", "none"),
]


@pytest.mark.parametrize(("file", "check", "found"), CASES, ids=[c[1] for c in CASES])
def test_solver_agrees_with_brute_force(file: str, check: str, found: str) -> None:
    program, diags = load(Path(file), file, SourceCache())
    assert program is not None, diags
    c = next(c for c in program.checks if c.name == check)
    for strategy in c.strategies:
        # the budget only keeps a broken enumeration from running for ever: the whole
        # enumeration takes 80 s on two idle cores, and a busy machine must not fail it
        a = compare(program, c, strategy, SMALL, timeout_ms=60000, budget_s=900)
        assert a.instances > 0
        assert (a.solver, a.brute) == (found, found), a
