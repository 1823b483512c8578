"""Every diagnostic code qnnc reports, in one table: (code, title, area).

A `Diagnostic` (and so `error`, `Collector.add` and the targets' `refuse`) accepts only
a code of this table: an unknown code is a bug and fails where it is made.
docs/diagnostics.md documents exactly these codes, each meaning opening with the title
here (tests/test_codes.py checks both).

Names for the codes the compiler core reports are defined at the end; the runtime
modules mostly write the literal (`"Q0624"`), which the table checks in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

# Areas, with the ranges of docs/diagnostics.md ("Code ranges" and the reserved sub-ranges).
INTERNAL = "internal"
SYNTAX = "syntax"
SEMANTIC = "semantic"
TARGET = "target"
SUBMISSION = "submission"
COMMAND_LINE = "command line"
IR_JSON = "IR JSON"
DATA_SET = "data set"
CHECKPOINT = "checkpoint"
SPIN_ANALYSIS = "spin analysis"
SIMULATOR = "simulator"
TRAINING = "training"
GRADIENTS = "gradients"
NOISE = "noise"
LANDSCAPE = "landscape"
SWEEP = "sweep"

AREAS: dict[str, tuple[str, str]] = {  # area -> (first, last) code, inclusive
    INTERNAL: ("Q0000", "Q0000"),
    SYNTAX: ("Q0101", "Q0199"),
    SEMANTIC: ("Q0201", "Q0299"),
    TARGET: ("Q0301", "Q0349"),
    SUBMISSION: ("Q0350", "Q0359"),
    COMMAND_LINE: ("Q0401", "Q0499"),
    IR_JSON: ("Q0501", "Q0509"),
    DATA_SET: ("Q0510", "Q0529"),
    CHECKPOINT: ("Q0530", "Q0599"),
    SPIN_ANALYSIS: ("Q0601", "Q0619"),
    SIMULATOR: ("Q0620", "Q0639"),
    TRAINING: ("Q0640", "Q0699"),
    GRADIENTS: ("Q0720", "Q0739"),
    NOISE: ("Q0701", "Q0719"),
    LANDSCAPE: ("Q0760", "Q0769"),
    SWEEP: ("Q0740", "Q0759"),
}


@dataclass(frozen=True)
class Code:
    code: str  # "Q0201"
    title: str  # what went wrong, in a few words; the doc's meaning starts with it
    area: str  # a key of AREAS


TABLE: tuple[Code, ...] = (
    Code("Q0000", "internal error", INTERNAL),
    # syntax (qnnc.compiler.parser)
    Code("Q0101", "unexpected token", SYNTAX),
    Code("Q0102", "unexpected character", SYNTAX),
    Code("Q0103", "unterminated block", SYNTAX),
    Code("Q0104", "unterminated string", SYNTAX),
    Code("Q0105", "unexpected end of file", SYNTAX),
    Code("Q0106", "invalid encoding", SYNTAX),
    Code("Q0107", "a program nested too deeply to compile or format", SYNTAX),
    # semantic (qnnc.compiler.elaborate, qnnc.compiler.verify)
    Code("Q0201", "unknown layer", SEMANTIC),
    Code("Q0202", "unknown name", SEMANTIC),
    Code("Q0203", "unknown activation", SEMANTIC),
    Code("Q0204", "unknown gate", SEMANTIC),
    Code("Q0205", "unknown standard-library module", SEMANTIC),
    Code("Q0206", "duplicate or reserved name", SEMANTIC),
    Code("Q0207", "shape mismatch", SEMANTIC),
    Code("Q0208", "value out of range", SEMANTIC),
    Code("Q0209", "a neuron emits nothing", SEMANTIC),
    Code("Q0210", "undeclared qubit or ancilla", SEMANTIC),
    Code("Q0211", "circular import", SEMANTIC),
    Code("Q0212", "too large", SEMANTIC),
    Code("Q0213", "type mismatch", SEMANTIC),
    Code("Q0214", "bad arguments", SEMANTIC),
    Code("Q0215", "unknown function", SEMANTIC),
    Code("Q0216", "bad network structure", SEMANTIC),
    Code("Q0217", "unknown preprocessing step", SEMANTIC),
    Code("Q0218", "bad initialisation", SEMANTIC),
    Code("Q0219", "unknown optimizer, loss or gradient", SEMANTIC),
    Code("Q0220", "unknown type", SEMANTIC),
    Code("Q0221", "bad value", SEMANTIC),
    Code("Q0222", "a neuron emits more than one measurement", SEMANTIC),
    Code("Q0223", "bad gate use", SEMANTIC),
    Code("Q0224", "`z` or `last` outside a neuron", SEMANTIC),
    Code("Q0225", "an imported file cannot be found or read", SEMANTIC),
    Code("Q0226", "bad readout", SEMANTIC),
    Code("Q0227", "`last` without a carried qubit", SEMANTIC),
    Code("Q0228", "more than one own qubit in a neuron", SEMANTIC),
    Code("Q0229", "an imported module contains something other than neurons", SEMANTIC),
    Code("Q0230", "unknown data set", SEMANTIC),
    Code("Q0231", "bad checkpoint schedule", SEMANTIC),
    Code("Q0232", "unknown network", SEMANTIC),
    Code("Q0233", "missing statement", SEMANTIC),
    # targets (qnnc.runtime.targets)
    Code("Q0301", "unknown target", TARGET),
    Code("Q0302", "unknown strategy", TARGET),
    Code("Q0303", "the target cannot run the strategy (a capability is missing)", TARGET),
    Code("Q0304", "unknown backend for the target", TARGET),
    Code("Q0305", "the circuit needs more qubits than the device has", TARGET),
    Code("Q0306", "a table of conditions (or multiplexed rotation) is wider than the limit", TARGET),
    Code("Q0307", "noise kind not available on the target", TARGET),
    Code("Q0308", "bad noise-pair count, copies count or weight bits", TARGET),
    Code("Q0310", "a vendor SDK (an optional extra) is not installed", TARGET),
    Code("Q0311", "the network cannot be lowered to circuits (no quantum hidden layer, "
                  "or a classical one between them)", TARGET),
    Code("Q0312", "a carried layer has a different width from the layer it continues", TARGET),
    Code("Q0313", "weights missing or of the wrong shape", TARGET),
    Code("Q0314", "the input vector has the wrong length", TARGET),
    Code("Q0315", "no strategy the target can run fits this network", TARGET),
    Code("Q0316", "the local simulator cannot hold the circuit", TARGET),
    Code("Q0317", "unknown simulator for the target", TARGET),
    Code("Q0320", "the vendor compiler rejected the circuit", TARGET),
    Code("Q0321", "the program holds more qubits at once than the device has (Helios)", TARGET),
    Code("Q0322", "a neuron angle needs a function the Guppy program cannot compute", TARGET),
    Code("Q0323", "guppylang could not compile the program", TARGET),
    Code("Q0324", "the Selene emulator could not build or run the program", TARGET),
    Code("Q0325", "the circuit cannot be written as QIR", TARGET),
    Code("Q0331", "a neuron angle is not finite (the one neuron semantics: check, simulator and targets)", TARGET),
    Code("Q0332", "a gate of the neuron has no lowering", TARGET),
    Code("Q0333", "a neuron angle has no exact real-time (integer) realisation", TARGET),
    Code("Q0334", "a real-time register would be wider than the target's classical registers", TARGET),
    Code("Q0340", "the program has no such network", TARGET),
    Code("Q0341", "a checkpoint cannot be read", TARGET),
    Code("Q0342", "a test image cannot be bound", TARGET),
    Code("Q0343", "a bundle's driver cannot compute this network's angles", TARGET),
    # submission through a vendor's cloud client (qnnc.runtime.targets.submit)
    Code("Q0350", "no credentials for the vendor's cloud client", SUBMISSION),
    Code("Q0351", "the vendor's cloud client failed (authentication, network, unknown device, "
                  "failed job)", SUBMISSION),
    Code("Q0352", "the target has no submission path here", SUBMISSION),
    # command line (qnnc.compiler, qnnc.compiler.cli, qnnc.compiler.elaborate)
    Code("Q0401", "a `--set` that is not `NAME=VALUE`, or a name given twice", COMMAND_LINE),
    Code("Q0402", "`--set` names a parameter the program does not declare", COMMAND_LINE),
    Code("Q0403", "a `--set` value that is not a number, or does not fit the declaration", COMMAND_LINE),
    Code("Q0404", "no such file", COMMAND_LINE),
    Code("Q0405", "the path cannot be read as a file", COMMAND_LINE),
    Code("Q0406", "`--set` given with an IR JSON file", COMMAND_LINE),
    Code("Q0407", "bad usage", COMMAND_LINE),
    # IR JSON (qnnc.compiler.serialize, qnnc.compiler)
    Code("Q0501", "not valid JSON", IR_JSON),
    Code("Q0502", "valid JSON, but not a valid IR program", IR_JSON),
    Code("Q0503", "unsupported `schema_version`", IR_JSON),
    Code("Q0504", "IR JSON nested too deeply", IR_JSON),
    # data sets (qnnc.runtime.data)
    Code("Q0510", "a data file cannot be read", DATA_SET),
    Code("Q0511", "a shipped or cached file does not match its checksum", DATA_SET),
    Code("Q0512", "corrupt or truncated gzip data", DATA_SET),
    Code("Q0513", "wrong IDX magic number", DATA_SET),
    Code("Q0514", "IDX data length differs from what the header declares", DATA_SET),
    Code("Q0515", "IDX dimensions unusable", DATA_SET),
    Code("Q0516", "images and labels files hold different numbers of samples", DATA_SET),
    Code("Q0517", "label values out of range", DATA_SET),
    Code("Q0518", "unknown built-in data set name", DATA_SET),
    Code("Q0519", "the full MNIST training set has not been downloaded", DATA_SET),
    Code("Q0520", "not a readable .npz archive", DATA_SET),
    Code("Q0521", ".npz archive has missing or unexpected keys", DATA_SET),
    Code("Q0522", ".npz array has the wrong shape", DATA_SET),
    Code("Q0523", ".npz array has the wrong dtype or non-finite values", DATA_SET),
    Code("Q0524", "a download failed on every mirror", DATA_SET),
    Code("Q0525", "a download did not match the canonical checksum", DATA_SET),
    Code("Q0526", "images do not have the shape the network input declares", DATA_SET),
    Code("Q0527", "invalid preprocessing step", DATA_SET),
    Code("Q0528", "the cache directory cannot be written", DATA_SET),
    Code("Q0529", "a checksum manifest is missing, malformed or lacks an entry", DATA_SET),
    # checkpoints (qnnc.runtime.checkpoint; Q0533 also qnnc.runtime.spin)
    Code("Q0530", "missing run directory or checkpoint", CHECKPOINT),
    Code("Q0531", "unreadable or truncated checkpoint file", CHECKPOINT),
    Code("Q0532", "checkpoint of another network", CHECKPOINT),
    Code("Q0533", "non-finite weight in a checkpoint", CHECKPOINT),
    Code("Q0534", "invalid or missing sidecar / run file", CHECKPOINT),
    Code("Q0535", "checksum mismatch", CHECKPOINT),
    # spin-model analysis (qnnc.runtime.ising, qnnc.runtime.tap)
    Code("Q0601", "weight list and layer-name list do not match", SPIN_ANALYSIS),
    Code("Q0602", "a weight matrix has the wrong shape or type", SPIN_ANALYSIS),
    Code("Q0603", "a weight (bond) is NaN or infinite", SPIN_ANALYSIS),
    Code("Q0604", "a bias has the wrong shape or is not finite", SPIN_ANALYSIS),
    Code("Q0605", "fields requested without biases", SPIN_ANALYSIS),
    Code("Q0606", "empty or duplicate layer name", SPIN_ANALYSIS),
    Code("Q0607", "the bond matrix is not square and symmetric", SPIN_ANALYSIS),
    Code("Q0608", "the bond matrix has a nonzero diagonal", SPIN_ANALYSIS),
    Code("Q0609", "the bond matrix has NaN or infinite entries", SPIN_ANALYSIS),
    Code("Q0610", "temperature not positive and finite", SPIN_ANALYSIS),
    Code("Q0611", "a solver or scan setting is out of range", SPIN_ANALYSIS),
    Code("Q0612", "fields of the wrong shape or not finite", SPIN_ANALYSIS),
    Code("Q0613", "power-law data: mismatched lengths, too few points, non-positive values", SPIN_ANALYSIS),
    Code("Q0614", "power-law window: too few points inside, or no window fits", SPIN_ANALYSIS),
    Code("Q0615", "an .npz file is missing, damaged or not a qnnc Ising model", SPIN_ANALYSIS),
    Code("Q0616", "analytic_tc: bad sizes or gains", SPIN_ANALYSIS),
    Code("Q0617", "a spin configuration has the wrong shape", SPIN_ANALYSIS),
    Code("Q0618", "outlier_tc: negative or non-finite input", SPIN_ANALYSIS),
    Code("Q0619", "layer sizes do not add up to the number of spins", SPIN_ANALYSIS),
    # simulator (qnnc.runtime.simulator, qnnc.runtime.neuron_kernel)
    Code("Q0620", "too many branches for exact enumeration", SIMULATOR),
    Code("Q0621", "`last` read by a neuron without carried qubit (the one neuron semantics)", SIMULATOR),
    Code("Q0622", "carried layer widths differ", SIMULATOR),
    Code("Q0623", "malformed or unknown neuron definition (the one neuron semantics)", SIMULATOR),
    Code("Q0624", "a neuron parameter or angle expression cannot be bound (the one neuron semantics)", SIMULATOR),
    Code("Q0626", "bad layer source / network", SIMULATOR),
    Code("Q0630", "tensors do not match the model", SIMULATOR),
    Code("Q0631", "checkpoint weights not loaded", SIMULATOR),
    Code("Q0632", "input has the wrong shape", SIMULATOR),
    Code("Q0633", "bad shots / argument", SIMULATOR),
    Code("Q0634", "the requested torch device is not available here", SIMULATOR),
    Code("Q0635", "the device cannot run this computation", SIMULATOR),
    # training (qnnc.runtime.train)
    Code("Q0640", "the loss became non-finite during training", TRAINING),
    # measured gradients and fine-tuning (qnnc.runtime.gradients)
    Code("Q0720", "network shape not supported by measured gradients", GRADIENTS),
    Code("Q0721", "a neuron's branch is not determined by its recorded outcomes", GRADIENTS),
    Code("Q0722", "bad gradient or fine-tuning setting", GRADIENTS),
    Code("Q0723", "unknown executor", GRADIENTS),
    Code("Q0724", "labels do not match the images", GRADIENTS),
    Code("Q0725", "simulator noise asked of an executor that brings its own", GRADIENTS),
    # device noise (qnnc.runtime.noise)
    Code("Q0701", "unknown noise model", NOISE),
    Code("Q0702", "noise model file missing or unreadable", NOISE),
    Code("Q0703", "invalid noise model file", NOISE),
    Code("Q0704", "the noise model does not say how the device runs a neuron gate", NOISE),
    Code("Q0705", "a native decomposition the noisy neuron cannot run", NOISE),
    Code("Q0706", "a qubit the noise model does not describe", NOISE),
    Code("Q0707", "a neuron's qubits are not coupled on the device", NOISE),
    Code("Q0708", "the noise model's layout does not fit the network", NOISE),
    Code("Q0709", "noise requested where it does not apply", NOISE),
    Code("Q0710", "a circuit the circuit-level noise model cannot run", NOISE),
    Code("Q0711", "a gate of the circuit that the noise model does not describe on its qubits", NOISE),
    Code("Q0712", "the per-neuron noise channels cannot model the strategy's circuits", NOISE),
    Code("Q0713", "a circuit too wide for the exact circuit-level noise model", NOISE),
    # the energy landscape of one image (qnnc.runtime.landscape, `qnnc landscape`)
    Code("Q0760", "the network has no landscape of the supported kind", LANDSCAPE),
    Code("Q0761", "a landscape setting is out of range", LANDSCAPE),
    Code("Q0762", "the image is not in the data set", LANDSCAPE),
    Code("Q0763", "an outcome pattern has the wrong shape or values", LANDSCAPE),
    # sweeps (qnnc.runtime.sweep, `qnnc sweep`)
    Code("Q0740", "sweep spec is not valid TOML", SWEEP),
    Code("Q0741", "missing or unknown key in a sweep spec", SWEEP),
    Code("Q0742", "a sweep spec value of the wrong type or out of range", SWEEP),
    Code("Q0743", "a sweep step names a command it cannot run", SWEEP),
    Code("Q0744", "bad template in a sweep step's arguments", SWEEP),
    Code("Q0745", "bad expression in a sweep table", SWEEP),
    Code("Q0746", "a sweep table value cannot be computed from the cells", SWEEP),
    Code("Q0747", "the sweep spec or its program changed since the folder was run", SWEEP),
    Code("Q0748", "the sweep folder is not usable", SWEEP),
    Code("Q0749", "units of the sweep failed or are unfinished", SWEEP),
    Code("Q0750", "the sweep engine (Dask distributed) is not installed", SWEEP),
    Code("Q0751", "cannot reach the Dask scheduler", SWEEP),
    Code("Q0752", "cannot read the sweep spec", SWEEP),
    Code("Q0753", "the grid sets a parameter the program does not declare", SWEEP),
    Code("Q0754", "the local Dask cluster did not start", SWEEP),
)

BY_CODE: dict[str, Code] = {c.code: c for c in TABLE}


def check(code: str) -> str:
    """`code` itself when the table has it; an unknown code is a bug in qnnc."""
    if code not in BY_CODE:
        raise ValueError(f"unknown diagnostic code {code!r}: add it to qnnc.compiler.codes "
                         "and docs/diagnostics.md")
    return code


def in_area(*areas: str) -> dict[str, str]:
    """code -> title for the codes of the given areas, in table order."""
    return {c.code: c.title for c in TABLE if c.area in areas}


def _check_table() -> None:
    assert len(BY_CODE) == len(TABLE), "a code appears twice in the table"
    for c in TABLE:
        first, last = AREAS[c.area]
        assert first <= c.code <= last, f"{c.code} lies outside its area {c.area!r}"


_check_table()

# --------------------------------------------------------------------------- names
# Syntax (qnnc.compiler.parser).
UNEXPECTED_TOKEN = check("Q0101")
UNEXPECTED_CHARACTER = check("Q0102")
UNTERMINATED_BLOCK = check("Q0103")
UNTERMINATED_STRING = check("Q0104")
UNEXPECTED_END = check("Q0105")
INVALID_ENCODING = check("Q0106")
NESTED_TOO_DEEPLY = check("Q0107")

# Semantic (elaboration and the IR verifier).
UNKNOWN_LAYER = check("Q0201")
UNKNOWN_PARAMETER = check("Q0202")
UNKNOWN_ACTIVATION = check("Q0203")
UNKNOWN_GATE = check("Q0204")
UNKNOWN_MODULE = check("Q0205")
DUPLICATE_NAME = check("Q0206")
SHAPE_MISMATCH = check("Q0207")
OUT_OF_RANGE = check("Q0208")
NO_EMIT = check("Q0209")
UNDECLARED_REGISTER = check("Q0210")
CIRCULAR_IMPORT = check("Q0211")
TOO_LARGE = check("Q0212")
TYPE_MISMATCH = check("Q0213")
BAD_ARGUMENTS = check("Q0214")
UNKNOWN_FUNCTION = check("Q0215")
BAD_NETWORK = check("Q0216")
BAD_PREPROCESS = check("Q0217")
BAD_INIT = check("Q0218")
BAD_TRAIN = check("Q0219")
UNKNOWN_TYPE = check("Q0220")
BAD_VALUE = check("Q0221")
MULTIPLE_EMITS = check("Q0222")
BAD_GATE_USE = check("Q0223")
NAME_NOT_ALLOWED = check("Q0224")
IMPORT_NOT_FOUND = check("Q0225")
BAD_READOUT = check("Q0226")
MISSING_CARRIED = check("Q0227")
BAD_REGISTERS = check("Q0228")
BAD_IMPORTED_ITEM = check("Q0229")
UNKNOWN_DATASET = check("Q0230")
BAD_SCHEDULE = check("Q0231")
UNKNOWN_NETWORK = check("Q0232")
MISSING_STATEMENT = check("Q0233")

# Command line and input files.
BAD_SET_SYNTAX = check("Q0401")
SET_UNKNOWN_PARAMETER = check("Q0402")
SET_BAD_VALUE = check("Q0403")
FILE_NOT_FOUND = check("Q0404")
FILE_UNREADABLE = check("Q0405")
SET_WITH_IR = check("Q0406")
BAD_USAGE = check("Q0407")

# IR JSON (qnnc.compiler.serialize).
INVALID_JSON = check("Q0501")
INVALID_IR = check("Q0502")
UNSUPPORTED_SCHEMA = check("Q0503")
IR_NESTED_TOO_DEEPLY = check("Q0504")
