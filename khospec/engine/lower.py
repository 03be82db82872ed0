"""Stage 3a: the typed program -> Z3 formulas for one check under one strategy.

Expressions become bit-vector terms (engine/bv.py); functions are inlined, their bodies
executed by engine/statements.py; the machine's state maps (pfn -> struct page) are
Python objects from an index term to the value there (engine/state.py). Quantifiers are
handled by polarity: a universal the formula must make false gets a fresh witness (a
Skolem constant), one it must make true is instantiated on the layout's witnesses
(engine/layout.py). Loops are unrolled a few iterations and, past that, stood in for by
any state satisfying their invariants (proved inductive separately), so a proof covers
every iteration.

The machine's traces are enumerated as a tree by engine/trace.py.
"""

from __future__ import annotations

from typing import Any, assert_never

import z3

from khospec import ir
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
from khospec.engine.state import CallResult, Frame, LoopInfo, LowerError, Skolem, err
from khospec.engine.statements import Statements
from khospec.engine.terms import apply, choose, conj, disj, implies, is_false, negate
from khospec.types import BOOL, INT, ULONG, BoolType, IntType, SeqType, StructType, Type

# the iterations of a `while` loop run before its stand-in or cut (statements._while)
UNROLL = 3


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
        # a requirement claim reads only the requires of that name in the machine's
        # steps: the others are not collected (statements.py, SRequire)
        self.wanted = wanted_requirement
        self._params: dict[str, Any] = {}
        # what the counterexample must give values of (engine/extract.py): every
        # application of a param function, every constant the solver picks (witnesses,
        # unknown initial values), every read of uninitialised memory
        self.param_apps: list[tuple[str, tuple[Any, ...], Any]] = []
        self.skolems: list[Skolem] = []
        self.garbage_apps: list[tuple[str, Any, Any]] = []
        # the program's semantics: constraints every model satisfies (loop exits, layout
        # bindings), whichever violation is asked
        self.hard: list[Any] = []
        self.loops: list[LoopInfo] = []
        self.incomplete: list[str] = []
        self._fresh = 0
        self.layout: Layout
        # a layout block fixes the layout and the params it binds; ``bounded`` is the
        # search among layouts of at most that many ranges; otherwise every layout
        if layout is not None:
            assert page_shift is not None
            self.layout = ConcreteLayout(ctx, layout, page_shift, self.param)
            self._bind_layout_params(layout)
        elif bounded is not None:
            self.layout = BoundedLayout(ctx, self.param, bounded)
        else:
            self.layout = SymbolicLayout(ctx, self.param)
        # when a loop that `c in f(...)` or `f(...) == [...]` reads may not have ended
        # within the unrolling (_ev_InEmits)
        self.hard_open: list[Any] = []
        # In a trace, violations at different nodes are alternatives, so one witness per
        # quantifier or loop site serves every node (and shares the map reads); but not
        # two evaluations of a site that one model needs at once (_witness_key).
        self.share_witnesses = False
        self._site_witness: dict[tuple[Any, ...], Any] = {}
        # the evaluation in progress: None between evaluations, () where witnesses may
        # serve every node, a number of its own for an asserted formula (_root_of)
        self._root: Any = None
        self._roots = 0
        self._free: dict[int, tuple[int, ...]] = {}  # id of a Quant -> its free locals
        # False when only reachability matters (vacuity): requires are not evaluated
        self.collect_requires = True
        # the answers of simple calls and of first-node questions, by their argument terms
        self._memo: dict[tuple[Any, ...], Sym] = {}
        self._simple: dict[int, bool] = {}  # id of a FnDef -> _is_simple
        self._writes: dict[int, bool] = {}  # id of an operand -> _writes_state
        self.statements = Statements(self)

    # -- names and params
    def fresh_name(self, base: str) -> str:
        # z3 identifies a constant by its name and sort: the counter keeps each fresh one
        # apart from every other of its kind
        self._fresh += 1
        return f"{base}!{self._fresh}"

    def param(self, name: str, args: tuple[Any, ...] = ()) -> Any:
        """The value of param ``name``: a constant named after it (the profile's
        substitution and the counterexample find it by that name), or for a param
        function its uninterpreted function at ``args``, an application recorded for the
        counterexample."""
        pd = self.program.params[name]
        if pd.arg_types is None:
            v = self._params.get(name)
            if v is None:
                v = bv.fresh(pd.ty, name, self.ctx)
                self._params[name] = v
            return v
        f = self._params.get(name)
        if f is None:
            # a z3 function returns one sort, and a struct is a term per field
            if isinstance(pd.ty, StructType):
                raise err("KHO501", pd.span, f"param function `{name}` returning a struct is not supported")
            f = z3.Function(name, *[sort_of(t, self.ctx) for t in pd.arg_types], sort_of(pd.ty, self.ctx))
            self._params[name] = f
        v = apply(f, *args)
        self.param_apps.append((name, args, v))
        return v

    def _bind_layout_params(self, layout: ir.LayoutDef) -> None:
        """The params a layout block gives values, as hard equations."""
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
        """The profile's constants as one formula, which the all-profiles query puts
        behind the profile's literal."""
        eqs = [bv.eq(param, value) for param, value in self.constants(profile)]
        return conj(*eqs) if eqs else z3.BoolVal(True, self.ctx)

    # -- expressions
    def ev(self, e: ir.Expr, fr: Frame, pol: int = 0) -> Sym:
        """The term for ``e`` in frame ``fr``. ``pol`` is how the formulas use it: 1
        where it must be true (an assumption, a premise), -1 where it must be false (the
        claim, which the violation negates), 0 where either may be asked (under `<->`,
        `==`, `?:`, as a value). Quantifiers over unbounded domains and calls whose loops
        may not end are lowered according to it."""
        if self._root is None:
            # an evaluation of its own (a claim, an assumption, a statement's expression):
            # where its witnesses may be shared is decided here, for everything under it
            self._root = self._root_of(fr, pol)
            try:
                return self._ev(e, fr, pol)
            finally:
                self._root = None
        return self._ev(e, fr, pol)

    def _root_of(self, fr: Frame, pol: int) -> Any:
        """Where the witnesses of an evaluation that is not part of another may be
        shared. A formula asserted outside a loop that only checks (a `before`
        assumption, an assumption) is a conjunct of every case of the violation below
        it, and a `before` assumption is asserted again on each edge of its step: on
        other states, several times along one path, and under the claims of the nodes
        below. Its witnesses are its own: a number per evaluation. Everything else a
        trace evaluates (the claim at a node, a step's guard and statements, the filter
        and branches of a loop that only checks, which guard its requires) belongs to
        one case of the violation, the claim at one node or one require, and the cases
        are alternatives: ()."""
        if pol > 0 and fr.bulk is None:
            self._roots += 1
            return self._roots
        return ()

    def _ev(self, e: ir.Expr, fr: Frame, pol: int) -> Sym:
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
            raise err("KHO599", e.span, f"internal: `{e.name}` has no value here") from None

    def _ev_ParamRef(self, e: ir.ParamRef, fr: Frame, pol: int) -> Sym:
        return self.param(e.name)

    def _ev_ParamApp(self, e: ir.ParamApp, fr: Frame, pol: int) -> Sym:
        return self.param(e.name, tuple(self.ev(a, fr) for a in e.args))

    def _ev_StateRef(self, e: ir.StateRef, fr: Frame, pol: int) -> Sym:
        if fr.state is None:
            raise err("KHO599", e.span, f"internal: state `{e.name}` read outside the machine")
        return fr.state.scalars[e.name]

    def _ev_MapRead(self, e: ir.MapRead, fr: Frame, pol: int) -> Sym:
        if fr.state is None:
            raise err("KHO599", e.span, f"internal: map `{e.name}` read outside the machine")
        idx = self.ev(e.index, fr)
        if fr.bulk is not None and e.name in fr.bulk.written and not idx.eq(fr.bulk.index):
            raise err(
                "KHO521", e.span,
                f"`{e.name}` is updated by this loop and read here at another index",
                "the loop updates all indices at once; read the map before the loop or at the loop index",
            )
        # (KHO521: a loop over a set updates every index at once from the state before
        # it, which is C's result only if no index reads an entry another one writes)
        self.layout.hint_pfn(idx)
        return fr.state.maps[e.name].read(idx)

    def _ev_Unary(self, e: ir.Unary, fr: Frame, pol: int) -> Sym:
        if e.op == "!":
            # must be true under a negation is must be false inside it
            return negate(self.ev(e.operand, fr, -pol))
        v = self.ev(e.operand, fr)
        # the operand is already promoted; negation wraps, so -INT_MIN is INT_MIN
        return -v if e.op == "-" else ~v

    def _ev_Binary(self, e: ir.Binary, fr: Frame, pol: int) -> Sym:
        op = e.op
        if op == "&&":
            a = self.ev(e.left, fr, pol)
            return conj(a, self._ev_when(e.right, fr, pol, a))
        if op == "||":
            a = self.ev(e.left, fr, pol)
            return disj(a, self._ev_when(e.right, fr, pol, negate(a)))
        if op == "->":
            # a -> b is !a || b: the premise takes the opposite polarity
            a = self.ev(e.left, fr, -pol)
            return implies(a, self._ev_when(e.right, fr, pol, a))
        if op == "<->":
            # each side is true in one case and false in the other
            return self.ev(e.left, fr, 0) == self.ev(e.right, fr, 0)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            # operands are values, whose truth the comparison uses either way
            sub = 0
            a = self.ev(e.left, fr, sub)
            b = self.ev(e.right, fr, sub)
            return bv.compare(op, a, b, e.left.ty)
        a = self.ev(e.left, fr)
        b = self.ev(e.right, fr)
        assert isinstance(e.ty, IntType)
        # the type checker brought both operands to e.ty, but for a shift, whose count
        # C promotes on its own
        if op in ("<<", ">>"):
            rt = e.right.ty
            assert isinstance(rt, IntType)
            return bv.shift(op, a, e.ty, b, rt)
        return bv.arith(op, a, b, e.ty)

    def _ev_Convert(self, e: ir.Convert, fr: Frame, pol: int) -> Sym:
        return bv.convert(self.ev(e.operand, fr), e.operand.ty, e.ty, self.ctx)

    def _ev_Ite(self, e: ir.Ite, fr: Frame, pol: int) -> Sym:
        # c ? a : b is monotone in a and b, which keep the polarity; c is used both ways
        c = self.ev(e.cond, fr, 0)
        return bv.ite(c, self._ev_when(e.then, fr, pol, c), self._ev_when(e.else_, fr, pol, negate(c)))

    def _ev_when(self, e: ir.Expr, fr: Frame, pol: int, runs: Any) -> Sym:
        """``e``, an operand C evaluates only where ``runs`` holds (the right of `&&`,
        `||` and `->`, a branch of `?:`): what its calls leave beyond its value happens
        only there, as in the interpreter. A require it collects gets ``runs`` in its
        guard; a state write runs under it. The operand's own terms are not touched
        otherwise (an emit only feeds the membership test around its own call, whose
        value the operator already combines with ``runs``)."""
        if self._writes_state(e):
            saved = fr.guard
            fr.guard = conj(saved, runs)
            try:
                return self.ev(e, fr, pol)
            finally:
                fr.guard = saved
        first = len(fr.requires)
        v = self.ev(e, fr, pol)
        for r in fr.requires[first:]:
            r.guard = conj(runs, r.guard)
        return v

    def _writes_state(self, e: ir.Expr) -> bool:
        key = id(e)
        hit = self._writes.get(key)
        if hit is None:
            hit = any(isinstance(n, ir.SStateAssign | ir.SMapWrite) for n in ir.walk([e], self.program, self.strategy))
            self._writes[key] = hit
        return hit

    def _ev_FieldGet(self, e: ir.FieldGet, fr: Frame, pol: int) -> Sym:
        v = self.ev(e.obj, fr)
        assert isinstance(v, StructVal)
        return v.get(e.field)

    def _ev_StructMake(self, e: ir.StructMake, fr: Frame, pol: int) -> Sym:
        return StructVal(e.ty, tuple(self.ev(f, fr) for f in e.fields))

    def _ev_Builtin(self, e: ir.Builtin, fr: Frame, pol: int) -> Sym:
        n = e.name
        if n == "requires_hold":
            # true iff no require the call executes fails: each condition where its guard
            # (the path that reaches it) holds; the label tells its requires apart in
            # the counterexample
            call = e.args[0]
            assert isinstance(call, ir.CallFn)
            # every require of the call, whatever the check collects for itself: a
            # lowering that skips requires (a trace check of `always`, the vacuity check)
            # would otherwise make requires_hold true, and an assumption `requires_hold(..)
            # -> P` would assume P
            collect, wanted = self.collect_requires, self.wanted
            self.collect_requires, self.wanted = True, None
            try:
                # where it must be false, a require that fails before a loop that runs
                # on fails in a real execution; where it must be true, the requires
                # after the loop count too, so the loop must end
                res = self.call(call, fr, pol, label=f"{fr.label}/{call.name}", prefix=pol < 0)
            finally:
                self.collect_requires, self.wanted = collect, wanted
            conds = [implies(r.guard, r.cond) for r in res.requires]
            return conj(*conds) if conds else z3.BoolVal(True, self.ctx)
        args = [self.ev(a, fr) for a in e.args]
        if n in LAYOUT_BUILTINS:
            return answer_builtin(self.layout, n, args)
        if n == "count_trailing_zeros":
            return bv.count_trailing_zeros(args[0])
        if n == "ilog2":
            return bv.ilog2(args[0])
        t = e.ty
        if n in ("min", "max", "clamp"):
            # min and max as include/linux/minmax.h's x < y ? x : y and x > y ? x : y,
            # clamp as min(max(val, lo), hi); the type checker converted the arguments to
            # one type (the kernel rejects mixed signedness), whose signedness picks the
            # comparison
            assert isinstance(t, IntType)
            lt = (lambda a, b: a < b) if t.signed else z3.ULT
            if n == "min":
                return choose(lt(args[1], args[0]), args[1], args[0])
            if n == "max":
                return choose(lt(args[0], args[1]), args[1], args[0])
            v, lo, hi = args
            mx = choose(lt(v, lo), lo, v)
            return choose(lt(hi, mx), hi, mx)
        # include/linux/align.h, computed in x's type, to which the type checker
        # converted a as (typeof(x))(a) does: IS_ALIGNED tests the low bits, ALIGN rounds
        # up, and ALIGN_DOWN, ALIGN(x - (a - 1), a) in the kernel, is x & ~(a - 1)
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
    def bind(self, fr: Frame, var: ir.Local, value: Sym) -> Frame:
        """``fr`` with ``var`` bound to ``value``: the locals copied, the rest shared, so
        the requires a quantifier's body executes are the frame's."""
        locs = dict(fr.locals)
        locs[var.uid] = value
        return Frame(locs, fr.state, fr.guard, fr.returned, fr.ret, fr.emits, fr.requires, fr.label, fr.bulk, fr.pol)

    def _ev_Quant(self, e: ir.Quant, fr: Frame, pol: int) -> Sym:
        d = e.domain
        universal = e.kind == "forall"
        # finite domains: expand, whatever the polarity (exact, and no witness to replay)
        if d.kind == "interval":
            assert d.lo is not None and d.hi is not None
            lo = self.ev(d.lo, fr)
            hi = self.ev(d.hi, fr)
            if z3.is_bv_value(z3.simplify(lo)) and z3.is_bv_value(z3.simplify(hi)):
                lo_v = z3.simplify(lo).as_long()
                hi_v = z3.simplify(hi).as_long()
                ty = e.var.ty
                assert isinstance(ty, IntType)
                # the bounds as values of the variable's type: a signed interval may start
                # below zero
                lo_i, hi_i = ty.wrap(lo_v), ty.wrap(hi_v)
                if hi_i - lo_i <= 64:
                    parts = [self.ev(e.body, self.bind(fr, e.var, bv.const(i, ty, self.ctx)), pol)
                             for i in range(lo_i, max(lo_i, hi_i))]
                    if universal:
                        return conj(*parts) if parts else z3.BoolVal(True, self.ctx)
                    return disj(*parts) if parts else z3.BoolVal(False, self.ctx)
        if isinstance(e.var.ty, BoolType):
            parts = [self.ev(e.body, self.bind(fr, e.var, z3.BoolVal(b, self.ctx)), pol) for b in (False, True)]
            return conj(*parts) if universal else disj(*parts)
        # witness when the quantifier must fail (forall) / hold (exists)
        if (universal and pol < 0) or (not universal and pol > 0):
            return self._skolemize(e, fr, pol, universal)
        # used both ways it would need a witness and every instance at once; neither
        # encoding alone is faithful to both
        if pol == 0:
            raise err(
                "KHO510", e.span,
                f"`{e.kind}` over an unbounded domain in a position that is neither asserted nor denied",
                "move the quantifier out of `<->`, `==`, `?:` and assignments",
            )
        return self._instantiate(e, fr, pol, universal)

    def _skolemize(self, e: ir.Quant, fr: Frame, pol: int, universal: bool) -> Sym:
        """A constant the solver picks for the variable: where a forall must fail, the
        element it fails at; where an exists must hold, the element it holds at. The
        formula has a model iff the quantified one has (Skolemization), because the
        constant is free to be whatever element that model needs, and the model's value
        is recorded (``skolems``) for the counterexample and the replay."""
        d = e.domain
        label = fr.label
        origin = f"{e.var.name} at {self.program.site_spans.get(e.site, e.span)}"
        bound = self._bound(e, fr)
        if d.kind in ("nodes", "ranges"):
            # the element must belong to the layout: ``exists``
            exists, w = self.layout_witness(e.site, d.kind, e.var.name, e.var.ty, origin, label, bound)
            body = self.ev(e.body, self.bind(fr, e.var, w), pol)
            return implies(exists, body) if universal else conj(exists, body)
        key = self._witness_key(e.site, "value", bound)
        if self.share_witnesses and key in self._site_witness:
            w = self._site_witness[key]
        else:
            w = bv.fresh(e.var.ty, self.fresh_name(f"{e.var.name}@{e.site}"), self.ctx)
            self.skolems.append(Skolem(e.site, label, e.var.name, e.var.ty, w, "witness"))
            if self.share_witnesses:
                self._site_witness[key] = w
        if isinstance(w, z3.BitVecRef) and e.var.ty == ULONG:
            self.layout.hint_pfn(w)
        # (the formula is negated where a forall must fail: `inside -> body` becomes
        # `inside and not body`, the witness inside the interval)
        inner = self.bind(fr, e.var, w)
        body = self.ev(e.body, inner, pol)
        if d.kind == "interval":
            assert d.lo is not None and d.hi is not None
            lo, hi = self.ev(d.lo, fr), self.ev(d.hi, fr)
            inside = conj(bv.compare("<=", lo, w, e.var.ty), bv.compare("<", w, hi, e.var.ty))
            return implies(inside, body) if universal else conj(inside, body)
        return body

    def _bound(self, e: ir.Quant, fr: Frame) -> tuple[Any, ...]:
        """The values of the locals ``e`` reads, bound around it (by an enclosing
        quantifier, a call's arguments, a loop): with the state, all its evaluation
        depends on."""
        free = self._free.get(id(e))
        if free is None:
            free = tuple(sorted(_free_locals(e)))
            self._free[id(e)] = free
        return tuple(_key(fr.locals[u]) for u in free)

    def _witness_key(self, site: int, kind: str, bound: tuple[Any, ...]) -> tuple[Any, ...]:
        """What a witness is shared by in a trace. Within one case of the violation a
        site is evaluated again only under other values of the locals it reads (each
        instance of a quantifier instantiated on the layout's witnesses or expanded over
        an interval, each call with its arguments, each iteration), and such evaluations
        are conjuncts of one formula, each needing its own element: ``bound`` keeps them
        apart. An evaluation with the same values and state is the same formula, which
        one witness serves. The state differs between the cases (the claim at each
        node), which are alternatives and share the witness; the evaluations of a
        `before` assumption are not, and have a ``_root`` each."""
        return (site, kind, self._root if self._root is not None else (), bound)

    def layout_witness(self, site: int, kind: str, name: str, ty: Type, origin: str, label: str,
                       bound: tuple[Any, ...] = ()) -> tuple[Any, Any]:
        """(exists, element): a node or range of the layout the solver picks, recorded
        for the replay; in a trace one per site and values of the locals it reads
        (``share_witnesses``, _witness_key). A loop over nodes that only checks (no
        ``bound``) has one per site: see loop_witness."""
        key = self._witness_key(site, kind, bound)
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

    def loop_witness(self, s: ir.SForBulk, label: str) -> Any:
        """The index a loop over a set of indices is checked at: its requires hold for
        every index iff they hold for this one, which the solver picks. One per loop site
        in a trace, whatever the values around the loop: such a loop runs only on the
        machine's state, in a step (or a `before` assumption, whose requires nobody
        reads), and the index only guards its requires, each of which is a case of the
        violation on its own (a requirement claim; requires_hold, which would conjoin
        them, reads no state): no model needs two indices at once."""
        key = self._witness_key(s.site, "loop", ())
        if self.share_witnesses and key in self._site_witness:
            return self._site_witness[key]
        ty = s.var.ty
        assert isinstance(ty, IntType)
        w = z3.BitVec(self.fresh_name(f"{s.var.name}@{s.site}"), ty.width, self.ctx)
        self.skolems.append(Skolem(s.site, label, s.var.name, ty, w, "witness"))
        if self.share_witnesses:
            self._site_witness[key] = w
        return w

    def _instantiate(self, e: ir.Quant, fr: Frame, pol: int, universal: bool) -> Sym:
        """A forall that must hold (or an exists that must fail, the forall of its
        negation) as the layout's stand-in for it: over nodes and ranges, instances on
        every witness, exact (engine/layout.py); over pfns, instances on the pfns the
        query asks the layout about, implied by the real fact and so sound for a proof,
        while a refutation that depends on it is decided by the replay."""
        d = e.domain
        sign = 1 if universal else -1  # exists with pol<0 is a universal of the negation
        # the layout instantiates the body on witnesses that appear later, after this
        # evaluation: its instances keep its sharing scope
        root = self._root

        def body(v: Sym) -> Any:
            outer, self._root = self._root, root
            try:
                b = self.ev(e.body, self.bind(fr, e.var, v), pol)
            finally:
                self._root = outer
            return b if universal else negate(b)

        if d.kind == "nodes":
            q = self.layout.forall_nodes(body)
        elif d.kind == "ranges":
            q = self.layout.forall_ranges(body)
        # a 64-bit integer is taken for a pfn; other integers have no pool of terms to be
        # instantiated on
        elif (isinstance(e.var.ty, IntType) and e.var.ty.width == 64
              and isinstance(self.layout, SymbolicLayout | BoundedLayout)):
            if d.kind == "interval":
                assert d.lo is not None and d.hi is not None
                lo, hi = self.ev(d.lo, fr), self.ev(d.hi, fr)

                def body2(v: Sym) -> Any:
                    inside = conj(bv.compare("<=", lo, v, e.var.ty), bv.compare("<", v, hi, e.var.ty))
                    return implies(inside, body(v))

                q = self.layout.forall_pfns(body2)
            else:
                q = self.layout.forall_pfns(body)
            self.incomplete.append(
                f"`{e.kind} {e.var.name}` at {e.span} is instantiated on the pfns the claim mentions")
        else:
            raise err(
                "KHO511", e.span,
                f"`{e.kind} {e.var.name}: {e.var.ty}` cannot be decided here",
                "quantify over nodes, ranges, pfns (ulong) or a constant interval",
            )
        return q if sign > 0 else negate(q)

    def _ev_FirstNode(self, e: ir.FirstNode, fr: Frame, pol: int) -> Sym:
        default = self.ev(e.default, fr)
        free = _free_locals(e.cond) - {e.var.uid}
        key: tuple[Any, ...] | None = None
        if not _reads_state(e.cond, self.program, self.strategy):
            # the answer depends on the layout and the free variables only: memoised, so
            # that evaluating it again adds no witness range to the layout
            key = ("first", e.site, _key(default), *(( u, _key(fr.locals[u])) for u in sorted(free)))
            hit = self._memo.get(key)
            if hit is not None:
                return hit

        root = self._root

        def cond(n: Any) -> Any:
            # instantiated on later witnesses too, in this evaluation's sharing scope
            outer, self._root = self._root, root
            try:
                return self.ev(e.cond, self.bind(fr, e.var, n), 0)
            finally:
                self._root = outer

        out = self.layout.first_node(cond, default, f"first node at {e.span}")
        if key is not None:
            self._memo[key] = out
        return out

    # -- calls
    def _ev_CallFn(self, e: ir.CallFn, fr: Frame, pol: int) -> Sym:
        fn = self.program.fn(e.name, self.strategy)
        if self._is_simple(fn):
            # a function of its arguments alone: one term per argument tuple, so its body
            # is lowered once per tuple and equal calls are one term, not two the solver
            # must show equal
            args = tuple(self.ev(a, fr) for a in e.args)
            key = (fn.name, fn.strategy, *(_key(a) for a in args))
            hit = self._memo.get(key)
            if hit is None:
                sub = Frame({p.uid: a for p, a in zip(fn.params, args, strict=True)}, None,
                            z3.BoolVal(True, self.ctx), z3.BoolVal(False, self.ctx), None, [], [], fr.label)
                if isinstance(fn.body, tuple):
                    self.statements.exec_block(fn.body, sub, fn=fn)
                    hit = sub.ret
                else:
                    hit = self.ev(fn.body, sub, 0)
                self._memo[key] = hit
            return hit
        # inlined: the body runs on the caller's state where the caller's statement
        # runs, and its requires are the caller's
        res = self.call(e, fr, pol, label=fr.label)
        fr.requires.extend(res.requires)
        if res.ret is None:
            raise err("KHO599", e.span, f"internal: `{e.name}` returned no value")
        return res.ret

    def _ev_InEmits(self, e: ir.InEmits, fr: Frame, pol: int) -> Sym:
        item = self.ev(e.item, fr)
        # where membership must be true, what the loops emitted before the unrolling
        # ends was emitted; where it may have to be false, they must end (below)
        res = self.call(e.call, fr, pol, label=f"{fr.label}/{e.call.name}", prefix=pol > 0)
        if pol <= 0 and res.open is not None and not is_false(res.open):
            # exact only when the loops are fully unrolled: a loop that may still run can
            # emit the item later, so where membership may have to be false a
            # counterexample must show every loop ended (solve.py blocks ``open``) and a
            # proof is at most holds_to_depth. Where it must be true, the stand-in's
            # iteration can emit what a later one would, and a loop without invariants
            # already leaves a proof at holds_to_depth
            self.hard_open.append(res.open)
        parts = [conj(g, bv.eq(item, v)) for g, v in res.emits]
        return disj(*parts) if parts else z3.BoolVal(False, self.ctx)

    def _ev_EmitsEq(self, e: ir.EmitsEq, fr: Frame, pol: int) -> Sym:
        # compared whole: no stand-in (tail=False), whose one arbitrary iteration cannot
        # stand for a sequence; the k-th emit must be the k-th item, and an emit past the
        # items must not run. An item past the emits of the unrolled run is false here,
        # which ``open`` qualifies as for _ev_InEmits
        res = self.call(e.call, fr, 0, label=f"{fr.label}/{e.call.name}", tail=False, prefix=True)
        if res.open is not None and not is_false(res.open):
            self.hard_open.append(res.open)
        items = [self.ev(i, fr) for i in e.items]
        conds = []
        for k, (g, v) in enumerate(res.emits):
            if k < len(items):
                conds.append(conj(g, bv.eq(v, items[k])))
            else:
                conds.append(negate(g))
        for _ in range(len(res.emits), len(items)):
            conds.append(z3.BoolVal(False, self.ctx))
        return conj(*conds) if conds else z3.BoolVal(True, self.ctx)

    def call(self, e: ir.CallFn, fr: Frame, pol: int, label: str, tail: bool = True,
             prefix: bool = False) -> CallResult:
        """``e``'s body inlined in a frame of its own: the caller's state, under the
        guard where the caller runs it, its value used at ``pol``; ``tail``: whether its
        loops may use the invariants' stand-in. Its state writes, already under that
        guard, become the caller's state.

        ``prefix``: the caller reads only what the call emits or which of its requires
        fail, each real as far as the execution got. Otherwise the caller reads the
        value or goes on after the call, so every loop the call runs leaks: past the
        unrolling without the stand-in it returns no value an execution computes (the
        first `return`'s value, unguarded) and the caller's statements after it run on
        the state the loop was cut in."""
        first = len(self.loops)
        fn = self.program.fn(e.name, self.strategy)
        args = [self.ev(a, fr) for a in e.args]
        sub = Frame({}, fr.state, fr.active(), z3.BoolVal(False, self.ctx), None, [], [], label, fr.bulk, pol)
        for p, a in zip(fn.params, args, strict=True):
            sub.locals[p.uid] = a
        opens: list[Any] = []
        if isinstance(fn.body, tuple):
            self.statements.exec_block(fn.body, sub, fn=fn, opens=opens, tail=tail)
            ret = sub.ret
        else:
            ret = self.ev(fn.body, sub, pol)
        if fr.state is not None and sub.state is not None:
            fr.state = sub.state
        open_ = disj(*opens) if opens else None
        if not prefix:
            for loop in self.loops[first:]:
                loop.leaks = True
        return CallResult(ret, sub.emits, sub.requires, open_)

    def _is_simple(self, fn: ir.FnDef) -> bool:
        """No state, no quantifier, no loop, no require: a pure function of the arguments."""
        key = id(fn)
        hit = self._simple.get(key)
        if hit is None:
            hit = self._simple[key] = ir.pure_fn(fn, self.program, self.strategy)
        return hit


def _free_locals(e: ir.Expr) -> set[int]:
    """The locals ``e`` reads but does not bind (uids are unique per declaration)."""
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
    """A memo key for a value: z3 hash-conses terms, so equal terms have one id."""
    if isinstance(v, StructVal):
        return tuple(_key(f) for f in v.fields)
    return v.get_id()


__all__ = ["BOOL", "UNROLL", "LowerError", "Lowering", "SeqType"]
