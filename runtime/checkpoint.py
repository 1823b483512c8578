"""Checkpoints and run directories: safetensors weights with a JSON sidecar, no pickle.

A run directory made by `qnnc train`:

    RUN/run.json                      the program's IR (JSON), flags, seed, architecture hash
    RUN/metrics.jsonl                 one JSON object per logged step / epoch
    RUN/checkpoints/step-000500.safetensors
    RUN/checkpoints/step-000500.json  sidecar: step, epoch, seed, flags, metrics, hashes

A checkpoint file holds the network's tensors under their layer names ("h1",
"h1.bias", ...) and, for an exact resume, the optimizer's buffers ("optimizer/...") and
the random generator's state ("rng/torch"). Every file is written to a temporary name
and renamed, so a killed run never leaves a half-written checkpoint that looks valid.
Loading checks the sidecar, the file's integrity (sha256 recorded in the sidecar), and
that every tensor fits the network.

Codes: Q0530 missing run or checkpoint · Q0531 unreadable or truncated checkpoint ·
Q0532 checkpoint of another network (names or shapes) · Q0533 non-finite weight ·
Q0534 invalid sidecar / run file · Q0535 checksum mismatch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import did_you_mean, error
from qnnc.compiler.fileio import NotReadable, atomic_write_bytes, atomic_write_text, read_regular_file
from qnnc.compiler.limits import (MAX_CHECKPOINT_BYTES, MAX_JSON_DEPTH, MAX_METRICS_BYTES, MAX_SIDECAR_BYTES,
                                  MAX_TENSORS, MAX_TOTAL_STEPS)
from qnnc.runtime import tensorfile

MISSING = "Q0530"
UNREADABLE = "Q0531"
WRONG_NETWORK = "Q0532"
NON_FINITE = "Q0533"
BAD_SIDECAR = "Q0534"
CHECKSUM = "Q0535"

FORMAT = "qnnc-checkpoint"
FORMAT_VERSION = 1
_STEP_FILE = re.compile(r"^step-(\d+)\.safetensors$")


# --------------------------------------------------------------------------- network identity


def _strip_spans(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_spans(v) for k, v in obj.items() if k != "span" and not k.endswith("_span")}
    if isinstance(obj, list):
        return [_strip_spans(v) for v in obj]
    return obj


def architecture(network: ir.Network) -> dict[str, list[int]]:
    """The tensors a network's weights consist of: name -> shape."""
    shapes: dict[str, list[int]] = {}
    fan_in = network.input.features
    for layer in network.layers:
        shapes[layer.name] = [layer.size, fan_in]
        if layer.dense.bias:
            shapes[f"{layer.name}.bias"] = [layer.size]
        fan_in = layer.size
    return shapes


