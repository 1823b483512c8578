"""The data layer: shipped MNIST, IDX and .npz parsing, checksums, the offline-tested
downloader, shuffling, preprocessing and the `qnnc data` commands."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import shutil
import socket
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime import data
from qnnc.runtime.cli import data as data_command

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any socket connection fails the test: the downloader is exercised with file:// URLs."""

    def refuse(*args, **kwargs):
        raise AssertionError("test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Point the default cache at an empty folder so no test sees a real ~/.cache."""
    cache = tmp_path / "default-cache"
    monkeypatch.setenv("QNNC_DATA_DIR", str(cache))
    return cache


@contextlib.contextmanager
def raises_q(code: str, *names_in_message: object):
    """Expect a QnncError with `code` and a one-line message naming each of `names_in_message`."""
    with pytest.raises(QnncError) as info:
        yield info
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.code == code, diagnostic
    assert "\n" not in diagnostic.message
    for name in names_in_message:
        assert str(name) in diagnostic.message, diagnostic.message


def idx_bytes(array: np.ndarray) -> bytes:
    type_codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.float32): 0x0D}
    header = bytes([0, 0, type_codes[array.dtype], array.ndim])
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(
        array.dtype.newbyteorder(">")).tobytes()


def write_pair(directory: Path, images: np.ndarray, labels: np.ndarray, prefix: str = "x"):
    images_path = directory / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = directory / f"{prefix}-labels-idx1-ubyte.gz"
    images_path.write_bytes(gzip.compress(idx_bytes(images)))
    labels_path.write_bytes(gzip.compress(idx_bytes(labels)))
    return images_path, labels_path


