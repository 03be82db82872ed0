"""Stage 3c: the machine's traces, as a tree of states.

From the initial state, every step whose guard can hold extends the path. Guards over
concrete control state (phases, flags) are decided while building, so the tree holds
exactly the boot orders the spec allows; when no leaf can take another step the tree is
complete and bounded model checking over it is a proof over all traces.
"""

from __future__ import annotations

import dataclasses
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
from khospec.types import IntType, MapType

# more distinct states than this means the guards do not decide the order of the steps:
# the check needs phases or a lower depth (KHO530)
MAX_TREE_NODES = 4000


@dataclass
class TraceNode:
    """A state reached by ``step``. Paths that reach the same control state (the same
    concrete scalars) by the same step at the same depth share one node: its state is
    theirs merged, so the solver sees one state instead of many.

    Why they may share it: what the guards ahead read of the control state is the same
    on every merged path, so their subtrees would have the same shape, and what differs
    (maps, symbolic scalars) is chosen per edge; merging keeps a level as wide as its
    control states, not its paths. The merged state is that of the first edge whose
    condition (in ``parents``) holds (state.merge_states), and ``path`` follows the same
    edge, so the trace a counterexample names is the one whose state the model shows.

    An edge's condition is its path condition, and where that may hold together with a
    later edge's (two interleavings under concrete guards are both True), also a fresh
    Boolean of the node's own (``selectors`` of them): otherwise the first edge would
    always win and the later paths' states would never be examined, so a claim false
    only there would be proved. With the choice free, every incoming path is the first
    that holds in some model (build_tree, _choices)."""

    id: int
    parents: list[tuple[TraceNode, Any]]  # (predecessor, that edge's path condition and choice)
    step: str | None
    state: MachineState
    pc: Any  # path condition: every guard on the way holds
    depth: int
    requires: list[ReqOb]
    open: Any = None  # some step may still be enabled here (at the depth limit)
    selectors: int = 0  # fresh Booleans the merge added to choose among the edges

    def path(self, holds: Callable[[Any], bool] = lambda _: True) -> list[str]:
        """The steps to this node; with several ways in, the first edge whose condition
        ``holds`` (in a model)."""
        out: list[str] = []
        n: TraceNode | None = self
        while n is not None and n.step is not None:
            out.append(n.step)
            # the first edge that holds, the one whose state merge_states shows; the
            # conditions include the merge's choices, so this is the chosen edge
            nxt = None
            for parent, edge in n.parents:
                if holds(edge):
                    nxt = parent
                    break
            n = nxt if nxt is not None else (n.parents[0][0] if n.parents else None)
        return list(reversed(out))


# an edge into the next level: (predecessor, path condition, state, requires, step)
_Edge = tuple[TraceNode, Any, MachineState, list[ReqOb], str]


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
        groups: dict[Any, list[_Edge]] = {}
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
                if z3.is_false(g):
                    continue
                # at the depth limit a step that can run is recorded, not taken: the tree
                # is then incomplete and a proof over it only holds_to_depth
                if node.depth >= depth:
                    opens.append(z3.And(node.pc, g))
                    continue
                # a `before STEP` assumption holds on the state the step starts from,
                # whenever it runs: a conjunct of the edge's condition, behind its literal
                # so that an unsat core can name it
                extra = []
                for lit, a in before.get(st.name, []):
                    afr = Frame({}, node.state, z3.BoolVal(True, low.ctx), z3.BoolVal(False, low.ctx), None, [],
                                [], f"n{len(nodes)}", None, 0)
                    extra.append(z3.Implies(lit, low.ev(a.formula, afr, 1)))
                # the parent's own term when nothing is added: equal conditions stay one term
                pc = z3.And(node.pc, g, *extra) if not z3.is_true(g) or extra else node.pc
                # the step writes its own copy; the maps' layers below it stay shared
                fr.state = node.state.copy()
                low.statements.exec_block(st.body, fr)
                # a require of this step fails only on a path that takes this edge
                for r in fr.requires:
                    r.guard = z3.And(pc, r.guard)
                key = _control_key(st.name, fr.state)
                if key is None:
                    key = ("unique", len(order), st.name)
                if key not in groups:
                    groups[key] = []
                    order.append(key)
                groups[key].append((node, pc, fr.state, fr.requires, st.name))
            node.open = z3.Or(*opens) if opens else None
        level = []
        for key in order:
            edges = groups[key]
            step = edges[0][4]
            if len(edges) == 1:
                _, pc, state, reqs, _ = edges[0]
                conds, n_sel = [pc], 0
            else:
                # one node for the group (see TraceNode), each edge behind its choice
                conds, chosen, n_sel = _choices(low, len(nodes), edges)
                pc = z3.Or(*conds)
                state = merge_states([(c, e[2]) for c, e in zip(conds, edges, strict=True)])
                # A require of edge i is guarded by edge i's path condition: violated only
                # by a real execution of this step on path i's state, whatever the merge
                # chooses for the node, so counting it needs no choice. It gets the
                # choice of edge i all the same, which leaves its violation as
                # satisfiable (the choices are free) and makes ``path`` of a model that
                # violates it follow edge i, the trace the replay must run
                reqs = [dataclasses.replace(r, guard=z3.And(c, r.guard)) if c is not None else r
                        for c, e in zip(chosen, edges, strict=True) for r in e[3]]
            child = TraceNode(len(nodes), [(e[0], c) for e, c in zip(edges, conds, strict=True)], step, state, pc,
                              edges[0][0].depth + 1, reqs, selectors=n_sel)
            nodes.append(child)
            level.append(child)
            if len(nodes) > MAX_TREE_NODES:
                raise err("KHO530", Span.point("<machine>"), f"more than {MAX_TREE_NODES} distinct states",
                           "make step guards decide the order (phases), or lower the check's depth")
    return nodes

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
        if isinstance(v, StructVal) or not (z3.is_bv_value(v) or z3.is_true(v) or z3.is_false(v)):
            vals.append((name, "symbolic"))
        else:
            vals.append((name, v.get_id()))
    return tuple(vals)


