"""`python -m qnnc` is the `qnnc` command."""

import sys

from qnnc.compiler.cli import main

sys.exit(main())
