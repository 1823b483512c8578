"""The exact distribution of a chain of R_y neuron layers by dynamic programming over
layers, with its gradient written out (no autograd graph of the small element-wise ops).

Used by `QNNModel._exact_dp` when every neuron layer of the chain takes the R_y fast
path (one fresh qubit, R_y(θ(z)), emit-measure) and its angle has a forward-mode
derivative here (`dual`): then P(emit +1) = (1 + cos θ)/2, and for patterns s of a
layer's emitted values (first neuron most significant)

    P_1[b, m]  = Π_n (1 + s_n(m) c_1[b, n]) / 2,     c_1 = cos θ(x W_1^T + b_1)
    T_l[m', m] = Π_n (1 + s_n(m) c_l[m', n]) / 2,    c_l = cos θ(S_{l-1} W_l^T + b_l)
    P_l = P_{l-1} T_l

(S_{l-1}: the table of layer l-1's patterns). `LayerChainDP.apply` returns P_L and its
backward is the chain rule by hand: a few matrix products per layer.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from qnnc.runtime.devices import host_float


def dual(form, z: torch.Tensor):
    """(θ(z), dθ/dz) of a closed form, element-wise; None when the form has a part
    this does not differentiate (then autograd is used). The derivative matches
    autograd's conventions: clamp passes the gradient on its closed interval, sign has
    derivative 0, abs has derivative sign(x) with 0 at 0."""
    kind = form[0]
    if kind == "c":
        v = form[1]
        return (float(v), 0.0) if isinstance(v, (int, float)) else None
    if kind == "z":
        return z, 1.0
    if kind == "neg":
        r = dual(form[1], z)
        return None if r is None else (-r[0], -r[1])
    if kind == "bin":
        op = form[1]
        a, b = dual(form[2], z), dual(form[3], z)
        if a is None or b is None:
            return None
        (u, du), (v, dv) = a, b
        zu, zv = _is_zero(du), _is_zero(dv)  # constants: skip their zero derivatives
        if op == "+":
            return u + v, (dv if zu else du if zv else du + dv)
        if op == "-":
            return u - v, (-dv if zu else du if zv else du - dv)
        if op == "*":
            if zu and zv:
                return u * v, 0.0
            if zu:
                return u * v, u * dv
            if zv:
                return u * v, du * v
            return u * v, du * v + u * dv
        if op == "/":
            if isinstance(v, torch.Tensor) or isinstance(dv, torch.Tensor) or dv != 0:
                return u / v, (du * v - u * dv) / (v * v)
            return u / v, du / v
        return None
    if kind == "fn" and len(form[2]) == 1:
        r = dual(form[2][0], z)
        if r is None:
            return None
        v, dv = r
        if not isinstance(v, torch.Tensor):
            return None
        name = form[1]
        if name == "sin":
            return torch.sin(v), torch.cos(v) * dv
        if name == "cos":
            return torch.cos(v), -torch.sin(v) * dv
        if name == "tanh":
            t = torch.tanh(v)
            return t, (1 - t * t) * dv
        if name == "atan":
            return torch.atan(v), dv / (1 + v * v)
        if name == "clip1":
            inside = ((v >= -1.0) & (v <= 1.0)).to(v.dtype)
            return torch.clamp(v, -1.0, 1.0), inside * dv
        if name == "sign":
            return torch.copysign(torch.ones((), dtype=v.dtype, device=v.device), v + 0.0), 0.0 * v
        return None
    return None


def _is_zero(d) -> bool:
    return not isinstance(d, torch.Tensor) and d == 0


def _cos_and_slope(form, z):
    """c = cos θ(z) and dc/dz, as tensors of z's shape; None if not differentiable here."""
    r = dual(form, z)
    if r is None:
        return None
    theta, dtheta = r
    if not isinstance(theta, torch.Tensor):
        theta = torch.full_like(z, theta)
    c = torch.cos(theta)
    slope = -torch.sin(theta) * dtheta
    if not isinstance(slope, torch.Tensor):
        slope = torch.full_like(z, slope)
    return c, slope


def _exclusive_products(R: torch.Tensor) -> torch.Tensor:
    """G[n] = Π_{j≠n} R[j] along the first dimension, without division (exact when
    some factors are 0): prefix products times suffix products. Small slabs: cumprod
    (few ops); large ones: two sweeps of in-place products (few passes over memory)."""
    N = R.shape[0]
    if R[0].numel() <= 4096:
        one = torch.ones((1,) + R.shape[1:], dtype=R.dtype, device=R.device)
        pre = torch.cat([one, torch.cumprod(R[:-1], 0)], 0)
        suf = torch.cat([torch.cumprod(R[1:].flip(0), 0).flip(0), one], 0)
        return pre.mul_(suf)
    G = torch.empty_like(R)
    G[0].fill_(1.0)
    for n in range(1, N):
        torch.mul(G[n - 1], R[n - 1], out=G[n])
    acc = R[N - 1].clone()
    for n in range(N - 2, -1, -1):
        G[n].mul_(acc)
        if n:
            acc.mul_(R[n])
    return G


