"""The host side of execution, target-neutral: reading outcomes out of measured bits,
and the `layered` strategy's feed-forward (bind each shot's angles from the previous
layer's bits, pack shots into circuit copies, track carried qubits).

A vendor supplies an `Executor`: run circuit `index` once per job, with the job's
parameter values and shot count, and return each job's bits [shots, num_clbits] (bit
1 is |1>). Each call to a simulator must draw a fresh seed (a fixed Aer seed repeats
its draws in every run).
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol, Sequence

import numpy as np

from qnnc.runtime.targets.circuit import Circuit
from qnnc.runtime.targets.lowering import ChunkPlan, Lowered
from qnnc.runtime.targets.network import NetworkSpec


def fresh_seed(seeds: np.random.SeedSequence) -> int:
    """The next simulator seed of a run's seed sequence (a 31-bit child seed): a fresh seed
    per call, since a fixed one repeats the same draws in every call."""
    return int(seeds.spawn(1)[0].generate_state(1)[0] & 0x7FFFFFFF)


class Executor(Protocol):
    def run(self, index: int, values: Optional[np.ndarray], shots: Sequence[int]) -> list[np.ndarray]:
        ...


def outcomes_from_bits(circuit: Circuit, spec: NetworkSpec, bits: np.ndarray) -> np.ndarray:
    """Rows of ±1 hidden outcomes from one circuit's measured bits (all layers)."""
    offs = spec.offsets()
    out = np.ones((bits.shape[0], spec.num_outcomes), dtype=np.int8)
    for o in circuit.outcomes:
        if o.emit and o.copy == 0:
            out[:, offs[o.layer] + o.neuron] = 1 - 2 * bits[:, o.clbit].astype(np.int8)
    return out


def run(lowered: Lowered, spec: NetworkSpec, executor: Executor, shots: int,
        seed: Optional[int], progress: Optional[Callable[[str], None]] = None) -> np.ndarray:
    """Sample `shots` forward passes: rows of ±1 hidden outcomes. A `layered` program
    runs layer by layer (the host's feed-forward, its draws seeded by `seed`);
    `progress` is told what runs, before each layer's circuits."""
    if lowered.strategy == "layered":
        rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        return run_layered(lowered, spec, executor, shots, rng, progress)
    if progress:
        progress(f"{lowered.circuits[0].name}: {shots} shots")
    return run_single(lowered, spec, executor, shots)


def run_single(lowered: Lowered, spec: NetworkSpec, executor: Executor, shots: int) -> np.ndarray:
    (bits,) = executor.run(0, None, [shots])
    return outcomes_from_bits(lowered.circuits[0], spec, bits)


def prep_angles(states: np.ndarray) -> np.ndarray:
    """(ry, rz) angles with Rz(phi) Ry(theta)|0> equal to each state up to phase."""
    a, b = states[..., 0], states[..., 1]
    theta = 2 * np.arctan2(np.abs(b), np.abs(a))
    phi = np.where((np.abs(a) > 1e-12) & (np.abs(b) > 1e-12), np.angle(b) - np.angle(a), 0.0)
    return np.stack([theta, phi], -1)


def _pack(rows: np.ndarray, copies: int):
    """Jobs for per-sample parameter rows: equal rows share a circuit whose copies all
    carry them (shots = count // copies); the rest go one per copy, one shot each.
    Yields (row of copy k for k in copies, shots, assignment [shots, copies] of samples)."""
    uniq, inverse = np.unique(np.round(rows, 12), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(uniq.shape[0] + 1))
    jobs = []
    pool: list[int] = []
    for u in range(uniq.shape[0]):
        samples = order[bounds[u]:bounds[u + 1]]
        full = samples.size // copies
        if full:
            jobs.append(([u] * copies, full, samples[:full * copies].reshape(full, copies)))
        pool.extend(samples[full * copies:].tolist())
    for s in range(0, len(pool), copies):
        group = pool[s:s + copies]
        assign = np.full((1, copies), -1, dtype=np.int64)
        assign[0, :len(group)] = group
        us = [int(inverse[g]) for g in group] + [int(inverse[group[0]])] * (copies - len(group))
        jobs.append((us, 1, assign))
    return uniq, jobs


def shot_inputs(x: np.ndarray, shots: int) -> np.ndarray:
    """The input of every shot: one input for all ([features]), or, for a `layered`
    program, one per shot ([shots, features]: many images in one run, as the landscape
    study does)."""
    x = np.asarray(x)
    return x if x.ndim == 2 and x.shape[0] == shots else np.broadcast_to(x.reshape(-1), (shots, x.size))


def run_layered(lowered: Lowered, spec: NetworkSpec, executor: Executor, shots: int,
                rng: np.random.Generator, progress: Optional[Callable[[str], None]] = None) -> np.ndarray:
    return run_layered_many(lowered, [spec], executor, [shots], rng, progress)[0]


