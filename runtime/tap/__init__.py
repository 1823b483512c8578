"""TAP analysis of an Ising model (see `qnnc.runtime.tap.tc` for now)."""

from qnnc.runtime.tap.tc import (
    EDGE_UNITS, Couplings, Outlier, PowerLawFit, SpectrumReport, TapResult, TcResult, analytic_tc,
    bulk_edge, finite_size_tolerance, fit_power_law, hessian_tc, outlier_tc, plefka_tc, solve_tap,
    spectral_outliers,
)
