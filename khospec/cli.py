"""The command line: a thin layer over khospec.api (streams injected for tests).

Exit codes: 0 every check met its expectation; 1 some check did not; 2 input or usage
error; 3 internal error (a bug in khospec).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TextIO

from khospec import __version__

if TYPE_CHECKING:
    from khospec.api import Options
    from khospec.ir import LayoutDef
    from khospec.results import Report


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with exit code 2 on the given stream."""

    def __init__(self, *args: object, stderr: TextIO, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._stderr = stderr

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(self._stderr)
        self._stderr.write(f"khospec: error: {message}\n")
        raise SystemExit(2)


def _build(stderr: TextIO) -> argparse.ArgumentParser:
    p = _Parser(prog="khospec", description="Machine-checked specifications of Linux KHO memory preservation.",
                stderr=stderr)
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    def sub_parser(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, stderr=stderr)

    c = sub_parser("check", "check spec files (.kho) and print the verdicts")
    c.add_argument("paths", nargs="+", metavar="PATH", help="spec files or folders")
    c.add_argument("--format", choices=("text", "json", "sarif", "mail"), default="text")
    c.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="solver budget per check, strategy and profile, in seconds of a current "
                        "x86-64 core; the same on every machine (default 60)")
    c.add_argument("--strategy", action="append", metavar="NAME",
                   help="only this strategy (repeatable; `base` for none)")
    c.add_argument("--profile", action="append", metavar="NAME", help="only this profile (repeatable)")
    c.add_argument("--check", action="append", metavar="NAME", dest="checks", help="only this check (repeatable)")
    c.add_argument("--layout", metavar="LOG",
                   help="run the strategy checks on this machine's layout (dmesg or /proc/zoneinfo); "
                        "a folder or .tar/.tar.gz archive: on every distinct layout of that fleet")
    c.add_argument("--scheduler", metavar="ADDRESS",
                   help="solve on a Dask distributed cluster (tcp://host:8786) that sees the spec "
                        "files at the same paths; needs khospec[dist]")
    c.add_argument("--jobs", "-j", type=int, default=0, metavar="N",
                   help="worker processes (default: one per core, at most 8)")
    c.add_argument("--cross-check", action="store_true",
                   help="re-solve every query with a second solver (bitwuzla, then cvc5)")
    c.add_argument("--no-replay", action="store_true", help="do not replay counterexamples")
    c.add_argument("--no-cache", action="store_true",
                   help="solve everything again; neither read nor write the verdict cache")
    _import_root(c)
    c.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the table: auto (a terminal, unless NO_COLOR is set), always, never")
    c.add_argument("--itf", metavar="DIR", help="write each counterexample trace as ITF JSON into DIR")
    c.add_argument("--svg", metavar="FILE", help="draw the first refutation's layout and chunk as SVG")

    e = sub_parser("explain", "show a check's counterexample step by step")
    e.add_argument("target", metavar="FILE::CHECK")
    e.add_argument("--strategy", metavar="NAME")
    e.add_argument("--profile", metavar="NAME")
    e.add_argument("--timeout", type=float, default=60.0)
    _import_root(e)

    f = sub_parser("report", "write a refutation as a mail, with a QEMU reproducer")
    f.add_argument("target", metavar="FILE::CHECK")
    f.add_argument("--strategy", metavar="NAME")
    f.add_argument("--profile", metavar="NAME")
    f.add_argument("--timeout", type=float, default=60.0)
    f.add_argument("--format", choices=("mail",), default="mail", help="the report's form (a plain-text mail)")
    _import_root(f)

    i = sub_parser("import", "print a machine's layout (dmesg log or /proc/zoneinfo) as a spec file")
    i.add_argument("log", metavar="LOG")
    i.add_argument("--name", default=None, help="the layout's name in the spec")

    m = sub_parser("machine", "answer the layout questions for one machine")
    m.add_argument("log", metavar="LOG")
    m.add_argument("--arch", required=True, metavar="PROFILE")
    m.add_argument("--format", choices=("text", "json", "sarif", "mail"), default="text")
    m.add_argument("--svg", metavar="FILE")

    fl = sub_parser("fleet", "answer the layout questions for every machine of a fleet")
    fl.add_argument("paths", nargs="*", metavar="PATH",
                    help="logs, folders (searched recursively), .tar/.tar.gz archives, or - for paths on stdin")
    fl.add_argument("--arch", metavar="PROFILE", help="the profile of every machine not in the manifest")
    fl.add_argument("--manifest", metavar="FILE",
                    help="CSV (header file,arch) or JSON Lines (.jsonl) naming each file's profile")
    fl.add_argument("--format", choices=("text", "json", "jsonl", "csv"), default="text")
    fl.add_argument("--svg", metavar="FILE", help="draw how the machines spread over the layouts")
    fl.add_argument("--jobs", "-j", type=int, default=0, metavar="N",
                    help="local worker processes (default: one per core; 1: in this process)")
    fl.add_argument("--scheduler", metavar="ADDRESS",
                    help="run on a Dask distributed cluster (tcp://host:8786); needs khospec[dist]")
    fl.add_argument("--batch", type=int, default=None, metavar="N",
                    help="logs per unit of work (default 64; 256 on a Dask cluster, where a task costs more)")

    sub_parser("profiles", "list the built-in architecture profiles and profile sets")

    k = sub_parser("cache", "the verdict cache (KHOSPEC_CACHE_DIR, else the user cache directory)")
    k.add_argument("action", choices=("info", "clear"))
    return p


