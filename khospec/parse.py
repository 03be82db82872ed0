"""Stage 1: bytes -> text -> Lark tree -> AST (khospec.syntax), with located diagnostics.

Any input gives either a Module or diagnostics, never an exception: non-UTF-8 and
binary files, huge files and pathologically deep nesting are rejected with a code
before Lark sees them, and a syntax error in one declaration does not hide errors in
the next ones (each top-level declaration is re-parsed on its own to find them).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.tree import Meta

from khospec import syntax as S
from khospec.diagnostics import Diagnostic, Span

# Limits checked before Lark sees the text: a spec is small, and nested brackets (calls,
# casts, blocks) deepen the tree the transformer and the type checker recurse through,
# so deeper nesting would end in a RecursionError rather than a located diagnostic.
MAX_BYTES = 4 * 1024 * 1024
MAX_NESTING = 200

# The words that open a top-level declaration. At column 1 they mark where the next
# declaration starts, for error recovery (_declaration_chunks) and for the hint that
# the one before is incomplete.
DECL_KEYWORDS = (
    "profiles",
    "import",
    "param",
    "const",
    "enum",
    "struct",
    "fn",
    "axiom",
    "assume",
    "state",
    "step",
    "strategy",
    "profile",
    "layout",
    "check",
)

# binary units, as the kernel's SZ_1K, SZ_1M, ... are
_UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50, "EiB": 1 << 60}


def grammar_text() -> str:
    """The grammar shipped in the wheel (khospec/grammars), or the checkout's grammars/."""
    try:
        packaged = resources.files("khospec") / "grammars" / "khospec.lark"
        if packaged.is_file():
            return packaged.read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):  # pragma: no cover - odd installs
        pass
    repo = Path(__file__).resolve().parent.parent / "grammars" / "khospec.lark"
    return repo.read_text(encoding="utf-8")


@functools.cache
def _parser() -> Lark:
    # cache=True keeps the compiled LALR tables in the temp dir, keyed by the grammar's
    # hash: building them costs more than checking a typical spec.
    # The contextual lexer tries only the terminals the parser can take next, so a
    # keyword of one construct (node, zone, depth) is still a name elsewhere;
    # maybe_placeholders gives an absent `[...]` item as None, so the transformer's
    # methods take a fixed number of arguments.
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
    )


# ---------------------------------------------------------------- reading


def decode_source(name: str, data: bytes) -> tuple[str | None, list[Diagnostic]]:
    """Bytes to text, or a diagnostic saying why the file is not a spec."""
    if len(data) > MAX_BYTES:
        return None, [
            Diagnostic(
                "KHO103",
                Span.point(name),
                f"file is too large to be a spec ({len(data)} bytes; the limit is {MAX_BYTES})",
                "split the spec into several files joined with import",
            )
        ]
    # NUL is valid UTF-8, so decoding alone would not tell a binary file
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        col = nul - (data.rfind(b"\n", 0, nul) + 1) + 1
        return None, [
            Diagnostic(
                "KHO102",
                Span.point(name, line, col),
                "file contains a NUL byte: it looks binary, not a spec",
                "spec files are UTF-8 text ending in .kho",
            )
        ]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Diagnostic(
                "KHO101",
                Span.point(name, line, col),
                f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                "save the spec as UTF-8",
            )
        ]
    # a byte order mark some editors write: not part of the grammar
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, []


def _nesting_error(name: str, text: str) -> Diagnostic | None:
    """KHO104 at the first bracket past MAX_NESTING. Comments are skipped, so that
    brackets in prose do not count; brackets in strings (import paths) still do."""
    depth = 0
    line, col = 1, 0
    in_comment = False
    prev = ""
    for ch in text:
        col += 1
        if ch == "\n":
            line, col, in_comment, prev = line + 1, 0, False, ""
            continue
        if in_comment:
            continue
        if ch == "#" or (ch == "/" and prev == "/"):
            in_comment = True
        elif ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                return Diagnostic(
                    "KHO104",
                    Span.point(name, line, col),
                    f"brackets nest deeper than {MAX_NESTING} levels",
                    "name intermediate values with let or fn",
                )
        elif ch in ")]}":
            # a closing bracket too many is the parser's to report
            depth = max(depth - 1, 0)
        prev = ch
    return None


# ---------------------------------------------------------------- syntax errors

