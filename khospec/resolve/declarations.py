"""Declarations: the first pass over a program, which names everything before any body
is read.

Structs, enum constants, params, constants, state variables, step names and function
signatures are entered in the shared symbol table here, in the order the modules
declare them, so that a body may use a name declared after it. State variables'
initial values are typed once every name is known, so that they too may name what is
declared after them. A constant is evaluated when first used, and every constant once
all names are known; bodies wait for the second pass (functions.py, checks.py).
"""

from __future__ import annotations

from khospec import ir
from khospec import syntax as S
from khospec.diagnostics import Related
from khospec.resolve.expressions import Expressions
from khospec.resolve.symbols import Ctx, FnSig, Scope, Symbols
from khospec.types import INT, IntType, MapType, StructType, Type


class Declarations:
    """Enters the declarations of all modules into the shared symbol table."""

    def __init__(self, sym: Symbols, exprs: Expressions) -> None:
        self.sym = sym
        self.exprs = exprs

    def declare(self, decls: list[S.Decl]) -> None:
        """Pass 1: the names, types and signatures of ``decls`` (every module's, in
        order), then the state's initial values, then the constants' values, then the
        signatures strategies give."""
        # structs first, all of them: a field, a param or a signature may name a struct
        # declared after it
        for d in decls:
            if isinstance(d, S.StructDecl) and self.sym.claim(d.name.name, d.name.span, "struct"):
                self.sym.struct_decls[d.name.name] = d
        for d in self.sym.struct_decls.values():
            self._struct(d, [])
        # the state variables with an initial value, and the type it converts to
        inits: list[tuple[S.StateVar, Type]] = []
        for d in decls:
            if isinstance(d, S.EnumDecl):
                # as in C, enumerators are int constants numbered from 0 (the grammar
                # gives no `= value`)
                for i, m in enumerate(d.members):
                    if self.sym.claim(m.name, m.span, "enum constant"):
                        self.sym.consts[m.name] = ir.Const(i, INT, m.span)
            elif isinstance(d, S.ParamDecl):
                self._param(d)
            elif isinstance(d, S.ConstDecl) and self.sym.claim(d.name.name, d.name.span, "constant"):
                self.sym.const_decls[d.name.name] = d
            elif isinstance(d, S.StateDecl):
                inits.extend(self._state_decl(d))
            elif isinstance(d, S.StepDecl):
                # steps have their own namespace: a step may share its kernel function's name
                if d.name.name in self.sym.step_spans:
                    self.sym.error("KHO202", d.name.span, f"step `{d.name.name}` is already declared",
                                   related=[Related(self.sym.step_spans[d.name.name], "first declared here")])
                else:
                    self.sym.step_spans[d.name.name] = d.name.span
                    self.sym.step_names.add(d.name.name)
            elif isinstance(d, S.FnDecl):
                sig = self._fn_sig(d, None)
                if self.sym.claim(d.name.name, d.name.span, "function") and sig is not None:
                    self.sym.fn_sigs[d.name.name] = sig
        for var, target in inits:
            self._initial_value(var, target)
        # every constant, used or not, so that each one's errors are reported (those an
        # initial value above used are evaluated already)
        for name in list(self.sym.const_decls):
            self.exprs.constant(name, [])
        # a strategy's functions claim no name: they redefine a base function, which the
        # second pass looks up and compares with (functions.py)
        for d in decls:
            if isinstance(d, S.StrategyDecl):
                for f in d.fns:
                    sig = self._fn_sig(f, d.name.name)
                    if sig is not None:
                        self.sym.strategy_fn_sigs.setdefault((d.name.name, f.name.name), []).append(sig)

    def _struct(self, d: S.StructDecl, stack: list[str]) -> StructType | None:
        """The struct's type, built once; ``stack`` holds the structs whose fields led
        here. A struct holds its fields by value, so one that contains itself, directly
        or through others, would be infinite, as in C (KHO222)."""
        name = d.name.name
        if name in self.sym.structs and self.sym.structs[name] is not None:
            return self.sym.structs[name]
        if name in stack:
            self.sym.error("KHO222", d.name.span, f"struct `{name}` contains itself")
            return None
        fields: list[tuple[str, Type]] = []
        seen: set[str] = set()
        for f in d.fields:
            if f.name.name in seen:
                self.sym.error("KHO202", f.name.span, f"field `{f.name.name}` is declared twice")
                continue
            seen.add(f.name.name)
            ft: Type | None
            # a StructType holds its fields' types, so a struct field's type is built first
            if isinstance(f.type, S.NamedTypeRef) and f.type.name in self.sym.struct_decls:
                ft = self._struct(self.sym.struct_decls[f.type.name], [*stack, name])
            else:
                ft = self.sym.resolve_type(f.type)
            if ft is not None:
                fields.append((f.name.name, ft))
        st = StructType(name, tuple(fields))
        self.sym.structs[name] = st
        return st

    def _param(self, d: S.ParamDecl) -> None:
        ty = self.sym.resolve_type(d.type)
        args: tuple[Type, ...] | None = None
        if d.params is not None:
            ats = [self.sym.resolve_type(p.type) for p in d.params]
            if any(a is None for a in ats):
                return
            args = tuple(a for a in ats if a is not None)
            # layouts bind a param function at constant integer arguments (a node id)
            for p, a in zip(d.params, args, strict=True):
                if not isinstance(a, IntType):
                    self.sym.error("KHO223", p.span, f"param function arguments must be integers, not {a}")
        if ty is None:
            return
        if self.sym.claim(d.name.name, d.name.span, "param"):
            self.sym.params[d.name.name] = ir.ParamDef(d.name.name, args, ty, d.span)

    def _state_decl(self, d: S.StateDecl) -> list[tuple[S.StateVar, Type]]:
        """Enter the variables, without their initial values: those that have one, with
        the type it converts to (a map's initial value is every entry's)."""
        inits: list[tuple[S.StateVar, Type]] = []
        for v in d.vars:
            ty = self.sym.resolve_type(v.type, allow_map=True)
            if ty is None or not self.sym.claim(v.name.name, v.name.span, "state variable"):
                continue
            # without one, the engine starts from arbitrary contents (garbage memory)
            self.sym.state[v.name.name] = ir.StateVarDef(v.name.name, ty, None, v.span)
            if v.init is not None:
                inits.append((v, ty.value if isinstance(ty, MapType) else ty))
        return inits

    def _initial_value(self, v: S.StateVar, target: Type) -> None:
        """Type ``v``'s initial value. It is evaluated before the machine exists, so it
        reads no state and calls no function that reads or changes it (the calls are
        checked once every body is known, functions.py)."""
        assert v.init is not None
        ctx = Ctx("pure")
        e = self.exprs.expr(v.init, Scope(), ctx)
        for callee, span in ctx.calls:
            self.sym.pending_calls.append((callee, ctx.kind, span))
        if e is not None:
            sv = self.sym.state[v.name.name]
            init = self.exprs.convert(e, target, v.init.span, "initial value")
            self.sym.state[v.name.name] = ir.StateVarDef(sv.name, sv.ty, init, sv.span)

    def _fn_sig(self, d: S.FnDecl, strategy: str | None) -> FnSig | None:
        """The signature, or None when one of its types does not resolve (reported):
        the name is still claimed, but the body is not typed."""
        params: list[tuple[str, Type]] = []
        ok = True
        seen: set[str] = set()
        for p in d.params:
            t = self.sym.resolve_type(p.type)
            if t is None:
                ok = False
                continue
            if p.name.name in seen:
                self.sym.error("KHO202", p.name.span, f"parameter `{p.name.name}` is declared twice")
            seen.add(p.name.name)
            params.append((p.name.name, t))
        ret = self.sym.resolve_type(d.ret) if d.ret is not None else None
        emits = self.sym.resolve_type(d.emits) if d.emits is not None else None
        if (d.ret is not None and ret is None) or (d.emits is not None and emits is None):
            ok = False
        # a block without a result type is a procedure (requires, emits, state writes);
        # an expression body is its result, whose type must be written
        if isinstance(d.body, S.Block) is False and d.ret is None:
            self.sym.error("KHO401", d.name.span, f"function `{d.name.name}` = expression needs a result type",
                           f"write fn {d.name.name}(...) -> T = ...")
            ok = False
        if not ok:
            return None
        return FnSig(d.name.name, tuple(params), ret, emits, d, strategy)
