"""Mutation fuzzing of the front end and of the IR loader (seeded, a few thousand cases).

Every shipped `.qnn` file (examples/ and stdlib/) is mutated (deletions, insertions of
tokens, keywords, punctuation and odd characters, bit flips, line swaps, truncations)
and each mutant goes through `parse_program` and `format_source`. The only acceptable
outcomes are success or a `QnncError` whose diagnostics point inside the file (line at
most the number of lines + 1, column at most the line's length + 1) and render. Any
other exception is a bug and fails with the mutant shown. The same holds for invalid
bytes read from disk (`load_program`) and for mutated IR JSON (`load_ir_text`).
"""

from __future__ import annotations

import copy
import json
import random
import re
import zlib
from pathlib import Path

import pytest

from qnnc.compiler import dump_ir, format_source, load_ir_text, load_program, parse_program
from qnnc.compiler.diagnostics import QnncError, render_all, render_json

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(ROOT.glob("examples/*.qnn")) + sorted(ROOT.glob("stdlib/*.qnn"))
KINDS = ["delete", "insert", "flip", "swap", "truncate", "replace", "mixed"]
CASES_PER_KIND = 50  # x 7 kinds x 6 files: 2,100 mutants

KEYWORDS = ["import", "from", "stdlib", "param", "in", "neuron", "qubit", "carried", "ancilla",
            "measure", "emit", "reset", "network", "input", "with", "layer", "output", "of",
            "readout", "vote", "over", "shots", "train", "data", "validate", "on", "optimizer",
            "batch", "epochs", "seed", "loss", "gradient", "checkpoint", "and", "every", "steps",
            "at", "log", "end"]
PUNCTUATION = list("()[]{},.=:+-*/^#\"';!@$%&|<>?`~\\")
TOKENS = KEYWORDS + PUNCTUATION + [
    "0", "1", "-1", "0.5", ".5", "1e999", "1e-999", "9" * 40, "2 ^ 64", "1 / 0", "0 / 0", "pi", "inf",
    "-inf", "z", "last", "fan_in", "x", "h1", "a", "rotation", "weak", "sign", "relu", "linear",
    "dense", "normal", "kaiming", "zeros", "sqrt", "log", "rx", "cx", "tanh", "clip", "mnist.test",
    '"x.npz"', '"', '"\\', "# c", "\n", "\n\n", "\t", " ", "{}", "()", "[]", "[1, 2]", "(1, 2)",
    "layer y[1] = sign of dense(x)", "import neurons from stdlib", 'import m from "nope.qnn"',
    'import m from "neurons.qnn"', "\x00", "\x0b", "\x0c", "\r", "\x1b", "\x7f", "\x85", "\xa0",
    "\u2028", "\ufeff", "é", "π", "z\u0301", "日本", "\U0001f600",
]


def _lines(text: str) -> list[str]:
    # Spans count lines as the lexer does: only "\n" ends one.
    return text.split("\n")


def _position(text: str, rng: random.Random) -> int:
    """Mostly a position in code rather than in a comment (the shipped files are well
    commented, and a mutated comment tests little)."""
    for _ in range(4):
        p = rng.randint(0, len(text))
        line_start = text.rfind("\n", 0, p) + 1
        if "#" not in text[line_start:p]:
            return p
    return p


def _mutate(text: str, kind: str, rng: random.Random) -> str:
    if kind == "mixed":
        for _ in range(rng.randint(2, 4)):
            text = _mutate(text, rng.choice(KINDS[:-1]), rng)
        return text
    if kind == "replace":  # one word (name, keyword, number) becomes another token
        words = [m for m in re.finditer(r"[A-Za-z0-9_.]+", text)
                 if "#" not in text[text.rfind("\n", 0, m.start()) + 1:m.start()]]
        if not words:
            return text
        m = rng.choice(words)
        return text[:m.start()] + rng.choice(TOKENS) + text[m.end():]
    p = _position(text, rng)
    if kind == "delete":
        return text[:p] + text[p + rng.randint(1, 12):]
    if kind == "insert":
        tok = rng.choice(TOKENS)
        pad = rng.choice(["", " ", " ", "\n"])
        return text[:p] + pad + tok + pad + text[p:]
    if kind == "flip":
        if not text:
            return text
        p = min(p, len(text) - 1)
        return text[:p] + chr(ord(text[p]) ^ (1 << rng.randrange(8))) + text[p + 1:]
    if kind == "swap":
        lines = text.split("\n")
        a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[a], lines[b] = lines[b], lines[a]
        return "\n".join(lines)
    if kind == "truncate":
        return text[:p]
    raise AssertionError(kind)