_TOKEN_NAMES = {
    "NAME": "a name",
    "PROFILE_NAME": "a profile name",
    "INT": "a number",
    "STRING": 'a string ("...")',
    "TYPE_KW": "a type",
    "QUANT": "forall or exists",
    "UNIT": "a unit (KiB, MiB, GiB, ...)",
    "ASSIGN_OP": "=",
    "$END": "end of file",
}


def _display_expected(expected: set[str]) -> str:
    """Lark's expected terminals in words: a keyword or a punctuation mark as written
    (in backquotes, listed first), a token class by its _TOKEN_NAMES description; at
    most ten."""
    parser = _parser()
    names: list[str] = []
    for term in sorted(expected):
        if term in _TOKEN_NAMES:
            names.append(_TOKEN_NAMES[term])
            continue
        try:
            pattern = parser.get_terminal(term).pattern
        except KeyError:
            names.append(term.lower())
            continue
        if pattern.type == "str":
            names.append(repr(pattern.value).replace("'", "`"))
        else:
            names.append(term.lower())
    unique = sorted(set(names), key=lambda s: (not s.startswith("`"), s))
    if len(unique) > 10:
        unique = [*unique[:10], "..."]
    return ", ".join(unique)


def _syntax_diagnostic(name: str, exc: UnexpectedInput, text: str) -> Diagnostic:
    line = getattr(exc, "line", 1) or 1
    col = getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        ch = text[pos] if pos is not None and pos < len(text) else "?"
        hint = None
        if ch == "'":
            hint = 'strings use double quotes: import "file.kho"'
        elif ch in "@$`\\":
            hint = "this character has no meaning in khospec"
        return Diagnostic(
            "KHO110",
            Span(name, line, col, line, col + 1),
            f"unexpected character {ch!r}",
            hint,
        )
    # the end of file is shown just after the last non-blank character: the true end
    # is often a blank line with nothing to point at
    if isinstance(exc, UnexpectedEOF):
        last = text.rstrip().splitlines() or [""]
        eline = len(text.rstrip().splitlines()) or 1
        return Diagnostic(
            "KHO112",
            Span(name, eline, len(last[-1]) + 1, eline, len(last[-1]) + 2),
            "unexpected end of file",
            f"expected {_display_expected(set(exc.expected))}",
        )
    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    # the LALR parser reports the end of file as an unexpected $END token
    if tok.type == "$END":
        last = text.rstrip().splitlines() or [""]
        eline = len(last)
        return Diagnostic(
            "KHO112",
            Span(name, eline, len(last[-1]) + 1, eline, len(last[-1]) + 2),
            "unexpected end of file",
            f"expected {_display_expected(set(exc.expected))}",
        )
    width = max(len(str(tok)), 1)
    hint = f"expected {_display_expected(set(exc.expected))}"
    # a declaration keyword at column 1 is where the parser noticed that the previous
    # declaration did not end (a missing `}` or operand), not where the mistake is
    if str(tok) in DECL_KEYWORDS and col == 1:
        hint = "the declaration before this one is incomplete; " + hint
    return Diagnostic(
        "KHO111",
        Span(name, line, col, line, col + width),
        f"unexpected {str(tok)!r}",
        hint,
    )


_DECL_START = re.compile(r"^({})\b".format("|".join(DECL_KEYWORDS)))


def _declaration_chunks(text: str) -> list[tuple[int, str]]:
    """Split at lines that start (column 1) with a declaration keyword."""
    # column 1 only: the specs indent a strategy's `fn` and `step`, and a chunk serves
    # only to find the errors after the first
    lines = text.split("\n")
    starts = [i for i, ln in enumerate(lines) if _DECL_START.match(ln)]
    # what precedes the first declaration (comments, or a stray line) is a chunk too
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    chunks = []
    for k, s in enumerate(starts):
        e = starts[k + 1] if k + 1 < len(starts) else len(lines)
        chunks.append((s, "\n".join(lines[s:e])))
    return chunks


# ---------------------------------------------------------------- tree -> AST


_SUFFIX = re.compile(r"(?:[uU](?:ll|LL|[lL])?|(?:ll|LL|[lL])[uU]?)?")


