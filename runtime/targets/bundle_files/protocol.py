"""The protocol of a qnnc hardware bundle, in numpy only: it reads bundle.json and runs
the network layer by layer through a vendor's `execute` function (see run_*.py).

    execute(circuit, bindings, shots) -> list of bit arrays

`circuit` is an entry of the manifest's "circuits"; `bindings` a list of
{parameter name: angle in radians}; `shots` the shots of each binding. Each returned
array is [shots, circuit["num_clbits"]] with bit 1 for a measured |1>.
"""

import json
from pathlib import Path

import numpy as np


def load_manifest(folder):
    return json.loads((Path(folder) / "bundle.json").read_text(encoding="utf-8"))


def squash(f, a, z):
    """f(z / a): clip(u, -1, 1), tanh(u), or sign(z) (with sign(0) = +1) when a = 0."""
    if f is None:
        return np.zeros_like(z)
    if a == 0:
        return np.where(z >= 0, 1.0, -1.0)
    return np.tanh(z / a) if f == "tanh" else np.clip(z / a, -1.0, 1.0)


def angles(layer, z):
    """[batch, size, gates]: angle = c0 + c1 f(z / a) + c2 last (last = +1); 0 for fixed gates."""
    out = np.zeros(z.shape + (len(layer["gates"]),))
    for g, gate in enumerate(layer["gates"]):
        if "fixed" not in gate:
            out[..., g] = gate["c0"] + gate["c1"] * squash(gate["f"], gate["a"], z) + gate["c2"]
    return out


def first_bindings(folder, circuit):
    """The bindings file of a first-layer circuit as {name: value} (.npy rows are in the
    circuit's parameter order; .json maps names to values)."""
    path = Path(folder) / circuit["bindings"]
    if path.suffix == ".npy":
        return dict(zip(circuit["parameters"], np.load(path, allow_pickle=False)[0].tolist()))
    return json.loads(path.read_text(encoding="utf-8"))


def run(folder, execute, shots=None, progress=None):
    """Sample `shots` forward passes (default: the manifest's). Returns {"outcomes":
    [shots, hidden neurons] of +-1, "labels": [shots] or None, "histogram": counts per
    class or None}."""
    folder = Path(folder)
    m = load_manifest(folder)
    shots = int(shots or m["shots"])
    say = progress or (lambda s: None)
    npy = lambda rel: np.load(folder / rel, allow_pickle=False)
    columns = []
    if m["strategy"] != "layered":
        (circuit,) = m["circuits"]
        say(f"running {circuit['name']}: {shots} shots")
        (bits,) = execute(circuit, [{}], [shots])
        for layer in m["layers"]:
            d = np.ones((shots, layer["size"]))
            for o in circuit["outcomes"]:
                if o["layer"] == layer["name"]:
                    d[:, o["neuron"]] = 1 - 2 * bits[:, o["clbit"]]
            columns.append(d)
    else:
        d_prev = None
        for li, layer in enumerate(m["layers"]):
            w, b = npy(layer["weights"]), npy(layer["bias"])
            inp = npy("x.npy")[None, :] if d_prev is None else d_prev
            ang = np.broadcast_to(angles(layer, inp @ w.T + b),
                                  (shots, layer["size"], len(layer["gates"])))
            records = np.zeros((shots, layer["size"]), dtype=np.int64)
            for ci in layer["chunks"]:
                circuit = m["circuits"][ci]
                neurons, copies = circuit["neurons"], circuit["copies"]
                names = circuit["angle_parameters"]  # [copies][neuron][gate]
                clbits = np.array(circuit["clbits"])[:, :, layer["emit"]]  # [copies, neuron]
                rows = np.round(ang[:, neurons, :].reshape(shots, -1), 12)
                uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
                inverse = inverse.reshape(-1)
                bindings, runs, owners = [], [], []
                for u in range(uniq.shape[0]):
                    samples = np.flatnonzero(inverse == u)
                    if li == 0 and "bindings" in circuit:
                        binding = first_bindings(folder, circuit)  # the image's, as written
                    else:
                        vals = uniq[u].reshape(len(neurons), -1)
                        binding = {names[cp][j][g]: float(vals[j, g]) for cp in range(copies)
                                   for j in range(len(neurons)) for g in range(vals.shape[1])
                                   if names[cp][j][g] is not None}
                    bindings.append(binding)
                    runs.append(-(-samples.size // copies))
                    owners.append(samples)
                say(f"layer {layer['name']}: circuit {circuit['name']}, {len(bindings)} binding(s), "
                    f"{sum(runs)} circuit executions")
                for bits, samples in zip(execute(circuit, bindings, runs), owners):
                    k = np.arange(samples.size)
                    run, cp = k // copies, k % copies
                    for j, i in enumerate(neurons):
                        records[samples, i] = bits[run, clbits[cp, j]]
            d_prev = 1.0 - 2.0 * records
            columns.append(d_prev)
    outcomes = np.concatenate(columns, 1)
    labels = histogram = None
    if m["output"] is not None:
        w, b = npy(m["output"]["weights"]), npy(m["output"]["bias"])
        labels = (columns[-1] @ w.T + b).argmax(1)
        histogram = np.bincount(labels, minlength=w.shape[0]).tolist()
    return {"outcomes": outcomes, "labels": labels, "histogram": histogram, "shots": shots}


def report(result, manifest):
    """A short text of a run's label distribution."""
    lines = [f"{manifest['network']} on {manifest['target']} ({manifest['backend']}), "
             f"{result['shots']} shots; images {[i['index'] for i in manifest['images']]}"]
    if result["histogram"] is not None:
        h = result["histogram"]
        lines.append(f"  predictions: {h} -> majority {int(np.argmax(h))}")
    return "\n".join(lines)


def run_and_print(folder, execute, shots, manifest, as_json: bool) -> None:
    """Every driver's ending: run the protocol (progress on standard error) and print the
    histogram as JSON or as the readable report."""
    import json
    import sys

    result = run(folder, execute, shots, progress=lambda s: print(s, file=sys.stderr, flush=True))
    if as_json:
        print(json.dumps({"histogram": result["histogram"], "shots": result["shots"],
                          "labels": None if result["labels"] is None else result["labels"].tolist()}))
    else:
        print(report(result, manifest))
