"""Stage 3: the values the lowering works on: memory maps, the machine's state, frames.

A state map (pfn -> struct page) is a chain of Python objects from the initial memory to
the last write; reading it at an index term builds the value there, memoized per index,
so a bulk update of 2^52 pfns costs what the claim reads of it. A frame is one
function's activation: its locals, the guard under which its statements run, what it
returned and emitted, and the requires it executed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import z3

from khospec.diagnostics import Diagnostic, Span
from khospec.engine import bv
from khospec.engine.bv import StructVal, Sym
from khospec.engine.layout import sort_of
from khospec.engine.terms import conj, is_false, negate
from khospec.types import IntType, StructType, Type


class LowerError(Exception):
    """A spec the type checker accepted but the lowering cannot express (a KHO5xx
    diagnostic): an input error for the user, reported like the checker's own."""

    def __init__(self, diag: Diagnostic) -> None:
        super().__init__(diag.message)
        self.diag = diag


def err(code: str, span: Span, msg: str, hint: str | None = None) -> LowerError:
    return LowerError(Diagnostic(code, span, msg, hint))


# ---------------------------------------------------------------- state maps


class MapVal:
    """A state map's value: what reading it at an index term gives. Reads are memoized
    by the term, so a formula that reads one pfn many times builds its value once."""

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
    """A map initialised to one value at every index (a state map with an initial value)."""

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
    """One write, where ``guard`` holds, of ``value`` at ``idx`` (into the field ``path``),
    over ``base``. Comparing two concrete indices is decided here, so a chain of writes at
    known pfns reads as the last one that hit."""

    def __init__(self, base: MapVal, guard: Any, idx: Any, path: tuple[str, ...], value: Sym) -> None:
        super().__init__()
        self.base, self.guard, self.idx, self.path, self.value = base, guard, idx, path, value

    def _read(self, q: Any) -> Sym:
        cur = self.base.read(q)
        hit = conj(self.guard, q == self.idx)
        hit = z3.simplify(hit) if z3.is_bv_value(q) and z3.is_bv_value(self.idx) else hit
        return bv.ite(hit, _set_path(cur, self.path, self.value), cur)


class IteMap(MapVal):
    """Two paths' maps merged where the trace tree joins them: ``a`` where ``cond`` holds."""

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
    """A constant the solver picks, recorded so that the counterexample can give its
    value (``witnesses`` in the JSON) and the interpreter can replay with it."""

    site: int
    label: str
    name: str
    ty: Type
    sym: Sym
    role: SkolemRole


@dataclass
class LoopInfo:
    """One execution of a `while` loop in the formulas: what the solver asks of it to
    tell a proof (every iteration covered) from a bounded result, and a real
    counterexample from one that leans on the invariants' stand-in."""

    site: int
    fn: str
    label: str
    open: Any  # the loop may still run after the unrolled iterations (False if complete)
    tail: Any | None  # Bool: a counterexample uses the invariant stand-in
    entry_violation: Any | None  # the invariant fails after the unrolled iterations
    consecution: Any | None  # satisfiable iff an invariant is not inductive
    span: Span = field(default_factory=lambda: Span.point("<loop>"))
    # satisfiable iff a state satisfying the invariants and the condition has no exit
    # state (invariants, not the condition); quantified, asked of a solver of its own
    exit_gap: Any | None = None
    # satisfiable where such a state may have none (no candidate exit is one): asked
    # with the check's formulas, where the exit's formula made witnesses of its own
    exit_gap_here: Any | None = None
    iterations: int = 0  # unrolled before the stand-in or the cut
    # what follows this loop reads its outcome: a value returned through it, or the
    # caller's statements after the call. Where the loop still runs past the unrolling
    # and the stand-in is not used, that outcome is no value any execution computes, so
    # a counterexample must show the loop ended (solve.py, CheckRun._refute)
    leaks: bool = False


@dataclass
class BulkCtx:
    """The loop over a set of indices a frame runs in: the index term, and the maps its
    body writes (only at that index: KHO520)."""

    index: Any
    written: set[str]
    witness: bool = False  # a loop that only checks (requires): one witness index


@dataclass
class Frame:
    """One activation: ``guard`` is when execution reaches the statement being lowered,
    ``returned`` when a `return` already ran (statements after it do nothing then);
    ``pol`` is the polarity the caller evaluates the frame's value in (engine/lower.py)."""

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
        if is_false(self.returned):
            return self.guard
        return conj(self.guard, negate(self.returned))


@dataclass
class CallResult:
    """What a call leaves its caller: the value returned, the values emitted and the
    requires executed (each under its guard), and whether a loop in it may still run
    past the unrolling (None: every loop ended)."""

    ret: Sym | None
    emits: list[tuple[Any, Sym]]
    requires: list[ReqOb]
    open: Any | None


def merge_states(parts: list[tuple[Any, MachineState]]) -> MachineState:
    """One state for several paths with the same concrete scalars: each scalar and map is
    that of the first part whose condition holds, the last part's where none does.

    It stands for every path only where the paths that hold together have one state:
    the caller chooses which paths to merge (trace.py, _sharing). Two interleavings
    under concrete guards both have the condition True, and the later one would never
    be seen."""
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


def same_state(a: MachineState, b: MachineState) -> bool:
    """Whether two paths' states are the same terms: the same map objects (the same
    contents) and equal scalar terms (equal values)."""
    return (all(m is b.maps[name] for name, m in a.maps.items())
            and all(_same(v, b.scalars[name]) for name, v in a.scalars.items()))


def _same(a: Sym, b: Sym) -> bool:
    if isinstance(a, StructVal):
        return all(_same(x, y) for x, y in zip(a.fields, b.fields, strict=True))
    return bool(a.eq(b))


def read_after(sub: Frame, name: str, q: Any) -> Sym:
    assert sub.state is not None
    return sub.state.maps[name].read(q)


__all__ = ["BulkCtx", "CallResult", "Frame", "LoopInfo", "LowerError", "MachineState", "ReqOb", "Skolem",
           "err", "merge_states", "read_after", "same_state"]