def int_value(text: str, unit: str | None) -> tuple[int, bool, bool, bool]:
    """An INT token's value, and what C's literal typing needs: whether it is written
    in a base other than 10 (hex_like), and its u and l suffixes (ll counts as l: long
    long has long's width on LP64)."""
    # `_` separates digit groups (0x1_0000_0000), as C23's `'` does
    body = text.replace("_", "")
    m = re.match(r"^(0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)([uUlL]*)$", body)
    if m is None:
        raise ValueError(f"malformed number {text!r}")
    digits, raw_suffix = m.group(1), m.group(2)
    # C's suffixes: u, l or ll in either order with u, ll in one case only (`1lL` and
    # `1lul` are not C)
    if not _SUFFIX.fullmatch(raw_suffix):
        raise ValueError(f"malformed integer suffix in {text!r}")
    suffix = raw_suffix.lower()
    if digits[:2].lower() == "0x":
        value, hex_like = int(digits, 16), True
    elif digits[:2].lower() == "0b":
        # C23 and a GNU extension before it; typed as hex literals are
        value, hex_like = int(digits, 2), True
    elif len(digits) > 1 and digits[0] == "0":
        # a leading 0 makes the number octal in C: 010 is 8, and 08 is no number
        if not all(c in "01234567" for c in digits):
            raise ValueError(f"malformed octal number {text!r}")
        value, hex_like = int(digits, 8), True
    else:
        value, hex_like = int(digits, 10), False
    # the unit scales the value before its type is chosen: `4 GiB` is a long
    if unit is not None:
        value *= _UNITS[unit]
    return value, hex_like, "u" in suffix, "l" in suffix


def _quant_kind(tok: Token) -> S.QuantKind:
    """The word of a QUANT token, which the grammar admits as one of these two only."""
    word = str(tok)
    if word == "forall":
        return "forall"
    assert word == "exists", word
    return "exists"


class _SyntaxErrorInTree(Exception):
    """A located diagnostic raised from a transformer method; Lark wraps it in a
    VisitError, which _to_ast unwraps."""

    def __init__(self, diag: Diagnostic) -> None:
        self.diag = diag


