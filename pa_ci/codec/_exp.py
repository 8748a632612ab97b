"""exp in plain float arithmetic, for the FRAE's compiled kernels (sigmoid and tanh of the GRUs).

``_exp(x)`` is within 1 ulp of ``numpy.exp`` for x clamped to [-88, 88]: x = k ln2 + r with
|r| <= ln2 / 2 (the fdlibm split of ln 2), exp(r) by its degree-13 Taylor polynomial, times 2^k
built from its IEEE-754 bits. Arithmetic only, no libm call: the kernels' lane loops vectorise,
and the codec's output does not depend on the platform's math library. The same code runs in
float32 for a float32 argument (the training precision ``float32``): its constants are chosen by
the argument's type when the kernel compiles (:func:`_pick`, :func:`_like`).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir as llvm_ir
from numba import njit, types
from numba.extending import intrinsic

#: Compile options of every codec kernel: cached on disk; error_model="numpy" (no zero-division
#: branches: the divisors are >= 1).
_JIT = dict(cache=True, error_model="numpy")

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm split of ln 2: k * LN2_HI is exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10
#: |x| bound of exp's argument: sigmoid(-88) = 6e-39 and tanh(44) = 1.0 in float64.
_EXP_CLAMP = 88.0
#: The float32 counterparts (see _exp).
_EXP_CLAMP_32 = 87.0
_LN2_HI_32 = 0.693359375
_LN2_LO_32 = -2.12194440e-4


@intrinsic
def _pick(typingctx, x, v64, v32):
    """v64 when x is a float64, v32 (as a float32) when x is a float32: a constant chosen by
    x's type when the kernel compiles (float literals alone are float64 in Numba)."""
    if not isinstance(x, types.Float) or x.bitwidth not in (32, 64):
        return None

    def codegen(context, builder, signature, args):
        k = 1 if signature.return_type.bitwidth == 64 else 2
        return context.cast(builder, args[k], signature.args[k], signature.return_type)
    return x(x, v64, v32), codegen


@intrinsic
def _like(typingctx, x, v):
    """The float v in the float type of x."""
    if not isinstance(x, types.Float) or not isinstance(v, types.Number):
        return None

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[1], signature.args[1], signature.return_type)
    return x(x, v), codegen


@intrinsic
def _pow2(typingctx, kf):
    """2^k for an integral float kf (float64: k in [-1022, 1023]; float32: [-126, 127]), built
    from its IEEE-754 bits: (k + bias) << mantissa bits, reinterpreted (no libm call)."""
    if not isinstance(kf, types.Float) or kf.bitwidth not in (32, 64):
        return None

    def codegen(context, builder, signature, args):
        wide = signature.return_type.bitwidth == 64
        ity = llvm_ir.IntType(64 if wide else 32)
        k = builder.fptosi(args[0], ity)
        bits = builder.shl(builder.add(k, ity(1023 if wide else 127)), ity(52 if wide else 23))
        return builder.bitcast(bits, llvm_ir.DoubleType() if wide else llvm_ir.FloatType())
    return kf(kf), codegen


@njit(inline="always", **_JIT)
def _exp(x):
    """exp(x) in x's float type, x = k ln2 + r with |r| <= ln2 / 2, exp(r) by its degree-13
    Taylor polynomial, times 2^k from its bits. float64: within 1 ulp of libm for x clamped to
    [-88, 88] (truncation error < 5e-18; fdlibm's split of ln 2). float32 (the training precision
    ``float32``): within 2 ulp for x clamped to [-87, 87] (2^k stays normal; Cephes expf's split
    0.693359375 + -2.12194440e-4, whose 9-bit high part keeps k * LN2_HI exact)."""
    c = _pick(x, _EXP_CLAMP, _EXP_CLAMP_32)
    x = min(max(x, -c), c)
    kf = np.floor(x * _like(x, _LOG2E) + _like(x, 0.5))
    r = (x - kf * _pick(x, _LN2_HI, _LN2_HI_32)) - kf * _pick(x, _LN2_LO, _LN2_LO_32)
    p = _like(x, 1.6059043836821613e-10)      # 1/13!
    p = p * r + _like(x, 2.08767569878681e-09)
    p = p * r + _like(x, 2.505210838544172e-08)
    p = p * r + _like(x, 2.755731922398589e-07)
    p = p * r + _like(x, 2.7557319223985893e-06)
    p = p * r + _like(x, 2.48015873015873e-05)
    p = p * r + _like(x, 0.0001984126984126984)
    p = p * r + _like(x, 0.001388888888888889)
    p = p * r + _like(x, 0.008333333333333333)
    p = p * r + _like(x, 0.041666666666666664)
    p = p * r + _like(x, 0.16666666666666666)
    p = p * r + _like(x, 0.5)
    p = p * r + _like(x, 1.0)
    p = p * r + _like(x, 1.0)
    return p * _pow2(kf)


@njit(**_JIT)
def _exp_array(x, out):  # pragma: no cover - compiled; the tests check it against np.exp
    for i in range(x.shape[0]):
        out[i] = _exp(x[i])
