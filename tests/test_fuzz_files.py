"""Seeded mutation fuzzing of the files qnnc reads besides `.qnn` text: IR JSON,
checkpoints (the safetensors file, its sidecar, the generator state, the metrics log)
and data files (.npz, .npy members, IDX, gzip). In-process and fast.

Every mutant is either accepted (and then usable: an accepted IR dumps back) or refused
with diagnostics that carry a code other than Q0000 and render. Any other exception is
a bug and fails with the mutant's seed.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import random
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cli_harness import check_refusal
from qnnc.compiler import dump_ir, load_ir_text, parse_program
from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime import checkpoint as ckpt
from qnnc.runtime import data

ROOT = Path(__file__).resolve().parent.parent
IR_CASES = 500  # per source below: 1,500 IR mutants
CHECKPOINT_CASES = 600
SIDECAR_CASES = 300
RNG_CASES = 100
METRICS_CASES = 100
NPZ_CASES = 400
IDX_CASES = 300
FILE_CASES = (3 * IR_CASES + CHECKPOINT_CASES + SIDECAR_CASES + RNG_CASES + METRICS_CASES
              + NPZ_CASES + IDX_CASES)

ODD_VALUES = [None, True, False, 0, -1, 1, 2 ** 31, 2 ** 63, 2 ** 64 + 1, 10 ** 300, 1.5, -0.0, 1e308,
              "", "x", "\ud800", "\x00", "é" * 3, "\u202e", "/proc/self/environ", "~/.aws/credentials",
              [], [1, 2], {}, {"node": "Program"}, {"file": "/dev/zero", "line": 1, "col": 1,
                                                     "end_line": 1, "end_col": 2}]
SPAN_VALUES = [{"file": f, "line": ln, "col": c, "end_line": el, "end_col": ec}
               for f, ln, c, el, ec in [("/dev/zero", 1, 1, 1, 2), ("/proc/self/environ", 1, 1, 1, 9),
                                        ("/etc/passwd", 1, 1, 1, 5), ("\ud800", 1, 1, 1, 2),
                                        ("x.qnn", 10 ** 9, 1, 10 ** 9, 2), ("x.qnn", 1, 10 ** 9, 1, 10 ** 9 + 1),
                                        ("x.qnn", 0, 0, 0, 0), ("x.qnn", 2, 5, 1, 1)]]


# --------------------------------------------------------------------------- IR JSON


def _paths(obj, prefix=()):
    """Every (path, value) in decoded JSON."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    if not path:
        return value
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return obj


def _mutate_ir(doc: dict, rng: random.Random) -> str:
    doc = copy.deepcopy(doc)
    kind = rng.choice(["type", "value", "span", "unicode", "nesting", "text", "delete", "mixed"])
    if kind == "mixed":
        for _ in range(2):
            try:
                doc = json.loads(_mutate_ir(doc, rng))
            except (ValueError, RecursionError):
                pass
        kind = rng.choice(["type", "value", "span"])
    paths = list(_paths(doc))
    if not any(isinstance(v, dict) and "end_col" in v for _, v in paths) or not isinstance(doc, dict):
        return json.dumps(doc)
    path, value = rng.choice(paths)
    if kind == "type":
        doc = _set(doc, path, copy.deepcopy(rng.choice(ODD_VALUES)))
    elif kind == "value":
        nums = [(p, v) for p, v in paths if isinstance(v, (int, float)) and not isinstance(v, bool)]
        p, v = rng.choice(nums)
        doc = _set(doc, p, rng.choice([0, -v, v * 10 ** 6, 2 ** 62, 2 ** 63, -2 ** 63, 10 ** 15, 1e300, -1e300,
                                       5e-324, v + 0.5]))
    elif kind == "span":
        spans = [(p, v) for p, v in paths if isinstance(v, dict) and "end_col" in v]
        p, _ = rng.choice(spans)
        doc = _set(doc, p, copy.deepcopy(rng.choice(SPAN_VALUES)))
    elif kind == "unicode":
        strs = [(p, v) for p, v in paths if isinstance(v, str)]
        p, v = rng.choice(strs)
        doc = _set(doc, p, rng.choice(["\ud800", v + "\udfff", "\x00", "\x1b[31m", "\u202e" + v, "é" + v,
                                       v * 1000, "\U0001f600"]))
    elif kind == "nesting":
        depth = rng.choice([50, 1000, 100_000])
        nested = rng.choice(["[", '{"a":'])
        closing = "]" if nested == "[" else "}"
        return json.dumps(_set(doc, path, "@@")).replace('"@@"', nested * depth + "1" + closing * depth, 1)
    elif kind == "delete" and isinstance(value, (dict, list)) and value:
        key = rng.choice(list(value) if isinstance(value, dict) else range(len(value)))
        del value[key]
    text = json.dumps(doc)
    if kind == "text":
        p = rng.randrange(len(text))
        tok = rng.choice(["1e999", "-1e999", "NaN", "Infinity", "9" * 5000, "\"\\ud800\"", "\"\\u0000\"",
                          "", "}", "]", "\"", "\\", "\x00", "0" * 500 + ".5"])
        text = text[:p] + tok + text[p + rng.randint(0, 8):]
    return text


