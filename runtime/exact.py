"""Exact enumeration for `QNNModel`: every measurement branch of a network, or, for chains
of neuron layers without a carried qubit, dynamic programming over layers (L·4^w instead
of 2^{wL}, `qnnc.runtime.exact_dp`). Differentiable: exact expectations, losses and
outcome distributions. A mixin of `QNNModel` (it reads the model's plans and weights)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from qnnc.compiler.diagnostics import error
from qnnc.runtime.exact_dp import LayerChainDP, NotFinite as DPNotFinite, pattern_table, supported as dp_supported
from qnnc.runtime.fused import FusedDP, FusedDPFunction
from qnnc.runtime.torch_angles import sign_pos

# Exact enumeration: the largest [N, M', M] factor tensor for which the gradient is
# written out (runtime/exact_dp.py) rather than taken by autograd.
_DP_ANALYTIC_MAX = 1 << 16
# The numba DP (runtime/fused.py) runs while a layer has at most this many (rows x
# patterns x neurons) factors; beyond, its scalar loops lose to torch's (bench_exact.py).
_DP_FUSED_MAX = 1 << 17


class ExactEnumeration:
    """Exact branches and expectations of a `QNNModel`."""

    def branch_count(self) -> int:
        """Number of joint branches `exact_branches` enumerates per input."""
        k = 1
        for p in self.plans:
            if p.kind == "neuron":
                k *= self._local_branches(p, self.device) ** p.size
        return k

    @staticmethod
    def _local_branches(p, device=None) -> int:
        if not p.kernel.carried:
            return 2
        mps = device is not None and torch.device(device).type == "mps"  # (no float64 there)
        probe = torch.zeros(1, dtype=torch.float32 if mps else torch.float64, device=device)
        state = (probe + 1.0, probe) if p.chained else None
        return len(p.kernel.branch(probe, 1.0 if not p.chained else probe + 1.0, state).emit)

    def exact_branches(self, x: torch.Tensor, *, _outcomes: bool = False):
        """All joint measurement branches: (logits [K, batch, n_out], probs [K, batch]).
        Differentiable: probs through the neurons' angles, logits through the weights."""
        self._check_ready()
        x = self._input(x)
        total = self.branch_count()
        if total > self.max_branches:
            raise error("Q0620", f"exact enumeration of network `{self.network.name}` needs {total:.3g} "
                        f"branches per input; the limit is {self.max_branches}",
                        help="use gradient straight_through, a narrower network, or raise max_branches",
                        notes=[f"layer `{p.name}`: {self._local_branches(p, self.device)}^{p.size} branches"
                               for p in self.plans if p.kind == "neuron"])
        B = x.shape[0]
        K = 1
        dev = x.device
        P = torch.ones(1, B, dtype=self.dtype, device=dev)
        acts: dict[str, torch.Tensor] = {self.network.input.name: x.unsqueeze(0)}
        outcomes: list[torch.Tensor] = []
        carry = None
        for p in self.plans:
            z = self._layer_z(p, acts[p.source], inplace=False)
            if p.kind == "neuron":
                z = z.expand(K, B, p.size)
            if p.kind != "neuron":
                # The exact gradient of sign is zero: no straight-through here.
                acts[p.name] = sign_pos(z) if p.kind == "sign" else self._classical(p.kind, z, False, 1.0)
                carry = None
                continue
            state, last = carry if p.chained else (None, 1.0)
            res = p.kernel.branch(z, last, state)  # probs [K, B, N, L]
            L, N = len(res.emit), p.size
            M = L ** N
            digits = (torch.arange(M, device=dev)[:, None]
                      // (L ** torch.arange(N - 1, -1, -1, device=dev))[None, :]) % L  # [M, N]
            joint = res.probs[:, :, 0, :]
            for n in range(1, N):
                joint = (joint.unsqueeze(-1) * res.probs[:, :, n, None, :]).reshape(K, B, -1)
            P = (P.unsqueeze(-1) * joint).permute(0, 2, 1).reshape(K * M, B)
            grow = lambda t: t.unsqueeze(1).expand(t.shape[0], M, *t.shape[1:]).reshape(-1, *t.shape[1:])
            # Activations with a leading 1 do not depend on the branch (the input, classical
            # layers before any neuron): they broadcast and are never copied per branch.
            acts = {k: (v if v.shape[0] == 1 else grow(v)) for k, v in acts.items()}
            outcomes = [grow(o) for o in outcomes]
            emit = torch.tensor(res.emit, dtype=self.dtype, device=dev)[digits]  # [M, N]
            d = emit[None, :, None, :].expand(K, M, B, N).reshape(K * M, B, N)
            if p.kernel.carried:
                n_idx = torch.arange(N, device=dev)[None, :]
                post = tuple(s[:, :, n_idx, digits].permute(0, 2, 1, 3).reshape(K * M, B, N) for s in res.post)
                carry = (post, d)
            else:
                carry = None
            K *= M
            acts[p.name] = d
            outcomes.append(d)
        logits = acts[self.plans[-1].name].expand(K, B, self.n_out)  # (a classical-only net: K = 1)
        if _outcomes:
            return logits, P, (torch.cat(outcomes, -1) if outcomes else torch.zeros(K, B, 0, device=dev))
        return logits, P

    def _dp_layers(self) -> Optional[list]:
        """The layer chain in the form the dynamic programme over layers needs, or None.
        It applies when every layer reads the one before it (the first reads the input),
        no neuron carries a qubit, and no classical layer sits between two neuron layers:
        then the outcomes of a neuron layer are a Markov chain over layers (layer l's
        angles depend only on layer l-1's outcomes), so the distribution of the last
        neuron layer's outcomes costs Σ_l 2^{w_{l-1}} 2^{w_l}, not 2^{Σ w_l}."""
        cached = getattr(self, "_dp_cache", False)
        if cached is not False:
            return cached
        plan, prev = None, self.network.input.name
        kinds = [p.kind for p in self.plans]
        neurons = [i for i, k in enumerate(kinds) if k == "neuron"]
        ok = bool(neurons)
        for p in self.plans:
            ok = ok and p.source == prev and (p.kind != "neuron" or not p.kernel.carried)
            prev = p.name
        if ok and any(kinds[i] != "neuron" for i in range(neurons[0], neurons[-1] + 1)):
            ok = False
        if ok:
            plan = (neurons[0], neurons[-1])
        self._dp_cache = plan
        return plan

    def _exact_dp(self, x: torch.Tensor, readout: bool = False) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(logits [M, batch, n_out], probs [M, batch]) over the M = 2^w outcome patterns of
        the last neuron layer, by dynamic programming over layers (see `_dp_layers`).
        Differentiable like `exact_branches`, and equal to it after summing the branches
        that share the last layer's pattern. With `readout` (the caller checked that one
        linear output layer follows the last neuron layer), it may return (expected
        logits [batch, n_out], None) from the written-out path instead."""
        self._check_ready()
        x = self._input(x)
        first, last = self._dp_layers()
        route = self.__dict__.get("_dp_route")
        if route is not None and first == 0 and readout and self.__dict__.get("_dp_fused_cache") is not None:
            # The numba route with its readout, once checked for this batch size: no
            # per-call planning (the limits below depend on the widths only).
            fdp, wb = route.get((x.shape[0], self.max_branches), (None, None))
            if fdp is not None:
                try:
                    return FusedDPFunction.apply(x, fdp, *wb), None
                except DPNotFinite:
                    pass  # the path below reports it
        for i in range(first + 1, last + 1):
            a, b = self.plans[i - 1].size, self.plans[i].size
            if 2 ** (a + b) > self.max_branches:
                raise error("Q0620", f"exact enumeration of network `{self.network.name}` needs "
                            f"2^{a} x 2^{b} transition probabilities between layers `{self.plans[i - 1].name}` "
                            f"and `{self.plans[i].name}`; the limit is {self.max_branches}",
                            help="use gradient straight_through, a narrower network, or raise max_branches")
        acts = x
        for p in self.plans[:first]:  # classical layers of the input: deterministic
            z = self._layer_z(p, acts, inplace=False)
            acts = sign_pos(z) if p.kind == "sign" else self._classical(p.kind, z, False, 1.0)
        P = None
        table = None
        chain = self.plans[first:last + 1]
        # The written-out gradient holds every factor of every transition ([N, M', M]);
        # beyond ~2^16 of them the autograd chain of outer products moves less memory.
        rows = [x.shape[0]] + [2 ** p.size for p in chain[:-1]]
        work = max(r * (2 ** p.size) * p.size for r, p in zip(rows, chain))
        small = work <= _DP_ANALYTIC_MAX
        fdp = self._fused_dp(first, last, readout) if work <= _DP_FUSED_MAX else None
        if fdp is not None:
            wb = []
            for p in chain + ([self.plans[last + 1]] if readout else []):
                wb += [self.weight[p.name], self.bias[p.name] if p.name in self.bias else None]
            try:
                out = FusedDPFunction.apply(acts, fdp, *wb)
                if readout:
                    if first == 0:  # remembered for this batch size (the parameters are the same objects)
                        self.__dict__.setdefault("_dp_route", {})[x.shape[0], self.max_branches] = (fdp, wb)
                    return out, None
                P, table, chain = out, pattern_table(chain[-1].size, self.dtype), []
            except DPNotFinite:
                P = None  # the general path below reports the angle that is not finite
                readout = False
                small = False
        if P is None and small and self._dp_analytic(chain):
            forms = [p.kernel.ops[0][3] for p in chain]
            tables = [pattern_table(p.size, self.dtype, x.device) for p in chain]
            wb = []
            for p in chain:
                wb += [self.weight[p.name], self.bias[p.name] if p.name in self.bias else None]
            if readout:
                o = self.plans[last + 1]
                wb += [self.weight[o.name], self.bias[o.name] if o.name in self.bias else None]
                try:
                    return LayerChainDP.apply(acts, forms, tables, True, *wb), None
                except DPNotFinite:
                    readout = False
            try:
                P = LayerChainDP.apply(acts, forms, tables, False, *wb)
                table = tables[-1]
                chain = []
            except DPNotFinite:
                P = None  # the general path below reports the angle that is not finite
        for p in chain:
            N = p.size
            if P is None:
                z = self._layer_z(p, acts, inplace=False)  # [B, N]
            else:
                z = self._layer_z(p, table, inplace=False)  # [M_prev, N]: the same for every image
            res = p.kernel.branch(z)
            emit = torch.tensor(res.emit, dtype=self.dtype, device=x.device)
            L = emit.numel()
            M = L ** N
            digits = (torch.arange(M, device=x.device)[:, None]
                      // (L ** torch.arange(N - 1, -1, -1, device=x.device))[None, :]) % L  # [M, N]
            # probs[..., n, digits[m, n]] multiplied over n: [..., M]
            pr = res.probs  # [..., N, L]
            # Outer products neuron by neuron (first neuron most significant): N cheap
            # multiplications whose backward is exact at probabilities 0 (prod's is not cheap).
            joint = pr[..., 0, :]
            for n in range(1, N):
                joint = (joint.unsqueeze(-1) * pr[..., n, None, :]).flatten(-2)
            P = joint if P is None else P @ joint  # [B, M]
            table = emit[digits]  # [M, N]: the emitted values of each pattern
        out = table
        for p in self.plans[last + 1:]:  # classical layers of the last neuron layer, per pattern
            z = self._layer_z(p, out, inplace=False)
            out = sign_pos(z) if p.kind == "sign" else self._classical(p.kind, z, False, 1.0)
        B = x.shape[0]
        return out.unsqueeze(1).expand(out.shape[0], B, out.shape[-1]), P.t()

    def _fused_dp(self, first: int, last: int, readout: bool):
        """The numba DP of the chain plans[first..last] (+ the linear readout), or None
        (numba disabled, or an angle the kernels do not evaluate); cached per readout."""
        cache = self.__dict__.setdefault("_dp_fused_cache", {})
        if cache is None or self.device.type != "cpu":  # switched off (tests compare the torch DP); numba is host-only
            return None
        if readout not in cache:
            cache[readout] = FusedDP.build(self.plans[first:last + 1], self.plans[last + 1] if readout else None,
                                           self.dtype)
        return cache[readout]

    def _dp_analytic(self, chain) -> bool:
        """Whether the chain's gradient can be written out (`runtime/exact_dp.py`): every
        neuron takes the R_y fast path with an angle `dual` differentiates."""
        ok = getattr(self, "_dp_analytic_cache", None)
        if ok is None:
            ok = self._dp_analytic_cache = all(p.kernel.ideal_ry for p in chain) and dp_supported(
                [p.kernel.ops[0][3] for p in chain], self.dtype, self.device)
        return ok

    def _expected_branches(self, x):
        return self._exact_dp(x) if self._dp_layers() is not None else self.exact_branches(x)

    def expected_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_branches p · logits, [batch, n_out] (exact, differentiable)."""
        dp = self._dp_layers()
        if dp is not None and dp[1] == len(self.plans) - 2 and self.plans[-1].kind == "linear":
            e, P = self._exact_dp(x, readout=True)
            if P is None:
                return e
            return (P.unsqueeze(-1) * e).sum(0)
        logits, P = self._expected_branches(x)
        return (P.unsqueeze(-1) * logits).sum(0)

    def expected_output_distribution(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_branches p · softmax(logits), [batch, n_out]."""
        logits, P = self._expected_branches(x)
        return (P.unsqueeze(-1) * torch.softmax(logits, -1)).sum(0)

    def expected_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The batch mean of Σ_branches p · cross_entropy(logits, y) (exact, differentiable)."""
        logits, P = self._expected_branches(x)
        K, B, C = logits.shape
        ce = F.cross_entropy(logits.reshape(K * B, C), torch.as_tensor(y, device=logits.device).long().repeat(K),
                             reduction="none").view(K, B)
        return (P * ce).sum(0).mean()

    def exact_outcome_distribution(self, x_single: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The joint distribution of every neuron layer's emitted outcomes for one input:
        (outcomes [2^H, H] int64 ±1, probs [2^H]), H = the total width of the layers in
        `outcome_layers`, columns in network order. Rows are all 2^H patterns in binary
        order, bit = (outcome == -1), first neuron most significant."""
        x = torch.as_tensor(x_single).reshape(1, -1)
        H = sum(n for _, n in self.outcome_layers)
        if 2 ** H > self.max_branches:
            raise error("Q0620", f"the outcome distribution of network `{self.network.name}` has 2^{H} "
                        f"rows; the limit is {self.max_branches}")
        _, P, outs = self.exact_branches(x, _outcomes=True)
        dev = P.device
        weights = (2 ** torch.arange(H - 1, -1, -1, device=dev))
        idx = ((outs[:, 0, :] < 0).long() * weights).sum(-1)
        probs = torch.zeros(2 ** H, dtype=P.dtype, device=dev).index_add(0, idx, P[:, 0])
        table = 1 - 2 * ((torch.arange(2 ** H, device=dev)[:, None] // weights[None, :]) % 2)
        return table, probs
