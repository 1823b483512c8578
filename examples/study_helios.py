"""Selene against the torch simulator on a trained network, image by image.

    qnnc train examples/hardware.qnn --epochs 1 --out runs/hardware
    python examples/study_helios.py --run runs/hardware --images 50 --shots 400

One Helios program (`--target helios`'s Guppy source, one forward pass per image in
every shot) sampled on Selene, and the simulator's 2,000 passes per image: single-shot
accuracy of both, and each image's total-variation distance between the two class
distributions, against the distance that sampling alone gives (multinomial draws of the
same size from the simulator's distribution).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/hardware")
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--shots", type=int, default=400)
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args(argv)
    import torch

    from qnnc.compiler import load_program
    from qnnc.runtime import weights as weight_source
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.targets.helios.guppy_source import guppy_source
    from qnnc.runtime.targets.helios.selene import SeleneRunner, compile_source, parse_shot
    from qnnc.runtime.targets.network import resolve
    from qnnc.runtime.train import build_model, predict

    prog = load_program(str(Path(__file__).resolve().parent / "hardware.qnn"))
    net = prog.network("hardware")
    last = sorted((Path(args.run) / "checkpoints").glob("step-*.safetensors"))[-1]
    w, _, _ = weight_source.load_weights(prog, net, str(last), 0)
    n, shots = args.images, args.shots
    ds = load_dataset("mnist.test")
    xs = preprocess(ds.images[:n], net.input).astype(np.float64)
    y = ds.labels[:n].astype(int)
    model = build_model(prog, net, 0)
    model.load_tensors({k: torch.from_numpy(np.array(v)) for k, v in w.items()})
    _, per = predict(model, torch.from_numpy(xs), 2000, 0)
    per = per.numpy()
    sim = np.stack([np.bincount(per[:, i], minlength=10) for i in range(n)]) / per.shape[0]
    src = guppy_source(resolve(net, prog.neurons, w, xs[0]), list(xs))
    runner = SeleneRunner(compile_source(src.text), src.max_live_qubits, seed=args.seed)
    sel = np.zeros((n, 10))
    for res in runner.shots(shots):
        _, labels = parse_shot(res, src.layers, n, True)
        sel[np.arange(n), labels] += 1
    sel /= shots
    rng = np.random.default_rng(0)
    null = np.stack([rng.multinomial(shots, sim[i]) for i in range(n)]) / shots
    print(f"{last}: {n} images, {shots} Selene shots and 2000 simulator passes per image")
    print(f"single-shot accuracy: Selene {np.mean(sel[np.arange(n), y]):.4f}, "
          f"simulator {np.mean(sim[np.arange(n), y]):.4f}")
    print(f"per-image TV distance: mean {np.mean(0.5 * np.abs(sel - sim).sum(1)):.4f} "
          f"(sampling alone: {np.mean(0.5 * np.abs(null - sim).sum(1)):.4f}), "
          f"max {np.max(0.5 * np.abs(sel - sim).sum(1)):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
