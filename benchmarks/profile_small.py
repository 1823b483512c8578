"""Where the time of one small sampling call goes: cProfile of `model(x, shots=10)` on 20
test images of the hardware network (the 200-pass case of bench_small.py).

    .venv/bin/python benchmarks/profile_small.py
"""
import time, torch, numpy as np
from qnnc.compiler import load_program
from qnnc.runtime.simulator import QNNModel
from qnnc.runtime.data import load_dataset, preprocess
prog = load_program("examples/hardware.qnn")
model = QNNModel(prog, "hardware", seed=0)
ds = load_dataset("mnist.test")
x = torch.from_numpy(preprocess(ds.images[:20], model.network.input))
gen = torch.Generator().manual_seed(0)
with torch.no_grad():
    for _ in range(200): model(x, shots=10, generator=gen)
    t=time.perf_counter()
    for _ in range(2000): model(x, shots=10, generator=gen)
    print("per call us", (time.perf_counter()-t)/2000*1e6)
    import cProfile, pstats
    pr=cProfile.Profile(); pr.enable()
    for _ in range(3000): model(x, shots=10, generator=gen)
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(18)
