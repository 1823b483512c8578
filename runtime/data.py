"""Data sets: the MNIST files shipped with qnnc, the full MNIST training set (downloaded on
request into a cache), user `.npz` files, shuffling and input preprocessing.

Built-in names:
  mnist.train5k  5,000 training images, 500 per digit, ordered by label (shipped)
  mnist.test     the 10,000-image official test split (shipped)
  mnist.train    the 60,000-image official training split (`qnnc data download` first)

Every shipped file is checked against the shipped SHA256SUMS before it is parsed, and every
cached file against the canonical MNIST checksums, so a damaged file is reported as such
rather than as a confusing parse error.

Diagnostic codes (all errors are `QnncError`; the message names the file):
  Q0510 a data file cannot be read (missing, unreadable)
  Q0511 a shipped or cached file does not match its checksum
  Q0512 corrupt or truncated gzip data
  Q0513 wrong IDX magic number
  Q0514 IDX data length differs from what the header declares (truncated, trailing bytes)
  Q0515 IDX dimensions unusable (no samples, zero-sized images)
  Q0516 images and labels files hold different numbers of samples
  Q0517 label values out of range
  Q0518 unknown built-in data set name
  Q0519 the full MNIST training set has not been downloaded
  Q0520 not a readable .npz archive (or not a supported data file)
  Q0521 .npz archive has missing or unexpected keys
  Q0522 .npz array has the wrong shape
  Q0523 .npz array has the wrong dtype or non-finite values
  Q0524 a download failed on every mirror
  Q0525 a download did not match the canonical checksum (refused, nothing written)
  Q0526 images do not have the shape the network input declares
  Q0527 invalid preprocessing step
  Q0528 the cache directory cannot be written
  Q0529 a checksum manifest is missing, malformed or lacks an entry
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import math
import os
import struct
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import did_you_mean, error
from qnnc.compiler.fileio import atomic_write_bytes
from qnnc.compiler.limits import MAX_LABEL
from qnnc.runtime.datafile import check_npz_members, gunzip, read_data_file

PathLike = Union[str, os.PathLike]

SHIPPED_DIR = Path(__file__).resolve().parent / "datasets" / "mnist"

MNIST_CLASSES = 10
IDX_IMAGES_MAGIC = 2051  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # unsigned bytes, 1 dimension

# Built-in name -> file prefix in SHIPPED_DIR.
_SHIPPED_SPLITS = {"mnist.train5k": "train5k", "mnist.test": "t10k"}
FULL_TRAIN_NAME = "mnist.train"
BUILTIN_DATASETS = (*_SHIPPED_SPLITS, FULL_TRAIN_NAME)


@dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous; compare fields explicitly
class Dataset:
    """`images` [N, H, W] or [N, F]: uint8 for MNIST and integer .npz files, float for .npz
    files stored as float. `labels` int64 [N] in [0, n_classes)."""

    images: np.ndarray
    labels: np.ndarray
    name: str
    n_classes: int

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        """Samples per class, int64 [n_classes]."""
        return np.bincount(self.labels, minlength=self.n_classes)


# --------------------------------------------------------------------------- checksums


@dataclass(frozen=True)
class CanonicalFile:
    name: str
    size: int
    md5: str  # as published with MNIST
    sha256: str


# The published MD5s, and the SHA-256s of the same bytes. The t10k entries equal the shipped
# files' MD5SUMS/SHA256SUMS (a test checks it).
MNIST_CANONICAL: dict[str, CanonicalFile] = {
    f.name: f
    for f in (
        CanonicalFile("train-images-idx3-ubyte.gz", 9_912_422, "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                      "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        CanonicalFile("train-labels-idx1-ubyte.gz", 28_881, "d53e105ee54ea40749a09fcbcd1e9432",
                      "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        CanonicalFile("t10k-images-idx3-ubyte.gz", 1_648_877, "9fb629c4189551a2d022fa330f9573f3",
                      "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        CanonicalFile("t10k-labels-idx1-ubyte.gz", 4_542, "ec29112dd5afa0611ce80d1b7f02629c",
                      "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    )
}
CANONICAL_REFERENCE = "canonical MNIST"
FULL_TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",  # plain http is safe here: checksums are verified
)


def read_manifest(path: PathLike) -> dict[str, str]:
    """Parse a `sha256sum`/`md5sum` style manifest: file name -> lowercase hex digest."""
    path = Path(path)
    if not path.is_file():
        raise error("Q0529", f"{path}: checksum manifest not found")
    text = _read_bytes(path).decode("utf-8", errors="replace")
    entries: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")  # `*` marks binary mode in coreutils output
        if not sep or not name or not all(c in "0123456789abcdefABCDEF" for c in digest):
            raise error("Q0529", f"{path}:{lineno}: malformed checksum line",
                        help="expected `<hex digest>  <file name>`")
        entries[name] = digest.lower()
    return entries


def file_digest(path: PathLike, algorithm: str = "sha256") -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def check_digest(path: PathLike, algorithm: str, expected: str, reference: str,
                 help: Optional[str] = None) -> None:
    """Raise Q0510 if `path` is missing, Q0511 if its digest is not `expected` (which
    `reference`, e.g. "SHA256SUMS", records)."""
    check = _check_file(Path(path), algorithm, expected, reference)
    if check.status == "missing":
        raise error("Q0510", f"{path}: data file not found", help=help)
    if check.status == "mismatch":
        raise error("Q0511", f"{path}: checksum mismatch ({check.detail})",
                    help=help or "the file is damaged or was modified")


def _manifest_entry(manifest: Path, entries: dict[str, str], name: str) -> str:
    if name not in entries:
        raise error("Q0529", f"{manifest}: no checksum for `{name}`")
    return entries[name]


# --------------------------------------------------------------------------- IDX


# IDX type code -> numpy dtype (big-endian, as the format stores it).
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: PathLike, *, expected_magic: Optional[int] = None) -> np.ndarray:
    """Read an IDX file, gzip'd (detected by content, not name) or raw, into a native-endian
    array. Checks the magic number and that the data length is exactly what the header's
    dimensions require."""
    path = Path(path)
    raw = _decompress_if_gzip(path, _read_bytes(path))
    if len(raw) < 4:
        raise error("Q0514", f"{path}: truncated IDX file: {len(raw)} bytes, no complete header")
    magic = int.from_bytes(raw[:4], "big")
    type_code, ndim = raw[2], raw[3]
    if raw[:2] != b"\0\0" or type_code not in _IDX_TYPES or ndim == 0:
        raise error("Q0513", f"{path}: not an IDX file (magic number 0x{magic:08x})",
                    help=_magic_help(expected_magic))
    if expected_magic is not None and magic != expected_magic:
        raise error("Q0513", f"{path}: IDX magic number is {magic}, expected {expected_magic}",
                    help=_magic_help(expected_magic))
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise error("Q0514", f"{path}: truncated IDX header: {ndim} dimensions need "
                    f"{header_len} bytes, file has {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = np.dtype(_IDX_TYPES[type_code])
    expected_len = math.prod(dims) * dtype.itemsize
    data_len = len(raw) - header_len
    if data_len != expected_len:
        what = "truncated" if data_len < expected_len else "trailing bytes in"
        raise error("Q0514", f"{path}: {what} IDX file: header dimensions "
                    f"{'x'.join(map(str, dims))} need {expected_len} data bytes, found {data_len}")
    # astype copies into a writable, native-endian array (frombuffer over bytes is read-only).
    stored = np.frombuffer(raw, dtype, offset=header_len).reshape(dims)
    return stored.astype(dtype.newbyteorder("="))


def _magic_help(expected_magic: Optional[int]) -> str:
    known = {IDX_IMAGES_MAGIC: "unsigned-byte images [N, rows, cols]",
             IDX_LABELS_MAGIC: "unsigned-byte labels [N]"}
    if expected_magic in known:
        return f"expected magic {expected_magic} ({known[expected_magic]})"
    return "an IDX file starts with two zero bytes, a type code and the number of dimensions"


def load_idx_pair(images_path: PathLike, labels_path: PathLike, *, name: str,
                  n_classes: int = MNIST_CLASSES) -> Dataset:
    """An MNIST-style pair: images (magic 2051, [N, rows, cols]) and labels (magic 2049, [N])."""
    images = read_idx(images_path, expected_magic=IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, expected_magic=IDX_LABELS_MAGIC)
    if images.shape[0] == 0 or 0 in images.shape[1:]:
        raise error("Q0515", f"{images_path}: IDX images have shape {images.shape}, "
                    "need at least one non-empty image")
    if len(images) != len(labels):
        raise error("Q0516", f"{images_path} holds {len(images)} images but "
                    f"{labels_path} holds {len(labels)} labels",
                    help="the two files must come from the same split")
    if labels.max() >= n_classes:
        raise error("Q0517", f"{labels_path}: label {int(labels.max())} out of range "
                    f"for {n_classes} classes")
    return Dataset(images, labels.astype(np.int64), name, n_classes)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes (a regular file within MAX_DATA_FILE_BYTES), or a Q0510 naming it."""
    return read_data_file(path)


