"""Replica-exchange Monte Carlo against exact enumeration, and detailed balance of its
two moves (the block heat-bath and the exchange)."""

from __future__ import annotations

import itertools
import math
import os
import signal

import numpy as np
import pytest
import torch

from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime import replicas_kernel as kernel
from qnnc.runtime.replicas import DenseCouplings, LayeredCouplings, exchange, heat_bath, run_replicas
from qnnc.runtime.replicas_samplers import FixedPointBlockSampler, SequentialSampler, fixed_point_digits

F64 = torch.float64


def _layered(sizes, seed, fields=False):
    rng = np.random.default_rng(seed)
    blocks = [rng.normal(0, 1 / math.sqrt(a), (a, b)) for a, b in zip(sizes, sizes[1:])]
    h = rng.normal(0, 0.3, sum(sizes)) if fields else None
    J = np.zeros((sum(sizes),) * 2)
    off = np.concatenate([[0], np.cumsum(sizes)])
    for k, b in enumerate(blocks):
        J[off[k]:off[k + 1], off[k + 1]:off[k + 2]] = b
    return LayeredCouplings(blocks, sizes, h), J + J.T, h


def _sk(n, seed, fields=False):
    rng = np.random.default_rng(seed)
    J = np.triu(rng.normal(0, 1 / math.sqrt(n), (n, n)), 1)
    J = J + J.T
    h = rng.normal(0, 0.3, n) if fields else None
    return DenseCouplings(J, h), J, h


def _configs(n):
    return np.array(list(itertools.product([1.0, -1.0], repeat=n)))


def _boltzmann(J, h, beta):
    S = _configs(J.shape[0])
    E = -0.5 * np.einsum("si,ij,sj->s", S, J, S) - (S @ h if h is not None else 0.0)
    w = np.exp(-beta * (E - E.min()))
    return S, E, w / w.sum()


def _exact(J, h, T):
    S, E, p = _boltzmann(J, h, 1.0 / T)
    n = J.shape[0]
    C = S.T @ (p[:, None] * S)  # <σ_i σ_j>
    return {"energy": float(p @ E) / n, "magnetisation": float(p @ np.abs(S.mean(1))),
            "q2": float((C ** 2).sum()) / n ** 2}


CASES = {
    "layered": lambda: _layered([5, 6, 5], 1),
    "layered+fields": lambda: _layered([5, 6, 5], 2, fields=True),
    "sk": lambda: _sk(12, 3),
    "sk+fields": lambda: _sk(12, 4, fields=True),
}


# Every case with its default engine (compiled: the fixed-point block update for layers,
# the sequential update for a dense J) and with the torch engine (block update).
@pytest.mark.parametrize("case,engine", [(c, e) for c in sorted(CASES) for e in ("auto", "torch") if e == "auto"
                                         or c.startswith("layered")]
                         + [pytest.param(c, "torch", marks=pytest.mark.slow) for c in ("sk", "sk+fields")])
def test_monte_carlo_matches_exact_enumeration(case, engine):
    couplings, J, h = CASES[case]()
    temps = [0.6, 1.0, 1.8]
    res = run_replicas(couplings, temps, replicas=16, sweeps=2000, burn_in=400, seed=11, engine=engine)
    assert (res.engine, res.update) == ({"auto": "compiled", "torch": "torch"}[engine],
                                         "sequential" if case.startswith("sk") and engine == "auto" else "block")
    for t, T in enumerate(temps):
        want = _exact(J, h, T)
        # Errors: the spread over 16 independent replicas (8 disjoint pairs for q²), 5 sigma,
        # plus a small floor.
        assert abs(res.energy[t] - want["energy"]) < 5 * res.energy_err[t] + 0.01, (T, res.energy[t], want)
        assert abs(res.q2[t] - want["q2"]) < 5 * res.q2_err[t] + 0.01, (T, res.q2[t], want)
        assert abs(res.magnetisation[t] - want["magnetisation"]) < 0.03, (T, res.magnetisation[t], want)
    assert res.equilibrated
    assert all(0 < a <= 1 for a in res.exchange_acceptance)


