"""The gate table: every gate qnnc knows, once.

A row says what a gate is (its qubit count, whether it takes an angle, its unitary) and
how each vendor spells it. The language (which gates a neuron may use), the verifier,
the torch simulator, the numpy neuron model, the circuit IR and every emitter read this
table; none of them keeps its own list. Adding a gate means adding a row here (and its
tests).

Unitaries: a rotation is exp(-i θ P / 2) for a Pauli generator P, so its matrix is
cos(θ/2) I + sin(θ/2) S with S = -i P. A fixed gate gives its matrix. Matrices are
tuples of rows; for two-qubit gates the first listed qubit is the most significant bit
of the row and column index (so `cx`'s control is listed first and
cx = [[1,0,0,0],[0,1,0,0],[0,0,0,1],[0,0,1,0]]).

Vendor spellings (`Spelling`) are a name in that vendor's vocabulary plus fixed
parameters that come before the gate's own angle (qiskit and OpenQASM in radians, pytket
in half-turns). Vendors: "qiskit" (QuantumCircuit method), "pytket" (OpType name),
"braket" (Braket's OpenQASM 3 dialect), "guppy" (a guppylang.std.quantum function; sx is
Guppy's `v`, equal up to a global phase).

This module imports nothing heavy (numpy only inside `unitary`), so the compiler core
stays light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional

_R = 1 / math.sqrt(2)

Matrix = tuple[tuple[complex, ...], ...]

PAULI: dict[str, Matrix] = {
    "X": ((0, 1), (1, 0)),
    "Y": ((0, -1j), (1j, 0)),
    "Z": ((1, 0), (0, -1)),
}


@dataclass(frozen=True)
class Spelling:
    name: str
    fixed: tuple[float, ...] = ()


@dataclass(frozen=True)
class Gate:
    name: str
    qubits: int
    generator: Optional[str] = None  # Pauli of a rotation (takes one angle)
    matrix: Optional[Matrix] = None  # a fixed gate's unitary
    language: bool = True  # usable in a `.qnn` neuron
    spellings: Mapping[str, Spelling] = field(default_factory=dict)

    @property
    def takes_angle(self) -> bool:
        return self.generator is not None

    def spelling(self, vendor: str) -> Spelling:
        return self.spellings.get(vendor, Spelling(self.name))

    def sine_part(self) -> Matrix:
        """S = -i P of a rotation: its matrix is cos(θ/2) I + sin(θ/2) S."""
        p = PAULI[self.generator]  # type: ignore[index]
        return tuple(tuple(_tidy(-1j * x) for x in row) for row in p)

    @property
    def is_real(self) -> bool:
        """Whether the gate maps real amplitudes to real amplitudes for every angle."""
        m = self.sine_part() if self.takes_angle else self.matrix
        return all(complex(x).imag == 0 for row in m for x in row)  # type: ignore[union-attr]


def _tidy(x: complex):
    """A matrix entry as an int/float when it is real (keeps real gates real)."""
    x = complex(x)
    if x.imag == 0:
        r = x.real
        return int(r) if r == int(r) else r
    return x


def _fixed(rows) -> Matrix:
    return tuple(tuple(_tidy(x) for x in row) for row in rows)


_MS = _fixed([[_R, 0, 0, -1j * _R], [0, _R, -1j * _R, 0], [0, -1j * _R, _R, 0], [-1j * _R, 0, 0, _R]])
_MSDG = _fixed([[_R, 0, 0, 1j * _R], [0, _R, 1j * _R, 0], [0, 1j * _R, _R, 0], [1j * _R, 0, 0, _R]])

_ROWS = (
    Gate("rx", 1, generator="X", spellings={"pytket": Spelling("Rx")}),
    Gate("ry", 1, generator="Y", spellings={"pytket": Spelling("Ry")}),
    Gate("rz", 1, generator="Z", spellings={"pytket": Spelling("Rz")}),
    Gate("x", 1, matrix=_fixed([[0, 1], [1, 0]]), spellings={"pytket": Spelling("X")}),
    Gate("h", 1, matrix=_fixed([[_R, _R], [_R, -_R]]), spellings={"pytket": Spelling("H")}),
    Gate("sx", 1, matrix=_fixed([[(1 + 1j) / 2, (1 - 1j) / 2], [(1 - 1j) / 2, (1 + 1j) / 2]]),
         spellings={"pytket": Spelling("SX"), "braket": Spelling("v"), "guppy": Spelling("v")}),
    Gate("sxdg", 1, matrix=_fixed([[(1 - 1j) / 2, (1 + 1j) / 2], [(1 + 1j) / 2, (1 - 1j) / 2]]),
         language=False, spellings={"pytket": Spelling("SXdg"), "braket": Spelling("vi"),
                                    "guppy": Spelling("vdg")}),
    Gate("cx", 2, matrix=_fixed([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]),
         spellings={"pytket": Spelling("CX"), "braket": Spelling("cnot")}),
    Gate("cz", 2, matrix=_fixed([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, -1]]),
         spellings={"pytket": Spelling("CZ")}),
    # The Mølmer–Sørensen gate MS(0, 0) = exp(-i π/4 XX) (IonQ's native entangler), and its
    # inverse; used by the noise probes, not by the language.
    Gate("ms", 2, matrix=_MS, language=False,
         spellings={"qiskit": Spelling("rxx", (math.pi / 2,)), "pytket": Spelling("XXPhase", (0.5,)),
                    "braket": Spelling("xx", (math.pi / 2,))}),
    Gate("msdg", 2, matrix=_MSDG, language=False,
         spellings={"qiskit": Spelling("rxx", (-math.pi / 2,)), "pytket": Spelling("XXPhase", (-0.5,)),
                    "braket": Spelling("xx", (-math.pi / 2,))}),
)

GATES: dict[str, Gate] = {g.name: g for g in _ROWS}
LANGUAGE_GATES: tuple[str, ...] = tuple(g.name for g in _ROWS if g.language)


def gate(name: str) -> Gate:
    return GATES[name]


def unitary(name: str, angle=0.0):
    """The gate's matrix as a numpy array, batched over `angle` for rotations
    (shape [..., d, d]); index convention as in the module docstring."""
    import numpy as np

    g = GATES[name]
    if not g.takes_angle:
        return np.array(g.matrix, dtype=complex)
    t = np.asarray(angle, dtype=float)[..., None, None]
    eye = np.eye(2, dtype=complex)
    return np.cos(t / 2) * eye + np.sin(t / 2) * np.array(g.sine_part(), dtype=complex)


def zyz_angles(name: str) -> tuple[float, float, float]:
    """Euler angles (φ, θ, λ) of a fixed one-qubit gate: U = e^{iα} Rz(φ) Ry(θ) Rz(λ).
    Lets a target whose natives are Z and Y rotations run any fixed one-qubit gate."""
    import cmath

    (a, b), (c, d) = GATES[name].matrix  # type: ignore[misc]
    a, b, c, d = (complex(x) for x in (a, b, c, d))
    theta = 2 * math.atan2(abs(c), abs(a))
    if abs(c) < 1e-12:  # diagonal: only φ + λ matters
        return cmath.phase(d) - cmath.phase(a), 0.0, 0.0
    if abs(a) < 1e-12:  # anti-diagonal: only φ - λ matters
        return cmath.phase(c) - cmath.phase(-b), math.pi, 0.0
    phi = cmath.phase(c) - cmath.phase(a)
    lam = cmath.phase(-b) - cmath.phase(a)
    return phi, theta, lam


def sign_flip_control(name: str) -> str:
    """The two-qubit gate whose target Pauli anticommutes with a rotation's generator: a
    controlled flip of R_P(θ) into R_P(-θ) (X flips Y and Z rotations, Z flips X)."""
    return "cz" if GATES[name].generator == "X" else "cx"
