"""A second opinion: the same query, exported as SMT-LIB2, solved by other solvers.

The query handed over is the whole one (every lazily instantiated fact included), so the
answers must match: unsat for a proof, sat for a refutation. A khospec query is
quantifier-free bit-vectors with uninterpreted functions (QF_UFBV). Bitwuzla, built for
exactly that logic, answers first; cvc5 answers when bitwuzla is not installed (it has no
macOS wheel) or cannot decide within the limit. Any answer that contradicts z3's is an
error, however many solvers agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

# all a khospec query uses: no quantifiers (each is instantiated or Skolemized), no
# integers, structs as separate fields
LOGIC = "QF_UFBV"


class CrossCheckError(Exception):
    """The solvers disagree, or no second solver can be run."""


def _strict(root: z3.ExprRef, memo: dict[int, z3.ExprRef]) -> z3.ExprRef:
    """`root` without `and`/`or` of a single argument. z3 builds and prints them, but
    SMT-LIB 2.6 declares both left-associative, so they take two arguments or more, and
    bitwuzla rejects the script otherwise. Iterative: trace formulas nest deeper than
    Python's recursion limit."""
    # post-order: a term is rebuilt once its children are, and each term once (memo by
    # id), so the shared subterms of the trace formulas stay shared
    stack = [root]
    while stack:
        e = stack[-1]
        if e.get_id() in memo:
            stack.pop()
            continue
        kids = e.children() if z3.is_app(e) else []
        todo = [k for k in kids if k.get_id() not in memo]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        args = [memo[k.get_id()] for k in kids]
        if len(args) == 1 and (z3.is_and(e) or z3.is_or(e)):
            memo[e.get_id()] = args[0]
        elif not kids or all(a.eq(k) for a, k in zip(args, kids, strict=True)):
            # nothing changed below: the term itself
            memo[e.get_id()] = e
        else:
            # the same declaration with as many arguments: z3 declares n-ary operators per arity
            memo[e.get_id()] = e.decl()(*args)
    return memo[root.get_id()]


def smtlib(formulas: list[Any]) -> str:
    """The query as an SMT-LIB2 script. Built in a context of its own: new terms in the
    checking context would renumber the terms created after them, and z3's search
    (hence whether a proof fits in its budget) depends on that numbering, so a
    --cross-check run could otherwise change a later verdict."""
    own = z3.Context()
    s = z3.Solver(ctx=own)
    # the translated formulas must outlive the memo: it is keyed by term ids, which z3
    # reuses once a term is freed
    translated = [f.translate(own) for f in formulas]
    memo: dict[int, z3.ExprRef] = {}
    for f in translated:
        s.add(_strict(f, memo))
    # z3 writes no set-logic line; the second solvers set up for the logic it names
    return f"(set-logic {LOGIC})\n" + str(s.to_smt2())


def bitwuzla_verdict(smt2: str, timeout_ms: int) -> str | None:
    """"sat", "unsat" or "unknown" from bitwuzla; None when it is not installed."""
    try:
        import bitwuzla
    except ImportError:
        return None
    options = bitwuzla.Options()
    options.set(bitwuzla.Option.TIME_LIMIT_PER, timeout_ms)
    parser = bitwuzla.Parser(bitwuzla.TermManager(), options)
    # the script without its check-sat, parsed from the string (not a file) and asserted;
    # the check runs below through the API, under the time limit
    try:
        parser.parse(smt2.replace("(check-sat)", ""), True, False)
    except bitwuzla.BitwuzlaException as exc:
        raise CrossCheckError(f"bitwuzla cannot read the exported query: {exc}") from exc
    result = parser.bitwuzla().check_sat()
    return {bitwuzla.Result.SAT: "sat", bitwuzla.Result.UNSAT: "unsat"}.get(result, "unknown")


def cvc5_verdict(smt2: str, timeout_ms: int) -> str | None:
    """"sat", "unsat" or "unknown" from cvc5; None when it is not installed."""
    try:
        import cvc5
    except ImportError:
        return None
    solver = cvc5.Solver(cvc5.TermManager())
    solver.setOption("tlimit-per", str(timeout_ms))
    parser = cvc5.InputParser(solver)
    parser.setStringInput(cvc5.InputLanguage.SMT_LIB_2_6, smt2.replace("(check-sat)", ""), "khospec")
    symbols = parser.getSymbolManager()
    # the declarations and assertions, command by command; the check runs below
    while True:
        cmd = parser.nextCommand()
        if cmd.isNull():
            break
        cmd.invoke(solver, symbols)
    result = solver.checkSat()
    if result.isSat():
        return "sat"
    if result.isUnsat():
        return "unsat"
    return "unknown"


def solvers() -> list[tuple[str, Callable[[str, int], str | None]]]:
    """The second solvers, in the order they are asked. A function, so that tests can
    stand a deliberately wrong solver in."""
    return [("bitwuzla", bitwuzla_verdict), ("cvc5", cvc5_verdict)]


def cross_check(formulas: list[Any], z3_answer: str, timeout_ms: int) -> str:
    """A note for the result; raises CrossCheckError on a disagreement."""
    smt2 = smtlib(formulas)
    undecided: list[str] = []
    for name, verdict in solvers():
        other = verdict(smt2, timeout_ms)
        if other is None:
            continue
        # undecided is no disagreement: the next solver is asked
        if other == "unknown":
            undecided.append(name)
            continue
        if other != z3_answer:
            raise CrossCheckError(f"z3 says {z3_answer}, {name} says {other}")
        after = f" after {' and '.join(undecided)} could not decide" if undecided else ""
        return f"{name} agrees ({other}){after}"
    # none installed: --cross-check asked for a second opinion that cannot be given
    if not undecided:
        raise CrossCheckError("--cross-check needs bitwuzla or cvc5: pip install 'khospec[cross]'")
    return f"{' and '.join(undecided)} could not decide the query within {timeout_ms} ms"
