"""Stage 3: the typed program -> Z3 formulas for one check under one strategy.

Expressions become bit-vector terms (engine/bv.py); functions are inlined; the
machine's state maps (pfn -> struct page) are Python closures from an index term to
the value there, memoized per index, so a bulk update of 2^52 pfns costs what the
claim reads of it. Quantifiers are handled by polarity: a universal the formula must
make false gets a fresh witness (a Skolem constant), one it must make true is
instantiated on the layout's witnesses (engine/layout.py). Loops are unrolled a few
iterations and, past that, stood in for by any state satisfying their invariants
(proved inductive separately), so a proof covers every iteration.

The machine's traces are enumerated as a tree: from the initial state, every step
whose guard can hold extends the path. Guards over concrete control state (phases,
flags) are decided while building, so the tree holds exactly the boot orders the
spec allows; when no leaf can take another step the tree is complete and bounded
model checking over it is a proof over all traces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, assert_never

import z3

from khospec import ir
from khospec.diagnostics import Diagnostic, Span
from khospec.engine import bv
from khospec.engine.bv import StructVal, Sym
from khospec.engine.layout import (
    LAYOUT_BUILTINS,
    BoundedLayout,
    ConcreteLayout,
    Layout,
    SymbolicLayout,
    answer_builtin,
    sort_of,
)
from khospec.types import BOOL, INT, ULONG, BoolType, IntType, MapType, SeqType, StructType, Type

UNROLL = 3
MAX_CONCRETE_UNROLL = 160
MAX_TREE_NODES = 4000


class LowerError(Exception):
    def __init__(self, diag: Diagnostic) -> None:
        super().__init__(diag.message)
        self.diag = diag


def _err(code: str, span: Span, msg: str, hint: str | None = None) -> LowerError:
    return LowerError(Diagnostic(code, span, msg, hint))


# ---------------------------------------------------------------- state maps


class MapVal:
    def __init__(self) -> None:
        self._memo: dict[int, Sym] = {}

    def read(self, idx: Any) -> Sym:
        key = idx.get_id()
        v = self._memo.get(key)
        if v is None:
            v = self._read(idx)
            self._memo[key] = v
        return v

    def _read(self, idx: Any) -> Sym:
        raise NotImplementedError


class ConstMap(MapVal):
    def __init__(self, value: Sym) -> None:
        super().__init__()
        self.value = value

    def _read(self, idx: Any) -> Sym:
        return self.value


class GarbageMap(MapVal):
    """Memory nobody initialised: an unconstrained value per index (per field)."""

    def __init__(self, name: str, ty: Type, key: IntType, ctx: z3.Context, apps: list[tuple[str, Any, Any]]) -> None:
        super().__init__()
        self.name, self.ty, self.key, self.ctx, self.apps = name, ty, key, ctx, apps
        self.fns: dict[str, Any] = {}

    def _leaf(self, path: str, ty: Type, idx: Any) -> Sym:
        if isinstance(ty, StructType):
            return StructVal(ty, tuple(self._leaf(f"{path}.{fn}", ft, idx) for fn, ft in ty.fields))
        f = self.fns.get(path)
        if f is None:
            f = z3.Function(f"initial {path}", z3.BitVecSort(self.key.width, self.ctx), sort_of(ty, self.ctx))
            self.fns[path] = f
        v = f(idx)
        self.apps.append((path, idx, v))
        return v

    def _read(self, idx: Any) -> Sym:
        return self._leaf(self.name, self.ty, idx)


def _set_path(cur: Sym, path: tuple[str, ...], value: Sym) -> Sym:
    if not path:
        return value
    assert isinstance(cur, StructVal)
    return cur.with_field(path[0], _set_path(cur.get(path[0]), path[1:], value))


class WriteMap(MapVal):
    def __init__(self, base: MapVal, guard: Any, idx: Any, path: tuple[str, ...], value: Sym) -> None:
        super().__init__()
        self.base, self.guard, self.idx, self.path, self.value = base, guard, idx, path, value

    def _read(self, q: Any) -> Sym:
        cur = self.base.read(q)
        hit = z3.And(self.guard, q == self.idx)
        hit = z3.simplify(hit) if z3.is_bv_value(q) and z3.is_bv_value(self.idx) else hit
        return bv.ite(hit, _set_path(cur, self.path, self.value), cur)


class IteMap(MapVal):
    def __init__(self, cond: Any, a: MapVal, b: MapVal) -> None:
        super().__init__()
        self.cond, self.a, self.b = cond, a, b

    def _read(self, q: Any) -> Sym:
        return bv.ite(self.cond, self.a.read(q), self.b.read(q))


class BulkMap(MapVal):
    """Every index of a set updated at once by a pointwise loop body."""

    def __init__(self, base: MapVal, compute: Callable[[Any], Sym]) -> None:
        super().__init__()
        self.base, self.compute = base, compute

    def _read(self, q: Any) -> Sym:
        return self.compute(q)


@dataclass
class MachineState:
    scalars: dict[str, Sym]
    maps: dict[str, MapVal]

    def copy(self) -> MachineState:
        return MachineState(dict(self.scalars), dict(self.maps))


# ---------------------------------------------------------------- frames


@dataclass
class ReqOb:
    """One `require` executed somewhere: violated when guard holds and cond does not."""

    name: str
    site: int
    guard: Any
    cond: Any
    label: str


# a quantifier's or loop's witness, or a state variable's unknown initial value
SkolemRole = Literal["witness", "initial"]


@dataclass
class Skolem:
    site: int
    label: str
    name: str
    ty: Type
    sym: Sym
    role: SkolemRole


@dataclass
class LoopInfo:
    site: int
    fn: str
    label: str
    open: Any  # the loop may still run after the unrolled iterations (False if complete)
    tail: Any | None  # Bool: a counterexample uses the invariant stand-in
    entry_violation: Any | None  # the invariant fails after the unrolled iterations
    consecution: Any | None  # satisfiable iff an invariant is not inductive
    span: Span = field(default_factory=lambda: Span.point("<loop>"))


@dataclass
class BulkCtx:
    index: Any
    written: set[str]
    witness: bool = False  # a loop that only checks (requires): one witness index


@dataclass
class Frame:
    locals: dict[int, Sym]
    state: MachineState | None
    guard: Any
    returned: Any
    ret: Sym | None
    emits: list[tuple[Any, Sym]]
    requires: list[ReqOb]
    label: str
    bulk: BulkCtx | None = None
    pol: int = 0

    def active(self) -> Any:
        if z3.is_false(self.returned):
            return self.guard
        return z3.And(self.guard, z3.Not(self.returned))


# ---------------------------------------------------------------- the lowering


@dataclass
class TraceNode:
    """A state reached by ``step``. Paths that reach the same control state (the same
    concrete scalars) by the same step at the same depth share one node: its state is
    theirs merged by path condition, so the solver sees one state instead of many."""

    id: int
    parents: list[tuple[TraceNode, Any]]  # (predecessor, path condition of that edge)
    step: str | None
    state: MachineState
    pc: Any  # path condition: every guard on the way holds
    depth: int
    requires: list[ReqOb]
    open: Any = None  # some step may still be enabled here (at the depth limit)

    def path(self, holds: Callable[[Any], bool] = lambda _: True) -> list[str]:
        """The steps to this node; with several ways in, the one whose path condition
        ``holds`` (in a model)."""
        out: list[str] = []
        n: TraceNode | None = self
        while n is not None and n.step is not None:
            out.append(n.step)
            nxt = None
            for parent, edge in n.parents:
                if holds(edge):
                    nxt = parent
                    break
            n = nxt if nxt is not None else (n.parents[0][0] if n.parents else None)
        return list(reversed(out))


class Lowering:
    """Formulas for one (check, strategy); profile constants stay symbolic."""

    def __init__(
        self,
        program: ir.Program,
        strategy: str | None,
        ctx: z3.Context,
        layout: ir.LayoutDef | None = None,
        page_shift: int | None = None,
        unroll: int = UNROLL,
        wanted_requirement: str | None = None,
        allow_tail: bool = True,
        bounded: int | None = None,
    ) -> None:
        self.program = program
        self.strategy = strategy
        self.ctx = ctx
        self.unroll = unroll
        self.allow_tail = allow_tail
        self.wanted = wanted_requirement
        self._params: dict[str, Any] = {}
        self.param_apps: list[tuple[str, tuple[Any, ...], Any]] = []
        self.skolems: list[Skolem] = []
        self.garbage_apps: list[tuple[str, Any, Any]] = []
        self.hard: list[Any] = []
        self.loops: list[LoopInfo] = []
        self.incomplete: list[str] = []
        self._fresh = 0
        self.layout: Layout
        if layout is not None:
            assert page_shift is not None
            self.layout = ConcreteLayout(ctx, layout, page_shift, self.param)
            self._bind_layout_params(layout)
        elif bounded is not None:
            self.layout = BoundedLayout(ctx, self.param, bounded)
        else:
            self.layout = SymbolicLayout(ctx, self.param)
        self._consecution_done: set[tuple[str, int]] = set()
        self.hard_open: list[Any] = []
        # In a trace, violations at different nodes are alternatives, so one witness per
        # quantifier or loop site serves every node (and shares the map reads).
        self.share_witnesses = False
        self._site_witness: dict[tuple[int, str], Any] = {}
        # False when only reachability matters (vacuity): requires are not evaluated
        self.collect_requires = True
        self._memo: dict[tuple[Any, ...], Sym] = {}
        self._simple: dict[int, bool] = {}

    # -- names and params
    def fresh_name(self, base: str) -> str:
        self._fresh += 1
        return f"{base}!{self._fresh}"

    def param(self, name: str, args: tuple[Any, ...] = ()) -> Any:
        pd = self.program.params[name]
        if pd.arg_types is None:
            v = self._params.get(name)
            if v is None:
                v = bv.fresh(pd.ty, name, self.ctx)
                self._params[name] = v
            return v
        f = self._params.get(name)
        if f is None:
            if isinstance(pd.ty, StructType):
                raise _err("KHO501", pd.span, f"param function `{name}` returning a struct is not supported")
            f = z3.Function(name, *[sort_of(t, self.ctx) for t in pd.arg_types], sort_of(pd.ty, self.ctx))
            self._params[name] = f
        v = f(*args)
        self.param_apps.append((name, args, v))
        return v

    def _bind_layout_params(self, layout: ir.LayoutDef) -> None:
        for name, args, value in layout.bindings:
            pd = self.program.params[name]
            if pd.arg_types is None:
                self.hard.append(bv.eq(self.param(name), bv.const(value, pd.ty, self.ctx)))
            else:
                a = tuple(bv.const(x, t, self.ctx) for x, t in zip(args, pd.arg_types, strict=True))
                self.hard.append(bv.eq(self.param(name, a), bv.const(value, pd.ty, self.ctx)))

    def constants(self, profile: ir.ProfileDef) -> list[tuple[Sym, Sym]]:
        """(parameter, value) for each constant the profile fixes."""
        return [(self.param(n), bv.const(v, self.program.params[n].ty, self.ctx)) for n, v in profile.bindings]

    def profile_binding(self, profile: ir.ProfileDef) -> Any:
        eqs = [bv.eq(param, value) for param, value in self.constants(profile)]
        return z3.And(*eqs) if eqs else z3.BoolVal(True, self.ctx)

    # -- expressions
    def ev(self, e: ir.Expr, fr: Frame, pol: int = 0) -> Sym:
        match e:
            case ir.Const():
                return self._ev_Const(e, fr, pol)
            case ir.Local():
                return self._ev_Local(e, fr, pol)
            case ir.ParamRef():
                return self._ev_ParamRef(e, fr, pol)
            case ir.ParamApp():
                return self._ev_ParamApp(e, fr, pol)
            case ir.StateRef():
                return self._ev_StateRef(e, fr, pol)
            case ir.MapRead():
                return self._ev_MapRead(e, fr, pol)
            case ir.Unary():
                return self._ev_Unary(e, fr, pol)
            case ir.Binary():
                return self._ev_Binary(e, fr, pol)
            case ir.Convert():
                return self._ev_Convert(e, fr, pol)
            case ir.Ite():
                return self._ev_Ite(e, fr, pol)
            case ir.FieldGet():
                return self._ev_FieldGet(e, fr, pol)
            case ir.StructMake():
                return self._ev_StructMake(e, fr, pol)
            case ir.CallFn():
                return self._ev_CallFn(e, fr, pol)
            case ir.Builtin():
                return self._ev_Builtin(e, fr, pol)
            case ir.Quant():
                return self._ev_Quant(e, fr, pol)
            case ir.FirstNode():
                return self._ev_FirstNode(e, fr, pol)
            case ir.InEmits():
                return self._ev_InEmits(e, fr, pol)
            case ir.EmitsEq():
                return self._ev_EmitsEq(e, fr, pol)
            case _:
                assert_never(e)

    def _ev_Const(self, e: ir.Const, fr: Frame, pol: int) -> Sym:
        return bv.const(e.value, e.ty, self.ctx)

    def _ev_Local(self, e: ir.Local, fr: Frame, pol: int) -> Sym:
        try:
            return fr.locals[e.uid]
        except KeyError:  # pragma: no cover - the checker guarantees scoping
            raise _err("KHO599", e.span, f"internal: `{e.name}` has no value here") from None

    def _ev_ParamRef(self, e: ir.ParamRef, fr: Frame, pol: int) -> Sym:
        return self.param(e.name)

    def _ev_ParamApp(self, e: ir.ParamApp, fr: Frame, pol: int) -> Sym:
        return self.param(e.name, tuple(self.ev(a, fr) for a in e.args))

    def _ev_StateRef(self, e: ir.StateRef, fr: Frame, pol: int) -> Sym:
        if fr.state is None:
            raise _err("KHO599", e.span, f"internal: state `{e.name}` read outside the machine")
        return fr.state.scalars[e.name]

    def _ev_MapRead(self, e: ir.MapRead, fr: Frame, pol: int) -> Sym:
        if fr.state is None:
            raise _err("KHO599", e.span, f"internal: map `{e.name}` read outside the machine")
        idx = self.ev(e.index, fr)
        if fr.bulk is not None and e.name in fr.bulk.written and not idx.eq(fr.bulk.index):
            raise _err(
                "KHO521", e.span,
                f"`{e.name}` is updated by this loop and read here at another index",
                "the loop updates all indices at once; read the map before the loop or at the loop index",
            )
        self.layout.hint_pfn(idx)
        return fr.state.maps[e.name].read(idx)

    def _ev_Unary(self, e: ir.Unary, fr: Frame, pol: int) -> Sym:
        if e.op == "!":
            return z3.Not(self.ev(e.operand, fr, -pol))
        v = self.ev(e.operand, fr)
        return -v if e.op == "-" else ~v

    def _ev_Binary(self, e: ir.Binary, fr: Frame, pol: int) -> Sym:
        op = e.op
        if op == "&&":
            return z3.And(self.ev(e.left, fr, pol), self.ev(e.right, fr, pol))
        if op == "||":
            return z3.Or(self.ev(e.left, fr, pol), self.ev(e.right, fr, pol))
        if op == "->":
            return z3.Implies(self.ev(e.left, fr, -pol), self.ev(e.right, fr, pol))
        if op == "<->":
            return self.ev(e.left, fr, 0) == self.ev(e.right, fr, 0)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            sub = 0
            a = self.ev(e.left, fr, sub)
            b = self.ev(e.right, fr, sub)
            return bv.compare(op, a, b, e.left.ty)
        a = self.ev(e.left, fr)
        b = self.ev(e.right, fr)
        assert isinstance(e.ty, IntType)
        if op in ("<<", ">>"):
            rt = e.right.ty
            assert isinstance(rt, IntType)
            return bv.shift(op, a, e.ty, b, rt)
        return bv.arith(op, a, b, e.ty)

    def _ev_Convert(self, e: ir.Convert, fr: Frame, pol: int) -> Sym:
        return bv.convert(self.ev(e.operand, fr), e.operand.ty, e.ty, self.ctx)

    def _ev_Ite(self, e: ir.Ite, fr: Frame, pol: int) -> Sym:
        return bv.ite(self.ev(e.cond, fr, 0), self.ev(e.then, fr, pol), self.ev(e.else_, fr, pol))

    def _ev_FieldGet(self, e: ir.FieldGet, fr: Frame, pol: int) -> Sym:
        v = self.ev(e.obj, fr)
        assert isinstance(v, StructVal)
        return v.get(e.field)

    def _ev_StructMake(self, e: ir.StructMake, fr: Frame, pol: int) -> Sym:
        return StructVal(e.ty, tuple(self.ev(f, fr) for f in e.fields))

    def _ev_Builtin(self, e: ir.Builtin, fr: Frame, pol: int) -> Sym:
        n = e.name
        if n == "requires_hold":
            call = e.args[0]
            assert isinstance(call, ir.CallFn)
            res = self.call(call, fr, pol, label=f"{fr.label}/{call.name}")
            conds = [z3.Implies(r.guard, r.cond) for r in res.requires]
            return z3.And(*conds) if conds else z3.BoolVal(True, self.ctx)
        args = [self.ev(a, fr) for a in e.args]
        if n in LAYOUT_BUILTINS:
            return answer_builtin(self.layout, n, args)
        if n == "count_trailing_zeros":
            return bv.count_trailing_zeros(args[0])
        if n == "ilog2":
            return bv.ilog2(args[0])
        t = e.ty
        if n in ("min", "max", "clamp"):
            assert isinstance(t, IntType)
            lt = (lambda a, b: a < b) if t.signed else z3.ULT
            if n == "min":
                return z3.If(lt(args[1], args[0]), args[1], args[0])
            if n == "max":
                return z3.If(lt(args[0], args[1]), args[1], args[0])
            v, lo, hi = args
            mx = z3.If(lt(v, lo), lo, v)
            return z3.If(lt(hi, mx), hi, mx)
        x, a = args
        mask = a - 1
        if n == "IS_ALIGNED":
            return (x & mask) == 0
        if n == "ALIGN":
            return (x + mask) & ~mask
        if n == "ALIGN_DOWN":
            return x & ~mask
        raise AssertionError(n)  # pragma: no cover

    # -- quantifiers
    def _bind(self, fr: Frame, var: ir.Local, value: Sym) -> Frame:
        locs = dict(fr.locals)
        locs[var.uid] = value
        return Frame(locs, fr.state, fr.guard, fr.returned, fr.ret, fr.emits, fr.requires, fr.label, fr.bulk, fr.pol)

    def _ev_Quant(self, e: ir.Quant, fr: Frame, pol: int) -> Sym:
        d = e.domain
        universal = e.kind == "forall"
        # finite domains: expand, whatever the polarity
        if d.kind == "interval":
            assert d.lo is not None and d.hi is not None
            lo = self.ev(d.lo, fr)
            hi = self.ev(d.hi, fr)
            if z3.is_bv_value(z3.simplify(lo)) and z3.is_bv_value(z3.simplify(hi)):
                lo_v = z3.simplify(lo).as_long()
                hi_v = z3.simplify(hi).as_long()
                ty = e.var.ty
                assert isinstance(ty, IntType)
                lo_i, hi_i = ty.wrap(lo_v), ty.wrap(hi_v)
                if hi_i - lo_i <= 64:
                    parts = [self.ev(e.body, self._bind(fr, e.var, bv.const(i, ty, self.ctx)), pol)
                             for i in range(lo_i, max(lo_i, hi_i))]
                    if universal:
                        return z3.And(*parts) if parts else z3.BoolVal(True, self.ctx)
                    return z3.Or(*parts) if parts else z3.BoolVal(False, self.ctx)
        if isinstance(e.var.ty, BoolType):
            parts = [self.ev(e.body, self._bind(fr, e.var, z3.BoolVal(b, self.ctx)), pol) for b in (False, True)]
            return z3.And(*parts) if universal else z3.Or(*parts)
        # witness when the quantifier must fail (forall) / hold (exists)
        if (universal and pol < 0) or (not universal and pol > 0):
            return self._skolemize(e, fr, pol, universal)
        if pol == 0:
            raise _err(
                "KHO510", e.span,
                f"`{e.kind}` over an unbounded domain in a position that is neither asserted nor denied",
                "move the quantifier out of `<->`, `==`, `?:` and assignments",
            )
        return self._instantiate(e, fr, pol, universal)

    def _skolemize(self, e: ir.Quant, fr: Frame, pol: int, universal: bool) -> Sym:
        d = e.domain
        label = fr.label
        origin = f"{e.var.name} at {self.program.site_spans.get(e.site, e.span)}"
        if d.kind in ("nodes", "ranges"):
            exists, w = self._layout_witness(e.site, d.kind, e.var.name, e.var.ty, origin, label)
            body = self.ev(e.body, self._bind(fr, e.var, w), pol)
            return z3.Implies(exists, body) if universal else z3.And(exists, body)
        key = (e.site, "value")
        if self.share_witnesses and key in self._site_witness:
            w = self._site_witness[key]
        else:
            w = bv.fresh(e.var.ty, self.fresh_name(f"{e.var.name}@{e.site}"), self.ctx)
            self.skolems.append(Skolem(e.site, label, e.var.name, e.var.ty, w, "witness"))
            if self.share_witnesses:
                self._site_witness[key] = w
        if isinstance(w, z3.BitVecRef) and e.var.ty == ULONG:
            self.layout.hint_pfn(w)
        inner = self._bind(fr, e.var, w)
        body = self.ev(e.body, inner, pol)
        if d.kind == "interval":
            assert d.lo is not None and d.hi is not None
            lo, hi = self.ev(d.lo, fr), self.ev(d.hi, fr)
            inside = z3.And(bv.compare("<=", lo, w, e.var.ty), bv.compare("<", w, hi, e.var.ty))
            return z3.Implies(inside, body) if universal else z3.And(inside, body)
        return body

    def _layout_witness(self, site: int, kind: str, name: str, ty: Type, origin: str, label: str) -> tuple[Any, Any]:
        key = (site, kind)
        if self.share_witnesses and key in self._site_witness:
            return self._site_witness[key]  # type: ignore[no-any-return]
        if kind == "nodes":
            res = self.layout.witness_node(origin)
            self.skolems.append(Skolem(site, label, name, INT, res[1], "witness"))
        else:
            res = self.layout.witness_range(origin)
            self.skolems.append(Skolem(site, label, name, ty, res[1], "witness"))
        if self.share_witnesses:
            self._site_witness[key] = res
        return res

    def _instantiate(self, e: ir.Quant, fr: Frame, pol: int, universal: bool) -> Sym:
        d = e.domain
        sign = 1 if universal else -1  # exists with pol<0 is a universal of the negation

        def body(v: Sym) -> Any:
            b = self.ev(e.body, self._bind(fr, e.var, v), pol)
            return b if universal else z3.Not(b)

        if d.kind == "nodes":
            q = self.layout.forall_nodes(body)
        elif d.kind == "ranges":
            q = self.layout.forall_ranges(body)
        elif (isinstance(e.var.ty, IntType) and e.var.ty.width == 64
              and isinstance(self.layout, SymbolicLayout | BoundedLayout)):
            if d.kind == "interval":
                assert d.lo is not None and d.hi is not None
                lo, hi = self.ev(d.lo, fr), self.ev(d.hi, fr)

                def body2(v: Sym) -> Any:
                    inside = z3.And(bv.compare("<=", lo, v, e.var.ty), bv.compare("<", v, hi, e.var.ty))
                    return z3.Implies(inside, body(v))

                q = self.layout.forall_pfns(body2)
            else:
                q = self.layout.forall_pfns(body)
            self.incomplete.append(
                f"`{e.kind} {e.var.name}` at {e.span} is instantiated on the pfns the claim mentions")
        else:
            raise _err(
                "KHO511", e.span,
                f"`{e.kind} {e.var.name}: {e.var.ty}` cannot be decided here",
                "quantify over nodes, ranges, pfns (ulong) or a constant interval",
            )
        return q if sign > 0 else z3.Not(q)

    def _ev_FirstNode(self, e: ir.FirstNode, fr: Frame, pol: int) -> Sym:
        default = self.ev(e.default, fr)
        free = _free_locals(e.cond) - {e.var.uid}
        key: tuple[Any, ...] | None = None
        if not _reads_state(e.cond, self.program, self.strategy):
            # the answer depends on the layout and the free variables only
            key = ("first", e.site, _key(default), *(( u, _key(fr.locals[u])) for u in sorted(free)))
            hit = self._memo.get(key)
            if hit is not None:
                return hit

        def cond(n: Any) -> Any:
            return self.ev(e.cond, self._bind(fr, e.var, n), 0)

        out = self.layout.first_node(cond, default, f"first node at {e.span}")
        if key is not None:
            self._memo[key] = out
        return out

    # -- calls
    def _ev_CallFn(self, e: ir.CallFn, fr: Frame, pol: int) -> Sym:
        fn = self.program.fn(e.name, self.strategy)
        if self._is_simple(fn):
            # a function of its arguments alone: one term per argument tuple
            args = tuple(self.ev(a, fr) for a in e.args)
            key = (fn.name, fn.strategy, *(_key(a) for a in args))
            hit = self._memo.get(key)
            if hit is None:
                sub = Frame({p.uid: a for p, a in zip(fn.params, args, strict=True)}, None,
                            z3.BoolVal(True, self.ctx), z3.BoolVal(False, self.ctx), None, [], [], fr.label)
                if isinstance(fn.body, tuple):
                    self.exec_block(fn.body, sub, fn=fn)
                    hit = sub.ret
                else:
                    hit = self.ev(fn.body, sub, 0)
                self._memo[key] = hit
            return hit
        res = self.call(e, fr, pol, label=fr.label)
        fr.requires.extend(res.requires)
        if res.ret is None:
            raise _err("KHO599", e.span, f"internal: `{e.name}` returned no value")
        return res.ret

    def _ev_InEmits(self, e: ir.InEmits, fr: Frame, pol: int) -> Sym:
        item = self.ev(e.item, fr)
        res = self.call(e.call, fr, pol, label=f"{fr.label}/{e.call.name}")
        if pol <= 0 and res.open is not None and not z3.is_false(res.open):
            # exact only when the loops are fully unrolled
            self.hard_open.append(res.open)
        parts = [z3.And(g, bv.eq(item, v)) for g, v in res.emits]
        return z3.Or(*parts) if parts else z3.BoolVal(False, self.ctx)

    def _ev_EmitsEq(self, e: ir.EmitsEq, fr: Frame, pol: int) -> Sym:
        res = self.call(e.call, fr, 0, label=f"{fr.label}/{e.call.name}", tail=False)
        if res.open is not None and not z3.is_false(res.open):
            self.hard_open.append(res.open)
        items = [self.ev(i, fr) for i in e.items]
        conds = []
        for k, (g, v) in enumerate(res.emits):
            if k < len(items):
                conds.append(z3.And(g, bv.eq(v, items[k])))
            else:
                conds.append(z3.Not(g))
        for _ in range(len(res.emits), len(items)):
            conds.append(z3.BoolVal(False, self.ctx))
        return z3.And(*conds) if conds else z3.BoolVal(True, self.ctx)

    @dataclass
    class CallResult:
        ret: Sym | None
        emits: list[tuple[Any, Sym]]
        requires: list[ReqOb]
        open: Any | None

    def call(self, e: ir.CallFn, fr: Frame, pol: int, label: str, tail: bool = True) -> Lowering.CallResult:
        fn = self.program.fn(e.name, self.strategy)
        args = [self.ev(a, fr) for a in e.args]
        sub = Frame({}, fr.state, fr.active(), z3.BoolVal(False, self.ctx), None, [], [], label, fr.bulk, pol)
        for p, a in zip(fn.params, args, strict=True):
            sub.locals[p.uid] = a
        opens: list[Any] = []
        if isinstance(fn.body, tuple):
            self.exec_block(fn.body, sub, fn=fn, opens=opens, tail=tail)
            ret = sub.ret
        else:
            ret = self.ev(fn.body, sub, pol)
        if fr.state is not None and sub.state is not None:
            fr.state = sub.state
        open_ = z3.Or(*opens) if opens else None
        return Lowering.CallResult(ret, sub.emits, sub.requires, open_)

    def _is_simple(self, fn: ir.FnDef) -> bool:
        """No state, no quantifier, no loop, no require: a pure function of the arguments."""
        key = id(fn)
        hit = self._simple.get(key)
        if hit is None:
            hit = not fn.reads_state and not fn.writes_state and not fn.has_loop and fn.ret is not None
            if hit:
                hit = _simple_body(fn.body, self.program, self.strategy)
            self._simple[key] = hit
        return hit

    # -- statements
    def exec_block(self, stmts: tuple[ir.Stmt, ...], fr: Frame, fn: ir.FnDef | None = None,
                   opens: list[Any] | None = None, tail: bool = True) -> None:
        for s in stmts:
            self.exec(s, fr, fn, opens, tail)

    def exec(self, s: ir.Stmt, fr: Frame, fn: ir.FnDef | None, opens: list[Any] | None, tail: bool) -> None:
        match s:
            case ir.SLet():
                fr.locals[s.var.uid] = self.ev(s.value, fr, fr.pol)
            case ir.SAssign():
                new = self.ev(s.value, fr, fr.pol)
                old = fr.locals[s.var.uid]
                fr.locals[s.var.uid] = bv.ite(fr.active(), new, old)
            case ir.SStateAssign():
                assert fr.state is not None
                new = self.ev(s.value, fr)
                fr.state.scalars[s.name] = bv.ite(fr.active(), new, fr.state.scalars[s.name])
            case ir.SMapWrite():
                assert fr.state is not None
                idx = self.ev(s.index, fr)
                if fr.bulk is not None and not idx.eq(fr.bulk.index):
                    raise _err("KHO520", s.span, f"this loop writes `{s.name}` at an index other than its own",
                               "a loop over a set of indices updates each index on its own")
                value = self.ev(s.value, fr)
                fr.state.maps[s.name] = WriteMap(fr.state.maps[s.name], fr.active(), idx, s.path, value)
            case ir.SIf():
                outer = fr.guard
                if fr.bulk is not None and fr.bulk.witness:
                    # nothing is written here: each branch's guard only feeds violations, so
                    # the condition is asserted in the then-branch and denied in the else-branch
                    fr.guard = z3.And(outer, self.ev(s.cond, fr, 1))
                    self.exec_block(s.then, fr, fn, opens, tail)
                    if s.else_:
                        fr.guard = z3.And(outer, z3.Not(self.ev(s.cond, fr, -1)))
                        self.exec_block(s.else_, fr, fn, opens, tail)
                    fr.guard = outer
                    return
                c = self.ev(s.cond, fr, 0)
                fr.guard = z3.And(outer, c)
                self.exec_block(s.then, fr, fn, opens, tail)
                fr.guard = z3.And(outer, z3.Not(c))
                self.exec_block(s.else_, fr, fn, opens, tail)
                fr.guard = outer
            case ir.SForConst():
                ty = s.var.ty
                for i in range(s.lo, s.hi):
                    fr.locals[s.var.uid] = bv.const(i, ty, self.ctx)
                    self.exec_block(s.body, fr, fn, opens, tail)
            case ir.SForBulk():
                self._bulk(s, fr)
            case ir.SWhile():
                assert fn is not None
                self._while(s, fr, fn, opens if opens is not None else [], tail)
            case ir.SRequire():
                if not self.collect_requires or (
                        self.wanted is not None and fr.state is not None and s.name != self.wanted):
                    return
                cond = self.ev(s.cond, fr, 0)
                fr.requires.append(ReqOb(s.name, s.site, fr.active(), cond, fr.label))
            case ir.SEmit():
                fr.emits.append((fr.active(), self.ev(s.value, fr)))
            case ir.SReturn():
                v = self.ev(s.value, fr, fr.pol)
                act = fr.active()
                fr.ret = v if fr.ret is None else bv.ite(act, v, fr.ret)
                fr.returned = z3.Or(fr.returned, act)
            case ir.SCall():
                res = self.call(s.call, fr, 0, label=fr.label)
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
                    f = self.program.fn(s.call.name, self.strategy)
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
        return mentions_require(stmts, self.wanted, self.program, self.strategy)

    def _bulk(self, s: ir.SForBulk, fr: Frame) -> None:
        assert fr.state is not None
        if not self._written_maps(s.body):
            self._witness_loop(s, fr)
            return
        if fr.bulk is not None:
            raise _err("KHO522", s.span, "a loop that updates state cannot sit inside another loop over a set",
                       "merge the loops: one loop with a combined `where`")
        if s.domain == "nodes":
            raise _err("KHO523", s.span, "a loop over nodes can check (require) but not update state",
                       "update per pfn: for pfn: ulong where ... { ... }")
        pre = fr.state.copy()
        outer_guard = fr.active()
        written = self._written_maps(s.body)
        label = fr.label

        def in_domain(q: Any, sub: Frame) -> Any:
            conds = [outer_guard]
            ty = s.var.ty
            if s.lo is not None:
                conds.append(bv.compare("<=", self.ev(s.lo, fr), q, ty))
            if s.hi is not None:
                conds.append(bv.compare("<", q, self.ev(s.hi, fr), ty))
            if s.where is not None:
                conds.append(self.ev(s.where, sub, 0))
            return z3.And(*conds)

        def run_at(q: Any) -> Frame:
            sub = Frame(dict(fr.locals), pre.copy(), z3.BoolVal(True, self.ctx), z3.BoolVal(False, self.ctx),
                        None, [], [], label, BulkCtx(q, written), 0)
            sub.locals[s.var.uid] = q
            sub.guard = in_domain(q, sub)
            self.layout.hint_pfn(q)
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
                return _read_after(at(q), name, q)

            fr.state.maps[name] = BulkMap(base, read)
        if self.collect_requires and self._has_require(s.body):
            # the requires hold for every index iff they hold for one the solver picks
            key = (s.site, "loop")
            if self.share_witnesses and key in self._site_witness:
                w = self._site_witness[key]
            else:
                ty = s.var.ty
                assert isinstance(ty, IntType)
                w = z3.BitVec(self.fresh_name(f"{s.var.name}@{s.site}"), ty.width, self.ctx)
                self.skolems.append(Skolem(s.site, label, s.var.name, ty, w, "witness"))
                if self.share_witnesses:
                    self._site_witness[key] = w
            fr.requires.extend(at(w).requires)

    def _witness_loop(self, s: ir.SForBulk, fr: Frame) -> None:
        """A loop that only checks: its requires hold for every index iff they hold for
        one index the solver picks."""
        if not self.collect_requires or not self._has_require(s.body):
            return
        label = fr.label
        if s.domain == "nodes":
            exists, w = self._layout_witness(s.site, "nodes", s.var.name, INT, f"{s.var.name} at {s.span}", label)
        else:
            exists = z3.BoolVal(True, self.ctx)
            key = (s.site, "loop")
            if self.share_witnesses and key in self._site_witness:
                w = self._site_witness[key]
            else:
                ty = s.var.ty
                assert isinstance(ty, IntType)
                w = z3.BitVec(self.fresh_name(f"{s.var.name}@{s.site}"), ty.width, self.ctx)
                self.skolems.append(Skolem(s.site, label, s.var.name, ty, w, "witness"))
                if self.share_witnesses:
                    self._site_witness[key] = w
            self.layout.hint_pfn(w) if s.var.ty == ULONG else None
        sub = Frame(dict(fr.locals), fr.state, fr.active(), z3.BoolVal(False, self.ctx), None, [], [], label,
                    BulkCtx(w, set(), witness=True), 1)
        sub.locals[s.var.uid] = w
        conds = [sub.guard, exists]
        ty = s.var.ty
        if s.lo is not None:
            conds.append(bv.compare("<=", self.ev(s.lo, fr), w, ty))
        if s.hi is not None:
            conds.append(bv.compare("<", w, self.ev(s.hi, fr), ty))
        if s.where is not None:
            conds.append(self.ev(s.where, sub, 1))
        sub.guard = z3.And(*conds)
        self.exec_block(s.body, sub)
        fr.requires.extend(sub.requires)

    def _assigned_locals(self, stmts: tuple[ir.Stmt, ...]) -> set[int]:
        out: set[int] = set()
        for s in stmts:
            match s:
                case ir.SAssign():
                    out.add(s.var.uid)
                case ir.SIf():
                    out |= self._assigned_locals(s.then) | self._assigned_locals(s.else_)
                case ir.SForConst():
                    out |= self._assigned_locals(s.body)
                case (ir.SLet() | ir.SStateAssign() | ir.SMapWrite() | ir.SForBulk() | ir.SWhile() | ir.SRequire()
                      | ir.SEmit() | ir.SReturn() | ir.SCall()):
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
            c = z3.simplify(self.ev(s.cond, fr, 0))
            if z3.is_false(c):
                fr.guard = outer
                return
            if not z3.is_true(c):
                concrete = False
            if (not concrete and iterations >= self.unroll) or iterations >= limit:
                break
            fr.guard = z3.And(outer, c)
            fr.label = f"{label}#{iterations}"
            self.exec_block(s.body, fr, fn, opens, tail)
            fr.label = label
            iterations += 1
        running = z3.And(fr.active(), c)
        modified = sorted(self._assigned_locals(s.body))
        info = LoopInfo(s.site, fn.name, label, running, None, None, None, s.span)
        self.loops.append(info)
        if not s.invariants or not tail or not self.allow_tail:
            # bounded: what follows the loop counts only where it ended within the bound
            opens.append(running)
            fr.guard = z3.And(outer, z3.Not(running))
            return
        # Past the unrolled iterations: any state satisfying the invariants.
        inv_here = z3.And(*[self.ev(i, fr, 0) for i in s.invariants])
        info.entry_violation = z3.And(running, z3.Not(inv_here))
        tail_flag = z3.Bool(self.fresh_name(f"beyond_unrolling@{s.site}"), self.ctx)
        info.tail = tail_flag
        before = {u: fr.locals[u] for u in modified}
        havoc = {u: self._havoc_like(fr.locals[u], f"iter@{s.site}") for u in modified}
        for u, v in havoc.items():
            fr.locals[u] = v
        inv_h = z3.And(*[self.ev(i, fr, 0) for i in s.invariants])
        c_h = self.ev(s.cond, fr, 0)
        fr.guard = z3.And(outer, tail_flag, running, inv_h, c_h)
        fr.label = f"{label}#beyond"
        self.exec_block(s.body, fr, fn, opens, tail)
        fr.label = label
        # after the loop: a state satisfying the invariants where the condition fails
        exit_h = {u: self._havoc_like(before[u], f"exit@{s.site}") for u in modified}
        for u, v in exit_h.items():
            fr.locals[u] = v
        inv_x = z3.And(*[self.ev(i, fr, 0) for i in s.invariants])
        c_x = self.ev(s.cond, fr, 0)
        self.hard.append(z3.Implies(running, z3.And(inv_x, z3.Not(c_x))))
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
            return z3.Bool(self.fresh_name(base), self.ctx)
        return z3.BitVec(self.fresh_name(base), v.size(), self.ctx)

    def _consecution(self, s: ir.SWhile, fn: ir.FnDef) -> Any:
        """Satisfiable iff some state satisfying the invariants and the condition
        leaves them after one iteration (for any arguments)."""
        fr = Frame({}, None, z3.BoolVal(True, self.ctx), z3.BoolVal(False, self.ctx), None, [], [],
                   "inductive", None, 0)
        for p in fn.params:
            fr.locals[p.uid] = bv.fresh(p.ty, self.fresh_name(f"arg {p.name}"), self.ctx)
        # values of the locals defined before the loop: run the prefix of the body
        assert isinstance(fn.body, tuple)
        prefix: list[ir.Stmt] = []
        for st in fn.body:
            if st is s:
                break
            prefix.append(st)
        self.exec_block(tuple(prefix), fr, fn, [], False)
        for u in self._assigned_locals(s.body):
            fr.locals[u] = self._havoc_like(fr.locals[u], f"ind@{s.site}")
        inv = z3.And(*[self.ev(i, fr, 0) for i in s.invariants])
        c = self.ev(s.cond, fr, 0)
        fr.guard = z3.BoolVal(True, self.ctx)
        self.exec_block(s.body, fr, fn, [], False)
        inv2 = z3.And(*[self.ev(i, fr, 0) for i in s.invariants])
        return z3.And(inv, c, z3.Not(inv2))

    # -- the machine
    def initial_state(self) -> MachineState:
        scalars: dict[str, Sym] = {}
        maps: dict[str, MapVal] = {}
        fr = Frame({}, None, z3.BoolVal(True, self.ctx), z3.BoolVal(False, self.ctx), None, [], [], "init", None, 0)
        for sv in self.program.state:
            if isinstance(sv.ty, MapType):
                if sv.init is not None:
                    maps[sv.name] = ConstMap(self.ev(sv.init, fr))
                else:
                    assert isinstance(sv.ty.key, IntType)
                    maps[sv.name] = GarbageMap(sv.name, sv.ty.value, sv.ty.key, self.ctx, self.garbage_apps)
            else:
                if sv.init is not None:
                    scalars[sv.name] = self.ev(sv.init, fr)
                else:
                    v = bv.fresh(sv.ty, f"initial {sv.name}", self.ctx)
                    scalars[sv.name] = v
                    self.skolems.append(Skolem(0, "init", sv.name, sv.ty, v, "initial"))
        return MachineState(scalars, maps)

    def build_tree(self, depth: int, before: dict[str, list[tuple[Any, ir.AssumeDef]]]) -> list[TraceNode]:
        """Every trace of at most ``depth`` steps, as a DAG of states (see TraceNode)."""
        steps = self.program.step_defs(self.strategy)
        root = TraceNode(0, [], None, self.initial_state(), z3.BoolVal(True, self.ctx), 0, [])
        nodes = [root]
        level = [root]
        while level:
            groups: dict[Any, list[tuple[TraceNode, Any, MachineState, list[ReqOb], str]]] = {}
            order: list[Any] = []
            for node in level:
                opens = []
                for st in steps:
                    fr = Frame({}, node.state, z3.BoolVal(True, self.ctx), z3.BoolVal(False, self.ctx), None, [], [],
                               f"n{len(nodes)}", None, 0)
                    g = self.ev(st.guard, fr, 0) if st.guard is not None else z3.BoolVal(True, self.ctx)
                    g = z3.simplify(g)
                    if z3.is_false(g):
                        continue
                    if node.depth >= depth:
                        opens.append(z3.And(node.pc, g))
                        continue
                    extra = []
                    for lit, a in before.get(st.name, []):
                        afr = Frame({}, node.state, z3.BoolVal(True, self.ctx), z3.BoolVal(False, self.ctx), None, [],
                                    [], f"n{len(nodes)}", None, 0)
                        extra.append(z3.Implies(lit, self.ev(a.formula, afr, 1)))
                    pc = z3.And(node.pc, g, *extra) if not z3.is_true(g) or extra else node.pc
                    fr.state = node.state.copy()
                    self.exec_block(st.body, fr)
                    for r in fr.requires:
                        r.guard = z3.And(pc, r.guard)
                    key = _control_key(st.name, fr.state)
                    if key is None:
                        key = ("unique", len(order), st.name)
                    if key not in groups:
                        groups[key] = []
                        order.append(key)
                    groups[key].append((node, pc, fr.state, fr.requires, st.name))
                node.open = z3.Or(*opens) if opens else None
            level = []
            for key in order:
                edges = groups[key]
                step = edges[0][4]
                if len(edges) == 1:
                    _, pc, state, reqs, _ = edges[0]
                else:
                    pc = z3.Or(*[e[1] for e in edges])
                    state = _merge_states([(e[1], e[2]) for e in edges])
                    reqs = [r for e in edges for r in e[3]]
                child = TraceNode(len(nodes), [(e[0], e[1]) for e in edges], step, state, pc,
                                  edges[0][0].depth + 1, reqs)
                nodes.append(child)
                level.append(child)
                if len(nodes) > MAX_TREE_NODES:
                    raise _err("KHO530", Span.point("<machine>"), f"more than {MAX_TREE_NODES} distinct states",
                               "make step guards decide the order (phases), or lower the check's depth")
        return nodes

    def frame_for(self, node: TraceNode) -> Frame:
        return Frame({}, node.state, node.pc, z3.BoolVal(False, self.ctx), None, [], [], f"n{node.id}", None, 0)


def _control_key(step: str, state: MachineState) -> Any:
    """The step and the scalars' values where they are concrete (symbolic ones are
    merged like maps)."""
    vals: list[Any] = [step]
    for name in sorted(state.scalars):
        v = state.scalars[name]
        if isinstance(v, StructVal) or not (z3.is_bv_value(v) or z3.is_true(v) or z3.is_false(v)):
            vals.append((name, "symbolic"))
        else:
            vals.append((name, v.get_id()))
    return tuple(vals)


def _merge_states(parts: list[tuple[Any, MachineState]]) -> MachineState:
    """One state for several paths with the same concrete scalars: maps merged by the
    paths' conditions (the first path's condition decides first)."""
    first = parts[0][1]
    scalars = dict(first.scalars)
    for name in scalars:
        vals = [st.scalars[name] for _, st in parts]
        if all(_same(v, vals[0]) for v in vals):
            continue
        merged_v = vals[-1]
        for (pc, _), v in zip(reversed(parts[:-1]), reversed(vals[:-1]), strict=True):
            merged_v = bv.ite(pc, v, merged_v)
        scalars[name] = merged_v
    maps: dict[str, MapVal] = {}
    for name in first.maps:
        objs = [st.maps[name] for _, st in parts]
        if all(o is objs[0] for o in objs):
            maps[name] = objs[0]
            continue
        merged = objs[-1]
        for (pc, st) in reversed(parts[:-1]):
            merged = IteMap(pc, st.maps[name], merged)
        maps[name] = merged
    return MachineState(scalars, maps)


def _same(a: Sym, b: Sym) -> bool:
    if isinstance(a, StructVal):
        return all(_same(x, y) for x, y in zip(a.fields, b.fields, strict=True))
    return bool(a.eq(b))


def mentions_require(stmts: tuple[ir.Stmt, ...], name: str | None, program: ir.Program,
                     strategy: str | None) -> bool:
    """Whether `require name` (any require for None) is in stmts or a function they call."""
    return any(isinstance(n, ir.SRequire) and (name is None or n.name == name)
               for n in ir.walk(stmts, program, strategy))


def _free_locals(e: ir.Expr) -> set[int]:
    out: set[int] = set()
    bound: set[int] = set()
    stack: list[ir.Node] = [e]
    while stack:
        n = stack.pop()
        if isinstance(n, ir.Local):
            out.add(n.uid)
        if isinstance(n, ir.Quant | ir.FirstNode):
            bound.add(n.var.uid)
        stack.extend(ir.children(n))
    return out - bound


def _reads_state(e: ir.Expr, program: ir.Program, strategy: str | None) -> bool:
    """Whether ``e`` reads the machine's state, itself or through a function it calls
    (whose flag covers everything that function calls)."""
    seen: set[str] = set()
    stack: list[ir.Node] = [e]
    while stack:
        n = stack.pop()
        if isinstance(n, ir.StateRef | ir.MapRead):
            return True
        if isinstance(n, ir.CallFn) and n.name not in seen:
            seen.add(n.name)
            f = program.fn(n.name, strategy)
            if f.reads_state:
                return True
        stack.extend(ir.children(n))
    return False


def _key(v: Sym) -> Any:
    if isinstance(v, StructVal):
        return tuple(_key(f) for f in v.fields)
    return v.get_id()


def _simple_body(body: tuple[ir.Stmt, ...] | ir.Expr, program: ir.Program, strategy: str | None) -> bool:
    bad = (ir.Quant, ir.InEmits, ir.EmitsEq, ir.StateRef, ir.MapRead, ir.SRequire, ir.SWhile,
           ir.SEmit, ir.SForBulk, ir.SStateAssign, ir.SMapWrite)
    for n in ir.walk(list(body) if isinstance(body, tuple) else [body], program, strategy):
        if isinstance(n, bad) or (isinstance(n, ir.Builtin) and n.name == "requires_hold"):
            return False
        if isinstance(n, ir.FnDef) and (n.reads_state or n.writes_state or n.has_loop):
            return False
    return True


def _read_after(sub: Frame, name: str, q: Any) -> Sym:
    assert sub.state is not None
    return sub.state.maps[name].read(q)


def lower_init() -> None:  # pragma: no cover - keeps the public surface explicit
    pass


__all__ = ["BOOL", "LowerError", "Lowering", "SeqType", "TraceNode", "mentions_require"]