@v_args(meta=True, inline=True)
class _ToAst(Transformer[Token, Any]):
    """Lark tree -> syntax.py dataclasses. One method per grammar alias."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    # -- helpers
    def _span(self, meta: Meta) -> Span:
        # a rule that matched no token has no position
        if getattr(meta, "empty", True):
            return Span.point(self.file)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok_span(self, tok: Token) -> Span:
        line = tok.line or 1
        col = tok.column or 1
        end_line = tok.end_line or line
        end_col = tok.end_column or col + len(tok)
        return Span(self.file, line, col, end_line, end_col)

    def _ident(self, tok: Token) -> S.Ident:
        return S.Ident(str(tok), self._tok_span(tok))

    # -- declarations
    def start(self, meta: Meta, *decls: S.Decl) -> tuple[S.Decl, ...]:
        return decls

    def import_decl(self, meta: Meta, path: Token) -> S.Import:
        return S.Import(str(path)[1:-1], self._span(meta))

    def param_decl(self, meta: Meta, name: Token, params: tuple[S.TypedName, ...] | None, ty: S.TypeRef) -> S.ParamDecl:
        return S.ParamDecl(self._ident(name), params, ty, self._span(meta))

    def param_list(self, meta: Meta, *items: S.TypedName | None) -> tuple[S.TypedName, ...]:
        return tuple(i for i in items if i is not None)

    def typed_name(self, meta: Meta, name: Token, ty: S.TypeRef) -> S.TypedName:
        return S.TypedName(self._ident(name), ty, self._span(meta))

    def const_decl(self, meta: Meta, name: Token, ty: S.TypeRef, value: S.Expr) -> S.ConstDecl:
        return S.ConstDecl(self._ident(name), ty, value, self._span(meta))

    def enum_decl(self, meta: Meta, name: Token, *members: Token) -> S.EnumDecl:
        return S.EnumDecl(self._ident(name), tuple(self._ident(m) for m in members), self._span(meta))

    def struct_decl(self, meta: Meta, name: Token, *fields: S.TypedName) -> S.StructDecl:
        return S.StructDecl(self._ident(name), tuple(fields), self._span(meta))

    def _fn(
        self,
        meta: Meta,
        name: Token,
        params: tuple[S.TypedName, ...],
        rest: tuple[*tuple[tuple[str, S.TypeRef], ...], S.Block | S.Expr],
    ) -> S.FnDecl:
        # `ret_type?` and `emits_type?` leave no placeholder when absent, so they come
        # tagged (ret_type, emits_type below) and the body is last
        ret = emits = None
        body = rest[-1]
        for item in rest[:-1]:
            if isinstance(item, tuple) and item and item[0] == "ret":
                ret = item[1]
            elif isinstance(item, tuple) and item and item[0] == "emits":
                emits = item[1]
        return S.FnDecl(self._ident(name), params or (), ret, emits, body, self._span(meta))

    def fn_block(
        self,
        meta: Meta,
        name: Token,
        params: tuple[S.TypedName, ...],
        *rest: *tuple[*tuple[tuple[str, S.TypeRef], ...], S.Block],
    ) -> S.FnDecl:
        return self._fn(meta, name, params, rest)

    def fn_expr(
        self,
        meta: Meta,
        name: Token,
        params: tuple[S.TypedName, ...],
        *rest: *tuple[*tuple[tuple[str, S.TypeRef], ...], S.Expr],
    ) -> S.FnDecl:
        return self._fn(meta, name, params, rest)

    def ret_type(self, meta: Meta, ty: S.TypeRef) -> tuple[str, S.TypeRef]:
        return ("ret", ty)

    def emits_type(self, meta: Meta, ty: S.TypeRef) -> tuple[str, S.TypeRef]:
        return ("emits", ty)

    def _assume(
        self, kind: S.AssumeKind, meta: Meta, name: Token, formula: tuple[S.Ident | None, S.Expr]
    ) -> S.AssumeDecl:
        before, expr = formula
        return S.AssumeDecl(kind, self._ident(name), before, expr, self._span(meta))

    def axiom_decl(self, meta: Meta, name: Token, formula: tuple[S.Ident | None, S.Expr]) -> S.AssumeDecl:
        return self._assume("axiom", meta, name, formula)

    def assume_decl(self, meta: Meta, name: Token, formula: tuple[S.Ident | None, S.Expr]) -> S.AssumeDecl:
        return self._assume("assume", meta, name, formula)

    def state_assumption(self, meta: Meta, expr: S.Expr) -> tuple[None, S.Expr]:
        return (None, expr)

    def before_assumption(self, meta: Meta, step: Token, expr: S.Expr) -> tuple[S.Ident, S.Expr]:
        return (self._ident(step), expr)

    def state_decl(self, meta: Meta, *vars: S.StateVar) -> S.StateDecl:
        return S.StateDecl(tuple(vars), self._span(meta))

    def state_var(self, meta: Meta, name: Token, ty: S.TypeRef, init: S.Expr | None = None) -> S.StateVar:
        return S.StateVar(self._ident(name), ty, init, self._span(meta))

    def step_decl(self, meta: Meta, name: Token, guard: S.Expr | None, body: S.Block) -> S.StepDecl:
        return S.StepDecl(self._ident(name), guard, body, self._span(meta))

    def strategy_decl(
        self, meta: Meta, name: Token, extends: tuple[S.Ident, ...] | None, *items: S.FnDecl | S.StepDecl
    ) -> S.StrategyDecl:
        fns = tuple(i for i in items if isinstance(i, S.FnDecl))
        steps = tuple(i for i in items if isinstance(i, S.StepDecl))
        return S.StrategyDecl(self._ident(name), extends or (), fns, steps, self._span(meta))

    def extends_list(self, meta: Meta, *names: Token) -> tuple[S.Ident, ...]:
        return tuple(self._ident(n) for n in names)

    def profile_decl(self, meta: Meta, name: Token, *bindings: S.Binding) -> S.ProfileDecl:
        return S.ProfileDecl(self._ident(name), tuple(bindings), self._span(meta))

    def profile_set_decl(self, meta: Meta, name: Token, *profiles: Token) -> S.ProfileSetDecl:
        return S.ProfileSetDecl(self._ident(name), tuple(self._ident(p) for p in profiles), self._span(meta))

    def binding(self, meta: Meta, name: Token, value: S.Expr) -> S.Binding:
        # a profile binds constants only; a layout may bind a param function (layout_binding)
        return S.Binding(self._ident(name), (), value, self._span(meta))

    def layout_decl(self, meta: Meta, name: Token, *items: S.LayoutItem) -> S.LayoutDecl:
        return S.LayoutDecl(self._ident(name), tuple(items), self._span(meta))

    def layout_node(self, meta: Meta, nid: Token, *ranges: S.Interval) -> S.LayoutNode:
        return S.LayoutNode(self._small_int(nid), tuple(ranges), self._span(meta))

    def layout_zone(self, meta: Meta, zone: Token, rng: S.Interval) -> S.LayoutZone:
        return S.LayoutZone(self._ident(zone), rng, self._span(meta))

    def layout_zone_empty(self, meta: Meta, zone: Token) -> S.LayoutZone:
        return S.LayoutZone(self._ident(zone), None, self._span(meta))

    def layout_movable(self, meta: Meta, nid: Token, start: S.Expr) -> S.LayoutMovable:
        return S.LayoutMovable(self._small_int(nid), start, self._span(meta))

    def layout_mirror(self, meta: Meta, *ranges: S.Interval) -> S.LayoutMirror:
        return S.LayoutMirror(tuple(ranges), self._span(meta))

    def layout_binding(self, meta: Meta, name: Token, args: tuple[S.Expr, ...] | None, value: S.Expr) -> S.Binding:
        return S.Binding(self._ident(name), args or (), value, self._span(meta))

    def layout_args(self, meta: Meta, *args: S.Expr) -> tuple[S.Expr, ...]:
        return args

    def interval(self, meta: Meta, lo: S.Expr, hi: S.Expr) -> S.Interval:
        return S.Interval(lo, hi, self._span(meta))

    def _small_int(self, tok: Token) -> int:
        """A node id (layout_node, layout_movable): the number's value, suffixes ignored."""
        try:
            value, _, _, _ = int_value(str(tok), None)
        except ValueError as exc:
            raise _SyntaxErrorInTree(
                Diagnostic("KHO113", self._tok_span(tok), str(exc))
            ) from None
        return value

    def check_decl(self, meta: Meta, name: Token, claim: S.Claim, *clauses: S.CheckClause) -> S.CheckDecl:
        return S.CheckDecl(self._ident(name), claim, tuple(clauses), self._span(meta))

    def claim_holds(self, meta: Meta, expr: S.Expr) -> S.ClaimHolds:
        return S.ClaimHolds(expr, self._span(meta))

    def claim_always(self, meta: Meta, expr: S.Expr) -> S.ClaimAlways:
        return S.ClaimAlways(expr, self._span(meta))

    def claim_after(self, meta: Meta, step: Token, expr: S.Expr) -> S.ClaimAfter:
        return S.ClaimAfter(self._ident(step), expr, self._span(meta))

    def claim_requirement(self, meta: Meta, name: Token) -> S.ClaimRequirement:
        return S.ClaimRequirement(self._ident(name), self._span(meta))

    def _clause(self, kind: S.ClauseKind, meta: Meta, toks: tuple[Token, ...]) -> S.CheckClause:
        # the values stay text, `depth`'s number included: checks.py resolves them
        return S.CheckClause(kind, tuple(self._ident(t) for t in toks), self._span(meta))

    def under_clause(self, meta: Meta, *toks: Token) -> S.CheckClause:
        return self._clause("under", meta, toks)

    def for_clause(self, meta: Meta, *toks: Token) -> S.CheckClause:
        return self._clause("for", meta, toks)

    def assuming_clause(self, meta: Meta, *toks: Token) -> S.CheckClause:
        return self._clause("assuming", meta, toks)

    def on_clause(self, meta: Meta, *toks: Token) -> S.CheckClause:
        return self._clause("on", meta, toks)

    def depth_clause(self, meta: Meta, *toks: Token) -> S.CheckClause:
        return self._clause("depth", meta, toks)

    def expect_clause(self, meta: Meta, *toks: Token) -> S.CheckClause:
        return self._clause("expect", meta, toks)

    # -- types
    def scalar_type(self, meta: Meta, tok: Token) -> S.ScalarTypeRef:
        return S.ScalarTypeRef(str(tok), self._span(meta))

    def named_type(self, meta: Meta, tok: Token) -> S.NamedTypeRef:
        return S.NamedTypeRef(str(tok), self._span(meta))

    def map_type(self, meta: Meta, key: S.TypeRef, value: S.TypeRef) -> S.MapTypeRef:
        return S.MapTypeRef(key, value, self._span(meta))

    # -- statements
    def block(self, meta: Meta, *stmts: S.Stmt) -> S.Block:
        return S.Block(tuple(stmts), self._span(meta))

    def let_stmt(self, meta: Meta, name: Token, ty: S.TypeRef | None, value: S.Expr) -> S.Let:
        return S.Let(self._ident(name), ty, value, False, self._span(meta))

    def var_stmt(self, meta: Meta, name: Token, ty: S.TypeRef | None, value: S.Expr) -> S.Let:
        return S.Let(self._ident(name), ty, value, True, self._span(meta))

    def assign_stmt(self, meta: Meta, target: S.LValue, op: Token, value: S.Expr) -> S.Assign:
        return S.Assign(target, str(op), value, self._span(meta))

    def lv_name(self, meta: Meta, name: Token) -> S.LvName:
        return S.LvName(self._ident(name), self._span(meta))

    def lv_index(self, meta: Meta, base: S.LValue, index: S.Expr) -> S.LvIndex:
        return S.LvIndex(base, index, self._span(meta))

    def lv_field(self, meta: Meta, base: S.LValue, name: Token) -> S.LvField:
        return S.LvField(base, self._ident(name), self._span(meta))

    def if_stmt(self, meta: Meta, cond: S.Expr, then: S.Block, else_: S.Block | S.If | None = None) -> S.If:
        return S.If(cond, then, else_, self._span(meta))

    def for_range_stmt(
        self, meta: Meta, var: Token, lo: S.Expr, hi: S.Expr, where: S.Expr | None, body: S.Block
    ) -> S.ForRange:
        return S.ForRange(self._ident(var), lo, hi, where, body, self._span(meta))

    def for_all_stmt(self, meta: Meta, var: Token, ty: S.TypeRef, where: S.Expr | None, body: S.Block) -> S.ForAll:
        return S.ForAll(self._ident(var), ty, where, body, self._span(meta))

    def for_nodes_stmt(self, meta: Meta, var: Token, where: S.Expr | None, body: S.Block) -> S.ForNodes:
        return S.ForNodes(self._ident(var), where, body, self._span(meta))

    def while_stmt(self, meta: Meta, cond: S.Expr, *rest: *tuple[*tuple[S.Expr, ...], S.Block]) -> S.While:
        *invs, body = rest
        return S.While(cond, tuple(invs), body, self._span(meta))

    def invariant(self, meta: Meta, expr: S.Expr) -> S.Expr:
        return expr

    def require_stmt(self, meta: Meta, name: Token, cond: S.Expr) -> S.Require:
        return S.Require(self._ident(name), cond, self._span(meta))

    def emit_stmt(self, meta: Meta, value: S.Expr) -> S.Emit:
        return S.Emit(value, self._span(meta))

    def return_stmt(self, meta: Meta, value: S.Expr) -> S.Return:
        return S.Return(value, self._span(meta))

    def call_stmt(self, meta: Meta, name: Token, *args: S.Expr | None) -> S.CallStmt:
        call = S.Call(self._ident(name), tuple(a for a in args if a is not None), self._span(meta))
        return S.CallStmt(call, self._span(meta))

    # -- expressions
    def _bin(self, op: str) -> Callable[..., S.Binary]:
        def build(meta: Meta, left: S.Expr, right: S.Expr) -> S.Binary:
            return S.Binary(op, left, right, self._span(meta))

        return build

    def __default__(self, data: str, children: list[S.Expr], meta: Meta) -> S.Binary:
        """The binary operators, one alias each in the grammar (`or` and `||` share
        op_or), here rather than a method apiece."""
        ops = {
            "op_iff": "<->",
            "op_implies": "->",
            "op_or": "||",
            "op_and": "&&",
            "op_bitor": "|",
            "op_bitxor": "^",
            "op_bitand": "&",
            "op_eq": "==",
            "op_ne": "!=",
            "op_lt": "<",
            "op_le": "<=",
            "op_gt": ">",
            "op_ge": ">=",
            "op_shl": "<<",
            "op_shr": ">>",
            "op_add": "+",
            "op_sub": "-",
            "op_mul": "*",
            "op_div": "/",
            "op_mod": "%",
        }
        if data in ops:
            return S.Binary(ops[data], children[0], children[1], self._span(meta))
        raise AssertionError(f"no AST rule for {data}")  # pragma: no cover

    def op_cond(self, meta: Meta, cond: S.Expr, then: S.Expr, else_: S.Expr) -> S.Cond:
        return S.Cond(cond, then, else_, self._span(meta))

    def op_in_interval(self, meta: Meta, item: S.Expr, lo: S.Expr, hi: S.Expr) -> S.InInterval:
        return S.InInterval(item, lo, hi, self._span(meta))

    def op_in_call(self, meta: Meta, item: S.Expr, call: S.Call) -> S.InCall:
        return S.InCall(item, call, self._span(meta))

    def op_not(self, meta: Meta, operand: S.Expr) -> S.Unary:
        return S.Unary("!", operand, self._span(meta))

    def op_neg(self, meta: Meta, operand: S.Expr) -> S.Unary:
        return S.Unary("-", operand, self._span(meta))

    def op_bitnot(self, meta: Meta, operand: S.Expr) -> S.Unary:
        return S.Unary("~", operand, self._span(meta))

    def cast(self, meta: Meta, ty: Token, operand: S.Expr) -> S.Cast:
        return S.Cast(S.ScalarTypeRef(str(ty), self._tok_span(ty)), operand, self._span(meta))

    def quantifier(self, meta: Meta, kind: Token, binders: tuple[S.Binder, ...], body: S.Expr) -> S.Quant:
        return S.Quant(_quant_kind(kind), binders, body, self._span(meta))

    def binders(self, meta: Meta, *bs: S.Binder) -> tuple[S.Binder, ...]:
        return bs

    def typed_binder(self, meta: Meta, name: Token, ty: S.TypeRef) -> S.TypedBinder:
        return S.TypedBinder(self._ident(name), ty, self._span(meta))

    def nodes_binder(self, meta: Meta, name: Token) -> S.DomainBinder:
        return S.DomainBinder(self._ident(name), "nodes", self._span(meta))

    def ranges_binder(self, meta: Meta, name: Token) -> S.DomainBinder:
        return S.DomainBinder(self._ident(name), "ranges", self._span(meta))

    def interval_binder(self, meta: Meta, name: Token, lo: S.Expr, hi: S.Expr) -> S.IntervalBinder:
        return S.IntervalBinder(self._ident(name), lo, hi, self._span(meta))

    def field(self, meta: Meta, obj: S.Expr, name: Token) -> S.Field:
        return S.Field(obj, self._ident(name), self._span(meta))

    def index(self, meta: Meta, obj: S.Expr, idx: S.Expr) -> S.Index:
        return S.Index(obj, idx, self._span(meta))

    def call(self, meta: Meta, name: Token, *args: S.Expr | None) -> S.Call:
        return S.Call(self._ident(name), tuple(a for a in args if a is not None), self._span(meta))

    def number(self, meta: Meta, tok: Token, unit: Token | None) -> S.IntLit:
        try:
            value, hex_like, unsigned, long_ = int_value(str(tok), str(unit) if unit else None)
        except ValueError as exc:
            raise _SyntaxErrorInTree(
                Diagnostic("KHO113", self._span(meta), str(exc), "suffixes are U, L, UL, LL, ULL")
            ) from None
        text = f"{tok} {unit}" if unit else str(tok)
        return S.IntLit(text, value, hex_like, unsigned, long_, self._span(meta))

    def true_lit(self, meta: Meta) -> S.BoolLit:
        return S.BoolLit(True, self._span(meta))

    def false_lit(self, meta: Meta) -> S.BoolLit:
        return S.BoolLit(False, self._span(meta))

    def name(self, meta: Meta, tok: Token) -> S.Name:
        return S.Name(str(tok), self._span(meta))

    def struct_lit(self, meta: Meta, name: Token, *fields: S.FieldInit | None) -> S.StructLit:
        return S.StructLit(
            self._ident(name), tuple(f for f in fields if f is not None), self._span(meta)
        )

    def field_init(self, meta: Meta, name: Token, value: S.Expr) -> S.FieldInit:
        return S.FieldInit(self._ident(name), value, self._span(meta))

    def list_lit(self, meta: Meta, *items: S.Expr | None) -> S.ListLit:
        return S.ListLit(tuple(i for i in items if i is not None), self._span(meta))

    def first_node(self, meta: Meta, var: Token, cond: S.Expr, default: S.Expr) -> S.FirstNode:
        return S.FirstNode(self._ident(var), cond, default, self._span(meta))


