"""C integer arithmetic on Python ints: the reference for constant folding and replay.

The Z3 lowering implements the same operations on bit-vectors independently
(engine/lower.py); property tests check the two agree.
"""

from __future__ import annotations

from khospec.types import IntType


def convert(value: int | bool, to: IntType) -> int:
    """``value`` (a bool is 0 or 1) in ``to``: modulo 2^width, for a signed type too
    (implementation-defined in C; gcc, and so the kernel, wraps)."""
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
                # signed: bvsdiv divides the magnitudes and negates the quotient when the
                # dividend is negative
                return ty.wrap(-1) if not ty.signed else (-1 if a >= 0 else 1)
            return a
        # C11 6.5.5: the quotient truncates toward zero (Python's // floors) and the
        # remainder takes the dividend's sign; INT_MIN / -1 (undefined, a trap on x86)
        # wraps to INT_MIN, as bvsdiv gives
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
        # the mask is the modulo for a negative count too; promoted operands are 32 or
        # 64 bits wide, the widths the instructions mask the count to
        count = b & (ty.width - 1)
        if op == "<<":
            return ty.wrap(a << count)
        return ty.wrap(a >> count)  # arithmetic for signed, logical for unsigned values >= 0
    raise ValueError(f"unknown operator {op}")


def compare(op: str, a: int, b: int) -> bool:
    """``a op b`` for values already converted to their common type, so the signed or
    unsigned comparison C makes is the plain one of their values."""
    return {
        "==": a == b,
        "!=": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]


def unary(op: str, a: int, ty: IntType) -> int:
    """``-a`` or ``~a`` for ``a`` already promoted to ``ty``; -INT_MIN wraps to itself."""
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
