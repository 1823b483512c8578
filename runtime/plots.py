"""The figures the commands draw (matplotlib, Agg backend, no display needed). Each
function takes a command's JSON-ready result and returns the file's bytes; the command
writes them through its one writer and says `wrote FILE`.

* `training_curves(metrics)`: loss and accuracy against step (`qnnc train --plot`);
* `confusion_matrix(result)`: true against predicted class (`qnnc eval --plot`);
* `tap_tc(result)`, `tap_spectrum(result)`: T_c(t) and the top of J's spectrum over a
  run (`qnnc tap --plot`);
* `run_histogram(result)`: the predicted classes of sampled circuits, every class
  ticked, the true label marked (`qnnc run --plot`)."""

from __future__ import annotations

import io
from typing import Optional, Sequence


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bytes(fig, fmt: str = "png") -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format=fmt, dpi=150)
    plt.close(fig)
    return buf.getvalue()


def training_curves(metrics: Sequence[dict], title: str = "") -> bytes:
    """Two panels against training step: the loss (each step, and each epoch's mean) and
    the accuracy (each batch, smoothed, and the validation accuracy after each epoch with
    its 95% interval)."""
    import numpy as np

    plt = _pyplot()
    steps = [m for m in metrics if m.get("kind") == "step"]
    epochs = [m for m in metrics if m.get("kind") == "epoch"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    if steps:
        t = np.array([m["step"] for m in steps], float)
        loss = np.array([m["loss"] for m in steps], float)
        acc = np.array([m["batch_accuracy"] for m in steps], float)
        k = max(1, min(25, len(t) // 10))
        kernel = np.ones(k) / k
        ax1.plot(t, loss, color="C0", alpha=0.3, lw=0.8, label="loss per step")
        ax2.plot(t, acc, color="C0", alpha=0.25, lw=0.8, label="batch accuracy")
        if len(t) >= k:
            ax2.plot(t[k - 1:], np.convolve(acc, kernel, "valid"), color="C0",
                     label=f"batch accuracy ({k}-step mean)")
    if epochs:
        te = [m["step"] for m in epochs]
        ax1.plot(te, [m["train_loss"] for m in epochs], "o-", color="C1", label="epoch mean loss")
        val = [m for m in epochs if "validation_accuracy" in m]
        if val:
            tv = [m["step"] for m in val]
            va = np.array([m["validation_accuracy"] for m in val])
            lo = va - np.array([m["validation_ci95"][0] for m in val])
            hi = np.array([m["validation_ci95"][1] for m in val]) - va
            ax2.errorbar(tv, va, yerr=[lo, hi], fmt="s-", color="C3", capsize=3,
                         label=f"validation accuracy (vote over {val[-1]['validation_shots']} shots)")
    ax1.set_xlabel("training step")
    ax1.set_ylabel("cross-entropy loss")
    ax1.set_title("loss")
    ax2.set_xlabel("training step")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1)
    ax2.set_title("accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _bytes(fig)


def confusion_matrix(result: dict) -> bytes:
    """Counts of (true class, predicted class) from `qnnc eval`'s result, each row also
    as a fraction of its class (the colour)."""
    import numpy as np

    plt = _pyplot()
    cm = np.array(result["confusion"], dtype=float)
    n = cm.shape[0]
    frac = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    at = f"step {result['step']}" if result.get("step") is not None else "untrained"
    ax.set_title(f"{result['network']} ({at}) on {result['data']}: accuracy "
                 f"{result['accuracy']:.3f}, {result['images']} images", fontsize=9)
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    return _bytes(fig)


def tap_tc(r: dict, fmt: str = "png") -> bytes:
    """T_c against training step (log-log), by kind of transition, with the analytic T_c
    of the random network and the power-law fit."""
    import numpy as np
    from matplotlib.ticker import LogLocator

    plt = _pyplot()
    s = [x for x in r["series"] if x["step"] > 0]
    t = np.array([x["step"] for x in s], float)
    fig, ax = plt.subplots(figsize=(5.4, 3.8))
    for kind, marker, what in (("touch", "o", "spin glass: $\\lambda_{min}$ touches 0"),
                               ("cross", "s", "hidden order: $\\lambda_{min}$ crosses 0")):
        sel = [i for i, x in enumerate(s) if x["kind"] == kind]
        if sel:
            ax.plot(t[sel], [s[i]["tc"] for i in sel], marker, ms=4, label=f"$T_c$ ({what})")
    if r.get("analytic_tc_random"):
        ax.axhline(r["analytic_tc_random"], color="gray", ls=":", label="$T_c$ of the random network (analytic)")
    f = r.get("power_law")
    if f:
        tt = np.geomspace(f["window"][0], f["window"][1], 50)
        ax.plot(tt, f["offset"] + f["amplitude"] * tt ** f["exponent"], "k--",
                label=f"fit $T_c = A\\,t^{{\\alpha}}$, $\\alpha$ = {f['exponent']:.3f} ± {f['exponent_stderr']:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        _plain_log_ticks(axis)
    ax.yaxis.set_minor_locator(LogLocator(subs=(2, 3, 5)))
    ax.set_xlabel("training step $t$")
    ax.set_ylabel("transition temperature $T_c$")
    ax.set_title(f"TAP $T_c$ over the training of `{r['network']}`", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return _bytes(fig, fmt)


def _plain_log_ticks(axis) -> None:
    """Tick labels of a log axis as plain numbers (2.75, not 2.75×10⁰), minor ones too."""
    from matplotlib.ticker import ScalarFormatter

    for set_formatter in (axis.set_major_formatter, axis.set_minor_formatter):
        f = ScalarFormatter()
        f.set_scientific(False)
        set_formatter(f)


def tap_spectrum(r: dict, fmt: str = "png") -> bytes:
    """The four largest eigenvalues of J against training step, each its own legend
    entry, with the random-bulk edge."""
    import numpy as np

    plt = _pyplot()
    s = [x for x in r["series"] if x["step"] > 0]
    t = np.array([x["step"] for x in s], float)
    fig, ax = plt.subplots(figsize=(5.4, 3.8))
    top = np.array([x["top_eigenvalues"][:4] + [np.nan] * (4 - len(x["top_eigenvalues"][:4])) for x in s])
    names = ["largest", "2nd", "3rd", "4th"]
    for k in range(top.shape[1] if top.size else 0):
        ax.plot(t, top[:, k], "o-", ms=3, lw=1.2, color=f"C{k}", label=f"{names[k]} eigenvalue of J")
    ax.plot(t, [x["bulk_edge"] for x in s], "k:", marker="x", ms=4, label="random-bulk edge")
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("training step $t$")
    ax.set_ylabel("eigenvalue of the coupling matrix $J$")
    ax.set_title(f"Spectrum of J over the training of `{r['network']}`", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return _bytes(fig, fmt)


def run_histogram(result: dict) -> bytes:
    """Predicted classes over the shots of `qnnc run` (or, without an output layer, the
    last layer's mean outcomes): every class ticked, the true label marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    s = result["summary"]
    if "predictions" in result:
        h = result["predictions"]["histogram"]
        label = result.get("label")
        colors = ["C3" if c == label else "C0" for c in range(len(h))]
        ax.bar(range(len(h)), h, color=colors)
        ax.set_xticks(range(len(h)))
        ax.set_xlabel("predicted class")
        ax.set_ylabel("shots")
        if label is not None:
            from matplotlib.patches import Patch

            ax.legend(handles=[Patch(color="C3", label=f"true label {label}"),
                               Patch(color="C0", label="other classes")], fontsize=8)
    else:
        name, r = list(result["layers"].items())[-1]
        ax.bar(range(len(r["mean"])), r["mean"])
        ax.set_xticks(range(len(r["mean"])))
        ax.set_xlabel(f"neuron of {name}")
        ax.set_ylabel("mean outcome (+1 = |0>)")
    ax.set_title(f"{s['network']} · {s['target']} ({s['backend']}) · {result['simulator']} · "
                 f"{result['shots']} shots · input {s['input']}", fontsize=8)
    return _bytes(fig)


# --------------------------------------------------------------------------- replica exchange


def replica_overlaps(r: dict) -> bytes:
    """P(q) per temperature (`qnnc replicas`): a legend for a short ladder, a colour bar
    for a long one."""
    import numpy as np

    plt = _pyplot()
    T = np.asarray(r["temperatures"])
    edges = np.asarray(r["q_bins"])
    centres = 0.5 * (edges[1:] + edges[:-1])
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, t in enumerate(T):
        if r["p_q"][i]:
            ax.plot(centres, r["p_q"][i], color=cmap(i / max(len(T) - 1, 1)), label=f"T = {t:.3g}")
    ax.set_xlabel("overlap q")
    ax.set_ylabel("P(q)")
    ax.set_title(f"overlap distribution, {r['network']} ({r['n_spins']} spins)")
    if len(T) <= 8:
        ax.legend(fontsize=7)
    else:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(T.min(), T.max()))
        fig.colorbar(sm, ax=ax, label="temperature T")
    return _bytes(fig)


def replica_binder(r: dict) -> bytes:
    """The Binder cumulant of the overlap against temperature."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(r["temperatures"], r["binder"], "o-")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("Binder cumulant g = (3 − ⟨q⁴⟩/⟨q²⟩²)/2")
    ax.set_title("Binder cumulant")
    return _bytes(fig)


def replica_hidden_order(r: dict) -> bytes:
    """The overlap with the top eigenvector of J (the hidden order) against temperature."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(r["temperatures"], [v[0] if v else float("nan") for v in r["direction_overlaps"]], "o-")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("⟨|σ·v₁|⟩ / √N")
    ax.set_title("overlap with the top eigenvector of J (hidden order)")
    return _bytes(fig)


def finetune_curves(runs: dict, title: str = "", reference: Optional[dict] = None,
                    metrics: Sequence[str] = ("accuracy",)) -> bytes:
    """Fine-tuning histories against step, one panel per metric (`accuracy`: vote,
    `single_shot_accuracy`, `loss`), one line per run: `runs` maps a label to a
    `finetune` history. `reference`: metric -> {label: value} drawn as dashed lines.
    Where a history's entries carry `METRIC_se`, it is drawn as ±1 error bars."""
    plt = _pyplot()
    names = {"accuracy": "test accuracy (vote)", "single_shot_accuracy": "test accuracy (single pass)",
             "loss": "test loss (mean over shots)"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, hist in runs.items():
            if hist and all(metric + "_se" in h for h in hist):
                ax.errorbar([h["step"] for h in hist], [h[metric] for h in hist],
                            yerr=[h[metric + "_se"] for h in hist], marker="o", ms=3, capsize=2, label=label)
                continue
            ax.plot([h["step"] for h in hist], [h[metric] for h in hist], marker="o", label=label)
        for label, y in ((reference or {}).get(metric) or {}).items():
            ax.axhline(y, ls="--", color="grey", lw=1)
            ax.text(0, y, f" {label}", va="bottom", fontsize=7, color="grey")
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel(names.get(metric, metric))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _bytes(fig)


def estimator_variance(rows: Sequence[dict], title: str = "") -> bytes:
    """Mean standard error of the hidden-layer gradient against shots, per estimator
    (rows: estimator, shots, stderr), on log-log axes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for est in sorted({r["estimator"] for r in rows}):
        rs = sorted((r for r in rows if r["estimator"] == est), key=lambda r: r["shots"])
        ax.loglog([r["shots"] for r in rs], [r["stderr"] for r in rs], marker="o", label=est)
    ax.set_xlabel("shots per image and variant")
    ax.set_ylabel("mean standard error (hidden weights)")
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ax.xaxis.set_major_locator(FixedLocator(sorted({r["shots"] for r in rows})))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _bytes(fig)


def noise_accuracy_vs_a(rows: Sequence[dict], backend: str = "fake_brisbane") -> bytes:
    """Test accuracy against a, without and with device noise (examples/study_noise_sim.py):
    rows {"a", "trained": "ideal"|"noisy", "ideal", "noisy", "ideal_ci95", "noisy_ci95"}."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    styles = {("ideal", "ideal"): ("trained ideal, evaluated ideal", "C0", "o-"),
              ("ideal", "noisy"): (f"trained ideal, evaluated with {backend} noise", "C3", "o--"),
              ("noisy", "noisy"): (f"trained with {backend} noise, evaluated with it", "C2", "s-")}
    for (trained, ev), (label, color, fmt) in styles.items():
        pts = sorted((r["a"], r[ev], r[ev + "_ci95"]) for r in rows if r["trained"] == trained)
        if not pts:
            continue
        xs = [max(a, 0.02) for a, _, _ in pts]
        ys = [y for _, y, _ in pts]
        err = [[y - ci[0] for _, y, ci in pts], [ci[1] - y for _, y, ci in pts]]
        ax.errorbar(xs, ys, yerr=err, fmt=fmt, color=color, label=label, capsize=3)
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks = sorted({max(r["a"], 0.02) for r in rows})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: "0" if v == 0.02 else f"{v:g}"))
    ax.set_xlabel("a (log scale; a = 0 plotted at the left)")
    ax.set_ylabel("test accuracy (vote over 10 shots)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _bytes(fig)


def noise_probes(rows: Sequence[dict], backend: str = "fake_brisbane") -> bytes:
    """Accuracy against the number K of identity pairs per rotation, one line per a:
    rows {"a", "pairs", "accuracy", "ci95"}."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, a in enumerate(sorted({r["a"] for r in rows})):
        pts = sorted((r["pairs"], r["accuracy"], r["ci95"]) for r in rows if r["a"] == a)
        ax.errorbar([k for k, _, _ in pts], [y for _, y, _ in pts],
                    yerr=[[y - c[0] for _, y, c in pts], [c[1] - y for _, y, c in pts]],
                    fmt="o-", color=f"C{i}", label=f"a = {a:g}", capsize=3)
    ax.set_xlabel("K identity pairs (√X, √X†) per rotation")
    ax.set_ylabel("test accuracy (vote over 10 shots)")
    ax.set_title(f"noise probes on the fast simulator ({backend} noise)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _bytes(fig)


def sweep_lines(lines: Sequence[dict], *, xlabel: str = "", ylabel: str = "", title: str = "",
                xscale: str = "linear", yscale: str = "linear", fmt: str = "png") -> bytes:
    """A sweep's plot (`qnnc sweep`, a spec's [[plot]]): one line per entry of `lines`
    ({"label", "x", "y", "yerr" or None}), markers at the points, error bars where given."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    markers = "osv^D<>p*h"
    for i, line in enumerate(lines):
        kw = dict(marker=markers[i % len(markers)], ms=4, label=line["label"], color=f"C{i % 10}")
        if line.get("yerr") is not None:
            ax.errorbar(line["x"], line["y"], yerr=line["yerr"], capsize=3, **kw)
        else:
            ax.plot(line["x"], line["y"], ls="--" if i else "-", **kw)
    if xscale == "symlog":
        xs = sorted({abs(x) for line in lines for x in line["x"] if x})
        ax.set_xscale("symlog", linthresh=xs[0] if xs else 1.0)
    else:
        ax.set_xscale(xscale)
    ax.set_yscale(yscale)
    grid = sorted({x for line in lines for x in line["x"]})
    if 0 < len(grid) <= 12:  # a sweep's grid values are its ticks, written plainly
        ax.set_xticks(grid, [f"{x:g}" for x in grid])
        from matplotlib.ticker import NullLocator

        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(lines) > 1 or lines and lines[0]["label"]:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _bytes(fig, fmt)


def replica_binder_sizes(curves: dict, title: str = "Binder cumulant", reference: Optional[float] = None) -> bytes:
    """Binder cumulant against T for several sizes: curves {N: (T, g, g_err)}; a dashed
    line at the `reference` T_c. Where the curves cross is the finite-size estimate."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for n in sorted(curves):
        T, g, err = curves[n]
        ax.errorbar(T, g, yerr=err, marker="o", ms=3, capsize=2, label=f"N = {n}")
    if reference is not None:
        ax.axvline(reference, color="grey", ls="--", lw=1, label=f"T_c = {reference:.4g}")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("g = (3 − [⟨q⁴⟩]/[⟨q²⟩]²)/2")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _bytes(fig)


def replica_overlaps_sizes(pq: dict, title: str = "P(q)") -> bytes:
    """P(q) at one temperature for several sizes: pq {N: (bin edges, density, T)}."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for n in sorted(pq):
        edges, p, t = pq[n]
        edges = np.asarray(edges)
        ax.plot(0.5 * (edges[1:] + edges[:-1]), p, marker=".", label=f"N = {n}, T = {t:.3g}")
    ax.set_xlabel("overlap q")
    ax.set_ylabel("P(q)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _bytes(fig)
