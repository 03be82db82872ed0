"""C arithmetic on Z3 bit-vectors, and symbolic values of every spec type.

This is the engine's own implementation of the C rules in khospec.carith (Python ints);
tests/test_arith.py checks the two agree on random operands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3

from khospec.engine.terms import (
    bv_value,
    choose,
    conj,
    equal,
    is_false,
    is_true,
    negate,
    sge,
    sgt,
    sle,
    slt,
    uge,
    ugt,
    ule,
    ult,
)
from khospec.types import BoolType, IntType, StructType, Type


@dataclass(frozen=True)
class StructVal:
    """A struct value as one term per field, not a z3 datatype: the formulas stay
    quantifier-free bit-vectors with uninterpreted functions, which the bit-blasting
    solver and the second solvers take, and reading a field costs no term."""

    ty: StructType
    fields: tuple[Any, ...]  # Sym per field, in declaration order

    def get(self, name: str) -> Any:
        for (fname, _), v in zip(self.ty.fields, self.fields, strict=True):
            if fname == name:
                return v
        raise KeyError(name)

    def with_field(self, name: str, value: Any) -> StructVal:
        return StructVal(
            self.ty,
            tuple(value if fname == name else v for (fname, _), v in zip(self.ty.fields, self.fields, strict=True)),
        )


Sym = Any  # z3.BoolRef | z3.BitVecRef | StructVal


def fresh(ty: Type, name: str, ctx: z3.Context) -> Sym:
    """An unconstrained value of ``ty``; a struct's fields are constants of their own,
    named ``name.field``, so that a model gives each field by name."""
    if isinstance(ty, BoolType):
        return z3.Bool(name, ctx)
    if isinstance(ty, IntType):
        return z3.BitVec(name, ty.width, ctx)
    if isinstance(ty, StructType):
        return StructVal(ty, tuple(fresh(ft, f"{name}.{fn}", ctx) for fn, ft in ty.fields))
    raise TypeError(f"no symbolic value for {ty}")


def const(value: int | bool, ty: Type, ctx: z3.Context) -> Sym:
    """``value`` as a term of ``ty``; an int is taken modulo 2^width, so a negative one
    is its two's complement bit pattern."""
    if isinstance(ty, BoolType):
        return z3.BoolVal(bool(value), ctx)
    assert isinstance(ty, IntType)
    return bv_value(value & ((1 << ty.width) - 1), ty.width, ctx)


def ite(c: z3.BoolRef, a: Sym, b: Sym) -> Sym:
    """``c ? a : b``, field by field for structs. Guarded writes, returns and merged trace
    states build many of these whose condition is decided or whose branches are one
    term; those give no `If`, which keeps the terms of long traces small."""
    if isinstance(a, StructVal):
        return StructVal(a.ty, tuple(ite(c, x, y) for x, y in zip(a.fields, b.fields, strict=True)))
    if is_true(c):
        return a
    if is_false(c):
        return b
    if a.eq(b):
        return a
    return choose(c, a, b)


def eq(a: Sym, b: Sym) -> z3.BoolRef:
    """Equality of two values of one type; structs are equal when every field is."""
    if isinstance(a, StructVal):
        return conj(*[eq(x, y) for x, y in zip(a.fields, b.fields, strict=True)])
    return equal(a, b)


def convert(v: Sym, src: Type, dst: Type, ctx: z3.Context) -> Sym:
    """C's conversion of ``v`` from ``src`` to ``dst`` (C11 6.3.1.3): a bool becomes 0 or
    1; a wider type keeps the value (sign extension from a signed source, zero extension
    from an unsigned one); a narrower type keeps the low bits, for a signed destination
    too (implementation-defined in C: gcc wraps); the same width keeps the bits."""
    if src == dst:
        return v
    if isinstance(src, BoolType):
        # an integer never converts to bool: the type checker only asks this way round
        assert isinstance(dst, IntType)
        return choose(v, bv_value(1, dst.width, ctx), bv_value(0, dst.width, ctx))
    assert isinstance(src, IntType) and isinstance(dst, IntType)
    if dst.width == src.width:
        # int <-> unsigned int, long <-> unsigned long: the bits stay, their reading changes
        return v
    if dst.width < src.width:
        return z3.Extract(dst.width - 1, 0, v)
    grow = dst.width - src.width
    return z3.SignExt(grow, v) if src.signed else z3.ZeroExt(grow, v)


