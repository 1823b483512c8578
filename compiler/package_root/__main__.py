"""`python -m qnnc` is the `qnnc` command: the entry point the installed distribution
declares (pyproject's [project.scripts]), looked up rather than imported by name, so
that the compiler layer, which holds the package root, names no later layer."""

import sys
from importlib.metadata import distribution

(command,) = distribution("qnnc").entry_points.select(group="console_scripts", name="qnnc")
sys.exit(command.load()())
