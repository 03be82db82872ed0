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
from khospec.types import INT, ULONG, Type

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

    def call(self, e: ir.CallFn, fr: Frame, pol: int, label: str, tail: bool = True) -> CallResult: ...

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
        match s:
            case ir.SLet():
                fr.locals[s.var.uid] = self.low.ev(s.value, fr, fr.pol)
            case ir.SAssign():
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
                if fr.bulk is not None and not idx.eq(fr.bulk.index):
                    raise err("KHO520", s.span, f"this loop writes `{s.name}` at an index other than its own",
                               "a loop over a set of indices updates each index on its own")
                value = self.low.ev(s.value, fr)
                fr.state.maps[s.name] = WriteMap(fr.state.maps[s.name], fr.active(), idx, s.path, value)
            case ir.SIf():
                outer = fr.guard
                if fr.bulk is not None and fr.bulk.witness:
                    # nothing is written here: each branch's guard only feeds violations, so
                    # the condition is asserted in the then-branch and denied in the else-branch
                    fr.guard = z3.And(outer, self.low.ev(s.cond, fr, 1))
                    self.exec_block(s.then, fr, fn, opens, tail)
                    if s.else_:
                        fr.guard = z3.And(outer, z3.Not(self.low.ev(s.cond, fr, -1)))
                        self.exec_block(s.else_, fr, fn, opens, tail)
                    fr.guard = outer
                    return
                c = self.low.ev(s.cond, fr, 0)
                fr.guard = z3.And(outer, c)
                self.exec_block(s.then, fr, fn, opens, tail)
                fr.guard = z3.And(outer, z3.Not(c))
                self.exec_block(s.else_, fr, fn, opens, tail)
                fr.guard = outer
            case ir.SForConst():
                ty = s.var.ty
                for i in range(s.lo, s.hi):
                    fr.locals[s.var.uid] = bv.const(i, ty, self.low.ctx)
                    self.exec_block(s.body, fr, fn, opens, tail)
            case ir.SForBulk():
                self._bulk(s, fr)
            case ir.SWhile():
                assert fn is not None
                self._while(s, fr, fn, opens if opens is not None else [], tail)
            case ir.SRequire():
                if not self.low.collect_requires or (
                        self.low.wanted is not None and fr.state is not None and s.name != self.low.wanted):
                    return
                cond = self.low.ev(s.cond, fr, 0)
                fr.requires.append(ReqOb(s.name, s.site, fr.active(), cond, fr.label))
            case ir.SEmit():
                fr.emits.append((fr.active(), self.low.ev(s.value, fr)))
            case ir.SReturn():
                v = self.low.ev(s.value, fr, fr.pol)
                act = fr.active()
                fr.ret = v if fr.ret is None else bv.ite(act, v, fr.ret)
                fr.returned = z3.Or(fr.returned, act)
            case ir.SCall():
                res = self.low.call(s.call, fr, 0, label=fr.label)
                fr.requires.extend(res.requires)
                fr.emits.extend(res.emits)
            case _:
                assert_never(s)

    def _written_maps(self, stmts: tuple[ir.Stmt, ...], seen: set[str] | None = None) -> set[str]:
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
        """Some `require` we collect can run in these statements (calls included)."""
        return mentions_require(stmts, self.low.wanted, self.low.program, self.low.strategy)

    def _bulk(self, s: ir.SForBulk, fr: Frame) -> None:
        assert fr.state is not None
        if not self._written_maps(s.body):
            self._witness_loop(s, fr)
            return
        if fr.bulk is not None:
            raise err("KHO522", s.span, "a loop that updates state cannot sit inside another loop over a set",
                       "merge the loops: one loop with a combined `where`")
        if s.domain == "nodes":
            raise err("KHO523", s.span, "a loop over nodes can check (require) but not update state",
                       "update per pfn: for pfn: ulong where ... { ... }")
        pre = fr.state.copy()
        outer_guard = fr.active()
        written = self._written_maps(s.body)
        label = fr.label

        def in_domain(q: Any, sub: Frame) -> Any:
            conds = [outer_guard]
            ty = s.var.ty
            if s.lo is not None:
                conds.append(bv.compare("<=", self.low.ev(s.lo, fr), q, ty))
            if s.hi is not None:
                conds.append(bv.compare("<", q, self.low.ev(s.hi, fr), ty))
            if s.where is not None:
                conds.append(self.low.ev(s.where, sub, 0))
            return z3.And(*conds)

        def run_at(q: Any) -> Frame:
            sub = Frame(dict(fr.locals), pre.copy(), z3.BoolVal(True, self.low.ctx), z3.BoolVal(False, self.low.ctx),
                        None, [], [], label, BulkCtx(q, written), 0)
            sub.locals[s.var.uid] = q
            sub.guard = in_domain(q, sub)
            self.low.layout.hint_pfn(q)
            self.exec_block(s.body, sub)
            return sub

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

    def _witness_loop(self, s: ir.SForBulk, fr: Frame) -> None:
        """A loop that only checks: its requires hold for every index iff they hold for
        one index the solver picks."""
        if not self.low.collect_requires or not self._has_require(s.body):
            return
        label = fr.label
        if s.domain == "nodes":
            exists, w = self.low.layout_witness(s.site, "nodes", s.var.name, INT, f"{s.var.name} at {s.span}", label)
        else:
            exists = z3.BoolVal(True, self.low.ctx)
            w = self.low.loop_witness(s, label)
            self.low.layout.hint_pfn(w) if s.var.ty == ULONG else None
        sub = Frame(dict(fr.locals), fr.state, fr.active(), z3.BoolVal(False, self.low.ctx), None, [], [], label,
                    BulkCtx(w, set(), witness=True), 1)
        sub.locals[s.var.uid] = w
        conds = [sub.guard, exists]
        ty = s.var.ty
        if s.lo is not None:
            conds.append(bv.compare("<=", self.low.ev(s.lo, fr), w, ty))
        if s.hi is not None:
            conds.append(bv.compare("<", w, self.low.ev(s.hi, fr), ty))
        if s.where is not None:
            conds.append(self.low.ev(s.where, sub, 1))
        sub.guard = z3.And(*conds)
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
        outer = fr.guard
        label = fr.label
        iterations = 0
        concrete = True
        limit = MAX_CONCRETE_UNROLL
        while True:
            c = z3.simplify(self.low.ev(s.cond, fr, 0))
            if z3.is_false(c):
                fr.guard = outer
                return
            if not z3.is_true(c):
                concrete = False
            if (not concrete and iterations >= self.low.unroll) or iterations >= limit:
                break
            fr.guard = z3.And(outer, c)
            fr.label = f"{label}#{iterations}"
            self.exec_block(s.body, fr, fn, opens, tail)
            fr.label = label
            iterations += 1
        running = z3.And(fr.active(), c)
        # a local declared in the body is declared again by each iteration: only those
        # declared before the loop carry a value from one iteration to the next
        modified = sorted(u for u in self._assigned_locals(s.body) if u in fr.locals)
        info = LoopInfo(s.site, fn.name, label, running, None, None, None, s.span)
        self.low.loops.append(info)
        if not s.invariants or not tail or not self.low.allow_tail:
            # bounded: what follows the loop counts only where it ended within the bound
            opens.append(running)
            fr.guard = z3.And(outer, z3.Not(running))
            return
        # Past the unrolled iterations: any state satisfying the invariants.
        inv_here = z3.And(*[self.low.ev(i, fr, 0) for i in s.invariants])
        info.entry_violation = z3.And(running, z3.Not(inv_here))
        tail_flag = z3.Bool(self.low.fresh_name(f"beyond_unrolling@{s.site}"), self.low.ctx)
        info.tail = tail_flag
        before = {u: fr.locals[u] for u in modified}
        havoc = {u: self._havoc_like(fr.locals[u], f"iter@{s.site}") for u in modified}
        for u, v in havoc.items():
            fr.locals[u] = v
        inv_h = z3.And(*[self.low.ev(i, fr, 0) for i in s.invariants])
        c_h = self.low.ev(s.cond, fr, 0)
        fr.guard = z3.And(outer, tail_flag, running, inv_h, c_h)
        fr.label = f"{label}#beyond"
        self.exec_block(s.body, fr, fn, opens, tail)
        fr.label = label
        # after the loop: a state satisfying the invariants where the condition fails
        exit_h = {u: self._havoc_like(before[u], f"exit@{s.site}") for u in modified}
        for u, v in exit_h.items():
            fr.locals[u] = v
        inv_x = z3.And(*[self.low.ev(i, fr, 0) for i in s.invariants])
        c_x = self.low.ev(s.cond, fr, 0)
        self.low.hard.append(z3.Implies(running, z3.And(inv_x, z3.Not(c_x))))
        for u in modified:
            fr.locals[u] = bv.ite(running, exit_h[u], before[u])
        # the state after the loop is the invariants' stand-in when the loop ran past the
        # unrolling: only executions that use the stand-in reach what follows then
        fr.guard = z3.And(outer, z3.Or(z3.Not(running), tail_flag))
        key = (f"{fn.strategy}::{fn.name}", s.site)
        if key not in self._consecution_done:
            self._consecution_done.add(key)
            info.consecution = self._consecution(s, fn)

    def _havoc_like(self, v: Sym, base: str) -> Sym:
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

    def _consecution(self, s: ir.SWhile, fn: ir.FnDef) -> Any:
        """Satisfiable iff some state satisfying the invariants and the condition
        leaves them after one iteration (for any arguments)."""
        fr = Frame({}, None, z3.BoolVal(True, self.low.ctx), z3.BoolVal(False, self.low.ctx), None, [], [],
                   "inductive", None, 0)
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
        inv = z3.And(*[self.low.ev(i, fr, 0) for i in s.invariants])
        c = self.low.ev(s.cond, fr, 0)
        fr.guard = z3.BoolVal(True, self.low.ctx)
        self.exec_block(s.body, fr, fn, [], False)
        inv2 = z3.And(*[self.low.ev(i, fr, 0) for i in s.invariants])
        return z3.And(inv, c, z3.Not(inv2))


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
