"""Stage 1 on its own: text -> frozen AST (khospec/parse.py, khospec/syntax.py).

Every declaration form of grammars/khospec.lark is compared with nodes built by hand
(spans are left out of equality, so the expected trees need none); the operator table
is checked shape by shape; literals, comments, the input guards and the recovery that
reports one error per bad declaration are checked with their codes and positions.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest

from khospec import syntax as S
from khospec.diagnostics import Diagnostic, Span
from khospec.parse import MAX_BYTES, MAX_NESTING, parse_bytes, parse_text

FILE = "t.kho"


# ---------------------------------------------------------------- helpers


def parse(src: str) -> S.Module:
    module, text, diags = parse_bytes(FILE, src.encode())
    assert diags == [], diags
    assert module is not None and text == src
    return module


def one(src: str) -> S.Decl:
    [decl] = parse(src).decls
    return decl


def errors(src: str | bytes) -> list[Diagnostic]:
    data = src.encode() if isinstance(src, str) else src
    module, _, diags = parse_bytes(FILE, data)
    assert module is None and diags
    return diags


def where(d: Diagnostic) -> tuple[str, str]:
    """The code and file:line:col, as a diagnostic is printed."""
    return d.code, str(d.span)


def expr(src: str) -> S.Expr:
    decl = one(f"const X: int = {src}")
    assert isinstance(decl, S.ConstDecl)
    return decl.value


def shape(e: object) -> str:
    """An expression as an s-expression: the tree's shape without spans or literal text."""
    if isinstance(e, S.Name):
        return e.id
    if isinstance(e, S.IntLit):
        return str(e.value)
    if isinstance(e, S.BoolLit):
        return "true" if e.value else "false"
    if isinstance(e, S.Binary):
        return f"({e.op} {shape(e.left)} {shape(e.right)})"
    if isinstance(e, S.Unary):
        return f"({e.op} {shape(e.operand)})"
    if isinstance(e, S.Cond):
        return f"(? {shape(e.cond)} {shape(e.then)} {shape(e.else_)})"
    if isinstance(e, S.Cast):
        return f"(cast {e.type.name} {shape(e.operand)})"
    if isinstance(e, S.Field):
        return f"(. {shape(e.obj)} {e.name.name})"
    if isinstance(e, S.Index):
        return f"([] {shape(e.obj)} {shape(e.index)})"
    if isinstance(e, S.Call):
        return f"({e.func.name}{''.join(' ' + shape(a) for a in e.args)})"
    if isinstance(e, S.InInterval):
        return f"(in {shape(e.item)} {shape(e.lo)} {shape(e.hi)})"
    if isinstance(e, S.InCall):
        return f"(in {shape(e.item)} {shape(e.call)})"
    if isinstance(e, S.Quant):
        names = ",".join(b.name.name for b in e.binders)
        return f"({e.kind} {names} {shape(e.body)})"
    raise AssertionError(f"no shape for {e!r}")


def I(name: str) -> S.Ident:  # noqa: E743 - a short name keeps the expected trees readable
    return S.Ident(name)


def N(name: str) -> S.Name:
    return S.Name(name)


def lit(value: int, text: str | None = None) -> S.IntLit:
    return S.IntLit(text if text is not None else str(value), value, False, False, False)


def ty(name: str) -> S.ScalarTypeRef:
    return S.ScalarTypeRef(name)


def tn(name: str, t: S.TypeRef) -> S.TypedName:
    return S.TypedName(I(name), t)


def gt(a: S.Expr, b: S.Expr) -> S.Binary:
    return S.Binary(">", a, b)


# ---------------------------------------------------------------- declarations