def _decompress_if_gzip(path: Path, raw: bytes) -> bytes:
    return gunzip(path, raw) if raw[:2] == b"\x1f\x8b" else raw


# --------------------------------------------------------------------------- loading


def load_dataset(source: Union[str, os.PathLike, ir.Dataset], *,
                 cache_dir: Optional[PathLike] = None) -> Dataset:
    """A built-in name (`mnist.train5k`, `mnist.test`, `mnist.train`), a path to an .npz file,
    or an IR `Dataset`. A relative file path in an IR `Dataset` is taken relative to the
    `.qnn` file that names it. `cache_dir` is where `mnist.train` was downloaded to
    (default: `default_cache_dir()`)."""
    if isinstance(source, ir.Dataset):
        if source.kind == "builtin":
            return _load_builtin(source.name, cache_dir, source.span)
        if source.kind == "file":
            return load_npz(_resolve_against_source(source))
        raise ValueError(f"unknown ir.Dataset kind {source.kind!r}")  # a compiler bug
    if isinstance(source, os.PathLike):
        return load_npz(source)
    if source in BUILTIN_DATASETS:
        return _load_builtin(source, cache_dir, None)
    if source.endswith(".npz") or os.sep in source or "/" in source or os.path.exists(source):
        return load_npz(source)
    return _load_builtin(source, cache_dir, None)  # reports the unknown name


