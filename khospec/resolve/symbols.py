"""The symbol table that the resolve stage's checkers share.

One ``Symbols`` per program: the declared names with their types and definitions, the
counters that number locals and sites, and the diagnostics found so far (values, in
the order they were found). The section checkers (declarations, expressions,
statements, functions, checks) each receive the same ``Symbols``; the helpers here
are those every section reports through, so that a message reads the same wherever
it comes from.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from khospec import ir
from khospec import syntax as S
from khospec.diagnostics import Diagnostic, Related, Severity, Span
from khospec.types import MEM_RANGE, SCALARS, IntType, MapType, StructType, Type

# The structs every program has, with what each is for. Their names are in the one
# namespace of global names: a spec that declares one again is told so (KHO202),
# rather than having its declaration ignored
BUILTIN_STRUCTS: Mapping[str, tuple[StructType, str]] = MappingProxyType({
    "mem_range": (MEM_RANGE, "what `ranges` holds and pfn_range() returns"),
})


@dataclass
class FnSig:
    """A function's signature, typed in pass 1 so that a body may call a function
    declared after it; ``strategy`` is None for the base definition."""

    name: str
    params: tuple[tuple[str, Type], ...]
    ret: Type | None
    emits: Type | None
    decl: S.FnDecl
    strategy: str | None


@dataclass
class Scope:
    """The names one block binds; lookups continue in the enclosing blocks."""

    names: dict[str, ir.Local] = field(default_factory=dict)
    parent: Scope | None = None
    # the uids of the `var`s bound here; a `let`, a parameter or a bound variable is
    # immutable
    mutable: set[int] = field(default_factory=set)

    def lookup(self, name: str) -> ir.Local | None:
        s: Scope | None = self
        while s is not None:
            if name in s.names:
                return s.names[name]
            s = s.parent
        return None

    def is_mutable(self, local: ir.Local) -> bool:
        s: Scope | None = self
        while s is not None:
            if local.uid in s.mutable:
                return True
            s = s.parent
        return False

    def visible_names(self) -> list[str]:
        """Every name in this scope and those enclosing it, innermost first (for hints)."""
        out: list[str] = []
        sc: Scope | None = self
        while sc is not None:
            out.extend(sc.names)
            sc = sc.parent
        return out


# Where an expression or statement is, which decides what it may do with the machine's
# state: "pure" reads none (constants, initial values, `holds` claims, assumptions),
# "trace" reads it (`always`/`after` claims, step guards, `before` assumptions), "step"
# and "fn" are the bodies of steps and functions, which may also write it.
CtxKind = Literal["pure", "trace", "step", "fn"]


@dataclass
class Ctx:
    """Where an expression or statement is typed, and what typing it records."""

    kind: CtxKind
    # the function whose body this is: what `return` and `emit` convert to
    fn: FnSig | None = None
    # the variable of the innermost loop over a set of indices: such a loop runs its
    # body for every index at once, which limits what the body may assign (KHO419)
    bulk_var: ir.Local | None = None
    # "reads", "writes", "loop": what the body does (its loops over sets share the set)
    flags: set[str] = field(default_factory=set)
    # the functions called: in a function's body they go into its flags; elsewhere they
    # are checked against the callees' flags once every body is known
    calls: list[tuple[str, Span]] = field(default_factory=list)


@dataclass
class FnFlags:
    """What a function does to the machine and whom it calls. ``loops`` is a while loop
    or an emit: either confines the function to claims."""

    reads: bool = False
    writes: bool = False
    loops: bool = False
    calls: list[tuple[str, Span]] = field(default_factory=list)


@dataclass
class Symbols:
    """The tables of one program being checked, and the diagnostics found in it."""

    modules: list[S.Module]
    root: str
    diags: list[Diagnostic] = field(default_factory=list)
    # one counter for every local of the program, so that a local declared later has a
    # larger uid (statements.py tells a local declared before a loop by it)
    uids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    sites: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    site_spans: dict[int, Span] = field(default_factory=dict)
    structs: dict[str, StructType] = field(default_factory=lambda: {n: t for n, (t, _) in BUILTIN_STRUCTS.items()})
    struct_decls: dict[str, S.StructDecl] = field(default_factory=dict)
    consts: dict[str, ir.Expr] = field(default_factory=dict)
    const_decls: dict[str, S.ConstDecl] = field(default_factory=dict)
    # the functions each constant's value calls, those of the constants it names
    # included: a constant is inlined, so these are calls of every place that uses it
    const_calls: dict[str, list[tuple[str, Span]]] = field(default_factory=dict)
    # the constants being evaluated when a constant was last asked for: a constant's
    # value may name another one not evaluated yet, and a cycle must be seen as one
    const_stack: list[str] = field(default_factory=list)
    params: dict[str, ir.ParamDef] = field(default_factory=dict)
    state: dict[str, ir.StateVarDef] = field(default_factory=dict)
    fn_sigs: dict[str, FnSig] = field(default_factory=dict)
    # every definition a strategy gives of a name, in order (more than one is reported)
    strategy_fn_sigs: dict[tuple[str, str], list[FnSig]] = field(default_factory=dict)
    # the one namespace of structs, enum constants, params, constants, state variables,
    # functions, strategies, assumptions and layouts; steps, profiles, profile sets and
    # checks each have their own
    declared: dict[str, Span] = field(default_factory=dict)
    # every `require NAME` of a body, its condition typed or not, so that a `requirement
    # NAME` claim finds it
    requirement_names: set[str] = field(default_factory=set)
    # the calls of steps, assumptions and claims, checked once every function's flags
    # are known (a function's own calls go into its flags instead)
    pending_calls: list[tuple[str, CtxKind, Span]] = field(default_factory=list)  # (callee, context kind, span)
    # per definition, keyed by the function's name or `strategy::name`
    fn_flags: dict[str, FnFlags] = field(default_factory=dict)
    # per function name, the flags of every definition and of everything it calls
    fn_total_flags: dict[str, FnFlags] = field(default_factory=dict)
    step_names: set[str] = field(default_factory=set)
    step_spans: dict[str, Span] = field(default_factory=dict)
    # each set's members that are profiles, filled once every profile is known
    profile_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def error(self, code: str, span: Span, message: str, hint: str | None = None,
              related: Iterable[Related] = ()) -> None:
        self.diags.append(Diagnostic(code, span, message, hint, Severity.ERROR, tuple(related)))

    def warn(self, code: str, span: Span, message: str, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, span, message, hint, Severity.WARNING))

    def suggest(self, name: str, options: Iterable[str], listing: str | None = None) -> str | None:
        """A did-you-mean; with no close match, ``listing`` (e.g. "the fields are") and
        every option, when there are few."""
        opts = list(options)
        close = difflib.get_close_matches(name, opts, n=1, cutoff=0.7)
        if close:
            return f"did you mean `{close[0]}`?"
        if listing is not None and 0 < len(opts) <= 12:
            return f"{listing}: {', '.join(f'`{o}`' for o in opts)}"
        return None

    def claim(self, name: str, span: Span, what: str) -> bool:
        """Enter a global name; False (and KHO202) when the spec or an import declared
        it, or when it is a built-in struct's."""
        if name in BUILTIN_STRUCTS:
            self.error("KHO202", span, f"{what} `{name}` is already declared",
                       f"`{name}` is built in: it is {BUILTIN_STRUCTS[name][1]}")
            return False
        if name in self.declared:
            self.error(
                "KHO202",
                span,
                f"{what} `{name}` is already declared",
                "each name is declared once across a spec and its imports",
                [Related(self.declared[name], "first declared here")],
            )
            return False
        self.declared[name] = span
        return True

    def resolve_type(self, t: S.TypeRef, allow_map: bool = False) -> Type | None:
        """A type reference against the struct table; maps only where ``allow_map``
        (state variables)."""
        if isinstance(t, S.ScalarTypeRef):
            # the grammar's TYPE_KW admits exactly the names in SCALARS
            return SCALARS[t.name]
        if isinstance(t, S.NamedTypeRef):
            st = self.structs.get(t.name)
            if st is None:
                self.error("KHO220", t.span, f"unknown type `{t.name}`",
                           self.suggest(t.name, [*self.structs, *SCALARS]))
            return st
        if not allow_map:
            self.error("KHO221", t.span, "map types are only allowed for state variables",
                       "declare the map in `state { ... }`")
            return None
        # without allow_map: a map of maps, or keyed by a map, is refused
        key = self.resolve_type(t.key)
        value = self.resolve_type(t.value)
        if key is None or value is None:
            return None
        if not isinstance(key, IntType):
            self.error("KHO221", t.key.span, f"map keys must be integers, not {key}")
            return None
        return MapType(key, value)

    def site(self, span: Span) -> int:
        """A fresh number for a program point the engine reports on (loops, quantifiers,
        requirements), with its span kept in ``site_spans``."""
        site = next(self.sites)
        self.site_spans[site] = span
        return site

    def new_local(self, scope: Scope, ident: S.Ident, ty: Type, mutable: bool) -> ir.Local | None:
        """Bind ``ident`` in ``scope`` with a fresh uid; None when the block already binds it."""
        if ident.name in scope.names:
            self.error("KHO202", ident.span, f"`{ident.name}` is already declared in this block")
            return None
        if ident.name in self.declared and ident.name in self.consts:
            # a local is looked up before the constants and would hide one silently; it
            # is still bound below, so that its uses raise no further errors
            self.error("KHO226", ident.span, f"`{ident.name}` shadows a constant", "choose another name")
        loc = ir.Local(ident.name, next(self.uids), ty, ident.span)
        scope.names[ident.name] = loc
        if mutable:
            scope.mutable.add(loc.uid)
        return loc