DECLARATIONS: list[tuple[str, S.Decl]] = [
    ('import "common.kho"', S.Import("common.kho")),
    ("param PAGE_SHIFT: int", S.ParamDecl(I("PAGE_SHIFT"), None, ty("int"))),
    # a param function; an empty parameter list is a function too, not a constant
    ("param first_deferred_pfn(nid: int, zid: u8): ulong",
     S.ParamDecl(I("first_deferred_pfn"), (tn("nid", ty("int")), tn("zid", ty("u8"))), ty("ulong"))),
    ("param g(): phys_addr_t", S.ParamDecl(I("g"), (), ty("phys_addr_t"))),
    ("param C: chunk", S.ParamDecl(I("C"), None, S.NamedTypeRef("chunk"))),
    ("const PAGES: ulong = 1UL",
     S.ConstDecl(I("PAGES"), ty("ulong"), S.IntLit("1UL", 1, False, True, True))),
    ("enum zone_type { ZONE_DMA, ZONE_NORMAL, }",
     S.EnumDecl(I("zone_type"), (I("ZONE_DMA"), I("ZONE_NORMAL")))),
    ("struct chunk { pfn: ulong, order: uint }",
     S.StructDecl(I("chunk"), (tn("pfn", ty("ulong")), tn("order", ty("uint"))))),
    ("fn f(a: int) -> int { return a }",
     S.FnDecl(I("f"), (tn("a", ty("int")),), ty("int"), None, S.Block((S.Return(N("a")),)))),
    ("fn g(a: int, b: int) -> bool = a > b",
     S.FnDecl(I("g"), (tn("a", ty("int")), tn("b", ty("int"))), ty("bool"), None, gt(N("a"), N("b")))),
    ("fn h() emits ulong { emit 1 }",
     S.FnDecl(I("h"), (), None, ty("ulong"), S.Block((S.Emit(lit(1)),)))),
    ("fn k() { }", S.FnDecl(I("k"), (), None, None, S.Block(()))),
    ("axiom pos: x > 0", S.AssumeDecl("axiom", I("pos"), None, gt(N("x"), lit(0)))),
    ("assume early: before boot: x > 0", S.AssumeDecl("assume", I("early"), I("boot"), gt(N("x"), lit(0)))),
    # `;`, `,` or nothing ends a state variable
    ("state { phase: int = 0; page: [ulong] page_t\n flag: bool, }",
     S.StateDecl((
         S.StateVar(I("phase"), ty("int"), lit(0)),
         S.StateVar(I("page"), S.MapTypeRef(ty("ulong"), S.NamedTypeRef("page_t")), None),
         S.StateVar(I("flag"), ty("bool"), None),
     ))),
    ("step boot when phase == 0 { phase = 1 }",
     S.StepDecl(I("boot"), S.Binary("==", N("phase"), lit(0)),
                S.Block((S.Assign(S.LvName(I("phase")), "=", lit(1)),)))),
    ("step idle { }", S.StepDecl(I("idle"), None, S.Block(()))),
    ("strategy fast extends base, other { fn f() -> int = 1 step idle { } }",
     S.StrategyDecl(I("fast"), (I("base"), I("other")),
                    (S.FnDecl(I("f"), (), ty("int"), None, lit(1)),),
                    (S.StepDecl(I("idle"), None, S.Block(())),))),
    ("strategy plain { }", S.StrategyDecl(I("plain"), (), (), ())),
    # profile names may contain `-`, names may not
    ("profile arm64-64k { PAGE_SHIFT = 16; MAX_PAGE_ORDER = 13 }",
     S.ProfileDecl(I("arm64-64k"), (S.Binding(I("PAGE_SHIFT"), (), lit(16)),
                                    S.Binding(I("MAX_PAGE_ORDER"), (), lit(13))))),
    ("profiles all = x86_64, arm64-64k", S.ProfileSetDecl(I("all"), (I("x86_64"), I("arm64-64k")))),
    ("layout two {\n"
     "  node 0: [0, 1 GiB), [2 GiB, 3 GiB)\n"
     "  zone ZONE_DMA: [0, 16 MiB)\n"
     "  zone ZONE_DMA32: empty\n"
     "  movable node 1: 4 GiB\n"
     "  mirror: [0, 1 GiB)\n"
     "  MAX_PAGE_ORDER = 10;\n"
     "  first_deferred_pfn(0) = 0x100\n"
     "}",
     S.LayoutDecl(I("two"), (
         S.LayoutNode(0, (S.Interval(lit(0), lit(1 << 30, "1 GiB")),
                          S.Interval(lit(2 << 30, "2 GiB"), lit(3 << 30, "3 GiB")))),
         S.LayoutZone(I("ZONE_DMA"), S.Interval(lit(0), lit(16 << 20, "16 MiB"))),
         S.LayoutZone(I("ZONE_DMA32"), None),
         S.LayoutMovable(1, lit(4 << 30, "4 GiB")),
         S.LayoutMirror((S.Interval(lit(0), lit(1 << 30, "1 GiB")),)),
         S.Binding(I("MAX_PAGE_ORDER"), (), lit(10)),
         S.Binding(I("first_deferred_pfn"), (lit(0),), S.IntLit("0x100", 0x100, True, False, False)),
     ))),
    ("check c: x > 0 under fast, plain for x86_64, arm64-64k assuming pos on two depth 5 expect proved",
     S.CheckDecl(I("c"), S.ClaimHolds(gt(N("x"), lit(0))), (
         S.CheckClause("under", (I("fast"), I("plain"))),
         S.CheckClause("for", (I("x86_64"), I("arm64-64k"))),
         S.CheckClause("assuming", (I("pos"),)),
         S.CheckClause("on", (I("two"),)),
         S.CheckClause("depth", (I("5"),)),
         S.CheckClause("expect", (I("proved"),)),
     ))),
    ("check d: always x", S.CheckDecl(I("d"), S.ClaimAlways(N("x")), ())),
    ("check e: after boot: x", S.CheckDecl(I("e"), S.ClaimAfter(I("boot"), N("x")), ())),
    ("check f: requirement r;", S.CheckDecl(I("f"), S.ClaimRequirement(I("r")), ())),
]


