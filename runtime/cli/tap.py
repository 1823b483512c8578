"""`qnnc tap FILE --run DIR`: TAP analysis over every checkpoint of a training run.

For each checkpoint: T_c from the TAP Hessian (cross: hidden order, touch: glass), the
top eigenvalues of J against the random-bulk edge, and, with --temperature, the number
of distinct TAP solutions at that fixed T. Then a power-law fit of T_c(t) over a window
of training time (chosen automatically unless --window is given), plots and JSON.
"""

from __future__ import annotations

import math
import sys

from qnnc.compiler import limits
from qnnc.runtime.cli.flag_types import PATH, count, positive
from qnnc.runtime.cli import output
from qnnc.runtime.cli.device_args import add_device_argument, device_from_args
from qnnc.runtime.cli.json_output import emit, envelope_text
from qnnc.runtime.cli.program_args import add_program_arguments, load_from_args, required_network
from qnnc.runtime.cli.weight_args import add_run_argument, run_dir_from_args


def add_arguments(p) -> None:
    add_program_arguments(p)
    add_run_argument(p)
    p.add_argument("--temperature", type=positive(), metavar="T", help="count TAP solutions at this T")
    p.add_argument("--starts", type=count(1, limits.MAX_TAP_STARTS), default=128, help="random starts of the TAP solver (default 128)")
    p.add_argument("--window", type=positive(), nargs=2, metavar=("T_LO", "T_HI"),
                   help="fit the power law over these steps (default: chosen automatically)")
    p.add_argument("--plot", type=PATH, metavar="PREFIX", help="write PREFIX_tc.png/.pdf and PREFIX_spectrum.png/.pdf")
    p.add_argument("--json", action="store_true", help="print the series and fit as JSON")
    p.add_argument("-o", "--output", type=PATH, metavar="OUT", help="write the JSON to OUT (atomically)")
    p.add_argument("--no-progress", action="store_true")
    add_device_argument(p, help="where the TAP solver's batched iteration (--temperature) runs: cpu "
                        "(default), cuda, cuda:N, mps or auto; T_c and the spectrum are computed on the host")


def run(args) -> int:
    from qnnc.compiler.diagnostics import error

    if args.temperature is not None and not (math.isfinite(args.temperature) and args.temperature > 0):
        raise error("Q0407", f"--temperature {args.temperature}: must be positive", exit_code=2)
    if args.starts < 1:
        raise error("Q0407", "--starts must be at least 1", exit_code=2)
    device = device_from_args(args)  # before any work: an unavailable device is Q0634
    if args.window is not None and not args.window[0] < args.window[1]:
        raise error("Q0407", f"--window {args.window[0]:g} {args.window[1]:g}: the first step must be "
                    "smaller than the second", help="e.g. `--window 10 1000`", exit_code=2)
    program = load_from_args(args)
    network = required_network(args, program)
    from qnnc.runtime.tap import analyse_run  # imported here: the tap package loads scipy

    r = analyse_run(program, network, run_dir_from_args(args, network), args.temperature, args.starts,
                    args.window, progress=not args.no_progress and sys.stderr.isatty(), device=device)
    written = plot(r, args.plot) if args.plot else []
    if args.output:
        output.write_text(args.output, envelope_text("tap", r))
        written.append(args.output)
    if args.json:
        emit("tap", {**r, "written": written})
        return 0
    if not args.output:
        sys.stdout.write(table(r))
    for w in written:
        output.announce(w)
    return 0


def table(r: dict) -> str:
    has_tap = any("tap" in s for s in r["series"])
    head = "| step | epoch | T_c | kind | λ_max(J) | bulk edge | outliers |" + (" TAP solutions |" if has_tap else "")
    lines = [f"TAP analysis of `{r['network']}` over {len(r['series'])} checkpoints of {r['run']}", "", head,
             "|" + "---|" * (head.count("|") - 1)]
    for s in r["series"]:
        ep = "" if s["epoch"] is None else f"{s['epoch']:.2f}"
        row = (f"| {s['step']} | {ep} | {s['tc']:.4f} | {s['kind']} | {s['top_eigenvalues'][0]:.4f} | "
               f"{s['bulk_edge']:.4f} | {s['n_outliers']} |")
        if has_tap:
            row += f" {s['tap']['n_solutions']} |"
        lines.append(row)
    if r["analytic_tc_random"] is not None:
        lines.append(f"\nanalytic T_c of the random network (step 0 sizes and gains): {r['analytic_tc_random']:.4f}")
    f = r["power_law"]
    if f:
        lines.append(f"power law T_c(t) = A t^α over steps {f['window'][0]:g}–{f['window'][1]:g} "
                     f"({f['n_points']} points{', window chosen automatically' if f['automatic'] else ''}): "
                     f"α = {f['exponent']:.4f} ± {f['exponent_stderr']:.4f}, A = {f['amplitude']:.4f}")
    elif r["power_law_error"]:
        lines.append(f"no power-law fit: {r['power_law_error']}")
    return "\n".join(lines) + "\n"


def plot(r: dict, prefix: str) -> list[str]:
    """PREFIX_tc.png/.pdf and PREFIX_spectrum.png/.pdf; returns the paths written."""
    from qnnc.runtime import plots

    written = []
    for stem, draw in ((f"{prefix}_tc", plots.tap_tc), (f"{prefix}_spectrum", plots.tap_spectrum)):
        for ext in ("png", "pdf"):
            output.write_bytes(f"{stem}.{ext}", draw(r, ext))
            written.append(f"{stem}.{ext}")
    return written
