"""A device's noise as data: frozen dataclasses, written to and read from JSON.

    NoiseModel
      qubits       per physical qubit: T1, T2 (seconds) and its readout assignment errors
      gates        per native gate and qubits: the reported error and the duration
      natives      how each gate of a neuron is run on the device: a sequence of native
                   gates (`NativeStep`), at most one of them depending on the angle
      layout       per hidden layer, per neuron: the physical qubits of its registers
                   (register order of the neuron: its `qubit`, then its ancillas)
      idle         seconds a carried qubit waits between layers (feed-forward); its
                   thermal relaxation is applied to the carried state at each layer

Readers: `ibm.from_fake_backend` (a qiskit fake backend's `Target`), `published` (IonQ,
Quantinuum: published rates, illustrative). `load` reads a JSON file written by
`qnnc noise show --json`, and validates it like every other input (Q0701-Q0719).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from qnnc.compiler.diagnostics import error

FORMAT = "qnnc-noise/1"


@dataclass(frozen=True)
class QubitNoise:
    """One physical qubit. t1, t2 in seconds (None: no relaxation). readout_p01 =
    P(read 1 | prepared 0), readout_p10 = P(read 0 | prepared 1)."""

    qubit: int
    t1: Optional[float]
    t2: Optional[float]
    readout_p01: float
    readout_p10: float


@dataclass(frozen=True)
class GateNoise:
    """A native gate on the given physical qubits (empty: on any qubits): its reported
    average gate error and its duration (seconds)."""

    gate: str
    qubits: tuple[int, ...]
    error: float
    duration: float


@dataclass(frozen=True)
class NativeStep:
    """One native gate of a decomposition, on wires (indices into the decomposed gate's
    qubits). A rotation's angle is scale * θ + offset (scale 0: a fixed angle)."""

    gate: str
    wires: tuple[int, ...]
    scale: float = 0.0
    offset: float = 0.0


@dataclass(frozen=True)
class Decomposition:
    """How a neuron gate runs on the device. `oriented`: for a two-qubit gate, True when
    the decomposition holds for a native two-qubit gate acting (first, second) in the
    neuron's wire order, False for the reverse, None when either direction does."""

    gate: str
    steps: tuple[NativeStep, ...]
    oriented: Optional[bool] = None