@pytest.mark.parametrize(("src", "want"), DECLARATIONS, ids=[s.split("\n")[0][:40] for s, _ in DECLARATIONS])
def test_declaration_form(src: str, want: S.Decl) -> None:
    assert one(src) == want


def test_every_declaration_keyword_is_covered() -> None:
    # the table above must follow the grammar: one entry at least per kind of declaration
    kinds = {type(want) for _, want in DECLARATIONS}
    assert kinds == set(typing.get_args(S.Decl))


def test_a_file_of_declarations_keeps_their_order() -> None:
    src = "\n".join(s for s, _ in DECLARATIONS)
    module = parse(src)
    assert module == S.Module(FILE, tuple(want for _, want in DECLARATIONS))
    # the module's span covers the whole file
    assert module.span == Span(FILE, 1, 1, src.count("\n") + 1, 1)


def test_an_empty_file_is_an_empty_module() -> None:
    assert parse("") == S.Module(FILE, ())
    assert parse("# only a comment\n\n// and another\n") == S.Module(FILE, ())


# ---------------------------------------------------------------- statements


def _body(stmts: str) -> tuple[S.Stmt, ...]:
    decl = one(f"step s {{\n{stmts}\n}}")
    assert isinstance(decl, S.StepDecl)
    return decl.body.stmts


STATEMENTS: list[tuple[str, S.Stmt]] = [
    ("let a = 1", S.Let(I("a"), None, lit(1), False)),
    ("let a: ulong = 1", S.Let(I("a"), ty("ulong"), lit(1), False)),
    ("var b: int = 2;", S.Let(I("b"), ty("int"), lit(2), True)),
    ("x = 1", S.Assign(S.LvName(I("x")), "=", lit(1))),
    ("page[p].node.id |= 3",
     S.Assign(S.LvField(S.LvField(S.LvIndex(S.LvName(I("page")), N("p")), I("node")), I("id")), "|=", lit(3))),
    ("if a { } else if b { x = 1 } else { }",
     S.If(N("a"), S.Block(()), S.If(N("b"), S.Block((S.Assign(S.LvName(I("x")), "=", lit(1)),)), S.Block(())))),
    ("if a { }", S.If(N("a"), S.Block(()), None)),
    ("for i in [0, n) where i > 2 { }", S.ForRange(I("i"), lit(0), N("n"), gt(N("i"), lit(2)), S.Block(()))),
    ("for i in [0, 4) { }", S.ForRange(I("i"), lit(0), lit(4), None, S.Block(()))),
    ("for p: ulong where p > 0 { }", S.ForAll(I("p"), ty("ulong"), gt(N("p"), lit(0)), S.Block(()))),
    ("for n in nodes { }", S.ForNodes(I("n"), None, S.Block(()))),
    ("while i > 0 invariant i > 1 invariant j > 2 { }",
     S.While(gt(N("i"), lit(0)), (gt(N("i"), lit(1)), gt(N("j"), lit(2))), S.Block(()))),
    ("require ok: x > 0", S.Require(I("ok"), gt(N("x"), lit(0)))),
    ("emit x", S.Emit(N("x"))),
    ("return x;", S.Return(N("x"))),
    ("f(1, x)", S.CallStmt(S.Call(I("f"), (lit(1), N("x"))))),
    ("f()", S.CallStmt(S.Call(I("f"), ()))),
]


