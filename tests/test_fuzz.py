"""The front end never raises on any input: grammar-shaped text, mutations of the real
spec files, and random bytes all give a program or located diagnostics."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khospec.diagnostics import SourceCache, render
from khospec.parse import parse_bytes
from khospec.resolve import PRELUDE_NAME, Checker, prelude_text
from tests.conftest import ROOT

SPECS = [p.read_bytes() for p in sorted((ROOT / "spec").rglob("*.kho"))]

TOKENS = [
    "check", "c", ":", "forall", "p", ": ulong", ".", "->", "pfn_node(p)", "==", "0", "1UL",
    "<<", "(", ")", "[", "]", "{", "}", "fn", "f", "-> int", "=", "let", "x", "if", "while",
    "invariant", "require", "r", "step", "s", "when", "state", "page", "[ulong] int", ",",
    "struct", "expect", "proved", "under", "for", "x86_64", "assuming", "assume", "a", "in",
    "nodes", "ranges", "first", "where", "else", "emit", "return", "import", '"x.kho"', "\n",
    "#", "GiB", "0x10", "-", "!", "~", "?", "&&", "||", "<->", "(int)", "struct chunk {", ".pfn",
]


def _front_end(data: bytes) -> None:
    sources = SourceCache()
    module, _text, diags = parse_bytes("fuzz.kho", data)
    for d in diags:
        assert d.code.startswith("KHO")
        assert d.span.line >= 1 and d.span.col >= 1
        render(d, sources)
    if module is None:
        assert diags
        return
    prelude, _, _ = parse_bytes(PRELUDE_NAME, prelude_text().encode())
    assert prelude is not None
    checker = Checker([prelude, module], "fuzz.kho")
    checker.run()
    for d in checker.diags:
        assert d.code.startswith("KHO")
        render(d, sources)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup(tokens: list[str]) -> None:
    _front_end(" ".join(tokens).encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SPECS), st.data())
def test_mutated_specs(spec: bytes, data: st.DataObject) -> None:
    b = bytearray(spec)
    for _ in range(data.draw(st.integers(1, 6))):
        if not b:
            break
        i = data.draw(st.integers(0, len(b) - 1))
        op = data.draw(st.sampled_from(["delete", "insert", "replace", "cut"]))
        if op == "delete":
            del b[i]
        elif op == "insert":
            b.insert(i, data.draw(st.sampled_from(list(b"(){}[];:.,=<>-+!#\"\n x0"))))
        elif op == "replace":
            b[i] = data.draw(st.integers(0, 255))
        else:
            del b[i:]
    _front_end(bytes(b))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    _front_end(data)


def test_pathological_inputs() -> None:
    for data in [b"", b"\n" * 10000, b"(" * 100000, b"check c: " + b"1 + " * 20000 + b"1",
                 "check c: \u00e9\u4e2d == 1".encode(), b"\xef\xbb\xbfcheck c: 1 == 1"]:
        _front_end(data)
