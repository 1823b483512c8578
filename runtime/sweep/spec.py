"""The sweep spec: a small TOML file, read with the standard library's `tomllib`,
validated like every other input (a `Q074x` code, `file:line:col`, a hint).

    [sweep]                     name, program (relative to the spec), out (default folder)
    [[grid]]                    one block = the cartesian product of its axes; blocks add up
    set.a = [0, 0.1, 0.5]       a program `param`: every step gets `--set a=VALUE`
    seed = [0, 1, 2]            a plain variable, used in templates as {seed}
    [[step]]                    the work: one existing qnnc command per step
    command = "train"
    per = ["a", "seed"]         the axes the step varies over (default: all); run once per
    args = ["--seed", "{seed}", "--out", "{dir}/run"]       distinct assignment of them
    [[table]] / [[plot]]        what to report (see `report.py`)

docs/sweeps.md is the reference. Everything here is plain data (strings, numbers,
lists): a unit of work crosses to a worker as its argument list, never as an object.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from qnnc.compiler.diagnostics import Span, did_you_mean, error, remember_source
from qnnc.compiler.fileio import NotReadable, read_regular_file

MAX_SPEC_BYTES = 1 << 20
MAX_UNITS = 100_000

# The commands a step may run: each reads a program (the sweep's) as its first argument
# and prints one JSON envelope with --json. Commands with a progress bar get --no-progress.
COMMANDS = ("train", "eval", "hamiltonian", "tap", "replicas", "run", "compile")
NO_PROGRESS = {"train", "tap", "replicas"}
# Flags the sweep sets itself, so a step may not.
RESERVED_FLAGS = {"--json", "--set", "--format", "--no-progress", "-h", "--help"}

SECTIONS = {"sweep", "grid", "step", "table", "plot"}
SWEEP_KEYS = {"name", "program", "out", "description"}
STEP_KEYS = {"name", "command", "args", "per"}
TABLE_KEYS = {"name", "rows", "columns", "file"}
COLUMN_KEYS = {"title", "value", "agg", "format", "where"}
PLOT_KEYS = {"table", "file", "x", "y", "yerr", "series", "xscale", "yscale", "xlabel", "ylabel", "title"}
AGGREGATES = ("first", "mean", "sem", "std", "min", "max", "sum", "count")
SCALES = ("linear", "log", "symlog")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TEMPLATE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_FIELD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*(?:([+-])\s*(\d+))?\s*$")


@dataclass(frozen=True)
class Step:
    name: str
    command: str
    args: tuple[str, ...]
    per: tuple[str, ...]  # axes, in the grid's order
    needs: tuple[str, ...]  # earlier steps whose folders it names ({dir.NAME}) or whose per it contains


@dataclass(frozen=True)
class Column:
    title: str
    value: Optional[str]  # an expression (report.py); None for count
    agg: str
    format: str
    where: tuple[tuple[str, Any], ...]
    path: tuple  # the key path in the spec, for errors


@dataclass(frozen=True)
class Table:
    name: str
    rows: tuple[str, ...]
    columns: tuple[Column, ...]
    file: str


@dataclass(frozen=True)
class Plot:
    table: str
    file: str
    x: str
    y: tuple[str, ...]
    yerr: tuple[str, ...]
    series: tuple[str, ...]
    xscale: str
    yscale: str
    xlabel: str
    ylabel: str
    title: str


@dataclass(frozen=True)
class Spec:
    path: Path
    text: str
    name: str
    program: Path  # absolute; may hold `{axis}` fields (program_for renders them)
    out: Optional[str]
    axes: tuple[str, ...]  # every axis, in order of first appearance
    params: tuple[str, ...]  # the axes that are program params (`set.NAME`)
    cells: tuple[tuple[tuple[str, Any], ...], ...]  # full assignments, grid order
    steps: tuple[Step, ...]
    tables: tuple[Table, ...]
    plots: tuple[Plot, ...]
    locate: Any = field(repr=False, compare=False, default=None)

    program_axes: tuple[str, ...] = ()

    def span(self, *path) -> Span:
        return self.locate(path)

    def program_for(self, values: dict) -> Path:
        """The program of a cell or unit (the spec's `program` with its fields filled in)."""
        return Path(render(str(self.program), values, {})) if self.program_axes else self.program

    def programs(self) -> list[Path]:
        """Every distinct program the sweep runs, in grid order."""
        return list(dict.fromkeys(self.program_for(dict(c)) for c in self.cells))


# --------------------------------------------------------------------------- positions


class _Locator:
    """Where a key path of the spec is written: the line of the key (or of the table
    header), column of its first character. tomllib gives positions only for syntax
    errors; semantic errors point at the key this finds."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")

    def __init__(self, file: str, text: str):
        self.file = file
        self.lines = text.split("\n")
        self.headers: list[tuple[tuple, int]] = []  # (path, line index)
        counts: dict[str, int] = {}
        for i, line in enumerate(self.lines):
            m = self._HEADER.match(line)
            if not m:
                continue
            name = m.group(2).replace('"', "").strip()
            if m.group(1) == "[[":
                k = counts.get(name, -1) + 1
                counts[name] = k
                self.headers.append((tuple(name.split(".")) + (k,), i))
            else:
                parts = name.split(".")
                if parts[0] in counts:  # [grid.set] inside the last [[grid]]
                    self.headers.append(((parts[0], counts[parts[0]], *parts[1:]), i))
                else:
                    self.headers.append((tuple(parts), i))

    def _span(self, i: int, col: int = 0) -> Span:
        line = self.lines[i] if i < len(self.lines) else ""
        col = max(col, len(line) - len(line.lstrip()))
        return Span(self.file, i + 1, col + 1, i + 1, max(col + 2, len(line.rstrip()) + 1))

    def __call__(self, path) -> Span:
        path = tuple(path)
        best, start = (), None
        for hp, i in self.headers:
            if path[:len(hp)] == hp and len(hp) >= len(best):
                best, start = hp, i
        if start is None:
            start = -1
        end = next((i for hp, i in self.headers if i > start), len(self.lines)) if start >= 0 else (
            self.headers[0][1] if self.headers else len(self.lines))
        rest = path[len(best):]
        at, col = start, 0
        for part in rest:
            if isinstance(part, int):  # the part-th inline table `{` after the key
                seen = -1
                found = False
                for i in range(max(at, 0), end):
                    s = self.lines[i]
                    c0 = col if i == at else 0
                    for c in range(c0, len(s)):
                        if s[c] == "{":
                            seen += 1
                            if seen == part:
                                at, col, found = i, c, True
                                break
                    if found:
                        break
                continue
            pat = re.compile(r"(^|[\s{,.])" + re.escape(str(part)) + r"\s*(=|\.)")
            for i in range(max(at, 0), end):
                m = pat.search(self.lines[i], col if i == at else 0)
                if m:
                    at, col = i, m.start() + len(m.group(1))
                    break
            else:
                break
        if at < 0:
            return Span(self.file, 1, 1, 1, 2)
        return self._span(at, col)


# --------------------------------------------------------------------------- loading


def _bad(code: str, message: str, span: Span, help: Optional[str] = None, label: str = ""):
    return error(code, message, span, help=help, label=label)


def read_spec(path: str | Path) -> Spec:
    """Read and validate a sweep spec; a QnncError (Q074x) on any problem."""
    p = Path(path)
    try:
        raw = read_regular_file(p, MAX_SPEC_BYTES)
    except NotReadable as exc:
        raise error("Q0752", f"cannot read sweep spec {path}: {exc.reason}",
                    help="give the path of a TOML sweep spec (docs/sweeps.md)") from None
    except OSError as exc:
        raise error("Q0752", f"cannot read sweep spec {path}: {exc.strerror or exc}",
                    help="give the path of a TOML sweep spec (docs/sweeps.md)") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise error("Q0752", f"{path} is not UTF-8 text (byte {exc.start})", Span(str(path), line, 1, line, 2),
                    help="save the spec as UTF-8") from None
    file = str(path)
    remember_source(file, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg) or "invalid TOML"
        if m is None and "end of document" in msg:
            line = text.count("\n") + 1
        raise _bad("Q0740", f"sweep spec is not valid TOML: {reason}", Span(file, line, col, line, col + 1),
                   help="the spec is TOML (https://toml.io): `key = value`, [table], [[array of tables]]") from None
    return _validate(p, file, text, data, _Locator(file, text))


def _validate(p: Path, file: str, text: str, data: dict, loc: _Locator) -> Spec:
    def where(*path) -> Span:
        return loc(path)

    def kind_error(path, expected: str, got) -> Exception:
        return _bad("Q0742", f"`{_dotted(path)}` must be {expected}, not {_tname(got)}", where(*path),
                    help=f"write {expected}")

    def unknown_keys(table: dict, allowed: set, path: tuple, what: str):
        for k in table:
            if k not in allowed:
                hint = did_you_mean(k, allowed) or f"{what} takes: {', '.join(sorted(allowed))}"
                raise _bad("Q0741", f"unknown key `{k}` in {what}", where(*path, k), help=hint)

    unknown_keys(data, SECTIONS, (), "a sweep spec")
    sweep = data.get("sweep")
    if not isinstance(sweep, dict):
        raise _bad("Q0741", "the spec has no [sweep] table", Span(file, 1, 1, 1, 2),
                   help='begin with `[sweep]` and `program = "PATH.qnn"`')
    unknown_keys(sweep, SWEEP_KEYS, ("sweep",), "[sweep]")
    for k in ("name", "program", "out", "description"):
        if k in sweep and not isinstance(sweep[k], str):
            raise kind_error(("sweep", k), "a string", sweep[k])
    if "program" not in sweep:
        raise _bad("Q0741", "[sweep] names no program", where("sweep"), help='add `program = "PATH.qnn"` (relative to the spec)')
    program = Path(p.parent.resolve(), sweep["program"])
    program_fields = list(_template_fields(sweep["program"], where("sweep", "program")))
    name = sweep.get("name") or p.stem
    if not _NAME.match(name.replace("-", "_")):
        raise _bad("Q0742", f"sweep name `{name}` is not a plain name", where("sweep", "name"),
                   help="letters, digits, `_` and `-`")

    # ---- grid
    grids = data.get("grid", [{}])
    if isinstance(grids, dict):
        grids = [grids]
    if not isinstance(grids, list) or not grids:
        raise kind_error(("grid",), "an array of tables ([[grid]])", grids)
    axes: list[str] = []
    params: list[str] = []
    cells: list[tuple] = []
    seen_cells: dict[tuple, int] = {}
    for gi, g in enumerate(grids):
        if not isinstance(g, dict):
            raise kind_error(("grid", gi), "a table", g)
        block: list[tuple[str, list]] = []
        for key, values in g.items():
            if key == "set":
                if not isinstance(values, dict):
                    raise kind_error(("grid", gi, "set"), "a table of parameter lists (`set.a = [...]`)", values)
                items = [(k, v, ("grid", gi, "set", k), True) for k, v in values.items()]
            else:
                items = [(key, values, ("grid", gi, key), False)]
            for k, v, path, is_param in items:
                if not _NAME.match(k) or k in ("cell", "dir"):
                    raise _bad("Q0742", f"grid axis `{k}` is not a usable name", where(*path),
                               help="letters, digits and `_`, not starting with a digit; `cell` and `dir` are reserved")
                if not isinstance(v, list):
                    v = [v]
                if not v:
                    raise _bad("Q0742", f"grid axis `{k}` has no values", where(*path), help="give at least one value")
                for x in v:
                    if isinstance(x, bool) or not isinstance(x, (int, float, str)) or (
                            isinstance(x, float) and not math.isfinite(x)):
                        raise kind_error(path, "a list of numbers or strings", x)
                if len({_fmt_value(x) for x in v}) != len(v):
                    raise _bad("Q0742", f"grid axis `{k}` lists a value twice", where(*path), help="list each value once")
                if k in params and not is_param or (k in axes and k not in params and is_param):
                    raise _bad("Q0742", f"`{k}` is a program parameter in one grid block and a plain variable in another",
                               where(*path), help=f"write it as `set.{k}` everywhere, or nowhere")
                if k not in axes:
                    axes.append(k)
                    if is_param:
                        params.append(k)
                block.append((k, v))
        names = [k for k, _ in block]
        for combo in itertools.product(*[v for _, v in block]):
            cells.append(tuple(zip(names, combo)))
    if len(cells) > MAX_UNITS:
        raise _bad("Q0742", f"the grid has {len(cells):,} cells, more than the limit of {MAX_UNITS:,}", where("grid"),
                   help="split the sweep")
    full = []
    for gi_cell in cells:
        d = dict(gi_cell)
        missing = [a for a in axes if a not in d]
        if missing:
            raise _bad("Q0742", f"grid blocks name different axes: a cell has no value for `{missing[0]}`", where("grid"),
                       help="every [[grid]] block must give every axis (one value is enough)")
        c = tuple((a, d[a]) for a in axes)
        key = tuple((a, _fmt_value(v)) for a, v in c)
        if key in seen_cells:
            raise _bad("Q0742", f"the grid gives cell {cell_id(c)} twice", where("grid"),
                       help="grid blocks must not overlap")
        seen_cells[key] = 1
        full.append(c)

    program_axes = []
    for base, attr, sign, _ in program_fields:
        if base not in axes or attr is not None or sign:
            raise _bad("Q0744", f"`{{{base}}}` in the program's path names no grid axis", where("sweep", "program"),
                       help=did_you_mean(base, axes) or "a program path may name grid axes, e.g. \"spin_{net}.qnn\"")
        if base in params:
            raise _bad("Q0744", f"the program's path names program parameter `{base}`", where("sweep", "program"),
                       help="name a plain variable (without `set.`)")
        program_axes.append(base)
    for c in full if program_axes else [()]:
        prog = Path(os.path.normpath(render(str(program), dict(c), {})))
        if not prog.is_file():
            raise _bad("Q0742", f"program {render(sweep['program'], dict(c), {})} not found (looked for {prog})",
                       where("sweep", "program"), help="the path is relative to the spec's folder")
    program = Path(os.path.normpath(program))

    # ---- steps
    steps_raw = data.get("step")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise _bad("Q0741", "the spec has no [[step]]", Span(file, 1, 1, 1, 2),
                   help='add `[[step]]` with `command = "train"` (or eval, hamiltonian, tap, replicas, run, compile)')
    steps: list[Step] = []
    for si, s in enumerate(steps_raw):
        if not isinstance(s, dict):
            raise kind_error(("step", si), "a table", s)
        unknown_keys(s, STEP_KEYS, ("step", si), "[[step]]")
        command = s.get("command")
        if command is None:
            raise _bad("Q0741", "a [[step]] names no command", where("step", si),
                       help=f"add `command = \"...\"`: one of {', '.join(COMMANDS)}")
        if command not in COMMANDS:
            raise _bad("Q0743", f"`{command}` is not a command a sweep step can run", where("step", si, "command"),
                       help=did_you_mean(str(command), COMMANDS) or f"one of {', '.join(COMMANDS)}")
        sname = s.get("name", command)
        if not isinstance(sname, str) or not _NAME.match(sname) or sname in axes or sname in ("cell", "dir"):
            raise _bad("Q0742", f"step name `{sname}` is not a usable name", where("step", si, "name" if "name" in s else "command"),
                       help="a name of letters, digits and `_`, not a grid axis")
        if any(t.name == sname for t in steps):
            raise _bad("Q0742", f"two steps are named `{sname}`", where("step", si, "name" if "name" in s else "command"),
                       help="give one a `name = \"...\"`")
        args = s.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise kind_error(("step", si, "args"), "a list of strings", args)
        for a in args:
            if a.split("=", 1)[0] in RESERVED_FLAGS:
                raise _bad("Q0742", f"a step may not give `{a}`: the sweep sets it", where("step", si, "args"),
                           help="program parameters go in the grid (`set.NAME = [...]`); --json and --no-progress are added")
        per = s.get("per", list(axes))
        if not isinstance(per, list) or not all(isinstance(a, str) for a in per):
            raise kind_error(("step", si, "per"), "a list of axis names", per)
        for a in per:
            if a not in axes:
                raise _bad("Q0742", f"`per` names `{a}`, which is not a grid axis", where("step", si, "per"),
                           help=did_you_mean(a, axes) or f"the axes are: {', '.join(axes) or '(none)'}")
        missing_params = [a for a in params + program_axes if a not in per]
        if missing_params:
            raise _bad("Q0742", f"step `{sname}` is not per `{missing_params[0]}`, which chooses its program or sets "
                       "a parameter of it", where("step", si, "per"),
                       help="a step reads the program with every parameter set: add it to `per`")
        per_t = tuple(a for a in axes if a in per)
        needs: list[str] = []
        for a in args:
            for ref in _template_fields(a, where("step", si, "args")):
                base, attr, _, _ = ref
                if base == "dir" and attr is not None:
                    dep = next((t for t in steps if t.name == attr), None)
                    if dep is None:
                        raise _bad("Q0744", f"`{{dir.{attr}}}` names no earlier step", where("step", si, "args"),
                                   help=did_you_mean(attr, [t.name for t in steps]) or "name a step listed above this one")
                    if not set(dep.per) <= set(per_t):
                        raise _bad("Q0744", f"step `{sname}` reads `{{dir.{attr}}}`, but `{attr}` varies over "
                                   f"{', '.join(a for a in dep.per if a not in per_t)}, which `{sname}` does not",
                                   where("step", si, "args"), help=f"add those axes to `{sname}`'s `per`")
                    needs.append(attr)
                elif base in ("dir", "cell"):
                    if attr is not None or ref[2]:
                        raise _bad("Q0744", f"`{{{base}}}` takes no offset or field", where("step", si, "args"))
                elif base not in per_t:
                    raise _bad("Q0744", f"template `{{{base}}}` names no axis of this step", where("step", si, "args"),
                               help=("add it to the step's `per`" if base in axes else
                                     did_you_mean(base, per_t) or f"available: {', '.join(('dir',) + per_t)}"))
                elif attr is not None:
                    raise _bad("Q0744", f"template `{{{base}.{attr}}}`: only `dir` has fields", where("step", si, "args"))
        steps.append(Step(sname, command, tuple(args), per_t, tuple(dict.fromkeys(needs))))

    # ---- tables and plots
    tables = _tables(data, axes, steps, loc, kind_error, unknown_keys)
    plots = _plots(data, tables, loc, kind_error, unknown_keys)
    return Spec(p, text, name, program, sweep.get("out"), tuple(axes), tuple(params), tuple(full),
                tuple(steps), tables, plots, loc, tuple(dict.fromkeys(program_axes)))


def _tables(data, axes, steps, loc, kind_error, unknown_keys) -> tuple[Table, ...]:
    from qnnc.runtime.sweep.report import compile_expr

    raw = data.get("table", [])
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise kind_error(("table",), "an array of tables ([[table]])", raw)
    out: list[Table] = []
    names_ok = set(axes) | {s.name for s in steps}
    for ti, t in enumerate(raw):
        if not isinstance(t, dict):
            raise kind_error(("table", ti), "a table", t)
        unknown_keys(t, TABLE_KEYS, ("table", ti), "[[table]]")
        name = t.get("name", "summary" if ti == 0 else f"table{ti}")
        if not isinstance(name, str) or not _NAME.match(name) or any(x.name == name for x in out):
            raise _bad("Q0742", f"table name `{name}` is not a new plain name", loc(("table", ti, "name")))
        rows = t.get("rows", list(axes))
        if not isinstance(rows, list) or not all(isinstance(r, str) for r in rows):
            raise kind_error(("table", ti, "rows"), "a list of axis names", rows)
        for r in rows:
            if r not in axes:
                raise _bad("Q0742", f"`rows` names `{r}`, which is not a grid axis", loc(("table", ti, "rows")),
                           help=did_you_mean(r, axes) or f"the axes are: {', '.join(axes)}")
        cols_raw = t.get("columns")
        if not isinstance(cols_raw, list) or not cols_raw:
            raise _bad("Q0741", "a [[table]] has no columns", loc(("table", ti)),
                       help='add `columns = [{ title = "a", value = "a" }, ...]`')
        cols: list[Column] = []
        for ci, c in enumerate(cols_raw):
            path = ("table", ti, "columns", ci)
            if not isinstance(c, dict):
                raise kind_error(path, "an inline table `{ title = ..., value = ... }`", c)
            unknown_keys(c, COLUMN_KEYS, path, "a table column")
            title = c.get("title")
            if not isinstance(title, str) or not title:
                raise _bad("Q0741", "a column has no title", loc(path), help='add `title = "..."`')
            if any(x.title == title for x in cols):
                raise _bad("Q0742", f"two columns are titled `{title}`", loc(path + ("title",)))
            agg = c.get("agg", "first")
            if agg not in AGGREGATES:
                raise _bad("Q0742", f"unknown aggregate `{agg}`", loc(path + ("agg",)),
                           help=did_you_mean(str(agg), AGGREGATES) or f"one of {', '.join(AGGREGATES)}")
            value = c.get("value")
            if value is None and agg != "count":
                raise _bad("Q0741", f"column `{title}` has no value", loc(path), help='add `value = "EXPRESSION"`')
            if value is not None:
                if not isinstance(value, str):
                    raise kind_error(path + ("value",), "a string (an expression)", value)
                compile_expr(value, names_ok, loc(path + ("value",)))
            fmt = c.get("format", "")
            if not isinstance(fmt, str):
                raise kind_error(path + ("format",), "a format string such as \".4f\"", fmt)
            try:
                format(1.5, fmt) if fmt not in ("", "s") else None
            except ValueError:
                raise _bad("Q0742", f"`{fmt}` is not a number format", loc(path + ("format",)),
                           help="a Python format spec: .4f, .3g, g, d") from None
            wh = c.get("where", {})
            if not isinstance(wh, dict):
                raise kind_error(path + ("where",), "an inline table of axis = value", wh)
            for k in wh:
                if k not in axes:
                    raise _bad("Q0742", f"`where` names `{k}`, which is not a grid axis", loc(path + ("where",)),
                               help=did_you_mean(k, axes) or f"the axes are: {', '.join(axes)}")
            cols.append(Column(title, value, agg, fmt, tuple(wh.items()), path))
        file = t.get("file", f"{name}.md")
        if not isinstance(file, str) or "/" in file or file.startswith("."):
            raise _bad("Q0742", f"table file `{file}` must be a plain file name", loc(("table", ti, "file")))
        out.append(Table(name, tuple(rows), tuple(cols), file))
    return tuple(out)


def _plots(data, tables, loc, kind_error, unknown_keys) -> tuple[Plot, ...]:
    raw = data.get("plot", [])
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise kind_error(("plot",), "an array of tables ([[plot]])", raw)
    out = []
    for pi, p in enumerate(raw):
        path = ("plot", pi)
        if not isinstance(p, dict):
            raise kind_error(path, "a table", p)
        unknown_keys(p, PLOT_KEYS, path, "[[plot]]")
        tname = p.get("table", tables[0].name if tables else None)
        table = next((t for t in tables if t.name == tname), None)
        if table is None:
            raise _bad("Q0742", f"plot names table `{tname}`, which the spec does not define", loc(path + ("table",)),
                       help=did_you_mean(str(tname), [t.name for t in tables]) or "define a [[table]] first")
        titles = [c.title for c in table.columns]

        def col(key, v):
            if v not in titles:
                raise _bad("Q0742", f"plot {key} `{v}` is not a column of table `{table.name}`", loc(path + (key,)),
                           help=did_you_mean(str(v), titles) or f"columns: {', '.join(titles)}")
            return v

        for key in ("file", "x"):
            if not isinstance(p.get(key), str):
                raise _bad("Q0741", f"a [[plot]] needs `{key}`", loc(path), help=f'add `{key} = "..."`')
        file = p["file"]
        if "/" in file or file.startswith(".") or not file.endswith((".png", ".pdf", ".svg")):
            raise _bad("Q0742", f"plot file `{file}` must be a plain .png, .pdf or .svg file name", loc(path + ("file",)))
        ys = p.get("y")
        ys = [ys] if isinstance(ys, str) else ys
        if not isinstance(ys, list) or not ys or not all(isinstance(y, str) for y in ys):
            raise _bad("Q0741", "a [[plot]] needs `y`: one column title or a list of them", loc(path))
        yerr = p.get("yerr", [""] * len(ys))
        yerr = [yerr] if isinstance(yerr, str) else yerr
        if not isinstance(yerr, list) or len(yerr) != len(ys):
            raise _bad("Q0742", "`yerr` must list one column (or \"\") per `y`", loc(path + ("yerr",)))
        series = p.get("series", [])
        series = [series] if isinstance(series, str) else series
        for key in ("xscale", "yscale"):
            if p.get(key, "linear") not in SCALES:
                raise _bad("Q0742", f"`{key}` must be one of {', '.join(SCALES)}", loc(path + (key,)))
        for key in ("xlabel", "ylabel", "title"):
            if key in p and not isinstance(p[key], str):
                raise kind_error(path + (key,), "a string", p[key])
        out.append(Plot(table.name, file, col("x", p["x"]), tuple(col("y", y) for y in ys),
                        tuple(col("yerr", e) if e else "" for e in yerr), tuple(col("series", s) for s in series),
                        p.get("xscale", "linear"), p.get("yscale", "linear"), p.get("xlabel", p["x"]),
                        p.get("ylabel", ys[0] if len(ys) == 1 else ""), p.get("title", "")))
    return tuple(out)


# --------------------------------------------------------------------------- cells, units


def _fmt_value(v) -> str:
    """A grid value as the command line and folder names write it: 0.1 -> 0.1, 2 -> 2,
    1.5707963 -> 1.5707963 (repr: exact, round-trips), strings as they are."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        return repr(v)  # 2.0 stays 2.0: a float axis value keeps its type on the command line
    return repr(v) if isinstance(v, float) else str(v)


def fmt_value(v) -> str:
    return _fmt_value(v)


def cell_id(assignment) -> str:
    """The folder name of an assignment: `a=0.1,seed=0` (`all` for none)."""
    parts = []
    for k, v in assignment:
        s = _fmt_value(v)
        s = re.sub(r"[^A-Za-z0-9_.+\-]", "_", s)
        parts.append(f"{k}={s}")
    return ",".join(parts) or "all"


def restrict(cell, axes) -> tuple:
    return tuple((k, v) for k, v in cell if k in axes)


@dataclass(frozen=True)
class Unit:
    """One step at one assignment of its axes: a task. Everything is plain data."""

    step: str
    command: str
    program: str  # absolute path
    assignment: tuple  # ((axis, value), ...) over the step's `per`
    folder: str  # relative to the sweep folder: units/STEP/ID
    argv: tuple[str, ...]  # the command line, without the program path
    deps: tuple[str, ...]  # keys of the units it reads
    hash: str

    @property
    def key(self) -> str:
        return f"{self.step}/{cell_id(self.assignment)}"


def program_digest(program: Path) -> str:
    return hashlib.sha256(Path(program).read_bytes()).hexdigest()


def units(spec: Spec) -> list[Unit]:
    """Every unit of work, cell by cell in grid order, each after the units it reads."""
    digests: dict[Path, str] = {}
    out: dict[str, Unit] = {}
    for cell in spec.cells:  # cell by cell, so that whole cells finish early (and resume well)
        for step in spec.steps:
            a = restrict(cell, step.per)
            folder = f"units/{step.name}/{cell_id(a)}"
            key = f"{step.name}/{cell_id(a)}"
            if key in out:
                continue
            values = dict(a)
            program = spec.program_for(values)
            digest = digests.setdefault(program, program_digest(program))
            dirs = {"dir": folder}
            deps = []
            for dep in spec.steps:
                if dep.name == step.name:
                    break
                if dep.name in step.needs:
                    da = restrict(cell, dep.per)
                    dirs[f"dir.{dep.name}"] = f"units/{dep.name}/{cell_id(da)}"
                    deps.append(f"{dep.name}/{cell_id(da)}")
            argv = [step.command]
            for k in spec.params:
                argv += ["--set", f"{k}={_fmt_value(values[k])}"]
            argv += [render(arg, values, dirs) for arg in step.args]
            argv += ["--json"] + (["--no-progress"] if step.command in NO_PROGRESS else [])
            h = hashlib.sha256(json.dumps({"program_sha256": digest, "argv": argv,
                                           "assignment": [[k, _fmt_value(v)] for k, v in a],
                                           "reads": [out[d].hash for d in deps]},
                                          sort_keys=True).encode()).hexdigest()[:16]
            out[key] = Unit(step.name, step.command, str(program), a, folder, tuple(argv), tuple(deps), h)
    return list(out.values())


def _template_fields(arg: str, span: Span):
    """The `{...}` fields of an argument: (base, attr, sign, number)."""
    for m in _TEMPLATE.finditer(arg):
        tok = m.group(0)
        if tok in ("{{", "}}"):
            continue
        if m.group(1) is None:
            raise error("Q0744", f"unbalanced brace in `{arg}`", span, help="write `{{` or `}}` for a literal brace")
        f = _FIELD.match(m.group(1))
        if not f:
            raise error("Q0744", f"`{{{m.group(1)}}}` in `{arg}` is not a template field", span,
                        help="write {NAME}, {NAME+N}, {NAME-N}, {dir} or {dir.STEP}")
        yield f.group(1), f.group(2), f.group(3), f.group(4)


def render(arg: str, values: dict, dirs: dict) -> str:
    def sub(m):
        tok = m.group(0)
        if tok == "{{":
            return "{"
        if tok == "}}":
            return "}"
        f = _FIELD.match(m.group(1))
        base, attr, sign, num = f.groups()
        if base in ("dir", "cell"):
            return dirs["dir" if attr is None else f"dir.{attr}"]
        v = values[base]
        if sign:
            if isinstance(v, str):
                v = float(v) if "." in v else int(v)
            v = v + int(num) if sign == "+" else v - int(num)
        return _fmt_value(v)

    return _TEMPLATE.sub(sub, arg)


def spec_digest(spec: Spec) -> str:
    return hashlib.sha256(spec.text.encode()).hexdigest()


def _dotted(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + p)
    return out


def _tname(v) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(v), type(v).__name__)
