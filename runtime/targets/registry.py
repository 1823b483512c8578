"""The registries by name: `TARGETS` (name -> `Target`) and `STRATEGIES` (name ->
lowering function), in the manner of xDSL's registry of passes. An entry names the
module and attribute that define it, and is imported on first lookup: listing the
names (the CLI's `--target` and `--strategy` choices) loads no vendor module, and a
vendor module loads no vendor SDK until it is used."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Iterator, Mapping, Optional


class Registry(Mapping[str, Any]):
    """Name -> object, each imported from `"module:attribute"` when first looked up
    (then passed through `make`: a target class becomes its one instance)."""

    def __init__(self, kind: str, entries: Mapping[str, str],
                 make: Optional[Callable[[Any], Any]] = None):
        self.kind = kind
        self._entries = dict(entries)
        self._make = make
        self._loaded: dict[str, Any] = {}

    def register(self, name: str, where: str) -> None:
        """Add (or replace) an entry: `where` is `"package.module:attribute"`."""
        if ":" not in where:
            raise ValueError(f"a {self.kind} entry is 'module:attribute', not {where!r}")
        self._entries[name] = where
        self._loaded.pop(name, None)

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            module, attr = self._entries[name].split(":")  # KeyError for an unknown name
            obj = getattr(importlib.import_module(module), attr)
            self._loaded[name] = self._make(obj) if self._make else obj
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:  # without importing anything
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"


TARGETS = Registry("target", {
    "ibm": "qnnc.runtime.targets.ibm:IBMTarget",
    "ionq": "qnnc.runtime.targets.ionq:IonQTarget",
    "quantinuum": "qnnc.runtime.targets.quantinuum:QuantinuumTarget",
    "helios": "qnnc.runtime.targets.helios:HeliosTarget",
}, make=lambda cls: cls())

# What each strategy needs from a target is `capabilities.REQUIREMENTS[name]`.
STRATEGIES = Registry("strategy", {
    "dynamic": "qnnc.runtime.targets.lowering.dynamic:lower_dynamic",
    "layered": "qnnc.runtime.targets.lowering.layered:lower_layered",
    "deferred": "qnnc.runtime.targets.lowering.deferred:lower_deferred",
    "program": "qnnc.runtime.targets.helios.lowering:lower_program",
})
