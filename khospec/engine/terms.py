"""Conjunction and disjunction of z3 terms, without the Python API's per-argument checks.

``z3.And`` and ``z3.Or`` work out a common sort for their arguments and cast each to it
before the one C call that builds the term: a third of the time spent lowering a trace
check (`eager_no_uninit_read_folio`, `no_uninit_read_pages_72`, the layout's pairwise
facts above all) went there. Where every argument is already a boolean term of one
context, ``conj`` and ``disj`` make that C call directly. The term is the same one z3's
functions build, with the same id, so no query and no verdict can tell them apart;
anything else (no argument, a Python bool, a probe, a context argument) goes to z3's
own function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3
from z3 import z3core


def _direct(make: Callable[..., Any], slow: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        args = tuple(args[0])
    if not args or not all(isinstance(a, z3.BoolRef) for a in args):
        return slow(*args)
    ctx = args[0].ctx
    if any(a.ctx is not ctx for a in args):
        return slow(*args)
    arr = (z3.Ast * len(args))()
    for i, a in enumerate(args):
        arr[i] = a.as_ast()
    return z3.BoolRef(make(ctx.ref(), len(args), arr), ctx)


def conj(*args: Any) -> Any:
    """``z3.And(*args)``, the same term."""
    return _direct(z3core.Z3_mk_and, z3.And, args)


def disj(*args: Any) -> Any:
    """``z3.Or(*args)``, the same term."""
    return _direct(z3core.Z3_mk_or, z3.Or, args)


__all__ = ["conj", "disj"]
