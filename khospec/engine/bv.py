"""C arithmetic on Z3 bit-vectors, and symbolic values of every spec type.

This is the engine's own implementation of the C rules in khospec.carith (Python ints);
tests/test_arith.py checks the two agree on random operands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3

from khospec.types import BoolType, IntType, StructType, Type


@dataclass(frozen=True)
class StructVal:
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
    if isinstance(ty, BoolType):
        return z3.Bool(name, ctx)
    if isinstance(ty, IntType):
        return z3.BitVec(name, ty.width, ctx)
    if isinstance(ty, StructType):
        return StructVal(ty, tuple(fresh(ft, f"{name}.{fn}", ctx) for fn, ft in ty.fields))
    raise TypeError(f"no symbolic value for {ty}")


def const(value: int | bool, ty: Type, ctx: z3.Context) -> Sym:
    if isinstance(ty, BoolType):
        return z3.BoolVal(bool(value), ctx)
    assert isinstance(ty, IntType)
    return z3.BitVecVal(value & ((1 << ty.width) - 1), ty.width, ctx)


def ite(c: z3.BoolRef, a: Sym, b: Sym) -> Sym:
    if isinstance(a, StructVal):
        return StructVal(a.ty, tuple(ite(c, x, y) for x, y in zip(a.fields, b.fields, strict=True)))
    if z3.is_true(c):
        return a
    if z3.is_false(c):
        return b
    if a.eq(b):
        return a
    return z3.If(c, a, b)


def eq(a: Sym, b: Sym) -> z3.BoolRef:
    if isinstance(a, StructVal):
        return z3.And(*[eq(x, y) for x, y in zip(a.fields, b.fields, strict=True)])
    return a == b


def convert(v: Sym, src: Type, dst: Type, ctx: z3.Context) -> Sym:
    if src == dst:
        return v
    if isinstance(src, BoolType):
        assert isinstance(dst, IntType)
        return z3.If(v, z3.BitVecVal(1, dst.width, ctx), z3.BitVecVal(0, dst.width, ctx))
    assert isinstance(src, IntType) and isinstance(dst, IntType)
    if dst.width == src.width:
        return v
    if dst.width < src.width:
        return z3.Extract(dst.width - 1, 0, v)
    grow = dst.width - src.width
    return z3.SignExt(grow, v) if src.signed else z3.ZeroExt(grow, v)


def arith(op: str, a: Sym, b: Sym, ty: IntType) -> Sym:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b if ty.signed else z3.UDiv(a, b)
    if op == "%":
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
    c = z3.Extract(w - 1, 0, b) if rt.width >= w else z3.ZeroExt(w - rt.width, b)
    c = c & z3.BitVecVal(w - 1, w, a.ctx)
    if op == "<<":
        return a << c
    return a >> c if lt.signed else z3.LShR(a, c)


def compare(op: str, a: Sym, b: Sym, ty: Type) -> z3.BoolRef:
    if op == "==":
        return eq(a, b)
    if op == "!=":
        return z3.Not(eq(a, b))
    assert isinstance(ty, IntType)
    if ty.signed:
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    return {"<": z3.ULT(a, b), "<=": z3.ULE(a, b), ">": z3.UGT(a, b), ">=": z3.UGE(a, b)}[op]


def _log2_of_onehot(y: Sym, width: int) -> Sym:
    """Index of the only set bit of y, as a ``width``-bit vector (y must be one-hot)."""
    ctx = y.ctx
    bits = []
    for k in range(6):
        mask = 0
        for i in range(64):
            if (i >> k) & 1:
                mask |= 1 << i
        bits.append(z3.If((y & z3.BitVecVal(mask, 64, ctx)) != 0,
                          z3.BitVecVal(1 << k, width, ctx), z3.BitVecVal(0, width, ctx)))
    out = bits[0]
    for b in bits[1:]:
        out = out | b
    return out


def count_trailing_zeros(x: Sym) -> Sym:
    """include/linux/count_zeros.h: __ffs(x), or -1 (as int) for 0."""
    ctx = x.ctx
    low = x & (-x)
    return z3.If(x == 0, z3.BitVecVal(-1 & 0xFFFFFFFF, 32, ctx), _log2_of_onehot(low, 32))


def ilog2(x: Sym) -> Sym:
    """fls64(x) - 1 for a non-constant: the index of the highest set bit, -1 for 0."""
    ctx = x.ctx
    r = z3.BitVecVal(0, 32, ctx)
    v = x
    for k in (32, 16, 8, 4, 2, 1):
        high = z3.LShR(v, k) != 0
        r = z3.If(high, r + k, r)
        v = z3.If(high, z3.LShR(v, k), v)
    return z3.If(x == 0, z3.BitVecVal(-1 & 0xFFFFFFFF, 32, ctx), r)


def model_value(model: z3.ModelRef, v: Sym, ty: Type) -> Any:
    """A Python value (int in C's range, bool, or dict for structs) from a model."""
    if isinstance(v, StructVal):
        return {fn: model_value(model, fv, ft) for (fn, ft), fv in zip(v.ty.fields, v.fields, strict=True)}
    r = model.eval(v, model_completion=True)
    if isinstance(ty, BoolType):
        return z3.is_true(r)
    assert isinstance(ty, IntType)
    return ty.wrap(r.as_long())
