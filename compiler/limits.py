"""Every count a user or a file controls, bounded: one table (name, value, what, code).

A limit is checked before the work (or the allocation) it bounds, and exceeding it is
the diagnostic of the `code` column. docs/diagnostics.md lists exactly these limits, in
the "Limits" section (tests/test_limits.py checks it). Modules import the names below;
none restates a value.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Limit:
    name: str  # the constant's name below
    value: int
    what: str  # what is bounded, in a few words (the doc's row)
    code: str  # the diagnostic when exceeded


TABLE: tuple[Limit, ...] = (
    # programs: .qnn sources and IR JSON
    Limit("MAX_SOURCE_BYTES", 4 * MiB, "bytes of a .qnn source or IR JSON file", "Q0405"),
    Limit("MAX_NUMBER_DIGITS", 400, "digits of a number literal (in a program, IR JSON or `--set`)", "Q0221"),
    Limit("MAX_LAYER_SIZE", 1 << 20, "neurons of one layer", "Q0212"),
    Limit("MAX_WEIGHTS_PER_LAYER", 1 << 28, "weights of one layer (fan-in x size)", "Q0212"),
    Limit("MAX_INPUT_FEATURES", 1 << 24, "values of a network input", "Q0212"),
    Limit("MAX_SHOTS", 1_000_000, "shots of a vote, `--shots`", "Q0212"),
    Limit("MAX_EPOCHS", 1_000_000, "epochs of a training recipe, `--epochs`", "Q0212"),
    Limit("MAX_BATCH", 1 << 24, "batch size of a training recipe, `--batch`", "Q0212"),
    Limit("MAX_CHECKPOINTS", 100_000, "checkpoints a schedule writes in one run", "Q0231"),
    Limit("MAX_TOTAL_STEPS", 1 << 40, "training steps of one run (epochs x steps per epoch)", "Q0231"),
    # diagnostics
    Limit("MAX_DIAGNOSTICS", 100, "diagnostics printed in one run (one line counts the rest)", "-"),
    Limit("SNIPPET_WIDTH", 160, "characters of a source line shown under a diagnostic", "-"),
    # command-line flags
    Limit("MAX_SEED", (1 << 63) - 1, "a seed (`--seed`, `seed` of a recipe): 0 to this", "Q0407"),
    Limit("MAX_COUNT_FLAG", 1 << 31, "other count flags (`--limit`, `--image`, `--starts`, ...)", "Q0407"),
    Limit("MAX_NOISE_PAIRS", 10_000, "identity pairs of the noise probe, `--noise-pairs`", "Q0308"),
    Limit("MAX_COPIES", 4096, "image copies per circuit, `--copies`", "Q0308"),
    Limit("MAX_TAP_STARTS", 1_000_000, "random starts of the TAP solver, `--starts`", "Q0407"),
    # data sets
    Limit("MAX_DATA_FILE_BYTES", 1 * GiB, "bytes of a data file on disk (.npz, IDX, gzip)", "Q0510"),
    Limit("MAX_DATA_BYTES", 1 * GiB, "bytes of a data set's arrays once decompressed (gzip, .npz)", "Q0510"),
    Limit("MAX_LABEL", (1 << 20) - 1, "a class label (at most MAX_LAYER_SIZE classes)", "Q0517"),
    # checkpoints and run folders
    Limit("MAX_CHECKPOINT_BYTES", 4 * GiB, "bytes of a checkpoint (.safetensors) file", "Q0531"),
    Limit("MAX_HEADER_BYTES", 16 * MiB, "bytes of a safetensors header", "Q0531"),
    Limit("MAX_TENSORS", 65_536, "tensors in one checkpoint", "Q0531"),
    Limit("MAX_SIDECAR_BYTES", 64 * MiB, "bytes of a sidecar, run.json", "Q0534"),
    Limit("MAX_JSON_DEPTH", 64, "nesting of a sidecar or run.json", "Q0534"),
    Limit("MAX_METRICS_BYTES", 1 * GiB, "bytes of a run's metrics.jsonl", "Q0534"),
)

BY_NAME: dict[str, Limit] = {limit.name: limit for limit in TABLE}

MAX_SOURCE_BYTES = BY_NAME["MAX_SOURCE_BYTES"].value
MAX_NUMBER_DIGITS = BY_NAME["MAX_NUMBER_DIGITS"].value
MAX_LAYER_SIZE = BY_NAME["MAX_LAYER_SIZE"].value
MAX_WEIGHTS_PER_LAYER = BY_NAME["MAX_WEIGHTS_PER_LAYER"].value
MAX_INPUT_FEATURES = BY_NAME["MAX_INPUT_FEATURES"].value
MAX_SHOTS = BY_NAME["MAX_SHOTS"].value
MAX_EPOCHS = BY_NAME["MAX_EPOCHS"].value
MAX_BATCH = BY_NAME["MAX_BATCH"].value
MAX_CHECKPOINTS = BY_NAME["MAX_CHECKPOINTS"].value
MAX_TOTAL_STEPS = BY_NAME["MAX_TOTAL_STEPS"].value
MAX_DIAGNOSTICS = BY_NAME["MAX_DIAGNOSTICS"].value
SNIPPET_WIDTH = BY_NAME["SNIPPET_WIDTH"].value
MAX_SEED = BY_NAME["MAX_SEED"].value
MAX_COUNT_FLAG = BY_NAME["MAX_COUNT_FLAG"].value
MAX_NOISE_PAIRS = BY_NAME["MAX_NOISE_PAIRS"].value
MAX_COPIES = BY_NAME["MAX_COPIES"].value
MAX_TAP_STARTS = BY_NAME["MAX_TAP_STARTS"].value
MAX_DATA_FILE_BYTES = BY_NAME["MAX_DATA_FILE_BYTES"].value
MAX_DATA_BYTES = BY_NAME["MAX_DATA_BYTES"].value
MAX_LABEL = BY_NAME["MAX_LABEL"].value
MAX_CHECKPOINT_BYTES = BY_NAME["MAX_CHECKPOINT_BYTES"].value
MAX_HEADER_BYTES = BY_NAME["MAX_HEADER_BYTES"].value
MAX_TENSORS = BY_NAME["MAX_TENSORS"].value
MAX_SIDECAR_BYTES = BY_NAME["MAX_SIDECAR_BYTES"].value
MAX_JSON_DEPTH = BY_NAME["MAX_JSON_DEPTH"].value
MAX_METRICS_BYTES = BY_NAME["MAX_METRICS_BYTES"].value


def _check_table() -> None:
    assert len(BY_NAME) == len(TABLE), "a limit appears twice"
    for limit in TABLE:
        assert globals().get(limit.name) == limit.value, f"{limit.name} has no constant"
    assert MAX_LABEL == MAX_LAYER_SIZE - 1


_check_table()