class NotFinite(Exception):
    pass


def supported(forms, dtype, device=None) -> bool:
    """Whether every form has a derivative here (probed once on a small tensor)."""
    probe = torch.linspace(-2.0, 2.0, 5, dtype=dtype, device=device)
    return all(form is not None and dual(form, probe) is not None for form in forms)


class LayerChainDP(torch.autograd.Function):
    """P_L [B, M_L] from the first neuron layer's input x [B, F] and the layers'
    (W, b) (b may be None), with the hand-written backward. `forms`: each layer's angle
    form; `tables`: each layer's pattern table S [M, N] (±1)."""

    @staticmethod
    def forward(ctx, x, forms, tables, readout, *wb):
        """readout: when True the last (W, b) of `wb` is a linear output layer of the last
        neuron layer and the result is the expected output [B, C] = P_L (S_L W^T + b)."""
        Ws, bs = list(wb[0::2]), list(wb[1::2])
        ro = (Ws.pop(), bs.pop()) if readout else None
        saved = []
        P = None
        src = x
        for l, (form, S) in enumerate(zip(forms, tables)):
            z = src @ Ws[l].t()
            if bs[l] is not None:
                z = z + bs[l]
            c, slope = _cos_and_slope(form, z)
            # R[n, ..., m] = P(neuron n emits s_n(m)) = (1 + s_n(m) c_n) / 2, neuron-major
            St = S.t()  # [N, M]
            R = (c.t().unsqueeze(-1) * St.view(St.shape[0], *([1] * (c.dim() - 1)), St.shape[1]))
            R = R.mul_(0.5).add_(0.5)  # [N, ..., M]
            J = R.prod(0)  # [..., M]
            saved.append((src, P, J, R, St, slope))
            P = J if P is None else P @ J
            src = S
        ctx.saved = saved
        ctx.has_bias = [b is not None for b in bs]
        ctx.Ws = Ws
        ctx.readout = None
        if ro is not None:
            out = src @ ro[0].t()
            if ro[1] is not None:
                out = out + ro[1]
            ctx.readout = (P, out, src, ro[1] is not None)
            P = P @ out
        # A non-finite angle (or input) anywhere makes the result non-finite (NaN
        # propagates through every product): one check at the end, not one per layer.
        if not math.isfinite(host_float(P.sum())):
            raise NotFinite  # the caller's general path reports it (Q0331)
        return P

    @staticmethod
    def backward(ctx, dP):
        grads_wb = []
        dx = None
        if ctx.readout is not None:
            P, out, S, has_b = ctx.readout
            d_out = P.t() @ dP  # [M, C]
            grads_wb = [d_out.t() @ S, d_out.sum(0) if has_b else None]
            dP = dP @ out.t()
        for l in range(len(ctx.saved) - 1, -1, -1):
            src, P_prev, J, R, St, slope = ctx.saved[l]
            if P_prev is None:
                dJ = dP
            else:
                dJ = P_prev.t() @ dP
                dP = dP @ J.t()
            # dJ/dc_n = Σ_m s_n(m)/2 · Π_{j≠n} R_j(m)
            G = _exclusive_products(R).mul_(dJ)  # [N, rows, M]
            dc = torch.bmm(G, St.unsqueeze(-1)).squeeze(-1)  # [N, rows]: Σ_m G s_n(m)
            dz = dc.t().mul(slope).mul_(0.5)
            gW = dz.t() @ src
            gb = dz.sum(0) if ctx.has_bias[l] else None
            grads_wb = [gW, gb] + grads_wb
            if l == 0 and ctx.needs_input_grad[0]:
                dx = dz @ ctx.Ws[0]
        ctx.saved = None
        return (dx, None, None, None, *grads_wb)


_TABLES: dict = {}


def pattern_table(N: int, dtype, device=None) -> torch.Tensor:
    """[2^N, N] emitted values (+1 for digit 0, -1 for digit 1), first neuron most significant."""
    device = torch.device("cpu") if device is None else torch.device(device)
    key = (N, dtype) if device.type == "cpu" else (N, dtype, device)
    if key in _TABLES:
        return _TABLES[key]
    M = 1 << N
    digits = (torch.arange(M, device=device)[:, None] >> torch.arange(N - 1, -1, -1, device=device)[None, :]) & 1
    table = _TABLES[key] = (1 - 2 * digits).to(dtype)
    return table
