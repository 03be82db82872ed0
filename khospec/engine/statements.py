"""Stage 3b: statements, executed symbolically on a frame.

A statement changes the frame it runs in (its locals, the machine's state, the returned
value, emits and requires), under the frame's guard: the condition that execution
reaches it. Both branches of an `if` run, each under its condition; a function's body
runs inlined at each call. Loops over a set of indices update every index at once
(``_bulk``), or, when they only check, at one index the solver picks; `while` loops are
unrolled a few iterations and, past that, stood in for by any state satisfying their
invariants (``_while``), whose inductiveness is a separate query (``_consecution``).
Expressions are the lowering's (``engine/lower.py``), through the ``Evaluator`` interface.
"""

from __future__ import annotations

from typing import Any, Protocol, assert_never

import z3

from khospec import ir
from khospec.engine import bv
from khospec.engine.bv import StructVal, Sym
from khospec.engine.layout import Layout
from khospec.engine.state import (
    BulkCtx,
    BulkMap,
    CallResult,
    Frame,
    LoopInfo,
    ReqOb,
    WriteMap,
    err,
    read_after,
)
from khospec.engine.terms import bv_value, conj, disj, implies, is_false, is_true, negate
from khospec.types import INT, ULONG, Type

# a loop whose condition stays a constant truth runs this many iterations whatever the
# unroll bound, so that a loop with concrete bounds is unrolled completely and needs no
# invariant
MAX_CONCRETE_UNROLL = 160


class Evaluator(Protocol):
    """What statements need of the expression lowering (``engine/lower.Lowering``)."""

    program: ir.Program
    strategy: str | None
    ctx: z3.Context
    unroll: int
    allow_tail: bool
    wanted: str | None
    collect_requires: bool
    layout: Layout
    loops: list[LoopInfo]
    hard: list[Any]

    def fresh_name(self, base: str) -> str: ...

    def ev(self, e: ir.Expr, fr: Frame, pol: int = 0) -> Sym: ...

    def call(self, e: ir.CallFn, fr: Frame, pol: int, label: str, tail: bool = True,
             prefix: bool = False) -> CallResult: ...

    def layout_witness(self, site: int, kind: str, name: str, ty: Type, origin: str,
                       label: str) -> tuple[Any, Any]: ...

    def loop_witness(self, s: ir.SForBulk, label: str) -> Any: ...


