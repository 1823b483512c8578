"""Compile a network to a target's circuits, and run them on a local simulator."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from qnnc.compiler import ir
from qnnc.runtime.targets import host
from qnnc.runtime.targets.capabilities import Capabilities
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.lowering import Lowered, Options
from qnnc.runtime.targets.network import NetworkSpec, resolve, with_angle_shift
from qnnc.runtime.targets.target import Target, get_target


def vendor(target: str) -> Target:
    """The registered target `target` (Q0301 for an unknown one)."""
    return get_target(target)


@dataclass
class CompiledProgram:
    target: str
    backend: str
    strategy: str
    capabilities: Capabilities
    spec: NetworkSpec
    lowered: Lowered
    native: Any  # the vendor's program (circuits in its SDK's types)
    summary: dict
    seed: int = 0
    refused: list[str] = field(default_factory=list)  # strategies passed over, and why
    _texts: Optional[dict] = None

    @property
    def texts(self) -> dict[str, list[str]]:
        """Output format -> one text per circuit. Made on first use: exporting symbolic
        angles (pytket's QASM writer evaluates them with sympy) can take seconds."""
        if self._texts is None:
            self._texts = vendor(self.target).texts(self.native)
        return self._texts

    @property
    def circuits(self):
        return self.lowered.circuits

    def primary_format(self) -> str:
        return vendor(self.target).primary_format

    def to_json(self) -> dict:
        return {"format": "qnnc-circuits/1", "summary": self.summary,
                "circuits": [{"name": c.name, "layers": [self.spec.hidden[l].name for l in c.layers],
                              "params": list(c.params),
                              **{fmt: texts[i] for fmt, texts in self.texts.items()}}
                             for i, c in enumerate(self.circuits)]}


def compile_network(program_or_network: Union[ir.Program, ir.Network],
                    neurons: Union[Mapping[str, ir.NeuronDef], Sequence[ir.NeuronDef], None] = None,
                    weights: Optional[Mapping[str, np.ndarray]] = None, x=None,
                    target: str = "ibm", strategy: Optional[str] = None,
                    backend: Optional[str] = None, noise_pairs: Optional[int] = None, noise_kind: str = "sx",
                    *, copies: Optional[int] = None, max_table_width: Optional[int] = None,
                    max_qubits: Optional[int] = None, seed: int = 0,
                    network: Optional[str] = None, weight_bits: Optional[int] = None,
                    angle_shift: Optional[tuple[int, int, int, float]] = None) -> CompiledProgram:
    """Lower a network with its weights and one preprocessed input `x` to the target's
    circuits. `strategy=None` takes the first strategy the target runs (best first)
    that fits; an explicit strategy that cannot run is refused, never replaced.
    `weight_bits` rounds the weights of the layers after the first to an integer grid
    (see `network.resolve`), so that a target with real-time arithmetic computes their
    angles exactly during the shot; the summary reports the grid and the change.
    `angle_shift` (hidden layer, neuron, gate index, delta) shifts one neuron's gate angle
    after it is computed: a parameter-shift variant (`qnnc.runtime.gradients`)."""
    if isinstance(program_or_network, ir.Program):
        net = program_or_network.network(network)
        if net is None:
            raise refuse("Q0340", f"the program has no network `{network}`" if network else
                         "the program has no network",
                         help="networks: " + ", ".join(n.name for n in program_or_network.networks))
        neurons = program_or_network.neurons if neurons is None else neurons
    else:
        net = program_or_network
    if neurons is None or weights is None or x is None:
        raise TypeError("compile_network needs neurons, weights and x")
    tgt = vendor(target)
    caps: Capabilities = tgt.capabilities(backend)
    if max_qubits is not None:
        if max_qubits < 1:
            raise refuse("Q0308", f"max qubits must be at least 1, not {max_qubits}")
        # use part of the device (e.g. what a local simulator holds)
        caps = dataclasses.replace(caps, max_qubits=min(caps.max_qubits, max_qubits))
    spec = resolve(net, neurons, weights, x, weight_bits)
    if angle_shift is not None:
        spec = with_angle_shift(spec, *angle_shift)
    opts = Options(noise_pairs=noise_pairs, noise_kind=noise_kind, copies=copies,
                   max_table_width=max_table_width, weight_bits=weight_bits)
    lowered, refused = tgt.lower(spec, caps, opts, strategy)
    prog = tgt.emit(lowered, caps, seed)
    compiled = CompiledProgram(target, caps.backend, lowered.strategy, caps, spec, lowered, prog,
                               {}, seed, refused)
    compiled.summary = summarise(compiled, tgt.statistics(prog))
    if weight_bits is not None:
        compiled.summary["quantisation"] = quantisation_summary(spec, weight_bits)
        compiled.summary["notes"].extend(quantisation_notes(spec, weight_bits))
    return compiled


def quantisation_summary(spec: NetworkSpec, weight_bits: int) -> dict:
    return {"weight_bits": weight_bits, "layers": {
        h.name: {"squash": h.quantised.squash, "grid": h.quantised.grid,
                 "max_abs_change": h.quantised.max_abs_change}
        for h in spec.hidden if h.quantised is not None}}


def quantisation_notes(spec: NetworkSpec, weight_bits: int) -> list[str]:
    """The quantisation in words: it changes the network, so it is never silent."""
    done = [h for h in spec.hidden if h.quantised is not None]
    notes = [f"weights of `{h.name}` quantised ({weight_bits} bits): {h.quantised.describe()}"
             for h in done]
    if not done:
        notes.append(f"--weight-bits {weight_bits}: no layer quantised (only layers after the "
                     "first with a clip squash or a = 0 are)")
    return notes


def summarise(c: CompiledProgram, native: list[dict]) -> dict:
    """qubits, depth, two-qubit gates, measurements, conditionals: per circuit (native,
    after the vendor's compiler) and per layer (neutral ops, before it)."""
    circuits = []
    for i, circ in enumerate(c.circuits):
        chunk = c.lowered.chunks[i] if c.lowered.chunks else None
        circuits.append({
            "name": circ.name,
            "layers": [c.spec.hidden[l].name for l in circ.layers],
            "copies": chunk.copies if chunk else 1,
            "neurons": len(chunk.neurons) if chunk else sum(c.spec.widths),
            "params": len(circ.params),
            **native[i],
        })
    layers = []
    for li, h in enumerate(c.spec.hidden):
        st = {"qubits": 0, "depth": 0, "two_qubit_gates": 0, "measurements": 0,
              "conditionals": 0}
        for circ in c.circuits:
            if li in circ.layers:
                s = circ.stats(li)
                st["qubits"] = max(st["qubits"], s["qubits"])
                st["depth"] = max(st["depth"], s["depth"])
                for k in ("two_qubit_gates", "measurements", "conditionals"):
                    st[k] += s[k]
        layers.append({"name": h.name, "size": h.size, "neuron": h.neuron.ndef.name,
                       "realisation": c.lowered.layer_realisation.get(h.name, ""), **st})
    total = {k: sum(ci[k] for ci in circuits) for k in
             ("two_qubit_gates", "measurements", "conditionals")}
    total["qubits"] = max(ci["qubits"] for ci in circuits)
    total["depth"] = max(ci["depth"] for ci in circuits)
    total["circuits"] = len(circuits)
    return {
        "network": c.spec.name, "target": c.target, "backend": c.backend,
        "strategy": c.strategy, "passed_over": list(c.refused), "notes": list(c.lowered.notes),
        "max_qubits": c.capabilities.max_qubits, "total": total,
        "circuits": circuits, "layers": layers,
    }


def render_summary(summary: dict) -> str:
    """The summary as text for a terminal."""
    s = summary
    out = [f"network `{s['network']}` -> {s['target']} ({s['backend']}, {s['max_qubits']} qubits), "
           f"strategy `{s['strategy']}`"]
    for p in s["passed_over"]:
        out.append(f"  passed over {p}")
    for n in s["notes"]:
        out.append(f"  note: {n}")
    t = s["total"]
    out.append(f"  {t['circuits']} circuit(s): up to {t['qubits']} qubits, depth up to {t['depth']}, "
               f"{t['two_qubit_gates']} two-qubit gates, {t['measurements']} measurements, "
               f"{t['conditionals']} conditionals")
    out.append("  layer      size  realisation                        qubits  depth  2q  meas  cond")
    for l in s["layers"]:
        out.append(f"  {l['name']:<10} {l['size']:>4}  {l['realisation']:<34} {l['qubits']:>6} "
                   f"{l['depth']:>6} {l['two_qubit_gates']:>3} {l['measurements']:>5} "
                   f"{l['conditionals']:>5}")
    if len(s["circuits"]) > 1:
        out.append("  circuit      copies  neurons  qubits  depth  2q  meas")
        for c in s["circuits"]:
            out.append(f"  {c['name']:<12} {c['copies']:>6} {c['neurons']:>8} {c['qubits']:>7} "
                       f"{c['depth']:>6} {c['two_qubit_gates']:>3} {c['measurements']:>5}")
    return "\n".join(out) + "\n"


def run_compiled(compiled: CompiledProgram, shots: int, simulator: str = "ideal",
                 seed: Optional[int] = None, progress=None, device: str = "CPU") -> np.ndarray:
    """Sample `shots` forward passes on a local simulator: rows of ±1 hidden outcomes
    (one column per hidden neuron, layers in order). `progress(message)` is told what
    runs, layer by layer. `device`: "GPU" runs Aer on a GPU (ibm only, see
    `qnnc.runtime.cli.device_args.circuit_device`)."""
    if shots < 1:
        raise refuse("Q0308", f"shots must be at least 1, not {shots}")
    on = {"device": device} if device != "CPU" else {}
    ex = vendor(compiled.target).local_executor(compiled.native, compiled.lowered, simulator, seed, **on)
    return host.run(compiled.lowered, compiled.spec, ex, shots, seed, progress)


def predictions(compiled: CompiledProgram, outcomes: np.ndarray) -> Optional[dict]:
    """The labels sampled outcomes predict: {"labels": [shots], "histogram": counts per
    class, "majority": class}; None when the output layer's weights are unknown."""
    spec = compiled.spec if isinstance(compiled, CompiledProgram) else compiled
    if spec.output is None:
        return None
    _, w, b = spec.output
    logits = np.asarray(outcomes)[:, -spec.hidden[-1].size:].astype(float) @ w.T + b
    labels = logits.argmax(1)
    hist = np.bincount(labels, minlength=w.shape[0])
    return {"labels": labels.tolist(), "histogram": hist.tolist(), "majority": int(hist.argmax())}


def summary_json(compiled: CompiledProgram) -> str:
    return json.dumps(compiled.summary, indent=2) + "\n"
