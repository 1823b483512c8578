"""The adversarial inputs of issue 9, one per class of refusal, and how to run one:
`qnnc` in a fresh interpreter that reports its exit code, the time of `main()` alone and
its own peak resident memory (VmHWM), so imports count in memory but not in time.

Shared by tests/test_refusal_cost.py (exit codes, no traceback, memory) and
benchmarks/bench_refusals.py (the times: a test asserts no time).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from qnnc.compiler import dump_ir, parse_program
from qnnc.runtime import checkpoint as ckpt

CHILD = """
import json, sys, time
from qnnc.runtime.cli import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
dt = time.perf_counter() - t0
# VmHWM: this process's peak resident memory (ru_maxrss would count the parent's
# memory too: it survives the fork and exec of the child).
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
sys.stderr.write("\\n@@" + json.dumps({"rc": rc, "seconds": dt, "peak": peak}) + "\\n")
"""

PROGRAM = """network tiny {
    input x[2, 2]
    layer h1[3] = sign of dense(x, bias = off)
    output y[2] = linear of dense(h1, bias = off)
    readout argmax, vote over SHOTS shots
}
"""


def cases(d: Path) -> dict[str, list[str]]:
    """Write the inputs into the folder d; returns the `qnnc` arguments of each case."""
    tiny = d / "tiny.qnn"
    tiny.write_text(PROGRAM.replace("SHOTS", "3"))
    (d / "shots.qnn").write_text(PROGRAM.replace("SHOTS", "10 ^ 15"))
    (d / "bigint.qnn").write_text("param a = " + "9" * 5000 + "\n")
    (d / "kinf.qnn").write_text("neuron t(k: int = 1) {\n qubit q\n ry(k * z) q\n emit measure q\n}\n"
                                "network n {\n input x[2]\n layer h[2] = t(k = inf) of dense(x)\n"
                                " output y[2] = linear of dense(h)\n}\n")
    (d / "environ.qnn").write_text('import e from "/proc/self/environ"\n')
    (d / "many.qnn").write_text("".join(f"param p{i} = q{i}\n" for i in range(20_000)))
    (d / "long.qnn").write_text("param a = nope  # " + "x" * 400_000 + "\n")
    os.mkfifo(d / "fifo.qnn")
    doc = json.loads(dump_ir(parse_program(PROGRAM.replace("SHOTS", "3"), "tiny.qnn")))
    text = json.dumps(doc)
    (d / "surrogate.json").write_text(text.replace('"tiny"', '"\\ud800"', 1))
    (d / "inf.json").write_text(text.replace('"size": 3', '"size": 1e999', 1))
    (d / "spans.json").write_text(text.replace('"file": "tiny.qnn"', '"file": "/dev/zero"')
                                  .replace('"size": 3', '"size": 0', 1))
    (d / "deep.json").write_text("[" * 1_000_000 + "]" * 1_000_000)
    run = d / "run"
    tensors = {"h1": np.ones((3, 4), np.float32), "y": np.ones((2, 3), np.float32)}
    for step, edit in enumerate(["bf16", "deep", "nosha"]):
        p = ckpt.save_checkpoint(run / edit, 0, tensors, {"network": "tiny"})
        side = p.with_suffix(".json")
        if edit == "bf16":
            blob = p.read_bytes().replace(b'"F32"', b'"BF16"', 1)
            p.write_bytes(blob)
            meta = json.loads(side.read_text())
            meta["sha256"] = hashlib.sha256(blob).hexdigest()
            side.write_text(json.dumps(meta))
        elif edit == "deep":
            side.write_text("[" * 100_000 + "]" * 100_000)
        else:
            meta = json.loads(side.read_text())
            del meta["sha256"]
            side.write_text(json.dumps(meta))
            blob = bytearray(p.read_bytes())
            blob[-1] ^= 1
            p.write_bytes(bytes(blob))
    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000,), }"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    with zipfile.ZipFile(d / "claim.npz", "w") as z:
        z.writestr("images.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
        z.writestr("labels.npy", b"")
    with zipfile.ZipFile(d / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("images.npy", b"\0" * (200 << 20))  # 200 MB inflated, well within the file limit
        z.writestr("labels.npy", b"")
    buf = io.BytesIO()
    np.savez(buf, images=np.zeros((2, 2, 2), np.uint8), labels=np.array([0, 2 ** 64 - 1], np.uint64))
    (d / "labels.npz").write_bytes(buf.getvalue())
    (d / "bomb-idx3-ubyte.gz").write_bytes(gzip.compress(b"\0" * (1100 << 20), 1))
    t = str(tiny)
    ck = ["--run"]
    return {
        "int literal beyond 4,300 digits": ["check", str(d / "bigint.qnn")],
        "int neuron parameter inf": ["check", str(d / "kinf.qnn")],
        "--set with 5,000 digits": ["check", t, "--set", "a=" + "9" * 5000],
        "source /dev/zero": ["check", "/dev/zero"],
        "source FIFO": ["check", str(d / "fifo.qnn")],
        "import /proc/self/environ": ["check", str(d / "environ.qnn")],
        "IR lone surrogate": ["check", str(d / "surrogate.json")],
        "IR 1e999": ["ir", str(d / "inf.json")],
        "IR span naming /dev/zero": ["check", str(d / "spans.json")],
        "IR nested 10^6 deep": ["check", str(d / "deep.json")],
        "checkpoint BF16": ["hamiltonian", t, *ck, str(run / "bf16"), "--checkpoint", "0"],
        "sidecar nested 10^5 deep": ["hamiltonian", t, *ck, str(run / "deep"), "--checkpoint", "0"],
        "sidecar without sha256, flipped byte": ["hamiltonian", t, *ck, str(run / "nosha"), "--checkpoint", "0"],
        "npy header claims 10^12": ["data", "info", str(d / "claim.npz")],
        "npz inflating to 200 MB member": ["data", "info", str(d / "bomb.npz")],
        "gzip inflating past the limit": ["data", "info", str(d / "bomb-idx3-ubyte.gz")],
        "label 2^64 - 1": ["data", "info", str(d / "labels.npz")],
        "output into /proc": ["ir", t, "-o", "/proc/qnnc/out.json"],
        "output over a device": ["hamiltonian", t, "-o", "/dev/null"],
        "eval --seed -1": ["eval", t, "--seed", "-1"],
        "train --lr nan": ["train", t, "--lr", "nan"],
        "vote over 10^15 shots": ["eval", str(d / "shots.qnn")],
        "eval --shots 10^12": ["eval", t, "--shots", str(10 ** 12)],
        "run --shots 10^12": ["run", t, "--shots", str(10 ** 12)],
        "train --epochs 10^12": ["train", t, "--epochs", str(10 ** 12)],
        "compile --noise-pairs 10^6": ["compile", t, "--noise-pairs", str(10 ** 6)],
        "tap --window nan inf": ["tap", t, "--window", "nan", "inf"],
        "20,000 diagnostics": ["check", str(d / "many.qnn")],
        "a 400 kB line": ["check", str(d / "long.qnn")],
    }


def run_case(argv: list[str], cwd: Path) -> tuple[dict, str]:
    """Run `qnnc ARGV` in a fresh interpreter; returns ({"rc", "seconds", "peak"}, stderr)."""
    r = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, timeout=120, cwd=cwd)
    return json.loads(r.stderr.rsplit("@@", 1)[1]), r.stderr