class Statements:
    """The statements of one lowering."""

    def __init__(self, low: Evaluator) -> None:
        self.low = low
        # loops whose inductiveness query exists already (one per loop, not per call)
        self._consecution_done: set[tuple[str, int]] = set()

    def exec_block(self, stmts: tuple[ir.Stmt, ...], fr: Frame, fn: ir.FnDef | None = None,
                   opens: list[Any] | None = None, tail: bool = True) -> None:
        for s in stmts:
            self.exec(s, fr, fn, opens, tail)

    def exec(self, s: ir.Stmt, fr: Frame, fn: ir.FnDef | None, opens: list[Any] | None, tail: bool) -> None:
        """Run ``s`` on ``fr``, each effect under ``fr.active()``: where execution
        reaches ``s``. ``opens`` collects when a loop cut at the unroll bound may still
        run; ``tail``: whether loops may use the invariants' stand-in."""
        match s:
            case ir.SLet():
                # a new local: where this statement does not run, nothing that runs reads it
                fr.locals[s.var.uid] = self.low.ev(s.value, fr, fr.pol)
            case ir.SAssign():
                # the old value stays where the statement does not run
                new = self.low.ev(s.value, fr, fr.pol)
                old = fr.locals[s.var.uid]
                fr.locals[s.var.uid] = bv.ite(fr.active(), new, old)
            case ir.SStateAssign():
                assert fr.state is not None
                new = self.low.ev(s.value, fr)
                fr.state.scalars[s.name] = bv.ite(fr.active(), new, fr.state.scalars[s.name])
            case ir.SMapWrite():
                assert fr.state is not None
                idx = self.low.ev(s.index, fr)
                # a loop over a set updates every index from the state before it (_bulk),
                # which is C's result only if each index writes its own entry
                if fr.bulk is not None and not idx.eq(fr.bulk.index):
                    raise err("KHO520", s.span, f"this loop writes `{s.name}` at an index other than its own",
                               "a loop over a set of indices updates each index on its own")
                value = self.low.ev(s.value, fr)
                # a layer over the map: a read at idx sees it where the write ran
                fr.state.maps[s.name] = WriteMap(fr.state.maps[s.name], fr.active(), idx, s.path, value)
            case ir.SIf():
                outer = fr.guard
                if fr.bulk is not None and fr.bulk.witness:
                    # nothing is written here: each branch's guard only feeds violations, so
                    # the condition is asserted in the then-branch and denied in the else-branch
                    fr.guard = conj(outer, self.low.ev(s.cond, fr, 1))
                    self.exec_block(s.then, fr, fn, opens, tail)
                    if s.else_:
                        fr.guard = conj(outer, negate(self.low.ev(s.cond, fr, -1)))
                        self.exec_block(s.else_, fr, fn, opens, tail)
                    fr.guard = outer
                    return
                # both branches run, each under its condition, and their effects merge
                # through the guards; the condition is used both ways (pol 0)
                c = self.low.ev(s.cond, fr, 0)
                fr.guard = conj(outer, c)
                self.exec_block(s.then, fr, fn, opens, tail)
                fr.guard = conj(outer, negate(c))
                self.exec_block(s.else_, fr, fn, opens, tail)
                fr.guard = outer
            case ir.SForConst():
                # constant bounds: unrolled, one iteration per value
                ty = s.var.ty
                for i in range(s.lo, s.hi):
                    fr.locals[s.var.uid] = bv.const(i, ty, self.low.ctx)
                    self.exec_block(s.body, fr, fn, opens, tail)
            case ir.SForBulk():
                self._bulk(s, fr)
            case ir.SWhile():
                # while loops run only in functions (KHO412)
                assert fn is not None
                self._while(s, fr, fn, opens if opens is not None else [], tail)
            case ir.SRequire():
                # a requirement claim reads only the requires it names in the machine's
                # steps; under requires_hold (no state) every require counts
                if not self.low.collect_requires or (
                        self.low.wanted is not None and fr.state is not None and s.name != self.low.wanted):
                    return
                # a violation denies the condition, requires_hold asserts it: pol 0
                cond = self.low.ev(s.cond, fr, 0)
                fr.requires.append(ReqOb(s.name, s.site, fr.active(), cond, fr.label))
            case ir.SEmit():
                fr.emits.append((fr.active(), self.low.ev(s.value, fr)))
            case ir.SReturn():
                # the first return that runs decides: active() is false after it, so a
                # later one changes nothing
                v = self.low.ev(s.value, fr, fr.pol)
                act = fr.active()
                fr.ret = v if fr.ret is None else bv.ite(act, v, fr.ret)
                fr.returned = disj(fr.returned, act)
            case ir.SCall():
                # the value is dropped; the requires and emits are the caller's
                res = self.low.call(s.call, fr, 0, label=fr.label)
                fr.requires.extend(res.requires)
                fr.emits.extend(res.emits)
            case _:
                assert_never(s)

    def _written_maps(self, stmts: tuple[ir.Stmt, ...], seen: set[str] | None = None) -> set[str]:
        """The state maps ``stmts`` write, in the functions they call too."""
        out: set[str] = set()
        seen = seen if seen is not None else set()
        for s in stmts:
            match s:
                case ir.SMapWrite():
                    out.add(s.name)
                case ir.SIf():
                    out |= self._written_maps(s.then, seen) | self._written_maps(s.else_, seen)
                case ir.SForConst():
                    out |= self._written_maps(s.body, seen)
                case ir.SCall() if s.call.name not in seen:
                    seen.add(s.call.name)
                    f = self.low.program.fn(s.call.name, self.low.strategy)
                    if isinstance(f.body, tuple):
                        out |= self._written_maps(f.body, seen)
                case (ir.SLet() | ir.SAssign() | ir.SStateAssign() | ir.SForBulk() | ir.SWhile() | ir.SRequire()
                      | ir.SEmit() | ir.SReturn() | ir.SCall()):
                    # nothing to follow: a nested loop over a set that writes is refused
                    # (KHO522), a while loop only runs where nothing writes state (KHO412),
                    # and a function already followed adds nothing
                    pass
                case _:
                    assert_never(s)
        return out

    def _has_require(self, stmts: tuple[ir.Stmt, ...]) -> bool:
        """Some `require` this lowering collects can run in these statements (calls
        included)."""
        return mentions_require(stmts, self.low.wanted, self.low.program, self.low.strategy)

    def _bulk(self, s: ir.SForBulk, fr: Frame) -> None:
        """A loop over a set of indices (up to 2^64 pfns), every index at once. Its body
        writes a map only at the loop's index (KHO520), reads a written map only there
        (KHO521) and assigns no outer local (KHO419), so an index's new entries are the
        body run at that index from the state before the loop, whatever the order of the
        indices. The maps it writes become ``BulkMap``s that run the body at the index
        a read asks for: a loop over every pfn costs what the claim reads of it."""
        if not self._written_maps(s.body):
            # a loop that only checks needs no machine state: it may run in a function a
            # claim calls through requires_hold
            self._witness_loop(s, fr)
            return
        assert fr.state is not None
        if fr.bulk is not None:
            raise err("KHO522", s.span, "a loop that updates state cannot sit inside another loop over a set",
                       "merge the loops: one loop with a combined `where`")
        if s.domain == "nodes":
            raise err("KHO523", s.span, "a loop over nodes can check (require) but not update state",
                       "update per pfn: for pfn: ulong where ... { ... }")
        pre = fr.state.copy()  # every index starts from the state before the loop
        outer_guard = fr.active()
        written = self._written_maps(s.body)
        label = fr.label
        # The body runs when a map is read, which can be after the statements that follow
        # the loop have changed the frame: the loop sees the locals and state of where it
        # stands, so both are taken now.
        start = Frame(dict(fr.locals), pre, fr.guard, fr.returned, None, [], [], label, fr.bulk, fr.pol)

        # whether index q runs: the loop is reached, q is in its bounds and passes the
        # filter (evaluated on q's own frame, whose state is the old one)
        def in_domain(q: Any, sub: Frame) -> Any:
            return conj(outer_guard, *self._in_set(s, q, start, sub, 0))

        # outside the domain the body's writes are disabled by its guard, so a read there
        # passes through to the map before the loop
        def run_at(q: Any) -> Frame:
            sub = Frame(dict(start.locals), pre.copy(), z3.BoolVal(True, self.low.ctx),
                        z3.BoolVal(False, self.low.ctx), None, [], [], label, BulkCtx(q, written), 0)
            sub.locals[s.var.uid] = q
            sub.guard = in_domain(q, sub)
            self.low.layout.hint_pfn(q)
            self.exec_block(s.body, sub)
            return sub

        # one run per index term, which every written map reads
        cache: dict[int, Frame] = {}

        def at(q: Any) -> Frame:
            k = q.get_id()
            if k not in cache:
                cache[k] = run_at(q)
            return cache[k]

        for name in written:
            base = pre.maps[name]

            def read(q: Any, name: str = name) -> Sym:
                return read_after(at(q), name, q)

            fr.state.maps[name] = BulkMap(base, read)
        if self.low.collect_requires and self._has_require(s.body):
            # the requires hold for every index iff they hold for one the solver picks
            w = self.low.loop_witness(s, label)
            fr.requires.extend(at(w).requires)

    def _in_set(self, s: ir.SForBulk, q: Any, bounds: Frame, sub: Frame, pol: int) -> list[Any]:
        """Whether index ``q`` is in the loop's set: its bounds (evaluated on ``bounds``,
        the frame where the loop stands) and its filter (on ``sub``, q's own frame)."""
        conds = []
        ty = s.var.ty
        if s.lo is not None:
            conds.append(bv.compare("<=", self.low.ev(s.lo, bounds), q, ty))
        if s.hi is not None:
            conds.append(bv.compare("<", q, self.low.ev(s.hi, bounds), ty))
        if s.where is not None:
            conds.append(self.low.ev(s.where, sub, pol))
        return conds

    def _witness_loop(self, s: ir.SForBulk, fr: Frame) -> None:
        """A loop that only checks: its requires hold for every index iff they hold for
        one index the solver picks."""
        if not self.low.collect_requires or not self._has_require(s.body):
            return
        label = fr.label
        # the index is a Skolem constant: a violation needs one index where a require
        # fails, and the solver picks it; a node must belong to the layout (``exists``)
        if s.domain == "nodes":
            exists, w = self.low.layout_witness(s.site, "nodes", s.var.name, INT, f"{s.var.name} at {s.span}", label)
        else:
            exists = z3.BoolVal(True, self.low.ctx)
            w = self.low.loop_witness(s, label)
            self.low.layout.hint_pfn(w) if s.var.ty == ULONG else None
        # nothing is written: the frame shares the state instead of copying it
        sub = Frame(dict(fr.locals), fr.state, fr.active(), z3.BoolVal(False, self.low.ctx), None, [], [], label,
                    BulkCtx(w, set(), witness=True), 1)
        sub.locals[s.var.uid] = w
        # the filter only guards violations, where it must hold: pol 1
        sub.guard = conj(sub.guard, exists, *self._in_set(s, w, fr, sub, 1))
        self.exec_block(s.body, sub)
        fr.requires.extend(sub.requires)

    def _assigned_locals(self, stmts: tuple[ir.Stmt, ...]) -> set[int]:
        """The locals these statements assign, in nested blocks and loops too: an
        iteration of a loop around them can change each of them."""
        out: set[int] = set()
        for s in stmts:
            match s:
                case ir.SAssign():
                    out.add(s.var.uid)
                case ir.SIf():
                    out |= self._assigned_locals(s.then) | self._assigned_locals(s.else_)
                case ir.SForConst() | ir.SWhile():
                    out |= self._assigned_locals(s.body)
                case (ir.SLet() | ir.SStateAssign() | ir.SMapWrite() | ir.SForBulk() | ir.SRequire()
                      | ir.SEmit() | ir.SReturn() | ir.SCall()):
                    # a loop over a set of indices assigns no scalar (KHO419)
                    pass
                case _:
                    assert_never(s)
        return out

    def _while(self, s: ir.SWhile, fr: Frame, fn: ir.FnDef, opens: list[Any], tail: bool) -> None:
        """A `while` loop: iterations unrolled while the condition can hold, up to the
        unroll bound (or, while it is a constant truth, MAX_CONCRETE_UNROLL). Where the
        loop may still run after them (``running``):

        - without invariants, or where the stand-in is not allowed (phase B, a sequence
          compared whole, the invariants' own query), what follows counts only where the
          loop ended: ``running`` goes to ``opens``; a counterexample must make it false
          and a proof where it can be true is holds_to_depth (solve.py);
        - otherwise the invariants stand in for every later iteration: one more
          iteration runs from any state satisfying the invariants and the condition, and
          the loop ends in any state satisfying the invariants and not the condition. If
          the invariants hold where the stand-in starts (``entry_violation``, a case of
          the violation) and are inductive (``_consecution``, a query of its own), every
          later iteration starts in such a state, so the one iteration checks the body's
          requires for all of them, and a loop that ends by its condition ends in such a
          state. ``tail_flag`` is true in a model that uses the stand-in: a proof covers
          those models, a counterexample may not lean on them, since the stand-in's
          states need not be reachable."""
        outer = fr.guard
        label = fr.label
        iterations = 0
        concrete = True
        limit = MAX_CONCRETE_UNROLL
        while True:
            # a condition that simplifies to false ends the loop exactly; while every one
            # so far was a constant truth, the unroll bound does not apply
            c = z3.simplify(self.low.ev(s.cond, fr, 0))
            if is_false(c):
                fr.guard = outer
                return
            if not is_true(c):
                concrete = False
            if (not concrete and iterations >= self.low.unroll) or iterations >= limit:
                break
            # no conjunction with the earlier conditions is needed: after an iteration
            # that did not run, the locals are unchanged, so the condition that failed
            # fails again
            fr.guard = conj(outer, c)
            fr.label = f"{label}#{iterations}"
            self.exec_block(s.body, fr, fn, opens, tail)
            fr.label = label
            iterations += 1
        # the loop reached, not returned from, and its condition still true
        running = conj(fr.active(), c)
        # a local declared in the body is declared again by each iteration: only those
        # declared before the loop carry a value from one iteration to the next
        modified = sorted(u for u in self._assigned_locals(s.body) if u in fr.locals)
        info = LoopInfo(s.site, fn.name, label, running, None, None, None, s.span, iterations=iterations)
        self.low.loops.append(info)
        if not s.invariants or not tail or not self.low.allow_tail:
            # bounded: what follows the loop counts only where it ended within the bound
            opens.append(running)
            fr.guard = conj(outer, negate(running))
            return
        # Past the unrolled iterations: any state satisfying the invariants.
        inv_here = conj(*[self.low.ev(i, fr, 0) for i in s.invariants])
        # the stand-in needs the invariants where it starts: a case of the violation
        # (engine/formulas.py), whose model makes the result unknown
        info.entry_violation = conj(running, negate(inv_here))
        tail_flag = z3.Bool(self.low.fresh_name(f"beyond_unrolling@{s.site}"), self.low.ctx)
        info.tail = tail_flag
        before = {u: fr.locals[u] for u in modified}
        # the locals the loop changes take any values: the guard below keeps those that
        # satisfy the invariants and the condition, any later iteration's start
        havoc = {u: self._havoc_like(fr.locals[u], f"iter@{s.site}") for u in modified}
        for u, v in havoc.items():
            fr.locals[u] = v
        inv_h = conj(*[self.low.ev(i, fr, 0) for i in s.invariants])
        c_h = self.low.ev(s.cond, fr, 0)
        fr.guard = conj(outer, tail_flag, running, inv_h, c_h)
        fr.label = f"{label}#beyond"
        self.exec_block(s.body, fr, fn, opens, tail)
        fr.label = label
        # after the loop: a state satisfying the invariants where the condition fails
        exit_h = {u: self._havoc_like(before[u], f"exit@{s.site}") for u in modified}
        for u, v in exit_h.items():
            fr.locals[u] = v
        inv_x = conj(*[self.low.ev(i, fr, 0) for i in s.invariants])
        c_x = self.low.ev(s.cond, fr, 0)
        # asserted in every model, not only in those that use the stand-in: wherever the
        # loop may still run, an exit state must exist. That excludes every execution
        # that runs past the unrolling where none exists (a loop left only by `return`,
        # or never), with whatever it violates there: a proof stands only where the
        # loop's ``exit_gap`` shows that such executions do not exist (solve.py)
        self.low.hard.append(implies(running, conj(inv_x, negate(c_x))))
        # where the loop ended within the unrolling, the values it ended with
        for u in modified:
            fr.locals[u] = bv.ite(running, exit_h[u], before[u])
        # the state after the loop is the invariants' stand-in when the loop ran past the
        # unrolling: only executions that use the stand-in reach what follows then
        fr.guard = conj(outer, disj(negate(running), tail_flag))
        key = (f"{fn.strategy}::{fn.name}", s.site)
        if key not in self._consecution_done:
            self._consecution_done.add(key)
            info.consecution, info.exit_gap, info.exit_gap_here = self._consecution(s, fn)

    def _havoc_like(self, v: Sym, base: str) -> Sym:
        """A fresh value of ``v``'s type, field by field: any value a loop could leave."""
        if isinstance(v, StructVal):
            return StructVal(v.ty, tuple(self._havoc_like(f, base) for f in v.fields))
        if z3.is_bool(v):
            return z3.Bool(self.low.fresh_name(base), self.low.ctx)
        return z3.BitVec(self.low.fresh_name(base), v.size(), self.low.ctx)

    def _run_up_to(self, target: ir.SWhile, block: tuple[ir.Stmt, ...], fr: Frame, fn: ir.FnDef) -> bool:
        """Run what ``block`` executes before ``target``, in the blocks nesting it too;
        False if ``target`` is not in ``block``. An enclosing loop may be at any of its
        iterations: the locals it assigns, and a loop over constants its index, take any
        value. An enclosing branch's condition is left out. Both make the state more
        general than the states that reach the loop, never less (the invariants' query
        then covers every state that does)."""
        for k, st in enumerate(block):
            if st is target:
                self.exec_block(block[:k], fr, fn, [], False)
                return True
            inner = next((b for b in _blocks(st) if _contains(b, target)), None)
            if inner is None:
                continue
            self.exec_block(block[:k], fr, fn, [], False)
            if isinstance(st, ir.SForConst | ir.SForBulk):
                fr.locals[st.var.uid] = bv.fresh(st.var.ty, self.low.fresh_name(f"{st.var.name}@{target.site}"),
                                                 self.low.ctx)
            if isinstance(st, ir.SForConst | ir.SWhile):
                for u in self._assigned_locals(st.body):
                    if u in fr.locals:
                        fr.locals[u] = self._havoc_like(fr.locals[u], f"outer@{target.site}")
            return self._run_up_to(target, inner, fr, fn)
        return False

    def _consecution(self, s: ir.SWhile, fn: ir.FnDef) -> tuple[Any, Any | None, Any | None]:
        """Formulas over any state satisfying the invariants and the condition (for any
        arguments): satisfiable iff such a state leaves the invariants after one
        iteration; and whether such a state may have no exit state (the same arguments
        and unassigned locals, any values of the loop's own, the invariants and not the
        condition), one of two ways (see _no_exit)."""
        fr = Frame({}, None, z3.BoolVal(True, self.low.ctx), z3.BoolVal(False, self.low.ctx), None, [], [],
                   "inductive", None, 0)
        # fresh arguments: one query covers every call of the function
        for p in fn.params:
            fr.locals[p.uid] = bv.fresh(p.ty, self.low.fresh_name(f"arg {p.name}"), self.low.ctx)
        # values of the locals defined before the loop: the statements before it on its
        # way in from the function's body
        assert isinstance(fn.body, tuple)
        found = self._run_up_to(s, fn.body, fr, fn)
        assert found, "a while loop outside its function's body"
        for u in self._assigned_locals(s.body):
            if u in fr.locals:
                fr.locals[u] = self._havoc_like(fr.locals[u], f"ind@{s.site}")
        inv = conj(*[self.low.ev(i, fr, 0) for i in s.invariants])
        c = self.low.ev(s.cond, fr, 0)
        gap, gap_here = self._no_exit(s, fr, conj(inv, c))
        fr.guard = z3.BoolVal(True, self.low.ctx)
        # no stand-in inside the iteration being checked: a loop nested in the body is
        # cut, and the record of the cut makes a proof holds_to_depth where it may run on
        self.exec_block(s.body, fr, fn, [], False)
        inv2 = conj(*[self.low.ev(i, fr, 0) for i in s.invariants])
        return conj(inv, c, negate(inv2)), gap, gap_here

    def _no_exit(self, s: ir.SWhile, fr: Frame, running: Any) -> tuple[Any | None, Any | None]:
        """Whether a state of ``fr`` where the loop runs (``running``: the invariants
        and the condition) may have no exit state, as one of two formulas, the other
        None; each is satisfiable where that may be so.

        Exactly, as "no values of the locals the loop assigns satisfy the invariants
        and fail the condition" (quantified: a solver of its own), where the exit's
        formula is a function of those locals and of symbols ``running`` has already.
        Not where reading it made new symbols (a layout witness for pfn_node() of a
        new pfn, a quantifier's witness): their facts are the lowering's, outside the
        quantifier, so a quantified formula would fix one witness for all the values
        it ranges over. There, the loop's locals all 0, or all ones, must be an exit
        (quantifier-free, asked with the check's formulas): a sufficient condition,
        so a loop whose exit is elsewhere is reported as possibly without one."""
        saved = dict(fr.locals)
        assigned = [u for u in sorted(self._assigned_locals(s.body)) if u in fr.locals]
        bound: list[Any] = []
        for u in assigned:
            fr.locals[u] = self._havoc_like(fr.locals[u], f"exit@{s.site}")
            bound.extend(_leaves(fr.locals[u]))
        ends = self._ends(s, fr)
        fr.locals = dict(saved)
        known = _decl_ids(running) | {b.decl().get_id() for b in bound}
        if _decl_ids(ends) <= known:
            gap = z3.ForAll(bound, negate(ends)) if bound else negate(ends)
            return conj(running, gap), None
        candidates = []
        for fill in (0, -1):
            for u in assigned:
                fr.locals[u] = _filled(saved[u], fill)
            candidates.append(self._ends(s, fr))
            fr.locals = dict(saved)
        return None, conj(running, negate(disj(*candidates)))

    def _ends(self, s: ir.SWhile, fr: Frame) -> Any:
        """The loop may end here: its invariants hold and its condition fails."""
        return conj(*[self.low.ev(i, fr, 0) for i in s.invariants], negate(self.low.ev(s.cond, fr, 0)))


