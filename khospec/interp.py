"""A plain-Python interpreter of the spec semantics: replays counterexamples.

It shares nothing with the Z3 lowering (engine/) beyond the typed program (ir.py) and
the C arithmetic reference (carith.py): a counterexample's layout, parameters, witness
values and initial memory are loaded, the trace's steps are executed on concrete state,
and the violated condition must come out false. Quantifiers over nodes, ranges and
small intervals are evaluated exactly. A quantifier over a large integer domain (a pfn)
is decided exactly too, by splitting the domain into cells on which every comparison the
body makes with the variable comes out the same (see `PV`); where the body does with the
variable something the splitting does not follow, the quantifier is evaluated at the
solver's witnesses and at every number of the counterexample, and the status names it.
"""

from __future__ import annotations

import bisect
import contextlib
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, assert_never, get_args

from khospec import carith, ir
from khospec import syntax as S
from khospec.counterexample import ModelData, ModelLayout, ModelValues, Read
from khospec.results import Result
from khospec.types import BoolType, IntType, MapType, StructType, Type

MAX_LOOP = 4096  # iterations of one `while` before the replay gives up as unchecked
MAX_ENUM = 4096  # a domain this small is enumerated whole: exact, without cells
EXACT_CELLS = 20000  # body evaluations one exact quantifier decision may take
RESIDUE_CUTS = 4096  # alignment boundaries one cell may be split at


class _Opaque(Exception):
    """The body did with a probed variable something cells cannot follow."""

    def __init__(self, probe: _Probe, what: str) -> None:
        super().__init__(what)
        self.probe = probe


@dataclass
class _Probe:
    """One exact quantifier decision: the cell being evaluated, [lo, hi) of the variable's
    values, and the points where a comparison made at its representative may change."""

    lo: int
    hi: int
    cuts: set[int] = field(default_factory=set)
    # the (offset, width) pairs whose wrap-around points are in ``cuts`` already: every
    # comparison cuts at them, and a body compares the same PV many times
    wrapped: set[tuple[int, int]] = field(default_factory=set)


class PV:
    """The value ``ty.wrap(x + off)`` for the probed variable x, at the representative x.

    Comparing it with anything records the values of x where the outcome can change
    (the threshold, the wrap-arounds of the addition); adding or subtracting a constant
    keeps it a PV (C's wrapping addition composes); testing low bits (IS_ALIGNED, a
    low mask) records each aligned value inside the cell. Every other use raises
    _Opaque, so no dependence on x is ever lost silently.
    """

    __slots__ = ("off", "probe", "ty", "x")

    def __init__(self, x: int, off: int, ty: IntType, probe: _Probe) -> None:
        self.x, self.off, self.ty, self.probe = x, off, ty, probe

    @property
    def v(self) -> int:
        return self.ty.wrap(self.x + self.off)

    def _cut_at(self, *ts: int) -> None:
        """Cuts at each t and at the wrap-arounds of the addition, in every
        representation of x (signed or not)."""
        w, probe = self.ty.width, self.probe
        m = 1 << w
        # x + off wraps where it crosses 0 (unsigned) and -2^(w-1) or 2^(w-1) (signed);
        # each point is also cut 2^w lower and higher, as x's own range may be either
        if (self.off, w) not in probe.wrapped:
            probe.wrapped.add((self.off, w))
            ts = (*ts, -self.off, (m >> 1) - self.off, -(m >> 1) - self.off)
        for t in ts:
            probe.cuts.update((t, t - m, t + m))

    def _cut(self, c: int) -> None:
        """Cuts where x + off reaches c and just past it: ==, < and the others each come
        out the same on the pieces between."""
        self._cut_at(c - self.off, c - self.off + 1)

    def _cmp(self, other: Any, f: Callable[[int, int], bool]) -> bool:
        if isinstance(other, PV):
            if other.probe is not self.probe:
                raise _Opaque(self.probe, "compared with the variable of another quantifier")
            # both sides move with x, a constant apart: their order changes only where
            # one of them wraps
            self._cut_at()
            other._cut_at()
            return f(self.v, other.v)
        # a bool is an int to Python but no C number here; a struct has no threshold
        if isinstance(other, bool) or not isinstance(other, int):
            raise _Opaque(self.probe, f"compared with {type(other).__name__}")
        self._cut(other)
        return f(self.v, other)

    def __eq__(self, o: object) -> bool:
        return self._cmp(o, lambda a, b: a == b)

    def __ne__(self, o: object) -> bool:
        return self._cmp(o, lambda a, b: a != b)

    def __lt__(self, o: Any) -> bool:
        return self._cmp(o, lambda a, b: a < b)

    def __le__(self, o: Any) -> bool:
        return self._cmp(o, lambda a, b: a <= b)

    def __gt__(self, o: Any) -> bool:
        return self._cmp(o, lambda a, b: a > b)

    def __ge__(self, o: Any) -> bool:
        return self._cmp(o, lambda a, b: a >= b)

    def shifted(self, c: int, ty: IntType) -> PV:
        """``ty.wrap(self + c)``; the same type, or a wider one the value fits unchanged."""
        if ty != self.ty and not (self.off == 0 and _widens(self.ty, ty)):
            raise _Opaque(self.probe, f"converted from {self.ty} to {ty}")
        return PV(self.x, self.off + c, ty, self.probe)

    def aligned(self, k: int) -> bool:
        """Whether the value is a multiple of 2^k: a cut at every such value in the cell."""
        step = 1 << k
        probe = self.probe
        # Only the first piece of the cell, up to the first cut made so far, is decided by
        # this evaluation (the path to here differs beyond it): the values of x in it where
        # x + off is a multiple of 2^k, and the values after them, are cuts.
        hi = min([c for c in probe.cuts if c > probe.lo] + [probe.hi])
        first = probe.lo + ((-(probe.lo + self.off)) % step)
        if (hi - first) // step + 1 > RESIDUE_CUTS:
            raise _Opaque(probe, f"tested for alignment to {step} across {hi - probe.lo} values")
        for t in range(first, hi, step):
            probe.cuts.update((t, t + 1))
        self._cut_at()
        return self.v % step == 0

    def __hash__(self) -> int:
        raise _Opaque(self.probe, "used as a key")

    def __bool__(self) -> bool:
        raise _Opaque(self.probe, "used as a truth value")

    def __index__(self) -> int:
        raise _Opaque(self.probe, "used as a number")

    def __int__(self) -> int:
        raise _Opaque(self.probe, "used as a number")

    def __repr__(self) -> str:
        return f"PV({self.v})"

    def _opaque(self, *_: Any) -> Any:
        raise _Opaque(self.probe, "in arithmetic the cells do not follow")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _opaque
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _opaque
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = _opaque
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __neg__ = __invert__ = __abs__ = _opaque


