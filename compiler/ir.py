"""The qnnc intermediate representation.

One immutable tree of frozen dataclasses. Every node carries the source span it came
from, so any pass (and any tool embedding the IR) can point a diagnostic back at the
`.qnn` text. Values are concrete: parameters are already substituted and sizes are
integers. The only symbolic part is a neuron's gate angles, which are expressions in
the neuron's pre-activation `z`, its previous outcome `last` and the neuron's own
parameters, bound per layer by a `NeuronActivation`.

The IR is serialised by `qnnc.compiler.serialize` (JSON with a `schema_version`), and
checked by `qnnc.compiler.verify` after every pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from qnnc.compiler.gates import GATES as GATE_TABLE
from qnnc.compiler.gates import LANGUAGE_GATES

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Span:
    """A region of a source file; lines and columns count from 1, end is exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    @staticmethod
    def unknown(file: str = "<unknown>") -> "Span":
        return Span(file, 1, 1, 1, 1)


NO_SPAN = Span("<generated>", 1, 1, 1, 1)


# --------------------------------------------------------------------------- expressions
# Angle expressions inside a neuron gate. Evaluated by the simulator (on tensors of z)
# and by the circuit lowerings (on numbers).


@dataclass(frozen=True)
class Const:
    value: float
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Ref:
    """A name: `z`, `last`, or one of the neuron's parameters."""

    name: str
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Unary:
    op: str  # "-"
    operand: "Expr"
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Binary:
    op: str  # "+", "-", "*", "/", "^"
    lhs: "Expr"
    rhs: "Expr"
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Call:
    """A built-in function (see `BUILTIN_FUNCTIONS`) or a squash-typed neuron parameter.

    A squash `f` applied to `x / a` with `a = 0` is the sign of `x` (sign(0) = +1):
    the a → 0 limit of tanh(x/a) and clip(x/a), which the classical network uses.
    """

    function: str
    args: tuple["Expr", ...]
    span: Span = NO_SPAN


Expr = Union[Const, Ref, Unary, Binary, Call]


def walk(e: Expr):
    """Every node of an expression, parents before children, left to right."""
    yield e
    children = ((e.operand,) if isinstance(e, Unary) else (e.lhs, e.rhs) if isinstance(e, Binary)
                else e.args if isinstance(e, Call) else ())
    for c in children:
        yield from walk(c)

# name -> number of arguments
BUILTIN_FUNCTIONS: dict[str, int] = {
    "sin": 1, "cos": 1, "tan": 1, "asin": 1, "acos": 1, "atan": 1,
    "exp": 1, "log": 1, "sqrt": 1, "tanh": 1, "abs": 1, "sign": 1,
    "clip": 3, "min": 2, "max": 2,
}
SQUASH_FUNCTIONS = ("tanh", "clip")  # values a squash parameter may take
NEURON_SPECIAL_NAMES = ("z", "last")


# --------------------------------------------------------------------------- neurons

PARAM_TYPES = ("real", "int", "squash")


@dataclass(frozen=True)
class NeuronParam:
    name: str
    type: str  # one of PARAM_TYPES
    lower: Optional[float]  # None: unbounded
    upper: Optional[float]
    default: Union[float, int, str, None]  # str for squash parameters
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Register:
    """A qubit of a neuron. `role` is "qubit" (the neuron's own, at most one) or
    "ancilla" (fresh |0> in every layer). A carried qubit keeps its state from the
    same-index neuron of the previous layer (model B)."""

    name: str
    role: str
    carried: bool = False
    span: Span = NO_SPAN


# The gates a neuron may use, read from the one gate table (compiler/gates.py).
GATES_1Q_ANGLE = tuple(n for n in LANGUAGE_GATES if GATE_TABLE[n].takes_angle)
GATES_1Q = tuple(n for n in LANGUAGE_GATES if GATE_TABLE[n].qubits == 1 and not GATE_TABLE[n].takes_angle)
GATES_2Q = tuple(n for n in LANGUAGE_GATES if GATE_TABLE[n].qubits == 2)
GATES = GATES_1Q_ANGLE + GATES_1Q + GATES_2Q


