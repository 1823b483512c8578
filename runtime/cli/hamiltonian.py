"""`qnnc hamiltonian FILE [--run DIR] [--checkpoint STEP|last|PATH]`: the network as an
Ising spin model.

Without --run and --checkpoint the weights are the network's initialisation drawn from
--seed (the same as step 0 of `qnnc train` with that seed): a layered SK glass. The
`.npz` of `--format npz` is scipy.sparse's own format: `scipy.sparse.load_npz` reads J.
"""

from __future__ import annotations

import math

from qnnc.runtime.cli.flag_types import PATH, SEED, positive
from qnnc.runtime.cli import output
from qnnc.runtime.cli.json_output import envelope_text
from qnnc.runtime.cli.program_args import add_program_arguments, load_from_args, required_network
from qnnc.runtime.cli.weight_args import add_weight_arguments, load_weights


def add_arguments(p) -> None:
    add_program_arguments(p)
    add_weight_arguments(p)
    p.add_argument("--seed", type=SEED, default=0, help="seed of the initialisation (without --run/--checkpoint)")
    p.add_argument("--fields", action="store_true", help="map biases to fields h_i (off by default)")
    p.add_argument("--temperature", type=positive(), metavar="T", help="also report the phase at T")
    p.add_argument("--format", choices=("text", "json", "npz"), default="text",
                   help="text summary, JSON for tools, or the bond matrix as .npz in "
                        "scipy.sparse's format (needs -o)")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument("-o", "--output", type=PATH, metavar="OUT", help="write to OUT (atomically) instead of stdout")


def run(args) -> int:
    from qnnc.compiler.diagnostics import error
    from qnnc.runtime.spin import analyse, ising_model, network_weights

    if args.temperature is not None and not (math.isfinite(args.temperature) and args.temperature > 0):
        raise error("Q0407", f"--temperature {args.temperature}: must be positive", exit_code=2)
    if args.format == "npz" and not args.output:
        raise error("Q0407", "--format npz writes a file: give -o OUT.npz", exit_code=2)
    program = load_from_args(args)
    network = required_network(args, program)
    if args.json:
        args.format = "json"
    nw = network_weights(network, load_weights(args, program, network))
    if args.format == "npz":
        output.write_bytes(args.output, ising_model(nw, args.fields).npz_bytes())
        output.announce(args.output)
        return 0
    report = analyse(nw, args.fields, args.temperature)
    text = envelope_text("hamiltonian", report) if args.format == "json" else summary(report)
    output.write_text(args.output or output.STDOUT, text)
    if args.output:
        output.announce(args.output)
    return 0


def summary(r: dict) -> str:
    m, sp, tc = r["model"], r["spectrum"], r["tc"]
    at = f"step {r['step']}" if r["step"] is not None else ""
    lines = [f"hamiltonian of network `{r['network']}` ({r['source']}{', ' + at if at else ''})",
             "  spins   " + ", ".join(f"{l['name']} {l['spins']}" for l in m["layers"]) + f"  (total {m['n_spins']})",
             f"  bonds   {m['n_bonds']:,}; fields {'on' if m['fields'] else 'off'}",
             "  block norms (Frobenius)  " + ", ".join(f"{k} {v:.3f}" for k, v in m["block_norms"].items())]
    eig = ", ".join(f"{x:.4f}" for x in sp["eigenvalues"][:6])
    lines.append(f"  top eigenvalues of J  {eig}")
    lines.append(f"  random-bulk edge      {sp['bulk_edge']:.4f} (outlier above {sp['threshold']:.4f}): "
                 + (f"{len(sp['outliers'])} outlier(s)" if sp["outliers"] else "no outlier"))
    for o in sp["outliers"][:3]:
        tco = "n/a" if o["tc"] is None else f"{o['tc']:.4f}"
        lines.append(f"    outlier Λ = {o['eigenvalue']:.4f}, d̄ = {o['dbar']:.4f}, predicted T_c = {tco}")
    kind = {"cross": "λ_min crosses zero: hidden order below T_c",
            "touch": "λ_min only touches zero: spin glass below T_c",
            "none": "no bonds"}[tc["kind"]]
    lines.append(f"  T_c (TAP Hessian)     {tc['tc']:.4f}  [{tc['kind']}: {kind}]")
    if r["analytic_tc"] is not None:
        gains = ", ".join(f"{g:.3g}" for g in r["init_gains"])
        lines.append(f"  T_c random network    {r['analytic_tc']:.4f}  (analytic layered SK, C = {gains})")
    if r["phase"]:
        lines.append(f"  phase at T = {r['phase']['T']:g}: {r['phase']['phase']}")
    return "\n".join(lines) + "\n"
