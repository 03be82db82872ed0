"""The import graph of the khospec package, read from the source with `ast`: every
import statement counts, at module level, inside a function or under TYPE_CHECKING.

The rules (ARCHITECTURE.md, "Imports"): no cycle among the modules; the solver libraries
are imported under khospec/engine/ only; and every import goes to the importing module's
own layer or a lower one, the layers being the list in ARCHITECTURE.md, which ``LAYERS``
below repeats (a test checks that the two agree).
"""

from __future__ import annotations

import ast
import graphlib
import itertools
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "khospec"

# The layers of ARCHITECTURE.md, lowest first. "pkg.*" is a package and every module in
# it; a module named on its own (khospec.machine.cli) is taken out of its package's
# layer. FACADE is the package's lazy ``__getattr__``, which re-exports the public API on
# first use: a front end, unlike the package's body, which only holds ``__version__``.
FACADE = "khospec.__getattr__"
LAYERS: tuple[tuple[str, ...], ...] = (
    ("khospec", "khospec.diagnostics", "khospec.codes", "khospec.executor"),
    ("khospec.syntax", "khospec.types", "khospec.carith"),
    ("khospec.parse", "khospec.ir"),
    ("khospec.resolve.*",),
    ("khospec.results", "khospec.counterexample", "khospec.cache"),
    ("khospec.explain", "khospec.interp"),
    ("khospec.machine.*",),
    ("khospec.engine.*",),
    ("khospec.jobs", "khospec.runner"),
    ("khospec.api",),
    ("khospec.report", "khospec.review", "khospec.finding", "khospec.qemu", "khospec.progress"),
    ("khospec.cli", "khospec.__main__", "khospec.pytest_plugin", "khospec.machine.cli", FACADE),
)

# imported by the engine only (z3; bitwuzla and cvc5 for --cross-check)
SOLVERS = frozenset({"z3", "bitwuzla", "cvc5"})


@dataclass(frozen=True)
class Edge:
    source: str  # the importing module (FACADE for the package's __getattr__)
    target: str  # the module imported: a khospec module, or a top-level package name
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line})"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool) -> list[str]:
    """The modules one import statement loads: ``from khospec import ir`` is khospec.ir,
    ``from khospec import __version__`` is the package khospec itself."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:  # relative: from the importer's package, up level - 1 packages
        base = importer.split(".") if is_package else importer.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in modules() else source for a in node.names]


def _in_facade(tree: ast.Module) -> set[int]:
    """The ids of the import statements inside the package's ``__getattr__``."""
    return {
        id(n)
        for f in tree.body
        if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
        for n in ast.walk(f)
        if isinstance(n, ast.Import | ast.ImportFrom)
    }


@cache
def edges() -> tuple[Edge, ...]:
    out: list[Edge] = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        facade = _in_facade(tree) if name == "khospec" else set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                source = FACADE if id(node) in facade else name
                for target in _targets(node, name, path.name == "__init__.py"):
                    out.append(Edge(source, target, node.lineno))
    return tuple(dict.fromkeys(out))  # `from m import a, b` is one edge


def internal_edges() -> list[Edge]:
    return [e for e in edges() if e.target in modules() and e.target != e.source]


def layer_of(module: str) -> int | None:
    """The layer a module belongs to: its own name's, else its closest package's."""
    named = {m: i for i, layer in enumerate(LAYERS) for m in layer if not m.endswith(".*")}
    if module in named:
        return named[module]
    packages = {m[:-2]: i for i, layer in enumerate(LAYERS) for m in layer if m.endswith(".*")}
    for prefix in sorted(packages, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return packages[prefix]
    return None


def test_the_graph_sees_every_kind_of_import() -> None:
    """A guard on the reader itself: an edge of each kind it must see is there."""
    found = {(e.source, e.target) for e in edges()}
    assert ("khospec.api", "khospec.runner") in found  # module level
    assert ("khospec.runner", "khospec.engine.solve") in found  # inside a function (z3's lazy import)
    assert ("khospec.pytest_plugin", "khospec.jobs") in found  # under TYPE_CHECKING
    assert ("khospec.cache", "khospec") in found  # `from khospec import __version__`
    assert (FACADE, "khospec.api") in found  # the package's lazy re-exports
    assert ("khospec.engine.solve", "z3") in found


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {m: set() for m in modules()}
    for e in internal_edges():
        graph.setdefault(e.source, set()).add(e.target)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        lines = [str(e) for a, b in itertools.pairwise(cycle) for e in internal_edges()
                 if e.source == b and e.target == a]
        raise AssertionError("import cycle: " + " <- ".join(cycle) + "\n" + "\n".join(lines)) from None


def test_solvers_are_imported_by_the_engine_only() -> None:
    wrong = [str(e) for e in edges()
             if e.target.split(".")[0] in SOLVERS and not e.source.startswith("khospec.engine.")]
    assert not wrong, "a solver library imported outside khospec/engine/:\n" + "\n".join(wrong)


def test_every_module_has_a_layer() -> None:
    assert not [m for m in modules() if layer_of(m) is None], "add the module to the layers of ARCHITECTURE.md"


def test_imports_go_down_the_layers() -> None:
    wrong = []
    for e in internal_edges():
        src, dst = layer_of(e.source), layer_of(e.target)
        assert src is not None and dst is not None
        if dst > src:
            wrong.append(f"{e}: layer {src + 1} imports layer {dst + 1}")
    assert not wrong, "imports against the layers of ARCHITECTURE.md:\n" + "\n".join(wrong)


def _architecture_layers() -> tuple[tuple[str, ...], ...]:
    """The numbered list of the "Imports" section of ARCHITECTURE.md, each line's
    backticked paths under khospec/ as module names."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("\n## Imports\n", 1)[1].split("\n## ", 1)[0]
    layers: list[tuple[str, ...]] = []
    for line in section.splitlines():
        if not re.match(r"\d+\. ", line):
            continue
        names: list[str] = []
        for path in re.findall(r"`(khospec/[^`]*)`", line):
            if path.endswith("/"):
                names.append(path.rstrip("/").replace("/", ".") + ".*")
            elif path.endswith(":__getattr__"):
                names.append(FACADE)
            else:
                names.append(module_name(ROOT / path))
        layers.append(tuple(names))
    return tuple(layers)


def test_the_layers_are_those_of_architecture_md() -> None:
    assert _architecture_layers() == LAYERS


def test_importing_the_api_the_reports_and_the_command_line_loads_no_solver() -> None:
    """z3 is imported when a check runs, not when khospec is imported."""
    code = ("import sys, khospec.api, khospec.report, khospec.review, khospec.cli, khospec.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('z3', 'bitwuzla', 'cvc5')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
