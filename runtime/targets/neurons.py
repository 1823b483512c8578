"""Neurons as small circuits, read from their `NeuronDef`: angle evaluation and a
neuron-local exact simulation.

Nothing here knows a stdlib neuron by name: every angle comes from the definition's
expressions (in `z`, `last` and the bound parameters) and every branch from its ops.
The local simulation is a state vector over the neuron's own registers (2 to a few
amplitudes), vectorised over a batch (patterns, samples). It serves three purposes:
the exact reference distribution, the host-side state tracking of carried qubits in
the `layered` strategy, and checking the circuit lowerings.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Mapping, Optional, Union

import numpy as np

from qnnc.compiler import angles, ir
from qnnc.compiler.diagnostics import error
from qnnc.compiler.gates import unitary

Number = Union[float, np.ndarray]


def sign(x: Number) -> np.ndarray:
    """sign with sign(0) = +1, the convention of the classical network."""
    return np.where(np.asarray(x) >= 0, 1.0, -1.0)


@dataclass(frozen=True)
class SquashForm:
    """A gate angle of the form c0 + c1 * f(z / a) + c2 * last, where f is `kind`
    ("clip", "tanh"; "sign" when a = 0) or absent (c1 = 0, kind None)."""

    kind: Optional[str]
    a: float
    c0: float
    c1: float
    c2: float


def squash_value(kind: Optional[str], a: float, z: Number) -> np.ndarray:
    """f(z / a) of a `SquashForm` (sign(z) when a = 0; 0 without a squash)."""
    z = np.asarray(z, dtype=float)
    if kind is None:
        return np.zeros_like(z)
    if a == 0:
        return sign(z)
    return np.tanh(z / a) if kind == "tanh" else np.clip(z / a, -1.0, 1.0)


@dataclass(frozen=True)
class Branch:
    """One branch of a neuron's measurements: `record` holds the outcome bit (0: |0>,
    +1; 1: |1>, -1) of every MeasureOp in order, `emit` the emitted bit, `prob` its
    probability per batch element, `carried_out` the state of the neuron's `qubit`
    register afterwards ([batch, 2], None when it has none)."""

    record: tuple[int, ...]
    emit: int
    prob: np.ndarray
    carried_out: Optional[np.ndarray]


class NeuronModel:
    """A `NeuronDef` with its parameters bound (one layer's `NeuronActivation`): the numpy
    evaluator of the one neuron semantics (`qnnc.compiler.angles`)."""

    def __init__(self, ndef: ir.NeuronDef, args: Mapping[str, Union[float, int, str]],
                 span: Optional[ir.Span] = None):
        self.ndef = ndef
        self.bound = angles.bind_neuron(ndef, args, span)
        self.args = dict(self.bound.params)
        self.registers = [r.name for r in ndef.registers]
        self.index = {r.name: i for i, r in enumerate(ndef.registers)}
        self.carried_reg = next((r.name for r in ndef.registers if r.carried), None)
        self.qubit_reg = next((r.name for r in ndef.registers if r.role == "qubit"), None)
        self.measures = [op for op in ndef.ops if isinstance(op, ir.MeasureOp)]
        self.emit_index = next(i for i, m in enumerate(self.measures) if m.emit)
        self.gates = [op for op in ndef.ops if isinstance(op, ir.GateOp)]
        self.forms = self.bound.gate_angles
        # gate index -> an angle added after the angle is computed (one neuron's
        # parameter-shift variant, `shifted`); empty for the network itself.
        self.angle_shift: dict[int, float] = {}

    def shifted(self, gate_index: int, delta: float) -> "NeuronModel":
        """This neuron with gate `gate_index`'s angle shifted by `delta` after it is
        computed from z and last (the parameter-shift rule, `qnnc.runtime.gradients`).
        Only a gate whose angle reads z can be shifted."""
        if self.forms[gate_index] is None or "z" not in self.used_names(gate_index):
            raise ValueError(f"gate {gate_index} of neuron `{self.ndef.name}` does not depend on z")
        out = copy.copy(self)
        out.angle_shift = {**self.angle_shift, gate_index: self.angle_shift.get(gate_index, 0.0) + float(delta)}
        return out

    @property
    def num_registers(self) -> int:
        return len(self.registers)

    def angles(self, z: Number, last: Number) -> list[Optional[np.ndarray]]:
        """The angle of every GateOp (None for fixed gates), broadcast over z and last."""
        z = np.asarray(z, dtype=float)
        last = np.asarray(last, dtype=float)
        shape = np.broadcast(z, last).shape
        out = []
        for g, form in zip(self.gates, self.forms):
            if form is None:
                out.append(None)
                continue
            a = np.broadcast_to(angles.evaluate(form, z, last), shape).astype(float)
            if len(out) in self.angle_shift:
                a = a + self.angle_shift[len(out)]
            if not np.all(np.isfinite(a)):
                raise error(angles.NOT_FINITE, f"an angle of neuron `{self.ndef.name}` is not finite for "
                            "some inputs", g.span, help="check the angle's domain (log, sqrt, asin, acos, "
                            "division)")
            out.append(a)
        return out

    def varies(self, gate_index: int) -> bool:
        """Whether a gate's angle depends on `z` or `last` (else it is one number)."""
        return bool(self.used_names(gate_index))

    def used_names(self, gate_index: Optional[int] = None) -> frozenset[str]:
        """Which of z and last an angle (or, with None, any angle) reads."""
        forms = self.forms if gate_index is None else [self.forms[gate_index]]
        return frozenset().union(*(angles.reads(f) for f in forms))

    def squash_form(self, gate_index: int) -> Optional[SquashForm]:
        """The gate's angle as c0 + c1 f(z/a) + c2 last, or None when it is not of that
        form. The candidate f and a are read from the closed form (a squash of `z / a`,
        or the classical limit sign(z)); the coefficients are fitted on sample points and
        the form is accepted only if it reproduces every sample."""
        form = self.forms[gate_index]
        if form is None:
            return None
        calls: set[tuple[str, float]] = set()
        foreign = False  # `z` used outside a squash of z / a

        def walk(n, inside: bool):
            nonlocal foreign
            kind = n[0]
            if kind == "z" and not inside:
                foreign = True
            elif kind == "sign" and n[1] == ("z",):
                calls.add(("sign", 0.0))
            elif kind == "fn" and n[1] in ("tanh", "clip1") and len(n[2]) == 1 and _is_z_over_const(n[2][0]):
                arg = n[2][0]
                calls.add(("tanh" if n[1] == "tanh" else "clip", 1.0 if arg == ("z",) else arg[3][1]))
            else:
                for child in _children(n):
                    walk(child, inside)

        walk(form, False)
        if foreign or len(calls) > 1:
            return None
        kind, a = next(iter(calls)) if calls else (None, 0.0)
        if not np.isfinite(a) or a < 0:
            return None
        rng = np.random.default_rng(0)
        u = np.concatenate([np.linspace(-3, 3, 25), rng.uniform(-5, 5, 40)])
        z = np.concatenate([u * (a if a > 0 else 1.0)] * 2)
        last = np.repeat([1.0, -1.0], u.size)
        angle = self.angles(z, last)[gate_index]
        f = squash_value(kind, a, z)
        basis = np.stack([np.ones_like(z), f, last], 1)
        coef, *_ = np.linalg.lstsq(basis, angle, rcond=None)
        if not np.allclose(basis @ coef, angle, atol=1e-9, rtol=0):
            return None
        c0, c1, c2 = (float(c) for c in coef)
        if kind is None:
            c1 = 0.0
        return SquashForm(kind, a, c0, c1, c2)

    # ------------------------------------------------------------------ local simulation

    def branches(self, z: np.ndarray, last: np.ndarray,
                 carried_in: Optional[np.ndarray] = None) -> list[Branch]:
        """Enumerate every measurement branch, vectorised over the batch of z.
        Registers that are left unmeasured (other than the `qubit` register, which the
        next layer may carry) are traced out by a virtual Z measurement at the end."""
        z = np.atleast_1d(np.asarray(z, dtype=float))
        last = np.broadcast_to(np.asarray(last, dtype=float), z.shape)
        batch = z.shape[0]
        n = self.num_registers
        angles = self.angles(z, last)
        psi = np.zeros((batch, 2 ** n), dtype=complex)
        if self.carried_reg is not None and carried_in is not None:
            # registers start in |0>, except the carried one
            k = self.index[self.carried_reg]
            for b in range(2):
                psi[:, b << k] = carried_in[:, b]
        else:
            psi[:, 0] = 1.0
        # each branch: (record, prob[batch], psi[batch, 2^n])
        states = [((), np.ones(batch), psi)]
        gi = 0
        for op in self.ndef.ops:
            if isinstance(op, ir.GateOp):
                qs = [self.index[t] for t in op.targets]
                m = unitary(op.gate, angles[gi] if angles[gi] is not None else 0.0)
                gi += 1
                states = [(r, p, _apply(s, m, qs, n)) for r, p, s in states]
            elif isinstance(op, ir.MeasureOp):
                k = self.index[op.target]
                new = []
                for r, p, s in states:
                    for bit in (0, 1):
                        pb, sb = _project(s, k, bit, n)
                        new.append((r + (bit,), p * pb, sb))
                states = new
            elif isinstance(op, ir.ResetOp):
                k = self.index[op.target]
                new = []
                for r, p, s in states:
                    for bit in (0, 1):
                        pb, sb = _project(s, k, bit, n)
                        if bit:
                            sb = _apply(sb, unitary("x"), [k], n)
                        new.append((r, p * pb, sb))
                states = new
        keep = self.index[self.qubit_reg] if self.qubit_reg is not None else None
        out = []
        for r, p, s in states:
            parts = [(p, s)]
            for k in range(n):
                if k == keep:
                    continue
                nxt = []
                for pp, ss in parts:
                    for bit in (0, 1):
                        pb, sb = _project(ss, k, bit, n)
                        nxt.append((pp * pb, sb))
                parts = nxt
            for pp, ss in parts:
                if not np.any(pp > 0):
                    continue  # impossible everywhere (a register already in a basis state)
                carried = None
                if keep is not None:
                    carried = _reduce_to(ss, keep, n)
                out.append(Branch(r, r[self.emit_index], pp, carried))
        return out

    def emit_probability(self, z: np.ndarray, last: np.ndarray,
                         carried_in: Optional[np.ndarray] = None) -> np.ndarray:
        """P(emitted bit = 1), i.e. P(d = -1), per batch element."""
        p1 = 0.0
        for b in self.branches(z, last, carried_in):
            if b.emit == 1:
                p1 = p1 + b.prob
        return np.asarray(p1)


def _apply(psi: np.ndarray, m: np.ndarray, qs: list[int], n: int) -> np.ndarray:
    """Apply a (possibly batched) gate of the gate table on registers `qs`; the gate's
    index has qs[0] as its most significant bit (the table's convention), psi's index has
    register k as bit k."""
    batch, k = psi.shape[0], len(qs)
    t = psi.reshape((batch,) + (2,) * n)  # C order: axis 1 + (n-1-r) is register r
    axes = [1 + (n - 1 - q) for q in qs]
    t = np.moveaxis(t, axes, list(range(1, k + 1)))
    shape = t.shape
    flat = t.reshape(batch, 2 ** k, -1)
    flat = np.einsum("bij,bjr->bir" if m.ndim == 3 else "ij,bjr->bir", m, flat)
    t = np.moveaxis(flat.reshape(shape), list(range(1, k + 1)), axes)
    return t.reshape(batch, 2 ** n)


def _project(psi: np.ndarray, k: int, bit: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(2 ** n)
    mask = ((idx >> k) & 1) == bit
    s = np.where(mask[None, :], psi, 0)
    p = np.sum(np.abs(s) ** 2, axis=1)
    norm = np.sqrt(np.where(p > 0, p, 1.0))
    return p, s / norm[:, None]


def _reduce_to(psi: np.ndarray, k: int, n: int) -> np.ndarray:
    """The state of register k when every other register is in a basis state."""
    idx = np.arange(2 ** n)
    out = np.zeros((psi.shape[0], 2), dtype=complex)
    for bit in (0, 1):
        out[:, bit] = np.sum(np.where(((idx >> k) & 1)[None, :] == bit, psi, 0), axis=1)
    norm = np.linalg.norm(out, axis=1)
    return out / np.where(norm > 0, norm, 1.0)[:, None]


def _children(n):
    kind = n[0]
    if kind in ("neg", "sign"):
        return (n[1],)
    if kind == "bin":
        return (n[2], n[3])
    if kind == "fn":
        return n[2]
    if kind == "limit":
        return n[2] + (n[3], n[4])
    return ()


def _is_z_over_const(n) -> bool:
    return n == ("z",) or (n[0] == "bin" and n[1] == "/" and n[2] == ("z",) and n[3][0] == "c")
