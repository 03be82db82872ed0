"""Conjunction, disjunction, if-then-else and substitution of z3 terms, without the
Python API's per-argument checks.

``z3.And`` and ``z3.Or`` work out a common sort for their arguments and cast each to it
before the one C call that builds the term: a third of the time spent lowering a trace
check (`eager_no_uninit_read_folio`, `no_uninit_read_pages_72`, the layout's pairwise
facts above all) went there. Where every argument is already a boolean term of one
context, ``conj`` and ``disj`` make that C call directly. The term is the same one z3's
functions build, with the same id, so no query and no verdict can tell them apart;
anything else (no argument, a Python bool, a probe, a context argument) goes to z3's
own function. ``choose`` does the same for ``z3.If`` (and ``negate``, ``implies``,
``equal``, the comparisons, ``bv_value`` and ``apply`` for theirs), 18% of the time spent lowering
`handover.kho`: 16-24 us a term where the C call takes 3-4, since its sort checks and
casts are C calls of their own (and z3's C call checks the branches' sorts anyway).
``Substitution`` does for ``z3.substitute`` what these do for ``And`` and ``Or``: a
query substitutes the same profile constants into every formula it asks, and
``z3.substitute`` checked every pair's sorts on every call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3
from z3 import z3core


def _one_context(args: tuple[Any, ...]) -> z3.Context | None:
    """The context of ``args`` when every one is a z3 term of that one context, else None
    (nothing, a Python value to convert, a probe, two contexts: z3's own function then)."""
    if not args or not isinstance(args[0], z3.ExprRef):
        return None
    ctx = args[0].ctx
    # a loop, not all() over a generator: this runs for every term the lowering makes
    for a in args:
        if not isinstance(a, z3.ExprRef) or a.ctx is not ctx:
            return None
    return ctx


def _asts(args: tuple[Any, ...]) -> Any:
    """The terms as the C array of an n-ary call."""
    arr = (z3.Ast * len(args))()
    for i, a in enumerate(args):
        arr[i] = a.as_ast()
    return arr


def _direct(make: Callable[..., Any], slow: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        args = tuple(args[0])
    ctx = _one_context(args)
    if ctx is None or not all(isinstance(a, z3.BoolRef) for a in args):
        return slow(*args)
    return z3.BoolRef(make(ctx.ref(), len(args), _asts(args)), ctx)


def conj(*args: Any) -> Any:
    """``z3.And(*args)``, the same term."""
    return _direct(z3core.Z3_mk_and, z3.And, args)


def disj(*args: Any) -> Any:
    """``z3.Or(*args)``, the same term."""
    return _direct(z3core.Z3_mk_or, z3.Or, args)


def choose(c: Any, a: Any, b: Any) -> Any:
    """``z3.If(c, a, b)``, the same term. The fast way needs a boolean condition and two
    booleans or two bit-vectors, all terms of one context; z3's C call rejects branches of
    different sorts (a Z3Exception, as from ``z3.If``)."""
    ctx = _one_context((c, a, b))
    if ctx is not None and isinstance(c, z3.BoolRef):
        kind = z3.BoolRef if isinstance(a, z3.BoolRef) else z3.BitVecRef if isinstance(a, z3.BitVecRef) else None
        if kind is not None:
            return kind(z3core.Z3_mk_ite(ctx.ref(), c.as_ast(), a.as_ast(), b.as_ast()), ctx)
    return z3.If(c, a, b)


def bv_value(value: int, width: int, ctx: z3.Context) -> Any:
    """``z3.BitVecVal(value, width, ctx)``, the same term, in two C calls (z3's takes
    twice as long, on the Python objects of the sort): a constant of 64 bits or fewer.
    The sort needs no reference of ours: z3 holds the last object a call made until the
    next call has made its own, which here is the numeral of that sort."""
    if type(value) is int and 0 <= value < (1 << width) and width <= 64:
        r = ctx.ref()
        return z3.BitVecNumRef(z3core.Z3_mk_unsigned_int64(r, value, z3core.Z3_mk_bv_sort(r, width)), ctx)
    return z3.BitVecVal(value, width, ctx)


def apply(f: Any, *args: Any) -> Any:
    """``f(*args)`` for a z3 function declaration, the same term, in one C call where
    every argument is a term of ``f``'s context (z3's reads and casts to each parameter's
    sort first; the C call checks the sorts itself)."""
    ctx = _one_context(args)
    if ctx is not None and ctx is f.ctx:
        return z3.z3._to_expr_ref(z3core.Z3_mk_app(ctx.ref(), f.as_ast(), len(args), _asts(args)), ctx)
    return f(*args)


def _boolean(make: Callable[..., Any], slow: Callable[..., Any]) -> Callable[..., Any]:
    """The boolean term ``make`` builds from terms of one context, made with that C call
    alone; anything else goes to ``slow``, z3's own function. z3's C calls check the
    arguments' sorts themselves (a Z3Exception, as from z3's functions)."""

    def build(*args: Any) -> Any:
        ctx = _one_context(args)
        if ctx is None:
            return slow(*args)
        return z3.BoolRef(make(ctx.ref(), *[a.as_ast() for a in args]), ctx)

    return build


def _operator(make: Callable[..., Any], mirrored: Callable[..., Any], slow: Callable[..., Any]) -> Callable[..., Any]:
    """``slow(a, b)`` (a Python operator on z3 terms), the same term made with one C call.
    Python asks the right operand first when its type is a proper subclass of the left
    one's (a numeral, BitVecNumRef, right of a BitVecRef), and z3 then builds the mirrored
    term: ``x < 4096`` is ``(bvsgt 4096 x)``, ``x == 4096`` is ``(= 4096 x)``."""

    def build(a: Any, b: Any) -> Any:
        ctx = _one_context((a, b))
        if ctx is None:
            return slow(a, b)
        if type(b) is not type(a) and issubclass(type(b), type(a)):
            return z3.BoolRef(mirrored(ctx.ref(), b.as_ast(), a.as_ast()), ctx)
        return z3.BoolRef(make(ctx.ref(), a.as_ast(), b.as_ast()), ctx)

    return build


# ``z3.Not``, ``z3.Implies`` and the unsigned comparisons, the same terms
negate = _boolean(z3core.Z3_mk_not, z3.Not)
implies = _boolean(z3core.Z3_mk_implies, z3.Implies)
ule = _boolean(z3core.Z3_mk_bvule, z3.ULE)
ult = _boolean(z3core.Z3_mk_bvult, z3.ULT)
uge = _boolean(z3core.Z3_mk_bvuge, z3.UGE)
ugt = _boolean(z3core.Z3_mk_bvugt, z3.UGT)
# ``==`` and z3's <, <=, >, >= on bit-vectors (the signed comparisons), the same terms
equal = _operator(z3core.Z3_mk_eq, z3core.Z3_mk_eq, lambda a, b: a == b)
slt = _operator(z3core.Z3_mk_bvslt, z3core.Z3_mk_bvsgt, lambda a, b: a < b)
sle = _operator(z3core.Z3_mk_bvsle, z3core.Z3_mk_bvsge, lambda a, b: a <= b)
sgt = _operator(z3core.Z3_mk_bvsgt, z3core.Z3_mk_bvslt, lambda a, b: a > b)
sge = _operator(z3core.Z3_mk_bvsge, z3core.Z3_mk_bvsle, lambda a, b: a >= b)


def _is_value(a: Any, value: int, slow: Callable[[Any], bool]) -> bool:
    """Whether ``a`` is the boolean constant ``value`` (a Z3_L_TRUE or Z3_L_FALSE): one C
    call for a boolean term, where z3's ``slow`` reads its declaration."""
    if isinstance(a, z3.BoolRef):
        return bool(z3core.Z3_get_bool_value(a.ctx.ref(), a.as_ast()) == value)
    return bool(slow(a))


def is_true(a: Any) -> bool:
    """``z3.is_true(a)``."""
    return _is_value(a, z3.Z3_L_TRUE, z3.is_true)


def is_false(a: Any) -> bool:
    """``z3.is_false(a)``."""
    return _is_value(a, z3.Z3_L_FALSE, z3.is_false)


class Substitution:
    """``z3.substitute(f, *pairs)`` for every ``f`` it is called on, the same term: the
    pairs are checked (terms of one context, of equal sorts) and put in the C call's
    arrays once."""

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        assert pairs and all(a.ctx is pairs[0][0].ctx and b.ctx is a.ctx and a.sort().eq(b.sort())
                             for a, b in pairs)
        self._pairs = pairs  # the arrays hold raw pointers: the terms must live as long
        self._ctx = pairs[0][0].ctx
        self._from = (z3.Ast * len(pairs))()
        self._to = (z3.Ast * len(pairs))()
        for i, (a, b) in enumerate(pairs):
            self._from[i] = a.as_ast()
            self._to[i] = b.as_ast()

    def __call__(self, f: Any) -> Any:
        if not isinstance(f, z3.ExprRef) or f.ctx is not self._ctx:
            return z3.substitute(f, *self._pairs)
        made = z3core.Z3_substitute(self._ctx.ref(), f.as_ast(), len(self._pairs), self._from, self._to)
        return z3.z3._to_expr_ref(made, self._ctx)


__all__ = ["Substitution", "apply", "bv_value", "choose", "conj", "disj", "equal", "implies", "is_false", "is_true",
           "negate", "sge", "sgt", "sle", "slt", "uge", "ugt", "ule", "ult"]
