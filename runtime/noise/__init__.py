"""Device noise for the torch simulator: noise models as data (`model`), read from a
qiskit fake backend (`ibm`) or declared from published rates (`published`), and bound to
a network's neuron layers (`attach`), whose kernels then evolve each neuron's registers
as a small density matrix (`neuron`).

MODEL (the `--noise` flag, `parse`):
    ibm:BACKEND          a qiskit fake backend, e.g. ibm:fake_brisbane, ibm:fake_torino
    ionq:aria            IonQ Aria, published rates (illustrative)
    quantinuum:h1        Quantinuum H1-1, published rates (illustrative)
    PATH.json            a file written by `qnnc noise show --json` (validated)
An IBM model bound to a network takes the physical qubits of the network compiled for
that backend (`layered` strategy, one copy), which is how the compiled circuit runs it;
its carried qubits are then re-prepared each layer from the host's record, as `layered`
runs them (`NoiseModel.strategy`). The `deferred` strategy's noise is not per neuron:
`circuit.exact_outcome_distribution` gives it for narrow networks.
Diagnostics: Q0701-Q0719.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from qnnc.compiler.diagnostics import error
from qnnc.runtime.noise.model import (Decomposition, GateNoise, NativeStep, NoiseModel, QubitNoise, from_json,
                                      load, with_layout)

__all__ = ["Decomposition", "GateNoise", "NativeStep", "NoiseModel", "QubitNoise", "attach", "from_json",
           "load", "parse", "render", "with_layout", "KNOWN"]

KNOWN = ("ibm:BACKEND", "ionq:aria", "quantinuum:h1")
_HELP = ("MODEL is `ibm:BACKEND` (e.g. ibm:fake_brisbane), `ionq:aria`, `quantinuum:h1`, or a JSON file "
         "written by `qnnc noise show --json`")


def parse(spec: str, program=None, network=None) -> NoiseModel:
    """A noise model by its MODEL spelling; with a program, bound to its network's layout."""
    spec = str(spec).strip()
    if not spec:
        raise error("Q0701", "empty noise model", help=_HELP)
    vendor, sep, rest = spec.partition(":")
    if sep and not spec.endswith(".json") and "/" not in spec:
        vendor = vendor.lower()
        if vendor == "ibm":
            from qnnc.runtime.noise.ibm import bind_network, from_fake_backend

            if not rest:
                raise error("Q0701", "`ibm:` needs a backend name, e.g. ibm:fake_brisbane", help=_HELP)
            model = from_fake_backend(rest)
            if program is not None:
                model = bind_network(model, program, network)
            return model
        if vendor in ("ionq", "quantinuum"):
            from qnnc.runtime.noise.published import PUBLISHED, published

            key = f"{vendor}:{rest.lower()}"
            if key not in PUBLISHED:
                raise error("Q0701", f"no published noise model `{spec}`",
                            help="published models: " + ", ".join(f"`{k}`" for k in PUBLISHED))
            return published(key)
        raise error("Q0701", f"unknown noise model `{spec}`", help=_HELP)
    if not Path(spec).exists() and not spec.endswith(".json"):
        raise error("Q0701", f"unknown noise model `{spec}`", help=_HELP)
    model = load(spec)
    if program is not None and model.layout is None and model.name.startswith("ibm:"):
        from qnnc.runtime.noise.ibm import bind_network

        model = bind_network(model, program, network)
    return model


def _trivial_layout(plans) -> list[list[tuple[int, ...]]]:
    out, q = [], 0
    for p in plans:
        if p.kind != "neuron":
            continue
        layer = []
        for _ in range(p.size):
            layer.append(tuple(range(q, q + p.kernel.k)))
            q += p.kernel.k
        out.append(layer)
    return out


