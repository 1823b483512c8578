"""Golden diagnostics of the refusals outside `.qnn` text: flags, output paths, special
files, checkpoints, sidecars, IR JSON and data files. Each case prepares its files in a
fresh folder, runs the CLI in-process there (so messages name relative paths), and its
stderr must equal `tests/golden/cli/NAME.err`.

Regenerate with `QNNC_UPDATE_GOLDEN=1 pytest tests/test_golden_cli.py` and read every
changed file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cli_harness import assert_clean, run_cli, without_notes
from qnnc.compiler import dump_ir, parse_program
from qnnc.runtime import checkpoint as ckpt

GOLDEN = Path(__file__).parent / "golden" / "cli"
UPDATE = bool(os.environ.get("QNNC_UPDATE_GOLDEN"))
PROGRAM = """network tiny {
    input x[2, 2]
    layer h1[3] = sign of dense(x, bias = off)
    output y[2] = linear of dense(h1, bias = off)
}
"""


def _checkpoint() -> Path:
    tensors = {"h1": np.ones((3, 4), np.float32), "y": np.full((2, 3), 0.5, np.float32)}
    return ckpt.save_checkpoint("run", 0, tensors, {"network": "tiny"})


def _edit_sidecar(path: Path, fn) -> None:
    side = path.with_suffix(".json")
    side.write_text(fn(json.loads(side.read_text())) if callable(fn) else fn)


def _reseal(path: Path, blob: bytes) -> None:
    path.write_bytes(blob)
    _edit_sidecar(path, lambda m: json.dumps({**m, "sha256": hashlib.sha256(blob).hexdigest()}))


def _bf16(path: Path) -> None:
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    text = blob[8:8 + n].replace(b'"F32"', b'"BF16"', 1)
    _reseal(path, blob[:8] + text + blob[8 + n:])


def _ir(edit) -> None:
    doc = json.loads(dump_ir(parse_program(PROGRAM, "tiny.qnn")))
    Path("tiny.json").write_text(edit(doc))


def _npz(name: str, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    Path(name).write_bytes(buf.getvalue())


def _claiming_npz() -> None:
    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000,), }"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    with zipfile.ZipFile("claim.npz", "w") as z:
        z.writestr("images.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
        z.writestr("labels.npy", b"")


CASES = {
    "flag_seed_negative": (None, ["eval", "tiny.qnn", "--seed", "-1"]),
    "flag_seed_too_large": (None, ["hamiltonian", "tiny.qnn", "--seed", str(2 ** 64)]),
    "flag_lr_nan": (None, ["train", "tiny.qnn", "--lr", "nan"]),
    "flag_shots_too_many": (None, ["eval", "tiny.qnn", "--shots", str(10 ** 12)]),
    "flag_epochs_too_many": (None, ["train", "tiny.qnn", "--epochs", str(10 ** 12)]),
    "flag_noise_pairs_too_many": (None, ["compile", "tiny.qnn", "--noise-pairs", str(10 ** 6)]),
    "flag_window_reversed": (None, ["tap", "tiny.qnn", "--window", "5", "1"]),
    "flag_window_infinite": (None, ["tap", "tiny.qnn", "--window", "nan", "inf"]),
    "flag_out_empty": (None, ["train", "tiny.qnn", "--out", ""]),
    "source_device": (None, ["check", "/dev/zero"]),
    "source_proc_file": (None, ["check", "/proc/self/environ"]),
    "output_device": (None, ["ir", "tiny.qnn", "-o", "/dev/null"]),
    "output_under_a_file": (None, ["ir", "tiny.qnn", "-o", "tiny.qnn/out.json"]),
    "output_folder": (lambda: os.mkdir("out"), ["hamiltonian", "tiny.qnn", "-o", "out"]),
    "checkpoint_without_checksum": (
        lambda: _edit_sidecar(_checkpoint(), lambda m: json.dumps({k: v for k, v in m.items() if k != "sha256"})),
        ["hamiltonian", "tiny.qnn", "--run", "run", "--checkpoint", "0"]),
    "checkpoint_bf16": (lambda: _bf16(_checkpoint()), ["hamiltonian", "tiny.qnn", "--run", "run", "--checkpoint", "0"]),
    "checkpoint_truncated_header": (lambda: _reseal(_checkpoint(), b"\xff" * 8 + b"{}"),
                                    ["hamiltonian", "tiny.qnn", "--run", "run", "--checkpoint", "0"]),
    "sidecar_nested_deeply": (lambda: _edit_sidecar(_checkpoint(), "[" * 100_000 + "]" * 100_000),
                              ["hamiltonian", "tiny.qnn", "--run", "run", "--checkpoint", "0"]),
    "sidecar_wrong_type": (lambda: _edit_sidecar(_checkpoint(), lambda m: json.dumps({**m, "step": "0"})),
                           ["hamiltonian", "tiny.qnn", "--run", "run", "--checkpoint", "0"]),
    "ir_infinite_number": (lambda: _ir(lambda d: json.dumps(d).replace('"size": 3', '"size": 1e999', 1)),
                           ["check", "tiny.json"]),
    "ir_lone_surrogate": (lambda: _ir(lambda d: json.dumps(d).replace('"tiny"', '"\\ud800"', 1)), ["check", "tiny.json"]),
    "ir_span_names_another_file": (
        lambda: _ir(lambda d: json.dumps(d).replace('"file": "tiny.qnn"', '"file": "/etc/passwd"')
                    .replace('"size": 3', '"size": 0', 1)), ["check", "tiny.json"]),
    "npz_label_too_large": (lambda: _npz("labels.npz", images=np.zeros((2, 2, 2), np.uint8),
                                         labels=np.array([0, 2 ** 64 - 1], np.uint64)),
                            ["data", "info", "labels.npz"]),
    "npz_shape_claim": (_claiming_npz, ["data", "info", "claim.npz"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_cli(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("tiny.qnn").write_text(PROGRAM)
    setup, argv = CASES[name]
    if setup:
        setup()
    rc, out, err = run_cli(argv)
    assert_clean(rc, err, argv)
    assert rc in (1, 2), err
    assert (rc == 2) == without_notes(err).startswith("error[Q0407]"), err
    golden = GOLDEN / f"{name}.err"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(err, encoding="utf-8")
    assert err == golden.read_text(encoding="utf-8")


def test_no_orphan_goldens():
    assert sorted(p.stem for p in GOLDEN.glob("*.err")) == sorted(CASES)
