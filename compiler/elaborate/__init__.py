"""Elaboration: syntax trees (the main file and its imports) -> one IR Program.

Resolves imports (stdlib modules and local files, refusing cycles), substitutes
parameters (with `--set` overrides), evaluates sizes and numeric arguments, binds
neuron parameters per layer, and checks everything a user can get wrong, collecting
several diagnostics per run where it can. One module per part of a program:

    loader       the main file and its imports
    scope        parameters and `--set`, constant evaluation (`qnnc.compiler.expressions`)
    neurons      neuron definitions, and binding a neuron's parameters in a layer
    networks     inputs, preprocessing, layers, `dense`, initialisation, readouts
    training     train blocks
    text         numbers, ranges and places as messages write them

This driver runs them in order: neurons (imported modules first) and parameters, then
networks, then train blocks.
"""

from __future__ import annotations

from typing import Callable, Optional

from qnnc.compiler import ir
from qnnc.compiler import syntax as S
from qnnc.compiler.codes import BAD_IMPORTED_ITEM, DUPLICATE_NAME, SET_UNKNOWN_PARAMETER
from qnnc.compiler.diagnostics import Collector, did_you_mean, error
from qnnc.compiler.elaborate.loader import LoadedModule, Loader, read_text_file
from qnnc.compiler.elaborate.networks import NetworkElaboration
from qnnc.compiler.elaborate.training import TrainElaboration
from qnnc.compiler.ir import Span

__all__ = ["elaborate"]


class Elaborator(NetworkElaboration, TrainElaboration):
    """All parts of elaboration over one shared `Scope`."""


def elaborate(text: str, file: str, overrides: Optional[dict[str, str]] = None,
              read_file: Callable[[str], str] = read_text_file) -> ir.Program:
    """Parse, resolve imports and elaborate one program. Raises QnncError."""
    overrides = dict(overrides or {})
    collector = Collector()
    loader = Loader(collector, read_file)
    main = loader.load_main(text, file)
    elab = Elaborator(collector, overrides, imports_failed=loader.failed)
    # Imported modules first (dependency order), then the main file.
    for key in loader.order:
        module = loader.modules[key]
        is_main = key == file
        for item in module.syntax.items:
            if isinstance(item, S.NeuronSyntax):
                elab.neuron(item, key if not key.startswith("stdlib.") else key)
            elif isinstance(item, S.Import):
                continue
            elif not is_main:
                collector.add(BAD_IMPORTED_ITEM, "an imported module may only define neurons",
                              _item_span(item), "not importable",
                              help="keep params, networks and train blocks in the main file")
            elif isinstance(item, S.ParamDecl):
                elab.param(item)
    if overrides := elab.overrides:
        name = next(iter(overrides))
        raise error(SET_UNKNOWN_PARAMETER, f"`--set {name}=...`: the program has no parameter `{name}`",
                    help=did_you_mean(name, elab.params) or
                    ("parameters: " + ", ".join(elab.params) if elab.params else "this program declares no `param`"),
                    exit_code=2)
    networks: dict[str, ir.Network] = {}
    net_spans: dict[str, Span] = {}
    for item in main.syntax.items:
        if isinstance(item, S.NetworkSyntax):
            if item.name in net_spans:
                collector.add(DUPLICATE_NAME, f"network `{item.name}` is defined twice", item.name_span)
                continue
            net_spans[item.name] = item.name_span
            net = elab.network(item)
            if net is not None:
                networks[item.name] = net
    trains: list[ir.TrainRecipe] = []
    seen_trains: set[str] = set()
    for item in main.syntax.items:
        if isinstance(item, S.TrainSyntax):
            if item.name in seen_trains:
                collector.add(DUPLICATE_NAME, f"network `{item.name}` has two train blocks", item.name_span)
                continue
            seen_trains.add(item.name)
            if item.name in net_spans and item.name not in networks:
                continue  # its network already failed; do not pile on
            t = elab.train(item, networks)
            if t is not None:
                trains.append(t)
    collector.raise_if_any()
    modules = tuple(
        ir.ModuleInfo(key, _module_path(loader.modules[key]), tuple(loader.modules[key].imports),
                      ir.Span(loader.modules[key].path, 1, 1, 1, 1))
        for key in loader.order)
    program = ir.Program(
        source=file, modules=modules, params=tuple(elab.params.values()),
        neurons=tuple(elab.neurons.values()), networks=tuple(networks.values()), trains=tuple(trains),
        span=ir.Span(file, 1, 1, 1, 1))
    return program


def _module_path(m: LoadedModule) -> str:
    return m.name if m.name.startswith("stdlib.") else m.path


def _item_span(item) -> Span:
    return getattr(item, "name_span", None) or item.span

