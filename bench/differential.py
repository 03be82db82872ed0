"""The full tier of the differential test: every check of the library, solver against
brute force on narrowed instances (khospec/engine/differential.py).

    python bench/differential.py [--space 16] [--grid 4] [--budget 600] [FILE ...]

Prints one line per check and strategy: what the solver and the brute force found, how
many instances the brute force enumerated, the time; then the number of disagreements.
Exit status 1 if any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from khospec.api import find_spec_files, load
from khospec.diagnostics import SourceCache
from khospec.engine.differential import Narrowing, compare


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=["spec"])
    ap.add_argument("--space", type=int, default=16)
    ap.add_argument("--grid", type=int, default=4)
    ap.add_argument("--budget", type=float, default=600.0, help="brute-force seconds per check")
    ap.add_argument("--check", action="append", help="only this check (repeatable)")
    args = ap.parse_args()
    n = Narrowing(space=args.space, grid=args.grid)
    files, _ = find_spec_files(args.paths)
    bad = total = undecided = 0
    for path, display in files:
        program, _ = load(Path(path), display, SourceCache())
        if program is None:
            print(f"{display}: does not load", file=sys.stderr)
            return 2
        for c in program.checks:
            if args.check and c.name not in args.check:
                continue
            for st in c.strategies:
                a = compare(program, c, st, n, budget_s=args.budget)
                total += 1
                if "unknown" in (a.solver, a.brute):
                    undecided += 1
                    mark = "undecided (a side ran out of time)"
                else:
                    bad += not a.agree
                    mark = "agree" if a.agree else "DISAGREE"
                print(f"{display}:{c.span.line} {c.name} [{st or 'base'}]: solver {a.solver}, "
                      f"brute force {a.brute} ({a.instances} instances), {a.time_s:.1f} s: {mark}", flush=True)
    print(f"{total} checks and strategies: {total - bad - undecided} agree, {bad} disagree, "
          f"{undecided} undecided (space {n.space} pfns, grid {n.grid})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