IR_SOURCES = ["examples/weak.qnn", "examples/spin_binary.qnn", "examples/mnist.qnn"]


@pytest.mark.parametrize("source", IR_SOURCES)
def test_ir_json_mutants(source):
    program = parse_program((ROOT / source).read_text(encoding="utf-8"), source)
    doc = json.loads(dump_ir(program))
    rng = random.Random(f"ir:{source}")
    accepted = 0
    for i in range(IR_CASES):
        text = _mutate_ir(doc, rng)
        try:
            loaded = load_ir_text(text, "fuzz.ir.json")
        except QnncError as exc:
            check_refusal(exc, (source, i))
            continue
        except Exception as exc:  # noqa: BLE001 - any other exception is a bug
            pytest.fail(f"{source} mutant {i}: {type(exc).__name__}: {exc}\n{text[:500]!r}")
        dump_ir(loaded)  # what check accepts, `qnnc ir` writes
        accepted += 1
    assert accepted < IR_CASES  # the mutations do reach refusals


# --------------------------------------------------------------------------- checkpoints

NET = """
network tiny {
    input x[2, 2]
    layer h1[3] = sign of dense(x)
    output y[2] = linear of dense(h1)
}
"""


def _network():
    return parse_program(NET, "tiny.qnn").network("tiny")


def _good_checkpoint(run: Path) -> Path:
    tensors = {"h1": np.ones((3, 4), np.float32), "h1.bias": np.zeros(3, np.float32),
               "y": np.full((2, 3), 0.5, np.float32), "y.bias": np.zeros(2, np.float32)}
    extra = {"optimizer/h1/momentum_buffer": np.zeros((3, 4), np.float32),
             "rng/torch": np.arange(5056, dtype=np.uint8) % 251}
    return ckpt.save_checkpoint(run, 4, tensors, {"network": "tiny", "seed": 1}, extra)


def _reseal(path: Path, blob: bytes) -> None:
    """Write `blob` and a sidecar vouching for it: the parser, not the checksum, must refuse."""
    path.write_bytes(blob)
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["sha256"] = hashlib.sha256(blob).hexdigest()
    side.write_text(json.dumps(meta))


def _mutate_blob(blob: bytes, rng: random.Random) -> bytes:
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    kind = rng.choice(["flip", "truncate", "length", "dtype", "shape", "offsets", "metadata", "entry", "junk"])
    if kind == "flip":
        b = bytearray(blob)
        for _ in range(rng.randint(1, 4)):
            p = rng.randrange(min(len(b), 8 + n + 16))
            b[p] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == "truncate":
        return blob[:rng.randrange(len(blob))]
    if kind == "length":
        return struct.pack("<Q", rng.choice([0, 1, n - 1, n + 8, 2 ** 63, 2 ** 64 - 1, 10 ** 12])) + blob[8:]
    if kind == "junk":
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    name = rng.choice([k for k in header if k != "__metadata__"])
    if kind == "dtype":
        header[name]["dtype"] = rng.choice(["BF16", "F16", "F8_E4M3", "BOOL", "I8", "U64", "C64", "", 7, None])
    elif kind == "shape":
        header[name]["shape"] = rng.choice([[10 ** 12], [-1], [2, 2, 2, 2, 2, 2, 2, 2, 2], [], [0], "3",
                                            [1.5], [10 ** 6, 10 ** 6], [2 ** 64]])
    elif kind == "offsets":
        header[name]["data_offsets"] = rng.choice([[0, 10 ** 12], [-8, 0], [8, 4], [0], None, [0, 2 ** 64]])
    elif kind == "metadata":
        header["__metadata__"] = rng.choice([{"a": 1}, [], "x", {"format": None}, {"\ud800": "x"}])
    else:
        header[name] = rng.choice([None, [], {"dtype": "F32"}, {"dtype": "F32", "shape": [1],
                                                                "data_offsets": [0, 4], "x": 1}])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob[8 + n:]


