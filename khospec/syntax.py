"""The abstract syntax tree: frozen dataclasses, each with a source span.

Spans are excluded from equality and hashing, so two parses of the same text compare
equal however they are laid out; the span travels with the node to the type checker,
the Z3 lowering and the counterexample report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from khospec.diagnostics import NO_SPAN, Span


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Ident:
    """A name where it is declared, called or listed (a field, a clause's value); a
    name used as a value is a ``Name``."""

    name: str
    span: Span = _span()


# ---------------------------------------------------------------- types


@dataclass(frozen=True)
class ScalarTypeRef:
    name: str  # one of types.SCALARS: the grammar's TYPE_KW admits no other
    span: Span = _span()


@dataclass(frozen=True)
class NamedTypeRef:
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class MapTypeRef:
    key: TypeRef
    value: TypeRef
    span: Span = _span()


TypeRef = ScalarTypeRef | NamedTypeRef | MapTypeRef


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class IntLit:
    text: str  # as written, unit included: messages quote it
    value: int  # the unit applied
    hex_like: bool  # hex, octal and binary literals may be unsigned in C
    unsigned: bool  # U suffix
    long: bool  # L / LL suffix
    span: Span = _span()


@dataclass(frozen=True)
class BoolLit:
    value: bool
    span: Span = _span()


@dataclass(frozen=True)
class Name:
    id: str
    span: Span = _span()


UnaryOp = Literal["!", "-", "~"]


@dataclass(frozen=True)
class Unary:
    op: UnaryOp
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Binary:
    op: str  # C's spelling (`and` is `&&`); also `->` and `<->`, on bools
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Cond:
    cond: Expr
    then: Expr
    else_: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Cast:
    type: ScalarTypeRef  # the grammar casts to scalar types only
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Call:
    func: Ident
    args: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Field:
    obj: Expr
    name: Ident
    span: Span = _span()


@dataclass(frozen=True)
class Index:
    obj: Expr
    index: Expr
    span: Span = _span()


@dataclass(frozen=True)
class FieldInit:
    name: Ident
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class StructLit:
    type_name: Ident
    fields: tuple[FieldInit, ...]
    span: Span = _span()


@dataclass(frozen=True)
class ListLit:
    """``[a, b]``: parsed anywhere, but typed only as ``f(args) == [a, b]``."""

    items: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True)
class InInterval:
    """``x in [lo, hi)``: half-open, as the kernel's comments write ranges."""

    item: Expr
    lo: Expr
    hi: Expr
    span: Span = _span()


@dataclass(frozen=True)
class InCall:
    """``c in f(args)``: c is one of the values the call emits."""

    item: Expr
    call: Call
    span: Span = _span()


@dataclass(frozen=True)
class TypedBinder:
    """``x: T``: every value of T."""

    name: Ident
    type: TypeRef
    span: Span = _span()


# the layout's nodes / memory ranges
LayoutDomain = Literal["nodes", "ranges"]


@dataclass(frozen=True)
class DomainBinder:
    name: Ident
    domain: LayoutDomain
    span: Span = _span()


@dataclass(frozen=True)
class IntervalBinder:
    """``x in [lo, hi)``: half-open, as ``InInterval``."""

    name: Ident
    lo: Expr
    hi: Expr
    span: Span = _span()


Binder = TypedBinder | DomainBinder | IntervalBinder


QuantKind = Literal["forall", "exists"]


@dataclass(frozen=True)
class Quant:
    kind: QuantKind
    binders: tuple[Binder, ...]
    body: Expr
    span: Span = _span()


@dataclass(frozen=True)
class FirstNode:
    """``first n in nodes where cond else default``: lowest node id satisfying cond."""

    var: Ident
    cond: Expr
    default: Expr
    span: Span = _span()


Expr = (
    IntLit
    | BoolLit
    | Name
    | Unary
    | Binary
    | Cond
    | Cast
    | Call
    | Field
    | Index
    | StructLit
    | ListLit
    | InInterval
    | InCall
    | Quant
    | FirstNode
)


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class LvName:
    name: Ident
    span: Span = _span()


@dataclass(frozen=True)
class LvIndex:
    base: LValue
    index: Expr
    span: Span = _span()


@dataclass(frozen=True)
class LvField:
    base: LValue
    name: Ident
    span: Span = _span()


LValue = LvName | LvIndex | LvField


@dataclass(frozen=True)
class Block:
    stmts: tuple[Stmt, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Let:
    name: Ident
    type: TypeRef | None
    value: Expr
    mutable: bool  # `var`; a `let` is never assigned
    span: Span = _span()


@dataclass(frozen=True)
class Assign:
    target: LValue
    op: str  # "=", "+=", ...
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class If:
    cond: Expr
    then: Block
    else_: Block | If | None  # an If: `else if`
    span: Span = _span()


@dataclass(frozen=True)
class ForRange:
    """``for i in [lo, hi) where c { ... }``, half-open."""

    var: Ident
    lo: Expr
    hi: Expr
    where: Expr | None
    body: Block
    span: Span = _span()


@dataclass(frozen=True)
class ForAll:
    """``for x: T where c { ... }``: every value of an integer type that passes c."""

    var: Ident
    type: TypeRef
    where: Expr | None
    body: Block
    span: Span = _span()


@dataclass(frozen=True)
class ForNodes:
    var: Ident
    where: Expr | None
    body: Block
    span: Span = _span()


@dataclass(frozen=True)
class While:
    cond: Expr
    # what holds before every iteration: the engine stands in for the iterations past
    # those it unrolls with any state satisfying them
    invariants: tuple[Expr, ...]
    body: Block
    span: Span = _span()


@dataclass(frozen=True)
class Require:
    """``require NAME: cond``; a ``requirement NAME`` claim is that every require of
    that name holds wherever the machine runs it."""

    name: Ident
    cond: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Emit:
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Return:
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class CallStmt:
    call: Call
    span: Span = _span()


Stmt = Let | Assign | If | ForRange | ForAll | ForNodes | While | Require | Emit | Return | CallStmt


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class TypedName:
    name: Ident
    type: TypeRef
    span: Span = _span()


@dataclass(frozen=True)
class Import:
    path: str
    span: Span = _span()


@dataclass(frozen=True)
class ParamDecl:
    name: Ident
    params: tuple[TypedName, ...] | None  # None: a constant; a tuple: a function
    type: TypeRef
    span: Span = _span()


@dataclass(frozen=True)
class ConstDecl:
    name: Ident
    type: TypeRef
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class EnumDecl:
    name: Ident
    members: tuple[Ident, ...]
    span: Span = _span()


@dataclass(frozen=True)
class StructDecl:
    name: Ident
    fields: tuple[TypedName, ...]
    span: Span = _span()


@dataclass(frozen=True)
class FnDecl:
    name: Ident
    params: tuple[TypedName, ...]
    ret: TypeRef | None
    emits: TypeRef | None
    body: Block | Expr  # an Expr: `fn f(...) -> T = expr`
    span: Span = _span()


AssumeKind = Literal["axiom", "assume"]


@dataclass(frozen=True)
class AssumeDecl:
    """``axiom`` (always in force) or ``assume`` (in force where a check names it).

    ``before`` restricts traces: the formula holds whenever that step is taken.
    """

    kind: AssumeKind
    name: Ident
    before: Ident | None
    formula: Expr
    span: Span = _span()


@dataclass(frozen=True)
class StateVar:
    name: Ident
    type: TypeRef
    init: Expr | None
    span: Span = _span()


@dataclass(frozen=True)
class StateDecl:
    vars: tuple[StateVar, ...]
    span: Span = _span()


@dataclass(frozen=True)
class StepDecl:
    name: Ident
    guard: Expr | None
    body: Block
    span: Span = _span()


@dataclass(frozen=True)
class StrategyDecl:
    name: Ident
    extends: tuple[Ident, ...]
    fns: tuple[FnDecl, ...]
    steps: tuple[StepDecl, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Binding:
    """``PARAM = value`` in a profile or a layout; only a layout binds a param function
    at arguments, ``f(0) = value``."""

    name: Ident
    args: tuple[Expr, ...]
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class ProfileDecl:
    name: Ident
    bindings: tuple[Binding, ...]
    span: Span = _span()


@dataclass(frozen=True)
class ProfileSetDecl:
    name: Ident
    profiles: tuple[Ident, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Interval:
    lo: Expr
    hi: Expr
    span: Span = _span()


@dataclass(frozen=True)
class LayoutNode:
    nid: int
    ranges: tuple[Interval, ...]
    span: Span = _span()


@dataclass(frozen=True)
class LayoutZone:
    zone: Ident
    range: Interval | None  # None: "empty"
    span: Span = _span()


@dataclass(frozen=True)
class LayoutMovable:
    nid: int
    start: Expr  # the address where the node's ZONE_MOVABLE starts
    span: Span = _span()


@dataclass(frozen=True)
class LayoutMirror:
    ranges: tuple[Interval, ...]  # mirrored memory (MEMBLOCK_MIRROR)
    span: Span = _span()


LayoutItem = LayoutNode | LayoutZone | LayoutMovable | LayoutMirror | Binding


@dataclass(frozen=True)
class LayoutDecl:
    """A concrete layout; addresses are physical (bytes), as dmesg prints them."""

    name: Ident
    items: tuple[LayoutItem, ...]
    span: Span = _span()


@dataclass(frozen=True)
class ClaimHolds:
    """A formula about the layout and profile, with no machine state."""

    expr: Expr
    span: Span = _span()


@dataclass(frozen=True)
class ClaimAlways:
    """``always f``: f holds in every state of every trace."""

    expr: Expr
    span: Span = _span()


@dataclass(frozen=True)
class ClaimAfter:
    """``after STEP: f``: f holds in every state right after STEP is taken."""

    step: Ident
    expr: Expr
    span: Span = _span()


@dataclass(frozen=True)
class ClaimRequirement:
    name: Ident
    span: Span = _span()


Claim = ClaimHolds | ClaimAlways | ClaimAfter | ClaimRequirement


ClauseKind = Literal["under", "for", "assuming", "on", "depth", "expect"]


@dataclass(frozen=True)
class CheckClause:
    kind: ClauseKind
    values: tuple[Ident, ...]  # names, or `depth`'s number as text
    span: Span = _span()


@dataclass(frozen=True)
class CheckDecl:
    name: Ident
    claim: Claim
    clauses: tuple[CheckClause, ...]
    span: Span = _span()


Decl = (
    Import
    | ParamDecl
    | ConstDecl
    | EnumDecl
    | StructDecl
    | FnDecl
    | AssumeDecl
    | StateDecl
    | StepDecl
    | StrategyDecl
    | ProfileDecl
    | ProfileSetDecl
    | LayoutDecl
    | CheckDecl
)


@dataclass(frozen=True)
class Module:
    file: str  # the name diagnostics show, not necessarily a path that exists
    decls: tuple[Decl, ...]
    span: Span = _span()
