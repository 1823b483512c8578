"""TAP analysis: the acceptance points of the spin-model spec (design/spin-models.md).

Tolerances are finite-size statements, explained where they are used."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.ising import from_weights
from qnnc.runtime.tap import (
    analytic_tc, bulk_edge, finite_size_tolerance, fit_power_law, hessian_tc, outlier_tc,
    plefka_tc, solve_tap, spectral_outliers,
)
from qnnc.runtime.tap.couplings import _couplings
from qnnc.runtime.tap.solutions import _TapSystem


def random_layered_model(sizes, gain=1.0, seed=0):
    """Weights W_k ~ N(0, C / N_{k−1}), torch layout [N_k, N_{k−1}]."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0.0, math.sqrt(gain / sizes[k - 1]), (sizes[k], sizes[k - 1]))
               for k in range(1, len(sizes))]
    return from_weights(weights, [f"l{k}" for k in range(len(sizes))])


def sk_couplings(n, seed):
    """J_ij ~ N(0, 1/N), symmetric, zero diagonal."""
    rng = np.random.default_rng(seed)
    G = np.triu(rng.normal(0.0, 1.0 / math.sqrt(n), (n, n)), 1)
    return G + G.T


def code_of(excinfo) -> str:
    return excinfo.value.diagnostics[0].code


# --------------------------------------------------------------------------- analytic T_c


def test_analytic_tc_reproduces_the_numbers_of_the_spec():
    ratios = {1: 1.0000, 2: 1.1892, 3: 1.2720, 4: 1.3161, 5: 1.3424, 10: 1.3899}
    for L, r in ratios.items():
        assert analytic_tc([300] * (L + 1), 1.0) == pytest.approx(r, abs=5e-5)
        assert analytic_tc([300] * (L + 1), 2.0) == pytest.approx(r * math.sqrt(2.0), abs=1e-4)
        assert analytic_tc([300] * (L + 1), 1.0) == pytest.approx(math.sqrt(2 * math.cos(math.pi / (L + 2))))
    assert analytic_tc([784, 512, 512, 10], 1.0) == pytest.approx(1.1359, abs=5e-5)
    assert analytic_tc([784, 256, 128, 10], 1.0) == pytest.approx(0.9673, abs=5e-5)
    assert analytic_tc([784, 100, 100, 10], [1.0, 1.0, 1.0]) == pytest.approx(1.0503, abs=5e-5)


# --------------------------------------------------------------------------- (1) random layered networks

LAYERED = [([500, 500], "L=1"), ([340, 340, 340], "L=2"), ([250, 250, 250, 250], "L=3"),
           ([784, 512, 512, 10], "784-512-512-10")]


@pytest.mark.parametrize("sizes", [s for s, _ in LAYERED], ids=[i for _, i in LAYERED])
def test_hessian_tc_of_random_networks_matches_the_layered_sk_value(sizes):
    model = random_layered_model(sizes, seed=0)
    res = hessian_tc(model)
    # A random instance is a glass: λ_min(A) only touches zero.
    assert res.kind == "touch" and res.converged
    assert res.lam_min_min > -res.touch_tol
    assert res.tc == pytest.approx(analytic_tc(sizes, 1.0), rel=0.02)
    assert res.phase_at(1.1 * res.tc) == "paramagnet" and res.phase_at(0.9 * res.tc) == "spin glass"
    # The argmin rule sits higher by the finite-size gap λ* = min λ_min: in the one-mode
    # picture λ_min ≈ 1 − βΛ + β² d̄, argmin/stability = (1 − λ*)^(−1/2) exactly; the
    # mode rotates between the two β (about 1 % apart), a second-order effect.
    assert res.tc_argmin / res.tc_stability == pytest.approx((1 - res.lam_min_min) ** -0.5, rel=1e-3)
    # The curve is certified: Ritz values are upper bounds with a bracket below.
    assert np.all(res.lam_min_lower <= res.lam_min + 1e-12)
    json.dumps(res.to_json_dict(), allow_nan=False)


