"""khospec: formal, machine-checked specifications of Linux Kexec HandOver (KHO)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "check_file", "check_paths"]


def __getattr__(name: str) -> object:
    # the API is imported lazily so that `import khospec` (the pytest plugin) stays cheap
    if name in ("check_file", "check_paths", "Options", "Report"):
        from khospec import api

        return getattr(api, name)
    if name in ("Result", "Verdict"):
        from khospec import results

        return getattr(results, name)
    raise AttributeError(name)