def _check_diagnostics(exc: QnncError, sources: dict[str, str]) -> None:
    assert exc.diagnostics, "a QnncError without diagnostics"
    for d in exc.diagnostics:
        assert d.code.startswith("Q") and d.code != "Q0000" and d.message, d
        span = d.span
        if span is None:
            continue
        text = sources.get(span.file)
        if text is None and Path(span.file).is_file():
            text = Path(span.file).read_text(encoding="utf-8", errors="replace")
        if text is None:
            continue
        lines = _lines(text)
        assert 1 <= span.line <= len(lines) + 1, (d, len(lines))
        line = lines[span.line - 1] if span.line <= len(lines) else ""
        assert 1 <= span.col <= len(line) + 1, (d, line)
        assert (span.end_line, span.end_col) >= (span.line, span.col), d
    render_all(exc.diagnostics, sources)
    json.loads(render_json(exc.diagnostics))


def _outcome(fn, text: str, name: str) -> None:
    try:
        fn(text, name)
    except QnncError as exc:
        _check_diagnostics(exc, {name: text})


def _run_case(text: str, name: str, what: str) -> None:
    for fn in (parse_program, format_source):
        try:
            _outcome(fn, text, name)
        except Exception as exc:  # anything but a well-formed QnncError is a bug
            pytest.fail(f"{fn.__name__} on {what}: {type(exc).__name__}: {exc}\nmutant:\n{text!r}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_mutants(path, kind):
    original = path.read_text(encoding="utf-8")
    name = str(path.relative_to(ROOT))
    rng = random.Random(zlib.crc32(f"{name}:{kind}".encode()))  # stable across runs and workers
    for i in range(CASES_PER_KIND):
        _run_case(_mutate(original, kind, rng), name, f"{kind} #{i} of {name}")


def test_unmutated_sources_compile():
    for path in SOURCES:
        parse_program(path.read_text(encoding="utf-8"), str(path))


@pytest.mark.parametrize("text", [
    "", "\n", "#", "{", "}", '"', "param", "param a", "param a =", "neuron", "network n {",
    "network n { input x[", "train t { checkpoint at", "import", 'import a from "', "\x00",
    "param a = " + "(" * 3000 + "1" + ")" * 3000, "param a = " + "-" * 3000 + "1",
    "param a = 1" + " + 1" * 3000, "param a = " + "2 ^ " * 3000 + "1", "param a = " + "sqrt(" * 2000 + "1" + ")" * 2000,
    "network n {" * 500, "}" * 100, "param a = 1\r\nparam b = a\r\n", "param a = 1\rparam b = 2",
    "param a = 1\x0cparam b = $", "param a = \u2028 1 $",
])
def test_edge_inputs(text):
    _run_case(text, "edge.qnn", "an edge input")


# --------------------------------------------------------------------------- bytes on disk

BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
             b"\x80", b"\xc0\xaf", b"\x00", b"\x00\x00\x00", b"\xef\xbb\xbf"]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_bytes_from_disk(path, tmp_path):
    data = path.read_bytes()
    rng = random.Random(zlib.crc32(path.name.encode()))
    for i in range(20):
        p = rng.randint(0, len(data))
        mutant = data[:p] + rng.choice(BAD_BYTES) + data[p:]
        target = tmp_path / f"m{i}.qnn"
        target.write_bytes(mutant)
        try:
            load_program(str(target))
        except QnncError as exc:
            text = mutant.decode("utf-8", errors="replace")
            _check_diagnostics(exc, {str(target): text})
        except Exception as exc:
            pytest.fail(f"load_program: {type(exc).__name__}: {exc}\nmutant bytes:\n{mutant!r}")


def test_invalid_utf8_points_at_the_byte(tmp_path):
    target = tmp_path / "bad.qnn"
    target.write_bytes(b"param a = 1\nparam b = \xff2\n")
    with pytest.raises(QnncError) as info:
        load_program(str(target))
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("Q0106", 2, 11)


def test_nul_byte_points_at_the_byte(tmp_path):
    target = tmp_path / "nul.qnn"
    target.write_bytes(b"param a = 1\nparam b = 2\x00\n")
    with pytest.raises(QnncError) as info:
        load_program(str(target))
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("Q0106", 2, 12)


# --------------------------------------------------------------------------- IR JSON

MNIST_IR = json.loads(dump_ir(parse_program((ROOT / "examples" / "mnist.qnn").read_text(), "examples/mnist.qnn")))