def _load_builtin(name: str, cache_dir: Optional[PathLike], span: Optional[ir.Span]) -> Dataset:
    if name in _SHIPPED_SPLITS:
        return _load_shipped(name)
    if name == FULL_TRAIN_NAME:
        return _load_cached_train(Path(cache_dir) if cache_dir else default_cache_dir())
    raise error("Q0518", f"unknown built-in data set `{name}`", span, label="not a built-in",
                help=did_you_mean(name, BUILTIN_DATASETS)
                or f"built-in data sets: {', '.join(BUILTIN_DATASETS)}; or give an .npz path")


def _load_shipped(name: str) -> Dataset:
    prefix = _SHIPPED_SPLITS[name]
    images = SHIPPED_DIR / f"{prefix}-images-idx3-ubyte.gz"
    labels = SHIPPED_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    manifest = SHIPPED_DIR / "SHA256SUMS"
    sums = read_manifest(manifest)
    for path in (images, labels):
        check_digest(path, "sha256", _manifest_entry(manifest, sums, path.name), manifest.name,
                     help="the qnnc installation is damaged; reinstall qnnc")
    return load_idx_pair(images, labels, name=name)


def _load_cached_train(cache_dir: Path) -> Dataset:
    images, labels = (cache_dir / n for n in FULL_TRAIN_FILES)
    download = ("run `qnnc data download`" if cache_dir == default_cache_dir()
                else f"run `qnnc data download --dir {cache_dir}`")
    for path in (images, labels):
        if not path.is_file():
            raise error("Q0519", f"{path}: the full MNIST training set is not downloaded",
                        help=f"{download} to fetch it (about 10 MB)")
        check_digest(path, "sha256", MNIST_CANONICAL[path.name].sha256, CANONICAL_REFERENCE,
                     help=f"delete {path} and {download}")
    return load_idx_pair(images, labels, name=FULL_TRAIN_NAME)


