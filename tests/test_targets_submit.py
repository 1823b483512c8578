"""`qnnc submit` and `qnnc.runtime.targets.submit`: each vendor's own client, offline.

No test touches a network or an account. Every test runs with the cloud clients
(`QiskitRuntimeService`, `AwsDevice`) replaced by stubs that record the call and raise,
so a bug that reaches for the cloud fails loudly instead of connecting. The executors
run through the vendors' offline substitutes: qiskit-ibm-runtime's `SamplerV2` in local
testing mode on a fake backend, Braket's `LocalSimulator` through the same
`device.run`, and pytket-quantinuum's local emulator where `pytket-pecos` is installed.
Sampled outcomes are compared with the exact distribution within the total-variation
bound of tests/test_targets_differential.py. IBM runs are seeded; Braket's local
simulator takes no seed (its checks rely on the bound's delta = 1e-6)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ir_builders_targets import NEURONS, chain_network, random_weights
from qnnc.runtime.cli import main
from qnnc.runtime.targets import compile_network, exact_distribution, resolve
from qnnc.runtime.targets import submit as sub
from qnnc.runtime.targets.network import tv_bound, tv_distance

SHOTS = 4000
SECRET = "sekrit-123"

TINY = """import neurons from stdlib

param a: real in [0, inf] = 0.5

