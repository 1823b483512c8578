"""The classification energy landscape of one image (docs/spin-analysis.md, "The energy
landscape of one image").

With the image x clamped, a forward pass of a network of quantum neurons draws one
pattern s = (s^1, ..., s^L) of ±1 outcomes of its neuron layers, with probability

    P(s | x) = Π_l Π_n p_n^l(s_n^l | z^l),    z^l = W_l s^(l-1) + b_l,   s^0 = x,

p from the one neuron semantics (`NeuronKernel.branch`). The landscape is

    E(s) = −log P(s | x),

whose Boltzmann distribution at T = 1 is exactly the distribution of the network's
shots: a shot lands in the basin of a minimum, and its label is the read-out of the last
neuron layer's outcomes. An outcome of probability 0 (a saturated neuron) has E = +∞.
With `flip` = ε, every emitted outcome is misread with probability ε before the next
layer uses it (p → ε + (1 − 2ε) p, a symmetric read-out error): the landscape of that
noisy network, finite everywhere for ε > 0.

A minimum is a pattern no single flip lowers. `find_minima` enumerates every pattern of
nonzero probability when there are at most `exhaustive_limit` of them (exact), and
otherwise descends (steepest single-flip descent) from `starts` patterns, half sampled
from P(s | x) (where shots land) and half with every possible outcome equally likely
(spread over the landscape), then probes every other label: for each of the lowest minima found, the
lowest-energy last-layer pattern of each other label (by enumerating the last layer's
2^w patterns when w is at most `probe_width`) is completed by descent.

Errors: Q0760 unsupported network, Q0761 bad setting, Q0763 bad pattern.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import functools

import numpy as np

from qnnc.compiler.diagnostics import error

# A probability at or below this is zero: (1 ± cos θ)/2 is not resolved more finely in
# float64 (rounding of the cosine), so a saturated neuron's "impossible" outcome can come
# out as ~1e-17 instead of 0.
FORBIDDEN = 1e-15
DEFAULT_STARTS = 256
DEFAULT_EXHAUSTIVE_LIMIT = 1 << 18
DEFAULT_PROBE_WIDTH = 16
PROBE_MINIMA = 8  # the lowest minima whose other labels are probed
MAX_STARTS = 1 << 16
_CHUNK = 1 << 15  # patterns whose neighbours are evaluated at once


def _no_grad(fn):
    """torch.no_grad() around `fn`, importing torch only when it runs (`qnnc landscape
    --help` and its flag refusals do not import torch)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)
    return wrapper


@dataclass
class Minimum:
    pattern: np.ndarray  # [H] int8, ±1
    energy: float
    label: int
    starts: int = 0  # descents that ended here (0 in exhaustive mode)
    gap: Optional[float] = None  # E(lowest minimum of another label) − E; None: none found
    hamming: Optional[int] = None  # distance to that minimum
    other: Optional[int] = None  # its index in the sorted list

    def to_json_dict(self, widths) -> dict:
        return {"energy": self.energy, "probability": math.exp(-self.energy), "label": self.label,
                "starts": self.starts, "gap": self.gap, "hamming": self.hamming, "other": self.other,
                "pattern": pattern_text(self.pattern, widths)}


@dataclass
class LandscapeResult:
    mode: str  # "exhaustive" | "descent"
    layers: list  # [(name, width)]
    flip: float
    minima: list  # [Minimum], sorted by energy
    support: Optional[int] = None  # patterns of nonzero probability (exhaustive mode)
    starts: int = 0
    probes: int = 0
    seed: int = 0
    notes: list = field(default_factory=list)

    @property
    def widths(self) -> list[int]:
        return [w for _, w in self.layers]

    @property
    def ground(self) -> Minimum:
        return self.minima[0]

    def to_json_dict(self) -> dict:
        return {"mode": self.mode, "certified": self.mode == "exhaustive",
                "layers": [{"name": n, "width": w} for n, w in self.layers],
                "n_spins": sum(self.widths), "flip": self.flip, "support": self.support,
                "starts": self.starts, "probes": self.probes, "seed": self.seed,
                "n_minima": len(self.minima),
                "ground": self.ground.to_json_dict(self.widths) if self.minima else None,
                "minima": [m.to_json_dict(self.widths) for m in self.minima], "notes": list(self.notes)}


def pattern_text(pattern, widths) -> str:
    """`+-+ -++`: one group of signs per layer."""
    s = "".join("+" if v > 0 else "-" for v in np.asarray(pattern).reshape(-1))
    out, k = [], 0
    for w in widths:
        out.append(s[k:k + w])
        k += w
    return " ".join(out)