def _load(path: Path, what):
    try:
        return ckpt.load_checkpoint(path, _network())
    except QnncError as exc:
        return check_refusal(exc, what)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"{what}: {type(exc).__name__}: {exc}")


def test_checkpoint_file_mutants(tmp_path):
    path = _good_checkpoint(tmp_path / "run")
    good = path.read_bytes()
    side = path.with_suffix(".json").read_text()
    rng = random.Random("checkpoint")
    refused = 0
    for i in range(CHECKPOINT_CASES):
        blob = _mutate_blob(good, rng)
        path.with_suffix(".json").write_text(side)
        if rng.random() < 0.8:
            _reseal(path, blob)
        else:
            path.write_bytes(blob)
        refused += isinstance(_load(path, ("checkpoint", i)), set)
    assert refused > CHECKPOINT_CASES // 2


def _deep(n: int) -> str:
    return "[" * n + "]" * n


def test_sidecar_mutants(tmp_path):
    path = _good_checkpoint(tmp_path / "run")
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    rng = random.Random("sidecar")
    for i in range(SIDECAR_CASES):
        kind = rng.choice(["type", "delete", "text", "deep", "bytes"])
        m = copy.deepcopy(meta)
        if kind == "type":
            m[rng.choice(list(m) + ["metrics", "flags"])] = copy.deepcopy(rng.choice(ODD_VALUES))
            text = json.dumps(m).encode()
        elif kind == "delete":
            del m[rng.choice(list(m))]
            text = json.dumps(m).encode()
        elif kind == "deep":
            m["flags"] = "@"
            text = json.dumps(m).encode().replace(b'"@"', _deep(rng.choice([65, 1000, 100_000])).encode())
        elif kind == "bytes":
            text = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        else:
            t = json.dumps(m)
            p = rng.randrange(len(t))
            text = (t[:p] + rng.choice(["NaN", "1e999", "\ud800", "\x00", "}", "9" * 5000]) + t[p + 1:]).encode(
                "utf-8", "surrogatepass")
        side.write_bytes(text)
        result = _load(path, ("sidecar", i, kind))
        assert isinstance(result, set) or kind == "type", (i, kind)


def test_generator_state_mutants():
    import torch

    from qnnc.runtime.train import _restore_generator

    rng = random.Random("rng")
    want = torch.Generator().get_state().numpy()
    for i in range(RNG_CASES):
        state = rng.choice([
            want[:rng.randrange(len(want))], want.astype(np.int64), want.astype(np.float32),
            np.frombuffer(bytes(rng.randrange(256) for _ in range(len(want))), np.uint8),
            want.reshape(-1, 16) if len(want) % 16 == 0 else want[:0], np.zeros(0, np.uint8), None, want.copy()])
        extra = {} if state is None else {"rng/torch": state}
        try:
            _restore_generator(torch.Generator(), extra, "ckpt")
        except QnncError as exc:
            assert check_refusal(exc, ("rng", i)) == {"Q0531"}
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"rng {i}: {type(exc).__name__}: {exc}")


def test_metrics_log_mutants(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = "".join(json.dumps({"kind": "step", "step": s, "epoch": 0, "loss": 0.5, "images": 4}) + "\n"
                   for s in range(1, 9)).encode()
    rng = random.Random("metrics")
    for i in range(METRICS_CASES):
        b = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            p = rng.randrange(len(b))
            b[p:p + 1] = rng.choice([b"\xff", b"\xc3", b"\n", b"", b"NaN", b"1e999", b"[" * 1000, b"\x00"])
        path.write_bytes(bytes(b))
        try:
            ckpt.read_metrics(path)
        except QnncError as exc:
            assert check_refusal(exc, ("metrics", i)) == {"Q0534"}
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"metrics {i}: {type(exc).__name__}: {exc}\n{bytes(b)[:300]!r}")


# --------------------------------------------------------------------------- data files


