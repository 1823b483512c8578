"""Round trips, as properties over random valid programs (`qnnc.compiler.testing`):

* IR -> JSON -> IR is the identity, and the JSON validates against the shipped schema;
* `fmt` is a fixed point of its own output and ignores layout: a re-laid-out program
  formats to the same text, parses to an equal syntax tree and elaborates to the same
  IR up to spans;
* the shipped JSON Schema is the one derived from the IR dataclasses, and the golden IR
  of examples/mnist.qnn is what `qnnc ir` prints.
"""

from __future__ import annotations

import json
import os
from importlib.resources import files
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from qnnc.compiler import dump_ir, format_source, load_ir_text, parse_program
from qnnc.runtime.cli import main
from qnnc.compiler.formatter import format_module
from qnnc.compiler.parser import parse_module
from qnnc.compiler.serialize import schema_text, shipped_schema
from qnnc.compiler.testing import ir_programs, messy_layout, programs, syntax_modules

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(ROOT.glob("examples/*.qnn")) + sorted(ROOT.glob("stdlib/*.qnn"))
VALIDATOR = Draft202012Validator(shipped_schema())


def strip_spans(obj):
    """IR JSON without its spans: what two layouts of one program have in common."""
    if isinstance(obj, dict):
        return {k: strip_spans(v) for k, v in obj.items() if k != "span"}
    if isinstance(obj, list):
        return [strip_spans(v) for v in obj]
    return obj


def ir_without_spans(text: str, name: str = "prog.qnn"):
    return strip_spans(json.loads(dump_ir(parse_program(text, name))))


# Comments in every place `fmt` distinguishes: own-line, trailing a statement or a `{`,
# before a `}`, at the end; blank lines kept between statements.
COMMENTED = """\
# header comment
import neurons from stdlib  # the papers' neurons

param a: real in [0, inf] = 0.5  # quantum
param b = 2

# own-line before network
network n {  # trailing after brace
    input x[4] with scale(0.5)  # scale

    # own-line inside
    layer h[b] = rotation(a) of dense(x)
    output y[2] = linear of dense(h)  # logits
    # before the closing brace
}

train n {
    data mnist.train5k  # 5,000 images
    checkpoint at steps [1, 2]  # two
}

# at the end
"""

# A program text: mostly generated, sometimes a shipped file or COMMENTED.
texts = st.one_of(programs(), programs(), programs(),
                  st.sampled_from([p.read_text(encoding="utf-8") for p in SOURCES] + [COMMENTED]))


# --------------------------------------------------------------------------- IR <-> JSON


@settings(max_examples=100)
@given(ir_programs())
def test_ir_json_roundtrip(program):
    text = dump_ir(program)
    VALIDATOR.validate(json.loads(text))
    again = load_ir_text(text, "prog.json")
    assert again == program
    assert dump_ir(again) == text


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_ir_json_roundtrip_shipped(path):
    program = parse_program(path.read_text(encoding="utf-8"), str(path))
    text = dump_ir(program)
    VALIDATOR.validate(json.loads(text))
    assert load_ir_text(text) == program


# --------------------------------------------------------------------------- fmt


@settings(max_examples=100)
@given(syntax_modules())
def test_fmt_prints_the_tree(module):
    """The printed tree parses back to itself (parentheses, `-2 ^ 2`, keywords as names)
    and is a fixed point of `fmt`."""
    text = format_module(module)
    assert parse_module(text, "prog.qnn").items == module.items
    assert format_source(text, "prog.qnn") == text


@settings(max_examples=50)
@given(texts)
def test_fmt_idempotent(text):
    once = format_source(text, "prog.qnn")
    assert format_source(once, "prog.qnn") == once


@settings(max_examples=80)
@given(st.data())
def test_fmt_ignores_layout(data):
    text = data.draw(texts, label="text")
    messy = data.draw(messy_layout(text), label="messy")
    formatted = format_source(messy, "prog.qnn")
    assert formatted == format_source(text, "prog.qnn")
    assert parse_module(formatted, "prog.qnn").items == parse_module(text, "prog.qnn").items
    assert ir_without_spans(messy) == ir_without_spans(text)


