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

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Union

import numpy as np

from qnnc.compiler import ir
from qnnc.runtime.targets.errors import refuse

Number = Union[float, np.ndarray]

_UNARY = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
    "atan": np.arctan, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh,
    "abs": np.abs,
}
_NAMED_CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf}


def sign(x: Number) -> np.ndarray:
    """sign with sign(0) = +1, the convention of the classical network."""
    return np.where(np.asarray(x) >= 0, 1.0, -1.0)


def _squash(kind: str, x: np.ndarray) -> np.ndarray:
    if kind == "tanh":
        return np.tanh(x)
    if kind == "clip":
        return np.clip(x, -1.0, 1.0)
    raise refuse("Q0330", f"unknown squash function `{kind}`",
                 help="a squash parameter takes one of: " + ", ".join(ir.SQUASH_FUNCTIONS))


def eval_expr(e: ir.Expr, env: Mapping[str, Union[Number, str]]) -> np.ndarray:
    """Evaluate an angle expression with numpy broadcasting. `env` maps `z`, `last` and
    the neuron's parameters to numbers (or arrays); a squash parameter maps to its
    function's name. A squash applied to `x / a` with `a = 0` is sign(x)."""
    if isinstance(e, ir.Const):
        return np.asarray(float(e.value))
    if isinstance(e, ir.Ref):
        if e.name in env:
            v = env[e.name]
            if isinstance(v, str):
                raise refuse("Q0330", f"squash parameter `{e.name}` used as a number", e.span)
            return np.asarray(v, dtype=float)
        if e.name in _NAMED_CONSTANTS:
            return np.asarray(_NAMED_CONSTANTS[e.name])
        raise refuse("Q0330", f"unbound name `{e.name}` in a neuron angle", e.span)
    if isinstance(e, ir.Unary):
        v = eval_expr(e.operand, env)
        if e.op == "-":
            return -v
        if e.op == "+":
            return v
        raise refuse("Q0330", f"unknown unary operator `{e.op}`", e.span)
    if isinstance(e, ir.Binary):
        lhs, rhs = eval_expr(e.lhs, env), eval_expr(e.rhs, env)
        with np.errstate(divide="ignore", invalid="ignore"):
            if e.op == "+":
                return lhs + rhs
            if e.op == "-":
                return lhs - rhs
            if e.op == "*":
                return lhs * rhs
            if e.op == "/":
                return lhs / rhs
            if e.op == "^":
                return lhs ** rhs
        raise refuse("Q0330", f"unknown operator `{e.op}`", e.span)
    if isinstance(e, ir.Call):
        fn = e.function
        kind = env.get(fn) if isinstance(env.get(fn), str) else None
        if kind is None and fn in ("tanh", "clip") and len(e.args) == 1:
            kind = fn  # a built-in squash written directly
        if kind is not None:
            if len(e.args) != 1:
                raise refuse("Q0330", f"squash `{fn}` takes one argument", e.span)
            arg = e.args[0]
            if isinstance(arg, ir.Binary) and arg.op == "/":
                den = eval_expr(arg.rhs, env)
                if np.all(den == 0):
                    # The a -> 0 limit: f(x / 0) = sign(x), sign(0) = +1.
                    return sign(eval_expr(arg.lhs, env))
            return _squash(kind, eval_expr(arg, env))
        args = [eval_expr(a, env) for a in e.args]
        if fn in _UNARY:
            with np.errstate(divide="ignore", invalid="ignore"):
                return _UNARY[fn](args[0])
        if fn == "sign":
            return sign(args[0])
        if fn == "clip":
            return np.clip(args[0], args[1], args[2])
        if fn == "min":
            return np.minimum(args[0], args[1])
        if fn == "max":
            return np.maximum(args[0], args[1])
        raise refuse("Q0330", f"unknown function `{fn}` in a neuron angle", e.span)
    raise TypeError(f"not an expression: {e!r}")


# --------------------------------------------------------------------------- gates

def gate_matrix(name: str, angle: Number = 0.0) -> np.ndarray:
    """Matrices, batched over `angle` (shape [..., d, d]). Qiskit conventions."""
    t = np.asarray(angle, dtype=float)
    c, s = np.cos(t / 2), np.sin(t / 2)
    if name == "ry":
        return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2).astype(complex)
    if name == "rx":
        return np.stack([np.stack([c + 0j, -1j * s], -1), np.stack([-1j * s, c + 0j], -1)], -2)
    if name == "rz":
        e = np.exp(-0.5j * t)
        z = np.zeros_like(e)
        return np.stack([np.stack([e, z], -1), np.stack([z, np.conj(e)], -1)], -2)
    if name == "x":
        return np.array([[0, 1], [1, 0]], dtype=complex)
    if name == "h":
        return np.array([[1, 1], [1, -1]], dtype=complex) / math.sqrt(2)
    if name == "sx":
        return np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]], dtype=complex) / 2
    if name == "sxdg":
        return np.array([[1 - 1j, 1 + 1j], [1 + 1j, 1 - 1j]], dtype=complex) / 2
    # two-qubit gates, basis index = q0 + 2 q1 (first listed qubit is bit 0)
    if name == "cx":  # control first
        return np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]], dtype=complex)
    if name == "cz":
        return np.diag([1, 1, 1, -1]).astype(complex)
    if name in ("ms", "msdg"):  # MS(0, 0) = exp(-i pi/4 XX), and its inverse
        sgn = 1 if name == "ms" else -1
        xx = np.kron(np.array([[0, 1], [1, 0]]), np.array([[0, 1], [1, 0]]))
        return (np.eye(4) - sgn * 1j * xx) / math.sqrt(2)
    raise ValueError(f"no matrix for gate {name}")