def small_images(n: int = 6, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


# --------------------------------------------------------------------------- shipped files


def test_train5k_is_balanced_and_ordered_by_label():
    train = data.load_dataset("mnist.train5k")
    assert train.images.shape == (5000, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.shape == (5000,) and train.labels.dtype == np.int64
    assert (train.name, train.n_classes, len(train)) == ("mnist.train5k", 10, 5000)
    assert train.class_counts().tolist() == [500] * 10
    assert (np.diff(train.labels) >= 0).all()


def test_test_split_has_the_official_label_counts():
    test = data.load_dataset("mnist.test")
    assert test.images.shape == (10000, 28, 28) and test.images.dtype == np.uint8
    assert test.class_counts().tolist() == MNIST_TEST_COUNTS
    assert 0 < test.images.mean() < 255 and test.images.max() == 255


def test_load_accepts_an_ir_dataset():
    test = data.load_dataset(ir.Dataset("builtin", "mnist.test"))
    assert len(test) == 10000


def test_shipped_files_match_both_manifests():
    checks = data.verify_shipped()
    assert len(checks) == 8  # four files, SHA-256 and MD5
    assert all(c.status == "ok" for c in checks), checks


def test_canonical_t10k_checksums_are_those_of_the_shipped_files():
    md5 = data.read_manifest(data.SHIPPED_DIR / "MD5SUMS")
    sha256 = data.read_manifest(data.SHIPPED_DIR / "SHA256SUMS")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        canonical = data.MNIST_CANONICAL[name]
        assert (canonical.md5, canonical.sha256) == (md5[name], sha256[name])
        assert (data.SHIPPED_DIR / name).stat().st_size == canonical.size


def test_licence_is_shipped_with_the_data():
    text = (data.SHIPPED_DIR / "LICENSE-MNIST.md").read_text()
    assert "CC BY-SA 3.0" in text and "LeCun" in text


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    copy = tmp_path / "shipped"
    shutil.copytree(data.SHIPPED_DIR, copy)
    monkeypatch.setattr(data, "SHIPPED_DIR", copy)
    return copy


def test_flipped_byte_in_a_shipped_file_is_a_checksum_error(shipped_copy):
    target = shipped_copy / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(target.read_bytes())
    raw[100] ^= 0x01
    target.write_bytes(bytes(raw))
    with raises_q("Q0511", target):
        data.load_dataset("mnist.test")
    assert len(data.load_dataset("mnist.train5k")) == 5000  # the other split is unaffected
    assert [c.status for c in data.verify_shipped()].count("mismatch") == 2


def test_manifest_without_the_file_is_an_error(shipped_copy):
    manifest = shipped_copy / "SHA256SUMS"
    manifest.write_text("".join(line + "\n" for line in manifest.read_text().splitlines()
                                if "train5k-images" not in line))
    with raises_q("Q0529", manifest, "train5k-images-idx3-ubyte.gz"):
        data.load_dataset("mnist.train5k")


def test_malformed_manifest_line_names_file_and_line(tmp_path):
    manifest = tmp_path / "SHA256SUMS"
    manifest.write_text("abc123  a.gz\nnot-hex b.gz\n")
    with raises_q("Q0529", f"{manifest}:2"):
        data.read_manifest(manifest)


# --------------------------------------------------------------------------- IDX


def test_idx_round_trip_raw_and_gzip(tmp_path):
    array = small_images(3)
    raw, packed = tmp_path / "a.idx", tmp_path / "a.idx.gz"
    raw.write_bytes(idx_bytes(array))
    packed.write_bytes(gzip.compress(idx_bytes(array)))
    for path in (raw, packed):
        read = data.read_idx(path, expected_magic=data.IDX_IMAGES_MAGIC)
        assert read.dtype == np.uint8 and np.array_equal(read, array)
        read[0, 0, 0] = 7  # writable, not a view of the file buffer


def test_idx_wider_types_are_read_native_endian(tmp_path):
    path = tmp_path / "w.idx"
    array = np.array([[1, -2], [300, -400]], dtype=np.int16)
    path.write_bytes(idx_bytes(array))
    read = data.read_idx(path)
    assert read.dtype == np.dtype(np.int16) and read.dtype.isnative
    assert np.array_equal(read, array)


def test_truncated_raw_idx(tmp_path):
    path = tmp_path / "t.idx"
    path.write_bytes(idx_bytes(small_images(2))[:-10])
    with raises_q("Q0514", path, "truncated"):
        data.read_idx(path)


def test_trailing_bytes_in_idx(tmp_path):
    path = tmp_path / "t.idx"
    path.write_bytes(idx_bytes(small_images(2)) + b"\0")
    with raises_q("Q0514", path, "trailing"):
        data.read_idx(path)


def test_truncated_idx_header(tmp_path):
    path = tmp_path / "h.idx"
    path.write_bytes(idx_bytes(small_images(2))[:9])
    with raises_q("Q0514", path, "header"):
        data.read_idx(path)
    path.write_bytes(b"\0\0")
    with raises_q("Q0514", path):
        data.read_idx(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(idx_bytes(small_images(2)))[:-20])
    with raises_q("Q0512", path):
        data.read_idx(path)


def test_flipped_byte_in_gzip_data(tmp_path):
    path = tmp_path / "f.gz"
    raw = bytearray(gzip.compress(idx_bytes(small_images(4))))
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with raises_q("Q0512", path):
        data.read_idx(path)


def test_wrong_magic(tmp_path):
    images_path, labels_path = write_pair(tmp_path, small_images(2), np.array([1, 2], np.uint8))
    with raises_q("Q0513", labels_path, "2049", "2051"):
        data.read_idx(labels_path, expected_magic=data.IDX_IMAGES_MAGIC)
    with raises_q("Q0513", labels_path):
        data.load_idx_pair(labels_path, images_path, name="swapped")
    garbage = tmp_path / "g.idx"
    garbage.write_bytes(b"\x89PNG" + bytes(100))
    with raises_q("Q0513", garbage, "not an IDX"):
        data.read_idx(garbage)


def test_mismatched_image_and_label_counts(tmp_path):
    images_path, labels_path = write_pair(tmp_path, small_images(5), np.arange(4, dtype=np.uint8))
    with raises_q("Q0516", images_path, labels_path):
        data.load_idx_pair(images_path, labels_path, name="x")


def test_label_out_of_range(tmp_path):
    images_path, labels_path = write_pair(tmp_path, small_images(2), np.array([3, 10], np.uint8))
    with raises_q("Q0517", labels_path, "10"):
        data.load_idx_pair(images_path, labels_path, name="x")


def test_empty_idx_images(tmp_path):
    images_path, labels_path = write_pair(tmp_path, small_images(0), np.zeros(0, np.uint8))
    with raises_q("Q0515", images_path):
        data.load_idx_pair(images_path, labels_path, name="x")


def test_missing_data_file(tmp_path):
    with raises_q("Q0510", tmp_path / "nope.gz"):
        data.read_idx(tmp_path / "nope.gz")


# --------------------------------------------------------------------------- names and .npz


def test_unknown_builtin_suggests_the_closest_name():
    with raises_q("Q0518", "mnist.tset") as info:
        data.load_dataset("mnist.tset")
    assert "mnist.test" in info.value.diagnostics[0].help
    span = ir.Span("net.qnn", 3, 10, 3, 20)
    with raises_q("Q0518") as info:
        data.load_dataset(ir.Dataset("builtin", "fashion.train", span))
    assert info.value.diagnostics[0].span == span
    assert "mnist.train5k" in info.value.diagnostics[0].help  # no close match: list them


def save_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_npz_uint8_images(tmp_path):
    images = small_images(4)
    path = save_npz(tmp_path / "d.npz", images=images, labels=np.array([0, 3, 1, 3]))
    for source in (path, str(path)):
        dataset = data.load_dataset(source)
        assert np.array_equal(dataset.images, images) and dataset.images.dtype == np.uint8
        assert dataset.labels.dtype == np.int64 and dataset.labels.tolist() == [0, 3, 1, 3]
        assert (dataset.n_classes, dataset.name) == (4, str(path))


def test_npz_flat_float_images_and_integer_images(tmp_path):
    flat = np.linspace(0, 1, 2 * 5, dtype=np.float32).reshape(2, 5)
    dataset = data.load_npz(save_npz(tmp_path / "f.npz", images=flat,
                                     labels=np.array([1, 0], np.uint8)))
    assert dataset.images.dtype == np.float32 and dataset.images.shape == (2, 5)
    wide = np.array([[[0, 255]]], dtype=np.int64)
    dataset = data.load_npz(save_npz(tmp_path / "i.npz", images=wide, labels=np.array([0])))
    assert dataset.images.dtype == np.uint8 and dataset.images.tolist() == [[[0, 255]]]


def test_npz_relative_path_is_relative_to_the_qnn_file(tmp_path, monkeypatch):
    (tmp_path / "nets").mkdir()
    source = tmp_path / "nets" / "net.qnn"
    source.write_text("")
    save_npz(tmp_path / "nets" / "d.npz", images=small_images(2), labels=np.array([0, 1]))
    monkeypatch.chdir(tmp_path)  # not where the .npz is
    span = ir.Span(str(source), 1, 1, 1, 1)
    assert len(data.load_dataset(ir.Dataset("file", "d.npz", span))) == 2


@pytest.mark.parametrize("arrays, code, words", [
    ({"images": small_images(2)}, "Q0521", ["missing `labels`"]),
    ({"image": small_images(2), "labels": np.array([0, 1])}, "Q0521", ["`image`"]),
    ({"images": small_images(2), "labels": np.array([0, 1, 2])}, "Q0522", ["`labels`", "[2]"]),
    ({"images": np.zeros(3, np.uint8), "labels": np.array([0, 1, 2])}, "Q0522", ["`images`"]),
    ({"images": np.zeros((0, 4), np.uint8), "labels": np.zeros(0, int)}, "Q0522", ["`images`"]),
    ({"images": np.array([[0.5, np.nan]]), "labels": np.array([0])}, "Q0523", ["NaN"]),
    ({"images": np.array([[0.5, np.inf]]), "labels": np.array([0])}, "Q0523", ["NaN"]),
    ({"images": np.array([[1, 256]]), "labels": np.array([0])}, "Q0523", ["0..255"]),
    ({"images": np.array([["a", "b"]]), "labels": np.array([0])}, "Q0523", ["dtype"]),
    ({"images": small_images(1), "labels": np.array([0.0])}, "Q0523", ["`labels`", "float64"]),
    ({"images": small_images(1), "labels": np.array([-1])}, "Q0517", ["-1"]),
])
def test_bad_npz(tmp_path, arrays, code, words):
    path = save_npz(tmp_path / "bad.npz", **arrays)
    with raises_q(code, path, *words):
        data.load_dataset(path)


def test_npz_key_typo_gets_a_suggestion(tmp_path):
    path = save_npz(tmp_path / "k.npz", image=small_images(1), labels=np.array([0]))
    with raises_q("Q0521") as info:
        data.load_npz(path)
    assert "did you mean `images`" in info.value.diagnostics[0].help


def test_npz_object_array_is_refused_without_unpickling(tmp_path):
    # An object member would need pickle; its payload here is not even a pickle, so the
    # test also shows that loading stops at the header.
    path = save_npz(tmp_path / "o.npz", labels=np.array([0]))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|O", "fortran_order": False, "shape": (1, 2)})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("images.npy", header.getvalue() + b"not a pickle")
    with raises_q("Q0523", path, "images"):
        data.load_npz(path)


def test_not_an_npz(tmp_path):
    npy = tmp_path / "d.npy"
    np.save(npy, small_images(1))
    with raises_q("Q0520", npy):
        data.load_dataset(str(npy))
    truncated = tmp_path / "t.npz"
    full = save_npz(tmp_path / "full.npz", images=small_images(3), labels=np.arange(3))
    truncated.write_bytes(full.read_bytes()[:200])
    with raises_q("Q0520", truncated):
        data.load_npz(truncated)


# --------------------------------------------------------------------------- shuffling


def test_shuffle_is_a_reproducible_permutation():
    train = data.load_dataset("mnist.train5k")
    first, again, other = (data.shuffled(train, seed) for seed in (0, 0, 1))
    assert np.array_equal(first.labels, again.labels) and np.array_equal(first.images, again.images)
    assert not np.array_equal(first.labels, other.labels)
    assert first.class_counts().tolist() == [500] * 10
    assert len(set(first.labels[:50].tolist())) > 5  # no longer grouped by label
    order = np.random.default_rng(0).permutation(5000)
    assert np.array_equal(first.images, train.images[order])  # images keep their labels
    assert np.array_equal(first.labels, train.labels[order])
    assert (np.diff(train.labels) >= 0).all()  # the input is untouched


# --------------------------------------------------------------------------- preprocessing


def make_input(shape, *steps) -> ir.Input:
    return ir.Input("x", tuple(shape), tuple(ir.PreprocessStep(k, v) for k, v in steps))


def test_preprocess_hand_computed():
    images = (2 * np.arange(16, dtype=np.uint8)).reshape(1, 4, 4)  # 0, 2, ..., 30
    scaled = data.preprocess(images, make_input((4, 4), ("scale", 0.5)))
    assert scaled.dtype == np.float32 and scaled.shape == (1, 16)
    assert scaled[0].tolist() == list(range(16))  # row-major flatten
    # Blocks of 2 x 2 of 0..15: {0,1,4,5} {2,3,6,7} {8,9,12,13} {10,11,14,15}.
    pooled = data.preprocess(images, make_input((4, 4), ("scale", 0.5), ("pool", 2)))
    assert pooled[0].tolist() == [2.5, 4.5, 10.5, 12.5]
    # 4.5 is not above 4.5: -1.
    signs = data.preprocess(images, make_input((4, 4), ("scale", 0.5), ("pool", 2),
                                               ("threshold", 4.5)))
    assert signs.dtype == np.float32 and signs[0].tolist() == [-1, -1, 1, 1]


def test_preprocess_steps_apply_in_order():
    images = np.array([[[0, 10], [20, 30]]], dtype=np.uint8)
    threshold_then_pool = data.preprocess(images, make_input((2, 2), ("threshold", 15),
                                                             ("pool", 2)))
    pool_then_threshold = data.preprocess(images, make_input((2, 2), ("pool", 2),
                                                             ("threshold", 15)))
    assert threshold_then_pool.tolist() == [[0.0]] and pool_then_threshold.tolist() == [[-1.0]]


def test_preprocess_mnist_pool_2_and_threshold():
    test = data.load_dataset("mnist.test")
    spec = make_input((28, 28), ("scale", 1 / 255), ("pool", 2), ("threshold", 0.5))
    x = data.preprocess(test.images[:100], spec)
    assert x.shape == (100, 196) == (100, spec.features)
    assert set(np.unique(x).tolist()) == {-1.0, 1.0}
    scaled = data.preprocess(test.images[:100], make_input((28, 28), ("scale", 1 / 255)))
    assert scaled.shape == (100, 784) and scaled.min() == 0.0 and scaled.max() == 1.0


def test_preprocess_flat_input():
    images = np.array([[0.25, 0.75, 1.0]], dtype=np.float32)
    assert data.preprocess(images, make_input((3,), ("scale", 2))).tolist() == [[0.5, 1.5, 2.0]]


def test_preprocess_errors():
    images = small_images(2)
    span = ir.Span("net.qnn", 2, 5, 2, 30)
    with raises_q("Q0526", "[28, 28]", "[14, 14]") as info:
        data.preprocess(images, ir.Input("x", (14, 14), (), span))
    assert info.value.diagnostics[0].span == span
    with raises_q("Q0527", "pool(3)", "[28, 28]"):
        data.preprocess(images, make_input((28, 28), ("pool", 3)))
    with raises_q("Q0527", "pool(1.5)"):
        data.preprocess(images, make_input((28, 28), ("pool", 1.5)))
    with raises_q("Q0527", "blur"):
        data.preprocess(images, make_input((28, 28), ("blur", 1)))


# --------------------------------------------------------------------------- download

FAKE_TRAIN_LABELS = np.repeat(np.arange(10, dtype=np.uint8), 3)


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    """A local mirror: the shipped t10k files (truly canonical) and a small fake training
    split whose checksums stand in for the canonical ones."""
    directory = tmp_path / "mirror"
    directory.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(data.SHIPPED_DIR / name, directory / name)
    write_pair(directory, small_images(len(FAKE_TRAIN_LABELS)), FAKE_TRAIN_LABELS, "train")
    for name in data.FULL_TRAIN_FILES:
        raw = (directory / name).read_bytes()
        monkeypatch.setitem(data.MNIST_CANONICAL, name, data.CanonicalFile(
            name, len(raw), hashlib.md5(raw).hexdigest(), hashlib.sha256(raw).hexdigest()))
    return directory


def damaged_copy(source: Path, destination: Path) -> Path:
    destination.mkdir()
    for path in source.iterdir():
        shutil.copy(path, destination / path.name)
    target = destination / "train-images-idx3-ubyte.gz"
    raw = bytearray(target.read_bytes())
    raw[-100] ^= 0x01
    target.write_bytes(bytes(raw))
    return destination


def test_download_from_a_local_mirror_then_load(mirror, tmp_path):
    cache = tmp_path / "cache"
    messages = []
    assert data.download_mnist(cache, mirrors=[mirror.as_uri()], log=messages.append) == cache
    assert sorted(p.name for p in cache.iterdir()) == sorted(data.MNIST_CANONICAL)  # no temp files
    assert all(c.status == "ok" for c in data.verify_cached(cache))
    assert len(messages) == 4 and all("downloaded" in m for m in messages)
    train = data.load_dataset("mnist.train", cache_dir=cache)
    assert train.name == "mnist.train" and train.labels.tolist() == FAKE_TRAIN_LABELS.tolist()
    # Present and intact: nothing is fetched again (this mirror does not exist).
    messages.clear()
    data.download_mnist(cache, mirrors=[(tmp_path / "gone").as_uri()], log=messages.append)
    assert all("already present" in m for m in messages)


def test_download_uses_the_default_cache_dir(mirror, isolated_cache):
    assert data.default_cache_dir() == isolated_cache
    data.download_mnist(mirrors=[mirror.as_uri()])
    assert len(data.load_dataset("mnist.train")) == len(FAKE_TRAIN_LABELS)


def test_corrupted_download_is_refused_and_leaves_nothing(mirror, tmp_path):
    bad = damaged_copy(mirror, tmp_path / "bad-mirror")
    cache = tmp_path / "cache"
    with raises_q("Q0525", "train-images-idx3-ubyte.gz") as info:
        data.download_mnist(cache, mirrors=[bad.as_uri()])
    assert any("md5" in note for note in info.value.diagnostics[0].notes)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_a_corrupt_mirror_falls_through_to_the_next(mirror, tmp_path):
    bad = damaged_copy(mirror, tmp_path / "bad-mirror")
    cache = tmp_path / "cache"
    messages = []
    data.download_mnist(cache, mirrors=[bad.as_uri(), mirror.as_uri()], log=messages.append)
    assert all(c.status == "ok" for c in data.verify_cached(cache))
    assert mirror.as_uri() in messages[0]


def test_oversized_download_is_refused(mirror, tmp_path):
    target = mirror / "train-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes() + b"extra")
    cache = tmp_path / "cache"
    with raises_q("Q0525", "train-labels-idx1-ubyte.gz"):
        data.download_mnist(cache, mirrors=[mirror.as_uri()])
    assert not (cache / "train-labels-idx1-ubyte.gz").exists()


def test_unreachable_mirrors(tmp_path):
    with raises_q("Q0524", "train-images-idx3-ubyte.gz") as info:
        data.download_mnist(tmp_path / "cache", mirrors=[(tmp_path / "a").as_uri(), "nonsense"])
    assert len(info.value.diagnostics[0].notes) == 2


def test_damaged_cache_file_is_refused_then_replaced(mirror, tmp_path):
    cache = tmp_path / "cache"
    data.download_mnist(cache, mirrors=[mirror.as_uri()])
    target = cache / "train-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-1])
    with raises_q("Q0511", target) as info:
        data.load_dataset("mnist.train", cache_dir=cache)
    assert "qnnc data download" in info.value.diagnostics[0].help
    assert [c.status for c in data.verify_cached(cache)].count("mismatch") == 1
    data.download_mnist(cache, mirrors=[mirror.as_uri()])
    assert len(data.load_dataset("mnist.train", cache_dir=cache)) == len(FAKE_TRAIN_LABELS)


def test_full_train_is_never_downloaded_implicitly(tmp_path, isolated_cache):
    with raises_q("Q0519", isolated_cache) as info:
        data.load_dataset("mnist.train")
    assert "qnnc data download" in info.value.diagnostics[0].help
    with raises_q("Q0519") as info:
        data.load_dataset("mnist.train", cache_dir=tmp_path / "elsewhere")
    assert f"--dir {tmp_path / 'elsewhere'}" in info.value.diagnostics[0].help
    assert not isolated_cache.exists()


# --------------------------------------------------------------------------- qnnc data


def run_data(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="qnnc data")
    data_command.add_arguments(parser)
    return data_command.run(parser.parse_args(argv))


def test_cmd_info(capsys):
    assert run_data("info", "mnist.test") == 0
    out = capsys.readouterr().out
    assert "samples   10000" in out and "[28, 28] uint8" in out and "1: 1135" in out
    assert "SHA256SUMS" in out


def test_cmd_info_npz(tmp_path, capsys):
    path = save_npz(tmp_path / "d.npz", images=small_images(2), labels=np.array([0, 1]))
    assert run_data("info", str(path)) == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() in capsys.readouterr().out


def test_cmd_download_verify_and_info(mirror, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert run_data("download", "--dir", str(cache), "--mirror", mirror.as_uri()) == 0
    assert str(cache) in capsys.readouterr().out
    assert run_data("verify", "--dir", str(cache)) == 0
    out = capsys.readouterr().out
    assert out.count("ok ") == 12 and "missing" not in out
    assert run_data("info", "mnist.train", "--dir", str(cache)) == 0
    assert f"samples   {len(FAKE_TRAIN_LABELS)}" in capsys.readouterr().out
    target = cache / "t10k-images-idx3-ubyte.gz"
    target.write_bytes(b"junk")
    with raises_q("Q0511", target):
        run_data("verify", "--dir", str(cache))


def test_cmd_verify_without_cache_is_fine(capsys):
    assert run_data("verify") == 0
    assert "qnnc data download" in capsys.readouterr().out
