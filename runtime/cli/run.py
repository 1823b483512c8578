"""`qnnc run FILE --target T --shots S --simulator ideal|noisy|...`: compile, then sample
the circuits on a local simulator (Qiskit Aer, Braket LocalSimulator, pytket's Aer
backend). Results: outcome counts per hidden layer, and predictions when the output
layer's weights are known; as JSON with --json, and a histogram with --plot."""

from __future__ import annotations

from qnnc.compiler import limits
from qnnc.runtime.cli.flag_types import PATH, count
from qnnc.runtime.cli import output
from qnnc.runtime.cli.circuit_args import add_compile_arguments, compile_from_args, write_output
from qnnc.runtime.cli.device_args import add_device_argument, circuit_device, device_from_args
from qnnc.runtime.cli.json_output import emit
from qnnc.runtime.cli.noise_args import add_noise_argument
from qnnc.runtime.cli.outcomes import outcome_report, render_outcomes


def add_arguments(p) -> None:
    add_compile_arguments(p)
    p.add_argument("--shots", type=count(1, limits.MAX_SHOTS), default=96, metavar="S", help="forward passes (default: 96)")
    p.add_argument("--simulator", default="ideal",
                   help="ideal | noisy (all targets); braket_sv | braket_dm (ionq); qnnc (the torch "
                        "simulator on the same network and image, with --noise MODEL for device noise)")
    add_noise_argument(p)
    p.add_argument("--plot", type=PATH, metavar="PNG", help="write a histogram of the predictions (or outcomes)")
    add_device_argument(p, help="where the local simulator runs: cpu (default); cuda or auto: Aer on a GPU "
                        "(target ibm, with qiskit-aer-gpu); with --simulator qnnc, the torch device "
                        "(cpu, cuda, cuda:N, mps or auto)")


def run(args) -> int:
    import time

    from qnnc.runtime.targets.compile import run_compiled, vendor
    from qnnc.runtime.targets.errors import refuse

    if args.shots < 1:
        raise refuse("Q0308", f"--shots must be at least 1, not {args.shots}")
    fast = args.simulator == "qnnc"
    # Before any work: Q0634 / Q0635. The torch simulator runs where torch does; the
    # circuit simulators where their vendor allows (runtime/cli/device_args.py).
    device = device_from_args(args) if fast else circuit_device(args.target, args.device)
    if args.plot:
        output.check_writable(args.plot)
    if args.noise is not None and not fast:
        from qnnc.compiler.diagnostics import error

        raise error("Q0709", f"--noise applies to the torch simulator (--simulator qnnc), not to `{args.simulator}`",
                    help="`--simulator noisy` runs the circuits with the backend's own noise model", exit_code=2)
    compiled = compile_from_args(args, None if fast else vendor(args.target).local_qubit_limit(args.simulator))
    written = write_output(compiled, args.output) if args.output else []
    if not fast and not vendor(args.target).local_seeded:
        from qnnc.runtime.cli.json_output import note

        note(f"target `{args.target}`: its local simulators cannot be seeded; --seed {args.seed} "
             f"seeds only the host's draws, so runs are not reproducible")
    t0 = time.perf_counter()
    if fast:
        out = _run_torch(args, compiled, device)
    else:
        out = run_compiled(compiled, args.shots, args.simulator, args.seed,
                           progress=None if args.json else _progress, device=device)
    dt = time.perf_counter() - t0
    result = {"summary": compiled.summary, "simulator": args.simulator, "shots": args.shots,
              "seed": args.seed, "seconds": dt, "label": compiled.summary["image"]["label"],
              **outcome_report(compiled.spec, out)}
    if args.plot:
        from qnnc.runtime.plots import run_histogram

        output.write_bytes(args.plot, run_histogram(result))
        written.append(args.plot)
    if args.json:
        emit("run", {**result, "written": written})
        return 0
    s = compiled.summary
    print(f"{s['network']} on {s['target']} ({s['backend']}), strategy `{s['strategy']}`, "
          f"{args.shots} shots on `{args.simulator}` in {dt:.2f} s; input {s['input']}")
    for note in s.get("notes", []):  # e.g. quantised weights: the network that ran
        print(f"  note: {note}")
    print(render_outcomes(result), end="")
    for w in written:
        output.announce(w, "  ")
    return 0


def _run_torch(args, compiled, device):
    """The compiled network (its weights, after any quantisation, and its input) sampled
    by the torch simulator on `device`: rows of ±1 hidden outcomes like `run_compiled`'s.
    With `--noise`, an IBM model takes the neurons' qubits from these compiled circuits."""
    import numpy as np
    import torch

    from qnnc.runtime.cli.program_args import load_from_args, network_from_args
    from qnnc.runtime.simulator import QNNModel

    program = load_from_args(args)
    network = network_from_args(args, program)
    noise = None
    if args.noise is not None:
        from qnnc.runtime.noise import parse, with_layout

        noise = parse(args.noise)
        if noise.name.startswith("ibm:") and compiled.target == "ibm" and noise.layout is None:
            from qnnc.runtime.noise.ibm import layout_from_compiled

            if compiled.strategy == "deferred":  # not per neuron: the circuit's exact distribution
                from qnnc.runtime.noise.circuit import sample_outcomes

                return sample_outcomes(compiled, noise, args.shots, args.seed)
            noise = with_layout(noise, layout_from_compiled(compiled),
                                f"qubits of these `{compiled.strategy}` circuits (copy 0)", compiled.strategy)
        elif noise.layout is None and noise.name.startswith("ibm:"):
            from qnnc.runtime.noise.ibm import bind_network

            noise = bind_network(noise, program, network)
    spec = compiled.spec
    from qnnc.runtime.devices import host_array

    model = QNNModel(program, network, seed=args.seed, dtype=torch.float64, noise=noise, device=device)
    tensors = {}
    for h in spec.hidden:
        tensors[h.name] = torch.from_numpy(np.asarray(h.weight, dtype=np.float64))
        if h.name in model.bias:
            tensors[h.name + ".bias"] = torch.from_numpy(np.asarray(h.bias, dtype=np.float64))
    if spec.output is not None:
        name, w, b = spec.output
        tensors[name] = torch.from_numpy(np.asarray(w, dtype=np.float64))
        if name in model.bias:
            tensors[name + ".bias"] = torch.from_numpy(np.asarray(b, dtype=np.float64))
    model.load_tensors(tensors, strict=False)
    x = torch.from_numpy(np.asarray(spec.x, dtype=np.float64)).reshape(1, -1)
    gen = torch.Generator().manual_seed(args.seed)
    rec = model.sample(x, args.shots, generator=gen)
    cols = [rec[p.name][:, 0, :] for p in model.plans if p.kind == "neuron"]
    return host_array(torch.cat(cols, dim=-1)).astype(np.int8)


def _progress(message: str) -> None:
    import sys

    print(f"  {message}", file=sys.stderr, flush=True)

