"""The solver's version, for the reports: only the engine imports z3.

z3 is imported when the version is asked for, not when this module is: a report of
cached results needs the version, not the solver.
"""

from __future__ import annotations


def z3_version() -> str:
    """z3's own version string ("unavailable" without z3)."""
    try:
        import z3
    except ImportError:  # pragma: no cover - z3-solver is a dependency
        return "unavailable"
    return str(z3.get_version_string())