class PVLow:
    """``pv & (2^k - 1)``: only its comparison with 0 (an alignment test) is followed."""

    __slots__ = ("k", "probe", "pv")

    def __init__(self, pv: PV, k: int) -> None:
        self.pv, self.k, self.probe = pv, k, pv.probe

    def _zero(self, o: object) -> bool:
        if isinstance(o, bool) or o != 0:
            raise _Opaque(self.probe, "low bits compared with a number other than 0")
        return self.pv.aligned(self.k)

    def __eq__(self, o: object) -> bool:
        return self._zero(o)

    def __ne__(self, o: object) -> bool:
        return not self._zero(o)

    def _opaque(self, *_: Any) -> Any:
        raise _Opaque(self.probe, "low bits used other than in an alignment test")

    __lt__ = __le__ = __gt__ = __ge__ = __hash__ = __bool__ = __index__ = __int__ = _opaque
    __add__ = __radd__ = __sub__ = __rsub__ = __and__ = __rand__ = __or__ = __ror__ = _opaque
    __lshift__ = __rshift__ = __mul__ = __rmul__ = __neg__ = __invert__ = _opaque


# the one operator asked for, not the six carith.compare evaluates: each comparison of a
# probed value records cuts, and a PVLow takes only == and !=
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _label(e: ir.Expr) -> str:
    """An index expression as the spec writes it, for the simple forms (else "...")."""
    match e:
        case ir.Local() | ir.ParamRef():
            return e.name
        case ir.FieldGet():
            return f"{_label(e.obj)}.{e.field}"
        case ir.Convert():
            return _label(e.operand)
        case ir.Const() if isinstance(e.value, int):
            return hex(e.value)
        case ir.Binary() if e.op in ("+", "-"):
            return f"{_label(e.left)} {e.op} {_label(e.right)}"
        case (ir.Const() | ir.Binary() | ir.ParamApp() | ir.StateRef() | ir.MapRead() | ir.Unary() | ir.Ite()
              | ir.StructMake() | ir.CallFn() | ir.Builtin() | ir.Quant() | ir.FirstNode() | ir.InEmits()
              | ir.EmitsEq()):
            return "..."
        case _:
            assert_never(e)


def _widens(a: IntType, b: IntType) -> bool:
    """Every value of a is a value of b."""
    if a.signed == b.signed:
        return b.width >= a.width
    return not a.signed and b.signed and b.width > a.width


def _low_mask_bits(m: int) -> int | None:
    """k when m == 2^k - 1."""
    return (m + 1).bit_length() - 1 if m >= 0 and (m + 1) & m == 0 else None


# the replay is then "unchecked: ...": the verdict stands, the status says why
class Undetermined(Exception):
    """The counterexample lacks a value the interpreter needs."""


class _RequireFailed(Exception):
    """A `require` failed inside requires_hold(): unwinds the call, whose answer is
    then false."""

    pass


class Incomplete(Exception):
    """The counterexample breaks a pfn-quantified assumption the solver only instantiated
    at some pfns: not a bug, a limit of the instantiation (the verdict becomes unknown)."""


class ReplayMismatch(Exception):
    """The solver's model and the concrete semantics disagree: a bug in khospec, which
    the runner reports as an internal error (exit 3). ``solver_view`` and
    ``interp_view`` say what each side found."""

    def __init__(self, message: str, solver_view: str, interp_view: str) -> None:
        super().__init__(message)
        self.solver_view = solver_view
        self.interp_view = interp_view


@dataclass(frozen=True)
class SVal:
    """A struct value, its fields in ``ty``'s declaration order. Immutable: ``set``
    makes a new value, so a state map's older layers keep theirs."""

    ty: StructType
    fields: tuple[Any, ...]

    def get(self, name: str) -> Any:
        for (n, _), v in zip(self.ty.fields, self.fields, strict=True):
            if n == name:
                return v
        raise KeyError(name)

    def set(self, path: tuple[str, ...], value: Any) -> SVal:
        """This value with the field at ``path`` (``a.b`` as ("a", "b")) replaced."""
        name = path[0]
        vals = []
        for (n, _), v in zip(self.ty.fields, self.fields, strict=True):
            if n == name:
                v = value if len(path) == 1 else v.set(path[1:], value)
            vals.append(v)
        return SVal(self.ty, tuple(vals))


def _from_json(v: Any, ty: Type) -> Any:
    """A value of the model's JSON as the interpreter's value of ``ty``."""
    if isinstance(ty, StructType):
        return SVal(ty, tuple(_from_json(v[n], t) for n, t in ty.fields))
    if isinstance(ty, BoolType):
        return bool(v)
    assert isinstance(ty, IntType)
    return ty.wrap(int(v))


def json_value(v: Any) -> Any:
    """An interpreter value as JSON: a struct as an object of its fields, an int or a
    bool as itself (the ITF traces of review.py show the machine's state this way)."""
    if isinstance(v, SVal):
        return {n: json_value(x) for (n, _), x in zip(v.ty.fields, v.fields, strict=True)}
    return v


# ---------------------------------------------------------------- layout


class CLayout:
    """The counterexample's layout, which answers the layout builtins: ranges sorted by
    start (bisect finds the one holding a pfn), and each node's span from its lowest
    start to its highest end (spans may overlap: nodes can interleave)."""

    def __init__(self, data: ModelLayout) -> None:
        self.ranges = sorted((int(s), int(e), int(n), bool(m)) for s, e, n, m in data["ranges"])
        self.starts = [r[0] for r in self.ranges]
        self.nodes = sorted({r[2] for r in self.ranges})
        self.spans = {n: (min(r[0] for r in self.ranges if r[2] == n), max(r[1] for r in self.ranges if r[2] == n))
                      for n in self.nodes}
        # the node ids are text after the verdict cache's JSON round trip
        self.movable = {int(k): int(v) for k, v in data.get("zone_movable_pfn", {}).items()}
        self.zones = [(int(a), int(b)) for a, b in data.get("arch_zones", [])]
        self.mirrored = bool(data.get("mirrored_kernelcore", False))

    def wellformed(self) -> str | None:
        """Why the ranges are no layout (one is empty, two overlap), or None."""
        for s, e, _, _ in self.ranges:
            if not s < e:
                return f"range [{s:#x}, {e:#x}) is empty"
        for a, b in zip(self.ranges, self.ranges[1:], strict=False):
            if b[0] < a[1]:
                return f"ranges [{a[0]:#x}, {a[1]:#x}) and [{b[0]:#x}, {b[1]:#x}) overlap"
        return None

    def range_of(self, p: int) -> tuple[int, int, int, bool] | None:
        # the ranges are disjoint: only the last one starting at or below p can hold it
        # (with a probed p, bisect's comparisons cut the cell at the range starts)
        i = bisect.bisect_right(self.starts, p) - 1
        if i >= 0 and self.ranges[i][0] <= p < self.ranges[i][1]:
            return self.ranges[i]
        return None

    def span(self, n: int) -> tuple[int, int]:
        # a node with no range: 0 and 0, as the engine's node_start_pfn and node_end_pfn
        return self.spans.get(n, (0, 0))

    def zone(self, z: int, which: int) -> int:
        if 0 <= z < len(self.zones):
            return self.zones[z][which]
        raise Undetermined(f"the architecture's limits of zone {z} are not in the counterexample")

    def points(self) -> set[int]:
        """The pfns where the layout's answers change: each range's first and last pfn
        and its neighbours outside, the zone limits, the ZONE_MOVABLE starts."""
        pts: set[int] = set()
        for s, e, _, _ in self.ranges:
            pts.update((s, e - 1, e, s - 1 if s else 0))
        for a, b in self.zones:
            pts.update((a, b, max(b - 1, 0)))
        pts.update(self.movable.values())
        return pts


