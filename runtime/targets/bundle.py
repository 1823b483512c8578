"""Self-contained hardware bundles: a compiled network that runs without qnnc.

`write_bundle(compiled, folder, shots, images)` writes

    bundle.json            the manifest: files (sha256), the feed-forward protocol
                           between layers with its formulas, the weights' hash, the
                           image indices, the shots
    circuits/NAME.EXT      each circuit in the vendor's own form (IBM: QPY of the ISA
                           circuit; IonQ: OpenQASM 3 with `input float` parameters;
                           Quantinuum: pytket JSON with symbols)
    bindings/NAME.EXT      the first layer's parameter values for the image, in the
                           vendor's batch form (IBM: a [bindings, parameters] array in
                           the circuit's parameter order, with the circuit a SamplerV2
                           pub; IonQ: OpenQASM `inputs`; Quantinuum: symbol values)
    weights/*.npy, x.npy   what the later layers' angles are computed from
    protocol.py            the layered protocol in numpy (reads the manifest)
    run_VENDOR.py          a driver that runs it with only the vendor's SDK

Layer 1's angles are the same in every shot (they depend on the image only), so its
bindings are written here. Each later layer's angles depend on the previous layer's
outcomes in that shot: the driver computes them with the manifest's formula,
`angle = c0 + c1 * f(z / a) + c2 * last` with `z = W d + b`, `d = +1` for a measured 0
and `-1` for a 1, and binds them (`host.run_layered` is the same protocol in qnnc).
A strategy with the feed-forward inside the circuit (`dynamic`, `deferred`) is one
circuit run for all shots.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from importlib.resources import files as package_files
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from qnnc.runtime.targets.errors import refuse

FORMAT = "qnnc-bundle/1"


@dataclass
class BundleCircuit:
    """One circuit as a vendor's bundle holds it."""

    filename: str  # under circuits/
    data: bytes
    parameters: list[str]  # the order of the vendor's binding form
    extra: dict = field(default_factory=dict)  # vendor facts the driver needs (JSON)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def _formula(nm, gi: int, layer) -> dict:
    """A varying gate angle as data, or a refusal when it has no closed form here."""
    form = nm.squash_form(gi)
    if form is None:
        raise refuse("Q0343", f"layer `{layer.name}`: an angle of neuron `{nm.ndef.name}` is not of "
                     "the form c0 + c1 f(z/a) + c2 last, which a bundle's driver computes",
                     layer.span, help="use `qnnc run` / `qnnc submit`, which bind any angle")
    return {"f": form.kind, "a": form.a, "c0": form.c0, "c1": form.c1, "c2": form.c2}


def _layer_angles(nm, z: np.ndarray) -> np.ndarray:
    """[batch, size, gates] angles (0 for fixed gates), last = +1."""
    out = np.zeros(z.shape + (len(nm.gates),))
    for g, a in enumerate(nm.angles(z, np.ones_like(z))):
        if a is not None:
            out[..., g] = a
    return out