def test_hessian_tc_of_sherrington_kirkpatrick_is_one():
    res = hessian_tc(sk_couplings(2000, seed=1))
    assert res.kind == "touch"
    assert res.tc == pytest.approx(1.0, rel=0.03)
    # The spec's rule (argmin of λ_min) also lands within 3 % at this size.
    assert res.tc_argmin == pytest.approx(1.0, rel=0.03)
    assert res.plefka_tc == pytest.approx(1.0, rel=0.03)


def test_random_spectrum_has_no_outlier_and_edge_is_marchenko_pastur():
    sizes = [784, 512]
    model = random_layered_model(sizes, seed=3)
    # One rectangular block: the edge is sqrt(C_hat / N0) (sqrt(N0) + sqrt(N1)), C_hat
    # the measured gain (exact for the block-variance model the edge is computed from).
    c_hat = model.gains()[0]
    mp = math.sqrt(c_hat / 784) * (math.sqrt(784) + math.sqrt(512))
    assert bulk_edge(model) == pytest.approx(mp, rel=1e-6)
    rep = spectral_outliers(model, k=4)
    assert not rep.has_outlier
    # The top eigenvalue sits at the edge within the Tracy–Widom scale.
    assert abs(rep.eigenvalues[0] - rep.bulk_edge) < rep.bulk_edge * finite_size_tolerance(model.n_spins)
    assert bulk_edge(sk_couplings(400, seed=0)) == pytest.approx(
        2 * math.sqrt(np.mean((sk_couplings(400, seed=0) ** 2).sum(axis=1))), rel=1e-12)


# --------------------------------------------------------------------------- (3) exact enumeration


def exact_magnetisations(J, beta_h, beta):
    n = J.shape[0]
    S = np.array(list(itertools.product([-1.0, 1.0], repeat=n)))
    minus_beta_E = beta * 0.5 * np.einsum("bi,ij,bj->b", S, J, S) + S @ beta_h
    w = np.exp(minus_beta_E - minus_beta_E.max())
    return (w / w.sum()) @ S


def third_order_correction(J, m, beta, beta_h):
    """δm₃ = (βH)⁻¹ δf₃: the magnetisation change from the third-order Plefka term
    (2β³/3) Σ_{i<j} J_ij³ m_i u_i m_j u_j + β³ Σ_{i<j<k} J_ij J_jk J_ki u_i u_j u_k,
    u = 1 − m² (Georges & Yedidia 1991), which TAP leaves out."""
    u = 1.0 - m * m
    U = np.diag(u)
    df3 = (2 * beta**3 / 3) * (1 - 3 * m * m) * ((J**3) @ (m * u)) - beta**3 * m * np.diag(J @ U @ J @ U @ J)
    system = _TapSystem(_couplings(J), beta, beta_h / beta)
    return np.linalg.solve(system.hessian(m), df3)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(n=st.integers(4, 12), seed=st.integers(0, 2**31 - 1))
def test_tap_agrees_with_exact_enumeration_to_second_order(n, seed):
    """TAP is the Plefka expansion to second order in βJ, so m_exact − m_TAP is the
    third-order term δm₃ to leading order, with an O(ε⁴) remainder, ε = β max_i Σ_j |J_ij|
    the coupling strength. At ε = 0.3 the remainder must be smaller than δm₃ itself
    (hence |error| ≤ 2 |δm₃|); on 150 random instances it was at most 0.42 |δm₃|, and its
    median halves with ε (0.16, 0.08, 0.045 at ε = 0.6, 0.3, 0.15). Fields βh ~ N(0, 0.5²)."""
    rng = np.random.default_rng(seed)
    J = sk_couplings(n, seed)
    beta = 0.3 / np.abs(J).sum(axis=1).max()
    beta_h = rng.normal(0.0, 0.5, n)
    res = solve_tap(J, 1.0 / beta, starts=4, fields=beta_h / beta, seed=seed)
    assert res.n_solutions == 1  # high temperature: a single TAP solution
    m = res.solutions[0]
    error = exact_magnetisations(J, beta_h, beta) - m
    third = third_order_correction(J, m, beta, beta_h)
    assert np.abs(error - third).max() <= np.abs(third).max()
    assert np.abs(error).max() <= 2.0 * np.abs(third).max()


