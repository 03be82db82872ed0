"""Stage 3c: the machine's traces, as a tree of states.

From the initial state, every step whose guard can hold extends the path. Guards over
concrete control state (phases, flags) are decided while building, so the tree holds
exactly the boot orders the spec allows; when no leaf can take another step the tree is
complete and bounded model checking over it is a proof over all traces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from khospec import ir
from khospec.diagnostics import Span
from khospec.engine import bv
from khospec.engine.bv import StructVal, Sym
from khospec.engine.lower import Lowering
from khospec.engine.state import (
    ConstMap,
    Frame,
    GarbageMap,
    MachineState,
    MapVal,
    ReqOb,
    Skolem,
    err,
    merge_states,
    same_state,
)
from khospec.engine.terms import conj, disj, implies, is_false, is_true
from khospec.types import IntType, MapType

# more distinct states than this means the guards do not decide the order of the steps:
# the check needs phases or a lower depth (KHO530)
MAX_TREE_NODES = 4000


@dataclass
class TraceNode:
    """A state reached by ``step``. Paths that reach the same control state (the same
    concrete scalars) by the same step at the same depth share one node where that is
    sound (see _sharing): the same state, or path conditions that exclude each other.

    Its state is then theirs merged by path condition (state.merge_states: the first
    edge whose condition holds), and ``path`` follows the same edge, so the trace a
    counterexample names is the one whose state the model shows. Where several edges
    hold, their states are one, so which of them is named does not matter."""

    id: int
    parents: list[tuple[TraceNode, Any]]  # (predecessor, path condition of that edge)
    step: str | None
    state: MachineState
    pc: Any  # path condition: every guard on the way holds
    depth: int
    requires: list[ReqOb]
    open: Any = None  # some step may still be enabled here (at the depth limit)

    def path(self, holds: Callable[[Any], bool] = lambda _: True) -> list[str]:
        """The steps to this node; with several ways in, the one whose path condition
        ``holds`` (in a model)."""
        out: list[str] = []
        n: TraceNode | None = self
        while n is not None and n.step is not None:
            out.append(n.step)
            # the first edge that holds, the one whose state merge_states shows
            nxt = None
            for parent, edge in n.parents:
                if holds(edge):
                    nxt = parent
                    break
            n = nxt if nxt is not None else (n.parents[0][0] if n.parents else None)
        return list(reversed(out))



def initial_state(low: Lowering) -> MachineState:
    """The machine before the first step: each state variable's initial value, or an
    unknown one (memory nobody initialised) where the spec gives none."""
    scalars: dict[str, Sym] = {}
    maps: dict[str, MapVal] = {}
    fr = Frame({}, None, z3.BoolVal(True, low.ctx), z3.BoolVal(False, low.ctx), None, [], [], "init", None, 0)
    for sv in low.program.state:
        if isinstance(sv.ty, MapType):
            if sv.init is not None:
                maps[sv.name] = ConstMap(low.ev(sv.init, fr))
            else:
                # any contents: a function per field, whose reads are recorded
                # (garbage_apps) so that the counterexample gives the cells read
                assert isinstance(sv.ty.key, IntType)
                maps[sv.name] = GarbageMap(sv.name, sv.ty.value, sv.ty.key, low.ctx, low.garbage_apps)
        else:
            if sv.init is not None:
                scalars[sv.name] = low.ev(sv.init, fr)
            else:
                # any value, recorded at site 0 for the counterexample (the spec's sites
                # are numbered from 1); a symbolic scalar is merged, not a control state
                v = bv.fresh(sv.ty, f"initial {sv.name}", low.ctx)
                scalars[sv.name] = v
                low.skolems.append(Skolem(0, "init", sv.name, sv.ty, v, "initial"))
    return MachineState(scalars, maps)


def build_tree(low: Lowering, depth: int, before: dict[str, list[tuple[Any, ir.AssumeDef]]]) -> list[TraceNode]:
    """Every trace of at most ``depth`` steps, as a DAG of states (see TraceNode)."""
    steps = low.program.step_defs(low.strategy)
    root = TraceNode(0, [], None, initial_state(low), z3.BoolVal(True, low.ctx), 0, [])
    nodes = [root]
    level = [root]
    # one depth at a time: the children of a level are grouped by control state before
    # the next level is built from them
    while level:
        groups: dict[Any, list[tuple[TraceNode, Any, MachineState, list[ReqOb], str]]] = {}
        order: list[Any] = []
        for node in level:
            opens = []
            for st in steps:
                fr = Frame({}, node.state, z3.BoolVal(True, low.ctx), z3.BoolVal(False, low.ctx), None, [], [],
                           f"n{len(nodes)}", None, 0)
                g = low.ev(st.guard, fr, 0) if st.guard is not None else z3.BoolVal(True, low.ctx)
                # a guard over the concrete control state simplifies to a constant:
                # false prunes the step, so the tree holds only the orders the spec allows
                g = z3.simplify(g)
                if is_false(g):
                    continue
                # at the depth limit a step that can run is recorded, not taken: the tree
                # is then incomplete and a proof over it only holds_to_depth
                if node.depth >= depth:
                    opens.append(conj(node.pc, g))
                    continue
                # a `before STEP` assumption holds on the state the step starts from,
                # whenever it runs: a conjunct of the edge's condition, behind its literal
                # so that an unsat core can name it
                extra = []
                for lit, a in before.get(st.name, []):
                    afr = Frame({}, node.state, z3.BoolVal(True, low.ctx), z3.BoolVal(False, low.ctx), None, [],
                                [], f"n{len(nodes)}", None, 0)
                    extra.append(implies(lit, low.ev(a.formula, afr, 1)))
                # the parent's own term when nothing is added: equal conditions stay one term
                pc = conj(node.pc, g, *extra) if not is_true(g) or extra else node.pc
                # the step writes its own copy; the maps' layers below it stay shared
                fr.state = node.state.copy()
                low.statements.exec_block(st.body, fr)
                # a require of this step fails only on a path that takes this edge
                for r in fr.requires:
                    r.guard = conj(pc, r.guard)
                key = _control_key(st.name, fr.state)
                if key is None:
                    key = ("unique", len(order), st.name)
                if key not in groups:
                    groups[key] = []
                    order.append(key)
                groups[key].append((node, pc, fr.state, fr.requires, st.name))
            node.open = disj(*opens) if opens else None
        level = []
        for key in order:
            for edges in _sharing(groups[key]):
                step = edges[0][4]
                if len(edges) == 1:
                    _, pc, state, reqs, _ = edges[0]
                else:
                    # one node for edges that may share it (see _sharing); each edge's
                    # requires keep their own edge's condition
                    pc = disj(*[e[1] for e in edges])
                    state = merge_states([(e[1], e[2]) for e in edges])
                    reqs = [r for e in edges for r in e[3]]
                child = TraceNode(len(nodes), [(e[0], e[1]) for e in edges], step, state, pc,
                                  edges[0][0].depth + 1, reqs)
                nodes.append(child)
                level.append(child)
                if len(nodes) > MAX_TREE_NODES:
                    raise err("KHO530", Span.point("<machine>"), f"more than {MAX_TREE_NODES} distinct states",
                               "make step guards decide the order (phases), or lower the check's depth")
    return nodes

_Edge = tuple[TraceNode, Any, MachineState, list[ReqOb], str]


def _sharing(edges: list[_Edge]) -> list[list[_Edge]]:
    """The edges into one control state, grouped into the nodes they may share: an edge
    joins a node when, against each edge already there, its state is the same or the two
    path conditions exclude each other. Then wherever several of a node's edges hold,
    their states are one, and the merged state (the first edge that holds) is each
    holding path's own: the node stands for every path into it. Two interleavings of
    steps under concrete guards both hold in every model, so where their states differ
    they keep a node each; a merge that showed only the first would hide the other
    order's state from every claim below it."""
    shared: list[list[_Edge]] = []
    for e in edges:
        for node in shared:
            if all(same_state(e[2], f[2]) or _exclusive(e[1], f[1]) for f in node):
                node.append(e)
                break
        else:
            shared.append([e])
    return shared


def _exclusive(p: Any, q: Any) -> bool:
    # only what simplification alone decides (a guard and its negation): no solver runs
    # while the tree is built, and "not shown exclusive" merely keeps the nodes apart
    return bool(is_false(z3.simplify(conj(p, q))))


def frame_for(low: Lowering, node: TraceNode) -> Frame:
    """The frame a claim about ``node`` is evaluated in: its state, under its path condition."""
    return Frame({}, node.state, node.pc, z3.BoolVal(False, low.ctx), None, [], [], f"n{node.id}", None, 0)


def _control_key(step: str, state: MachineState) -> Any:
    """The step and the scalars' values where they are concrete (symbolic ones are
    merged like maps)."""
    # a value's term id stands for the value: z3 hash-conses terms, so equal constants
    # are one term
    vals: list[Any] = [step]
    for name in sorted(state.scalars):
        v = state.scalars[name]
        if isinstance(v, StructVal) or not (z3.is_bv_value(v) or is_true(v) or is_false(v)):
            vals.append((name, "symbolic"))
        else:
            vals.append((name, v.get_id()))
    return tuple(vals)


__all__ = ["MAX_TREE_NODES", "TraceNode", "build_tree", "frame_for", "initial_state"]
