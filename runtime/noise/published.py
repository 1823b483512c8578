"""Trapped-ion noise models from published error rates, declared as data. ILLUSTRATIVE:
vendors publish averages (a spec sheet's headline numbers), not per-qubit calibrations,
so every qubit gets the same numbers; relaxation is neglected (T1, T2 of seconds against
gates of microseconds); each gate of the language is taken as native (one native gate,
then a depolarizing channel of the published infidelity)."""

from __future__ import annotations

from qnnc.compiler.gates import GATES
from qnnc.runtime.noise.model import Decomposition, GateNoise, NativeStep, NoiseModel, QubitNoise

# name -> (source, 1q error, 2q error, SPAM/readout error, 1q duration s, 2q duration s)
PUBLISHED = {
    "quantinuum:h1": ("Quantinuum H1-1 product data sheet (2024): single-qubit gate infidelity ~2e-5, "
                      "two-qubit gate infidelity ~1e-3, state preparation and measurement error ~3e-3",
                      2e-5, 1e-3, 3e-3, 10e-6, 100e-6),
    "ionq:aria": ("IonQ Aria published system specifications (2024): single-qubit gate fidelity ~99.98 %, "
                  "two-qubit gate fidelity ~99.6 %, SPAM fidelity ~99.6 %",
                  2e-4, 4e-3, 4e-3, 135e-6, 600e-6),
}


def published(name: str) -> NoiseModel:
    source, e1, e2, spam, t1q, t2q = PUBLISHED[name]
    gates, natives = [], []
    for g in GATES.values():
        if not g.language:
            continue
        virtual = g.name == "rz"  # Z rotations are frame changes on both vendors
        err = 0.0 if virtual else (e1 if g.qubits == 1 else e2)
        dur = 0.0 if virtual else (t1q if g.qubits == 1 else t2q)
        gates.append(GateNoise(g.name, (), err, dur))
        wires = tuple(range(g.qubits))
        natives.append(Decomposition(g.name, (NativeStep(g.name, wires, 1.0 if g.takes_angle else 0.0, 0.0),)))
    return NoiseModel(name=name, source=source, illustrative=True,
                      qubits=(QubitNoise(-1, None, None, spam, spam),), gates=tuple(gates),
                      natives=tuple(natives),
                      notes=("illustrative: published averages on every qubit, no relaxation",
                             "every language gate taken as native: the gate, then depolarizing"))
