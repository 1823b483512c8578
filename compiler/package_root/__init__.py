"""qnnc: a compiler for quantum neural networks.

The import package is layered like the repository: `qnnc.compiler` (language, IR,
passes, lowerings; `qnnc.compiler.testing` has hypothesis strategies), `qnnc.runtime`
(simulator, analysis, target runners), `qnnc.grammar` and `qnnc.stdlib` (package data).
"""

__version__ = "0.1.0"
