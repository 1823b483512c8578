"""Training: the papers' recipe on the torch simulator, with exact resume.

One forward pass samples every stochastic neuron once per image (Monte Carlo); the
backward pass is the recipe's gradient (straight-through by default, or the exact
expectation over measurement branches for small networks). Everything random flows
from the seed: the initial weights, the data order of each epoch (a permutation drawn
from (seed, epoch)), and the measurement outcomes (one torch.Generator whose state is
saved in every checkpoint). So a run resumed from its last checkpoint continues
bit-identically to an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import error
from qnnc.compiler.fileio import atomic_write_text
from qnnc.compiler.limits import MAX_CHECKPOINTS, MAX_TOTAL_STEPS
from qnnc.runtime import checkpoint as ckpt
from qnnc.runtime.checkpoint_writer import CheckpointWriter


def log_spaced_steps(limit: int) -> list[int]:
    """0, 1, 2, 5, 10, 20, 50, 100, ... up to `limit` (inclusive)."""
    out = [0]
    decade = 1
    while decade <= limit:
        for m in (1, 2, 5):
            if m * decade <= limit:
                out.append(m * decade)
        decade *= 10
    return out


def checkpoint_steps(schedule: ir.CheckpointSchedule, total_steps: int) -> set[int]:
    steps: set[int] = set()
    if schedule.every:
        steps.update(range(0, total_steps + 1, schedule.every))
    if schedule.log_steps:
        steps.update(log_spaced_steps(total_steps))
    steps.update(s for s in schedule.steps if s <= total_steps)
    if schedule.at_end:
        steps.add(total_steps)
    return steps


def check_schedule_size(schedule: ir.CheckpointSchedule, total_steps: int) -> None:
    """Refuse a run whose steps or checkpoints exceed the limits, before building the
    schedule (Q0231)."""
    if total_steps > MAX_TOTAL_STEPS:
        raise error("Q0231", f"this run has {total_steps:,} training steps, more than the limit of "
                    f"{MAX_TOTAL_STEPS:,}", schedule.span, help="lower the epochs or raise the batch size")
    count = len(schedule.steps) + 1
    if schedule.every:
        count += total_steps // schedule.every + 1
    if schedule.log_steps:
        count += 3 * len(str(total_steps))
    if count > MAX_CHECKPOINTS:
        raise error("Q0231", f"this schedule writes about {count:,} checkpoints, more than the limit of "
                    f"{MAX_CHECKPOINTS:,}", schedule.span,
                    help="checkpoint less often (`every N steps` with a larger N), or train fewer epochs")


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    final_metrics: dict
    checkpoints: list[int]


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x51C]).permutation(n)


def _optimizer(model, recipe: ir.TrainRecipe):
    import torch

    o = recipe.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)


def _optimizer_tensors(opt, model, copy: bool = True) -> dict:
    """Optimizer buffers under stable names, for an exact resume (copies, or with
    copy=False detached views of the live buffers)."""
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p, {})
            for key, value in state.items():
                import torch

                if isinstance(value, torch.Tensor):
                    v = value.detach()
                    out[f"optimizer/{names[id(p)]}/{key}"] = (v.clone() if copy else v).reshape(value.shape or (1,))
    return out


_OPTIMIZER_BUFFERS = ("momentum_buffer", "exp_avg", "exp_avg_sq", "step")


def _restore_optimizer(opt, model, extra: dict, path=None) -> None:
    """Put the checkpoint's optimizer buffers back, each checked against its parameter
    (name, shape, floating point) so that a damaged one is Q0531, not a crash later."""
    import torch

    names = {n: p for n, p in model.named_parameters()}
    for key, arr in extra.items():
        if not key.startswith("optimizer/"):
            continue
        pname, _, skey = key[len("optimizer/"):].partition("/")
        p = names.get(pname)
        if p is None:
            raise error(ckpt.WRONG_NETWORK, f"{path}: optimizer state for an unknown parameter",
                        help="resume with the program and flags of the original run")
        want = (1,) if skey == "step" else tuple(p.shape)
        if skey not in _OPTIMIZER_BUFFERS or arr.dtype.kind != "f" or tuple(arr.shape) != want \
                or not np.all(np.isfinite(arr)):
            raise error(ckpt.UNREADABLE, f"{path}: invalid optimizer state for `{pname}`",
                        help="this checkpoint cannot be resumed exactly; resume from another step")
        t = torch.from_numpy(np.array(arr))
        if skey == "step":
            t = t.reshape(())
        opt.state[p][skey] = t.to(p.dtype if t.is_floating_point() else t.dtype)


def _restore_generator(generator, extra: dict, path=None) -> None:
    """The random generator's state of a checkpoint: required for an exact resume, of
    exactly the generator's length and type (Q0531 otherwise)."""
    import torch

    state = extra.get("rng/torch")
    want = generator.get_state()
    if state is None or state.dtype != np.uint8 or tuple(state.shape) != tuple(want.shape):
        raise error(ckpt.UNREADABLE, f"{path}: the random generator's state is missing or invalid",
                    help="this checkpoint cannot be resumed exactly; resume from another step")
    try:
        generator.set_state(torch.from_numpy(np.array(state)))
    except (RuntimeError, ValueError):
        raise error(ckpt.UNREADABLE, f"{path}: the random generator's state is invalid",
                    help="this checkpoint cannot be resumed exactly; resume from another step") from None