def _write_internal_errors(report: Report, err: TextIO) -> None:
    for e in report.internal_errors:
        err.write(f"khospec: internal error (a bug in khospec; please report it): {e}\n")


def _import_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--import-root", action="append", default=[], metavar="DIR",
                   help="a folder imports may reach besides the spec's project (repeatable)")


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        return _main(list(argv) if argv is not None else sys.argv[1:], out, err)
    except SystemExit as exc:
        # argparse's: 0 after --help, 2 for a usage error; an exit with a message is one
        return int(exc.code) if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:
        err.write("khospec: interrupted\n")
        return 130  # 128 + SIGINT, as a shell reports an interrupted command
    except Exception:  # a bug: say so, keep the traceback out of the user's way
        err.write("khospec: internal error (a bug in khospec; please report it with this text):\n")
        err.write("".join(traceback.format_exc(limit=8)))
        return 3


def _main(argv: list[str], out: TextIO, err: TextIO) -> int:
    # each command imports what it needs when it runs: `--version`, `import` and the
    # machine commands start without z3
    args = _build(err).parse_args(argv)
    if args.version:
        out.write(f"khospec {__version__}\n")
        return 0
    if args.command is None:
        # no command is a usage error: the help, and exit 2
        _build(err).print_help(out)
        return 2
    if args.command == "profiles":
        return _profiles(out)
    if args.command == "cache":
        return _cache(args, out, err)
    if args.command == "check":
        return _check(args, out, err)
    if args.command == "explain":
        return _explain(args, out, err)
    if args.command == "report":
        return _report(args, out, err)
    if args.command == "import":
        from khospec.machine.cli import import_command

        return import_command(args, out, err)
    if args.command == "machine":
        from khospec.machine.cli import machine_command

        return machine_command(args, out, err)
    if args.command == "fleet":
        from khospec.machine.cli import fleet_command

        return fleet_command(args, out, err, _jobs(args.jobs), sys.stdin)
    return 2  # pragma: no cover


def _profiles(out: TextIO) -> int:
    """`khospec profiles`: each built-in profile's value of every param of the prelude
    ("symbolic" where it binds none), then the profile sets."""
    from khospec.resolve import load_prelude

    program = load_prelude()
    names = list(program.params)
    out.write("profile".ljust(18) + "".join(n.ljust(20) for n in names) + "\n")
    for p in program.profiles.values():
        b = dict(p.bindings)
        out.write(p.name.ljust(18) + "".join(str(b.get(n, "symbolic")).lower().ljust(20) for n in names) + "\n")
    if program.profile_sets:
        out.write("\nprofile set       profiles (accepted by --profile wherever a profile is)\n")
        for name, members in program.profile_sets.items():
            out.write(name.ljust(18) + ", ".join(members) + "\n")
    return 0


