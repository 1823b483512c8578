"""A network as one Guppy program: the text of a Python module that a user can read,
edit, compile to HUGR (`python FILE.py`, with guppylang alone) and submit with
Quantinuum's own client.

One call of `forward` is one forward pass (one shot) of the whole network:

- the first hidden layer's pre-activations z are computed on the host from the image
  (`Z_<layer>`, the only input), every later layer's z at run time, in loops over the
  neurons, as weighted sums of the previous layer's measured outcomes (±1 floats), with
  the float weights as they are (`W_<layer>`, row-major; nothing rounded);
- every gate angle is the neuron's closed form from the one neuron semantics
  (`qnnc.compiler.angles.BoundNeuron`), written out as a Guppy float expression in `z`
  and `last`; the squash runs at run time (clip exactly; tanh by `tanh_approx` below,
  whose maximum error is `TANH_MAX_ERROR`);
- the neuron's ops follow its definition: fresh qubits (`qubit()`) for its registers,
  its gates, `project_z` for its measurements, `reset`, and `discard` at the end (the
  runtime reuses freed qubits); a carried qubit (model B) lives in an array `carried`
  from the first layer of a carried chain to the last;
- the readout: each layer's outcomes as results `<layer>` (±1 floats), and, when the
  output layer's weights are known, its argmax as the result `label` (the vote over
  shots is the host's).

Guppy (guppylang 0.21) has +, -, *, /, comparisons and `**` on floats and no math
module: a closed form that needs sin, cos, exp, log, ... is refused (Q0322).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from qnnc.compiler import ir
from qnnc.compiler.gates import GATES
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.network import NetworkSpec

# tanh(x) = sign(x) * tanh(|x|): |x| >= TANH_CUT gives ±1 (error <= 1 - tanh(20) < 1e-17);
# otherwise y = |x| / 2^TANH_HALVINGS, tanh(y) by Lambert's continued fraction to the
# term 2 TANH_DEPTH + 1, then TANH_HALVINGS doublings t -> 2t / (1 + t^2). The stated
# bound covers float64 rounding: measured 3.4e-16 over 400,000 points of [-25, 25]
# (tests/test_helios.py checks the bound on the Selene emulator).
TANH_CUT = 20.0
TANH_HALVINGS = 5
TANH_DEPTH = 5
TANH_MAX_ERROR = 1e-15

# The closed-form functions the Guppy program computes (the rest are refused).
SUPPORTED_FUNCTIONS = ("clip1", "clip", "tanh", "sign", "abs", "min", "max")


def tanh_approx(x: float) -> float:
    """The Python mirror of the Guppy `tanh_approx` (the same operations in float64)."""
    ax = abs(x)
    if ax >= TANH_CUT:
        return 1.0 if x > 0 else -1.0
    y = ax / 2.0 ** TANH_HALVINGS
    y2 = y * y
    acc = 2.0 * TANH_DEPTH + 1.0
    for n in range(TANH_DEPTH - 1, -1, -1):
        acc = (2.0 * n + 1.0) + y2 / acc
    t = y / acc
    for _ in range(TANH_HALVINGS):
        t = 2.0 * t / (1.0 + t * t)
    return -t if x < 0 else t


def _tanh_source() -> str:
    cf = f"{2.0 * TANH_DEPTH + 1.0!r}"
    for n in range(TANH_DEPTH - 1, -1, -1):
        cf = f"{2.0 * n + 1.0!r} + y2 / ({cf})"
    return f'''
@guppy
def tanh_approx(x: float) -> float:
    """tanh(x) within {TANH_MAX_ERROR:g} (Guppy has no tanh): range reduction by 2^{TANH_HALVINGS},
    Lambert's continued fraction, {TANH_HALVINGS} doublings t -> 2t / (1 + t^2)."""
    ax = x
    if x < 0.0:
        ax = -x
    if ax >= {TANH_CUT!r}:
        if x > 0.0:
            return 1.0
        return -1.0
    y = ax / {2.0 ** TANH_HALVINGS!r}
    y2 = y * y
    t = y / ({cf})
    for _ in range({TANH_HALVINGS}):
        t = 2.0 * t / (1.0 + t * t)
    if x < 0.0:
        return -t
    return t
'''


_HELPERS = {
    "clip1": '''
@guppy
def clip1(x: float) -> float:
    """clip(x, -1, 1), exactly."""
    if x > 1.0:
        return 1.0
    if x < -1.0:
        return -1.0
    return x
''',
    "clip": '''
@guppy
def clip(x: float, lo: float, hi: float) -> float:
    """min(max(x, lo), hi), exactly."""
    if x < lo:
        x = lo
    if x > hi:
        x = hi
    return x
''',
    "sign": '''