def arith(op: str, a: Sym, b: Sym, ty: IntType) -> Sym:
    """``a op b`` for operands the type checker has already brought to ``ty`` (the
    promotions and usual arithmetic conversions are explicit in the IR). +, - and * wrap
    modulo 2^width, signed types too: the kernel builds with -fno-strict-overflow.

    / and % are undefined in C for a zero divisor; SMT-LIB makes them total (bvudiv by
    zero is all ones, bvsdiv by zero -1 or 1 by the dividend's sign, either remainder is
    the dividend), and carith.binary gives the same values, so that the engine, the
    constant folder and the replay agree on every input. INT_MIN / -1 wraps to INT_MIN,
    which is bvsdiv's answer."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        # z3's / is bvsdiv: the quotient truncates toward zero, as C11 6.5.5 says
        return a / b if ty.signed else z3.UDiv(a, b)
    if op == "%":
        # bvsrem, not bvsmod: C's remainder takes the dividend's sign
        return z3.SRem(a, b) if ty.signed else z3.URem(a, b)
    if op == "&":
        return a & b
    if op == "|":
        return a | b
    if op == "^":
        return a ^ b
    raise ValueError(op)


def shift(op: str, a: Sym, lt: IntType, b: Sym, rt: IntType) -> Sym:
    """C shift with the count taken modulo the width, as x86-64 and arm64 execute it."""
    w = lt.width
    # C promotes the two operands of a shift separately, so the count has a type of its
    # own (int or wider, so at least log2(w) bits wide). Only its low log2(w) bits survive
    # the mask below: truncation and either extension give the same count, and a
    # negative count gives carith's (count & (w - 1)).
    c = z3.Extract(w - 1, 0, b) if rt.width >= w else z3.ZeroExt(w - rt.width, b)
    c = c & bv_value(w - 1, w, a.ctx)
    if op == "<<":
        # a negative left operand is undefined in C; gcc documents that it shifts the
        # bits, which is bvshl
        return a << c
    # a signed operand shifts arithmetically (gcc's implementation-defined choice: sign
    # extension); z3's >> is bvashr, LShR is bvlshr
    return a >> c if lt.signed else z3.LShR(a, c)


def compare(op: str, a: Sym, b: Sym, ty: Type) -> z3.BoolRef:
    """``a op b`` for operands already converted to their common type ``ty``, whose
    signedness picks the signed or unsigned comparison, as C's does after the usual
    arithmetic conversions (so -1 < 0u is false)."""
    if op == "==":
        return eq(a, b)
    if op == "!=":
        return negate(eq(a, b))
    assert isinstance(ty, IntType)
    if ty.signed:
        # z3's <, <=, >, >= on bit-vectors are the signed comparisons
        return {"<": slt(a, b), "<=": sle(a, b), ">": sgt(a, b), ">=": sge(a, b)}[op]
    return {"<": ult(a, b), "<=": ule(a, b), ">": ugt(a, b), ">=": uge(a, b)}[op]


def _log2_of_onehot(y: Sym, width: int) -> Sym:
    """Index of the only set bit of y, as a ``width``-bit vector (y must be one-hot)."""
    ctx = y.ctx
    bits = []
    # bit k of the index is set iff the set bit of y lies at a position whose bit k is
    # set: six masks over the 64 positions instead of a 64-way choice
    for k in range(6):
        mask = 0
        for i in range(64):
            if (i >> k) & 1:
                mask |= 1 << i
        bits.append(choose((y & bv_value(mask, 64, ctx)) != 0,
                           bv_value(1 << k, width, ctx), bv_value(0, width, ctx)))
    out = bits[0]
    for b in bits[1:]:
        out = out | b
    return out


def count_trailing_zeros(x: Sym) -> Sym:
    """include/linux/count_zeros.h: __ffs(x), or -1 (as int) for 0."""
    ctx = x.ctx
    # x & -x keeps the lowest set bit alone; x is unsigned long (the type checker
    # converts the argument) and the kernel's function returns int, hence 32 bits
    low = x & (-x)
    return choose(x == 0, bv_value(-1 & 0xFFFFFFFF, 32, ctx), _log2_of_onehot(low, 32))


def ilog2(x: Sym) -> Sym:
    """fls64(x) - 1 for a non-constant: the index of the highest set bit, -1 for 0."""
    ctx = x.ctx
    r = bv_value(0, 32, ctx)
    v = x
    # a binary search for the highest set bit: the steps add up to 63, the highest index;
    # the result is int, as __ilog2_u64() returns
    for k in (32, 16, 8, 4, 2, 1):
        high = z3.LShR(v, k) != 0
        r = choose(high, r + k, r)
        v = choose(high, z3.LShR(v, k), v)
    return choose(x == 0, bv_value(-1 & 0xFFFFFFFF, 32, ctx), r)


def model_value(model: z3.ModelRef, v: Sym, ty: Type) -> Any:
    """A Python value (int in C's range, bool, or dict for structs) from a model."""
    if isinstance(v, StructVal):
        return {fn: model_value(model, fv, ft) for (fn, ft), fv in zip(v.ty.fields, v.fields, strict=True)}
    # model_completion: a symbol the model leaves out gets z3's default value instead of
    # staying symbolic
    r = model.eval(v, model_completion=True)
    if isinstance(ty, BoolType):
        return is_true(r)
    assert isinstance(ty, IntType)
    # a model gives the bit pattern; a signed type reads it as two's complement
    return ty.wrap(r.as_long())
