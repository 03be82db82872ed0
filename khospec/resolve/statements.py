"""Statements: the bodies of functions and steps.

What a statement may do depends on where it is (``Ctx.kind``): state is assigned only
in steps and functions, while loops and emit only in functions used by claims, loops
over symbolic index sets only where state is written. The flags a body collects
(reads, writes, loops) decide later where a function may be called.
"""

from __future__ import annotations

from khospec import ir
from khospec import syntax as S
from khospec.diagnostics import Span
from khospec.resolve.expressions import Expressions, fold
from khospec.resolve.symbols import Ctx, Scope, Symbols
from khospec.types import INT, IntType, MapType, SeqType, StructType, Type, usual_conversion


class Statements:
    """Types statements; expressions in them go to the shared ``Expressions``."""

    def __init__(self, sym: Symbols, exprs: Expressions) -> None:
        self.sym = sym
        self.exprs = exprs

    def block(self, b: S.Block, scope: Scope, ctx: Ctx) -> tuple[ir.Stmt, ...]:
        out: list[ir.Stmt] = []
        for s in b.stmts:
            r = self.stmt(s, scope, ctx)
            if r is not None:
                out.append(r)
        return tuple(out)

    def stmt(self, s: S.Stmt, scope: Scope, ctx: Ctx) -> ir.Stmt | None:
        if isinstance(s, S.Let):
            return self._let(s, scope, ctx)
        if isinstance(s, S.Assign):
            return self._assign(s, scope, ctx)
        if isinstance(s, S.If):
            # both branches are typed even when the condition is not, to report their
            # errors too
            c = self.exprs.want_bool(self.exprs.expr(s.cond, scope, ctx), s.cond.span, "an if condition")
            then = self.block(s.then, Scope(parent=scope), ctx)
            else_: tuple[ir.Stmt, ...] = ()
            if isinstance(s.else_, S.Block):
                else_ = self.block(s.else_, Scope(parent=scope), ctx)
            elif isinstance(s.else_, S.If):
                e = self.stmt(s.else_, Scope(parent=scope), ctx)
                else_ = (e,) if e is not None else ()
            if c is None:
                return None
            return ir.SIf(c, then, else_, s.span)
        if isinstance(s, S.ForRange):
            return self._for_range(s, scope, ctx)
        if isinstance(s, S.ForAll):
            return self._for_all(s, scope, ctx)
        if isinstance(s, S.ForNodes):
            return self._bulk(s.var, INT, None, None, s.where, s.body, s.span, Scope(parent=scope), ctx,
                              domain="nodes")
        if isinstance(s, S.While):
            # the engine runs a while loop only inside a function's call, by unrolling
            # and the invariants; a step's body has no function around it
            if ctx.kind != "fn":
                self.sym.error("KHO412", s.span, "while loops are only allowed in functions used by claims",
                               "steps update whole ranges with `for p in [lo, hi) { ... }`")
                return None
            ctx.flags.add("loop")
            c = self.exprs.want_bool(self.exprs.expr(s.cond, scope, ctx), s.cond.span, "a loop condition")
            invs = [self.exprs.want_bool(self.exprs.expr(i, scope, ctx), i.span, "an invariant") for i in s.invariants]
            body = self.block(s.body, Scope(parent=scope), ctx)
            if c is None or any(i is None for i in invs):
                return None
            site = self.sym.site(s.span)
            return ir.SWhile(c, tuple(i for i in invs if i is not None), body, site, s.span)
        if isinstance(s, S.Require):
            # the name counts even if the condition does not type: a `requirement NAME`
            # claim then reports no unknown name on top
            self.sym.requirement_names.add(s.name.name)
            c = self.exprs.want_bool(self.exprs.expr(s.cond, scope, ctx), s.cond.span, "a requirement")
            if c is None:
                return None
            return ir.SRequire(s.name.name, c, self.sym.site(s.span), s.span)
        if isinstance(s, S.Emit):
            if ctx.fn is None or ctx.fn.emits is None:
                self.sym.error("KHO413", s.span, "emit is only allowed in a function declared with `emits T`")
                return None
            # like a while loop, emitting confines the function to claims: its values
            # are read only by `in f(args)` and `f(args) == [...]`
            ctx.flags.add("loop")
            val = self.exprs.expr(s.value, scope, ctx)
            if val is None:
                return None
            return ir.SEmit(self.exprs.convert(val, ctx.fn.emits, s.value.span, "emitted value"), s.span)
        if isinstance(s, S.Return):
            if ctx.fn is None or ctx.fn.ret is None:
                self.sym.error("KHO414", s.span, "return with a value outside a function with a result type")
                return None
            val = self.exprs.expr(s.value, scope, ctx)
            if val is None:
                return None
            return ir.SReturn(self.exprs.convert(val, ctx.fn.ret, s.value.span, "returned value"), s.span)
        if isinstance(s, S.CallStmt):
            call = self.exprs.call(s.call, scope, ctx, statement=True)
            if call is None:
                return None
            # a builtin or a param function has no effect but its result; a spec
            # function's call may still matter for its requires, emits and writes
            if not isinstance(call, ir.CallFn):
                self.sym.warn("KHO415", s.span, "the result of this call is unused")
                return None
            return ir.SCall(call, s.span)
        raise AssertionError(s)  # pragma: no cover

    def _let(self, s: S.Let, scope: Scope, ctx: Ctx) -> ir.Stmt | None:
        """``let``/``var``: with a type, the value converts to it as in a C
        initialisation; without, the name takes the value's C type (``let x = 1`` is
        an int)."""
        e = self.exprs.expr(s.value, scope, ctx)
        ty: Type | None
        if s.type is not None:
            ty = self.sym.resolve_type(s.type)
            if ty is None or e is None:
                return None
            e = self.exprs.convert(e, ty, s.value.span, f"`{s.name.name}`")
        else:
            if e is None:
                return None
            ty = e.ty
            if isinstance(ty, SeqType):
                self.sym.error("KHO304", s.value.span, "a function that emits values has no single value to bind",
                               "use `x in f(args)` in a claim")
                return None
        loc = self.sym.new_local(scope, s.name, ty, s.mutable)
        if loc is None:
            return None
        return ir.SLet(loc, e, s.span)

    def _assign(self, s: S.Assign, scope: Scope, ctx: Ctx) -> ir.Stmt | None:
        """An assignment to a `var`, a scalar state variable or a state map's entry
        (``m[i] = v``, ``m[i].f.g = v``): the only places a value is stored."""
        target = s.target
        path: list[str] = []
        # the last field is the outermost node of the lvalue
        while isinstance(target, S.LvField):
            path.insert(0, target.name.name)
            target = target.base
        index_expr: S.Expr | None = None
        if isinstance(target, S.LvIndex):
            index_expr = target.index
            base = target.base
            if not isinstance(base, S.LvName):
                self.sym.error("KHO416", s.target.span,
                               "only state maps can be indexed: write map[index].field = value")
                return None
            target = base
        assert isinstance(target, S.LvName)
        name = target.name.name
        # the current value, to type compound assignments
        if index_expr is None and not path:
            loc = scope.lookup(name)
            if loc is not None:
                if not scope.is_mutable(loc):
                    self.sym.error("KHO417", target.span, f"`{name}` is immutable",
                                   f"declare it with `var {name} = ...` to assign it")
                    return None
                # uids grow in declaration order: a smaller one than the loop variable's
                # was declared before the loop
                if ctx.bulk_var is not None and loc.uid < ctx.bulk_var.uid:
                    # the loop runs for every index at once, so a value declared before it
                    # cannot carry from one index to the next (it was silently left as it was)
                    self.sym.error("KHO419", s.span, f"`{name}` is assigned inside a loop over a set of indices",
                                   "such loops run for every index at once; accumulate in a `while` loop")
                    return None
                value = self._assign_value(s, ir.Local(loc.name, loc.uid, loc.ty, loc.span), scope, ctx)
                return None if value is None else ir.SAssign(loc, value, s.span)
        sv = self.sym.state.get(name)
        if sv is None:
            if scope.lookup(name) is not None:
                self.sym.error("KHO416", s.target.span,
                               f"`{name}` is a local value; only state maps take indices and fields")
            else:
                self.sym.error("KHO210", target.span, f"unknown variable `{name}`",
                               self.sym.suggest(name, [*self.sym.state, *scope.visible_names()]))
            return None
        if ctx.kind not in ("step", "fn"):
            self.sym.error("KHO418", s.span, "state is assigned only in steps")
            return None
        ctx.flags.add("writes")
        # the loop's indices all see the state from before it, so a scalar written at
        # each one has no single value afterwards
        if ctx.bulk_var is not None and index_expr is None:
            self.sym.error("KHO419", s.span, f"`{name}` is assigned inside a loop over a set of indices",
                           "such loops update map entries at the loop index only")
            return None
        if index_expr is None:
            if isinstance(sv.ty, MapType):
                self.sym.error("KHO416", s.target.span, f"`{name}` is a map: assign one entry, {name}[i] = ...")
                return None
            if path:
                cur_ty: Type | None = sv.ty
                cur: ir.Expr = ir.StateRef(name, sv.ty, target.span)
                self.sym.error("KHO416", s.target.span, "assign struct state variables whole")
                return None
            value = self._assign_value(s, ir.StateRef(name, sv.ty, target.span), scope, ctx)
            return None if value is None else ir.SStateAssign(name, value, s.span)
        if not isinstance(sv.ty, MapType):
            self.sym.error("KHO416", s.target.span, f"`{name}` is not a map")
            return None
        idx = self.exprs.expr(index_expr, scope, ctx)
        if idx is None:
            return None
        idx = self.exprs.convert(idx, sv.ty.key, index_expr.span, "map index")
        # the entry's current value, for a compound assignment and for the type the
        # value converts to
        cur_ty = sv.ty.value
        cur = ir.MapRead(name, idx, sv.ty.value, s.target.span)
        for f in path:
            if not isinstance(cur_ty, StructType) or cur_ty.field_type(f) is None:
                self.sym.error("KHO305", s.target.span, f"{cur_ty} has no field `{f}`",
                               self.sym.suggest(f, [n for n, _ in cur_ty.fields], "its fields are")
                               if isinstance(cur_ty, StructType) else None)
                return None
            ft = cur_ty.field_type(f)
            assert ft is not None
            cur = ir.FieldGet(cur, f, ft, s.target.span)
            cur_ty = ft
        value = self._assign_value(s, cur, scope, ctx)
        if value is None:
            return None
        return ir.SMapWrite(name, idx, tuple(path), value, s.span)

    def _assign_value(self, s: S.Assign, current: ir.Expr, scope: Scope, ctx: Ctx) -> ir.Expr | None:
        """The value stored: C11 6.5.16.2, ``a op= b`` is ``a = a op b`` (the
        operation with its own conversions), then converted to ``a``'s type."""
        e = self.exprs.expr(s.value, scope, ctx)
        if e is None:
            return None
        if s.op != "=":
            op = s.op[:-1]
            combined = self.exprs.binary(op, current, e, s.span, s.span)
            if combined is None:
                return None
            e = combined
        return self.exprs.convert(e, current.ty, s.value.span, "assigned value")

    def _for_range(self, s: S.ForRange, scope: Scope, ctx: Ctx) -> ir.Stmt | None:
        lo = self.exprs.expr(s.lo, scope, ctx)
        hi = self.exprs.expr(s.hi, scope, ctx)
        if lo is None or hi is None:
            return None
        if not isinstance(lo.ty, IntType) or not isinstance(hi.ty, IntType):
            self.sym.error("KHO301", s.span, "loop bounds must be integers")
            return None
        ty = usual_conversion(lo.ty, hi.ty)
        lo, hi = self.exprs.convert(lo, ty, s.lo.span, "bound"), self.exprs.convert(hi, ty, s.hi.span, "bound")
        lo_v, hi_v = fold(lo), fold(hi)
        inner = Scope(parent=scope)
        # constant bounds and at most 64 iterations: unrolled, run in order, so a local
        # may carry a value from one to the next; any other range (or a `where`, which
        # SForConst has no place for) is a loop over a set of indices, all at once
        if isinstance(lo_v, int) and isinstance(hi_v, int) and s.where is None and hi_v - lo_v <= 64:
            var = self.sym.new_local(inner, s.var, ty, False)
            body = self.block(s.body, inner, ctx)
            if var is None:
                return None
            return ir.SForConst(var, int(lo_v), int(hi_v), body, s.span)
        return self._bulk(s.var, ty, lo, hi, s.where, s.body, s.span, inner, ctx)

    def _for_all(self, s: S.ForAll, scope: Scope, ctx: Ctx) -> ir.Stmt | None:
        ty = self.sym.resolve_type(s.type)
        if ty is None:
            return None
        if not isinstance(ty, IntType):
            self.sym.error("KHO301", s.type.span, f"`for {s.var.name}: T` ranges over integers, not {ty}")
            return None
        return self._bulk(s.var, ty, None, None, s.where, s.body, s.span, Scope(parent=scope), ctx)

    def _bulk(self, ident: S.Ident, ty: IntType, lo: ir.Expr | None, hi: ir.Expr | None,
              where: S.Expr | None, body: S.Block, span: Span, inner: Scope, ctx: Ctx,
              domain: ir.BulkDomain = "int") -> ir.Stmt | None:
        """A loop over a set of indices: the body runs for every index at once, from the
        state before the loop (the engine updates each map entry pointwise), so it may
        write map entries but carries nothing from one index to the next."""
        if ctx.kind not in ("step", "fn"):
            self.sym.error("KHO419", span, "loops over symbolic index sets are only allowed in steps")
            return None
        var = self.sym.new_local(inner, ident, ty, False)
        if var is None:
            return None
        w = None
        # the same flags and calls: what the loop does, its function or step does
        sub = Ctx(ctx.kind, ctx.fn, var, ctx.flags, ctx.calls)
        if where is not None:
            w = self.exprs.want_bool(self.exprs.expr(where, inner, sub), where.span, "a loop filter")
            if w is None:
                return None
        b = self.block(body, Scope(parent=inner), sub)
        return ir.SForBulk(var, lo, hi, w, b, self.sym.site(span), domain, span)