@pytest.mark.parametrize(("src", "want"), STATEMENTS, ids=[s for s, _ in STATEMENTS])
def test_statement_form(src: str, want: S.Stmt) -> None:
    assert _body(src) == (want,)


@pytest.mark.parametrize("op", ["=", "+=", "-=", "|=", "&=", "^=", "<<=", ">>="])
def test_assignment_operators(op: str) -> None:
    assert _body(f"x {op} 1") == (S.Assign(S.LvName(I("x")), op, lit(1)),)


def test_statements_need_no_separator() -> None:
    # `;` is optional: the same statements with and without it, on one line
    assert _body("let a = 1 let b = 2 x = a") == _body("let a = 1; let b = 2; x = a;")
    assert len(_body("let a = 1 let b = 2 x = a")) == 3


# ---------------------------------------------------------------- expressions

EXPRESSIONS: list[tuple[str, S.Expr]] = [
    ("true", S.BoolLit(True)),
    ("false", S.BoolLit(False)),
    ("struct chunk { .pfn = 1, .order = 2, }",
     S.StructLit(I("chunk"), (S.FieldInit(I("pfn"), lit(1)), S.FieldInit(I("order"), lit(2))))),
    ("struct chunk { }", S.StructLit(I("chunk"), ())),
    ("[1, 2,]", S.ListLit((lit(1), lit(2)))),
    ("[]", S.ListLit(())),
    ("first n in nodes where n > 0 else 7", S.FirstNode(I("n"), gt(N("n"), lit(0)), lit(7))),
    ("x in [0, 10)", S.InInterval(N("x"), lit(0), lit(10))),
    ("x in f(1)", S.InCall(N("x"), S.Call(I("f"), (lit(1),)))),
    ("(ulong) x", S.Cast(ty("ulong"), N("x"))),
    ("c.pfn", S.Field(N("c"), I("pfn"))),
    ("page[p]", S.Index(N("page"), N("p"))),
    ("f()", S.Call(I("f"), ())),
    ("forall x: int, n in nodes, r in ranges, i in [0, 4). true",
     S.Quant("forall", (S.TypedBinder(I("x"), ty("int")), S.DomainBinder(I("n"), "nodes"),
                        S.DomainBinder(I("r"), "ranges"), S.IntervalBinder(I("i"), lit(0), lit(4))),
             S.BoolLit(True))),
    ("exists p: ulong. p > 0", S.Quant("exists", (S.TypedBinder(I("p"), ty("ulong")),), gt(N("p"), lit(0)))),
    # no constant folding in the parser: `-1` is negation applied to 1
    ("-1", S.Unary("-", lit(1))),
    ("not a", S.Unary("!", N("a"))),
]


@pytest.mark.parametrize(("src", "want"), EXPRESSIONS, ids=[s for s, _ in EXPRESSIONS])
def test_expression_form(src: str, want: S.Expr) -> None:
    assert expr(src) == want


