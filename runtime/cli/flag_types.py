"""Argparse `type=` callables for the commands' flags: each checks one kind of value and
its bounds (`qnnc.compiler.limits`) when the command line is parsed, so a bad value is
bad usage (Q0407, exit 2) naming the flag, before any work starts.

    count(low, high)   a whole number in [low, high] (shots, epochs, images, starts...)
    SEED               a seed in [0, 2^63)
    positive()         a finite number > 0 (learning rate, temperature, a window end)
    non_negative()     a finite number >= 0 (momentum)
    PATH               a non-empty path without NUL characters
    DEVICE             cpu, cuda, cuda:N, mps or auto (`device_args` adds the flag)
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Callable

from qnnc.compiler.limits import MAX_COUNT_FLAG, MAX_NUMBER_DIGITS, MAX_SEED

_MAX_TEXT = 60  # how much of a bad value a message quotes
_PATH_MAX, _NAME_MAX = 4096, 255  # bytes of a path, of one of its names (Linux)


def _quote(text: str) -> str:
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return repr(text[:_MAX_TEXT] + ("..." if len(text) > _MAX_TEXT else ""))


def count(low: int = 0, high: int = MAX_COUNT_FLAG) -> Callable[[str], int]:
    """A whole number in [low, high]."""

    def parse(text: str) -> int:
        t = text.strip()
        digits = t[1:] if t[:1] in "+-" else t
        if not digits or len(t) > MAX_NUMBER_DIGITS or not digits.isascii() or not digits.isdigit():
            raise argparse.ArgumentTypeError(f"{_quote(text)} is not a whole number")
        v = int(t)
        if not low <= v <= high:
            raise argparse.ArgumentTypeError(f"{v if len(t) <= 30 else _quote(t)} is out of range: "
                                             f"give a whole number from {low:,} to {high:,}")
        return v

    parse.__name__ = "count"  # argparse names the type in its own messages
    return parse


SEED = count(0, MAX_SEED)
SEED.__name__ = "seed"


def _number(text: str) -> float:
    t = text.strip()
    if len(t) > MAX_NUMBER_DIGITS:
        raise argparse.ArgumentTypeError(f"{_quote(text)} is not a number")
    try:
        v = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_quote(text)} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{_quote(text)} is not a finite number")
    return v


def positive() -> Callable[[str], float]:
    """A finite number > 0."""

    def parse(text: str) -> float:
        v = _number(text)
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{_quote(text)} must be greater than 0")
        return v

    parse.__name__ = "positive number"
    return parse


def non_negative() -> Callable[[str], float]:
    """A finite number >= 0."""

    def parse(text: str) -> float:
        v = _number(text)
        if v < 0:
            raise argparse.ArgumentTypeError(f"{_quote(text)} must be 0 or more")
        return v

    parse.__name__ = "non-negative number"
    return parse


def PATH(text: str) -> str:
    """A path: not empty, no NUL character (no file system accepts one)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path: give a file or folder name")
    if "\0" in text:
        raise argparse.ArgumentTypeError(f"{_quote(text)} contains a NUL character")
    raw = text.encode("utf-8", "surrogatepass")  # its length in bytes, whatever it holds
    if len(raw) > _PATH_MAX or any(len(part) > _NAME_MAX for part in raw.split(b"/")):
        raise argparse.ArgumentTypeError(f"{_quote(text)} is too long for a path")
    return text


PATH.__name__ = "path"


def DIRECTORY(text: str) -> Path:
    """A folder path (as PATH), as a `Path`."""
    return Path(PATH(text))


DIRECTORY.__name__ = "path"


def DEVICE(text: str) -> str:
    """A torch device name: cpu, cuda, cuda:N, mps or auto (whether it is available here
    is checked when the command runs: `qnnc.runtime.devices.resolve_device`, Q0634)."""
    t = text.strip().lower()
    kind, sep, index = t.partition(":")
    if kind not in ("cpu", "cuda", "mps", "auto") or (sep and (kind != "cuda" or not index.isascii()
                                                               or not index.isdigit() or len(index) > 4)):
        raise argparse.ArgumentTypeError(f"{_quote(text)} is not a device: give cpu, cuda, cuda:N, mps or auto")
    return t


DEVICE.__name__ = "device"
