"""The exact outcome distribution of a transpiled circuit under a noise model: the noise of
the `deferred` strategy, which is not a per-neuron channel.

A `deferred` circuit realises a layer's angles with rotations controlled by the previous
layer's qubits (and SWAPs that route them on the coupling map), so every two-qubit gate
puts its error on the controls too: a Pauli X/Y on a control flips the value that later
gates and its final readout see, and that flip is shared by every neuron the control
drives. The per-neuron channels of `neuron.LayerNoise` cannot hold those correlations,
so for this strategy the model is the circuit itself: its native gates as transpiled,
each followed by the model's channel for that gate on those physical qubits (the one
channel semantics, `channels.gate_error_channel`), and the readout assignment errors of
the measured qubits. The density matrix is kept over the qubits that are live: a qubit
joins at its first gate (in |0>), and leaves at its last, measured into a classical
axis (a measurement commutes with the gates on other qubits), so narrow networks
(width <= 4 per layer) need at most ~10 live qubits. numpy only.

Circuits with classical conditions, resets or a qubit measured twice are refused
(Q0710): those are the `dynamic` strategy's, which the per-neuron channels model. A gate
the model has no entry for on its qubits is Q0711; more live qubits than `MAX_LIVE`, Q0713.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy as np

from qnnc.compiler.diagnostics import error
from qnnc.runtime.noise import channels as ch
from qnnc.runtime.noise.model import NoiseModel

MAX_LIVE = 13  # live qubits held at once (4^13 complex entries: 1 GiB): beyond, refuse


@lru_cache(maxsize=None)
def _pauli_basis(k: int) -> np.ndarray:
    return np.stack(ch.paulis(k))  # [4^k, 2^k, 2^k]


def superop_of_ptm(r: np.ndarray) -> np.ndarray:
    """A channel's PTM as the superoperator S[i, j, k, l]: rho'[i, j] = sum S[i, j, k, l] rho[k, l]."""
    k = int(round(np.log2(r.shape[0]) / 2))
    d = 2 ** k
    p = _pauli_basis(k)
    # rho = sum_q c_q P_q / d with c_q = Tr(P_q rho) = sum_kl P_q[l, k] rho[k, l]
    return np.einsum("pq,pij,qlk->ijkl", r, p, p) / d


def _unitary_superop(u: np.ndarray) -> np.ndarray:
    return np.einsum("ik,jl->ijkl", u, u.conj())


def _native_unitary(name: str, params) -> np.ndarray:
    from qnnc.compiler.gates import unitary

    if name in ch.NATIVE_FIXED:
        return ch.NATIVE_FIXED[name]
    if params:
        return np.asarray(unitary(name, float(params[0])), dtype=complex)
    return ch.fixed_unitary(name)


class _State:
    """A density matrix over live qubits (axes: rows, then columns, one per live qubit)
    times classical axes (one per measured clbit): an array of shape
    (2,) * (2 n_live) + (2,) * n_measured, unnormalised probabilities on the classical
    axes."""

    def __init__(self):
        self.live: list[int] = []
        self.clbits: list[int] = []
        self.t = np.ones((), dtype=complex)

    def add(self, q: int) -> None:
        if len(self.live) >= MAX_LIVE:
            raise error("Q0713", f"the circuit holds more than {MAX_LIVE} live qubits at once; the exact "
                        "circuit-level noise model handles narrow networks",
                        help="use a narrower network (width <= 4 per layer), or sample it on Aer")
        n = len(self.live)
        zero = np.zeros((2, 2), dtype=complex)
        zero[0, 0] = 1.0
        t = np.tensordot(self.t, zero, axes=0)  # new axes at the end: row, col
        # move: rows (n), new row, cols (n), new col, classical...
        m = len(self.clbits)
        order = (list(range(n)) + [2 * n + m] + list(range(n, 2 * n)) + [2 * n + m + 1]
                 + list(range(2 * n, 2 * n + m)))
        self.t = t.transpose(order)
        self.live.append(q)

    def apply(self, s: np.ndarray, qs: tuple[int, ...]) -> None:
        """A superoperator on physical qubits qs (first most significant)."""
        k = len(qs)
        n = len(self.live)
        pos = [self.live.index(q) for q in qs]
        axes = pos + [n + p for p in pos]
        s = s.reshape((2,) * (4 * k))
        out = np.tensordot(s, self.t, axes=(list(range(2 * k, 4 * k)), axes))
        # out axes: new (rows of qs, cols of qs), then t's remaining axes in order
        rest = [a for a in range(self.t.ndim) if a not in axes]
        where = {a: 2 * k + i for i, a in enumerate(rest)}
        for i, a in enumerate(axes):
            where[a] = i
        self.t = out.transpose([where[a] for a in range(self.t.ndim)])

    def measure(self, q: int, clbit: int, p01: float, p10: float) -> None:
        """Measure q into clbit (its diagonal becomes a classical axis), with readout
        assignment errors P(read 1 | 0) = p01, P(read 0 | 1) = p10; q leaves."""
        n = len(self.live)
        i = self.live.index(q)
        diag = np.diagonal(self.t, axis1=i, axis2=n + i)  # the diagonal axis goes last
        a = np.array([[1 - p01, p10], [p01, 1 - p10]])  # [read, true]
        diag = np.tensordot(diag, a, axes=([diag.ndim - 1], [1]))
        self.t = diag
        self.live.pop(i)
        self.clbits.append(clbit)

    def trace_out(self, q: int) -> None:
        n = len(self.live)
        i = self.live.index(q)
        self.t = np.trace(self.t, axis1=i, axis2=n + i)
        self.live.pop(i)


def _channel(model: NoiseModel, name: str, qs: tuple[int, ...]) -> Optional[np.ndarray]:
    g = model.gate(name, qs)
    if g is None:
        if len(qs) >= 2:
            raise error("Q0711", f"noise model `{model.name}` has no `{name}` on qubits {list(qs)}",
                        help="bind a model of the backend the circuit was transpiled for")
        return None
    if not (g.error or g.duration):
        return None
    relax = [(model.qubit(q).t1, model.qubit(q).t2) for q in qs]
    return ch.gate_error_channel(g.error, g.duration, relax)


def exact_clbit_distribution(isa, model: NoiseModel) -> tuple[np.ndarray, np.ndarray]:
    """(bits [patterns, n_clbits] of 0/1, probabilities [patterns]) of a transpiled
    circuit (qiskit, physical qubits) run under `model`: every native gate followed by
    its channel, every measurement with its readout assignment errors. Clbits never
    written read 0."""
    ops = []
    for inst in isa.data:
        op = inst.operation
        name = op.name
        if getattr(op, "condition", None) is not None or name in ("reset", "if_else", "while_loop",
                                                                  "for_loop", "switch_case"):
            raise error("Q0710", f"the circuit `{isa.name}` has `{name}` with a classical condition or "
                        "a reset; the circuit-level noise model takes circuits that measure at the end",
                        help="the `dynamic` and `layered` strategies are modelled per neuron (`--noise`)")
        if name in ("barrier", "delay"):
            continue
        qs = tuple(isa.find_bit(q).index for q in inst.qubits)
        cs = tuple(isa.find_bit(c).index for c in inst.clbits)
        ops.append((name, qs, cs, tuple(op.params)))
    last: dict[int, int] = {}
    measured: set[int] = set()
    for i, (name, qs, cs, _) in enumerate(ops):
        for q in qs:
            if q in measured:
                raise error("Q0710", f"qubit {q} of circuit `{isa.name}` is used after its measurement; the "
                            "circuit-level noise model takes circuits that measure at the end")
            last[q] = i
        if name == "measure":
            measured.update(qs)
    # each measurement moves up to just after its qubit's last gate (it commutes with the
    # gates on other qubits), so the qubit leaves the density matrix as early as it can
    pending = {op[1][0]: op for op in ops if op[0] == "measure"}
    gates = [op for op in ops if op[0] != "measure"]
    last_gate = {q: i for i, op in enumerate(gates) for q in op[1]}
    ops = [op for op in ops if op[0] == "measure" and op[1][0] not in last_gate]
    for i, op in enumerate(gates):
        ops.append(op)
        ops.extend(pending[q] for q in op[1] if last_gate[q] == i and q in pending)
    last = {q: i for i, op in enumerate(ops) for q in op[1] if op[0] != "measure"}
    written = [op[2][0] for op in ops if op[0] == "measure"]
    if len(written) != len(set(written)):
        raise error("Q0710", f"circuit `{isa.name}` writes a clbit twice; the circuit-level noise model "
                    "takes circuits that measure each qubit once, at the end")
    st = _State()
    cache: dict = {}
    for i, (name, qs, cs, params) in enumerate(ops):
        for q in qs:
            if q not in st.live:
                st.add(q)
        if name == "measure":
            qn = model.qubit(qs[0])
            st.measure(qs[0], cs[0], qn.readout_p01, qn.readout_p10)
            continue
        key = (name, qs, tuple(float(p) for p in params))
        s = cache.get(key)
        if s is None:
            if name not in ch.NATIVE_FIXED and not _is_gate(name):
                raise error("Q0710", f"the circuit `{isa.name}` has `{name}`, not a native gate the noise "
                            "model knows")
            s = _unitary_superop(_native_unitary(name, params))
            e = _channel(model, name, qs)
            if e is not None:
                s = np.einsum("ijab,abkl->ijkl", superop_of_ptm(e).reshape(s.shape), s)
            cache[key] = s
        st.apply(s.reshape((2 ** len(qs),) * 4), qs)
        for q in qs:
            if last[q] == i and q not in pending:  # never measured: its state is forgotten
                st.trace_out(q)
    for q in list(st.live):
        st.trace_out(q)
    probs = np.real(st.t).reshape(-1) if st.clbits else np.ones(1)
    m = len(st.clbits)
    idx = np.arange(2 ** m)
    # axis j of t is clbit st.clbits[j], most significant first in the flattened index
    bits = np.zeros((2 ** m, isa.num_clbits), dtype=np.int8)
    for j, c in enumerate(st.clbits):
        bits[:, c] = (idx >> (m - 1 - j)) & 1
    probs = np.clip(probs, 0.0, None)
    return bits, probs / probs.sum()


def _is_gate(name: str) -> bool:
    from qnnc.compiler.gates import GATES

    return name in GATES


def exact_outcome_distribution(compiled, model: NoiseModel) -> dict[int, float]:
    """The exact distribution of a compiled `deferred` network's hidden outcomes under
    `model`, keyed like `network.outcomes_to_codes` (bit k set when hidden column k is
    -1): its one transpiled circuit run by `exact_clbit_distribution`."""
    from qnnc.runtime.targets.host import outcomes_from_bits
    from qnnc.runtime.targets.network import outcomes_to_codes

    if compiled.lowered.strategy != "deferred" or len(compiled.native.isa) != 1:
        raise error("Q0710", f"the circuit-level noise model takes one `deferred` circuit, not the "
                    f"`{compiled.lowered.strategy}` strategy's {len(compiled.native.isa)}",
                    help="the `dynamic` and `layered` strategies are modelled per neuron (`--noise`)")
    bits, probs = exact_clbit_distribution(compiled.native.isa[0], model)
    codes = outcomes_to_codes(outcomes_from_bits(compiled.lowered.circuits[0], compiled.spec, bits))
    out: dict[int, float] = {}
    for c, p in zip(codes.tolist(), probs.tolist()):
        if p > 0:
            out[c] = out.get(c, 0.0) + p
    return out


def sample_outcomes(compiled, model: NoiseModel, shots: int, seed: int = 0) -> np.ndarray:
    """`shots` rows of ±1 hidden outcomes drawn from `exact_outcome_distribution` (numpy
    generator seeded by `seed`), like `run_compiled`'s rows."""
    dist = exact_outcome_distribution(compiled, model)
    codes = np.array(sorted(dist), dtype=np.int64)
    p = np.array([dist[c] for c in codes.tolist()])
    draw = codes[np.random.default_rng(seed).choice(codes.size, size=shots, p=p / p.sum())]
    width = compiled.spec.num_outcomes
    return (1 - 2 * ((draw[:, None] >> np.arange(width)) & 1)).astype(np.int8)
