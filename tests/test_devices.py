"""`--device`: the device resolver, the shared flag, and the acceptance check that the
simulator, one training step and the Monte Carlo create every tensor on the device they
were given (the `meta` device: shapes, no values), recorded op by op."""

from __future__ import annotations

import collections
import traceback

import numpy as np
import json

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from qnnc.compiler import parse_program
from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.cli import main
from qnnc.runtime.devices import auto_device, resolve_device
from qnnc.runtime.simulator import QNNModel  # imported here: its import-time constants are host tensors

META = torch.device("meta")


# The host boundaries: the only qnnc functions allowed to make a tensor off the device,
# because what they handle is host data by nature (docs/devices.md).
HOST_BOUNDARIES = {
    "from_host": "devices.py: numpy data (weights, data sets) wrapped before its one copy to the device",
    "_entropy": "random_fields.py: a pass's two entropy numbers, from the model's CPU generator",
    "_entropy_words": "random_fields.py: the same two numbers, into the thread's reused host buffer",
    "host_array": "devices.py: the Monte Carlo torch engine's per-sweep energies and sums, summed in numpy",
}


def _where() -> tuple[str, str]:
    """(the innermost qnnc function, its file:line) that made the tensor."""
    for f in reversed(traceback.extract_stack()):
        if "/runtime/" in f.filename or "/compiler/" in f.filename:
            return f.name, f"{f.filename.rsplit('/', 2)[-2]}/{f.filename.rsplit('/', 1)[-1]}:{f.lineno}"
    return "?", "?"


def _off_device(func, t) -> list[str]:
    name, line = _where()
    return [] if name in HOST_BOUNDARIES else [f"{func} -> {t.device} in {name} at {line}"]


class DeviceRecorder(TorchDispatchMode):
    """Every tensor an aten op produces (factories, views, in-place ops, copies): its
    device and the op, for everything run inside the `with`."""

    def __init__(self):
        super().__init__()
        self.devices: collections.Counter = collections.Counter()
        self.off_device: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.devices[t.device.type] += 1
                if t.device.type != "meta":
                    self.off_device += _off_device(func, t)
        return out


class FunctionRecorder(TorchFunctionMode):
    """The same at the level of torch's Python functions, which also sees tensors that
    do not pass the dispatcher (torch.from_numpy)."""

    def __init__(self):
        super().__init__()
        self.off_device: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                self.off_device += _off_device(getattr(func, "__name__", func), t)
        return out


class recording:
    """Both recorders at once."""

    def __enter__(self):
        self.fn, self.disp = FunctionRecorder(), DeviceRecorder()
        self.fn.__enter__()
        self.disp.__enter__()
        return self

    def __exit__(self, *exc):
        self.disp.__exit__(*exc)
        self.fn.__exit__(*exc)

    def check(self, least: int = 1):
        assert self.disp.devices["meta"] >= least, self.disp.devices
        assert self.disp.off_device == [], self.disp.off_device[:20]
        assert self.fn.off_device == [], self.fn.off_device[:20]


ROTATION = """
import neurons from stdlib
param a: real in [0, inf] = 0.5
network net {
    input x[12]
    layer h1[6] = rotation(a) of dense(x, bias = on)
    layer h2[5] = rotation(a) of dense(h1)
    output y[3] = linear of dense(h2, bias = on)
    readout argmax, vote over 3 shots
}
"""

WEAK = """
import neurons from stdlib
param a: real in [0, inf] = 0.5
network net {
    input x[8]
    layer h1[3] = weak(a, g = 0.7) of dense(x)
    layer h2[3] = weak(a, g = 0.7) of dense(h1)
    output y[2] = linear of dense(h2)
    readout argmax, vote over 3 shots
}
"""

CLASSICAL = """
param a: real in [0, inf] = 0.5
network net {
    input x[8]
    layer h1[6] = tanh of dense(x, bias = on)
    layer h2[4] = sign of dense(h1)
    output y[2] = linear of dense(h2)
    readout argmax, vote over 3 shots
}
"""


def _model(text: str, device, dtype=torch.float32, **kw):
    return QNNModel(parse_program(text, "<test>"), seed=3, dtype=dtype, device=device, **kw)


# --------------------------------------------------------------------------- the resolver


