"""TAP analysis of an Ising model: transition temperature, spectrum, TAP solutions, fits.

Physics: design/spin-models.md (the spec); algorithms and choices: docs/spin-analysis.md.

By module:

  tc          analytic_tc(sizes, gains)   T_c of the random layered SK model, sqrt(λ_max(S))
              plefka_tc(J)                sqrt(λ_max(J∘J)): the instance's analytic T_c
              hessian_tc(J)               T_c of an instance from λ_min(A(β)),
                                          A = I − βJ + β² diag(d)
  spectrum    spectral_outliers(J)        top eigenvalues of J against the random-bulk edge
              bulk_edge(J)                that edge, from J's block variance profile
              outlier_tc(Λ, d̄)            [Λ + sqrt(Λ² − 4 d̄)] / 2
  solutions   solve_tap(J, T)             all TAP solutions reachable from random starts
  fit         fit_power_law(t, tc)        T_c(t) = A t^α over a (chosen or automatic) window
  couplings   finite_size_tolerance(n)    κ n^(−2/3): the edge-fluctuation scale behind
                                          every "is it zero?" decision here
  series      analyse_run(program, network, run_dir)
                                          all of the above over a training run's checkpoints

`J` is an `IsingModel`, a dense symmetric array, or a scipy sparse matrix.

Errors are `QnncError`s (via `qnnc.compiler.diagnostics.error`) with codes Q0601–Q0619,
listed in docs/diagnostics.md.
"""

from qnnc.runtime.tap.couplings import EDGE_UNITS, Couplings, finite_size_tolerance
from qnnc.runtime.tap.fit import PowerLawFit, fit_power_law
from qnnc.runtime.tap.series import analyse_run
from qnnc.runtime.tap.solutions import TapResult, solve_tap
from qnnc.runtime.tap.spectrum import Outlier, SpectrumReport, bulk_edge, outlier_tc, spectral_outliers
from qnnc.runtime.tap.tc import TcResult, analytic_tc, hessian_tc, plefka_tc

__all__ = [
    "EDGE_UNITS", "Couplings", "Outlier", "PowerLawFit", "SpectrumReport", "TapResult", "TcResult",
    "analyse_run", "analytic_tc", "bulk_edge", "finite_size_tolerance", "fit_power_law", "hessian_tc",
    "outlier_tc", "plefka_tc", "solve_tap", "spectral_outliers",
]
