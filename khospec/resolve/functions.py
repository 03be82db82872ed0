"""Functions, steps and strategies: the bodies, and where each function may be called.

A function's flags (reads state, writes state, loops or emits) are the union over
every definition of its name, its strategies' included, and over everything it calls,
because a strategy may swap any definition in. Calls are checked against those flags
only once every body is known (``validate_calls``).
"""

from __future__ import annotations

import itertools
from typing import assert_never

from khospec import ir
from khospec import syntax as S
from khospec.diagnostics import Related, Span
from khospec.resolve.expressions import Expressions
from khospec.resolve.statements import Statements
from khospec.resolve.symbols import Ctx, FnFlags, FnSig, Scope, Symbols


class Functions:
    """Types the bodies of functions and steps, and strategies' replacements for them."""

    def __init__(self, sym: Symbols, exprs: Expressions, stmts: Statements) -> None:
        self.sym = sym
        self.exprs = exprs
        self.stmts = stmts
        # the (code, call) pairs reported: a constant's calls are checked where it is
        # declared and again wherever it is inlined, and one report per call is enough
        self._reported: set[tuple[str, Span]] = set()

    def fn_body(self, sig: FnSig) -> ir.FnDef:
        """The typed body of a function or of a strategy's version of one, with its own
        flags recorded (under ``strategy::name`` for a strategy's)."""
        # the parameters are immutable, in a scope of their own around the body's: a
        # `let` in the body may take a parameter's name
        scope = Scope()
        locals_: list[ir.Local] = []
        for (pname, pty), pdecl in zip(sig.params, sig.decl.params, strict=True):
            loc = ir.Local(pname, next(self.sym.uids), pty, pdecl.span)
            scope.names[pname] = loc
            locals_.append(loc)
        ctx = Ctx("fn", fn=sig)
        body: tuple[ir.Stmt, ...] | ir.Expr
        if isinstance(sig.decl.body, S.Block):
            body = self.stmts.block(sig.decl.body, Scope(parent=scope), ctx)
            if sig.ret is not None and not _always_returns(body):
                self.sym.error("KHO402", sig.decl.name.span,
                               f"function `{sig.name}` may end without returning a {sig.ret}",
                               "end every path with return")
        else:
            e = self.exprs.expr(sig.decl.body, scope, ctx)
            assert sig.ret is not None
            # a stand-in for a body with an error (reported), so the FnDef is whole
            body = (
                self.exprs.convert(e, sig.ret, sig.decl.body.span, "result")
                if e is not None
                else ir.Const(0, sig.ret)
            )
        key = sig.name if sig.strategy is None else f"{sig.strategy}::{sig.name}"
        flags = FnFlags("reads" in ctx.flags, "writes" in ctx.flags, "loop" in ctx.flags, ctx.calls)
        # a strategy that defines a name twice (reported): what either body does counts
        if (old := self.sym.fn_flags.get(key)) is not None:
            flags = FnFlags(old.reads or flags.reads, old.writes or flags.writes, old.loops or flags.loops,
                            [*old.calls, *flags.calls])
        self.sym.fn_flags[key] = flags
        return ir.FnDef(
            sig.name, tuple(locals_), sig.ret, sig.emits, body,
            "reads" in ctx.flags, "writes" in ctx.flags, "loop" in ctx.flags,
            sig.strategy, sig.decl.span,
        )

    def step(self, d: S.StepDecl, strategy: str | None) -> ir.StepDef:
        ctx = Ctx("step")
        guard = None
        # the guard reads the state the step would start from but changes nothing: the
        # engine evaluates it on that state, as it does an `always` claim
        if d.guard is not None:
            gctx = Ctx("trace")
            g = self.exprs.expr(d.guard, Scope(), gctx)
            guard = self.exprs.want_bool(g, d.guard.span, "a step guard")
            for callee, span in gctx.calls:
                self.sym.pending_calls.append((callee, gctx.kind, span))
        body = self.stmts.block(d.body, Scope(), ctx)
        for callee, span in ctx.calls:
            self.sym.pending_calls.append((callee, "step", span))
        return ir.StepDef(d.name.name, guard, body, strategy, d.span)

    def strategy(self, d: S.StrategyDecl, fns: dict[str, ir.FnDef],
                 steps: dict[str, ir.StepDef]) -> ir.StrategyDef | None:
        """A strategy's functions and steps, each the replacement of a declared one."""
        sfns: dict[str, ir.FnDef] = {}
        for f in d.fns:
            name = f.name.name
            base = self.sym.fn_sigs.get(name)
            # this definition's own: a strategy may (wrongly) define a name twice
            sig = next((s for s in self.sym.strategy_fn_sigs.get((d.name.name, name), ()) if s.decl is f), None)
            if base is None:
                self.sym.error("KHO403", f.name.span,
                               f"strategy `{d.name.name}` redefines `{name}`, which is not a function",
                               self.sym.suggest(name, self.sym.fn_sigs) or
                               "a strategy gives alternative definitions of functions and steps declared outside it")
                continue
            # its signature was refused in pass 1 (reported)
            if sig is None:
                continue
            # every call is typed against the base signature, and the strategy swaps its
            # definition in at each of them: the types must be the base's exactly
            if (sig.params, sig.ret, sig.emits) != (base.params, base.ret, base.emits):
                self.sym.error("KHO404", f.name.span,
                               f"`{name}` in strategy `{d.name.name}` has a different signature "
                               "from the base definition",
                               "keep the parameter types and result type of the base definition",
                               [Related(base.decl.span, "base definition")])
                continue
            if name in sfns:
                self.sym.error("KHO202", f.name.span, f"`{name}` is defined twice in strategy `{d.name.name}`")
                # typed for its errors all the same; the first definition stands
                self.fn_body(sig)
                continue
            sfns[name] = self.fn_body(sig)
        ssteps: dict[str, ir.StepDef] = {}
        for st in d.steps:
            if st.name.name not in steps:
                self.sym.error("KHO403", st.name.span,
                               f"strategy `{d.name.name}` redefines step `{st.name.name}`, which is not declared",
                               self.sym.suggest(st.name.name, steps))
                continue
            ssteps[st.name.name] = self.step(st, d.name.name)
        return ir.StrategyDef(d.name.name, tuple(e.name for e in d.extends), sfns, ssteps, d.span)

    def check_strategy_extends(self, strategies: dict[str, ir.StrategyDef]) -> None:
        """Report unknown parents and cycles, and drop them, so that a strategy's chain
        names only strategies and ends."""
        for s in list(strategies.values()):
            known = tuple(e for e in s.extends if e in strategies)
            for e in s.extends:
                if e not in strategies:
                    self.sym.error("KHO210", s.span, f"strategy `{s.name}` extends unknown strategy `{e}`",
                                   self.sym.suggest(e, strategies))
            strategies[s.name] = ir.StrategyDef(s.name, known, s.fns, s.steps, s.span)

        # one report per cycle, on the member declared first, and the cycle is broken
        # there (that member's edge on it is dropped); a strategy that merely extends
        # into a cycle is no member of it and keeps its parents
        order = {name: i for i, name in enumerate(strategies)}
        while (found := _extends_cycle(strategies)) is not None:
            members = found[:-1]
            first = members.index(min(members, key=order.__getitem__))
            path = [*members[first:], *members[:first], members[first]]
            s = strategies[path[0]]
            self.sym.error("KHO405", s.span, f"strategy `{s.name}` extends itself (through {' -> '.join(path)})",
                           related=[Related(strategies[a].span, f"`{a}` extends `{b}`")
                                    for a, b in itertools.pairwise(path[1:])])
            strategies[s.name] = ir.StrategyDef(s.name, tuple(e for e in s.extends if e != path[1]),
                                                s.fns, s.steps, s.span)

    def compute_fn_flags(self, fns: dict[str, ir.FnDef], strategies: dict[str, ir.StrategyDef]) -> None:
        # Union of every definition of a name: strategies may swap any of them in.
        defs: dict[str, list[str]] = {}
        for key in self.sym.fn_flags:
            name = key.split("::")[-1]
            defs.setdefault(name, []).append(key)
        total: dict[str, FnFlags] = {}
        # depth-first search: 1 while a name's callees are visited, 2 once its total is
        # known; meeting a 1 again is a cycle of calls
        state: dict[str, int] = {}

        def visit(name: str, span: Span | None) -> FnFlags:
            if state.get(name) == 2:
                return total[name]
            if state.get(name) == 1:
                # reported at the call that closes the cycle; its flags count where the
                # cycle was entered
                if span is not None:
                    self.sym.error("KHO411", span, f"`{name}` calls itself (directly or through other functions)",
                                   "calls are inlined: write the recursion as a bounded loop")
                return FnFlags()
            state[name] = 1
            acc = FnFlags()
            for key in defs.get(name, []):
                fl = self.sym.fn_flags[key]
                acc.reads |= fl.reads
                acc.writes |= fl.writes
                acc.loops |= fl.loops
                for callee, cspan in fl.calls:
                    sub = visit(callee, cspan)
                    acc.reads |= sub.reads
                    acc.writes |= sub.writes
                    acc.loops |= sub.loops
            state[name] = 2
            total[name] = acc
            return acc

        for name in defs:
            visit(name, None)
        self.sym.fn_total_flags = total

    def validate_calls(self, start: int = 0) -> int:
        """Check the calls recorded from ``start`` on against their callees' flags; the
        number of calls checked so far, for the next batch (checks' claims are resolved
        after the functions, and their calls must be checked too)."""
        # "pure" (`holds` claims, assumptions without `before`) reads no state; "trace"
        # (`always`/`after` claims, `before` assumptions) reads it but changes nothing;
        # loops and emits are for claims that read no state, where a function runs on
        # its own rather than at a point of a trace
        for callee, kind, span in self.sym.pending_calls[start:]:
            fl = self.sym.fn_total_flags.get(callee)
            if fl is None:
                continue
            if kind == "pure" and (fl.reads or fl.writes):
                self._call_error("KHO410", span,
                                 f"`{callee}` reads the machine state, so it cannot be used here",
                                 "state is readable in steps, in `always`/`after` claims and in `before` assumptions")
            elif kind == "trace" and fl.writes:
                self._call_error("KHO410", span, f"`{callee}` changes the machine state, so it cannot be used here",
                                 "only steps change state")
            elif kind in ("trace", "step") and fl.loops:
                self._call_error("KHO412", span,
                                 f"`{callee}` contains a while loop or emits values; "
                                 "such functions can only be used in claims",
                                 "call it from a `check` claim, e.g. `c in f(args)`")
        return len(self.sym.pending_calls)

    def _call_error(self, code: str, span: Span, message: str, hint: str) -> None:
        """Report a call once per code, however many places it is checked in."""
        if (code, span) not in self._reported:
            self._reported.add((code, span))
            self.sym.error(code, span, message, hint)


