"""Stage 4b: asking a check's formulas questions, within a budget.

``Queries`` owns the solvers of one lowering (``engine/formulas.py``) and everything a
question costs or leaves behind: which formulas go into a solver (the cone of the
question, with the profile's constants substituted), the lazy instances added back when
a model violates them, the fresh bit-vector solvers in another process, the resource
budget shared by the queries of one attempt, the completion of a model to the formulas
left out, and the minimisation of an unsat core. ``engine/solve.py`` decides what to ask;
this module only asks.

Budgets are z3 resource units, not wall time: the same query gets the same budget on
every machine, so verdicts, cores and counterexamples do not depend on the machine's
speed or load. Times are nominal, converted at the rate z3 spends units on this
library's queries (about 3 million per second on a 2024 x86-64 core). A wall-clock limit
of WALL_FACTOR times the nominal time only catches a solver that stops counting.
"""

from __future__ import annotations

from typing import Any

import z3
from z3 import z3core as _C

from khospec import ir
from khospec.engine.formulas import CheckFormulas
from khospec.engine.freshbv import Trial, rlimit_count, solve_fresh
from khospec.engine.terms import Substitution, is_true

RLIMIT_PER_SECOND = 3_000_000
WALL_FACTOR = 5
COMPLETE_MS = 20000
# the fresh solvers that try a pure bit-vector query one after another, in another
# process (engine/freshbv.py): seed, SAT phase selection, budget in ms. z3's time on
# such a query has a long tail that moves with the seed and the phase: on
# `split_partition_huge_range` (s390x) its default took 25 million units where always
# choosing false took 3.2 million, and on x86_64 another seed took 21 million for 0.7.
# Short trials that alternate the two leave a slow one early; budgets double so a hard
# query still gets long ones.
FRESH_TRIALS_MS = ((0, "caching", 1000), (0, "always_false", 1000), (1, "caching", 2000),
                   (1, "always_false", 2000), (2, "caching", 4000), (2, "always_false", 4000),
                   (3, "caching", 8000))
MINIMIZE_MS = 3000


