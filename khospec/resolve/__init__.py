"""Stage 2: imports, name resolution and type checking: AST -> ir.Program.

Reports every error it can find (it does not stop at the first), each with a stable
code, a span and a hint. The C rules (promotions, usual arithmetic conversions,
literal types) come from types.py; every implicit conversion becomes an explicit
``ir.Convert``, so later stages never re-derive C's rules.

The modules, in reading order: ``loading`` (the prelude, imports, the entry points),
``symbols`` (the table the checkers share, and its diagnostics), ``declarations``
(pass 1: every name), ``expressions``, ``statements``, ``functions`` (bodies, steps,
strategies, where a function may be called), ``checks`` (assumptions, profiles,
layouts, checks) and ``checker`` (the two passes, section by section).
"""

from __future__ import annotations

from khospec.resolve.checker import Checker
from khospec.resolve.loading import (
    PRELUDE_NAME,
    ParseCache,
    check_program,
    load_prelude,
    prelude_text,
    spec_tree,
)

__all__ = [
    "PRELUDE_NAME",
    "Checker",
    "ParseCache",
    "check_program",
    "load_prelude",
    "prelude_text",
    "spec_tree",
]