def _resolve_against_source(dataset: ir.Dataset) -> Path:
    path = Path(dataset.name)
    source_file = Path(dataset.span.file)
    if not path.is_absolute() and source_file.is_file():
        return source_file.parent / path
    return path


def default_cache_dir() -> Path:
    """Where `mnist.train` is downloaded to: `$QNNC_DATA_DIR`, else `~/.cache/qnnc/mnist`."""
    env = os.environ.get("QNNC_DATA_DIR")
    return Path(env) if env else Path.home() / ".cache" / "qnnc" / "mnist"


# --------------------------------------------------------------------------- .npz


_NPZ_KEYS = ("images", "labels")


def load_npz(path: PathLike) -> Dataset:
    """An .npz archive with `images` [N, H, W] or [N, F] (uint8, integers in 0..255, or
    finite floats) and `labels` [N] (non-negative integers). `n_classes` is max(label) + 1.
    Never unpickles."""
    path = Path(path)
    raw = _read_bytes(path)
    # Demand a zip archive: np.load would also accept .npy files and pickles.
    if raw[:4] != b"PK\x03\x04":
        raise error("Q0520", f"{path}: not an .npz archive",
                    help="save data with numpy.savez(path, images=..., labels=...)")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            check_npz_members(path, archive)
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            keys = set(npz.files)
            missing = [k for k in _NPZ_KEYS if k not in keys]
            unexpected = sorted(keys - set(_NPZ_KEYS))
            if missing or unexpected:
                raise _npz_keys_error(path, missing, unexpected)
            images, labels = (_npz_member(path, npz, key) for key in _NPZ_KEYS)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise error("Q0520", f"{path}: unreadable .npz archive ({str(exc)[:200]})") from None
    images = _check_npz_images(path, images)
    labels = _check_npz_labels(path, labels, len(images))
    return Dataset(images, labels, str(path), int(labels.max()) + 1)