class Queries:
    """The solvers of one lowering, and the budget its queries share."""

    def __init__(self, formulas: CheckFormulas) -> None:
        self.f = formulas
        self.ctx = formulas.ctx
        # the context's resource count at which this attempt's queries stop, when it
        # started, and after the last query (z3's count only grows)
        self.budget = 1 << 62
        self.base = 0
        self.spent = 0
        self.query_ms = 60000  # the most one query may take of the budget
        self.outside = 0  # resource units charged for fresh trials (another process)
        # pure bit-vector queries whose model is wanted are asked of a fresh solver too
        # (see query): whether the solver's formulas are such; whether only models are
        # wanted now (a counterexample being shaped); whether a decision goes to the
        # fresh solver first (a check expected refuted); the fresh solver's last model
        # (or one a readability pass kept when it could not find it again: solve.py)
        self.fresh_bv = False
        self.models_only = False
        self.fresh_first = False
        self.fresh_model: Any = None
        self._sub: Substitution | None = None  # the profile's constants, substituted
        self._pending: list[Any] = []  # lazy instances not yet in the solver
        self._dropped: list[Any] = []  # formulas outside the cone of the questions
        self._dropped_symbols: set[int] = set()  # decl ids of the symbols in _dropped

    def start(self, timeout_ms: int, query_ms: int) -> None:
        """A new attempt: ``timeout_ms`` of budget from here, at most ``query_ms`` a query."""
        self.query_ms = query_ms
        self.base = self.spent
        self.budget = self.spent + units(timeout_ms)

    def solver(self, profile: ir.ProfileDef | None, timeout_ms: int,
               seed: list[Any] | None = None) -> tuple[z3.Solver, list[Any]]:
        """A solver holding the formulas with the profile's constants substituted;
        everything added to it later goes through ``self.sub``.

        With ``seed`` (the formulas the queries will add), only the formulas that share
        a symbol with them, directly or through other formulas, go in: the rest is an
        independent conjunct whose satisfiability the vacuity check (which takes no
        seed) settles, and which ``complete`` adds back for a counterexample."""
        pairs = self.f.low.constants(profile) if profile is not None else []
        self._sub = Substitution(pairs) if pairs else None
        hard = [self.sub(h) for h in self.f.hard]
        self._pending = [self.sub(f) for f in self.f.lazy]
        self._dropped.clear()
        self._dropped_symbols.clear()
        if seed is not None:
            keep, self._dropped_symbols = cone([self.sub(f) for f in seed], hard + self._pending)
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
        # the seed is rewritten again, not kept from the cone above: keeping it moves the
        # ids of the terms made after it, and z3's search follows the ids (the arm64-4k
        # proof of zone_search_owner_node then names five assumptions instead of two)
        later.add(*[self.sub(f) for f in seed or []])
        is_qfbv = z3.Probe("is-qfbv", self.ctx)
        bits_only = is_qfbv(goal) == 1.0
        self.fresh_bv = bits_only and is_qfbv(later) == 1.0
        if self.fresh_bv:
            s = z3.SolverFor("QF_BV", ctx=self.ctx)
        elif bits_only:
            s = z3.Solver(ctx=self.ctx)
            s.set("core.minimize", False)
        else:
            s = z3.SolverFor("QF_UFBV", ctx=self.ctx)
            # z3's own core minimisation costs more than the whole proof on the larger
            # queries; minimize does it by deletion, within a budget
            s.set("core.minimize", False)
        s.set("random_seed", 0)
        for h in hard:
            s.add(h)
        return s, list(self.f.tracked.values())

    def query(self, s: z3.Solver, *assumptions: Any) -> Any:
        """s.check(), adding the lazy instances a model violates until none is.

        While a counterexample is being shaped (``models_only``: no unsat core will be
        read), a pure bit-vector query goes to a fresh solver holding the assertions and
        the assumptions; so does the decision of a check expected refuted
        (``fresh_first``), whose unsat answer is then asked again of the incremental
        solver, for its core: z3 then bit-blasts after its full preprocessing, where a check
        with assumptions takes its incremental path. On `split_partition_huge_range`
        (x86_64) the query for the shortest violation took 0.3 s fresh and 17-29 s with
        assumptions. The fresh solvers run in a new process (engine/freshbv.py says why),
        one trial after another, with doubling budgets (FRESH_TRIALS_MS): z3's time on such
        a query varies tenfold with the seed and the phase selection, and a slow trial is
        left early. Budgets are resource units, so which trial answers, and its model, is
        the same on every machine and after any earlier check. Only if they cannot decide
        does the incremental solver get the rest of the budget."""
        while True:
            self.fresh_model = None
            left = self.budget - self.spent
            if left <= 0:
                return z3.unknown
            budget = max(1, min(units(self.query_ms), left))
            r = z3.unknown
            if self.fresh_bv and (self.models_only or self.fresh_first):
                answer = solve_fresh([*s.assertions(), *assumptions], self.ctx, budget,
                                     [Trial(seed, phase, units(ms)) for seed, phase, ms in FRESH_TRIALS_MS],
                                     WALL_FACTOR * 1000 / RLIMIT_PER_SECOND)
                if self.models_only or answer.result == "sat":
                    self.outside += answer.units
                    self.spent += answer.units
                    self.fresh_model = answer.model
                    r = z3.sat if answer.result == "sat" else z3.unsat if answer.result == "unsat" else z3.unknown
                # else a proof's core comes from the incremental solver, as if the fresh
                # trial had not been made: its cost is not charged to the budget
                left = self.budget - self.spent
                budget = max(1, min(budget, left))
            if r == z3.unknown and left > 0:
                r = check_within(s, budget, assumptions)
                # the count is the context's, over all its solvers, and only grows; the
                # fresh trials ran in another process
                self.spent = max(self.spent, rlimit_count(s) + self.outside)
            if r != z3.sat or not self._pending:
                return r
            # the model stays referenced until the next round, as the terms its
            # evaluation made do: freed, their ids go to the next terms z3 makes, and
            # z3's search follows the ids. Freed here, nine proofs of the library named
            # other assumptions (zone_search_owner_node on x86_64: five, in 12 s, where
            # it is two in 3 s)
            m = self.model(s)
            keep, violated = held_and_violated(m, self._pending)
            if not violated:
                return r
            for f in violated:
                s.add(f)
            self._pending = keep

    def alone(self, formula: Any, ms: int) -> Any:
        """``formula``'s satisfiability in a solver of its own (no assertions of the
        check's: a quantified question the check's solvers are not set up for), within
        ``ms`` of the budget, charged to it."""
        left = self.budget - self.spent
        if left <= 0:
            return z3.unknown
        g = z3.Solver(ctx=self.ctx)
        g.set("random_seed", 0)
        g.add(self.sub(formula))
        r = check_within(g, max(1, min(units(ms), left)), [])
        self.spent = max(self.spent, rlimit_count(g) + self.outside)
        return r

    def model(self, s: z3.Solver) -> Any:
        """The model of the last satisfiable query, whichever solver answered it."""
        return self.fresh_model if self.fresh_model is not None else s.model()

    def sub(self, f: Any) -> Any:
        """``f`` with the profile's constants substituted, then simplified by z3's
        rewriter (an equivalent formula: same models, same literals for the cores).

        Why simplified: a query with assumptions takes z3's incremental path, which
        skips most of the preprocessing a fresh check does, and the lowering leaves
        much to fold once the constants are in (shifts by PAGE_SHIFT, masks, bounds of
        MAX_PAGE_ORDER). Over the library it took 9-22% less CPU time in three pairs of
        runs (BENCHMARKS.md, 2026-12-01): `eager_no_uninit_read_folio` on x86_64 spent 88
        million resource units instead of 210, `restore_reaches_every_chunk_72` 54
        instead of 179. Single checks can lose (`zone_folio_72`: 191 against 164): z3's
        search follows the terms it is given."""
        return z3.simplify(self._sub(f) if self._sub is not None else f)

    def all_unsat(self, s: z3.Solver, assumptions: list[Any], cases: list[Any],
                  cores: dict[int, list[Any]] | None = None) -> tuple[Any, list[Any]]:
        """Whether every case is unsatisfiable under ``assumptions``: unsat with the union
        of the cases' cores, or the first other answer (sat leaves its model in ``s``).

        ``cores`` keeps the last unsat core of each case asked (by the case's id). A
        case whose kept core lies within ``assumptions`` is unsat without asking: the
        solver's assertions only grow (definitions behind literals, lazy instances), so
        what made it unsat still does. Minimising a proof's core over 16 cases then asks
        again only the cases whose core held the member left out."""
        given = {a.get_id() for a in assumptions}
        core: dict[int, Any] = {}
        for case in cases:
            known = cores.get(case.get_id()) if cores is not None else None
            if known is not None and {c.get_id() for c in known} <= given | {case.get_id()}:
                found = known
            else:
                r = self.query(s, *assumptions, case)
                if r != z3.unsat:
                    return r, []
                found = list(s.unsat_core())
                if cores is not None:
                    cores[case.get_id()] = found
            for c in found:
                core.setdefault(c.get_id(), c)
        return z3.unsat, list(core.values())

    def complete(self, s: z3.Solver, lits: list[Any], goal: list[Any]) -> Any:
        """The solver's model, extended to the formulas ``solver`` left out. They share
        no symbol with the claim's formulas, so the extension exists unless they
        contradict each other (the vacuity check reports that). The model's constants
        are kept where they can be: first all of them, then those the left-out formulas
        do not mention (a layout rounding constraint, which reaches every range of the
        layout, can have given values to ranges the claim never looks at), then none:
        any model of the whole query with the chosen violation is a counterexample."""
        model = self.model(s)
        if not self._dropped:
            return model
        full = z3.Solver(ctx=self.ctx)
        full.add(*s.assertions(), *self._dropped)
        consts = [d for d in model.decls() if d.arity() == 0]
        target = [*lits, *[self.sub(g) for g in goal]]
        # the lazy instances not yet in ``s`` bind the new model too: those it violates
        # go in and it is asked again, as in query (without them the model can break
        # an axiom over a range the first model never needed, and not replay)
        pending = list(self._pending)
        for pinned in (consts, [d for d in consts if d.get_id() not in self._dropped_symbols], []):
            while check_within(full, units(COMPLETE_MS), [*target, *[d() == model[d] for d in pinned]]) == z3.sat:
                m = full.model()
                held, violated = held_and_violated(m, pending)
                if not violated:
                    return m
                full.add(*violated)
                pending = held
        return None

    def minimize(self, s: z3.Solver, core: list[Any], extra: list[Any], axioms_too: bool = True,
                 cases: list[Any] | None = None, cores: dict[int, list[Any]] | None = None
                 ) -> tuple[list[Any], list[str]]:
        """Deletion over the solver's core: a member whose absence keeps the query unsat
        goes, with whatever else the smaller core leaves out. The check's own assumptions
        are always tried; axioms only with ``axioms_too`` (when the proof itself was
        cheap: otherwise each trial costs about as much and rarely ends in time). A
        member not tried, or whose trial the budget cannot decide, is kept (a name too
        many is an over-statement; a name too few would be a false claim) and comes back
        in the second list (a name there may still leave with a later, smaller core), so
        that the result can say the set may not be minimal. With ``cases``, a member goes
        only if every case stays unsat without it, within one trial's budget."""
        saved = self.query_ms
        self.query_ms = MINIMIZE_MS
        chosen = set(self.f.check.assuming)
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
                stop = self.budget
                self.budget = min(stop, self.spent + units(MINIMIZE_MS))
                r, sub_core = self.all_unsat(s, [*trial, *extra], cases, cores)
                self.budget = stop
            if r == z3.unsat:
                sub = {x.get_id() for x in sub_core}
                kept = [k for k in trial if k.get_id() in sub]
            elif r == z3.unknown:
                undecided.append(str(c))
        self.query_ms = saved
        return kept, undecided