def _extends_cycle(strategies: dict[str, ir.StrategyDef]) -> list[str] | None:
    """A cycle of ``extends`` as the path round it (``[A, B, A]``), the first one a
    depth-first search meets in declaration order; None when there is none. Every
    parent named is a strategy (unknown ones were dropped)."""
    # 1 while a strategy's parents are searched, 2 once no cycle runs through them
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        if state.get(name) == 1:
            return [*stack[stack.index(name):], name]
        if state.get(name) == 2:
            return None
        state[name] = 1
        stack.append(name)
        for e in strategies[name].extends:
            found = visit(e)
            if found is not None:
                return found
        stack.pop()
        state[name] = 2
        return None

    for name in strategies:
        found = visit(name)
        if found is not None:
            return found
    return None


def _always_returns(body: tuple[ir.Stmt, ...]) -> bool:
    """Whether every path through ``body`` ends in a return, judged by the statements
    alone: no condition's value is considered, and a loop may run no iteration."""
    if not body:
        return False
    last = body[-1]
    match last:
        case ir.SReturn():
            return True
        case ir.SIf():
            return _always_returns(last.then) and _always_returns(last.else_)
        case (ir.SLet() | ir.SAssign() | ir.SStateAssign() | ir.SMapWrite() | ir.SForConst() | ir.SForBulk()
              | ir.SWhile() | ir.SRequire() | ir.SEmit() | ir.SCall()):
            # only a return, or an `if` whose branches both end in one, ends every path
            return False
        case _:
            assert_never(last)
