"""The typed program: what the type checker hands to both back ends.

Every expression carries its C type, and every implicit C conversion is explicit
(``Convert``), so the Z3 lowering (engine/) and the concrete interpreter (interp.py)
compute the same arithmetic without re-deriving C's rules. Names are resolved:
locals carry a unique id, constants are inlined, strategy-dependent functions are
referenced by name and looked up per strategy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, TypeAlias, assert_never

from khospec import syntax as S
from khospec.diagnostics import NO_SPAN, Span
from khospec.types import BOOL, StructType, Type


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Const:
    value: int | bool  # a bool for BOOL; otherwise an int within ty's range
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class Local:
    """A let/var, function parameter or bound variable; ``uid`` makes it unique."""

    name: str
    uid: int
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class ParamRef:
    """A param: a profile's value where it binds one, symbolic otherwise."""

    name: str
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class ParamApp:
    """A param function at arguments: a layout's value where it binds one, an
    uninterpreted function otherwise."""

    name: str
    args: tuple[Expr, ...]
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class StateRef:
    """A scalar state variable; a map is only read entry by entry (``MapRead``)."""

    name: str
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class MapRead:
    name: str
    index: Expr
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class Unary:
    op: S.UnaryOp
    operand: Expr
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class Binary:
    """Operands already converted: both sides share a type, except shifts."""

    op: str
    left: Expr
    right: Expr
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class Convert:
    """A C conversion to the integer type ``ty``, of an integer or of a bool (0 or 1);
    a conversion to bool is a ``!= 0`` comparison instead."""

    operand: Expr
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class Ite:
    cond: Expr
    then: Expr
    else_: Expr
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class FieldGet:
    obj: Expr
    field: str
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class StructMake:
    ty: StructType
    fields: tuple[Expr, ...]  # in the struct's field order
    span: Span = _span()


@dataclass(frozen=True)
class CallFn:
    """A call of a spec function by name: the definition is chosen per strategy
    (``Program.fn``). ``ty`` is a SeqType for an emitting function used as a value,
    and a placeholder for a function without a result."""

    name: str
    args: tuple[Expr, ...]
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class Builtin:
    """A layout builtin, a kernel helper, or requires_hold (its argument a CallFn)."""

    name: str
    args: tuple[Expr, ...]
    ty: Type
    span: Span = _span()


# what a bound variable ranges over: every value of its type, the layout's nodes or
# memory ranges, or the interval [lo, hi)
DomainKind = Literal["type", "nodes", "ranges", "interval"]


@dataclass(frozen=True)
class Domain:
    """What a bound variable ranges over."""

    kind: DomainKind
    lo: Expr | None = None
    hi: Expr | None = None


@dataclass(frozen=True)
class Quant:
    kind: S.QuantKind
    var: Local
    domain: Domain
    body: Expr
    site: int  # numbers the witnesses and the reports on this quantifier (site_spans)
    ty: Type = BOOL
    span: Span = _span()


@dataclass(frozen=True)
class FirstNode:
    var: Local
    cond: Expr
    default: Expr
    site: int
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class InEmits:
    """``item in call``: one of the values the call emits equals item."""

    item: Expr
    call: CallFn
    site: int
    ty: Type = BOOL
    span: Span = _span()


@dataclass(frozen=True)
class EmitsEq:
    """``call == [items]``: the call emits exactly these values, in this order."""

    call: CallFn
    items: tuple[Expr, ...]
    site: int
    ty: Type = BOOL
    span: Span = _span()


Expr: TypeAlias = (
    Const
    | Local
    | ParamRef
    | ParamApp
    | StateRef
    | MapRead
    | Unary
    | Binary
    | Convert
    | Ite
    | FieldGet
    | StructMake
    | CallFn
    | Builtin
    | Quant
    | FirstNode
    | InEmits
    | EmitsEq
)


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class SLet:
    var: Local
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class SAssign:
    """An assignment to a `var` local."""

    var: Local
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class SStateAssign:
    """An assignment to a scalar state variable, whole."""

    name: str
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class SMapWrite:
    """``name[index].f1.f2 = value`` (path empty: the whole entry)."""

    name: str
    index: Expr
    path: tuple[str, ...]
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class SIf:
    cond: Expr
    then: tuple[Stmt, ...]
    else_: tuple[Stmt, ...]
    span: Span = _span()