def _choices(low: Lowering, node_id: int, edges: list[_Edge]) -> tuple[list[Any], list[Any | None], int]:
    """The conditions of a merged node's edges, in order: merge_states shows the state of
    the first that holds, and ``path`` follows it. Also, per edge, what a require on it
    must add to its guard for that edge to be the first (None: nothing), and the number
    of fresh choices.

    Edge i gets a fresh Boolean t_i (its condition is ``t_i and pc_i``) when a later
    edge j may hold together with it and the first-that-holds rule would hide j: j's
    state differs, or j has requires whose counterexample must name j's trace. Then,
    for every real path through edge j, setting t_j true and the earlier overlapping
    t_i false makes j the first that holds, or an earlier edge with the very same state
    terms (which shows the same values); and conversely an edge whose condition holds
    is a real path. Without overlaps (exclusive path conditions) no choice is added and
    the conditions are the path conditions: fewer variables for the long trace proofs."""
    pcs = [e[1] for e in edges]
    n = len(edges)
    conj = [_conjuncts(pc) for pc in pcs]
    overlap = [[j > i and not _exclusive(conj[i], conj[j]) for j in range(n)] for i in range(n)]
    needs = [any(overlap[i][j] and (edges[j][3] or not same_state(edges[i][2], edges[j][2]))
                 for j in range(i + 1, n)) for i in range(n)]
    sel = [z3.Bool(low.fresh_name(f"n{node_id} via edge {i}"), low.ctx) if needs[i] else None for i in range(n)]
    conds = [pc if t is None else t if z3.is_true(pc) else z3.And(t, pc) for t, pc in zip(sel, pcs, strict=True)]
    chosen: list[Any | None] = []
    for j in range(n):
        if not edges[j][3]:
            chosen.append(None)
            continue
        # the earlier edges that may hold with j: each has a choice (edge j's requires
        # made it need one), set false here
        parts = [z3.Not(t) for i, t in enumerate(sel[:j]) if t is not None and overlap[i][j]]
        tj = sel[j]
        if tj is not None:
            parts.append(tj)
        chosen.append(z3.And(*parts) if parts else None)
    return conds, chosen, sum(t is not None for t in sel)


class _Conj:
    """A path condition's conjuncts, by term id, with what decides exclusion cheaply: the
    terms they negate and the constants they equate terms to."""

    def __init__(self, terms: dict[int, Any]) -> None:
        self.terms = terms
        self.false = any(z3.is_false(t) for t in terms.values())
        self.negated = {t.arg(0).get_id() for t in terms.values() if z3.is_not(t)}
        self.equal: dict[int, Any] = {}
        for t in terms.values():
            if z3.is_eq(t):
                a, b = t.arg(0), t.arg(1)
                if z3.is_bv_value(b) and not z3.is_bv_value(a):
                    self.equal[a.get_id()] = b
                elif z3.is_bv_value(a) and not z3.is_bv_value(b):
                    self.equal[b.get_id()] = a


def _conjuncts(pc: Any) -> _Conj:
    # iteratively: a long trace's path condition nests an And per step
    terms: dict[int, Any] = {}
    stack = [pc]
    seen: set[int] = set()
    while stack:
        t = stack.pop()
        k = t.get_id()
        if k in seen:
            continue
        seen.add(k)
        if z3.is_and(t):
            stack.extend(t.children())
        elif not z3.is_true(t):
            terms[k] = t
    return _Conj(terms)


def _exclusive(a: _Conj, b: _Conj) -> bool:
    """Whether two path conditions cannot both hold, decided cheaply and only one way:
    False means "may overlap", which costs a choice but is never unsound."""
    if a.false or b.false:
        return True
    if a.negated & b.terms.keys() or b.negated & a.terms.keys():
        return True
    for k, v in a.equal.items():
        w = b.equal.get(k)
        if w is not None and not v.eq(w):
            return True
    # the conjuncts they do not share, simplified together: small where the paths split
    # at a guard, and the shared prefix costs nothing
    da = [t for k, t in a.terms.items() if k not in b.terms]
    db = [t for k, t in b.terms.items() if k not in a.terms]
    if not da or not db:
        return False
    return bool(z3.is_false(z3.simplify(z3.And(*da, *db))))


__all__ = ["MAX_TREE_NODES", "TraceNode", "build_tree", "frame_for", "initial_state"]
