"""C integer arithmetic on Python ints: the reference for constant folding and replay.

The Z3 lowering implements the same operations on bit-vectors independently
(engine/lower.py); property tests check the two agree.
"""

from __future__ import annotations

from khospec.types import IntType


def convert(value: int | bool, to: IntType) -> int:
    return to.wrap(int(value))


def binary(op: str, a: int, b: int, ty: IntType, right_ty: IntType | None = None) -> int:
    """``a op b`` where both are already values of ``ty`` (shifts: b of ``right_ty``)."""
    if op == "+":
        return ty.wrap(a + b)
    if op == "-":
        return ty.wrap(a - b)
    if op == "*":
        return ty.wrap(a * b)
    if op in ("/", "%"):
        if b == 0:
            # Undefined in C; SMT-LIB gives all-ones for unsigned division by zero and the
            # dividend for the remainder. The model follows SMT-LIB, see types.py.
            if op == "/":
                return ty.wrap(-1) if not ty.signed else (-1 if a >= 0 else 1)
            return a
        q = abs(a) // abs(b)
        if (a < 0) != (b < 0):
            q = -q
        if op == "/":
            return ty.wrap(q)
        return ty.wrap(a - q * b)
    if op == "&":
        return ty.wrap(a & b)
    if op == "|":
        return ty.wrap(a | b)
    if op == "^":
        return ty.wrap(a ^ b)
    if op in ("<<", ">>"):
        # Out-of-range counts are undefined in C; x86-64 (SHL/SAR/SHR) and arm64
        # (LSLV/ASRV/LSRV) take a run-time count modulo the width, and so does the model.
        count = b & (ty.width - 1)
        if op == "<<":
            return ty.wrap(a << count)
        return ty.wrap(a >> count)  # arithmetic for signed, logical for unsigned values >= 0
    raise ValueError(f"unknown operator {op}")


def compare(op: str, a: int, b: int) -> bool:
    return {
        "==": a == b,
        "!=": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]


def unary(op: str, a: int, ty: IntType) -> int:
    if op == "-":
        return ty.wrap(-a)
    if op == "~":
        return ty.wrap(~a)
    raise ValueError(f"unknown operator {op}")


def count_trailing_zeros(x: int) -> int:
    """include/linux/count_zeros.h on 64-bit: __ffs(x), or -1 for 0."""
    x &= (1 << 64) - 1
    if x == 0:
        return -1
    return (x & -x).bit_length() - 1


def ilog2(x: int) -> int:
    """include/linux/log2.h for a non-constant: fls64(x) - 1, so -1 for 0."""
    x &= (1 << 64) - 1
    return x.bit_length() - 1
