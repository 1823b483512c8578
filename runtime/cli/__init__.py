"""The `qnnc` command line: one module per command (registry.py lists them), the
shared flags and loaders (program_args, weight_args, circuit_args), and the one way
commands write files (output) and JSON (json_output). `main` is the entry point."""

from qnnc.runtime.cli.entry import main

__all__ = ["main"]