def plan(compiled, shots: int, images: Sequence[dict]) -> tuple[dict, dict[str, bytes]]:
    """(manifest, files) of a bundle for `compiled` (one image bound) and `shots`."""
    from qnnc.runtime.targets.target import get_target

    if shots < 1:
        raise refuse("Q0308", f"shots must be at least 1, not {shots}")
    tgt = get_target(compiled.target)
    spec, lowered = compiled.spec, compiled.lowered
    blobs: dict[str, bytes] = {"x.npy": _npy(spec.x)}
    layers = []
    for li, h in enumerate(spec.hidden):
        nm = h.neuron
        if h.carried or nm.carried_reg is not None:
            raise refuse("Q0343", f"layer `{h.name}` carries its qubits into the next layer; a "
                         "bundle's driver re-prepares no qubit states", h.span,
                         help="use `qnnc run` / `qnnc submit`")
        blobs[f"weights/{h.name}.npy"] = _npy(h.weight)
        blobs[f"weights/{h.name}.bias.npy"] = _npy(h.bias)
        gates = []
        for gi, g in enumerate(nm.gates):
            if not nm.varies(gi):
                fixed = nm.angles(0.0, 1.0)[gi]
                gates.append({"gate": g.gate, "fixed": None if fixed is None else float(fixed)})
            else:
                gates.append({"gate": g.gate, **_formula(nm, gi, h)})
        layers.append({"name": h.name, "size": h.size,
                       "reads": "x" if li == 0 else spec.hidden[li - 1].name,
                       "weights": f"weights/{h.name}.npy", "bias": f"weights/{h.name}.bias.npy",
                       "gates": gates, "measures": len(nm.measures), "emit": nm.emit_index,
                       "chunks": []})
    circuits = []
    z1 = spec.hidden[0].z(spec.x)[None, :]
    for ci, circ in enumerate(lowered.circuits):
        bc = tgt.bundle_circuit(compiled.native, ci)
        path = f"circuits/{bc.filename}"
        blobs[path] = bc.data
        entry = {"name": circ.name, "file": path, "parameters": bc.parameters,
                 "num_clbits": circ.num_clbits,
                 "cregs": [{"name": r.name, "clbits": list(r.clbits)} for r in circ.cregs], **bc.extra}
        if lowered.strategy == "layered":
            ch = lowered.chunks[ci]
            entry.update({"layer": spec.hidden[ch.layer].name, "neurons": list(ch.neurons),
                          "copies": ch.copies,
                          "angle_parameters": [[[circ.params[p] if p >= 0 else None for p in gates]
                                                for gates in copy] for copy in ch.angle_params.tolist()],
                          "clbits": ch.clbits.tolist()})
            if ch.layer == 0:  # the image's angles: the same in every shot
                ang = _layer_angles(spec.hidden[0].neuron, z1)[0]
                values = {}
                for cp in range(ch.copies):
                    for j, i in enumerate(ch.neurons):
                        for g, p in enumerate(ch.angle_params[cp, j]):
                            if p >= 0:
                                values[circ.params[p]] = float(ang[i, g])
                row = [values[n] for n in bc.parameters]
                bpath = f"bindings/{circ.name}.{tgt.bundle_binding}"
                blobs[bpath] = (_npy(np.array([row])) if tgt.bundle_binding == "npy" else
                                (json.dumps(dict(zip(bc.parameters, row)), indent=2) + "\n").encode())
                entry["bindings"] = bpath
                entry["shots"] = -(-shots // ch.copies)
            layers[ch.layer]["chunks"].append(ci)
        else:
            entry["outcomes"] = [{"layer": spec.hidden[o.layer].name, "neuron": o.neuron,
                                  "clbit": o.clbit} for o in circ.outcomes if o.emit and o.copy == 0]
            entry["shots"] = shots
        circuits.append(entry)
    output = None
    if spec.output is not None:
        name, w, b = spec.output
        blobs[f"weights/{name}.npy"] = _npy(w)
        blobs[f"weights/{name}.bias.npy"] = _npy(b)
        output = {"name": name, "weights": f"weights/{name}.npy", "bias": f"weights/{name}.bias.npy",
                  "readout": "label = argmax(W d + b) of each shot's last hidden outcomes d"}
    driver = f"run_{compiled.target}.py"
    for name in ("protocol.py", driver):
        blobs[name] = package_files("qnnc.runtime.targets").joinpath("bundle_files", name).read_bytes()
    s = compiled.summary
    manifest = {
        "format": FORMAT, "network": spec.name, "target": compiled.target,
        "backend": compiled.backend, "strategy": compiled.strategy, "shots": shots,
        "images": list(images), "weights": s.get("weights"), "weights_sha256": s.get("weights_sha256"),
        "driver": driver,
        "protocol": [
            "outcome d = +1 for a measured 0, -1 for a measured 1 (the emitted measurement of each neuron)",
            "layer 1: z = W x + b with x = x.npy (the preprocessed image); its bindings are written",
            "layer k > 1: z = W d + b with d the previous layer's outcomes in the same shot",
            "angle = c0 + c1 * f(z / a) + c2 * last, last = +1; f = clip(u, -1, 1) | tanh(u) | "
            "sign(z) (a = 0, sign(0) = +1); fixed gates have no parameter",
            "a circuit holds `copies` copies of its neurons: one binding runs `copies` shots",
            "label = argmax(W_out d + b_out) over the last hidden layer's outcomes",
        ] if compiled.strategy == "layered" else [
            f"strategy `{compiled.strategy}`: the feed-forward is inside the circuit; run it for "
            "all shots and read each neuron's outcome from `outcomes`",
            "label = argmax(W_out d + b_out) over the last hidden layer's outcomes",
        ],
        "layers": layers, "circuits": circuits, "output": output,
    }
    manifest["files"] = {k: hashlib.sha256(v).hexdigest() for k, v in sorted(blobs.items())}
    return manifest, blobs


def write_bundle(compiled, folder, shots: int, images: Sequence[dict]) -> list[str]:
    """Write the bundle under `folder` (each file atomically, the manifest last);
    returns the paths. An OSError names the file it could not write."""
    from qnnc.compiler.fileio import atomic_write_bytes, atomic_write_text

    manifest, blobs = plan(compiled, shots, images)
    root = Path(folder)
    written = []
    for rel, data in sorted(blobs.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
        written.append(str(path))
    atomic_write_text(root / "bundle.json", json.dumps(manifest, indent=2) + "\n")
    written.append(str(root / "bundle.json"))
    return written


def read_manifest(folder) -> dict:
    return json.loads((Path(folder) / "bundle.json").read_text(encoding="utf-8"))


def image_entry(data: str, index: int, label: Optional[int]) -> dict:
    return {"data": data, "index": int(index), "label": label}
