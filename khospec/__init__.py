"""khospec: formal, machine-checked specifications of Linux Kexec HandOver (KHO).

The public API (imported lazily, so that ``import khospec`` stays cheap for the pytest
plugin):

- ``check_file(path, options=None) -> list[Result]``: every check of one spec file;
  raises ``InputError`` on bad input (its ``render()`` is the diagnostics' text).
- ``check_paths(paths, options=None) -> Report``: files and folders; the report holds
  the results, the diagnostics and any internal error (``report.exit_code()`` is the
  command line's).
- ``Options``: the budget (``timeout_s``), the selections (``checks``, ``strategies``,
  ``profiles``; a name that matches nothing is an input error), ``jobs``, ``replay``,
  ``cross_check``, ``cache`` and ``cache_dir``, ``layout``.
- ``Result``: one check under one strategy and one profile (``verdict``, ``met``,
  ``counterexample``, ``assumptions_used``, ``cached``, ``to_json()``); ``Verdict``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["InputError", "Options", "Report", "Result", "Verdict", "__version__", "check_file", "check_paths"]


def __getattr__(name: str) -> object:
    if name in ("check_file", "check_paths"):
        from khospec import api

        return getattr(api, name)
    if name == "Options":
        from khospec import jobs

        return jobs.Options
    if name in ("Result", "Verdict", "Report"):
        from khospec import results

        return getattr(results, name)
    if name == "InputError":
        from khospec import diagnostics

        return diagnostics.InputError
    raise AttributeError(name)
