"""A second opinion: the same query, exported as SMT-LIB2, solved by cvc5.

The query given to cvc5 is the whole one (every lazily instantiated fact included), so
both solvers must agree: unsat for a proof, sat for a refutation.
"""

from __future__ import annotations

from typing import Any

import z3


class CrossCheckError(Exception):
    """The two solvers disagree, or the second one cannot be run."""


def smtlib(formulas: list[Any], ctx: z3.Context) -> str:
    s = z3.Solver(ctx=ctx)
    for f in formulas:
        s.add(f)
    return "(set-logic ALL)\n" + str(s.to_smt2())


def cvc5_verdict(smt2: str, timeout_ms: int) -> str:
    """"sat", "unsat" or "unknown" from cvc5 on an SMT-LIB2 script."""
    try:
        import cvc5
    except ImportError as exc:
        raise CrossCheckError("--cross-check needs cvc5: pip install 'khospec[cross]'") from exc
    tm = cvc5.TermManager()
    solver = cvc5.Solver(tm)
    solver.setOption("tlimit-per", str(timeout_ms))
    parser = cvc5.InputParser(solver)
    parser.setStringInput(cvc5.InputLanguage.SMT_LIB_2_6, smt2.replace("(check-sat)", ""), "khospec")
    symbols = parser.getSymbolManager()
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


def cross_check(formulas: list[Any], ctx: z3.Context, z3_answer: str, timeout_ms: int) -> str:
    """A note for the result; raises CrossCheckError on a disagreement."""
    other = cvc5_verdict(smtlib(formulas, ctx), timeout_ms)
    if other == "unknown":
        return f"cvc5 could not decide the query within {timeout_ms} ms"
    if other != z3_answer:
        raise CrossCheckError(f"z3 says {z3_answer}, cvc5 says {other}")
    return f"cvc5 agrees ({other})"
