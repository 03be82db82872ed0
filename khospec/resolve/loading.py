"""Loading: the prelude, the root file and everything it imports, and the stage's
entry points (``check_program``, ``load_prelude``).

Imports are confined to the spec tree before anything is read: spec files come from
contributors, and what the diagnostics quote ends up in logs.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from khospec import ir
from khospec import syntax as S
from khospec.diagnostics import Diagnostic, SourceCache, Span
from khospec.parse import parse_bytes
from khospec.resolve.checker import Checker

PRELUDE_NAME = "<prelude>"


def prelude_text() -> str:
    """The prelude shipped in the wheel, or the checkout's when run from source."""
    try:
        res = resources.files("khospec") / "prelude" / "prelude.kho"
        if res.is_file():
            return res.read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):  # pragma: no cover
        pass
    return (Path(__file__).resolve().parent.parent / "prelude" / "prelude.kho").read_text("utf-8")


def load_prelude() -> ir.Program:
    """The prelude checked on its own: its params, profiles and profile sets (the one
    table of architecture constants), for callers that need no spec file."""
    module, _, _ = parse_bytes(PRELUDE_NAME, prelude_text().encode())
    assert module is not None, "the prelude parses"
    return Checker([module], PRELUDE_NAME).run()


def spec_tree(path: Path) -> Path:
    """Where a spec's imports may come from: the nearest folder at or above ``path``
    holding ``pyproject.toml`` or ``.git`` (the project), else ``path``'s own folder."""
    start = (path if path.is_dir() else path.parent).resolve()
    for p in (start, *start.parents):
        if (p / "pyproject.toml").exists() or (p / ".git").exists():
            return p
    return start


# keyed by the display name too: the spans of a parsed module carry it
ParseCache = dict[tuple[str, bytes], tuple[S.Module | None, str | None, list[Diagnostic]]]


def _parse(name: str, data: bytes, parsed: ParseCache | None
           ) -> tuple[S.Module | None, str | None, list[Diagnostic]]:
    """parse_bytes, once per (name, content) within one run (``parsed``): the files a
    library's roots import in common, and the prelude, are read by every root."""
    if parsed is None:
        return parse_bytes(name, data)
    key = (name, data)
    if key not in parsed:
        parsed[key] = parse_bytes(name, data)
    return parsed[key]


def load_modules(
    root: Path, sources: SourceCache, display: str | None = None, trees: tuple[Path, ...] = (),
    parsed: ParseCache | None = None,
) -> tuple[list[S.Module], list[Diagnostic]]:
    """The prelude, the root file and everything it imports (each once). Imports must
    stay inside the spec tree (``spec_tree(root)``, and ``trees``) and name .kho files;
    anything else is refused before it is read: spec files come from contributors, and
    what the diagnostics quote ends up in logs."""
    allowed = (spec_tree(root), *(t.resolve() for t in trees))
    diags: list[Diagnostic] = []
    modules: list[S.Module] = []
    # the prelude is the first module, so its names are declared first: a spec that
    # declares one again is the one KHO202 points at
    ptext = prelude_text()
    sources.add(PRELUDE_NAME, ptext)
    pmod, _, pdiags = _parse(PRELUDE_NAME, ptext.encode(), parsed)
    diags.extend(pdiags)
    if pmod is not None:
        modules.append(pmod)
    # breadth first, each file once by its resolved path (an import cycle or a file two
    # modules import is read once); the modules' order is the order of pass 1
    seen: set[Path] = set()
    queue: list[tuple[Path, str, Span | None]] = [(root.resolve(), display or str(root), None)]
    while queue:
        path, name, from_span = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            # an unreadable import is reported at the import that names it
            span = from_span or Span.point(name)
            what = "imported file" if from_span else "file"
            diags.append(
                Diagnostic(
                    "KHO201",
                    span,
                    f"cannot read {what} {name}: {exc.strerror or exc}",
                    "import paths are relative to the importing file",
                )
            )
            continue
        module, text, pdiags = _parse(name, data, parsed)
        if text is not None:
            sources.add(name, text)
        diags.extend(pdiags)
        if module is None:
            continue
        modules.append(module)
        for decl in module.decls:
            if isinstance(decl, S.Import):
                # resolved (symbolic links followed) before the tree check, so that no link
                # leads out of the tree; messages name the import as the spec writes it,
                # relative to the importing file's name, not the resolved path
                target = (path.parent / decl.path).resolve()
                tname = _display_path(Path(name).parent / decl.path)
                if target.suffix != ".kho":
                    diags.append(Diagnostic("KHO206", decl.span, f"`{decl.path}` is not a spec file",
                                            "imports name .kho files"))
                elif not any(target.is_relative_to(t) for t in allowed):
                    diags.append(Diagnostic(
                        "KHO206", decl.span, f"`{decl.path}` is outside the spec tree",
                        "imports stay inside the project holding the spec (the folder with pyproject.toml "
                        "or .git); --import-root DIR allows another"))
                else:
                    queue.append((target, tname, decl.span))
    return modules, diags


def _display_path(p: Path) -> str:
    """``p`` with `.` and `dir/..` removed by name alone (no file system access), so
    that a display name stays relative; a leading `..` stays."""
    parts: list[str] = []
    for part in p.parts:
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return str(Path(*parts)) if parts else "."



def check_program(root: Path, sources: SourceCache, display: str | None = None,
                  trees: tuple[Path, ...] = (), parsed: ParseCache | None = None
                  ) -> tuple[ir.Program | None, list[Diagnostic]]:
    """Load, parse and type-check ``root`` with its imports and the prelude."""
    modules, diags = load_modules(root, sources, display, trees, parsed)
    # no type checking with a module missing: its names would all be reported unknown
    if any(d.is_error for d in diags):
        return None, diags
    checker = Checker(modules, display or str(root))
    try:
        program = checker.run()
    except RecursionError:
        # a chain of operators the parser could still build may nest deeper than the
        # checker's recursion allows
        diags.append(Diagnostic("KHO105", Span.point(display or str(root)),
                                "the spec nests too deeply to check", "split long expressions with let or fn"))
        return None, diags
    diags.extend(checker.diags)
    if any(d.is_error for d in diags):
        return None, diags
    for m in program.modules:
        lines = sources.lines(m.file)
        if lines is not None:
            program.source_lines[m.file] = lines
    return program, diags
