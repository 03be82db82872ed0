"""The resolve stage's driver: the two passes over a program, section by section.

``Checker`` owns one ``Symbols`` and one checker per section, all sharing it. Pass 1
(declarations.py) names everything; pass 2 types the bodies in the order the modules
declare them, so that the diagnostics come in source order, then checks what needs
every body (strategy inheritance, the flags of calls, profile sets, checks).
"""

from __future__ import annotations

from khospec import ir
from khospec import syntax as S
from khospec.diagnostics import Diagnostic, Related
from khospec.resolve.checks import Checks
from khospec.resolve.declarations import Declarations
from khospec.resolve.expressions import Expressions
from khospec.resolve.functions import Functions
from khospec.resolve.statements import Statements
from khospec.resolve.symbols import Symbols


class Checker:
    """Type-checks parsed modules (the prelude first, the root's imports, the root)."""

    def __init__(self, modules: list[S.Module], root: str) -> None:
        self.sym = Symbols(modules, root)
        self.exprs = Expressions(self.sym)
        self.stmts = Statements(self.sym, self.exprs)
        self.declarations = Declarations(self.sym, self.exprs)
        self.functions = Functions(self.sym, self.exprs, self.stmts)
        self.checks = Checks(self.sym, self.exprs)

    @property
    def diags(self) -> list[Diagnostic]:
        """Every diagnostic found so far, in the order found."""
        return self.sym.diags

    def run(self) -> ir.Program:
        decls = [d for m in self.sym.modules for d in m.decls]
        # pass 1: every name and signature, so that a body may use what is declared after it
        self.declarations.declare(decls)
        # pass 2: bodies; steps before strategies, which may only redefine declared steps
        fns: dict[str, ir.FnDef] = {}
        for name, sig in self.sym.fn_sigs.items():
            fns[name] = self.functions.fn_body(sig)
        strategies: dict[str, ir.StrategyDef] = {}
        steps: dict[str, ir.StepDef] = {}
        axioms: list[ir.AssumeDef] = []
        assumes: dict[str, ir.AssumeDef] = {}
        profiles: dict[str, ir.ProfileDef] = {}
        profile_sets: dict[str, S.ProfileSetDecl] = {}
        layouts: dict[str, ir.LayoutDef] = {}
        check_decls: list[S.CheckDecl] = []
        for d in decls:
            # a step declared twice was reported in pass 1; the first declaration stands
            if isinstance(d, S.StepDecl) and d.name.name not in steps:
                steps[d.name.name] = self.functions.step(d, None)
        for d in decls:
            if isinstance(d, S.StrategyDecl):
                st = self.functions.strategy(d, fns, steps)
                if st is not None and self.sym.claim(d.name.name, d.name.span, "strategy"):
                    strategies[d.name.name] = st
            elif isinstance(d, S.AssumeDecl):
                a = self.checks.assume(d)
                if a is not None and self.sym.claim(d.name.name, d.name.span, d.kind):
                    if a.kind == "axiom":
                        axioms.append(a)
                    else:
                        assumes[a.name] = a
            elif isinstance(d, S.ProfileDecl):
                # profiles have a namespace of their own: a profile's name may hold `-`
                # (arm64-4k), which no other name can
                p = self.checks.profile(d)
                if p is not None:
                    if p.name in profiles:
                        self.sym.error("KHO202", d.name.span, f"profile `{p.name}` is already declared",
                                       related=[Related(profiles[p.name].span, "first declared here")])
                    else:
                        profiles[p.name] = p
            elif isinstance(d, S.ProfileSetDecl):
                # its members are resolved once every profile is known: a set may name a
                # profile declared after it
                if d.name.name in profile_sets:
                    self.sym.error("KHO202", d.name.span, f"profile set `{d.name.name}` is already declared",
                                   related=[Related(profile_sets[d.name.name].span, "first declared here")])
                else:
                    profile_sets[d.name.name] = d
            elif isinstance(d, S.LayoutDecl):
                lay = self.checks.layout(d)
                if lay is not None and self.sym.claim(d.name.name, d.name.span, "layout"):
                    layouts[lay.name] = lay
            elif isinstance(d, S.CheckDecl):
                # checks come last: they name what is declared anywhere, and a
                # `requirement` claim needs every body's requires
                check_decls.append(d)
        self.functions.check_strategy_extends(strategies)
        # the flags need every definition of every function, the strategies' included
        self.functions.compute_fn_flags(fns, strategies)
        # the calls of steps and assumptions now, so that their diagnostics come before
        # those of the checks; the claims' calls once the checks are resolved
        checked = self.functions.validate_calls()
        # before the checks: a `for` clause expands the sets it names
        self.checks.resolve_profile_sets(profile_sets, profiles)
        checks = self.checks.all_checks(check_decls, strategies, assumes, profiles, layouts, steps)
        self.functions.validate_calls(checked)
        return ir.Program(
            root=self.sym.root,
            params=self.sym.params,
            structs=self.sym.structs,
            fns=fns,
            strategies=strategies,
            axioms=axioms,
            assumes=assumes,
            state=list(self.sym.state.values()),
            steps=steps,
            profiles=profiles,
            layouts=layouts,
            checks=checks,
            requirement_names=self.sym.requirement_names,
            site_spans=self.sym.site_spans,
            modules=self.sym.modules,
            profile_sets=dict(self.sym.profile_sets),
        )