def _filled(v: Sym, fill: int) -> Sym:
    """A value of ``v``'s type with every bit of every field ``fill`` (0 or -1)."""
    if isinstance(v, StructVal):
        return StructVal(v.ty, tuple(_filled(f, fill) for f in v.fields))
    if z3.is_bool(v):
        return z3.BoolVal(fill != 0, v.ctx)
    return bv_value(fill & ((1 << v.size()) - 1), v.size(), v.ctx)


def _decl_ids(f: Any) -> set[int]:
    """The uninterpreted symbols (constants and functions) ``f`` mentions."""
    out: set[int] = set()
    seen: set[int] = set()
    stack = [f]
    while stack:
        e = stack.pop()
        if e.get_id() in seen:
            continue
        seen.add(e.get_id())
        if z3.is_quantifier(e):
            stack.append(e.body())
        elif z3.is_app(e):
            if e.decl().kind() == z3.Z3_OP_UNINTERPRETED:
                out.add(e.decl().get_id())
            stack.extend(e.children())
    return out


def _leaves(v: Sym) -> list[Any]:
    """The z3 constants of a fresh value, field by field."""
    if isinstance(v, StructVal):
        return [c for f in v.fields for c in _leaves(f)]
    return [v]


def _blocks(s: ir.Stmt) -> tuple[tuple[ir.Stmt, ...], ...]:
    """The blocks of statements directly inside ``s``."""
    match s:
        case ir.SIf():
            return (s.then, s.else_)
        case ir.SForConst() | ir.SForBulk() | ir.SWhile():
            return (s.body,)
        case (ir.SLet() | ir.SAssign() | ir.SStateAssign() | ir.SMapWrite() | ir.SRequire() | ir.SEmit()
              | ir.SReturn() | ir.SCall()):
            return ()
        case _:
            assert_never(s)


def _contains(block: tuple[ir.Stmt, ...], target: ir.Stmt) -> bool:
    return any(st is target or any(_contains(b, target) for b in _blocks(st)) for st in block)


def mentions_require(stmts: tuple[ir.Stmt, ...], name: str | None, program: ir.Program,
                     strategy: str | None) -> bool:
    """Whether `require name` (any require for None) is in stmts or a function they call."""
    return any(isinstance(n, ir.SRequire) and (name is None or n.name == name)
               for n in ir.walk(stmts, program, strategy))


__all__ = ["MAX_CONCRETE_UNROLL", "Evaluator", "Statements", "mentions_require"]