def _npy(shape_text: str, descr: str = "|u1", payload: bytes = b"") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}".encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def _npz_mutant(rng: random.Random) -> bytes:
    n = rng.choice([1, 4, 8])
    images = np.arange(n * 4, dtype=np.uint8).reshape(n, 2, 2)
    labels = np.arange(n) % 2
    kind = rng.choice(["labels", "images", "keys", "header", "bytes", "compress"])
    arrays = {"images": images, "labels": labels}
    if kind == "labels":
        arrays["labels"] = rng.choice([
            np.array([-1] * n), np.full(n, 10 ** 9), np.full(n, 2 ** 64 - 1, np.uint64), np.full(n, 2 ** 63 - 1),
            labels.astype(np.float32), labels.astype(bool), labels[:-1], labels.reshape(-1, 1), np.full(n, 2 ** 20)])
    elif kind == "images":
        arrays["images"] = rng.choice([
            images.astype(np.float64) * np.inf, images[..., None, None], images.astype(np.complex64),
            images.astype(np.int64) - 1, images[:0], images.astype(np.float16), np.zeros((n, 0, 2), np.uint8)])
    elif kind == "keys":
        arrays = rng.choice([{"images": images}, {**arrays, "extra": labels}, {"x": images, "y": labels}, {}])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])) as z:
        for key, arr in arrays.items():
            member = io.BytesIO()
            np.save(member, arr, allow_pickle=False)
            z.writestr(f"{key}.npy", member.getvalue())
        if kind == "header":
            z.writestr("labels.npy" if "labels" not in arrays else "extra.npy",
                       rng.choice([_npy("(1000000000000,)"), _npy("(10**12,)"), _npy("(2, -1)"),
                                   _npy("(4,)", "|O"), _npy("(4,)", "<V8"), b"\x93NUMPY\x09\x00",
                                   _npy("(" + "1," * 100 + ")"), b"not npy"]))
        if kind == "compress":
            z.writestr("zeros.npy", _npy("(1000000,)", payload=b"\0" * 1_000_000), zipfile.ZIP_DEFLATED)
    blob = buf.getvalue()
    if kind == "bytes":
        b = bytearray(blob)
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        blob = bytes(b[:rng.randint(4, len(b))] if rng.random() < 0.3 else b)
    return blob


def test_npz_mutants(tmp_path):
    rng = random.Random("npz")
    path = tmp_path / "data.npz"
    for i in range(NPZ_CASES):
        path.write_bytes(_npz_mutant(rng))
        try:
            ds = data.load_npz(path)
            assert ds.labels.min() >= 0 and ds.labels.max() <= 2 ** 20
        except QnncError as exc:
            check_refusal(exc, ("npz", i))
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"npz {i}: {type(exc).__name__}: {exc}")


def _idx(rng: random.Random) -> bytes:
    dims = rng.choice([(3, 2, 2), (0, 2, 2), (2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1), (10 ** 6, 28, 28), (5,)])
    type_code = rng.choice([0x08, 0x08, 0x09, 0x0B, 0x0D, 0x0E, 0x07, 0xFF])
    head = b"\0\0" + bytes([type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 12, 13, 100])))
    raw = head + body
    kind = rng.choice(["plain", "gzip", "gzip-cut", "flip", "members"])
    if kind == "gzip":
        return gzip.compress(raw)
    if kind == "gzip-cut":
        g = gzip.compress(raw)
        return g[:rng.randrange(2, len(g))]
    if kind == "members":
        return gzip.compress(raw[:5]) + gzip.compress(raw[5:]) + b"\0" * rng.randint(0, 3)
    if kind == "flip":
        b = bytearray(raw)
        b[rng.randrange(len(b))] ^= 0xFF
        return bytes(b)
    return raw


def test_idx_mutants(tmp_path):
    rng = random.Random("idx")
    path = tmp_path / "x-idx3-ubyte.gz"
    for i in range(IDX_CASES):
        path.write_bytes(_idx(rng))
        try:
            data.read_idx(path, expected_magic=rng.choice([None, data.IDX_IMAGES_MAGIC]))
        except QnncError as exc:
            check_refusal(exc, ("idx", i))
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"idx {i}: {type(exc).__name__}: {exc}")


def test_inflation_is_bounded(tmp_path, monkeypatch):
    """A gzip or .npz that inflates beyond MAX_DATA_BYTES is refused while inflating (the
    limit lowered here so that the test stays small)."""
    from qnnc.runtime import datafile

    monkeypatch.setattr(datafile, "MAX_DATA_BYTES", 100_000)
    bomb = tmp_path / "bomb-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(b"\0" * 1_000_000))
    with pytest.raises(QnncError) as e:
        data.read_idx(bomb)
    assert e.value.diagnostics[0].code == "Q0510" and "inflates" in e.value.diagnostics[0].message
    npz = tmp_path / "bomb.npz"
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("images.npy", _npy("(1000000,)", payload=b"\0" * 1_000_000))
        z.writestr("labels.npy", _npy("(1,)", payload=b"\0"))
    with pytest.raises(QnncError) as e:
        data.load_npz(npz)
    assert e.value.diagnostics[0].code == "Q0510"


def test_special_files_are_not_read_as_data(tmp_path):
    import os

    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), Path("/proc/self/environ"), tmp_path):
        with pytest.raises(QnncError) as e:
            data.load_npz(path)
        assert e.value.diagnostics[0].code == "Q0510", path