@dataclass(frozen=True)
class SForConst:
    """A loop with constant bounds: unrolled."""

    var: Local
    lo: int
    hi: int
    body: tuple[Stmt, ...]
    span: Span = _span()


# what a loop over a set of indices runs over: every value of its variable's type
# (narrowed by its bounds and `where`), or the layout's nodes
BulkDomain = Literal["int", "nodes"]


@dataclass(frozen=True)
class SForBulk:
    """A pointwise update of every index in a (symbolic) set: all at once."""

    var: Local
    lo: Expr | None
    hi: Expr | None
    where: Expr | None
    body: tuple[Stmt, ...]
    site: int
    domain: BulkDomain = "int"
    span: Span = _span()


@dataclass(frozen=True)
class SWhile:
    cond: Expr
    invariants: tuple[Expr, ...]
    body: tuple[Stmt, ...]
    site: int
    span: Span = _span()


@dataclass(frozen=True)
class SRequire:
    name: str
    cond: Expr
    site: int
    span: Span = _span()


@dataclass(frozen=True)
class SEmit:
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class SReturn:
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class SCall:
    """A call for what it does (requires, emits, state writes); a result is dropped."""

    call: CallFn
    span: Span = _span()


Stmt: TypeAlias = (
    SLet
    | SAssign
    | SStateAssign
    | SMapWrite
    | SIf
    | SForConst
    | SForBulk
    | SWhile
    | SRequire
    | SEmit
    | SReturn
    | SCall
)

# what ``walk`` and ``children`` visit: expressions, statements and the domains of
# quantifiers
Node: TypeAlias = Expr | Stmt | Domain


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class ParamDef:
    name: str
    arg_types: tuple[Type, ...] | None  # None: a constant; a tuple: a param function
    ty: Type
    span: Span = _span()


@dataclass(frozen=True)
class FnDef:
    name: str
    params: tuple[Local, ...]
    ret: Type | None
    emits: Type | None
    body: tuple[Stmt, ...] | Expr
    # this definition's own body, not its callees': whoever needs the total follows
    # the calls (the type checker keeps its totals to itself)
    reads_state: bool
    writes_state: bool
    has_loop: bool  # a while loop or an emit
    strategy: str | None
    span: Span = _span()


@dataclass(frozen=True)
class AssumeDef:
    kind: S.AssumeKind
    name: str
    before: str | None
    formula: Expr
    reads_state: bool  # a `before` assumption: about the state its step is taken in
    span: Span = _span()


@dataclass(frozen=True)
class StateVarDef:
    name: str
    ty: Type
    init: Expr | None  # None: arbitrary; for a map, every entry's initial value
    span: Span = _span()


@dataclass(frozen=True)
class StepDef:
    name: str
    guard: Expr | None  # None: the step may always be taken
    body: tuple[Stmt, ...]
    strategy: str | None
    span: Span = _span()


@dataclass(frozen=True)
class StrategyDef:
    name: str
    extends: tuple[str, ...]  # known strategies only, and no cycle
    fns: dict[str, FnDef]
    steps: dict[str, StepDef]
    span: Span = _span()


@dataclass(frozen=True)
class ProfileDef:
    name: str
    bindings: tuple[tuple[str, int | bool], ...]  # a param left out stays symbolic
    span: Span = _span()


@dataclass(frozen=True)
class LayoutRange:
    start: int  # physical address, inclusive
    end: int  # physical address, exclusive
    nid: int
    mirror: bool = False


@dataclass(frozen=True)
class LayoutDef:
    """A concrete layout in physical addresses; pfns depend on the profile's PAGE_SHIFT."""

    name: str
    ranges: tuple[LayoutRange, ...]
    zones: tuple[tuple[int, int, int], ...]  # (zone index, start, end) in bytes; start == end: empty
    movable: tuple[tuple[int, int], ...]  # (nid, start address)
    mirrored_kernelcore: bool | None
    bindings: tuple[tuple[str, tuple[int, ...], int | bool], ...]  # (param, arguments, value)
    span: Span = _span()