# C precedence, with `->` and `<->` below the ternary (the grammar's comment)
PRECEDENCE = [
    ("a || b && c", "(|| a (&& b c))"),
    ("a && b || c", "(|| (&& a b) c)"),
    ("a or b and c", "(|| a (&& b c))"),
    ("a | b ^ c & d", "(| a (^ b (& c d)))"),
    ("a & b == c", "(& a (== b c))"),
    ("a == b < c", "(== a (< b c))"),
    ("a != b >= c", "(!= a (>= b c))"),
    ("a < b << c", "(< a (<< b c))"),
    ("a << b + c", "(<< a (+ b c))"),
    ("a + b * c", "(+ a (* b c))"),
    ("a - b % c / d", "(- a (/ (% b c) d))"),
    ("-a * b", "(* (- a) b)"),
    ("~a & b", "(& (~ a) b)"),
    ("!a.b", "(! (. a b))"),
    ("!a && b", "(&& (! a) b)"),
    ("not a and b", "(&& (! a) b)"),
    ("(int) a + b", "(+ (cast int a) b)"),
    ("(int) -a", "(cast int (- a))"),
    ("a[i].f", "(. ([] a i) f)"),
    ("f(a).g[1]", "([] (. (f a) g) 1)"),
    ("(a + b) * c", "(* (+ a b) c)"),
    ("x + 1 in [a, b)", "(in (+ x 1) a b)"),
    ("x in [a, b) && y", "(&& (in x a b) y)"),
    ("x << 1 in f(a)", "(in (<< x 1) (f a))"),
    # the ternary binds looser than ||, and its arms nest to the right
    ("a || b ? c : d", "(? (|| a b) c d)"),
    ("a ? b : c ? d : e", "(? a b (? c d e))"),
    ("a ? b ? c : d : e", "(? a (? b c d) e)"),
    # -> and <-> are below the ternary
    ("a ? b : c -> d", "(-> (? a b c) d)"),
    ("a -> b ? c : d", "(-> a (? b c d))"),
    ("a || b -> c && d", "(-> (|| a b) (&& c d))"),
    ("a -> b <-> c -> d", "(<-> (-> a b) (-> c d))"),
    # a quantifier's body reaches as far right as it can
    ("forall x: int. a -> b", "(forall x (-> a b))"),
    ("a && forall x: int. b || c", "(&& a (forall x (|| b c)))"),
]


@pytest.mark.parametrize(("src", "want"), PRECEDENCE, ids=[s for s, _ in PRECEDENCE])
def test_precedence(src: str, want: str) -> None:
    assert shape(expr(src)) == want


LEFT_ASSOCIATIVE = ["||", "&&", "|", "^", "&", "==", "!=", "<", "<=", ">", ">=", "<<", ">>", "+", "-", "*", "/", "%"]


@pytest.mark.parametrize("op", LEFT_ASSOCIATIVE)
def test_binary_operators_associate_to_the_left(op: str) -> None:
    assert shape(expr(f"a {op} b {op} c")) == f"({op} ({op} a b) c)"


def test_implication_associates_to_the_right() -> None:
    assert shape(expr("a -> b -> c")) == "(-> a (-> b c))"


def test_iff_does_not_chain() -> None:
    # `a <-> b <-> c` is ambiguous to a reader; the grammar gives it no meaning
    [d] = errors("const X: bool = a <-> b <-> c")
    assert where(d) == ("KHO111", f"{FILE}:1:25")
    assert shape(expr("(a <-> b) <-> c")) == "(<-> (<-> a b) c)"


# ---------------------------------------------------------------- integer literals


@pytest.mark.parametrize(("text", "value", "hex_like", "unsigned", "long_"), [
    ("0", 0, False, False, False),
    ("42", 42, False, False, False),
    ("1U", 1, False, True, False),
    ("1u", 1, False, True, False),
    ("1L", 1, False, False, True),
    ("1UL", 1, False, True, True),
    ("1ul", 1, False, True, True),
    ("1LU", 1, False, True, True),
    ("1LL", 1, False, False, True),
    ("1ULL", 1, False, True, True),
    ("1llu", 1, False, True, True),
    ("0x80000000", 0x80000000, True, False, False),
    ("0XFFu", 0xFF, True, True, False),
    ("0xffff_ffff_ffff_ffffUL", (1 << 64) - 1, True, True, True),
    ("0b1010", 10, True, False, False),
    ("1_000_000", 1_000_000, False, False, False),
    # beyond every C type: the parser keeps the value, the type checker rejects it
    ("0x1_0000_0000_0000_0000", 1 << 64, True, False, False),
])
def test_integer_literal(text: str, value: int, hex_like: bool, unsigned: bool, long_: bool) -> None:
    assert expr(text) == S.IntLit(text, value, hex_like, unsigned, long_)


