"""`qnnc ir FILE`: the program's IR as JSON (or, with --schema, the IR's JSON Schema).
Imports only the compiler core."""

from __future__ import annotations

from qnnc.runtime.cli.flag_types import PATH
from qnnc.compiler.diagnostics import error
from qnnc.runtime.cli import output
from qnnc.runtime.cli.entry import BAD_USAGE
from qnnc.runtime.cli.program_args import load_from_args


def add_arguments(p) -> None:
    p.add_argument("file", type=PATH, metavar="FILE", nargs="?", help=".qnn program or IR JSON")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[], help="override a `param`")
    p.add_argument("--network", metavar="NAME", help="keep only this network")
    p.add_argument("-o", "--output", type=PATH, metavar="OUT", help="write to OUT (atomically) instead of stdout")
    p.add_argument("--schema", action="store_true", help="print the IR's JSON Schema instead")
    p.add_argument("--json", action="store_true",
                   help="print the IR (or schema) inside the JSON envelope of every command")


def run(args) -> int:
    from qnnc.compiler import dump_ir
    from qnnc.compiler.serialize import schema_text

    if args.schema:
        text = schema_text()
    else:
        if not args.file:
            raise error(BAD_USAGE, "`qnnc ir` needs a FILE (or --schema)", exit_code=2)
        text = dump_ir(load_from_args(args))
    if args.json:
        import json

        from qnnc.runtime.cli.json_output import envelope_text

        text = envelope_text("ir", json.loads(text))
    output.write_text(args.output or output.STDOUT, text)
    if args.output:
        output.announce(args.output)
    return 0