network tiny {
    input x[28, 28] with scale(1 / 255)
    layer h1[2] = rotation(a, f = clip) of dense(x, bias = off, init = normal(0, 1 / sqrt(fan_in)))
    layer h2[2] = rotation(a, f = clip) of dense(h1, bias = off, init = normal(0, 1 / sqrt(fan_in)))
    output y[10] = linear of dense(h2, bias = off, init = normal(0, 1 / sqrt(fan_in)))
    readout argmax, vote over 10 shots
}
"""

VENDOR_ENV = ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_CHANNEL", "QISKIT_IBM_URL",
              "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
              "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
              "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")


@pytest.fixture(autouse=True)
def no_cloud(monkeypatch, tmp_path):
    """No account and no cloud client: HOME is empty, the vendor variables are unset, and
    the cloud client classes are stubs that record any construction and raise."""
    import braket.aws
    import qiskit_ibm_runtime

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    for var in VENDOR_ENV:
        monkeypatch.delenv(var, raising=False)
    calls: list[str] = []

    def stub(name):
        def construct(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} constructed in a test")
        return construct

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", stub("QiskitRuntimeService"))
    monkeypatch.setattr(braket.aws, "AwsDevice", stub("AwsDevice"))
    return calls


def _case(seed: int = 1):
    net = chain_network(3, [2, 2], "rotation", {"a": 0.6, "f": "tanh"}, 2)
    w = random_weights(net, seed)
    x = np.random.default_rng(seed + 2).uniform(-1, 1, 3)
    return net, w, x


def _check_tv(compiled, net, w, x, out):
    exact = exact_distribution(resolve(net, NEURONS, w, x))
    assert out.shape == (SHOTS, 4)
    support = sum(1 for p in exact.values() if p > 0)
    tv, bound = tv_distance(out, exact), tv_bound(SHOTS, support + 1)
    assert tv <= bound, f"TV {tv:.4f} > bound {bound:.4f} ({compiled.target}/{compiled.strategy})"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "Q0000" not in err and "internal error" not in err, err
    return rc, out, err


@pytest.fixture
def tiny(tmp_path) -> str:
    p = tmp_path / "tiny.qnn"
    p.write_text(TINY)
    return str(p)


# --------------------------------------------------------------------------- the vendors' offline substitutes


@pytest.mark.parametrize("strategy", ["dynamic", "layered"])
def test_ibm_sampler_local_mode_matches_exact(strategy, no_cloud):
    """SamplerV2(mode=fake backend), noise off: if_else feed-forward (dynamic, on
    Brisbane) and parameter sets bound per job, of different shot counts (layered, on
    the 5-qubit Manila: each local job copies its fake backend, cheaper when small)."""
    net, w, x = _case()
    compiled = compile_network(net, NEURONS, w, x, target="ibm", strategy=strategy,
                               copies=2 if strategy == "layered" else None,
                               backend="fake_manila" if strategy == "layered" else None)
    done = sub.submit(compiled, SHOTS, local=True, ideal=True, seed=3)
    _check_tv(compiled, net, w, x, done.outcomes)
    assert len(done.jobs) == (len(compiled.lowered.chunks) if strategy == "layered" else 1)
    assert all(j["id"] for j in done.jobs) and not no_cloud
    if strategy == "layered":  # the second layer's job carries several parameter sets
        assert done.jobs[1]["parameter_sets"] >= 2


@pytest.mark.parametrize("strategy", ["deferred", "layered"])
def test_ionq_braket_local_simulator_matches_exact(strategy, no_cloud):
    net, w, x = _case()
    compiled = compile_network(net, NEURONS, w, x, target="ionq", strategy=strategy,
                               copies=2 if strategy == "layered" else None)
    ex = sub.executor(compiled, local=True)
    assert type(ex.device).__name__ == "LocalSimulator"
    done = sub.submit(compiled, SHOTS, local=True)
    _check_tv(compiled, net, w, x, done.outcomes)
    assert sum(j["shots"] for j in done.jobs) >= SHOTS // 2 and not no_cloud


@pytest.mark.skipif(not sub.have_local_emulator(), reason="pytket-pecos (the local emulator) not installed")
def test_quantinuum_local_emulator_matches_exact():
    net, w, x = _case()
    compiled = compile_network(net, NEURONS, w, x, target="quantinuum", strategy="dynamic")
    done = sub.submit(compiled, SHOTS, local=True, seed=2)
    _check_tv(compiled, net, w, x, done.outcomes)


def test_quantinuum_local_without_emulator_is_refused(monkeypatch):
    from qnnc.runtime.targets import quantinuum

    monkeypatch.setattr(quantinuum, "have_local_emulator", lambda: False)
    net, w, x = _case()
    compiled = compile_network(net, NEURONS, w, x, target="quantinuum", strategy="dynamic")
    with pytest.raises(Exception) as exc:
        sub.submit(compiled, 10, local=True)
    d = exc.value.diagnostics[0]
    assert d.code == "Q0352" and "pytket-pecos" in d.message


# --------------------------------------------------------------------------- the cloud path, its client replaced


def test_ibm_cloud_path_with_a_stand_in_service(monkeypatch):
    """The code path of a real submission (service.backend, transpile to its ISA,
    SamplerV2(mode=backend)), with QiskitRuntimeService replaced by a stand-in whose
    `backend()` is a fake backend: the same client calls, no network."""
    import qiskit_ibm_runtime
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    asked = []

    class Service:
        def __init__(self, *args, **kwargs):
            assert not args and not kwargs  # the saved account, nothing else

        def backend(self, name):
            asked.append(name)
            return FakeManilaV2()

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", Service)
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SECRET)
    net, w, x = _case()
    compiled = compile_network(net, NEURONS, w, x, target="ibm", strategy="layered",
                               backend="fake_manila")
    seen = []
    done = sub.submit(compiled, 200, seed=1, progress=seen.append)
    assert asked == ["ibm_manila"] and done.outcomes.shape == (200, 4)
    assert len(done.jobs) == 2 and seen == done.jobs


def test_ionq_cloud_path_with_a_stand_in_device(monkeypatch, tmp_path):
    """AwsDevice(arn).run(bound circuit, shots=s): the device replaced by Braket's
    LocalSimulator, which takes the same call."""
    import braket.aws
    from braket.devices import LocalSimulator

    arns = []

    def device(arn):
        arns.append(arn)
        return LocalSimulator("braket_sv")

    monkeypatch.setattr(braket.aws, "AwsDevice", device)
    (tmp_path / "home" / ".aws").mkdir()
    (tmp_path / "home" / ".aws" / "config").write_text("[default]\nregion = us-east-1\n")
    # a region alone is no credential: botocore's chain must find a key (a fake one)
    (tmp_path / "home" / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = not-a-secret\n")
    net, w, x = _case()
    compiled = compile_network(net, NEURONS, w, x, target="ionq", strategy="layered", copies=1)
    done = sub.submit(compiled, 300)
    assert arns == [sub.IONQ_ARNS["forte-1"]] and done.outcomes.shape == (300, 4)


# --------------------------------------------------------------------------- credentials, dry run, secrets (CLI)


@pytest.mark.parametrize("target,names", [
    ("ibm", ["QISKIT_IBM_TOKEN", ".qiskit/qiskit-ibm.json", "save_account"]),
    ("ionq", ["AWS_ACCESS_KEY_ID", "AWS_PROFILE", ".aws/credentials", ".aws/config", "aws configure"]),
])
def test_missing_credentials_are_refused_before_any_client(capsys, tiny, no_cloud, target, names):
    rc, out, err = run(capsys, "submit", tiny, "--target", target, "--shots", "10", "--yes")
    assert rc == 1 and ("\n" + err).count("\nerror[Q0350]: ") == 1 and "nothing was submitted" in err
    for name in names:
        assert name in err, name
    assert no_cloud == [] and "jobs:" not in out


def test_quantinuum_submission_is_refused(capsys, tiny):
    rc, out, err = run(capsys, "submit", tiny, "--target", "quantinuum", "--yes")
    assert rc == 1 and ("\n" + err).count("\nerror[Q0352]: ") == 1 and "qnexus" in err


def test_dry_run_prints_the_plan_and_submits_nothing(capsys, tiny, no_cloud, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("executed in a dry run")

    monkeypatch.setattr(sub, "executor", never)
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SECRET)
    rc, out, err = run(capsys, "submit", tiny, "--target", "ibm", "--backend", "ibm_torino",
                       "--strategy", "layered", "--shots", "50")
    assert rc == 0 and err.startswith("note: weights: the declared initialisation") and "error" not in err
    assert "`ibm_torino`" in out and "compiled against `fake_torino`" in out
    assert "2 rounds" in out and "2 SamplerV2 jobs" in out and "50 shots" in out
    assert "credentials: QISKIT_IBM_TOKEN (environment)" in out
    assert "dry run: nothing was submitted" in out and SECRET not in out
    rc, out, _ = run(capsys, "submit", tiny, "--target", "ionq", "--strategy", "layered", "--json")
    plan = json.loads(out)["result"]
    assert rc == 0 and plan["submitted"] is False
    p = plan["plan"]
    assert p["device"] == sub.IONQ_ARNS["forte-1"] and p["rounds"] == 2
    assert p["jobs"]["kind"] == "Braket quantum tasks" and p["credentials"]["found"] == []
    assert no_cloud == []


def test_secret_values_never_appear(capsys, tiny, monkeypatch):
    """A vendor error that echoes the credential is cut to one line, the value masked."""
    import braket.aws
    import qiskit_ibm_runtime

    def failing(*args, **kwargs):
        raise RuntimeError(f"401 Unauthorized: token {SECRET} rejected (apikey={SECRET}x)\n"
                           f"Traceback (most recent call last):\n  token={SECRET}")

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", failing)
    monkeypatch.setattr(braket.aws, "AwsDevice", failing)
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SECRET)
    for fmt in ("text", "json"):
        rc, out, err = run(capsys, "--error-format", fmt, "submit", tiny, "--target", "ibm", "--yes")
        assert rc == 1 and "Q0351" in err and "401 Unauthorized" in err
        assert SECRET not in out + err and "Traceback" not in err
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    rc, out, err = run(capsys, "submit", tiny, "--target", "ionq", "--yes")
    assert rc == 1 and "Q0351" in err and "401 Unauthorized" in err
    assert SECRET not in out + err and "AKIAEXAMPLE" not in out + err


def test_mask():
    text = 'token=abc123 "apikey": "k-9" Authorization: Bearer eyJhbGci.x.y password=hunter2 job 42'
    masked = sub.mask(text)
    for secret in ("abc123", "k-9", "eyJhbGci", "hunter2"):
        assert secret not in masked
    assert "job 42" in masked


# --------------------------------------------------------------------------- local runs through the CLI


def test_cli_local_run_writes_results_atomically(capsys, tiny, tmp_path, no_cloud):
    results = tmp_path / "out" / "results.json"
    results.parent.mkdir()
    rc, out, err = run(capsys, "submit", tiny, "--target", "ionq", "--strategy", "layered",
                       "--shots", "40", "--local", "-o", str(results), "--json")
    assert rc == 0 and "error" not in err  # stderr: progress only
    shown = json.loads(out)
    saved = json.loads(results.read_text())
    assert saved["result"] == shown["result"] and saved["command"] == "submit"
    saved = saved["result"]
    assert saved["submission"]["mode"] == "local" and saved["shots"] == 40
    assert len(saved["submission"]["jobs"]) >= 2 and all(j["id"] for j in saved["submission"]["jobs"])
    assert set(saved["layers"]) == {"h1", "h2"} and sum(saved["predictions"]["histogram"]) == 40
    assert [p.name for p in results.parent.iterdir()] == ["results.json"]  # no temp file left
    assert no_cloud == []


def test_cli_local_ibm_through_sampler(capsys, tiny, no_cloud):
    """Local testing mode with the snapshot's noise, on the 5-qubit Manila."""
    rc, out, err = run(capsys, "submit", tiny, "--target", "ibm", "--backend", "ibm_manila",
                       "--shots", "20", "--local")
    assert rc == 0 and "local stand-in" in out and "jobs: " in out and "predictions" in out
    assert no_cloud == []


@pytest.mark.parametrize("argv,code", [
    (["--shots", "0", "--local"], "Q0407"),  # refused when the flags are parsed (bad usage, exit 2)
    (["--target", "ionq", "--backend", "nope"], "Q0304"),
    (["--target", "ibm", "--backend", "bad name!"], "Q0304"),
    (["--target", "ibm", "--backend", "ibm_nowhere"], "Q0304"),
    (["--target", "quantinuum", "--backend", "nope"], "Q0304"),
    (["--local", "-o", "/nonexistent-dir/r.json"], "Q0405"),
])
def test_bad_input_gives_a_diagnostic(capsys, tiny, argv, code):
    rc, out, err = run(capsys, "submit", tiny, *argv)
    assert rc == (2 if code == "Q0407" else 1) and err.startswith(f"error[{code}]: "), err