# --------------------------------------------------------------------------- neurons


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
    return _squash(kind, z / a)


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
    """A `NeuronDef` with its parameters bound (one layer's `NeuronActivation`)."""

    def __init__(self, ndef: ir.NeuronDef, args: Mapping[str, Union[float, int, str]]):
        self.ndef = ndef
        self.args = dict(args)
        for p in ndef.params:
            if p.name not in self.args:
                if p.default is None:
                    raise refuse("Q0330", f"parameter `{p.name}` of neuron `{ndef.name}` is unbound",
                                 ndef.span)
                self.args[p.name] = p.default
        self.registers = [r.name for r in ndef.registers]
        self.index = {r.name: i for i, r in enumerate(ndef.registers)}
        self.carried_reg = next((r.name for r in ndef.registers if r.carried), None)
        self.qubit_reg = next((r.name for r in ndef.registers if r.role == "qubit"), None)
        emits = [op for op in ndef.ops if isinstance(op, ir.MeasureOp) and op.emit]
        if len(emits) != 1:
            raise refuse("Q0330", f"neuron `{ndef.name}` must emit exactly one measurement",
                         ndef.span)
        self.measures = [op for op in ndef.ops if isinstance(op, ir.MeasureOp)]
        self.emit_index = next(i for i, m in enumerate(self.measures) if m.emit)
        self.gates = [op for op in ndef.ops if isinstance(op, ir.GateOp)]
        self._used_names: dict[Optional[int], frozenset[str]] = {}

    @property
    def num_registers(self) -> int:
        return len(self.registers)

    def angles(self, z: Number, last: Number) -> list[Optional[np.ndarray]]:
        """The angle of every GateOp (None for fixed gates), broadcast over z and last."""
        env: dict = dict(self.args)
        env["z"] = np.asarray(z, dtype=float)
        env["last"] = np.asarray(last, dtype=float)
        shape = np.broadcast(env["z"], env["last"]).shape
        out = []
        for g in self.gates:
            if g.angle is None:
                out.append(None)
            else:
                a = np.broadcast_to(eval_expr(g.angle, env), shape).astype(float)
                if not np.all(np.isfinite(a)):
                    raise refuse("Q0331", f"neuron `{self.ndef.name}` has a non-finite angle",
                                 g.span, help="check divisions by a parameter that is 0")
                out.append(a)
        return out

    def varies(self, gate_index: int) -> bool:
        """Whether a gate's angle depends on `z` or `last` (else it is one number)."""
        return bool(self.used_names(gate_index) & set(ir.NEURON_SPECIAL_NAMES))

    def used_names(self, gate_index: Optional[int] = None) -> frozenset[str]:
        """The names an angle (or, with None, any angle) reads; cached: the lowerings
        ask once per neuron and copy."""
        if gate_index not in self._used_names:
            self._used_names[gate_index] = frozenset(self._walk_names(gate_index))
        return self._used_names[gate_index]

    def _walk_names(self, gate_index: Optional[int]) -> set[str]:
        gates = self.gates if gate_index is None else [self.gates[gate_index]]
        return {n.name for g in gates if g.angle is not None
                for n in ir.walk(g.angle) if isinstance(n, ir.Ref)}

    def squash_form(self, gate_index: int) -> Optional[SquashForm]:
        """The gate's angle as c0 + c1 f(z/a) + c2 last, or None when it is not of that
        form. The candidate f and a are read from the expression (a squash applied to
        `z / <expression in the parameters>`); the coefficients are fitted on sample
        points and the form is accepted only if it reproduces every sample."""
        g = self.gates[gate_index]
        if g.angle is None:
            return None
        env = dict(self.args)
        calls: set[tuple[str, float]] = set()
        foreign = False  # `z` used outside a squash of z / a

        def walk(e, inside: bool):
            nonlocal foreign
            if isinstance(e, ir.Ref):
                if e.name == "z" and not inside:
                    foreign = True
            elif isinstance(e, ir.Unary):
                walk(e.operand, inside)
            elif isinstance(e, ir.Binary):
                walk(e.lhs, inside)
                walk(e.rhs, inside)
            elif isinstance(e, ir.Call):
                kind = env.get(e.function) if isinstance(env.get(e.function), str) else None
                if kind is None and e.function in ("tanh", "clip") and len(e.args) == 1:
                    kind = e.function
                arg = e.args[0] if len(e.args) == 1 else None
                if (kind is not None and isinstance(arg, ir.Binary) and arg.op == "/"
                        and isinstance(arg.lhs, ir.Ref) and arg.lhs.name == "z"):
                    try:
                        a = float(eval_expr(arg.rhs, {**env, "z": 0.0, "last": 1.0}))
                    except Exception:  # the denominator depends on z or last
                        foreign = True
                        return
                    calls.add((kind, a))
                    walk(arg.rhs, True)
                    return
                for x in e.args:
                    walk(x, inside)

        walk(g.angle, False)
        if foreign or len(calls) > 1:
            return None
        kind, a = next(iter(calls)) if calls else (None, 0.0)
        if kind is not None and a == 0:
            kind = "sign"
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
                m = gate_matrix(op.gate, angles[gi] if angles[gi] is not None else 0.0)
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
                            sb = _apply(sb, gate_matrix("x"), [k], n)
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
    """Apply a (possibly batched) gate on registers `qs`; the gate's index has qs[0]
    as its least significant bit, psi's index has register k as bit k."""
    batch, k = psi.shape[0], len(qs)
    t = psi.reshape((batch,) + (2,) * n)  # C order: axis 1 + (n-1-r) is register r
    axes = [1 + (n - 1 - q) for q in reversed(qs)]
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