@dataclass(frozen=True)
class GateOp:
    gate: str  # one of GATES
    angle: Optional[Expr]  # present exactly for GATES_1Q_ANGLE
    targets: tuple[str, ...]  # register names; for cx: (control, target)
    span: Span = NO_SPAN


@dataclass(frozen=True)
class MeasureOp:
    """Z measurement. |0> gives +1, |1> gives -1. The `emit` measurement (exactly one
    per neuron) is the neuron's activation; others are discarded."""

    target: str
    emit: bool
    span: Span = NO_SPAN


@dataclass(frozen=True)
class ResetOp:
    target: str
    span: Span = NO_SPAN


Op = Union[GateOp, MeasureOp, ResetOp]


@dataclass(frozen=True)
class NeuronDef:
    name: str
    module: str  # "stdlib.neurons", or the path of the defining file
    params: tuple[NeuronParam, ...]
    registers: tuple[Register, ...]
    ops: tuple[Op, ...]
    span: Span = NO_SPAN

    def param(self, name: str) -> Optional[NeuronParam]:
        return next((p for p in self.params if p.name == name), None)

    @property
    def carried(self) -> bool:
        return any(r.carried for r in self.registers)


# --------------------------------------------------------------------------- networks


@dataclass(frozen=True)
class PreprocessStep:
    """One input preprocessing step, applied in order to the raw pixels.

    kind: "scale" (multiply by value), "pool" (average-pool value x value blocks),
    "threshold" (x > value -> +1 else -1). Flattening is implicit: a dense layer reads
    the flattened input.
    """

    kind: str
    value: float
    span: Span = NO_SPAN


PREPROCESS_KINDS = ("scale", "pool", "threshold")


@dataclass(frozen=True)
class Input:
    name: str
    shape: tuple[int, ...]  # raw shape, e.g. (28, 28)
    steps: tuple[PreprocessStep, ...]
    span: Span = NO_SPAN

    @property
    def features(self) -> int:
        """Number of values after preprocessing (pooling shrinks every axis)."""
        n = 1
        for d in self.shape:
            for s in self.steps:
                if s.kind == "pool":
                    d = d // int(s.value)
            n *= d
        return n


@dataclass(frozen=True)
class NormalInit:
    """Weights i.i.d. N(mean, std^2); `std` already evaluated with the layer's fan-in.
    `gain` is std^2 * fan_in, the constant C of the spin-model analysis."""

    mean: float
    std: float
    gain: float
    span: Span = NO_SPAN


@dataclass(frozen=True)
class UniformInit:
    low: float
    high: float
    span: Span = NO_SPAN


@dataclass(frozen=True)
class ZerosInit:
    span: Span = NO_SPAN


@dataclass(frozen=True)
class CheckpointInit:
    """Weights read from a checkpoint of an earlier run: `run` is its directory, `step`
    the checkpoint (None: the last one), `tensor` the layer name inside it."""

    run: str
    step: Optional[int]
    tensor: str
    span: Span = NO_SPAN


Init = Union[NormalInit, UniformInit, ZerosInit, CheckpointInit]


@dataclass(frozen=True)
class Dense:
    source: str  # the input's or an earlier layer's name
    bias: bool
    init: Init
    span: Span = NO_SPAN


CLASSICAL_ACTIVATIONS = ("sign", "relu", "tanh", "linear")


@dataclass(frozen=True)
class ClassicalActivation:
    kind: str  # one of CLASSICAL_ACTIVATIONS; sign(0) = +1
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Binding:
    name: str
    value: Union[float, int, str]
    span: Span = NO_SPAN


@dataclass(frozen=True)
class NeuronActivation:
    """A layer of quantum neurons: `neuron` names a NeuronDef, `args` binds every one
    of its parameters (defaults filled in)."""

    neuron: str
    args: tuple[Binding, ...]
    span: Span = NO_SPAN

    def arg(self, name: str):
        for b in self.args:
            if b.name == name:
                return b.value
        raise KeyError(name)


Activation = Union[ClassicalActivation, NeuronActivation]

LAYER_ROLES = ("hidden", "output")

