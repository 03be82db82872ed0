"""Expressions: typing, C's implicit conversions made explicit, constant folding.

Every implicit conversion becomes an ``ir.Convert`` (or a converted constant), so the
later stages never re-derive C's rules; those rules (promotions, usual arithmetic
conversions, literal types) come from types.py, and the arithmetic on constants from
carith.py. Constants are evaluated on first use, so that one may name another declared
after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import assert_never

from khospec import carith, ir
from khospec import syntax as S
from khospec.diagnostics import Related, Span
from khospec.resolve.symbols import Ctx, Scope, Symbols
from khospec.types import (
    BOOL,
    INT,
    MEM_RANGE,
    SCALARS,
    ULONG,
    BoolType,
    IntType,
    MapType,
    SeqType,
    StructType,
    Type,
    literal_type,
    promote,
    usual_conversion,
)

# Layout primitives: what every layout (symbolic or concrete) answers.
LAYOUT_BUILTINS: Mapping[str, tuple[tuple[Type, ...], Type]] = MappingProxyType({
    "pfn_in_ram": ((ULONG,), BOOL),
    "pfn_node": ((ULONG,), INT),
    "pfn_range": ((ULONG,), MEM_RANGE),
    "node_start_pfn": ((INT,), ULONG),
    "node_end_pfn": ((INT,), ULONG),
    "zone_movable_pfn": ((INT,), ULONG),
    "arch_zone_lowest_possible_pfn": ((INT,), ULONG),
    "arch_zone_highest_possible_pfn": ((INT,), ULONG),
})
LAYOUT_CONSTANTS: Mapping[str, Type] = MappingProxyType({"mirrored_kernelcore": BOOL})

# Kernel helpers with fixed argument and result types, as the kernel declares them
# (include/linux/count_zeros.h, include/linux/log2.h, include/vdso/bits.h).
SIMPLE_BUILTINS: Mapping[str, tuple[tuple[Type, ...], Type]] = MappingProxyType({
    "count_trailing_zeros": ((ULONG,), INT),
    "ilog2": ((ULONG,), INT),
    "BIT": ((ULONG,), ULONG),
})
# include/linux/minmax.h: the number of arguments; the type is the arguments'
SAME_TYPE_BUILTINS: Mapping[str, int] = MappingProxyType({"min": 2, "max": 2, "clamp": 3})
# include/linux/align.h: the result type, None for x's own
ALIGN_BUILTINS: Mapping[str, Type | None] = MappingProxyType({"IS_ALIGNED": BOOL, "ALIGN": None, "ALIGN_DOWN": None})

ALL_BUILTINS = frozenset(
    set(LAYOUT_BUILTINS) | set(SIMPLE_BUILTINS) | set(SAME_TYPE_BUILTINS) | set(ALIGN_BUILTINS)
)


class Expressions:
    """Types expressions against the shared symbol table."""

    def __init__(self, sym: Symbols) -> None:
        self.sym = sym

    def want_bool(self, e: ir.Expr | None, span: Span, what: str) -> ir.Expr | None:
        """``e`` when it is a bool. Unlike C, an integer is no truth value: a condition
        compares explicitly, so `x & MASK` cannot stand for `(x & MASK) != 0`."""
        if e is None:
            return None
        if not isinstance(e.ty, BoolType):
            self.sym.error("KHO306", span, f"{what} must be a bool, not {e.ty}",
                           "compare explicitly, e.g. `x != 0`" if isinstance(e.ty, IntType) else None)
            return None
        return e

    def convert(self, e: ir.Expr, to: Type, span: Span, what: str) -> ir.Expr:
        """Assignment conversion, as C does for initialisation, arguments and return."""
        if e.ty == to:
            return e
        if isinstance(to, IntType) and isinstance(e.ty, IntType):
            # a constant is converted here (modulo 2^width, as gcc does for signed types
            # too), so that it stays an ir.Const: binary()'s folding and min()'s
            # signedness check look for one
            if isinstance(e, ir.Const) and not isinstance(e.value, bool):
                return ir.Const(to.wrap(e.value), to, e.span)
            return ir.Convert(e, to, e.span)
        # a bool becomes 0 or 1, as C's _Bool does; an integer never becomes a bool
        # implicitly (want_bool)
        if isinstance(to, IntType) and isinstance(e.ty, BoolType):
            return ir.Convert(e, to, e.span)
        self.sym.error("KHO307", span, f"{what} must be {to}, not {e.ty}")
        return e

    def expr(self, e: S.Expr, scope: Scope, ctx: Ctx) -> ir.Expr | None:
        """The typed ``e``, or None when it has an error (reported once, where found:
        a caller given None reports nothing more about it)."""
        if isinstance(e, S.IntLit):
            t = literal_type(e.value, e.hex_like, e.unsigned, e.long)
            if t is None:
                self.sym.error("KHO302", e.span, f"{e.text} does not fit in any C integer type (at most 64 bits)")
                return None
            return ir.Const(e.value, t, e.span)
        if isinstance(e, S.BoolLit):
            return ir.Const(e.value, BOOL, e.span)
        if isinstance(e, S.Name):
            return self._name(e, scope, ctx)
        if isinstance(e, S.Unary):
            return self._unary(e, scope, ctx)
        if isinstance(e, S.Binary):
            # before the operands: a list is no expression on its own (KHO310)
            if e.op == "==" and isinstance(e.right, S.ListLit):
                return self._emits_eq(e, e.left, e.right, scope, ctx)
            left = self.expr(e.left, scope, ctx)
            right = self.expr(e.right, scope, ctx)
            if left is None or right is None:
                return None
            return self.binary(e.op, left, right, e.span, e.span)
        if isinstance(e, S.Cond):
            c = self.want_bool(self.expr(e.cond, scope, ctx), e.cond.span, "a condition")
            a = self.expr(e.then, scope, ctx)
            b = self.expr(e.else_, scope, ctx)
            if c is None or a is None or b is None:
                return None
            # C11 6.5.15: integer arms take the usual arithmetic conversions; other
            # types must match
            if isinstance(a.ty, IntType) and isinstance(b.ty, IntType):
                t = usual_conversion(a.ty, b.ty)
                return ir.Ite(c, self.convert(a, t, e.span, ""), self.convert(b, t, e.span, ""), t, e.span)
            if a.ty != b.ty:
                self.sym.error("KHO308", e.span, f"the two arms of `?:` have types {a.ty} and {b.ty}")
                return None
            return ir.Ite(c, a, b, a.ty, e.span)
        if isinstance(e, S.Cast):
            inner = self.expr(e.operand, scope, ctx)
            if inner is None:
                return None
            to = SCALARS[e.type.name]
            if isinstance(to, BoolType):
                if not isinstance(inner.ty, IntType | BoolType):
                    self.sym.error("KHO309", e.span, f"cannot cast {inner.ty} to bool")
                    return None
                if isinstance(inner.ty, BoolType):
                    return inner
                # C11 6.3.1.2: converting to _Bool compares with 0
                return ir.Binary("!=", inner, ir.Const(0, inner.ty), BOOL, e.span)
            if not isinstance(inner.ty, IntType | BoolType):
                self.sym.error("KHO309", e.span, f"cannot cast {inner.ty} to {to}")
                return None
            assert isinstance(to, IntType)
            if isinstance(inner, ir.Const) and not isinstance(inner.value, bool):
                return ir.Const(to.wrap(inner.value), to, e.span)
            return ir.Convert(inner, to, e.span)
        if isinstance(e, S.Call):
            return self.call(e, scope, ctx)
        if isinstance(e, S.Field):
            obj = self.expr(e.obj, scope, ctx)
            if obj is None:
                return None
            if not isinstance(obj.ty, StructType):
                self.sym.error("KHO305", e.name.span, f"{obj.ty} has no fields (`.{e.name.name}`)")
                return None
            ft = obj.ty.field_type(e.name.name)
            if ft is None:
                self.sym.error("KHO305", e.name.span, f"{obj.ty} has no field `{e.name.name}`",
                               self.sym.suggest(e.name.name, [n for n, _ in obj.ty.fields], "its fields are"))
                return None
            return ir.FieldGet(obj, e.name.name, ft, e.span)
        if isinstance(e, S.Index):
            # maps exist only as state, so a local of a state map's name (which hides it)
            # is no map either
            if not isinstance(e.obj, S.Name) or e.obj.id not in self.sym.state or scope.lookup(e.obj.id):
                self.sym.error("KHO416", e.span, "only state maps can be indexed")
                return None
            sv = self.sym.state[e.obj.id]
            if not isinstance(sv.ty, MapType):
                self.sym.error("KHO416", e.span, f"`{e.obj.id}` is not a map")
                return None
            if ctx.kind == "pure":
                self.sym.error("KHO410", e.span, f"`{e.obj.id}` is machine state; it cannot be read here",
                               "state is readable in steps, `always`/`after` claims and `before` assumptions")
                return None
            ctx.flags.add("reads")
            idx = self.expr(e.index, scope, ctx)
            if idx is None:
                return None
            if not isinstance(idx.ty, IntType):
                self.sym.error("KHO301", e.index.span, f"a map index must be an integer, not {idx.ty}")
                return None
            return ir.MapRead(e.obj.id, self.convert(idx, sv.ty.key, e.index.span, "index"), sv.ty.value, e.span)
        if isinstance(e, S.StructLit):
            st = self.sym.structs.get(e.type_name.name)
            if st is None:
                self.sym.error("KHO220", e.type_name.span, f"unknown struct `{e.type_name.name}`",
                               self.sym.suggest(e.type_name.name, self.sym.structs))
                return None
            given: dict[str, ir.Expr] = {}
            for fi in e.fields:
                ft = st.field_type(fi.name.name)
                if ft is None:
                    self.sym.error("KHO305", fi.name.span, f"{st} has no field `{fi.name.name}`",
                                   self.sym.suggest(fi.name.name, [n for n, _ in st.fields]))
                    continue
                if fi.name.name in given:
                    self.sym.error("KHO202", fi.name.span, f"field `{fi.name.name}` is given twice")
                    continue
                v = self.expr(fi.value, scope, ctx)
                if v is not None:
                    given[fi.name.name] = self.convert(v, ft, fi.value.span, f"field {fi.name.name}")
            # C11 6.7.9: a member no designator names is zero
            fields = tuple(given.get(n, _zero(t)) for n, t in st.fields)
            return ir.StructMake(st, fields, e.span)
        if isinstance(e, S.ListLit):
            self.sym.error("KHO310", e.span, "a list is only allowed after `f(args) ==`, to compare what f emits")
            return None
        if isinstance(e, S.InInterval):
            item = self.expr(e.item, scope, ctx)
            lo = self.expr(e.lo, scope, ctx)
            hi = self.expr(e.hi, scope, ctx)
            if item is None or lo is None or hi is None:
                return None
            # two C comparisons, each with its own conversions, as the kernel writes
            # `lo <= x && x < hi`
            a = self.binary("<=", lo, item, e.span, e.span)
            b = self.binary("<", item, hi, e.span, e.span)
            if a is None or b is None:
                return None
            return ir.Binary("&&", a, b, BOOL, e.span)
        if isinstance(e, S.InCall):
            return self._in_emits(e, scope, ctx)
        if isinstance(e, S.Quant):
            return self._quant(e, list(e.binders), scope, ctx)
        if isinstance(e, S.FirstNode):
            # the variable is bound in the condition only, not in the default; node ids
            # are C ints
            first_scope = Scope(parent=scope)
            var = self.sym.new_local(first_scope, e.var, INT, False)
            c = self.want_bool(self.expr(e.cond, first_scope, ctx), e.cond.span, "the condition of first")
            d = self.expr(e.default, scope, ctx)
            if var is None or c is None or d is None:
                return None
            return ir.FirstNode(var, c, self.convert(d, INT, e.default.span, "the default node"),
                                self.sym.site(e.span), INT, e.span)
        raise AssertionError(e)  # pragma: no cover

    def _name(self, e: S.Name, scope: Scope, ctx: Ctx) -> ir.Expr | None:
        """A name, looked up as a local, a constant, a param, state, then a layout
        constant. Constants, params and state share one namespace, so the order decides
        only for a local, which hides them (KHO226 for a constant), and for the layout
        constant, which any of them hides."""
        loc = scope.lookup(e.id)
        if loc is not None:
            return ir.Local(loc.name, loc.uid, loc.ty, e.span)
        if e.id in self.sym.consts or e.id in self.sym.const_decls:
            # constants are inlined: the typed program has no reference to one, and
            # what the constant calls, the place using it calls
            c = self.sym.consts.get(e.id)
            if c is None:
                c = self.constant(e.id, self.sym.const_stack)
            for call in self.sym.const_calls.get(e.id, ()):
                if call not in ctx.calls:
                    ctx.calls.append(call)
            return c
        if e.id in self.sym.params:
            p = self.sym.params[e.id]
            if p.arg_types is not None:
                self.sym.error("KHO303", e.span, f"`{e.id}` is a param function: call it with arguments")
                return None
            return ir.ParamRef(e.id, p.ty, e.span)
        if e.id in self.sym.state:
            sv = self.sym.state[e.id]
            if ctx.kind == "pure":
                self.sym.error("KHO410", e.span, f"`{e.id}` is machine state; it cannot be read here",
                               "state is readable in steps, `always`/`after` claims and `before` assumptions")
                return None
            ctx.flags.add("reads")
            # a map has no value as a whole (the engine keeps it as a function of the
            # index), only its entries do
            if isinstance(sv.ty, MapType):
                self.sym.error("KHO416", e.span, f"`{e.id}` is a map: read one entry, {e.id}[i]")
                return None
            return ir.StateRef(e.id, sv.ty, e.span)
        if e.id in LAYOUT_CONSTANTS:
            return ir.Builtin(e.id, (), LAYOUT_CONSTANTS[e.id], e.span)
        options = [*scope.visible_names(), *self.sym.consts, *self.sym.const_decls, *self.sym.params, *self.sym.state]
        self.sym.error("KHO210", e.span, f"unknown name `{e.id}`", self.sym.suggest(e.id, options))
        return None

    def _unary(self, e: S.Unary, scope: Scope, ctx: Ctx) -> ir.Expr | None:
        v = self.expr(e.operand, scope, ctx)
        if v is None:
            return None
        if e.op == "!":
            b = self.want_bool(v, e.operand.span, "the operand of !")
            return None if b is None else ir.Unary("!", b, BOOL, e.span)
        # C11 6.5.3.3: `-` and `~` promote their operand, and the result has its
        # promoted type (-x of a u8 is an int)
        if not isinstance(v.ty, IntType):
            self.sym.error("KHO301", e.span, f"`{e.op}` needs an integer operand, not {v.ty}")
            return None
        t = promote(v.ty)
        v = self.convert(v, t, e.span, "")
        if isinstance(v, ir.Const) and not isinstance(v.value, bool):
            return ir.Const(carith.unary(e.op, v.value, t), t, e.span)
        return ir.Unary(e.op, v, t, e.span)

    def binary(self, op: str, left: ir.Expr, right: ir.Expr, span: Span, rspan: Span) -> ir.Expr | None:
        """``left op right`` with C's conversions made explicit, folded when both are
        constants; also compound assignment's ``a op b`` (statements.py)."""
        if op in ("&&", "||", "->", "<->"):
            lb = self.want_bool(left, span, f"the left operand of {op}")
            rb = self.want_bool(right, span, f"the right operand of {op}")
            if lb is None or rb is None:
                return None
            return ir.Binary(op, lb, rb, BOOL, span)
        # bools and structs (which C cannot compare) compare whole, with no conversion:
        # a bool meets an integer only through a cast or as an assigned value
        if op in ("==", "!="):
            if isinstance(left.ty, BoolType) and isinstance(right.ty, BoolType):
                return ir.Binary(op, left, right, BOOL, span)
            if isinstance(left.ty, StructType) and left.ty == right.ty:
                return ir.Binary(op, left, right, BOOL, span)
        if not isinstance(left.ty, IntType) or not isinstance(right.ty, IntType):
            self.sym.error("KHO301", span, f"`{op}` needs integer operands, not {left.ty} and {right.ty}",
                           "use && and || for bools" if op in ("&", "|") else None)
            return None
        if op in ("<<", ">>"):
            # C11 6.5.7: each operand is promoted on its own, with no usual arithmetic
            # conversions, and the result has the left one's type: `1 << n` is an int
            # whatever n's type
            lt, rt = promote(left.ty), promote(right.ty)
            lc, rc = self.convert(left, lt, span, ""), self.convert(right, rt, span, "")
            if isinstance(lc, ir.Const) and isinstance(rc, ir.Const):
                return ir.Const(carith.binary(op, int(lc.value), int(rc.value), lt, rt), lt, span)
            return ir.Binary(op, lc, rc, lt, span)
        t = usual_conversion(left.ty, right.ty)
        # C's `-1 < 0U` is false: when the common type is unsigned, the signed operand
        # is converted to it. Warned for orderings only, and not when that operand is a
        # constant or a param (an architecture constant such as PAGE_SHIFT), which
        # kernel code compares with unsigned values everywhere
        if op in ("<", "<=", ">", ">=") and left.ty.signed != right.ty.signed and t.signed is False:
            signed_side: ir.Expr = left if left.ty.signed else right
            # through casts, to the operand as written
            while isinstance(signed_side, ir.Convert):
                signed_side = signed_side.operand
            if not isinstance(signed_side, ir.Const | ir.ParamRef):
                self.sym.warn("KHO311", span,
                              f"comparing {left.ty} with {right.ty} converts the signed operand to {t}",
                              "C's usual arithmetic conversions apply; cast explicitly if this is intended")
        lc, rc = self.convert(left, t, span, ""), self.convert(right, t, span, "")
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if isinstance(lc, ir.Const) and isinstance(rc, ir.Const):
                return ir.Const(carith.compare(op, int(lc.value), int(rc.value)), BOOL, span)
            return ir.Binary(op, lc, rc, BOOL, span)
        if isinstance(lc, ir.Const) and isinstance(rc, ir.Const):
            return ir.Const(carith.binary(op, int(lc.value), int(rc.value), t), t, span)
        return ir.Binary(op, lc, rc, t, span)

    def call(self, e: S.Call, scope: Scope, ctx: Ctx, statement: bool = False) -> ir.Expr | None:
        """A call of a spec function, a param function or a builtin, in that order (a
        spec's function or param hides a builtin of its name). ``statement``: the
        result may be absent, as for a call statement."""
        name = e.func.name
        # requires_hold asks about the requires of f's run, not its result, so f may be
        # a function without one
        if name == "requires_hold" and len(e.args) == 1 and isinstance(e.args[0], S.Call):
            inner = self.call(e.args[0], scope, ctx, statement=True)
            args: list[ir.Expr | None] = [inner]
        else:
            args = [self.expr(a, scope, ctx) for a in e.args]
        if any(a is None for a in args):
            return None
        av = [a for a in args if a is not None]
        if name in self.sym.fn_sigs:
            sig = self.sym.fn_sigs[name]
            if len(av) != len(sig.params):
                self.sym.error("KHO303", e.span, f"`{name}` takes {len(sig.params)} argument(s), not {len(av)}",
                               related=[Related(sig.decl.span, "declared here")])
                return None
            # C11 6.5.2.2: arguments convert as if assigned to the parameters
            conv = tuple(self.convert(a, t, sa.span, f"argument `{pn}` of {name}")
                         for a, (pn, t), sa in zip(av, sig.params, e.args, strict=True))
            # the callee's body may not be typed yet: where it may be called is decided
            # once every body is (functions.py)
            ctx.calls.append((name, e.span))
            if sig.emits is not None and sig.ret is None and not statement:
                return ir.CallFn(name, conv, SeqType(sig.emits), e.span)
            if sig.ret is None and not statement:
                self.sym.error("KHO414", e.span, f"`{name}` has no result; call it as a statement")
                return None
            # without a result, the type is a placeholder nothing reads
            return ir.CallFn(name, conv, sig.ret or BOOL, e.span)
        if name in self.sym.params:
            p = self.sym.params[name]
            if p.arg_types is None:
                self.sym.error("KHO303", e.span, f"`{name}` is a constant param, not a function")
                return None
            if len(av) != len(p.arg_types):
                self.sym.error("KHO303", e.span, f"`{name}` takes {len(p.arg_types)} argument(s), not {len(av)}")
                return None
            conv = tuple(self.convert(a, t, sa.span, f"argument of {name}")
                         for a, t, sa in zip(av, p.arg_types, e.args, strict=True))
            return ir.ParamApp(name, conv, p.ty, e.span)
        if name == "requires_hold":
            if len(av) != 1 or not isinstance(av[0], ir.CallFn):
                self.sym.error("KHO303", e.span, "requires_hold(f(args)) takes one call of a function")
                return None
            # f runs on its own, from its arguments, not at a point of a trace
            if ctx.kind != "pure":
                self.sym.error("KHO412", e.span, "requires_hold is only allowed in `check` claims without state")
                return None
            return ir.Builtin(name, (av[0],), BOOL, e.span)
        if name in ALL_BUILTINS:
            return self._builtin(e, name, av)
        self.sym.error("KHO210", e.func.span, f"unknown function `{name}`",
                       self.sym.suggest(name, [*self.sym.fn_sigs, *self.sym.params, *ALL_BUILTINS]))
        return None

    def _builtin(self, e: S.Call, name: str, av: list[ir.Expr]) -> ir.Expr | None:
        """A builtin's call, typed as the kernel's macro or function types it."""
        if name in LAYOUT_BUILTINS or name in SIMPLE_BUILTINS:
            argt, ret = LAYOUT_BUILTINS.get(name) or SIMPLE_BUILTINS[name]
            if len(av) != len(argt):
                self.sym.error("KHO303", e.span, f"`{name}` takes {len(argt)} argument(s), not {len(av)}")
                return None
            conv = []
            # integers only: convert() alone would also take a bool
            for a, t, sa in zip(av, argt, e.args, strict=True):
                if not isinstance(a.ty, IntType):
                    self.sym.error("KHO301", sa.span, f"`{name}` takes an integer, not {a.ty}")
                    return None
                conv.append(self.convert(a, t, sa.span, f"argument of {name}"))
            # include/vdso/bits.h: BIT(nr) is UL(1) << (nr), so the shift's rules apply
            if name == "BIT":
                return ir.Binary("<<", ir.Const(1, ULONG), conv[0], ULONG, e.span)
            return ir.Builtin(name, tuple(conv), ret, e.span)
        if name in SAME_TYPE_BUILTINS:
            n = SAME_TYPE_BUILTINS[name]
            if len(av) != n:
                self.sym.error("KHO303", e.span, f"`{name}` takes {n} arguments, not {len(av)}")
                return None
            if not all(isinstance(a.ty, IntType) for a in av):
                self.sym.error("KHO301", e.span, f"`{name}` takes integers")
                return None
            # minmax.h's type check: the operands agree in signedness, but a constant
            # may meet either kind as long as its value fits the comparison's type
            # (checked below); the comparison is a `?:`, so the usual arithmetic
            # conversions and promotion give its type
            nonconst = [a.ty for a in av if not isinstance(a, ir.Const) and isinstance(a.ty, IntType)]
            if len({(t.signed) for t in nonconst}) > 1:
                types = " and ".join(str(t) for t in nonconst)
                self.sym.error("KHO312", e.span, f"`{name}` of {types}: the kernel's {name}() rejects mixed signedness",
                               "cast one side so both have the same type")
                return None
            # the constants' own types count only when every argument is one
            target_types = nonconst or [a.ty for a in av if isinstance(a.ty, IntType)]
            t = target_types[0]
            for x in target_types[1:]:
                t = usual_conversion(t, x)
            assert isinstance(t, IntType)
            t = promote(t)
            for a, sa in zip(av, e.args, strict=True):
                if isinstance(a, ir.Const) and isinstance(t, IntType) and not t.fits(int(a.value)):
                    self.sym.error("KHO302", sa.span, f"{a.value} does not fit in {t}")
                    return None
            return ir.Builtin(name, tuple(self.convert(a, t, e.span, "") for a in av), t, e.span)
        if name in ALIGN_BUILTINS:
            if len(av) != 2 or not all(isinstance(a.ty, IntType) for a in av):
                self.sym.error("KHO303", e.span, f"`{name}(x, a)` takes two integers")
                return None
            xt = av[0].ty
            assert isinstance(xt, IntType)
            a2 = self.convert(av[1], xt, e.args[1].span, "alignment")  # (typeof(x))(a)
            # the macros' arithmetic (x + mask, & ~mask) promotes both, as C does: for a
            # type narrower than int the result is an int (ALIGN of a signed char 127 to
            # 2 is 128, not -128)
            pt = promote(xt)
            x1 = self.convert(av[0], pt, e.args[0].span, "")
            a2 = self.convert(a2, pt, e.args[1].span, "alignment")
            ret = ALIGN_BUILTINS[name] or pt
            return ir.Builtin(name, (x1, a2), ret, e.span)
        raise AssertionError(name)  # pragma: no cover

    def _in_emits(self, e: S.InCall, scope: Scope, ctx: Ctx) -> ir.Expr | None:
        """``c in f(args)``. Only in claims and assumptions that read no state: f's
        emitted values are those of one run of f from its arguments."""
        item = self.expr(e.item, scope, ctx)
        call = self.call(e.call, scope, ctx)
        if item is None or call is None:
            return None
        if not isinstance(call, ir.CallFn) or not isinstance(call.ty, SeqType):
            self.sym.error("KHO313", e.call.span, f"`{e.call.func.name}` does not emit values",
                           "declare it `fn f(...) emits T { ... emit v ... }`")
            return None
        if ctx.kind != "pure":
            self.sym.error("KHO412", e.span, "`in f(args)` is only allowed in `check` claims without state")
            return None
        item = self.convert(item, call.ty.elem, e.item.span, "the item")
        return ir.InEmits(item, call, self.sym.site(e.span), BOOL, e.span)

    def _emits_eq(self, e: S.Binary, left: S.Expr, right: S.ListLit, scope: Scope, ctx: Ctx) -> ir.Expr | None:
        call = self.expr(left, scope, ctx) if isinstance(left, S.Call) else None
        if not isinstance(call, ir.CallFn) or not isinstance(call.ty, SeqType):
            self.sym.error("KHO313", left.span, "a list compares with what a function emits: f(args) == [a, b]")
            return None
        items = []
        for it in right.items:
            v = self.expr(it, scope, ctx)
            if v is None:
                return None
            items.append(self.convert(v, call.ty.elem, it.span, "list item"))
        return ir.EmitsEq(call, tuple(items), self.sym.site(e.span), BOOL, e.span)

    def _quant(self, e: S.Quant, binders: list[S.Binder], scope: Scope, ctx: Ctx) -> ir.Expr | None:
        """``forall a, b. f`` as ``forall a. forall b. f``: one Quant, and one site for
        the engine to report on, per binder; a later binder's bounds may name an
        earlier one."""
        b = binders[0]
        inner = Scope(parent=scope)
        domain: ir.Domain
        if isinstance(b, S.TypedBinder):
            ty = self.sym.resolve_type(b.type)
            if ty is None:
                return None
            if isinstance(ty, MapType | SeqType):
                self.sym.error("KHO314", b.span, f"cannot quantify over {ty}")
                return None
            domain = ir.Domain("type")
        elif isinstance(b, S.DomainBinder):
            ty = INT if b.domain == "nodes" else MEM_RANGE
            domain = ir.Domain(b.domain)
        else:
            lo = self.expr(b.lo, scope, ctx)
            hi = self.expr(b.hi, scope, ctx)
            if lo is None or hi is None:
                return None
            if not isinstance(lo.ty, IntType) or not isinstance(hi.ty, IntType):
                self.sym.error("KHO301", b.span, "interval bounds must be integers")
                return None
            ty = usual_conversion(lo.ty, hi.ty)
            domain = ir.Domain("interval", self.convert(lo, ty, b.span, ""), self.convert(hi, ty, b.span, ""))
        var = self.sym.new_local(inner, b.name, ty, False)
        if var is None:
            return None
        if len(binders) > 1:
            body = self._quant(e, binders[1:], inner, ctx)
        else:
            body = self.want_bool(self.expr(e.body, inner, ctx), e.body.span, "a quantifier's body")
        if body is None:
            return None
        return ir.Quant(e.kind, var, domain, body, self.sym.site(b.span), BOOL, e.span)

    def constant(self, name: str, stack: list[str]) -> ir.Expr | None:
        """The value of constant ``name``, evaluated on first use; ``stack`` holds the
        constants whose evaluation asked for it, to report a cycle (KHO224)."""
        if name in self.sym.consts:
            return self.sym.consts[name]
        d = self.sym.const_decls[name]
        if name in stack:
            self.sym.error("KHO224", d.name.span, f"constant `{name}` is defined in terms of itself")
            return None
        ty = self.sym.resolve_type(d.type)
        # not restored afterwards: every name an earlier evaluation leaves on it is in
        # consts by then, and consts is looked up before the stack
        self.sym.const_stack = [*stack, name]
        # a constant is evaluated before the machine exists: it calls no function that
        # reads or changes state (checked once every body is known, functions.py)
        ctx = Ctx("pure")
        e = self.expr(d.value, Scope(), ctx)
        self.sym.const_calls[name] = ctx.calls
        for callee, span in ctx.calls:
            self.sym.pending_calls.append((callee, ctx.kind, span))
        if e is None or ty is None:
            # a stand-in, so that later uses neither evaluate it again nor report it
            self.sym.consts[name] = ir.Const(0, ty or INT, d.span)
            return None
        c = self.convert(e, ty, d.value.span, "constant")
        self.sym.consts[name] = c
        return c


