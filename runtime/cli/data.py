"""`qnnc data`: download the full MNIST training set, describe a data set, verify checksums.

    qnnc data download [--dir DIR] [--mirror URL]...
    qnnc data info NAME [--dir DIR]
    qnnc data verify [--dir DIR]

The CLI adds these with `add_arguments(subparser)` and calls `run(args)`; errors are
`QnncError`s for the CLI to print.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qnnc.runtime.cli.flag_types import DIRECTORY
from qnnc.compiler.diagnostics import Collector
from qnnc.runtime import data

_DIR_HELP = "the MNIST download cache (default: $QNNC_DATA_DIR, else ~/.cache/qnnc/mnist)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    download = commands.add_parser("download", help="fetch the full MNIST training set",
                                   description="Fetch the four canonical MNIST files into the "
                                   "cache, verifying their published checksums.")
    download.add_argument("--dir", type=DIRECTORY, help=_DIR_HELP)
    download.add_argument("--mirror", action="append", metavar="URL",
                          help="URL prefix to fetch from instead of the default mirrors "
                          "(repeatable, tried in order)")

    info = commands.add_parser("info", help="counts per class, shape and checksum status",
                               description="Describe a data set: a built-in name "
                               f"({', '.join(data.BUILTIN_DATASETS)}) or an .npz file.")
    info.add_argument("name", metavar="NAME")
    info.add_argument("--dir", type=DIRECTORY, help=_DIR_HELP)

    verify = commands.add_parser("verify", help="check the shipped and downloaded files",
                                 description="Check the MNIST files shipped with qnnc against "
                                 "SHA256SUMS and MD5SUMS, and the downloaded ones against the "
                                 "canonical checksums.")
    verify.add_argument("--dir", type=DIRECTORY, help=_DIR_HELP)
    for sub in (download, info, verify):
        sub.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "download":
        return _download(args)
    if args.data_command == "info":
        return _info(args)
    return _verify(args)


def _emit(result: dict) -> None:
    from qnnc.runtime.cli.json_output import emit

    emit("data", result)


def _download(args: argparse.Namespace) -> int:
    import sys

    log = (lambda s: print(s, file=sys.stderr)) if args.json else print
    directory = data.download_mnist(args.dir, mirrors=args.mirror or data.MNIST_MIRRORS, log=log)
    if args.json:
        _emit({"action": "download", "dir": str(directory)})
        return 0
    print(f"MNIST is in {directory}")
    return 0


def _info(args: argparse.Namespace) -> int:
    dataset = data.load_dataset(args.name, cache_dir=args.dir)
    counts = dataset.class_counts()
    if args.json:
        _emit({"action": "info", "name": dataset.name, "samples": len(dataset),
               "shape": list(dataset.images.shape[1:]), "dtype": str(dataset.images.dtype),
               "classes": dataset.n_classes, "per_class": [int(c) for c in counts],
               "checksum": _checksum_status(args.name)})
        return 0
    print(dataset.name)
    print(f"  samples   {len(dataset)}")
    print(f"  shape     [{', '.join(map(str, dataset.images.shape[1:]))}] {dataset.images.dtype}")
    print(f"  classes   {dataset.n_classes}")
    print("  per class " + "  ".join(f"{c}: {n}" for c, n in enumerate(counts)))
    print(f"  checksum  {_checksum_status(args.name)}")
    return 0


def _checksum_status(name: str) -> str:
    # load_dataset has already refused a mismatch, so here only say what was checked.
    if name == data.FULL_TRAIN_NAME:
        return f"sha256 verified against {data.CANONICAL_REFERENCE} checksums"
    if name in data.BUILTIN_DATASETS:
        return "sha256 verified against the shipped SHA256SUMS"
    return f"sha256 {data.file_digest(name)} (no reference to check against)"


def _verify(args: argparse.Namespace) -> int:
    problems = Collector()
    checks: list = []
    print = _printer(args, checks)
    print(f"shipped ({data.SHIPPED_DIR}):")
    for check in data.verify_shipped():
        _print_check(check, print)
        if check.status == "missing":
            problems.add("Q0510", f"{check.path}: shipped data file missing",
                         help="the qnnc installation is damaged; reinstall qnnc")
        elif check.status == "mismatch":
            problems.add("Q0511", f"{check.path}: checksum mismatch ({check.detail})",
                         help="the qnnc installation is damaged; reinstall qnnc")
    cache_dir = args.dir or data.default_cache_dir()
    download = "qnnc data download" + (f" --dir {args.dir}" if args.dir else "")
    print(f"cache ({cache_dir}):")
    cached = data.verify_cached(cache_dir)
    for check in cached:
        _print_check(check, print)
        if check.status == "mismatch":
            problems.add("Q0511", f"{check.path}: checksum mismatch ({check.detail})",
                         help=f"run `{download}`: it replaces damaged files")
    if any(check.status == "missing" for check in cached):
        # Not an error: only `mnist.train` needs the cache.
        print(f"  (run `{download}` to fetch the missing files)")
    problems.raise_if_any()
    if args.json:
        _emit({"action": "verify", "files": checks})
    return 0


def _printer(args, checks: list):
    """`print`, or with --json a collector of the checks (text lines are dropped)."""
    import builtins

    if not args.json:
        return builtins.print

    def collect(line, check=None):
        if check is not None:
            checks.append({"file": str(check.path), "status": check.status,
                           "detail": check.detail or check.reference})
    return collect


def _print_check(check: data.FileCheck, print=print) -> None:
    line = f"  {check.status:<9}{check.path.name}  ({check.detail or check.reference})"
    try:
        print(line, check)
    except TypeError:
        print(line)
