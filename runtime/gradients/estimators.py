"""Gradients of the expected loss that a quantum computer can measure.

The network's expected loss is E[L] = Σ_paths Π_i P(s_i | θ_i(upstream)) · L(s_last), with
L the cross-entropy of the linear read-out of the last hidden layer's outcomes. A weight
W_kj of hidden layer l enters only neuron k's angles θ_g = θ_g(z_k, last), z_k = Σ_j W_kj s_j
(+ b_k). For a rotation exp(-iθP/2) (P a Pauli product: every rotation of the gate table),
every probability downstream of it is a·cos θ + b·sin θ + c for each fixed upstream
history, so d/dθ = [·(θ + π/2) − ·(θ − π/2)] / 2 exactly, and

    ∂E[L]/∂W_kj = Σ_g ½ E_{k,g,+}[θ_g'(z_k) s_j L] − ½ E_{k,g,−}[θ_g'(z_k) s_j L]

where E_{k,g,±} runs the network with gate g of neuron k shifted by ±π/2 *after* its
angle is computed from the shot's recorded upstream outcomes (`parameter_shift`). The
factor θ_g'(z_k) s_j depends on upstream outcomes only, which the shift leaves alone,
so it is known classically on every shot. The read-out layer's weights need no shift:
its gradient is the mean of the per-shot ∂L/∂W (pathwise). One pair of shifted variants
serves every weight of a neuron: 2 · Σ_l N_l · G_l variants (G_l: angles per neuron that
read z) plus the unshifted run.

`score_function` is REINFORCE with a leave-one-out baseline on the unshifted run alone:
∂E[L]/∂W = E[(L − b) ∂_W log P(path)], with log P(path) from the neurons' branch
probabilities along the recorded outcomes (the noiseless model's; under noise it
estimates the gradient of a different model, so it is biased there).

Both are computed from recorded outcomes only (an `Executor` in `executors.py` supplies
them, from the torch simulator or from circuits), in float64. Estimates are of the batch
mean of the per-image expected losses; standard errors are per image from the shots'
sample variance, combined over images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from qnnc.compiler import angles
from qnnc.compiler.diagnostics import error
from qnnc.runtime.torch_angles import _Evaluator

HALF_PI = math.pi / 2


@dataclass(frozen=True)
class Shift:
    """One parameter-shift variant: gate `op` (an index into the neuron's ops; `gate` the
    same gate counted among GateOps only) of neuron `neuron` of hidden layer `layer`
    (index among the hidden layers; `name` its name) shifted by `delta`."""

    layer: int
    name: str
    neuron: int
    op: int
    gate: int
    delta: float


@dataclass
class Estimate:
    """A gradient estimate: name -> tensor (the checkpoint names, `h1`, `h1.bias`), its
    standard errors, and what it cost."""

    grads: dict[str, torch.Tensor]
    stderr: dict[str, torch.Tensor]
    estimator: str
    shots: int  # per image and variant
    images: int
    variants: int  # executed network variants (shifted and unshifted)
    circuits: int  # circuits executed (per image, variant and circuit of a program)
    passes: int  # forward passes sampled in all: variants x images x shots
    wall_s: float = 0.0
    loss: float = float("nan")  # mean sampled loss of the unshifted run
    notes: list[str] = field(default_factory=list)

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        names = sorted(self.grads)
        g = np.concatenate([self.grads[n].reshape(-1).numpy() for n in names])
        s = np.concatenate([self.stderr[n].reshape(-1).numpy() for n in names])
        return g, s


@dataclass
class NetView:
    """What the estimators need of a network: its hidden neuron layers (a chain) and the
    linear read-out, with float64 weights."""

    names: list[str]  # hidden layer names, in order
    kernels: list  # NeuronKernel per hidden layer
    chained: list[bool]  # layer continues the previous layer's carried qubits
    weights: list[torch.Tensor]  # [N_l, fan_in]
    biases: list[Optional[torch.Tensor]]
    out_name: str
    w_out: torch.Tensor
    b_out: Optional[torch.Tensor]

    @property
    def widths(self) -> list[int]:
        return [w.shape[0] for w in self.weights]


def net_view(model, tensors: Optional[dict] = None) -> NetView:
    """The `QNNModel` `model` as a `NetView` (weights: `tensors`, else the model's),
    refusing (Q0720) networks the circuits and the estimators do not run: every layer but
    the last a quantum-neuron layer reading the one before, the last a linear read-out."""
    t = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in (tensors or model.tensors()).items()}
    plans = model.plans
    prev = model.network.input.name
    for p in plans:
        ok = p.source == prev and ((p.kind == "neuron") if p is not plans[-1] else p.kind == "linear")
        if not ok or len(plans) < 2:
            raise error("Q0720", f"network `{model.network.name}`: layer `{p.name}` is not supported by "
                        "measured gradients", p.layer.span,
                        help="measured gradients need a chain of quantum-neuron layers followed by one "
                        "linear output layer (what the circuits run)")
        prev = p.name
    hidden = plans[:-1]
    out = plans[-1]
    return NetView([p.name for p in hidden], [p.kernel for p in hidden], [p.chained for p in hidden],
                   [t[p.name] for p in hidden], [t.get(p.name + ".bias") for p in hidden],
                   out.name, t[out.name], t.get(out.name + ".bias"))


def z_gates(kernel) -> list[tuple[int, int]]:
    """(op index, gate index) of every gate of the neuron whose angle reads z."""
    out, gi = [], 0
    for i, op in enumerate(kernel.ops):
        if op[0] != "gate":
            continue
        if op[3] is not None and _reads_z(op[3]):
            out.append((i, gi))
        gi += 1
    return out


def _reads_z(form) -> bool:
    return "z" in angles.reads(form)


def shifts(view: NetView, layers: Optional[Sequence[str]] = None) -> list[Shift]:
    """Every parameter-shift variant of the network: ± π/2 on each z-dependent gate of
    each hidden neuron (of the hidden layers named in `layers`, default all)."""
    out = []
    for l, (name, k) in enumerate(zip(view.names, view.kernels)):
        if layers is not None and name not in layers:
            continue
        for op, gate in z_gates(k):
            for n in range(view.widths[l]):
                for sgn in (1.0, -1.0):
                    out.append(Shift(l, name, n, op, gate, sgn * HALF_PI))
    return out


# --------------------------------------------------------------------------- per-shot quantities


def _sources(view: NetView, x: torch.Tensor, outs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Each hidden layer's input per shot: x as [1, B, F], then the previous outcomes [S, B, N]."""
    return [x.unsqueeze(0)] + list(outs[:-1])


def _z(view: NetView, l: int, src: torch.Tensor) -> torch.Tensor:
    z = src @ view.weights[l].t()
    return z + view.biases[l] if view.biases[l] is not None else z


def _last(view: NetView, l: int, outs, shape) -> torch.Tensor | float:
    return outs[l - 1] if (l > 0 and view.chained[l]) else 1.0


def angle_slopes(view: NetView, l: int, z: torch.Tensor, last) -> dict[int, torch.Tensor]:
    """op index -> dθ/dz of that gate at z (elementwise, last held fixed)."""
    out = {}
    for op, _ in z_gates(view.kernels[l]):
        zz = z.detach().clone().requires_grad_(True)
        theta = _Evaluator(zz, last, inplace=False, z_owned=False)(view.kernels[l].ops[op][3])
        if not isinstance(theta, torch.Tensor) or not theta.requires_grad:
            out[op] = torch.zeros_like(z)
            continue
        (g,) = torch.autograd.grad(theta.sum(), zz)
        out[op] = g.detach()
    return out


def shot_loss(view: NetView, last_out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss [S, B], dL/dlogits [S, B, C]) of the linear read-out of the last hidden layer."""
    logits = last_out @ view.w_out.t()
    if view.b_out is not None:
        logits = logits + view.b_out
    S, B, C = logits.shape
    yy = y.long().view(1, B).expand(S, B)
    loss = F.cross_entropy(logits.reshape(S * B, C), yy.reshape(-1), reduction="none").view(S, B)
    dl = torch.softmax(logits, -1) - F.one_hot(yy, C).to(logits.dtype)
    return loss, dl


class _Moments:
    """Per-image mean and variance over shots of a_k · src_j (src with a trailing 1 for
    the bias), without forming [S, B, K, J]."""

    def __init__(self, a: torch.Tensor, src: torch.Tensor):
        S = a.shape[0]
        src = src.expand(S, *src.shape[1:])
        src = torch.cat([src, torch.ones_like(src[..., :1])], -1)
        self.S = S
        self.mean = torch.einsum("sbk,sbj->bkj", a, src) / S
        m2 = torch.einsum("sbk,sbj->bkj", a * a, src * src) / S
        self.var = (m2 - self.mean ** 2).clamp_min(0) * S / max(S - 1, 1)


def _combine(parts: list[tuple[float, _Moments]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ c · mean over images of each part's mean, and its standard error (independent parts)."""
    est = sum(c * m.mean.mean(0) for c, m in parts)
    B = parts[0][1].mean.shape[0]
    var = sum(c * c * m.var.sum(0) / m.S for c, m in parts) / (B * B)
    return est, var.sqrt()


def _split(view: NetView, l: Optional[int], mat: torch.Tensor, grads: dict, name: str) -> None:
    grads[name] = mat[:, :-1].contiguous()
    has_bias = (view.b_out if l is None else view.biases[l]) is not None
    if has_bias:
        grads[name + ".bias"] = mat[:, -1].contiguous()


def readout_gradient(view: NetView, outs, y) -> tuple[dict, dict, torch.Tensor]:
    """Pathwise gradient of the read-out layer from unshifted outcomes; also the loss."""
    loss, dl = shot_loss(view, outs[-1], y)
    est, se = _combine([(1.0, _Moments(dl, outs[-1]))])
    g, s = {}, {}
    _split(view, None, est, g, view.out_name)
    _split(view, None, se, s, view.out_name)
    return g, s, loss


def parameter_shift(view: NetView, x: torch.Tensor, y: torch.Tensor, base: Sequence[torch.Tensor],
                    variants: dict[Shift, Sequence[torch.Tensor]]) -> tuple[dict, dict, float]:
    """The parameter-shift estimate from the unshifted outcomes `base` (per hidden layer,
    [S, B, N] of ±1) and each variant's outcomes. Returns (grads, stderr, mean loss)."""
    grads, stderr, loss = readout_gradient(view, base, y)
    for l, name in enumerate(view.names):
        if not any(s.layer == l for s in variants):
            continue  # a layer left out (`shifts(view, layers)`)
        N = view.widths[l]
        J = view.weights[l].shape[1] + 1
        est = torch.zeros(N, J, dtype=torch.float64)
        var = torch.zeros(N, J, dtype=torch.float64)
        for op, _ in z_gates(view.kernels[l]):
            for n in range(N):
                parts = []
                for sgn in (1.0, -1.0):
                    sh = next(s for s in variants if s.layer == l and s.neuron == n and s.op == op
                              and s.delta * sgn > 0)
                    outs = variants[sh]
                    src = _sources(view, x, outs)[l]
                    z = _z(view, l, src)[..., n:n + 1]
                    last = _last(view, l, outs, z.shape)
                    if isinstance(last, torch.Tensor):
                        last = last[..., n:n + 1]
                    slope = angle_slopes(view, l, z, last)[op]
                    L, _ = shot_loss(view, outs[-1], y)
                    a = slope.expand(L.shape[0], *slope.shape[1:]) * L.unsqueeze(-1)  # [S, B, 1]
                    parts.append((0.5 * sgn, _Moments(a, src)))
                e, s = _combine(parts)
                est[n] += e[0]
                var[n] += s[0] ** 2
        _split(view, l, est, grads, name)
        _split(view, l, var.sqrt(), stderr, name)
    return grads, stderr, float(loss.mean())


def path_log_prob(view: NetView, x: torch.Tensor, outs: Sequence[torch.Tensor]
                  ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """log P(recorded outcomes) per shot [S, B] under the noiseless model, and the z
    leaves [S, B, N] per hidden layer it was computed from (differentiate it w.r.t. them)."""
    S = outs[0].shape[0]
    srcs = _sources(view, x, outs)
    total = torch.zeros(S, x.shape[0], dtype=torch.float64)
    leaves = []
    state = None
    for l, k in enumerate(view.kernels):
        z = _z(view, l, srcs[l]).detach()
        z = z.expand(S, *z.shape[1:]).clone().requires_grad_(True)
        leaves.append(z)
        chained = view.chained[l]
        last = outs[l - 1] if (l > 0 and chained) else 1.0
        res = k.branch(z, last, state if chained else None)
        emit = torch.tensor(res.emit, dtype=torch.float64)
        d = outs[l]
        match = (emit.view(1, 1, 1, -1) == d.unsqueeze(-1)).to(torch.float64)  # [S, B, N, L]
        p = (res.probs * match).sum(-1)
        total = total + torch.log(p.clamp_min(1e-300)).sum(-1)
        if k.carried:
            if match.sum(-1).max() > 1:
                raise error("Q0721", f"layer `{view.names[l]}`: neuron `{k.neuron.name}` has several "
                            "branches with the same emitted outcome, so its carried state is not "
                            "known from the record", help="use the parameter-shift estimator")
            state = tuple((q * match).sum(-1) for q in res.post)
        else:
            state = None
    return total, leaves


def score_function(view: NetView, x: torch.Tensor, y: torch.Tensor, base: Sequence[torch.Tensor]
                   ) -> tuple[dict, dict, float]:
    """REINFORCE with a leave-one-out baseline per image, from the unshifted outcomes."""
    grads, stderr, loss = readout_gradient(view, base, y)
    S = loss.shape[0]
    if S < 2:
        raise error("Q0722", "the score-function estimator needs at least 2 shots per image")
    baseline = (loss.sum(0, keepdim=True) - loss) / (S - 1)
    logp, leaves = path_log_prob(view, x, base)
    us = torch.autograd.grad(logp.sum(), leaves, allow_unused=True)
    srcs = _sources(view, x, base)
    for l, name in enumerate(view.names):
        u = us[l] if us[l] is not None else torch.zeros_like(leaves[l])
        a = (loss - baseline).unsqueeze(-1) * u
        est, se = _combine([(1.0, _Moments(a.detach(), srcs[l]))])
        _split(view, l, est, grads, name)
        _split(view, l, se, stderr, name)
    return grads, stderr, float(loss.mean())


def exact_gradient(model, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """∂/∂W of the batch mean of the exact expected losses (branch enumeration), float64."""
    params = [model.weight[p.name] for p in model.plans] + [model.bias[p.name] for p in model.plans
                                                             if p.name in model.bias]
    names = [p.name for p in model.plans] + [p.name + ".bias" for p in model.plans if p.name in model.bias]
    loss = model.expected_loss(x, y)
    gs = torch.autograd.grad(loss, params)
    return {n: g.detach().to(torch.float64) for n, g in zip(names, gs)}


def check_labels(y, images: int, classes: int) -> torch.Tensor:
    y = torch.as_tensor(y).long().reshape(-1)
    if y.numel() != images or (y.numel() and (int(y.min()) < 0 or int(y.max()) >= classes)):
        raise error("Q0724", f"{y.numel()} labels for {images} images, classes 0..{classes - 1}",
                    help="give one label per image, each a class of the output layer")
    return y