def run_layered_many(lowered: Lowered, specs: Sequence[NetworkSpec], executor: Executor, shots: Sequence[int],
                     rng: np.random.Generator, progress: Optional[Callable[[str], None]] = None
                     ) -> list[np.ndarray]:
    """`run_layered` for several networks that share the lowered program (the same
    layers and neurons; other weights, inputs or angle shifts: e.g. every image and
    parameter-shift variant of one gradient), `shots[g]` passes of `specs[g]`. Each layer's
    circuits run once for all of them: one executor call per chunk and layer, the
    shots' parameter rows packed together. Each network's outcomes as `run_layered`."""
    specs = list(specs)
    bounds = np.cumsum([0] + [int(s) for s in shots])
    total = int(bounds[-1])
    outs = [np.ones((int(s), sp.num_outcomes), dtype=np.int8) for sp, s in zip(specs, shots)]
    d_prev: list[Optional[np.ndarray]] = [None] * len(specs)
    carried: list[Optional[np.ndarray]] = [None] * len(specs)  # [shots, size, 2]
    hidden = specs[0].hidden
    for li, layer0 in enumerate(hidden):
        nm = layer0.neuron
        zs, lasts = [], []
        for g, sp in enumerate(specs):
            layer = sp.hidden[li]
            inp = shot_inputs(sp.x, int(shots[g])) if d_prev[g] is None else d_prev[g]
            zs.append(layer.z(inp))
            lasts.append(layer.last(d_prev[g], int(shots[g])))
            if nm.carried_reg is not None and (carried[g] is None or not layer.carried):
                c = np.zeros((int(shots[g]), layer.size, 2), dtype=complex)
                c[..., 0] = 1.0
                carried[g] = c
        records = np.zeros((total, layer0.size, len(nm.measures)), dtype=np.int8)
        if progress:
            n = sum(1 for ch in lowered.chunks if ch.layer == li)
            progress(f"layer {li + 1}/{len(hidden)} `{layer0.name}`: {n} circuit(s), {total} shots")
        for ci, ch in enumerate(lowered.chunks):
            if ch.layer == li:
                rows = np.concatenate([_chunk_rows(ch, sp.hidden[li], zs[g], lasts[g], carried[g])
                                       for g, sp in enumerate(specs)], 0)
                _run_chunk_rows(ci, ch, rows, executor, records)
        for g, sp in enumerate(specs):
            layer = sp.hidden[li]
            rec = records[bounds[g]:bounds[g + 1]]
            emits = rec[:, :, nm.emit_index]
            outs[g][:, sp.offsets()[li]:sp.offsets()[li] + layer.size] = 1 - 2 * emits
            if li + 1 < len(sp.hidden) and sp.hidden[li + 1].carried:
                carried[g] = _carry(layer, zs[g], lasts[g], carried[g], rec, rng)
            else:
                carried[g] = None
            d_prev[g] = 1.0 - 2.0 * emits
    return outs


def _chunk_rows(ch: ChunkPlan, layer, z, last, carried) -> np.ndarray:
    """Each shot's parameter row for the chunk's neurons: their gate angles, then (for
    a carried register) the (ry, rz) preparation of each carried state."""
    nm = layer.neuron
    shots = z.shape[0]
    n = len(ch.neurons)
    ang = np.zeros((shots, n, len(nm.gates)))
    for j, i in enumerate(ch.neurons):
        for g, a in enumerate(layer.model(i).angles(z[:, i], last[:, i])):
            if a is not None:
                ang[:, j, g] = a
    cols = [ang.reshape(shots, -1)]
    if nm.carried_reg is not None:
        cols.append(prep_angles(carried[:, list(ch.neurons)]).reshape(shots, -1))
    return np.concatenate(cols, 1)


def _run_chunk_rows(ci: int, ch: ChunkPlan, rows: np.ndarray, executor: Executor, records: np.ndarray) -> None:
    n = len(ch.neurons)
    layout = [ch.angle_params.reshape(ch.copies, -1)]
    if ch.prep_params is not None and rows.shape[1] > layout[0].shape[1]:
        layout.append(ch.prep_params.reshape(ch.copies, -1))
    layout_idx = np.concatenate(layout, 1)  # [copies, row width] -> param index or -1
    uniq, jobs = _pack(rows, ch.copies)
    n_params = len(ch.circuit.params)
    values = np.zeros((len(jobs), n_params))
    for jn, (us, _, _) in enumerate(jobs):
        for cp, u in enumerate(us):
            ok = layout_idx[cp] >= 0
            values[jn, layout_idx[cp][ok]] = uniq[u][ok]
    results = executor.run(ci, values if n_params else None, [s for _, s, _ in jobs])
    for (_, _, assign), bits in zip(jobs, results):
        for cp in range(ch.copies):
            samples = assign[:, cp]
            ok = samples >= 0
            if not ok.any():
                continue
            got = bits[ok][:, ch.clbits[cp].reshape(-1)].reshape(ok.sum(), n, -1)
            records[samples[ok][:, None], np.array(ch.neurons)[None, :]] = got


def _carry(layer, z, last, carried, records, rng: np.random.Generator) -> np.ndarray:
    """Each neuron's qubit state after the branch its measurements reported; branches
    the record does not tell apart (traced-out registers) are drawn with their
    conditional probabilities."""
    nm = layer.neuron
    shots, size = z.shape
    out = np.zeros((shots, size, 2), dtype=complex)
    for i in range(size):
        cin = carried[:, i] if (nm.carried_reg is not None and carried is not None) else None
        brs = layer.model(i).branches(z[:, i], last[:, i], cin)
        weights = np.stack([np.all(records[:, i, :] == np.array(b.record), axis=1) *
                            (b.prob + 1e-300) for b in brs], 1)
        cum = np.cumsum(weights, 1)
        pick = (cum < rng.random(shots)[:, None] * cum[:, -1:]).sum(1)
        pick = np.minimum(pick, len(brs) - 1)
        states = np.stack([b.carried_out for b in brs], 1)  # [shots, branches, 2]
        out[:, i] = states[np.arange(shots), pick]
    return out
