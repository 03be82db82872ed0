"""Stage 4d: decide one check under one strategy, for each of its profiles.

For a check and a strategy the formulas are built once (engine/formulas.py, over
engine/lower.py), with the architecture's constants symbolic; the questions below are
asked through engine/query.py. Then:

1. If the check runs for several profiles, try to prove it with the constants left
   symbolic: a proof there holds for every profile at once, and its unsat core names
   the build checks it needed (prelude axioms such as ``build_check``).
2. Otherwise, per profile, the profile's constants are substituted (shifts by a known
   PAGE_SHIFT are wires, not barrel shifters) and the violation formula is solved:
   - satisfiable: a model that needs no loop-invariant stand-in and finishes every
     loop within the unrolling is a counterexample (layout, chunks, trace, violated
     condition), read off the model by engine/extract.py and replayed by the caller;
   - unsatisfiable: ``proved`` if the argument is complete (loops fully unrolled or
     their invariants inductive, trace tree closed), ``holds_to_depth`` otherwise;
     ``assumptions_used`` is the unsat core over the named assumptions and axioms,
     minimised by deletion.
   A check over traces expected refuted asks first for the shortest violation in a
   real execution, which is the refutation when there is one (``_violation_first``).
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
from khospec.counterexample import ModelData
from khospec.engine.extract import extract
from khospec.engine.formulas import CheckFormulas, Violation
from khospec.engine.layout import LayoutLimit
from khospec.engine.lower import LowerError
from khospec.engine.query import MINIMIZE_MS, Queries, units, unknown_reason
from khospec.engine.state import LoopInfo
from khospec.engine.terms import bv_value, conj, disj, implies, is_false, is_true, negate, ule, ult
from khospec.results import Verdict
from khospec.types import StructType

SYMBOLIC_ATTEMPT_MS = 5000  # per profile, for all profiles in one solver
SMALL_LAYOUT_MS = 20000
SMALL_LAYOUT_RANGES = 3
ROUNDING_MS = 3000
READABLE_FLOOR_MS = 250
READABLE_FLOOR_FRESH_MS = 2000
# whether every state of a loop has an exit state: a small quantified query per loop
EXIT_GAP_MS = 2000


@dataclass(frozen=True)
class Outcome:
    """What the engine found for one (check, strategy, profile); z3-free."""

    verdict: Verdict
    time_s: float
    assumptions_used: tuple[str, ...] | None = None
    counterexample: ModelData | None = None
    reason: str | None = None
    depth: int | None = None
    notes: tuple[str, ...] = ()
    unsure: tuple[str, ...] = ()  # names in assumptions_used not shown to be needed

    def noted(self, note: str, first: bool = False) -> Outcome:
        return dataclasses.replace(self, notes=(note, *self.notes) if first else (*self.notes, note))


class CheckRun:
    """The decisions about one check under one strategy, shared by its profiles: what to
    ask of its formulas (``engine/formulas.py``) and in which order, through the queries
    of ``engine/query.py``, and what the answers mean."""

    def __init__(self, program: ir.Program, check: ir.CheckDef, strategy: str | None,
                 layout: ir.LayoutDef | None, page_shift: int | None, timeout_ms: int,
                 unroll: int, allow_tail: bool = True, vacuity_only: bool = False,
                 bounded: int | None = None, cross_check: bool = False) -> None:
        self.program = program
        self.check = check
        self.strategy = strategy
        self.timeout_ms = timeout_ms
        self.bounded = bounded
        self.cross_check = cross_check
        self.f = CheckFormulas(program, check, strategy, layout, page_shift, unroll, allow_tail,
                               vacuity_only, bounded)
        self.q = Queries(self.f)
        self.ctx = self.f.ctx
        self.low = self.f.low
        # the profile definitions of an all-profiles query, for the second opinion
        self._scope_defs: list[Any] = []

    def attempt(self, profile: ir.ProfileDef | None, timeout_ms: int | None = None) -> Outcome:
        """Decide for one profile within ``timeout_ms`` overall (default: the check's)."""
        t0 = time.perf_counter()
        self.q.start(timeout_ms or self.timeout_ms, self.timeout_ms)
        try:
            out = self._attempt(profile, timeout_ms or self.timeout_ms)
        except z3.Z3Exception as exc:
            out = Outcome(Verdict.UNKNOWN, 0.0, reason=f"solver error: {exc}")
        return dataclasses.replace(out, time_s=time.perf_counter() - t0)

    def _attempt(self, profile: ir.ProfileDef | None, timeout_ms: int) -> Outcome:
        if not self.f.violations:
            return Outcome(Verdict.PROVED, 0, assumptions_used=(), notes=("the claim is never evaluated",))
        s, lits = self.q.solver(profile, timeout_ms, self.f.seed())
        return self._decide(s, lits, [], profile)

    def attempt_profiles(self, profiles: list[ir.ProfileDef], timeout_ms: int) -> dict[str, Outcome]:
        """All profiles in one solver: the architecture constants stay symbolic and the
        query says "one of these profiles". Unsat proves every remaining profile at once;
        a model names the profile it refutes, which then leaves the disjunction."""
        t0 = time.perf_counter()
        self.q.start(timeout_ms * len(profiles), timeout_ms * len(profiles))
        out: dict[str, Outcome] = {}
        try:
            plits = {p.name: z3.Bool(f"profile {p.name}", self.ctx) for p in profiles}
            defs = [implies(plits[p.name], self.low.profile_binding(p)) for p in profiles]
            s, lits = self.q.solver(None, self.q.query_ms, self.f.seed() + defs)
            for definition in defs:
                s.add(definition)
                self._scope_defs.append(definition)
            remaining = list(profiles)
            while remaining:
                some = z3.Bool(f"one of {len(remaining)} profiles", self.ctx)
                definition = implies(some, disj(*[plits[p.name] for p in remaining]))
                s.add(definition)
                self._scope_defs.append(definition)
                if not self.f.violations:
                    o = Outcome(Verdict.PROVED, 0, assumptions_used=(), notes=("the claim is never evaluated",))
                    out.update({p.name: o for p in remaining})
                    break
                o = self._decide(s, lits, [some], None, plits=plits, remaining=remaining)
                if o.verdict is Verdict.REFUTED and o.counterexample is not None:
                    cex = o.counterexample.copy()
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
        if self.check.is_trace and self.check.expect is Verdict.REFUTED and plits is None:
            early = self._violation_first(s, lits, scope, profile)
            if early is not None:
                return early
        names = self.f.names()
        before = self.q.spent
        cases = self._cases(s)
        case_cores: dict[int, list[Any]] = {}
        # a check expected refuted asks a fresh solver first (query): its model is the
        # answer if it finds one; the expectation only orders the work
        self.q.fresh_first = self.check.expect is Verdict.REFUTED
        try:
            r, core = self.q.all_unsat(s, [*lits, *scope], cases, case_cores)
        finally:
            self.q.fresh_first = False
        cheap = self.q.spent - before <= units(MINIMIZE_MS)
        if self.bounded is not None:
            # a search among small layouts: only a counterexample means something. Once
            # one is known to exist, the shortest is looked for with the check's whole
            # budget: starting over on every layout would cost more
            if r == z3.sat:
                self.q.budget = max(self.q.budget, self.q.base + units(self.timeout_ms))
                out = self._refute(s, lits, list(scope), profile, known=self.q.model(s))
                if out is not None and out.verdict is Verdict.REFUTED:
                    return out
            return Outcome(Verdict.UNKNOWN, 0, reason=f"no counterexample with at most {self.bounded} memory ranges")
        if r == z3.unknown:
            return Outcome(Verdict.UNKNOWN, 0, reason=unknown_reason(s))
        if r == z3.unsat:
            core = [c for c in core if c.get_id() in names]
            core, undecided = self.q.minimize(s, core, scope, axioms_too=cheap, cases=cases, cores=case_cores)
            # an axiom about the architecture constants is a constant truth under every
            # profile the query ranges over: implied by the profile, never needed
            scoped = [profile] if profile is not None else (remaining or [])
            used = tuple(sorted(n for n in (names[c.get_id()] for c in core)
                                if not (scoped and all(self.f.true_under(n, p) for p in scoped))))
            unsure = tuple(n for n in used if n in undecided)
            prem = z3.Bool("premise", self.ctx)
            s.add(implies(prem, self.q.sub(self.f.premise)))
            incomplete = self._incomplete(s, [*lits, *scope, prem])
            if incomplete is None:
                return Outcome(Verdict.UNKNOWN, 0, reason=unknown_reason(s))
            if incomplete:
                return Outcome(Verdict.HOLDS_TO_DEPTH, 0, assumptions_used=used,
                               depth=self.f.depth_limit if self.check.is_trace else self._depth(),
                               notes=tuple(incomplete), unsure=unsure)
            notes = self._second_opinion([disj(*[v.formula for v in self.f.violations]), *scope], "unsat")
            return Outcome(Verdict.PROVED, 0, assumptions_used=used, notes=tuple(notes), unsure=unsure)
        if plits is not None and remaining is not None:
            # the profile this model refutes
            m = self.q.model(s)
            hit = next((p for p in remaining if is_true(m.eval(self.low.profile_binding(p), model_completion=True))),
                       remaining[0])
            out = self._refute(s, lits, [plits[hit.name]], hit)
            if out is None:
                return Outcome(Verdict.UNKNOWN, 0, reason=unknown_reason(s))
            if out.counterexample is not None:
                out = dataclasses.replace(out, counterexample={**out.counterexample, "profile": hit.name})
            return out
        out = self._refute(s, lits, list(scope), profile, known=self.q.model(s))
        if out is None:
            return Outcome(Verdict.UNKNOWN, 0, reason=unknown_reason(s))
        return out

    def _violation_first(self, s: z3.Solver, lits: list[Any], scope: list[Any],
                         profile: ir.ProfileDef | None) -> Outcome | None:
        """A trace check expected refuted: the shortest violation in a real execution
        (``_refute``), looked for before the decision; None when it finds none, and the
        decision goes on with the budget left. The search asks depth by depth what the
        decision asks node by node, so asking it first spares the decision: the
        library's 102 trace refutations took 65 s instead of 129 s, with the same
        verdicts (`lazy_tail_no_uninit_read` on arm64-4k: 1.3 s instead of 8.5 s).
        Other checks keep the decision first: their 55 refutations (mostly loops of pure
        bit-vectors, solved fresh, engine/freshbv.py) took twice as long the other way
        round, and two came back unknown.

        Outside the search among small layouts, where only a counterexample means
        anything, the search may take half of the budget left, so that a check expected
        refuted that holds keeps the other half for its proof."""
        budget = self.q.budget
        if self.bounded is None:
            self.q.budget = self.q.spent + (budget - self.q.spent) // 2
        try:
            out = self._refute(s, lits, list(scope), profile)
        finally:
            self.q.budget = budget
        return out if out is not None and out.verdict is Verdict.REFUTED else None

    def _cases(self, s: z3.Solver) -> list[Any]:
        """The violation as cases decided one at a time: for a check over traces, one
        per violated condition (a require or the claim, at the nodes of the trace tree
        where it reads the same state); for a claim over plain formulas, which has one
        violation or few, the whole disjunction. The disjunction is unsatisfiable
        exactly when every case is, and one query over all of them costs z3 several
        times what the cases cost together, one after another in the same solver: its
        search mixes boot orders and reads that share little but the layout
        (eager_no_uninit_read_folio on arm64-64k: 186 million resource units as one case
        per trace node, 106 as one per require). A model is found faster case by case
        too: the search among small layouts of `no_uninit_read_pages_72` spent its whole
        20 s on the disjunction, then the general query found a layout of 13 ranges on 5
        nodes; case by case the search finds a layout of one range, and the check takes
        6 s instead of 71 s.

        Violations of one condition (the same term: the require or claim reads the same
        state at several nodes, on different boot orders) are one case: the question is
        the same, only the path to it differs, and z3 answers it once for all of them
        (six trace proofs of the library: 294 million resource units instead of 445;
        `eager_no_uninit_read_folio` has 16 violations and 7 conditions; the whole
        library about 5% less CPU time over four pairs of runs, BENCHMARKS.md)."""
        split = self.check.is_trace
        groups: list[list[Violation]] = [self.f.violations]
        if split:
            by_condition: dict[Any, list[Violation]] = {}
            for k, v in enumerate(self.f.violations):
                key = v.condition.get_id() if v.condition is not None else ("alone", k)
                by_condition.setdefault(key, []).append(v)
            groups = list(by_condition.values())
        out = []
        for k, group in enumerate(groups):
            label = f"{group[0].label} #{k}" if split else "all"
            lit = z3.Bool(f"violation {label}", self.ctx)
            s.add(implies(lit, self.q.sub(disj(*[v.formula for v in group]))))
            out.append(lit)
        return out

    def _refute(self, s: z3.Solver, lits: list[Any], extra: list[Any],
                profile: ir.ProfileDef | None, known: Any = None) -> Outcome | None:
        """After a satisfiable violation query: the counterexample with the shortest
        trace that is a real execution (no invariant stand-in; every loop ended within
        the unrolled iterations, but a loop whose outcome nothing reads, which may run on
        after what it emitted or the require that failed), or None if the solver gave up.
        ``known``: the model the satisfiable query left, if any."""
        blockers = [*extra]
        blockers += [negate(loop.tail) for loop in self.low.loops if loop.tail is not None]
        blockers += [self.q.sub(negate(o)) for o in self.f.running_on()]
        self.q.models_only = True
        try:
            return self._refute_models(s, lits, extra, blockers, profile, known)
        finally:
            self.q.models_only = False
            self.q.fresh_model = None

    def _refute_models(self, s: z3.Solver, lits: list[Any], extra: list[Any], blockers: list[Any],
                       profile: ir.ProfileDef | None, known: Any = None) -> Outcome | None:
        status, chosen = self._shortest(s, lits, blockers, known)
        if status == z3.unknown:
            return None
        round_note = []
        if chosen is not None and not self._roundest(s, lits, [chosen.formula, *blockers], profile):
            round_note = ["the counterexample is shown as the solver found it: none with memory and "
                          "chunks below 2^52 bytes was found within a fifth of the check's time"]
        if chosen is None:
            if extra:
                return None
            return Outcome(Verdict.HOLDS_TO_DEPTH, 0, depth=self._depth(), notes=(
                "no violation within the unrolled loop iterations; "
                "the loop invariants do not rule one out beyond them",))
        if chosen.what["kind"] == "invariant":
            return Outcome(Verdict.UNKNOWN, 0, reason=(
                f"the loop invariant of `{chosen.what['fn']}` does not hold where the loop starts, for some arguments"))
        model = self.q.complete(s, lits, [chosen.formula, *blockers])
        if model is None:
            return Outcome(Verdict.UNKNOWN, 0, reason=(
                "a counterexample to the claim was found, but it could not be completed to a "
                "layout that satisfies the assumptions the claim does not mention"))
        cex = extract(self.f, self.q.sub, model, chosen, profile)
        notes = round_note + self._second_opinion([chosen.formula, *blockers], "sat")
        return Outcome(Verdict.REFUTED, 0, counterexample=cex, notes=tuple(notes))

    def _roundest(self, s: z3.Solver, lits: list[Any], goal: list[Any], profile: ir.ProfileDef | None) -> bool:
        """Leave as the model (``Queries.model``) the most readable one found within a
        fifth of the check's time, each step on top of the last: memory and chunks below
        2^52 bytes; below 1 TiB with node ids from 0; then ranges on 1 GiB boundaries
        with chunks of order <= MAX_PAGE_ORDER, else on 2 MiB boundaries; then fewer
        memory ranges, one at a time. A readability pass: it never changes the verdict,
        only which counterexample is shown. False when it found nothing better than the
        solver's first model."""
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
        targets = [self.q.sub(g) for g in goal]
        # at most a fifth of the check's time (a quarter of what the attempt spent so
        # far), or READABLE_FLOOR_MS where that is less: a check decided in a few
        # milliseconds still deserves a readable counterexample
        budget, saved_ms = self.q.budget, self.q.query_ms
        # (a fresh bit-vector solver starts from nothing on every step: it gets more)
        floor = READABLE_FLOOR_FRESH_MS if self.q.fresh_bv else READABLE_FLOOR_MS
        share = max((self.q.spent - self.q.base) // 4, units(floor))
        self.q.budget = min(budget, self.q.spent + share)
        self.q.query_ms = ROUNDING_MS
        kept: list[Any] = []
        last_sat = False
        best = self.q.model(s)  # the model of the last step that succeeded
        try:
            steps = [("plausible", plausible), ("1 TiB", shape(ps, 40, 40 - ps))]
            if uses_layout:
                steps += [("1 GiB", shape(30, 40, max_order)), ("2 MiB", shape(21, 40, 40 - ps))]
            else:
                steps += [("small", shape(ps, 40, max_order))]
            for name, formulas in steps:
                lit = z3.Bool(f"readable {name}", self.ctx)
                s.add(implies(lit, conj(*formulas)))
                last_sat = self.q.query(s, *lits, *kept, lit, *targets) == z3.sat
                if last_sat:
                    best = self.q.model(s)
                    kept.append(lit)
                    if name not in ("plausible", "1 TiB"):
                        break
                elif len(kept) < (1 if name == "plausible" else 2):
                    break  # nothing rounder is likely within the budget either
            # then the fewest memory ranges, one fewer at a time
            for _ in range(3 if uses_layout and kept else 0):
                if not last_sat:
                    break
                have = self.low.layout.existing(self.q.model(s))
                if have <= 1:
                    break
                lit = z3.Bool(f"readable {have - 1} ranges", self.ctx)
                s.add(implies(lit, self.low.layout.at_most(have - 1)))
                last_sat = self.q.query(s, *lits, *kept, lit, *targets) == z3.sat
                if last_sat:
                    best = self.q.model(s)
                    kept.append(lit)
        finally:
            self.q.budget, self.q.query_ms = budget, saved_ms
        # the model of the last step that succeeded (or the solver's first) is the
        # counterexample, also where a later step found nothing rounder. It satisfies
        # every lazy instance in the solver now (those added since were pending when it
        # was checked against them), so it is kept, not asked for again: asking cost as
        # much as the step that found it (8-11 s of a 41 s refutation of
        # mirror_deferral_uninit_read), and could run out of budget
        self.q.fresh_model = best
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
            end = pfn + (bv_value(1, pfn.size(), self.ctx) << wide)
            bound = bv_value(below_pfns, pfn.size(), self.ctx)
            out.append(self.q.sub(conj(ule(order, max_order), ult(pfn, bound), ule(end, bound))))
        return out

    def _second_opinion(self, goal: list[Any], answer: str) -> list[str]:
        """With --cross-check: the whole query (every lazy instance) solved by cvc5."""
        if not self.cross_check:
            return []
        from khospec.engine.crosscheck import cross_check

        formulas = [self.q.sub(h) for h in self.f.hard] + [self.q.sub(f) for f in self.f.lazy] + self._scope_defs
        formulas += list(self.f.tracked.values()) + [self.q.sub(g) for g in goal]
        return [cross_check(formulas, answer, self.timeout_ms)]

    def vacuity(self, profile: ir.ProfileDef | None) -> Outcome | None:
        """None if the assumptions and premise are satisfiable and every relevant step
        runs; otherwise the vacuous outcome (or unknown)."""
        t0 = time.perf_counter()
        self.q.start(self.timeout_ms, self.timeout_ms)
        s, lits = self.q.solver(profile, self.timeout_ms)
        names = self.f.names()
        prem = z3.Bool("premise", self.ctx)
        s.add(implies(prem, self.q.sub(self.f.premise)))
        r = self.q.query(s, *lits, prem)
        if r == z3.unknown:
            return Outcome(Verdict.UNKNOWN, time.perf_counter() - t0, reason="vacuity check: " + unknown_reason(s))
        if r == z3.unsat:
            core = [c for c in s.unsat_core() if c.get_id() in names]
            core, _ = self.q.minimize(s, core, [prem])
            used = tuple(sorted(names[c.get_id()] for c in core))
            what = ", ".join(used) if used else "the axioms"
            return Outcome(Verdict.VACUOUS, time.perf_counter() - t0, assumptions_used=used,
                           reason=f"no layout and profile satisfy {what} together with the claim's premise")
        if self.check.is_trace:
            todo = [st for st in self.f.relevant_steps if st in self.f.reach]
            dead = [st for st in self.f.relevant_steps if st not in self.f.reach]
            while todo:
                lit = z3.Bool(f"reach {len(todo)}", self.ctx)
                s.add(implies(lit, self.q.sub(disj(*[self.f.reach[st] for st in todo]))))
                r = self.q.query(s, *lits, lit)
                if r == z3.unknown:
                    return Outcome(Verdict.UNKNOWN, time.perf_counter() - t0,
                                   reason="vacuity check: " + unknown_reason(s))
                if r == z3.unsat:
                    dead += todo
                    break
                m = s.model()
                todo = [st for st in todo
                        if not is_true(m.eval(self.q.sub(self.f.reach[st]), model_completion=True))]
            if dead or not self.f.relevant_steps:
                what = ", ".join(sorted(dead)) if dead else "no step"
                return Outcome(Verdict.VACUOUS, time.perf_counter() - t0, assumptions_used=(),
                               reason=f"the claim relies on {what}, which never runs in a trace the assumptions allow"
                               if dead else "no step can violate the claim")
        return None

    def _narrowed(self, o: Outcome, profile: ir.ProfileDef) -> Outcome:
        """A proof shared by several profiles, for one of them: without the axioms
        its constants make true."""
        if o.assumptions_used is None:
            return o
        used = tuple(n for n in o.assumptions_used if not self.f.true_under(n, profile))
        return dataclasses.replace(o, assumptions_used=used, unsure=tuple(n for n in o.unsure if n in used))

    def _incomplete(self, s: z3.Solver, lits: list[Any]) -> list[str] | None:
        notes: list[str] = []
        checks: list[tuple[Any, str]] = []
        for loop in self.low.loops:
            if loop.tail is None and not is_false(z3.simplify(loop.open)):
                checks.append((loop.open, f"the loop at {loop.span} may run more than {loop.iterations} "
                                          "iterations and no invariant covers the rest"))
            if loop.consecution is not None:
                checks.append((loop.consecution, f"the invariants of the loop at {loop.span} are not inductive"))
            if loop.exit_gap_here is not None:
                checks.append((loop.exit_gap_here, (
                    f"the loop at {loop.span} may have no exit state (neither its locals all 0 nor all ones "
                    f"satisfy its invariants and fail its condition everywhere it runs){_covered(loop)}")))
        for o in self.low.hard_open:
            checks.append((o, "a loop compared whole (f(...) == [...]) may not end within the unrolling"))
        if self.f.trace_open:
            checks.append((disj(*self.f.trace_open), f"some trace is longer than {self.f.depth_limit} steps"))
        for formula, note in checks:
            r = self.q.query(s, *lits, self.q.sub(formula))
            if r == z3.unknown:
                return None
            if r == z3.sat:
                notes.append(note)
        for loop in self.low.loops:
            if loop.exit_gap is not None:
                gap = self._exit_gap(loop.exit_gap)
                if gap is not None:
                    notes.append(f"the loop at {loop.span} {gap}{_covered(loop)}")
        return notes

    def _depth(self) -> int:
        """Iterations every loop was unrolled: a claim that holds to this depth holds in
        the executions whose loops run no more. A loop whose condition stays a constant
        truth is unrolled further than the others (statements._while)."""
        return min((loop.iterations for loop in self.low.loops), default=self.low.unroll)

    def _exit_gap(self, gap: Any) -> str | None:
        """Why the executions that run past a loop's unrolling may not all be covered,
        or None if they are. The stand-in asserts an exit state wherever the loop still
        runs (statements._while), which excludes an execution that has none; ``gap`` is
        satisfiable iff a state satisfying the invariants and the condition has none.
        Quantified, so asked alone, without the assumptions: a state they exclude only
        makes the answer less often "covered", never wrongly so."""
        r = self.q.alone(gap, EXIT_GAP_MS)
        if r == z3.unsat:
            return None
        if r == z3.sat:
            return "may be left only by `return`, or never: a state satisfying its invariants and its condition " \
                   "has no exit state"
        return "may have no exit state (khospec could not decide whether one always exists)"

    def _shortest(self, s: z3.Solver, lits: list[Any], blockers: list[Any],
                  known: Any = None) -> tuple[Any, Violation | None]:
        """The violation with the shortest trace, in a real execution.

        ``known``, the model of the decision that found a violation, is the answer
        without asking where it is a real execution (it satisfies every blocker) and
        violates at the shortest depth there is: it satisfies the solver's formulas and
        every lazy instance (``Queries.query``), so it is a model of the question the
        first depth asks. Asking again cost more than the decision where the blockers
        made the search harder (`unpreserve_undoes_preserve_71`: 71 million resource
        units, the decision 13), and the readability pass reshapes the model anyway."""
        by_depth = sorted({v.depth for v in self.f.violations})
        if known is not None and by_depth and all(is_true(known.eval(b, model_completion=True)) for b in blockers):
            for v in self.f.violations:
                if v.depth == by_depth[0] and is_true(known.eval(self.q.sub(v.formula), model_completion=True)):
                    self.q.fresh_model = known  # Queries.model: the counterexample's model from here
                    return z3.sat, v
        for d in by_depth:
            group = [v for v in self.f.violations if v.depth == d]
            lit = z3.Bool(f"violation at depth {d}", self.ctx)
            s.add(implies(lit, self.q.sub(disj(*[v.formula for v in group]))))
            r = self.q.query(s, *lits, lit, *blockers)
            if r == z3.unknown:
                return r, None
            if r == z3.sat:
                m = self.q.model(s)
                for v in group:
                    if is_true(m.eval(self.q.sub(v.formula), model_completion=True)):
                        return r, v
        return z3.unsat, None


def _covered(loop: LoopInfo) -> str:
    """What a proof over a loop that may have no exit state still covers."""
    return (f": the proof covers the executions that leave it within {loop.iterations} iterations "
            "or by its condition")


def _int_binding(p: ir.ProfileDef | None, name: str, default: int) -> int:
    """The profile's number for ``name``, or ``default`` where it leaves it symbolic."""
    v = dict(p.bindings).get(name) if p is not None else None
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _is_chunk(ty: Any) -> bool:
    return isinstance(ty, StructType) and [n for n, _ in ty.fields] == ["pfn", "order"]


def _decided(o: Outcome) -> bool:
    return o.verdict in (Verdict.PROVED, Verdict.REFUTED, Verdict.VACUOUS)


def _unrolled_says_more(general: Outcome, unrolled: Outcome) -> bool:
    """Whether the outcome with the loops unrolled (phase B) replaces the general one: it
    is decided, or both hold to a depth and the unrolled one covers more iterations (the
    general lowering unrolls none: its depth 0 covers only executions no loop runs in)."""
    return _decided(unrolled) or (unrolled.verdict is general.verdict is Verdict.HOLDS_TO_DEPTH
                                  and (unrolled.depth or 0) > (general.depth or 0))


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
            try:
                bounded = self.lowering(RunKey(ps or 0, bounded=True, vacuity=True))
                vac = bounded.vacuity(p)
                if vac is not None and vac.verdict is Verdict.VACUOUS and bounded.low.loops:
                    vac = self.lowering(RunKey(ps or 0, vacuity=True)).vacuity(p)
            except LayoutLimit as exc:
                # a proof whose premise was not shown satisfiable is not reported as one
                vac = Outcome(Verdict.UNKNOWN, 0.0, reason=f"vacuity check: {exc}")
            if vac is not None:
                o = Outcome(vac.verdict, o.time_s + vac.time_s, vac.assumptions_used,
                            reason=vac.reason, notes=o.notes)
        return o

    def _unrolls(self, general: CheckRun) -> bool:
        """Whether a claim that ``general`` (loops through their invariants) leaves open
        is tried again with the loops unrolled (phase B)."""
        return bool(general.low.loops) and self.check.claim.kind == "holds"

    def all_at_once(self, profiles: list[ir.ProfileDef]) -> dict[str, Outcome]:
        """Step 1: every profile in one solver (a proof for all of them at once, or a
        counterexample per refuted profile); the decided ones, finished. As for one
        profile (``one_profile``), a claim over loops that the invariants leave open is
        tried again with the loops unrolled, still every profile at once: asked one
        profile at a time, `aligned_block_is_one_chunk` asked the same two completeness
        queries nine times (15.7 s summed, 1.1 s at once)."""
        # a short budget: where the profiles together are much harder than one by one
        # (the long trace proofs), little is lost before solving them one by one
        budget = min(self.timeout_ms, SYMBOLIC_ATTEMPT_MS)
        try:
            general = self.lowering(RunKey(0))
            together = general.attempt_profiles(profiles, budget)
        except LayoutLimit:
            return {}  # one profile at a time, where the other ways are tried too
        rest = [p for p in profiles if not _decided(together[p.name])]
        if rest and self._unrolls(general):
            try:
                unrolled = self.lowering(RunKey(0, bounded=True)).attempt_profiles(rest, budget)
            except LayoutLimit:
                unrolled = {}
            for p in rest:
                b = unrolled.get(p.name)
                if b is not None and _unrolled_says_more(together[p.name], b):
                    together[p.name] = dataclasses.replace(b, time_s=together[p.name].time_s + b.time_s)
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
            small = self._attempt(RunKey(ps or 0, small=True, profile=own), p, min(self.timeout_ms, SMALL_LAYOUT_MS))
            if small.verdict is Verdict.REFUTED:
                o = small
        if o is None:
            key = RunKey(ps or 0, profile=own)
            o = self._attempt(key, p)
            general = self._runs.get(key)
            if not _decided(o) and o.verdict is not Verdict.UNKNOWN and general is not None and self._unrolls(general):
                b = self._attempt(RunKey(ps or 0, bounded=True, profile=own), p)
                if _unrolled_says_more(o, b):
                    o = b
        if o.verdict is Verdict.UNKNOWN and self.small_layouts and not self.expect_refuted:
            # the expectation only orders the work: an undecided query gets the
            # small-layout search too before it is called unknown
            small = self._attempt(RunKey(ps or 0, small=True, profile=own), p, min(self.timeout_ms, SMALL_LAYOUT_MS))
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

    def _attempt(self, key: RunKey, p: ir.ProfileDef | None, timeout_ms: int | None = None) -> Outcome:
        """One lowering's attempt; a layout whose witnesses do not settle (LayoutLimit)
        leaves it undecided, and the search plan goes on to its other ways (a search
        among small layouts settles where the general query cannot)."""
        try:
            return self.lowering(key).attempt(p, timeout_ms)
        except LayoutLimit as exc:
            return Outcome(Verdict.UNKNOWN, 0.0, reason=str(exc))

    def _on_real_layouts(self, p: ir.ProfileDef | None) -> Outcome | None:
        for real in self.real_layouts:
            # the same check on a real machine's memory map: a refutation there is
            # a counterexample as good as any (the layout is one a machine has)
            try:
                on_real = CheckRun(self.program, self.check, self.strategy, real, _int_binding(p, "PAGE_SHIFT", 12),
                                   self.timeout_ms, 0).attempt(p, min(self.timeout_ms, SMALL_LAYOUT_MS))
            except (LayoutLimit, LowerError):
                # not on this profile's pages, or a claim this layout cannot express (a
                # quantifier over pfns, KHO511): the symbolic query's answer stands
                continue
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
