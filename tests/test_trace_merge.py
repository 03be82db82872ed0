"""Merged trace nodes (khospec/engine/trace.py): paths that reach one control state by
the same step share a node, and that node must stand for every one of them. Two
interleavings of steps with concrete guards both have the path condition True, so a
merge that picked the state of the first path whose condition holds would never show
the other path's state, and a claim false only there would be proved: such paths keep a
node each, and only paths with one state, or with conditions that exclude each other,
share one."""

from __future__ import annotations

from pathlib import Path

import z3

from khospec.api import Options, check_file
from khospec.engine.lower import Lowering
from khospec.engine.trace import TraceNode, build_tree
from khospec.results import Result, Verdict
from tests.helpers import load_spec

# a and b run in either order, each writing m[0]; c runs after both. The nodes after
# (a, b, c) and (b, a, c) have the same concrete scalars: one node
ORDERS = """
state { da: bool = false, db: bool = false, dc: bool = false, m: [ulong] int = 0 }
step a when !da { da = true
  m[0] = 1 }
step b when !db { db = true
  m[0] = 2 }
step c when da and db and !dc { dc = true }
"""

# the same machine with the order recorded in a concrete scalar (the last writer): the
# paths to c are not merged
RECORDED = """
state { da: bool = false, db: bool = false, dc: bool = false, last: int = 0,
        m: [ulong] int = 0 }
step a when !da { da = true
  last = 1
  m[0] = 1 }
step b when !db { db = true
  last = 2
  m[0] = 2 }
step c when da and db and !dc { dc = true }
"""

CLAIMS = """
check last_write_two: after c: m[0] == 2
  for x86_64
  expect refuted

check either_write: after c: m[0] == 1 or m[0] == 2
  for x86_64
"""

# c requires what only the order (a, b) gives: the require is violated on the edge from
# (b, a), and the counterexample must name that edge's trace
REQUIRE = """
state { da: bool = false, db: bool = false, dc: bool = false, m: [ulong] int = 0 }
step a when !da { da = true
  m[0] = 1 }
step b when !db { db = true
  m[0] = 2 }
step c when da and db and !dc {
  require last_two: m[0] == 2
  dc = true }
check last_two_holds: requirement last_two
  for x86_64
  expect refuted
"""

# three writers in any order, then d: the node after d joins merged nodes, whose own
# choice must follow the chosen edge
THREE = """
state { da: bool = false, db: bool = false, dc: bool = false, dd: bool = false,
        m: [ulong] int = 0 }
step a when !da { da = true
  m[0] = 1 }
step b when !db { db = true
  m[0] = 2 }
step c when !dc { dc = true
  m[0] = 3 }
step d when da and db and dc and !dd { dd = true }
check last_write_three: after d: m[0] == 3
  for x86_64
  expect refuted
check last_write_one: after d: m[0] == 1
  for x86_64
  expect refuted
check some_write: after d: m[0] == 1 or m[0] == 2 or m[0] == 3
  for x86_64
"""

# the guards of a and b exclude each other: the paths to c are never both taken, and the
# merge needs no choice of its own
EXCLUSIVE = """
param X: uint
state { done: bool = false, dc: bool = false, m: [ulong] int = 0 }
step a when !done and X > 3 { done = true
  m[0] = 1 }
step b when !done and !(X > 3) { done = true
  m[0] = 2 }
step c when done and !dc { dc = true }
check follows_x: after c: (X > 3) == (m[0] == 1)
  for x86_64
check always_one: after c: m[0] == 1
  for x86_64
  expect refuted
"""


def _results(tmp_path: Path, text: str) -> dict[str, Result]:
    spec = tmp_path / "t.kho"
    spec.write_text(text, encoding="utf-8")
    return {r.check: r for r in check_file(spec, Options(cache=False))}


def _trace(r: Result) -> list[str]:
    assert r.counterexample is not None, r
    trace: list[str] = r.counterexample["trace"]
    return trace


def _refuted_and_replayed(r: Result) -> None:
    assert r.verdict is Verdict.REFUTED, r
    assert r.replay is not None and r.replay.startswith("confirmed"), r.replay


def test_the_order_a_merged_node_hides_is_a_counterexample(tmp_path: Path) -> None:
    results = _results(tmp_path, ORDERS + CLAIMS)
    r = results["last_write_two"]
    _refuted_and_replayed(r)
    assert _trace(r) == ["b", "a", "c"]
    assert results["either_write"].verdict is Verdict.PROVED


def test_the_order_recorded_in_a_scalar_gives_the_same_verdicts(tmp_path: Path) -> None:
    results = _results(tmp_path, RECORDED + CLAIMS)
    r = results["last_write_two"]
    _refuted_and_replayed(r)
    assert _trace(r) == ["b", "a", "c"]
    assert results["either_write"].verdict is Verdict.PROVED


# a and b only set their flags: after both, in either order, the state is one
FLAGS = """
state { da: bool = false, db: bool = false, dc: bool = false, m: [ulong] int = 0 }
step a when !da { da = true }
step b when !db { db = true }
step c when da and db and !dc { dc = true }
check untouched: after c: m[0] == 0
  for x86_64
"""


def _after(tmp_path: Path, text: str, step: str) -> list[TraceNode]:
    low = Lowering(load_spec(tmp_path, text), None, z3.Context())
    return [n for n in build_tree(low, 5, {}) if n.step == step]


def test_orders_with_different_states_keep_a_node_each(tmp_path: Path) -> None:
    nodes = _after(tmp_path, ORDERS, "c")
    assert sorted(n.path() for n in nodes) == [["a", "b", "c"], ["b", "a", "c"]]
    assert all(len(n.parents) == 1 for n in nodes)
    assert len(_after(tmp_path, RECORDED, "c")) == 2


def test_orders_with_one_state_share_a_node(tmp_path: Path) -> None:
    [after_b] = [n for n in _after(tmp_path, FLAGS, "b") if n.depth == 2]
    [after_a] = [n for n in _after(tmp_path, FLAGS, "a") if n.depth == 2]
    # the node after (a, b) and the one after (b, a) differ by the step that made them;
    # each has one edge, and the single node after c has both
    assert len(after_a.parents) == len(after_b.parents) == 1
    [after_c] = _after(tmp_path, FLAGS, "c")
    assert len(after_c.parents) == 2
    assert _results(tmp_path, FLAGS)["untouched"].verdict is Verdict.PROVED


def test_exclusive_paths_share_a_node_and_keep_their_own_state(tmp_path: Path) -> None:
    [after_c] = _after(tmp_path, EXCLUSIVE, "c")
    assert len(after_c.parents) == 2
    results = _results(tmp_path, EXCLUSIVE)
    assert results["follows_x"].verdict is Verdict.PROVED
    _refuted_and_replayed(results["always_one"])
    assert _trace(results["always_one"]) == ["b", "c"]


def test_a_require_on_a_later_edge_names_that_edges_trace(tmp_path: Path) -> None:
    r = _results(tmp_path, REQUIRE)["last_two_holds"]
    _refuted_and_replayed(r)
    assert _trace(r) == ["b", "a", "c"]


def test_merged_nodes_joined_again_stand_for_every_order(tmp_path: Path) -> None:
    results = _results(tmp_path, THREE)
    for name, last in (("last_write_three", {"a", "b"}), ("last_write_one", {"b", "c"})):
        r = results[name]
        _refuted_and_replayed(r)
        trace = _trace(r)
        assert sorted(trace[:3]) == ["a", "b", "c"] and trace[3] == "d", trace
        assert trace[2] in last, trace
    assert results["some_write"].verdict is Verdict.PROVED
