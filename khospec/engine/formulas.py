"""Stage 4a: the formulas of one check under one strategy.

Built once per lowering (``engine/lower.py`` turns the program into z3 terms) and shared
by every query about the check: the named assumptions and axioms, each behind a literal
so that an unsat core can name it; the hard formulas (the program's semantics, the
layout's constraints) and the lazy ones (instances added only when a model violates
them, ``engine/query.py``); the claim's premise; and the claim's negation as a list of
violations, one per place the claim can fail (the claim itself, or a require at one node
of the trace tree), which ``engine/solve.py`` decides one case at a time and turns into a
counterexample. Nothing here asks a solver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3

from khospec import ir
from khospec.counterexample import ModelViolated
from khospec.engine import bv
from khospec.engine.lower import Lowering
from khospec.engine.state import Frame, Skolem
from khospec.engine.statements import mentions_require
from khospec.engine.terms import conj, disj, implies, is_true, negate
from khospec.engine.trace import TraceNode, build_tree, frame_for
from khospec.types import BoolType, IntType

DEFAULT_DEPTH = 16


@dataclass
class Violation:
    """One way the claim can fail: ``formula`` is satisfiable exactly when it does, at
    trace depth ``depth`` (0 for a claim over plain formulas), at trace node ``node``;
    ``what`` describes it for the counterexample (``violated`` in the JSON)."""

    formula: Any
    label: str
    depth: int
    node: TraceNode | None
    what: ModelViolated
    # at a trace node: the violated condition alone, without the path that reaches it
    condition: Any = None


def frame(low: Lowering, label: str = "claim") -> Frame:
    """The frame a claim or an assumption is evaluated in: no locals, no machine state,
    nothing returned yet."""
    t = z3.BoolVal(True, low.ctx)
    return Frame({}, None, t, z3.BoolVal(False, low.ctx), None, [], [], label, None, 0)


class CheckFormulas:
    """The lowering of one check under one strategy, in one z3 context of its own."""

    def __init__(self, program: ir.Program, check: ir.CheckDef, strategy: str | None,
                 layout: ir.LayoutDef | None, page_shift: int | None, unroll: int,
                 allow_tail: bool = True, vacuity_only: bool = False, bounded: int | None = None) -> None:
        self.program = program
        self.check = check
        self.strategy = strategy
        # z3 numbers terms per context, and its search depends on the numbering: a context
        # per lowering keeps a query's answer independent of the queries asked before it
        self.ctx = z3.Context()
        self.vacuity_only = vacuity_only
        self.low = Lowering(program, strategy, self.ctx, layout, page_shift, unroll,
                            check.claim.requirement, allow_tail, bounded)
        if vacuity_only or (check.is_trace and check.claim.kind != "requirement"):
            # only a requirement claim reads the requires; collecting them costs formulas
            self.low.collect_requires = False
        self.tracked: dict[str, Any] = {}  # name -> literal
        self.meaning: dict[str, Any] = {}  # name -> formula (those not tied to a step)
        self.hard: list[Any] = []
        self.lazy: list[Any] = []
        self.violations: list[Violation] = []
        self.premise: Any = z3.BoolVal(True, self.ctx)
        self.reach: dict[str, Any] = {}  # step -> when some trace runs it
        self.relevant_steps: list[str] = []
        self.trace_open: list[Any] = []
        self.nodes: list[TraceNode] = []
        self.depth_limit = check.depth if check.depth is not None else DEFAULT_DEPTH
        # a requires_hold claim whose violation needs no loop to end (see _holds)
        self.prefix_violation = False
        self._build()

    def _build(self) -> None:
        low = self.low
        before: dict[str, list[tuple[Any, ir.AssumeDef]]] = {}
        chosen = [*self.program.axioms, *(self.program.assumes[n] for n in self.check.assuming)]
        for a in chosen:
            lit = z3.Bool(a.name, self.ctx)
            self.tracked[a.name] = lit
            if a.before is not None:
                before.setdefault(a.before, []).append((lit, a))
                continue
            value = low.ev(a.formula, frame(low, f"assume {a.name}"), 1)
            self.meaning[a.name] = value
            self.hard.append(implies(lit, value))
        claim = self.check.claim
        if claim.kind == "holds":
            assert claim.expr is not None
            self._holds(claim.expr)
        else:
            self._trace(claim, before)
        eager, lazy = low.layout.close()
        self.hard.extend(low.hard)
        self.hard.extend(eager)
        self.lazy = lazy

    def _holds(self, expr: ir.Expr) -> None:
        low = self.low
        fr = frame(low)
        body = expr
        while isinstance(body, ir.Quant) and body.kind == "forall":
            q = body
            if q.domain.kind == "type" and not isinstance(q.var.ty, BoolType):
                w = bv.fresh(q.var.ty, f"{q.var.name}", self.ctx)
                if isinstance(q.var.ty, IntType) and q.var.ty.width == 64:
                    low.layout.hint_pfn(w)
                low.skolems.append(Skolem(q.site, "claim", q.var.name, q.var.ty, w, "witness"))
                fr = low.bind(fr, q.var, w)
            elif q.domain.kind in ("nodes", "ranges"):
                exists, w = low.layout_witness(q.site, q.domain.kind, q.var.name, q.var.ty, q.var.name, "claim")
                self.premise = conj(self.premise, exists)
                fr = low.bind(fr, q.var, w)
            elif q.domain.kind == "interval":
                assert q.domain.lo is not None and q.domain.hi is not None
                w = bv.fresh(q.var.ty, f"{q.var.name}", self.ctx)
                lo, hi = low.ev(q.domain.lo, fr), low.ev(q.domain.hi, fr)
                self.premise = conj(self.premise, bv.compare("<=", lo, w, q.var.ty),
                                      bv.compare("<", w, hi, q.var.ty))
                low.skolems.append(Skolem(q.site, "claim", q.var.name, q.var.ty, w, "witness"))
                fr = low.bind(fr, q.var, w)
            else:
                break
            body = q.body
        claim_expr = body.right if isinstance(body, ir.Binary) and body.op == "->" else body
        # requires_hold(f(...)) fails at the first failed require of f, in a prefix of its
        # execution; if nothing else in the claim reads a loop's outcome, a violation
        # needs no loop to end within the unrolling
        reads_results = (ir.CallFn, ir.InEmits, ir.EmitsEq)
        call = claim_expr.args[0] if isinstance(claim_expr, ir.Builtin) and claim_expr.args else None
        self.prefix_violation = (
            isinstance(claim_expr, ir.Builtin) and claim_expr.name == "requires_hold"
            and isinstance(call, ir.CallFn) and not _mentions(call.args, reads_results)
            and not (isinstance(body, ir.Binary) and body.op == "->" and _mentions((body.left,), reads_results)))
        if isinstance(body, ir.Binary) and body.op == "->":
            self.premise = conj(self.premise, low.ev(body.left, fr, 1))
            if self.vacuity_only:
                return
            c = low.ev(body.right, fr, -1)
        else:
            if self.vacuity_only:
                return
            c = low.ev(body, fr, -1)
        self.violations.append(Violation(conj(self.premise, negate(c)), "claim", 0, None,
                                          {"kind": "claim", "check": self.check.name}))
        for loop in low.loops:
            if loop.entry_violation is not None:
                self.violations.append(
                    Violation(loop.entry_violation, "invariant", 0, None,
                               {"kind": "invariant", "fn": loop.fn, "at": str(loop.span)}))

    def _trace(self, claim: ir.ClaimDef, before: dict[str, list[tuple[Any, ir.AssumeDef]]]) -> None:
        low = self.low
        low.share_witnesses = True
        nodes = build_tree(low, self.depth_limit, before)
        for n in nodes:
            if n.open is not None:
                self.trace_open.append(n.open)
            if n.step is not None:
                self.reach[n.step] = disj(self.reach.get(n.step, z3.BoolVal(False, self.ctx)), n.pc)
        relevant: set[str] = set()
        if claim.kind == "always":
            relevant = {n.step for n in nodes if n.step is not None}
        elif claim.kind == "after":
            assert claim.step is not None
            relevant = {claim.step}
        else:
            relevant = self._requirement_steps(claim.requirement or "")
        self.relevant_steps = sorted(relevant)
        self.nodes = nodes
        if self.vacuity_only:
            return
        if claim.kind in ("always", "after"):
            assert claim.expr is not None
            for n in nodes:
                if claim.kind == "after" and n.step != claim.step:
                    continue
                v = negate(low.ev(claim.expr, frame_for(low, n), -1))
                self.violations.append(Violation(conj(n.pc, v), f"n{n.id}", n.depth, n,
                                                  {"kind": claim.kind, "step": n.step, "node": f"n{n.id}"}, v))
        else:
            for n in nodes:
                for r in n.requires:
                    if r.name != claim.requirement:
                        continue
                    failed = negate(r.cond)
                    self.violations.append(Violation(
                        conj(r.guard, failed), f"n{n.id}", n.depth, n,
                        {"kind": "requirement", "name": r.name, "step": n.step, "node": f"n{n.id}",
                         "at": str(self.program.site_spans.get(r.site, claim.span))}, failed))

    def _requirement_steps(self, name: str) -> set[str]:
        """Steps whose bodies (or functions they call) contain `require name`."""
        out: set[str] = set()
        for st in self.program.step_defs(self.strategy):
            if mentions_require(st.body, name, self.program, self.strategy):
                out.add(st.name)
        return out

    def seed(self) -> list[Any]:
        """Every formula a decision query may add to the solver."""
        out = [v.formula for v in self.violations] + [self.premise] + list(self.low.hard_open)
        for loop in self.low.loops:
            out += [f for f in (loop.tail, loop.open, loop.consecution, loop.entry_violation, loop.exit_gap_here)
                    if f is not None]
        return out + list(self.trace_open)

    def running_on(self) -> list[Any]:
        """When a loop runs past the unrolling where a counterexample may not rely on
        it (``CheckRun._refute`` blocks each; a proof's stand-in flags are blocked apart):
        a loop without the stand-in, unless the claim's violation needs no loop to end
        (``prefix_violation``); a loop compared whole (``hard_open``); and any loop whose
        outcome is read after it (LoopInfo.leaks), whose outcome is then no execution's."""
        loops = self.low.loops
        out = [] if self.prefix_violation else [loop.open for loop in loops if loop.tail is None]
        out += self.low.hard_open
        # the loops the two rules above leave running, in an order of their own: the
        # order of a query's assumptions steers z3's search
        return out + [loop.open for loop in loops if loop.leaks and (loop.tail is not None or self.prefix_violation)]

    def names(self) -> dict[int, str]:
        """The assumption or axiom each tracked literal stands for, by term id."""
        return {lit.get_id(): name for name, lit in self.tracked.items()}

    def true_under(self, name: str, profile: ir.ProfileDef) -> bool:
        """Whether the assumption ``name`` is a constant truth under ``profile``'s constants."""
        value = self.meaning.get(name)
        if value is None:
            return False
        pairs = self.low.constants(profile)
        return bool(is_true(z3.simplify(z3.substitute(value, *pairs) if pairs else value)))


def _mentions(nodes: tuple[ir.Expr, ...], types: tuple[type, ...]) -> bool:
    """Whether a node of one of ``types`` occurs under ``nodes`` (calls not followed)."""
    return any(isinstance(n, types) for n in ir.walk(nodes))


__all__ = ["DEFAULT_DEPTH", "CheckFormulas", "Violation", "frame"]