def test_tap_error_is_third_order_in_beta():
    """Halving βJ (βh fixed) cuts the TAP error ~8× (O(β³)), naive mean field's ~4×."""
    n = 12
    J = sk_couplings(n, seed=3)
    beta_h = np.random.default_rng(3).normal(0.0, 0.5, n)
    betas = np.array([0.2, 0.1, 0.05])
    tap_err, nmf_err = [], []
    for beta in betas:
        exact = exact_magnetisations(J, beta_h, beta)
        res = solve_tap(J, 1.0 / beta, starts=2, fields=beta_h / beta, seed=0)
        tap_err.append(np.abs(res.solutions[0] - exact).max())
        m = np.zeros(n)
        for _ in range(500):  # naive mean field: m = tanh(βJm + βh), no Onsager term
            m = 0.5 * m + 0.5 * np.tanh(beta * J @ m + beta_h)
        nmf_err.append(np.abs(m - exact).max())
    tap_slope = np.polyfit(np.log(betas), np.log(tap_err), 1)[0]
    nmf_slope = np.polyfit(np.log(betas), np.log(nmf_err), 1)[0]
    assert tap_slope == pytest.approx(3.0, abs=0.4)
    assert nmf_slope == pytest.approx(2.0, abs=0.4)
    assert tap_err[0] / tap_err[1] > 6 and tap_err[1] / tap_err[2] > 6


# --------------------------------------------------------------------------- (4) planted pattern


@pytest.fixture(scope="module")
def planted():
    """SK couplings plus a Mattis pattern θ ξξᵀ/N (ξ_i = ±1): a rank-one Λ v vᵀ with v = ξ/√N.
    The outlier of J sits at θ + 1/θ, and T_c = θ (SK's ferromagnetic transition)."""
    n, theta = 1000, 3.0
    rng = np.random.default_rng(7)
    xi = rng.choice([-1.0, 1.0], n)
    J = sk_couplings(n, seed=7) + theta * np.outer(xi, xi) / n
    np.fill_diagonal(J, 0.0)
    return J, xi, theta, hessian_tc(J)


def test_planted_pattern_orders_at_the_outlier_temperature(planted):
    J, xi, theta, res = planted
    assert res.kind == "cross" and res.lam_min_min < -res.touch_tol
    spec = spectral_outliers(J, k=3)
    assert len(spec.outliers) == 1
    out = spec.outliers[0]
    assert res.tc == pytest.approx(outlier_tc(out.eigenvalue, out.dbar), rel=0.03)
    assert res.tc == pytest.approx(theta, rel=0.03)
    assert res.phase_at(0.8 * res.tc) == "hidden order"


def test_planted_pattern_gives_one_aligned_tap_solution(planted):
    J, xi, theta, res_tc = planted
    tc = res_tc.tc
    # At T = 2/3 T_c the replica-symmetric cavity prediction of the alignment is 0.98.
    res = solve_tap(J, 2.0 * tc / 3.0, starts=64, seed=1)
    assert res.n_solutions == 1
    m = res.solutions[0]
    assert abs(m @ xi) / (np.linalg.norm(m) * math.sqrt(len(xi))) > 0.9
    assert res.top_overlap[0] > 0.9
    assert res.residual[0] < 1e-8 and res.plefka_general[0] < 1
    assert res.basin_counts.sum() + res.n_not_converged + res.n_rejected_hessian + res.n_rejected_plefka == 64
    json.dumps(res.to_json_dict(), allow_nan=False)
    # Above T_c only the paramagnet remains.
    hot = solve_tap(J, 1.2 * tc, starts=16, seed=2)
    assert hot.n_solutions == 1 and hot.paramagnetic[0] and hot.q_ea[0] == 0.0


