"""`qnnc sweep SPEC`: run a sweep spec (TOML) on Dask's distributed scheduler: a local
cluster by default, `--scheduler ADDRESS` for an existing one. Resumable: finished units
are skipped, a changed spec is refused (`--redo-changed` recomputes what changed)."""

from __future__ import annotations

import sys
from pathlib import Path

from qnnc.runtime.cli.flag_types import PATH, count


def add_arguments(p) -> None:
    p.add_argument("spec", type=PATH, metavar="SPEC", help="the sweep spec (TOML, docs/sweeps.md)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster)")
    p.add_argument("--workers", type=count(1, 4096), metavar="N",
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--out", type=PATH, metavar="DIR", help="sweep folder (default: the spec's `out`, else runs/sweep-NAME)")
    p.add_argument("--redo-changed", action="store_true",
                   help="recompute finished units whose spec or program changed (default: refuse)")
    p.add_argument("--report-only", action="store_true", help="run nothing: rewrite the tables and plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the outcome and the tables as JSON")


def run(args) -> int:
    from qnnc.compiler import load_program
    from qnnc.compiler.diagnostics import error
    from qnnc.runtime.cli.json_output import emit
    from qnnc.runtime.sweep import engine, report
    from qnnc.runtime.sweep.spec import read_spec, units

    spec = read_spec(args.spec)
    for path in spec.programs():
        _check_params(spec, path, load_program(str(path)))

    out = Path(args.out or spec.out or f"runs/sweep-{spec.name}")
    if args.report_only:
        all_units = units(spec)
        from qnnc.runtime.sweep.unit import finished

        missing = [u.key for u in all_units if not finished(str(out), u.folder, u.hash)]
        if missing:
            raise error("Q0749", f"{len(missing)} of {len(all_units)} units of {out} are not finished "
                        f"(first: {missing[0]})", help="run the sweep without --report-only")
        outcome = engine.Outcome(out, len(all_units), skipped=len(all_units))
    else:
        say = (lambda s: print(s, file=sys.stderr))
        outcome = engine.execute(spec, out, scheduler=args.scheduler, workers=args.workers,
                                 redo_changed=args.redo_changed,
                                 progress=not args.no_progress and sys.stderr.isatty(), say=say)
    if outcome.failed:
        first, msg = outcome.failed[0]
        raise error("Q0749", f"{len(outcome.failed)} unit(s) of sweep {spec.name} failed (first: {first})",
                    help=f"see {out / 'units' / first / 'log.txt'}; fix the cause and run the same command again: "
                         "finished units are kept",
                    notes=[line for line in msg.splitlines()[-6:]])
    tables, written = report.write_report(spec, out)
    if args.json:
        emit("sweep", {"spec": str(spec.path), "out": str(out), "units": outcome.total, "ran": len(outcome.ran),
                       "skipped": outcome.skipped, "workers": outcome.workers, "dashboard": outcome.dashboard,
                       "tables": report.no_nan(tables), "written": written})
        return 0
    for t in spec.tables:
        print(f"{t.name} ({out / t.file}):")
        print(report.markdown(t, tables[t.name]), end="")
    for w in written:
        if not w.endswith(".md"):
            print(f"wrote {w}")
    print(f"sweep {spec.name}: {outcome.total} units, {len(outcome.ran)} run now, {outcome.skipped} finished before"
          + (f" ({outcome.seconds:.1f} s)" if outcome.ran else ""))
    return 0


def _check_params(spec, path, program) -> None:
    from qnnc.compiler.diagnostics import did_you_mean, error

    for name in spec.params:
        if program.param(name) is None:
            declared = [p.name for p in program.params]
            raise error("Q0753", f"the grid sets `{name}`, which {path.name} does not declare as a `param`",
                        spec.span("grid", 0, "set", name),
                        help=did_you_mean(name, declared) or
                        (f"its params: {', '.join(declared)}" if declared else "it declares no params") +
                        "; a plain variable is written without `set.`")
