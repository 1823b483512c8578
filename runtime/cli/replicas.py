"""`qnnc replicas FILE [--run R --checkpoint C]`: replica-exchange Monte Carlo on the
network's Ising Hamiltonian: P(q), Binder cumulant, q_EA, χ_SG and the overlap with the
top eigenvector of J (the hidden order when it is an outlier), per temperature."""

from __future__ import annotations

import math
import sys

from qnnc.compiler import limits
from qnnc.runtime.cli import output
from qnnc.runtime.cli.device_args import add_device_argument, device_from_args
from qnnc.runtime.cli.flag_types import DIRECTORY, PATH, SEED, count, positive
from qnnc.runtime.cli.json_output import emit, envelope_text
from qnnc.runtime.cli.program_args import add_program_arguments, load_from_args, required_network
from qnnc.runtime.cli.weight_args import add_weight_arguments, load_weights


def add_arguments(p) -> None:
    add_program_arguments(p)
    add_weight_arguments(p)
    p.add_argument("--seed", type=SEED, default=0,
                   help="seed of the chain (and of the initialisation without --run/--checkpoint)")
    p.add_argument("--fields", action="store_true", help="map biases to fields h_i (off by default)")
    p.add_argument("--temperatures", type=positive(), nargs="+", metavar="T",
                   help="the ladder (default: 16 temperatures, geometric from 0.4 to 2 × the analytic T_c)")
    p.add_argument("--replicas", type=count(1, 4096), default=4, help="independent replicas per temperature (default 4)")
    p.add_argument("--sweeps", type=count(1, limits.MAX_COUNT_FLAG), default=2000, help="Monte Carlo sweeps (default 2000)")
    p.add_argument("--burn-in", type=count(0, limits.MAX_COUNT_FLAG), help="sweeps before measuring (default: half)")
    add_device_argument(p)
    p.add_argument("--engine", choices=("auto", "torch", "compiled"), default="auto",
                   help="torch: the block update as matrix products on --device; compiled: CPU, fixed-point "
                        "integer products and a fused draw (default auto: compiled on the CPU)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (the command envelope)")
    p.add_argument("-o", "--output", type=PATH, metavar="OUT", help="write the JSON result to OUT")
    p.add_argument("--plot", type=DIRECTORY, metavar="DIR", help="write P(q), Binder and hidden-order plots into DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    import torch

    from qnnc.compiler.diagnostics import error
    from qnnc.runtime.devices import check_dtype
    from qnnc.runtime.replicas import LayeredCouplings, run_replicas, temperature_ladder
    from qnnc.runtime.spin import ising_model, network_weights

    device = device_from_args(args)  # before any work: an unavailable device is Q0634
    check_dtype(device, torch.float64, "the Monte Carlo")
    program = load_from_args(args)
    network = required_network(args, program)
    if args.burn_in is not None and args.burn_in >= args.sweeps:
        raise error("Q0407", f"--burn-in {args.burn_in} must be below --sweeps {args.sweeps}", exit_code=2)
    nw = network_weights(network, load_weights(args, program, network))
    model = ising_model(nw, args.fields)
    temps = args.temperatures
    if temps is None:
        from qnnc.runtime.tap import analytic_tc

        finite = all(math.isfinite(g) for g in nw.gains)
        tc = analytic_tc(nw.sizes, nw.gains) if finite else 1.0
        temps = temperature_ladder(0.4 * tc, 2.0 * tc, 16)
    couplings = LayeredCouplings.from_model(model, device=device)
    directions = _top_eigenvector(model)
    bar = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=args.sweeps, desc="sweeps", unit="sweep", leave=False)
    res = run_replicas(couplings, temps, replicas=args.replicas, sweeps=args.sweeps, burn_in=args.burn_in,
                       seed=args.seed, directions=directions[None, :], engine=args.engine,
                       progress=(lambda s: bar.update(1)) if bar is not None else None)
    if bar is not None:
        bar.close()
    report = {**res.to_json_dict(), "network": network.name, "source": nw.source, "step": nw.step,
              "weights_sha256": nw.digest, "direction": "top eigenvector of J"}
    if args.output:
        output.write_text(args.output, envelope_text("replicas", report))
    written = plot(report, args.plot) if args.plot else []
    if args.json:
        emit("replicas", report)
    else:
        if not args.output:
            sys.stdout.write(table(report))
        for path in ([args.output] if args.output else []) + written:
            output.announce(path)
    return 0


def _top_eigenvector(model):
    import numpy as np
    from scipy.sparse.linalg import eigsh

    J = model.sparse()
    if J.shape[0] < 3:
        w, v = np.linalg.eigh(J.toarray())
        return v[:, -1]
    _, v = eigsh(J, k=1, which="LA", v0=np.ones(J.shape[0]))
    return v[:, 0]


def table(r: dict) -> str:
    lines = [f"replica exchange on network `{r['network']}` ({r['source']}): {r['n_spins']} spins, "
             f"{len(r['temperatures'])} temperatures x {r['replicas']} replicas, {r['sweeps']} sweeps "
             f"(burn-in {r['burn_in']}), {r.get('update', 'block')} heat-bath, {r.get('engine', 'torch')} engine",
             "       T    E/N     <|m|>   <|q|>   <q^2>   Binder  chi_SG  overlap(v1)"]
    for i, T in enumerate(r["temperatures"]):
        v = r["direction_overlaps"][i][0] if r["direction_overlaps"][i] else float("nan")
        lines.append(f"  {T:6.3f} {r['energy'][i]:7.4f} {r['magnetisation'][i]:7.4f} {r['q_abs'][i]:7.4f} "
                     f"{r['q2'][i]:7.4f} {r['binder'][i]:7.4f} {r['chi_sg'][i]:7.2f} {v:7.4f}")
    acc = ", ".join(f"{a:.2f}" for a in r["exchange_acceptance"])
    lines.append(f"  exchange acceptance per pair: {acc}")
    eq = r["equilibration"]
    state = "equilibrated" if r["equilibrated"] else "NOT equilibrated: run more sweeps"
    lines.append(f"  {state} ({eq.get('method', eq.get('reason'))}; min p {eq.get('min_p', float('nan')):.3g} "
                 f"against {eq.get('alpha', float('nan')):.3g})")
    return "\n".join(lines) + "\n"


def plot(r: dict, folder: str) -> list[str]:
    """Write the three replica plots into `folder`; returns their paths."""
    import os

    from qnnc.runtime import plots

    written = []
    for name, draw in (("p_q.png", plots.replica_overlaps), ("binder.png", plots.replica_binder),
                       ("hidden_order.png", plots.replica_hidden_order)):
        path = os.path.join(folder, name)
        output.write_bytes(path, draw(r))
        written.append(path)
    return written