def attach(model: NoiseModel, plans) -> None:
    """Bind the model to a simulator's neuron layers (in order): each kernel gets its
    layer's `LayerNoise`. Without a layout in the model, neuron layers take consecutive
    qubits (fine for a uniform model; an IBM model bound to a network carries its own)."""
    from qnnc.runtime.noise.neuron import LayerNoise

    if model.strategy == "deferred":
        raise error("Q0712", f"noise model `{model.name}` is bound to `deferred` circuits, whose controlled "
                    "rotations put correlated errors on the previous layer's qubits: not a per-neuron channel",
                    help="use `qnnc.runtime.noise.circuit.exact_outcome_distribution` on the compiled network "
                    "(narrow networks), or bind the model for `layered` or `dynamic`")
    layout = model.layout if model.layout is not None else _trivial_layout(plans)
    neuron_plans = [p for p in plans if p.kind == "neuron"]
    if len(layout) != len(neuron_plans):
        raise error("Q0708", f"noise model `{model.name}` places {len(layout)} neuron layers; the network has "
                    f"{len(neuron_plans)}", help="bind the model to this network (`--noise ibm:BACKEND` does)")
    for p, qubits in zip(neuron_plans, layout):
        if len(qubits) != p.size or any(len(q) != p.kernel.k for q in qubits):
            raise error("Q0708", f"noise model `{model.name}` places {len(qubits)} neurons in layer `{p.name}`, "
                        f"which has {p.size} of {p.kernel.k} qubit(s) each",
                        help="bind the model to this network (`--noise ibm:BACKEND` does)")
        p.kernel.noise = LayerNoise(model, p.kernel, [tuple(q) for q in qubits], p.name)


def render(model: NoiseModel, limit: Optional[int] = 8) -> str:
    """The model as text for a terminal."""
    import math

    out = [f"noise model {model.name}" + ("  [ILLUSTRATIVE]" if model.illustrative else ""),
           f"  source: {model.source}"]
    for n in model.notes:
        out.append(f"  note: {n}")
    out.append(f"  idle (feed-forward wait of carried qubits): {model.idle:g} s")
    if model.strategy:
        out.append(f"  strategy: {model.strategy}" + (" (carried qubits re-prepared from the host's record)"
                                                      if model.strategy == "layered" else ""))
    used = None
    if model.layout is not None:
        used = sorted({q for layer in model.layout for n in layer for q in n})
        out.append(f"  layout: {model.layout_source or 'given'}")
        for li, layer in enumerate(model.layout):
            out.append(f"    layer {li}: " + " ".join("/".join(str(q) for q in n) for n in layer))
    fmt = lambda v: "inf" if v is None or v == math.inf else f"{v * 1e6:.1f}"
    qs = [model.qubit(q) for q in used] if used else list(model.qubits)
    shown = qs if limit is None or len(qs) <= limit else qs[:limit]
    out.append(f"  qubits ({len(qs)}{' used by the layout' if used else ''}):  qubit   T1/us   T2/us  P(1|0)  P(0|1)")
    for q in shown:
        out.append(f"    {q.qubit if q.qubit >= 0 else 'all':>18}  {fmt(q.t1):>6}  {fmt(q.t2):>6}  "
                   f"{q.readout_p01:.4f}  {q.readout_p10:.4f}")
    if len(shown) < len(qs):
        out.append(f"    ... {len(qs) - len(shown)} more (--all)")
    by: dict = {}
    for g in model.gates:
        if used is not None and g.qubits and not set(g.qubits) <= set(used):
            continue
        by.setdefault(g.gate, []).append(g)
    out.append("  gates:            count  mean error  max error  duration/ns")
    for name, gs in sorted(by.items()):
        errs = [g.error for g in gs]
        out.append(f"    {name:<16} {len(gs):>5}  {sum(errs) / len(errs):.3e}   {max(errs):.3e}  "
                   f"{gs[0].duration * 1e9:>9.0f}")
    out.append("  natives (how each neuron gate runs):")
    for d in model.natives:
        steps = " ".join(_step_text(s) for s in d.steps) or "(nothing)"
        o = "" if d.oriented is None else (" [native direction]" if d.oriented else " [reversed]")
        out.append(f"    {d.gate}{o}: {steps}")
    return "\n".join(out) + "\n"


def _step_text(s) -> str:
    w = ",".join(str(x) for x in s.wires)
    if s.scale:
        sign = "" if s.scale > 0 else "-"
        off = f"{s.offset:+.4g}" if s.offset else ""
        return f"{s.gate}({sign}θ{off})[{w}]"
    if s.offset:
        return f"{s.gate}({s.offset:.4g})[{w}]"
    return f"{s.gate}[{w}]"