def _too_deep(name: str, tree: Tree[Token]) -> Diagnostic:
    """KHO105 for a declaration the transformer's recursion could not get through: a
    chain of thousands of operators, which MAX_NESTING does not see (no brackets)."""
    meta = getattr(tree, "meta", None)
    line = getattr(meta, "line", 1) or 1
    col = getattr(meta, "column", 1) or 1
    return Diagnostic("KHO105", Span(name, line, col, line, col + 1),
                      "this declaration nests too deeply (thousands of operators in one chain)",
                      "split it with let or fn")


def _to_ast(name: str, tree: Tree[Token]) -> tuple[tuple[S.Decl, ...] | None, list[Diagnostic]]:
    decls: list[S.Decl] = []
    diags: list[Diagnostic] = []
    transformer = _ToAst(name)
    # declaration by declaration, so that an error in one is located there and does not
    # hide the errors of the others
    for child in tree.children:
        assert isinstance(child, Tree)  # start: _decl*, and every declaration is a rule
        try:
            decls.append(transformer.transform(child))
        except VisitError as exc:
            inner = exc.orig_exc
            if isinstance(inner, _SyntaxErrorInTree):
                diags.append(inner.diag)
            elif isinstance(inner, RecursionError):
                diags.append(_too_deep(name, child))
            else:
                raise
        # raised in Lark's own traversal rather than in a method, so not wrapped
        except RecursionError:
            diags.append(_too_deep(name, child))
    if diags:
        return None, diags
    return tuple(decls), []


