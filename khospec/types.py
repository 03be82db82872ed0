"""C types of the spec language and the C conversion rules (LP64, as the kernel builds).

``int`` is 32-bit signed, ``long`` 64-bit signed, ``uint``/``u32`` 32-bit unsigned,
``ulong``/``u64``/``phys_addr_t`` 64-bit unsigned. Arithmetic follows C: integer
promotions, the usual arithmetic conversions, literal types chosen by value and suffix
(C11 6.4.4.1), two's complement wrap-around (the kernel builds with
-fno-strict-overflow). Shifts by the operand's width or more (or by a negative count)
are undefined in C; the model does what x86-64 and arm64 do with a run-time count:
it takes the count modulo the width (see the README's "Arithmetic" section).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BoolType:
    """C's _Bool, kept apart from the integers: a bool converts to 0 or 1 where an
    integer is wanted, but an integer never stands for a truth value."""

    def __str__(self) -> str:
        return "bool"


@dataclass(frozen=True)
class IntType:
    width: int
    signed: bool
    # for messages only: u64 and ulong, of one width and signedness, are one type
    name: str = field(compare=False, default="")

    def __str__(self) -> str:
        return self.name or f"{'s' if self.signed else 'u'}{self.width}"

    @property
    def min(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def fits(self, value: int) -> bool:
        return self.min <= value <= self.max

    def wrap(self, value: int) -> int:
        """The C value of ``value`` converted to this type (two's complement)."""
        value &= (1 << self.width) - 1
        if self.signed and value >> (self.width - 1):
            value -= 1 << self.width
        return value


@dataclass(frozen=True)
class StructType:
    name: str
    fields: tuple[tuple[str, Type], ...]  # in declaration order, which ir.StructMake keeps

    def __str__(self) -> str:
        return self.name

    def field_type(self, name: str) -> Type | None:
        for fname, fty in self.fields:
            if fname == name:
                return fty
        return None


@dataclass(frozen=True)
class MapType:
    key: Type
    value: Type

    def __str__(self) -> str:
        return f"[{self.key}] {self.value}"


@dataclass(frozen=True)
class SeqType:
    """What a function that emits values produces: a sequence of ``elem``."""

    elem: Type

    def __str__(self) -> str:
        return f"emits {self.elem}"


Type = BoolType | IntType | StructType | MapType | SeqType

BOOL = BoolType()
INT = IntType(32, True, "int")
UINT = IntType(32, False, "uint")
LONG = IntType(64, True, "long")
ULONG = IntType(64, False, "ulong")

SCALARS: dict[str, Type] = {
    "bool": BOOL,
    "int": INT,
    "uint": UINT,
    "long": LONG,
    "ulong": ULONG,
    "u8": IntType(8, False, "u8"),
    "u16": IntType(16, False, "u16"),
    "u32": IntType(32, False, "u32"),
    "u64": IntType(64, False, "u64"),
    "s8": IntType(8, True, "s8"),
    "s16": IntType(16, True, "s16"),
    "s32": IntType(32, True, "s32"),
    "s64": IntType(64, True, "s64"),
    # u64 on every 64-bit kernel (CONFIG_PHYS_ADDR_T_64BIT)
    "phys_addr_t": IntType(64, False, "phys_addr_t"),
}

# what a layout's `ranges` hold: a memblock region [start, end) in pfns, its node, and
# whether it is MEMBLOCK_MIRROR memory
MEM_RANGE = StructType(
    "mem_range", (("start", ULONG), ("end", ULONG), ("nid", INT), ("mirror", BOOL))
)


def promote(t: IntType) -> IntType:
    """C integer promotion: anything narrower than int becomes int."""
    # int holds every value of a narrower type, so none promotes to unsigned int
    return INT if t.width < 32 else t


def usual_conversion(a: IntType, b: IntType) -> IntType:
    """C's usual arithmetic conversions for two integer operands."""
    a, b = promote(a), promote(b)
    if a == b:
        return named(a)
    # on LP64 a type's rank follows its width (long long, as wide as long, is no type here)
    if a.signed == b.signed:
        return named(a if a.width >= b.width else b)
    uns, sig = (a, b) if not a.signed else (b, a)
    # C11 6.3.1.8: at equal or higher rank the unsigned type wins (int and uint give
    # uint, so -1 < 0U is false)
    if uns.width >= sig.width:
        return named(uns)
    return named(sig)  # the signed type is wider, so it holds every unsigned value


def named(t: IntType) -> IntType:
    """The canonical C name for a width and signedness (u64 and ulong are one type)."""
    canon = {(32, True): INT, (32, False): UINT, (64, True): LONG, (64, False): ULONG}
    return canon.get((t.width, t.signed), t)


def literal_type(value: int, hex_like: bool, unsigned: bool, long_: bool) -> IntType | None:
    """C11 6.4.4.1: the first type of the suffix's list that holds the value."""
    # C's lists without long long, which adds nothing on LP64; a decimal literal
    # without u is never unsigned (it is refused when no signed type holds it)
    if unsigned and long_:
        candidates = [ULONG]
    elif unsigned:
        candidates = [UINT, ULONG]
    elif long_:
        candidates = [LONG, ULONG] if hex_like else [LONG]
    else:
        candidates = [INT, UINT, LONG, ULONG] if hex_like else [INT, LONG]
    for t in candidates:
        if t.fits(value):
            return t
    return None


def same_repr(a: Type, b: Type) -> bool:
    return a == b
