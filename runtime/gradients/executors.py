"""One executor interface for measured gradients and fine-tuning: sample the network's
hidden outcomes, for a batch of images, under a list of angle-shift variants.

    ex.sample(x [B, F] float64, shots, variants: list[Shift | None])
        -> one list per variant of per-hidden-layer outcomes [shots, B, N] (±1, float64)
    ex.set_weights(tensors)      # checkpoint names -> arrays; the next samples use them
    ex.circuits                  # circuits executed so far (0 for the simulator)

* `SimulatorExecutor`: the torch simulator in shot mode (`QNNModel.trace` with the
  neuron kernel's angle-shift hook); every variant and image in one batched pass.
* `CircuitExecutor`: the target's compiled circuits (every strategy) on the target's
  local simulator (`simulator="noisy"`: for IBM, Aer with the fake backend's noise,
  `AerSimulator.from_backend(FakeBrisbane())`). A variant is the same network with one
  neuron's angle shifted in the circuit IR (`network.with_angle_shift`); the `layered`
  strategy binds angles on the host, so one compiled (transpiled) program serves every
  image, variant and weight update, and all images x variants x shots of a `sample` run
  together: one Aer call per layer (`host.run_layered_many`; parameter rows bound at run
  time), on one copy of the layer's circuit by default (the qubits the fast executor's
  noise model is bound to); `dynamic` and `deferred` bake the angles in and recompile.
* Real hardware: `CircuitExecutor(..., via="client", local=False)` runs the same
  variants through the vendor's submission client (`qnnc.runtime.targets.submit`, as
  `qnnc submit --yes`); `local=True` is that client on its offline substitute.
  Documented in docs/hardware-in-the-loop.md; the device path is not exercised here (no
  test touches a network or a vendor account).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np
import torch

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import error
from qnnc.runtime.gradients.estimators import Shift
from qnnc.runtime.targets.host import fresh_seed

# The simulator batches variants x images x shots x width up to about this many values.
_SIM_CHUNK_ELEMENTS = 1 << 22


class SimulatorExecutor:
    """The torch simulator in shot mode (float64)."""

    name = "sim"

    def __init__(self, program: ir.Program, network: ir.Network, tensors: dict, seed: int = 0, noise=None):
        from qnnc.runtime.simulator import QNNModel

        self.noise = noise  # a bound `qnnc.runtime.noise.NoiseModel`, or None (ideal)
        self.model = QNNModel(program, network, seed=seed, dtype=torch.float64, noise=noise)
        self.set_weights(tensors)
        self.generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 0x6AD]).generate_state(1)[0]))
        self.circuits = 0
        self.hidden = [p.name for p in self.model.plans if p.kind == "neuron"]
        self.width = {p.name: p.size for p in self.model.plans}

    def set_weights(self, tensors: dict) -> None:
        self.model.load_tensors({k: torch.as_tensor(np.asarray(v)) for k, v in tensors.items()})

    def sample(self, x, shots: int, variants: Sequence[Optional[Shift]]) -> list[list[torch.Tensor]]:
        x = torch.as_tensor(x, dtype=torch.float64)
        B = x.shape[0]
        per_variant = B * shots * max(self.width.values())
        group = max(1, _SIM_CHUNK_ELEMENTS // max(per_variant, 1))
        out: list[list[torch.Tensor]] = []
        for g0 in range(0, len(variants), group):
            vs = variants[g0:g0 + group]
            V = len(vs)
            shifts: dict = {}
            for v, sh in enumerate(vs):
                if sh is None:
                    continue
                t = shifts.setdefault(sh.name, {}).setdefault(
                    sh.op, torch.zeros(V * B, 1, self.width[sh.name], dtype=torch.float64))
                t[v * B:(v + 1) * B, 0, sh.neuron] += sh.delta
            with torch.no_grad():
                rec = self.model.trace(x.repeat(V, 1), shots, self.generator, shifts=shifts or None)
            for v in range(V):
                out.append([rec[n][1][:, v * B:(v + 1) * B].contiguous() for n in self.hidden])
        return out


class CircuitExecutor:
    """Compiled circuits of a target on its local simulator."""

    name = "circuits"
    noise = None  # the circuits' own simulator brings its noise

    def __init__(self, program: ir.Program, network: ir.Network, tensors: dict, *, target: str = "ibm",
                 strategy: Optional[str] = None, backend: Optional[str] = None, simulator: str = "noisy",
                 seed: int = 0, max_table_width: Optional[int] = None, via: str = "simulator",
                 local: bool = True, copies: Optional[int] = 1):
        """`via="simulator"`: the target's local simulator (`simulator`: ideal | noisy).
        `via="client"`: the vendor's submission client (`qnnc.runtime.targets.submit`,
        as `qnnc submit`), with `local=True` on its offline substitute (IBM: SamplerV2 on
        the fake backend; no credentials, no network); `local=False` submits to the
        device with the vendor's standard credentials (not exercised here).
        `copies`: copies of each `layered` circuit packed side by side (1: one copy, on the
        qubits of the fast executor's noise-model layout; None fills the device, so shots
        run on several qubit sets with their own noise)."""
        if via not in ("simulator", "client"):
            raise error("Q0723", f"unknown way to run circuits `{via}`", help="simulator or client")
        self.via, self.local = via, local
        self.program, self.network = program, network
        self.target, self.strategy, self.backend = target, strategy, backend
        self.simulator, self.max_table_width = simulator, max_table_width
        self.copies = copies
        self.seeds = np.random.SeedSequence([seed, 0xC1C])
        self.circuits = 0
        self.compilations = 0
        self._base = None
        self._local = None  # the layered program's local executor (one per compilation)
        self.set_weights(tensors)

    def set_weights(self, tensors: dict) -> None:
        self.tensors = {k: np.asarray(v, dtype=np.float64) for k, v in tensors.items()}
        if self._base is not None and self._base.strategy != "layered":
            self._base = None

    def _compile(self, x: np.ndarray, shift: Optional[Shift]):
        from qnnc.runtime.targets.compile import compile_network
        from qnnc.runtime.targets.network import resolve, with_angle_shift

        if self._base is not None and self._base.strategy == "layered":
            # The layered circuits bind every angle on the host: the same program serves
            # every image, variant and weight update; only the host's network changes.
            spec = resolve(self.network, self.program.neurons, self.tensors, x)
            if shift is not None:
                spec = with_angle_shift(spec, shift.layer, shift.neuron, shift.gate, shift.delta)
            return dataclasses.replace(self._base, spec=spec)
        self.compilations += 1
        compiled = compile_network(self.program, self.program.neurons, self.tensors, x, target=self.target,
                                   strategy=self.strategy, backend=self.backend, network=self.network.name,
                                   max_table_width=self.max_table_width,
                                   copies=self.copies,
                                   angle_shift=None if shift is None else
                                   (shift.layer, shift.neuron, shift.gate, shift.delta))
        if compiled.strategy == "layered" and shift is None:
            self._base = compiled
        return compiled

    def _seed(self) -> int:
        return fresh_seed(self.seeds)

    def sample(self, x, shots: int, variants: Sequence[Optional[Shift]]) -> list[list[torch.Tensor]]:
        from qnnc.runtime.targets.compile import run_compiled

        x = np.asarray(x, dtype=np.float64)
        B = x.shape[0]
        if self.via == "simulator":
            base = self._compile(x[0], None)
            if base.strategy == "layered":
                return self._sample_layered(x, shots, variants)
        per: list[list[np.ndarray]] = [[] for _ in variants]
        for b in range(B):
            for v, sh in enumerate(variants):
                c = self._compile(x[b], sh)
                seed = self._seed()
                if self.via == "client":
                    from qnnc.runtime.targets.submit import submit

                    per[v].append(submit(c, shots, local=self.local, seed=seed,
                                         ideal=self.simulator == "ideal").outcomes)
                else:
                    per[v].append(run_compiled(c, shots, self.simulator, seed))
                self.circuits += len(c.circuits)
                widths = c.spec.widths
        return _split(per, widths)

    def _sample_layered(self, x: np.ndarray, shots: int, variants) -> list[list[torch.Tensor]]:
        """Every image x variant in one `host.run_layered_many`: one Aer call per layer."""
        from qnnc.runtime.targets import host
        from qnnc.runtime.targets.compile import vendor

        base = self._base
        if self._local is None or self._local[0] is not base:
            self._local = (base, vendor(base.target).local_executor(base.native, base.lowered, self.simulator,
                                                                    self._seed()))
        ex = self._local[1]
        specs = [self._compile(x[b], sh).spec for b in range(x.shape[0]) for sh in variants]
        rng = np.random.default_rng(np.random.SeedSequence(self._seed()))
        rows = host.run_layered_many(base.lowered, specs, ex, [int(shots)] * len(specs), rng)
        self.circuits += len(specs) * len(base.circuits)
        V = len(variants)
        per = [[rows[b * V + v] for b in range(x.shape[0])] for v in range(V)]
        return _split(per, base.spec.widths)


def _split(per: list[list[np.ndarray]], widths: list[int]) -> list[list[torch.Tensor]]:
    """Per variant, its images' [shots, H] outcome rows -> per hidden layer [S, B, N] (float64)."""
    offs = np.cumsum([0] + list(widths))
    out = []
    for v in range(len(per)):
        r = np.stack(per[v], 1).astype(np.float64)  # [S, B, H]
        out.append([torch.from_numpy(np.ascontiguousarray(r[:, :, offs[l]:offs[l + 1]]))
                    for l in range(len(widths))])
    return out


EXECUTORS = ("sim", "aer")


def make_executor(kind: str, program: ir.Program, network: ir.Network, tensors: dict, *, seed: int = 0,
                  target: str = "ibm", strategy: Optional[str] = None, backend: Optional[str] = None,
                  noisy: bool = True, noise=None):
    """`sim`: the torch simulator in shot mode (with `noise`, a bound noise model, under
    that device noise); `aer`: the compiled circuits of `target` on its local simulator,
    with the backend's noise when `noisy` (Q0723 for another kind)."""
    if kind == "sim":
        return SimulatorExecutor(program, network, tensors, seed, noise=noise)
    if kind == "aer":
        return CircuitExecutor(program, network, tensors, target=target, strategy=strategy, backend=backend,
                               simulator="noisy" if noisy else "ideal", seed=seed)
    raise error("Q0723", f"unknown executor `{kind}`", help="executors: " + ", ".join(f"`{e}`" for e in EXECUTORS))
