"""numba kernels of the simulator's small-batch paths (imported only when numba is
enabled, `qnnc.runtime.counter_rng.numba_enabled`).

* `fill_u32` / `fill_u64`: the counter-based uniform fields (`counter_rng`), one pass.
* `eval_angles` / `eval_angle_dual`: a neuron's closed-form angle (the one semantics,
  `qnnc.compiler.angles`), compiled once by `qnnc.runtime.fused.compile_angle` into a
  small stack program, evaluated op by op over a vector, or per element with its
  derivative (the exact path).
* `sample_chain`: a whole sampled pass of a chain of R_y fast-path neuron layers and
  classical layers, rows in cache-sized blocks through all layers: per layer the matrix
  product (pattern tables for ±1 inputs), the angle, the threshold, the random value
  and the sample, each one simple vectorisable loop, in owned buffers; float32 samples
  decided by `decide_f32` (float32 cosine, exact threshold near the boundary).
* `dp_forward` / `dp_backward`: the dynamic programme over layers of the exact path
  (`qnnc.runtime.exact_dp`) and its written-out gradient.

The sampler's arithmetic is in the dtype of the arrays (float32 or float64), in the
order of the torch paths; the cosine (`cos_poly`, fdlibm's kernels, not torch's
vectorised one), other transcendental functions (libm's) and the order of summation in
the matrix products can differ in the last bit. The exact DP works in float64.

Kernels are compiled on first use and cached on disk (numba's `cache=True`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_S9 = np.uint32(9)
_S12 = np.uint64(12)
_ONE1 = np.uint64(1)
_LOW = np.uint64(0xFFFFFFFF)
_EXP32 = np.uint32(0x3F800000)
_EXP64 = np.uint64(0x3FF0000000000000)


@njit(cache=True, nogil=True, inline="always")
def _mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True, inline="always")
def _draw(seed, j):
    return _mix64(seed + (np.uint64(j) + _ONE1) * _G)


@njit(cache=True, nogil=True)
def fill_u32(seed, start, bits):
    n = bits.shape[0]
    for t in range(n):
        i = start + t
        d = _draw(seed, i >> 1)
        w = (d >> _S32) if (i & 1) else (d & _LOW)
        bits[t] = (np.uint32(w) >> _S9) | _EXP32


@njit(cache=True, nogil=True)
def fill_u64(seed, start, bits):
    n = bits.shape[0]
    for t in range(n):
        bits[t] = (_draw(seed, start + t) >> _S12) | _EXP64


@njit(cache=True, nogil=True, inline="always")
def _uniform12(seed, i, f32):
    """Value i of a field as a float64 (exact: 1 + j 2^-m)."""
    if f32:
        d = _draw(seed, i >> 1)
        w = (d >> _S32) if (i & 1) else (d & _LOW)
        return 1.0 + float(w >> _S9) * (1.0 / 8388608.0)
    return 1.0 + float(_draw(seed, i) >> _S12) * (1.0 / 4503599627370496.0)


# ------------------------------------------------------------------ angle programs

# Opcodes (arg: index into the constants for CONST). Keep in step with fused.compile_angle.
CONST, Z, NEG, ADD, SUB, MUL, DIV, POW, SIGN = 0, 1, 2, 3, 4, 5, 6, 7, 8
SIN, COS, TAN, ASIN, ACOS, ATAN, EXP, LOG, SQRT, TANH, ABS, CLIP1 = 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21
CLIP, MIN, MAX = 22, 23, 24
ADDC, SUBC, MULC, DIVC, POWC, RSUBC, RDIVC, RPOWC = 25, 26, 27, 28, 29, 30, 31, 32  # x op c / c op x


@njit(cache=True, nogil=True)
def eval_angle_dual(prog, pstart, pend, consts, z, stack, dstack):
    """(θ(z), dθ/dz), with autograd's conventions: clamp passes the gradient on its
    closed interval, sign has derivative 0, abs has sign(x) with 0 at 0."""
    sp = 0
    for i in range(pstart, pend):
        op = prog[i, 0]
        if op >= ADDC:
            c = consts[prog[i, 1]]
            a = stack[sp - 1]
            da = dstack[sp - 1]
            if op == ADDC:
                stack[sp - 1] = a + c
            elif op == SUBC:
                stack[sp - 1] = a - c
            elif op == MULC:
                stack[sp - 1] = a * c
                dstack[sp - 1] = da * c
            elif op == DIVC:
                stack[sp - 1] = a / c
                dstack[sp - 1] = da / c
            elif op == POWC:
                stack[sp - 1] = a ** c
                dstack[sp - 1] = c * a ** (c - 1.0) * da
            elif op == RSUBC:
                stack[sp - 1] = c - a
                dstack[sp - 1] = -da
            elif op == RDIVC:
                stack[sp - 1] = c / a
                dstack[sp - 1] = -c * da / (a * a)
            else:
                v = c ** a
                stack[sp - 1] = v
                dstack[sp - 1] = v * math.log(c) * da
        elif op == CONST:
            stack[sp] = consts[prog[i, 1]]
            dstack[sp] = 0.0
            sp += 1
        elif op == Z:
            stack[sp] = z
            dstack[sp] = 1.0
            sp += 1
        elif op == NEG:
            stack[sp - 1] = -stack[sp - 1]
            dstack[sp - 1] = -dstack[sp - 1]
        elif op <= POW:
            sp -= 1
            a = stack[sp - 1]
            b = stack[sp]
            da = dstack[sp - 1]
            db = dstack[sp]
            if op == ADD:
                stack[sp - 1] = a + b
                dstack[sp - 1] = da + db
            elif op == SUB:
                stack[sp - 1] = a - b
                dstack[sp - 1] = da - db
            elif op == MUL:
                stack[sp - 1] = a * b
                dstack[sp - 1] = da * b + a * db
            elif op == DIV:
                stack[sp - 1] = a / b
                dstack[sp - 1] = (da * b - a * db) / (b * b)
            else:
                v = a ** b
                stack[sp - 1] = v
                g = 0.0
                if da != 0.0:
                    g += b * a ** (b - 1.0) * da
                if db != 0.0:
                    g += v * math.log(a) * db
                dstack[sp - 1] = g
        elif op == SIGN:
            stack[sp - 1] = 1.0 if stack[sp - 1] >= 0 else -1.0
            dstack[sp - 1] = 0.0
        elif op <= CLIP1:
            a = stack[sp - 1]
            da = dstack[sp - 1]
            if op == SIN:
                stack[sp - 1] = math.sin(a)
                dstack[sp - 1] = math.cos(a) * da
            elif op == COS:
                stack[sp - 1] = math.cos(a)
                dstack[sp - 1] = -math.sin(a) * da
            elif op == TAN:
                t = math.tan(a)
                stack[sp - 1] = t
                dstack[sp - 1] = (1.0 + t * t) * da
            elif op == ASIN:
                stack[sp - 1] = math.asin(a)
                dstack[sp - 1] = da / math.sqrt(1.0 - a * a)
            elif op == ACOS:
                stack[sp - 1] = math.acos(a)
                dstack[sp - 1] = -da / math.sqrt(1.0 - a * a)
            elif op == ATAN:
                stack[sp - 1] = math.atan(a)
                dstack[sp - 1] = da / (1.0 + a * a)
            elif op == EXP:
                e = math.exp(a)
                stack[sp - 1] = e
                dstack[sp - 1] = e * da
            elif op == LOG:
                stack[sp - 1] = math.log(a)
                dstack[sp - 1] = da / a
            elif op == SQRT:
                s = math.sqrt(a)
                stack[sp - 1] = s
                dstack[sp - 1] = da / (2.0 * s)
            elif op == TANH:
                t = math.tanh(a)
                stack[sp - 1] = t
                dstack[sp - 1] = (1.0 - t * t) * da
            elif op == ABS:
                stack[sp - 1] = abs(a)
                dstack[sp - 1] = (da if a > 0 else (-da if a < 0 else 0.0))
            else:
                stack[sp - 1] = min(max(a, -1.0), 1.0)
                dstack[sp - 1] = da if (a >= -1.0 and a <= 1.0) else 0.0
        elif op == CLIP:
            sp -= 2
            a = stack[sp - 1]
            lo = stack[sp]
            hi = stack[sp + 1]
            stack[sp - 1] = min(max(a, lo), hi)
            dstack[sp - 1] = dstack[sp - 1] if (a >= lo and a <= hi) else (dstack[sp] if a < lo else dstack[sp + 1])
        else:
            sp -= 1
            a = stack[sp - 1]
            b = stack[sp]
            if op == MIN:
                stack[sp - 1] = min(a, b)
                dstack[sp - 1] = dstack[sp - 1] if a <= b else dstack[sp]
            else:
                stack[sp - 1] = max(a, b)
                dstack[sp - 1] = dstack[sp - 1] if a >= b else dstack[sp]
    return stack[0], dstack[0]


@njit(cache=True, nogil=True)
def eval_angles(prog, pstart, pend, consts, z, M, S):
    """θ of the program prog[pstart:pend] for z[0:M], op by op over the whole vector
    (each op one simple loop); the result is S[0, :M]. S: [stack depth, >= M] in the
    dtype the arithmetic is done in."""
    sp = 0
    for i in range(pstart, pend):
        op = prog[i, 0]
        if op >= ADDC:
            c = consts[prog[i, 1]]
            t = sp - 1
            if op == ADDC:
                for m in range(M):
                    S[t, m] = S[t, m] + c
            elif op == SUBC:
                for m in range(M):
                    S[t, m] = S[t, m] - c
            elif op == MULC:
                for m in range(M):
                    S[t, m] = S[t, m] * c
            elif op == DIVC:
                for m in range(M):
                    S[t, m] = S[t, m] / c
            elif op == POWC:
                for m in range(M):
                    S[t, m] = S[t, m] ** c
            elif op == RSUBC:
                for m in range(M):
                    S[t, m] = c - S[t, m]
            elif op == RDIVC:
                for m in range(M):
                    S[t, m] = c / S[t, m]
            else:
                for m in range(M):
                    S[t, m] = c ** S[t, m]
        elif op == CONST:
            c = consts[prog[i, 1]]
            for m in range(M):
                S[sp, m] = c
            sp += 1
        elif op == Z:
            for m in range(M):
                S[sp, m] = z[m]
            sp += 1
        elif op == NEG:
            for m in range(M):
                S[sp - 1, m] = -S[sp - 1, m]
        elif op <= POW:
            sp -= 1
            t = sp - 1
            if op == ADD:
                for m in range(M):
                    S[t, m] = S[t, m] + S[sp, m]
            elif op == SUB:
                for m in range(M):
                    S[t, m] = S[t, m] - S[sp, m]
            elif op == MUL:
                for m in range(M):
                    S[t, m] = S[t, m] * S[sp, m]
            elif op == DIV:
                for m in range(M):
                    S[t, m] = S[t, m] / S[sp, m]
            else:
                for m in range(M):
                    S[t, m] = S[t, m] ** S[sp, m]
        elif op == SIGN:
            for m in range(M):
                S[sp - 1, m] = 1.0 if S[sp - 1, m] >= 0 else -1.0
        elif op <= CLIP1:
            t = sp - 1
            if op == SIN:
                for m in range(M):
                    S[t, m] = math.sin(S[t, m])
            elif op == COS:
                for m in range(M):
                    S[t, m] = math.cos(S[t, m])
            elif op == TAN:
                for m in range(M):
                    S[t, m] = math.tan(S[t, m])
            elif op == ASIN:
                for m in range(M):
                    S[t, m] = math.asin(S[t, m])
            elif op == ACOS:
                for m in range(M):
                    S[t, m] = math.acos(S[t, m])
            elif op == ATAN:
                for m in range(M):
                    S[t, m] = math.atan(S[t, m])
            elif op == EXP:
                for m in range(M):
                    S[t, m] = math.exp(S[t, m])
            elif op == LOG:
                for m in range(M):
                    S[t, m] = math.log(S[t, m])
            elif op == SQRT:
                for m in range(M):
                    S[t, m] = math.sqrt(S[t, m])
            elif op == TANH:
                for m in range(M):
                    S[t, m] = math.tanh(S[t, m])
            elif op == ABS:
                for m in range(M):
                    S[t, m] = abs(S[t, m])
            else:
                for m in range(M):
                    v = S[t, m]
                    S[t, m] = -1.0 if v < -1.0 else (1.0 if v > 1.0 else v)
        elif op == CLIP:
            sp -= 2
            t = sp - 1
            for m in range(M):
                S[t, m] = min(max(S[t, m], S[sp, m]), S[sp + 1, m])
        else:
            sp -= 1
            t = sp - 1
            if op == MIN:
                for m in range(M):
                    S[t, m] = min(S[t, m], S[sp, m])
            else:
                for m in range(M):
                    S[t, m] = max(S[t, m], S[sp, m])


# ------------------------------------------------------------------ cosine

# Cody-Waite pieces of pi/2 (fdlibm's: 33 bits each, so k * piece is exact for |k| < 2^20)
_PIO2_1 = 1.57079632673412561417e+00
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_3 = 2.02226624871116645580e-21
_TWO_OVER_PI = 6.36619772367581382433e-01
# fdlibm's minimax kernels on [-pi/4, pi/4]
_S1, _S2, _S3 = -1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04
_S4, _S5, _S6 = 2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10
_C1, _C2, _C3 = 4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05
_C4, _C5, _C6 = -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11
COS_MAX_ARG = 1.0e5  # beyond it the kernels call libm's cos


@njit(cache=True, nogil=True, inline="always")
def cos_poly(x):
    """cos(x) for |x| <= COS_MAX_ARG, in float64, branch-free (so loops of it vectorise):
    Cody-Waite reduction by pi/2 and fdlibm's kernels; within ~1 ulp of libm's cos,
    clamped to [-1, 1]."""
    k = np.floor(x * _TWO_OVER_PI + 0.5)
    r = ((x - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3
    z = r * r
    s = r + r * z * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))))
    c = 1.0 - 0.5 * z + z * z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * _C6)))))
    q = np.int64(k) & 3  # cos(k pi/2 + r): cos r, -sin r, -cos r, sin r
    v = s if (q & 1) == 1 else c
    v = -v if (q == 1 or q == 2) else v
    return min(max(v, -1.0), 1.0)


@njit(cache=True, nogil=True)
def _all_small(S, M):
    big = False
    for m in range(M):
        big |= not (abs(S[0, m]) <= COS_MAX_ARG)
    return not big


@njit(cache=True, nogil=True)
def thresholds(S, M, half, m15, out):
    """out[m] = -3/2 + cos(θ_m)/2 for θ = S[0, :M] (the R_y fast path's threshold, in the
    dtype of out: cos rounded to it, then the sum, as the torch path rounds)."""
    big = False
    for m in range(M):
        big |= not (abs(S[0, m]) <= COS_MAX_ARG)
    if big:
        for m in range(M):
            out[m] = m15 + half * math.cos(S[0, m])
        return
    c = out  # cos first, into out, rounded to its dtype
    for m in range(M):
        c[m] = cos_poly(np.float64(S[0, m]))
    for m in range(M):
        out[m] = m15 + half * c[m]


# ------------------------------------------------------------------ float32 decisions

# pi/2 in two float32 pieces (the first with 8 significant bits: k * piece is exact)
_F32_PIO2_1 = np.float32(1.5703125)
_F32_PIO2_2 = np.float32(math.pi / 2 - 1.5703125)
_F32_2_OVER_PI = np.float32(2 / math.pi)
COS32_MAX_ARG = 64.0  # |θ| beyond it: the exact threshold
# Largest |cos32(θ) - cos θ| for |θ| <= COS32_MAX_ARG is below 1e-6 (tests/test_simulator.py
# checks it on a dense grid); the decision margin leaves a factor of 7 on top of that bound
# and of the threshold's own rounding (< 2e-7).
DECIDE_MARGIN = 2.0 ** -16


@njit(cache=True, nogil=True, inline="always")
def cos32(x):
    """cos(x) in float32 arithmetic (Cody-Waite reduction by pi/2, Taylor polynomials to
    r^7 and r^8 on [-pi/4, pi/4]), within 1e-6 of cos for |x| <= COS32_MAX_ARG (about
    4e-7); branch free, so loops of it vectorise."""
    x = np.float32(x)
    k = np.floor(x * _F32_2_OVER_PI + np.float32(0.5))
    r = (x - k * _F32_PIO2_1) - k * _F32_PIO2_2
    z = r * r
    s = r * (np.float32(1.0) + z * (np.float32(-1.0 / 6) + z * (np.float32(1.0 / 120) + z * np.float32(-1.0 / 5040))))
    c = np.float32(1.0) + z * (np.float32(-0.5) + z * (np.float32(1.0 / 24) + z * (np.float32(-1.0 / 720) + z * (
        np.float32(1.0 / 40320)))))
    q = np.int32(k) & 3  # cos(k pi/2 + r): cos r, -sin r, -cos r, sin r
    v = s if (q & 1) == 1 else c
    return -v if (q == 1 or q == 2) else v


@njit(cache=True, nogil=True)
def decide_f32(S, M, half, m15, fbuf, neg, margin, tmp):
    """neg[m] = 1 where the sample of θ = S[0, m] with random value fbuf[m] is -1, i.e.
    fbuf[m] + t < 0 for the threshold t = -3/2 + cos(θ)/2 as `thresholds` rounds it,
    decided from cos32 where the sum is at least `margin` from 0 (cos32's error cannot
    flip the sign there) and from the exact threshold elsewhere (at most 2 margin of the
    values: 3 in 10^5): the same samples as `thresholds`, at float32 vector speed.
    tmp: [M] work space (float32)."""
    mg = np.float32(margin)
    for m in range(M):
        th = S[0, m]
        x = fbuf[m] + (m15 + half * cos32(th))
        tmp[m] = x if abs(th) <= COS32_MAX_ARG else np.nan  # (NaN: unsure below)
        neg[m] = 1 if x < 0 else 0
    unsure = 0
    for m in range(M):
        unsure |= 0 if abs(tmp[m]) >= mg else 1
    if unsure == 0:
        return
    if not _all_small(S, M):
        thresholds(S, M, half, m15, tmp)  # (libm's cos for the whole layer, as thresholds)
        for m in range(M):
            neg[m] = 1 if fbuf[m] + tmp[m] < 0 else 0
        return
    one = np.empty(1, tmp.dtype)
    for m in range(M):
        if not abs(tmp[m]) >= mg:
            one[0] = cos_poly(np.float64(S[0, m]))  # rounded to the dtype, as thresholds
            t = m15 + half * one[0]
            neg[m] = 1 if fbuf[m] + t < 0 else 0


# ------------------------------------------------------------------ the fused sampler

NEURON, SIGN_ACT, RELU, TANH_ACT, LINEAR = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def field_seed2(e0, e1, k0, k1):
    """`counter_rng.field_seed((e0, e1), (k0, k1))`."""
    h = _mix64(e0 + _G)
    h = _mix64(h ^ e1)
    h = _mix64(h + (np.uint64(k0) + _ONE1) * _G)
    return _mix64(h + (np.uint64(k1) + _ONE1) * _G)


# Columns of the sampler's layer table.
M_KIND, M_SIZE, M_W, M_B, M_T, M_P0, M_P1, M_KEY = 0, 1, 2, 3, 4, 5, 6, 7


_EXP32_64 = np.uint64(0x3F800000)
_MANT32 = np.uint64(0x007FFFFF)
_S41 = np.uint64(41)
_S56 = np.uint64(56)
_ZERO64 = np.uint64(0)
# Bytes b_0 .. b_7 (each 0 or 1, b_0 least significant) times this, shifted right by 56,
# give the 8-bit number with bit i = b_i.
_GATHER8 = np.uint64(0x0102040810204080)


@njit(cache=True, nogil=True, inline="always")
def _fill_field(seed, start, M, f32, fbuf):
    """Values start .. start+M-1 of a field (seed) as uniform_12 values into fbuf[0:M]
    (fbuf's dtype: float32 or float64, at least M rounded up to even long). float32
    (start even): one draw per pair of values (value 2j is the low word of draw j,
    2j + 1 its high word, as `fill_u32`), written as one 64-bit word; float64: one draw
    per value."""
    bits = fbuf.view(np.uint64)
    if f32:
        j0 = start >> 1
        for j in range((M + 1) >> 1):
            d = _draw(seed, j0 + j)
            bits[j] = ((d >> _S9) & _MANT32) | _EXP32_64 | (((d >> _S41) | _EXP32_64) << _S32)
    else:
        for j in range(M):
            bits[j] = (_draw(seed, start + j) >> _S12) | _EXP64


@njit(cache=True, nogil=True)
def sample_chain(z1, shots, entropy, meta, params, prog, f32, block, buf_a, buf_b, thr0, out, S, fbuf, pats,
                 margin):
    """One sampled pass of B images x `shots`, rows r = b * shots + s. z1 [B, N0]: the
    first layer's pre-activation (bias included), the first layer a neuron layer.
    meta [L, 8]: per layer its kind, size, and offsets into `params` of its weights
    (transposed, [fan_in, size]), bias (-1: none) and pattern tables (`build_tables`,
    -1: none; used instead of the weights, the inputs being ±1), its angle program
    prog[p0:p1] (constants in params), and the key of its field. params[0:2] = [0.5,
    -1.5]. Neuron layers draw value r * N + n of field (key, 1) of the pass's entropy.
    The rows go through all layers in blocks of `block` rows (even), so that the work
    stays in cache: buf_a, buf_b: [block * max width]; S [depth, block * max width];
    fbuf [block * max width + 2] (the dtype's random values); pats [block * groups of
    8 of the max width] (uint64: a neuron layer's outcomes as 8-bit patterns for the
    next layer's tables); thr0 [B * N0]. `margin`: float32 samples after the first
    layer are decided by `decide_f32` with it (0: exact thresholds). Writes the last
    layer's values into out [rows, size]. False when z1 is not finite (the caller's
    general path reports it).

    Per layer each step is one simple loop over the block's values (the matrix product
    by rows, the angle op by op, the cosine, the random field, the comparison), so that
    the compiler vectorises them."""
    B, N0 = z1.shape
    half = params[0]
    m15 = params[1]
    e0 = entropy[0]
    e1 = entropy[1]
    for b in range(B):
        for n in range(N0):
            v = z1[b, n]
            if not math.isfinite(v):
                return False
            thr0[b * N0 + n] = v
    cap = S.shape[1]
    for c0 in range(0, B * N0, cap):
        c = min(cap, B * N0 - c0)
        eval_angles(prog, meta[0, M_P0], meta[0, M_P1], params, thr0[c0:], c, S)
        thresholds(S, c, half, m15, thr0[c0:c0 + c])
    rows = B * shots
    L = meta.shape[0]
    seeds = np.empty(L, np.uint64)
    for l in range(L):
        seeds[l] = field_seed2(e0, e1, meta[l, M_KEY], 1)
    for r0 in range(0, rows, block):
        R = min(block, rows - r0)
        src = buf_a
        dst = buf_b
        K = N0
        have_pats = False  # the previous layer's outcomes are in pats (its floats are not written)
        written = False  # the last layer wrote out
        for l in range(L):
            N = meta[l, M_SIZE]
            kind = meta[l, M_KIND]
            M = R * N
            if l > 0:
                wo = meta[l, M_W]
                bo = meta[l, M_B]
                to = meta[l, M_T]
                G = (K + 7) // 8
                if to >= 0:  # z = Σ_q T_q[pattern of inputs 4q .. 4q+3]: one add per 4 inputs
                    if not have_pats:
                        for r in range(R):
                            for g in range(G):
                                pat = _ZERO64
                                for k in range(8 * g, min(K, 8 * g + 8)):
                                    if src[r * K + k] < 0:
                                        pat |= _ONE1 << np.uint64(k - 8 * g)
                                pats[r * G + g] = pat
                    # (the sums in the order 0 + T_0 + T_1 + ... + bias, as the product's
                    # loop below: 0 + v is v but for the sign of a zero, which no angle reads)
                    Q = (K + 3) // 4
                    for r in range(R):
                        o = r * N
                        p8 = np.int64(pats[r * G])
                        row = to + (p8 & 15) * N
                        if Q == 4:
                            p8b = np.int64(pats[r * G + 1])
                            row1 = to + (16 + (p8 >> 4)) * N
                            row2 = to + (32 + (p8b & 15)) * N
                            row3 = to + (48 + (p8b >> 4)) * N
                            for n in range(N):
                                dst[o + n] = ((params[row + n] + params[row1 + n]) + params[row2 + n]) + params[row3 + n]
                        else:
                            for n in range(N):
                                dst[o + n] = params[row + n]
                            for q in range(1, Q):
                                pq = (np.int64(pats[r * G + (q >> 1)]) >> (4 * (q & 1))) & 15
                                row = to + (q * 16 + pq) * N
                                for n in range(N):
                                    dst[o + n] += params[row + n]
                        if bo >= 0:
                            for n in range(N):
                                dst[o + n] += params[bo + n]
                else:
                    for r in range(R):
                        o = r * N
                        for n in range(N):
                            dst[o + n] = 0.0
                        for k in range(K):
                            dk = src[r * K + k]
                            row = wo + k * N
                            for n in range(N):
                                dst[o + n] += dk * params[row + n]
                        if bo >= 0:
                            for n in range(N):
                                dst[o + n] += params[bo + n]
            have_pats = False
            if kind == NEURON:
                _fill_field(seeds[l], r0 * N, M, f32, fbuf)
                neg = pats.view(np.uint8)  # 1 where the outcome is -1 (M <= its size)
                if l == 0:
                    img = r0 // shots  # the image of row r0 + r, counted up
                    s = r0 - img * shots
                    for r in range(R):
                        tb = img * N
                        for n in range(N):
                            neg[r * N + n] = 1 if fbuf[r * N + n] + thr0[tb + n] < 0 else 0
                        s += 1
                        if s == shots:
                            s = 0
                            img += 1
                else:
                    eval_angles(prog, meta[l, M_P0], meta[l, M_P1], params, dst, M, S)
                    if f32 and margin > 0:
                        decide_f32(S, M, half, m15, fbuf, neg, margin, dst)
                    else:
                        thresholds(S, M, half, m15, dst)  # the threshold -3/2 + cos(θ)/2, as torch rounds it
                        for m in range(M):
                            neg[m] = 1 if fbuf[m] + dst[m] < 0 else 0
                if l + 1 < L and meta[l + 1, M_T] >= 0 and N % 8 == 0:
                    # the outcomes as the next layer's table patterns (bit k - 8g of pattern
                    # g of a row set where outcome k is -1): 8 bytes -> 8 bits by one multiply
                    for j in range(M >> 3):
                        pats[j] = (pats[j] * _GATHER8) >> _S56
                    have_pats = True
                elif l == L - 1:  # the values handed out: straight into out
                    for r in range(R):
                        for n in range(N):
                            out[r0 + r, n] = 1.0 - 2.0 * neg[r * N + n]
                    written = True
                else:
                    for m in range(M):
                        dst[m] = 1.0 - 2.0 * neg[m]
            elif kind == SIGN_ACT:
                for m in range(M):
                    dst[m] = 1.0 if dst[m] >= 0 else -1.0
            elif kind == RELU:
                for m in range(M):
                    if dst[m] < 0:
                        dst[m] = 0.0
            elif kind == TANH_ACT:
                for m in range(M):
                    dst[m] = math.tanh(dst[m])
            K = N
            src, dst = dst, src
        if not written:
            N = meta[L - 1, M_SIZE]
            for r in range(R):
                for n in range(N):
                    out[r0 + r, n] = src[r * N + n]
    return True


@njit(cache=True, nogil=True)
def build_tables(w_flat, wo, K, N, tables, to):
    """T_q[p, n] = Σ_{k in group q} s_k(p) W[n, k], s_k(p) = -1 where bit k - 4q of the
    4-bit pattern p is set (the group's first input the least significant bit), for the
    groups of 4 inputs of a layer whose inputs are ±1 (16 rows of the layer's width per
    group: the tables of a 16-wide layer fit in 4 KB); W transposed at wo of w_flat
    ([K, N]). The sum runs in the order of k, as the product's."""
    Q = (K + 3) // 4
    for q in range(Q):
        k0 = 4 * q
        k1 = min(K, k0 + 4)
        width = k1 - k0
        for p in range(16):
            row = to + (q * 16 + p) * N
            for n in range(N):
                tables[row + n] = 0.0
            if p >> width:
                continue  # bits beyond the group's inputs: never used
            for k in range(k0, k1):
                neg = (p >> (k - k0)) & 1
                wr = wo + k * N
                for n in range(N):
                    if neg:
                        tables[row + n] -= w_flat[wr + n]
                    else:
                        tables[row + n] += w_flat[wr + n]


# ------------------------------------------------------------------ the exact DP over layers

# Columns of the DP's layer table (neuron layers, then the readout row when there is one).
D_N, D_K, D_W, D_B, D_P0, D_P1, D_C, D_SL, D_P, D_T = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9


@njit(cache=True, nogil=True, inline="always")
def _pm(m, N, n):
    """s_n(m): +1 for digit 0, -1 for digit 1 of pattern m (first neuron most significant)."""
    return 1.0 - 2.0 * ((m >> (N - 1 - n)) & 1)


@njit(cache=True, nogil=True)
def dp_forward(x, L, meta, params, prog, work, E, stack, dstack):
    """The dynamic programme over L neuron layers (see `qnnc.runtime.exact_dp`), then the
    readout meta[L] when E has columns (E [B, C] = P_L (S_L W^T + b)). meta[l]: size N,
    fan-in K, offsets of W ([N, K]) and b (-1: none) in params, the angle program
    prog[p0:p1], and offsets in `work` of c = cos θ and its slope dc/dz ([rows, N]), of
    P_l ([B, 2^N]) and of T_l ([2^N_{l-1}, 2^N], l >= 1). The readout row holds C, K,
    W, b and the offset of out ([2^N_L, C]). Returns False when the result is not
    finite (the caller's general path reports it)."""
    B = x.shape[0]
    for l in range(L):
        N = meta[l, D_N]
        K = meta[l, D_K]
        wo = meta[l, D_W]
        bo = meta[l, D_B]
        co = meta[l, D_C]
        so = meta[l, D_SL]
        rows = B if l == 0 else (1 << K)
        M = 1 << N
        for row in range(rows):
            for n in range(N):
                z = 0.0 * params[0]
                for k in range(K):
                    src = x[row, k] if l == 0 else _pm(row, K, k)
                    z += src * params[wo + n * K + k]
                if bo >= 0:
                    z += params[bo + n]
                th, dth = eval_angle_dual(prog, meta[l, D_P0], meta[l, D_P1], params, z, stack, dstack)
                work[co + row * N + n] = math.cos(th)
                work[so + row * N + n] = -math.sin(th) * dth
        # J[row, m] = Π_n (1 + s_n(m) c[row, n]) / 2: into P_0 (l = 0) or T_l
        jo = meta[l, D_P] if l == 0 else meta[l, D_T]
        for row in range(rows):
            for m in range(M):
                j = 1.0
                for n in range(N):
                    j *= 0.5 + 0.5 * _pm(m, N, n) * work[co + row * N + n]
                work[jo + row * M + m] = j
        if l > 0:
            Mp = 1 << K
            po = meta[l - 1, D_P]
            pn = meta[l, D_P]
            for b in range(B):
                for m in range(M):
                    work[pn + b * M + m] = 0.0
                for mp in range(Mp):
                    pv = work[po + b * Mp + mp]
                    for m in range(M):
                        work[pn + b * M + m] += pv * work[jo + mp * M + m]
    C = E.shape[1]
    ML = 1 << meta[L - 1, D_N]
    pL = meta[L - 1, D_P]
    if C > 0:
        K = meta[L, D_K]
        wo = meta[L, D_W]
        bo = meta[L, D_B]
        oo = meta[L, D_C]
        for m in range(ML):
            for c in range(C):
                v = 0.0 * params[0]
                for k in range(K):
                    v += _pm(m, K, k) * params[wo + c * K + k]
                if bo >= 0:
                    v += params[bo + c]
                work[oo + m * C + c] = v
        total = 0.0
        for b in range(B):
            for c in range(C):
                e = 0.0 * params[0]
                for m in range(ML):
                    e += work[pL + b * ML + m] * work[oo + m * C + c]
                E[b, c] = e
                total += e
        return math.isfinite(total)
    total = 0.0
    for i in range(B * ML):
        total += work[pL + i]
    return math.isfinite(total)


@njit(cache=True, nogil=True)
def dp_backward(x, L, meta, params, work, dE, dPL, grads, dx, need_dx, scratch):
    """The gradient of `dp_forward`: dE [B, C] (or, without a readout, dPL [B, 2^N_L])
    given; accumulates into grads (params' layout: W and b at their offsets) and, with
    need_dx, dx [B, F]. scratch: [4, B * 2^max N + 2^(2 max N) + 2 max N + 2] work space."""
    B = x.shape[0]
    C = dE.shape[1]
    NL = meta[L - 1, D_N]
    ML = 1 << NL
    pL = meta[L - 1, D_P]
    dP = scratch[0]
    dPn = scratch[1]
    dJ = scratch[2]
    small = scratch[3]
    if C > 0:
        K = meta[L, D_K]
        wo = meta[L, D_W]
        bo = meta[L, D_B]
        oo = meta[L, D_C]
        for c in range(C):
            for m in range(ML):
                d = 0.0
                for b in range(B):
                    d += work[pL + b * ML + m] * dE[b, c]
                if bo >= 0:
                    grads[bo + c] += d
                for k in range(K):
                    grads[wo + c * K + k] += d * _pm(m, K, k)
        for b in range(B):
            for m in range(ML):
                d = 0.0
                for c in range(C):
                    d += dE[b, c] * work[oo + m * C + c]
                dP[b * ML + m] = d
    else:
        for b in range(B):
            for m in range(ML):
                dP[b * ML + m] = dPL[b, m]
    for l in range(L - 1, -1, -1):
        N = meta[l, D_N]
        K = meta[l, D_K]
        M = 1 << N
        wo = meta[l, D_W]
        bo = meta[l, D_B]
        co = meta[l, D_C]
        so = meta[l, D_SL]
        if l > 0:
            Mp = 1 << K
            po = meta[l - 1, D_P]
            to = meta[l, D_T]
            rows = Mp
            for mp in range(Mp):
                for m in range(M):
                    d = 0.0
                    for b in range(B):
                        d += work[po + b * Mp + mp] * dP[b * M + m]
                    dJ[mp * M + m] = d
            for b in range(B):
                for mp in range(Mp):
                    d = 0.0
                    for m in range(M):
                        d += dP[b * M + m] * work[to + mp * M + m]
                    dPn[b * Mp + mp] = d
        else:
            rows = B
            for i in range(B * M):
                dJ[i] = dP[i]
        # dc[row, n] = Σ_m dJ[row, m] s_n(m)/2 Π_{j≠n} R_j(row, m), R_j = (1 + s_j(m) c_j)/2
        pre = small[0:N + 1]
        for row in range(rows):
            for n in range(N):
                small[N + 1 + n] = 0.0  # dc accumulators
            for m in range(M):
                g = dJ[row * M + m]
                if g == 0.0:
                    continue
                pre[0] = 1.0
                for n in range(N):
                    pre[n + 1] = pre[n] * (0.5 + 0.5 * _pm(m, N, n) * work[co + row * N + n])
                suf = 1.0
                for n in range(N - 1, -1, -1):
                    small[N + 1 + n] += g * 0.5 * _pm(m, N, n) * pre[n] * suf
                    suf *= 0.5 + 0.5 * _pm(m, N, n) * work[co + row * N + n]
            for n in range(N):
                dz = small[N + 1 + n] * work[so + row * N + n]
                if dz == 0.0:
                    continue
                if bo >= 0:
                    grads[bo + n] += dz
                for k in range(K):
                    src = x[row, k] if l == 0 else _pm(row, K, k)
                    grads[wo + n * K + k] += dz * src
                    if l == 0 and need_dx:
                        dx[row, k] += dz * params[wo + n * K + k]
        if l > 0:
            dP, dPn = dPn, dP
    return True