def parse_text(name: str, text: str) -> tuple[S.Module | None, list[Diagnostic]]:
    """Parse one spec file's text. Returns (module, []) or (None, diagnostics)."""
    nest = _nesting_error(name, text)
    if nest is not None:
        return None, [nest]
    parser = _parser()
    try:
        tree = parser.parse(text)
    except UnexpectedInput as first:
        return None, _collect_syntax_errors(name, text, first)
    decls, diags = _to_ast(name, tree)
    if decls is None:
        return None, diags
    return S.Module(name, decls, Span(name, 1, 1, text.count("\n") + 1, 1)), []


def _collect_syntax_errors(name: str, text: str, first: UnexpectedInput) -> list[Diagnostic]:
    """The first error, then one per later declaration that fails on its own."""
    diags = [_syntax_diagnostic(name, first, text)]
    first_line = diags[0].span.line
    chunks = _declaration_chunks(text)
    if diags[0].span.col == 1 and isinstance(first, UnexpectedToken) and str(first.token) in DECL_KEYWORDS:
        # the error is that the previous declaration ended early: this one may have its own
        first_line -= 1
    else:
        early = _ended_early(name, chunks, first_line)
        if early is not None:
            # a declaration that ends where an expression may go on (`= 1 +`) lets the
            # contextual lexer read the next declaration's keyword as a name, and the
            # parser stops inside that declaration: the mistake is the one before it
            diags = [early]
            first_line = early.span.line - 1
    parser = _parser()
    for start_line, chunk in chunks:
        end_line = start_line + chunk.count("\n") + 1
        if end_line <= first_line:
            continue
        if start_line + 1 <= first_line:
            continue  # the chunk holding the first error was already reported
        # newlines in front, so that the chunk's errors carry the file's line numbers
        padded = "\n" * start_line + chunk
        try:
            tree = parser.parse(padded)
        except UnexpectedInput as exc:
            diags.append(_syntax_diagnostic(name, exc, padded))
            continue
        # a chunk that parses may still hold a malformed number or nest too deeply
        _, more = _to_ast(name, tree)
        diags.extend(more)
    return diags