def architecture_hash(network: ir.Network) -> str:
    """Identifies the weight layout (names, shapes, input preprocessing), not parameter
    values such as `a`: evaluating a checkpoint at another `a` is a legitimate study."""
    from qnnc.compiler.serialize import to_json_obj

    ident = {"tensors": architecture(network),
             "input": _strip_spans(to_json_obj(network.input))}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def program_hash(program: ir.Program) -> str:
    """Identifies the whole program up to layout and comments (spans stripped)."""
    from qnnc.compiler.serialize import to_json_obj

    data = _strip_spans(to_json_obj(program))
    data.pop("source", None)
    for m in data.get("modules", []):
        m.pop("path", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- writing


def checkpoint_path(run_dir: os.PathLike | str, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:06d}.safetensors"


def save_checkpoint(run_dir: os.PathLike | str, step: int, tensors: Mapping[str, Any],
                    meta: Mapping[str, Any], extra: Optional[Mapping[str, Any]] = None) -> Path:
    """Write `tensors` (+ `extra`, e.g. optimizer buffers) and the sidecar, atomically.
    Tensors may be torch tensors or numpy arrays."""
    arrays: dict[str, np.ndarray] = {}
    for name, t in {**tensors, **(extra or {})}.items():
        arr = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
        arrays[name] = np.ascontiguousarray(arr)
    for name, arr in tensors.items():
        a = arrays[name]
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise error(NON_FINITE, f"refusing to save step {step}: tensor `{name}` has non-finite values",
                        help="training diverged; lower the learning rate")
    blob = tensorfile.encode(arrays, {"format": FORMAT, "step": str(step)})  # deterministic bytes
    path = checkpoint_path(run_dir, step)
    sidecar = dict(meta)
    sidecar.update({"format": FORMAT, "format_version": FORMAT_VERSION, "step": step,
                    "sha256": hashlib.sha256(blob).hexdigest(),
                    "tensors": {k: list(arrays[k].shape) for k in tensors}})
    # The weights first, then the sidecar that vouches for them: a crash in between
    # leaves a checkpoint without a sidecar, which `list_checkpoints` ignores.
    atomic_write_bytes(path, blob)
    atomic_write_text(path.with_suffix(".json"), json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return path


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    meta: dict
    tensors: dict[str, np.ndarray]  # network weights
    extra: dict[str, np.ndarray]  # optimizer/..., rng/...


def list_checkpoints(run_dir: os.PathLike | str) -> list[int]:
    """Steps with a complete checkpoint (weights and sidecar), ascending."""
    d = Path(run_dir) / "checkpoints"
    if not d.is_dir():
        return []
    steps = []
    for f in d.iterdir():
        m = _STEP_FILE.match(f.name)
        if m and f.with_suffix(".json").is_file():
            steps.append(int(m.group(1)))
    return sorted(steps)


def resolve_checkpoint(run_dir: os.PathLike | str, step: Optional[int | str]) -> Path:
    """The file of checkpoint `step` in a run (None or "last": the latest)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise error(MISSING, f"no run directory {run_dir}",
                    help="train first (`qnnc train FILE --out DIR`) or pass --run DIR")
    steps = list_checkpoints(run_dir)
    if not steps:
        raise error(MISSING, f"{run_dir} has no checkpoints", help="is this the run directory of `qnnc train`?")
    if step is None or step == "last":
        return checkpoint_path(run_dir, steps[-1])
    try:
        step = int(step)
    except (TypeError, ValueError):
        raise error(MISSING, f"checkpoint `{step}` is not a step number", exit_code=2) from None
    if step not in steps:
        near = min(steps, key=lambda s: abs(s - step))
        raise error(MISSING, f"{run_dir} has no checkpoint at step {step}",
                    help=f"the nearest is step {near}; available: {_steps_text(steps)}")
    return checkpoint_path(run_dir, step)


def _steps_text(steps: list[int]) -> str:
    if len(steps) <= 12:
        return ", ".join(map(str, steps))
    return ", ".join(map(str, steps[:6])) + ", …, " + ", ".join(map(str, steps[-4:]))


def load_checkpoint(path: os.PathLike | str, network: Optional[ir.Network] = None) -> Checkpoint:
    """Read and check a checkpoint; with `network`, check that it fits it.

    The sidecar is read first and must be valid (its checksum is required); only a
    regular file of at most MAX_CHECKPOINT_BYTES is read, its sha256 must match, and its
    tensors must be the ones the sidecar lists, of the dtypes qnnc writes."""
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    sidecar_path = path.with_suffix(".json")
    if not path.exists():
        raise error(MISSING, f"no checkpoint file {path}")
    meta = read_sidecar(sidecar_path, path)
    try:
        blob = read_regular_file(path, MAX_CHECKPOINT_BYTES)
    except NotReadable as exc:
        raise error(MISSING if exc.missing else UNREADABLE, f"{path}: cannot read ({exc.reason})") from None
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise error(CHECKSUM, f"{path}: checksum mismatch (the file is truncated or corrupted)",
                    help="restore it, or use another checkpoint of the run")
    try:
        arrays, _ = tensorfile.decode(blob)
    except tensorfile.TensorFileError as exc:
        raise error(UNREADABLE, f"{path}: not a readable checkpoint ({exc})") from None
    del blob
    names = meta["tensors"]
    for k, shape in names.items():
        if k not in arrays or list(arrays[k].shape) != shape:
            raise error(UNREADABLE, f"{path}: tensor `{_short(k)}` of the sidecar is missing or has another shape",
                        help="the sidecar does not describe this file; use another checkpoint")
    tensors = {k: v for k, v in arrays.items() if k in names}
    extra = {k: v for k, v in arrays.items() if k not in names}
    for k, v in tensors.items():
        if v.dtype.kind != "f":
            raise error(UNREADABLE, f"{path}: tensor `{_short(k)}` is not floating point ({v.dtype})")
        if not np.all(np.isfinite(v)):
            bad = int(np.size(v) - np.count_nonzero(np.isfinite(v)))
            raise error(NON_FINITE, f"{path}: tensor `{_short(k)}` has {bad} non-finite value(s)",
                        help="this checkpoint is unusable; the run had diverged")
    ckpt = Checkpoint(path, meta["step"], meta, tensors, extra)
    if network is not None:
        check_fits(ckpt, network)
    return ckpt


# The fields of a sidecar and their JSON types: required ones, and optional ones written
# by `qnnc train` (checked when present).
_SIDECAR_REQUIRED = {"format": str, "format_version": int, "step": int, "sha256": str, "tensors": dict}
_SIDECAR_OPTIONAL = {"network": str, "seed": int, "flags": dict, "metrics": dict, "epoch": (int, float),
                     "architecture_hash": str, "program_hash": str, "gradient": str}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def read_sidecar(sidecar_path: Path, path: Optional[Path] = None) -> dict:
    """A checkpoint's sidecar, checked field by field (Q0534); its `sha256` is required."""
    path = path or sidecar_path.with_suffix(".safetensors")
    if not sidecar_path.exists() and not sidecar_path.is_symlink():
        raise error(BAD_SIDECAR, f"{path}: its sidecar {sidecar_path.name} is missing",
                    help="the checkpoint was not completely written; use another step")
    meta = read_json_file(sidecar_path, "sidecar")
    why = _sidecar_problem(meta)
    if why:
        raise error(BAD_SIDECAR, f"{sidecar_path}: invalid sidecar ({why})",
                    help="a sidecar is written by `qnnc train` beside its checkpoint; it is never optional")
    m = _STEP_FILE.match(path.name)
    if m and int(m.group(1)) != meta["step"]:
        raise error(BAD_SIDECAR, f"{sidecar_path}: invalid sidecar (step {meta['step']} for file {path.name})")
    return meta


def _sidecar_problem(meta) -> Optional[str]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return "not a qnnc checkpoint sidecar"
    for key, kind in _SIDECAR_REQUIRED.items():
        if key not in meta:
            return f"no `{key}`" + (": the checksum is required" if key == "sha256" else "")
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            return f"`{key}` has the wrong type"
    for key, kind in _SIDECAR_OPTIONAL.items():
        if key in meta and (not isinstance(meta[key], kind) or isinstance(meta[key], bool)):
            return f"`{key}` has the wrong type"
    if meta["format_version"] != FORMAT_VERSION:
        return f"format_version {meta['format_version']} (this qnnc reads {FORMAT_VERSION})"
    if not 0 <= meta["step"] <= MAX_TOTAL_STEPS:
        return "`step` out of range"
    if not _SHA256.match(meta["sha256"]):
        return "`sha256` is not 64 lowercase hex digits"
    tensors = meta["tensors"]
    if len(tensors) > MAX_TENSORS or not all(
            isinstance(v, list) and len(v) <= 8 and all(type(d) is int and d >= 0 for d in v)
            for v in tensors.values()):
        return "`tensors` is not an object of shapes"
    return None


def read_json_file(path: Path, what: str, limit: int = MAX_SIDECAR_BYTES):
    """A JSON file of the run folder (sidecar, run.json): a regular file of bounded size,
    UTF-8, nested at most MAX_JSON_DEPTH deep; Q0534 otherwise (Q0530 when missing)."""
    try:
        raw = read_regular_file(path, limit)
    except NotReadable as exc:
        raise error(MISSING if exc.missing else BAD_SIDECAR, f"{path}: cannot read the {what} ({exc.reason})") from None
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else (
            "nested too deeply" if isinstance(exc, RecursionError) else "not valid JSON")
        raise error(BAD_SIDECAR, f"{path}: invalid {what} ({why})") from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise error(BAD_SIDECAR, f"{path}: invalid {what} (nested more than {MAX_JSON_DEPTH} deep)")
    return data


def _no_constant(name: str):
    raise ValueError(name)


def _depth(data) -> int:
    """Nesting depth of decoded JSON, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        if isinstance(value, dict):
            stack.extend((v, d + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, d + 1) for v in value)
    return deepest


def _short(name: str) -> str:
    name = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return name if len(name) <= 60 else name[:60] + "..."


def check_fits(ckpt: Checkpoint, network: ir.Network) -> None:
    want = architecture(network)
    have = {k: list(v.shape) for k, v in ckpt.tensors.items()}
    missing = [k for k in want if k not in have]
    unexpected = [k for k in have if k not in want]
    wrong = [k for k in want if k in have and have[k] != want[k]]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if wrong:
        k = wrong[0]
        parts.append(f"`{k}` is {have[k]} here but the network needs {want[k]}")
    if missing:
        parts.append("missing " + ", ".join(f"`{k}`" for k in missing[:4]))
    if unexpected:
        parts.append("unexpected " + ", ".join(f"`{k}`" for k in unexpected[:4]))
    net_name = ckpt.meta.get("network")
    hint = (f"it was written for network `{net_name}`" if net_name and net_name != network.name
            else "was it trained with another width (--set) or another program?")
    raise error(WRONG_NETWORK, f"{ckpt.path}: checkpoint of another network: " + "; ".join(parts),
                help=hint + f"; this network is {'-'.join(str(s[0]) for s in want.values() if len(s) == 2)}")


# --------------------------------------------------------------------------- run metadata


def write_run_file(run_dir: os.PathLike | str, data: Mapping[str, Any]) -> None:
    atomic_write_text(Path(run_dir) / "run.json", json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_run_file(run_dir: os.PathLike | str) -> dict:
    path = Path(run_dir) / "run.json"
    if not path.exists():
        raise error(MISSING, f"{run_dir} is not a qnnc run (no run.json)",
                    help="pass the directory given to `qnnc train --out`")
    data = read_json_file(path, "run file")
    if not isinstance(data, dict):
        raise error(BAD_SIDECAR, f"{path}: invalid run file")
    return data


def read_metrics(path: os.PathLike | str) -> list[dict]:
    """The records of a run's metrics.jsonl: a regular file of bounded size, UTF-8, one
    JSON object per line. A last line cut by a kill ends the log; any other bad line is
    Q0534."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        raw = read_regular_file(path, MAX_METRICS_BYTES)
    except NotReadable as exc:
        raise error(BAD_SIDECAR, f"{path}: cannot read the metrics log ({exc.reason})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(BAD_SIDECAR, f"{path}: the metrics log is not UTF-8 (byte {exc.start})",
                    help="restore the run folder, or start a new run") from None
    lines = text.split("\n")
    records = []
    for i, line in enumerate(lines):
        if not line:
            continue
        try:
            rec = json.loads(line, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            rec = None
        if not isinstance(rec, dict) or not _metrics_record_ok(rec):
            if all(not rest for rest in lines[i + 1:]):
                break  # the line a kill cut
            raise error(BAD_SIDECAR, f"{path}:{i + 1}: not a metrics record",
                        help="restore the run folder, or start a new run")
        records.append(rec)
    return records


def _metrics_record_ok(rec: dict) -> bool:
    def is_int(v) -> bool:
        return type(v) is int and 0 <= v <= MAX_TOTAL_STEPS

    def is_num(v) -> bool:
        return type(v) in (int, float) and math.isfinite(v)

    if not is_int(rec.get("step", 0)):
        return False
    if rec.get("kind") == "step":
        return (is_int(rec.get("epoch")) and is_num(rec.get("loss")) and is_int(rec.get("images")))
    return True


def finite_or_none(x: float) -> Optional[float]:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def checkpoint_init_tensors(network: ir.Network, base_dir: os.PathLike | str = ".") -> dict[str, np.ndarray]:
    """Weights of the layers declared `init = checkpoint("RUN", step = N, tensor = "T")`:
    layer name -> array, checked against the layer's shape. RUN is relative to
    `base_dir` (the program's folder) when it is not absolute."""
    out: dict[str, np.ndarray] = {}
    want = architecture(network)
    for layer in network.layers:
        init = layer.dense.init
        if not isinstance(init, ir.CheckpointInit):
            continue
        run = Path(init.run)
        if not run.is_absolute():
            run = Path(base_dir) / run
        c = load_checkpoint(resolve_checkpoint(run, init.step))
        if init.tensor not in c.tensors:
            raise error(WRONG_NETWORK, f"{c.path} has no tensor `{init.tensor}`", init.span,
                        help=did_you_mean(init.tensor, c.tensors) or "tensors: " + ", ".join(sorted(c.tensors)))
        arr = c.tensors[init.tensor]
        if list(arr.shape) != want[layer.name]:
            raise error(WRONG_NETWORK, f"tensor `{init.tensor}` of {c.path} is {list(arr.shape)}, but layer "
                        f"`{layer.name}` needs {want[layer.name]}", init.span)
        out[layer.name] = arr
    return out
