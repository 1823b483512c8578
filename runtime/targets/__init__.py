"""Circuit targets: IBM (qiskit), IonQ (braket), Quantinuum (pytket).

A network with its weights and one preprocessed input is lowered first to a neutral
circuit IR (`circuit`), by a named strategy (`lowering/`: `dynamic`, `layered`,
`deferred`) chosen from the target's declared capabilities (`capabilities`), then
emitted by the target: a class implementing the protocol `target.Target` (`ibm/`,
`ionq`, `quantinuum`; each imports its SDK lazily). Both are registered by name
(`registry`: `TARGETS`, `STRATEGIES`). `host` runs the host side of execution; `network`
holds the exact reference; `submit` runs the compiled circuits through each vendor's
own cloud client (the target's `SubmissionClient`, protocol in `cloud`).

    compiled = compile_network(network, neurons, weights, x, target="ibm")
    outcomes = run_compiled(compiled, shots=1000, simulator="ideal", seed=0)

Diagnostics: Q0301-Q0349 (target capabilities) and Q0350-Q0359 (submission to a
vendor's cloud). `CODES` maps each to its title; the rows live in the central table
`qnnc.compiler.codes`, and docs/diagnostics.md documents them.
"""

from qnnc.runtime.targets.capabilities import STRATEGIES, TARGETS, Capabilities
from qnnc.runtime.targets.compile import (CompiledProgram, compile_network, render_summary,
                                          run_compiled)
from qnnc.runtime.targets.errors import CODES
from qnnc.runtime.targets.network import exact_distribution, resolve, tv_bound, tv_distance

__all__ = [
    "CODES", "Capabilities", "CompiledProgram", "STRATEGIES", "TARGETS", "compile_network",
    "exact_distribution", "render_summary", "resolve", "run_compiled", "tv_bound", "tv_distance",
]
