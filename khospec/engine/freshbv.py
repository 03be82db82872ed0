"""A pure bit-vector query on fresh QF_BV solvers, in a fresh process.

Why a process: z3's SAT-based bit-vector solver does not give the same search for the
same formulas, seed and budget in every process. In one khospec worker, after other
checks had run, the same query with the same seed and resource limit spent a different
number of units and returned a different model than in a worker that had run nothing
before (`split_partition_huge_range` on 5 of 9 profiles). The state it depends on
outlives z3 contexts, so a new context is not enough. A new process that reads the
query as SMT-LIB text starts from the same state every time: its answer, its model and
the units it spent depend on the text alone.

The parent (``solve_fresh``) prints the formulas, runs this file as a script with the
same interpreter, and reads one JSON line back. The child (``main``) tries the query
one trial after another, each on a new solver with its own seed and SAT phase selection,
within the given resource units; it stops at the first trial that decides the query.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import z3


@dataclass(frozen=True)
class Trial:
    """One try at the query: a new solver with this seed and phase selection (z3's SAT
    ``phase``; "caching" is its default), stopped after ``units`` resource units."""

    seed: int
    phase: str
    units: int


@dataclass(frozen=True)
class FreshAnswer:
    result: str  # "sat" | "unsat" | "unknown"
    units: int  # resource units the trials spent in all
    model: Any  # z3.ModelRef in the caller's context when result == "sat", else None


def solve_fresh(facts: list[Any], ctx: z3.Context, units: int, schedule: list[Trial],
                wall_ms_per_unit: float) -> FreshAnswer:
    """Decide the conjunction of ``facts`` (pure QF_BV) within ``units`` resource units,
    trying ``schedule`` in order. A child that fails to start or answers in a form not
    understood is an unknown answer with nothing spent: the caller then asks its own
    solver."""
    # a solver only to print the facts: its sexpr() is the declarations and assertions
    # the child parses
    printer = z3.Solver(ctx=ctx)
    printer.add(*facts)
    request = json.dumps({"units": units, "schedule": [[t.seed, t.phase, t.units] for t in schedule],
                          "wall_ms_per_unit": wall_ms_per_unit})
    # the units decide; the wall clock only stops a child that stops counting (and pays
    # for starting Python)
    wall_s = 5 + units * wall_ms_per_unit / 1000
    # a fixed hash seed: nothing in the child's Python varies from one run to the next
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    # this file as a script, with the same interpreter and so the same z3; the request
    # is the first line of its input, the query the rest
    try:
        done = subprocess.run([sys.executable, os.path.abspath(__file__)], input=request + "\n" + printer.sexpr(),
                              capture_output=True, text=True, timeout=wall_s, env=env, check=False)
        reply = json.loads(done.stdout.strip().splitlines()[-1])
        result, spent, values = str(reply["result"]), int(reply["units"]), reply["model"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError, TypeError):
        return FreshAnswer("unknown", 0, None)
    if result != "sat":
        return FreshAnswer(result if result == "unsat" else "unknown", spent, None)
    # a sat answer without a usable model (see _values) cannot show a counterexample
    model = _model(values, ctx)
    return FreshAnswer("sat", spent, model) if model is not None else FreshAnswer("unknown", spent, None)


def _model(values: Any, ctx: z3.Context) -> Any:
    """The child's constants as a model in ``ctx``: the same names and sorts name the
    same constants there, since a khospec query has only named constants."""
    if not isinstance(values, list):
        return None
    m = z3.Model(ctx)
    for name, width, value in values:
        if width == 0:
            m.update_value(z3.Bool(name, ctx), z3.BoolVal(bool(value), ctx))
        else:
            m.update_value(z3.BitVec(name, int(width), ctx), z3.BitVecVal(int(value), int(width), ctx))
    return m


def rlimit_count(s: z3.Solver) -> int:
    """The resource units z3 has counted in the solver's context so far."""
    st = s.statistics()
    # the key is absent until the context has done any work
    return int(st.get_key_value("rlimit count")) if "rlimit count" in list(st.keys()) else 0


def _values(m: Any) -> list[list[Any]] | None:
    """The model as [name, width (0 for a bool), value] rows, sorted so that the reply
    is the same text for the same model; None if it gives anything but constants with
    values (a pure bit-vector query has nothing else)."""
    out: list[list[Any]] = []
    for d in m.decls():
        v = m[d]
        if d.arity() != 0:
            return None
        if z3.is_bool(v):
            out.append([d.name(), 0, z3.is_true(v)])
        elif z3.is_bv_value(v):
            out.append([d.name(), v.size(), v.as_long()])
        else:
            return None
    return sorted(out)


def main() -> None:
    """The child: read the request and the query, try the trials in order, print one
    JSON line (the result, the units spent, the model's values)."""
    request = json.loads(sys.stdin.readline())
    text = sys.stdin.read()
    left = int(request["units"])
    per_unit = float(request["wall_ms_per_unit"])
    spent = 0
    result, values = "unknown", None
    for seed, phase, cap in request["schedule"]:
        # a trial's share of the schedule, never more than what is left of the budget
        cap = min(int(cap), left - spent)
        if cap <= 0:
            break
        # a new solver per trial: none starts from what an earlier one learnt
        s = z3.SolverFor("QF_BV")
        s.set("random_seed", int(seed))
        if phase != "caching":
            # z3's default left as it is: the same search as a solver never told
            s.set("phase", str(phase))
        s.from_string(text)
        # parsing counts units too: only the search is charged
        before = rlimit_count(s)
        s.set("rlimit", cap)
        s.set("timeout", max(1, int(cap * per_unit)))
        r = s.check()
        spent += rlimit_count(s) - before
        if r == z3.sat:
            result, values = "sat", _values(s.model())
            break
        if r == z3.unsat:
            result = "unsat"
            break
    print(json.dumps({"result": result, "units": spent, "model": values}))


if __name__ == "__main__":
    main()