def test_glass_layers_report_edwards_anderson_per_layer():
    model = random_layered_model([60, 40, 20], gain=1.0, seed=5)
    hot = solve_tap(model, 3.0, starts=8, seed=0)
    assert hot.n_solutions == 1 and hot.paramagnetic[0]
    assert hot.q_layers.shape == (1, 3) and not hot.q_layers.any()
    assert hot.plefka[0] == pytest.approx(1 / 9)  # β² at m = 0
    assert hot.plefka_general[0] == pytest.approx((plefka_tc(model) / 3.0) ** 2, rel=1e-6)


# --------------------------------------------------------------------------- power law


def test_power_law_fit_recovers_exponent_and_window():
    rng = np.random.default_rng(0)
    t = np.array([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000], dtype=float)
    noise = 0.01
    exponents, errors = [], []
    for _ in range(40):
        tc = 1.1 * t**0.3 * np.exp(rng.normal(0.0, noise, t.size))
        fit = fit_power_law(t, tc, window=(1, 5000))
        exponents.append(fit.exponent)
        errors.append(fit.exponent_stderr)
    # The reported standard error matches the scatter of the estimate.
    assert np.std(exponents) == pytest.approx(np.mean(errors), rel=0.35)
    assert np.mean(exponents) == pytest.approx(0.3, abs=3 * np.std(exponents) / math.sqrt(40))
    # A saturating tail is left out of the automatic window.
    tc = np.minimum(1.1 * t**0.3, 1.1 * 300**0.3) * np.exp(rng.normal(0.0, 1e-3, t.size))
    fit = fit_power_law(np.r_[0.0, t], np.r_[1.0, tc])
    assert fit.automatic and fit.window[1] <= 500 and fit.window[0] == 1.0
    assert fit.exponent == pytest.approx(0.3, abs=5 * fit.exponent_stderr + 1e-3)
    assert fit.predict(10.0) == pytest.approx(1.1 * 10**0.3, rel=0.01)
    json.dumps(fit.to_json_dict(), allow_nan=False)
    # Three points: no curvature test possible (reported as null), errors still defined.
    three = fit_power_law([1.0, 10.0, 100.0], [1.0, 2.1, 3.9], window=(1, 100))
    assert math.isnan(three.curvature) and three.exponent_stderr > 0
    assert json.loads(json.dumps(three.to_json_dict(), allow_nan=False))["curvature"] is None


# --------------------------------------------------------------------------- (5) bad input


def test_bad_input_gives_diagnostics():
    J = sk_couplings(20, seed=0)
    bad = J.copy()
    bad[2, 3] = bad[3, 2] = np.nan
    for call in (lambda: hessian_tc(bad), lambda: solve_tap(bad, 1.0)):
        with pytest.raises(QnncError) as e:
            call()
        assert code_of(e) == "Q0609"
    asym = J.copy()
    asym[0, 1] += 1.0
    with pytest.raises(QnncError) as e:
        hessian_tc(asym)
    assert code_of(e) == "Q0607"
    with pytest.raises(QnncError) as e:
        hessian_tc(J[:5])
    assert code_of(e) == "Q0607"
    with pytest.raises(QnncError) as e:
        hessian_tc(J + np.eye(20))
    assert code_of(e) == "Q0608"
    with pytest.raises(QnncError) as e:
        hessian_tc(J, layer_sizes=[10, 5])
    assert code_of(e) == "Q0619"
    for T in (0.0, -1.0, float("nan")):
        with pytest.raises(QnncError) as e:
            solve_tap(J, T)
        assert code_of(e) == "Q0610"
    with pytest.raises(QnncError) as e:
        solve_tap(J, 1.0, damping=1.5)
    assert code_of(e) == "Q0611"
    with pytest.raises(QnncError) as e:
        solve_tap(J, 1.0, fields=np.ones(3))
    assert code_of(e) == "Q0612"
    # From weights: a NaN weight, and shapes that do not chain.
    rng = np.random.default_rng(0)
    w = [rng.normal(size=(4, 6)), rng.normal(size=(3, 4))]
    w_nan = [w[0].copy(), w[1]]
    w_nan[0][0, 0] = np.nan
    with pytest.raises(QnncError) as e:
        from_weights(w_nan, ["a", "b", "c"])
    assert code_of(e) == "Q0603"
    with pytest.raises(QnncError) as e:
        from_weights([w[0], rng.normal(size=(3, 5))], ["a", "b", "c"])
    assert code_of(e) == "Q0602"
    with pytest.raises(QnncError) as e:
        analytic_tc([784, 512], [1.0, 1.0])
    assert code_of(e) == "Q0616"
    with pytest.raises(QnncError) as e:
        outlier_tc(3.0, -1.0)
    assert code_of(e) == "Q0618"
    assert math.isnan(outlier_tc(1.0, 1.0))  # inside the bulk: no transition from it
    with pytest.raises(QnncError) as e:
        fit_power_law([1, 2], [1.0, 2.0, 3.0])
    assert code_of(e) == "Q0613"
    with pytest.raises(QnncError) as e:
        fit_power_law([1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0], window=(10, 20))
    assert code_of(e) == "Q0614"


