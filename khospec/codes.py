"""The registry of diagnostic codes: every ``KHOnnn`` khospec reports, with its stage,
its severity and what it means.

Codes are stable: tests, scripts and users grep for them, and SARIF reports use them as
rule ids. The hundreds digit names the stage that finds the problem:

- ``KHO0xx`` the command line and ``Options``: paths, names that match nothing, a run
  that selects nothing (api.py)
- ``KHO1xx`` reading and syntax (parse.py)
- ``KHO2xx`` names, imports and declarations (resolve)
- ``KHO3xx`` types and C arithmetic (resolve)
- ``KHO4xx`` statements, steps, strategies, checks (resolve)
- ``KHO5xx`` engine limits met while lowering a check (engine/)
- ``KHO6xx`` machine logs and fleets (machine/)

A new code goes here first; ``tests/test_codes.py`` fails on a code used in khospec/
that is missing here, on a registered code that nothing uses, and on a code no input
triggers. The table in docs/diagnostics.md is rendered from this registry
(``python -m khospec.codes``) and a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final

from khospec.diagnostics import Severity


class Stage(Enum):
    """What finds the problem; the value is the code's hundreds digit."""

    COMMAND_LINE = 0
    SYNTAX = 1
    NAMES = 2
    TYPES = 3
    STATEMENTS = 4
    ENGINE = 5
    MACHINE = 6

    @property
    def title(self) -> str:
        return _STAGE_TITLES[self]


_STAGE_TITLES: Final[Mapping[Stage, str]] = MappingProxyType({
    Stage.COMMAND_LINE: "command line",
    Stage.SYNTAX: "reading and syntax",
    Stage.NAMES: "names and declarations",
    Stage.TYPES: "types and C arithmetic",
    Stage.STATEMENTS: "statements and checks",
    Stage.ENGINE: "engine",
    Stage.MACHINE: "machine logs and fleets",
})


@dataclass(frozen=True)
class Code:
    """One diagnostic code.

    ``untriggerable`` is None for a code some input can produce; otherwise it says why
    none can (an internal consistency check, or a check that an earlier one always
    pre-empts), and the test that triggers every code leaves it out for that reason.
    """

    code: str
    severity: Severity
    title: str
    untriggerable: str | None = None

    @property
    def stage(self) -> Stage:
        return Stage(int(self.code[3]))


_E = Severity.ERROR
_W = Severity.WARNING

