"""Loading a program: the main file and, depth first, the modules it imports.

Resolves `import NAME from stdlib` and `import NAME from "path.qnn"` (relative to the
importing file), parses each file once, and reports unknown stdlib modules, missing or
unreadable files and circular imports.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Callable, Optional

from qnnc.compiler import syntax as S
from qnnc.compiler.codes import CIRCULAR_IMPORT, IMPORT_NOT_FOUND, UNKNOWN_MODULE
from qnnc.compiler.diagnostics import Collector, QnncError, did_you_mean, remember_source
from qnnc.compiler.fileio import NotReadable, read_regular_file
from qnnc.compiler.limits import MAX_SOURCE_BYTES
from qnnc.compiler.parser import parse_module

STDLIB_MODULES = tuple(sorted(
    p.name[:-4] for p in files("qnnc.stdlib").iterdir() if p.name.endswith(".qnn")))


@dataclass
class LoadedModule:
    name: str  # "stdlib.neurons" or the file path
    path: str
    syntax: S.Module
    imports: list[str] = field(default_factory=list)


class Loader:
    """Loads the main file and, depth first, its imports; detects cycles."""

    def __init__(self, collector: Collector, read_file: Callable[[str], str]):
        self.collector = collector
        self.read_file = read_file
        self.modules: dict[str, LoadedModule] = {}
        self.order: list[str] = []
        self.sources: dict[str, str] = {}
        self.main: Optional[str] = None
        self.failed = False  # an import could not be loaded

    def load_main(self, text: str, file: str) -> LoadedModule:
        self.main = file
        self.sources[file] = text
        remember_source(file, text)
        module = LoadedModule(file, file, parse_module(text, file))
        self.modules[file] = module
        self._imports(module, [file])
        self.order.append(file)
        return module

    def _imports(self, module: LoadedModule, stack: list[str]) -> None:
        for item in module.syntax.items:
            if not isinstance(item, S.Import):
                continue
            key, path = self._resolve(item, module)
            if key is None:
                self.failed = True
                continue
            module.imports.append(key)
            if key in stack:
                cycle = stack[stack.index(key):] + [key]
                self.collector.add(CIRCULAR_IMPORT, "circular import", item.span,
                                   "this import closes a cycle",
                                   notes=["the cycle: " + " -> ".join(short_path(c) for c in cycle)],
                                   help="move the shared neurons into a module that imports neither")
                continue
            if key in self.modules:
                continue
            try:
                text = self.read_file(path)
            except (OSError, UnicodeDecodeError) as exc:
                self.collector.add(IMPORT_NOT_FOUND, f"cannot read module `{short_path(path)}`",
                                   item.source_span, str(getattr(exc, "strerror", None) or exc),
                                   help="import paths are relative to the importing file")
                self.failed = True
                continue
            self.sources[path] = text
            remember_source(path, text)
            try:
                child = LoadedModule(key, path, parse_module(text, path))
            except QnncError as exc:
                self.collector.extend(exc)
                self.failed = True
                continue
            self.modules[key] = child
            self._imports(child, stack + [key])
            self.order.append(key)

    def _resolve(self, item: S.Import, module: LoadedModule) -> tuple[Optional[str], str]:
        if item.is_stdlib:
            if item.module not in STDLIB_MODULES:
                self.collector.add(UNKNOWN_MODULE, f"unknown stdlib module `{item.module}`",
                                   item.module_span, "not in the standard library",
                                   help=did_you_mean(item.module, STDLIB_MODULES)
                                   or "stdlib modules: " + ", ".join(STDLIB_MODULES))
                return None, ""
            path = str(files("qnnc.stdlib").joinpath(f"{item.module}.qnn"))
            return f"stdlib.{item.module}", path
        rel = item.path
        base = os.path.dirname(module.path) if module.path and not module.path.startswith("<") else "."
        path = os.path.normpath(os.path.join(base, rel))
        if os.path.isdir(path):
            self.collector.add(IMPORT_NOT_FOUND, f"cannot import `{rel}`: it is a folder",
                               item.source_span, "a folder, not a module file",
                               help="import a .qnn file, e.g. `import m from \"lib/m.qnn\"`")
            return None, ""
        if not os.path.isfile(path):
            siblings = []
            folder = os.path.dirname(path) or "."
            if os.path.isdir(folder):
                # Suggest a sibling file spelled as the user would write it (`lib/mine.qnn`).
                try:
                    names = sorted(os.listdir(folder))[:10_000]
                except OSError:
                    names = []
                siblings = [os.path.join(os.path.dirname(rel), f) for f in names
                            if f.endswith(".qnn") and os.path.isfile(os.path.join(folder, f))]
            self.collector.add(IMPORT_NOT_FOUND, f"cannot find module file `{rel}`",
                               item.source_span, f"no such file: {short_path(path)}",
                               help=did_you_mean(rel, siblings)
                               or "import paths are relative to the importing file")
            return None, ""
        if self.main is not None and os.path.abspath(path) == os.path.abspath(self.main):
            return self.main, self.main
        return path, path


def short_path(path: str) -> str:
    """A module as messages name it: `stdlib.NAME`, or its path relative to the working
    directory unless that climbs far."""
    if path.startswith("stdlib."):
        return path
    try:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("../..") else path
    except ValueError:
        return path


def read_text_file(path: str) -> str:
    """How an import is read unless `elaborate` is given another reader: a regular file
    of at most MAX_SOURCE_BYTES (a /proc pseudo-file, a device or a FIFO is refused
    before a byte is read), as UTF-8."""
    try:
        raw = read_regular_file(path, MAX_SOURCE_BYTES)
    except NotReadable as exc:
        raise OSError(errno.EINVAL, exc.reason) from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.decode("utf-8")

