"""Stage 2: imports, name resolution and type checking: AST -> ir.Program.

Reports every error it can find (it does not stop at the first), each with a stable
code, a span and a hint. The C rules (promotions, usual arithmetic conversions,
literal types) come from types.py; every implicit conversion becomes an explicit
``ir.Convert``, so later stages never re-derive C's rules.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from khospec import carith, ir
from khospec import syntax as S
from khospec.diagnostics import Diagnostic, Related, Severity, SourceCache, Span
from khospec.parse import parse_bytes
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

VERDICT_NAMES = ("proved", "holds_to_depth", "refuted", "vacuous", "unknown")

ZONE_NAMES = {
    "DMA": 0,
    "DMA32": 1,
    "Normal": 2,
    "NORMAL": 2,
    "Movable": 3,
    "MOVABLE": 3,
    "Device": 4,
    "DEVICE": 4,
}

# Layout primitives: what every layout (symbolic or concrete) answers.
LAYOUT_BUILTINS: dict[str, tuple[tuple[Type, ...], Type]] = {
    "pfn_in_ram": ((ULONG,), BOOL),
    "pfn_node": ((ULONG,), INT),
    "pfn_range": ((ULONG,), MEM_RANGE),
    "node_start_pfn": ((INT,), ULONG),
    "node_end_pfn": ((INT,), ULONG),
    "zone_movable_pfn": ((INT,), ULONG),
    "arch_zone_lowest_possible_pfn": ((INT,), ULONG),
    "arch_zone_highest_possible_pfn": ((INT,), ULONG),
}
LAYOUT_CONSTANTS: dict[str, Type] = {"mirrored_kernelcore": BOOL}

SIMPLE_BUILTINS: dict[str, tuple[tuple[Type, ...], Type]] = {
    "count_trailing_zeros": ((ULONG,), INT),
    "ilog2": ((ULONG,), INT),
    "BIT": ((ULONG,), ULONG),
}
SAME_TYPE_BUILTINS = {"min": 2, "max": 2, "clamp": 3}
ALIGN_BUILTINS = {"IS_ALIGNED": BOOL, "ALIGN": None, "ALIGN_DOWN": None}

ALL_BUILTINS = (
    set(LAYOUT_BUILTINS) | set(SIMPLE_BUILTINS) | set(SAME_TYPE_BUILTINS) | set(ALIGN_BUILTINS)
)


def prelude_text() -> str:
    try:
        res = resources.files("khospec") / "prelude" / "prelude.kho"
        if res.is_file():
            return res.read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):  # pragma: no cover
        pass
    return (Path(__file__).resolve().parent / "prelude" / "prelude.kho").read_text("utf-8")


PRELUDE_NAME = "<prelude>"


# ---------------------------------------------------------------- loading


def spec_tree(path: Path) -> Path:
    """Where a spec's imports may come from: the nearest folder at or above ``path``
    holding ``pyproject.toml`` or ``.git`` (the project), else ``path``'s own folder."""
    start = (path if path.is_dir() else path.parent).resolve()
    for p in (start, *start.parents):
        if (p / "pyproject.toml").exists() or (p / ".git").exists():
            return p
    return start


ParseCache = dict[tuple[str, bytes], tuple[S.Module | None, str | None, list[Diagnostic]]]


def _parse(name: str, data: bytes, parsed: ParseCache | None
           ) -> tuple[S.Module | None, str | None, list[Diagnostic]]:
    """parse_bytes, once per (name, content) within one run (``parsed``): the files a
    library's roots import in common, and the prelude, are read by every root."""
    if parsed is None:
        return parse_bytes(name, data)
    key = (name, data)
    if key not in parsed:
        parsed[key] = parse_bytes(name, data)
    return parsed[key]


def load_modules(
    root: Path, sources: SourceCache, display: str | None = None, trees: tuple[Path, ...] = (),
    parsed: ParseCache | None = None,
) -> tuple[list[S.Module], list[Diagnostic]]:
    """The prelude, the root file and everything it imports (each once). Imports must
    stay inside the spec tree (``spec_tree(root)``, and ``trees``) and name .kho files;
    anything else is refused before it is read: spec files come from contributors, and
    what the diagnostics quote ends up in logs."""
    allowed = (spec_tree(root), *(t.resolve() for t in trees))
    diags: list[Diagnostic] = []
    modules: list[S.Module] = []
    ptext = prelude_text()
    sources.add(PRELUDE_NAME, ptext)
    pmod, _, pdiags = _parse(PRELUDE_NAME, ptext.encode(), parsed)
    diags.extend(pdiags)
    if pmod is not None:
        modules.append(pmod)
    seen: set[Path] = set()
    queue: list[tuple[Path, str, Span | None]] = [(root.resolve(), display or str(root), None)]
    while queue:
        path, name, from_span = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            span = from_span or Span.point(name)
            what = "imported file" if from_span else "file"
            diags.append(
                Diagnostic(
                    "KHO201",
                    span,
                    f"cannot read {what} {name}: {exc.strerror or exc}",
                    "import paths are relative to the importing file",
                )
            )
            continue
        module, text, pdiags = _parse(name, data, parsed)
        if text is not None:
            sources.add(name, text)
        diags.extend(pdiags)
        if module is None:
            continue
        modules.append(module)
        for decl in module.decls:
            if isinstance(decl, S.Import):
                target = (path.parent / decl.path).resolve()  # symbolic links followed
                tname = _display_path(Path(name).parent / decl.path)
                if target.suffix != ".kho":
                    diags.append(Diagnostic("KHO206", decl.span, f"`{decl.path}` is not a spec file",
                                            "imports name .kho files"))
                elif not any(target.is_relative_to(t) for t in allowed):
                    diags.append(Diagnostic(
                        "KHO206", decl.span, f"`{decl.path}` is outside the spec tree",
                        "imports stay inside the project holding the spec (the folder with pyproject.toml "
                        "or .git); --import-root DIR allows another"))
                else:
                    queue.append((target, tname, decl.span))
    return modules, diags


def _display_path(p: Path) -> str:
    parts: list[str] = []
    for part in p.parts:
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return str(Path(*parts)) if parts else "."


# ---------------------------------------------------------------- checker


@dataclass
class _FnSig:
    name: str
    params: tuple[tuple[str, Type], ...]
    ret: Type | None
    emits: Type | None
    decl: S.FnDecl
    strategy: str | None


@dataclass
class _Scope:
    names: dict[str, ir.Local] = field(default_factory=dict)
    parent: _Scope | None = None
    mutable: set[int] = field(default_factory=set)

    def lookup(self, name: str) -> ir.Local | None:
        s: _Scope | None = self
        while s is not None:
            if name in s.names:
                return s.names[name]
            s = s.parent
        return None

    def is_mutable(self, local: ir.Local) -> bool:
        s: _Scope | None = self
        while s is not None:
            if local.uid in s.mutable:
                return True
            s = s.parent
        return False


@dataclass
class _Ctx:
    kind: str  # "pure", "trace", "step", "fn"
    fn: _FnSig | None = None
    bulk_var: ir.Local | None = None
    flags: set[str] = field(default_factory=set)
    calls: list[tuple[str, Span]] = field(default_factory=list)


@dataclass
class _FnFlags:
    reads: bool = False
    writes: bool = False
    loops: bool = False
    calls: list[tuple[str, Span]] = field(default_factory=list)


