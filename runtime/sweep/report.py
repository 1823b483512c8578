"""A sweep's tables and plots, from its finished units.

A *cell* is one full assignment of the grid; its record holds the axis values and, under
each step's name, the `result` of that step's JSON envelope (for the unit the cell
uses). A table groups the cells by its `rows` axes (rows in grid order); each column
evaluates an expression on every cell of the row (`where` keeps only cells with those
axis values) and aggregates the values.

Expressions are a small, safe subset of Python: numbers, strings, names (axes and steps),
`.key` and `[index]` into a step's result, + - * /, unary minus, and abs/min/max/len/round.
Nothing is executed: the text is parsed by `ast` and walked.
"""

from __future__ import annotations

import ast
import json
import math
import operator
from typing import Any, Optional

from qnnc.compiler.diagnostics import Span, did_you_mean, error

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_FUNCS = {"abs": abs, "min": min, "max": max, "len": len, "round": round}


def compile_expr(text: str, names: set, span: Optional[Span] = None) -> ast.AST:
    """Parse and check an expression; Q0745 when it is not one the table can evaluate."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise error("Q0745", f"`{text}` is not an expression: {exc.msg}", span,
                    help="e.g. `1 - eval.accuracy` or `run.counts[2]`") from None
    for node in ast.walk(tree):
        ok = isinstance(node, (ast.Expression, ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.BinOp,
                               ast.UnaryOp, ast.Load, ast.USub, ast.UAdd, ast.Call, *_BINOPS))
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS
                                               and not node.keywords):
            ok = False
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str)):
            ok = False
        if not ok:
            raise error("Q0745", f"`{text}`: {type(node).__name__} is not allowed in a table expression", span,
                        help="use numbers, names, .key, [index], + - * / and abs/min/max/len/round")
        if isinstance(node, ast.Name) and node.id not in names and node.id not in _FUNCS:
            raise error("Q0745", f"`{text}` names `{node.id}`, which is neither a grid axis nor a step", span,
                        help=did_you_mean(node.id, names) or f"names: {', '.join(sorted(names))}")
    return tree


class Missing(Exception):
    pass


def evaluate(tree: ast.AST, record: dict) -> Any:
    def ev(n):
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.Name):
            if n.id not in record:
                raise Missing(n.id)
            return record[n.id]
        if isinstance(n, ast.Attribute):
            base = ev(n.value)
            if base is None:  # a null in the result (e.g. no power-law fit): no value
                return None
            if not isinstance(base, dict) or n.attr not in base:
                raise Missing(n.attr)
            return base[n.attr]
        if isinstance(n, ast.Subscript):
            base, idx = ev(n.value), ev(n.slice)
            if base is None or idx is None:
                return None
            try:
                if isinstance(base, dict):
                    return base[idx] if idx in base else base[str(idx)]
                return base[int(idx)]
            except (KeyError, IndexError, TypeError, ValueError):
                raise Missing(repr(idx)) from None
        if isinstance(n, ast.BinOp):
            left, right = ev(n.left), ev(n.right)
            return None if left is None or right is None else _BINOPS[type(n.op)](left, right)
        if isinstance(n, ast.UnaryOp):
            v = ev(n.operand)
            return -v if isinstance(n.op, ast.USub) and v is not None else v
        if isinstance(n, ast.Call):
            return _FUNCS[n.func.id](*[ev(a) for a in n.args])
        raise Missing(type(n).__name__)

    return ev(tree)


def _aggregate(agg: str, values: list) -> Any:
    if agg == "count":
        return len(values)
    if not values:
        return None
    if agg == "first":
        return values[0]
    xs = [float(v) for v in values]
    if agg == "mean":
        return sum(xs) / len(xs)
    if agg == "sum":
        return sum(xs)
    if agg == "min":
        return min(xs)
    if agg == "max":
        return max(xs)
    if len(xs) < 2:
        return float("nan")
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    return std if agg == "std" else std / math.sqrt(len(xs))


def build_table(spec, table, records: list[dict]) -> list[dict]:
    """The table's rows: {column title: value} (None where a value cannot be computed)."""
    names = set(spec.axes) | {s.name for s in spec.steps}
    trees = {c.title: compile_expr(c.value, names) if c.value else None for c in table.columns}
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(tuple(json.dumps(r[a]) for a in table.rows), []).append(r)
    rows = []
    for members in groups.values():
        row = {}
        for c in table.columns:
            sel = [m for m in members if all(_same(m[k], v) for k, v in c.where)]
            vals = []
            for m in sel:
                if trees[c.title] is None:
                    vals.append(1)
                    continue
                try:
                    vals.append(evaluate(trees[c.title], m))
                except Missing as exc:
                    raise error("Q0746", f"table `{table.name}`, column `{c.title}`: cell {m['_cell']} has no "
                                f"`{exc.args[0]}` in `{c.value}`", spec.span(*c.path, "value"),
                                help="look at the cell's result (units/STEP/CELL/result.json) for the keys it has") from None
                except (TypeError, ZeroDivisionError, ValueError) as exc:
                    raise error("Q0746", f"table `{table.name}`, column `{c.title}`: `{c.value}` fails on cell "
                                f"{m['_cell']}: {exc}", spec.span(*c.path, "value")) from None
            # a null (a value the command reports as missing) is left out; all null: "—"
            row[c.title] = _aggregate(c.agg, vals if c.agg == "count" else [v for v in vals if v is not None])
        rows.append(row)
    return rows


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def fmt_cell(v, fmt: str) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and math.isnan(v):
        return "—"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    if fmt:
        try:
            return format(v, fmt)
        except (ValueError, TypeError):
            return str(v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def markdown(table, rows: list[dict]) -> str:
    lines = ["| " + " | ".join(c.title for c in table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    for r in rows:
        lines.append("| " + " | ".join(fmt_cell(r[c.title], c.format) for c in table.columns) + " |")
    return "\n".join(lines) + "\n"


def plot_bytes(plot, rows: list[dict]) -> bytes:
    from qnnc.runtime.plots import sweep_lines

    fmt = plot.file.rsplit(".", 1)[-1]
    series: dict[tuple, list[dict]] = {}
    for r in rows:
        series.setdefault(tuple(r[s] for s in plot.series), []).append(r)
    lines = []
    for key, members in series.items():
        label_prefix = ", ".join(f"{s} {fmt_cell(v, '')}" for s, v in zip(plot.series, key))
        for y, e in zip(plot.y, plot.yerr):
            pts = [(m[plot.x], m[y], m[e] if e else None) for m in members
                   if isinstance(m[plot.x], (int, float)) and isinstance(m[y], (int, float))]
            label = ", ".join(x for x in (label_prefix, y if len(plot.y) > 1 or not label_prefix else "") if x)
            lines.append({"label": label or y, "x": [p[0] for p in pts], "y": [p[1] for p in pts],
                          "yerr": [0.0 if p[2] is None or (isinstance(p[2], float) and math.isnan(p[2])) else p[2]
                                   for p in pts] if e else None})
    return sweep_lines(lines, xlabel=plot.xlabel, ylabel=plot.ylabel, title=plot.title,
                       xscale=plot.xscale, yscale=plot.yscale, fmt=fmt)


def cell_records(spec, out) -> list[dict]:
    """One record per cell of the grid, in grid order: axis values and each step's result."""
    from pathlib import Path

    from qnnc.runtime.sweep.spec import cell_id, restrict

    records = []
    cache: dict[str, Any] = {}
    for cell in spec.cells:
        r: dict = {k: v for k, v in cell}
        r["_cell"] = cell_id(cell)
        for step in spec.steps:
            folder = f"units/{step.name}/{cell_id(restrict(cell, step.per))}"
            if folder not in cache:
                cache[folder] = json.loads((Path(out) / folder / "result.json").read_text("utf-8"))["result"]
            r[step.name] = cache[folder]
        records.append(r)
    return records


def write_report(spec, out) -> tuple[dict, list[str]]:
    """Write cells.json, each table (markdown; all of them in tables.json) and each plot
    into the sweep folder; ({table name: rows}, [files written])."""
    from pathlib import Path

    from qnnc.runtime.cli import output

    out = Path(out)
    records = cell_records(spec, out)
    written = []
    cells = [{k: v for k, v in r.items() if k != "_cell"} | {"cell": r["_cell"]} for r in records]
    output.write_text(out / "cells.json", json.dumps(cells, indent=2) + "\n")
    written.append(str(out / "cells.json"))
    tables = {}
    for t in spec.tables:
        rows = build_table(spec, t, records)
        tables[t.name] = rows
        output.write_text(out / t.file, markdown(t, rows))
        written.append(str(out / t.file))
    if tables:
        output.write_text(out / "tables.json", json.dumps(no_nan(tables), indent=2) + "\n")
        written.append(str(out / "tables.json"))
    for p in spec.plots:
        output.write_bytes(out / p.file, plot_bytes(p, tables[p.table]))
        written.append(str(out / p.file))
    return tables, written


def no_nan(value):
    """NaN (an s.e.m. over one seed) as null, so the JSON is strict."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_nan(v) for v in value]
    return value