ALL_CODES: Final[tuple[Code, ...]] = (
    # ---- the command line and Options (api.py)
    Code("KHO003", _E, "a `--check`, `--strategy` or `--profile` name matches nothing in the files"),
    Code("KHO004", _E, "nothing to check: no check matches the files and the selection"),
    Code("KHO005", _W, "a strategy that no check runs under: nothing checks its definitions"),
    Code("KHO006", _E, "a path that is not a spec file, or a folder without .kho files"),
    Code("KHO007", _W, "the installed z3 is not the release khospec requires: results may differ from that release's"),
    Code("KHO008", _W, "the verdict cache cannot be written: what is solved now is solved again next time"),
    # ---- reading and syntax (parse.py)
    Code("KHO101", _E, "the file is not valid UTF-8"),
    Code("KHO102", _E, "the file contains a NUL byte: it looks binary"),
    Code("KHO103", _E, "the file is too large to be a spec"),
    Code("KHO104", _E, "brackets nest too deeply"),
    Code("KHO105", _E, "a declaration nests too deeply to check (thousands of operators in one chain)"),
    Code("KHO110", _E, "unexpected character"),
    Code("KHO111", _E, "unexpected token"),
    Code("KHO112", _E, "unexpected end of file"),
    Code("KHO113", _E, "a malformed number or integer suffix"),
    # ---- names, imports and declarations (resolve)
    Code("KHO201", _E, "no such file or folder, or a file or import that cannot be read"),
    Code("KHO202", _E, "a name, field, parameter or binding declared or given twice"),
    Code("KHO206", _E, "an import that is not a spec file or is outside the spec tree"),
    Code("KHO210", _E, "an unknown name: a variable, function, param, step, strategy, profile, assumption, "
                       "layout, zone or requirement"),
    Code("KHO220", _E, "an unknown type or struct"),
    Code("KHO221", _E, "a map type outside `state`, or map keys that are not integers"),
    Code("KHO222", _E, "a struct that contains itself"),
    Code("KHO223", _E, "a param function argument that is not an integer"),
    Code("KHO224", _E, "a constant defined in terms of itself"),
    Code("KHO225", _E, "a profile that binds a param function (profiles bind constants)"),
    Code("KHO226", _E, "a local name that shadows a constant"),
    Code("KHO230", _E, "a layout range that is empty or outside the 64-bit physical space"),
    Code("KHO231", _E, "overlapping node ranges in a layout"),
    # ---- types and C arithmetic (resolve)
    Code("KHO301", _E, "an operand or value of the wrong type, such as a bool where an integer is needed"),
    Code("KHO302", _E, "a value that does not fit its type"),
    Code("KHO303", _E, "the wrong number of arguments, or a param called or read as the wrong kind"),
    Code("KHO304", _E, "a `let` that binds the result of a function that emits values"),
    Code("KHO305", _E, "no such field"),
    Code("KHO306", _E, "a condition that is not a bool"),
    Code("KHO307", _E, "a value that does not convert to the type needed"),
    Code("KHO308", _E, "the two arms of `?:` have different types"),
    Code("KHO309", _E, "a cast between types that do not convert"),
    Code("KHO310", _E, "a list outside `f(args) == [...]`"),
    Code("KHO311", _W, "a comparison that converts a signed operand to unsigned"),
    Code("KHO312", _E, "`min`, `max` or `clamp` of mixed signedness (the kernel's `min()` rejects it)"),
    Code("KHO313", _E, "`in f(args)` or `f(args) == [...]` with a function that emits no values"),
    Code("KHO314", _E, "a quantifier over a map or a list of emitted values",
         untriggerable="a binder's type cannot name a map or an emitted list: a map type there "
                       "is refused first (KHO221)"),
    Code("KHO320", _E, "a value that must be a constant"),
    # ---- statements, steps, strategies, checks (resolve)
    Code("KHO401", _E, "a function `= expression` without a result type"),
    Code("KHO402", _E, "a function that may end without returning its result"),
    Code("KHO403", _E, "a strategy that redefines something not declared (a misspelt hook or step)"),
    Code("KHO404", _E, "a strategy function whose signature differs from the base definition"),
    Code("KHO405", _E, "a strategy that extends itself"),
    Code("KHO410", _E, "machine state read or changed where it cannot be"),
    Code("KHO411", _E, "a function that calls itself"),
    Code("KHO412", _E, "a while loop, emitted values, `in f(args)` or `requires_hold` where not allowed"),
    Code("KHO413", _E, "`emit` outside a function declared `emits T`"),
    Code("KHO414", _E, "a result returned or used where there is none"),
    Code("KHO415", _W, "the result of a call is unused"),
    Code("KHO416", _E, "a map, field or local indexed or assigned the wrong way"),
    Code("KHO417", _E, "an assignment to an immutable name"),
    Code("KHO418", _E, "state assigned outside a step",
         untriggerable="statements occur only in the bodies of functions and steps, and both "
                       "may assign state"),
    Code("KHO419", _E, "a loop over a set of indices that assigns a scalar, or such a loop outside a step"),
    Code("KHO420", _E, "a check clause given twice"),
    Code("KHO421", _E, "a depth outside 0..64"),
    Code("KHO422", _E, "an unknown verdict"),
    # ---- engine limits met while lowering a check (engine/)
    Code("KHO501", _E, "a param function that returns a struct"),
    Code("KHO510", _E, "a quantifier over an unbounded domain in a position neither asserted nor denied"),
    Code("KHO511", _E, "a quantifier the engine cannot decide where it stands"),
    Code("KHO520", _E, "a loop over a set that writes a map at another index than its own"),
    Code("KHO521", _E, "a map read at another index inside a loop that updates it"),
    Code("KHO522", _E, "a loop that updates state inside another loop over a set"),
    Code("KHO523", _E, "a loop over nodes that updates state"),
    Code("KHO530", _E, "too many distinct machine states to explore"),
    Code("KHO599", _E, "internal: the lowering's own consistency check failed (exit 3, a bug in khospec)",
         untriggerable="the lowering's consistency checks: any input that reaches one shows a bug in "
                       "khospec, reported as an internal error"),
    # ---- machine logs and fleets (machine/)
    Code("KHO601", _E, "a log with no usable memory layout, or one that cannot be read"),
    Code("KHO602", _W, "garbled or unexpected lines in a layout block, skipped"),
    Code("KHO603", _W, "a log that holds several boots: which one is used, which are skipped"),
    Code("KHO604", _W, "a layout inferred from incomplete information (an assumption is named)"),
    Code("KHO605", _W, "inconsistent entries: ignored or counted once"),
    Code("KHO606", _E, "a fleet machine with no architecture, or an unknown one"),
)

CODES: Final[Mapping[str, Code]] = MappingProxyType({c.code: c for c in ALL_CODES})
"""Every code by its ``KHOnnn`` name, in the order of ``ALL_CODES``."""


def render_table() -> str:
    """The registry as a Markdown table, one row per code."""
    rows = ["| code | stage | severity | meaning |", "|---|---|---|---|"]
    rows.extend(
        f"| `{c.code}` | {c.stage.title} | {c.severity.value} | {c.title.replace('|', '&#124;')} |"
        for c in CODES.values()
    )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render_table(), end="")