def held_and_violated(model: Any, formulas: list[Any]) -> tuple[list[Any], list[Any]]:
    """``formulas`` split into those ``model`` satisfies and those it violates, in order."""
    held: list[Any] = []
    violated: list[Any] = []
    for f in formulas:
        (held if is_true(model.eval(f, model_completion=True)) else violated).append(f)
    return held, violated


def units(ms: int) -> int:
    """Nominal milliseconds as z3 resource units."""
    return ms * RLIMIT_PER_SECOND // 1000


def check_within(s: z3.Solver, budget: int, assumptions: Any) -> Any:
    s.set("rlimit", budget)
    s.set("timeout", max(1, budget * 1000 * WALL_FACTOR // RLIMIT_PER_SECOND))
    return s.check(*assumptions)


def unknown_reason(s: z3.Solver) -> str:
    """Why the solver answered unknown, in the words the results use."""
    r = s.reason_unknown()
    # the bit-blasting solver says "sat.canceled" where the others say "canceled"
    if r in ("timeout", "canceled", "sat.canceled", "max. resource limit exceeded"):
        return "time limit reached (the solver's budget for --timeout ran out)"
    return r or "solver gave up"


def cone(seed: list[Any], formulas: list[Any]) -> tuple[set[int], set[int]]:
    """Indices of the formulas connected to ``seed`` through shared uninterpreted
    symbols (constants and functions), transitively; and the decl ids of the symbols
    of the formulas left out."""
    index: dict[int, int] = {}  # symbol's decl id -> bit
    memo: dict[int, int] = {}  # term id -> bit set of the symbols under it
    if not seed and not formulas:
        return set(), set()
    c = (seed or formulas)[0].ctx_ref()

    def symbols(f: Any) -> int:
        # z3's C API on the raw terms: the Python wrappers of every subterm cost more
        # than the walk (reference counting, a wrapper object per child). The parents
        # hold their children, so the raw pointers stay valid while ``f`` lives.
        # Iterative post-order: the formulas are deep enough to overflow Python's stack
        # (a term's subterms are read once, on the way down, and kept for the way up)
        root = f.as_ast()
        stack: list[tuple[Any, list[Any] | None]] = [(root, None)]
        while stack:
            a, kids = stack.pop()
            k = _C.Z3_get_ast_id(c, a)
            if k in memo:
                continue
            if kids is None:
                kids = _kids(c, a)
                stack.append((a, kids))
                stack.extend((x, None) for x in kids)
                continue
            bits = 0
            for x in kids:
                bits |= memo[_C.Z3_get_ast_id(c, x)]
            if _C.Z3_get_ast_kind(c, a) == z3.Z3_APP_AST:
                decl = _C.Z3_get_app_decl(c, _C.Z3_to_app(c, a))
                if _C.Z3_get_decl_kind(c, decl) == z3.Z3_OP_UNINTERPRETED:
                    bits |= 1 << index.setdefault(_C.Z3_get_func_decl_id(c, decl), len(index))
            memo[k] = bits
        return memo[_C.Z3_get_ast_id(c, root)]

    reach = 0
    for f in seed:
        reach |= symbols(f)
    sets = [symbols(f) for f in formulas]
    keep: set[int] = set()
    grew = True
    while grew:
        grew = False
        for j, bits in enumerate(sets):
            # a formula without symbols (a constant truth or falsity) always goes in
            if j not in keep and (bits & reach or not bits):
                keep.add(j)
                reach |= bits
                grew = True
    left_out = 0
    for j, bits in enumerate(sets):
        if j not in keep:
            left_out |= bits
    return keep, {decl for decl, bit in index.items() if left_out >> bit & 1}


def _kids(c: Any, a: Any) -> list[Any]:
    """The raw direct subterms of the raw term ``a``."""
    kind = _C.Z3_get_ast_kind(c, a)
    if kind == z3.Z3_APP_AST:
        app = _C.Z3_to_app(c, a)
        return [_C.Z3_get_app_arg(c, app, i) for i in range(_C.Z3_get_app_num_args(c, app))]
    if kind == z3.Z3_QUANTIFIER_AST:
        return [_C.Z3_get_quantifier_body(c, a)]
    return []


__all__ = ["MINIMIZE_MS", "RLIMIT_PER_SECOND", "WALL_FACTOR", "Queries", "check_within", "cone", "units",
           "unknown_reason"]