@dataclass(frozen=True)
class NoiseModel:
    name: str
    source: str
    illustrative: bool
    qubits: tuple[QubitNoise, ...]
    gates: tuple[GateNoise, ...]
    natives: tuple[Decomposition, ...]
    layout: Optional[tuple[tuple[tuple[int, ...], ...], ...]] = None
    idle: float = 0.0
    layout_source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Noise probes (the hardware paper's): K pairs (√X, √X†) after every neuron rotation,
    # each √X† run as rz(π) √X rz(π), as the compiled probes are (docs/targets.md).
    probe_pairs: int = 0
    # How the compiled circuits carry a neuron's qubit from layer to layer (the strategy the
    # layout was read from): "" or "dynamic": it stays on the device (its noisy state goes
    # on); "layered": the host re-prepares it each layer from its record of the measured
    # branch (the ideal state of the recorded outcomes, through the noisy preparation
    # gates); "deferred": not per neuron (`circuit.exact_outcome_distribution`).
    strategy: str = ""

    # ------------------------------------------------------------------ look-ups

    def qubit(self, q: int) -> QubitNoise:
        table = self._qubit_table()
        if q in table:
            return table[q]
        if -1 in table:  # the same for every qubit (a published average)
            return replace(table[-1], qubit=q)
        raise error("Q0706", f"noise model `{self.name}` has no qubit {q}",
                    help=f"the model covers {len(self.qubits)} qubits")

    def gate(self, name: str, qubits: tuple[int, ...]) -> Optional[GateNoise]:
        table = self._gate_table()
        return table.get((name, tuple(qubits))) or table.get((name, ()))

    def decompositions(self, gate: str) -> list[Decomposition]:
        return [d for d in self.natives if d.gate == gate]

    def _qubit_table(self) -> dict:
        t = self.__dict__.get("_qt")
        if t is None:
            t = {q.qubit: q for q in self.qubits}
            object.__setattr__(self, "_qt", t)
        return t

    def _gate_table(self) -> dict:
        t = self.__dict__.get("_gt")
        if t is None:
            t = {(g.gate, tuple(g.qubits)): g for g in self.gates}
            object.__setattr__(self, "_gt", t)
        return t

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict:
        d = {"format": FORMAT, "name": self.name, "source": self.source,
             "illustrative": self.illustrative, "idle": self.idle,
             "layout_source": self.layout_source, "notes": list(self.notes), "probe_pairs": self.probe_pairs,
             "strategy": self.strategy,
             "qubits": [asdict(q) for q in self.qubits],
             "gates": [{**asdict(g), "qubits": list(g.qubits)} for g in self.gates],
             "natives": [{"gate": n.gate, "oriented": n.oriented,
                          "steps": [{**asdict(s), "wires": list(s.wires)} for s in n.steps]}
                         for n in self.natives],
             "layout": None if self.layout is None else [[list(n) for n in layer] for layer in self.layout]}
        return d


STRATEGIES = ("", "dynamic", "layered", "deferred")


def with_layout(model: NoiseModel, layout, source: str, strategy: Optional[str] = None) -> NoiseModel:
    """The model bound to the physical qubits `layout` (per layer, per neuron); `strategy`
    (when given): the strategy whose circuits the layout was read from (`NoiseModel.strategy`)."""
    out = replace(model, layout=tuple(tuple(tuple(int(q) for q in n) for n in layer) for layer in layout),
                  layout_source=source)
    return out if strategy is None else replace(out, strategy=strategy)


# --------------------------------------------------------------------------- validation


def _bad(where: str, what: str):
    return error("Q0703", f"{where}: {what}",
                 help="write the file with `qnnc noise show --json` and edit the numbers")


def _num(v: Any, where: str, lo: float = 0.0, hi: float = math.inf, none_ok: bool = False):
    if v is None and none_ok:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise _bad(where, f"expected a finite number, got {json.dumps(v)}")
    if not lo <= float(v) <= hi:
        raise _bad(where, f"{v} is outside [{lo}, {hi}]")
    return float(v)


def _int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < -1:
        raise _bad(where, f"expected a qubit index, got {json.dumps(v)}")
    return int(v)


def _list(v: Any, where: str) -> list:
    if not isinstance(v, list):
        raise _bad(where, f"expected a list, got {type(v).__name__}")
    return v


def _obj(v: Any, where: str, keys: tuple[str, ...]) -> dict:
    if not isinstance(v, dict):
        raise _bad(where, f"expected an object, got {type(v).__name__}")
    missing = [k for k in keys if k not in v]
    if missing:
        raise _bad(where, "missing " + ", ".join(f"`{k}`" for k in missing))
    return v


def from_json(d: Any, where: str = "noise model") -> NoiseModel:
    from qnnc.compiler.gates import GATES
    from qnnc.runtime.noise.channels import NATIVE_FIXED

    if isinstance(d, dict) and d.get("command") == "noise" and "result" in d:  # `noise show --json`
        d = d["result"]
    d = _obj(d, where, ("format", "name", "qubits", "gates", "natives"))
    if d["format"] != FORMAT:
        raise _bad(where, f"format {json.dumps(d['format'])} is not {FORMAT!r}")
    qubits = []
    for i, q in enumerate(_list(d["qubits"], f"{where}: qubits")):
        w = f"{where}: qubits[{i}]"
        q = _obj(q, w, ("qubit", "t1", "t2", "readout_p01", "readout_p10"))
        qubits.append(QubitNoise(_int(q["qubit"], w + ".qubit"), _num(q["t1"], w + ".t1", 1e-12, none_ok=True),
                                 _num(q["t2"], w + ".t2", 1e-12, none_ok=True),
                                 _num(q["readout_p01"], w + ".readout_p01", 0, 0.5),
                                 _num(q["readout_p10"], w + ".readout_p10", 0, 0.5)))
    known = set(GATES) | set(NATIVE_FIXED)
    gates = []
    for i, g in enumerate(_list(d["gates"], f"{where}: gates")):
        w = f"{where}: gates[{i}]"
        g = _obj(g, w, ("gate", "qubits", "error", "duration"))
        if g["gate"] not in known:
            raise _bad(w, f"unknown native gate {json.dumps(g['gate'])}")
        gates.append(GateNoise(g["gate"], tuple(_int(q, w + ".qubits") for q in _list(g["qubits"], w)),
                               _num(g["error"], w + ".error", 0, 1), _num(g["duration"], w + ".duration", 0, 1)))
    natives = []
    for i, n in enumerate(_list(d["natives"], f"{where}: natives")):
        w = f"{where}: natives[{i}]"
        n = _obj(n, w, ("gate", "steps"))
        if n["gate"] not in GATES:
            raise _bad(w, f"unknown gate {json.dumps(n['gate'])}")
        arity = GATES[n["gate"]].qubits
        steps = []
        for j, s in enumerate(_list(n["steps"], w + ".steps")):
            ws = f"{w}.steps[{j}]"
            s = _obj(s, ws, ("gate", "wires"))
            if s["gate"] not in known:
                raise _bad(ws, f"unknown native gate {json.dumps(s['gate'])}")
            wires = tuple(_int(x, ws + ".wires") for x in _list(s["wires"], ws))
            width = GATES[s["gate"]].qubits if s["gate"] in GATES else 2
            if len(wires) != width or any(not 0 <= x < arity for x in wires) or len(set(wires)) != len(wires):
                raise _bad(ws, f"wires {list(wires)} do not fit a {arity}-qubit gate")
            steps.append(NativeStep(s["gate"], wires, _num(s.get("scale", 0.0), ws + ".scale", -1, 1),
                                    _num(s.get("offset", 0.0), ws + ".offset", -1e3, 1e3)))
        oriented = n.get("oriented")
        if oriented not in (None, True, False):
            raise _bad(w + ".oriented", "expected true, false or null")
        natives.append(Decomposition(n["gate"], tuple(steps), oriented))
    layout = d.get("layout")
    if layout is not None:
        layout = tuple(tuple(tuple(_int(q, f"{where}: layout") for q in _list(n, f"{where}: layout"))
                             for n in _list(layer, f"{where}: layout")) for layer in _list(layout, f"{where}: layout"))
    notes = d.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(x, str) for x in notes):
        raise _bad(where + ": notes", "expected a list of strings")
    for k in ("source", "layout_source"):
        if not isinstance(d.get(k, ""), str):
            raise _bad(f"{where}: {k}", "expected a string")
    if not isinstance(d.get("illustrative", False), bool):
        raise _bad(where + ": illustrative", "expected true or false")
    if not isinstance(d["name"], str) or not d["name"]:
        raise _bad(where + ": name", "expected a non-empty string")
    pairs = d.get("probe_pairs", 0)
    if isinstance(pairs, bool) or not isinstance(pairs, int) or not 0 <= pairs <= 10000:
        raise _bad(where + ": probe_pairs", f"expected an integer in [0, 10000], got {json.dumps(pairs)}")
    strategy = d.get("strategy", "")
    if strategy not in STRATEGIES:
        raise _bad(where + ": strategy", f"expected one of {', '.join(map(json.dumps, STRATEGIES))}, "
                   f"got {json.dumps(strategy)}")
    return NoiseModel(d["name"], d.get("source", ""), d.get("illustrative", False), tuple(qubits), tuple(gates),
                      tuple(natives), layout, _num(d.get("idle", 0.0), where + ".idle", 0, 1),
                      d.get("layout_source", ""), tuple(notes), pairs, strategy)


def load(path: str | Path) -> NoiseModel:
    p = Path(path)
    text = _read(p)
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error("Q0703", f"{p}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}",
                    help="write the file with `qnnc noise show --json`")
    return from_json(d, str(p))


def _read(p: Path) -> str:
    if not p.is_file():
        raise error("Q0702", f"no noise model file `{p}`",
                    help="MODEL is `ibm:BACKEND` (e.g. ibm:fake_brisbane), `ionq:aria`, `quantinuum:h1`, "
                         "or a JSON file written by `qnnc noise show --json`")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise error("Q0702", f"cannot read `{p}`: {exc.strerror}")
    if len(raw) > 64 << 20:
        raise error("Q0703", f"`{p}` is {len(raw)} bytes; a noise model file is at most 64 MiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error("Q0703", f"`{p}` is not UTF-8 text", help="write the file with `qnnc noise show --json`")
