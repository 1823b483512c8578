"""A network ready for circuits: the IR's hidden quantum layers with their weights
and one preprocessed input, and its exact outcome distribution by branch enumeration.

Outcome layout (common to every target and strategy): one column per hidden neuron,
layers in order, values +1 (|0>) and -1 (|1>). An outcome *code* packs a row into an
integer, bit k set when column k is -1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import error
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.neurons import NeuronModel


# The widest weight grid `--weight-bits` accepts: 2^30 steps per unit of a keeps the
# sums of a few thousand terms inside a 63-bit register.
MAX_WEIGHT_BITS = 30


@dataclass(frozen=True)
class Quantisation:
    """A layer's weights and bias on an integer grid: weight = grid * weight_int. For a
    clip squash the grid is a / 2^bits, so z / a = (integer) / 2^bits; for a = 0 (sign)
    it is the power of two that gives the largest |weight| `bits` bits (every sum of
    grid multiples is then exact in floating point, and sign(z) is exact)."""

    bits: int
    squash: str  # "clip" or "sign"
    grid: float
    weight_int: np.ndarray  # int64 [size, fan_in]
    bias_int: np.ndarray  # int64 [size]
    max_abs_change: float  # over weights and bias

    def describe(self) -> str:
        how = f"a/2^{self.bits}" if self.squash == "clip" else f"sign: 2^{int(np.log2(self.grid))}"
        return f"grid {self.grid:.6g} ({how}), max |dW| = {self.max_abs_change:.3g}"


@dataclass
class HiddenLayer:
    name: str
    index: int
    size: int
    neuron: NeuronModel
    weight: np.ndarray  # [size, fan_in]
    bias: np.ndarray  # [size]
    # The neuron's qubit continues the previous layer's: its neuron has a carried qubit
    # and so has the previous layer's (as in the simulator; otherwise it starts in |0>).
    carried: bool
    span: ir.Span = ir.NO_SPAN
    quantised: Optional[Quantisation] = None  # weights rounded for real-time arithmetic
    # One neuron's model replaced by an angle-shifted one (a parameter-shift variant):
    # (neuron index, its NeuronModel); every angle of neuron i comes from `model(i)`.
    shifted: Optional[tuple[int, NeuronModel]] = None

    def model(self, i: int) -> NeuronModel:
        """The neuron model of neuron i (the layer's, or its angle-shifted variant)."""
        return self.shifted[1] if self.shifted is not None and self.shifted[0] == i else self.neuron

    def z(self, d_prev: np.ndarray) -> np.ndarray:
        """Pre-activations [..., size] from the previous layer's ±1 outcomes (or x)."""
        return d_prev @ self.weight.T + self.bias

    def last(self, d_prev: Optional[np.ndarray], batch: int) -> np.ndarray:
        """`last` per neuron: the same-index outcome of the previous hidden layer when
        this layer continues its qubits, else +1 (the chain's first layer, as in the
        simulator)."""
        out = np.ones((batch, self.size))
        if d_prev is not None and self.carried:
            k = min(self.size, d_prev.shape[-1])
            out[:, :k] = d_prev[:, :k]
        return out


@dataclass
class NetworkSpec:
    name: str
    hidden: list[HiddenLayer]
    x: np.ndarray  # preprocessed input
    output: Optional[tuple[str, np.ndarray, np.ndarray]]  # classical read-out layer
    span: ir.Span = ir.NO_SPAN

    @property
    def widths(self) -> list[int]:
        return [h.size for h in self.hidden]

    @property
    def num_outcomes(self) -> int:
        return sum(self.widths)

    def offsets(self) -> list[int]:
        return list(np.cumsum([0] + self.widths[:-1]).astype(int))

    def z1(self) -> np.ndarray:
        return self.hidden[0].z(self.x)


def resolve(network: ir.Network, neurons: Union[Mapping[str, ir.NeuronDef], Sequence[ir.NeuronDef]],
            weights: Mapping[str, np.ndarray], x, weight_bits: Optional[int] = None) -> NetworkSpec:
    """Check and bind a network for the circuit lowerings. With `weight_bits`, every
    layer after the first whose angles are exact in integer arithmetic (a clip squash,
    or sign at a = 0) gets its weights and bias rounded to an integer grid
    (`Quantisation`): the network that real-time arithmetic computes, and the one the
    exact reference describes."""
    if weight_bits is not None and not 0 <= weight_bits <= MAX_WEIGHT_BITS:
        raise refuse("Q0308", f"weight bits must be between 0 and {MAX_WEIGHT_BITS}, not {weight_bits}",
                     help="the weight grid is a / 2^M for a clip squash with parameter a")
    if not isinstance(neurons, Mapping):
        neurons = {n.name: n for n in neurons}
    hidden: list[HiddenLayer] = []
    output = None
    prev_name = network.input.name
    x = np.asarray(x, dtype=float).reshape(-1)
    if x.size != network.input.features:
        raise refuse("Q0314", f"the input has {x.size} values; input `{network.input.name}` has "
                     f"{network.input.features} after preprocessing", network.input.span,
                     help="pass one preprocessed input vector (after scaling and pooling)")
    for layer in network.layers:
        act = layer.activation
        if layer.role == "output":
            if not isinstance(act, ir.ClassicalActivation):
                raise refuse("Q0311", f"output layer `{layer.name}` must be classical for circuits",
                             layer.span)
            w, b = _weights(layer, weights, required=False)
            output = (layer.name, w, b) if w is not None else None
            continue
        if not isinstance(act, ir.NeuronActivation):
            raise refuse("Q0311", f"hidden layer `{layer.name}` has the classical activation "
                         f"`{act.kind}`; circuits need quantum neurons in every hidden layer",
                         layer.span, help="compile a network whose hidden layers are all neurons")
        if layer.dense.source != prev_name:
            raise refuse("Q0311", f"layer `{layer.name}` reads `{layer.dense.source}`, not the layer "
                         f"before it (`{prev_name}`); circuits need a chain of layers", layer.span)
        ndef = neurons.get(act.neuron)
        if ndef is None:
            raise error("Q0623", f"unknown neuron `{act.neuron}` of layer `{layer.name}`", act.span)
        model = NeuronModel(ndef, act.args, span=act.span)
        w, b = _weights(layer, weights, required=True)
        fan_in = x.size if not hidden else hidden[-1].size
        if w.shape != (layer.size, fan_in):
            raise refuse("Q0313", f"weights `{layer.name}` have shape {tuple(w.shape)}, expected "
                         f"({layer.size}, {fan_in})", layer.span)
        carried = bool(ndef.carried and hidden and hidden[-1].neuron.carried_reg is not None)
        if carried:
            prev = hidden[-1]
            if prev.size != layer.size:
                raise refuse("Q0312", f"layer `{layer.name}` carries the qubits of `{prev.name}`, "
                             f"which has {prev.size} neurons, not {layer.size}", layer.span,
                             help="give carried layers the width of the layer they continue")
        q = (quantise(model, w, b, weight_bits, layer) if (hidden and weight_bits is not None)
             else None)
        if q is not None:
            w, b = q.weight_int * q.grid, q.bias_int * q.grid
        hidden.append(HiddenLayer(layer.name, len(hidden), layer.size, model, w, b, carried,
                                  layer.span, q))
        prev_name = layer.name
    if not hidden:
        raise refuse("Q0311", f"network `{network.name}` has no quantum hidden layer",
                     network.span)
    if hidden[0].weight.shape[1] != x.size:
        raise refuse("Q0314", f"the input has {x.size} values, layer `{hidden[0].name}` reads "
                     f"{hidden[0].weight.shape[1]}", network.input.span,
                     help="pass the preprocessed input (after scaling and pooling)")
    return NetworkSpec(network.name, hidden, x, output, network.span)


def with_angle_shift(spec: NetworkSpec, layer: int, neuron: int, gate: int, delta: float) -> NetworkSpec:
    """The network with one neuron's gate angle shifted by `delta` after it is computed
    (a parameter-shift variant): every strategy lowers it like the network itself."""
    hidden = list(spec.hidden)
    h = hidden[layer]
    base = h.model(neuron)
    hidden[layer] = dataclasses.replace(h, shifted=(neuron, base.shifted(gate, delta)))
    return dataclasses.replace(spec, hidden=hidden)


def realtime_squash(model: NeuronModel) -> Optional[tuple[str, float]]:
    """(kind, a) shared by every z-dependent angle of the neuron, when each is
    c0 + c1 f(z/a) + c2 last; None when some angle is not of that form or they differ."""
    found: set[tuple[Optional[str], float]] = set()
    for gi, g in enumerate(model.gates):
        if g.angle is None or "z" not in model.used_names(gi):
            continue
        form = model.squash_form(gi)
        if form is None:
            return None
        if form.kind is not None:
            found.add((form.kind, form.a))
    return next(iter(found)) if len(found) == 1 else None


def quantise(model: NeuronModel, w: np.ndarray, b: np.ndarray, bits: int,
             layer: Optional[ir.Layer] = None) -> Optional[Quantisation]:
    """Round a layer's weights to the integer grid of its squash (None where integer
    arithmetic cannot be exact: tanh with a > 0, or angles of another form)."""
    form = realtime_squash(model)
    if form is None or form[0] not in ("clip", "sign"):
        return None
    kind, a = form
    if kind == "clip":
        grid = a / 2.0 ** bits
    else:
        top = float(max(np.max(np.abs(w), initial=0.0), np.max(np.abs(b), initial=0.0)))
        exponent = int(np.ceil(np.log2(top))) if top > 0 else 0
        grid = 2.0 ** (exponent - bits)
    steps = max(np.max(np.abs(w), initial=0.0), np.max(np.abs(b), initial=0.0)) / grid
    if steps > 2.0 ** 52:
        where = f"layer `{layer.name}`: " if layer is not None else ""
        raise refuse("Q0334", f"{where}weights up to {steps * grid:.3g} on the grid {grid:.3g} "
                     f"(a/2^{bits}) are integers of more than 52 bits",
                     layer.span if layer is not None else None,
                     help="use fewer `--weight-bits`, or a larger a")
    wi = np.rint(w / grid).astype(np.int64)
    bi = np.rint(b / grid).astype(np.int64)
    change = max(np.max(np.abs(wi * grid - w), initial=0.0), np.max(np.abs(bi * grid - b), initial=0.0))
    return Quantisation(bits, kind, grid, wi, bi, float(change))


def _weights(layer: ir.Layer, weights: Mapping[str, np.ndarray], required: bool):
    if layer.name not in weights:
        if required:
            raise refuse("Q0313", f"no weights for layer `{layer.name}`", layer.span,
                         help="pass a checkpoint, or a weights dict with key "
                              f"`{layer.name}` (and `{layer.name}.bias`)")
        return None, None
    w = np.asarray(weights[layer.name], dtype=float)
    if w.ndim != 2 or w.shape[0] != layer.size:
        raise refuse("Q0313", f"weights `{layer.name}` have shape {tuple(w.shape)}, expected "
                     f"({layer.size}, fan_in)", layer.span)
    key = f"{layer.name}.bias"
    if key in weights:
        b = np.asarray(weights[key], dtype=float).reshape(-1)
        if b.shape != (layer.size,):
            raise refuse("Q0313", f"bias `{key}` has shape {tuple(b.shape)}, expected "
                         f"({layer.size},)", layer.span)
    elif layer.dense.bias:
        raise refuse("Q0313", f"layer `{layer.name}` has a bias but no `{key}` was given",
                     layer.span)
    else:
        b = np.zeros(layer.size)
    if not layer.dense.bias:
        b = np.zeros(layer.size)
    return w, b


# --------------------------------------------------------------------------- exact reference

def exact_distribution(spec: NetworkSpec, max_histories: int = 1 << 18) -> dict[int, float]:
    """P(outcome code) over all hidden neurons, by enumerating every measurement branch
    of every neuron (neurons of one layer are independent given the previous layer's
    outcomes; a carried qubit's branch state goes on to the next layer)."""
    probs = np.ones(1)
    codes = np.zeros(1, dtype=np.int64)
    carried: Optional[np.ndarray] = None  # [H, size, 2]
    d_prev: Optional[np.ndarray] = None  # [H, size]
    offset = 0
    for layer in spec.hidden:
        h = probs.size
        inp = np.broadcast_to(spec.x, (h, spec.x.size)) if d_prev is None else d_prev
        z = layer.z(inp)
        last = layer.last(d_prev, h)
        # per neuron: branches over the current histories
        per_neuron = []
        for i in range(layer.size):
            cin = carried[:, i, :] if (layer.carried and carried is not None) else None
            per_neuron.append(layer.model(i).branches(z[:, i], last[:, i], cin))
        # expand histories neuron by neuron: index arrays into the branch lists
        hist = np.arange(h)
        p = probs.copy()
        c = codes.copy()
        bits = np.zeros((h, 0), dtype=np.int8)
        states = np.zeros((h, 0, 2), dtype=complex)
        for i, brs in enumerate(per_neuron):
            new_hist, new_p, new_c, new_bits, new_states = [], [], [], [], []
            for br in brs:
                pb = p * br.prob[hist]
                keep = pb > 1e-15
                new_hist.append(hist[keep])
                new_p.append(pb[keep])
                new_c.append(c[keep] | (np.int64(br.emit) << (offset + i)))
                new_bits.append(np.concatenate([bits[keep], np.full((keep.sum(), 1), br.emit,
                                                                     dtype=np.int8)], 1))
                st = br.carried_out[hist[keep]] if br.carried_out is not None else \
                    np.zeros((keep.sum(), 2), dtype=complex)
                new_states.append(np.concatenate([states[keep], st[:, None, :]], 1))
            hist = np.concatenate(new_hist)
            p = np.concatenate(new_p)
            c = np.concatenate(new_c)
            bits = np.concatenate(new_bits)
            states = np.concatenate(new_states)
            if hist.size > max_histories:
                raise refuse("Q0306", f"exact enumeration needs over {max_histories} branches",
                             help="use a narrower network for exact references")
        probs, codes, carried = p, c, states
        d_prev = 1.0 - 2.0 * bits
        offset += layer.size
    out: dict[int, float] = {}
    for code, pr in zip(codes.tolist(), probs.tolist()):
        out[code] = out.get(code, 0.0) + pr
    return out


def outcomes_to_codes(outcomes: np.ndarray) -> np.ndarray:
    """Rows of ±1 outcomes to integer codes (bit k set when column k is -1)."""
    bits = (np.asarray(outcomes) < 0).astype(np.int64)
    return (bits << np.arange(bits.shape[1], dtype=np.int64)).sum(axis=1)


def tv_distance(samples: np.ndarray, exact: Mapping[int, float]) -> float:
    """Total-variation distance between the empirical distribution of outcome rows and
    an exact distribution over codes."""
    codes = outcomes_to_codes(samples)
    uniq, counts = np.unique(codes, return_counts=True)
    emp = dict(zip(uniq.tolist(), (counts / codes.size).tolist()))
    keys = set(emp) | set(exact)
    return 0.5 * sum(abs(emp.get(k, 0.0) - exact.get(k, 0.0)) for k in keys)


def tv_bound(shots: int, categories: int, delta: float = 1e-6) -> float:
    """A bound that the TV distance of `shots` samples from their distribution exceeds
    with probability at most `delta`: Weissman et al. (2003),
    P(||p_hat - p||_1 >= eps) <= (2^m - 2) exp(-n eps^2 / 2) for m categories, so
    TV <= sqrt(2 (m ln 2 + ln(1/delta)) / n) / 2."""
    m = max(categories, 2)
    return 0.5 * float(np.sqrt(2.0 * (m * np.log(2.0) + np.log(1.0 / delta)) / shots))