@pytest.mark.parametrize(("text", "value"), [
    ("4 KiB", 4 << 10), ("2 MiB", 2 << 20), ("1 GiB", 1 << 30), ("3 TiB", 3 << 40),
    ("1 PiB", 1 << 50), ("1 EiB", 1 << 60), ("0x10 MiB", 16 << 20),
])
def test_unit_multiplies(text: str, value: int) -> None:
    lit_ = expr(text)
    assert isinstance(lit_, S.IntLit)
    assert lit_.value == value and lit_.text == text


def test_literal_text_takes_part_in_equality() -> None:
    # the text is part of the node (messages quote it): 0x10 and 16 are different nodes
    assert expr("0x10") != expr("16")
    assert expr("16") == expr(" 16 ")


@pytest.mark.parametrize(("src", "col", "end_col"), [
    ("1uu", 16, 19),     # two U
    ("1lll", 16, 20),    # three L
    ("1ulu", 16, 20),
    ("0x_", 16, 19),     # no digit
    ("0b_u", 16, 20),    # no binary digit
    ("0x1UU", 16, 21),
])
def test_malformed_literal_is_kho113(src: str, col: int, end_col: int) -> None:
    [d] = errors(f"const X: int = {src}")
    assert d.code == "KHO113"
    assert d.span == Span(FILE, 1, col, 1, end_col)
    assert src in d.message


def test_malformed_node_id_in_a_layout_is_kho113() -> None:
    [d] = errors("layout L {\n  node 1uu: [0, 1 GiB)\n}")
    assert where(d) == ("KHO113", f"{FILE}:2:8")


# C11 6.4.4.1: U, L, LL and their unsigned combinations, LL in one case
@pytest.mark.parametrize("src", ["1lul", "1lL", "1Ll", "1uLl"])
def test_suffixes_c_does_not_have_are_rejected(src: str) -> None:
    [d] = errors(f"const X: int = {src}")
    assert d.code == "KHO113"


# a leading 0 makes a C literal octal: a constant copied from C keeps its value
@pytest.mark.parametrize(("src", "octal"), [("010", 8), ("0777", 511), ("08", None)])
def test_leading_zero_is_octal_or_rejected(src: str, octal: int | None) -> None:
    module, _, diags = parse_bytes(FILE, f"const X: int = {src}".encode())
    if module is None or octal is None:
        # rejecting octal altogether is as good as reading it as C does; 08 is no C literal
        assert module is None and [d.code for d in diags] == ["KHO113"]
        return
    [decl] = module.decls
    assert isinstance(decl, S.ConstDecl) and isinstance(decl.value, S.IntLit)
    assert decl.value.value == octal and decl.value.hex_like


# ---------------------------------------------------------------- comments, `;`, layout of the text


def test_comments_and_semicolons_are_insignificant() -> None:
    plain = "const A: int = 1\nfn f(a: int) -> int = a + A\ncheck c: f(1) > 0 expect proved\n"
    noisy = (
        "# a comment\n"
        "const A: int = 1; // a comment after a declaration\n"
        "fn f(a: int) -> int = a # in the middle of an expression\n"
        "  + A;\n"
        "// the last one\n"
        "check c: f(1) > 0 expect proved;\n"
    )
    assert parse(noisy) == parse(plain)


def test_comment_markers_inside_a_string_stay() -> None:
    assert one('import "a#b//c.kho"') == S.Import("a#b//c.kho")


def test_equal_up_to_layout_but_spans_differ() -> None:
    a = parse("const A: int = 1 + 2\ncheck c: A > 0")
    b = parse("\n\n  const   A :int=\n    1+2 ;\n\ncheck c :\n A>0")
    assert a == b and hash(a) == hash(b)
    ca, cb = a.decls[0], b.decls[0]
    assert isinstance(ca, S.ConstDecl) and isinstance(cb, S.ConstDecl)
    assert ca.span != cb.span and ca.name.span != cb.name.span and ca.value.span != cb.value.span
    # each span points at the node's own text
    assert ca.span == Span(FILE, 1, 1, 1, 21)
    assert cb.span == Span(FILE, 3, 3, 4, 10)
    assert cb.name.span == Span(FILE, 3, 11, 3, 12)
    assert cb.value.span == Span(FILE, 4, 5, 4, 8)
    # content still counts
    assert a != parse("const A: int = 1 + 3\ncheck c: A > 0")