def _npz_member(path: Path, npz, key: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as exc:  # object arrays (which would need pickle) land here too
        raise error("Q0523", f"{path}: cannot load `{key}` ({exc})",
                    help="store plain numeric arrays; object arrays are refused") from None


def _npz_keys_error(path: Path, missing: list[str], unexpected: list[str]):
    parts = []
    if missing:
        parts.append("missing " + ", ".join(f"`{k}`" for k in missing))
    if unexpected:
        parts.append("unexpected " + ", ".join(f"`{k}`" for k in unexpected))
    hint = did_you_mean(unexpected[0], _NPZ_KEYS) if unexpected else None
    return error("Q0521", f"{path}: .npz keys: {'; '.join(parts)}",
                 help=hint or "the archive must hold exactly `images` and `labels`")


def _check_npz_images(path: Path, images: np.ndarray) -> np.ndarray:
    if images.ndim not in (2, 3) or images.shape[0] == 0 or 0 in images.shape[1:]:
        raise error("Q0522", f"{path}: `images` has shape {images.shape}, "
                    "expected [N, H, W] or [N, F] with N, H, W, F > 0")
    kind = images.dtype.kind
    if kind == "u" and images.dtype.itemsize == 1:
        return images
    if kind in "iu":
        if images.min() < 0 or images.max() > 255:
            raise error("Q0523", f"{path}: integer `images` must lie in 0..255, found "
                        f"{images.min()}..{images.max()}", help="store pixels as uint8 or float")
        return images.astype(np.uint8)
    if kind == "f":
        if not np.isfinite(images).all():
            raise error("Q0523", f"{path}: `images` contains NaN or infinite values")
        return images
    raise error("Q0523", f"{path}: `images` has dtype {images.dtype}, expected uint8 or float")


def _check_npz_labels(path: Path, labels: np.ndarray, n_images: int) -> np.ndarray:
    if labels.ndim != 1 or len(labels) != n_images:
        raise error("Q0522", f"{path}: `labels` has shape {labels.shape}, expected [{n_images}] "
                    "(one label per image)")
    if labels.dtype.kind not in "iu":
        raise error("Q0523", f"{path}: `labels` has dtype {labels.dtype}, expected integers",
                    help="store class indices, e.g. labels.astype(numpy.int64)")
    if labels.min() < 0:
        raise error("Q0517", f"{path}: negative label {labels.min()}")
    if labels.max() > MAX_LABEL:  # before the cast to int64 (2^64 - 1 would wrap to -1)
        raise error("Q0517", f"{path}: label {labels.max()} is larger than the limit of {MAX_LABEL:,}",
                    help="labels are class indices 0..classes-1")
    return labels.astype(np.int64)


# --------------------------------------------------------------------------- download


def download_mnist(cache_dir: Optional[PathLike] = None, *,
                   mirrors: tuple[str, ...] | list[str] = MNIST_MIRRORS, timeout: float = 60.0,
                   log: Optional[Callable[[str], None]] = None) -> Path:
    """Fetch the four canonical MNIST files into `cache_dir` (default `default_cache_dir()`)
    and return it. Each file is checked (size, MD5, SHA-256) in memory before it is written
    atomically, so a bad download leaves nothing behind; a mirror that serves a wrong file is
    skipped for the next. Files already present and intact are kept; damaged ones are
    deleted and fetched again. `mirrors` are URL prefixes (`file://` works, for tests)."""
    directory = Path(cache_dir) if cache_dir else default_cache_dir()
    log = log or (lambda message: None)
    for canonical in MNIST_CANONICAL.values():
        path = directory / canonical.name
        if path.is_file():
            if _canonical_mismatch(path.read_bytes(), canonical) is None:
                log(f"{canonical.name}: already present")
                continue
            path.unlink()
            log(f"{canonical.name}: cached copy is damaged, deleted")
        data, url = _fetch_canonical(canonical, mirrors, timeout, directory)
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            raise error("Q0528", f"{path}: cannot write to the data cache: {exc.strerror or exc}",
                        help="set QNNC_DATA_DIR or pass --dir to use another folder") from None
        log(f"{canonical.name}: downloaded from {url}")
    return directory


def _fetch_canonical(canonical: CanonicalFile, mirrors, timeout: float,
                     directory: Path) -> tuple[bytes, str]:
    failures: list[str] = []
    any_mismatch = False
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + canonical.name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = _read_at_most(response, canonical.size + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:  # ValueError: bad URL
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        problem = _canonical_mismatch(data, canonical)
        if problem is None:
            return data, url
        any_mismatch = True
        failures.append(f"{url}: {problem}")
    if any_mismatch:
        raise error("Q0525", f"{canonical.name}: refused download, no mirror served the canonical "
                    "file (nothing was written)", notes=failures,
                    help="try again later or from another network; a mirror may be corrupt")
    raise error("Q0524", f"{canonical.name}: download failed from every mirror", notes=failures,
                help="check the network connection, or copy the canonical files into "
                f"{directory} by hand")


def _read_at_most(response, limit: int) -> bytes:
    # Stop early on an oversized response rather than buffering it all.
    chunks, total = [], 0
    while total <= limit and (chunk := response.read(1 << 20)):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _canonical_mismatch(data: bytes, canonical: CanonicalFile) -> Optional[str]:
    """None if `data` is the canonical file, else what differs."""
    if len(data) != canonical.size:
        return f"size {len(data)} bytes, expected {canonical.size}"
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if md5 != canonical.md5:
        return f"md5 {md5}, expected {canonical.md5}"
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 != canonical.sha256:
        return f"sha256 {sha256}, expected {canonical.sha256}"
    return None


@dataclass(frozen=True)
class FileCheck:
    path: Path
    reference: str  # what it is checked against: "SHA256SUMS", "MD5SUMS", "canonical MNIST"
    status: str  # "ok", "missing" or "mismatch"
    detail: str = ""  # what differs, for "mismatch"


def verify_shipped() -> list[FileCheck]:
    """Every file in the shipped SHA256SUMS and MD5SUMS against its digest."""
    checks = []
    for manifest_name, algorithm in (("SHA256SUMS", "sha256"), ("MD5SUMS", "md5")):
        manifest = SHIPPED_DIR / manifest_name
        for name, expected in read_manifest(manifest).items():
            checks.append(_check_file(SHIPPED_DIR / name, algorithm, expected, manifest_name))
    return checks


def verify_cached(cache_dir: Optional[PathLike] = None) -> list[FileCheck]:
    """The four canonical files in the cache (default `default_cache_dir()`)."""
    directory = Path(cache_dir) if cache_dir else default_cache_dir()
    checks = []
    for canonical in MNIST_CANONICAL.values():
        path = directory / canonical.name
        if not path.is_file():
            checks.append(FileCheck(path, CANONICAL_REFERENCE, "missing"))
            continue
        problem = _canonical_mismatch(path.read_bytes(), canonical)
        checks.append(FileCheck(path, CANONICAL_REFERENCE, "mismatch" if problem else "ok",
                                problem or ""))
    return checks


def _check_file(path: Path, algorithm: str, expected: str, reference: str) -> FileCheck:
    if not path.is_file():
        return FileCheck(path, reference, "missing")
    try:
        actual = file_digest(path, algorithm)
    except OSError as exc:
        raise error("Q0510", f"{path}: cannot read data file: {exc.strerror or exc}") from None
    if actual != expected:
        return FileCheck(path, reference, "mismatch",
                         f"{algorithm} {actual}, {reference} expects {expected}")
    return FileCheck(path, reference, "ok")


# --------------------------------------------------------------------------- transforms


def shuffled(dataset: Dataset, seed: int) -> Dataset:
    """The same samples in a random order that depends only on `seed` (and the size)."""
    order = np.random.default_rng(seed).permutation(len(dataset))
    return dataclasses.replace(dataset, images=dataset.images[order], labels=dataset.labels[order])


def preprocess(images: np.ndarray, input_ir: ir.Input) -> np.ndarray:
    """Apply `input_ir.steps` in order to `images` [N, *input_ir.shape] and flatten row-major:
    float32 [N, input_ir.features]. Arithmetic is in float64 so each value is correctly
    rounded once, whatever the order of steps."""
    declared = tuple(input_ir.shape)
    if tuple(images.shape[1:]) != declared:
        raise error("Q0526", f"data has samples of shape {_dims(images.shape[1:])}, but input "
                    f"`{input_ir.name}` is declared {_dims(declared)}", input_ir.span,
                    label="declared here")
    x = images.astype(np.float64)
    for step in input_ir.steps:
        if step.kind == "scale":
            x = x * step.value
        elif step.kind == "pool":
            x = _average_pool(x, step, input_ir)
        elif step.kind == "threshold":
            x = np.where(x > step.value, 1.0, -1.0)
        else:
            raise error("Q0527", f"unknown preprocessing step `{step.kind}`", step.span,
                        help=did_you_mean(step.kind, ir.PREPROCESS_KINDS))
    return x.reshape(len(x), -1).astype(np.float32)


def _average_pool(x: np.ndarray, step: ir.PreprocessStep, input_ir: ir.Input) -> np.ndarray:
    """Mean over k x k (x k ...) blocks: every sample axis shrinks by k."""
    k = int(step.value)
    if k != step.value or k < 1:
        raise error("Q0527", f"pool({step.value:g}) needs a positive whole block size", step.span)
    dims = x.shape[1:]
    if any(d % k for d in dims):
        raise error("Q0527", f"pool({k}) does not divide the input shape {_dims(dims)} "
                    f"of `{input_ir.name}`", step.span, label="pool size must divide every axis")
    # [N, d1, d2] -> [N, d1/k, k, d2/k, k], then average the k axes.
    blocked = x.reshape(len(x), *(n for d in dims for n in (d // k, k)))
    return blocked.mean(axis=tuple(range(2, blocked.ndim, 2)))


def _dims(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"