def _ended_early(name: str, chunks: list[tuple[int, str]], error_line: int) -> Diagnostic | None:
    """Where a declaration before the one holding ``error_line`` (1-based) fails on its
    own at its end: at the next declaration's keyword, which is where the file shows it
    incomplete. None when every earlier declaration parses alone."""
    parser = _parser()
    for k, (_, chunk) in enumerate(chunks[:-1]):
        next_start = chunks[k + 1][0]
        if next_start + 1 > error_line:
            break
        if not _DECL_START.match(chunk) or _open_brackets(chunk):
            # comments before the first declaration; or a block that goes on past the
            # next keyword at column 1 (a strategy's `fn` written unindented)
            continue
        try:
            parser.parse(chunk)
        except (UnexpectedEOF, UnexpectedToken) as exc:
            at_end = isinstance(exc, UnexpectedEOF) or exc.token.type == "$END"
            if not at_end:
                return None  # an error of its own, inside it: the file's first error is later
            keyword = chunks[k + 1][1].split(None, 1)[0]
            return Diagnostic(
                "KHO111",
                Span(name, next_start + 1, 1, next_start + 1, 1 + len(keyword)),
                f"unexpected {keyword!r}",
                "the declaration before this one is incomplete; "
                f"expected {_display_expected(set(exc.expected))}",
            )
        except UnexpectedInput:
            return None
    return None


def _open_brackets(chunk: str) -> bool:
    """Whether ``chunk`` opens more brackets than it closes (comments aside)."""
    depth = 0
    for line in chunk.split("\n"):
        code = re.split(r"#|//", line, maxsplit=1)[0]
        depth += sum(code.count(c) for c in "{([") - sum(code.count(c) for c in "})]")
    return depth > 0


def parse_bytes(name: str, data: bytes) -> tuple[S.Module | None, str | None, list[Diagnostic]]:
    """Decode and parse; the text comes back too, for the caret lines of diagnostics."""
    text, diags = decode_source(name, data)
    if text is None:
        return None, None, diags
    module, diags = parse_text(name, text)
    return module, text, diags