@guppy
def sign(x: float) -> float:
    """sign with sign(0) = +1 (the classical network's convention)."""
    if x >= 0.0:
        return 1.0
    return -1.0
''',
    "abs": '''
@guppy
def fabs(x: float) -> float:
    """|x| (Selene's compiler has no float abs instruction)."""
    if x < 0.0:
        return -x
    return x
''',
    "min": '''
@guppy
def fmin(x: float, y: float) -> float:
    if y < x:
        return y
    return x
''',
    "max": '''
@guppy
def fmax(x: float, y: float) -> float:
    if y > x:
        return y
    return x
''',
    "limit_clip1": '''
@guppy
def limit_clip1(num: float, den: float) -> float:
    """clip(num / den, -1, 1); its classical limit sign(num) where den = 0."""
    if den == 0.0:
        return sign(num)
    return clip1(num / den)
''',
    "limit_tanh": '''
@guppy
def limit_tanh(num: float, den: float) -> float:
    """tanh(num / den); its classical limit sign(num) where den = 0."""
    if den == 0.0:
        return sign(num)
    return tanh_approx(num / den)
''',
    "limit_clip": '''
@guppy
def limit_clip(num: float, den: float, lo: float, hi: float) -> float:
    """clip(num / den, lo, hi); hi where den = 0 and num >= 0, lo where num < 0."""
    if den == 0.0:
        if num >= 0.0:
            return hi
        return lo
    return clip(num / den, lo, hi)
''',
    "rad": '''
@guppy
def rad(theta: float) -> angle:
    """An angle in radians (Guppy's `angle` counts half-turns)."""
    return angle(theta / 3.141592653589793)