def test_auto_and_cpu_resolve_here():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("auto") == torch.device(auto_device())
    assert resolve_device("meta") == META


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_an_unavailable_device_is_q0634_with_a_hint():
    with pytest.raises(QnncError) as e:
        resolve_device("cuda")
    d = e.value.diagnostics[0]
    assert d.code == "Q0634" and e.value.exit_code == 2 and "cpu" in d.help
    with pytest.raises(QnncError) as e:
        resolve_device("tpu")
    assert e.value.diagnostics[0].code == "Q0634"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", [
    ["train", "examples/hardware.qnn", "--epochs", "0"],
    ["eval", "examples/hardware.qnn", "--limit", "5"],
    ["tap", "examples/hardware.qnn"],
    ["replicas", "examples/hardware.qnn", "--sweeps", "4"],
    ["run", "examples/hardware.qnn", "--target", "ibm", "--shots", "1"],
    # the torch simulator behind `run` takes the torch device, whatever the target
    ["run", "examples/hardware.qnn", "--target", "ionq", "--simulator", "qnnc", "--shots", "1"],
])
def test_every_command_refuses_an_unavailable_device_before_working(command, tmp_path, capsys):
    code = main(command + ["--device", "cuda"] + (["--out", str(tmp_path / "r")] if command[0] == "train" else []))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error[Q0634]" in err and "help:" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_a_name_that_is_no_device_is_bad_usage(capsys):
    assert main(["eval", "examples/hardware.qnn", "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "error[Q0407]" in err and "cpu, cuda, cuda:N, mps or auto" in err


def test_the_flag_is_one_definition():
    """The five commands take --device from runtime/cli/device_args.py, not their own copy."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "runtime" / "cli"
    for name in ("train", "eval", "run", "tap", "replicas"):
        text = (root / f"{name}.py").read_text(encoding="utf-8")
        assert "add_device_argument(p" in text, name
        assert '"--device"' not in text, name


# --------------------------------------------------------------------------- the simulator on meta


@pytest.mark.parametrize("text", [ROTATION, WEAK, CLASSICAL], ids=["rotation", "weak", "classical"])
def test_the_simulator_creates_every_tensor_on_its_device(text):
    with recording() as rec:
        m = _model(text, META)
        x = torch.empty(7, m.features, device=META)
        m(x, shots=4)  # no-grad-free forward: autograd path (parameters require grad)
        with torch.no_grad():
            m(x, shots=4)  # the chunked / lean no-grad path
        m.chunk_elements = 64  # force several chunks and blocks
        with torch.no_grad():
            m(x, shots=4)
        votes, per_shot = m.predict(x, shots=5)
        m.trace(x, shots=2)
        m.sample(x, shots=2)
    rec.check(least=50)
    assert votes.device == META and per_shot.shape == (5, 7)


@pytest.mark.parametrize("text", [ROTATION, WEAK, CLASSICAL], ids=["rotation", "weak", "classical"])
def test_exact_mode_creates_every_tensor_on_its_device(text):
    with recording() as rec:
        m = _model(text, META)
        x = torch.empty(4, m.features, device=META)
        y = torch.zeros(4, dtype=torch.long, device=META)
        m.expected_logits(x)
        loss = m.expected_loss(x, y)
        loss.backward()
        m.expected_output_distribution(x)
        if text != CLASSICAL:
            m.exact_branches(x)
    rec.check(least=20)
    assert loss.device == META


def test_exact_outcome_distribution_on_meta():
    with recording() as rec:
        m = _model(WEAK, META)
        table, probs = m.exact_outcome_distribution(torch.empty(m.features, device=META))
    rec.check()
    assert probs.shape == (2 ** 6,) and table.device == META


def test_the_generic_kernel_path_on_meta():
    """force_generic: the rotation neuron through the state-vector kernel."""
    with recording() as rec:
        m = _model(ROTATION, META, force_generic=True)
        with torch.no_grad():
            m(torch.empty(5, m.features, device=META), shots=3)
    rec.check()


def test_the_recorder_sees_a_cpu_tensor():
    """The control: the same pass on the CPU is reported, so the checks above can fail."""
    with recording() as rec:
        m = _model(ROTATION, "cpu")
        with torch.no_grad():
            m(torch.zeros(3, m.features), shots=2)
    assert len(rec.disp.off_device) > 10
    assert any("simulator.py" in line for line in rec.disp.off_device)


# --------------------------------------------------------------------------- one training step on meta


@pytest.mark.parametrize("text, gradient", [(ROTATION, "straight_through"), (WEAK, "straight_through"),
                                            (ROTATION, "exact"), (CLASSICAL, "straight_through")],
                         ids=["rotation", "weak", "rotation-exact", "classical"])
def test_a_training_step_creates_every_tensor_on_its_device(text, gradient):
    """`train_step` (the loop's step: forward, loss, backward, SGD with momentum, as every
    example recipe) twice, so that the momentum buffers exist and are used."""
    from qnnc.runtime.train import train_step

    with recording() as rec:
        m = _model(text, META)
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
        x = torch.empty(8, m.features, device=META)
        y = torch.zeros(8, dtype=torch.long, device=META)
        for _ in range(2):
            loss, acc = train_step(m, opt, x, y, m.generator, gradient)
    rec.check(least=50)
    assert loss.device == META and acc.device == META
    assert all(b.device == META for st in opt.state.values() for b in st.values())


# --------------------------------------------------------------------------- the Monte Carlo on meta


@pytest.mark.parametrize("layers", [[5, 4, 3], [4, 6]], ids=["three-layers", "two-layers"])
def test_the_monte_carlo_creates_every_tensor_on_its_device(layers):
    """A few sweeps of parallel tempering with measurements on the torch engine: every
    tensor on the device; the per-sweep reads go through the one host boundary
    (`devices.host_array`), whose numpy sums make the report."""
    from qnnc.runtime import replicas as R

    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(a, b)) for a, b in zip(layers, layers[1:])]
    h = rng.normal(size=sum(layers))
    with recording() as rec:
        c = R.LayeredCouplings(blocks, layers, h, device=META)
        out = R.run_replicas(c, [0.5, 1.0, 2.0], replicas=3, sweeps=6, burn_in=2, seed=1,
                             directions=np.ones((1, sum(layers))))
    rec.check(least=100)
    assert out.engine == "torch"


def test_the_dense_monte_carlo_on_meta():
    from qnnc.runtime import replicas as R

    rng = np.random.default_rng(1)
    J = rng.normal(size=(5, 5))
    J = np.triu(J, 1) + np.triu(J, 1).T
    with recording() as rec:
        c = R.DenseCouplings(J, device=META)
        out = R.run_replicas(c, [0.7, 1.4], replicas=2, sweeps=4, seed=2)
    rec.check(least=50)
    assert out.engine == "torch"


# --------------------------------------------------------------------------- TAP's batched iteration


def test_the_tap_iteration_with_torch_finds_the_numpy_solutions(monkeypatch):
    """The torch form of solve_tap's batched step (used off the CPU), run here on torch's
    CPU, against the numpy form: the same solutions, basins and iteration count (float32
    products in another library: equal up to rounding)."""
    from qnnc.runtime.tap import solutions, solve_tap

    # A Hopfield model with three stored patterns: three TAP solutions (up to sign) at T = 0.8.
    rng = np.random.default_rng(0)
    xi = rng.choice([-1.0, 1.0], size=(3, 40))
    model = 2.5 * (xi.T @ xi) / 40
    np.fill_diagonal(model, 0.0)
    ref = solve_tap(model, 0.8, starts=32, seed=3)
    monkeypatch.setattr(solutions, "_use_torch", lambda device: True)
    got = solve_tap(model, 0.8, starts=32, seed=3, device="cpu")
    assert ref.n_solutions == 3
    assert got.n_solutions == ref.n_solutions
    assert sorted(got.basin_counts.tolist()) == sorted(ref.basin_counts.tolist())
    np.testing.assert_allclose(got.free_energy, ref.free_energy, atol=1e-9)

    def canonical(sols):  # up to the global sign, in a fixed order (equal free energies tie)
        sols = sols * np.sign(sols[:, :1])
        return sols[np.lexsort(np.round(sols, 6).T[::-1])]

    np.testing.assert_allclose(canonical(got.solutions), canonical(ref.solutions), atol=1e-6)


def test_run_refuses_a_gpu_for_a_cpu_only_simulator(capsys):
    code = main(["run", "examples/hardware.qnn", "--target", "ionq", "--shots", "1", "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "error[Q0635]" in err and "help:" in err


def test_run_on_the_torch_simulator_honours_the_device(monkeypatch, capsys):
    """`run --simulator qnnc` builds its model on --device (auto resolves to the CPU here)
    and gives the same outcomes as on the CPU."""
    import qnnc.runtime.simulator as simulator

    seen = []
    real = simulator.QNNModel

    class Recording(real):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            seen.append(k.get("device"))  # what `run` asked for, not the default

    monkeypatch.setattr(simulator, "QNNModel", Recording)
    outs = []
    for name in ("cpu", "auto"):
        code = main(["run", "examples/weak.qnn", "--target", "ibm", "--simulator", "qnnc", "--shots", "64",
                     "--seed", "3", "--json", "--device", name])
        assert code == 0
        result = json.loads(capsys.readouterr().out)["result"]
        outs.append((result["layers"], result["predictions"]))
    auto = resolve_device("auto")
    assert [getattr(d, "type", None) for d in seen] == ["cpu", auto.type]
    if auto.type == "cpu":  # same device, same seed: the same samples
        assert outs[0] == outs[1]


def test_the_circuit_simulator_device():
    from qnnc.runtime.cli.device_args import circuit_device

    assert circuit_device("ibm", "cpu") == "CPU"
    assert circuit_device("ionq", "auto") == "CPU" and circuit_device("quantinuum", "auto") == "CPU"
    for target, name in (("ibm", "mps"), ("quantinuum", "cuda")):
        with pytest.raises(QnncError) as e:
            circuit_device(target, name)
        assert e.value.diagnostics[0].code == "Q0635" and e.value.exit_code == 2
    pytest.importorskip("qiskit_aer")
    from qiskit_aer import AerSimulator

    gpu = "GPU" in AerSimulator().available_devices()
    assert circuit_device("ibm", "auto") == ("GPU" if gpu else "CPU")
