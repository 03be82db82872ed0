"""Where the spec library's solver time goes: every z3 check of a cold run, by the
engine function that asked it and its answer.

    python bench/solver_time.py [PATH ...] [--jobs N] [--top K] [--json FILE]
                                [--check NAME] [--strategy NAME] [--profile NAME]
                                [--bitwuzla]

Runs `khospec check PATH --no-cache --format json` in this process with the engine's
two ways of asking a solver wrapped (``query.check_within``, the incremental solvers;
``query.solve_fresh``, the fresh bit-vector trials in a helper process). The workers
and the forks deciding each job inherit the wrappers; each process appends one line
per check to a file of its own, read back when the run has ended. The wrappers time
each call and walk the Python stack to name who asked, so the run itself is a little
slower than a plain one; the answers are the same (``--json FILE`` keeps the report, to
compare with a plain run's result by result; BENCHMARKS.md, "the solver's time by
asker", did).

Printed: the solver time by asker and answer (the decision and its cases are
``all_unsat``; an assumption's deletion trial ``minimize``; the counterexample's
shortest trace ``_shortest`` and its readability pass ``_roundest``; the vacuity check
``vacuity``; the loops' completeness ``_incomplete``), the same by the verdict of the
result it served, and for the largest of those rows the checks that spent the most.
Use it before choosing what to make faster: BENCHMARKS.md quotes its figures.

``--bitwuzla``: each call's query is also exported as SMT-LIB2 (``engine/crosscheck.py``,
in a z3 context of its own, so the checking context's terms keep their ids) and timed on
bitwuzla, within the call's nominal time; printed by asker, with what an oracle that
always picked the faster of the two would have taken. Its answers are checked against
z3's: a disagreement ends the run with exit code 3. Needs bitwuzla (``khospec[cross]``,
not on macOS): without it, exit code 2 before anything is solved.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

# the engine functions a solver call is attributed to, the most specific first: a
# minimisation trial runs all_unsat too, a readability step runs query
ASKERS = ("_incomplete", "vacuity", "minimize", "_shortest", "_roundest", "complete", "_exit_gap",
          "all_unsat", "alone")


def _asker(frame: FrameType | None) -> tuple[str, bool]:
    """Which engine function the solver call ``frame`` is inside asked it, and whether
    for every profile at once. Only the code names: reading a frame's locals would keep
    them alive, and z3's search follows the ids of the terms it makes, so freeing them
    later changes the answers."""
    names: list[str] = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return next((a for a in ASKERS if a in names), names[1] if len(names) > 1 else "?"), "attempt_profiles" in names


def _install(log_dir: Path, bitwuzla: bool) -> None:
    import khospec.engine.query as query
    from khospec import ir
    from khospec.engine import freshbv, solve

    checked, fresh, run = query.check_within, freshbv.solve_fresh, solve.run
    job = ["?", "?"]  # the (check[strategy], profiles) this process decides now

    def log(kind: str, seconds: float, answer: str, second: list[Any]) -> None:
        # the frame that called the wrapped function: log's caller is the wrapper
        asker, together = _asker(sys._getframe(2))
        profile = "every profile at once" if together else job[1]
        with open(log_dir / f"{os.getpid()}.jsonl", "a") as fh:
            fh.write(json.dumps([kind, asker, job[0], profile, answer, seconds, *second]) + "\n")

    def timed(ask: Callable[..., Any], kind: str, answer: Callable[[Any], str],
              question: Callable[..., tuple[list[Any], int]]) -> Callable[..., Any]:
        """``ask`` with each call's time and answer logged; its arguments passed on as
        given. ``question``: the call's formulas and budget in units, from its arguments."""
        def call(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            r = ask(*args, **kw)
            seconds = time.perf_counter() - t0
            log(kind, seconds, answer(r), _second_opinion(*question(*args, **kw)) if bitwuzla else [])
            return r
        return call

    def incremental(s: Any, budget: int, assumptions: Any) -> tuple[list[Any], int]:
        return [*s.assertions(), *assumptions], budget

    def fresh_question(facts: list[Any], ctx: Any, units: int, *_: Any, **__: Any) -> tuple[list[Any], int]:
        return list(facts), units

    def named_run(program: ir.Program, check: ir.CheckDef, strategy: str | None,
                  profiles: list[ir.ProfileDef | None], **kw: Any) -> Any:
        job[:] = [f"{check.name}[{strategy or 'base'}]", ",".join(p.name if p else "?" for p in profiles)]
        return run(program, check, strategy, profiles, **kw)

    # the bindings the engine looks up at each call (query imported solve_fresh's name;
    # the runner calls solve.run)
    vars(query).update(check_within=timed(checked, "z3", str, incremental),
                       solve_fresh=timed(fresh, "fresh", lambda a: str(a.result), fresh_question))
    vars(solve)["run"] = named_run


def _second_opinion(formulas: list[Any], units: int) -> list[Any]:
    """bitwuzla's answer to the same formulas and its seconds, export excluded, within
    the call's nominal time (the budget's units at the engine's rate)."""
    from khospec.engine.crosscheck import bitwuzla_verdict, smtlib
    from khospec.engine.query import RLIMIT_PER_SECOND

    text = smtlib(formulas)
    t0 = time.perf_counter()
    answer = bitwuzla_verdict(text, max(1, units * 1000 // RLIMIT_PER_SECOND))
    return [answer, time.perf_counter() - t0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=["spec"])
    ap.add_argument("--jobs", "-j", type=int, default=2)
    ap.add_argument("--top", type=int, default=5, help="checks shown under each large row")
    ap.add_argument("--json", type=Path, default=None, help="also write the run's JSON report here")
    ap.add_argument("--bitwuzla", action="store_true", help="also time bitwuzla on each call's query")
    for only in ("check", "strategy", "profile"):
        ap.add_argument(f"--{only}", action="append", default=[], help=f"only this {only}, as khospec check takes it")
    args = ap.parse_args()
    if args.bitwuzla and importlib.util.find_spec("bitwuzla") is None:
        sys.stderr.write("--bitwuzla needs bitwuzla: pip install 'khospec[cross]' (no macOS wheels)\n")
        return 2

    from khospec.cli import main as khospec_main

    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp) / "log"
        log_dir.mkdir()
        _install(log_dir, args.bitwuzla)
        out, err = io.StringIO(), io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(err):
            selection = [x for only in ("check", "strategy", "profile") for name in getattr(args, only)
                         for x in (f"--{only}", name)]
            code = khospec_main(["check", *args.paths, *selection, "--no-cache", "--format", "json",
                                 "-j", str(args.jobs)], stdout=out)
        wall = time.perf_counter() - t0
        rows = [json.loads(line) for f in sorted(log_dir.iterdir()) for line in f.read_text().splitlines()]
    if code not in (0, 1):  # bad input or a failure: what khospec said, and nothing to time
        sys.stderr.write(err.getvalue())
        return code
    report = json.loads(out.getvalue())
    if args.json is not None:
        args.json.write_text(out.getvalue())
    verdicts: dict[str, dict[str, str]] = collections.defaultdict(dict)
    for r in report["results"]:
        verdicts[f"{r['check']}[{r['strategy'] or 'base'}]"][r["profile"] or "?"] = r["verdict"]

    def verdict(check: str, profiles: str) -> str:
        """The verdict of the results a call served: a job's profiles (comma-separated),
        or all of the check's results for a query over every profile at once."""
        mine = verdicts.get(check, {})
        names = list(mine) if profiles == "every profile at once" else profiles.split(",")
        seen = {mine.get(n, "?") for n in names}
        return seen.pop() if len(seen) == 1 else "mixed"

    total = sum(r[5] for r in rows)
    print(f"{len(report['results'])} results in {wall:.1f} s wall at -j {args.jobs} (exit {code}); "
          f"{len(rows)} solver calls, {total:.1f} s in them")
    by_asker: collections.Counter[tuple[str, str, str]] = collections.Counter()
    calls: collections.Counter[tuple[str, str, str]] = collections.Counter()
    by_check: dict[tuple[str, str, str], collections.Counter[tuple[str, str]]] = collections.defaultdict(
        collections.Counter)
    by_verdict: collections.Counter[tuple[str, str]] = collections.Counter()
    for kind, asker, check, profile, answer, seconds, *_ in rows:
        by_asker[kind, asker, answer] += seconds
        calls[kind, asker, answer] += 1
        by_check[kind, asker, answer][check, profile] += seconds
        by_verdict[asker, verdict(check, profile)] += seconds
    print("\nby asker and answer (seconds, calls, share of the solver time):")
    for key, seconds in by_asker.most_common():
        kind, asker, answer = key
        label = f"{asker} {answer}" + (" (fresh solver)" if kind == "fresh" else "")
        print(f"  {seconds:7.1f} s {calls[key]:5d}  {100 * seconds / max(total, 1e-9):4.1f}%  {label}")
        if seconds >= total / 20:
            for (check, profile), s in by_check[key].most_common(args.top):
                print(f"  {'':12s}{s:6.1f} s  {check} on {profile}")
    print("\nby asker and the verdict of the result it served:")
    for (asker, v), seconds in by_verdict.most_common():
        print(f"  {seconds:7.1f} s  {asker} for {v}")
    if args.bitwuzla:
        return _compare_second(rows) or code
    return code


def _compare_second(rows: list[list[Any]]) -> int:
    """z3's time against bitwuzla's by asker; 3 if they contradict each other."""
    z3_s: collections.Counter[str] = collections.Counter()
    bz_s: collections.Counter[str] = collections.Counter()
    best: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    undecided: collections.Counter[str] = collections.Counter()
    clashes = []
    for kind, asker, check, profile, answer, seconds, other, other_s in rows:
        label = asker + (" (fresh solver)" if kind == "fresh" else "")
        z3_s[label] += seconds
        bz_s[label] += other_s
        best[label] += min(seconds, other_s)
        calls[label] += 1
        undecided[label] += other == "unknown"
        if {answer, other} == {"sat", "unsat"}:
            clashes.append(f"{check} on {profile} ({asker}): z3 {answer}, bitwuzla {other}")
    print("\nz3 against bitwuzla on the same queries (seconds: z3, bitwuzla, the faster of "
          "the two each time; calls; bitwuzla undecided):")
    for label in sorted(z3_s, key=lambda k: -z3_s[k]):
        print(f"  {z3_s[label]:7.1f} {bz_s[label]:7.1f} {best[label]:7.1f}  {calls[label]:5d} "
              f"{undecided[label]:4d}  {label}")
    print(f"  {sum(z3_s.values()):7.1f} {sum(bz_s.values()):7.1f} {sum(best.values()):7.1f}  "
          f"{sum(calls.values()):5d} {sum(undecided.values()):4d}  in all")
    for c in clashes:
        print("DISAGREEMENT: " + c)
    return 3 if clashes else 0


if __name__ == "__main__":
    sys.exit(main())
