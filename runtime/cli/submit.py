"""`qnnc submit FILE --target ibm|ionq|quantinuum --backend DEVICE --shots N [--local] [--yes]`:
compile, then run the circuits through the vendor's own cloud client (IBM
qiskit-ibm-runtime SamplerV2, IonQ through Amazon Braket's AwsDevice).

Safe by default: without `--yes` (and without `--local`) it prints what it would submit
(device, circuits, shots, the jobs a layered program needs) and exits 0 having submitted
nothing. `--local` runs the same client calls on the vendor's offline substitute (no
credentials, no network). Results as `qnnc run`'s, with the vendor's job ids; `-o FILE`
writes them as JSON (atomically)."""

from __future__ import annotations

from qnnc.compiler import limits
from qnnc.runtime.cli.flag_types import PATH, count
from qnnc.runtime.cli import output
from qnnc.runtime.cli.circuit_args import add_compile_arguments, compile_from_args
from qnnc.runtime.cli.json_output import emit, envelope_text, note
from qnnc.runtime.cli.outcomes import outcome_report, render_outcomes


def add_arguments(p) -> None:
    add_compile_arguments(
        p, outputs=False,
        backend_help="the vendor's device: IBM `ibm_NAME` (compiled offline against the fake "
                     "backend `fake_NAME`; default ibm_brisbane), IonQ `forte-1`, `aria-1`, "
                     "`aria-2` (on Amazon Braket), Quantinuum `H2-1`")
    p.add_argument("--shots", type=count(1, limits.MAX_SHOTS), default=96, metavar="N", help="forward passes (default: 96)")
    p.add_argument("--local", action="store_true",
                   help="the vendor's client with its offline substitute (IBM: SamplerV2 on the "
                        "fake backend, with its noise; IonQ: Braket's LocalSimulator through the "
                        "same device.run); no credentials, no network")
    p.add_argument("--yes", action="store_true",
                   help="submit to the device (without it, and without --local, only print what "
                        "would be submitted)")
    p.add_argument("-o", "--output", type=PATH, metavar="RESULTS.json",
                   help="write the results and job ids as JSON (atomically)")
    p.add_argument("--json", action="store_true", help="print the plan or the results as JSON")


def run(args) -> int:
    from qnnc.runtime.targets import submit as sub
    from qnnc.runtime.targets.errors import refuse

    if args.shots < 1:
        raise refuse("Q0308", f"--shots must be at least 1, not {args.shots}")
    if args.output:
        output.check_writable(args.output)
    device = sub.resolve_device(args.target, args.backend)
    args.backend = device.compile_backend
    compiled = compile_from_args(args, sub.local_qubit_limit(args.target) if args.local else None)
    plan = sub.plan(compiled, args.shots, device, args.local)
    if not args.yes and not args.local:
        if args.json:
            emit("submit", {"plan": plan, "submitted": False, "summary": compiled.summary})
        else:
            print(sub.render_plan(plan), end="")
            print("dry run: nothing was submitted. Add --yes to submit, or --local to run the "
                  "vendor's client on its offline substitute.")
        return 0
    if not args.json:
        print(sub.render_plan(plan), end="", flush=True)
    # a real submission can wait in a queue: say what it waits for
    if args.local and not sub.vendor_seeded(args.target):
        note(f"target `{args.target}`: its offline substitute cannot be seeded; --seed {args.seed} "
             "seeds only the host's draws")
    done = sub.submit(compiled, args.shots, local=args.local, device=device, seed=args.seed,
                      progress=_announce, layer_progress=_layer)
    return _report(args, compiled, plan, done)


def _layer(text: str) -> None:
    import sys

    print(f"  {text}", file=sys.stderr, flush=True)


def _announce(job: dict) -> None:
    import sys

    print(f"  submitted {job['id']} (circuit {job['circuit']}, {job['shots']} shots); "
          f"waiting for its results", file=sys.stderr, flush=True)


def _report(args, compiled, plan: dict, done) -> int:
    result = {"summary": compiled.summary,
              "submission": {"target": compiled.target, "device": done.device.name,
                             "mode": plan["mode"], "client": plan["client"], "jobs": done.jobs},
              "shots": args.shots, "seconds": done.seconds,
              **outcome_report(compiled.spec, done.outcomes)}
    if args.output:
        output.write_text(args.output, envelope_text("submit", result))
    if args.json:
        emit("submit", result)
        return 0
    s = compiled.summary
    where = "local stand-in" if done.local else "submitted"
    print(f"{s['network']} on {s['target']} `{done.device.name}` ({where}), strategy "
          f"`{s['strategy']}`, {args.shots} shots in {done.seconds:.2f} s; input {s['input']}")
    ids = [str(j["id"]) for j in done.jobs]
    shown = ", ".join(ids[:6]) + (f", … ({len(ids)} in all)" if len(ids) > 6 else "")
    print(f"  jobs: {shown}")
    print(render_outcomes(result), end="")
    if args.output:
        output.announce(args.output, "  ")
    return 0