# Limits of the compiler (elaboration refuses a program beyond them, the verifier an IR):
# sizes are refused before anything is allocated. A layer this wide (or a weight matrix
# this large) is far beyond what any simulator or device of this tool can hold.
from qnnc.compiler.limits import MAX_INPUT_FEATURES, MAX_LAYER_SIZE, MAX_WEIGHTS_PER_LAYER  # noqa: E402,F401


@dataclass(frozen=True)
class Layer:
    name: str
    size: int
    role: str  # "hidden" or "output"
    dense: Dense
    activation: Activation
    span: Span = NO_SPAN


READOUT_KINDS = ("logits", "argmax")


@dataclass(frozen=True)
class Readout:
    kind: str  # "logits" or "argmax"
    shots: int  # independent stochastic passes voted over; 1: a single pass
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Network:
    name: str
    input: Input
    layers: tuple[Layer, ...]
    readout: Readout
    span: Span = NO_SPAN

    def layer(self, name: str) -> Optional[Layer]:
        return next((l for l in self.layers if l.name == name), None)


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class Dataset:
    """`kind` "builtin": `name` like "mnist.train5k"; "file": `name` is an .npz path."""

    kind: str
    name: str
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Optimizer:
    name: str  # "sgd" or "adam"
    lr: float
    momentum: float
    weight_decay: float
    span: Span = NO_SPAN


GRADIENT_KINDS = ("straight_through", "exact")


@dataclass(frozen=True)
class Gradient:
    """straight_through: dd/dz = 1{|z| < window}; exact: enumerate measurement
    branches weighted by their probabilities (small networks only)."""

    kind: str
    window: float
    span: Span = NO_SPAN


@dataclass(frozen=True)
class CheckpointSchedule:
    every: Optional[int]  # every n steps
    log_steps: bool  # steps 1, 2, 5, 10, 20, 50, ...
    steps: tuple[int, ...]  # listed steps
    at_end: bool
    span: Span = NO_SPAN


@dataclass(frozen=True)
class TrainRecipe:
    network: str
    data: Dataset
    validate: Optional[Dataset]
    optimizer: Optimizer
    batch: int
    epochs: int
    seed: int
    loss: str  # "cross_entropy"
    gradient: Gradient
    checkpoints: CheckpointSchedule
    span: Span = NO_SPAN


# --------------------------------------------------------------------------- program

PARAM_VALUE_TYPES = ("real", "int")


@dataclass(frozen=True)
class ParamValue:
    """A top-level `param` after `--set` overrides."""

    name: str
    type: str  # "real" or "int"
    value: Union[float, int]
    lower: Optional[float]
    upper: Optional[float]
    overridden: bool
    span: Span = NO_SPAN


@dataclass(frozen=True)
class ModuleInfo:
    """A source module and the modules it imports (by name): the import graph."""

    name: str
    path: str
    imports: tuple[str, ...]
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Program:
    source: str  # the main file
    modules: tuple[ModuleInfo, ...]
    params: tuple[ParamValue, ...]
    neurons: tuple[NeuronDef, ...]
    networks: tuple[Network, ...]
    trains: tuple[TrainRecipe, ...]
    schema_version: int = SCHEMA_VERSION
    span: Span = field(default=NO_SPAN)

    def neuron(self, name: str) -> Optional[NeuronDef]:
        return next((n for n in self.neurons if n.name == name), None)

    def network(self, name: Optional[str] = None) -> Optional[Network]:
        if name is None:
            return self.networks[0] if self.networks else None
        return next((n for n in self.networks if n.name == name), None)

    def train(self, network: str) -> Optional[TrainRecipe]:
        return next((t for t in self.trains if t.network == network), None)

    def param(self, name: str) -> Optional[ParamValue]:
        return next((p for p in self.params if p.name == name), None)


# Every node class, for the serialiser and the JSON Schema.
NODE_TYPES: tuple[type, ...] = (
    Span, Const, Ref, Unary, Binary, Call, NeuronParam, Register, GateOp, MeasureOp,
    ResetOp, NeuronDef, PreprocessStep, Input, NormalInit, UniformInit, ZerosInit,
    CheckpointInit, Dense, ClassicalActivation, Binding, NeuronActivation, Layer, Readout,
    Network, Dataset, Optimizer, Gradient, CheckpointSchedule, TrainRecipe, ParamValue,
    ModuleInfo, Program,
)