def test_sparse_storage_gives_the_same_answers(monkeypatch):
    """Above DENSE_MAX_SPINS J stays in CSR (and Newton uses a sparse solve): force that
    path on a small planted system and compare with the dense one."""
    import qnnc.runtime.tap.couplings as tap  # _couplings reads DENSE_MAX_SPINS here

    n, theta = 400, 2.5
    rng = np.random.default_rng(11)
    xi = rng.choice([-1.0, 1.0], n)
    J = sk_couplings(n, seed=11) + theta * np.outer(xi, xi) / n
    np.fill_diagonal(J, 0.0)
    dense_tc = hessian_tc(J)
    dense_tap = solve_tap(J, 0.7 * dense_tc.tc, starts=8, seed=0)
    monkeypatch.setattr(tap, "DENSE_MAX_SPINS", 0)
    sparse_tc = hessian_tc(J)
    sparse_tap = solve_tap(J, 0.7 * dense_tc.tc, starts=8, seed=0)
    assert tap._couplings(J).dense is None
    assert sparse_tc.kind == dense_tc.kind == "cross"
    assert sparse_tc.tc == pytest.approx(dense_tc.tc, rel=1e-6)
    assert sparse_tap.n_solutions == dense_tap.n_solutions == 1
    assert abs(sparse_tap.overlaps[0, 0]) == 1.0
    m_dense, m_sparse = dense_tap.solutions[0], sparse_tap.solutions[0]
    assert abs(m_dense @ m_sparse) / (m_dense @ m_dense) == pytest.approx(1.0, abs=1e-6)


def test_model_fields_are_used_by_default():
    rng = np.random.default_rng(2)
    sizes = [8, 6, 4]
    weights = [rng.normal(0, 0.3, (sizes[k], sizes[k - 1])) for k in (1, 2)]
    biases = [rng.normal(0, 1.0, sizes[1]), rng.normal(0, 1.0, sizes[2])]
    model = from_weights(weights, ["a", "b", "c"], biases, fields=True)
    with_fields = solve_tap(model, 2.0, starts=4)
    without = solve_tap(model, 2.0, starts=4, fields=False)
    assert with_fields.n_solutions == 1 and not with_fields.paramagnetic[0]
    assert without.n_solutions == 1 and without.paramagnetic[0]
    # Fields polarise the biased layers; the input layer follows through the bonds only.
    np.testing.assert_allclose(with_fields.solutions[0],
                               solve_tap(model.sparse().toarray(), 2.0, starts=4, fields=model.h).solutions[0],
                               atol=1e-9)


def test_no_bonds_is_a_paramagnet():
    res = hessian_tc(np.zeros((5, 5)))
    assert res.kind == "none" and res.tc == 0.0 and res.phase_at(0.01) == "paramagnet"
