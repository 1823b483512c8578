"""Guppy source -> HUGR (guppylang), and HUGR -> samples on the Selene emulator
(selene-sim, Quest state vector). Both are the `helios` extra, imported here only."""

from __future__ import annotations

import importlib.util
import hashlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from qnnc.runtime.targets.circuit import Circuit
from qnnc.runtime.targets.errors import missing_extra, refuse
from qnnc.runtime.targets.helios.guppy_source import GuppySource
from qnnc.runtime.targets.host import fresh_seed


def _guppylang():
    try:
        import guppylang  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("guppylang", "helios", exc)


def _selene():
    try:
        import selene_sim  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("selene-sim", "helios", exc)
    return selene_sim


@dataclass
class HeliosProgram:
    backend: str
    source: GuppySource
    package: Any  # hugr.package.Package
    skeleton: Circuit


def compile_source(text: str) -> Any:
    """Compile a Guppy module's text (its `main`) to a HUGR package. guppylang reads a
    function's source from its file, so the text is imported from a temporary file."""
    _guppylang()
    name = "qnnc_guppy_" + hashlib.sha256(text.encode()).hexdigest()[:16]
    with tempfile.TemporaryDirectory(prefix="qnnc-guppy-") as tmp:
        path = Path(tmp) / f"{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
            return module.main.compile()
        except Exception as exc:  # guppylang raises several types; report them as one
            raise refuse("Q0323", f"guppylang could not compile the program: {exc}",
                         help="report this: the program qnnc writes should always compile")
        finally:
            sys.modules.pop(name, None)


def statistics(prog: HeliosProgram) -> dict:
    """Per shot: the skeleton's counts and the program's float work."""
    st = prog.skeleton.stats()
    c = prog.source.counts
    ops = {k: v for k, v in c.items() if v}
    return {**st, "qubits": prog.source.max_live_qubits, "ops": ops,
            "float_multiply_adds": c.get("float_multiply_adds", 0)}


# Selene builds (HUGR -> LLVM -> a native executable, seconds each) kept per process,
# by the package's hash: a program run again (another seed, another call) is not rebuilt.
_BUILDS: dict[str, tuple[Any, Any]] = {}
_MAX_BUILDS = 8


def _build(selene, package: Any):
    key = hashlib.sha256(package.to_bytes()).hexdigest()
    if key not in _BUILDS:
        if len(_BUILDS) >= _MAX_BUILDS:
            old = next(iter(_BUILDS))
            _BUILDS.pop(old)[0].cleanup()
        folder = tempfile.TemporaryDirectory(prefix="qnnc-selene-")
        try:
            inst = selene.build(package, build_dir=Path(folder.name) / "build")
        except Exception as exc:
            folder.cleanup()
            raise refuse("Q0324", f"Selene could not build the program: {exc}")
        _BUILDS[key] = (folder, inst)
    return _BUILDS[key][1]


class SeleneRunner:
    """One HUGR package built by Selene (once per process), sampled with fresh seeds
    per call."""

    def __init__(self, package: Any, n_qubits: int, seed: Optional[int] = None):
        self.selene = _selene()
        self.package = package
        self.n_qubits = n_qubits
        self.seeds = np.random.SeedSequence(seed)

    def instance(self):
        return _build(self.selene, self.package)

    def shots(self, n: int) -> Iterator[list[tuple[str, Any]]]:
        """`n` shots, each a list of (tag, value) results in program order."""
        from selene_sim import Quest

        inst = self.instance()
        seed = fresh_seed(self.seeds)
        try:
            # consume each shot fully before the next (collecting the generators first
            # breaks Selene's result stream)
            for shot in inst.run_shots(Quest(random_seed=seed), n_qubits=self.n_qubits,
                                       n_shots=int(n), random_seed=seed):
                yield list(shot)
        except Exception as exc:
            if "QnncError" in type(exc).__name__:
                raise
            raise refuse("Q0324", f"Selene failed while running the program: {exc}")

    def close(self) -> None:  # the build stays cached for the process
        pass


def parse_shot(results: Sequence[tuple[str, Any]], layers: Sequence[str], images: int,
               has_label: bool) -> tuple[list[np.ndarray], list[int]]:
    """Split one shot's results into per-image outcome rows (±1, all hidden layers) and
    labels (-1 without an output layer)."""
    per = len(layers) + (1 if has_label else 0)
    if len(results) != per * images:
        raise refuse("Q0324", f"the program returned {len(results)} results per shot, "
                     f"expected {per * images}")
    rows, labels = [], []
    for k in range(images):
        chunk = results[k * per:(k + 1) * per]
        for (tag, _), name in zip(chunk, layers):
            if tag != name:
                raise refuse("Q0324", f"result `{tag}` where `{name}` was expected")
        rows.append(np.concatenate([np.asarray(v, dtype=float) for _, v in chunk[:len(layers)]]))
        labels.append(int(chunk[-1][1]) if has_label else -1)
    return rows, labels


class SeleneExecutor:
    """`host.Executor` for the Helios program: one call runs `shots` shots of the one
    program and returns their measured emit bits in the skeleton's clbit layout. The
    labels the program computed are kept in `labels`."""

    def __init__(self, prog: HeliosProgram, seed: Optional[int] = None):
        self.prog = prog
        self.runner = SeleneRunner(prog.package, max(prog.source.max_live_qubits, 1), seed)
        self.labels: list[int] = []

    def run(self, index: int, values: Optional[np.ndarray], shots: Sequence[int]) -> list[np.ndarray]:
        sk = self.prog.skeleton
        emit = {(o.layer, o.neuron): o.clbit for o in sk.outcomes if o.emit}
        src = self.prog.source
        sizes = sorted({o.layer for o in sk.outcomes})
        cols = [emit[(li, i)] for li in sizes
                for i in range(sum(1 for o in sk.outcomes if o.emit and o.layer == li))]
        out = []
        for n in shots:
            bits = np.zeros((int(n), sk.num_clbits), dtype=np.uint8)
            for s, res in enumerate(self.runner.shots(int(n))):
                rows, labels = parse_shot(res, src.layers, 1, src.label)
                bits[s, cols] = (rows[0] < 0).astype(np.uint8)
                self.labels.extend(labels)
            out.append(bits)
        return out