# ---------------------------------------------------------------- state maps


class CMap:
    """A state map as a chain of layers: a base (a constant, the initial memory) under
    writes and loops' bulk updates. A layer is never changed once made, so reads can be
    memoised and the state a step started from stays as it was."""

    def __init__(self) -> None:
        self.memo: dict[int, Any] = {}
        # the interpreter's open exact decisions: while one is open a read can depend on
        # the probed variable, so nothing is memoised
        self.probes: list[_Probe] = []

    def read(self, i: int) -> Any:
        if self.probes or isinstance(i, PV):
            return self._read(i)
        if i not in self.memo:
            self.memo[i] = self._read(i)
        return self.memo[i]

    def _read(self, i: int) -> Any:
        raise NotImplementedError


class CConst(CMap):
    """A map whose declaration gives an initial value: every entry holds it."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value

    def _read(self, i: int) -> Any:
        return self.value


class CGarbage(CMap):
    """Memory nobody initialised: each field of each entry is what the solver chose
    (``initial``, keyed by the field's path, ``page.order``, and the index)."""

    def __init__(self, name: str, ty: Type, initial: dict[tuple[str, int], Any]) -> None:
        super().__init__()
        self.name, self.ty, self.initial = name, ty, initial

    def _leaf(self, path: str, ty: Type, i: int) -> Any:
        if isinstance(ty, StructType):
            return SVal(ty, tuple(self._leaf(f"{path}.{n}", t, i) for n, t in ty.fields))
        key: tuple[str, int] | None = (path, i)
        if isinstance(i, PV):
            # a probed index is compared with every index the solver gave a value
            key = next(((p, j) for p, j in self.initial if p == path and i == j), None)
        if key is None or key not in self.initial:
            # a value the solver never looked at: any value does, the model's default is 0
            return False if isinstance(ty, BoolType) else 0
        v = self.initial[key]
        # the model gives initial memory as bit patterns (engine/extract.py): wrapped, a
        # signed field reads as C reads it
        return bool(v) if isinstance(ty, BoolType) else ty.wrap(int(v)) if isinstance(ty, IntType) else v

    def _read(self, i: int) -> Any:
        return self._leaf(self.name, self.ty, i)


class CWrite(CMap):
    """One write over ``base``: ``map[index].path = value``, the whole entry for an
    empty path."""

    def __init__(self, base: CMap, index: int, path: tuple[str, ...], value: Any) -> None:
        super().__init__()
        self.base, self.index, self.path, self.value = base, index, path, value

    def _read(self, i: int) -> Any:
        cur = self.base.read(i)
        # a probed index is cut at the written one: the write shows on one piece only
        if i != self.index:
            return cur
        return self.value if not self.path else cur.set(self.path, self.value)


class CBulk(CMap):
    """A map a loop over a set of indices writes: entry i is what the body leaves at i,
    run from the state before the loop (``Interp._bulk``)."""

    def __init__(self, compute: Callable[[int], Any]) -> None:
        super().__init__()
        self.compute = compute

    def _read(self, i: int) -> Any:
        return self.compute(i)


@dataclass
class CState:
    """The machine's state: scalar state variables and maps, by name."""

    scalars: dict[str, Any]
    maps: dict[str, CMap]

    def copy(self) -> CState:
        # the dicts only: a map is never changed in place, a write adds a layer
        return CState(dict(self.scalars), dict(self.maps))


@dataclass
class Failure:
    """A `require` that failed: its name and site, and where it sat in a loop over a
    set of indices, the index it failed at."""

    name: str
    site: int
    index: Any = None
    reads: tuple[tuple[str, Any], ...] = ()  # the map cells the failed condition read


@dataclass
class Frame:
    """One run of a function, a step or a formula: locals by uid, the state it runs on
    (None where a formula reads none: claims and assumptions over params), the requires
    that failed, the values emitted, the result."""

    locals: dict[int, Any]
    state: CState | None
    failures: list[Failure] = field(default_factory=list)
    emits: list[Any] = field(default_factory=list)
    ret: Any = None
    returned: bool = False
    bulk: tuple[int, set[str]] | None = None  # in a loop over a set: (index, maps it writes)
    # inside requires_hold(): the first failed require decides, whatever the rest of
    # the execution would do (a loop may not end once the walk has gone wrong)
    stop_at_failure: bool = False


class _Return(Exception):
    """`return`: unwinds a function's body up to ``Interp.call``."""

    pass


# ---------------------------------------------------------------- the interpreter


class Interp:
    """The concrete semantics of ``program`` under ``strategy``, on the values of one
    model: params, param functions, layout, the quantifiers' witnesses (by site) and the
    initial memory. ``points``, when given, are the numbers sampled quantifiers try."""

    def __init__(self, program: ir.Program, strategy: str | None, model: ModelValues,
                 points: Any = None) -> None:
        self.program = program
        self.strategy = strategy
        self.params: dict[str, Any] = {}
        for name, v in model["params"].items():
            pd = program.params.get(name)
            if pd is not None and pd.arg_types is None:
                self.params[name] = _from_json(v, pd.ty)
        self.pfuncs: dict[str, dict[tuple[int, ...], Any]] = {}
        for name, rows in model["param_functions"].items():
            pd = program.params[name]
            self.pfuncs[name] = {tuple(int(a) for a in args): _from_json(v, pd.ty) for args, v in rows}
        self.layout = CLayout(model["layout"])
        self.witness: dict[int, list[Any]] = {}
        for w in model["witnesses"]:
            self.witness.setdefault(int(w["site"]), []).append(w["value"])
        self.initial = {(i["field"], int(i["index"])): i["value"] for i in model["initial"]}
        # where a quantifier the cells cannot decide is tried: the layout's pfns and every
        # number the model gives, with its neighbours (_ints)
        pts = self.layout.points()
        for vals in self.witness.values():
            for v in vals:
                pts.update(_ints(v))
        for v in self.params.values():
            pts.update(_ints(json_value(v)))
        # as ulong values; a variable of another type wraps them (_candidates)
        self.points = sorted(p for p in pts if 0 <= p < 1 << 64)
        if points is not None:
            # a narrowed instance: these points are the whole domain that matters
            self.points = sorted(set(points))
        self.sampled = 0  # quantifiers decided at points, not over their whole domain
        self.undecided: list[str] = []  # those quantifiers, and why
        self.decided = 0  # quantifiers over large domains the cells were tried on
        self.probes: list[_Probe] = []  # the exact decisions in progress, outermost first
        # each called function's definition, and whether it is pure (ir.pure_fn)
        self._fns: dict[str, tuple[ir.FnDef, bool]] = {}
        # the values of the pure functions by their arguments: the same in one run,
        # whatever the state (`zone_span_of()`, read at every index of a loop)
        self._values: dict[tuple[Any, ...], Any] = {}
        # each expression kind's evaluation, by the node's class: _ev_Binary for
        # ir.Binary, ...; a kind without one fails here, on the first Interp
        self._ev_of: dict[type, Callable[[Any, Frame], Any]] = {
            cls: getattr(self, f"_ev_{cls.__name__}") for cls in get_args(ir.Expr)}

    # -- values
    def param(self, name: str, args: tuple[Any, ...] = ()) -> Any:
        """A param's value, or a param function's at ``args``: only the rows the model
        gives (each node's, and every application the query made)."""
        if not args:
            if name not in self.params:
                raise Undetermined(f"param {name} is not in the counterexample")
            return self.params[name]
        table = self.pfuncs.get(name, {})
        key = tuple(int(a) for a in args)
        if key not in table:
            raise Undetermined(f"{name}{key} is not in the counterexample")
        return table[key]

    def ev(self, e: ir.Expr, fr: Frame) -> Any:
        # one dict lookup: a `match` over the expression kinds tried them in turn, and
        # was a quarter of a brute-force enumeration's time (engine/differential.py)
        return self._ev_of[type(e)](e, fr)

    def _ev_Const(self, e: ir.Const, fr: Frame) -> Any:
        return e.value

    def _ev_Local(self, e: ir.Local, fr: Frame) -> Any:
        return fr.locals[e.uid]

    def _ev_ParamRef(self, e: ir.ParamRef, fr: Frame) -> Any:
        return self.param(e.name)

    def _ev_ParamApp(self, e: ir.ParamApp, fr: Frame) -> Any:
        return self.param(e.name, tuple(self.ev(a, fr) for a in e.args))

    def _ev_StateRef(self, e: ir.StateRef, fr: Frame) -> Any:
        assert fr.state is not None
        return fr.state.scalars[e.name]

    def _ev_MapRead(self, e: ir.MapRead, fr: Frame) -> Any:
        assert fr.state is not None
        return fr.state.maps[e.name].read(self.ev(e.index, fr))

    def _ev_Unary(self, e: ir.Unary, fr: Frame) -> Any:
        v = self.ev(e.operand, fr)
        if e.op == "!":
            return not v
        assert isinstance(e.ty, IntType)
        return carith.unary(e.op, v, e.ty)

    def _ev_Binary(self, e: ir.Binary, fr: Frame) -> Any:
        op = e.op
        # the logical operators short-circuit, as C's do: the right operand may need a
        # value the model lacks just where the left decides (`pfn_in_ram(p) && ...`),
        # and a cell's path holds only the comparisons actually made
        if op == "&&":
            return self.ev(e.left, fr) and self.ev(e.right, fr)
        if op == "||":
            return self.ev(e.left, fr) or self.ev(e.right, fr)
        if op == "->":
            return (not self.ev(e.left, fr)) or self.ev(e.right, fr)
        if op == "<->":
            return bool(self.ev(e.left, fr)) == bool(self.ev(e.right, fr))
        a, b = self.ev(e.left, fr), self.ev(e.right, fr)
        if isinstance(a, PV | PVLow) or isinstance(b, PV | PVLow):
            return self._probed_binary(e, a, b)
        # the type checker has converted both operands to one type (ir.Convert), so
        # these are C's comparisons; == and != compare structs and bools too
        if op in ("==", "!="):
            return (a == b) if op == "==" else (a != b)
        if op in ("<", "<=", ">", ">="):
            return carith.compare(op, a, b)
        assert isinstance(e.ty, IntType)
        # a shift's count keeps its own type: C promotes a shift's operands separately
        rt = e.right.ty if isinstance(e.right.ty, IntType) else None
        return carith.binary(op, a, b, e.ty, rt)

    def _ev_Convert(self, e: ir.Convert, fr: Frame) -> Any:
        assert isinstance(e.ty, IntType)
        v = self.ev(e.operand, fr)
        # a probed value stays one only through a conversion that keeps every value
        if isinstance(v, PV):
            return v.shifted(0, e.ty)
        return carith.convert(v, e.ty)

    def _probed_binary(self, e: ir.Binary, a: Any, b: Any) -> Any:
        """A binary operator with a probed value: what cells can follow, else _Opaque."""
        op = e.op
        if op in _COMPARE:
            return _COMPARE[op](a, b)
        pv = a if isinstance(a, PV) else b
        other = b if pv is a else a
        ty = e.ty
        if isinstance(pv, PV) and isinstance(ty, IntType) and isinstance(other, int) \
                and not isinstance(other, bool):
            if op == "+":
                return pv.shifted(other, ty)
            # c - x runs against x: not followed
            if op == "-" and pv is a:
                return pv.shifted(-other, ty)
            # x & (2^k - 1): the open-coded alignment test, (x & mask) == 0
            if op == "&" and _low_mask_bits(ty.wrap(other)) is not None:
                return PVLow(pv, _low_mask_bits(ty.wrap(other)) or 0)
        probe = (a if isinstance(a, PV | PVLow) else b).probe
        raise _Opaque(probe, f"`{op}` on it")

    def _reads(self, cond: ir.Expr, fr: Frame) -> tuple[tuple[str, Any], ...]:
        """``page[last]`` and the pfn it is, for each map read written in the condition."""
        out = []
        for n in ir.walk([cond]):
            if isinstance(n, ir.MapRead):
                idx = _label(n.index)
                try:
                    out.append((f"{n.name}[{idx}]", self.ev(n.index, fr)))
                except (Undetermined, _Opaque):
                    # a report detail: an index the model cannot give is left out
                    continue
        return tuple(out)

    def _map(self, m: CMap) -> CMap:
        """``m`` sharing the interpreter's list of open exact decisions, so that it
        memoises nothing while one is open."""
        m.probes = self.probes
        return m

    def _ev_Ite(self, e: ir.Ite, fr: Frame) -> Any:
        return self.ev(e.then, fr) if self.ev(e.cond, fr) else self.ev(e.else_, fr)

    def _ev_FieldGet(self, e: ir.FieldGet, fr: Frame) -> Any:
        return self.ev(e.obj, fr).get(e.field)

    def _ev_StructMake(self, e: ir.StructMake, fr: Frame) -> Any:
        return SVal(e.ty, tuple(self.ev(f, fr) for f in e.fields))

    def _ev_Builtin(self, e: ir.Builtin, fr: Frame) -> Any:
        n = e.name
        lay = self.layout
        if n == "requires_hold":
            call = e.args[0]
            assert isinstance(call, ir.CallFn)
            # the call runs on its own, from its arguments; its first failed require
            # decides, whatever the rest of it would do (as a WARN would in the kernel)
            try:
                sub = self.call(call, fr, stop_at_failure=True)
            except _RequireFailed:
                return False
            return not sub.failures
        if n == "mirrored_kernelcore":
            return lay.mirrored
        args = [self.ev(a, fr) for a in e.args]
        probed = [a for a in args if isinstance(a, PV | PVLow)]
        # pfn_in_ram, pfn_node and pfn_range look the pfn up by comparisons (range_of),
        # and min, max and clamp only compare: with a probed argument those record cuts.
        # IS_ALIGNED to a power of two tests low bits; no other builtin is followed.
        if probed:
            if n == "IS_ALIGNED" and isinstance(args[0], PV) and not isinstance(args[1], PV | PVLow) \
                    and args[1] > 0 and args[1] & (args[1] - 1) == 0:
                return args[0].aligned(args[1].bit_length() - 1)
            if n not in ("pfn_in_ram", "pfn_node", "pfn_range", "min", "max", "clamp"):
                raise _Opaque(probed[0].probe, f"passed to {n}()")
        if n in ("pfn_in_ram", "pfn_node", "pfn_range"):
            r = lay.range_of(args[0])
            if n == "pfn_in_ram":
                return r is not None
            if n == "pfn_node":
                # NUMA_NO_NODE for a pfn in no range, as the engine's layouts answer
                return r[2] if r is not None else -1
            from khospec.types import MEM_RANGE

            if r is None:
                return SVal(MEM_RANGE, (0, 0, -1, False))
            return SVal(MEM_RANGE, r)
        if n == "node_start_pfn":
            return lay.span(args[0])[0]
        if n == "node_end_pfn":
            return lay.span(args[0])[1]
        if n == "zone_movable_pfn":
            # 0: the node has no ZONE_MOVABLE (the kernel's zone_movable_pfn[] default)
            return lay.movable.get(args[0], 0)
        if n == "arch_zone_lowest_possible_pfn":
            return lay.zone(args[0], 0)
        if n == "arch_zone_highest_possible_pfn":
            return lay.zone(args[0], 1)
        if n == "count_trailing_zeros":
            return carith.count_trailing_zeros(args[0])
        if n == "ilog2":
            return carith.ilog2(args[0])
        if n == "min":
            return min(args)
        if n == "max":
            return max(args)
        if n == "clamp":
            v, lo, hi = args
            return min(max(v, lo), hi)
        # include/linux/align.h: the alignment converted to x's type ((typeof(x))(a)),
        # the mask arithmetic in that type's width, as the engine computes it
        ty = e.args[0].ty
        assert isinstance(ty, IntType)
        x, a = args
        mask = ty.wrap(a - 1)
        if n == "IS_ALIGNED":
            return ty.wrap(x & mask) == 0
        if n == "ALIGN":
            return ty.wrap((x + mask) & ~mask)
        if n == "ALIGN_DOWN":
            return ty.wrap(x & ~mask)
        raise AssertionError(n)  # pragma: no cover

    def _bind(self, fr: Frame, var: ir.Local, v: Any) -> Frame:
        """``fr`` with ``var`` bound to ``v``: new locals, the same state, failures and
        emits, so that what the body records reaches the enclosing frame."""
        return Frame({**fr.locals, var.uid: v}, fr.state, fr.failures, fr.emits, bulk=fr.bulk,
                     stop_at_failure=fr.stop_at_failure)

    def domain(self, var: ir.Local, d: ir.Domain, site: int, fr: Frame) -> tuple[list[Any], bool]:
        """The values to try, and whether they are the whole domain."""
        if d.kind == "nodes":
            return list(self.layout.nodes), True
        if d.kind == "ranges":
            from khospec.types import MEM_RANGE

            return [SVal(MEM_RANGE, r) for r in self.layout.ranges], True
        if isinstance(var.ty, BoolType):
            return [False, True], True
        if d.kind == "interval":
            assert d.lo is not None and d.hi is not None
            lo, hi = self.ev(d.lo, fr), self.ev(d.hi, fr)
            # [lo, hi) is half-open; an empty one (hi <= lo) has no value
            if hi - lo <= MAX_ENUM:
                return list(range(lo, max(lo, hi))), True
            cands = [v for v in self._candidates(var, site) if lo <= v < hi]
            return cands, False
        return self._candidates(var, site), False

    def _candidates(self, var: ir.Local, site: int) -> list[Any]:
        """The values to try a quantifier or loop at: the solver's witnesses for its
        site first, then every number of the counterexample in the variable's type;
        each once."""
        out: list[Any] = []
        for v in self.witness.get(site, []):
            out.append(_from_json(v, var.ty))
        if isinstance(var.ty, IntType):
            out.extend(var.ty.wrap(p) for p in self.points)
        seen: list[Any] = []
        for v in out:
            if v not in seen:
                seen.append(v)
        return seen

    def _ev_Quant(self, e: ir.Quant, fr: Frame) -> Any:
        values, whole = self.domain(e.var, e.domain, e.site, fr)
        # for the status if sampled: why not exactly (_decide says why, for numbers)
        why = "its values are not numbers"
        if not whole and isinstance(e.var.ty, IntType):
            lo, hi = self._int_bounds(e, fr)
            decided, why = self._decide(e, fr, lo, hi)
            if decided is not None:
                return decided
            if self.probes:
                # an enclosing exact decision cannot rest on a sampled one
                raise _Opaque(self.probes[0], f"encloses `{e.kind} {e.var.name}`, which is not decided exactly")
        for v in values:
            b = self.ev(e.body, self._bind(fr, e.var, v))
            if e.kind == "forall" and not b:
                return False
            if e.kind == "exists" and b:
                return True
        # no witness among the numbers tried says nothing of the values not tried
        if e.kind == "exists" and not whole:
            raise Undetermined(f"no value found for `exists {e.var.name}` among the counterexample's numbers")
        if not whole:
            # true at every number tried, which is not every value
            self.sampled += 1
            note = f"`{e.kind} {e.var.name}` at {e.span} ({why})"
            if note not in self.undecided:
                self.undecided.append(note)
        return e.kind == "forall"

    def _int_bounds(self, e: ir.Quant, fr: Frame) -> tuple[int, int]:
        """[lo, hi) of the variable's values: its type's range, narrowed by an interval
        domain's bounds (a bound that moves with an enclosing probed variable is not
        followed)."""
        ty = e.var.ty
        assert isinstance(ty, IntType)
        lo, hi = (-(1 << (ty.width - 1)), 1 << (ty.width - 1)) if ty.signed else (0, 1 << ty.width)
        if e.domain.kind == "interval":
            assert e.domain.lo is not None and e.domain.hi is not None
            a, b = self.ev(e.domain.lo, fr), self.ev(e.domain.hi, fr)
            for v in (a, b):
                if isinstance(v, PV | PVLow):
                    raise _Opaque(v.probe, f"bounds `{e.kind} {e.var.name}`")
            lo, hi = max(lo, a), min(hi, b)
        return lo, hi

    def _decide(self, e: ir.Quant, fr: Frame, lo: int, hi: int) -> tuple[bool | None, str]:
        """The quantifier over every value in [lo, hi): the range is split into cells until
        each comparison the body makes with the variable, at a cell's first value, comes
        out the same for every value of the cell. The body then takes the same path, and
        gives the same answer, everywhere in the cell. None (and why) where the body does
        something with the variable the cells do not follow."""
        ty = e.var.ty
        assert isinstance(ty, IntType)
        probe = _Probe(lo, hi)
        cells = [(lo, hi)]
        evaluations = 0
        self.probes.append(probe)
        try:
            while cells:
                a, b = cells.pop()
                probe.lo, probe.hi, probe.cuts, probe.wrapped = a, b, set(), set()
                evaluations += 1
                if evaluations > EXACT_CELLS:
                    return None, f"more than {EXACT_CELLS} cells"
                try:
                    value = bool(self.ev(e.body, self._bind(fr, e.var, PV(a, 0, ty, probe))))
                except _Opaque as exc:
                    if exc.probe is not probe:
                        raise
                    return None, f"the body uses it {exc}"
                # a counterexample to forall (a witness for exists) decides the whole
                if (e.kind == "forall") != value:
                    return value, ""
                cuts = sorted(c for c in probe.cuts if a < c < b)
                # [a, cuts[0]) is decided by the evaluation at a; the rest is split further
                if cuts:
                    cells.extend(zip(cuts, [*cuts[1:], b], strict=True))
        finally:
            self.probes.pop()
            # counted whatever the outcome: replay_details tells by it that an assumption
            # ranged over a large domain
            self.decided += 1
        return e.kind == "forall", ""

    def _ev_FirstNode(self, e: ir.FirstNode, fr: Frame) -> Any:
        # the lowest id first: the layout's nodes are sorted
        for n in self.layout.nodes:
            if self.ev(e.cond, self._bind(fr, e.var, n)):
                return n
        return self.ev(e.default, fr)

    def _ev_CallFn(self, e: ir.CallFn, fr: Frame) -> Any:
        # a call used for its value: the requires that fail in it fail in the caller
        sub = self.call(e, fr)
        fr.failures.extend(sub.failures)
        return sub.ret

    def _ev_InEmits(self, e: ir.InEmits, fr: Frame) -> Any:
        item = self.ev(e.item, fr)
        return item in self.call(e.call, fr).emits

    def _ev_EmitsEq(self, e: ir.EmitsEq, fr: Frame) -> Any:
        return self.call(e.call, fr).emits == [self.ev(i, fr) for i in e.items]

    def call(self, e: ir.CallFn, fr: Frame, stop_at_failure: bool = False) -> Frame:
        """Run the function ``e`` names, as the strategy defines it, in a new frame over
        the caller's state; that frame holds its result, failures and emits.
        ``stop_at_failure`` (requires_hold's) holds for every call below too."""
        known = self._fns.get(e.name)
        if known is None:  # the strategy's chain walked once per function, not per call
            f = self.program.fn(e.name, self.strategy)
            known = self._fns[e.name] = (f, ir.pure_fn(f, self.program, self.strategy))
        fn, pure = known
        args = [self.ev(a, fr) for a in e.args]
        # a probed argument records the cuts of an exact decision as the body compares
        # it: only plain values are looked up (arguments are scalars and structs, KHO221:
        # they hash)
        key = (e.name, *args) if pure and not any(isinstance(a, PV | PVLow) for a in args) else None
        if key is not None and key in self._values:
            return Frame({}, fr.state, [], [], ret=self._values[key])
        sub = Frame({p.uid: a for p, a in zip(fn.params, args, strict=True)}, fr.state, [], [], bulk=fr.bulk,
                    stop_at_failure=fr.stop_at_failure or stop_at_failure)
        if isinstance(fn.body, tuple):
            with contextlib.suppress(_Return):
                self.exec_block(fn.body, sub)
        else:
            sub.ret = self.ev(fn.body, sub)
        if fr.state is not None and sub.state is not None:
            fr.state = sub.state
        if key is not None:
            self._values[key] = sub.ret
        return sub

    # -- statements
    def exec_block(self, stmts: tuple[ir.Stmt, ...], fr: Frame) -> None:
        for s in stmts:
            self.exec(s, fr)

    def exec(self, s: ir.Stmt, fr: Frame) -> None:
        match s:
            case ir.SLet() | ir.SAssign():
                fr.locals[s.var.uid] = self.ev(s.value, fr)
            case ir.SStateAssign():
                assert fr.state is not None
                fr.state.scalars[s.name] = self.ev(s.value, fr)
            case ir.SMapWrite():
                assert fr.state is not None
                idx = self.ev(s.index, fr)
                fr.state.maps[s.name] = self._map(CWrite(fr.state.maps[s.name], idx, s.path, self.ev(s.value, fr)))
            case ir.SIf():
                self.exec_block(s.then if self.ev(s.cond, fr) else s.else_, fr)
            case ir.SForConst():
                for i in range(s.lo, s.hi):
                    fr.locals[s.var.uid] = i
                    self.exec_block(s.body, fr)
            case ir.SForBulk():
                self._bulk(s, fr)
            case ir.SWhile():
                n = 0
                # a loop the model keeps running leaves the replay unchecked, not failed
                while self.ev(s.cond, fr):
                    self.exec_block(s.body, fr)
                    n += 1
                    if n > MAX_LOOP:
                        raise Undetermined(f"the loop at {s.span} runs more than {MAX_LOOP} iterations")
            case ir.SRequire():
                # recorded, and the run goes on: the engine collects every require of a
                # step, each under the condition that reaches it
                if not self.ev(s.cond, fr):
                    index = fr.bulk[0] if fr.bulk else None
                    fr.failures.append(Failure(s.name, s.site, index, self._reads(s.cond, fr)))
                    if fr.stop_at_failure:
                        raise _RequireFailed
            case ir.SEmit():
                fr.emits.append(self.ev(s.value, fr))
            case ir.SReturn():
                fr.ret = self.ev(s.value, fr)
                raise _Return
            case ir.SCall():
                # a call as a statement: what it emits, the caller emits
                sub = self.call(s.call, fr)
                fr.failures.extend(sub.failures)
                fr.emits.extend(sub.emits)
            case _:
                assert_never(s)

    def _in_domain(self, s: ir.SForBulk, fr: Frame, q: int) -> bool:
        """Whether q is in the loop's set: ``lo <= q < hi`` and its `where`, evaluated
        in ``fr`` (the callers give the state before the loop)."""
        if s.lo is not None and not self.ev(s.lo, fr) <= q:
            return False
        if s.hi is not None and not q < self.ev(s.hi, fr):
            return False
        return s.where is None or bool(self.ev(s.where, self._bind(fr, s.var, q)))

    def _bulk(self, s: ir.SForBulk, fr: Frame) -> None:
        """A loop over a set of indices, as the engine runs it (engine/statements.py):
        each index updated on its own from the state before the loop, all at once, the
        body run lazily per index read; then its requires are checked at every index of
        a small set, else at the solver's witness for the loop and the model's numbers."""
        written = _written(s.body, self.program, self.strategy)
        # a loop that only checks needs no machine state: it may run in a function a
        # claim calls through requires_hold
        state = fr.state
        if state is None:
            assert not written
            self._check_bulk(s, fr, None, written)
            return
        pre = state.copy()
        # the body runs when a map is read, maybe after later statements changed the
        # frame's locals: the loop sees those of where it stands
        local0 = dict(fr.locals)

        def run_at(q: int) -> Frame:
            sub = Frame({**local0, s.var.uid: q}, pre.copy(), [], [], bulk=(q, written),
                        stop_at_failure=fr.stop_at_failure)
            # an index outside the set keeps its entry: the body does not run there
            if self._in_domain(s, Frame(dict(local0), pre), q):
                self.exec_block(s.body, sub)
            return sub

        cache: dict[int, Frame] = {}

        def at(q: int) -> Frame:
            # one run per index, unless the index may depend on an open exact decision
            if self.probes or isinstance(q, PV):
                return run_at(q)
            if q not in cache:
                cache[q] = run_at(q)
            return cache[q]

        for name in written:

            # name bound now: a closure would read the last map's name
            def read(q: int, name: str = name) -> Any:
                return at(q).state.maps[name].read(q)  # type: ignore[union-attr]

            state.maps[name] = self._map(CBulk(read))
        self._check_bulk(s, fr, pre, written)

    def _check_bulk(self, s: ir.SForBulk, fr: Frame, pre: CState | None, written: set[str]) -> None:
        """The requires of a loop over a set: at the solver's witness for this loop and
        every other candidate index."""
        var = s.var
        if s.domain == "nodes":
            values: list[Any] = list(self.layout.nodes)
        elif s.lo is not None and s.hi is not None and self.ev(s.hi, fr) - self.ev(s.lo, fr) <= MAX_ENUM:
            values = list(range(self.ev(s.lo, fr), self.ev(s.hi, fr)))
        else:
            values = self._candidates(var, s.site)
        for q in values:
            if not self._in_domain(s, Frame(dict(fr.locals), pre), q):
                continue
            # a loop that writes checks each index on the state before it, as its updates
            # see it; one that only checks runs on the state itself
            sub = Frame({**fr.locals, var.uid: q}, pre.copy() if written and pre is not None else fr.state, [], [],
                        bulk=(q, written),
                        stop_at_failure=fr.stop_at_failure)
            try:
                self.exec_block(s.body, sub)
            except Undetermined:
                # an index the model says too little about shows no failure either way
                continue
            fr.failures.extend(sub.failures)

    # -- machine
    def initial_state(self) -> CState:
        """The machine before the first step (engine/trace.py's initial_state): each
        state variable's declared initial value, else for a map the model's initial
        memory."""
        scalars: dict[str, Any] = {}
        maps: dict[str, CMap] = {}
        fr = Frame({}, None)
        for sv in self.program.state:
            if isinstance(sv.ty, MapType):
                if sv.init is not None:
                    maps[sv.name] = self._map(CConst(self.ev(sv.init, fr)))
                else:
                    maps[sv.name] = self._map(CGarbage(sv.name, sv.ty.value, self.initial))
            elif sv.init is not None:
                scalars[sv.name] = self.ev(sv.init, fr)
            else:
                scalars[sv.name] = _from_json(self._initial_scalar(sv.name), sv.ty)
        return CState(scalars, maps)

    def _initial_scalar(self, name: str) -> Any:
        for vals in self.witness.values():
            del vals
        raise Undetermined(f"the initial value of {name} is not in the counterexample")

    def step(self, name: str, state: CState) -> tuple[CState, list[Failure], bool]:
        """Take step ``name`` from ``state``: the state after it, the requires that
        failed in it, and whether its guard allowed it (read before the body runs; the
        body runs either way, and the caller judges)."""
        st = next(s for s in self.program.step_defs(self.strategy) if s.name == name)
        # on a copy: ``state`` stays the state before the step (trace_changes compares)
        fr = Frame({}, state.copy())
        enabled = True if st.guard is None else bool(self.ev(st.guard, Frame({}, state)))
        self.exec_block(st.body, fr)
        assert fr.state is not None
        return fr.state, fr.failures, enabled


def _ints(v: Any) -> list[int]:
    """The numbers a model's value makes worth trying: an int and its neighbours, a
    struct's int fields, and for a chunk (pfn, order) its last pfn and the one after."""
    if isinstance(v, bool):
        return []
    if isinstance(v, int):
        return [v, v + 1, v - 1]
    if isinstance(v, dict):
        out = [x for x in v.values() if isinstance(x, int) and not isinstance(x, bool)]
        if "pfn" in v and "order" in v and v["order"] < 64:
            end = v["pfn"] + (1 << v["order"])
            out += [end - 1, end]
        return out
    return []


def _written(stmts: tuple[ir.Stmt, ...], program: ir.Program, strategy: str | None) -> set[str]:
    """The maps the statements write, in nested blocks and the functions they call as
    statements (only statements write maps)."""
    out: set[str] = set()
    seen: set[str] = set()
    stack: list[ir.Stmt] = list(stmts)
    while stack:
        n = stack.pop()
        match n:
            case ir.SMapWrite():
                out.add(n.name)
            case ir.SCall():
                # each function once: its body writes the same maps at every call
                if n.call.name not in seen:
                    seen.add(n.call.name)
                    f = program.fn(n.call.name, strategy)
                    if isinstance(f.body, tuple):
                        stack.extend(f.body)
            case ir.SIf():
                stack.extend(n.then)
                stack.extend(n.else_)
            case ir.SForConst() | ir.SForBulk() | ir.SWhile():
                stack.extend(n.body)
            case ir.SLet() | ir.SAssign() | ir.SStateAssign() | ir.SRequire() | ir.SEmit() | ir.SReturn():
                pass
            case _:
                assert_never(n)
    return out


# ---------------------------------------------------------------- replay


def _witness_value(interp: Interp, site: int, ty: Type) -> Any:
    """The solver's first witness for ``site``, as a value of ``ty``."""
    vals = interp.witness.get(site)
    if not vals:
        raise Undetermined(f"no witness for site {site}")
    return _from_json(vals[0], ty)


def _claim_frame(interp: Interp, expr: ir.Expr) -> tuple[Frame, ir.Expr]:
    """Bind the claim's leading `forall`s to the solver's witnesses."""
    fr = Frame({}, None)
    body = expr
    while isinstance(body, ir.Quant) and body.kind == "forall":
        fr.locals[body.var.uid] = _witness_value(interp, body.site, body.var.ty)
        body = body.body
    return fr, body


def replay(program: ir.Program, check: ir.CheckDef, r: Result) -> str:
    """Execute the counterexample; "confirmed" (with caveats) or raise ReplayMismatch.

    Returns "unchecked: ..." when the counterexample lacks what the interpreter needs.
    """
    return replay_details(program, check, r)[0]


def replay_details(program: ir.Program, check: ir.CheckDef, r: Result) -> tuple[str, list[Read]]:
    """The replay's status, and for a failed requirement the cells its condition read
    (``{"read": "page[last]", "pfn": "0x..."}``): the struct page the kernel touches."""
    cx = r.counterexample
    assert cx is not None and "model" in cx, "only a spec check's counterexample replays"
    model = cx["model"]
    reads: list[Read] = []
    try:
        interp = Interp(program, r.strategy, model)
        # the engine's layouts are disjoint and non-empty by construction
        bad = interp.layout.wellformed()
        if bad:
            raise ReplayMismatch(f"the layout is not a layout: {bad}", "a valid layout", bad)
        base = Frame({}, None)
        # every assumption in force must hold on the model; a `before` one is checked
        # where its step is taken (_replay_trace)
        for a in [*program.axioms, *(program.assumes[n] for n in check.assuming)]:
            before = interp.sampled + interp.decided
            if a.before is None and not interp.ev(a.formula, base):
                # false over a large domain: the solver only instantiated it at some pfns
                if interp.sampled + interp.decided > before:
                    raise Incomplete(f"the solver's counterexample breaks assumption `{a.name}` at a pfn "
                                     "where the solver did not instantiate it")
                raise ReplayMismatch(f"assumption `{a.name}` does not hold on the counterexample",
                                     f"{a.name} holds", f"{a.name} is false")
        claim = check.claim
        if claim.kind == "holds":
            assert claim.expr is not None
            fr, body = _claim_frame(interp, claim.expr)
            # the solver refutes `p -> q` with p true: a false premise is a disagreement,
            # not a claim true by vacuity
            if isinstance(body, ir.Binary) and body.op == "->":
                if not interp.ev(body.left, fr):
                    raise ReplayMismatch("the claim's premise does not hold", "premise true", "premise false")
                ok = interp.ev(body.right, fr)
            else:
                ok = interp.ev(body, fr)
            if ok:
                raise ReplayMismatch("the claim holds on the counterexample", "claim false", "claim true")
        else:
            hit = _replay_trace(interp, program, check, model)
            if hit is not None:
                reads = [{"read": name, "pfn": hex(v)} for name, v in hit.reads
                         if isinstance(v, int) and not isinstance(v, bool)]
    except Undetermined as exc:
        return f"unchecked: {exc}", []
    if interp.sampled:
        return (f"confirmed, with {'; '.join(interp.undecided)} evaluated only at the "
                f"{len(interp.points)} numbers of the counterexample"), reads
    return "confirmed", reads


def _replay_trace(interp: Interp, program: ir.Program, check: ir.CheckDef,
                  model: ModelData) -> Failure | None:
    """Run the trace; the failure of the claimed requirement, if that is the claim."""
    claim = check.claim
    state = interp.initial_state()
    trace = list(model["trace"])
    failures: list[Failure] = []
    for i, name in enumerate(trace):
        # a `before STEP` assumption restricts the traces: it holds where STEP is taken
        for a in [*program.axioms, *(program.assumes[n] for n in check.assuming)]:
            if a.before == name and not interp.ev(a.formula, Frame({}, state)):
                raise ReplayMismatch(f"assumption `{a.name}` fails before step {i + 1} ({name})",
                                     "the trace respects it", "it does not")
        state, failures, enabled = interp.step(name, state)
        if not enabled:
            raise ReplayMismatch(f"step {i + 1} ({name}) is not enabled", f"{name} runs", "its guard is false")
    # ``failures`` are the last step's: a trace ends at the step that violates
    if claim.kind == "requirement":
        hit = [f for f in failures if f.name == claim.requirement]
        if not hit:
            raise ReplayMismatch(f"`require {claim.requirement}` does not fail in the last step",
                                 f"{claim.requirement} fails in {trace[-1] if trace else '?'}", "it holds")
        # one require may sit at several places: the one the solver reports, else any
        at = (model.get("violated") or {}).get("at")
        return next((f for f in hit if str(program.site_spans.get(f.site)) == at), hit[0])
    assert claim.expr is not None
    fr, body = _claim_frame(interp, claim.expr)
    fr.state = state
    if interp.ev(body if body is not claim.expr else claim.expr, fr):
        raise ReplayMismatch("the claim holds in the final state", "claim false", "claim true")
    return None


def _show(v: Any, names: tuple[str, ...] = (), fields: dict[str, tuple[str, ...]] | None = None) -> str:
    """A value as the trace shows it; ``names``: the enum members an int stands for."""
    if isinstance(v, SVal):
        return "{" + ", ".join(f"{n}={_show(x, (fields or {}).get(n, ()))}"
                               for (n, _), x in zip(v.ty.fields, v.fields, strict=True)) + "}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int) and 0 <= v < len(names):
        return names[v]
    if isinstance(v, int):
        # pfns and addresses in hex; counts, orders and ids in decimal
        return hex(v) if abs(v) >= 4096 else str(v)
    return str(v)


def _enum_names(program: ir.Program) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Kernel terms for the trace: the enum whose member initialises a state variable
    (`phase: int = SETUP_ARCH` shows phases by name), and zone_type for struct fields
    named `zone`."""
    enums: dict[str, tuple[str, ...]] = {}
    for mod in program.modules:
        for d in mod.decls:
            if isinstance(d, S.EnumDecl):
                members = tuple(m.name for m in d.members)
                enums.update({m: members for m in members})
                if d.name.name == "zone_type":
                    enums["zone_type"] = members
    scalars: dict[str, tuple[str, ...]] = {}
    for mod in program.modules:
        for d in mod.decls:
            if isinstance(d, S.StateDecl):
                for v in d.vars:
                    if isinstance(v.init, S.Name) and v.init.id in enums:
                        scalars[v.name.name] = enums[v.init.id]
    fields = {"zone": enums["zone_type"]} if "zone_type" in enums else {}
    return scalars, fields


def _watched_pfns(model: ModelData) -> list[int]:
    """The pfns a reader of the trace cares about: each chunk's first and last page
    and every pfn-sized value the counterexample names."""
    out: list[int] = []
    for v in [*model.get("params", {}).values(), *(w["value"] for w in model.get("witnesses", []))]:
        if isinstance(v, dict) and {"pfn", "order"} <= set(v):
            pfn, order = int(v["pfn"]), int(v["order"])
            if order < 64:
                out += [pfn, pfn + (1 << order) - 1]
        elif isinstance(v, int) and not isinstance(v, bool) and v >= 1 << 12:
            # below 4096: an order, a count or a node id rather than a pfn
            out.append(v)
    return sorted(set(out))[:8]  # each adds a line per map to every step that changes it


def trace_changes(program: ir.Program, check: ir.CheckDef, r: Result) -> list[list[str]]:
    """Per step of the counterexample's trace, what it changed: the machine's scalar
    state, and the struct pages of the watched pfns. Empty when there is no trace."""
    cx = r.counterexample
    # a machine's answer has neither a trace nor a model
    if cx is None or not cx["trace"] or "model" not in cx:
        return []
    model = cx["model"]
    interp = Interp(program, r.strategy, model)
    state = interp.initial_state()
    watched = _watched_pfns(model)
    scalar_names, field_names = _enum_names(program)

    def snapshot(st: CState) -> dict[str, str]:
        snap = {k: _show(v, scalar_names.get(k, ())) for k, v in st.scalars.items()}
        for name, m in st.maps.items():
            for q in watched:
                try:
                    snap[f"{name}[{hex(q)}]"] = _show(m.read(q), (), field_names)
                except (Undetermined, Incomplete, KeyError):
                    # a cell the model cannot give is not shown
                    continue
        return snap

    out: list[list[str]] = []
    before = snapshot(state)
    for name in model["trace"]:
        state, _failures, _enabled = interp.step(name, state)
        after = snapshot(state)
        out.append([f"{k}: {before.get(k, '?')} -> {v}" for k, v in after.items() if before.get(k) != v])
        before = after
    return out


def explain_text(r: Result, program: ir.Program | None = None, check: ir.CheckDef | None = None) -> str:
    """The counterexample as a numbered trace with what each step changed (given the
    program), or the verdict when there is none."""
    from khospec.explain import short_lines

    head = f"{r.check} [{r.strategy or 'base'}, {r.profile}]: {r.verdict.value}"
    if not r.counterexample:
        used = f"; uses {', '.join(r.assumptions_used)}" if r.assumptions_used else ""
        return head + used + (f" ({r.reason})" if r.reason else "")
    lines = [head, *("  " + s for s in short_lines(r))]
    cx = r.counterexample
    changes: list[list[str]] = []
    if program is not None and check is not None:
        try:
            changes = trace_changes(program, check, r)
        except (Undetermined, Incomplete, ReplayMismatch):
            # the trace is still shown, without what each step changed
            changes = []
    for i, step in enumerate(cx["trace"], 1):
        lines.append(f"  {i}. {step}")
        if i <= len(changes):
            lines += [f"       {c}" for c in changes[i - 1]] or ["       (no change to what is shown)"]
    v = cx["violated"]
    if v:
        lines.append(f"  => {v.get('text') or v.get('name')} is false ({v.get('at', '')})")
    return "\n".join(lines)