def test_nodes_are_frozen() -> None:
    decl = one("const A: int = 1")
    assert isinstance(decl, S.ConstDecl)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decl.name = I("B")  # type: ignore[misc]


def test_byte_order_mark_is_ignored() -> None:
    module, text, diags = parse_bytes(FILE, "\ufeffconst A: int = 1".encode())
    assert diags == [] and text == "const A: int = 1"
    assert module == parse("const A: int = 1")
    assert module is not None and module.decls[0].span.col == 1


def test_keywords_are_names_where_a_name_is_expected() -> None:
    # the contextual lexer lets a keyword name a field where only a name can stand
    assert one("struct s { step: int, check: int }") == S.StructDecl(
        I("s"), (tn("step", ty("int")), tn("check", ty("int"))))
    # where a type can stand, `int` is the type, not a struct called int
    assert one("param p: int") == S.ParamDecl(I("p"), None, ty("int"))


# ---------------------------------------------------------------- input guards (KHO10x)


def test_nul_byte_is_kho102_at_its_position() -> None:
    [d] = errors(b"const A: int = 1\nconst \x00B: int = 2")
    assert where(d) == ("KHO102", f"{FILE}:2:7")


def test_invalid_utf8_is_kho101_at_its_position() -> None:
    [d] = errors(b"const A: int = 1\n# caf\xe9\n")
    assert where(d) == ("KHO101", f"{FILE}:2:6")
    assert "0xe9" in d.message


def test_valid_utf8_in_comments_is_accepted() -> None:
    assert parse("# café, 2 µs\nconst A: int = 1") == parse("const A: int = 1")


def test_huge_file_is_kho103_before_anything_else() -> None:
    # a NUL byte in it does not matter: the size is checked first, and nothing is decoded
    data = b"# " + b"x" * MAX_BYTES + b"\x00"
    [d] = errors(data)
    assert where(d) == ("KHO103", f"{FILE}:1:1")
    assert str(len(data)) in d.message


def test_file_at_the_size_limit_is_read() -> None:
    data = b"#" + b"x" * (MAX_BYTES - 1)
    module, _, diags = parse_bytes(FILE, data)
    assert diags == [] and module == S.Module(FILE, ())


def test_deep_brackets_are_kho104_at_the_first_too_deep() -> None:
    prefix = "const A: int =\n  "
    deep = prefix + "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1)
    [d] = errors(deep)
    assert where(d) == ("KHO104", f"{FILE}:2:{3 + MAX_NESTING}")
    # one level less is accepted, and parses to the literal
    ok = prefix + "(" * MAX_NESTING + "1" + ")" * MAX_NESTING
    decl = one(ok)
    assert isinstance(decl, S.ConstDecl) and decl.value == lit(1)


def test_brackets_in_a_hash_comment_do_not_count() -> None:
    assert parse("# " + "(" * (MAX_NESTING + 5) + "\nconst A: int = 1") == parse("const A: int = 1")


# the grammar makes `// ...` a comment; the bracket-depth guard must skip it too
def test_brackets_in_a_slash_comment_do_not_count() -> None:
    module, _, diags = parse_bytes(FILE, ("// " + "(" * (MAX_NESTING + 5) + "\nconst A: int = 1").encode())
    assert diags == []
    assert module == parse("const A: int = 1")


def test_long_operator_chain_is_kho105() -> None:
    # no bracket nests, but thousands of `+` make a tree too deep to transform
    [d] = errors("const A: int = 1\n\nconst B: int = " + "1 + " * 4000 + "1\n")
    assert where(d) == ("KHO105", f"{FILE}:3:1")


