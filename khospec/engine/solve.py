"""Stage 4: decide one check under one strategy, for each of its profiles.

For a check and a strategy the formulas are built once (engine/lower.py), with the
architecture's constants symbolic. Then:

1. If the check runs for several profiles, try to prove it with the constants left
   symbolic: a proof there holds for every profile at once, and its unsat core names
   the build checks it needed (prelude axioms such as ``build_check``).
2. Otherwise, per profile, the profile's constants are substituted (shifts by a known
   PAGE_SHIFT are wires, not barrel shifters) and the violation formula is solved:
   - satisfiable: a model that needs no loop-invariant stand-in and finishes every
     loop within the unrolling is a counterexample (layout, chunks, trace, violated
     condition), extracted here and replayed by the caller;
   - unsatisfiable: ``proved`` if the argument is complete (loops fully unrolled or
     their invariants inductive, trace tree closed), ``holds_to_depth`` otherwise;
     ``assumptions_used`` is the unsat core over the named assumptions and axioms,
     minimised by deletion.
3. A proof is then checked for vacuity, on a separate, smaller lowering: the
   assumptions and the claim's premise must be satisfiable together, and every step
   the claim relies on must run in some trace; otherwise ``vacuous``.

Claims over loops go in two phases: every iteration at once through the invariants,
then, if undecided, bounded model checking of the first iterations without them.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import z3

from khospec import ir
from khospec.engine import bv
from khospec.engine.freshbv import rlimit_count, solve_fresh
from khospec.engine.layout import LayoutLimit
from khospec.engine.lower import Frame, LowerError, Lowering, Skolem, TraceNode, mentions_require
from khospec.results import Verdict
from khospec.types import BoolType, IntType, StructType

DEFAULT_DEPTH = 16
# Budgets are z3 resource units, not wall time: the same query gets the same budget on
# every machine, so verdicts, cores and counterexamples do not depend on the machine's
# speed or load. Times below are nominal, converted at the rate z3 spends units on this
# library's queries (about 3 million per second on a 2024 x86-64 core). A wall-clock
# limit of WALL_FACTOR times the nominal time only catches a solver that stops counting.
RLIMIT_PER_SECOND = 3_000_000
WALL_FACTOR = 5
SYMBOLIC_ATTEMPT_MS = 5000  # per profile, for all profiles in one solver
SMALL_LAYOUT_MS = 20000
SMALL_LAYOUT_RANGES = 3
COMPLETE_MS = 20000
# the budgets of the fresh solvers that try a pure bit-vector query one seed after
# another, in another process (engine/freshbv.py)
FRESH_SCHEDULE_MS = (1000, 2000, 4000, 8000)
ROUNDING_MS = 3000
READABLE_FLOOR_MS = 250
READABLE_FLOOR_FRESH_MS = 2000
MINIMIZE_MS = 3000


@dataclass(frozen=True)
class Outcome:
    """What the engine found for one (check, strategy, profile); z3-free."""

    verdict: Verdict
    time_s: float
    assumptions_used: tuple[str, ...] | None = None
    counterexample: dict[str, Any] | None = None
    reason: str | None = None
    depth: int | None = None
    notes: tuple[str, ...] = ()
    unsure: tuple[str, ...] = ()  # names in assumptions_used not shown to be needed

    def noted(self, note: str, first: bool = False) -> Outcome:
        return dataclasses.replace(self, notes=(note, *self.notes) if first else (*self.notes, note))


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
                 unroll: int, allow_tail: bool = True, vacuity_only: bool = False,
                 bounded: int | None = None, cross_check: bool = False) -> None:
        self.program = program
        self.check = check
        self.strategy = strategy
        self.ctx = z3.Context()
        self.timeout_ms = timeout_ms
        self.vacuity_only = vacuity_only
        self.bounded = bounded
        self.cross_check = cross_check
        self._scope_defs: list[Any] = []
        self._dropped: list[Any] = []
        self._dropped_symbols: set[int] = set()  # decl ids of the symbols in _dropped
        # pure bit-vector queries whose model is wanted are asked of a fresh solver too
        # (see query); its model, when it answered
        self._fresh_bv = False
        self._models_only = False
        self._fresh_first = False
        self._fresh_model: Any = None
        self._outside = 0  # resource units charged for fresh trials (another process)
        self.low = Lowering(program, strategy, self.ctx, layout, page_shift, unroll,
                            check.claim.requirement, allow_tail, bounded)
        if vacuity_only or (check.is_trace and check.claim.kind != "requirement"):
            self.low.collect_requires = False
        self.tracked: dict[str, Any] = {}  # name -> literal
        self.meaning: dict[str, Any] = {}  # name -> formula (those not tied to a step)
        self.hard: list[Any] = []
        self.lazy: list[Any] = []
        self.violations: list[_Violation] = []
        self.premise: Any = z3.BoolVal(True, self.ctx)
        self.reach: dict[str, Any] = {}
        self.relevant_steps: list[str] = []
        self.trace_open: list[Any] = []
        self.depth_limit = check.depth if check.depth is not None else DEFAULT_DEPTH
        self._build()

    # -- building
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
            value = low.ev(a.formula, _frame(low, f"assume {a.name}"), 1)
            self.meaning[a.name] = value
            self.hard.append(z3.Implies(lit, value))
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
        fr = _frame(low)
        body = expr
        while isinstance(body, ir.Quant) and body.kind == "forall":
            q = body
            if q.domain.kind == "type" and not isinstance(q.var.ty, BoolType):
                w = bv.fresh(q.var.ty, f"{q.var.name}", self.ctx)
                if isinstance(q.var.ty, IntType) and q.var.ty.width == 64:
                    low.layout.hint_pfn(w)
                low.skolems.append(Skolem(q.site, "claim", q.var.name, q.var.ty, w, "witness"))
                fr = low._bind(fr, q.var, w)
            elif q.domain.kind in ("nodes", "ranges"):
                exists, w = low._layout_witness(q.site, q.domain.kind, q.var.name, q.var.ty, q.var.name, "claim")
                self.premise = z3.And(self.premise, exists)
                fr = low._bind(fr, q.var, w)
            elif q.domain.kind == "interval":
                assert q.domain.lo is not None and q.domain.hi is not None
                w = bv.fresh(q.var.ty, f"{q.var.name}", self.ctx)
                lo, hi = low.ev(q.domain.lo, fr), low.ev(q.domain.hi, fr)
                self.premise = z3.And(self.premise, bv.compare("<=", lo, w, q.var.ty),
                                      bv.compare("<", w, hi, q.var.ty))
                low.skolems.append(Skolem(q.site, "claim", q.var.name, q.var.ty, w, "witness"))
                fr = low._bind(fr, q.var, w)
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
            self.premise = z3.And(self.premise, low.ev(body.left, fr, 1))
            if self.vacuity_only:
                return
            c = low.ev(body.right, fr, -1)
        else:
            if self.vacuity_only:
                return
            c = low.ev(body, fr, -1)
        self.violations.append(_Violation(z3.And(self.premise, z3.Not(c)), "claim", 0, None,
                                          {"kind": "claim", "check": self.check.name}))
        for loop in low.loops:
            if loop.entry_violation is not None:
                self.violations.append(
                    _Violation(loop.entry_violation, "invariant", 0, None,
                               {"kind": "invariant", "fn": loop.fn, "at": str(loop.span)}))

    def _trace(self, claim: ir.ClaimDef, before: dict[str, list[tuple[Any, ir.AssumeDef]]]) -> None:
        low = self.low
        low.share_witnesses = True
        nodes = low.build_tree(self.depth_limit, before)
        for n in nodes:
            if n.open is not None:
                self.trace_open.append(n.open)
            if n.step is not None:
                self.reach[n.step] = z3.Or(self.reach.get(n.step, z3.BoolVal(False, self.ctx)), n.pc)
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
                v = z3.Not(low.ev(claim.expr, low.frame_for(n), -1))
                self.violations.append(_Violation(z3.And(n.pc, v), f"n{n.id}", n.depth, n,
                                                  {"kind": claim.kind, "step": n.step, "node": f"n{n.id}"}))
        else:
            for n in nodes:
                for r in n.requires:
                    if r.name != claim.requirement:
                        continue
                    self.violations.append(_Violation(
                        z3.And(r.guard, z3.Not(r.cond)), f"n{n.id}", n.depth, n,
                        {"kind": "requirement", "name": r.name, "step": n.step, "node": f"n{n.id}",
                         "at": str(self.program.site_spans.get(r.site, claim.span))}))

    def _requirement_steps(self, name: str) -> set[str]:
        """Steps whose bodies (or functions they call) contain `require name`."""
        out: set[str] = set()
        for st in self.program.step_defs(self.strategy):
            if mentions_require(st.body, name, self.program, self.strategy):
                out.add(st.name)
        return out

    # -- solvers
    def _solver(self, profile: ir.ProfileDef | None, timeout_ms: int,
                seed: list[Any] | None = None) -> tuple[z3.Solver, list[Any]]:
        """A solver holding the formulas with the profile's constants substituted;
        everything added to it later goes through ``self.sub``.

        With ``seed`` (the formulas the queries will add), only the formulas that share
        a symbol with them, directly or through other formulas, go in: the rest is an
        independent conjunct whose satisfiability the vacuity check (which takes no
        seed) settles, and which ``_complete`` adds back for a counterexample."""
        self._pairs = self.low.constants(profile) if profile is not None else []
        hard = [self.sub(h) for h in self.hard]
        self._pending = [self.sub(f) for f in self.lazy]
        self._dropped.clear()
        self._dropped_symbols.clear()
        if seed is not None:
            keep, self._dropped_symbols = _cone([self.sub(f) for f in seed], hard + self._pending)
            self._dropped = [f for i, f in enumerate(hard + self._pending) if i not in keep]
            self._pending = [f for i, f in enumerate(self._pending, len(hard)) if i in keep]
            hard = [f for i, f in enumerate(hard) if i in keep]
        # Pure bit-vector problems (the arithmetic of the split, lemmas) go to z3's
        # bit-blasting SAT solver, which is an order of magnitude faster on them than the
        # SMT core; the rest (layouts and param functions are uninterpreted functions)
        # to the SMT core set up for QF_UFBV, all a khospec query uses (no integers, no
        # quantifiers); on `eager_no_uninit_read_folio` for arm64-16k it needs less
        # than 45 s of budget where the default set-up needs more.
        goal = z3.Goal(ctx=self.ctx)
        goal.add(*hard, *self._pending)
        later = z3.Goal(ctx=self.ctx)
        later.add(*[self.sub(f) for f in seed or []])
        is_qfbv = z3.Probe("is-qfbv", self.ctx)
        bits_only = is_qfbv(goal) == 1.0
        self._fresh_bv = bits_only and is_qfbv(later) == 1.0
        if self._fresh_bv:
            s = z3.SolverFor("QF_BV", ctx=self.ctx)
        elif bits_only:
            s = z3.Solver(ctx=self.ctx)
            s.set("core.minimize", False)
        else:
            s = z3.SolverFor("QF_UFBV", ctx=self.ctx)
            # z3's own core minimisation costs more than the whole proof on the larger
            # queries; _minimize does it by deletion, within a budget
            s.set("core.minimize", False)
        s.set("random_seed", 0)
        for h in hard:
            s.add(h)
        return s, list(self.tracked.values())

    def query(self, s: z3.Solver, *assumptions: Any) -> Any:
        """s.check(), adding the lazy instances a model violates until none is.

        While a counterexample is being shaped (``_models_only``: no unsat core will be
        read), a pure bit-vector query goes to a fresh solver holding the assertions and
        the assumptions; so does the decision of a check expected refuted
        (``_fresh_first``), whose unsat answer is then asked again of the incremental
        solver, for its core: z3 then bit-blasts after its full preprocessing, where a check
        with assumptions takes its incremental path. On `split_partition_huge_range`
        (x86_64) the query for the shortest violation took 0.3 s fresh and 17-29 s with
        assumptions. The fresh solvers run in a new process (engine/freshbv.py says why),
        one seed after another, each seed with a doubling budget (FRESH_SCHEDULE_MS):
        z3's time on such a query varies tenfold with the seed, and a slow seed is left
        early. Budgets are resource units, so which seed answers, and its model, is the
        same on every machine and after any earlier check. Only if they cannot decide
        does the incremental solver get the rest of the budget."""
        while True:
            self._fresh_model = None
            left = self._budget - self._spent
            if left <= 0:
                return z3.unknown
            units = max(1, min(_units(self._query_ms), left))
            r = z3.unknown
            if self._fresh_bv and (self._models_only or self._fresh_first):
                answer = solve_fresh([*s.assertions(), *assumptions], self.ctx, units,
                                     [_units(ms) for ms in FRESH_SCHEDULE_MS], WALL_FACTOR * 1000 / RLIMIT_PER_SECOND)
                if self._models_only or answer.result == "sat":
                    self._outside += answer.units
                    self._spent += answer.units
                    self._fresh_model = answer.model
                    r = z3.sat if answer.result == "sat" else z3.unsat if answer.result == "unsat" else z3.unknown
                # else a proof's core comes from the incremental solver, as if the fresh
                # trial had not been made: its cost is not charged to the budget
                left = self._budget - self._spent
                units = max(1, min(units, left))
            if r == z3.unknown and left > 0:
                r = _check(s, units, assumptions)
                # the count is the context's, over all its solvers, and only grows; the
                # fresh trials ran in another process
                self._spent = max(self._spent, rlimit_count(s) + self._outside)
            if r != z3.sat or not self._pending:
                return r
            m = self._model(s)
            violated: list[Any] = []
            keep: list[Any] = []
            for f in self._pending:
                (keep if z3.is_true(m.eval(f, model_completion=True)) else violated).append(f)
            if not violated:
                return r
            for f in violated:
                s.add(f)
            self._pending = keep

    def _model(self, s: z3.Solver) -> Any:
        """The model of the last satisfiable query, whichever solver answered it."""
        return self._fresh_model if self._fresh_model is not None else s.model()

    def sub(self, f: Any) -> Any:
        return z3.substitute(f, *self._pairs) if self._pairs else f

    def _names(self) -> dict[int, str]:
        return {lit.get_id(): name for name, lit in self.tracked.items()}

    def attempt(self, profile: ir.ProfileDef | None, timeout_ms: int | None = None) -> Outcome:
        """Decide for one profile within ``timeout_ms`` overall (default: the check's)."""
        t0 = time.perf_counter()
        self._query_ms = self.timeout_ms
        self._base = self._spent
        self._budget = self._spent + _units(timeout_ms or self.timeout_ms)
        try:
            out = self._attempt(profile, timeout_ms or self.timeout_ms)
        except z3.Z3Exception as exc:
            out = Outcome(Verdict.UNKNOWN, 0.0, reason=f"solver error: {exc}")
        return dataclasses.replace(out, time_s=time.perf_counter() - t0)

    def _attempt(self, profile: ir.ProfileDef | None, timeout_ms: int) -> Outcome:
        if not self.violations:
            return Outcome(Verdict.PROVED, 0, assumptions_used=(), notes=("the claim is never evaluated",))
        s, lits = self._solver(profile, timeout_ms, self._seed())
        return self._decide(s, lits, [], profile)

    def _seed(self) -> list[Any]:
        """Every formula a decision query may add to the solver."""
        out = [v.formula for v in self.violations] + [self.premise] + list(self.low.hard_open)
        for loop in self.low.loops:
            out += [f for f in (loop.tail, loop.open, loop.consecution, loop.entry_violation) if f is not None]
        return out + list(self.trace_open)

    def attempt_profiles(self, profiles: list[ir.ProfileDef], timeout_ms: int) -> dict[str, Outcome]:
        """All profiles in one solver: the architecture constants stay symbolic and the
        query says "one of these profiles". Unsat proves every remaining profile at once;
        a model names the profile it refutes, which then leaves the disjunction."""
        t0 = time.perf_counter()
        self._query_ms = timeout_ms * len(profiles)
        self._budget = self._spent + _units(timeout_ms * len(profiles))
        out: dict[str, Outcome] = {}
        try:
            plits = {p.name: z3.Bool(f"profile {p.name}", self.ctx) for p in profiles}
            defs = [z3.Implies(plits[p.name], self.low.profile_binding(p)) for p in profiles]
            s, lits = self._solver(None, self._query_ms, self._seed() + defs)
            for definition in defs:
                s.add(definition)
                self._scope_defs.append(definition)
            remaining = list(profiles)
            while remaining:
                some = z3.Bool(f"one of {len(remaining)} profiles", self.ctx)
                definition = z3.Implies(some, z3.Or(*[plits[p.name] for p in remaining]))
                s.add(definition)
                self._scope_defs.append(definition)
                if not self.violations:
                    o = Outcome(Verdict.PROVED, 0, assumptions_used=(), notes=("the claim is never evaluated",))
                    out.update({p.name: o for p in remaining})
                    break
                o = self._decide(s, lits, [some], None, plits=plits, remaining=remaining)
                if o.verdict is Verdict.REFUTED and o.counterexample is not None:
                    cex = dict(o.counterexample)
                    name = cex.pop("profile")
                    out[name] = dataclasses.replace(o, counterexample=cex)
                    remaining = [p for p in remaining if p.name != name]
                    continue
                out.update({p.name: self._narrowed(o, p) for p in remaining})
                break
        except z3.Z3Exception as exc:
            for p in profiles:
                out.setdefault(p.name, Outcome(Verdict.UNKNOWN, 0.0, reason=f"solver error: {exc}"))
        share = (time.perf_counter() - t0) / max(len(profiles), 1)
        return {name: dataclasses.replace(o, time_s=share) for name, o in out.items()}

    def _decide(self, s: z3.Solver, lits: list[Any], scope: list[Any], profile: ir.ProfileDef | None,
                plits: dict[str, Any] | None = None, remaining: list[ir.ProfileDef] | None = None) -> Outcome:
        names = self._names()
        before = self._spent
        # cases pay off on the trees of traces; a search among small layouts asks for a
        # model only, and a claim over plain formulas has one case, or few
        cases = self._cases(s, split=self.bounded is None and self.check.is_trace)
        # a check expected refuted asks a fresh solver first (query): its model is the
        # answer if it finds one; the expectation only orders the work
        self._fresh_first = self.check.expect is Verdict.REFUTED
        try:
            r, core = self._all_unsat(s, [*lits, *scope], cases)
        finally:
            self._fresh_first = False
        cheap = self._spent - before <= _units(MINIMIZE_MS)
        if self.bounded is not None:
            # a search among small layouts: only a counterexample means something. Once
            # one is known to exist, the shortest is looked for with the check's whole
            # budget: starting over on every layout would cost more
            if r == z3.sat:
                self._budget = max(self._budget, self._base + _units(self.timeout_ms))
                out = self._refute(s, lits, list(scope), profile)
                if out is not None and out.verdict is Verdict.REFUTED:
                    return out
            return Outcome(Verdict.UNKNOWN, 0, reason=f"no counterexample with at most {self.bounded} memory ranges")
        if r == z3.unknown:
            return Outcome(Verdict.UNKNOWN, 0, reason=_reason(s))
        if r == z3.unsat:
            core = [c for c in core if c.get_id() in names]
            core, undecided = self._minimize(s, core, scope, axioms_too=cheap, cases=cases)
            # an axiom about the architecture constants is a constant truth under every
            # profile the query ranges over: implied by the profile, never needed
            scoped = [profile] if profile is not None else (remaining or [])
            used = tuple(sorted(n for n in (names[c.get_id()] for c in core)
                                if not (scoped and all(self._true_under(n, p) for p in scoped))))
            unsure = tuple(n for n in used if n in undecided)
            prem = z3.Bool("premise", self.ctx)
            s.add(z3.Implies(prem, self.sub(self.premise)))
            incomplete = self._incomplete(s, [*lits, *scope, prem])
            if incomplete is None:
                return Outcome(Verdict.UNKNOWN, 0, reason=_reason(s))
            if incomplete:
                return Outcome(Verdict.HOLDS_TO_DEPTH, 0, assumptions_used=used,
                               depth=self.depth_limit if self.check.is_trace else self.low.unroll,
                               notes=tuple(incomplete), unsure=unsure)
            notes = self._second_opinion([z3.Or(*[v.formula for v in self.violations]), *scope], "unsat")
            return Outcome(Verdict.PROVED, 0, assumptions_used=used, notes=tuple(notes), unsure=unsure)
        if plits is not None and remaining is not None:
            # the profile this model refutes
            m = self._model(s)
            hit = next((p for p in remaining if z3.is_true(m.eval(self.low.profile_binding(p), model_completion=True))),
                       remaining[0])
            out = self._refute(s, lits, [plits[hit.name]], hit)
            if out is None:
                return Outcome(Verdict.UNKNOWN, 0, reason=_reason(s))
            if out.counterexample is not None:
                out = dataclasses.replace(out, counterexample={**out.counterexample, "profile": hit.name})
            return out
        out = self._refute(s, lits, list(scope), profile)
        if out is None:
            return Outcome(Verdict.UNKNOWN, 0, reason=_reason(s))
        return out

    def _cases(self, s: z3.Solver, split: bool) -> list[Any]:
        """The violation as cases decided one at a time: with ``split``, one per
        violation (a require or the claim at one node of the trace tree), else the whole
        disjunction. The disjunction is unsatisfiable exactly when every case is, and
        one query over all of them costs z3 several times what the cases cost together,
        one after another in the same solver: its search mixes boot orders and reads
        that share little but the layout (eager_no_uninit_read_folio on arm64-64k: 186
        million resource units as one case per trace node, 106 as one per require)."""
        groups: list[list[_Violation]] = [[v] for v in self.violations] if split else [self.violations]
        out = []
        for k, group in enumerate(groups):
            label = f"{group[0].label} #{k}" if split else "all"
            lit = z3.Bool(f"violation {label}", self.ctx)
            s.add(z3.Implies(lit, self.sub(z3.Or(*[v.formula for v in group]))))
            out.append(lit)
        return out

    def _all_unsat(self, s: z3.Solver, assumptions: list[Any], cases: list[Any]) -> tuple[Any, list[Any]]:
        """Whether every case is unsatisfiable under ``assumptions``: unsat with the union
        of the cases' cores, or the first other answer (sat leaves its model in ``s``)."""
        core: dict[int, Any] = {}
        for case in cases:
            r = self.query(s, *assumptions, case)
            if r != z3.unsat:
                return r, []
            for c in s.unsat_core():
                core.setdefault(c.get_id(), c)
        return z3.unsat, list(core.values())

    def _refute(self, s: z3.Solver, lits: list[Any], extra: list[Any],
                profile: ir.ProfileDef | None) -> Outcome | None:
        """After a satisfiable violation query: the counterexample with the shortest
        trace that is a real execution (no invariant stand-in, every loop ended within
        the unrolled iterations), or None if the solver gave up."""
        blockers = [*extra]
        blockers += [z3.Not(loop.tail) for loop in self.low.loops if loop.tail is not None]
        if not self.prefix_violation:
            blockers += [self.sub(z3.Not(loop.open)) for loop in self.low.loops if loop.tail is None]
        blockers += [self.sub(z3.Not(o)) for o in self.low.hard_open]
        self._models_only = True
        try:
            return self._refute_models(s, lits, extra, blockers, profile)
        finally:
            self._models_only = False
            self._fresh_model = None

    def _refute_models(self, s: z3.Solver, lits: list[Any], extra: list[Any], blockers: list[Any],
                       profile: ir.ProfileDef | None) -> Outcome | None:
        status, chosen = self._shortest(s, lits, blockers)
        if status == z3.unknown:
            return None
        round_note = []
        if chosen is not None and not self._roundest(s, lits, [chosen.formula, *blockers], profile):
            round_note = ["the counterexample is shown as the solver found it: none with memory and "
                          "chunks below 2^52 bytes was found within a fifth of the check's time"]
        if chosen is None:
            if extra:
                return None
            return Outcome(Verdict.HOLDS_TO_DEPTH, 0, depth=self.low.unroll, notes=(
                "no violation within the unrolled loop iterations; "
                "the loop invariants do not rule one out beyond them",))
        if chosen.what.get("kind") == "invariant":
            return Outcome(Verdict.UNKNOWN, 0, reason=(
                f"the loop invariant of `{chosen.what['fn']}` does not hold where the loop starts, for some arguments"))
        model = self._complete(s, lits, [chosen.formula, *blockers])
        if model is None:
            return Outcome(Verdict.UNKNOWN, 0, reason=(
                "a counterexample to the claim was found, but it could not be completed to a "
                "layout that satisfies the assumptions the claim does not mention"))
        cex = self._extract(model, chosen, profile)
        notes = round_note + self._second_opinion([chosen.formula, *blockers], "sat")
        return Outcome(Verdict.REFUTED, 0, counterexample=cex, notes=tuple(notes))

    def _complete(self, s: z3.Solver, lits: list[Any], goal: list[Any]) -> Any:
        """The solver's model, extended to the formulas ``_solver`` left out. They share
        no symbol with the claim's formulas, so the extension exists unless they
        contradict each other (the vacuity check reports that). The model's constants
        are kept where they can be: first all of them, then those the left-out formulas
        do not mention (a layout rounding constraint, which reaches every range of the
        layout, can have given values to ranges the claim never looks at), then none:
        any model of the whole query with the chosen violation is a counterexample."""
        model = self._model(s)
        if not self._dropped:
            return model
        full = z3.Solver(ctx=self.ctx)
        full.add(*s.assertions(), *self._dropped)
        consts = [d for d in model.decls() if d.arity() == 0]
        target = [*lits, *[self.sub(g) for g in goal]]
        for pinned in (consts, [d for d in consts if d.get_id() not in self._dropped_symbols], []):
            if _check(full, _units(COMPLETE_MS), [*target, *[d() == model[d] for d in pinned]]) == z3.sat:
                return full.model()
        return None

    def _roundest(self, s: z3.Solver, lits: list[Any], goal: list[Any], profile: ir.ProfileDef | None) -> bool:
        """Leave the solver with the most readable model it finds within a fifth of the
        check's time, each step on top of the last: memory and chunks below 2^52 bytes;
        below 1 TiB with node ids from 0; then ranges on 1 GiB boundaries with chunks of
        order <= MAX_PAGE_ORDER, else on 2 MiB boundaries; then fewer memory ranges, one
        at a time. A readability pass: it never changes the verdict, only which
        counterexample is shown. False when it found nothing better than the solver's
        first model."""
        ps = _int_binding(profile, "PAGE_SHIFT", 12)
        max_order = _int_binding(profile, "MAX_PAGE_ORDER", 10)
        uses_layout = ir.uses_layout(self.program, self.check, self.strategy)
        chunks = self._chunk_syms()

        def shape(align: int, below: int, order: int, node_ids: bool = True) -> list[Any]:
            out: list[Any] = []
            if uses_layout:
                out.append(self.low.layout.round(1 << max(align - ps, 0), 1 << max(below - ps, 0), node_ids))
            return out + self._small_chunks(chunks, 1 << max(below - ps, 0), order)

        # below 2^52 bytes: the most x86_64 and arm64 address (MAX_PHYSMEM_BITS)
        plausible = shape(ps, 52, 52 - ps, node_ids=False)
        if not plausible:
            return True  # nothing to make readable
        targets = [self.sub(g) for g in goal]
        # at most a fifth of the check's time (a quarter of what the attempt spent so
        # far), or READABLE_FLOOR_MS where that is less: a check decided in a few
        # milliseconds still deserves a readable counterexample
        budget, saved_ms = self._budget, self._query_ms
        # (a fresh bit-vector solver starts from nothing on every step: it gets more)
        floor = READABLE_FLOOR_FRESH_MS if self._fresh_bv else READABLE_FLOOR_MS
        share = max((self._spent - self._base) // 4, _units(floor))
        self._budget = min(budget, self._spent + share)
        self._query_ms = ROUNDING_MS
        kept: list[Any] = []
        last_sat = False
        try:
            steps = [("plausible", plausible), ("1 TiB", shape(ps, 40, 40 - ps))]
            if uses_layout:
                steps += [("1 GiB", shape(30, 40, max_order)), ("2 MiB", shape(21, 40, 40 - ps))]
            else:
                steps += [("small", shape(ps, 40, max_order))]
            for name, formulas in steps:
                lit = z3.Bool(f"readable {name}", self.ctx)
                s.add(z3.Implies(lit, z3.And(*formulas)))
                last_sat = self.query(s, *lits, *kept, lit, *targets) == z3.sat
                if last_sat:
                    kept.append(lit)
                    if name not in ("plausible", "1 TiB"):
                        break
                elif len(kept) < (1 if name == "plausible" else 2):
                    break  # nothing rounder is likely within the budget either
            # then the fewest memory ranges, one fewer at a time
            for _ in range(3 if uses_layout and kept else 0):
                if not last_sat:
                    break
                have = self.low.layout.existing(self._model(s))
                if have <= 1:
                    break
                lit = z3.Bool(f"readable {have - 1} ranges", self.ctx)
                s.add(z3.Implies(lit, self.low.layout.at_most(have - 1)))
                last_sat = self.query(s, *lits, *kept, lit, *targets) == z3.sat
                if last_sat:
                    kept.append(lit)
        finally:
            self._budget, self._query_ms = budget, saved_ms
        if not last_sat:
            # the model of the best step that succeeded (or the solver's first) again
            self.query(s, *lits, *kept, *targets)
        return bool(kept)

    def _chunk_syms(self) -> list[Any]:
        """The chunks of the claim: the chunk params it reads, the chunks it quantifies over."""
        used = ir.used_params(self.program, self.check, self.strategy)
        syms = [self.low.param(n) for n, pd in self.program.params.items()
                if pd.arg_types is None and n in used and _is_chunk(pd.ty)]
        return syms + [sk.sym for sk in self.low.skolems if sk.role == "witness" and _is_chunk(sk.ty)]

    def _small_chunks(self, syms: list[Any], below_pfns: int, max_order: int) -> list[Any]:
        """Each of the chunks ``syms`` of order <= max_order and ending below below_pfns."""
        out = []
        for c in syms:
            pfn, order = c.get("pfn"), c.get("order")
            wide = z3.ZeroExt(pfn.size() - order.size(), order) if order.size() < pfn.size() else order
            end = pfn + (z3.BitVecVal(1, pfn.size(), self.ctx) << wide)
            bound = z3.BitVecVal(below_pfns, pfn.size(), self.ctx)
            out.append(self.sub(z3.And(z3.ULE(order, max_order), z3.ULT(pfn, bound), z3.ULE(end, bound))))
        return out

    def _second_opinion(self, goal: list[Any], answer: str) -> list[str]:
        """With --cross-check: the whole query (every lazy instance) solved by cvc5."""
        if not self.cross_check:
            return []
        from khospec.engine.crosscheck import cross_check

        formulas = [self.sub(h) for h in self.hard] + [self.sub(f) for f in self.lazy] + self._scope_defs
        formulas += list(self.tracked.values()) + [self.sub(g) for g in goal]
        return [cross_check(formulas, answer, self.timeout_ms)]

    def vacuity(self, profile: ir.ProfileDef | None) -> Outcome | None:
        """None if the assumptions and premise are satisfiable and every relevant step
        runs; otherwise the vacuous outcome (or unknown)."""
        t0 = time.perf_counter()
        self._query_ms = self.timeout_ms
        self._budget = self._spent + _units(self.timeout_ms)
        s, lits = self._solver(profile, self.timeout_ms)
        names = self._names()
        prem = z3.Bool("premise", self.ctx)
        s.add(z3.Implies(prem, self.sub(self.premise)))
        r = self.query(s, *lits, prem)
        if r == z3.unknown:
            return Outcome(Verdict.UNKNOWN, time.perf_counter() - t0, reason="vacuity check: " + _reason(s))
        if r == z3.unsat:
            core = [c for c in s.unsat_core() if c.get_id() in names]
            core, _ = self._minimize(s, core, [prem])
            used = tuple(sorted(names[c.get_id()] for c in core))
            what = ", ".join(used) if used else "the axioms"
            return Outcome(Verdict.VACUOUS, time.perf_counter() - t0, assumptions_used=used,
                           reason=f"no layout and profile satisfy {what} together with the claim's premise")
        if self.check.is_trace:
            todo = [st for st in self.relevant_steps if st in self.reach]
            dead = [st for st in self.relevant_steps if st not in self.reach]
            while todo:
                lit = z3.Bool(f"reach {len(todo)}", self.ctx)
                s.add(z3.Implies(lit, self.sub(z3.Or(*[self.reach[st] for st in todo]))))
                r = self.query(s, *lits, lit)
                if r == z3.unknown:
                    return Outcome(Verdict.UNKNOWN, time.perf_counter() - t0, reason="vacuity check: " + _reason(s))
                if r == z3.unsat:
                    dead += todo
                    break
                m = s.model()
                todo = [st for st in todo if not z3.is_true(m.eval(self.sub(self.reach[st]), model_completion=True))]
            if dead or not self.relevant_steps:
                what = ", ".join(sorted(dead)) if dead else "no step"
                return Outcome(Verdict.VACUOUS, time.perf_counter() - t0, assumptions_used=(),
                               reason=f"the claim relies on {what}, which never runs in a trace the assumptions allow"
                               if dead else "no step can violate the claim")
        return None

    _budget = 1 << 62  # the context's resource count at which this attempt's queries stop
    _base = 0  # the context's resource count when this attempt started
    _spent = 0  # the context's resource count after the last query
    _query_ms = 60000
    prefix_violation = False

    def _narrowed(self, o: Outcome, profile: ir.ProfileDef) -> Outcome:
        """A proof shared by several profiles, for one of them: without the axioms
        its constants make true."""
        if o.assumptions_used is None:
            return o
        used = tuple(n for n in o.assumptions_used if not self._true_under(n, profile))
        return dataclasses.replace(o, assumptions_used=used, unsure=tuple(n for n in o.unsure if n in used))

    def _true_under(self, name: str, profile: ir.ProfileDef) -> bool:
        value = self.meaning.get(name)
        if value is None:
            return False
        pairs = self.low.constants(profile)
        return bool(z3.is_true(z3.simplify(z3.substitute(value, *pairs) if pairs else value)))

    def _minimize(self, s: z3.Solver, core: list[Any], extra: list[Any],
                  axioms_too: bool = True, cases: list[Any] | None = None) -> tuple[list[Any], list[str]]:
        """Deletion over the solver's core: a member whose absence keeps the query unsat
        goes, with whatever else the smaller core leaves out. The check's own assumptions
        are always tried; axioms only with ``axioms_too`` (when the proof itself was
        cheap: otherwise each trial costs about as much and rarely ends in time). A
        member not tried, or whose trial the budget cannot decide, is kept (a name too
        many is an over-statement; a name too few would be a false claim) and comes back
        in the second list (a name there may still leave with a later, smaller core), so
        that the result can say the set may not be minimal. With ``cases``, a member goes
        only if every case stays unsat without it, within one trial's budget."""
        saved = self._query_ms
        self._query_ms = MINIMIZE_MS
        chosen = set(self.check.assuming)
        kept = list(core)
        undecided: list[str] = []
        for c in sorted(core, key=str):
            if not any(k.eq(c) for k in kept):
                continue
            if not axioms_too and str(c) not in chosen:
                undecided.append(str(c))
                continue
            trial = [k for k in kept if not k.eq(c)]
            if cases is None:
                r = self.query(s, *trial, *extra)
                sub_core = s.unsat_core() if r == z3.unsat else []
            else:
                stop = self._budget
                self._budget = min(stop, self._spent + _units(MINIMIZE_MS))
                r, sub_core = self._all_unsat(s, [*trial, *extra], cases)
                self._budget = stop
            if r == z3.unsat:
                sub = {x.get_id() for x in sub_core}
                kept = [k for k in trial if k.get_id() in sub]
            elif r == z3.unknown:
                undecided.append(str(c))
        self._query_ms = saved
        return kept, undecided

    def _incomplete(self, s: z3.Solver, lits: list[Any]) -> list[str] | None:
        notes: list[str] = []
        checks: list[tuple[Any, str]] = []
        for loop in self.low.loops:
            if loop.tail is None and not z3.is_false(z3.simplify(loop.open)):
                checks.append((loop.open, f"the loop at {loop.span} may run more than {self.low.unroll} "
                                          "iterations and no invariant covers the rest"))
            if loop.consecution is not None:
                checks.append((loop.consecution, f"the invariants of the loop at {loop.span} are not inductive"))
        for o in self.low.hard_open:
            checks.append((o, "a loop compared whole (f(...) == [...]) may not end within the unrolling"))
        if self.trace_open:
            checks.append((z3.Or(*self.trace_open), f"some trace is longer than {self.depth_limit} steps"))
        for formula, note in checks:
            r = self.query(s, *lits, self.sub(formula))
            if r == z3.unknown:
                return None
            if r == z3.sat:
                notes.append(note)
        return notes

    def _shortest(self, s: z3.Solver, lits: list[Any], blockers: list[Any]) -> tuple[Any, _Violation | None]:
        """The violation with the shortest trace, in a real execution."""
        by_depth = sorted({v.depth for v in self.violations})
        for d in by_depth:
            group = [v for v in self.violations if v.depth == d]
            lit = z3.Bool(f"violation at depth {d}", self.ctx)
            s.add(z3.Implies(lit, self.sub(z3.Or(*[v.formula for v in group]))))
            r = self.query(s, *lits, lit, *blockers)
            if r == z3.unknown:
                return r, None
            if r == z3.sat:
                m = self._model(s)
                for v in group:
                    if z3.is_true(m.eval(self.sub(v.formula), model_completion=True)):
                        return r, v
        return z3.unsat, None

    # -- counterexamples
    def _extract(self, model: z3.ModelRef, v: _Violation, profile: ir.ProfileDef | None) -> dict[str, Any]:
        low = self.low

        def val(sym: Any, ty: Any) -> Any:
            return bv.model_value(model, _subst_sym(sym, self.sub), ty)

        subst: dict[str, int | bool] = dict(profile.bindings) if profile is not None else {}
        params: dict[str, Any] = {}
        for name, pd in self.program.params.items():
            if pd.arg_types is None:
                params[name] = subst[name] if name in subst else val(low.param(name), pd.ty)
        layout = low.layout.extract(model)
        pfuncs: dict[str, list[list[Any]]] = {}
        seen: set[tuple[str, tuple[Any, ...]]] = set()
        for name, pd in self.program.params.items():
            if pd.arg_types is not None and len(pd.arg_types) == 1:
                for n in layout["nodes"]:
                    arg = bv.const(n, pd.arg_types[0], self.ctx)
                    value = val(low.param(name, (arg,)), pd.ty)
                    seen.add((name, (n,)))
                    pfuncs.setdefault(name, []).append([[n], value])
        for name, args, app in list(low.param_apps):
            pd = self.program.params[name]
            assert pd.arg_types is not None
            avals = tuple(val(a, t) for a, t in zip(args, pd.arg_types, strict=True))
            if (name, avals) in seen:
                continue
            seen.add((name, avals))
            pfuncs.setdefault(name, []).append([list(avals), val(app, pd.ty)])
        path = (v.node.path(lambda pc: z3.is_true(model.eval(self.sub(pc), model_completion=True)))
                if v.node is not None else [])
        witnesses = []
        for sk in low.skolems:
            witnesses.append({
                "name": sk.name, "site": sk.site, "label": sk.label, "role": sk.role,
                "type": str(sk.ty), "value": val(sk.sym, sk.ty),
            })
        initial = []
        seen_init: set[tuple[str, int]] = set()
        for path_name, idx, gval in low.garbage_apps:
            i = model.eval(self.sub(idx), model_completion=True).as_long()
            if (path_name, i) in seen_init:
                continue
            seen_init.add((path_name, i))
            r = model.eval(self.sub(gval), model_completion=True)
            initial.append({"field": path_name, "index": i,
                            "value": z3.is_true(r) if z3.is_bool(r) else r.as_long()})
        return {
            "params": params,
            "param_functions": pfuncs,
            "layout": layout,
            "witnesses": witnesses,
            "initial": initial,
            "trace": path,
            "violated": dict(v.what),
        }


def _int_binding(p: ir.ProfileDef | None, name: str, default: int) -> int:
    """The profile's number for ``name``, or ``default`` where it leaves it symbolic."""
    v = dict(p.bindings).get(name) if p is not None else None
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _is_chunk(ty: Any) -> bool:
    return isinstance(ty, StructType) and [n for n, _ in ty.fields] == ["pfn", "order"]


def _subst_sym(v: Any, sub: Any) -> Any:
    if isinstance(v, bv.StructVal):
        return bv.StructVal(v.ty, tuple(_subst_sym(f, sub) for f in v.fields))
    return sub(v)


def _mentions(nodes: tuple[Any, ...], types: tuple[type, ...], program: ir.Program | None = None,
              strategy: str | None = None, pred: Any = None) -> bool:
    """Whether a node of one of ``types`` (or satisfying ``pred``) occurs under ``nodes``,
    following function calls when ``program`` is given."""
    return any(isinstance(n, types) or (pred is not None and pred(n)) for n in ir.walk(nodes, program, strategy))


def _units(ms: int) -> int:
    return ms * RLIMIT_PER_SECOND // 1000


def _check(s: z3.Solver, units: int, assumptions: Any) -> Any:
    s.set("rlimit", units)
    s.set("timeout", max(1, units * 1000 * WALL_FACTOR // RLIMIT_PER_SECOND))
    return s.check(*assumptions)


def _reason(s: z3.Solver) -> str:
    r = s.reason_unknown()
    # the bit-blasting solver says "sat.canceled" where the others say "canceled"
    if r in ("timeout", "canceled", "sat.canceled", "max. resource limit exceeded"):
        return "time limit reached (the solver's budget for --timeout ran out)"
    return r or "solver gave up"


def _cone(seed: list[Any], formulas: list[Any]) -> tuple[set[int], set[int]]:
    """Indices of the formulas connected to ``seed`` through shared uninterpreted
    symbols (constants and functions), transitively; and the decl ids of the symbols
    of the formulas left out."""
    index: dict[int, int] = {}  # symbol's decl id -> bit
    memo: dict[int, int] = {}  # term id -> bit set of the symbols under it

    def symbols(f: Any) -> int:
        stack = [(f, False)]
        while stack:
            e, done = stack.pop()
            k = e.get_id()
            if k in memo and not done:
                continue
            kids = e.children() if z3.is_app(e) else [e.body()] if z3.is_quantifier(e) else []
            if not done:
                stack.append((e, True))
                stack.extend((c, False) for c in kids if c.get_id() not in memo)
                continue
            bits = 0
            for c in kids:
                bits |= memo[c.get_id()]
            if z3.is_app(e) and e.decl().kind() == z3.Z3_OP_UNINTERPRETED:
                bits |= 1 << index.setdefault(e.decl().get_id(), len(index))
            memo[k] = bits
        return memo[f.get_id()]

    reach = 0
    for f in seed:
        reach |= symbols(f)
    sets = [symbols(f) for f in formulas]
    keep: set[int] = set()
    grew = True
    while grew:
        grew = False
        for j, bits in enumerate(sets):
            if j not in keep and (bits & reach or not bits):
                keep.add(j)
                reach |= bits
                grew = True
    left_out = 0
    for j, bits in enumerate(sets):
        if j not in keep:
            left_out |= bits
    return keep, {decl for decl, bit in index.items() if left_out >> bit & 1}


def _decided(o: Outcome) -> bool:
    return o.verdict in (Verdict.PROVED, Verdict.REFUTED, Verdict.VACUOUS)


@dataclass(frozen=True)
class RunKey:
    """Which lowering of the check a query runs on: one CheckRun, and one z3 context, per
    key. A z3 context per profile (``profile``): the terms an earlier profile's queries
    created would renumber this one's, and z3's search depends on the numbering, so a
    verdict near its budget would depend on which profiles ran before it."""

    page_shift: int  # 0: the architecture's constants symbolic
    bounded: bool = False  # phase B: loops unrolled, no invariants
    vacuity: bool = False  # the smaller lowering of the vacuity check
    small: bool = False  # the search among small generated layouts
    profile: str = ""  # "": shared by every profile


class SearchPlan:
    """The order in which ``run`` tries to decide a check for its profiles.

    The search order follows the check's expectation, which only decides what is tried
    first: a check expected refuted starts with the small-layout search, one expected
    proved with the proof for every profile at once. Either way every path ends in the
    general query, so the verdict does not depend on the expectation. A query that stays
    undecided is tried on small generated layouts, then on ``real_layouts`` (the layouts
    of real machines), before it is called unknown."""

    def __init__(self, program: ir.Program, check: ir.CheckDef, strategy: str | None, timeout_ms: int,
                 unroll: int, layout: ir.LayoutDef | None, cross_check: bool,
                 real_layouts: tuple[ir.LayoutDef, ...]) -> None:
        self.program = program
        self.check = check
        self.strategy = strategy
        self.timeout_ms = timeout_ms
        self.unroll = unroll
        self.layout = layout
        self.cross_check = cross_check
        self.real_layouts = real_layouts
        self.expect_refuted = check.expect is Verdict.REFUTED
        self.small_layouts = layout is None and ir.uses_layout(program, check, strategy)
        self._runs: dict[RunKey, CheckRun] = {}

    def lowering(self, key: RunKey) -> CheckRun:
        if key not in self._runs:
            self._runs[key] = CheckRun(
                self.program, self.check, self.strategy, self.layout, key.page_shift or None, self.timeout_ms,
                self.unroll if (key.bounded or key.small) else 0, allow_tail=not (key.bounded or key.small),
                vacuity_only=key.vacuity,
                bounded=SMALL_LAYOUT_RANGES if key.small and self.layout is None else None,
                cross_check=self.cross_check and not key.vacuity)
        return self._runs[key]

    def page_shift(self, p: ir.ProfileDef | None) -> int | None:
        return None if self.layout is None else _int_binding(p, "PAGE_SHIFT", -1)

    def finish(self, p: ir.ProfileDef | None, o: Outcome, ps: int | None) -> Outcome:
        """A decided outcome with its notes, and a proof checked for vacuity."""
        if o.unsure:
            o = o.noted(f"assumptions_used may name more than the proof needs: it was not shown to "
                        f"hold without {', '.join(o.unsure)} (a {MINIMIZE_MS // 1000} s trial each; "
                        "axioms are tried only when the proof took less)", first=True)
        if o.verdict in (Verdict.PROVED, Verdict.HOLDS_TO_DEPTH):
            # a premise over loops: satisfied within the unrolled iterations settles it;
            # otherwise only the invariants' over-approximation can show it is empty
            bounded = self.lowering(RunKey(ps or 0, bounded=True, vacuity=True))
            vac = bounded.vacuity(p)
            if vac is not None and vac.verdict is Verdict.VACUOUS and bounded.low.loops:
                vac = self.lowering(RunKey(ps or 0, vacuity=True)).vacuity(p)
            if vac is not None:
                o = Outcome(vac.verdict, o.time_s + vac.time_s, vac.assumptions_used,
                            reason=vac.reason, notes=o.notes)
        return o

    def all_at_once(self, profiles: list[ir.ProfileDef]) -> dict[str, Outcome]:
        """Step 1: every profile in one solver (a proof for all of them at once, or a
        counterexample per refuted profile); the decided ones, finished."""
        # a short budget: where the profiles together are much harder than one by one
        # (the long trace proofs), little is lost before solving them one by one
        together = self.lowering(RunKey(0)).attempt_profiles(profiles, min(self.timeout_ms, SYMBOLIC_ATTEMPT_MS))
        every = all(_decided(together[p.name]) for p in profiles)
        out: dict[str, Outcome] = {}
        for p in profiles:
            if _decided(together[p.name]):
                t2 = time.perf_counter()
                o = self.finish(p, together[p.name], None)
                if every:
                    o = dataclasses.replace(o, time_s=together[p.name].time_s + time.perf_counter() - t2)
                out[p.name] = o
        return out

    def one_profile(self, p: ir.ProfileDef | None) -> Outcome:
        """Step 2: one profile, in its own contexts."""
        t1 = time.perf_counter()
        ps = self.page_shift(p)
        if ps == -1:
            return Outcome(Verdict.UNKNOWN, 0.0, reason="a concrete layout needs a profile with a fixed PAGE_SHIFT")
        own = p.name if p is not None else ""
        o: Outcome | None = None
        if self.small_layouts and self.expect_refuted:
            small = self.lowering(RunKey(ps or 0, small=True, profile=own)).attempt(
                p, min(self.timeout_ms, SMALL_LAYOUT_MS))
            if small.verdict is Verdict.REFUTED:
                o = small
        if o is None:
            a = self.lowering(RunKey(ps or 0, profile=own))
            o = a.attempt(p)
            if (not _decided(o) and o.verdict is not Verdict.UNKNOWN and a.low.loops
                    and self.check.claim.kind == "holds"):
                b = self.lowering(RunKey(ps or 0, bounded=True, profile=own)).attempt(p)
                if _decided(b):
                    o = b
        if o.verdict is Verdict.UNKNOWN and self.small_layouts and not self.expect_refuted:
            # the expectation only orders the work: an undecided query gets the
            # small-layout search too before it is called unknown
            small = self.lowering(RunKey(ps or 0, small=True, profile=own)).attempt(
                p, min(self.timeout_ms, SMALL_LAYOUT_MS))
            if small.verdict is Verdict.REFUTED:
                o = small.noted("the general query was undecided; this counterexample comes from the "
                                f"search among layouts of at most {SMALL_LAYOUT_RANGES} memory ranges", first=True)
        if o.verdict is Verdict.UNKNOWN and self.small_layouts:
            o = self._on_real_layouts(p) or o
        if o.verdict is Verdict.UNKNOWN:
            o = o.noted("to decide it: a larger budget (--timeout), a concrete layout (`on LAYOUT`, "
                        "--layout), or a bound on the traces (`depth N`)")
        o = self.finish(p, o, ps)
        return dataclasses.replace(o, time_s=time.perf_counter() - t1)

    def _on_real_layouts(self, p: ir.ProfileDef | None) -> Outcome | None:
        for real in self.real_layouts:
            # the same check on a real machine's memory map: a refutation there is
            # a counterexample as good as any (the layout is one a machine has)
            try:
                on_real = CheckRun(self.program, self.check, self.strategy, real, _int_binding(p, "PAGE_SHIFT", 12),
                                   self.timeout_ms, 0).attempt(p, min(self.timeout_ms, SMALL_LAYOUT_MS))
            except LayoutLimit:
                continue  # not on this profile's pages
            if on_real.verdict is Verdict.REFUTED:
                return on_real.noted("the general query was undecided; this counterexample is the "
                                     f"memory map of a real machine, layout `{real.name}`", first=True)
        return None

    def run(self, profiles: list[ir.ProfileDef | None]) -> list[tuple[ir.ProfileDef | None, Outcome]]:
        out: dict[int, Outcome] = {}
        named = [p for p in profiles if p is not None]
        if self.layout is None and len(profiles) > 1 and not self.expect_refuted and len(named) == len(profiles):
            decided = self.all_at_once(named)
            out.update({i: decided[p.name] for i, p in enumerate(named) if p.name in decided})
        for i, p in enumerate(profiles):
            if i not in out:
                out[i] = self.one_profile(p)
        return [(p, out[i]) for i, p in enumerate(profiles)]


def run(program: ir.Program, check: ir.CheckDef, strategy: str | None,
        profiles: list[ir.ProfileDef | None], timeout_ms: int = 60000, unroll: int = 3,
        layout: ir.LayoutDef | None = None, cross_check: bool = False,
        real_layouts: tuple[ir.LayoutDef, ...] = ()
        ) -> list[tuple[ir.ProfileDef | None, Outcome]]:
    """Decide ``check`` under ``strategy`` for each profile (see the module docstring and
    SearchPlan for the order of the work)."""
    t_start = time.perf_counter()
    try:
        return SearchPlan(program, check, strategy, timeout_ms, unroll, layout, cross_check, real_layouts).run(profiles)
    except LayoutLimit as exc:
        return [(p, Outcome(Verdict.UNKNOWN, time.perf_counter() - t_start, reason=str(exc))) for p in profiles]


__all__ = ["LowerError", "Outcome", "RunKey", "SearchPlan", "run"]
