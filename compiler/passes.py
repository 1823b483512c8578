"""Passes over the IR: named, small, composable, each a frozen dataclass.

A pass maps a Program to a Program. The `PassManager` runs the verifier after every
pass, so a pass that breaks an invariant is caught where it happened (with the pass's
name), not three lowerings later.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, ClassVar, Mapping, Sequence

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import Diagnostic, QnncError
from qnnc.compiler.verify import verify


@dataclass(frozen=True)
class Pass:
    name: ClassVar[str] = "pass"

    def run(self, program: ir.Program) -> ir.Program:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class FunctionPass(Pass):
    """Wraps a function as a pass (for tools embedding the IR); `label` names it."""

    fn: Callable[[ir.Program], ir.Program]
    label: str = "function"

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.label

    def run(self, program: ir.Program) -> ir.Program:
        return self.fn(program)


@dataclass(frozen=True)
class SelectNetwork(Pass):
    """Keep one network (and its train recipe): what a lowering works on."""

    network: str
    name: ClassVar[str] = "select-network"

    def run(self, program: ir.Program) -> ir.Program:
        net = program.network(self.network)
        if net is None:
            from qnnc.compiler.diagnostics import did_you_mean, error
            raise error("Q0232", f"no network `{self.network}` in {program.source}",
                        help=did_you_mean(self.network, [n.name for n in program.networks])
                        or "networks: " + ", ".join(n.name for n in program.networks), exit_code=2)
        used = {l.activation.neuron for l in net.layers if isinstance(l.activation, ir.NeuronActivation)}
        return replace(program, networks=(net,),
                       trains=tuple(t for t in program.trains if t.network == self.network),
                       neurons=tuple(n for n in program.neurons if n.name in used))


@dataclass(frozen=True)
class OverrideTraining(Pass):
    """Apply command-line overrides (`--epochs`, `--lr`, `--batch`, `--seed`) to a recipe."""

    values: Mapping[str, float]
    name: ClassVar[str] = "override-training"

    def run(self, program: ir.Program) -> ir.Program:
        trains = []
        for t in program.trains:
            v = dict(self.values)
            opt = t.optimizer
            if "lr" in v:
                opt = replace(opt, lr=float(v.pop("lr")))
            if "momentum" in v:
                opt = replace(opt, momentum=float(v.pop("momentum")))
            fields = {k: int(x) for k, x in v.items() if k in ("epochs", "batch", "seed")}
            trains.append(replace(t, optimizer=opt, **fields))
        return replace(program, trains=tuple(trains))


class PassManager:
    def __init__(self, passes: Sequence[Pass]):
        self.passes = list(passes)

    def run(self, program: ir.Program) -> ir.Program:
        for p in self.passes:
            program = p.run(program)
            diags = verify(program)
            if diags:
                raise QnncError([Diagnostic(d.code, f"after pass `{p.name}`: {d.message}", d.span,
                                            d.label, d.help, d.notes) for d in diags])
        return program
