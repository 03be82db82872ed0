"""The persistent verdict cache: a solved result is never solved twice.

An entry is addressed by the digest of everything that decides a result and of nothing
else (``job_key``): the check as typed (without source positions, so comments and
moved lines do not count), the definitions in force for its strategy (the base model
and the strategies it extends, not the others), the named assumptions, the profile's
constants, the layout, the budget and unrolling, and the versions of khospec's engine
and of the solvers. A file's path, its comments and unrelated checks or strategies are
not part of it.

What is stored is the solver's outcome before it is presented: on a hit the
counterexample is presented and replayed against the program as it is now, exactly as
after solving, so a cached result is the result a solve would give, positions included.

Entries are JSON files written atomically (a temporary file, then ``os.replace``), each
with a SHA-256 checksum of its body: an entry that is damaged, truncated, written by a
different version or for another key is ignored and solved again, never trusted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from khospec import __version__, ir

# Bump with every change to the engine or the interpreter that can change a result (or
# its replay) for the same query.
ENGINE_VERSION = "2026-12-01.37"
FORMAT = 2


def default_dir() -> Path:
    """``KHOSPEC_CACHE_DIR``, else the platform's user cache directory."""
    env = os.environ.get("KHOSPEC_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("khospec", appauthor=False))


def solver_versions(cross_check: bool) -> str:
    from importlib import metadata

    names = ["z3-solver"] + (["bitwuzla", "cvc5"] if cross_check else [])
    out = []
    for n in names:
        try:
            out.append(f"{n}={metadata.version(n)}")
        except metadata.PackageNotFoundError:
            out.append(f"{n}=absent")
    return ",".join(out)


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


def program_digest(program: ir.Program, check: ir.CheckDef, strategy: str | None) -> str:
    """The definitions a (check, strategy) job depends on. IR reprs leave out source
    spans, so the digest is blind to comments and positions."""
    chain = program.strategy_chain(strategy)
    layout = program.layouts.get(check.layout) if check.layout is not None else None
    base = program.digests.get("base")
    if base is None:  # the same for every job of the program: once
        base = program.digests["base"] = _digest(
            repr(sorted(program.params.items())),
            repr(sorted(program.structs.items())),
            repr(sorted(program.fns.items())),
            repr(program.axioms),
            repr(program.state),
            repr(sorted(program.steps.items())),
        )
    strategies = []
    for s in chain:
        if "strategy " + s not in program.digests:
            program.digests["strategy " + s] = _digest(repr(program.strategies[s]))
        strategies.append(program.digests["strategy " + s])
    return _digest(
        base,
        *strategies,
        repr([program.assumes[n] for n in check.assuming]),
        repr(layout),
        repr(dataclasses.replace(check, file="")),  # where the file is does not count
    )


def job_key(program: ir.Program, check: ir.CheckDef, strategy: str | None, profiles: tuple[ir.ProfileDef, ...],
            *, timeout_s: float, unroll: int, cross_check: bool, layout: ir.LayoutDef | None) -> str:
    return _digest(
        f"khospec {__version__} engine {ENGINE_VERSION} format {FORMAT}",
        solver_versions(cross_check),
        f"timeout {timeout_s!r} unroll {unroll} cross {cross_check}",
        repr(profiles),
        repr(layout),
        program_digest(program, check, strategy),
    )


@dataclass(frozen=True)
class CacheInfo:
    path: Path
    entries: int
    bytes: int


class VerdictCache:
    """Entries under ``root/v<FORMAT>/<2 hex>/<key>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / f"v{FORMAT}"

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The body stored for ``key``, or None when absent or not to be trusted."""
        try:
            raw = self._path(key).read_text(encoding="utf-8")
            entry = json.loads(raw)
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("body"), dict):
            return None
        body: dict[str, Any] = entry["body"]
        if entry.get("sha256") != _body_sum(body):
            return None
        return body

    def put(self, key: str, body: dict[str, Any]) -> None:
        """Store atomically; a failure to write only costs a later solve."""
        path = self._path(key)
        # the checksum is of the body as it will be read back: JSON turns int keys (node
        # ids) into strings, which sort differently
        body = json.loads(json.dumps(body))
        # the body keeps its order (what is shown follows it); the checksum does not depend on it
        text = json.dumps({"key": key, "sha256": _body_sum(body), "body": body})
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            pass

    def times(self) -> dict[str, float]:
        """How long each result took when it was last solved, by ``job_name``."""
        try:
            data = json.loads((self.dir / "times.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}

    def record_times(self, new: dict[str, float]) -> None:
        if not new:
            return
        merged = {**self.times(), **new}
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(merged, f, sort_keys=True)
            os.replace(tmp, self.dir / "times.json")
        except OSError:
            pass

    def unwritable(self) -> str | None:
        """Why nothing can be stored here (the operating system's words), or None. A run
        would go on without storing, solving again next time what it solves now: worth
        saying before it starts (KHO008)."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            return e.strerror or str(e)
        return None

    def info(self) -> CacheInfo:
        entries = 0
        size = 0
        if self.dir.is_dir():
            for p in self.dir.rglob("*.json"):
                if not p.name.startswith(".tmp-") and p.name != "times.json":
                    entries += 1
                    size += p.stat().st_size
        return CacheInfo(self.root, entries, size)

    def clear(self) -> int:
        n = self.info().entries
        if self.dir.is_dir():
            shutil.rmtree(self.dir)
        return n


def job_name(file: str, check: str, strategy: str | None, profile: str | None) -> str:
    """As Result.name: file::check[strategy, profile]."""
    return f"{file}::{check}[{strategy or 'base'}, {profile or '-'}]"


def _body_sum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