def _zero(t: Type) -> ir.Expr:
    """The zero of a field's type (false, 0, or a struct of zeros)."""
    if isinstance(t, BoolType):
        return ir.Const(False, BOOL)
    if isinstance(t, IntType):
        return ir.Const(0, t)
    assert isinstance(t, StructType)
    return ir.StructMake(t, tuple(_zero(ft) for _, ft in t.fields))




def fold(e: ir.Expr) -> int | bool | None:
    """The value of a constant expression, or None if it depends on anything symbolic."""
    match e:
        case ir.Const():
            return e.value
        case ir.Convert():
            v = fold(e.operand)
            if v is None or not isinstance(e.ty, IntType):
                return None
            return carith.convert(v, e.ty)
        case ir.Unary():
            v = fold(e.operand)
            if v is None:
                return None
            if e.op == "!":
                return not v
            assert isinstance(e.ty, IntType)
            return carith.unary(e.op, int(v), e.ty)
        case ir.Binary():
            a, b = fold(e.left), fold(e.right)
            if a is None or b is None:
                return None
            if e.op in ("&&", "||", "->", "<->"):
                return {"&&": a and b, "||": a or b, "->": (not a) or b, "<->": a == b}[e.op]
            if e.op in ("==", "!=", "<", "<=", ">", ">="):
                return carith.compare(e.op, int(a), int(b))
            assert isinstance(e.ty, IntType)
            rt = e.right.ty if isinstance(e.right.ty, IntType) else None
            return carith.binary(e.op, int(a), int(b), e.ty, rt)
        case (ir.Local() | ir.ParamRef() | ir.ParamApp() | ir.StateRef() | ir.MapRead() | ir.Ite() | ir.FieldGet()
              | ir.StructMake() | ir.CallFn() | ir.Builtin() | ir.Quant() | ir.FirstNode() | ir.InEmits()
              | ir.EmitsEq()):
            # symbolic, or a form left unfolded even over constants (`?:`, a field)
            return None
        case _:
            assert_never(e)
