"""Differential testing: the solver against brute-force enumeration, on narrowed instances.

A narrowed instance of a check is the same check on a toy architecture whose numbers are
tiny but satisfy every prelude axiom (PAGE_SHIFT 12, SECTION_SIZE_BITS 15: sections of
8 pfns, MAX_PAGE_ORDER 3, pageblock_order 2), in a memory of ``space`` pfns:

- at most two memory ranges, on a grid of ``grid`` pfns, node ids 0 and 1;
- zone limits fixed (DMA, DMA32, Normal in quarters, no movable zone, no mirror);
- every integer the claim quantifies over, every chunk and every parameter drawn from
  small finite domains (pfns below ``space``, orders up to ``max_order``, a node's
  first_deferred_pfn either ULONG_MAX or one section in, and not grown);
- uninitialised memory reads as zero.

The solver decides the narrowed query (the check's formulas plus those restrictions);
the brute force enumerates every instance, runs every trace in the concrete
interpreter and evaluates the claim with every quantifier expanded over the small
domains. Both must find a violation, or both must find none.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import z3

from khospec import ir
from khospec.counterexample import ModelValues
from khospec.engine.formulas import CheckFormulas
from khospec.engine.layout import BoundedLayout
from khospec.engine.query import Queries
from khospec.engine.terms import conj, disj
from khospec.interp import Frame, Interp, ReplayMismatch, Undetermined, _from_json
from khospec.types import BOOL, BoolType, IntType, StructType

ULONG_MAX = (1 << 64) - 1
NARROW_PROFILE = ir.ProfileDef("narrow", (
    ("PAGE_SHIFT", 12), ("SECTION_SIZE_BITS", 15), ("MAX_PAGE_ORDER", 3), ("pageblock_order", 2),
    ("ARCH_KEEP_MEMBLOCK", False), ("MAX_PHYSMEM_BITS", 52),
    # the narrowed zone limits are fixed below; none comes from the profile
    ("ZONE_DMA_LIMIT", 0), ("ZONE_DMA32_LIMIT", 0),
))


@dataclass(frozen=True)
class Narrowing:
    space: int = 16  # pfns of memory
    grid: int = 4  # range boundaries on multiples of this
    max_order: int = 4
    fdp: tuple[int, ...] = (ULONG_MAX, 8)

    @property
    def zones(self) -> list[tuple[int, int]]:
        q = self.space // 4
        return [(0, q), (q, 2 * q), (2 * q, self.space), (0, 0), (self.space, self.space)]


# what one side found on the narrowed instances
Answer = Literal["violation", "none", "unknown"]


@dataclass(frozen=True)
class Agreement:
    check: str
    strategy: str | None
    solver: Answer
    brute: Answer
    instances: int
    time_s: float

    @property
    def agree(self) -> bool:
        return self.solver == self.brute


# ---------------------------------------------------------------- the solver's side


def _bound(v: Any, ty: Any, n: Narrowing) -> list[Any]:
    if isinstance(ty, StructType) and ty.name == "mem_range":
        # a witness range is one of the layout's ranges, which the layout's own bounds
        # narrow already (its end may be the end of memory, `space`)
        return []
    if isinstance(ty, StructType):
        out = []
        for (name, fty), fv in zip(ty.fields, v.fields, strict=True):
            if ty.name == "chunk" and name == "order":
                out.append(z3.ULE(fv, n.max_order))
            else:
                out.extend(_bound(fv, fty, n))
        return out
    if isinstance(ty, IntType):
        if ty.signed:
            return [v >= 0, v < n.space]
        return [z3.ULT(v, n.space)]
    return []


def solver_side(program: ir.Program, check: ir.CheckDef, strategy: str | None, n: Narrowing,
                timeout_ms: int = 60000) -> Answer:
    run = CheckFormulas(program, check, strategy, None, None, 3, allow_tail=False, bounded=2)
    q = Queries(run)
    low = run.low
    lay = low.layout
    assert isinstance(lay, BoundedLayout)
    extra: list[Any] = []
    for r in lay.ranges:
        extra.append(z3.Implies(r.exists, conj(
            z3.ULE(r.end, n.space), (r.start % n.grid) == 0, (r.end % n.grid) == 0,
            disj(r.nid == 0, r.nid == 1))))
    for z, (lo, hi) in enumerate(n.zones):
        zv = z3.BitVecVal(z, 32, run.ctx)
        extra += [lay._zlo(zv) == lo, lay._zhi(zv) == hi]
    for nid in (0, 1):
        extra.append(lay._movable(z3.BitVecVal(nid, 32, run.ctx)) == 0)
    extra.append(z3.Not(lay._mirrored))
    for sk in low.skolems:
        extra += _bound(sk.sym, sk.ty, n)
    for name, pd in program.params.items():
        if pd.arg_types is None and isinstance(pd.ty, StructType):
            extra += _bound(low.param(name), pd.ty, n)
    fdp = program.params.get("first_deferred_pfn")
    if fdp is not None:
        for nid in (0, 1):
            app = low.param("first_deferred_pfn", (z3.BitVecVal(nid, 32, run.ctx),))
            extra.append(disj(*[app == v for v in n.fdp]))
            if "grown_first_deferred_pfn" in program.params:
                extra.append(low.param("grown_first_deferred_pfn", (z3.BitVecVal(nid, 32, run.ctx),)) == app)
    for _, _, val in low.garbage_apps:
        extra.append(z3.Not(val) if z3.is_bool(val) else val == 0)
    s, lits = q.solver(NARROW_PROFILE, timeout_ms)
    q.start(timeout_ms, timeout_ms)
    for e in extra:
        s.add(q.sub(e))
    # the same real-execution rule as the engine's refutations (CheckRun._refute, engine/solve.py)
    blockers = [q.sub(z3.Not(o)) for o in run.running_on()]
    goal = q.sub(disj(*[v.formula for v in run.violations])) if run.violations else z3.BoolVal(False, run.ctx)
    r = q.query(s, *lits, goal, *blockers)
    if r == z3.sat:
        return "violation"
    return "none" if r == z3.unsat else "unknown"


# ---------------------------------------------------------------- brute force


def _layouts(n: Narrowing) -> Iterator[list[tuple[int, int, int, bool]]]:
    points = list(range(0, n.space + 1, n.grid))
    for a, b in itertools.combinations(points, 2):
        for nid in (0, 1):
            yield [(a, b, nid, False)]
    for a, b, c, d in itertools.combinations(points, 4):
        for n0, n1 in itertools.product((0, 1), repeat=2):
            yield [(a, b, n0, False), (c, d, n1, False)]
    for a, b, c in itertools.combinations(points, 3):  # two adjacent ranges
        for n0, n1 in itertools.product((0, 1), repeat=2):
            yield [(a, b, n0, False), (b, c, n1, False)]


def _chunks(n: Narrowing) -> Iterator[dict[str, int]]:
    for order in range(n.max_order + 1):
        for pfn in range(n.space):
            yield {"pfn": pfn, "order": order}


def _values(ty: Any, n: Narrowing) -> list[Any]:
    if isinstance(ty, BoolType):
        return [False, True]
    if isinstance(ty, StructType) and ty.name == "chunk":
        return list(_chunks(n))
    if isinstance(ty, IntType):
        return list(range(n.space))
    raise Undetermined(f"no narrowed domain for {ty}")


def _free_params(program: ir.Program) -> list[tuple[str, Any]]:
    return [(name, pd.ty) for name, pd in program.params.items()
            if pd.arg_types is None and name not in dict(NARROW_PROFILE.bindings)]


def brute_side(program: ir.Program, check: ir.CheckDef, strategy: str | None, n: Narrowing,
               budget_s: float = 600.0) -> tuple[Answer, int]:
    """What the enumeration found, and the number of instances enumerated."""
    t0 = time.perf_counter()
    used = ir.used_params(program, check, strategy)
    params = [(name, ty) for name, ty in _free_params(program) if name in used]
    uses_fdp = "first_deferred_pfn" in used
    count = 0
    claim_vars = _claim_vars(check)
    for layout in _layouts(n):
        nodes = sorted({r[2] for r in layout})
        fdp_choices = list(itertools.product(n.fdp, repeat=len(nodes))) if uses_fdp else [()]
        for fdp in fdp_choices:
            for values in itertools.product(*[_values(ty, n) for _, ty in params]):
                if time.perf_counter() - t0 > budget_s:
                    return "unknown", count
                model: ModelValues = {
                    "params": {**dict(NARROW_PROFILE.bindings),
                               **{k: v for (k, _), v in zip(params, values, strict=True)}},
                    # deferred_grow_zone() grows nothing here (the solver's side says the same)
                    "param_functions": {name: [[[nid], v] for nid, v in zip(nodes, fdp, strict=True)]
                                        for name in ("first_deferred_pfn", "grown_first_deferred_pfn")},
                    "layout": {"ranges": layout, "nodes": nodes, "zone_movable_pfn": {},
                               "arch_zones": n.zones, "mirrored_kernelcore": False},
                    "witnesses": [],
                    "initial": [],
                }
                interp = _admitted(program, check, strategy, model, n)
                if interp is None:
                    count += 1
                    continue
                if check.claim.kind != "holds":
                    count += 1
                    if _quiet(lambda interp=interp: _trace_violated(interp, program, check, strategy)):
                        return "violation", count
                    continue
                for witness in itertools.product(*[_values(q.var.ty, n) for q in claim_vars]):
                    count += 1
                    if _quiet(lambda interp=interp, witness=witness: _holds_violated(interp, check, claim_vars,
                                                                                     witness)):
                        return "violation", count
    return "none", count


def _quiet(f: Any) -> bool:
    try:
        return bool(f())
    except (Undetermined, ReplayMismatch):
        return False


def _admitted(program: ir.Program, check: ir.CheckDef, strategy: str | None,
              model: ModelValues, n: Narrowing) -> Interp | None:
    """The interpreter for an instance that satisfies every axiom and assumption."""
    interp = Interp(program, strategy, model, points=range(0, 2 * n.space + 1))
    base = Frame({}, None)
    try:
        for a in [*program.axioms, *(program.assumes[x] for x in check.assuming)]:
            if a.before is None and not interp.ev(a.formula, base):
                return None
    except (Undetermined, ReplayMismatch):
        return None
    return interp


def _holds_violated(interp: Interp, check: ir.CheckDef, claim_vars: list[Any], witness: tuple[Any, ...]) -> bool:
    assert check.claim.expr is not None
    fr = Frame({}, None)
    body: Any = check.claim.expr
    for q, w in zip(claim_vars, witness, strict=True):
        fr.locals[q.var.uid] = _from_json(w, q.var.ty)
        body = body.body
    return not interp.ev(body, fr)


def _claim_vars(check: ir.CheckDef) -> list[Any]:
    out = []
    if check.claim.kind == "holds" and check.claim.expr is not None:
        e = check.claim.expr
        while isinstance(e, ir.Quant) and e.kind == "forall" and e.domain.kind in ("type", "interval"):
            out.append(e)
            e = e.body
    return out


def _trace_violated(interp: Interp, program: ir.Program, check: ir.CheckDef, strategy: str | None) -> bool:
    claim = check.claim
    steps = program.step_defs(strategy)
    befores = [a for a in [*program.axioms, *(program.assumes[x] for x in check.assuming)] if a.before]

    def bad_state(state: Any, step: str | None) -> bool:
        if claim.kind == "always" or (claim.kind == "after" and step == claim.step):
            assert claim.expr is not None
            return not interp.ev(claim.expr, Frame({}, state))
        return False

    def dfs(state: Any, depth: int) -> bool:
        if depth > 16:
            return False
        for st in steps:
            if st.guard is not None and not interp.ev(st.guard, Frame({}, state)):
                continue
            if any(a.before == st.name and not interp.ev(a.formula, Frame({}, state)) for a in befores):
                continue
            nxt, failures, _ = interp.step(st.name, state)
            if claim.kind == "requirement" and any(f.name == claim.requirement for f in failures):
                return True
            if bad_state(nxt, st.name) or dfs(nxt, depth + 1):
                return True
        return False

    state = interp.initial_state()
    return bad_state(state, None) or dfs(state, 0)


def compare(program: ir.Program, check: ir.CheckDef, strategy: str | None, n: Narrowing,
            timeout_ms: int = 60000, budget_s: float = 600.0) -> Agreement:
    t0 = time.perf_counter()
    solver = solver_side(program, check, strategy, n, timeout_ms)
    brute, count = brute_side(program, check, strategy, n, budget_s)
    return Agreement(check.name, strategy, solver, brute, count, time.perf_counter() - t0)


__all__ = ["BOOL", "Agreement", "Narrowing", "compare"]
