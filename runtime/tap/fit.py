"""Power-law fit of T_c over training time: `fit_power_law(t, tc)` fits
T_c(t) − offset = A t^α over a chosen or automatically found window (a `PowerLawFit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from qnnc.compiler.diagnostics import error
from qnnc.runtime.tap.couplings import _json_number


@dataclass(frozen=True)
class PowerLawFit:
    """T_c(t) − offset = A t^α fitted by least squares on log–log axes over `window`.

    Standard errors come from the covariance of that fit, σ²(XᵀX)⁻¹ with σ² the
    residual variance (n − 2 degrees of freedom). `curvature` is the quadratic
    coefficient of a log–log fit over the same window, with its standard error: a
    significant curvature means the power law does not hold there (e.g. saturation)."""

    exponent: float
    exponent_stderr: float
    amplitude: float
    amplitude_stderr: float
    window: tuple[float, float]  # (t_first, t_last) of the points used
    indices: tuple[int, ...]  # positions of those points in the input
    n_points: int
    rms_log_residual: float
    curvature: float
    curvature_stderr: float
    offset: float
    automatic: bool  # window chosen by `fit_power_law`

    def predict(self, t) -> np.ndarray:
        return self.offset + self.amplitude * np.asarray(t, dtype=np.float64) ** self.exponent

    def to_json_dict(self) -> dict:
        num = _json_number
        return {"exponent": num(self.exponent), "exponent_stderr": num(self.exponent_stderr),
                "amplitude": num(self.amplitude), "amplitude_stderr": num(self.amplitude_stderr),
                "window": list(self.window), "n_points": self.n_points,
                "rms_log_residual": num(self.rms_log_residual), "curvature": num(self.curvature),
                "curvature_stderr": num(self.curvature_stderr), "offset": self.offset, "automatic": self.automatic}


def _loglog_fit(x: np.ndarray, y: np.ndarray, degree: int):
    """Least squares y ≈ Σ c_k x^k; returns (coefficients low→high, their covariance, rms)."""
    X = np.vander(x, degree + 1, increasing=True)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = x.size - (degree + 1)
    sigma2 = float(resid @ resid) / dof if dof > 0 else float("nan")
    cov = sigma2 * np.linalg.inv(X.T @ X)
    return coef, cov, float(np.sqrt(np.mean(resid * resid)))


# Curvature below this (in ln T per (ln t)², over the whole window) is numerically zero.
_CURVATURE_FLOOR = 1e-9


def fit_power_law(t: Sequence[float], tc: Sequence[float], window: Optional[tuple[float, float]] = None, *,
                  offset: float = 0.0, min_points: int = 5, significance: float = 2.0) -> PowerLawFit:
    """Fit tc(t) − offset = A t^α. Points with t ≤ 0 (e.g. step 0) are left out.

    `window=(t_lo, t_hi)` fits the points with t_lo ≤ t ≤ t_hi (at least 3). Without it
    the window is chosen: among all runs of ≥ `min_points` consecutive points, those
    whose log–log curvature is not significant (|c₂| < `significance` × its standard
    error) are power-law windows; the longest wins, ties going to the smaller standard
    error of α. (A saturating tail or an early transient adds significant curvature.)"""
    t_arr = np.asarray(t, dtype=np.float64).reshape(-1)
    y_arr = np.asarray(tc, dtype=np.float64).reshape(-1)
    if t_arr.shape != y_arr.shape:
        raise error("Q0613", f"{t_arr.size} times but {y_arr.size} T_c values")
    if not (np.all(np.isfinite(t_arr)) and np.all(np.isfinite(y_arr)) and math.isfinite(offset)):
        raise error("Q0613", "times and T_c values must be finite")
    order = np.argsort(t_arr, kind="stable")
    keep = order[t_arr[order] > 0]
    x_all, y_all = t_arr[keep], y_arr[keep] - offset
    if np.any(y_all <= 0):
        raise error("Q0613", "T_c − offset must be positive at every t > 0 to fit a power law",
                    help="lower the offset (the baseline subtracted from T_c)")
    if x_all.size < 3 or np.unique(x_all).size < 2:
        raise error("Q0613", f"{x_all.size} points with t > 0: a power-law fit needs at least 3 at distinct times")
    lx, ly = np.log(x_all), np.log(y_all)

    def fit(sel: np.ndarray, automatic: bool) -> PowerLawFit:
        coef, cov, rms = _loglog_fit(lx[sel], ly[sel], 1)
        if sel.size >= 4:
            c2, cov2, _ = _loglog_fit(lx[sel] - lx[sel].mean(), ly[sel], 2)
            curv, curv_se = float(c2[2]), float(math.sqrt(max(cov2[2, 2], 0.0)))
        else:
            curv, curv_se = float("nan"), float("nan")
        amp = float(np.exp(coef[0]))
        return PowerLawFit(float(coef[1]), float(math.sqrt(max(cov[1, 1], 0.0))), amp,
                           amp * float(math.sqrt(max(cov[0, 0], 0.0))),
                           (float(x_all[sel[0]]), float(x_all[sel[-1]])), tuple(int(keep[i]) for i in sel),
                           int(sel.size), rms, curv, curv_se, float(offset), automatic)

    if window is not None:
        lo, hi = float(window[0]), float(window[1])
        sel = np.flatnonzero((x_all >= lo) & (x_all <= hi))
        if sel.size < 3 or np.unique(x_all[sel]).size < 2:
            raise error("Q0614", f"window [{lo:g}, {hi:g}] holds {sel.size} usable points; at least 3 are needed")
        return fit(sel, False)

    if min_points < 4:
        raise error("Q0611", f"min_points = {min_points}: a curvature test needs at least 4 points")
    n = x_all.size
    if n < min_points:
        raise error("Q0614", f"{n} points with t > 0, fewer than min_points = {min_points}",
                    help="pass window=(t_lo, t_hi) to fit a chosen range")
    best, best_key = None, None
    for i in range(n):
        for j in range(i + min_points, n + 1):
            sel = np.arange(i, j)
            if np.unique(x_all[sel]).size < 4:
                continue
            span = float(lx[sel[-1]] - lx[sel[0]])
            c2, cov2, _ = _loglog_fit(lx[sel] - lx[sel].mean(), ly[sel], 2)
            se = math.sqrt(max(cov2[2, 2], 0.0))
            straight = abs(c2[2]) <= significance * se or abs(c2[2]) * span * span < _CURVATURE_FLOOR
            if not straight:
                continue
            f = fit(sel, True)
            key = (f.n_points, -f.exponent_stderr)
            if best_key is None or key > best_key:
                best, best_key = f, key
    if best is None:
        raise error("Q0614", f"no run of ≥ {min_points} consecutive points follows a power law "
                    f"(log–log curvature significant at {significance}σ everywhere)",
                    help="pass window=(t_lo, t_hi) to force a range, or lower min_points")
    return best
