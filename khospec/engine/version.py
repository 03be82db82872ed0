"""The solver's version, for the reports: only the engine imports z3.

z3 is imported when the version is asked for, not when this module is: a report of
cached results needs the version, not the solver.

khospec requires one z3 release exactly (pyproject.toml). z3's search, and with it a
proof's assumptions, a counterexample and a verdict near its budget, moves from one
release to the next: the whole library under z3 4.15.4 gave every refutation another
counterexample and 21 proofs other assumptions than under 5.4.1, and under 4.13.4 one
refutation was not found within its budget (BENCHMARKS.md). With another release
installed anyway (``pip install --no-deps``, a distribution's package), ``z3_mismatch``
says so, and the run warns.
"""

from __future__ import annotations

import re
from importlib import metadata


def z3_version() -> str:
    """z3's own version string ("unavailable" without z3)."""
    try:
        import z3
    except ImportError:  # pragma: no cover - z3-solver is a dependency
        return "unavailable"
    return str(z3.get_version_string())


def required_z3() -> str | None:
    """The z3-solver release khospec's installed metadata requires (None: khospec runs
    from a source tree it was not installed from, or requires no exact release)."""
    try:
        requires = metadata.requires("khospec") or []
    except metadata.PackageNotFoundError:
        return None
    for req in requires:
        m = re.fullmatch(r"z3-solver\s*==\s*([\w.]+)", req.strip())
        if m:
            return m.group(1)
    return None


def installed_z3() -> str | None:
    """The z3-solver release installed (None: none, or installed without metadata)."""
    try:
        return metadata.version("z3-solver")
    except metadata.PackageNotFoundError:
        return None


def z3_mismatch() -> tuple[str, str] | None:
    """(installed, required) where the installed z3-solver is not the release khospec
    requires; None where it is, or where either is unknown."""
    required, installed = required_z3(), installed_z3()
    if required is None or installed is None or installed == required:
        return None
    return installed, required


def mismatch_text(installed: str, required: str) -> str:
    """What a run under another z3 release says (KHO007, the pytest header)."""
    return (f"z3-solver {installed} is installed where khospec requires {required}: a verdict near its budget, "
            "a proof's assumptions_used and a counterexample can differ from that release's")
