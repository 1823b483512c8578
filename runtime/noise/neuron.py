"""A neuron under device noise: its registers' density matrix, as a Pauli vector, evolved
through the device's native gates and their error channels, batched over
[..., neurons]. Used by `NeuronKernel` when a noise model is bound to its layer (the one
neuron semantics: the angles are the kernel's, evaluated by `torch_angles`).

Per gate op of the neuron, the device runs a `Decomposition` (native gates, each followed
by its channel). At most one native step depends on the angle θ, so the op's map is
K0 + cos θ Kc + sin θ Ks (three [N, D, D] real matrices per op, D = 4^k, per neuron
because each neuron sits on its own physical qubits). Measurements project the Pauli
vector; readout assignment errors flip the recorded (emitted) bit, never the state.

For the rotation neuron (one fresh qubit, R_y(θ), emit-measure) this gives
P(emit +1) = α + β cos θ + γ sin θ per neuron, exactly: `rotation_coefficients`, which the
kernel's fast path samples from at the cost of one more sine.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional

import numpy as np
import torch

from qnnc.compiler.diagnostics import error
from qnnc.compiler.gates import GATES
from qnnc.runtime.noise import channels as ch
from qnnc.runtime.noise.model import Decomposition, NativeStep, NoiseModel
from qnnc.runtime.random_fields import sample_pm1


def _step_unitary_parts(step, arity: int):
    """(A, C, S) of one native step on `arity` wires: its PTM is A + cos φ C + sin φ S."""
    if step.gate in GATES and GATES[step.gate].takes_angle:
        a, c, s = _rotation_parts(step.gate)
    else:
        a, c, s = ch.unitary_ptm(ch.fixed_unitary(step.gate)), None, None
    emb = lambda m: None if m is None else ch.embed(m, step.wires, arity)
    return emb(a), emb(c), emb(s)


@lru_cache(maxsize=None)
def _rotation_parts(gate: str):
    return ch.rotation_parts(gate)


class LayerNoise:
    """The channels of one layer's neurons, bound from a `NoiseModel` and the layer's
    physical qubits (`qubits[n][r]`: neuron n, register r in the kernel's order)."""

    def __init__(self, model: NoiseModel, kernel, qubits: list[tuple[int, ...]], layer_name: str):
        self.model = model
        self.k = kernel.k
        self.size = len(qubits)
        self.D = 4 ** self.k
        self.qubits = qubits
        ops = kernel.ops
        self.parts: dict[int, tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]] = {}
        for i, op in enumerate(ops):
            if op[0] != "gate":
                continue
            per = [self._op_map(op[1], op[2], op[3] is not None, q, layer_name) for q in qubits]
            k0 = np.stack([p[0] for p in per])
            kc = np.stack([p[1] for p in per]) if any(p[1] is not None for p in per) else None
            ks = np.stack([p[2] for p in per]) if any(p[2] is not None for p in per) else None
            self.parts[i] = (k0, kc, ks)
        self.readout = np.array([[[model.qubit(p).readout_p01, model.qubit(p).readout_p10] for p in q]
                                 for q in qubits])  # [N, k, 2]
        self.idle = None
        if kernel.carried and model.idle > 0:
            self.idle = np.stack([ch.thermal_relaxation(model.qubit(q[0]).t1, model.qubit(q[0]).t2, model.idle)
                                  for q in qubits])  # [N, 4, 4]
        # `layered`: the host re-prepares the carried qubit each layer (ry then rz, bound
        # from its record, `host.prep_angles`), so its state is the ideal one of the
        # recorded outcomes, through the device's preparation gates and their channels.
        self.host_carry = kernel.carried and model.strategy == "layered"
        self.prep = None
        if self.host_carry:
            _check_host_record(kernel, layer_name)
            maps = []
            for gate in ("ry", "rz"):
                per = [self._op_map(gate, (0,), True, q, layer_name, probes=False) for q in qubits]
                maps.append([np.stack([p[j] for p in per]) for j in range(3)])
            # The prepared state is bilinear in (1, cos θ, sin θ) and (1, cos φ, sin φ) of the
            # fixed |0...0>: nine vectors per neuron, prep[i, j] = Rz_j Ry_i |0...0> [N, D].
            v0 = np.array([1.0, 0.0, 0.0, 1.0])
            for _ in range(1, self.k):
                v0 = np.kron(v0, np.array([1.0, 0.0, 0.0, 1.0]))
            self.prep = np.stack([np.stack([np.einsum("nij,njk,k->ni", maps[1][j], maps[0][i], v0)
                                            for j in range(3)]) for i in range(3)])  # [3, 3, N, D]
        self._torch: dict = {}
        self.coefficients = self._rotation_coefficients(kernel) if kernel.fast_ry else None

    # ------------------------------------------------------------------ binding

    def _op_map(self, gate: str, regs: tuple[int, ...], has_angle: bool, phys: tuple[int, ...], layer: str,
                probes: bool = True):
        """(K0, Kc, Ks) on the neuron's k registers for one gate op on registers `regs`
        (`probes`: with the noise probe's pairs after a rotation, as the compiled neuron
        rotations have them; the host's preparation gates have none)."""
        targets = tuple(phys[r] for r in regs)
        dec = self._decomposition(gate, targets, layer)
        steps = list(dec.steps)
        if probes and has_angle and self.model.probe_pairs and len(regs) == 1:
            pair = [NativeStep("sx", (0,)), NativeStep("rz", (0,), 0.0, math.pi)] * 2
            steps += pair * self.model.probe_pairs
        arity = len(regs)
        D = 4 ** arity
        parts = [np.eye(D), None, None]
        varied = False
        for step in steps:
            a, c, s = _step_unitary_parts(step, arity)
            if c is not None and step.scale != 0:
                if not has_angle or varied or abs(abs(step.scale) - 1) > 1e-12:
                    raise error("Q0705", f"the device's decomposition of `{gate}` runs the angle in "
                                "more than one native gate (or scaled); the noisy neuron needs it in one",
                                help="give the model a decomposition with one angle-dependent native step")
                co, so, sg = math.cos(step.offset), math.sin(step.offset), math.copysign(1.0, step.scale)
                rc = co * c + so * s
                rs = sg * (co * s - so * c)
                base = parts[0]
                parts = [a @ base, rc @ base, rs @ base]
                varied = True
            else:
                m = a if c is None else a + math.cos(step.offset) * c + math.sin(step.offset) * s
                parts = [m @ p if p is not None else None for p in parts]
            phys = tuple(targets[w] for w in step.wires)
            g = self.model.gate(step.gate, phys)
            if g is not None and (g.error or g.duration):
                relax = [(self.model.qubit(q).t1, self.model.qubit(q).t2) for q in phys]
                e = ch.embed(ch.gate_error_channel(g.error, g.duration, relax), step.wires, arity)
                parts = [e @ p if p is not None else None for p in parts]
            elif g is None and len(step.wires) == 2:
                raise error("Q0707", f"layer `{layer}`: the device has no `{step.gate}` on qubits {list(phys)}",
                            help="the neuron's qubits must be coupled; bind the layout the compiled circuit uses")
        if has_angle and not varied:
            raise error("Q0705", f"the device's decomposition of `{gate}` does not depend on its angle")
        return tuple(None if p is None else ch.embed(p, regs, self.k) for p in parts)

    def _decomposition(self, gate: str, targets: tuple[int, ...], layer: str) -> Decomposition:
        decs = self.model.decompositions(gate)
        if not decs:
            raise error("Q0704", f"noise model `{self.model.name}` does not say how the device runs `{gate}` "
                        f"(layer `{layer}`)", help="add a decomposition of the gate to the model's `natives`")
        if len(targets) == 1:
            return decs[0]
        for d in decs:
            if d.oriented is None:
                return d
            two = [s for s in d.steps if len(s.wires) == 2]
            pair = targets if d.oriented else targets[::-1]
            if all(self.model.gate(s.gate, pair) is not None for s in two):
                return d
        raise error("Q0707", f"layer `{layer}`: qubits {list(targets)} of `{gate}` are not coupled on the device "
                    f"of `{self.model.name}`", help="bind the layout the compiled circuit uses")

    def _rotation_coefficients(self, kernel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P(emit +1) = α + β cos θ + γ sin θ of the rotation neuron, per neuron."""
        k0, kc, ks = self.parts[0]
        e0 = np.array([1.0, 0.0, 0.0, 1.0])  # |0>
        # P(true 0) = (c_I + c_Z) / 2 of the state after the gate: linear in the three parts
        p0 = [(m[:, 0, :] @ e0 + m[:, 3, :] @ e0) / 2 if m is not None else np.zeros(self.size)
              for m in (k0, kc, ks)]
        p01, p10 = self.readout[:, 0, 0], self.readout[:, 0, 1]
        # P(read +) = (1 - p01) P0 + p10 (1 - P0) = p10 + (1 - p01 - p10) P0
        gain = 1.0 - p01 - p10
        alpha = p10 + gain * p0[0]
        return alpha, gain * p0[1], gain * p0[2]

    def tensor(self, name: str, dtype: torch.dtype):
        key = (name, dtype)
        t = self._torch.get(key)
        if t is None:
            if name == "coef":
                t = tuple(torch.as_tensor(np.asarray(c, dtype=float), dtype=dtype) for c in self.coefficients)
            elif name == "readout":
                t = torch.as_tensor(self.readout, dtype=dtype)
            elif name == "idle":
                t = torch.as_tensor(self.idle, dtype=dtype)
            elif name == "prep":
                t = torch.as_tensor(self.prep, dtype=dtype)
            else:
                i = int(name)
                t = tuple(None if m is None else torch.as_tensor(m, dtype=dtype) for m in self.parts[i])
            self._torch[key] = t
        return t

    # ------------------------------------------------------------------ the fast path

    def threshold(self, theta: torch.Tensor, own: bool, neurons: Optional[int] = None) -> torch.Tensor:
        """The sampling threshold of the rotation neuron (as the noiseless fast path: -1
        exactly when f + thr < 0 for f uniform in [1, 2)): thr = P(+1) - 2."""
        a, b, c = self._coef(theta.dtype, theta.shape[-1] if theta.dim() else self.size)
        s = torch.sin(theta)
        cos = theta.cos_() if own else torch.cos(theta)
        if cos.shape != torch.broadcast_shapes(cos.shape, b.shape):  # a constant angle: one value
            return b * cos + c * s + (a - 2.0)
        return cos.mul_(b).addcmul_(s, c).add_(a - 2.0)

    def plus_probability(self, theta: torch.Tensor) -> torch.Tensor:
        a, b, c = self._coef(theta.dtype, theta.shape[-1] if theta.dim() else self.size)
        return a + b * torch.cos(theta) + c * torch.sin(theta)

    def _coef(self, dtype, width: int):
        a, b, c = self.tensor("coef", dtype)
        if width != self.size:  # a probe of one neuron (the branch count): any neuron's channel
            a, b, c = a[:1], b[:1], c[:1]
        return a, b, c

    # ------------------------------------------------------------------ the general path

    def _mats(self, i: int, dtype, width: int):
        k0, kc, ks = self.tensor(str(i), dtype)
        if width != self.size:
            k0, kc, ks = (None if m is None else m[:1] for m in (k0, kc, ks))
        return k0, kc, ks

    def initial(self, state, shape, dtype) -> torch.Tensor:
        """The registers' Pauli vector [*shape, 1, D]: register 0 from `state` (carried:
        amplitudes (a0, a1) or Bloch (x, y, z)) or |0>, ancillas |0>."""
        width = shape[-1]
        if self.host_carry:
            return self._prepared(state, shape, dtype)
        reg0 = torch.zeros(tuple(shape) + (1, 4), dtype=dtype)
        reg0[..., 0] = 1.0
        if state is None:
            reg0[..., 3] = 1.0
        else:
            if len(state) == 2:
                a0, a1 = (torch.as_tensor(s) for s in state)
                if a0.is_complex() or a1.is_complex():
                    cross = a0.conj() * a1
                    x, y = 2 * cross.real, 2 * cross.imag
                    zz = a0.abs() ** 2 - a1.abs() ** 2
                else:
                    x, y, zz = 2 * a0 * a1, torch.zeros_like(a0), a0 * a0 - a1 * a1
            else:
                x, y, zz = (torch.as_tensor(s) for s in state)
            reg0[..., 0, 1] = x.to(dtype).expand(tuple(shape))
            reg0[..., 0, 2] = y.to(dtype).expand(tuple(shape))
            reg0[..., 0, 3] = zz.to(dtype).expand(tuple(shape))
            if self.idle is not None:
                idle = self.tensor("idle", dtype)
                if width != self.size:
                    idle = idle[:1]
                reg0 = torch.einsum("nij,...nlj->...nli", idle, reg0)
        v = reg0
        for _ in range(1, self.k):
            anc = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=dtype)
            v = (v.unsqueeze(-1) * anc).flatten(-2)
        return v

    def _prepared(self, state, shape, dtype) -> torch.Tensor:
        """The registers after the host's preparation of the carried qubit in `state`
        (amplitudes; None: |0>, which the circuit still prepares with ry(0) rz(0)):
        ry(θ) then rz(φ) with θ, φ as `host.prep_angles`, each through the device's
        decomposition and channels; ancillas |0>."""
        width = shape[-1]
        if state is None:
            cy, sy = torch.ones((), dtype=dtype), torch.zeros((), dtype=dtype)
            cz, sz = cy, sy
        else:
            a0, a1 = (torch.as_tensor(s) for s in state)
            m0, m1 = a0.abs(), a1.abs()
            n = torch.clamp(m0 * m0 + m1 * m1, min=torch.finfo(dtype).tiny)
            cy, sy = ((m0 * m0 - m1 * m1) / n).to(dtype), (2 * m0 * m1 / n).to(dtype)
            cross = a0.conj() * a1 if (a0.is_complex() or a1.is_complex()) else a0 * a1
            re = cross.real if cross.is_complex() else cross
            im = cross.imag if cross.is_complex() else torch.zeros_like(cross)
            r = m0 * m1
            ok = (m0 > 1e-12) & (m1 > 1e-12)
            safe = torch.where(ok, r, torch.ones_like(r))
            cz = torch.where(ok, re / safe, torch.ones_like(r)).to(dtype)
            sz = torch.where(ok, im / safe, torch.zeros_like(r)).to(dtype)
        prep = self.tensor("prep", dtype)  # [3, 3, N, D]
        if width != self.size:
            prep = prep[:, :, :1]
        wy = (torch.ones_like(cy), cy, sy)
        wz = (torch.ones_like(cz), cz, sz)
        v = None
        for i in range(3):
            for j in range(3):
                w = (wy[i] * wz[j]).expand(tuple(shape))[..., None, None]
                term = w * prep[i, j][:, None, :]
                v = term if v is None else v + term
        return v

    def host_post(self, kernel, ev, state, recorded: torch.Tensor, shift=None):
        """The host's record of the carried qubit after the layer: the ideal neuron run on
        the host's state `state` (amplitudes, None: |0>), its emitted register projected
        on the recorded outcome (±1, broadcast like the angles [..., N, L]), normalised:
        amplitudes (a0, a1), each [..., N, L]. An outcome the ideal neuron cannot give
        (probability 0) leaves |0>."""
        u = lambda a: a.unsqueeze(-1) if isinstance(a, torch.Tensor) else a
        amps = kernel._fresh_amps(None if state is None else (u(state[0]), u(state[1])))
        for i, op in enumerate(kernel.ops):
            if op[0] == "gate":
                theta = kernel._angle(i, ev) if op[3] is not None else None
                if shift is not None and i in shift:
                    theta = theta + shift[i].unsqueeze(-1)
                kernel._apply_gate(amps, op[1], op[2], theta)
                continue
            m = 1 << (kernel.k - 1 - op[1])
            one = (recorded < 0).to(recorded.dtype)
            for b in range(len(amps)):
                if amps[b] is not None:
                    amps[b] = amps[b] * (one if b & m else 1 - one)
        dtype = recorded.dtype
        shape = recorded.shape
        zero = torch.zeros(shape, dtype=dtype)
        top = 1 << (kernel.k - 1)
        q = [sum((amps[b] for b in range(len(amps)) if bool(b & top) == bool(h) and amps[b] is not None),
                 zero) + zero for h in (0, 1)]
        norm2 = sum((a.abs() ** 2 if a.is_complex() else a * a) for a in q)
        ok = norm2 > 0
        inv = torch.where(ok, torch.rsqrt(torch.where(ok, norm2, torch.ones_like(norm2))), torch.zeros_like(norm2))
        return q[0] * inv + torch.where(ok, zero, zero + 1.0), q[1] * inv

    def apply(self, i: int, v: torch.Tensor, theta) -> torch.Tensor:
        """Gate op i on v [..., N, L, D]; theta broadcastable to [..., N, L] (or None)."""
        k0, kc, ks = self._mats(i, v.dtype, v.shape[-3])
        out = torch.einsum("nij,...nlj->...nli", k0, v)
        if kc is not None:
            th = theta if isinstance(theta, torch.Tensor) else torch.tensor(float(theta), dtype=v.dtype)
            th = th.unsqueeze(-1)
            out = out + torch.cos(th) * torch.einsum("nij,...nlj->...nli", kc, v) \
                + torch.sin(th) * torch.einsum("nij,...nlj->...nli", ks, v)
        return out

    def _indices(self, r: int):
        """Pauli-vector indices with register r = I (and the same ones with r = Z)."""
        key = ("idx", r)
        got = self._torch.get(key)
        if got is None:
            w = 4 ** (self.k - 1 - r)
            idx_i = [p for p in range(self.D) if (p // w) % 4 == 0]
            got = (torch.tensor(idx_i), torch.tensor([p + 3 * w for p in idx_i]),
                   torch.tensor([p for p in range(self.D) if (p // w) % 4 in (1, 2)]))
            self._torch[key] = got
        return got

    def project(self, v: torch.Tensor, r: int, bit: int) -> torch.Tensor:
        """The unnormalised state after outcome `bit` of register r."""
        ii, iz, _ = self._indices(r)
        sgn = 1.0 if bit == 0 else -1.0
        half = (v[..., ii] + sgn * v[..., iz]) * 0.5
        out = torch.zeros_like(v)
        out[..., ii] = half
        out[..., iz] = sgn * half
        return out

    def reset(self, v: torch.Tensor, r: int) -> torch.Tensor:
        ii, iz, _ = self._indices(r)
        keep = v[..., ii]
        out = torch.zeros_like(v)
        out[..., ii] = keep
        out[..., iz] = keep
        return out

    def z_component(self, v: torch.Tensor, r: int) -> torch.Tensor:
        return v[..., 3 * 4 ** (self.k - 1 - r)]

    def carried_state(self, v: torch.Tensor):
        """Register 0's Bloch vector (x, y, z), the ancillas traced out, normalised."""
        w = 4 ** (self.k - 1)
        tr = v[..., 0]
        pos = tr > 0
        inv = torch.where(pos, 1.0 / torch.where(pos, tr, torch.ones_like(tr)), torch.zeros_like(tr))
        return tuple(v[..., j * w] * inv for j in (1, 2, 3))

    # ------------------------------------------------------------------ sampling and branching

    def sample(self, kernel, ev, state, fields, key, start, shape, dtype, shift=None):
        """One trajectory per element of `shape` [B, S, N]: (recorded d, post Bloch or None).
        `shift`: op index -> angle added after it is computed (the kernel's parameter-shift
        hook), broadcast like z."""
        v = self.initial(state, shape, dtype)  # [B, S, N, 1, D]
        d = None
        tiny = torch.finfo(dtype).tiny
        readout = self.tensor("readout", dtype)
        for i, op in enumerate(kernel.ops):
            if op[0] == "gate":
                theta = kernel._angle(i, ev) if op[3] is not None else None
                if shift is not None and i in shift:
                    theta = theta + shift[i].unsqueeze(-1)
                v = self.apply(i, v, theta)
                continue
            r = op[1]
            tr = v[..., 0]
            t = (-self.z_component(v, r) / torch.clamp(tr, min=tiny)).squeeze(-1)  # p1 - p0
            true = sample_pm1(t, fields.uniform_12(key + (i,), start, shape))
            p0, p1 = self.project(v, r, 0), self.project(v, r, 1)
            pick = (true > 0).unsqueeze(-1).unsqueeze(-1)
            num = torch.where(pick, p0, p1)
            v = num / torch.clamp(num[..., :1], min=tiny)
            if op[0] == "reset":
                v = self.reset(v, r)
            elif op[2]:  # the emitted bit, recorded through the readout's assignment errors
                p01, p10 = readout[..., r, 0], readout[..., r, 1]
                if shape[-1] != self.size:
                    p01, p10 = p01[:1], p10[:1]
                q = torch.where(true > 0, p01, p10)
                flip = sample_pm1(2 * q - 1, fields.uniform_12(key + (i, 7), start, shape))
                d = true * flip
        post = None
        if self.host_carry:
            post = tuple(a.squeeze(-1) for a in self.host_post(kernel, ev, state, d.unsqueeze(-1), shift))
        elif kernel.carried:
            post = tuple(s.squeeze(-1) for s in self.carried_state(v))
        return d, post

    def branch(self, kernel, ev, state, shape, dtype):
        """Every (true outcome, recorded outcome) branch, unnormalised: (probs [*shape, L],
        emit tuple, post Bloch [*shape, L] or None). `shape` ends in N."""
        v = self.initial(state, shape, dtype)
        emit: list[int] = [0]
        readout = self.tensor("readout", dtype)
        for i, op in enumerate(kernel.ops):
            if op[0] == "gate":
                theta = kernel._angle(i, ev) if op[3] is not None else None
                v = self.apply(i, v, theta)
                continue
            r = op[1]
            p0, p1 = self.project(v, r, 0), self.project(v, r, 1)
            if op[0] == "reset":
                v = self.reset(p0 + p1, r)
                continue
            if not op[2]:
                v = torch.cat([p0, p1], dim=-2)
                emit = emit + emit
                continue
            ro = readout[..., r, :] if shape[-1] == self.size else readout[:1, r, :]
            p01, p10 = ro[:, 0, None, None], ro[:, 1, None, None]
            v = torch.cat([p0 * (1 - p01), p0 * p01, p1 * p10, p1 * (1 - p10)], dim=-2)
            n = len(emit)
            emit = [0] * n + [1] * n + [0] * n + [1] * n
        probs = v[..., 0]
        emit_pm = tuple(1 - 2 * b for b in emit)
        if self.host_carry:  # the next layer sees the record only: merge by recorded outcome
            merged = torch.stack([sum(probs[..., l] for l in range(len(emit)) if emit_pm[l] == e)
                                  for e in (1, -1)], -1)
            rec = torch.tensor([1.0, -1.0], dtype=dtype).expand(merged.shape)
            return merged, (1, -1), self.host_post(kernel, ev, state, rec)
        post = self.carried_state(v) if kernel.carried else None
        return probs, emit_pm, post


def _check_host_record(kernel, layer: str) -> None:
    """The host's record of a carried neuron is its emitted bit: the neuron must measure
    once (the emit), reset nothing, and leave its other registers in a basis state (at
    most two registers, the emit on the ancilla or on the qubit itself)."""
    others = [op for op in kernel.ops if op[0] != "gate"]
    if len(others) != 1 or others[0][0] != "measure" or not others[0][2] or kernel.k > 2 or \
            (kernel.k == 2 and others[0][1] != 1):
        raise error("Q0712", f"layer `{layer}`: neuron `{kernel.neuron.name}` carries its qubit through the "
                    "host's record, which the noisy simulator models for neurons that measure once (the "
                    "emitted bit) with at most one ancilla",
                    help="bind the model for the `dynamic` strategy (`with_layout(..., strategy='dynamic')`)")