class Verdict(Enum):
    """The answer for one check under one strategy and one profile. Defined with the
    typed program because a check's ``expect`` names one; ``khospec.results``, which
    reports them, re-exports it."""

    # holds for every layout, profile value and trace the assumptions allow
    PROVED = "proved"
    # no violation in any trace of at most `depth` steps / unrolled iterations; not a proof
    HOLDS_TO_DEPTH = "holds_to_depth"
    # a concrete counterexample: layout, chunk(s), trace, the state that breaks the claim
    REFUTED = "refuted"
    # the assumptions contradict each other, or the claim relies on a step that never runs
    VACUOUS = "vacuous"
    # the solver gave up or ran out of time; `reason` says why
    UNKNOWN = "unknown"


ClaimKind = Literal["holds", "always", "after", "requirement"]


@dataclass(frozen=True)
class ClaimDef:
    kind: ClaimKind
    expr: Expr | None  # None for a requirement claim
    step: str | None = None
    requirement: str | None = None
    span: Span = _span()


@dataclass(frozen=True)
class CheckDef:
    name: str
    file: str
    claim: ClaimDef
    strategies: tuple[str | None, ...]  # None: the base definitions
    profiles: tuple[str, ...]  # sets expanded; by default every profile but `any`
    assuming: tuple[str, ...]
    layout: str | None
    depth: int | None
    expect: Verdict | None  # None: the check must be proved
    span: Span = _span()

    @property
    def is_trace(self) -> bool:
        return self.claim.kind != "holds"


@dataclass
class Program:
    """Everything a check needs, resolved and typed. Built per root file by resolve.py."""

    root: str
    params: dict[str, ParamDef]
    structs: dict[str, StructType]
    fns: dict[str, FnDef]
    strategies: dict[str, StrategyDef]
    axioms: list[AssumeDef]
    assumes: dict[str, AssumeDef]
    state: list[StateVarDef]
    steps: dict[str, StepDef]
    profiles: dict[str, ProfileDef]
    layouts: dict[str, LayoutDef]
    checks: list[CheckDef]
    requirement_names: set[str]
    site_spans: dict[int, Span]
    modules: list[S.Module]
    profile_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # digests of parts of the program (khospec/cache.py), computed once per program
    digests: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # the lines of each module's source, by the name its spans show: a counterexample
    # quotes the claim from here, wherever (in whichever directory) it is presented
    source_lines: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)

    def fn(self, name: str, strategy: str | None) -> FnDef:
        """The definition of ``name`` a call uses under ``strategy``."""
        chain = self.strategy_chain(strategy)
        for s in chain:
            found = self.strategies[s].fns.get(name)
            if found is not None:
                return found
        return self.fns[name]

    def step_defs(self, strategy: str | None) -> list[StepDef]:
        """Every step, in declaration order, as ``strategy`` defines it."""
        chain = self.strategy_chain(strategy)
        out: list[StepDef] = []
        for name, base in self.steps.items():
            chosen = base
            for s in chain:
                over = self.strategies[s].steps.get(name)
                if over is not None:
                    chosen = over
                    break
            out.append(chosen)
        return out

    def strategy_chain(self, strategy: str | None) -> list[str]:
        """The strategy, then what it extends, depth first, left to right: the first
        definition found wins."""
        chain: list[str] = []

        def visit(name: str) -> None:
            # a strategy reached twice (a diamond) keeps its first place
            if name in chain or name not in self.strategies:
                return
            chain.append(name)
            for parent in self.strategies[name].extends:
                visit(parent)

        if strategy is not None:
            visit(strategy)
        return chain


def used_params(program: Program, check: CheckDef, strategy: str | None) -> set[str]:
    """Params the check can read (through the claim, assumptions, steps and functions)."""
    roots: list[Node] = []
    if check.claim.expr is not None:
        roots.append(check.claim.expr)
    roots += [a.formula for a in program.axioms] + [program.assumes[a].formula for a in check.assuming]
    if check.is_trace:
        roots += [s for st in program.step_defs(strategy) for s in (*st.body, *([st.guard] if st.guard else []))]
    return {n.name for n in walk(roots, program, strategy) if isinstance(n, ParamRef | ParamApp)}


# resolve/expressions.py's LAYOUT_BUILTINS and LAYOUT_CONSTANTS by name, repeated here:
# ir.py sits below resolve/ in the import layers (ARCHITECTURE.md)
LAYOUT_BUILTINS = frozenset({
    "pfn_in_ram", "pfn_node", "pfn_range", "node_start_pfn", "node_end_pfn", "zone_movable_pfn",
    "arch_zone_lowest_possible_pfn", "arch_zone_highest_possible_pfn", "mirrored_kernelcore"})


