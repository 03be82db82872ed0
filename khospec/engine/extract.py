"""Stage 4c: a counterexample read off a model.

The values a satisfying model gives every symbol the check reads: the params (and param
functions at the arguments the formulas applied them to), the layout, the claim's
witnesses, the initial memory cells read before they were written, and the trace to the
violation. The interpreter (``interp.py``) replays exactly this record, so nothing the
check depends on may be missing from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

from khospec import ir
from khospec.counterexample import InitialValue, ModelData, ModelWitness
from khospec.engine import bv
from khospec.engine.formulas import CheckFormulas, Violation
from khospec.engine.terms import is_true


def extract(f: CheckFormulas, sub: Callable[[Any], Any], model: z3.ModelRef, v: Violation,
            profile: ir.ProfileDef | None) -> ModelData:
    """The counterexample ``model`` gives violation ``v``: the values of everything the
    check reads (``sub`` substitutes the profile's constants, as the query did).

    The replay takes this record as the whole world: the layout is exactly the ranges
    listed, a param function is known only at the rows given, a quantifier or loop
    first tries the values its site's witnesses took, and memory nobody initialised
    holds the values listed (a default elsewhere). Everything is read with model
    completion: a symbol the model leaves out is one whose value does not matter to the
    formulas, and it gets the value z3 would give it."""
    low = f.low

    def val(sym: Any, ty: Any) -> Any:
        return bv.model_value(model, _subst_sym(sym, sub), ty)

    # the profile's constants were substituted before solving: the model has no value for
    # them, the profile has
    subst: dict[str, int | bool] = dict(profile.bindings) if profile is not None else {}
    params: dict[str, Any] = {}
    for name, pd in f.program.params.items():
        if pd.arg_types is None:
            params[name] = subst[name] if name in subst else val(low.param(name), pd.ty)
    # the existing witness ranges, or the layout given
    layout = low.layout.extract(model)
    pfuncs: dict[str, list[list[Any]]] = {}
    seen: set[tuple[str, tuple[Any, ...]]] = set()
    # a one-argument param function (a per-node value, as first_deferred_pfn(nid)) at
    # every node of the layout: the replay enumerates the nodes and may read it at one
    # the formulas never applied it to. The model's function value there extends the
    # model consistently: the formulas constrain the function only where they apply it
    for name, pd in f.program.params.items():
        if pd.arg_types is not None and len(pd.arg_types) == 1:
            for n in layout["nodes"]:
                arg = bv.const(n, pd.arg_types[0], f.ctx)
                value = val(low.param(name, (arg,)), pd.ty)
                seen.add((name, (n,)))
                pfuncs.setdefault(name, []).append([[n], value])
    # and at the arguments the formulas applied it to, by value: application terms
    # whose arguments are equal in the model are one row
    for name, args, app in list(low.param_apps):
        pd = f.program.params[name]
        assert pd.arg_types is not None
        avals = tuple(val(a, t) for a, t in zip(args, pd.arg_types, strict=True))
        if (name, avals) in seen:
            continue
        seen.add((name, avals))
        pfuncs.setdefault(name, []).append([list(avals), val(app, pd.ty)])
    # at a merged node, the edge whose path condition holds is the trace whose state the
    # model shows (TraceNode)
    path = (v.node.path(lambda pc: is_true(model.eval(sub(pc), model_completion=True)))
            if v.node is not None else [])
    # every constant the solver picked, with its site and label (the trace node or loop
    # iteration it belongs to): the replay binds the claim's leading quantifiers to
    # them and tries them first for the other quantifiers and loops of the same site
    witnesses: list[ModelWitness] = []
    for sk in low.skolems:
        witnesses.append({
            "name": sk.name, "site": sk.site, "label": sk.label, "role": sk.role,
            "type": str(sk.ty), "value": val(sk.sym, sk.ty),
        })
    # the cells of uninitialised memory the formulas read, at the indices the model gives
    # their index terms; reads at one index are one function value, given once. A cell
    # the formulas never read is unconstrained, so any value the replay gives it is
    # consistent with the model
    initial: list[InitialValue] = []
    seen_init: set[tuple[str, int]] = set()
    for path_name, idx, gval in low.garbage_apps:
        i = model.eval(sub(idx), model_completion=True).as_long()
        if (path_name, i) in seen_init:
            continue
        seen_init.add((path_name, i))
        r = model.eval(sub(gval), model_completion=True)
        initial.append({"field": path_name, "index": i,
                        "value": is_true(r) if z3.is_bool(r) else r.as_long()})
    return {
        "params": params,
        "param_functions": pfuncs,
        "layout": layout,
        "witnesses": witnesses,
        "initial": initial,
        "trace": path,
        "violated": v.what.copy(),
    }


def _subst_sym(v: Any, sub: Callable[[Any], Any]) -> Any:
    """``sub`` applied to a value, field by field for a struct."""
    if isinstance(v, bv.StructVal):
        return bv.StructVal(v.ty, tuple(_subst_sym(f, sub) for f in v.fields))
    return sub(v)


__all__ = ["extract"]
