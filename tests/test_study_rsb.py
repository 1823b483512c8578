"""The glass study's analysis (examples/study_rsb.py): the crossing estimators on curves
whose crossing is known, the overlap density against the binomial law, and the
two-estimator energy identity the SK equilibration check rests on, against exact
enumeration over disorder samples."""

from __future__ import annotations

import importlib.util
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("study_rsb", Path(__file__).parents[1] / "examples" / "study_rsb.py")
study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)


def _curve(T, tc, n, coef=(0.25, -0.3, 0.02, 0.01)):
    """A finite-size-scaling Binder curve G((T / tc − 1) N^(1/3)), G a cubic."""
    x = (np.asarray(T) / tc - 1.0) * n ** (1 / 3)
    return coef[0] + coef[1] * x + coef[2] * x ** 2 + coef[3] * x ** 3


def test_the_fitted_crossing_finds_where_two_curves_cross():
    T = np.array(study.SK_TEMPS)
    for tc in (0.9, 0.97, 1.0, 1.08):
        assert study.fitted_crossing(T, _curve(T, tc, 64, (0.25, -0.3, 0.0, 0.0)),
                                     _curve(T, tc, 128, (0.25, -0.3, 0.0, 0.0)), 1.0) == pytest.approx(tc, abs=1e-9)
    # no sign change inside the window: no crossing, not a number outside it
    assert math.isnan(study.fitted_crossing(T, 0.5 - 0.1 * T, 0.4 - 0.1 * T, 1.0))


def test_the_scaling_fit_recovers_tc_from_all_sizes():
    T = np.array(study.SK_TEMPS)
    curves = [(n, T, _curve(T, 0.96, n), np.full(T.size, 0.01)) for n in (64, 128, 256, 512)]
    tc, chi2 = study.scaling_tc(curves, 1.0)
    assert tc == pytest.approx(0.96, abs=2e-4) and chi2 < 1e-6


def test_the_overlap_density_is_the_binomial_law_without_aliasing():
    # Two independent uniform configurations: the Hamming distance is Binomial(N, ½), q ≈ N(0, 1/N).
    n = 64
    edges = np.linspace(-1, 1, study.Q_BINS + 1)
    d = np.arange(n + 1)
    mass = np.array([math.comb(n, k) for k in d]) / 2.0 ** n
    prob = np.histogram(1 - 2 * d / n, bins=edges, weights=mass)[0]
    dens = study.overlap_density(prob, edges, n)
    centres = 0.5 * (edges[1:] + edges[:-1])
    near = np.abs(centres) < 0.15
    # Each bin's density is the mean pmf of the values it holds over their spacing 2/N:
    # the Gaussian density at their mean, within a few per cent; dividing by the bin
    # width instead (aliasing: bins hold 1 or 2 values) is off by up to ~40 %.
    values = 1 - 2 * d / n
    held = [values[(values >= a) & (values < b)] for a, b in zip(edges[:-1], edges[1:])]
    want = np.array([np.mean(np.exp(-n * v ** 2 / 2) * math.sqrt(n / (2 * math.pi))) if v.size else np.nan
                     for v in held])
    assert np.allclose(dens[near], want[near], rtol=0.05)
    naive = prob / np.diff(edges)
    assert np.max(np.abs(naive[near] / want[near] - 1)) > 0.2
    assert np.sum(dens * np.diff(edges)) == pytest.approx(1.0, abs=0.05)


def test_the_two_energy_estimators_agree_on_the_disorder_average():
    """Gaussian couplings J_ij ~ N(0, 1/N): integration by parts gives [E]/N = −(β/2)(1 − [⟨q²⟩])
    exactly (Katzgraber, Palassini, Young 2001); each sample alone does not satisfy it.
    Exact enumeration of 400 SK samples of 8 spins at T = 0.6."""
    n, beta, samples = 8, 1 / 0.6, 400
    S = np.array(list(itertools.product([1.0, -1.0], repeat=n)))
    diffs = []
    for k in range(samples):
        J = study.sk_couplings(n, k, 123)
        E = -0.5 * np.einsum("si,ij,sj->s", S, J, S)
        p = np.exp(-beta * (E - E.min()))
        p /= p.sum()
        C = S.T @ (p[:, None] * S)
        q2 = (C ** 2).sum() / n ** 2
        diffs.append(p @ E / n + 0.5 * beta * (1 - q2))
    diffs = np.array(diffs)
    sem = diffs.std(ddof=1) / math.sqrt(samples)
    assert abs(diffs.mean()) < 4 * sem
    assert diffs.std() > 10 * sem  # per sample it does not hold: the test has power
