"""Diagnostics are values: a stable code, a span, a message, a hint.

Nothing in the front end prints. Every stage returns diagnostics; the command line and
the pytest plugin render them. Codes are stable (tests and users grep for them); every
code, its stage, severity and meaning, is registered in ``khospec/codes.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class Span:
    """A region of a source file; lines and columns are 1-based, ends exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line > 0 else self.file

    @staticmethod
    def point(file: str, line: int = 1, col: int = 1) -> Span:
        """One column at ``line``:``col`` (the file's start by default): one caret."""
        return Span(file, line, col, line, col + 1)

    @staticmethod
    def whole(name: str) -> Span:
        """A file, folder or command-line option as a whole: no line and column."""
        return Span(name, 0, 0, 0, 0)


# the span of nodes made rather than parsed (the defaults of syntax.py and ir.py); no
# source is registered under its name, so no line is shown for it
NO_SPAN = Span("<builtin>", 1, 1, 1, 1)


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Related:
    """Another place the diagnostic concerns (where a name was first declared),
    rendered as a note."""

    span: Span
    message: str


@dataclass(frozen=True)
class Diagnostic:
    code: str
    span: Span
    message: str
    hint: str | None = None
    severity: Severity = Severity.ERROR
    related: tuple[Related, ...] = field(default=())

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


class SourceCache:
    """Source texts by file name, for rendering carets under the offending code."""

    def __init__(self) -> None:
        self._texts: dict[str, list[str]] = {}

    def add(self, name: str, text: str) -> None:
        self._texts[name] = text.splitlines()

    def lines(self, name: str) -> list[str] | None:
        return self._texts.get(name)

    def line(self, name: str, line: int) -> str | None:
        lines = self._texts.get(name)
        if lines is None or not 1 <= line <= len(lines):
            return None
        return lines[line - 1]


def _caret_line(src: str, span: Span) -> str:
    """Carets under ``span`` in the line ``src``: at least one, none past the line's
    end, and a span over several lines underlines the rest of its first."""
    start = max(span.col - 1, 0)
    width = max(span.end_col - span.col, 1) if span.end_line == span.line else max(len(src) - start, 1)
    width = min(width, max(len(src) - start, 1))
    # tabs copied from the line, so that the carets line up whatever the tab width
    prefix = "".join("\t" if ch == "\t" else " " for ch in src[:start])
    return prefix + "^" * width


def render(diag: Diagnostic, sources: SourceCache) -> str:
    """``file:line:col: error[CODE]: message``, the source line, a caret, the hint."""
    out = [f"{diag.span}: {diag.severity.value}[{diag.code}]: {diag.message}"]
    # line 0 is a whole file or an option (Span.whole): no line to show
    src = sources.line(diag.span.file, diag.span.line) if diag.span.line > 0 else None
    if src is not None:
        shown, span = src, diag.span
        if len(src) > 160:
            # a window around the column, so the caret stays under the code
            start = max(diag.span.col - 80, 0)
            shown = ("..." if start else "") + src[start:start + 160] + ("..." if start + 160 < len(src) else "")
            # the columns move left by the cut, and right by the "..." shown in its place
            shift = start - (3 if start else 0)
            span = Span(
                span.file, span.line, span.col - shift, span.line, max(span.end_col - shift, span.col - shift + 1)
            )
        out.append(f"  {diag.span.line:>4} | {shown}")
        out.append(f"       | {_caret_line(shown, span)}")
    for rel in diag.related:
        out.append(f"  note: {rel.span}: {rel.message}")
    if diag.hint:
        out.append(f"  hint: {diag.hint}")
    return "\n".join(out)


class InputError(Exception):
    """Raised by the API when a spec cannot be checked; carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic], sources: SourceCache) -> None:
        self.diagnostics = diagnostics
        self.sources = sources
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(render(d, self.sources) for d in self.diagnostics)