@settings(max_examples=60)
@given(st.data())
def test_fmt_keeps_comments(data):
    """With random comments between any two tokens: `fmt` keeps every comment, in order,
    keeps the meaning, and its output is a fixed point."""
    text = data.draw(texts, label="text")
    messy = data.draw(messy_layout(text, comments=True), label="messy")
    formatted = format_source(messy, "prog.qnn")
    assert format_source(formatted, "prog.qnn") == formatted
    assert parse_module(formatted, "prog.qnn").items == parse_module(text, "prog.qnn").items

    def words(src):  # comments on one line are joined by fmt: compare their words
        return " ".join(c.text for c in parse_module(src, "prog.qnn").comments).split()

    assert words(formatted) == words(messy)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_shipped_files_are_formatted(path):
    text = path.read_text(encoding="utf-8")
    assert format_source(text, str(path)) == text


def test_comments_stay_where_they_are():
    assert format_source(COMMENTED, "c.qnn") == COMMENTED
    squeezed = "\n".join(line.strip() for line in COMMENTED.splitlines()) + "\n"
    assert format_source(squeezed, "c.qnn") == COMMENTED


# --------------------------------------------------------------------------- schema


def test_shipped_schema_is_current():
    """compiler/schema/ir.schema.json is generated from the IR; regenerate it with
    `python -c "from qnnc.compiler.serialize import schema_text; open('compiler/schema/ir.schema.json','w').write(schema_text())"`."""
    shipped = files("qnnc.compiler.schema").joinpath("ir.schema.json").read_text(encoding="utf-8")
    assert shipped == schema_text()
    assert (ROOT / "compiler" / "schema" / "ir.schema.json").read_text(encoding="utf-8") == schema_text()


def test_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(shipped_schema())


def test_schema_rejects_what_the_loader_rejects():
    doc = json.loads(dump_ir(parse_program((ROOT / "examples" / "mnist.qnn").read_text(), "mnist.qnn")))
    assert VALIDATOR.is_valid(doc)
    for mutate in (lambda d: d.pop("networks"), lambda d: d.update(extra=1),
                   lambda d: d.update(schema_version=99), lambda d: d["networks"][0].update(node="Layer"),
                   lambda d: d["networks"][0]["layers"][0].update(size="512")):
        bad = json.loads(json.dumps(doc))
        mutate(bad)
        assert not VALIDATOR.is_valid(bad)


# --------------------------------------------------------------------------- golden IR

GOLDEN_IR = ROOT / "tests" / "golden" / "ir"
STDLIB_DIR = str(files("qnnc.stdlib"))


def _machine_independent(text: str) -> str:
    # Spans inside stdlib neurons name the installed stdlib file: an absolute path.
    return text.replace(json.dumps(STDLIB_DIR)[1:-1], "<stdlib>")


@pytest.mark.parametrize("name", ["mnist", "weak"])
def test_golden_ir(name, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # spans name examples/NAME.qnn, relative
    assert main(["ir", f"examples/{name}.qnn"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    VALIDATOR.validate(json.loads(out))
    golden = GOLDEN_IR / f"{name}.json"
    if os.environ.get("QNNC_UPDATE_GOLDEN"):
        golden.write_text(_machine_independent(out), encoding="utf-8")
    assert _machine_independent(out) == golden.read_text(encoding="utf-8")
    assert "/work/" not in golden.read_text(encoding="utf-8")  # nothing machine-specific


# --------------------------------------------------------------------------- shipped parser tables


def test_shipped_parser_tables_are_current_and_parse_alike():
    """grammar/qnn.tables.json belongs to this grammar and lark (regenerate with
    `python -m qnnc.compiler.parser_tables`), and a parser loaded from it parses every
    shipped source exactly as one built from the grammar. (lark numbers its states
    differently from run to run, so the tables are compared by what they parse.)"""
    import hashlib
    import json
    from importlib.resources import files

    import lark

    from qnnc.compiler import parser_tables

    shipped = json.loads(files("qnnc.grammar").joinpath(parser_tables.TABLES_FILE).read_text(encoding="utf-8"))
    assert shipped["grammar_sha256"] == hashlib.sha256(parser_tables.grammar_text().encode()).hexdigest()
    assert shipped["lark"] == lark.__version__
    loaded, built = parser_tables.load("start", {}), parser_tables.build("start")
    assert loaded.source_path == "<deserialized>"  # really from the shipped tables
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        assert loaded.parse(text) == built.parse(text)


@settings(max_examples=100)
@given(texts)
def test_shipped_parser_tables_parse_generated_programs_alike(text):
    assert _SHIPPED_START.parse(text) == _BUILT_START.parse(text)


from qnnc.compiler import parser_tables as _tables  # noqa: E402

_SHIPPED_START, _BUILT_START = _tables.load("start", {}), _tables.build("start")