def test_overlap_distribution_matches_exact_enumeration():
    couplings, J, h = _layered([3, 4, 3], 5)
    n = J.shape[0]
    T = 0.7
    S, _, p = _boltzmann(J, h, 1.0 / T)
    overlaps = np.rint(S @ S.T).astype(int)  # n q, from -n to n in steps of 2
    exact = np.zeros(2 * n + 1)
    np.add.at(exact, overlaps + n, np.outer(p, p))
    res = run_replicas(couplings, [T], replicas=8, sweeps=6000, burn_in=500, seed=2, q_bins=n + 1)
    # Bins of width 2/(n+1) hold exactly one value of q = k/n each (k ≡ n mod 2).
    widths = np.diff(res.q_bins)
    got = np.asarray(res.p_q[0]) * widths
    want = exact[(np.arange(-n, n + 1) % 2) == (n % 2)]
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 0.02, (got.round(3), want.round(3))
    assert want[n // 2] > 0.01  # weight at q = 0: the test can see it


def _codes(x, n):
    """Configurations [K, n] of ±1 to integers (σ = −1 is a set bit, spin 0 the highest)."""
    return ((np.asarray(x) < 0).astype(int) * (1 << np.arange(n)[::-1])).sum(1)


def _assert_detailed_balance(p, start, end, k):
    n = int(round(math.log2(p.size)))
    P = np.zeros((p.size, p.size))
    np.add.at(P, (_codes(start, n), _codes(end, n)), 1.0 / k)
    flow = p[:, None] * P
    err = np.sqrt(p[:, None] * p[None, :] * (P + P.T + 1 / k) / k)
    assert np.all(np.abs(flow - flow.T) < 5 * err + 1e-12)
    assert np.allclose(p @ P, p, atol=5 * math.sqrt(1 / k))
    return P


@pytest.mark.parametrize("group", [0, 1])
def test_compiled_block_update_satisfies_detailed_balance(group):
    couplings, J, h = _layered([2, 2, 1], 7, fields=True)
    n, T, k = J.shape[0], 0.8, 20000
    S, _, p = _boltzmann(J, h, 1 / T)
    sampler = FixedPointBlockSampler(couplings, np.full(2 ** n * k, T), 1, 3, None)  # one chain per row
    start = np.repeat(S, k, 0)
    idx = sampler.idx
    for g in (0, 1):
        sampler.sigma[g][:] = start[:, idx[g]].astype(np.int8)
    sampler.update_group(group)
    end = start.copy()
    end[:, idx[group]] = sampler.sigma[group]
    assert np.array_equal(end[:, idx[1 - group]], start[:, idx[1 - group]])  # only the group changes
    _assert_detailed_balance(p, start, end, k)


def test_compiled_single_spin_update_satisfies_detailed_balance():
    couplings, J, h = _sk(4, 5, fields=True)
    n, T, k = J.shape[0], 0.7, 8000
    S, _, p = _boltzmann(J, h, 1 / T)
    sampler = SequentialSampler(couplings, np.full(2 ** n * k, T), 1, 4, None)
    start = np.repeat(S, k, 0)
    sampler.sigma[:] = start
    sampler.fields[:] = start @ J + h
    for i in range(n):  # each spin's update
        kernel.sequential_sweep(sampler.sigma, sampler.fields, sampler.h, sampler.beta, sampler.J32, sampler.state,
                                sampler.energy, i, i + 1)
        changed = np.flatnonzero(np.any(sampler.sigma != start, axis=0))
        assert set(changed) <= {i}
        _assert_detailed_balance(p, start, sampler.sigma, k)
        x = sampler.sigma
        assert np.allclose(sampler.fields, x @ J + h)  # the incremental fields stay exact
        assert np.allclose(sampler.energy, -0.5 * np.einsum("ci,ij,cj->c", x, J, x) - x @ h)
        sampler.sigma[:] = start
        sampler.fields[:] = start @ J + h


def _assert_exchange_balance(acc, p0, p1, k):
    """Detailed balance of an exchange move: with acc[a, b] the acceptance rate of states
    a and b (k trials each) and p0, p1 their exact probabilities, the flows
    p0[a] p1[b] acc[a, b] are symmetric within 5 standard errors."""
    pi = p0[:, None] * p1[None, :]
    flow = pi * acc
    err = np.sqrt(pi * pi.T * (acc + acc.T + 1 / k) / k)
    assert np.all(np.abs(flow - flow.T) < 5 * err + 1e-12)
    assert acc.max() == pytest.approx(1.0) and acc.min() < 0.5


def test_compiled_exchange_move_satisfies_detailed_balance():
    couplings, J, h = _layered([2, 2], 8)
    n, m, k = J.shape[0], 16, 4000
    betas = np.array([1 / 0.5, 1 / 1.5])
    S, E, p0 = _boltzmann(J, h, betas[0])
    _, _, p1 = _boltzmann(J, h, betas[1])
    x = np.repeat(np.repeat(np.arange(m), m), k)  # state at t = 0
    y = np.repeat(np.tile(np.arange(m), m), k)  # state at t = 1
    R = m * m * k
    a = np.concatenate([S[x], S[y]])  # rows: chain c = t R + r
    energy = np.concatenate([E[x], E[y]])
    accepted = np.zeros(1, dtype=np.int64)
    key = np.random.SeedSequence(4).generate_state(1, np.uint64)[0]
    kernel.exchange_rows(a, np.zeros((2 * R, 0)), energy, betas, R, 0, key, np.uint64(0), accepted)
    swapped = np.all(a[:R] == S[y], axis=1) & np.all(a[R:] == S[x], axis=1) & (x != y)
    kept = np.all(a[:R] == S[x], axis=1) & np.all(a[R:] == S[y], axis=1)
    assert np.all(swapped | kept)
    assert np.allclose(energy, -0.5 * np.einsum("ci,ij,cj->c", a, J, a))  # energies travel with them
    _assert_exchange_balance(np.where(x == y, 1.0, swapped).reshape(m, m, k).mean(-1), p0, p1, k)


def test_fixed_point_couplings_are_exact_to_24_bits():
    J = np.random.default_rng(0).normal(0, 0.05, (40, 30))
    scale, digits = fixed_point_digits(J)
    n = (65536 * digits[0].astype(np.int64) + 256 * digits[1].astype(np.int64) + digits[2])
    assert np.array_equal(n, np.rint(J / scale).astype(np.int64))
    assert np.abs(n * scale - J).max() <= scale / 2 and scale == pytest.approx(np.abs(J).max() / 8_000_000)
    assert digits.dtype == np.int8


def test_the_compiled_energy_is_the_energy():
    couplings, J, h = _layered([4, 5, 3, 2], 12, fields=True)
    sampler = FixedPointBlockSampler(couplings, np.array([0.5, 1.0, 2.0]), 2, 1, None)
    sampler.sweep()
    sigma = np.zeros((6, J.shape[0]))
    for g in (0, 1):
        sigma[:, sampler.idx[g]] = sampler.sigma[g]
    want = -0.5 * np.einsum("ci,ij,cj->c", sigma, J, sigma) - sigma @ h
    assert np.allclose(sampler.energy, want, atol=1e-5)


@pytest.mark.parametrize("group", [0, 1])
def test_heat_bath_block_update_satisfies_detailed_balance(group):
    couplings, J, h = _layered([2, 2, 1], 7, fields=True)
    n, beta = J.shape[0], 1 / 0.8
    S, _, p = _boltzmann(J, h, beta)
    k = 20000
    start = torch.as_tensor(np.repeat(S, k, 0), dtype=F64).unsqueeze(0)  # [1, 2^n k, n]
    sigma = start.clone()
    u = torch.rand((1, sigma.shape[1], couplings.groups[group].numel()), generator=torch.Generator().manual_seed(3),
                   dtype=F64)
    heat_bath(sigma, couplings, group, torch.tensor([beta], dtype=F64), u)
    codes = lambda x: ((x[0].numpy() < 0).astype(int) * (1 << np.arange(n)[::-1])).sum(1)
    P = np.zeros((2 ** n, 2 ** n))
    np.add.at(P, (codes(start), codes(sigma)), 1.0 / k)
    # Only the group's spins change.
    outside = np.setdiff1d(np.arange(n), couplings.groups[group].numpy())
    assert torch.equal(sigma[0][:, outside], start[0][:, outside])
    flow = p[:, None] * P
    err = np.sqrt(p[:, None] * p[None, :] * (P + P.T + 1 / k) / k)
    assert np.all(np.abs(flow - flow.T) < 5 * err + 1e-12)
    assert np.allclose(p @ P, p, atol=5 * math.sqrt(1 / k))


def test_exchange_move_satisfies_detailed_balance():
    couplings, J, h = _layered([2, 2], 8)
    n = J.shape[0]
    betas = torch.tensor([1 / 0.5, 1 / 1.5], dtype=F64)
    S, _, p0 = _boltzmann(J, h, float(betas[0]))
    _, _, p1 = _boltzmann(J, h, float(betas[1]))
    m = 2 ** n
    k = 4000
    x = np.repeat(np.repeat(np.arange(m), m), k)  # state at t = 0
    y = np.repeat(np.tile(np.arange(m), m), k)  # state at t = 1
    sigma = torch.as_tensor(np.stack([S[x], S[y]]), dtype=F64)  # [2, m² k, n]
    energy = couplings.energy(sigma)
    u = torch.rand((2, sigma.shape[1]), generator=torch.Generator().manual_seed(4), dtype=F64)
    accepted = exchange(sigma, energy, betas, 0, u)[0].numpy().reshape(m, m, k).mean(-1)
    assert torch.allclose(energy, couplings.energy(sigma))  # energies travel with their configurations
    pi = p0[:, None] * p1[None, :]
    flow = pi * accepted
    err = np.sqrt(pi * pi.T * (accepted + accepted.T + 1 / k) / k)
    assert np.all(np.abs(flow - flow.T) < 5 * err + 1e-12)
    # The Metropolis rule itself, for the pair of lowest and highest energy.
    assert accepted.max() == pytest.approx(1.0) and accepted.min() < 0.5


def test_layered_and_dense_couplings_agree():
    layered, J, h = _layered([3, 4, 2], 9, fields=True)
    dense = DenseCouplings(J, h)
    sigma = torch.where(torch.rand((2, 3, J.shape[0]), generator=torch.Generator().manual_seed(0)) < 0.5, 1.0,
                        -1.0).to(F64)
    assert torch.allclose(layered.energy(sigma), dense.energy(sigma))
    full = torch.cat([layered.fields(sigma, g) for g in (0, 1)], -1)
    order = torch.cat(layered.groups)
    want = sigma @ torch.as_tensor(J) + torch.as_tensor(h)
    assert torch.allclose(full, want[..., order])


@pytest.mark.parametrize("kwargs", [dict(temperatures=[0.0]), dict(temperatures=[float("nan")]),
                                    dict(temperatures=[1.0], replicas=0), dict(temperatures=[1.0], sweeps=0),
                                    dict(temperatures=[1.0], sweeps=10, burn_in=10)])
def test_bad_settings_are_refused(kwargs):
    couplings, _, _ = _layered([2, 2], 1)
    with pytest.raises(QnncError) as e:
        run_replicas(couplings, **kwargs)
    assert e.value.diagnostics[0].code == "Q0611"


def test_a_run_still_relaxing_is_flagged_as_not_equilibrated():
    couplings, _, _ = _layered([40, 60, 40], 6)
    res = run_replicas(couplings, [0.25], replicas=16, sweeps=16, burn_in=0, seed=1)
    assert not res.equilibrated and res.equilibration["min_p"] < res.equilibration["alpha"]


def test_the_energy_carried_through_a_sweep_is_the_energy():
    couplings, J, h = _layered([4, 5, 3, 2], 12, fields=True)
    sigma = torch.where(torch.rand((3, 2, J.shape[0]), generator=torch.Generator().manual_seed(1)) < 0.5, 1.0,
                        -1.0).to(F64)
    beta = torch.tensor([0.5, 1.0, 2.0], dtype=F64)
    gen = torch.Generator().manual_seed(2)
    for g in (0, 1):
        bonds = heat_bath(sigma, couplings, g, beta, torch.rand((3, 2, couplings.groups[g].numel()), generator=gen,
                                                                dtype=F64))
    assert torch.allclose(couplings.energy_after_sweep(sigma, bonds), couplings.energy(sigma))


def test_replicas_command_json_and_plots(tmp_path, capsys):
    import json

    from qnnc.runtime.cli import main

    f = tmp_path / "n.qnn"
    f.write_text("network n {\n    input x[6]\n"
                 "    layer h[5] = sign of dense(x, bias = off, init = normal(0, 1 / sqrt(fan_in)))\n"
                 "    output y[3] = linear of dense(h, bias = off, init = normal(0, 1 / sqrt(fan_in)))\n}\n")
    capsys.readouterr()
    plots = tmp_path / "plots"
    assert main(["replicas", str(f), "--temperatures", "0.5", "1", "2", "--replicas", "4", "--sweeps", "400",
                 "--json", "--plot", str(plots), "--no-progress"]) == 0
    r = json.loads(capsys.readouterr().out)["result"]
    assert r["format"] == "qnnc-replicas" and r["n_spins"] == 14 and len(r["binder"]) == 3
    assert r["source"] == "declared initialisation, seed 0" and len(r["weights_sha256"]) == 64
    assert r["q2"][0] > r["q2"][2]  # more order at low temperature
    for name in ("p_q.png", "binder.png", "hidden_order.png"):
        data = (plots / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_replicas_command_refuses_an_unknown_device(tmp_path, capsys):
    from qnnc.runtime.cli import main

    f = tmp_path / "n.qnn"
    f.write_text("network n {\n    input x[2]\n    output y[2] = linear of dense(x)\n}\n")
    assert main(["replicas", str(f), "--device", "warp9", "--sweeps", "10"]) == 2
    assert "Q0407" in capsys.readouterr().err


def test_one_layer_of_spins_is_refused_not_crashed():
    """A layered model needs a block of bonds: one layer gets Q0611, not an IndexError."""
    from qnnc.compiler.diagnostics import QnncError
    from qnnc.runtime.replicas import LayeredCouplings

    with pytest.raises(QnncError) as e:
        LayeredCouplings([], [5], np.zeros(5))
    assert e.value.diagnostics[0].code == "Q0611"


def test_block_exchange_relabelling_satisfies_detailed_balance():
    """The block sampler's exchange swaps which row holds which chain (and the rows'
    temperatures): the same move as `exchange_rows`, with the same numbers."""
    couplings, J, h = _layered([2, 2], 8)
    m, k = 16, 4000
    betas = np.array([1 / 0.5, 1 / 1.5])
    S, E, p0 = _boltzmann(J, h, betas[0])
    _, _, p1 = _boltzmann(J, h, betas[1])
    x = np.repeat(np.repeat(np.arange(m), m), k)
    y = np.repeat(np.tile(np.arange(m), m), k)
    R = m * m * k
    rows = np.concatenate([S[x], S[y]])
    energy = np.concatenate([E[x], E[y]])
    row_of, beta_row = np.arange(2 * R), np.repeat(betas, R)
    accepted = np.zeros(1, dtype=np.int64)
    key = np.random.SeedSequence(4).generate_state(1, np.uint64)[0]
    kernel.block_exchange(row_of, beta_row, energy, betas, R, 0, key, np.uint64(0), accepted)
    a = rows[row_of]  # the configuration of chain c = t R + r
    assert np.array_equal(beta_row[row_of], np.repeat(betas, R))  # each row knows its temperature
    assert np.allclose(energy[row_of], -0.5 * np.einsum("ci,ij,cj->c", a, J, a))
    swapped = (row_of[:R] != np.arange(R)) & (x != y)
    assert np.array_equal(row_of[:R] != np.arange(R), row_of[R:] != np.arange(R, 2 * R))
    # the same decisions as the row-moving exchange of the other samplers
    b, e2, acc2 = np.concatenate([S[x], S[y]]), np.concatenate([E[x], E[y]]), np.zeros(1, dtype=np.int64)
    kernel.exchange_rows(b, np.zeros((2 * R, 0)), e2, betas, R, 0, key, np.uint64(0), acc2)
    assert np.array_equal(a, b) and accepted[0] == acc2[0]
    _assert_exchange_balance(np.where(x == y, 1.0, swapped).reshape(m, m, k).mean(-1), p0, p1, k)


def _chunk(sampler, n, parity=0):
    C, T, P, D = sampler.C, sampler.T, len(sampler.pa), sampler.dirs[0].shape[0]
    out = dict(E=np.zeros((n, C)), M=np.zeros((n, C)), V=np.zeros((n, C, D)), Q=np.zeros((n, T, P)))
    accepted = np.zeros(T - 1, dtype=np.int64)
    sampler.run_chunk(n, parity, accepted, out["E"], out["M"], out["V"], out["Q"])
    return out, accepted


def test_block_chains_do_not_depend_on_threads_or_products():
    """Workers split each group's columns and every draw depends only on (row, spin,
    sweep); the energies are sums of integers: 1, 2 or 3 workers, oneDNN's or torch's
    int8 product, give the very same chains, energies, exchanges and measurements (the
    overlaps with real directions up to rounding)."""
    couplings, J, h = _layered([70, 66, 64], 21, fields=True)
    temps, dirs = np.geomspace(0.5, 2.0, 4), np.random.default_rng(0).normal(size=(2, J.shape[0]))
    runs = []
    for workers, products in [(1, "int_mm"), (2, "auto"), (3, "auto"), (2, "int_mm")]:
        s = FixedPointBlockSampler(couplings, temps, 3, 9, dirs, workers=workers, products=products)
        assert s.workers == workers
        out, acc = _chunk(s, 25)
        runs.append((out, acc, s.sigma[0].copy(), s.sigma[1].copy(), s.row_of.copy(), s.energy))
    kinds = {p.kind for p in s.products[0]}
    for other in runs[1:]:
        for key in "EMQ":
            assert np.array_equal(other[0][key], runs[0][0][key]), key
        # σ·v with real v: summed in column blocks, so equal up to the order of the additions
        np.testing.assert_allclose(other[0]["V"], runs[0][0]["V"], rtol=1e-12, atol=1e-12)
        for a, b in zip(other[1:], runs[0][1:]):
            assert np.array_equal(a, b)
    assert runs[0][1].sum() > 0 and kinds  # exchanges happened


def test_block_sampler_is_the_plain_heat_bath_it_claims():
    """A plain Python loop of the same algorithm (exact integer fields from the digits,
    np.exp, the same counter-based uniforms, exchange by relabelling) gives the same
    chains as the threaded compiled sampler."""
    couplings, J, h = _layered([70, 66, 64], 22, fields=True)
    temps, R, n_sweeps = np.array([0.6, 1.2]), 2, 6
    s = FixedPointBlockSampler(couplings, temps, R, 4, None, workers=2)
    out, _ = _chunk(s, n_sweeps)
    ref = FixedPointBlockSampler(couplings, temps, R, 4, None, workers=1)
    n_int = []  # [n_src, n_g]: the integer couplings, from the sampler's int8 digits
    for g in (0, 1):
        a = ref.A[g].numpy().astype(np.int64).reshape(ref.A[g].shape[0], 3, -1)
        n_int.append(65536 * a[:, 0] + 256 * a[:, 1] + a[:, 2])
    C, N = ref.C, ref.N
    sig = [x.astype(np.int64) for x in ref.sigma]
    row_of, beta_row = np.arange(C), np.repeat(1 / temps, R)
    for j in range(n_sweeps):
        counter = j * C * N
        bond_int = None
        for g in (0, 1):
            n_g = sig[g].shape[1]
            fields = sig[1 - g] @ n_int[g]  # exact integers
            for c in range(C):
                for i in range(n_g):
                    u = kernel._uniform_at(ref.keys[0], np.uint64(counter + c * n_g + i))
                    x = 2 * beta_row[c] * (ref.scale * float(fields[c, i]) + ref.h[g][i])
                    sig[g][c, i] = 1 if u * (1 + math.exp(-x)) < 1 else -1
            counter += C * n_g
            bond_int = (sig[g] * fields).sum(1)
        energy_row = -ref.scale * bond_int.astype(float) - ref.h_scale * sum((sig[g] * ref.kh[g]).sum(1)
                                                                             for g in (0, 1))
        np.testing.assert_allclose(out["E"][j], energy_row[row_of], rtol=0, atol=1e-9)
        acc = np.zeros(1, dtype=np.int64)
        kernel.block_exchange(row_of, beta_row, energy_row, 1 / temps, R, j % 2, ref.keys[1], np.uint64(j * C), acc)
        assert np.array_equal(out["M"][j], sum(sig[g][row_of].sum(1) for g in (0, 1)))
    assert np.array_equal(sig[0], s.sigma[0]) and np.array_equal(sig[1], s.sigma[1])
    assert np.array_equal(row_of, s.row_of)


@pytest.mark.parametrize("worker,group", [(0, 0), (1, 1), (2, 0)])
def test_a_failing_worker_stops_the_chunk_with_its_error(worker, group):
    """An error in any worker reaches the caller, and no worker is left waiting."""
    couplings, J, h = _layered([70, 66, 64], 24)
    s = FixedPointBlockSampler(couplings, np.array([0.5, 1.0]), 2, 0, None, workers=3)

    def broken(src):
        raise RuntimeError("boom")

    s.products[worker][group] = broken
    accepted, threads = np.zeros(1, dtype=np.int64), torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        s.run_chunk(5, 0, accepted)
    assert torch.get_num_threads() == threads  # the run gave torch its threads back


@pytest.mark.parametrize("slack_scale", [1.0, 1e6])
def test_block_draw_with_two_digits_is_the_exact_rule(slack_scale):
    """The even group's draw from two digits (the third digit's part bounded, computed
    for the close calls only) gives the spins and sums of the draw from all three digits,
    bit for bit, whether few draws (the real bound) or all (a bound a million times too
    wide) are redone; the real bound does leave some close calls."""
    rng = np.random.default_rng(5)
    C, n, K = 40, 300, 200
    digits = rng.integers(-128, 128, (3, K, n)).astype(np.int8)  # [digit, other spin, spin]
    src = np.where(rng.random((C, K)) < 0.5, 1, -1).astype(np.int8)
    r = np.concatenate([src.astype(np.int64) @ digits[k].astype(np.int64) for k in range(3)], 1).astype(np.float32)
    a2 = np.ascontiguousarray(digits[2].T)  # [spin, other spin]
    scale = 1.0 / 8_000_000
    kh = rng.integers(-2 ** 31, 2 ** 31, n).astype(np.float64)
    h = 1e-10 * kh
    beta = np.geomspace(0.3, 3.0, C)
    slack = scale * np.abs(a2.astype(np.int64)).sum(1) * slack_scale
    outs = []
    for digits_used, r_used, sl in ((3, r, np.zeros(n)), (2, np.ascontiguousarray(r[:, :2 * n]), slack)):
        out, bonds, fields = np.zeros((C, n), np.int8), np.zeros(C), np.zeros(C)
        refined = kernel.block_heat_bath(r_used, digits_used, scale, sl, a2, src, h, kh, beta, np.uint64(11),
                                         np.uint64(1000), 0, out, bonds, fields, np.zeros(n + 8, np.uint8))
        outs.append((out, fields, refined))
    assert np.array_equal(outs[0][0], outs[1][0]) and np.array_equal(outs[0][1], outs[1][1])
    if slack_scale > 1:
        assert outs[1][2] == C * n  # every draw redone
    else:
        assert 0 < outs[1][2] < C * n // 20


def test_block_workers_are_processes_that_stop_and_restart():
    """Two workers: the second is a forked process; close() stops it, the next chunk
    starts a new one, and the chains are those of one worker all along."""
    couplings, J, h = _layered([70, 66, 64], 31, fields=True)
    temps = np.geomspace(0.5, 2.0, 3)
    one = FixedPointBlockSampler(couplings, temps, 2, 5, None, workers=1)
    two = FixedPointBlockSampler(couplings, temps, 2, 5, None, workers=2)
    out1, _ = _chunk(one, 10)
    out2, _ = _chunk(two, 10)
    (child,) = two._pool.procs
    assert child.is_alive() and child.pid != os.getpid()
    two.close()
    assert not child.is_alive() and two._pool is None
    out1b, _ = _chunk(one, 7, parity=1)
    out2b, _ = _chunk(two, 7, parity=1)  # a new worker process
    two.close()
    for a, b in ((out1, out2), (out1b, out2b)):
        for key in "EMQ":
            assert np.array_equal(a[key], b[key]), key
    assert np.array_equal(one.sigma[0], two.sigma[0]) and np.array_equal(one.sigma[1], two.sigma[1])
    assert one.refined == two.refined


def test_a_worker_process_that_dies_is_reported_not_waited_for():
    couplings, J, h = _layered([70, 66, 64], 32)
    s = FixedPointBlockSampler(couplings, np.array([0.5, 1.0]), 2, 0, None, workers=2)
    s.run_chunk(2, 0, np.zeros(1, dtype=np.int64))
    (child,) = s._pool.procs
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=10)
    with pytest.raises(RuntimeError, match="worker 1 exited"):
        s.run_chunk(5, 0, np.zeros(1, dtype=np.int64))
    s.run_chunk(3, 0, np.zeros(1, dtype=np.int64))  # a fresh worker takes over
    s.close()


def test_a_meeting_runs_its_action_before_anyone_goes_on():
    """Worker 0's action at meeting k (writing k to shared memory) is seen by the other
    process right after that meeting, for 2,000 meetings in a row."""
    from qnnc.runtime.atomic_flags import Meeting
    from qnnc.runtime.replicas_workers import WorkerProcesses, shared_array

    meeting = Meeting(shared_array((Meeting.flags_for(2),), np.int64), 2)
    board, seen = shared_array((1,), np.int64), shared_array((2000,), np.int64)

    def child(w, n, base, _):
        for k in range(1, n + 1):
            meeting.wait(w, k)
            seen[k - 1] = board[0]

    pool = WorkerProcesses(meeting, child)
    try:
        pool.start(2000, 0, 0)
        for k in range(1, 2001):
            meeting.wait(0, k, lambda k=k: board.__setitem__(0, k))
        pool.close()  # the child's last write follows its last meeting: close() waits for it to exit
    finally:
        pool.close()
    assert np.array_equal(seen, np.arange(1, 2001))


def _workers_in_a_daemon(queue):
    couplings, J, h = _layered([70, 66, 64], 33)
    s = FixedPointBlockSampler(couplings, np.array([0.5, 1.0]), 2, 0, None, workers=2)
    s.run_chunk(2, 0, np.zeros(1, dtype=np.int64))
    queue.put(s.workers)


def test_a_daemonic_process_runs_one_worker():
    """A daemonic process (a Dask or multiprocessing pool worker) may not fork: the
    sampler runs one worker there instead of failing. (The daemon is spawned, as Dask's
    are: a fork of this test process could inherit torch's OpenMP pool mid-use.)"""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_workers_in_a_daemon, args=(queue,), daemon=True)
    proc.start()
    workers = queue.get(timeout=120)
    proc.join(timeout=30)
    assert workers == 1 and proc.exitcode == 0
