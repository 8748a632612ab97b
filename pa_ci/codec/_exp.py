"""exp in plain float arithmetic, for the FRAE's compiled kernels (sigmoid and tanh of the GRUs).

``_exp(x)`` is within 1 ulp of ``numpy.exp`` for x clamped to [-88, 88]: x = k ln2 + r with
|r| <= ln2 / 2 (the fdlibm split of ln 2), exp(r) by its degree-13 Taylor polynomial, times 2^k
built from its IEEE-754 bits. Arithmetic only, no libm call: the kernels' lane loops vectorise,
and the codec's output does not depend on the platform's math library.
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


@intrinsic
def _f64_from_bits(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 ``bits`` (a free register reinterpretation)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.DoubleType())
    return types.float64(types.int64), codegen


@njit(inline="always", **_JIT)
def _exp(x):
    """exp(x) within 1 ulp of libm for x clamped to [-88, 88]: x = k ln2 + r with |r| <= ln2 / 2,
    exp(r) by its degree-13 Taylor polynomial (truncation error < 5e-18), times 2^k from its bits."""
    x = min(max(x, -_EXP_CLAMP), _EXP_CLAMP)
    kf = np.floor(x * _LOG2E + 0.5)
    r = (x - kf * _LN2_HI) - kf * _LN2_LO
    p = 1.6059043836821613e-10      # 1/13!
    p = p * r + 2.08767569878681e-09
    p = p * r + 2.505210838544172e-08
    p = p * r + 2.755731922398589e-07
    p = p * r + 2.7557319223985893e-06
    p = p * r + 2.48015873015873e-05
    p = p * r + 0.0001984126984126984
    p = p * r + 0.001388888888888889
    p = p * r + 0.008333333333333333
    p = p * r + 0.041666666666666664
    p = p * r + 0.16666666666666666
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return p * _f64_from_bits((np.int64(kf) + 1023) << 52)


@njit(**_JIT)
def _exp_array(x, out):  # pragma: no cover - compiled; the tests check it against np.exp
    for i in range(x.shape[0]):
        out[i] = _exp(x[i])
