"""Assumptions, profiles, layouts and checks: what a check names, and its claim.

The values a profile or a layout gives must be constants (folded here, reported with
KHO320 otherwise); a layout's ranges must be disjoint, and mirrored memory splits them
as MEMBLOCK_MIRROR does. A check's clauses (under, for, assuming, on, depth, expect)
name strategies, profiles or profile sets, assumptions and layouts declared anywhere;
only the checks of the root file are the program's.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from types import MappingProxyType
from typing import assert_never

from khospec import ir
from khospec import syntax as S
from khospec.diagnostics import Related, Span
from khospec.parse import int_value
from khospec.resolve.expressions import Expressions, fold
from khospec.resolve.symbols import Ctx, Scope, Symbols
from khospec.types import BoolType, IntType, Type

# what `expect` may name, in the enum's order (that of the hint listing them)
VERDICT_NAMES = tuple(v.value for v in ir.Verdict)

# a zone's index in the prelude's enum zone_type, by the name the kernel prints
# (mm/page_alloc.c's zone_names, as /proc/zoneinfo and the boot log show them) or in
# capitals
ZONE_NAMES: Mapping[str, int] = MappingProxyType({
    "DMA": 0,
    "DMA32": 1,
    "Normal": 2,
    "NORMAL": 2,
    "Movable": 3,
    "MOVABLE": 3,
    "Device": 4,
    "DEVICE": 4,
})


class Checks:
    """Types assumptions, profiles, layouts and checks against the shared symbol table."""

    def __init__(self, sym: Symbols, exprs: Expressions) -> None:
        self.sym = sym
        self.exprs = exprs

    def assume(self, d: S.AssumeDecl) -> ir.AssumeDef | None:
        # `before STEP` is about the state in which STEP is taken, so it may read state;
        # any other assumption holds of the layout and profile alone
        if d.before is not None:
            if d.before.name not in self.sym.step_names:
                self.sym.error("KHO210", d.before.span, f"unknown step `{d.before.name}`",
                               self.sym.suggest(d.before.name, self.sym.step_names))
                return None
            ctx = Ctx("trace")
        else:
            ctx = Ctx("pure")
        e = self.exprs.expr(d.formula, Scope(), ctx)
        f = self.exprs.want_bool(e, d.formula.span, f"{d.kind} `{d.name.name}`")
        for callee, span in ctx.calls:
            self.sym.pending_calls.append((callee, ctx.kind, span))
        if f is None:
            return None
        return ir.AssumeDef(d.kind, d.name.name, d.before.name if d.before else None, f,
                            d.before is not None, d.span)

    def const_value(self, e: S.Expr, what: str) -> int | bool | None:
        """The value of ``e``, which must fold: a profile or a layout gives numbers,
        never a formula over other params."""
        ir_e = self.exprs.expr(e, Scope(), Ctx("pure"))
        if ir_e is None:
            return None
        v = fold(ir_e)
        if v is None:
            self.sym.error("KHO320", e.span, f"{what} must be a constant",
                           "use numbers, enum constants and constants defined with numbers")
        return v

    def profile(self, d: S.ProfileDecl) -> ir.ProfileDef | None:
        """The profile without the bindings that have an error (reported); it is kept,
        so that a check naming it reports no unknown profile on top."""
        out: list[tuple[str, int | bool]] = []
        seen: dict[str, Span] = {}
        for b in d.bindings:
            p = self.sym.params.get(b.name.name)
            if p is None:
                self.sym.error("KHO210", b.name.span, f"unknown param `{b.name.name}`",
                               self.sym.suggest(b.name.name, self.sym.params) or "declare it with `param NAME: TYPE`")
                continue
            if p.arg_types is not None:
                self.sym.error("KHO225", b.name.span, f"`{b.name.name}` is a param function; profiles bind constants")
                continue
            if b.name.name in seen:
                self.sym.error("KHO202", b.name.span, f"`{b.name.name}` is bound twice in profile `{d.name.name}`",
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
        """``v`` as a value of the param's type. Unlike an assignment, nothing
        converts: a value that does not fit is an error, never wrapped into another."""
        if isinstance(ty, BoolType):
            if not isinstance(v, bool):
                self.sym.error("KHO301", span, f"{what} is a bool, not an integer")
                return None
            return v
        if not isinstance(ty, IntType) or isinstance(v, bool):
            self.sym.error("KHO301", span, f"{what} must be of type {ty}")
            return None
        if not ty.fits(v):
            self.sym.error("KHO302", span, f"{v} does not fit in {what}'s type {ty}")
            return None
        return v

    def layout(self, d: S.LayoutDecl) -> ir.LayoutDef | None:
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
            # end exclusive, so a range may end at 2^64
            if not 0 <= lo < hi <= 1 << 64:
                self.sym.error("KHO230", iv.span,
                               f"range [{lo:#x}, {hi:#x}) is empty or outside the 64-bit physical space",
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
                    self.sym.error("KHO210", item.zone.span, f"unknown zone `{item.zone.name}`",
                                   "zones are DMA, DMA32, Normal, Movable, Device")
                    continue
                # `empty`: start == end, as LayoutDef.zones records it
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
                # the kernelcore=mirror boot option, not a param: the layout answers it
                if name == "mirrored_kernelcore":
                    v = self.const_value(item.value, "mirrored_kernelcore")
                    if isinstance(v, bool):
                        mirrored_kc = v
                    elif v is not None:
                        self.sym.error("KHO301", item.value.span, "mirrored_kernelcore is true or false")
                    continue
                p = self.sym.params.get(name)
                if p is None:
                    self.sym.error("KHO210", item.name.span, f"unknown param `{name}`",
                                   self.sym.suggest(name, self.sym.params))
                    continue
                nargs = len(p.arg_types or ())
                if nargs != len(item.args):
                    self.sym.error("KHO303", item.span, f"`{name}` takes {nargs} argument(s), not {len(item.args)}")
                    continue
                args = [self.const_value(a, "a param argument") for a in item.args]
                v = self.const_value(item.value, f"the value of {name}")
                if v is None or any(not isinstance(a, int) or isinstance(a, bool) for a in args):
                    continue
                fv = self._fit(v, p.ty, item.value.span, name)
                if fv is not None:
                    bindings.append((name, tuple(int(a) for a in args if a is not None), fv))
        # sorted by start, an overlap is between neighbours; one report drops the layout
        ranges.sort(key=lambda r: r.start)
        for a, b in itertools.pairwise(ranges):
            if b.start < a.end:
                self.sym.error("KHO231", d.span,
                               f"ranges [{a.start:#x}, {a.end:#x}) of node {a.nid} and "
                               f"[{b.start:#x}, {b.end:#x}) of node {b.nid} overlap",
                               "memblock ranges are disjoint")
                return None
        # MEMBLOCK_MIRROR splits ranges at mirror boundaries.
        # (memblock_mark_mirror() isolates the mirror range: memblock_isolate_range())
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

    def check(self, d: S.CheckDecl, strategies: dict[str, ir.StrategyDef],
              assumes: dict[str, ir.AssumeDef], profiles: dict[str, ir.ProfileDef],
              layouts: dict[str, ir.LayoutDef], steps: dict[str, ir.StepDef]) -> ir.CheckDef | None:
        clauses: dict[S.ClauseKind, S.CheckClause] = {}
        # everything is checked before None is returned for an error, so that one check
        # reports all of its errors; a clause given twice counts by its last occurrence
        ok = True
        for cl in d.clauses:
            if cl.kind in clauses:
                self.sym.error("KHO420", cl.span, f"`{cl.kind}` is given twice for check `{d.name.name}`",
                               f"list every value in one `{cl.kind}` clause, separated by commas")
                ok = False
            clauses[cl.kind] = cl
        claim = self._claim_def(d.claim, steps)
        if claim is None:
            ok = False
        # None is the base definitions, named `base` in an `under` clause
        strat: list[str | None] = [None]
        if "under" in clauses:
            strat = []
            for v in clauses["under"].values:
                if v.name == "base":
                    strat.append(None)
                elif v.name not in strategies:
                    self.sym.error("KHO210", v.span, f"unknown strategy `{v.name}`",
                                   self.sym.suggest(v.name, strategies))
                    ok = False
                else:
                    strat.append(v.name)
        # by default every profile but `any`, which leaves every param symbolic: a check
        # asks for it by name
        profs = [p for p in profiles if p != "any"]
        if "for" in clauses:
            profs = []
            for v in clauses["for"].values:
                # a set expands to those of its members not listed already
                if v.name in self.sym.profile_sets:
                    profs.extend(p for p in self.sym.profile_sets[v.name] if p not in profs)
                elif v.name not in profiles:
                    self.sym.error("KHO210", v.span, f"unknown profile `{v.name}`", self.sym.suggest(v.name, profiles))
                    ok = False
                else:
                    profs.append(v.name)
        assuming: list[str] = []
        for v in clauses["assuming"].values if "assuming" in clauses else ():
            if v.name not in assumes:
                hint = self.sym.suggest(v.name, assumes)
                if any(a.name.name == v.name for a in self._all_axioms()):
                    hint = f"`{v.name}` is an axiom: it is always in force"
                self.sym.error("KHO210", v.span, f"unknown assumption `{v.name}`", hint)
                ok = False
            else:
                assuming.append(v.name)
        layout = None
        if "on" in clauses:
            v = clauses["on"].values[0]
            if v.name not in layouts:
                self.sym.error("KHO210", v.span, f"unknown layout `{v.name}`", self.sym.suggest(v.name, layouts))
                ok = False
            layout = v.name
        depth = None
        if "depth" in clauses:
            v = clauses["depth"].values[0]
            # the INT token's text, read as every number is (010 is octal 8, `_`
            # separates digits; suffixes are ignored, as for a node id)
            try:
                depth, _, _, _ = int_value(v.name, None)
            except ValueError as exc:
                self.sym.error("KHO113", v.span, str(exc))
                ok = False
            else:
                if not 0 <= depth <= 64:
                    self.sym.error("KHO421", v.span, "depth is a number of steps between 0 and 64")
                    ok = False
        expect: ir.Verdict | None = None
        if "expect" in clauses:
            v = clauses["expect"].values[0]
            if v.name in VERDICT_NAMES:
                expect = ir.Verdict(v.name)
            else:
                self.sym.error("KHO422", v.span, f"unknown verdict `{v.name}`",
                               self.sym.suggest(v.name, VERDICT_NAMES) or "verdicts: " + ", ".join(VERDICT_NAMES))
                ok = False
        if not ok or claim is None:
            return None
        return ir.CheckDef(d.name.name, d.span.file, claim, tuple(strat), tuple(profs), tuple(assuming),
                           layout, depth, expect, d.span)

    def _all_axioms(self) -> list[S.AssumeDecl]:
        """Every axiom declared, whether or not it typed: a hint needs only the name."""
        return [d for m in self.sym.modules for d in m.decls if isinstance(d, S.AssumeDecl) and d.kind == "axiom"]

    def _claim_def(self, c: S.Claim, steps: dict[str, ir.StepDef]) -> ir.ClaimDef | None:
        if isinstance(c, S.ClaimRequirement):
            # every body is typed by now, so requirement_names is complete
            if c.name.name not in self.sym.requirement_names:
                self.sym.error("KHO210", c.name.span, f"no `require {c.name.name}: ...` in any step or function",
                               self.sym.suggest(c.name.name, self.sym.requirement_names))
                return None
            return ir.ClaimDef("requirement", None, requirement=c.name.name, span=c.span)
        kind: ir.ClaimKind
        match c:
            case S.ClaimHolds():
                kind = "holds"
            case S.ClaimAlways():
                kind = "always"
            case S.ClaimAfter():
                kind = "after"
            case _:
                assert_never(c)
        # a `holds` claim is about the layout and profile alone; `always` and `after`
        # are about the states of a trace
        ctx = Ctx("pure" if kind == "holds" else "trace")
        e = self.exprs.expr(c.expr, Scope(), ctx)
        for callee, span in ctx.calls:
            self.sym.pending_calls.append((callee, ctx.kind, span))
        f = self.exprs.want_bool(e, c.expr.span, "a claim")
        if f is None:
            return None
        step = None
        if isinstance(c, S.ClaimAfter):
            if c.step.name not in steps:
                self.sym.error("KHO210", c.step.span, f"unknown step `{c.step.name}`",
                               self.sym.suggest(c.step.name, steps))
                return None
            step = c.step.name
        return ir.ClaimDef(kind, f, step=step, span=c.span)

    def resolve_profile_sets(self, sets: dict[str, S.ProfileSetDecl], profiles: dict[str, ir.ProfileDef]) -> None:
        """Each profile set's members that are profiles (the unknown ones reported)."""
        for ps in sets.values():
            # a `for` clause would take the set and never the profile
            if ps.name.name in profiles:
                self.sym.error("KHO202", ps.name.span, f"`{ps.name.name}` is a profile and a profile set")
            for v in ps.profiles:
                if v.name not in profiles:
                    self.sym.error("KHO210", v.span, f"unknown profile `{v.name}`", self.sym.suggest(v.name, profiles))
        self.sym.profile_sets = {k: tuple(v.name for v in ps.profiles if v.name in profiles)
                                 for k, ps in sets.items()}

    def all_checks(self, decls: list[S.CheckDecl], strategies: dict[str, ir.StrategyDef],
               assumes: dict[str, ir.AssumeDef], profiles: dict[str, ir.ProfileDef],
               layouts: dict[str, ir.LayoutDef], steps: dict[str, ir.StepDef]) -> list[ir.CheckDef]:
        """Every check, each name once; those declared in the root file are the program's."""
        checks: list[ir.CheckDef] = []
        seen_checks: dict[str, Span] = {}
        # an imported file's checks are typed, and their names must differ from the
        # root's, but they run only when that file is the root
        root_decls = {id(d) for m in self.sym.modules if m.file == self.sym.root for d in m.decls}
        for d in decls:
            c = self.check(d, strategies, assumes, profiles, layouts, steps)
            if c is None:
                continue
            if c.name in seen_checks:
                self.sym.error("KHO202", d.name.span, f"check `{c.name}` is already declared",
                               related=[Related(seen_checks[c.name], "first declared here")])
                continue
            seen_checks[c.name] = d.name.span
            if id(d) in root_decls:
                checks.append(c)
        return checks