''',
}
# helper -> helpers it calls
_NEEDS = {"limit_clip1": ("sign", "clip1"), "limit_tanh": ("sign", "tanh"),
          "limit_clip": ("clip",)}


@dataclass
class GuppySource:
    """The program text and what it does per shot (counted from the network, before
    Guppy's compiler: the quantum operations of one forward pass)."""

    text: str
    images: int  # forward passes per shot (one per bound input)
    max_live_qubits: int  # qubits allocated at once, at most
    counts: dict = field(default_factory=dict)  # per forward pass
    layers: tuple[str, ...] = ()  # result tags of the hidden layers' outcomes, in order
    label: bool = False  # whether each forward pass returns the result `label`
    functions: tuple[str, ...] = ()  # closed-form functions computed at run time
    approximated: tuple[str, ...] = ()  # what is not exact (tanh)


class _Expr:
    """A closed form (`angles` node tuples) as Guppy source, recording the helpers used."""

    def __init__(self, layer: str):
        self.layer = layer
        self.used: set[str] = set()

    def __call__(self, n) -> str:
        kind = n[0]
        if kind == "c":
            v = float(n[1])
            return repr(v) if v >= 0 else f"({v!r})"
        if kind == "z":
            return "z"
        if kind == "last":
            return "last"
        if kind == "neg":
            return f"(-{self(n[1])})"
        if kind == "sign":
            self.used.add("sign")
            return f"sign({_bare(self(n[1]))})"
        if kind == "bin":
            op, a, b = n[1], self(n[2]), n[3]
            if op == "^":
                if b[0] == "c" and float(b[1]).is_integer() and 0 <= b[1] <= 16:
                    k = int(b[1])
                    return "1.0" if k == 0 else "(" + " * ".join([a] * k) + ")"
                raise self._refuse("a power whose exponent is not a constant integer 0..16")
            return f"({a} {op} {self(b)})"
        if kind == "fn":
            name, args = n[1], [_bare(self(a)) for a in n[2]]
            if name not in SUPPORTED_FUNCTIONS:
                raise self._refuse(f"`{name}`")
            fn = {"tanh": "tanh_approx", "min": "fmin", "max": "fmax", "abs": "fabs"}.get(name, name)
            self.used.add(name)
            return f"{fn}({', '.join(args)})"
        if kind == "limit":
            _, name, rest, num, den = n
            if name not in ("clip1", "tanh", "clip"):
                raise self._refuse(f"`{name}`")
            helper = f"limit_{name}"
            self.used.add(helper)
            args = [_bare(self(a)) for a in (num, den) + tuple(rest)]
            return f"{helper}({', '.join(args)})"
        raise AssertionError(kind)  # pragma: no cover

    def _refuse(self, what: str):
        return refuse("Q0322", f"layer `{self.layer}`: an angle needs {what}, which the Helios "
                      "program cannot compute (Guppy has float +, -, *, / and comparisons, "
                      "no math module)",
                      help="Helios computes clip, tanh (approximated within "
                           f"{TANH_MAX_ERROR:g}), sign, abs, min, max and integer powers; the "
                           "`quantinuum` and `ibm` targets bind any angle on the host "
                           "(`--strategy layered`)")


def _bare(s: str) -> str:
    """`s` without one pair of enclosing parentheses (for a call's argument)."""
    if not (s.startswith("(") and s.endswith(")")):
        return s
    depth = 0
    for k, ch in enumerate(s):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and k < len(s) - 1:
            return s
    return s[1:-1]


def _floats(values) -> str:
    """A list of floats, exact (repr round-trips), wrapped for reading."""
    vals = [repr(float(v)) for v in np.asarray(values, dtype=float).reshape(-1)]
    lines, line = [], "    "
    for v in vals:
        if len(line) + len(v) + 2 > 96:
            lines.append(line.rstrip())
            line = "    "
        line += v + ", "
    lines.append(line.rstrip())
    return "[\n" + "\n".join(lines) + "\n]"


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def guppy_source(spec: NetworkSpec, inputs: Sequence[np.ndarray], origin: str = "") -> GuppySource:
    """The Guppy module for `spec`, with one forward pass per row of `inputs` (each a
    preprocessed input vector: its first layer's z is computed here) in every shot."""
    layers = spec.hidden
    first = layers[0]
    z1 = np.stack([first.z(np.asarray(x, dtype=float).reshape(-1)) for x in inputs])
    images = z1.shape[0]
    helpers: set[str] = {"rad"}
    consts: list[str] = []
    body: list[str] = []
    counts = {"allocations": 0, "rotations": 0, "fixed_gates": 0, "two_qubit_gates": 0,
              "measurements": 0, "resets": 0, "float_multiply_adds": 0}
    live_max = 0
    approximated: list[str] = []
    functions: set[str] = set()
    L = [_ident(h.name) for h in layers]
    consts.append(f"# First hidden layer `{first.name}`: z = W x + b on the host, one row per input "
                  f"({images} x {first.size}).\nZ_{L[0].upper()} = {_floats(z1)}\n")
    carried_open = False
    gates_used: set[str] = set()
    for li, layer in enumerate(layers):
        name = L[li]
        nm = layer.neuron
        bound = nm.bound
        n, prev = layer.size, (layers[li - 1] if li else None)
        keeps = li + 1 < len(layers) and layers[li + 1].carried
        continues = layer.carried
        params = ", ".join(f"{k} = {v:g}" if not isinstance(v, str) else f"{k} = {v}"
                           for k, v in bound.params.items())
        body.append(f"    # layer `{layer.name}`: {n} x `{nm.ndef.name}`({params})")
        if li:
            m = prev.size
            consts.append(f"# Layer `{layer.name}`: weights [{n} x {m}] row-major, bias [{n}] "
                          "(float64, as trained).\n"
                          f"W_{name.upper()} = {_floats(layer.weight)}\n"
                          f"B_{name.upper()} = {_floats(layer.bias)}\n")
            body.append(f"    w_{name} = comptime(W_{name.upper()})")
            body.append(f"    b_{name} = comptime(B_{name.upper()})")
            counts["float_multiply_adds"] += n * m
        body.append(f"    d_{name} = array(1.0 for _ in range({n}))")
        carried_reg = nm.carried_reg if (keeps or continues) else None
        live = 0
        if carried_reg is not None and not continues:
            body.append(f"    carried = array(qubit() for _ in range({n}))")
            counts["allocations"] += n
            carried_open = True
        if carried_reg is not None:
            live += n
        body.append(f"    for i in range({n}):")
        ind = "        "
        if li == 0:
            body.append(f"{ind}z = z_{name}[image * {n} + i]")
        elif bound.uses_z:
            body.append(f"{ind}z = b_{name}[i]")
            body.append(f"{ind}for j in range({prev.size}):")
            body.append(f"{ind}    z += w_{name}[i * {prev.size} + j] * d_{L[li - 1]}[j]")
        if bound.uses_last:
            body.append(f"{ind}last = d_{L[li - 1]}[i]" if continues else f"{ind}last = 1.0")
        regs: dict[str, str] = {}
        local = []
        for r in nm.ndef.registers:
            if r.name == carried_reg:
                regs[r.name] = "carried[i]"
            else:
                v = f"q_{_ident(r.name)}"
                regs[r.name] = v
                local.append(v)
                body.append(f"{ind}{v} = qubit()")
        counts["allocations"] += n * len(local)
        live += len(local)
        live_max = max(live_max, live)
        expr = _Expr(layer.name)
        for oi, op in enumerate(nm.ndef.ops):
            if isinstance(op, ir.GateOp):
                g = GATES[op.gate]
                qs = ", ".join(regs[t] for t in op.targets)
                spelling = g.spelling("guppy").name
                if g.takes_angle:
                    text = expr(bound.angles[oi])
                    body.append(f"{ind}{spelling}({qs}, rad({_bare(text)}))")
                    counts["rotations"] += n
                else:
                    body.append(f"{ind}{spelling}({qs})")
                    counts["fixed_gates"] += n
                if g.qubits == 2:
                    counts["two_qubit_gates"] += n
                gates_used.add(spelling)
            elif isinstance(op, ir.MeasureOp):
                counts["measurements"] += n
                if op.emit:
                    body.append(f"{ind}if project_z({regs[op.target]}):")
                    body.append(f"{ind}    d_{name}[i] = -1.0")
                else:
                    body.append(f"{ind}project_z({regs[op.target]})")
            elif isinstance(op, ir.ResetOp):
                counts["resets"] += n
                body.append(f"{ind}reset({regs[op.target]})")
        for v in local:
            body.append(f"{ind}discard({v})")
        if carried_open and not keeps:
            body.append("    discard_array(carried)")
            carried_open = False
        for h in sorted(expr.used):
            helpers.add(h)
            helpers.update(_NEEDS.get(h, ()))
        functions |= {u.removeprefix("limit_") for u in expr.used}
        if "tanh" in functions and "tanh" not in approximated:
            approximated.append("tanh")
    results = [f'    result("{L[li]}", d_{L[li]})' for li in range(len(layers))]
    if spec.output is not None:
        oname, w, b = spec.output
        o, m = w.shape
        consts.append(f"# Output layer `{oname}` (linear, read out as argmax): weights [{o} x {m}], "
                      f"bias [{o}].\nW_{_ident(oname).upper()} = {_floats(w)}\n"
                      f"B_{_ident(oname).upper()} = {_floats(b)}\n")
        on = _ident(oname)
        body += [f"    # output `{oname}`: argmax of the logits (ties: the first)",
                 f"    w_{on} = comptime(W_{on.upper()})",
                 f"    b_{on} = comptime(B_{on.upper()})",
                 "    label = -1",
                 "    best = 0.0",
                 f"    for k in range({o}):",
                 f"        v = b_{on}[k]",
                 f"        for j in range({m}):",
                 f"            v += w_{on}[k * {m} + j] * d_{L[-1]}[j]",
                 "        if label < 0 or v > best:",
                 "            label = k",
                 "            best = v"]
        results.append('    result("label", label)')
        counts["float_multiply_adds"] += o * m
    order = ["sign", "clip1", "clip", "abs", "min", "max", "tanh", "limit_clip1", "limit_tanh",
             "limit_clip", "rad"]
    helper_text = "".join("\n" + (_tanh_source() if h == "tanh" else _HELPERS[h])
                          for h in order if h in helpers)
    doc = (f'"""Network `{spec.name}`{f" ({origin})" if origin else ""} as one Guppy program for '
           "Quantinuum Helios,\nwritten by qnnc. One call of `forward` is one forward pass: "
           "the first layer's z is the\nhost's input (Z_*), later layers' z are weighted sums of "
           "the measured outcomes (+1 for |0>,\n-1 for |1>) computed during the shot; results: "
           "each hidden layer's outcomes and, with the output layer's\nweights, the argmax label. "
           f"Every shot runs {images} forward pass(es), one per input row.\n\n"
           "Compile to HUGR with guppylang alone:  python THIS_FILE.py [OUT.hugr]\n"
           f'"""\n')
    head = ("from guppylang import guppy\n"
            "from guppylang.std.angles import angle\n"
            "from guppylang.std.builtins import array, comptime, frozenarray, result\n"
            "from guppylang.std.quantum import "
            + ", ".join(sorted(gates_used | {"discard", "discard_array", "project_z", "qubit", "reset"}))
            + "\n\n")
    forward = (f"\n\n@guppy\ndef forward(z_{L[0]}: frozenarray[float, {images * first.size}], image: int)"
               " -> None:\n" + "\n".join(body) + "\n" + "\n".join(results) + "\n")
    main = (f"\n\n@guppy\ndef main() -> None:\n    z_{L[0]} = comptime(Z_{L[0].upper()})\n"
            f"    for image in range({images}):\n        forward(z_{L[0]}, image)\n")
    tail = ('\n\nif __name__ == "__main__":\n    import sys\n\n'
            '    out = sys.argv[1] if len(sys.argv) > 1 else __file__.removesuffix(".py") + ".hugr"\n'
            '    with open(out, "wb") as f:\n        f.write(main.compile().to_bytes())\n'
            '    print(f"wrote {out}")\n')
    text = doc + "\n" + head + "\n".join(consts) + helper_text + forward + main + tail
    return GuppySource(text, images, live_max, counts, tuple(L), spec.output is not None,
                       tuple(sorted(functions)), tuple(approximated))
