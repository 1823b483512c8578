"""Every refusal has a golden diagnostic (rendered with `render_all`).

Regenerate with `QNNC_UPDATE_GOLDEN=1 pytest tests/test_targets_refusals.py`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ir_builders_targets import NEURONS, chain_network, check_refusal_golden, example, random_weights
from qnnc.compiler import ir
from qnnc.runtime.targets import CODES, compile_network, run_compiled

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "targets" / "diagnostics"
UPDATE = os.environ.get("QNNC_UPDATE_GOLDEN") == "1"


def small():
    net = chain_network(3, [2, 2], "rotation", {"a": 0.5}, None, name="small")
    return net, random_weights(net, 0), np.array([0.1, 0.2, 0.3])


def big_neuron():
    regs = (ir.Register("q", "qubit"),) + tuple(ir.Register(f"b{i}", "ancilla") for i in range(6))
    ops = tuple(ir.GateOp("cx", None, ("q", f"b{i}")) for i in range(6)) + (ir.MeasureOp("q", True),)
    ndef = ir.NeuronDef("wide", "test", (), regs, ops)
    net = ir.Network("wide_net", ir.Input("x", (2,), ()), (
        ir.Layer("h1", 1, "hidden", ir.Dense("x", False, ir.ZerosInit()), ir.NeuronActivation("wide", ())),),
        ir.Readout("argmax", 1))
    return net, {"wide": ndef}, {"h1": np.zeros((1, 2))}, np.zeros(2)


def _cases():
    def strategy_unsupported():
        p, w, x = example("hardware")
        compile_network(p, None, w, x, target="ionq", strategy="dynamic")

    def table_too_wide():
        p, w, x = example("hardware")
        compile_network(p, None, w, x, target="ibm", strategy="dynamic")

    def deferred_table_too_wide():
        p, w, x = example("hardware")
        compile_network(p, None, w, x, target="ionq", strategy="deferred")

    def too_many_qubits_deferred():
        p, w, x = example("weak", width=9)
        compile_network(p, None, w, x, target="ionq", backend="aria-1", strategy="deferred",
                        max_table_width=9)

    def too_many_copies():
        p, w, x = example("hardware")
        compile_network(p, None, w, x, target="ibm", strategy="layered", copies=9)

    def no_strategy_fits():
        net, neurons, w, x = big_neuron()
        compile_network(net, neurons, w, x, target="ibm", backend="fake_athens")

    def noise_kind_unavailable():
        net, w, x = small()
        compile_network(net, NEURONS, w, x, target="ibm", noise_pairs=2, noise_kind="ms")

    def noise_pairs_negative():
        net, w, x = small()
        compile_network(net, NEURONS, w, x, target="ibm", noise_pairs=-1)

    def unknown_target():
        net, w, x = small()
        compile_network(net, NEURONS, w, x, target="rigetti")

    def unknown_backend_ibm():
        net, w, x = small()
        compile_network(net, NEURONS, w, x, target="ibm", backend="fake_nowhere")

    def unknown_backend_ionq():
        net, w, x = small()
        compile_network(net, NEURONS, w, x, target="ionq", backend="harmony")

    def unknown_backend_quantinuum():
        net, w, x = small()
        compile_network(net, NEURONS, w, x, target="quantinuum", backend="nope")

    def unknown_simulator():
        net, w, x = small()
        run_compiled(compile_network(net, NEURONS, w, x, target="ibm"), 10, "qpu")

    def local_simulator_too_small():
        p, w, x = example("hardware")
        run_compiled(compile_network(p, None, w, x, target="ionq"), 4, "braket_sv")

    def carried_width_mismatch():
        net = chain_network(3, [2, 3], "weak", {"a": 0.5, "g": 1.0}, None, name="mismatch")
        compile_network(net, NEURONS, random_weights(net, 0), np.zeros(3), target="ibm")

    def weights_missing():
        net, w, x = small()
        del w["h2"]
        compile_network(net, NEURONS, w, x, target="ibm")

    def weights_wrong_shape():
        p, w, x = example("hardware")
        w["h2"] = w["h2"][:, :8]
        compile_network(p, None, w, x, target="ibm")

    def input_wrong_length():
        p, w, x = example("hardware")
        compile_network(p, None, w, x[:100], target="ibm")

    def classical_hidden_layer():
        net, w, x = small()
        layers = list(net.layers)
        layers[0] = ir.Layer("h1", 2, "hidden", layers[0].dense, ir.ClassicalActivation("relu"))
        net = ir.Network(net.name, net.input, tuple(layers), net.readout)
        compile_network(net, NEURONS, w, x, target="ibm")

    def unknown_strategy():
        net, w, x = small()
        compile_network(net, NEURONS, w, x, target="ibm", strategy="teleport")

    return {k: v for k, v in locals().items() if callable(v)}


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_refusal_golden(name):
    check_refusal_golden(CASES[name], GOLDEN / f"{name}.txt", UPDATE)


def test_codes_are_the_central_tables_q03xx_rows():
    from qnnc.compiler import codes

    assert CODES == {c.code: c.title for c in codes.TABLE if c.code.startswith("Q03")}
    assert all("Q0301" <= c <= "Q0359" for c in CODES)
