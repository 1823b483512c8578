"""An independent, slow reference for the simulator tests: numpy density matrices.

Shares no code with qnnc.runtime.neuron_kernel. Each neuron is a 2^k x 2^k density
matrix; gates are full Kronecker-product matrices; a discarded measurement dephases, a
reset dephases and flips to |0>, the emit measurement splits into two unnormalised
branches; the carried qubit's reduced state is a partial trace. Exact distributions of a
network's emitted outcomes are found by recursion over every outcome pattern.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from qnnc.compiler import ir

I2 = np.eye(2)
X = np.array([[0, 1], [1, 0]], dtype=complex)
H = np.array([[1, 1], [1, -1]], dtype=complex) / math.sqrt(2)
SX = np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]], dtype=complex) / 2  # √X, IBM's native gate
P0 = np.diag([1.0, 0.0]).astype(complex)
P1 = np.diag([0.0, 1.0]).astype(complex)


def ry(t):
    c, s = math.cos(t / 2), math.sin(t / 2)
    return np.array([[c, -s], [s, c]], dtype=complex)


def rx(t):
    c, s = math.cos(t / 2), math.sin(t / 2)
    return np.array([[c, -1j * s], [-1j * s, c]], dtype=complex)


def rz(t):
    return np.diag([np.exp(-0.5j * t), np.exp(0.5j * t)])


def on(k: int, r: int, m: np.ndarray) -> np.ndarray:
    """The k-register operator acting with m on register r (register 0 most significant)."""
    out = np.array([[1.0 + 0j]])
    for i in range(k):
        out = np.kron(out, m if i == r else I2)
    return out


def controlled(k: int, c: int, t: int, m: np.ndarray) -> np.ndarray:
    return on(k, c, P0) + on(k, c, P1) @ on(k, t, m)


# --------------------------------------------------------------------------- expressions


def evaluate(e: ir.Expr, env: dict) -> float:
    """env: z, last, parameter values; squash parameters map to "tanh"/"clip"."""
    if isinstance(e, ir.Const):
        return float(e.value)
    if isinstance(e, ir.Ref):
        if e.name in env:
            return env[e.name]
        return {"pi": math.pi, "inf": math.inf}[e.name]
    if isinstance(e, ir.Unary):
        return -evaluate(e.operand, env)
    if isinstance(e, ir.Binary):
        a, b = evaluate(e.lhs, env), evaluate(e.rhs, env)
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            return a * b
        if e.op == "/":
            return a / b if b != 0 else math.copysign(math.inf, a)
        return a ** b
    if isinstance(e, ir.Call):
        fn = env.get(e.function, e.function)
        arg0 = e.args[0]
        if fn in ("tanh", "clip") and isinstance(arg0, ir.Binary) and arg0.op == "/" \
                and evaluate(arg0.rhs, env) == 0:
            s = 1.0 if evaluate(arg0.lhs, env) >= 0 else -1.0
            if fn == "clip" and len(e.args) == 3:
                return evaluate(e.args[2], env) if s > 0 else evaluate(e.args[1], env)
            return s
        args = [evaluate(a, env) for a in e.args]
        if fn == "clip":
            lo, hi = (args[1], args[2]) if len(args) == 3 else (-1.0, 1.0)
            return min(max(args[0], lo), hi)
        if fn == "sign":
            return 1.0 if args[0] >= 0 else -1.0
        if fn in ("min", "max"):
            return (min if fn == "min" else max)(args)
        return getattr(math, fn if fn != "abs" else "fabs")(*args)
    raise TypeError(e)


# --------------------------------------------------------------------------- one neuron


def neuron_branches(nd: ir.NeuronDef, params: dict, z: float, last: float, rho_q):
    """{emitted value: (probability, reduced state of the neuron's qubit or None)}."""
    regs = [r for r in nd.registers if r.role == "qubit"] + [r for r in nd.registers if r.role == "ancilla"]
    idx = {r.name: i for i, r in enumerate(regs)}
    k = len(regs)
    has_q = regs[0].role == "qubit"
    zero = np.zeros((2, 2), dtype=complex)
    zero[0, 0] = 1
    rho = np.array([[1.0 + 0j]])
    for i in range(k):
        rho = np.kron(rho, rho_q if (i == 0 and has_q and rho_q is not None) else zero)
    env = dict(params, z=z, last=last)
    branches = {None: rho}  # emitted bit (None before the emit) -> unnormalised density matrix
    for op in nd.ops:
        new = {}
        for key, r in branches.items():
            if isinstance(op, ir.GateOp):
                t = [idx[n] for n in op.targets]
                if op.gate in ("rx", "ry", "rz"):
                    U = on(k, t[0], {"rx": rx, "ry": ry, "rz": rz}[op.gate](evaluate(op.angle, env)))
                elif op.gate == "x":
                    U = on(k, t[0], X)
                elif op.gate == "h":
                    U = on(k, t[0], H)
                elif op.gate == "sx":
                    U = on(k, t[0], SX)
                elif op.gate == "cx":
                    U = controlled(k, t[0], t[1], X)
                elif op.gate == "cz":
                    U = controlled(k, t[0], t[1], np.diag([1, -1]).astype(complex))
                else:
                    raise ValueError(f"the reference has no gate {op.gate}")
                new[key] = U @ r @ U.conj().T
            elif isinstance(op, ir.ResetOp):
                t = idx[op.target]
                A, B = on(k, t, P0), on(k, t, X @ P1)
                new[key] = A @ r @ A.conj().T + B @ r @ B.conj().T
            elif op.emit:
                t = idx[op.target]
                for bit, P in ((0, P0), (1, P1)):
                    M = on(k, t, P)
                    new[bit] = M @ r @ M.conj().T
            else:
                t = idx[op.target]
                A, B = on(k, t, P0), on(k, t, P1)
                new[key] = A @ r @ A.conj().T + B @ r @ B.conj().T
        branches = new
    out = {}
    for bit, r in branches.items():
        p = float(np.real(np.trace(r)))
        red = None
        if has_q:
            red = np.trace(r.reshape(2, 2 ** (k - 1), 2, 2 ** (k - 1)), axis1=1, axis2=3)
            red = red / p if p > 1e-300 else red
        out[1 - 2 * bit] = (p, red)
    return out


def emit_probability(nd, params, z, last=1.0, rho_q=None) -> float:
    return neuron_branches(nd, params, z, last, rho_q)[1][0]


# --------------------------------------------------------------------------- networks


def outcome_distribution(program: ir.Program, weights: dict, x: np.ndarray, net=None) -> dict:
    """{tuple of all neuron layers' emitted outcomes: probability} for input x (1-D)."""
    net = net or program.networks[0]
    layers = list(net.layers)
    result: dict = {}

    def params_of(act):
        return {b.name: (b.value if isinstance(b.value, str) else float(b.value)) for b in act.args}

    def carried(layer):
        act = layer.activation
        return isinstance(act, ir.NeuronActivation) and program.neuron(act.neuron).carried

    def rec(li, acts, prob, outcomes, carry):
        if prob == 0.0:
            return
        if li == len(layers):
            result[tuple(outcomes)] = result.get(tuple(outcomes), 0.0) + prob
            return
        layer = layers[li]
        W = weights[layer.name]
        z = W @ acts[layer.dense.source]
        if layer.name + ".bias" in weights:
            z = z + weights[layer.name + ".bias"]
        act = layer.activation
        if isinstance(act, ir.ClassicalActivation):
            d = {"sign": np.where(z >= 0, 1.0, -1.0), "relu": np.maximum(z, 0), "tanh": np.tanh(z),
                 "linear": z}[act.kind]
            rec(li + 1, dict(acts, **{layer.name: d}), prob, outcomes, None)
            return
        nd = program.neuron(act.neuron)
        chained = carried(layer) and li > 0 and carried(layers[li - 1])
        per = []
        for n in range(layer.size):
            last, rho = (carry[0][n], carry[1][n]) if chained else (1.0, None)
            per.append(neuron_branches(nd, params_of(act), float(z[n]), last, rho))
        for pattern in itertools.product((1, -1), repeat=layer.size):
            p = prob
            states = []
            for n, e in enumerate(pattern):
                pn, red = per[n][e]
                p *= pn
                states.append(red)
            d = np.array(pattern, dtype=float)
            rec(li + 1, dict(acts, **{layer.name: d}), p, outcomes + list(pattern),
                (d, states) if nd.carried else None)

    rec(0, {net.input.name: np.asarray(x, dtype=float)}, 1.0, [], None)
    return result
