"""TAP analysis over every checkpoint of a training run: the series behind `qnnc tap`.

For each checkpoint: T_c from the TAP Hessian, the top eigenvalues of J against the
random-bulk edge and, with a temperature, the number of distinct TAP solutions there.
Then a power-law fit of T_c(t) over training time.
"""

from __future__ import annotations

import math

from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.tap.fit import fit_power_law
from qnnc.runtime.tap.solutions import solve_tap
from qnnc.runtime.tap.spectrum import spectral_outliers
from qnnc.runtime.tap.tc import analytic_tc, hessian_tc


def analyse_run(program, network, run_dir, temperature=None, starts=128, window=None, progress=True,
                device=None) -> dict:
    """The `qnnc-tap-series` record of `network`'s run in `run_dir` (what `qnnc tap`
    prints, plots and writes). A failed fit is reported in `power_law_error`; the
    series is kept. `device`: where the TAP solver's batched iteration runs (`solve_tap`);
    T_c and the spectrum are sparse eigen-solves on the host."""
    # Imported on call: importing the tap package stays numpy/scipy only, and spin
    # itself imports this package inside its functions.
    from qnnc.runtime import checkpoint as ckpt
    from qnnc.runtime.spin import ising_model, load_weights

    steps = ckpt.list_checkpoints(run_dir)
    if not steps:
        ckpt.resolve_checkpoint(run_dir, None)  # raises the right diagnostic
    meta = ckpt.read_run_file(run_dir)
    spe = meta.get("steps_per_epoch")
    iterator = steps
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(steps, unit="checkpoint", desc="tap", leave=False)
        iterator = bar
    series = []
    analytic = None
    for step in iterator:
        nw = load_weights(program, network, run_dir, step, 0)
        model = ising_model(nw)
        tc = hessian_tc(model)
        spec = spectral_outliers(model)
        row = {"step": step, "epoch": step / spe if spe else None, "tc": tc.tc, "kind": tc.kind,
               "tc_argmin": tc.tc_argmin, "lam_min_min": tc.lam_min_min,
               "top_eigenvalues": [float(x) for x in spec.eigenvalues], "bulk_edge": spec.bulk_edge,
               "n_outliers": len(spec.outliers),
               "outlier_tc": [o.tc if not math.isnan(o.tc) else None for o in spec.outliers]}
        if temperature is not None:
            sol = solve_tap(model, temperature, starts=starts, seed=step, device=device)
            row["tap"] = {"T": temperature, "n_solutions": sol.n_solutions,
                          "basin_counts": [int(x) for x in sol.basin_counts],
                          "q_layers": sol.q_layers.tolist(), "top_overlap": sol.top_overlap.tolist(),
                          "free_energy": sol.free_energy.tolist()}
        if step == 0 and analytic is None and all(math.isfinite(g) for g in nw.gains):
            analytic = analytic_tc(nw.sizes, nw.gains)
        series.append(row)
    if bar is not None:
        bar.close()
    fit = None
    fit_error = None
    pts = [(r["step"], r["tc"]) for r in series if r["step"] > 0]
    if len(pts) >= 3:
        try:
            f = fit_power_law([p[0] for p in pts], [p[1] for p in pts],
                              window=tuple(window) if window else None)
            fit = f.to_json_dict()
        except QnncError as exc:  # from the fit: report it, keep the series
            fit_error = exc.diagnostics[0].message
    return {"format": "qnnc-tap-series", "version": 1, "network": network.name, "run": str(run_dir),
            "analytic_tc_random": analytic, "series": series, "power_law": fit, "power_law_error": fit_error}
