"""Checkpoints: atomic safetensors + sidecar, integrity and fit checks, no pickle."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from qnnc.compiler import parse_program
from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime import checkpoint as ckpt

PROGRAM = """
network small {
    input x[4, 4]
    layer h[3] = sign of dense(x)
    output y[2] = linear of dense(h, bias = on)
}
"""
OTHER = PROGRAM.replace("h[3]", "h[5]")


def _net(text=PROGRAM):
    return parse_program(text, "t.qnn").network()


def _tensors(seed=0, width=3):
    rng = np.random.default_rng(seed)
    return {"h": rng.normal(size=(width, 16)).astype(np.float32),
            "y": rng.normal(size=(2, width)).astype(np.float32),
            "y.bias": rng.normal(size=(2,)).astype(np.float32)}


def test_architecture_lists_every_tensor_with_its_shape():
    assert ckpt.architecture(_net()) == {"h": [3, 16], "y": [2, 3], "y.bias": [2]}


def test_architecture_hash_ignores_layout_but_not_widths():
    assert ckpt.architecture_hash(_net()) == ckpt.architecture_hash(_net("# c\n" + PROGRAM))
    assert ckpt.architecture_hash(_net()) != ckpt.architecture_hash(_net(OTHER))


def test_round_trip_keeps_values_and_metadata(tmp_path):
    t = _tensors()
    extra = {"optimizer/h/momentum_buffer": np.ones((3, 16), np.float32)}
    ckpt.save_checkpoint(tmp_path, 7, t, {"network": "small", "seed": 3}, extra)
    assert ckpt.list_checkpoints(tmp_path) == [7]
    c = ckpt.load_checkpoint(ckpt.resolve_checkpoint(tmp_path, 7), _net())
    assert c.step == 7 and c.meta["seed"] == 3
    for k in t:
        np.testing.assert_array_equal(c.tensors[k], t[k])
    np.testing.assert_array_equal(c.extra["optimizer/h/momentum_buffer"], extra["optimizer/h/momentum_buffer"])


def test_last_checkpoint_is_the_highest_step(tmp_path):
    for s in (0, 10, 2):
        ckpt.save_checkpoint(tmp_path, s, _tensors(s), {"network": "small"})
    assert ckpt.resolve_checkpoint(tmp_path, None).name == "step-000010.safetensors"
    assert ckpt.resolve_checkpoint(tmp_path, "last").name == "step-000010.safetensors"


def test_missing_step_names_the_nearest(tmp_path):
    ckpt.save_checkpoint(tmp_path, 100, _tensors(), {"network": "small"})
    with pytest.raises(QnncError) as e:
        ckpt.resolve_checkpoint(tmp_path, 90)
    d = e.value.diagnostics[0]
    assert d.code == "Q0530" and "step 90" in d.message and "100" in d.help


def test_missing_run_directory(tmp_path):
    with pytest.raises(QnncError) as e:
        ckpt.resolve_checkpoint(tmp_path / "nope", 1)
    assert e.value.diagnostics[0].code == "Q0530"


def test_truncated_checkpoint_is_refused_with_the_file_named(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, 1, _tensors(), {"network": "small"})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(QnncError) as e:
        ckpt.load_checkpoint(path, _net())
    d = e.value.diagnostics[0]
    assert d.code == "Q0535" and str(path) in d.message and "\n" not in d.message


def test_a_sidecar_without_checksum_is_refused(tmp_path):
    """Integrity is never optional: no `sha256`, and one flipped weight byte goes unseen."""
    path = ckpt.save_checkpoint(tmp_path, 1, _tensors(), {"network": "small"})
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    del meta["sha256"]
    side.write_text(json.dumps(meta))
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(QnncError) as e:
        ckpt.load_checkpoint(path, _net())
    assert e.value.diagnostics[0].code == "Q0534"
    assert "checksum is required" in e.value.diagnostics[0].message


def test_checkpoint_bytes_are_deterministic(tmp_path):
    """The same tensors and metadata give the same bytes (sorted header, sorted tensors),
    and the file reads back with the `safetensors` package too."""
    from safetensors.numpy import load as load_numpy

    extra = {"optimizer/h1/momentum_buffer": np.ones((3, 4), np.float32), "rng/torch": np.arange(7, dtype=np.uint8)}
    meta = {"network": "small", "flags": {"z": 1, "a": 2, "m": {"y": 1, "b": 2}}, "seed": 3}
    a = ckpt.save_checkpoint(tmp_path / "a", 5, _tensors(), meta, extra).read_bytes()
    b = ckpt.save_checkpoint(tmp_path / "b", 5, _tensors(), dict(reversed(list(meta.items()))),
                             dict(reversed(list(extra.items())))).read_bytes()
    assert a == b
    back = load_numpy(a)
    assert set(back) == set(_tensors()) | set(extra)


def test_checkpoint_of_another_network(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, 1, _tensors(width=5), {"network": "small"})
    with pytest.raises(QnncError) as e:
        ckpt.load_checkpoint(path, _net())
    d = e.value.diagnostics[0]
    assert d.code == "Q0532" and "`h` is [5, 16]" in d.message and "[3, 16]" in d.message


def test_non_finite_weights_are_never_saved_and_never_loaded(tmp_path):
    t = _tensors()
    t["h"][0, 0] = np.nan
    with pytest.raises(QnncError) as e:
        ckpt.save_checkpoint(tmp_path, 1, t, {"network": "small"})
    assert e.value.diagnostics[0].code == "Q0533"
    assert ckpt.list_checkpoints(tmp_path) == []
    # A file written by something else with a NaN in it.
    from safetensors.numpy import save_file

    good = ckpt.save_checkpoint(tmp_path, 2, _tensors(), {"network": "small"})
    bad = _tensors()
    bad["y"][1, 1] = np.inf
    save_file(bad, str(good))
    side = good.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["sha256"] = hashlib.sha256(good.read_bytes()).hexdigest()  # a consistent but diverged checkpoint
    side.write_text(json.dumps(meta))
    with pytest.raises(QnncError) as e:
        ckpt.load_checkpoint(good, _net())
    assert e.value.diagnostics[0].code == "Q0533" and "`y`" in e.value.diagnostics[0].message


def test_a_checkpoint_without_its_sidecar_is_not_listed(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, 3, _tensors(), {"network": "small"})
    path.with_suffix(".json").unlink()
    assert ckpt.list_checkpoints(tmp_path) == []
    with pytest.raises(QnncError) as e:
        ckpt.load_checkpoint(path, _net())
    assert e.value.diagnostics[0].code == "Q0534"


def test_no_temporary_files_are_left_behind(tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, _tensors(), {"network": "small"})
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-000001.json", "step-000001.safetensors"]


def test_the_file_is_plain_safetensors_not_pickle(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, 1, _tensors(), {"network": "small"})
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8: 8 + header_len])
    assert header["__metadata__"]["format"] == "qnnc-checkpoint"
    assert not path.read_bytes().startswith(b"\x80")  # pickle protocol marker


def test_layers_initialised_from_another_runs_checkpoint(tmp_path):
    ckpt.save_checkpoint(tmp_path / "base", 5, _tensors(seed=4), {"network": "small"})
    text = PROGRAM.replace("dense(x)", 'dense(x, init = checkpoint("base", step = 5, tensor = "h"))')
    net = parse_program(text, str(tmp_path / "t.qnn")).network()
    got = ckpt.checkpoint_init_tensors(net, tmp_path)
    np.testing.assert_array_equal(got["h"], _tensors(seed=4)["h"])
    wrong = text.replace('tensor = "h"', 'tensor = "y"')
    with pytest.raises(QnncError) as e:
        ckpt.checkpoint_init_tensors(parse_program(wrong, "t.qnn").network(), tmp_path)
    assert e.value.diagnostics[0].code == "Q0532" and "needs [3, 16]" in e.value.diagnostics[0].message
    missing = text.replace('tensor = "h"', 'tensor = "hh"')
    with pytest.raises(QnncError) as e:
        ckpt.checkpoint_init_tensors(parse_program(missing, "t.qnn").network(), tmp_path)
    assert "did you mean `h`" in (e.value.diagnostics[0].help or "")
