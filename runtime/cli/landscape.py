"""`qnnc landscape FILE [--run R --checkpoint C] --image N`: the classification energy
landscape of one image, E(s) = −log P(s | x) over the outcomes of the network's neuron
layers (docs/spin-analysis.md), and its minima: each one's label, the energy gap to the
lowest minimum of another label, and the Hamming distance to it."""

from __future__ import annotations

import argparse
import sys

from qnnc.runtime.cli import output
from qnnc.runtime.cli.flag_types import PATH, SEED, count, non_negative
from qnnc.runtime.cli.json_output import emit, envelope_text
from qnnc.runtime.cli.program_args import add_program_arguments, load_from_args, required_network
from qnnc.runtime.cli.weight_args import add_weight_arguments, load_weights


def _flip(text: str) -> float:
    v = non_negative()(text)
    if v >= 0.5:
        raise argparse.ArgumentTypeError(f"{text!r} must be below 0.5 (0.5 makes every pattern equally likely)")
    return v


_flip.__name__ = "flip probability"


def add_arguments(p) -> None:
    from qnnc.runtime import landscape as ls

    add_program_arguments(p)
    add_weight_arguments(p)
    p.add_argument("--image", type=count(0), default=0, metavar="N", help="test image N of --data (default: 0)")
    p.add_argument("--data", default="mnist.test", metavar="NAME", help="data set of --image (default: mnist.test)")
    p.add_argument("--flip", type=_flip, default=0.0, metavar="P",
                   help="misread every outcome with probability P before the next layer uses it "
                        "(a symmetric read-out error; default 0: the ideal network)")
    p.add_argument("--starts", type=count(1, ls.MAX_STARTS), default=ls.DEFAULT_STARTS, metavar="K",
                   help=f"descent: patterns sampled from the network to start from (default {ls.DEFAULT_STARTS})")
    p.add_argument("--exhaustive-limit", type=count(0, 1 << 24), default=ls.DEFAULT_EXHAUSTIVE_LIMIT, metavar="M",
                   help="enumerate every pattern of nonzero probability when there are at most M "
                        f"(default {ls.DEFAULT_EXHAUSTIVE_LIMIT}; 0: always descend)")
    p.add_argument("--probe-width", type=count(0, 20), default=ls.DEFAULT_PROBE_WIDTH, metavar="W",
                   help="descent: probe other labels by enumerating the last layer when it is at most W "
                        f"wide (default {ls.DEFAULT_PROBE_WIDTH})")
    p.add_argument("--top", type=count(1, 1 << 16), default=10, metavar="K",
                   help="minima listed in the text report (default 10; --json lists all)")
    p.add_argument("--seed", type=SEED, default=0,
                   help="seed of the starts (and of the initialisation without --run/--checkpoint)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (the command envelope)")
    p.add_argument("-o", "--output", type=PATH, metavar="OUT", help="write the JSON result to OUT")


def load_image(args, network):
    from qnnc.compiler.diagnostics import error
    from qnnc.runtime.data import load_dataset, preprocess

    ds = load_dataset(args.data)
    if not 0 <= args.image < len(ds):
        raise error("Q0762", f"--image {args.image} is not in `{args.data}` ({len(ds)} images)",
                    help=f"give an index from 0 to {len(ds) - 1}", exit_code=2)
    x = preprocess(ds.images[args.image:args.image + 1], network.input)[0]
    return x, int(ds.labels[args.image])


def run(args) -> int:
    from qnnc.runtime.landscape import landscape_of

    program = load_from_args(args)
    network = required_network(args, program)
    if args.output:
        output.check_writable(args.output)
    w = load_weights(args, program, network)
    x, label = load_image(args, network)
    land = landscape_of(program, network, w.tensors, x, args.flip)
    res = land.find_minima(starts=args.starts, seed=args.seed, exhaustive_limit=args.exhaustive_limit,
                           probe_width=args.probe_width)
    report = {**res.to_json_dict(), "network": network.name, "source": w.source, "step": w.step,
              "weights_sha256": w.digest, "data": args.data, "image": args.image, "image_label": label}
    if args.output:
        output.write_text(args.output, envelope_text("landscape", report))
    if args.json:
        emit("landscape", report)
    else:
        if not args.output:
            sys.stdout.write(table(report, args.top))
        else:
            output.announce(args.output)
    return 0


def _num(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def table(r: dict, top: int = 10) -> str:
    layers = ", ".join(f"{l['name']} {l['width']}" for l in r["layers"])
    lines = [f"landscape of {r['data']}[{r['image']}] (label {r['image_label']}) under network `{r['network']}` "
             f"({r['source']}): E = -log P over {r['n_spins']} outcomes ({layers}), flip {r['flip']:g}"]
    if r["mode"] == "exhaustive":
        lines.append(f"  exhaustive over the {r['support']:,} patterns of nonzero probability: "
                     f"{r['n_minima']} minima (all of them)")
    else:
        lines.append(f"  descent from {r['starts']} sampled patterns and {r['probes']} label probes "
                     f"(seed {r['seed']}): {r['n_minima']} minima found (not certified complete)")
    for note in r["notes"]:
        lines.append(f"  note: {note}")
    lines.append("     #   energy  probability  label      gap  hamming  starts  pattern")
    for i, m in enumerate(r["minima"][:top]):
        lines.append(f"  {i + 1:4d} {m['energy']:8.4f} {m['probability']:12.4g}  {m['label']:5d} "
                     f"{_num(m['gap'], '8.4f'):>8} {_num(m['hamming'], 'd'):>8} {m['starts']:7d}  {m['pattern']}")
    if len(r["minima"]) > top:
        lines.append(f"  ... {len(r['minima']) - top} more (--top, or --json for all)")
    g = r["ground"]
    if g is not None:
        other = ("no minimum of another label" if g["gap"] is None else
                 f"gap {g['gap']:.4f} to the lowest minimum of label "
                 f"{r['minima'][g['other']]['label']} at Hamming distance {g['hamming']}")
        lines.append(f"  lowest minimum: label {g['label']}, energy {g['energy']:.4f}; {other}")
    return "\n".join(lines) + "\n"