class Checker:
    def __init__(self, modules: list[S.Module], root: str) -> None:
        self.modules = modules
        self.root = root
        self.diags: list[Diagnostic] = []
        self.uids = itertools.count(1)
        self.sites = itertools.count(1)
        self.site_spans: dict[int, Span] = {}
        self.structs: dict[str, StructType] = {"mem_range": MEM_RANGE}
        self.struct_decls: dict[str, S.StructDecl] = {}
        self.consts: dict[str, ir.Expr] = {}
        self.const_decls: dict[str, S.ConstDecl] = {}
        self.params: dict[str, ir.ParamDef] = {}
        self.state: dict[str, ir.StateVarDef] = {}
        self.fn_sigs: dict[str, _FnSig] = {}
        self.strategy_fn_sigs: dict[tuple[str, str], _FnSig] = {}
        self.declared: dict[str, Span] = {}
        self.requirement_names: set[str] = set()
        self.pending_calls: list[tuple[str, str, Span]] = []  # (callee, context kind, span)
        self.fn_flags: dict[str, _FnFlags] = {}
        self.step_names: set[str] = set()
        self.step_spans: dict[str, Span] = {}
        self.profile_sets: dict[str, tuple[str, ...]] = {}

    # -- diagnostics
    def error(self, code: str, span: Span, message: str, hint: str | None = None,
              related: Iterable[Related] = ()) -> None:
        self.diags.append(Diagnostic(code, span, message, hint, Severity.ERROR, tuple(related)))

    def warn(self, code: str, span: Span, message: str, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, span, message, hint, Severity.WARNING))

    def _suggest(self, name: str, options: Iterable[str], listing: str | None = None) -> str | None:
        """A did-you-mean; with no close match, ``listing`` (e.g. "the fields are") and
        every option, when there are few."""
        opts = list(options)
        close = difflib.get_close_matches(name, opts, n=1, cutoff=0.7)
        if close:
            return f"did you mean `{close[0]}`?"
        if listing is not None and 0 < len(opts) <= 12:
            return f"{listing}: {', '.join(f'`{o}`' for o in opts)}"
        return None

    def _claim(self, name: str, span: Span, what: str) -> bool:
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

    # -- entry point
    def run(self) -> ir.Program:
        decls = [d for m in self.modules for d in m.decls]
        for d in decls:
            if isinstance(d, S.StructDecl) and self._claim(d.name.name, d.name.span, "struct"):
                self.struct_decls[d.name.name] = d
        for d in self.struct_decls.values():
            self._struct(d, [])
        for d in decls:
            if isinstance(d, S.EnumDecl):
                for i, m in enumerate(d.members):
                    if self._claim(m.name, m.span, "enum constant"):
                        self.consts[m.name] = ir.Const(i, INT, m.span)
            elif isinstance(d, S.ParamDecl):
                self._param(d)
            elif isinstance(d, S.ConstDecl) and self._claim(d.name.name, d.name.span, "constant"):
                self.const_decls[d.name.name] = d
            elif isinstance(d, S.StateDecl):
                self._state_decl(d)
            elif isinstance(d, S.StepDecl):
                # steps have their own namespace: a step may share its kernel function's name
                if d.name.name in self.step_spans:
                    self.error("KHO202", d.name.span, f"step `{d.name.name}` is already declared",
                               related=[Related(self.step_spans[d.name.name], "first declared here")])
                else:
                    self.step_spans[d.name.name] = d.name.span
                    self.step_names.add(d.name.name)
            elif isinstance(d, S.FnDecl):
                sig = self._fn_sig(d, None)
                if self._claim(d.name.name, d.name.span, "function") and sig is not None:
                    self.fn_sigs[d.name.name] = sig
        for name in list(self.const_decls):
            self._const(name, [])
        for d in decls:
            if isinstance(d, S.StrategyDecl):
                for f in d.fns:
                    sig = self._fn_sig(f, d.name.name)
                    if sig is not None:
                        self.strategy_fn_sigs[(d.name.name, f.name.name)] = sig
        # pass 2: bodies
        fns: dict[str, ir.FnDef] = {}
        for name, sig in self.fn_sigs.items():
            fns[name] = self._fn_body(sig)
        strategies: dict[str, ir.StrategyDef] = {}
        steps: dict[str, ir.StepDef] = {}
        axioms: list[ir.AssumeDef] = []
        assumes: dict[str, ir.AssumeDef] = {}
        profiles: dict[str, ir.ProfileDef] = {}
        profile_sets: dict[str, S.ProfileSetDecl] = {}
        layouts: dict[str, ir.LayoutDef] = {}
        check_decls: list[S.CheckDecl] = []
        for d in decls:
            if isinstance(d, S.StepDecl) and d.name.name not in steps:
                steps[d.name.name] = self._step(d, None)
        for d in decls:
            if isinstance(d, S.StrategyDecl):
                st = self._strategy(d, fns, steps)
                if st is not None and self._claim(d.name.name, d.name.span, "strategy"):
                    strategies[d.name.name] = st
            elif isinstance(d, S.AssumeDecl):
                a = self._assume(d)
                if a is not None and self._claim(d.name.name, d.name.span, d.kind):
                    if a.kind == "axiom":
                        axioms.append(a)
                    else:
                        assumes[a.name] = a
            elif isinstance(d, S.ProfileDecl):
                p = self._profile(d)
                if p is not None:
                    if p.name in profiles:
                        self.error("KHO202", d.name.span, f"profile `{p.name}` is already declared",
                                   related=[Related(profiles[p.name].span, "first declared here")])
                    else:
                        profiles[p.name] = p
            elif isinstance(d, S.ProfileSetDecl):
                if d.name.name in profile_sets:
                    self.error("KHO202", d.name.span, f"profile set `{d.name.name}` is already declared",
                               related=[Related(profile_sets[d.name.name].span, "first declared here")])
                else:
                    profile_sets[d.name.name] = d
            elif isinstance(d, S.LayoutDecl):
                lay = self._layout(d)
                if lay is not None and self._claim(d.name.name, d.name.span, "layout"):
                    layouts[lay.name] = lay
            elif isinstance(d, S.CheckDecl):
                check_decls.append(d)
        self._check_strategy_extends(strategies)
        self._compute_fn_flags(fns, strategies)
        self._validate_calls()
        checks: list[ir.CheckDef] = []
        seen_checks: dict[str, Span] = {}
        root_decls = {id(d) for m in self.modules if m.file == self.root for d in m.decls}
        for ps in profile_sets.values():
            if ps.name.name in profiles:
                self.error("KHO202", ps.name.span, f"`{ps.name.name}` is a profile and a profile set")
            for v in ps.profiles:
                if v.name not in profiles:
                    self.error("KHO210", v.span, f"unknown profile `{v.name}`", self._suggest(v.name, profiles))
        self.profile_sets = {k: tuple(v.name for v in ps.profiles if v.name in profiles)
                             for k, ps in profile_sets.items()}
        for d in check_decls:
            c = self._check(d, strategies, assumes, profiles, layouts, steps)
            if c is None:
                continue
            if c.name in seen_checks:
                self.error("KHO202", d.name.span, f"check `{c.name}` is already declared",
                           related=[Related(seen_checks[c.name], "first declared here")])
                continue
            seen_checks[c.name] = d.name.span
            if id(d) in root_decls:
                checks.append(c)
        return ir.Program(
            root=self.root,
            params=self.params,
            structs=self.structs,
            fns=fns,
            strategies=strategies,
            axioms=axioms,
            assumes=assumes,
            state=list(self.state.values()),
            steps=steps,
            profiles=profiles,
            layouts=layouts,
            checks=checks,
            requirement_names=self.requirement_names,
            site_spans=self.site_spans,
            modules=self.modules,
            profile_sets=dict(self.profile_sets),
        )

    # -- types
    def _type(self, t: S.TypeRef, allow_map: bool = False) -> Type | None:
        if isinstance(t, S.ScalarTypeRef):
            return SCALARS[t.name]
        if isinstance(t, S.NamedTypeRef):
            st = self.structs.get(t.name)
            if st is None:
                self.error("KHO220", t.span, f"unknown type `{t.name}`",
                           self._suggest(t.name, [*self.structs, *SCALARS]))
            return st
        if not allow_map:
            self.error("KHO221", t.span, "map types are only allowed for state variables",
                       "declare the map in `state { ... }`")
            return None
        key = self._type(t.key)
        value = self._type(t.value)
        if key is None or value is None:
            return None
        if not isinstance(key, IntType):
            self.error("KHO221", t.key.span, f"map keys must be integers, not {key}")
            return None
        return MapType(key, value)

    def _struct(self, d: S.StructDecl, stack: list[str]) -> StructType | None:
        name = d.name.name
        if name in self.structs and self.structs[name] is not None:
            return self.structs[name]
        if name in stack:
            self.error("KHO222", d.name.span, f"struct `{name}` contains itself")
            return None
        fields: list[tuple[str, Type]] = []
        seen: set[str] = set()
        for f in d.fields:
            if f.name.name in seen:
                self.error("KHO202", f.name.span, f"field `{f.name.name}` is declared twice")
                continue
            seen.add(f.name.name)
            ft: Type | None
            if isinstance(f.type, S.NamedTypeRef) and f.type.name in self.struct_decls:
                ft = self._struct(self.struct_decls[f.type.name], [*stack, name])
            else:
                ft = self._type(f.type)
            if ft is not None:
                fields.append((f.name.name, ft))
        st = StructType(name, tuple(fields))
        self.structs[name] = st
        return st

    def _param(self, d: S.ParamDecl) -> None:
        ty = self._type(d.type)
        args: tuple[Type, ...] | None = None
        if d.params is not None:
            ats = [self._type(p.type) for p in d.params]
            if any(a is None for a in ats):
                return
            args = tuple(a for a in ats if a is not None)
            for p, a in zip(d.params, args, strict=True):
                if not isinstance(a, IntType):
                    self.error("KHO223", p.span, f"param function arguments must be integers, not {a}")
        if ty is None:
            return
        if self._claim(d.name.name, d.name.span, "param"):
            self.params[d.name.name] = ir.ParamDef(d.name.name, args, ty, d.span)

    def _state_decl(self, d: S.StateDecl) -> None:
        for v in d.vars:
            ty = self._type(v.type, allow_map=True)
            if ty is None or not self._claim(v.name.name, v.name.span, "state variable"):
                continue
            init = None
            if v.init is not None:
                target = ty.value if isinstance(ty, MapType) else ty
                e = self.expr(v.init, _Scope(), _Ctx("pure"))
                if e is not None:
                    init = self.convert(e, target, v.init.span, "initial value")
            self.state[v.name.name] = ir.StateVarDef(v.name.name, ty, init, v.span)

    def _const(self, name: str, stack: list[str]) -> ir.Expr | None:
        if name in self.consts:
            return self.consts[name]
        d = self.const_decls[name]
        if name in stack:
            self.error("KHO224", d.name.span, f"constant `{name}` is defined in terms of itself")
            return None
        ty = self._type(d.type)
        self._const_stack = [*stack, name]
        e = self.expr(d.value, _Scope(), _Ctx("pure"))
        if e is None or ty is None:
            self.consts[name] = ir.Const(0, ty or INT, d.span)
            return None
        c = self.convert(e, ty, d.value.span, "constant")
        self.consts[name] = c
        return c

    # -- functions
    def _fn_sig(self, d: S.FnDecl, strategy: str | None) -> _FnSig | None:
        params: list[tuple[str, Type]] = []
        ok = True
        seen: set[str] = set()
        for p in d.params:
            t = self._type(p.type)
            if t is None:
                ok = False
                continue
            if p.name.name in seen:
                self.error("KHO202", p.name.span, f"parameter `{p.name.name}` is declared twice")
            seen.add(p.name.name)
            params.append((p.name.name, t))
        ret = self._type(d.ret) if d.ret is not None else None
        emits = self._type(d.emits) if d.emits is not None else None
        if (d.ret is not None and ret is None) or (d.emits is not None and emits is None):
            ok = False
        if isinstance(d.body, S.Block) is False and d.ret is None:
            self.error("KHO401", d.name.span, f"function `{d.name.name}` = expression needs a result type",
                       f"write fn {d.name.name}(...) -> T = ...")
            ok = False
        if not ok:
            return None
        return _FnSig(d.name.name, tuple(params), ret, emits, d, strategy)

    def _fn_body(self, sig: _FnSig) -> ir.FnDef:
        scope = _Scope()
        locals_: list[ir.Local] = []
        for (pname, pty), pdecl in zip(sig.params, sig.decl.params, strict=True):
            loc = ir.Local(pname, next(self.uids), pty, pdecl.span)
            scope.names[pname] = loc
            locals_.append(loc)
        ctx = _Ctx("fn", fn=sig)
        body: tuple[ir.Stmt, ...] | ir.Expr
        if isinstance(sig.decl.body, S.Block):
            body = self.block(sig.decl.body, _Scope(parent=scope), ctx)
            if sig.ret is not None and not _always_returns(body):
                self.error("KHO402", sig.decl.name.span,
                           f"function `{sig.name}` may end without returning a {sig.ret}",
                           "end every path with return")
        else:
            e = self.expr(sig.decl.body, scope, ctx)
            assert sig.ret is not None
            body = (
                self.convert(e, sig.ret, sig.decl.body.span, "result")
                if e is not None
                else ir.Const(0, sig.ret)
            )
        key = sig.name if sig.strategy is None else f"{sig.strategy}::{sig.name}"
        self.fn_flags[key] = _FnFlags(
            "reads" in ctx.flags, "writes" in ctx.flags, "loop" in ctx.flags, ctx.calls
        )
        return ir.FnDef(
            sig.name, tuple(locals_), sig.ret, sig.emits, body,
            "reads" in ctx.flags, "writes" in ctx.flags, "loop" in ctx.flags,
            sig.strategy, sig.decl.span,
        )

    def _step(self, d: S.StepDecl, strategy: str | None) -> ir.StepDef:
        ctx = _Ctx("step")
        guard = None
        if d.guard is not None:
            g = self.expr(d.guard, _Scope(), _Ctx("trace"))
            guard = self.want_bool(g, d.guard.span, "a step guard")
        body = self.block(d.body, _Scope(), ctx)
        for callee, span in ctx.calls:
            self.pending_calls.append((callee, "step", span))
        return ir.StepDef(d.name.name, guard, body, strategy, d.span)

    def _strategy(self, d: S.StrategyDecl, fns: dict[str, ir.FnDef],
                  steps: dict[str, ir.StepDef]) -> ir.StrategyDef | None:
        sfns: dict[str, ir.FnDef] = {}
        for f in d.fns:
            name = f.name.name
            base = self.fn_sigs.get(name)
            sig = self.strategy_fn_sigs.get((d.name.name, name))
            if base is None:
                self.error("KHO403", f.name.span,
                           f"strategy `{d.name.name}` redefines `{name}`, which is not a function",
                           self._suggest(name, self.fn_sigs) or
                           "a strategy gives alternative definitions of functions and steps declared outside it")
                continue
            if sig is None:
                continue
            if (sig.params, sig.ret, sig.emits) != (base.params, base.ret, base.emits):
                self.error("KHO404", f.name.span,
                           f"`{name}` in strategy `{d.name.name}` has a different signature from the base definition",
                           "keep the parameter types and result type of the base definition",
                           [Related(base.decl.span, "base definition")])
                continue
            if name in sfns:
                self.error("KHO202", f.name.span, f"`{name}` is defined twice in strategy `{d.name.name}`")
                continue
            sfns[name] = self._fn_body(sig)
        ssteps: dict[str, ir.StepDef] = {}
        for st in d.steps:
            if st.name.name not in steps:
                self.error("KHO403", st.name.span,
                           f"strategy `{d.name.name}` redefines step `{st.name.name}`, which is not declared",
                           self._suggest(st.name.name, steps))
                continue
            ssteps[st.name.name] = self._step(st, d.name.name)
        return ir.StrategyDef(d.name.name, tuple(e.name for e in d.extends), sfns, ssteps, d.span)

    def _check_strategy_extends(self, strategies: dict[str, ir.StrategyDef]) -> None:
        for s in list(strategies.values()):
            known = tuple(e for e in s.extends if e in strategies)
            for e in s.extends:
                if e not in strategies:
                    self.error("KHO210", s.span, f"strategy `{s.name}` extends unknown strategy `{e}`",
                               self._suggest(e, strategies))
            strategies[s.name] = ir.StrategyDef(s.name, known, s.fns, s.steps, s.span)

        def cycle(name: str, path: list[str]) -> list[str] | None:
            if name in path:
                return [*path, name]
            for e in strategies[name].extends:
                found = cycle(e, [*path, name])
                if found:
                    return found
            return None

        for s in list(strategies.values()):
            found = cycle(s.name, [])
            if found and found[0] == s.name:
                self.error("KHO405", s.span, f"strategy `{s.name}` extends itself (through {' -> '.join(found)})")
                strategies[s.name] = ir.StrategyDef(s.name, (), s.fns, s.steps, s.span)

    def _compute_fn_flags(self, fns: dict[str, ir.FnDef], strategies: dict[str, ir.StrategyDef]) -> None:
        # Union of every definition of a name: strategies may swap any of them in.
        defs: dict[str, list[str]] = {}
        for key in self.fn_flags:
            name = key.split("::")[-1]
            defs.setdefault(name, []).append(key)
        total: dict[str, _FnFlags] = {}
        state: dict[str, int] = {}

        def visit(name: str, span: Span | None) -> _FnFlags:
            if state.get(name) == 2:
                return total[name]
            if state.get(name) == 1:
                if span is not None:
                    self.error("KHO411", span, f"`{name}` calls itself (directly or through other functions)",
                               "calls are inlined: write the recursion as a bounded loop")
                return _FnFlags()
            state[name] = 1
            acc = _FnFlags()
            for key in defs.get(name, []):
                fl = self.fn_flags[key]
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
        self.fn_total_flags = total

    def _validate_calls(self) -> None:
        for callee, kind, span in self.pending_calls:
            fl = self.fn_total_flags.get(callee)
            if fl is None:
                continue
            if kind == "pure" and (fl.reads or fl.writes):
                self.error("KHO410", span,
                           f"`{callee}` reads the machine state, so it cannot be used here",
                           "state is readable in steps, in `always`/`after` claims and in `before` assumptions")
            elif kind == "trace" and fl.writes:
                self.error("KHO410", span, f"`{callee}` changes the machine state, so it cannot be used here",
                           "only steps change state")
            elif kind in ("trace", "step") and fl.loops:
                self.error("KHO412", span,
                           f"`{callee}` contains a while loop or emits values; "
                           "such functions can only be used in claims",
                           "call it from a `check` claim, e.g. `c in f(args)`")

    # -- assumptions, profiles, layouts, checks
    def _assume(self, d: S.AssumeDecl) -> ir.AssumeDef | None:
        if d.before is not None:
            if d.before.name not in self.step_names:
                self.error("KHO210", d.before.span, f"unknown step `{d.before.name}`",
                           self._suggest(d.before.name, self.step_names))
                return None
            ctx = _Ctx("trace")
        else:
            ctx = _Ctx("pure")
        e = self.expr(d.formula, _Scope(), ctx)
        f = self.want_bool(e, d.formula.span, f"{d.kind} `{d.name.name}`")
        for callee, span in ctx.calls:
            self.pending_calls.append((callee, ctx.kind, span))
        if f is None:
            return None
        return ir.AssumeDef(d.kind, d.name.name, d.before.name if d.before else None, f,
                            d.before is not None, d.span)

    def const_value(self, e: S.Expr, what: str) -> int | bool | None:
        ir_e = self.expr(e, _Scope(), _Ctx("pure"))
        if ir_e is None:
            return None
        v = fold(ir_e)
        if v is None:
            self.error("KHO320", e.span, f"{what} must be a constant",
                       "use numbers, enum constants and constants defined with numbers")
        return v

    def _profile(self, d: S.ProfileDecl) -> ir.ProfileDef | None:
        out: list[tuple[str, int | bool]] = []
        seen: dict[str, Span] = {}
        for b in d.bindings:
            p = self.params.get(b.name.name)
            if p is None:
                self.error("KHO210", b.name.span, f"unknown param `{b.name.name}`",
                           self._suggest(b.name.name, self.params) or "declare it with `param NAME: TYPE`")
                continue
            if p.arg_types is not None:
                self.error("KHO225", b.name.span, f"`{b.name.name}` is a param function; profiles bind constants")
                continue
            if b.name.name in seen:
                self.error("KHO202", b.name.span, f"`{b.name.name}` is bound twice in profile `{d.name.name}`",
                           related=[Related(seen[b.name.name], "first bound here")])
                continue
            seen[b.name.name] = b.name.span
            v = self.const_value(b.value, f"the value of {b.name.name}")
            if v is None:
                continue
            v2 = self._fit(v, p.ty, b.value.span, b.name.name)
            if v2 is not None:
                out.append((b.name.name, v2))
        return ir.ProfileDef(d.name.name, tuple(out), d.span)

    def _fit(self, v: int | bool, ty: Type, span: Span, what: str) -> int | bool | None:
        if isinstance(ty, BoolType):
            if not isinstance(v, bool):
                self.error("KHO301", span, f"{what} is a bool, not an integer")
                return None
            return v
        if not isinstance(ty, IntType) or isinstance(v, bool):
            self.error("KHO301", span, f"{what} must be of type {ty}")
            return None
        if not ty.fits(v):
            self.error("KHO302", span, f"{v} does not fit in {what}'s type {ty}")
            return None
        return v

    def _layout(self, d: S.LayoutDecl) -> ir.LayoutDef | None:
        ranges: list[ir.LayoutRange] = []
        zones: list[tuple[int, int, int]] = []
        movable: list[tuple[int, int]] = []
        mirrors: list[tuple[int, int]] = []
        mirrored_kc: bool | None = None
        bindings: list[tuple[str, tuple[int, ...], int | bool]] = []

        def interval(iv: S.Interval) -> tuple[int, int] | None:
            lo = self.const_value(iv.lo, "a layout address")
            hi = self.const_value(iv.hi, "a layout address")
            if not isinstance(lo, int) or not isinstance(hi, int) or isinstance(lo, bool) or isinstance(hi, bool):
                return None
            if not 0 <= lo < hi <= 1 << 64:
                self.error("KHO230", iv.span, f"range [{lo:#x}, {hi:#x}) is empty or outside the 64-bit physical space",
                           "write [start, end) with start < end, end exclusive")
                return None
            return lo, hi

        for item in d.items:
            if isinstance(item, S.LayoutNode):
                for iv in item.ranges:
                    r = interval(iv)
                    if r is not None:
                        ranges.append(ir.LayoutRange(r[0], r[1], item.nid))
            elif isinstance(item, S.LayoutZone):
                zi = ZONE_NAMES.get(item.zone.name)
                if zi is None:
                    self.error("KHO210", item.zone.span, f"unknown zone `{item.zone.name}`",
                               "zones are DMA, DMA32, Normal, Movable, Device")
                    continue
                if item.range is None:
                    zones.append((zi, 0, 0))
                else:
                    r = interval(item.range)
                    if r is not None:
                        zones.append((zi, r[0], r[1]))
            elif isinstance(item, S.LayoutMovable):
                v = self.const_value(item.start, "a movable zone start")
                if isinstance(v, int) and not isinstance(v, bool):
                    movable.append((item.nid, v))
            elif isinstance(item, S.LayoutMirror):
                for iv in item.ranges:
                    r = interval(iv)
                    if r is not None:
                        mirrors.append(r)
            elif isinstance(item, S.Binding):
                name = item.name.name
                if name == "mirrored_kernelcore":
                    v = self.const_value(item.value, "mirrored_kernelcore")
                    if isinstance(v, bool):
                        mirrored_kc = v
                    elif v is not None:
                        self.error("KHO301", item.value.span, "mirrored_kernelcore is true or false")
                    continue
                p = self.params.get(name)
                if p is None:
                    self.error("KHO210", item.name.span, f"unknown param `{name}`", self._suggest(name, self.params))
                    continue
                nargs = len(p.arg_types or ())
                if nargs != len(item.args):
                    self.error("KHO303", item.span, f"`{name}` takes {nargs} argument(s), not {len(item.args)}")
                    continue
                args = [self.const_value(a, "a param argument") for a in item.args]
                v = self.const_value(item.value, f"the value of {name}")
                if v is None or any(not isinstance(a, int) or isinstance(a, bool) for a in args):
                    continue
                fv = self._fit(v, p.ty, item.value.span, name)
                if fv is not None:
                    bindings.append((name, tuple(int(a) for a in args if a is not None), fv))
        ranges.sort(key=lambda r: r.start)
        for a, b in itertools.pairwise(ranges):
            if b.start < a.end:
                self.error("KHO231", d.span,
                           f"ranges [{a.start:#x}, {a.end:#x}) of node {a.nid} and "
                           f"[{b.start:#x}, {b.end:#x}) of node {b.nid} overlap",
                           "memblock ranges are disjoint")
                return None
        # MEMBLOCK_MIRROR splits ranges at mirror boundaries.
        if mirrors:
            cuts = sorted({x for m in mirrors for x in m})
            split: list[ir.LayoutRange] = []
            for rng in ranges:
                points = [rng.start, *[c for c in cuts if rng.start < c < rng.end], rng.end]
                for lo, hi in itertools.pairwise(points):
                    is_m = any(m0 <= lo and hi <= m1 for m0, m1 in mirrors)
                    split.append(ir.LayoutRange(lo, hi, rng.nid, is_m))
            ranges = split
        return ir.LayoutDef(d.name.name, tuple(ranges), tuple(zones), tuple(movable), mirrored_kc,
                            tuple(bindings), d.span)

    def _check(self, d: S.CheckDecl, strategies: dict[str, ir.StrategyDef],
               assumes: dict[str, ir.AssumeDef], profiles: dict[str, ir.ProfileDef],
               layouts: dict[str, ir.LayoutDef], steps: dict[str, ir.StepDef]) -> ir.CheckDef | None:
        clauses: dict[str, S.CheckClause] = {}
        ok = True
        for cl in d.clauses:
            if cl.kind in clauses:
                self.error("KHO420", cl.span, f"`{cl.kind}` is given twice for check `{d.name.name}`",
                           f"list every value in one `{cl.kind}` clause, separated by commas")
                ok = False
            clauses[cl.kind] = cl
        claim = self._claim_def(d.claim, steps)
        if claim is None:
            ok = False
        strat: list[str | None] = [None]
        if "under" in clauses:
            strat = []
            for v in clauses["under"].values:
                if v.name == "base":
                    strat.append(None)
                elif v.name not in strategies:
                    self.error("KHO210", v.span, f"unknown strategy `{v.name}`", self._suggest(v.name, strategies))
                    ok = False
                else:
                    strat.append(v.name)
        profs = [p for p in profiles if p != "any"]
        if "for" in clauses:
            profs = []
            for v in clauses["for"].values:
                if v.name in self.profile_sets:
                    profs.extend(p for p in self.profile_sets[v.name] if p not in profs)
                elif v.name not in profiles:
                    self.error("KHO210", v.span, f"unknown profile `{v.name}`", self._suggest(v.name, profiles))
                    ok = False
                else:
                    profs.append(v.name)
        assuming: list[str] = []
        for v in clauses["assuming"].values if "assuming" in clauses else ():
            if v.name not in assumes:
                hint = self._suggest(v.name, assumes)
                if any(a.name.name == v.name for a in self._all_axioms()):
                    hint = f"`{v.name}` is an axiom: it is always in force"
                self.error("KHO210", v.span, f"unknown assumption `{v.name}`", hint)
                ok = False
            else:
                assuming.append(v.name)
        layout = None
        if "on" in clauses:
            v = clauses["on"].values[0]
            if v.name not in layouts:
                self.error("KHO210", v.span, f"unknown layout `{v.name}`", self._suggest(v.name, layouts))
                ok = False
            layout = v.name
        depth = None
        if "depth" in clauses:
            v = clauses["depth"].values[0]
            try:
                depth = int(v.name, 0)
            except ValueError:
                depth = None
            if depth is None or not 0 <= depth <= 64:
                self.error("KHO421", v.span, "depth is a number of steps between 0 and 64")
                ok = False
        expect = None
        if "expect" in clauses:
            v = clauses["expect"].values[0]
            if v.name not in VERDICT_NAMES:
                self.error("KHO422", v.span, f"unknown verdict `{v.name}`",
                           self._suggest(v.name, VERDICT_NAMES) or "verdicts: " + ", ".join(VERDICT_NAMES))
                ok = False
            expect = v.name
        if not ok or claim is None:
            return None
        return ir.CheckDef(d.name.name, d.span.file, claim, tuple(strat), tuple(profs), tuple(assuming),
                           layout, depth, expect, d.span)

    def _all_axioms(self) -> list[S.AssumeDecl]:
        return [d for m in self.modules for d in m.decls if isinstance(d, S.AssumeDecl) and d.kind == "axiom"]

    def _claim_def(self, c: S.Claim, steps: dict[str, ir.StepDef]) -> ir.ClaimDef | None:
        if isinstance(c, S.ClaimRequirement):
            if c.name.name not in self.requirement_names:
                self.error("KHO210", c.name.span, f"no `require {c.name.name}: ...` in any step or function",
                           self._suggest(c.name.name, self.requirement_names))
                return None
            return ir.ClaimDef("requirement", None, requirement=c.name.name, span=c.span)
        kind = {S.ClaimHolds: "holds", S.ClaimAlways: "always", S.ClaimAfter: "after"}[type(c)]
        ctx = _Ctx("pure" if kind == "holds" else "trace")
        e = self.expr(c.expr, _Scope(), ctx)
        for callee, span in ctx.calls:
            self.pending_calls.append((callee, ctx.kind, span))
        f = self.want_bool(e, c.expr.span, "a claim")
        if f is None:
            return None
        step = None
        if isinstance(c, S.ClaimAfter):
            if c.step.name not in steps:
                self.error("KHO210", c.step.span, f"unknown step `{c.step.name}`", self._suggest(c.step.name, steps))
                return None
            step = c.step.name
        return ir.ClaimDef(kind, f, step=step, span=c.span)

    # -- statements
    def block(self, b: S.Block, scope: _Scope, ctx: _Ctx) -> tuple[ir.Stmt, ...]:
        out: list[ir.Stmt] = []
        for s in b.stmts:
            r = self.stmt(s, scope, ctx)
            if r is not None:
                out.append(r)
        return tuple(out)

    def stmt(self, s: S.Stmt, scope: _Scope, ctx: _Ctx) -> ir.Stmt | None:
        if isinstance(s, S.Let):
            return self._let(s, scope, ctx)
        if isinstance(s, S.Assign):
            return self._assign(s, scope, ctx)
        if isinstance(s, S.If):
            c = self.want_bool(self.expr(s.cond, scope, ctx), s.cond.span, "an if condition")
            then = self.block(s.then, _Scope(parent=scope), ctx)
            else_: tuple[ir.Stmt, ...] = ()
            if isinstance(s.else_, S.Block):
                else_ = self.block(s.else_, _Scope(parent=scope), ctx)
            elif isinstance(s.else_, S.If):
                e = self.stmt(s.else_, _Scope(parent=scope), ctx)
                else_ = (e,) if e is not None else ()
            if c is None:
                return None
            return ir.SIf(c, then, else_, s.span)
        if isinstance(s, S.ForRange):
            return self._for_range(s, scope, ctx)
        if isinstance(s, S.ForAll):
            return self._for_all(s, scope, ctx)
        if isinstance(s, S.ForNodes):
            return self._bulk(s.var, INT, None, None, s.where, s.body, s.span, _Scope(parent=scope), ctx,
                              domain="nodes")
        if isinstance(s, S.While):
            if ctx.kind != "fn":
                self.error("KHO412", s.span, "while loops are only allowed in functions used by claims",
                           "steps update whole ranges with `for p in [lo, hi) { ... }`")
                return None
            ctx.flags.add("loop")
            c = self.want_bool(self.expr(s.cond, scope, ctx), s.cond.span, "a loop condition")
            invs = [self.want_bool(self.expr(i, scope, ctx), i.span, "an invariant") for i in s.invariants]
            body = self.block(s.body, _Scope(parent=scope), ctx)
            if c is None or any(i is None for i in invs):
                return None
            site = self._site(s.span)
            return ir.SWhile(c, tuple(i for i in invs if i is not None), body, site, s.span)
        if isinstance(s, S.Require):
            self.requirement_names.add(s.name.name)
            c = self.want_bool(self.expr(s.cond, scope, ctx), s.cond.span, "a requirement")
            if c is None:
                return None
            return ir.SRequire(s.name.name, c, self._site(s.span), s.span)
        if isinstance(s, S.Emit):
            if ctx.fn is None or ctx.fn.emits is None:
                self.error("KHO413", s.span, "emit is only allowed in a function declared with `emits T`")
                return None
            ctx.flags.add("loop")
            val = self.expr(s.value, scope, ctx)
            if val is None:
                return None
            return ir.SEmit(self.convert(val, ctx.fn.emits, s.value.span, "emitted value"), s.span)
        if isinstance(s, S.Return):
            if ctx.fn is None or ctx.fn.ret is None:
                self.error("KHO414", s.span, "return with a value outside a function with a result type")
                return None
            val = self.expr(s.value, scope, ctx)
            if val is None:
                return None
            return ir.SReturn(self.convert(val, ctx.fn.ret, s.value.span, "returned value"), s.span)
        if isinstance(s, S.CallStmt):
            call = self._call(s.call, scope, ctx, statement=True)
            if call is None:
                return None
            if not isinstance(call, ir.CallFn):
                self.warn("KHO415", s.span, "the result of this call is unused")
                return None
            return ir.SCall(call, s.span)
        raise AssertionError(s)  # pragma: no cover

    def _site(self, span: Span) -> int:
        site = next(self.sites)
        self.site_spans[site] = span
        return site

    def _new_local(self, scope: _Scope, ident: S.Ident, ty: Type, mutable: bool) -> ir.Local | None:
        if ident.name in scope.names:
            self.error("KHO202", ident.span, f"`{ident.name}` is already declared in this block")
            return None
        if ident.name in self.declared and ident.name in self.consts:
            self.error("KHO226", ident.span, f"`{ident.name}` shadows a constant", "choose another name")
        loc = ir.Local(ident.name, next(self.uids), ty, ident.span)
        scope.names[ident.name] = loc
        if mutable:
            scope.mutable.add(loc.uid)
        return loc

    def _let(self, s: S.Let, scope: _Scope, ctx: _Ctx) -> ir.Stmt | None:
        e = self.expr(s.value, scope, ctx)
        ty: Type | None
        if s.type is not None:
            ty = self._type(s.type)
            if ty is None or e is None:
                return None
            e = self.convert(e, ty, s.value.span, f"`{s.name.name}`")
        else:
            if e is None:
                return None
            ty = e.ty
            if isinstance(ty, SeqType):
                self.error("KHO304", s.value.span, "a function that emits values has no single value to bind",
                           "use `x in f(args)` in a claim")
                return None
        loc = self._new_local(scope, s.name, ty, s.mutable)
        if loc is None:
            return None
        return ir.SLet(loc, e, s.span)

    def _assign(self, s: S.Assign, scope: _Scope, ctx: _Ctx) -> ir.Stmt | None:
        target = s.target
        path: list[str] = []
        while isinstance(target, S.LvField):
            path.insert(0, target.name.name)
            target = target.base
        index_expr: S.Expr | None = None
        if isinstance(target, S.LvIndex):
            index_expr = target.index
            base = target.base
            if not isinstance(base, S.LvName):
                self.error("KHO416", s.target.span, "only state maps can be indexed: write map[index].field = value")
                return None
            target = base
        assert isinstance(target, S.LvName)
        name = target.name.name
        # the current value, to type compound assignments
        if index_expr is None and not path:
            loc = scope.lookup(name)
            if loc is not None:
                if not scope.is_mutable(loc):
                    self.error("KHO417", target.span, f"`{name}` is immutable",
                               f"declare it with `var {name} = ...` to assign it")
                    return None
                value = self._assign_value(s, ir.Local(loc.name, loc.uid, loc.ty, loc.span), scope, ctx)
                return None if value is None else ir.SAssign(loc, value, s.span)
        sv = self.state.get(name)
        if sv is None:
            if scope.lookup(name) is not None:
                self.error("KHO416", s.target.span,
                           f"`{name}` is a local value; only state maps take indices and fields")
            else:
                self.error("KHO210", target.span, f"unknown variable `{name}`",
                           self._suggest(name, [*self.state, *self._scope_names(scope)]))
            return None
        if ctx.kind not in ("step", "fn"):
            self.error("KHO418", s.span, "state is assigned only in steps")
            return None
        ctx.flags.add("writes")
        if ctx.bulk_var is not None and index_expr is None:
            self.error("KHO419", s.span, f"`{name}` is assigned inside a loop over a set of indices",
                       "such loops update map entries at the loop index only")
            return None
        if index_expr is None:
            if isinstance(sv.ty, MapType):
                self.error("KHO416", s.target.span, f"`{name}` is a map: assign one entry, {name}[i] = ...")
                return None
            if path:
                cur_ty: Type | None = sv.ty
                cur: ir.Expr = ir.StateRef(name, sv.ty, target.span)
                self.error("KHO416", s.target.span, "assign struct state variables whole")
                return None
            value = self._assign_value(s, ir.StateRef(name, sv.ty, target.span), scope, ctx)
            return None if value is None else ir.SStateAssign(name, value, s.span)
        if not isinstance(sv.ty, MapType):
            self.error("KHO416", s.target.span, f"`{name}` is not a map")
            return None
        idx = self.expr(index_expr, scope, ctx)
        if idx is None:
            return None
        idx = self.convert(idx, sv.ty.key, index_expr.span, "map index")
        cur_ty = sv.ty.value
        cur = ir.MapRead(name, idx, sv.ty.value, s.target.span)
        for f in path:
            if not isinstance(cur_ty, StructType) or cur_ty.field_type(f) is None:
                self.error("KHO305", s.target.span, f"{cur_ty} has no field `{f}`",
                           self._suggest(f, [n for n, _ in cur_ty.fields], "its fields are")
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

    def _assign_value(self, s: S.Assign, current: ir.Expr, scope: _Scope, ctx: _Ctx) -> ir.Expr | None:
        e = self.expr(s.value, scope, ctx)
        if e is None:
            return None
        if s.op != "=":
            op = s.op[:-1]
            combined = self._binary(op, current, e, s.span, s.span)
            if combined is None:
                return None
            e = combined
        return self.convert(e, current.ty, s.value.span, "assigned value")

    def _scope_names(self, scope: _Scope) -> list[str]:
        out: list[str] = []
        sc: _Scope | None = scope
        while sc is not None:
            out.extend(sc.names)
            sc = sc.parent
        return out

    def _for_range(self, s: S.ForRange, scope: _Scope, ctx: _Ctx) -> ir.Stmt | None:
        lo = self.expr(s.lo, scope, ctx)
        hi = self.expr(s.hi, scope, ctx)
        if lo is None or hi is None:
            return None
        if not isinstance(lo.ty, IntType) or not isinstance(hi.ty, IntType):
            self.error("KHO301", s.span, "loop bounds must be integers")
            return None
        ty = usual_conversion(lo.ty, hi.ty)
        lo, hi = self.convert(lo, ty, s.lo.span, "bound"), self.convert(hi, ty, s.hi.span, "bound")
        lo_v, hi_v = fold(lo), fold(hi)
        inner = _Scope(parent=scope)
        if isinstance(lo_v, int) and isinstance(hi_v, int) and s.where is None and hi_v - lo_v <= 64:
            var = self._new_local(inner, s.var, ty, False)
            body = self.block(s.body, inner, ctx)
            if var is None:
                return None
            return ir.SForConst(var, int(lo_v), int(hi_v), body, s.span)
        return self._bulk(s.var, ty, lo, hi, s.where, s.body, s.span, inner, ctx)

    def _for_all(self, s: S.ForAll, scope: _Scope, ctx: _Ctx) -> ir.Stmt | None:
        ty = self._type(s.type)
        if ty is None:
            return None
        if not isinstance(ty, IntType):
            self.error("KHO301", s.type.span, f"`for {s.var.name}: T` ranges over integers, not {ty}")
            return None
        return self._bulk(s.var, ty, None, None, s.where, s.body, s.span, _Scope(parent=scope), ctx)

    def _bulk(self, ident: S.Ident, ty: IntType, lo: ir.Expr | None, hi: ir.Expr | None,
              where: S.Expr | None, body: S.Block, span: Span, inner: _Scope, ctx: _Ctx,
              domain: str = "int") -> ir.Stmt | None:
        if ctx.kind not in ("step", "fn"):
            self.error("KHO419", span, "loops over symbolic index sets are only allowed in steps")
            return None
        var = self._new_local(inner, ident, ty, False)
        if var is None:
            return None
        w = None
        sub = _Ctx(ctx.kind, ctx.fn, var, ctx.flags, ctx.calls)
        if where is not None:
            w = self.want_bool(self.expr(where, inner, sub), where.span, "a loop filter")
            if w is None:
                return None
        b = self.block(body, _Scope(parent=inner), sub)
        return ir.SForBulk(var, lo, hi, w, b, self._site(span), domain, span)

    # -- expressions
    def want_bool(self, e: ir.Expr | None, span: Span, what: str) -> ir.Expr | None:
        if e is None:
            return None
        if not isinstance(e.ty, BoolType):
            self.error("KHO306", span, f"{what} must be a bool, not {e.ty}",
                       "compare explicitly, e.g. `x != 0`" if isinstance(e.ty, IntType) else None)
            return None
        return e

    def convert(self, e: ir.Expr, to: Type, span: Span, what: str) -> ir.Expr:
        """Assignment conversion, as C does for initialisation, arguments and return."""
        if e.ty == to:
            return e
        if isinstance(to, IntType) and isinstance(e.ty, IntType):
            if isinstance(e, ir.Const) and not isinstance(e.value, bool):
                return ir.Const(to.wrap(e.value), to, e.span)
            return ir.Convert(e, to, e.span)
        if isinstance(to, IntType) and isinstance(e.ty, BoolType):
            return ir.Convert(e, to, e.span)
        self.error("KHO307", span, f"{what} must be {to}, not {e.ty}")
        return e

    def expr(self, e: S.Expr, scope: _Scope, ctx: _Ctx) -> ir.Expr | None:
        if isinstance(e, S.IntLit):
            t = literal_type(e.value, e.hex_like, e.unsigned, e.long)
            if t is None:
                self.error("KHO302", e.span, f"{e.text} does not fit in any C integer type (at most 64 bits)")
                return None
            return ir.Const(e.value, t, e.span)
        if isinstance(e, S.BoolLit):
            return ir.Const(e.value, BOOL, e.span)
        if isinstance(e, S.Name):
            return self._name(e, scope, ctx)
        if isinstance(e, S.Unary):
            return self._unary(e, scope, ctx)
        if isinstance(e, S.Binary):
            if e.op == "==" and isinstance(e.right, S.ListLit):
                return self._emits_eq(e, e.left, e.right, scope, ctx)
            left = self.expr(e.left, scope, ctx)
            right = self.expr(e.right, scope, ctx)
            if left is None or right is None:
                return None
            return self._binary(e.op, left, right, e.span, e.span)
        if isinstance(e, S.Cond):
            c = self.want_bool(self.expr(e.cond, scope, ctx), e.cond.span, "a condition")
            a = self.expr(e.then, scope, ctx)
            b = self.expr(e.else_, scope, ctx)
            if c is None or a is None or b is None:
                return None
            if isinstance(a.ty, IntType) and isinstance(b.ty, IntType):
                t = usual_conversion(a.ty, b.ty)
                return ir.Ite(c, self.convert(a, t, e.span, ""), self.convert(b, t, e.span, ""), t, e.span)
            if a.ty != b.ty:
                self.error("KHO308", e.span, f"the two arms of `?:` have types {a.ty} and {b.ty}")
                return None
            return ir.Ite(c, a, b, a.ty, e.span)
        if isinstance(e, S.Cast):
            inner = self.expr(e.operand, scope, ctx)
            if inner is None:
                return None
            to = SCALARS[e.type.name]
            if isinstance(to, BoolType):
                if not isinstance(inner.ty, IntType | BoolType):
                    self.error("KHO309", e.span, f"cannot cast {inner.ty} to bool")
                    return None
                if isinstance(inner.ty, BoolType):
                    return inner
                return ir.Binary("!=", inner, ir.Const(0, inner.ty), BOOL, e.span)
            if not isinstance(inner.ty, IntType | BoolType):
                self.error("KHO309", e.span, f"cannot cast {inner.ty} to {to}")
                return None
            assert isinstance(to, IntType)
            if isinstance(inner, ir.Const) and not isinstance(inner.value, bool):
                return ir.Const(to.wrap(inner.value), to, e.span)
            return ir.Convert(inner, to, e.span)
        if isinstance(e, S.Call):
            return self._call(e, scope, ctx)
        if isinstance(e, S.Field):
            obj = self.expr(e.obj, scope, ctx)
            if obj is None:
                return None
            if not isinstance(obj.ty, StructType):
                self.error("KHO305", e.name.span, f"{obj.ty} has no fields (`.{e.name.name}`)")
                return None
            ft = obj.ty.field_type(e.name.name)
            if ft is None:
                self.error("KHO305", e.name.span, f"{obj.ty} has no field `{e.name.name}`",
                           self._suggest(e.name.name, [n for n, _ in obj.ty.fields], "its fields are"))
                return None
            return ir.FieldGet(obj, e.name.name, ft, e.span)
        if isinstance(e, S.Index):
            if not isinstance(e.obj, S.Name) or e.obj.id not in self.state or scope.lookup(e.obj.id):
                self.error("KHO416", e.span, "only state maps can be indexed")
                return None
            sv = self.state[e.obj.id]
            if not isinstance(sv.ty, MapType):
                self.error("KHO416", e.span, f"`{e.obj.id}` is not a map")
                return None
            if ctx.kind == "pure":
                self.error("KHO410", e.span, f"`{e.obj.id}` is machine state; it cannot be read here",
                           "state is readable in steps, `always`/`after` claims and `before` assumptions")
                return None
            ctx.flags.add("reads")
            idx = self.expr(e.index, scope, ctx)
            if idx is None:
                return None
            if not isinstance(idx.ty, IntType):
                self.error("KHO301", e.index.span, f"a map index must be an integer, not {idx.ty}")
                return None
            return ir.MapRead(e.obj.id, self.convert(idx, sv.ty.key, e.index.span, "index"), sv.ty.value, e.span)
        if isinstance(e, S.StructLit):
            st = self.structs.get(e.type_name.name)
            if st is None:
                self.error("KHO220", e.type_name.span, f"unknown struct `{e.type_name.name}`",
                           self._suggest(e.type_name.name, self.structs))
                return None
            given: dict[str, ir.Expr] = {}
            for fi in e.fields:
                ft = st.field_type(fi.name.name)
                if ft is None:
                    self.error("KHO305", fi.name.span, f"{st} has no field `{fi.name.name}`",
                               self._suggest(fi.name.name, [n for n, _ in st.fields]))
                    continue
                if fi.name.name in given:
                    self.error("KHO202", fi.name.span, f"field `{fi.name.name}` is given twice")
                    continue
                v = self.expr(fi.value, scope, ctx)
                if v is not None:
                    given[fi.name.name] = self.convert(v, ft, fi.value.span, f"field {fi.name.name}")
            fields = tuple(given.get(n, _zero(t)) for n, t in st.fields)
            return ir.StructMake(st, fields, e.span)
        if isinstance(e, S.ListLit):
            self.error("KHO310", e.span, "a list is only allowed after `f(args) ==`, to compare what f emits")
            return None
        if isinstance(e, S.InInterval):
            item = self.expr(e.item, scope, ctx)
            lo = self.expr(e.lo, scope, ctx)
            hi = self.expr(e.hi, scope, ctx)
            if item is None or lo is None or hi is None:
                return None
            a = self._binary("<=", lo, item, e.span, e.span)
            b = self._binary("<", item, hi, e.span, e.span)
            if a is None or b is None:
                return None
            return ir.Binary("&&", a, b, BOOL, e.span)
        if isinstance(e, S.InCall):
            return self._in_emits(e, scope, ctx)
        if isinstance(e, S.Quant):
            return self._quant(e, list(e.binders), scope, ctx)
        if isinstance(e, S.FirstNode):
            first_scope = _Scope(parent=scope)
            var = self._new_local(first_scope, e.var, INT, False)
            c = self.want_bool(self.expr(e.cond, first_scope, ctx), e.cond.span, "the condition of first")
            d = self.expr(e.default, scope, ctx)
            if var is None or c is None or d is None:
                return None
            return ir.FirstNode(var, c, self.convert(d, INT, e.default.span, "the default node"),
                                self._site(e.span), INT, e.span)
        raise AssertionError(e)  # pragma: no cover

    def _name(self, e: S.Name, scope: _Scope, ctx: _Ctx) -> ir.Expr | None:
        loc = scope.lookup(e.id)
        if loc is not None:
            return ir.Local(loc.name, loc.uid, loc.ty, e.span)
        if e.id in self.consts or e.id in self.const_decls:
            c = self.consts.get(e.id)
            if c is None:
                c = self._const(e.id, getattr(self, "_const_stack", []))
            return c if c is not None else None
        if e.id in self.params:
            p = self.params[e.id]
            if p.arg_types is not None:
                self.error("KHO303", e.span, f"`{e.id}` is a param function: call it with arguments")
                return None
            return ir.ParamRef(e.id, p.ty, e.span)
        if e.id in self.state:
            sv = self.state[e.id]
            if ctx.kind == "pure":
                self.error("KHO410", e.span, f"`{e.id}` is machine state; it cannot be read here",
                           "state is readable in steps, `always`/`after` claims and `before` assumptions")
                return None
            ctx.flags.add("reads")
            if isinstance(sv.ty, MapType):
                self.error("KHO416", e.span, f"`{e.id}` is a map: read one entry, {e.id}[i]")
                return None
            return ir.StateRef(e.id, sv.ty, e.span)
        if e.id in LAYOUT_CONSTANTS:
            return ir.Builtin(e.id, (), LAYOUT_CONSTANTS[e.id], e.span)
        options = [*self._scope_names(scope), *self.consts, *self.const_decls, *self.params, *self.state]
        self.error("KHO210", e.span, f"unknown name `{e.id}`", self._suggest(e.id, options))
        return None

    def _unary(self, e: S.Unary, scope: _Scope, ctx: _Ctx) -> ir.Expr | None:
        v = self.expr(e.operand, scope, ctx)
        if v is None:
            return None
        if e.op == "!":
            b = self.want_bool(v, e.operand.span, "the operand of !")
            return None if b is None else ir.Unary("!", b, BOOL, e.span)
        if not isinstance(v.ty, IntType):
            self.error("KHO301", e.span, f"`{e.op}` needs an integer operand, not {v.ty}")
            return None
        t = promote(v.ty)
        v = self.convert(v, t, e.span, "")
        if isinstance(v, ir.Const) and not isinstance(v.value, bool):
            return ir.Const(carith.unary(e.op, v.value, t), t, e.span)
        return ir.Unary(e.op, v, t, e.span)

    def _binary(self, op: str, left: ir.Expr, right: ir.Expr, span: Span, rspan: Span) -> ir.Expr | None:
        if op in ("&&", "||", "->", "<->"):
            lb = self.want_bool(left, span, f"the left operand of {op}")
            rb = self.want_bool(right, span, f"the right operand of {op}")
            if lb is None or rb is None:
                return None
            return ir.Binary(op, lb, rb, BOOL, span)
        if op in ("==", "!="):
            if isinstance(left.ty, BoolType) and isinstance(right.ty, BoolType):
                return ir.Binary(op, left, right, BOOL, span)
            if isinstance(left.ty, StructType) and left.ty == right.ty:
                return ir.Binary(op, left, right, BOOL, span)
        if not isinstance(left.ty, IntType) or not isinstance(right.ty, IntType):
            self.error("KHO301", span, f"`{op}` needs integer operands, not {left.ty} and {right.ty}",
                       "use && and || for bools" if op in ("&", "|") else None)
            return None
        if op in ("<<", ">>"):
            lt, rt = promote(left.ty), promote(right.ty)
            lc, rc = self.convert(left, lt, span, ""), self.convert(right, rt, span, "")
            if isinstance(lc, ir.Const) and isinstance(rc, ir.Const):
                return ir.Const(carith.binary(op, int(lc.value), int(rc.value), lt, rt), lt, span)
            return ir.Binary(op, lc, rc, lt, span)
        t = usual_conversion(left.ty, right.ty)
        if op in ("<", "<=", ">", ">=") and left.ty.signed != right.ty.signed and t.signed is False:
            signed_side: ir.Expr = left if left.ty.signed else right
            while isinstance(signed_side, ir.Convert):
                signed_side = signed_side.operand
            if not isinstance(signed_side, ir.Const | ir.ParamRef):
                self.warn("KHO311", span,
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

    def _call(self, e: S.Call, scope: _Scope, ctx: _Ctx, statement: bool = False) -> ir.Expr | None:
        name = e.func.name
        if name == "requires_hold" and len(e.args) == 1 and isinstance(e.args[0], S.Call):
            inner = self._call(e.args[0], scope, ctx, statement=True)
            args: list[ir.Expr | None] = [inner]
        else:
            args = [self.expr(a, scope, ctx) for a in e.args]
        if any(a is None for a in args):
            return None
        av = [a for a in args if a is not None]
        if name in self.fn_sigs:
            sig = self.fn_sigs[name]
            if len(av) != len(sig.params):
                self.error("KHO303", e.span, f"`{name}` takes {len(sig.params)} argument(s), not {len(av)}",
                           related=[Related(sig.decl.span, "declared here")])
                return None
            conv = tuple(self.convert(a, t, sa.span, f"argument `{pn}` of {name}")
                         for a, (pn, t), sa in zip(av, sig.params, e.args, strict=True))
            ctx.calls.append((name, e.span))
            if ctx.kind not in ("fn",):
                pass
            if sig.emits is not None and sig.ret is None and not statement:
                return ir.CallFn(name, conv, SeqType(sig.emits), e.span)
            if sig.ret is None and not statement:
                self.error("KHO414", e.span, f"`{name}` has no result; call it as a statement")
                return None
            return ir.CallFn(name, conv, sig.ret or BOOL, e.span)
        if name in self.params:
            p = self.params[name]
            if p.arg_types is None:
                self.error("KHO303", e.span, f"`{name}` is a constant param, not a function")
                return None
            if len(av) != len(p.arg_types):
                self.error("KHO303", e.span, f"`{name}` takes {len(p.arg_types)} argument(s), not {len(av)}")
                return None
            conv = tuple(self.convert(a, t, sa.span, f"argument of {name}")
                         for a, t, sa in zip(av, p.arg_types, e.args, strict=True))
            return ir.ParamApp(name, conv, p.ty, e.span)
        if name == "requires_hold":
            if len(av) != 1 or not isinstance(av[0], ir.CallFn):
                self.error("KHO303", e.span, "requires_hold(f(args)) takes one call of a function")
                return None
            if ctx.kind != "pure":
                self.error("KHO412", e.span, "requires_hold is only allowed in `check` claims without state")
                return None
            return ir.Builtin(name, (av[0],), BOOL, e.span)
        if name in ALL_BUILTINS:
            return self._builtin(e, name, av)
        self.error("KHO210", e.func.span, f"unknown function `{name}`",
                   self._suggest(name, [*self.fn_sigs, *self.params, *ALL_BUILTINS]))
        return None

    def _builtin(self, e: S.Call, name: str, av: list[ir.Expr]) -> ir.Expr | None:
        if name in LAYOUT_BUILTINS or name in SIMPLE_BUILTINS:
            argt, ret = LAYOUT_BUILTINS.get(name) or SIMPLE_BUILTINS[name]
            if len(av) != len(argt):
                self.error("KHO303", e.span, f"`{name}` takes {len(argt)} argument(s), not {len(av)}")
                return None
            conv = []
            for a, t, sa in zip(av, argt, e.args, strict=True):
                if not isinstance(a.ty, IntType):
                    self.error("KHO301", sa.span, f"`{name}` takes an integer, not {a.ty}")
                    return None
                conv.append(self.convert(a, t, sa.span, f"argument of {name}"))
            if name == "BIT":
                return ir.Binary("<<", ir.Const(1, ULONG), conv[0], ULONG, e.span)
            return ir.Builtin(name, tuple(conv), ret, e.span)
        if name in SAME_TYPE_BUILTINS:
            n = SAME_TYPE_BUILTINS[name]
            if len(av) != n:
                self.error("KHO303", e.span, f"`{name}` takes {n} arguments, not {len(av)}")
                return None
            if not all(isinstance(a.ty, IntType) for a in av):
                self.error("KHO301", e.span, f"`{name}` takes integers")
                return None
            nonconst = [a.ty for a in av if not isinstance(a, ir.Const) and isinstance(a.ty, IntType)]
            if len({(t.signed) for t in nonconst}) > 1:
                types = " and ".join(str(t) for t in nonconst)
                self.error("KHO312", e.span, f"`{name}` of {types}: the kernel's {name}() rejects mixed signedness",
                           "cast one side so both have the same type")
                return None
            target_types = nonconst or [a.ty for a in av if isinstance(a.ty, IntType)]
            t = target_types[0]
            for x in target_types[1:]:
                t = usual_conversion(t, x)
            assert isinstance(t, IntType)
            t = promote(t)
            for a, sa in zip(av, e.args, strict=True):
                if isinstance(a, ir.Const) and isinstance(t, IntType) and not t.fits(int(a.value)):
                    self.error("KHO302", sa.span, f"{a.value} does not fit in {t}")
                    return None
            return ir.Builtin(name, tuple(self.convert(a, t, e.span, "") for a in av), t, e.span)
        if name in ALIGN_BUILTINS:
            if len(av) != 2 or not all(isinstance(a.ty, IntType) for a in av):
                self.error("KHO303", e.span, f"`{name}(x, a)` takes two integers")
                return None
            xt = av[0].ty
            assert isinstance(xt, IntType)
            a2 = self.convert(av[1], xt, e.args[1].span, "alignment")  # (typeof(x))(a)
            ret = ALIGN_BUILTINS[name] or xt
            return ir.Builtin(name, (av[0], a2), ret, e.span)
        raise AssertionError(name)  # pragma: no cover

    def _in_emits(self, e: S.InCall, scope: _Scope, ctx: _Ctx) -> ir.Expr | None:
        item = self.expr(e.item, scope, ctx)
        call = self._call(e.call, scope, ctx)
        if item is None or call is None:
            return None
        if not isinstance(call, ir.CallFn) or not isinstance(call.ty, SeqType):
            self.error("KHO313", e.call.span, f"`{e.call.func.name}` does not emit values",
                       "declare it `fn f(...) emits T { ... emit v ... }`")
            return None
        if ctx.kind != "pure":
            self.error("KHO412", e.span, "`in f(args)` is only allowed in `check` claims without state")
            return None
        item = self.convert(item, call.ty.elem, e.item.span, "the item")
        return ir.InEmits(item, call, self._site(e.span), BOOL, e.span)

    def _emits_eq(self, e: S.Binary, left: S.Expr, right: S.ListLit, scope: _Scope, ctx: _Ctx) -> ir.Expr | None:
        call = self.expr(left, scope, ctx) if isinstance(left, S.Call) else None
        if not isinstance(call, ir.CallFn) or not isinstance(call.ty, SeqType):
            self.error("KHO313", left.span, "a list compares with what a function emits: f(args) == [a, b]")
            return None
        items = []
        for it in right.items:
            v = self.expr(it, scope, ctx)
            if v is None:
                return None
            items.append(self.convert(v, call.ty.elem, it.span, "list item"))
        return ir.EmitsEq(call, tuple(items), self._site(e.span), BOOL, e.span)

    def _quant(self, e: S.Quant, binders: list[S.Binder], scope: _Scope, ctx: _Ctx) -> ir.Expr | None:
        b = binders[0]
        inner = _Scope(parent=scope)
        domain: ir.Domain
        if isinstance(b, S.TypedBinder):
            ty = self._type(b.type)
            if ty is None:
                return None
            if isinstance(ty, MapType | SeqType):
                self.error("KHO314", b.span, f"cannot quantify over {ty}")
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
                self.error("KHO301", b.span, "interval bounds must be integers")
                return None
            ty = usual_conversion(lo.ty, hi.ty)
            domain = ir.Domain("interval", self.convert(lo, ty, b.span, ""), self.convert(hi, ty, b.span, ""))
        var = self._new_local(inner, b.name, ty, False)
        if var is None:
            return None
        if len(binders) > 1:
            body = self._quant(e, binders[1:], inner, ctx)
        else:
            body = self.want_bool(self.expr(e.body, inner, ctx), e.body.span, "a quantifier's body")
        if body is None:
            return None
        return ir.Quant(e.kind, var, domain, body, self._site(b.span), BOOL, e.span)


def _zero(t: Type) -> ir.Expr:
    if isinstance(t, BoolType):
        return ir.Const(False, BOOL)
    if isinstance(t, IntType):
        return ir.Const(0, t)
    assert isinstance(t, StructType)
    return ir.StructMake(t, tuple(_zero(ft) for _, ft in t.fields))


def _always_returns(body: tuple[ir.Stmt, ...]) -> bool:
    if not body:
        return False
    last = body[-1]
    if isinstance(last, ir.SReturn):
        return True
    if isinstance(last, ir.SIf):
        return _always_returns(last.then) and _always_returns(last.else_)
    return False


def fold(e: ir.Expr) -> int | bool | None:
    """The value of a constant expression, or None if it depends on anything symbolic."""
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.Convert):
        v = fold(e.operand)
        if v is None or not isinstance(e.ty, IntType):
            return None
        return carith.convert(v, e.ty)
    if isinstance(e, ir.Unary):
        v = fold(e.operand)
        if v is None:
            return None
        if e.op == "!":
            return not v
        assert isinstance(e.ty, IntType)
        return carith.unary(e.op, int(v), e.ty)
    if isinstance(e, ir.Binary):
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
    return None


def check_program(root: Path, sources: SourceCache, display: str | None = None,
                  trees: tuple[Path, ...] = (), parsed: ParseCache | None = None
                  ) -> tuple[ir.Program | None, list[Diagnostic]]:
    """Load, parse and type-check ``root`` with its imports and the prelude."""
    modules, diags = load_modules(root, sources, display, trees, parsed)
    if any(d.is_error for d in diags):
        return None, diags
    checker = Checker(modules, display or str(root))
    try:
        program = checker.run()
    except RecursionError:
        diags.append(Diagnostic("KHO105", Span.point(display or str(root)),
                                "the spec nests too deeply to check", "split long expressions with let or fn"))
        return None, diags
    diags.extend(checker.diags)
    if any(d.is_error for d in diags):
        return None, diags
    return program, diags


Diag = Callable[[Diagnostic], None]
