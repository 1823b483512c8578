"""Channels as Pauli transfer matrices (PTMs): the numbers the noisy neuron evolves with.

A state of k registers is its Pauli vector c_p = Tr(P_p ρ) (so ρ = 2^-k Σ_p c_p P_p),
p = Σ_r p_r 4^(k-1-r) with p_r ∈ {0: I, 1: X, 2: Y, 3: Z} and register 0 most
significant (the kernel's order). A channel E is the real matrix
R[p, q] = 2^-k Tr(P_p E(P_q)); channels compose by matrix products, and a Pauli vector
stays real whatever the gates, so a batch of neuron states is a real tensor [..., 4^k].

Channels here follow Qiskit Aer's `NoiseModel.from_backend` (qiskit_aer/noise/device/
models.py): after a gate, a depolarizing error whose parameter makes the gate's average
infidelity equal the device's reported error once thermal relaxation over the gate's
duration is accounted for, composed with (applied before) that relaxation (T2 capped at
2 T1, no excited-state population). numpy only.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from qnnc.compiler.gates import GATES, PAULI

_P1 = [np.eye(2, dtype=complex)] + [np.array(PAULI[k], dtype=complex) for k in "XYZ"]

# Native gates of a vendor that are not gates of the language (qnnc.compiler.gates):
# IBM's echoed cross-resonance gate, first listed qubit most significant. tests check it
# against qiskit's ECRGate.
_R = 1 / math.sqrt(2)
NATIVE_FIXED = {
    "ecr": np.array([[0, 0, _R, 1j * _R], [0, 0, 1j * _R, _R], [_R, -1j * _R, 0, 0],
                     [-1j * _R, _R, 0, 0]], dtype=complex),
    "id": np.eye(2, dtype=complex),
}


def paulis(k: int) -> list[np.ndarray]:
    out = [np.eye(1, dtype=complex)]
    for _ in range(k):
        out = [np.kron(a, p) for a in out for p in _P1]
    return out


def ptm_of(fn, k: int) -> np.ndarray:
    """The PTM of the linear map `fn` (matrix -> matrix) on k qubits."""
    ps = paulis(k)
    d = 2 ** k
    return np.array([[np.trace(p @ fn(q)).real / d for q in ps] for p in ps])


def unitary_ptm(u: np.ndarray) -> np.ndarray:
    k = int(round(math.log2(u.shape[0])))
    return ptm_of(lambda m: u @ m @ u.conj().T, k)


def fixed_unitary(name: str) -> np.ndarray:
    if name in NATIVE_FIXED:
        return NATIVE_FIXED[name]
    g = GATES[name]
    if g.takes_angle:
        raise KeyError(name)
    return np.array(g.matrix, dtype=complex)


def rotation_parts(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, C, S) with PTM(R(θ)) = A + cos θ C + sin θ S for a rotation of the gate table
    (U = cos(θ/2) I + sin(θ/2) S_g): c² = (1 + cos θ)/2, s² = (1 - cos θ)/2, cs = sin θ / 2."""
    g = GATES[name]
    sg = np.array(g.sine_part(), dtype=complex)
    k = g.qubits
    ident = ptm_of(lambda m: m, k)
    sandwich = ptm_of(lambda m: sg @ m @ sg.conj().T, k)
    cross = ptm_of(lambda m: sg @ m + m @ sg.conj().T, k)
    return (ident + sandwich) / 2, (ident - sandwich) / 2, cross / 2


def embed(r: np.ndarray, wires: Sequence[int], k: int) -> np.ndarray:
    """A PTM on `wires` (its first wire most significant) as a PTM on k registers."""
    m = len(wires)
    if m == k and list(wires) == list(range(k)):
        return r
    rest = [w for w in range(k) if w not in wires]
    full = np.kron(r, np.eye(4 ** (k - m))).reshape((4,) * (2 * k))
    order = list(wires) + rest  # axis j of each half is register order[j]
    perm = [order.index(w) for w in range(k)]
    return full.transpose(perm + [k + j for j in perm]).reshape(4 ** k, 4 ** k)


def depolarizing(param: float, k: int) -> np.ndarray:
    """Aer's depolarizing_error(param, k): ρ -> (1 - param) ρ + param Tr(ρ) I / 2^k."""
    r = np.eye(4 ** k) * (1.0 - param)
    r[0, 0] = 1.0
    return r


def thermal_relaxation(t1: Optional[float], t2: Optional[float], time: float) -> np.ndarray:
    """Aer's thermal_relaxation_error(t1, t2, time) without excited population: x, y
    decay as exp(-t/T2), z relaxes to +1 as exp(-t/T1). T2 is capped at 2 T1."""
    t1 = math.inf if t1 is None else float(t1)
    t2 = 2 * t1 if t2 is None else min(float(t2), 2 * t1)
    e1 = math.exp(-time / t1) if t1 < math.inf else 1.0
    e2 = math.exp(-time / t2) if t2 < math.inf else 1.0
    r = np.diag([1.0, e2, e2, e1])
    r[3, 0] = 1.0 - e1
    return r


def average_gate_fidelity(r: np.ndarray) -> float:
    """Of a channel given by its PTM: (d F_pro + 1)/(d + 1), F_pro = Tr(R) / d²."""
    d = int(round(math.sqrt(r.shape[0])))
    f_pro = np.trace(r) / d ** 2
    return float((d * f_pro + 1) / (d + 1))


def gate_error_channel(error: Optional[float], duration: Optional[float],
                       relax: Sequence[tuple[Optional[float], Optional[float]]]) -> np.ndarray:
    """The channel Aer puts after a gate on len(relax) qubits: depolarizing then thermal
    relaxation of each qubit over `duration` (`_basic_device_target_gate_errors`)."""
    k = len(relax)
    rel = np.eye(1)
    if duration:
        for t1, t2 in relax:
            rel = np.kron(rel, thermal_relaxation(t1, t2, duration))
    else:
        rel = np.eye(4 ** k)
    out = rel
    if error:
        fid = average_gate_fidelity(rel)
        infid = 1.0 - fid
        if error > infid:
            dim = 2 ** k
            e = min(error, dim / (dim + 1))
            p = dim * (e - infid) / (dim * fid - 1)
            p = min(p, 4 ** k / (4 ** k - 1))
            out = rel @ depolarizing(p, k)  # depolarizing first, then relaxation
    return out
