"""What to check and how (``Options``) and the unit of work (``Job``).

The API (api.py) plans jobs from the options and the runner (runner.py) decides them,
in this process or in worker processes; both records live here, below both, so that
neither module needs the other's. Both are frozen: a worker receives them pickled, and
the verdict cache addresses a job by what they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from khospec import ir
from khospec.cache import job_name


@dataclass(frozen=True)
class Options:
    """What to check and how; every field has the command line's default."""

    timeout_s: float = 60.0  # per check, strategy and profile
    strategies: frozenset[str] | None = None  # run only these (None: all a check names)
    profiles: frozenset[str] | None = None
    checks: frozenset[str] | None = None
    layout: ir.LayoutDef | None = None  # a machine's layout for every strategy check
    jobs: int = 1  # worker processes; 1 runs in this process
    replay: bool = True  # replay every counterexample in the concrete interpreter
    cross_check: bool = False  # re-solve every query with a second solver
    unroll: int = 3
    cache: bool = True  # reuse and store results in the verdict cache (khospec/cache.py)
    import_roots: tuple[str, ...] = ()  # folders imports may reach besides the spec's project
    cache_dir: str | None = None  # None: KHOSPEC_CACHE_DIR, else the user cache directory
    scheduler: str | None = None  # a Dask scheduler's address: solve there (khospec.executor)


@dataclass(frozen=True)
class Job:
    """One check under one strategy, for one profile (a check over traces: the long
    proofs run in parallel) or for all its profiles (a claim over formulas, which the
    engine first tries to prove for every profile at once): the unit of work."""

    path: Path
    file: str
    check: str
    line: int
    strategy: str | None
    profiles: tuple[str, ...]
    index: int = 0  # the job's place in the plan: results come back in this order

    @property
    def names(self) -> tuple[str, ...]:
        """Its results' names (``Result.name``), one per profile."""
        return tuple(job_name(self.file, self.check, self.strategy, p) for p in self.profiles)
