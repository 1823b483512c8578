"""Circuit targets: IBM (qiskit), IonQ (braket), Quantinuum (pytket).

A network with its weights and one preprocessed input is lowered first to a neutral
circuit IR (`circuit`), by a named strategy (`lowering`: `dynamic`, `layered`,
`deferred`) chosen from the target's declared capabilities (`capabilities`), then
emitted by the target's module (`ibm`, `ionq`, `quantinuum`; each imports its SDK
lazily). `host` runs the host side of execution; `network` holds the exact reference;
`submit` runs the compiled circuits through each vendor's own cloud client.

    compiled = compile_network(network, neurons, weights, x, target="ibm")
    outcomes = run_compiled(compiled, shots=1000, simulator="ideal", seed=0)

Diagnostics (Q03xx: target capabilities):
  Q0301 unknown target
  Q0302 unknown strategy
  Q0303 the target cannot run the strategy (a capability is missing)
  Q0304 unknown backend for the target
  Q0305 the circuit needs more qubits than the device has
  Q0306 a table of conditions (or multiplexed rotation) is wider than the limit
  Q0307 noise kind not available on the target
  Q0308 bad noise-pair count, copies count, shot count or weight bits
  Q0310 a vendor SDK (an optional extra) is not installed
  Q0311 the network cannot be lowered to circuits (no quantum hidden layer, or a
        classical one, or layers that are not a chain)
  Q0312 a carried layer has a different width from the layer it continues
  Q0313 weights missing or of the wrong shape
  Q0314 the input vector has the wrong length
  Q0315 no strategy the target can run fits this network
  Q0316 the local simulator cannot hold the circuit
  Q0317 unknown simulator for the target
  Q0320 the vendor compiler rejected the circuit
  Q0330 a neuron definition cannot be lowered (unbound name, unknown function)
  Q0331 a neuron angle is not finite
  Q0332 a gate of the neuron has no lowering
  Q0333 a neuron angle has no exact real-time (integer) realisation (tanh with a > 0,
        or an angle not of the form c0 + c1 f(z/a) + c2 last)
  Q0334 a real-time register would be wider than the target's classical registers
  Q0340 the program has no such network
  Q0341 a checkpoint cannot be read
  Q0342 a test image cannot be bound

Diagnostics (Q035x: submission to a vendor's cloud, `submit`):
  Q0350 no credentials for the vendor's cloud client (nothing was submitted)
  Q0351 the vendor's cloud client failed (authentication, network, unknown device,
        failed job)
  Q0352 the target has no submission path here, or its offline substitute cannot
        execute
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