def test_long_unary_chain_is_kho105() -> None:
    [d] = errors("const B: int = " + "-" * 4000 + "1")
    assert where(d) == ("KHO105", f"{FILE}:1:1")


def test_parse_text_and_parse_bytes_agree() -> None:
    src = "const A: int = 1\ncheck c: A > 0"
    module, diags = parse_text(FILE, src)
    assert diags == [] and module == parse(src)


# ---------------------------------------------------------------- syntax errors


def test_unexpected_character_is_kho110() -> None:
    [d] = errors("const A: int = 1\nconst B: int = 2 $ 3")
    assert where(d) == ("KHO110", f"{FILE}:2:18")
    assert d.span.end_col == 19 and d.hint is not None


def test_single_quotes_get_a_hint() -> None:
    [d] = errors("import 'common.kho'")
    assert where(d) == ("KHO110", f"{FILE}:1:8")
    assert d.hint is not None and '"' in d.hint


def test_unexpected_token_is_kho111_with_its_width() -> None:
    [d] = errors("fn f(a: int) -> int = a +* 2")
    assert where(d) == ("KHO111", f"{FILE}:1:26")
    assert d.span.end_col == 27
    assert d.hint is not None and d.hint.startswith("expected ")


def test_unexpected_end_of_file_is_kho112_after_the_last_character() -> None:
    [d] = errors("const A: int = 1\nconst B: int = 1 +\n\n\n")
    assert where(d) == ("KHO112", f"{FILE}:2:19")


def test_every_bad_declaration_is_reported() -> None:
    src = (
        "const A: int = 1\n"              # 1 fine
        "fn f( -> int = 3\n"              # 2 missing ) and parameter
        "const B: int = 2\n"              # 3 fine
        "check c: x >> expect proved\n"   # 4 missing operand
        "enum e { }\n"                    # 5 an enum needs a member
        "const C: int = 1uu\n"            # 6 malformed literal (found by the AST pass)
        "struct s { a: int,\n"            # 7 ... on the next line:
        "  b int }\n"                     # 8 missing `:`
        "const D: int = 4\n"              # 9 fine
    )
    diags = errors(src)
    assert [where(d) for d in diags] == [
        ("KHO111", f"{FILE}:2:7"),
        ("KHO111", f"{FILE}:4:22"),
        ("KHO111", f"{FILE}:5:10"),
        ("KHO113", f"{FILE}:6:16"),
        ("KHO111", f"{FILE}:8:5"),
    ]


def test_two_errors_in_one_declaration_are_reported_once() -> None:
    # recovery is per declaration: the second error of the same one may be a consequence
    diags = errors("fn f( -> int { let = 1 }\nconst A: int = 1\n")
    assert [where(d) for d in diags] == [("KHO111", f"{FILE}:1:7")]


def test_declaration_cut_short_inside_brackets_does_not_hide_the_next() -> None:
    # `(1` is open when `const` comes: the keyword cannot continue the expression, the
    # error is put at it with a hint, and the next declaration is parsed on its own
    diags = errors("const A: int = (1\nconst B: int = 2 +\n")
    assert [where(d) for d in diags] == [("KHO111", f"{FILE}:2:1"), ("KHO112", f"{FILE}:2:19")]
    assert diags[0].hint is not None and diags[0].hint.startswith("the declaration before this one is incomplete")


def test_declaration_that_ends_early_does_not_hide_the_next() -> None:
    diags = errors("const A: int = 1 +\nenum e { }\nconst B: int = 2\n")
    assert len(diags) == 2
    # the first names the declaration that is incomplete, not a token of the next one
    assert diags[0].span.line == 1 or (diags[0].span.line, diags[0].span.col) == (2, 1)
    assert where(diags[1]) == ("KHO111", f"{FILE}:2:10")


def test_a_block_going_on_past_a_keyword_at_column_1_keeps_its_error() -> None:
    # a strategy's `fn` written unindented: the strategy's chunk ends early on its own,
    # but the file goes on into the `fn`, where the mistake is
    diags = errors("strategy s {\nfn f() -> int = 1 +\n}\nconst B: int = 2\n")
    assert [where(d) for d in diags] == [("KHO111", f"{FILE}:3:1")]
