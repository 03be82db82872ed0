"""Stage 4: decide one check under one strategy, for each of its profiles.

Per profile, with the profile's constants as a tracked assumption:
1. vacuity: the assumptions and the claim's premise must be satisfiable together, and
   every step the claim relies on must run in some trace; otherwise ``vacuous``;
2. the violation formula: unsatisfiable gives ``proved`` when the argument is complete
   (loops fully unrolled or their invariants inductive, the trace tree closed),
   ``holds_to_depth`` otherwise; satisfiable gives a model, turned into a counterexample
   (layout, chunks, trace, violated condition) that the caller replays;
3. ``assumptions_used``: the unsat core over the tracked assumptions, minimised by
   deletion (the profile binding is tried first, so a proof that needs only the
   architecture's build check says so).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import z3

from khospec import ir
from khospec.engine import bv
from khospec.engine.layout import LayoutLimit
from khospec.engine.lower import Frame, LowerError, Lowering, TraceNode
from khospec.results import Verdict
from khospec.types import BoolType, IntType, StructType

DEFAULT_DEPTH = 16


@dataclass
class Outcome:
    """What the engine found for one (check, strategy, profile); z3-free."""

    verdict: Verdict
    time_s: float
    assumptions_used: tuple[str, ...] | None = None
    counterexample: dict[str, Any] | None = None
    reason: str | None = None
    depth: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Violation:
    formula: Any
    label: str
    depth: int
    node: TraceNode | None
    what: dict[str, Any]


def _frame(low: Lowering, label: str = "claim") -> Frame:
    t = z3.BoolVal(True, low.ctx)
    return Frame({}, None, t, z3.BoolVal(False, low.ctx), None, [], [], label, None, 0)


class CheckRun:
    """The lowering of one check under one strategy, shared by its profiles."""

    def __init__(self, program: ir.Program, check: ir.CheckDef, strategy: str | None,
                 layout: ir.LayoutDef | None, page_shift: int | None, timeout_ms: int,
                 unroll: int) -> None:
        self.program = program
        self.check = check
        self.strategy = strategy
        self.ctx = z3.Context()
        self.timeout_ms = timeout_ms
        self.low = Lowering(program, strategy, self.ctx, layout, page_shift, unroll,
                            check.claim.requirement)
        self.tracked: dict[str, Any] = {}  # name -> literal
        self.hard: list[Any] = []
        self.violations: list[_Violation] = []
        self.premise: Any = z3.BoolVal(True, self.ctx)
        self.reach: dict[str, Any] = {}
        self.trace_open: list[Any] = []
        self.depth_limit = check.depth if check.depth is not None else DEFAULT_DEPTH
        self._build()

    # -- building
    def _lit(self, name: str) -> Any:
        lit = z3.Bool(name, self.ctx)
        self.tracked[name] = lit
        return lit

    def _build(self) -> None:
        low = self.low
        before: dict[str, list[tuple[Any, ir.AssumeDef]]] = {}
        chosen = [*self.program.axioms, *(self.program.assumes[n] for n in self.check.assuming)]
        for a in chosen:
            lit = self._lit(a.name)
            if a.before is not None:
                before.setdefault(a.before, []).append((lit, a))
                continue
            value = low.ev(a.formula, _frame(low, f"assume {a.name}"), 1)
            self.hard.append(z3.Implies(lit, value))
        claim = self.check.claim
        if claim.kind == "holds":
            assert claim.expr is not None
            self._holds(claim.expr)
        else:
            self._trace(claim, before)
        closure = low.layout.close()
        self.hard.extend(low.hard)
        self.hard.extend(closure)

    def _holds(self, expr: ir.Expr) -> None:
        low = self.low
        fr = _frame(low)
        body = expr
        while isinstance(body, ir.Quant) and body.kind == "forall" and body.domain.kind in ("type", "nodes", "ranges", "interval"):
            # the claim's own universals: one witness each, shared by premise and violation
            q = body
            if q.domain.kind == "type" and not isinstance(q.var.ty, BoolType):
                w = bv.fresh(q.var.ty, f"{q.var.name}", self.ctx)
                if isinstance(q.var.ty, IntType) and q.var.ty.width == 64:
                    low.layout.note_pfn(w)
                low.skolems.append(_sk(q, "claim", w))
                fr = low._bind(fr, q.var, w)
            elif q.domain.kind == "nodes":
                exists, n = low.layout.witness_node(f"{q.var.name}")
                self.premise = z3.And(self.premise, exists)
                low.skolems.append(_sk(q, "claim", n))
                fr = low._bind(fr, q.var, n)
            elif q.domain.kind == "ranges":
                exists, r = low.layout.witness_range(f"{q.var.name}")
                self.premise = z3.And(self.premise, exists)
                low.skolems.append(_sk(q, "claim", r))
                fr = low._bind(fr, q.var, r)
            elif q.domain.kind == "interval":
                assert q.domain.lo is not None and q.domain.hi is not None
                w = bv.fresh(q.var.ty, f"{q.var.name}", self.ctx)
                lo, hi = low.ev(q.domain.lo, fr), low.ev(q.domain.hi, fr)
                self.premise = z3.And(self.premise, bv.compare("<=", lo, w, q.var.ty), bv.compare("<", w, hi, q.var.ty))
                low.skolems.append(_sk(q, "claim", w))
                fr = low._bind(fr, q.var, w)
            else:
                break
            body = q.body
        if isinstance(body, ir.Binary) and body.op == "->":
            h = low.ev(body.left, fr, 1)
            c = low.ev(body.right, fr, -1)
            self.premise = z3.And(self.premise, h)
            violation = z3.And(self.premise, z3.Not(c))
        else:
            c = low.ev(body, fr, -1)
            violation = z3.And(self.premise, z3.Not(c))
        what = {"kind": "claim", "text": None}
        self.violations.append(_Violation(violation, "claim", 0, None, what))
        for loop in low.loops:
            if loop.entry_violation is not None:
                self.violations.append(
                    _Violation(loop.entry_violation, "invariant", 0, None,
                               {"kind": "invariant", "fn": loop.fn, "at": str(loop.span)}))

    def _trace(self, claim: ir.ClaimDef, before: dict[str, list[tuple[Any, ir.AssumeDef]]]) -> None:
        low = self.low
        nodes = low.build_tree(self.depth_limit, before)
        for n in nodes:
            if n.open is not None:
                self.trace_open.append(n.open)
            if n.step is not None:
                self.reach[n.step] = z3.Or(self.reach.get(n.step, z3.BoolVal(False, self.ctx)), n.pc)
        relevant: set[str] = set()
        if claim.kind == "always":
            assert claim.expr is not None
            relevant = {n.step for n in nodes if n.step is not None}
            for n in nodes:
                fr = low.frame_for(n)
                v = z3.Not(low.ev(claim.expr, fr, -1))
                self.violations.append(_Violation(z3.And(n.pc, v), f"n{n.id}", n.depth, n,
                                                  {"kind": "always", "state_after": n.step}))
        elif claim.kind == "after":
            assert claim.expr is not None and claim.step is not None
            relevant = {claim.step}
            for n in nodes:
                if n.step != claim.step:
                    continue
                fr = low.frame_for(n)
                v = z3.Not(low.ev(claim.expr, fr, -1))
                self.violations.append(_Violation(z3.And(n.pc, v), f"n{n.id}", n.depth, n,
                                                  {"kind": "after", "step": claim.step}))
        else:
            name = claim.requirement
            for n in nodes:
                for r in n.requires:
                    if r.name != name:
                        continue
                    assert n.step is not None
                    relevant.add(n.step)
                    self.violations.append(_Violation(
                        z3.And(r.guard, z3.Not(r.cond)), f"n{n.id}", n.depth, n,
                        {"kind": "requirement", "name": name, "site": r.site, "step": n.step,
                         "at": str(self.program.site_spans.get(r.site, claim.span))}))
        self.relevant_steps = sorted(relevant)
        self.nodes = nodes

    # -- solving
    def solve(self, profile: ir.ProfileDef | None) -> Outcome:
        t0 = time.perf_counter()
        try:
            out = self._solve(profile)
        except z3.Z3Exception as exc:
            out = Outcome(Verdict.UNKNOWN, 0.0, reason=f"solver error: {exc}")
        out.time_s = time.perf_counter() - t0
        return out

    def _solver(self) -> z3.Solver:
        s = z3.Solver(ctx=self.ctx)
        s.set("timeout", self.timeout_ms)
        s.set("random_seed", 0)
        for h in self.hard:
            s.add(h)
        return s

    def _solve(self, profile: ir.ProfileDef | None) -> Outcome:
        s = self._solver()
        tracked = dict(self.tracked)
        if profile is not None:
            plit = z3.Bool(f"profile {profile.name}", self.ctx)
            s.add(z3.Implies(plit, self.low.profile_binding(profile)))
            tracked = {f"profile {profile.name}": plit, **tracked}
        lits = list(tracked.values())
        names = {lit.get_id(): name for name, lit in tracked.items()}

        def check(extra: list[Any]) -> z3.CheckSatResult:
            return s.check(*lits, *extra)

        # 1. vacuity: the assumptions with the claim's premise
        prem = z3.Bool("premise", self.ctx)
        s.add(z3.Implies(prem, self.premise))
        r = check([prem])
        if r == z3.unknown:
            return Outcome(Verdict.UNKNOWN, 0, reason=_reason(s))
        if r == z3.unsat:
            core = [c for c in s.unsat_core() if c.get_id() in names]
            core = self._minimize(s, core, prem, lits)
            used = [names[c.get_id()] for c in core]
            return Outcome(Verdict.VACUOUS, 0, assumptions_used=tuple(used),
                           reason="no layout and profile satisfy the claim's premise together with "
                           + (", ".join(used) if used else "the axioms"))
        if self.check.is_trace:
            dead = self._dead_steps(s, check)
            if dead is None:
                return Outcome(Verdict.UNKNOWN, 0, reason=_reason(s))
            if dead:
                return Outcome(Verdict.VACUOUS, 0, assumptions_used=(),
                               reason=f"step(s) {', '.join(dead)} never run in any trace the assumptions allow")
            if not self.violations:
                return Outcome(Verdict.VACUOUS, 0, reason="the claim is never evaluated: no trace reaches it")
        # 2. the violation
        vlit = z3.Bool("violation", self.ctx)
        s.add(z3.Implies(vlit, z3.Or(*[v.formula for v in self.violations])))
        r = check([vlit])
        if r == z3.unknown:
            return Outcome(Verdict.UNKNOWN, 0, reason=_reason(s))
        if r == z3.unsat:
            core = [c for c in s.unsat_core() if c.get_id() in names]
            core = self._minimize(s, core, vlit, lits)
            used = tuple(names[c.get_id()] for c in core)
            incomplete = self._incomplete(s, lits)
            if incomplete is None:
                return Outcome(Verdict.UNKNOWN, 0, reason=_reason(s))
            if incomplete:
                return Outcome(Verdict.HOLDS_TO_DEPTH, 0, assumptions_used=used,
                               depth=self.depth_limit if self.check.is_trace else self.low.unroll,
                               notes=incomplete)
            return Outcome(Verdict.PROVED, 0, assumptions_used=used)
        # satisfiable: prefer a model that needs no invariant stand-in
        tails = [loop.tail for loop in self.low.loops if loop.tail is not None]
        if tails:
            r2 = check([vlit, *[z3.Not(t) for t in tails]])
            if r2 == z3.unsat:
                return Outcome(Verdict.HOLDS_TO_DEPTH, 0, depth=self.low.unroll, notes=[
                    "no violation in the unrolled iterations; the invariants are too weak to rule one out beyond them"])
            if r2 == z3.unknown:
                return Outcome(Verdict.UNKNOWN, 0, reason=_reason(s))
        chosen = self._shortest(s, check, tails)
        if chosen is None:
            return Outcome(Verdict.UNKNOWN, 0, reason=_reason(s))
        model = s.model()
        if chosen.what.get("kind") == "invariant":
            return Outcome(Verdict.UNKNOWN, 0, reason=(
                f"the loop invariant of `{chosen.what['fn']}` does not hold after {self.low.unroll} iterations for some arguments"))
        cex = self._extract(model, chosen, profile)
        return Outcome(Verdict.REFUTED, 0, counterexample=cex)

    def _dead_steps(self, s: z3.Solver, check: Callable[[list[Any]], Any]) -> list[str] | None:
        todo = [st for st in self.relevant_steps if st in self.reach]
        missing = [st for st in self.relevant_steps if st not in self.reach]
        while todo:
            lit = z3.Bool(f"reach {len(todo)}", self.ctx)
            s.add(z3.Implies(lit, z3.Or(*[self.reach[st] for st in todo])))
            r = check([lit])
            if r == z3.unknown:
                return None
            if r == z3.unsat:
                return sorted(missing + todo)
            m = s.model()
            todo = [st for st in todo if not z3.is_true(m.eval(self.reach[st], model_completion=True))]
        return missing

    def _minimize(self, s: z3.Solver, core: list[Any], vlit: Any, lits: list[Any]) -> list[Any]:
        # try dropping the profile binding first, then assumptions, axioms last
        order = sorted(core, key=lambda c: (0 if str(c).startswith("profile ") else 1, str(c)))
        kept = list(order)
        for c in order:
            if c not in kept:
                continue
            trial = [k for k in kept if not k.eq(c)]
            r = s.check(*trial, vlit)
            if r == z3.unsat:
                sub = {x.get_id() for x in s.unsat_core()}
                kept = [k for k in trial if k.get_id() in sub]
        return kept

    def _incomplete(self, s: z3.Solver, lits: list[Any]) -> list[str] | None:
        notes: list[str] = []
        for loop in self.low.loops:
            if loop.tail is None and not z3.is_false(z3.simplify(loop.open)):
                r = s.check(*lits, loop.open)
                if r == z3.unknown:
                    return None
                if r == z3.sat:
                    notes.append(f"the loop at {loop.span} may run more than {self.low.unroll} iterations and has no invariant")
            if loop.consecution is not None:
                r = s.check(*lits, loop.consecution)
                if r == z3.unknown:
                    return None
                if r == z3.sat:
                    notes.append(f"the invariants of the loop at {loop.span} are not inductive")
        for o in self.low.hard_open:
            r = s.check(*lits, o)
            if r == z3.unknown:
                return None
            if r == z3.sat:
                notes.append("a loop used exactly (f(...) == [...] or `not in`) may not terminate within the unrolling")
        if self.trace_open:
            r = s.check(*lits, z3.Or(*self.trace_open))
            if r == z3.unknown:
                return None
            if r == z3.sat:
                notes.append(f"some trace is longer than {self.depth_limit} steps")
        return notes

    def _shortest(self, s: z3.Solver, check: Callable[[list[Any]], Any], tails: list[Any]) -> _Violation | None:
        """The violation with the shortest trace (and no invariant stand-in)."""
        no_tail = [z3.Not(t) for t in tails]
        by_depth = sorted({v.depth for v in self.violations})
        for d in by_depth:
            group = [v for v in self.violations if v.depth == d]
            lit = z3.Bool(f"violation at depth {d}", self.ctx)
            s.add(z3.Implies(lit, z3.Or(*[v.formula for v in group])))
            r = check([lit, *no_tail])
            if r == z3.unknown:
                return None
            if r == z3.sat:
                m = s.model()
                for v in group:
                    if z3.is_true(m.eval(v.formula, model_completion=True)):
                        return v
        return None

    # -- counterexamples
    def _extract(self, model: z3.ModelRef, v: _Violation, profile: ir.ProfileDef | None) -> dict[str, Any]:
        low = self.low
        params: dict[str, Any] = {}
        for name, pd in self.program.params.items():
            if pd.arg_types is None:
                params[name] = bv.model_value(model, low.param(name), pd.ty)
        pfuncs: dict[str, list[list[Any]]] = {}
        seen: set[tuple[str, tuple[int, ...]]] = set()
        layout = low.layout.extract(model)
        for name, pd in self.program.params.items():
            if pd.arg_types is not None and len(pd.arg_types) == 1:
                for n in layout["nodes"]:
                    arg = bv.const(n, pd.arg_types[0], self.ctx)
                    val = bv.model_value(model, low.param(name, (arg,)), pd.ty)
                    key = (name, (n,))
                    if key not in seen:
                        seen.add(key)
                        pfuncs.setdefault(name, []).append([[n], val])
        for name, args, app in low.param_apps:
            pd = self.program.params[name]
            assert pd.arg_types is not None
            avals = tuple(bv.model_value(model, a, t) for a, t in zip(args, pd.arg_types, strict=True))
            key = (name, avals)
            if key in seen:
                continue
            seen.add(key)
            pfuncs.setdefault(name, []).append([list(avals), bv.model_value(model, app, pd.ty)])
        path = v.node.path() if v.node is not None else []
        labels = {"claim", "init"}
        n = v.node
        while n is not None:
            labels.add(f"n{n.id}")
            n = n.parent
        witnesses = []
        for sk in low.skolems:
            if sk.label.split("/")[0].split("#")[0] not in labels and v.node is not None:
                continue
            witnesses.append({
                "name": sk.name, "site": sk.site, "label": sk.label, "role": sk.role,
                "type": str(sk.ty), "value": bv.model_value(model, sk.sym, sk.ty),
            })
        initial = []
        seen_init: set[tuple[str, int]] = set()
        for path_name, idx, val in low.garbage_apps:
            i = model.eval(idx, model_completion=True).as_long()
            if (path_name, i) in seen_init:
                continue
            seen_init.add((path_name, i))
            r = model.eval(val, model_completion=True)
            initial.append({"field": path_name, "index": i,
                            "value": z3.is_true(r) if z3.is_bool(r) else r.as_long()})
        what = dict(v.what)
        if self.check.claim.kind == "holds":
            what["text"] = _claim_text(self.program, self.check)
        return {
            "params": params,
            "param_functions": pfuncs,
            "layout": layout,
            "witnesses": witnesses,
            "initial": initial,
            "trace": path,
            "violated": what,
            "tails": [],
        }


def _sk(q: ir.Quant, label: str, sym: Any) -> Any:
    from khospec.engine.lower import Skolem

    return Skolem(q.site, label, q.var.name, q.var.ty, sym, "witness")


def _claim_text(program: ir.Program, check: ir.CheckDef) -> str:
    return check.name


def _reason(s: z3.Solver) -> str:
    r = s.reason_unknown()
    if r in ("timeout", "canceled"):
        return "time limit reached"
    return r or "solver gave up"


def run(program: ir.Program, check: ir.CheckDef, strategy: str | None,
        profiles: list[ir.ProfileDef | None], timeout_ms: int = 20000, unroll: int = 3,
        layout: ir.LayoutDef | None = None) -> list[tuple[ir.ProfileDef | None, Outcome]]:
    """Decide ``check`` under ``strategy`` for each profile."""
    out: list[tuple[ir.ProfileDef | None, Outcome]] = []
    t0 = time.perf_counter()
    try:
        if layout is None:
            runner = CheckRun(program, check, strategy, None, None, timeout_ms, unroll)
            build = time.perf_counter() - t0
            for p in profiles:
                o = runner.solve(p)
                o.time_s += build / max(len(profiles), 1)
                out.append((p, o))
            return out
        for p in profiles:
            t1 = time.perf_counter()
            ps = dict(p.bindings).get("PAGE_SHIFT") if p is not None else None
            if not isinstance(ps, int) or isinstance(ps, bool):
                out.append((p, Outcome(Verdict.UNKNOWN, 0.0, reason="a concrete layout needs a profile with a fixed PAGE_SHIFT")))
                continue
            runner = CheckRun(program, check, strategy, layout, ps, timeout_ms, unroll)
            o = runner.solve(p)
            o.time_s = time.perf_counter() - t1
            out.append((p, o))
        return out
    except LayoutLimit as exc:
        return [(p, Outcome(Verdict.UNKNOWN, time.perf_counter() - t0, reason=str(exc))) for p in profiles]


__all__ = ["LowerError", "Outcome", "run", "StructType"]