def build_model(program: ir.Program, network: ir.Network, seed: int, dtype=None, noise=None):
    """The torch model of `network`, with layers declared `init = checkpoint(...)` filled
    from their runs (paths relative to the program's folder)."""
    import torch

    from qnnc.runtime.simulator import QNNModel

    model = QNNModel(program, network.name, seed=seed, dtype=dtype or torch.float32, noise=noise)
    if model.pending:
        base = Path(program.source).parent if not program.source.startswith("<") else Path(".")
        loaded = ckpt.checkpoint_init_tensors(network, base)
        model.load_tensors({k: torch.from_numpy(np.array(v)) for k, v in loaded.items()}, strict=False)
    return model


def train(program: ir.Program, network: ir.Network, recipe: ir.TrainRecipe, out_dir: os.PathLike | str, *,
          resume: bool = False, flags: Optional[dict] = None, progress: bool = True,
          log: Callable[[str], None] = lambda s: None, noise=None) -> TrainResult:
    import torch

    from qnnc.compiler.serialize import to_json_obj
    from qnnc.runtime.data import load_dataset, preprocess
    out_dir = Path(out_dir)
    seed = recipe.seed
    torch.manual_seed(seed)

    train_set = load_dataset(recipe.data)
    x_train = torch.from_numpy(preprocess(train_set.images, network.input))
    y_train = torch.from_numpy(train_set.labels.astype(np.int64))
    n_out = network.layers[-1].size
    if int(y_train.max()) >= n_out:
        raise error("Q0207", f"the data set has labels up to {int(y_train.max())} but the output layer "
                    f"`{network.layers[-1].name}` has {n_out} units", network.layers[-1].span,
                    help="give the output layer one unit per class")
    val = None
    if recipe.validate is not None:
        vs = load_dataset(recipe.validate)
        val = (torch.from_numpy(preprocess(vs.images, network.input)), torch.from_numpy(vs.labels.astype(np.int64)))

    model = build_model(program, network, seed, noise=noise)
    opt = _optimizer(model, recipe)
    generator = torch.Generator().manual_seed(seed + 1)

    n = x_train.shape[0]
    steps_per_epoch = math.ceil(n / recipe.batch)
    total_steps = steps_per_epoch * recipe.epochs
    check_schedule_size(recipe.checkpoints, total_steps)
    save_at = checkpoint_steps(recipe.checkpoints, total_steps)

    start_step = 0
    run_meta = {
        "network": network.name, "seed": seed, "flags": flags or {},
        "architecture_hash": ckpt.architecture_hash(network), "program_hash": ckpt.program_hash(program),
        "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
        "gradient": recipe.gradient.kind, "program": to_json_obj(program),
    }
    if resume:
        existing = ckpt.list_checkpoints(out_dir)
        if not existing:
            raise error(ckpt.MISSING, f"--resume: {out_dir} has no checkpoint to resume from",
                        help="run without --resume to start")
        old = ckpt.read_run_file(out_dir)
        if old.get("program_hash") != run_meta["program_hash"] or old.get("seed") != seed \
                or (old.get("flags") or {}).get("noise") != (flags or {}).get("noise"):
            raise error(ckpt.WRONG_NETWORK, f"--resume: {out_dir} was made by another program, seed or settings",
                        help="resume with the same file, --set values and flags as the original run")
        c = ckpt.load_checkpoint(ckpt.checkpoint_path(out_dir, existing[-1]), network)
        model.load_tensors({k: torch.from_numpy(np.array(v)) for k, v in c.tensors.items()})
        _restore_optimizer(opt, model, c.extra, c.path)
        _restore_generator(generator, c.extra, c.path)
        start_step = c.step
        log(f"resuming {out_dir} from step {start_step}")
    else:
        if ckpt.list_checkpoints(out_dir):
            raise error(ckpt.MISSING, f"{out_dir} already holds a run",
                        help="pass --resume to continue it, or choose another --out", exit_code=2)
        out_dir.mkdir(parents=True, exist_ok=True)
        ckpt.write_run_file(out_dir, run_meta)
        (out_dir / "metrics.jsonl").unlink(missing_ok=True)

    metrics_path = out_dir / "metrics.jsonl"
    epoch_loss, epoch_count = 0.0, 0
    if resume:
        _truncate_metrics(metrics_path, start_step)
        # The running epoch loss, as an uninterrupted run would have it at this step.
        epoch_loss, epoch_count = _epoch_accumulators(metrics_path, start_step // steps_per_epoch)

    def write_metrics(record: dict) -> None:
        with open(metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    # Checkpoints are written on a background thread; the snapshot (copies of the weights,
    # optimizer buffers and generator state) is taken here, on the training thread.
    # A slot of the writer's shared arena holds the weights and up to two optimizer
    # buffers per weight (SGD momentum; Adam's two moments) and the generator state.
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    writer = CheckpointWriter(out_dir, slot_bytes=3 * nbytes + 64 * 1024, process=None if save_at else False)


    def save(step: int, metrics: dict) -> None:
        # The writer's process mode copies the live state into its arena before submit
        # returns; its thread mode needs copies made here.
        live = writer.copies_snapshot
        extra = _optimizer_tensors(opt, model, copy=not live)
        extra["rng/torch"] = generator.get_state()
        meta = {"network": network.name, "seed": seed, "flags": flags or {}, "metrics": dict(metrics),
                "epoch": step / steps_per_epoch, "architecture_hash": run_meta["architecture_hash"],
                "program_hash": run_meta["program_hash"], "gradient": recipe.gradient.kind}
        writer.submit(step, model.tensors(copy=not live), meta, extra)

    try:
        if start_step == 0 and 0 in save_at and not resume:
            save(0, {})

        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total_steps, initial=start_step, unit="step", desc=network.name, leave=False,
                       dynamic_ncols=True)
        step = start_step
        last_metrics: dict = {}
        t_start = time.perf_counter()
        while step < total_steps:
            epoch = step // steps_per_epoch
            perm = torch.from_numpy(epoch_permutation(n, seed, epoch))
            first_batch = step - epoch * steps_per_epoch
            for b in range(first_batch, steps_per_epoch):
                idx = perm[b * recipe.batch:(b + 1) * recipe.batch]
                xb, yb = x_train[idx], y_train[idx]
                model.train()
                opt.zero_grad(set_to_none=True)
                if recipe.gradient.kind == "exact":
                    loss = model.expected_loss(xb, yb)
                    with torch.no_grad():
                        acc = float((model.expected_logits(xb).argmax(-1) == yb).float().mean())
                else:
                    logits = model(xb, shots=1, generator=generator)[0]
                    loss = torch.nn.functional.cross_entropy(logits, yb)
                    acc = float((logits.argmax(-1) == yb).float().mean())
                if not torch.isfinite(loss.detach()):
                    raise error("Q0640", f"the loss became {float(loss.detach())} at step {step + 1}",
                                help="lower the learning rate (--lr)")
                loss.backward()
                opt.step()
                step += 1
                epoch_loss += float(loss.detach()) * len(idx)
                epoch_count += len(idx)
                rec = {"kind": "step", "step": step, "epoch": epoch, "loss": float(loss.detach()),
                       "batch_accuracy": acc, "images": len(idx)}
                write_metrics(rec)
                last_metrics = rec
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
                end_of_epoch = b == steps_per_epoch - 1
                if end_of_epoch:
                    rec = {"kind": "epoch", "step": step, "epoch": epoch + 1,
                           "train_loss": epoch_loss / max(epoch_count, 1),
                           "elapsed_s": time.perf_counter() - t_start}
                    epoch_loss, epoch_count = 0.0, 0
                    if val is not None:
                        acc, lo, hi = evaluate_accuracy(model, val[0], val[1], network.readout.shots, seed=seed + 7 + epoch)
                        rec.update(validation_accuracy=acc, validation_ci95=[lo, hi],
                                   validation_shots=network.readout.shots)
                    write_metrics(rec)
                    last_metrics = rec
                    # through the bar's own writer: the line goes above the bar, not into it
                    (log if bar is None else lambda s: bar.write(s, file=sys.stderr))(
                        f"epoch {epoch + 1}/{recipe.epochs}: train loss {rec['train_loss']:.4f}"
                        + (f", validation accuracy {rec['validation_accuracy']:.4f}" if val is not None else ""))
                if step in save_at:
                    save(step, last_metrics)
        if bar is not None:
            bar.close()
        writer.flush()  # every checkpoint on disk (a write's error raised) before listing them
    finally:
        writer.close()
    return TrainResult(out_dir, step, last_metrics, ckpt.list_checkpoints(out_dir))


def _epoch_accumulators(path: Path, epoch: int) -> tuple[float, int]:
    total, count = 0.0, 0
    for rec in ckpt.read_metrics(path):
        if rec.get("kind") == "step" and rec.get("epoch") == epoch:
            total += rec["loss"] * rec["images"]
            count += rec["images"]
    return total, count


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop records after the checkpoint so the log matches an uninterrupted run."""
    if not path.exists():
        return
    kept = [rec for rec in ckpt.read_metrics(path) if rec.get("step", 0) <= step]
    atomic_write_text(path, "".join(json.dumps(rec) + "\n" for rec in kept))


# --------------------------------------------------------------------------- evaluation


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def predict(model, x, shots: int, seed: int, batch: int = 2000):
    """Majority-vote predictions and per-shot argmax over `shots` independent passes
    (`QNNModel.predict`, in batches of images so memory stays bounded)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    model.eval()
    parts = [model.predict(x[i:i + batch], shots, gen) for i in range(0, x.shape[0], batch)]
    return torch.cat([v for v, _ in parts]), torch.cat([p for _, p in parts], dim=1)


def evaluate_accuracy(model, x, y, shots: int, seed: int) -> tuple[float, float, float]:
    pred, _ = predict(model, x, shots, seed)
    k = int((pred == y).sum())
    lo, hi = wilson_interval(k, len(y))
    return k / len(y), lo, hi


def read_metrics(run_dir: os.PathLike | str) -> list[dict]:
    """The records of a run's metrics.jsonl (steps and epochs), in order."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise error("Q0530", f"{run_dir} has no metrics.jsonl", help="is this the run directory of `qnnc train`?")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
