"""Fine-tuning with measured gradients through one executor (`executors.py`): SGD with
momentum on estimates of ∂E[L]/∂W that the executor's samples give (parameter shift by
default), and the accuracy the same executor measures (a majority vote over shots on a
fixed set of test images). Checkpoints are written with the training's checkpoint writer
format (`qnnc.runtime.checkpoint.save_checkpoint`), so `qnnc eval`, `compile` and `run`
read them like any other."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import error


def vote_accuracy(executor, view, x: np.ndarray, y: np.ndarray, shots: int) -> dict:
    """Accuracy of the majority vote over `shots` passes the executor samples (ties go to
    the lowest class, as `QNNModel.predict`), the single-pass accuracy and the mean loss."""
    from qnnc.runtime.gradients.estimators import shot_loss

    (outs,) = executor.sample(x, shots, [None])
    loss, _ = shot_loss(view, outs[-1], torch.as_tensor(y))
    logits = outs[-1] @ view.w_out.t() + (view.b_out if view.b_out is not None else 0)
    per_shot = logits.argmax(-1)  # [S, B]
    counts = torch.zeros(per_shot.shape[1], logits.shape[-1], dtype=torch.int64)
    counts.scatter_add_(1, per_shot.t(), torch.ones_like(per_shot.t()))
    votes = counts.argmax(-1).numpy()
    yy = np.asarray(y)
    return {"accuracy": float((votes == yy).mean()),
            "single_shot_accuracy": float((per_shot.numpy() == yy[None]).mean()),
            "loss": float(loss.mean())}


def finetune(program: ir.Program, network: ir.Network, tensors: dict, executor, *, steps: int,
             batch: int = 8, shots: int = 32, lr: float = 0.05, momentum: float = 0.9,
             estimator: str = "shift", data: str = "mnist.train5k", eval_data: str = "mnist.test",
             eval_images: int = 200, eval_shots: int = 10, eval_every: int = 5, seed: int = 0,
             out_dir: Optional[str] = None, progress: Optional[Callable[[str], None]] = None,
             eval_executor=None, on_eval: Optional[Callable[[dict, dict], None]] = None,
             layers: Optional[list] = None) -> dict:
    """Fine-tune `tensors` for `steps` steps of `batch` training images (a seeded draw per
    step), with gradients estimated from `shots` shots per image and variant. Returns the
    history (step, accuracy, loss, circuits, seconds) and the final weights.
    `eval_executor`: measure the accuracy with this executor instead (e.g. the fast noisy
    simulator for a run on Aer); `on_eval(record, weights)` is called after each
    evaluation (to write partial results). `layers`: fine-tune only these layers (by
    name; the parameter shift then runs only their variants), default all."""
    from qnnc.runtime import checkpoint as ckpt
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.gradients import check_layers, estimate, net_view, view_model

    for name, v, lo in (("steps", steps, 1), ("batch", batch, 1), ("shots", shots, 2),
                        ("eval images", eval_images, 1), ("eval shots", eval_shots, 1), ("eval every", eval_every, 1)):
        if int(v) < lo:
            raise error("Q0722", f"{name} must be at least {lo}, not {v}")
    if not (lr > 0 and np.isfinite(lr)) or not 0 <= momentum < 1:
        raise error("Q0722", f"learning rate {lr} must be positive and momentum {momentum} in [0, 1)")
    if layers is not None:
        layers = check_layers(net_view(view_model(program, network), tensors), layers, exit_code=2)
    train = load_dataset(data)
    test = load_dataset(eval_data)
    xt = preprocess(train.images, network.input).astype(np.float64)
    yt = train.labels.astype(np.int64)
    xe = preprocess(test.images[:eval_images], network.input).astype(np.float64)
    ye = test.labels[:eval_images].astype(np.int64)
    w = {k: np.asarray(v, dtype=np.float64).copy() for k, v in tensors.items()}
    vel = {k: np.zeros_like(v) for k, v in w.items()}
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xF1E]))
    model = view_model(program, network)
    history = []
    t0 = time.perf_counter()
    circuits = 0

    judge = executor if eval_executor is None else eval_executor

    def evaluate(step: int) -> None:
        judge.set_weights(w)
        c0 = judge.circuits
        r = vote_accuracy(judge, net_view(model, w), xe, ye, eval_shots)
        r.update(step=step, seconds=time.perf_counter() - t0, gradient_circuits=circuits,
                 eval_circuits=judge.circuits - c0)
        history.append(r)
        if on_eval:
            on_eval(r, w)
        if progress:
            progress(f"step {step}: accuracy {r['accuracy']:.4f} (single pass {r['single_shot_accuracy']:.4f}), "
                     f"loss {r['loss']:.4f}, {r['seconds']:.1f} s")

    evaluate(0)
    run_meta = None
    if out_dir is not None:
        run_meta = {"network": network.name, "seed": seed, "architecture_hash": ckpt.architecture_hash(network),
                    "program_hash": ckpt.program_hash(program)}
    for step in range(1, steps + 1):
        idx = rng.choice(len(yt), size=batch, replace=False)
        est = estimate(executor, program, network, w, xt[idx], yt[idx], shots=shots, estimator=estimator,
                       layers=layers)
        circuits += est.circuits
        for k, g in est.grads.items():
            vel[k] = momentum * vel[k] + g.numpy()
            w[k] = w[k] - lr * vel[k]
        if step % eval_every == 0 or step == steps:
            evaluate(step)
    if out_dir is not None:
        metrics = {k: history[-1][k] for k in ("accuracy", "single_shot_accuracy", "loss")}
        meta = {**run_meta, "flags": {"finetune": {"executor": getattr(executor, "name", "?"), "steps": steps,
                                                   "batch": batch, "shots": shots, "lr": lr, "momentum": momentum,
                                                   "estimator": estimator}},
                "metrics": metrics, "gradient": f"measured {estimator}"}
        path = ckpt.save_checkpoint(out_dir, steps, {k: v.astype(np.float32) for k, v in w.items()}, meta)
        (Path(out_dir) / "finetune-history.json").write_text(json.dumps(history, indent=2) + "\n")
    else:
        path = None
    return {"history": history, "weights": w, "checkpoint": str(path) if path else None,
            "seconds": time.perf_counter() - t0, "gradient_circuits": circuits}