class Landscape:
    """E(s) = −log P(s | x) over the neuron layers' outcomes of one image x."""

    def __init__(self, model, x, flip: float = 0.0):
        import torch

        from qnnc.runtime.torch_angles import sign_pos

        if not (isinstance(flip, (int, float)) and 0.0 <= flip < 0.5):
            raise error("Q0761", f"flip probability {flip!r} is not in [0, 0.5)",
                        help="0 is the ideal network; 0.5 would make every pattern equally likely")
        self.model = model
        self.flip = float(flip)
        self.dtype = torch.float64
        plans = model.plans
        neurons = [i for i, p in enumerate(plans) if p.kind == "neuron"]
        name = model.network.name
        if not neurons:
            raise error("Q0760", f"network `{name}` has no layer of quantum neurons: its outcomes are "
                        "deterministic and it has no landscape",
                        help="the landscape is over the measured outcomes of neuron layers")
        prev = model.network.input.name
        for i, p in enumerate(plans):
            if p.source != prev:
                raise error("Q0760", f"layer `{p.name}` reads `{p.source}`, not the layer before it: the "
                            "landscape needs a chain of layers")
            if p.kind == "neuron" and p.kernel.carried:
                raise error("Q0760", f"layer `{p.name}` carries qubits from layer to layer: its outcome "
                            "probabilities depend on more than the previous outcomes",
                            help="the landscape supports neurons with a fresh qubit per shot")
            if neurons[0] < i < neurons[-1] and p.kind != "neuron":
                raise error("Q0760", f"classical layer `{p.name}` sits between neuron layers",
                            help="the landscape supports classical layers before the first and after "
                                 "the last neuron layer")
            prev = p.name
        self._sign_pos = sign_pos
        self.plans = [plans[i] for i in neurons]
        self.tail = plans[neurons[-1] + 1:]
        self.layers = [(p.name, p.size) for p in self.plans]
        self.widths = [p.size for p in self.plans]
        self.offsets = np.concatenate([[0], np.cumsum(self.widths)]).astype(int)
        self.n = int(self.offsets[-1])
        with torch.no_grad():
            src = model._input(torch.as_tensor(x, dtype=self.dtype).reshape(1, -1))
            for p in plans[:neurons[0]]:
                z = model._layer_z(p, src, inplace=False)
                src = sign_pos(z) if p.kind == "sign" else model._classical(p.kind, z, False, 1.0)
            self._first = self._log_probs(0, src)[0]  # [N_1, 2]: the same for every pattern

    # ------------------------------------------------------------------ probabilities

    def _log_probs(self, l: int, src: torch.Tensor) -> torch.Tensor:
        """log P(emit +1), log P(emit −1) of layer l's neurons given its source: [B, N_l, 2]."""
        import torch

        p = self.plans[l]
        z = self.model._layer_z(p, src.to(self.dtype), inplace=False)
        probs = p.kernel.branch(z).probs  # [B, N, 2]: emitted +1, then −1
        if self.flip:
            probs = self.flip + (1.0 - 2.0 * self.flip) * probs
        probs = torch.where(probs <= FORBIDDEN, torch.zeros_like(probs), probs)
        return torch.log(probs)

    def _layer_energy(self, logp: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """−Σ_n log p(s_n) for patterns s [B, N] of a layer with log-probabilities [B|1, N, 2]."""
        import torch

        pick = torch.where(s > 0, logp[..., 0], logp[..., 1])
        return -pick.sum(-1)

    def check(self, S) -> torch.Tensor:
        import torch

        S = torch.as_tensor(S)
        if S.dim() == 1:
            S = S.unsqueeze(0)
        if S.dim() != 2 or S.shape[1] != self.n:
            raise error("Q0763", f"patterns of shape {list(S.shape)}; this landscape has {self.n} spins "
                        f"({', '.join(f'{n} {w}' for n, w in self.layers)})")
        S = S.to(self.dtype)
        if not bool(((S == 1) | (S == -1)).all()):
            raise error("Q0763", "a pattern has values other than +1 and -1")
        return S

    def layer(self, S: torch.Tensor, l: int) -> torch.Tensor:
        return S[:, self.offsets[l]:self.offsets[l + 1]]

    @_no_grad
    def energy(self, S) -> torch.Tensor:
        """E(s) = −log P(s | x) for patterns [B, H] (or one [H]): float64 [B], +inf where
        the pattern is impossible."""
        S = self.check(S)
        E = self._layer_energy(self._first.unsqueeze(0), self.layer(S, 0))
        for l in range(1, len(self.plans)):
            E = E + self._layer_energy(self._log_probs(l, self.layer(S, l - 1)), self.layer(S, l))
        return E

    @_no_grad
    def output(self, last: torch.Tensor) -> torch.Tensor:
        """The network's output for last-layer patterns [B, N_L]."""
        out = last.to(self.dtype)
        for p in self.tail:
            z = self.model._layer_z(p, out, inplace=False)
            out = self._sign_pos(z) if p.kind == "sign" else self.model._classical(p.kind, z, False, 1.0)
        return out

    def labels(self, S) -> torch.Tensor:
        """The read-out (argmax, ties to the lowest class) of each pattern: int64 [B]."""
        S = self.check(S)
        return self.output(self.layer(S, len(self.plans) - 1)).argmax(-1)

    @_no_grad
    def sample(self, count: int, generator: torch.Generator, uniform: bool = False) -> torch.Tensor:
        """`count` patterns drawn from P(s | x) (the network's shots, with the flips); with
        `uniform`, every outcome of nonzero probability equally likely, layer by layer (the
        infinite-temperature proposal: starts spread over the whole landscape)."""
        import torch

        parts = []
        logp = self._first.unsqueeze(0).expand(count, -1, -1)
        for l in range(len(self.plans)):
            if l:
                logp = self._log_probs(l, parts[-1])
            p_plus = torch.exp(logp[..., 0])
            if uniform:
                ok = torch.isfinite(logp)
                p_plus = torch.where(ok.all(-1), torch.full_like(p_plus, 0.5), ok[..., 0].to(self.dtype))
            u = torch.rand(p_plus.shape, generator=generator, dtype=self.dtype)
            parts.append(torch.where(u < p_plus, 1.0, -1.0).to(self.dtype))
        return torch.cat(parts, 1)

    @_no_grad
    def neighbour_energies(self, S: torch.Tensor) -> torch.Tensor:
        """E of every single flip: [B, H] (row b, column i: pattern b with spin i flipped),
        for patterns of finite energy. A flip in layer l changes only layer l's own term
        and the terms of layer l + 1, so only those are recomputed."""
        import torch

        B, H = S.shape
        out = torch.empty(B, H, dtype=self.dtype)
        rows = max(1, _CHUNK // max(H, 1))
        L = len(self.plans)
        for b0 in range(0, B, rows):
            s = S[b0:b0 + rows]
            b = s.shape[0]
            logps = [self._first.unsqueeze(0).expand(b, -1, -1)]
            logps += [self._log_probs(l, self.layer(s, l - 1)) for l in range(1, L)]
            terms = [self._layer_energy(logps[l], self.layer(s, l)) for l in range(L)]
            E = torch.stack(terms).sum(0)
            for l in range(L):
                sl = self.layer(s, l)
                lp = logps[l]
                here = torch.where(sl > 0, lp[..., 0], lp[..., 1])
                there = torch.where(sl > 0, lp[..., 1], lp[..., 0])
                delta = here - there  # own term: −log p(−s_n) + log p(s_n)
                if l + 1 < L:
                    N = sl.shape[1]
                    eye = 1.0 - 2.0 * torch.eye(N, dtype=self.dtype)
                    flipped = (sl.unsqueeze(1) * eye.unsqueeze(0)).reshape(b * N, N)
                    nxt = self._log_probs(l + 1, flipped)
                    after = self.layer(s, l + 1).repeat_interleave(N, 0)
                    delta = delta + (self._layer_energy(nxt, after).view(b, N) - terms[l + 1].unsqueeze(1))
                out[b0:b0 + b, self.offsets[l]:self.offsets[l + 1]] = E.unsqueeze(1) + delta
        return out

    @_no_grad
    def descend(self, S: torch.Tensor, max_moves: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Steepest single-flip descent from each row of S: (minima [B, H], energies [B])."""
        import torch

        S = self.check(S).clone()
        E = self.energy(S)
        active = torch.isfinite(E)
        moves = 0
        limit = max_moves if max_moves is not None else 4 * self.n + 16
        while bool(active.any()) and moves < limit:
            idx = active.nonzero().squeeze(1)
            En = self.neighbour_energies(S[idx])
            best, where = En.min(1)
            better = best < E[idx] - 1e-12 * torch.clamp(E[idx].abs(), min=1.0)
            go = idx[better]
            S[go, where[better]] *= -1
            E[go] = best[better]
            active[idx[~better]] = False
            moves += 1
        return S, E

    def is_minimum(self, S) -> torch.Tensor:
        """Whether no single flip lowers E, per pattern: bool [B]."""
        import torch

        S = self.check(S)
        E = self.energy(S)
        En = self.neighbour_energies(S)
        return (En >= E.unsqueeze(1) - 1e-12 * torch.clamp(E.abs(), min=1.0).unsqueeze(1)).all(1) & torch.isfinite(E)

    # ------------------------------------------------------------------ exhaustive

    @_no_grad
    def support(self, limit: int) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """Every pattern of nonzero probability and its energy, or None when there are more
        than `limit` (counted layer by layer, before anything is enumerated past it)."""
        import torch

        S = torch.zeros(1, 0, dtype=self.dtype)
        E = torch.zeros(1, dtype=self.dtype)
        for l in range(len(self.plans)):
            logp = self._first.unsqueeze(0) if l == 0 else self._log_probs(l, self.layer(S, l - 1))
            logp = logp.expand(S.shape[0], -1, -1)
            ok = torch.isfinite(logp)  # [P, N, 2]
            free = ok.all(-1)
            k = free.sum(-1)  # [P]
            total = int(torch.exp2(k.to(torch.float64)).sum())
            if total > limit:
                return None
            forced = torch.where(ok[..., 0], 1.0, -1.0).to(self.dtype)  # the one possible value
            newS, newE = [], []
            for kk in torch.unique(k).tolist():
                rows = (k == kk).nonzero().squeeze(1)
                g, M = rows.numel(), 1 << kk
                base = forced[rows].clone()
                base[free[rows]] = 1.0
                pats = base.unsqueeze(1).expand(g, M, base.shape[1]).clone()  # [g, M, N]
                if kk:
                    pos = free[rows].nonzero()[:, 1].view(g, kk)
                    digits = (torch.arange(M)[:, None] >> torch.arange(kk - 1, -1, -1)[None, :]) & 1
                    table = (1 - 2 * digits).to(self.dtype)
                    pats.scatter_(2, pos.unsqueeze(1).expand(g, M, kk), table.unsqueeze(0).expand(g, M, kk))
                e = self._layer_energy(logp[rows].unsqueeze(1), pats)  # [g, M]
                newS.append(torch.cat([S[rows].unsqueeze(1).expand(g, M, S.shape[1]), pats], 2).reshape(g * M, -1))
                newE.append((E[rows].unsqueeze(1) + e).reshape(-1))
            S, E = torch.cat(newS), torch.cat(newE)
        return S, E

    def _exhaustive_minima(self, S: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
        """Indices of the minima among the support (neighbours outside it have E = +∞)."""
        import torch

        H = self.n
        if H > 62:
            # Patterns as 62-bit keys do not fit; compare neighbour energies directly.
            keep = []
            for b0 in range(0, S.shape[0], 4096):
                keep.append(self.is_minimum(S[b0:b0 + 4096]))
            return torch.cat(keep).nonzero().squeeze(1)
        weights = 2 ** torch.arange(H - 1, -1, -1, dtype=torch.int64)
        keys = ((S < 0).to(torch.int64) * weights).sum(1)
        order = torch.argsort(keys)
        skeys, sE = keys[order], E[order]
        minimum = torch.ones(S.shape[0], dtype=torch.bool)
        rows = max(1, _CHUNK * 8 // H)
        for b0 in range(0, S.shape[0], rows):
            kb = keys[b0:b0 + rows]
            nb = kb.unsqueeze(1) ^ weights.unsqueeze(0)  # [b, H]
            pos = torch.searchsorted(skeys, nb).clamp(max=skeys.numel() - 1)
            found = skeys[pos] == nb
            En = torch.where(found, sE[pos], torch.full_like(sE[pos], math.inf))
            e = E[b0:b0 + rows].unsqueeze(1)
            minimum[b0:b0 + rows] = (En >= e - 1e-12 * torch.clamp(e.abs(), min=1.0)).all(1)
        return minimum.nonzero().squeeze(1)

    # ------------------------------------------------------------------ probes

    @_no_grad
    def _last_layer_table(self):
        cached = getattr(self, "_table", None)
        if cached is None:
            from qnnc.runtime.exact_dp import pattern_table

            T = pattern_table(self.widths[-1], self.dtype)
            cached = self._table = (T, self.output(T).argmax(-1))
        return cached

    @_no_grad
    def probe_labels(self, S: torch.Tensor) -> torch.Tensor:
        """For each pattern, and each label the last layer can express: the pattern with the
        last layer replaced by its lowest-energy pattern of that label (given the layers
        before). Rows of finite energy only."""
        import torch

        T, lab = self._last_layer_table()
        L = len(self.plans)
        out = []
        for s in S:
            logp = (self._first.unsqueeze(0) if L == 1 else
                    self._log_probs(L - 1, self.layer(s.unsqueeze(0), L - 2)))[0]  # [N, 2]
            e = -torch.where(T > 0, logp[:, 0].unsqueeze(0), logp[:, 1].unsqueeze(0)).sum(1)  # [M]
            for c in torch.unique(lab).tolist():
                ec = torch.where(lab == c, e, torch.full_like(e, math.inf))
                j = int(ec.argmin())
                if math.isfinite(float(ec[j])):
                    out.append(torch.cat([s[:self.offsets[L - 1]], T[j]]))
        return torch.stack(out) if out else S[:0]

    # ------------------------------------------------------------------ minima

    def find_minima(self, *, starts: int = DEFAULT_STARTS, seed: int = 0,
                    exhaustive_limit: int = DEFAULT_EXHAUSTIVE_LIMIT,
                    probe_width: int = DEFAULT_PROBE_WIDTH) -> LandscapeResult:
        import torch

        for what, v, lo, hi in (("starts", starts, 1, MAX_STARTS), ("exhaustive limit", exhaustive_limit, 0, 1 << 24),
                                ("probe width", probe_width, 0, 20)):
            if not isinstance(v, int) or not lo <= v <= hi:
                raise error("Q0761", f"{what} {v!r} is not an integer in [{lo}, {hi}]")
        notes = []
        sup = self.support(exhaustive_limit) if exhaustive_limit else None
        if sup is not None:
            S, E = sup
            idx = self._exhaustive_minima(S, E)
            mins = [(S[i], float(E[i]), 0) for i in idx.tolist()]
            result = LandscapeResult("exhaustive", self.layers, self.flip, [], support=int(S.shape[0]), seed=seed)
        else:
            gen = torch.Generator().manual_seed(int(seed))
            shots = (starts + 1) // 2
            S0 = torch.cat([self.sample(shots, gen), self.sample(starts - shots, gen, uniform=True)])
            M, E = self.descend(S0)
            found = _unique(M, E)
            probes = 0
            if self.widths[-1] <= probe_width:
                lowest = sorted(found.values(), key=lambda t: t[1])[:PROBE_MINIMA]
                P = self.probe_labels(torch.stack([t[0] for t in lowest]))
                probes = int(P.shape[0])
                if probes:
                    M2, E2 = self.descend(P)
                    for key, (s, e, _) in _unique(M2, E2).items():
                        found.setdefault(key, (s, e, 0))
            else:
                notes.append(f"last layer `{self.layers[-1][0]}` is wider than {probe_width}: other labels "
                             "were not probed")
            mins = list(found.values())
            result = LandscapeResult("descent", self.layers, self.flip, [], starts=starts, probes=probes, seed=seed,
                                     notes=notes)
        mins.sort(key=lambda t: t[1])
        pats = torch.stack([m[0] for m in mins]) if mins else torch.zeros(0, self.n, dtype=self.dtype)
        labels = self.labels(pats).tolist() if mins else []
        result.minima = [Minimum(m[0].numpy().astype(np.int8), m[1], int(c), m[2]) for m, c in zip(mins, labels)]
        _gaps(result.minima)
        return result


def _unique(M: torch.Tensor, E: torch.Tensor) -> dict:
    """pattern bytes -> (pattern, energy, count) over the finite rows."""
    out: dict = {}
    for s, e in zip(M, E.tolist()):
        if not math.isfinite(e):
            continue
        key = (s > 0).numpy().tobytes()
        if key in out:
            out[key] = (out[key][0], out[key][1], out[key][2] + 1)
        else:
            out[key] = (s.clone(), e, 1)
    return out


def _gaps(minima: list) -> None:
    """For each minimum (sorted by energy): the lowest minimum of another label, the
    energy gap to it and the Hamming distance."""
    first: dict[int, int] = {}  # label -> index of its lowest minimum
    for i, m in enumerate(minima):
        first.setdefault(m.label, i)
    for m in minima:
        others = [j for c, j in first.items() if c != m.label]
        if not others:
            continue
        j = min(others)
        m.other = j
        m.gap = minima[j].energy - m.energy
        m.hamming = int((minima[j].pattern != m.pattern).sum())


def landscape_of(program, network, tensors: dict, x, flip: float = 0.0) -> Landscape:
    """The landscape of image x (preprocessed, [features]) under `network` with weights
    `tensors` (checkpoint names), in float64."""
    import torch

    from qnnc.runtime.train import build_model

    model = build_model(program, network, 0, dtype=torch.float64)
    model.load_tensors({k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in tensors.items()})
    return Landscape(model, x, flip)