def _color(choice: str, out: TextIO) -> bool:
    """--color: auto honours NO_COLOR (no-color.org: set and not empty) and a terminal."""
    if choice != "auto":
        return choice == "always"
    return out.isatty() and not os.environ.get("NO_COLOR")


def _cache(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`khospec cache info|clear`, on the directory `check` uses by default."""
    from khospec.cache import VerdictCache, default_dir

    cache = VerdictCache(default_dir())
    if args.action == "clear":
        try:
            n = cache.clear()
        except OSError as e:
            # the machine's doing, not khospec's: no traceback, exit 2 as for bad input
            err.write(f"khospec: cannot clear the verdict cache at {cache.root}: {e.strerror or e}\n"
                      "  hint: remove the folder by hand, or point KHOSPEC_CACHE_DIR elsewhere\n")
            return 2
        out.write(f"removed {n} entries from {cache.root}\n")
        return 0
    info = cache.info()
    out.write(f"{info.path}: {info.entries} entries, {info.bytes / 1024:.0f} KiB\n")
    reason = cache.unwritable()
    if reason is not None:
        out.write(f"cannot be written ({reason}): `khospec check` keeps none of its results\n")
    return 0


def _jobs(n: int) -> int:
    """--jobs: N as given; 0 (the default) one per core, at most 8."""
    if n > 0:
        return n
    return max(1, min(os.cpu_count() or 1, 8))


def _check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from khospec.api import Options

    # argparse takes any float: a budget of nothing is a usage error, exit 2
    if args.timeout <= 0:
        err.write("khospec: error: --timeout must be positive\n")
        return 2
    options = Options(
        timeout_s=args.timeout,
        strategies=frozenset(args.strategy) if args.strategy else None,
        profiles=frozenset(args.profile) if args.profile else None,
        checks=frozenset(args.checks) if args.checks else None,
        jobs=_jobs(args.jobs),
        replay=not args.no_replay,
        cross_check=args.cross_check,
        cache=not args.no_cache,
        import_roots=tuple(args.import_root),
        scheduler=args.scheduler,
    )
    if args.layout:
        from khospec.machine.fleet import is_fleet_path

        if is_fleet_path(args.layout):
            return _check_fleet(args, options, out, err)
        from khospec.machine.importer import ImportError_, read_layout_file

        # a log without a readable layout is bad input (exit 2), as for `khospec machine`
        try:
            imported = read_layout_file(args.layout)
        except ImportError_ as exc:
            err.write(f"{args.layout}: error[KHO601]: {exc}\n")
            return 2
        # warnings (garbled lines and the like) do not stop the run
        for w in imported.warnings:
            err.write(f"{w}\n")
        options = replace(options, layout=imported.to_layout_def())
    return _check_report(args, options, out, err)


def _check_fleet(args: argparse.Namespace, options: Options, out: TextIO, err: TextIO) -> int:
    """``check --layout DIR``: the strategy checks on each distinct layout of a fleet; the
    checks that read no layout run once."""
    from khospec.executor import ExecutorError, make_executor
    from khospec.machine.fleet import distinct_layout_defs

    # the executor cannot start (no Dask, no scheduler at the address): exit 2
    try:
        executor = make_executor(options.jobs, options.scheduler)
    except ExecutorError as exc:
        err.write(f"khospec: error: {exc}\n")
        return 2
    try:
        layouts, damaged = distinct_layout_defs([args.layout], executor)
    finally:
        executor.close()
    for e in damaged:
        err.write(e + "\n")
    if not layouts:
        err.write(f"khospec: error: no log under {args.layout} has a layout to check\n")
        return 2
    err.write(f"khospec: {len(layouts)} distinct layout(s) in {sum(x.machines for x in layouts)} log(s)"
              f"{f', {len(damaged)} damaged' if damaged else ''}:\n")
    for x in layouts:
        err.write(f"  {x.layout.name}: {x.machines} machine(s), e.g. {x.example}\n")
    return _check_report(args, options, out, err, [x.layout for x in layouts], bad_inputs=len(damaged))


def _check_report(args: argparse.Namespace, options: Options, out: TextIO, err: TextIO,
                  layouts: list[LayoutDef] | None = None, bad_inputs: int = 0) -> int:
    from khospec.api import check_paths
    from khospec.executor import ExecutorError
    from khospec.report import diagnostics_text, table_text, to_json
    from khospec.results import Report

    progress = None
    if err.isatty():  # on stderr, whatever the format of stdout
        from khospec.progress import Progress

        progress = Progress(err, workers=options.jobs)
    report = Report()
    try:
        for i, lay in enumerate(layouts or [options.layout]):
            run = check_paths(args.paths, replace(options, layout=lay),
                              on_result=progress.advance if progress else None,
                              on_plan=progress.start if progress else None,
                              on_start=progress.begin if progress else None)
            if i == 0:
                report = run
                # the checks run on the given layout: the only ones the other layouts change
                # (a check `on` a layout of its own, or reading none, is done)
                options = replace(options, checks=frozenset(
                    r.check for r in run.results if lay is not None and r.layout == lay.name))
                if not options.checks:
                    break
                continue
            assert lay is not None
            # the same files, so the same diagnostics: the first run's are kept
            report.results.extend(r for r in run.results if r.layout == lay.name)
            report.internal_errors.extend(run.internal_errors)
            report.time_s += run.time_s
    except ExecutorError as exc:
        # the cluster could not be reached or was lost: exit 2, as for a bad --scheduler
        err.write(f"khospec: error: {exc}\n")
        return 2
    finally:
        if progress:
            progress.stop()
    if report.diagnostics:
        err.write(diagnostics_text(report) + "\n")
    # on stderr whatever the format, so that piping JSON or SARIF does not hide it
    _write_internal_errors(report, err)
    if args.format == "json":
        out.write(json.dumps(to_json(report), indent=2) + "\n")
    elif args.format == "sarif":
        from khospec.review import sarif

        out.write(json.dumps(sarif(report), indent=2) + "\n")
    elif args.format == "mail":
        from khospec.review import mail

        out.write(mail(report))
    # input errors and no result: the diagnostics on stderr say it all, no empty table
    elif report.results or not report.has_input_errors:
        out.write(table_text(report, color=_color(args.color, out)))
    if args.itf:
        from khospec.review import write_itf

        written = write_itf(report, args.itf, tuple(args.import_root))
        err.write(f"khospec: wrote {len(written)} ITF trace(s) into {args.itf}\n")
    if args.svg:
        from khospec.machine.svg import svg_for_result

        first = next((r for r in report.results if r.counterexample), None)
        if first is not None:
            with open(args.svg, "w", encoding="utf-8") as f:
                f.write(svg_for_result(first))
            err.write(f"khospec: wrote {args.svg} ({first.check} [{first.strategy or 'base'}, {first.profile}])\n")
        else:
            err.write("khospec: no refutation to draw\n")
    # a damaged log of a fleet is bad input, as in `khospec fleet`
    return 2 if bad_inputs and report.exit_code() < 2 else report.exit_code()


def _one_check(command: str, args: argparse.Namespace, err: TextIO,
               jobs: int | None) -> tuple[str, str, Options, Report] | int:
    """Run FILE::CHECK (with --strategy, --profile, --timeout): (file, check, options,
    report), or the exit code when the target or the input is wrong."""
    from dataclasses import replace

    from khospec.api import Options, check_paths
    from khospec.report import diagnostics_text

    if "::" not in args.target:
        err.write(f"khospec: error: {command} takes FILE::CHECK\n")
        return 2
    file, check = args.target.rsplit("::", 1)
    # one check; the rest as Options has it (cache and replay on, one process)
    options = Options(
        timeout_s=args.timeout,
        strategies=frozenset([args.strategy]) if args.strategy else None,
        profiles=frozenset([args.profile]) if args.profile else None,
        checks=frozenset([check]),
        import_roots=tuple(args.import_root),
    )
    if jobs is not None:
        options = replace(options, jobs=jobs)
    report = check_paths([file], options)
    if report.diagnostics:
        err.write(diagnostics_text(report) + "\n")
    _write_internal_errors(report, err)
    # a bug first, as for check: the result it cost is missing, and neither "no such
    # check" nor "nothing to report" would be true
    if report.internal_errors:
        return 3
    # warnings are printed and the command goes on
    if report.has_input_errors:
        return 2
    return file, check, options, report


def _explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ran = _one_check("explain", args, err, jobs=1)
    if isinstance(ran, int):
        return ran
    file, check, options, report = ran
    if not report.results:
        err.write(f"khospec: no check `{check}` in {file} (for that strategy and profile)\n")
        return 2
    from pathlib import Path

    from khospec.api import load
    from khospec.diagnostics import SourceCache
    from khospec.interp import explain_text

    program, _ = load(Path(file), file, SourceCache(), options.import_roots)
    check_def = next((c for c in program.checks if c.name == check), None) if program else None
    # the results up to the first counterexample: the profiles before it by verdict,
    # then that one step by step
    for r in report.results:
        out.write(explain_text(r, program, check_def) + "\n")
        if r.counterexample:
            break
    return report.exit_code()


def _report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The first refutation of FILE::CHECK as a mail (khospec/finding.py)."""
    from khospec.api import load, recheck
    from khospec.diagnostics import SourceCache
    from khospec.finding import guest_for, mail, touched_end
    from khospec.qemu import Guest, two_node_guests
    from khospec.results import Result

    ran = _one_check("report", args, err, jobs=None)
    if isinstance(ran, int):
        return ran
    file, check, options, report = ran
    refuted = [r for r in report.results if r.counterexample is not None]
    # good input, but no refutation to write up: exit 1, not 2
    if not refuted:
        verdicts = ", ".join(sorted({r.verdict.value for r in report.results})) or "no result"
        err.write(f"khospec: nothing to report: `{check}` is not refuted ({verdicts})\n")
        return 1
    r = refuted[0]
    from pathlib import Path

    program, _ = load(Path(file), file, SourceCache(), options.import_roots)
    assert program is not None
    check_def = next(c for c in program.checks if c.name == check)
    cx = r.counterexample
    guest = guest_for(r.profile or "", cx["layout"]["nodes"], touched_end(cx)) if cx is not None else "no layout"
    # the finding's own layout first, then small two-node guests: the first guest on
    # which the check is refuted again is the reproducer
    tried: list[tuple[Guest | str, Result | None]] = []
    candidates: list[Guest | str] = [guest, *two_node_guests(r.profile or "")]
    for g in candidates:
        # no guest (the string says why), or no profile to check it under
        if isinstance(g, str) or r.profile is None:
            tried.append((g, None))
            continue
        again = recheck(program, check_def, r.strategy, r.profile, g.layout("qemu_guest"), options)
        tried.append((g, again))
        if again.verdict.value == "refuted":
            break
    # none refutes it: the finding's own guest (or why there is none) is reported, with
    # how many two-node guests were tried besides
    chosen = next(((g, a) for g, a in tried if a is not None and a.verdict.value == "refuted"), tried[0])
    refuted_somewhere = chosen[1] is not None and chosen[1].verdict.value == "refuted"
    out.write(mail(program, check_def, r, chosen[0], chosen[1], own_layout=chosen[0] is guest,
                   also_tried=0 if refuted_somewhere else sum(1 for _, a in tried[1:] if a is not None)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