def _paths(obj, prefix=()):
    """Every (container path, key) in a JSON document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix, k
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix, i
            yield from _paths(v, prefix + (i,))


def _at(doc, path):
    for k in path:
        doc = doc[k]
    return doc


REPLACEMENTS = [None, True, 0, -1, 1.5, 2 ** 70, "", "x", "Program", [], [1], {}, {"node": "Const"},
                {"node": "Layer"}, {"file": "f", "line": 1, "col": 1, "end_line": 1, "end_col": 1},
                float("nan"), float("inf")]


def _mutate_ir(rng: random.Random) -> str:
    doc = copy.deepcopy(MNIST_IR)
    places = list(_paths(doc))
    for _ in range(rng.randint(1, 3)):
        parent_path, key = rng.choice(places)
        try:
            parent = _at(doc, parent_path)
        except (KeyError, IndexError, TypeError):
            continue
        op = rng.choice(["delete", "replace", "replace", "retag", "rename", "wrap"])
        try:
            if op == "delete":
                del parent[key]
            elif op == "replace":
                parent[key] = copy.deepcopy(rng.choice(REPLACEMENTS))
            elif op == "retag" and isinstance(parent, dict) and "node" in parent:
                parent["node"] = rng.choice(["Layer", "Network", "Nope", "Span", "Program", 1, None])
            elif op == "rename" and isinstance(parent, dict):
                parent[str(key) + "_"] = parent.pop(key)
            elif op == "wrap":
                parent[key] = [parent[key]] if rng.random() < 0.5 else {"node": "Unary", "op": "-",
                                                                         "operand": parent[key]}
        except (KeyError, IndexError, TypeError):
            continue
    text = json.dumps(doc)  # NaN and Infinity are written as such: the loader must refuse them
    if rng.random() < 0.2:
        p = rng.randint(0, len(text))
        text = rng.choice([text[:p], text[:p] + rng.choice(['"', "{", "]", ",", "\x00", "NaN"]) + text[p:]])
    return text


def test_ir_json_mutants():
    rng = random.Random(20240611)
    outcomes = {"ok": 0, "error": 0}
    for i in range(400):
        text = _mutate_ir(rng)
        try:
            load_ir_text(text, "mnist.json")
            outcomes["ok"] += 1
        except QnncError as exc:
            _check_diagnostics(exc, {"mnist.json": text})
            outcomes["error"] += 1
        except Exception as exc:
            pytest.fail(f"load_ir_text: {type(exc).__name__}: {exc}\nmutant #{i}:\n{text}")
    assert outcomes["error"] > 300  # the mutations do break the IR


@pytest.mark.parametrize("text", [
    "", "null", "[]", "{}", '{"node": "Program"}', "NaN", '{"node": "Program", "schema_version": NaN}',
    "[" * 100000 + "]" * 100000, '{"a": ' * 50000 + "1" + "}" * 50000, "\x00", '"\\ud800"',
    json.dumps(dict(MNIST_IR, schema_version=2)), json.dumps(dict(MNIST_IR, schema_version=True)),
    json.dumps(dict(MNIST_IR, networks=[{"node": "Network"}])),
])
def test_ir_json_edge_inputs(text):
    with pytest.raises(QnncError) as info:
        load_ir_text(text, "x.json")
    _check_diagnostics(info.value, {"x.json": text})


@pytest.mark.parametrize("span", [dict(line=0), dict(col=-3), dict(end_col=-1), dict(end_line=1, end_col=1)])
def test_ir_json_invalid_span(span):
    """A span that starts before 1:1 or ends before it starts is refused: diagnostics
    point at spans."""
    doc = copy.deepcopy(MNIST_IR)
    doc["networks"][0]["layers"][0]["span"].update(span)
    with pytest.raises(QnncError) as info:
        load_ir_text(json.dumps(doc), "x.json")
    assert info.value.diagnostics[0].code == "Q0502"
    assert "$.networks[0].layers[0].span" in info.value.diagnostics[0].message


def test_ir_deeply_nested_expression():
    """A well-formed but absurdly deep angle expression is refused, not a crash."""
    doc = copy.deepcopy(MNIST_IR)
    neuron = next(n for n in doc["neurons"] if n["name"] == "rotation")
    gate = next(op for op in neuron["ops"] if op["node"] == "GateOp")
    marker = "@@ANGLE@@"
    inner = json.dumps(gate["angle"])
    gate["angle"] = marker
    depth = 20000  # written as text: json.dumps itself cannot nest this deep
    text = json.dumps(doc).replace(json.dumps(marker), '{"node": "Unary", "op": "-", "operand": ' * depth + inner
                                   + (', "span": ' + json.dumps(gate["span"]) + "}") * depth)
    try:
        load_ir_text(text, "deep.json")
    except QnncError as exc:
        _check_diagnostics(exc, {"deep.json": text})
