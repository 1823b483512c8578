"""Network `small_weak` as one Guppy program for Quantinuum Helios,
written by qnnc. One call of `forward` is one forward pass: the first layer's z is the
host's input (Z_*), later layers' z are weighted sums of the measured outcomes (+1 for |0>,
-1 for |1>) computed during the shot; results: each hidden layer's outcomes and, with the output layer's
weights, the argmax label. Every shot runs 1 forward pass(es), one per input row.

Compile to HUGR with guppylang alone:  python THIS_FILE.py [OUT.hugr]
"""

from guppylang import guppy
from guppylang.std.angles import angle
from guppylang.std.builtins import array, comptime, frozenarray, result
from guppylang.std.quantum import cx, discard, discard_array, project_z, qubit, reset, ry

# First hidden layer `h1`: z = W x + b on the host, one row per input (1 x 2).
Z_H1 = [
    0.70675, 0.03974999999999998,
]

# Layer `h2`: weights [2 x 2] row-major, bias [2] (float64, as trained).
W_H2 = [
    -0.012, -0.603, 0.622, 0.55,
]
B_H2 = [
    0.02, 0.338,
]


@guppy
def tanh_approx(x: float) -> float:
    """tanh(x) within 1e-15 (Guppy has no tanh): range reduction by 2^5,
    Lambert's continued fraction, 5 doublings t -> 2t / (1 + t^2)."""
    ax = x
    if x < 0.0:
        ax = -x
    if ax >= 20.0:
        if x > 0.0:
            return 1.0
        return -1.0
    y = ax / 32.0
    y2 = y * y
    t = y / (1.0 + y2 / (3.0 + y2 / (5.0 + y2 / (7.0 + y2 / (9.0 + y2 / (11.0))))))
    for _ in range(5):
        t = 2.0 * t / (1.0 + t * t)
    if x < 0.0:
        return -t
    return t


@guppy
def rad(theta: float) -> angle:
    """An angle in radians (Guppy's `angle` counts half-turns)."""
    return angle(theta / 3.141592653589793)


@guppy
def forward(z_h1: frozenarray[float, 2], image: int) -> None:
    # layer `h1`: 2 x `weak`(a = 0.5, g = 1, f = tanh)
    d_h1 = array(1.0 for _ in range(2))
    carried = array(qubit() for _ in range(2))
    for i in range(2):
        z = z_h1[image * 2 + i]
        last = 1.0
        q_b = qubit()
        ry(carried[i], rad(1.5707963267948966 * (last - tanh_approx(z / 0.5))))
        ry(q_b, rad(0.5707963267948966))
        cx(carried[i], q_b)
        if project_z(q_b):
            d_h1[i] = -1.0
        discard(q_b)
    # layer `h2`: 2 x `weak`(a = 0.5, g = 1, f = tanh)
    w_h2 = comptime(W_H2)
    b_h2 = comptime(B_H2)
    d_h2 = array(1.0 for _ in range(2))
    for i in range(2):
        z = b_h2[i]
        for j in range(2):
            z += w_h2[i * 2 + j] * d_h1[j]
        last = d_h1[i]
        q_b = qubit()
        ry(carried[i], rad(1.5707963267948966 * (last - tanh_approx(z / 0.5))))
        ry(q_b, rad(0.5707963267948966))
        cx(carried[i], q_b)
        if project_z(q_b):
            d_h2[i] = -1.0
        discard(q_b)
    discard_array(carried)
    result("h1", d_h1)
    result("h2", d_h2)


@guppy
def main() -> None:
    z_h1 = comptime(Z_H1)
    for image in range(1):
        forward(z_h1, image)


if __name__ == "__main__":
    import sys

    out = sys.argv[1] if len(sys.argv) > 1 else __file__.removesuffix(".py") + ".hugr"
    with open(out, "wb") as f:
        f.write(main.compile().to_bytes())
    print(f"wrote {out}")
