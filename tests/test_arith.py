"""The engine's bit-vector C arithmetic (engine/bv.py) agrees with the reference on
Python ints (carith.py), for every operator and type, on random operands."""

from __future__ import annotations

import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from khospec import carith
from khospec.engine import bv
from khospec.types import INT, LONG, UINT, ULONG, IntType, literal_type, usual_conversion

TYPES = [INT, UINT, LONG, ULONG]


def _value(ty: IntType) -> st.SearchStrategy[int]:
    edge = [ty.min, ty.max, 0, 1, -1 if ty.signed else 2, ty.min + 1, ty.max - 1]
    return st.one_of(st.integers(ty.min, ty.max), st.sampled_from(edge))


def _z3(v: int, ty: IntType) -> z3.BitVecRef:
    return z3.BitVecVal(v & ((1 << ty.width) - 1), ty.width)


def _back(t: z3.BitVecRef, ty: IntType) -> int:
    return ty.wrap(z3.simplify(t).as_long())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TYPES), st.sampled_from(["+", "-", "*", "/", "%", "&", "|", "^"]), st.data())
def test_binary_ops_agree(ty: IntType, op: str, data: st.DataObject) -> None:
    a = data.draw(_value(ty))
    b = data.draw(_value(ty))
    assert _back(bv.arith(op, _z3(a, ty), _z3(b, ty), ty), ty) == carith.binary(op, a, b, ty)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TYPES), st.sampled_from(TYPES), st.sampled_from(["<<", ">>"]), st.data())
def test_shifts_agree(lt: IntType, rt: IntType, op: str, data: st.DataObject) -> None:
    a = data.draw(_value(lt))
    b = data.draw(st.one_of(st.integers(rt.min, rt.max), st.integers(-2, 70).filter(rt.fits)))
    got = _back(bv.shift(op, _z3(a, lt), lt, _z3(b, rt), rt), lt)
    assert got == carith.binary(op, a, b, lt, rt)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TYPES), st.sampled_from(TYPES), st.data())
def test_conversions_agree(src: IntType, dst: IntType, data: st.DataObject) -> None:
    a = data.draw(_value(src))
    got = _back(bv.convert(_z3(a, src), src, dst, z3.main_ctx()), dst)
    assert got == carith.convert(a, dst)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TYPES), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), st.data())
def test_comparisons_agree(ty: IntType, op: str, data: st.DataObject) -> None:
    a = data.draw(_value(ty))
    b = data.draw(_value(ty))
    got = z3.is_true(z3.simplify(bv.compare(op, _z3(a, ty), _z3(b, ty), ty)))
    assert got == carith.compare(op, a, b)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(0, (1 << 64) - 1), st.sampled_from([0, 1, 1 << 63, (1 << 64) - 1, 0xF80000])))
def test_ctz_ilog2_agree(x: int) -> None:
    v = _z3(x, ULONG)
    assert _back(bv.count_trailing_zeros(v), INT) == carith.count_trailing_zeros(x)
    assert _back(bv.ilog2(v), INT) == carith.ilog2(x)


def test_kernel_facts() -> None:
    # include/linux/count_zeros.h: count_trailing_zeros(0) is -1 on 64-bit
    assert carith.count_trailing_zeros(0) == -1
    assert carith.ilog2(1 << 20) == 20
    # 1 << 31 in int is INT_MIN; a run-time count of 32 wraps to 0 on x86-64 and arm64
    assert carith.binary("<<", 1, 31, INT, UINT) == -(1 << 31)
    assert carith.binary("<<", 1, 32, INT, UINT) == 1
    # int -> phys_addr_t sign-extends: the reservation size of a 2 GiB chunk
    assert carith.convert(-(1 << 31), ULONG) == 0xFFFFFFFF80000000


def test_usual_conversions() -> None:
    assert usual_conversion(INT, UINT) == UINT
    assert usual_conversion(INT, ULONG) == ULONG
    assert usual_conversion(UINT, LONG) == LONG
    assert usual_conversion(LONG, ULONG) == ULONG
    assert literal_type(2**31, hex_like=False, unsigned=False, long_=False) == LONG
    assert literal_type(0x80000000, hex_like=True, unsigned=False, long_=False) == UINT
    assert literal_type(1, hex_like=False, unsigned=True, long_=True) == ULONG
