"""Replica symmetry breaking: the glass study (docs/spin-results.md, "Replica symmetry
breaking: the glass").

Parallel tempering (`qnnc.runtime.replicas.run_replicas`) over many disorder samples of

* the Sherrington–Kirkpatrick model, J_ij ~ N(0, 1/N), N in --sk-sizes (the sequential
  single-spin heat-bath with incremental fields), T_c = 1 exactly;
* untrained layered networks with the layer ratios of examples/spin_binary.qnn
  (784:512:512:10, weights N(0, 1/fan_in) as declared there), scaled by 1/8 .. 1 (the
  block heat-bath), beside the analytic layered-SK T_c and the instances' TAP T_c.

Each sample's measurements are written to OUT/samples-{sk,layered}/SIZE-K.json as it
finishes (a run can be stopped and resumed: finished samples are skipped; several
processes can share OUT), then `--analyse` writes the disorder averages: Binder cumulants
g = ½(3 − [⟨q⁴⟩]/[⟨q²⟩]²), their crossings between consecutive sizes (a quadratic fit of
g_N − g_N' near T_c, bootstrap errors over disorder samples), the drift of the crossings
with N, the weight of P(q) at |q| < 0.2 at T = 0.5, the SK two-estimator energy check,
plots and OUT/summary.md. The part "eq" reruns the first EQ_SAMPLES SK samples of each
size with fewer sweeps (EQ_SWEEPS), so that the analysis shows how [⟨q²⟩] and the
two-estimator check converge with the number of sweeps.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python examples/study_rsb.py --out runs/study-rsb --parts sk --sk-sizes 64 128 256 &
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python examples/study_rsb.py --out runs/study-rsb --parts sk --sk-sizes 512 1024 &
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python examples/study_rsb.py --out runs/study-rsb --parts layered &
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python examples/study_rsb.py --out runs/study-rsb --parts eq
    .venv/bin/python examples/study_rsb.py --out runs/study-rsb --analyse
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

RATIOS = (784, 512, 512, 10)
# size: (sweeps, samples). Samples are run round-robin over the sizes (in proportion to
# their counts), so a run stopped early still has every size, with proportionally fewer
# samples. About 70 CPU-minutes for both parts (sk: ~48, layered: ~22) on one core.
SK_PLAN = {64: (2048, 1600), 128: (4096, 800), 256: (8192, 300), 512: (8192, 120), 1024: (4096, 80)}
# (The run in docs/spin-results.md started with 12288 sweeps for N = 512 (samples 0-9) and 8192 for
# N = 1,024 (samples 0-5); the part "eq" showed half as many enough, and the plan was cut.)
LAYERED_PLAN = {8: (2048, 1600), 4: (4096, 800), 2: (4096, 800), 1: (4096, 800)}  # divisor of the ratios
# The ladders are dense around T_c (the Binder crossings) and reach T = 0.5 (SK's P(q));
# N = 1,024 only serves the crossing, so it starts at 0.68 (16 temperatures, cheaper and
# faster to equilibrate).
SK_TEMPS = [0.50, 0.56, 0.62, 0.68, 0.74, 0.80, 0.85, 0.90, 0.94, 0.97, 1.00, 1.03, 1.06, 1.10, 1.15, 1.20,
            1.27, 1.35, 1.43, 1.50]
SK_T_MIN = {1024: 0.68}
LAYERED_TEMP_FACTORS = [0.80, 0.85, 0.89, 0.92, 0.95, 0.97, 0.99, 1.01, 1.03, 1.05, 1.08, 1.11, 1.15, 1.20,
                        1.26, 1.33]  # × the analytic T_c
EQ_SWEEPS = {64: (256, 512, 1024), 128: (512, 1024, 2048), 256: (1024, 2048, 4096), 512: (1536, 3072, 6144),
             1024: (1024, 2048, 4096)}  # with the plan's sweeps: four doublings
EQ_SAMPLES = 8
Q_BINS = 50  # edges at multiples of 0.04: |q| < 0.2 is five whole bins


def sk_couplings(n: int, sample: int, seed: int):
    rng = np.random.default_rng([seed, 1, n, sample])
    J = np.triu(rng.normal(0.0, 1.0 / math.sqrt(n), (n, n)), 1)
    return J + J.T


def layered_sizes(divisor: int) -> list[int]:
    return [max(1, round(r / divisor)) for r in RATIOS]


def layered_weights(sizes, sample: int, seed: int):
    """W_k of shape [N_k, N_{k-1}], N(0, 1/fan_in): the declared initialisation."""
    rng = np.random.default_rng([seed, 2, sum(sizes), sample])
    return [rng.normal(0.0, 1.0 / math.sqrt(a), (b, a)) for a, b in zip(sizes, sizes[1:])]


def run_sample(kind: str, size: int, sample: int, sweeps: int, seed: int) -> dict:
    import torch

    from qnnc.runtime.ising import IsingModel
    from qnnc.runtime.replicas import DenseCouplings, LayeredCouplings, run_replicas
    from qnnc.runtime.tap import analytic_tc, hessian_tc

    extra = {}
    t0 = time.perf_counter()
    if kind == "sk":
        temps = [t for t in SK_TEMPS if t >= SK_T_MIN.get(size, 0.0)]
        couplings = DenseCouplings(sk_couplings(size, sample, seed))
    else:
        sizes = layered_sizes(size)
        model = IsingModel.from_weights(layered_weights(sizes, sample, seed), [f"l{k}" for k in range(len(sizes))])
        tc = analytic_tc(sizes, 1.0)
        temps = [f * tc for f in LAYERED_TEMP_FACTORS]
        couplings = LayeredCouplings.from_model(model, dtype=torch.float32)
        extra = {"sizes": sizes, "analytic_tc": tc}
        if sample < 4:  # the instance's TAP T_c (a few instances: it costs eigensolves)
            extra["tap_tc"] = hessian_tc(model).tc
    res = run_replicas(couplings, temps, replicas=2, sweeps=sweeps, seed=seed * 100003 + sample, q_bins=Q_BINS)
    return {"kind": kind, "size": size, "n_spins": res.n_spins, "sample": sample, "sweeps": sweeps,
            "update": res.update, "temperatures": res.temperatures, "q2": res.q2, "q4": res.q4,
            "energy": res.energy, "p_q": res.p_q, "q_bins": res.q_bins,
            "acceptance": res.exchange_acceptance, "equilibrated": res.equilibrated,
            "min_p": res.equilibration.get("min_p"), "seconds": time.perf_counter() - t0, **extra}


def simulate(out: Path, parts, sk_sizes, layered_divisors, seed: int, scale: float) -> None:
    done = set()
    for r in _rows(out):
        done.add((r["kind"], r["size"], r["sample"]))
    jobs = []
    if "sk" in parts:
        jobs += [("sk", n, *SK_PLAN[n]) for n in sk_sizes]
    if "layered" in parts:
        jobs += [("layered", d, *LAYERED_PLAN[d]) for d in layered_divisors]
    queue = []
    for kind, size, sweeps, samples in jobs:
        samples = max(2, int(round(samples * scale)))
        queue += [((k + 1) / samples, kind, size, k, sweeps, samples) for k in range(samples)]
    if "eq" in parts:
        queue += [(-1.0, "eq", n, k, sw, EQ_SAMPLES) for n in sk_sizes for sw in EQ_SWEEPS[n]
                  for k in range(EQ_SAMPLES)]
    eq_done = {(r["size"], r["sweeps"], r["sample"]) for r in _rows(out, "equilibration")}
    for _, kind, size, k, sweeps, samples in sorted(queue, key=lambda j: j[0]):
        if (kind, size, k) in done or (kind == "eq" and (size, sweeps, k) in eq_done):
            continue
        r = run_sample("sk" if kind == "eq" else kind, size, k, sweeps, seed)
        folder = out / ("equilibration-sk" if kind == "eq" else f"samples-{kind}")
        folder.mkdir(exist_ok=True)
        stem = f"{size}-{sweeps}-{k:05d}" if kind == "eq" else f"{size}-{k:05d}"
        tmp = folder / f".{stem}.json.part"  # one file per finished sample, renamed whole
        tmp.write_text(json.dumps(r))
        tmp.replace(folder / f"{stem}.json")
        print(f"{kind} size {size} ({r['n_spins']} spins) sample {k + 1}/{samples}, {sweeps} sweeps: "
              f"{r['seconds']:.1f} s, equilibrated {r['equilibrated']}", flush=True)


def _rows(out: Path, what: str = "samples") -> list[dict]:
    """Every finished sample: OUT/samples-{sk,layered}/SIZE-K.json (one file per sample,
    so several processes can fill one folder); what="equilibration": the part "eq"."""
    pattern = "equilibration-sk/*.json" if what == "equilibration" else "samples-*/*.json"
    return [json.loads(path.read_text()) for path in sorted(out.glob(pattern))]


# --------------------------------------------------------------------------- analysis


def binder(q2: np.ndarray, q4: np.ndarray) -> np.ndarray:
    """Disorder average over axis 0: g = ½(3 − [⟨q⁴⟩]/[⟨q²⟩]²)."""
    return 0.5 * (3.0 - q4.mean(0) / q2.mean(0) ** 2)


def crossing(T, g1, g2):
    """The temperature where g1 − g2 changes sign (linear interpolation; the crossing
    nearest the middle of the ladder when there are several), or nan."""
    d = np.asarray(g1) - np.asarray(g2)
    idx = [i for i in range(len(T) - 1) if np.sign(d[i]) != np.sign(d[i + 1]) and np.isfinite(d[i] + d[i + 1])]
    if not idx:
        return float("nan")
    i = min(idx, key=lambda j: abs(j - len(T) / 2))
    return float(T[i] + (T[i + 1] - T[i]) * d[i] / (d[i] - d[i + 1]))


FIT_WINDOW = (0.8, 1.2)  # × the reference T_c: the temperatures the crossing fit uses
FIT_DEGREE = 2


def fitted_crossing(T, g1, g2, ref: float, degree: int = FIT_DEGREE):
    """The root of a least-squares polynomial (in T/ref − 1, degree 2) through g1 − g2 at
    the ladder's temperatures within FIT_WINDOW × ref; the root inside the window
    nearest ref, or nan when the fitted difference does not change sign there."""
    T = np.asarray(T, dtype=float)
    x = T / ref - 1.0
    keep = (x >= FIT_WINDOW[0] - 1 - 1e-9) & (x <= FIT_WINDOW[1] - 1 + 1e-9)
    d = (np.asarray(g1) - np.asarray(g2))[keep]
    if keep.sum() <= degree or not np.all(np.isfinite(d)):
        return float("nan")
    coef = np.polynomial.polynomial.polyfit(x[keep], d, degree)
    # (a vanishing leading coefficient would make the companion matrix ill-conditioned)
    roots = np.polynomial.polynomial.polyroots(np.polynomial.polynomial.polytrim(coef, 1e-12 * np.abs(coef).max()))
    lo, hi = x[keep].min(), x[keep].max()
    real = [r.real for r in np.atleast_1d(roots) if abs(r.imag) < 1e-12 and lo <= r.real <= hi]
    if not real:
        return float("nan")
    return float(ref * (1.0 + min(real, key=abs)))


def overlap_density(prob, edges, n: int) -> np.ndarray:
    """P(q) as a density from the probabilities per bin: q = σ_a·σ_b / N takes the N + 1
    values 1 − 2d/N (d the Hamming distance), 2/N apart, so a bin of width w holds
    either ⌊w N / 2⌋ or one more of them; dividing by the values a bin holds (× 2/N)
    instead of by w removes the zig-zag this aliasing gives small N."""
    values = 1.0 - 2.0 * np.arange(n + 1) / n
    held = np.histogram(values, bins=np.asarray(edges))[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(held > 0, np.asarray(prob) / (held * 2.0 / n), np.nan)


def scaling_tc(curves, ref: float, degree: int = 3) -> float:
    """T_c / ref from all sizes at once: the mean-field finite-size scaling form
    g_N(T) = G((T / T_c − 1) N^(1/3)), G a polynomial (degree 3), fitted by weighted
    least squares to every size's points within FIT_WINDOW × ref; curves: [(N, T, g,
    g_err)]. The common crossing of the curves, with their slopes used too. Returns
    (T_c / ref, χ² per degree of freedom)."""
    from scipy.optimize import minimize_scalar

    pts = []
    for n, T, g, e in curves:
        T, g, e = (np.asarray(x, dtype=float) for x in (T, g, e))
        keep = (T / ref >= FIT_WINDOW[0] - 1e-9) & (T / ref <= FIT_WINDOW[1] + 1e-9) & np.isfinite(g) & (e > 0)
        pts += [(n, t, y, w) for t, y, w in zip(T[keep], g[keep], e[keep])]
    n, T, g, e = (np.array(x) for x in zip(*pts))

    def cost(tc):
        x = (T / (tc * ref) - 1.0) * n ** (1 / 3)
        X = np.vander(x, degree + 1) / e[:, None]
        coef, *_ = np.linalg.lstsq(X, g / e, rcond=None)
        return float(((X @ coef - g / e) ** 2).sum())

    best = minimize_scalar(cost, bounds=FIT_WINDOW, method="bounded", options={"xatol": 1e-4})
    return float(best.x), float(best.fun) / (len(g) - degree - 2)


def _common(A, B, ref_a, ref_b):
    """Indices into A's and B's ladders of their common reduced temperatures T / T_ref
    (the layered family's analytic T_c differs by 0.04 % between sizes whose last layer
    rounds differently; the ladders are the same multiples of it)."""
    ta = {round(t / ref_a, 6): i for i, t in enumerate(A["T"])}
    pairs = [(ta[round(t / ref_b, 6)], j) for j, t in enumerate(B["T"]) if round(t / ref_b, 6) in ta]
    return np.array([p[0] for p in pairs], dtype=int), np.array([p[1] for p in pairs], dtype=int)


def _size_data(g, rng, n_boot):
    T = np.asarray(g[0]["temperatures"])
    q2 = np.array([r["q2"] for r in g])
    q4 = np.array([r["q4"] for r in g])
    e = np.array([r["energy"] for r in g])
    edges = np.asarray(g[0]["q_bins"])
    w = np.diff(edges)
    hist = np.array([np.asarray(r["p_q"]) * w for r in g])  # probabilities per bin [S, T, B]
    centres = 0.5 * (edges[1:] + edges[:-1])
    weight = hist[:, :, np.abs(centres) < 0.2].sum(-1)  # [S, T]
    boot = rng.integers(0, len(g), (n_boot, len(g)))
    gb = np.array([binder(q2[i], q4[i]) for i in boot])
    # Two estimators of the energy (Gaussian couplings, SK): [E]/N = −(β/2)(1 − [⟨q²⟩]).
    # Out of equilibrium the Monte Carlo energy is too high and ⟨q²⟩ too low, so they
    # approach each other from opposite sides; their disorder averages must agree.
    kpy = e.mean(0) + 0.5 / T * (1.0 - q2.mean(0))
    kpy_b = np.array([e[i].mean(0) + 0.5 / T * (1.0 - q2[i].mean(0)) for i in boot])
    return dict(T=T, q2=q2, q4=q4, g=binder(q2, q4), g_err=gb.std(0), n=g[0]["n_spins"], weight=weight,
                hist=hist, edges=edges, samples=len(g),
                sweeps="–".join(str(x) for x in sorted({r["sweeps"] for r in g})), kpy=kpy, kpy_err=kpy_b.std(0),
                eq=float(np.mean([r["equilibrated"] for r in g])),
                acc=float(np.min([min(r["acceptance"]) for r in g])))


def equilibration_table(out: Path, rows: list[dict]) -> list[str]:
    """Logarithmic binning over runs: the same EQ_SAMPLES SK samples run with 1/8, 1/4,
    1/2 and all of the plan's sweeps (burn-in half of each). Per size and sweep count:
    [⟨q²⟩] and the two-estimator difference [E]/N + (1 − [⟨q²⟩])/(2T) at the lowest
    temperature, means over the samples ± their standard error. Equilibrated means: the
    last two agree within errors and the difference is 0 within errors."""
    eq = _rows(out, "equilibration")
    if not eq:
        return []
    md = ["Equilibration at the lowest temperature (part \"eq\": the first "
          f"{EQ_SAMPLES} samples of each size rerun with fewer sweeps; the last line of each size is the plan's run):",
          "", "| N | lowest T | sweeps | samples | [⟨q²⟩] | change from the previous line (paired) "
          "| [E]/N + (1 − [⟨q²⟩])/(2T) | change from the previous line (paired) |", "|---|---|---|---|---|---|---|---|"]
    sem = (lambda x: x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else float("nan"))
    for n in sorted({r["size"] for r in eq}):
        runs = {}
        for r in eq + [r for r in rows if r["kind"] == "sk" and r["size"] == n and r["sample"] < EQ_SAMPLES]:
            if r["size"] == n:
                runs.setdefault(r["sweeps"], {})[r["sample"]] = r
        prev = None
        for sw in sorted(runs):
            g = runs[sw]
            T0 = next(iter(g.values()))["temperatures"][0]
            q2 = {k: r["q2"][0] for k, r in g.items()}
            d = {k: r["energy"][0] + 0.5 / T0 * (1 - r["q2"][0]) for k, r in g.items()}
            cols = []
            for now, before in ((q2, prev and prev[0]), (d, prev and prev[1])):
                x = np.array(list(now.values()))
                cols.append(f"{x.mean():+.4f} ± {sem(x):.4f}")
                common = sorted(set(now) & set(before or {}))
                dx = np.array([now[k] - before[k] for k in common])
                cols.append(f"{dx.mean():+.4f} ± {sem(dx):.4f}" if len(common) > 1 else "")
            md.append(f"| {n} | {T0:g} | {sw} | {len(g)} | " + " | ".join(cols) + " |")
            prev = (q2, d)
    return md + [""]


def analyse(out: Path, n_boot: int = 1000) -> str:
    from qnnc.runtime import plots

    rows = _rows(out)
    rng = np.random.default_rng(0)
    md, figures = [], {}
    for kind in ("sk", "layered"):
        groups = {}
        for r in rows:
            if r["kind"] == kind:
                groups.setdefault(r["size"], []).append(r)
        groups = {s: g for s, g in groups.items() if len(g) >= 2}
        if not groups:
            continue
        sk = kind == "sk"
        # SK: sizes grow; layered: the divisor shrinks as the network grows.
        order = sorted(groups, key=lambda s: groups[s][0]["n_spins"])
        data = {s: _size_data(groups[s], rng, n_boot) for s in order}
        ref = {s: 1.0 if sk else groups[s][0]["analytic_tc"] for s in order}
        t_pq = 0.5 if sk else None  # P(q) at T = 0.5 (SK); layered: its lowest temperature
        md.append(f"### {'Sherrington–Kirkpatrick' if sk else 'Untrained layered networks'}\n")
        head = ("| N | samples | sweeps | equilibrated (log binning) | exchange acceptance (min) "
                f"| g at {'T = 0.5' if sk else 'lowest T'} | weight of P(q) at abs(q) < 0.2, "
                f"{'T = 0.5' if sk else 'lowest T'} |")
        head += (" [E]/N + (1 − [⟨q²⟩])/(2T), lowest T (0 in equilibrium) | max abs(z) over T |" if sk else
                 " analytic T_c | TAP T_c (mean of instances) |")
        md += [head, "|" + "---|" * (head.count("|") - 1)]
        pq = {}
        for s in order:
            D, g = data[s], groups[s]
            it = int(np.argmin(np.abs(D["T"] - t_pq))) if t_pq is not None else 0
            at = t_pq is None or abs(D["T"][it] - t_pq) < 1e-9
            wt = D["weight"][:, it]
            gcol = f"{D['g'][it]:.3f} ± {D['g_err'][it]:.3f}" if at else "—"
            wcol = f"{wt.mean():.3f} ± {wt.std(ddof=1) / math.sqrt(len(g)):.3f}" if at else "—"
            if at:
                pq[D["n"]] = (D["edges"].tolist(), overlap_density(D["hist"][:, it].mean(0), D["edges"], D["n"]).tolist(),
                              float(D["T"][it]))
            line = (f"| {D['n']} | {D['samples']} | {D['sweeps']} | {D['eq']:.0%} | {D['acc']:.2f} | {gcol} "
                    f"| {wcol} |")
            if sk:
                z = np.abs(D["kpy"]) / np.maximum(D["kpy_err"], 1e-12)
                line += f" {D['kpy'][0]:+.4f} ± {D['kpy_err'][0]:.4f} (T = {D['T'][0]:g}) | {z.max():.1f} |"
            else:
                taps = [r["tap_tc"] for r in g if "tap_tc" in r]
                line += f" {ref[s]:.4f} | {np.mean(taps):.4f} ({len(taps)}) |"
            md.append(line)
        md.append("")
        if sk:
            md += equilibration_table(out, rows)
        lo, hi = FIT_WINDOW
        pairs = list(zip(order, order[1:]))
        common = [_common(data[a], data[b], ref[a], ref[b]) for a, b in pairs]
        estimators = {"binder": lambda D, i: binder(D["q2"][i], D["q4"][i])}

        def all_crossings(picks):
            """The fitted crossing T / T_ref of every consecutive pair, per estimator, for
            one choice of samples per size."""
            out_ = {}
            for name, f in estimators.items():
                curve = {s_: f(data[s_], picks[s_]) for s_ in order}
                out_[name] = np.array([fitted_crossing(data[a]["T"][ia], curve[a][ia], curve[b][ib], ref[a]) / ref[a]
                                       for (a, b), (ia, ib) in zip(pairs, common)])
            return out_

        def scaled(picks):
            return scaling_tc([(data[s_]["n"], data[s_]["T"], binder(data[s_]["q2"][picks[s_]],
                               data[s_]["q4"][picks[s_]]), data[s_]["g_err"]) for s_ in order], ref[order[0]])

        everything = {s_: np.arange(data[s_]["samples"]) for s_ in order}
        full = all_crossings(everything)
        full_scaled, scaled_chi2 = scaled(everything)
        picks = [{s_: rng.integers(0, data[s_]["samples"], data[s_]["samples"]) for s_ in order}
                 for _ in range(n_boot)]
        boot = [all_crossings(p_) for p_ in picks]
        boot_scaled = np.array([scaled(p_)[0] for p_ in picks[:200]])
        stats = {}
        for name in estimators:
            cs = np.array([b_[name] for b_ in boot])  # [n_boot, pairs]
            found = np.isfinite(cs).mean(0)
            err = np.array([np.nanstd(c) if np.isfinite(c).sum() > 2 else np.nan for c in cs.T])
            stats[name] = (full[name], err, found, cs)
        md.append(f"| sizes | Binder crossing T / T_ref (quadratic fit of g_N − g_N' over {lo:g}–{hi:g} T_ref) "
                  "| (T / T_ref − 1) / error | linear interpolation on the ladder |")
        md.append("|---|---|---|---|")
        for k, ((a, b), (ia, ib)) in enumerate(zip(pairs, common)):
            A, B = data[a], data[b]
            lin = crossing(A["T"][ia], A["g"][ia], B["g"][ib]) / ref[a]
            t, e, f_ = (x[k] for x in stats["binder"][:3])
            md.append(f"| {A['n']} / {B['n']} | {t:.3f} ± {e:.3f} (found in {f_:.0%} of resamples) | {(t - 1) / e:+.1f} "
                      f"| {lin:.3f} |")
        drift = [(data[a]["n"], data[b]["n"], stats["binder"][0][k], stats["binder"][1][k])
                 for k, (a, b) in enumerate(pairs)]
        good = [(na, nb, t, e) for na, nb, t, e in drift if np.isfinite(t) and np.isfinite(e) and e > 0]
        md.append("")
        for name, label in (("binder", "Binder"),):
            t, e, _, cs = stats[name]
            ok = np.isfinite(t) & np.isfinite(e) & (e > 0)
            if ok.sum() < 1:
                continue
            # One number per estimator: the weighted mean of the pairs' crossings; its error
            # from the same bootstrap (the pairs share sizes, so they are correlated).
            w = 1 / e[ok] ** 2
            mean = float((w * t[ok]).sum() / w.sum())
            bm = np.array([(w * c[ok]).sum() / w.sum() for c in cs if np.all(np.isfinite(c[ok]))])
            line = (f"{label}: weighted mean of the {ok.sum()} crossings T / T_ref = {mean:.3f} ± {bm.std():.3f} "
                    f"(bootstrap over all sizes at once)")
            if ok.sum() >= 3:
                # Leading finite-size correction ∝ N^(−1/3) (SK; the same form assumed for the
                # layered family): a weighted line in x = (N N')^(−1/6), extrapolated to x = 0.
                x = np.array([(data[a]["n"] * data[b]["n"]) ** (-1 / 6) for a, b in pairs])[ok]
                X = np.stack([np.ones_like(x), x], 1)
                P = np.linalg.inv(X.T @ np.diag(w) @ X) @ X.T @ np.diag(w)
                a0, b0 = P @ t[ok]
                ab = np.array([P @ c[ok] for c in cs if np.all(np.isfinite(c[ok]))])
                chi2 = float((w * (t[ok] - X @ np.array([a0, b0])) ** 2).sum())
                line += (f"; straight line in (N N')^(−1/6) extrapolated to N → ∞: {a0:.3f} ± {ab[:, 0].std():.3f} "
                         f"(slope {b0:+.2f} ± {ab[:, 1].std():.2f}, χ² = {chi2:.1f} for {ok.sum() - 2} degrees of freedom)")
            md.append(line + ".")
            md.append("")
        md.append(f"All sizes at once, the scaling form g_N(T) = G((T / T_c − 1) N^(1/3)) with G a cubic, fitted over "
                  f"{lo:g}–{hi:g} T_ref: T_c / T_ref = {full_scaled:.3f} ± {boot_scaled.std():.3f} (200 bootstrap "
                  f"resamples; χ² per degree of freedom {scaled_chi2:.2f}; no correction to scaling).")
        md.append("")
        md.append("")
        name = "SK" if sk else "layered networks"
        curves = {data[s]["n"]: (data[s]["T"].tolist(), data[s]["g"].tolist(), data[s]["g_err"].tolist())
                  for s in order}
        figures[f"{kind}_binder.png"] = plots.replica_binder_sizes(
            curves, title=f"Binder cumulant, {name} (bootstrap errors)", reference=ref[order[0]])
        zoom = {}
        for n, (T, g, e) in curves.items():
            keep = [i for i, t in enumerate(T) if FIT_WINDOW[0] - 1e-9 <= t / ref[order[0]] <= FIT_WINDOW[1] + 1e-9]
            zoom[n] = ([T[i] for i in keep], [g[i] for i in keep], [e[i] for i in keep])
        figures[f"{kind}_binder_zoom.png"] = plots.replica_binder_sizes(
            zoom, title=f"Binder cumulant near T_c, {name}", reference=ref[order[0]])
        if good:
            xs = [na for na, *_ in good]
            figures[f"{kind}_crossings.png"] = plots.sweep_lines(
                [{"label": "Binder crossing of N and the next size (bootstrap errors)", "x": xs,
                  "y": [t for *_, t, _ in good], "yerr": [e for *_, e in good]},
                 {"label": "T_c = 1" if sk else "analytic layered-SK T_c", "x": [min(xs), max(xs)], "y": [1.0, 1.0],
                  "yerr": None},
                 # the band's edges as two lines (one path through both would draw a side)
                 {"label": "T_c + 5 %", "x": [min(xs), max(xs)], "y": [1.05, 1.05], "yerr": None},
                 {"label": "T_c − 5 %", "x": [min(xs), max(xs)], "y": [0.95, 0.95], "yerr": None}],
                xlabel="N, the smaller size of the pair", ylabel="crossing T / T_c", xscale="log",
                title=f"Binder crossings against size, {name}")
        if pq:
            figures[f"{kind}_p_q_sizes.png"] = plots.replica_overlaps_sizes(
                pq, title=f"P(q) at {'T = 0.5' if sk else 'the lowest T'}, {name} (disorder average)")
        big = data[order[-1]] if not sk else data[max(s for s in order if abs(data[s]['T'][0] - 0.5) < 1e-9)]
        figures[f"{kind}_p_q.png"] = plots.replica_overlaps({
            "temperatures": big["T"].tolist(), "q_bins": big["edges"].tolist(),
            "p_q": (big["hist"].mean(0) / np.diff(big["edges"])).tolist(),
            "network": f"{'SK' if sk else 'layered'}, disorder average of {big['samples']}", "n_spins": big["n"]})
    for name, data in figures.items():
        (out / name).write_bytes(data)
    text = "\n".join(md) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--parts", nargs="+", default=["sk", "layered"], choices=["sk", "layered", "eq"])
    ap.add_argument("--sk-sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024], choices=sorted(SK_PLAN))
    ap.add_argument("--layered-divisors", type=int, nargs="+", default=[8, 4, 2, 1], choices=sorted(LAYERED_PLAN))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every sample count (e.g. 0.1 for a smoke run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--analyse", action="store_true", help="only analyse the samples already in OUT")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.analyse:
        simulate(out, args.parts, args.sk_sizes, args.layered_divisors, args.seed, args.scale)
    sys.stdout.write(analyse(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
