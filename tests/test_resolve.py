"""The resolve stage on small inline specs: names, types, declarations, checks, layouts,
and the diagnostics (code, message, order) when they are wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

import khospec.resolve
from khospec import ir
from khospec.diagnostics import Diagnostic, Severity, SourceCache
from khospec.parse import parse_bytes
from khospec.resolve import PRELUDE_NAME, Checker, check_program, load_prelude, prelude_text
from khospec.types import BOOL, INT, UINT, ULONG


def resolve(src: str) -> tuple[ir.Program, list[Diagnostic]]:
    """``src`` checked with the prelude, as the root file ``t.kho``."""
    prelude, _, _ = parse_bytes(PRELUDE_NAME, prelude_text().encode())
    module, _, pdiags = parse_bytes("t.kho", src.encode())
    assert prelude is not None and module is not None, pdiags
    checker = Checker([prelude, module], "t.kho")
    return checker.run(), checker.diags


def clean(src: str) -> ir.Program:
    program, diags = resolve(src)
    assert diags == [], diags
    return program


def errors(src: str) -> list[tuple[str, str]]:
    _, diags = resolve(src)
    return [(d.code, d.message) for d in diags if d.severity is Severity.ERROR]


# ---------------------------------------------------------------- names


def test_locals_resolve_to_their_binding() -> None:
    fn = clean("fn f(x: int) -> int { let y = x + 1; return y }").fns["f"]
    assert isinstance(fn.body, tuple)
    let, ret = fn.body
    assert isinstance(let, ir.SLet) and isinstance(ret, ir.SReturn)
    (x,) = fn.params
    assert isinstance(let.value, ir.Binary) and let.value.left == x
    assert ret.value == ir.Local("y", let.var.uid, INT)
    assert let.var.uid != x.uid


def test_inner_scopes_shadow_and_end() -> None:
    fn = clean("fn f(x: int) -> int { if x > 0 { let x = 2; return x } return x }").fns["f"]
    assert isinstance(fn.body, tuple)
    branch, ret = fn.body
    assert isinstance(branch, ir.SIf) and isinstance(ret, ir.SReturn)
    inner_let, inner_ret = branch.then
    assert isinstance(inner_let, ir.SLet) and isinstance(inner_ret, ir.SReturn)
    assert inner_ret.value == inner_let.var
    assert ret.value == fn.params[0]


def test_unknown_name_suggests_the_close_one() -> None:
    _, diags = resolve("const LIMIT: int = 4\ncheck c: LIMT == 4")
    (d,) = diags
    assert (d.code, d.message, d.hint) == ("KHO210", "unknown name `LIMT`", "did you mean `LIMIT`?")
    assert (d.span.file, d.span.line, d.span.col) == ("t.kho", 2, 10)


def test_unknown_function_and_field() -> None:
    assert errors("struct s { a: int }\nfn f(v: s) -> int = v.b + g(1)") == [
        ("KHO305", "s has no field `b`"),
        ("KHO210", "unknown function `g`"),
    ]


def test_constants_are_inlined_in_any_order() -> None:
    fn = clean("fn f() -> ulong = K\nconst K: ulong = J << 4\nconst J: ulong = 1").fns["f"]
    assert fn.body == ir.Const(16, ULONG)


def test_constant_defined_in_terms_of_itself() -> None:
    assert errors("const A: int = B\nconst B: int = A") == [
        ("KHO224", "constant `A` is defined in terms of itself"),
    ]


def test_initial_values_may_name_what_is_declared_after_them() -> None:
    program = clean("state { n: ulong = K + LIMIT }\nconst K: ulong = 1 << 4\nconst LIMIT: int = 2")
    assert program.state[0].init == ir.Const(18, ULONG)
    program = clean("state { n: ulong = f(P) }\nparam P: ulong\nfn f(x: ulong) -> ulong = x + 1")
    init = program.state[0].init
    assert isinstance(init, ir.CallFn) and init.args == (ir.ParamRef("P", ULONG),)
    # a cycle among the constants an initial value names is still one
    assert errors("state { n: int = A }\nconst A: int = B\nconst B: int = A") == [
        ("KHO224", "constant `A` is defined in terms of itself"),
    ]


# ---------------------------------------------------------------- types


def test_usual_arithmetic_conversions_become_explicit() -> None:
    fn = clean("param N: uint\nfn f() -> ulong = N + 1").fns["f"]
    body = fn.body
    assert isinstance(body, ir.Convert) and body.ty == ULONG
    add = body.operand
    assert isinstance(add, ir.Binary) and add.op == "+" and add.ty == UINT
    assert add.left == ir.ParamRef("N", UINT)
    assert add.right == ir.Const(1, UINT)


def test_constant_expressions_fold_with_c_semantics() -> None:
    fn = clean("fn f() -> bool = (1 << 31) == -2147483647 - 1 && (uint)(-1) == 4294967295U").fns["f"]
    # comparisons of constants fold; the logical operators stay for the lowering
    assert fn.body == ir.Binary("&&", ir.Const(True, BOOL), ir.Const(True, BOOL), BOOL)


def test_comparison_types_and_signedness_warning() -> None:
    program, diags = resolve("fn f(a: int, b: ulong) -> bool = a < b")
    (d,) = diags
    assert d.severity is Severity.WARNING
    assert (d.code, d.message) == ("KHO311", "comparing int with ulong converts the signed operand to ulong")
    body = program.fns["f"].body
    assert isinstance(body, ir.Binary) and body.ty == BOOL
    assert isinstance(body.left, ir.Convert) and body.left.ty == ULONG


def test_type_errors() -> None:
    assert errors("fn f(x: int) -> int = x && true") == [
        ("KHO306", "the left operand of && must be a bool, not int"),
    ]
    assert errors("fn f(x: bool) -> int = x ? 1 : true") == [
        ("KHO308", "the two arms of `?:` have types int and bool"),
    ]
    assert errors("check c: 99999999999999999999 > 0") == [
        ("KHO302", "99999999999999999999 does not fit in any C integer type (at most 64 bits)"),
    ]


def test_state_is_not_readable_in_a_pure_claim() -> None:
    assert errors("state { n: int = 0 }\ncheck c: n == 0") == [
        ("KHO410", "`n` is machine state; it cannot be read here"),
    ]


def test_a_step_guard_may_read_state_but_not_change_it() -> None:
    program = clean("state { x: int = 0 }\nfn low() -> bool = x < 3\nstep s when low() { x = x + 1 }")
    guard = program.steps["s"].guard
    assert isinstance(guard, ir.CallFn) and guard.name == "low"
    assert errors("state { x: int = 0 }\nfn bump() -> bool {\n  x = x + 1\n  return true\n}\n"
                  "step s when bump() { x = 5 }") == [
        ("KHO410", "`bump` changes the machine state, so it cannot be used here"),
    ]
    assert errors("fn f() -> bool {\n  var i = 0\n  while i < 3 { i += 1 }\n  return i == 3\n}\n"
                  "state { x: int = 0 }\nstep s when f() { x = 1 }") == [
        ("KHO412", "`f` contains a while loop or emits values; such functions can only be used in claims"),
    ]


def test_constants_and_initial_values_call_no_state_function() -> None:
    reads = ("KHO410", "`rd` reads the machine state, so it cannot be used here")
    # reported once, at the call, however many places the constant is inlined into
    _, diags = resolve("state { x: int = 0 }\nfn rd() -> int = x\nconst K: int = rd()\ncheck c: K == 0\n"
                       "check d: K + 1 == 1")
    assert [(d.code, d.message, d.span.line, d.span.col) for d in diags] == [(*reads, 3, 16)]
    assert errors("state { x: int = 0 }\nfn rd() -> int = x\nstate { y: int = rd() }") == [reads]
    assert errors("state { x: int = 0 }\nfn rd() -> int = x\nconst K: int = rd()\nstate { y: int = K }") == [
        reads,
    ]
    # a constant is inlined, so its calls are those of every place it is used in
    assert errors("fn f() -> int = K\nconst K: int = f()") == [
        ("KHO411", "`f` calls itself (directly or through other functions)"),
    ]
    assert errors("fn f() -> int {\n  var i = 0\n  while i < 3 { i += 1 }\n  return i\n}\nconst K: int = f()\n"
                  "state { x: int = 0 }\nstep s { x = K }") == [
        ("KHO412", "`f` contains a while loop or emits values; such functions can only be used in claims"),
    ]
    # a constant calling a function that touches no state is a value like any other
    program = clean("fn f(a: int) -> int = a + 1\nconst K: int = f(1)\nstate { x: int = K }\ncheck c: K == 2")
    assert isinstance(program.state[0].init, ir.CallFn)


def test_depth_reads_numbers_as_the_language_does() -> None:
    assert clean("check c: true depth 010").checks[0].depth == 8
    assert clean("check c: true depth 0x10").checks[0].depth == 16
    assert errors("check c: true depth 08") == [("KHO113", "malformed octal number '08'")]
    assert errors("check c: true depth 0101") == [("KHO421", "depth is a number of steps between 0 and 64")]


# ---------------------------------------------------------------- declarations


def test_duplicate_declarations_name_the_first() -> None:
    _, diags = resolve("const A: int = 1\nconst A: int = 2\nstruct s { a: int, a: int }")
    # structs are entered before constants: their diagnostic comes first
    assert [(d.code, d.message) for d in diags] == [
        ("KHO202", "field `a` is declared twice"),
        ("KHO202", "constant `A` is already declared"),
    ]
    (related,) = diags[1].related
    assert (related.span.line, related.span.col, related.message) == (1, 7, "first declared here")
    assert diags[1].hint == "each name is declared once across a spec and its imports"


def test_duplicates_across_kinds_and_with_the_prelude() -> None:
    assert errors("fn PAGE_SHIFT() -> int = 1\nparam q: int\nconst q: int = 1") == [
        ("KHO202", "function `PAGE_SHIFT` is already declared"),
        ("KHO202", "constant `q` is already declared"),
    ]


def test_a_builtin_struct_cannot_be_declared_again() -> None:
    _, diags = resolve("struct mem_range { a: int }\nfn f(r: mem_range) -> int = r.a")
    # the built-in struct stands: it has no field `a`
    assert [(d.code, d.message) for d in diags] == [
        ("KHO202", "struct `mem_range` is already declared"),
        ("KHO305", "mem_range has no field `a`"),
    ]
    assert diags[0].hint == "`mem_range` is built in: it is what `ranges` holds and pfn_range() returns"
    assert errors("const mem_range: int = 1") == [("KHO202", "constant `mem_range` is already declared")]


def test_steps_have_their_own_namespace() -> None:
    program = clean("state { n: int = 0 }\nfn go() -> int = 1\nstep go { n = go() }")
    assert "go" in program.steps and "go" in program.fns
    assert errors("state { n: int = 0 }\nstep go { n = 1 }\nstep go { n = 2 }") == [
        ("KHO202", "step `go` is already declared"),
    ]


def test_recursive_functions_are_reported() -> None:
    assert errors("fn f(x: int) -> int = g(x)\nfn g(x: int) -> int = f(x)") == [
        ("KHO411", "`f` calls itself (directly or through other functions)"),
    ]


def test_strategy_must_keep_the_signature() -> None:
    assert errors("fn f(x: int) -> int = x\nstrategy s { fn f(x: uint) -> int = 1 }") == [
        ("KHO404", "`f` in strategy `s` has a different signature from the base definition"),
    ]


def test_a_strategy_defining_a_function_twice_types_both() -> None:
    assert errors("fn f() -> int = 1\nstrategy s {\n  fn f() -> int = nosuch\n  fn f() -> int = other\n}") == [
        ("KHO210", "unknown name `nosuch`"),
        ("KHO202", "`f` is defined twice in strategy `s`"),
        ("KHO210", "unknown name `other`"),
    ]
    # the first definition is the strategy's
    program, _ = resolve("fn f() -> int = 1\nstrategy s {\n  fn f() -> int = 2\n  fn f() -> int = 3\n}")
    assert program.strategies["s"].fns["f"].body == ir.Const(2, INT)


def test_a_strategy_extending_into_a_cycle_is_not_blamed_for_it() -> None:
    program, diags = resolve("strategy S extends A { }\nstrategy A extends B { }\nstrategy B extends A { }")
    (d,) = diags
    assert (d.code, d.message) == ("KHO405", "strategy `A` extends itself (through A -> B -> A)")
    assert d.span.line == 2
    assert [(r.span.line, r.message) for r in d.related] == [(3, "`B` extends `A`")]
    # S keeps its parent; the cycle is broken where it was reported
    assert program.strategies["S"].extends == ("A",)
    assert (program.strategies["A"].extends, program.strategies["B"].extends) == ((), ("A",))
    # reported from the member declared first, however the search reaches the cycle
    assert errors("strategy S extends B { }\nstrategy A extends B { }\nstrategy B extends A { }\n"
                  "strategy T extends T, S { }") == [
        ("KHO405", "strategy `A` extends itself (through A -> B -> A)"),
        ("KHO405", "strategy `T` extends itself (through T -> T)"),
    ]


# ---------------------------------------------------------------- checks


def test_check_references_are_resolved() -> None:
    program = clean(
        "fn f(x: int) -> int = x\n"
        "strategy s { fn f(x: int) -> int = 0 }\n"
        "assume small: true\n"
        "check c: f(1) == 1 under base, s for x86_64, kho_archs assuming small depth 3 expect refuted"
    )
    (c,) = program.checks
    assert c.name == "c" and c.file == "t.kho"
    assert c.strategies == (None, "s")
    assert c.profiles == ("x86_64", "arm64-4k", "arm64-16k", "arm64-64k")
    assert (c.assuming, c.depth, c.expect, c.layout) == (("small",), 3, ir.Verdict.REFUTED, None)
    assert c.claim.kind == "holds"


def test_check_with_unknown_references() -> None:
    assert errors(
        "check c: true under nosuch for nowhere assuming build_check on box expect provd"
    ) == [
        ("KHO210", "unknown strategy `nosuch`"),
        ("KHO210", "unknown profile `nowhere`"),
        ("KHO210", "unknown assumption `build_check`"),
        ("KHO210", "unknown layout `box`"),
        ("KHO422", "unknown verdict `provd`"),
    ]
    _, diags = resolve("check c: true assuming build_check")
    assert diags[0].hint == "`build_check` is an axiom: it is always in force"


def test_check_clause_given_twice_and_duplicate_check() -> None:
    assert errors("check c: true expect proved expect refuted\ncheck d: true\ncheck d: true") == [
        ("KHO420", "`expect` is given twice for check `c`"),
        ("KHO202", "check `d` is already declared"),
    ]


def test_only_the_root_files_checks_are_the_programs() -> None:
    prelude, _, _ = parse_bytes(PRELUDE_NAME, prelude_text().encode())
    lib, _, _ = parse_bytes("lib.kho", b"check in_lib: true")
    root, _, _ = parse_bytes("t.kho", b"check in_root: true")
    assert prelude is not None and lib is not None and root is not None
    program = Checker([prelude, lib, root], "t.kho").run()
    assert [c.name for c in program.checks] == ["in_root"]


def test_requirement_claims_name_a_require() -> None:
    program = clean("state { n: int = 0 }\nstep go { require positive: n >= 0; n = 1 }\n"
                    "check c: requirement positive")
    assert program.checks[0].claim.requirement == "positive"
    assert errors("check c: requirement nothing") == [
        ("KHO210", "no `require nothing: ...` in any step or function"),
    ]


# ---------------------------------------------------------------- layouts


def test_layout_ranges_are_sorted_and_split_at_mirrors() -> None:
    program = clean(
        "layout box {\n"
        "  node 1: [0x3000, 0x5000)\n"
        "  node 0: [0x1000, 0x3000)\n"
        "  zone DMA32: [0x1000, 0x4000)\n"
        "  zone Movable: empty\n"
        "  mirror: [0x2000, 0x4000)\n"
        "  PAGE_SHIFT = 12\n"
        "}"
    )
    lay = program.layouts["box"]
    assert lay.ranges == (
        ir.LayoutRange(0x1000, 0x2000, 0, False),
        ir.LayoutRange(0x2000, 0x3000, 0, True),
        ir.LayoutRange(0x3000, 0x4000, 1, True),
        ir.LayoutRange(0x4000, 0x5000, 1, False),
    )
    assert lay.zones == ((1, 0x1000, 0x4000), (3, 0, 0))
    assert lay.bindings == (("PAGE_SHIFT", (), 12),)
    assert lay.mirrored_kernelcore is None


def test_layout_errors() -> None:
    assert errors("layout a { node 0: [0x2000, 0x1000) }") == [
        ("KHO230", "range [0x2000, 0x1000) is empty or outside the 64-bit physical space"),
    ]
    assert errors("layout b { node 0: [0, 0x2000) node 1: [0x1000, 0x3000) }") == [
        ("KHO231", "ranges [0x0, 0x2000) of node 0 and [0x1000, 0x3000) of node 1 overlap"),
    ]
    assert errors("layout c { node 0: [0, 0x1000) zone Hgh: empty nosuch = 1 PAGE_SHIFT = 0x100000000 }") == [
        ("KHO210", "unknown zone `Hgh`"),
        ("KHO210", "unknown param `nosuch`"),
        ("KHO302", "4294967296 does not fit in PAGE_SHIFT's type int"),
    ]


def test_layout_values_must_be_constants() -> None:
    assert errors("param N: ulong\nlayout a { node 0: [0, N) }") == [
        ("KHO320", "a layout address must be a constant"),
    ]


def test_a_check_on_a_layout() -> None:
    program = clean("layout box { node 0: [0, 0x1000) }\ncheck c: pfn_in_ram(0) on box")
    assert program.checks[0].layout == "box"


# ---------------------------------------------------------------- loading


def test_load_prelude_is_the_prelude_checked_alone() -> None:
    program = load_prelude()
    assert program.root == PRELUDE_NAME
    assert {"x86_64", "arm64-4k", "any"} <= set(program.profiles)
    assert program.profile_sets["kho_archs"] == ("x86_64", "arm64-4k", "arm64-16k", "arm64-64k")
    assert program.checks == []


def test_the_package_exports_what_callers_import() -> None:
    assert set(khospec.resolve.__all__) == {
        "PRELUDE_NAME", "Checker", "ParseCache", "check_program", "load_prelude", "prelude_text", "spec_tree",
    }


def test_check_program_reads_imports(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "lib.kho").write_text("const K: int = 3\n")
    (tmp_path / "root.kho").write_text('import "lib.kho"\ncheck c: K == 3\n')
    program, diags = check_program(tmp_path / "root.kho", SourceCache(), "root.kho")
    assert diags == []
    assert program is not None and [c.name for c in program.checks] == ["c"]


@pytest.mark.parametrize("target", ["../outside.kho", "lib.txt"])
def test_imports_outside_the_tree_or_not_specs_are_refused(tmp_path: Path, target: str) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "pyproject.toml").write_text("")
    (tree / "root.kho").write_text(f'import "{target}"\n')
    program, diags = check_program(tree / "root.kho", SourceCache(), "root.kho")
    assert program is None
    assert [d.code for d in diags] == ["KHO206"]