def _touches_layout(n: Node | FnDef) -> bool:
    return ((isinstance(n, Builtin) and n.name in LAYOUT_BUILTINS) or isinstance(n, FirstNode)
            or (isinstance(n, Quant) and n.domain.kind in ("nodes", "ranges"))
            or (isinstance(n, SForBulk) and n.domain == "nodes"))


def uses_layout(program: Program, check: CheckDef, strategy: str | None) -> bool:
    """Whether the claim or an assumption it names reads the memory layout, directly or
    through the functions it calls (a trace claim always does: the boot walks it)."""
    if check.is_trace:
        return True
    # a claim that is not a trace claim is a `holds`, which always has an expression
    claim = [check.claim.expr] if check.claim.expr is not None else []
    roots: list[Node] = [*claim, *(program.assumes[n].formula for n in check.assuming)]
    return any(_touches_layout(n) for n in walk(roots, program, strategy))


def walk(roots: Iterable[Node], program: Program | None = None,
         strategy: str | None = None) -> Iterator[Node | FnDef]:
    """Every IR node under ``roots``; with ``program``, also the bodies of the functions
    called (each once), preceded by the function's FnDef."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        yield node
        if program is not None and isinstance(node, CallFn | SCall):
            call = node if isinstance(node, CallFn) else node.call
            if call.name not in seen:
                seen.add(call.name)
                f = program.fn(call.name, strategy)
                yield f
                stack.extend(f.body if isinstance(f.body, tuple) else [f.body])
        stack.extend(children(node))


def pure_fn(fn: FnDef, program: Program, strategy: str | None) -> bool:
    """Whether ``fn`` is a function of its arguments alone (and of the layout and the
    params, which one query or one replay fixes): no state, loop, emit, require or
    quantifier in it or in what it calls. The lowering gives such a call one term per
    arguments (engine/lower.py), the interpreter one value (interp.py); a quantifier's
    term depends on the polarity and creates witnesses, and its value on the probes in
    progress."""
    if fn.reads_state or fn.writes_state or fn.has_loop or fn.ret is None:
        return False
    bad = (Quant, InEmits, EmitsEq, StateRef, MapRead, SRequire, SWhile, SEmit, SForBulk, SStateAssign, SMapWrite)
    for n in walk(list(fn.body) if isinstance(fn.body, tuple) else [fn.body], program, strategy):
        if isinstance(n, bad) or (isinstance(n, Builtin) and n.name == "requires_hold"):
            return False
        if isinstance(n, FnDef) and (n.reads_state or n.writes_state or n.has_loop):
            return False
    return True


def _given(*nodes: Expr | None) -> list[Node]:
    return [n for n in nodes if n is not None]


def children(node: Node) -> list[Node]:
    """The IR nodes directly under ``node`` (not the function bodies it calls), in the
    order of its fields: ``walk`` visits them last to first, and the order of what
    callers collect along the way (the map reads a replay reports) follows it."""
    match node:
        case Const() | Local() | ParamRef() | StateRef():
            return []
        case ParamApp() | CallFn() | Builtin():
            return list(node.args)
        case MapRead():
            return [node.index]
        case Unary() | Convert():
            return [node.operand]
        case Binary():
            return [node.left, node.right]
        case Ite():
            return [node.cond, node.then, node.else_]
        case FieldGet():
            return [node.obj]
        case StructMake():
            return list(node.fields)
        case Quant():
            return [node.var, node.domain, node.body]
        case FirstNode():
            return [node.var, node.cond, node.default]
        case InEmits():
            return [node.item, node.call]
        case EmitsEq():
            return [node.call, *node.items]
        case Domain():
            return _given(node.lo, node.hi)
        case SLet() | SAssign():
            return [node.var, node.value]
        case SStateAssign() | SEmit() | SReturn():
            return [node.value]
        case SMapWrite():
            return [node.index, node.value]
        case SIf():
            return [node.cond, *node.then, *node.else_]
        case SForConst():
            return [node.var, *node.body]
        case SForBulk():
            return [node.var, *_given(node.lo, node.hi, node.where), *node.body]
        case SWhile():
            return [node.cond, *node.invariants, *node.body]
        case SRequire():
            return [node.cond]
        case SCall():
            return [node.call]
        case _:
            assert_never(node)
