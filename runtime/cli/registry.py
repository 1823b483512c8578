"""The commands of `qnnc`: name -> (module, one-line help), in the order `qnnc --help`
lists them. The help lives here so that listing the commands imports none of them;
each module has `add_arguments(parser)` and `run(args) -> int`."""

from __future__ import annotations

import importlib
from types import ModuleType

COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("qnnc.runtime.cli.check", "check programs for errors"),
    "ir": ("qnnc.runtime.cli.ir", "print a program's IR as JSON"),
    "fmt": ("qnnc.runtime.cli.fmt", "format .qnn files canonically"),
    "train": ("qnnc.runtime.cli.train", "train a network with its recipe (torch simulator)"),
    "eval": ("qnnc.runtime.cli.eval", "test accuracy of a checkpoint, majority vote over shots"),
    "hamiltonian": ("qnnc.runtime.cli.hamiltonian", "the network as an Ising spin model: spectrum, T_c, phase"),
    "tap": ("qnnc.runtime.cli.tap", "TAP analysis over a training run: T_c(t), spectrum, solutions, power law"),
    "replicas": ("qnnc.runtime.cli.replicas", "replica-exchange Monte Carlo on the Ising Hamiltonian: P(q), Binder, hidden order"),
    "landscape": ("qnnc.runtime.cli.landscape", "the classification energy landscape of one image: minima, labels, gaps"),
    "compile": ("qnnc.runtime.cli.compile", "compile a network to IBM, IonQ or Quantinuum circuits"),
    "run": ("qnnc.runtime.cli.run", "run compiled circuits on a local simulator (Aer, Braket, pytket)"),
    "submit": ("qnnc.runtime.cli.submit", "run compiled circuits through a vendor's cloud client (dry run unless --yes)"),
    "data": ("qnnc.runtime.cli.data", "inspect, verify or download data sets"),
    "grad": ("qnnc.runtime.cli.grad", "one measured gradient (parameter shift or score function): estimate, standard error, circuits"),
    "finetune": ("qnnc.runtime.cli.finetune", "fine-tune trained weights with measured gradients (simulator or Aer with device noise)"),
    "noise": ("qnnc.runtime.cli.noise", "show a device's noise model (the torch simulator's --noise)"),
    "sweep": ("qnnc.runtime.cli.sweep", "run a sweep spec (TOML) on Dask: a grid of train/eval/... cells, resumable"),
}


def help_of(name: str) -> str:
    return COMMANDS[name][1]


def load(name: str) -> ModuleType:
    """The module of command `name`, imported now (and only now)."""
    return importlib.import_module(COMMANDS[name][0])
