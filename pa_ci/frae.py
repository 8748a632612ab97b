"""FRAE: the zero-delay feedback recurrent autoencoder that codes stimulation patterns.

Written from ``specs/frae_spsa_research.md`` §3 (structure, GRU convention, sizes, VQ) and §5
(streaming API), with the defaults of ``specs/DECISIONS.md`` ("FRAE codec"). One frame t, with
all states zero at the start of every item (utterance or stream)::

    s_t = GRU_enc([x_t ; h_{t-1}], s_{t-1})      encoder; h_{t-1} is the decoder state (feedback)
    z_t = W_lat s_t + b_lat                      linear latent (D values)
    i_t = argmin_k ||z_t - C_k||^2               VQ, ties -> lowest k; i_t is all that is sent
    h_t = GRU_dec(C[i_t], h_{t-1})               decoder (the encoder runs the same copy)
    y_t = sigmoid(W_out h_t + b_out)             22 outputs in (0, 1)
    decoded_t = y_t with only the ``output_maxima`` largest kept, the rest 0

GRUs are in the PyTorch reset-after form with two bias vectors and gate row blocks (r, z, n)
(research §3.2): r = sig(W_ir x + b_ir + W_hr h + b_hr), z = sig(W_iz x + b_iz + W_hz h + b_hz),
n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) n + z h. Maxima ties: among equal
outputs the higher channel wins (the lower one is rejected first, as in ACE's maxima selection,
``pa_ci.ace.select_maxima``); ``output_maxima = 0`` keeps all outputs.

The parameters are one flat float64 vector laid out by :func:`frae_layout` (:mod:`pa_ci.params`).

Batched and streaming run the same compiled lane code (``_enc_lanes``, ``_dec_lanes``,
``_out_lanes``; the streaming steps with one lane in use), so :class:`Encoder`/:class:`Decoder`
give exactly (``==``) the indices and decoded frames of :func:`forward` and :func:`decode`. exp
is a polynomial in plain float arithmetic (within 1 ulp of ``numpy.exp``), so the codec's output
does not depend on the platform's math library either.

API for the trainer
-------------------
- :func:`pack_patterns` packs a list of patterns once (sparse rows, offsets, longest-first
  order); :func:`forward` and :func:`forward_many` accept the result, so repeated evaluations on
  the same items (SPSA) neither copy nor re-check the inputs.
- :func:`forward_many` runs ``n`` parameter vectors over the same items in ONE parallel kernel
  call (``prange`` over work units: each theta's items in as many groups of equal frame counts
  as keep the threads busy, each group run as SIMD lanes of items, see "kernels" below) and
  returns a list of ``n`` :class:`FraeOutput` (one per theta, e.g. ``[out_plus, out_minus]``),
  each equal to :func:`forward` of its theta.
- :func:`forward_maxima` is the same pass returning only the kept channels and their values
  (``(n, N, output_maxima)`` arrays instead of ``(n, N, C)``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Mapping, NamedTuple

import numba
import numpy as np
from llvmlite import ir as llvm_ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .errors import ParameterError
from .params import Layout

__all__ = ["FraeConfig", "FraeOutput", "PackedPatterns", "Encoder", "Decoder", "frae_layout",
           "init_params", "pack_patterns", "forward", "forward_many", "forward_maxima", "decode",
           "DEFAULT_FRAME_RATE"]

#: ACE frame rate: fs / hop = 16000 / 18 = 888.9 frames/s (DECISIONS.md "Signal chain").
DEFAULT_FRAME_RATE = 16000 / 18


# --------------------------------------------------------------------------- config
# Upper limits of the FRAE sizes. The paper's models are tiny (config A: 22 channels, 14 + 14
# hidden units, 3300 network weights, 64 codewords) because they must fit the 32-300 kB of
# on-chip memory of a CI processor (paper §I). The limits are orders of magnitude above that,
# so every research use fits, yet a typo (--enc-hidden 100000) or a crafted file header
# (hidden size 65535, codebook 2**32) is one clear error instead of an attempt to allocate
# tens or hundreds of GiB.
#: Largest ``n_channels``: a CI electrode array has 12-24 contacts; 256 leaves room for any
#: current or research array.
MAX_CHANNELS = 256
#: Largest ``enc_hidden`` / ``dec_hidden`` (a 4096-unit GRU already has ~50 million weights).
MAX_HIDDEN = 4096
#: Largest ``latent_dim`` (the paper uses 2; the codebook holds K x D values).
MAX_LATENT_DIM = 256
#: Largest ``codebook_size``: a stream stores an index in at most 16 bits
#: (:data:`pa_ci.bitstream.MAX_BITS`), so K <= 2**16.
MAX_CODEBOOK_SIZE = 2**16
#: Largest parameter count (network + codebook): 2**24 float64 values = 128 MiB per theta
#: (SPSA holds a few thetas at once); the paper's models have ~3500.
MAX_PARAMETERS = 2**24

_CONFIG_LIMITS = {"n_channels": MAX_CHANNELS, "enc_hidden": MAX_HIDDEN, "dec_hidden": MAX_HIDDEN,
                  "latent_dim": MAX_LATENT_DIM, "codebook_size": MAX_CODEBOOK_SIZE}
_CONFIG_LIMITS_WHY = {
    "n_channels": "channels of an electrode array",
    "enc_hidden": "GRU units; the paper's models have 14",
    "dec_hidden": "GRU units; the paper's models have 14",
    "latent_dim": "latent values per frame; the paper's models have 2",
    "codebook_size": "codewords; a stream index has at most 16 bits",
}


def _parameter_count(C: int, He: int, Hd: int, D: int, K: int) -> int:
    """Entries of :func:`frae_layout` for these sizes (computed without building the layout)."""
    enc = 3 * He * (C + Hd) + 3 * He * He + 6 * He + D * He + D
    dec = 3 * Hd * D + 3 * Hd * Hd + 6 * Hd + C * Hd + C
    return enc + dec + K * D


@dataclass(frozen=True)
class FraeConfig:
    """Sizes of the FRAE (research §3.3, config A; defaults: 3300 network weights + 128 codebook).

    ``n_channels`` C (pattern width), ``enc_hidden`` H_e, ``dec_hidden`` H_d, ``latent_dim`` D,
    ``codebook_size`` K (index alphabet), ``output_maxima`` (0 = keep all outputs), ``frame_rate``
    (frames/s, for the bit rate only).
    """

    n_channels: int = 22
    enc_hidden: int = 14
    dec_hidden: int = 14
    latent_dim: int = 2
    codebook_size: int = 64
    output_maxima: int = 8
    frame_rate: float = DEFAULT_FRAME_RATE

    def __post_init__(self) -> None:
        for name, low in (("n_channels", 1), ("enc_hidden", 1), ("dec_hidden", 1),
                          ("latent_dim", 1), ("codebook_size", 2), ("output_maxima", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ParameterError(f"FraeConfig.{name} = {v!r}; expected an integer >= {low}")
            top = _CONFIG_LIMITS.get(name)
            if top is not None and v > top:
                raise ParameterError(f"FraeConfig.{name} = {v!r}; expected at most {top} "
                                     f"({_CONFIG_LIMITS_WHY[name]})")
            object.__setattr__(self, name, int(v))
        n = _parameter_count(self.n_channels, self.enc_hidden, self.dec_hidden,
                             self.latent_dim, self.codebook_size)
        if n > MAX_PARAMETERS:
            raise ParameterError(f"FraeConfig has {n} parameters; expected at most "
                                 f"{MAX_PARAMETERS} (the codec targets processors with 32-300 kB "
                                 "of memory; this limit keeps every theta below 128 MiB)")
        if self.output_maxima > self.n_channels:
            raise ParameterError(f"FraeConfig.output_maxima = {self.output_maxima}; expected "
                                 f"0..n_channels ({self.n_channels})")
        fr = self.frame_rate
        if isinstance(fr, bool) or not isinstance(fr, (int, float, np.integer, np.floating)) \
                or not math.isfinite(fr) or fr <= 0:
            raise ParameterError(f"FraeConfig.frame_rate = {fr!r}; expected a positive number "
                                 "(frames/s)")
        object.__setattr__(self, "frame_rate", float(fr))

    @property
    def n_bits(self) -> int:
        """Bits per frame of a fixed-rate index: ceil(log2(codebook_size)) (research §3.5)."""
        return (self.codebook_size - 1).bit_length()

    @property
    def bitrate_bps(self) -> float:
        """Nominal bit rate: n_bits x frame_rate (6 x 888.9 = 5333 bit/s by default)."""
        return self.n_bits * self.frame_rate

    def to_dict(self) -> dict:
        """JSON-able dict of all fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "FraeConfig":
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys are an error."""
        if not isinstance(d, Mapping):
            raise ParameterError(f"FRAE config must be a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ParameterError(f"unknown FRAE config keys {', '.join(map(repr, unknown))}; "
                                 f"expected some of {', '.join(sorted(known))}")
        return cls(**dict(d))


@lru_cache(maxsize=32)
def frae_layout(config: FraeConfig) -> Layout:
    """The flat-parameter layout of a FRAE (names, shapes and order fixed; see module docs).

    Encoder GRU input is ``[x_t ; h_{t-1}]`` (channels first, then the decoder state).
    """
    C, He, Hd = config.n_channels, config.enc_hidden, config.dec_hidden
    D, K = config.latent_dim, config.codebook_size
    return Layout([
        ("enc.gru.W_ih", (3 * He, C + Hd), "encoder", "weight"),
        ("enc.gru.W_hh", (3 * He, He), "encoder", "weight"),
        ("enc.gru.b_ih", (3 * He,), "encoder", "bias"),
        ("enc.gru.b_hh", (3 * He,), "encoder", "bias"),
        ("enc.latent.W", (D, He), "encoder", "weight"),
        ("enc.latent.b", (D,), "encoder", "bias"),
        ("codebook", (K, D), "codebook", "codebook"),
        ("dec.gru.W_ih", (3 * Hd, D), "decoder", "weight"),
        ("dec.gru.W_hh", (3 * Hd, Hd), "decoder", "weight"),
        ("dec.gru.b_ih", (3 * Hd,), "decoder", "bias"),
        ("dec.gru.b_hh", (3 * Hd,), "decoder", "bias"),
        ("dec.out.W", (C, Hd), "decoder", "weight"),
        ("dec.out.b", (C,), "decoder", "bias"),
    ])


#: Codebook initialisation spread: N(0, 0.1^2) (the trainer re-seeds it by k-means).
CODEBOOK_INIT_STD = 0.1


def init_params(config: FraeConfig, seed: int) -> np.ndarray:
    """Deterministic initial theta from ``numpy.random.default_rng(seed)``.

    GRU tensors U(-1/sqrt(H), 1/sqrt(H)) with H their hidden size (PyTorch ``nn.GRU`` default),
    dense layers U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (``nn.Linear``), codebook N(0, 0.1^2);
    drawn tensor by tensor in layout order.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed = {seed!r}; expected a non-negative integer")
    layout = frae_layout(config)
    rng = np.random.default_rng(int(seed))
    bound = {"enc.gru": 1 / math.sqrt(config.enc_hidden), "enc.latent": 1 / math.sqrt(config.enc_hidden),
             "dec.gru": 1 / math.sqrt(config.dec_hidden), "dec.out": 1 / math.sqrt(config.dec_hidden)}
    theta = layout.zeros()
    for spec in layout:
        if spec.kind == "codebook":
            theta[spec.slice] = rng.normal(0.0, CODEBOOK_INIT_STD, spec.size)
        else:
            b = bound[spec.name.rsplit(".", 1)[0]]
            theta[spec.slice] = rng.uniform(-b, b, spec.size)
    return theta


# --------------------------------------------------------------------------- kernels
# Layout and why (the tensors are built by _net from theta; see _Net):
# - Items are SIMD lanes. A lane block runs _L items side by side; every state, gate and output
#   array is (units, _L) and every product is out[g, l] = b[g] + sum_k W[g, k] x[k, l], summed in
#   increasing k in a register per lane. The loop over lanes vectorises (512-bit vectors of 8
#   float64), each weight is loaded once per block step, and no sum is reordered: every lane does
#   the arithmetic of a one-item scalar loop, in the same order (the same as the earlier
#   one-item-per-thread kernel, bit for bit).
# - The sizes (C, He, Hd, D, K) are closure constants of the kernels made by _kernels (one set per
#   config, cached on disk like the rest): with constant trip counts LLVM unrolls the sums over k,
#   so the lane loop is innermost and keeps its accumulators in registers. LLVM's loop vectoriser
#   skips loops with a constant trip count below 16, so _L >= 16; 32 ran faster than 16 (fewer
#   loop overheads per frame) although more lanes idle at the end of a unit (12 % vs 6 % on the
#   default train split).
# - Items are sorted longest first; when a lane's item ends the lane takes the next item of its
#   work unit (states reset), so unequal lengths waste lanes only at the end of a unit. A work
#   unit is one theta's share of the items (see _units), so n thetas x items run in one call.
# - The encoder input x_t is dense over the lanes: the C pattern rows below the decoder state h
#   in one (Hd + C, _L) array, W_ih's columns reordered to (h, x), so one product covers
#   W_ih [h_{t-1}; x_t] in the earlier order (h terms, then the channels ascending). Adding the
#   zero channels leaves every sum as it is (w * 0 = +-0; only the sign of an exact zero can
#   change, which no later operation sees).
# - exp is _exp below: arithmetic only (1 ulp from numpy.exp), so the loops vectorise and results
#   do not depend on the platform's libm. error_model="numpy": no zero-division branches (the
#   divisors are >= 1).
# - No array slices inside the frame loop (each costs atomic reference counting). Elementwise
#   loops touch few rows each: LLVM vectorises a 32-trip loop only when it needs few run-time
#   overlap checks between the arrays (one loop over all GRU rows stayed scalar).
# The batched kernels and the streaming steps run the same helpers on the same lane arrays (the
# streaming ones with one lane in use): the same float operations in the same order (no
# fast-math, no contraction to FMA), so they agree exactly.

_JIT = dict(cache=True, error_model="numpy")

#: Lanes of a lane block (items side by side); a compile-time constant (see above).
_L = 32
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


@njit(inline="always", **_JIT)
def _matvec(out, W, b, x, rows, cols):
    """out[g, l] = b[g] + sum_{k < cols} W[g, k] x[k, l] for g < rows, summed in increasing k."""
    for g in range(rows):
        for l in range(_L):
            a = b[g]
            for k in range(cols):
                a += W[g, k] * x[k, l]
            out[g, l] = a


@njit(inline="always", **_JIT)
def _gru(gi, gh, state, rz, H):
    """Reset-after GRU (research §3.2) from gi = W_i x + b_i and gh = W_h h + b_h (gate row blocks
    r, z, n of H rows): state[:H] <- (1 - z) n + z state, in place; scratch rz (>= 2H rows).
    sigmoid(a) = 1 / (1 + exp(-a)), tanh(a) = 2 / (1 + exp(-2a)) - 1."""
    for j in range(2 * H):
        for l in range(_L):
            rz[j, l] = 1.0 / (1.0 + _exp(-(gi[j, l] + gh[j, l])))
    for j in range(H):
        for l in range(_L):  # n, reusing rz's r row (r is not needed again)
            a = gi[2 * H + j, l] + rz[j, l] * gh[2 * H + j, l]
            rz[j, l] = 2.0 / (1.0 + _exp(-2.0 * a)) - 1.0
        for l in range(_L):
            z = rz[H + j, l]
            state[j, l] = (1.0 - z) * rz[j, l] + z * state[j, l]


@njit(inline="always", **_JIT)
def _dec_lanes(best, HX, ghd, gd, cw, rz, Whd, bhd, Q, bq, cb, Hd, D):
    """Decoder GRU on every lane: h = HX[:Hd] <- GRU_dec(cb[best[l]], h)."""
    _matvec(ghd, Whd, bhd, HX, 3 * Hd, Hd)
    for d in range(D):
        for l in range(_L):
            cw[d, l] = cb[best[l], d]
    _matvec(gd, Q, bq, cw, 3 * Hd, D)
    _gru(gd, ghd, HX, rz, Hd)


@njit(inline="always", **_JIT)
def _enc_lanes(s, HX, gi, gs, ghd, gd, cw, rz, z, best, dist, We, be, Ws, bs, LW, lb, cb, Whd, bhd,
               Q, bq, C, He, Hd, D, K):
    """One zero-delay encoder step on every lane from x_t in HX[Hd:] and h_{t-1} in HX[:Hd]:
    s_t, z_t, best = i_t (first minimum on ties) and the decoder-state copy h_t in HX[:Hd]."""
    _matvec(gi, We, be, HX, 3 * He, Hd + C)     # b_ih + W_ih [h_{t-1}; x_t]
    _matvec(gs, Ws, bs, s, 3 * He, He)          # b_hh + W_hh s_{t-1}
    _gru(gi, gs, s, rz, He)
    _matvec(z, LW, lb, s, D, He)                # z = W_lat s + b_lat
    for l in range(_L):
        best[l] = 0
        dist[l] = np.inf
    for k in range(K):                          # i = argmin_k ||z - C_k||^2
        for l in range(_L):
            acc = 0.0
            for d in range(D):
                diff = z[d, l] - cb[k, d]
                acc += diff * diff
            nearer = acc < dist[l]   # selects, not branches: the lane loop vectorises
            dist[l] = acc if nearer else dist[l]
            best[l] = k if nearer else best[l]
    _dec_lanes(best, HX, ghd, gd, cw, rz, Whd, bhd, Q, bq, cb, Hd, D)


@njit(inline="always", **_JIT)
def _out_lanes(HX, OW, ob, n_max, Y, cnt, C, Hd):
    """Output stage on every lane: Y = sigmoid(W_out h + b_out) (C, _L) and, when maxima are
    selected, cnt[c, l] (a float) = how many channels rank above c in the order (value, channel):
    c is kept when cnt < n_max (among equal values the higher channel wins, ACE's maxima rule)."""
    _matvec(Y, OW, ob, HX, C, Hd)
    for c in range(C):
        for l in range(_L):
            Y[c, l] = 1.0 / (1.0 + _exp(-Y[c, l]))
    if n_max == 0 or n_max >= C:
        return
    for c in range(C):
        for l in range(_L):
            y = Y[c, l]
            a = 0.0  # a float count: adds in registers, the compares become masks
            for j in range(C):  # larger channels, or equal and higher ones (ACE's tie rule)
                a += 1.0 if Y[j, l] > y or (j > c and Y[j, l] == y) else 0.0
            cnt[c, l] = a


@njit(inline="always", **_JIT)
def _emit(Y, cnt, l, n_max, f, dec_out, ch_out, val_out, C):
    """Lane l's decoded frame into row f of dec_out (dense) and/or of ch_out, val_out (the kept
    channels ascending and their values); an output with no rows is not written."""
    keep_all = n_max == 0 or n_max >= C
    if dec_out.shape[0] > 0:
        for c in range(C):
            dec_out[f, c] = Y[c, l] if keep_all or cnt[c, l] < n_max else 0.0
    if ch_out.shape[0] > 0:
        j = 0
        for c in range(C):  # j < width: NaN outputs (an overflowing theta) rank above nothing
            if (keep_all or cnt[c, l] < n_max) and j < ch_out.shape[1]:
                ch_out[f, j] = c
                val_out[f, j] = Y[c, l]
                j += 1


@njit(**_JIT)
def _lane_arrays(C, He, Hd, D):
    """Zeroed lane arrays: s (He), HX (Hd + C: h then x), gi, gs (3 He), ghd, gd (3 Hd),
    cw (D), rz (2 max(He, Hd)), z (D), best (int64), dist, Y, cnt (C), each with _L
    columns."""
    return (np.zeros((He, _L)), np.zeros((Hd + C, _L)), np.zeros((3 * He, _L)),
            np.zeros((3 * He, _L)), np.zeros((3 * Hd, _L)), np.zeros((3 * Hd, _L)),
            np.zeros((D, _L)), np.zeros((2 * max(He, Hd), _L)), np.zeros((D, _L)),
            np.zeros(_L, dtype=np.int64), np.zeros(_L),
            np.zeros((C, _L)), np.zeros((C, _L)))


class _LaneArrays(NamedTuple):
    """Lane arrays (see _lane_arrays) of the streaming Encoder / Decoder (lane 0 in use)."""

    s: np.ndarray
    HX: np.ndarray
    gi: np.ndarray
    gs: np.ndarray
    ghd: np.ndarray
    gd: np.ndarray
    cw: np.ndarray
    rz: np.ndarray
    z: np.ndarray
    best: np.ndarray
    dist: np.ndarray
    Y: np.ndarray
    cnt: np.ndarray


class _Kernels(NamedTuple):
    enc_step: object
    dec_step: object
    forward: object
    decode: object


@lru_cache(maxsize=None)
def _kernels(C: int, He: int, Hd: int, D: int, K: int) -> _Kernels:
    """The compiled kernels for one set of sizes (closure constants; see the notes above)."""

    @njit(**_JIT)
    def enc_step(s, HX, gi, gs, ghd, gd, cw, rz, z, best, dist, We, be, Ws, bs, LW, lb, cb, Whd,
                 bhd, Q, bq):
        """Streaming encoder step on the lane arrays (the batched kernel runs the same code)."""
        _enc_lanes(s, HX, gi, gs, ghd, gd, cw, rz, z, best, dist, We, be, Ws, bs, LW, lb, cb, Whd,
                   bhd, Q, bq, C, He, Hd, D, K)

    @njit(**_JIT)
    def dec_step(best, HX, ghd, gd, cw, rz, Y, cnt, cb, Whd, bhd, Q, bq, OW, ob, n_max):
        """Streaming decoder step and output stage on the lane arrays."""
        _dec_lanes(best, HX, ghd, gd, cw, rz, Whd, bhd, Q, bq, cb, Hd, D)
        _out_lanes(HX, OW, ob, n_max, Y, cnt, C, Hd)

    @njit(**_JIT)
    def forward_unit(frame_ptr, cols, vals, offsets, items, i0, i1, We, be, Ws, bs, LW, lb, cb,
                     Whd, bhd, Q, bq, OW, ob, n_max, idx_out, dec_out, lat_out, ch_out, val_out):
        """Encoder + decoder over the items items[i0:i1] (longest first) on _L lanes, each item
        from zero states; frame f's results go to row f of the outputs (those with rows)."""
        s, HX, gi, gs, ghd, gd, cw, rz, z, best, dist, Y, cnt = _lane_arrays(C, He, Hd, D)
        pos = np.zeros(_L, dtype=np.int64)   # next frame of each lane; pos == end: idle
        end = np.zeros(_L, dtype=np.int64)
        want_lat = lat_out.shape[0] > 0
        nxt = i0
        active = 0
        for l in range(_L):
            while nxt < i1 and offsets[items[nxt]] == offsets[items[nxt] + 1]:
                nxt += 1                     # empty items have no frames to compute
            if nxt < i1:
                pos[l] = offsets[items[nxt]]
                end[l] = offsets[items[nxt] + 1]
                nxt += 1
                active += 1
        while active > 0:
            for c in range(C):
                for l in range(_L):
                    HX[Hd + c, l] = 0.0
            for l in range(_L):
                if pos[l] < end[l]:
                    f = pos[l]
                    for q in range(frame_ptr[f], frame_ptr[f + 1]):
                        HX[Hd + cols[q], l] = vals[q]
            _enc_lanes(s, HX, gi, gs, ghd, gd, cw, rz, z, best, dist, We, be, Ws, bs, LW, lb, cb,
                       Whd, bhd, Q, bq, C, He, Hd, D, K)
            _out_lanes(HX, OW, ob, n_max, Y, cnt, C, Hd)
            for l in range(_L):
                if pos[l] == end[l]:
                    continue
                f = pos[l]
                idx_out[f] = best[l]
                if want_lat:
                    for d in range(D):
                        lat_out[f, d] = z[d, l]
                _emit(Y, cnt, l, n_max, f, dec_out, ch_out, val_out, C)
                pos[l] = f + 1
                if pos[l] == end[l]:         # item done: the lane takes the next one
                    for k in range(He):
                        s[k, l] = 0.0
                    for k in range(Hd):
                        HX[k, l] = 0.0
                    while nxt < i1 and offsets[items[nxt]] == offsets[items[nxt] + 1]:
                        nxt += 1
                    if nxt < i1:
                        pos[l] = offsets[items[nxt]]
                        end[l] = offsets[items[nxt] + 1]
                        nxt += 1
                    else:
                        active -= 1

    @njit(parallel=True, **_JIT)
    def forward(frame_ptr, cols, vals, offsets, items, unit_theta, unit_ptr, We, be, Ws, bs, LW,
                lb, cb, Whd, bhd, Q, bq, OW, ob, n_max, idx_out, dec_out, lat_out, ch_out,
                val_out):
        """forward_unit over the work units in parallel: unit u runs theta unit_theta[u] over
        items[unit_ptr[u]:unit_ptr[u + 1]]. Tensors and outputs carry a leading theta axis."""
        for u in prange(unit_theta.shape[0]):
            m = unit_theta[u]
            forward_unit(frame_ptr, cols, vals, offsets, items, unit_ptr[u], unit_ptr[u + 1],
                         We[m], be[m], Ws[m], bs[m], LW[m], lb[m], cb[m], Whd[m], bhd[m], Q[m],
                         bq[m], OW[m], ob[m], n_max, idx_out[m], dec_out[m], lat_out[m],
                         ch_out[m], val_out[m])

    @njit(**_JIT)
    def decode_unit(indices, offsets, items, i0, i1, cb, Whd, bhd, Q, bq, OW, ob, n_max, out):
        """Decoder only over items[i0:i1] on _L lanes (as forward_unit) into out."""
        _, HX, _, _, ghd, gd, cw, rz, _, best, _, Y, cnt = _lane_arrays(C, He, Hd, D)
        pos = np.zeros(_L, dtype=np.int64)
        end = np.zeros(_L, dtype=np.int64)
        none = np.empty((0, C), dtype=np.int8)
        nxt = i0
        active = 0
        for l in range(_L):
            while nxt < i1 and offsets[items[nxt]] == offsets[items[nxt] + 1]:
                nxt += 1
            if nxt < i1:
                pos[l] = offsets[items[nxt]]
                end[l] = offsets[items[nxt] + 1]
                nxt += 1
                active += 1
        while active > 0:
            for l in range(_L):
                best[l] = indices[pos[l]] if pos[l] < end[l] else 0
            _dec_lanes(best, HX, ghd, gd, cw, rz, Whd, bhd, Q, bq, cb, Hd, D)
            _out_lanes(HX, OW, ob, n_max, Y, cnt, C, Hd)
            for l in range(_L):
                if pos[l] == end[l]:
                    continue
                f = pos[l]
                _emit(Y, cnt, l, n_max, f, out, none, out, C)
                pos[l] = f + 1
                if pos[l] == end[l]:
                    for k in range(Hd):
                        HX[k, l] = 0.0
                    while nxt < i1 and offsets[items[nxt]] == offsets[items[nxt] + 1]:
                        nxt += 1
                    if nxt < i1:
                        pos[l] = offsets[items[nxt]]
                        end[l] = offsets[items[nxt] + 1]
                        nxt += 1
                    else:
                        active -= 1

    @njit(parallel=True, **_JIT)
    def decode(indices, offsets, items, unit_ptr, cb, Whd, bhd, Q, bq, OW, ob, n_max, out):
        """decode_unit over the work units in parallel (one theta)."""
        for u in prange(unit_ptr.shape[0] - 1):
            decode_unit(indices, offsets, items, unit_ptr[u], unit_ptr[u + 1], cb, Whd, bhd, Q,
                        bq, OW, ob, n_max, out)

    return _Kernels(enc_step, dec_step, forward, decode)


def _units(offsets: np.ndarray, n_thetas: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Work units for the parallel kernels: each theta's items split into G groups of about equal
    frame counts (longest item to the lightest group), G such that n_thetas x G is a multiple of
    the thread count. Returns items (per unit, longest first, concatenated), unit_theta and
    unit_ptr (unit u = items[unit_ptr[u]:unit_ptr[u + 1]] of theta unit_theta[u])."""
    threads = numba.get_num_threads()
    G = threads // math.gcd(n_thetas, threads)
    lengths = np.diff(offsets)
    order = _length_order(offsets)
    if G == 1:
        groups = [order]
    else:
        load = [0] * G
        members: list[list[int]] = [[] for _ in range(G)]
        for i in order:
            g = min(range(G), key=load.__getitem__)
            members[g].append(int(i))
            load[g] += int(lengths[i])
        groups = [np.asarray(m, dtype=np.int64) for m in members]
    sizes = [len(g) for g in groups]
    one = np.concatenate(groups).astype(np.int64)
    items = np.tile(one, n_thetas)
    unit_theta = np.repeat(np.arange(n_thetas, dtype=np.int64), G)
    unit_ptr = np.concatenate([[0], np.cumsum(np.tile(sizes, n_thetas))]).astype(np.int64)
    return items, unit_theta, unit_ptr


# --------------------------------------------------------------------------- kernel tensors
class _Net(NamedTuple):
    """Kernel tensors of n thetas (leading axis n), built by :func:`_net`; matrices keep their
    (outputs, inputs) rows, gate row blocks (r, z, n)."""

    We: np.ndarray   # (n, 3He, Hd + C)  encoder W_ih, columns reordered to (h, x)
    be: np.ndarray   # (n, 3He)          encoder b_ih
    Ws: np.ndarray   # (n, 3He, He)      encoder W_hh
    bs: np.ndarray   # (n, 3He)          encoder b_hh
    LW: np.ndarray   # (n, D, He)        latent W
    lb: np.ndarray   # (n, D)            latent b
    cb: np.ndarray   # (n, K, D)         codebook
    Whd: np.ndarray  # (n, 3Hd, Hd)      decoder W_hh
    bhd: np.ndarray  # (n, 3Hd)          decoder b_hh
    Q: np.ndarray    # (n, 3Hd, D)       decoder W_ih
    bq: np.ndarray   # (n, 3Hd)          decoder b_ih
    OW: np.ndarray   # (n, C, Hd)        output W
    ob: np.ndarray   # (n, C)            output b

    def one(self, m: int = 0) -> tuple:
        return tuple(a[m] for a in self)

    def decoder(self, m: int = 0) -> tuple:
        """Theta m's tensors that the decoder takes: cb, Whd, bhd, Q, bq, OW, ob."""
        return self.one(m)[6:]


def _net(thetas: np.ndarray, config: FraeConfig) -> _Net:
    """Kernel tensors from checked thetas (n, p)."""
    layout = frae_layout(config)
    n = thetas.shape[0]
    C = config.n_channels

    def t(name: str) -> np.ndarray:
        spec = layout[name]
        return thetas[:, spec.slice].reshape((n,) + spec.shape)

    e_wih = t("enc.gru.W_ih")
    parts = _Net(
        We=np.concatenate([e_wih[:, :, C:], e_wih[:, :, :C]], axis=2), be=t("enc.gru.b_ih"),
        Ws=t("enc.gru.W_hh"), bs=t("enc.gru.b_hh"), LW=t("enc.latent.W"), lb=t("enc.latent.b"),
        cb=t("codebook"), Whd=t("dec.gru.W_hh"), bhd=t("dec.gru.b_hh"), Q=t("dec.gru.W_ih"),
        bq=t("dec.gru.b_ih"), OW=t("dec.out.W"), ob=t("dec.out.b"))
    return _Net(*(np.ascontiguousarray(a, dtype=np.float64) for a in parts))


def _config_kernels(config: FraeConfig) -> _Kernels:
    return _kernels(config.n_channels, config.enc_hidden, config.dec_hidden, config.latent_dim,
                    config.codebook_size)


def _check_thetas(thetas, config: FraeConfig, name: str = "theta") -> np.ndarray:
    """(n, p) float64 C-contiguous, finite, p = layout size."""
    size = frae_layout(config).size
    arr = np.asarray(thetas)
    if arr.ndim != 2 or arr.shape[1] != size or arr.shape[0] < 1:
        raise ParameterError(f"{name} has shape {np.shape(thetas)}; the FRAE config needs "
                             f"(n, {size}) with n >= 1")
    if arr.dtype.kind not in "fiu":
        raise ParameterError(f"{name} has dtype {arr.dtype}; expected float64")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} has {int(np.sum(~np.isfinite(arr)))} non-finite values")
    return arr


def _one_theta(theta, config: FraeConfig) -> np.ndarray:
    """A single checked theta (p,) as a (1, p) array."""
    size = frae_layout(config).size
    if np.ndim(theta) != 1 or np.shape(theta)[0] != size:
        raise ParameterError(f"theta has shape {np.shape(theta)}; the FRAE config needs ({size},)")
    return _check_thetas(np.asarray(theta)[None], config)


# --------------------------------------------------------------------------- inputs / outputs
@dataclass(frozen=True, eq=False)
class PackedPatterns:
    """Items packed once for repeated forward passes (make it with :func:`pack_patterns`).

    Frames are stored sparse (CSR, the nonzero channels of each frame): frame t has channels
    ``cols[frame_ptr[t]:frame_ptr[t+1]]`` (ascending) with values ``vals[...]`` (float64).
    ``offsets`` (n_items + 1,) int64: item i = frames offsets[i]..offsets[i+1]-1; ``order``:
    items by decreasing length (ties by index), the parallel schedule.
    """

    frame_ptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    offsets: np.ndarray
    order: np.ndarray
    n_channels: int

    @property
    def n_items(self) -> int:
        return self.offsets.size - 1

    @property
    def n_frames(self) -> int:
        return self.frame_ptr.size - 1

    def dense(self) -> np.ndarray:
        """The frames as a dense (N, C) float64 array."""
        out = np.zeros((self.n_frames, self.n_channels))
        rows = np.repeat(np.arange(self.n_frames), np.diff(self.frame_ptr))
        out[rows, self.cols] = self.vals
        return out


def _check_offsets(offsets, n: int, what: str) -> np.ndarray:
    off = np.asarray(offsets)
    if off.ndim != 1 or off.size < 2 or off.dtype.kind not in "iu":
        raise ParameterError(f"offsets must be a 1-D integer array of n_items + 1 >= 2 values, "
                             f"got {off.dtype} {off.shape}")
    off = off.astype(np.int64)
    if off[0] != 0 or off[-1] != n or np.any(np.diff(off) < 0):
        raise ParameterError(f"offsets must rise from 0 to the number of {what} ({n}); got "
                             f"{off[0]}..{off[-1]}, {'not ' if np.any(np.diff(off) < 0) else ''}"
                             "monotonic")
    return off


def _length_order(offsets: np.ndarray) -> np.ndarray:
    return np.argsort(-np.diff(offsets), kind="stable").astype(np.int64)


def _csr_rows(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nz = frames != 0.0
    frame_ptr = np.zeros(frames.shape[0] + 1, dtype=np.int64)
    np.cumsum(nz.sum(axis=1), out=frame_ptr[1:])
    rows, cols = np.nonzero(nz)  # row-major: ascending channels within a frame
    return frame_ptr, cols.astype(np.int64), np.ascontiguousarray(frames[rows, cols])


def pack_patterns(patterns, n_channels: int | None = None, *, offsets=None) -> PackedPatterns:
    """Pack patterns for :func:`forward`: a list of (K_i, C) arrays, a 3-D (items, K, C) array,
    one (K, C) array (one item), or a stacked (N, C) array with ``offsets``.

    Any real dtype (values normally in [0, 1]); must be finite. ``n_channels`` (C) is checked
    when given. A :class:`PackedPatterns` is returned as it is (after the channel check).
    """
    if isinstance(patterns, PackedPatterns):
        if offsets is not None:
            raise ParameterError("offsets cannot be given with packed patterns")
        if n_channels is not None and patterns.n_channels != n_channels:
            raise ParameterError(f"packed patterns have {patterns.n_channels} channels; the FRAE "
                                 f"config has {n_channels}")
        return patterns
    if isinstance(patterns, np.ndarray) and patterns.ndim == 2:
        stacked = patterns
    elif offsets is not None:
        raise ParameterError("offsets are only allowed with one stacked (N, C) pattern array")
    else:
        if isinstance(patterns, np.ndarray) and patterns.ndim != 3:
            raise ParameterError(f"patterns have shape {patterns.shape}; expected (frames, "
                                 "channels), (items, frames, channels) or a list of (frames, channels)")
        items = [np.asarray(p) for p in patterns]
        if not items:
            raise ParameterError("no patterns given; expected at least one item")
        for k, p in enumerate(items):
            if p.ndim != 2:
                raise ParameterError(f"pattern {k} has shape {p.shape}; expected (frames, channels)")
        widths = sorted({p.shape[1] for p in items})
        if len(widths) > 1:
            raise ParameterError(f"patterns have different channel counts {widths}")
        stacked = np.concatenate(items, axis=0) if len(items) > 1 else items[0]
        offsets = np.concatenate([[0], np.cumsum([p.shape[0] for p in items])])
    if stacked.dtype.kind not in "fiu":
        raise ParameterError(f"patterns have dtype {stacked.dtype}; expected floats in [0, 1]")
    if n_channels is not None and stacked.shape[1] != n_channels:
        raise ParameterError(f"patterns have {stacked.shape[1]} channels; the FRAE config has "
                             f"{n_channels}")
    frames = np.asarray(stacked, dtype=np.float64)
    if not np.all(np.isfinite(frames)):
        raise ParameterError(f"patterns have {int(np.sum(~np.isfinite(frames)))} non-finite values")
    off = _check_offsets([0, frames.shape[0]] if offsets is None else offsets, frames.shape[0],
                         "frames")
    frame_ptr, cols, vals = _csr_rows(frames)
    return PackedPatterns(frame_ptr, cols, vals, off, _length_order(off), int(frames.shape[1]))


@dataclass
class FraeOutput:
    """Result of a forward pass over n_items items with N frames in total.

    ``indices`` (N,) int64 codebook indices; ``decoded`` (N, C) float64 decoded pattern;
    ``offsets`` (n_items + 1,) int64 (item i = rows offsets[i]:offsets[i+1]); ``latents`` (N, D)
    float64 pre-quantisation latents z_t, or None when not requested.
    """

    indices: np.ndarray
    decoded: np.ndarray
    offsets: np.ndarray
    latents: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return self.offsets.size - 1

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, decoded) of item i (views)."""
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.indices[a:b], self.decoded[a:b]


def _kernel_run(thetas: np.ndarray, config: FraeConfig, packed: PackedPatterns, idx, dec, lat,
                chans, vals) -> None:
    """Run the parallel forward kernel; outputs with no rows (axis 1 of size 0) are skipped."""
    items, unit_theta, unit_ptr = _units(packed.offsets, thetas.shape[0])
    with numba.parallel_chunksize(1):
        _config_kernels(config).forward(packed.frame_ptr, packed.cols, packed.vals, packed.offsets,
                                        items, unit_theta, unit_ptr, *_net(thetas, config),
                                        config.output_maxima, idx, dec, lat, chans, vals)


def _run_forward(thetas: np.ndarray, config: FraeConfig, packed: PackedPatterns,
                 return_latents: bool, out: np.ndarray | None = None) -> list[FraeOutput]:
    n, N = thetas.shape[0], packed.n_frames
    C, D = config.n_channels, config.latent_dim
    idx = np.empty((n, N), dtype=np.int64)
    if out is None:
        dec = np.empty((n, N, C), dtype=np.float64)
    elif out.shape != (n, N, C) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ParameterError(f"out must be a C-contiguous float64 array of shape {(n, N, C)}, "
                             f"got {out.dtype} {out.shape}")
    else:
        dec = out
    lat = np.empty((n, N if return_latents else 0, D), dtype=np.float64)
    _kernel_run(thetas, config, packed, idx, dec, lat, np.empty((n, 0, 0), dtype=np.int8),
                np.empty((n, 0, 0)))
    return [FraeOutput(idx[m], dec[m], packed.offsets, lat[m] if return_latents else None)
            for m in range(n)]


def forward(theta: np.ndarray, config: FraeConfig, patterns, *, offsets=None,
            return_latents: bool = False) -> FraeOutput:
    """Encode and decode every item (states reset per item): indices and decoded patterns.

    ``patterns``: anything :func:`pack_patterns` accepts (a list of (K_i, C) arrays, a stacked
    (N, C) array with ``offsets``, or a :class:`PackedPatterns`). Items run in parallel.
    """
    thetas = _one_theta(theta, config)
    packed = pack_patterns(patterns, config.n_channels, offsets=offsets)
    return _run_forward(thetas, config, packed, return_latents)[0]


def forward_many(thetas: np.ndarray, config: FraeConfig, patterns, *, offsets=None,
                 return_latents: bool = False, out: np.ndarray | None = None) -> list[FraeOutput]:
    """:func:`forward` for n parameter vectors ``thetas`` (n, p) over the same items in ONE
    parallel kernel call; returns n outputs (in the order of ``thetas``) sharing ``offsets``.

    For SPSA: ``out_plus, out_minus = forward_many(np.stack([theta_plus, theta_minus]), ...)``.
    Each output equals :func:`forward` of its theta exactly. ``out``: an (n, N, C) float64
    C-contiguous array to write the decoded patterns into (output m's ``decoded`` is ``out[m]``);
    SPSA reuses one instead of allocating ~100 MB per evaluation.
    """
    arr = _check_thetas(thetas, config, "thetas")
    packed = pack_patterns(patterns, config.n_channels, offsets=offsets)
    return _run_forward(arr, config, packed, return_latents, out)


def forward_maxima(thetas: np.ndarray, config: FraeConfig, patterns, *,
                   offsets=None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`forward_many`'s decoded patterns in compact form: ``(chans, vals)``.

    ``chans`` (n, N, M) int8: the M kept channels of each frame in ascending order; ``vals``
    (n, N, M) float64: their decoded values (the numbers ``forward_many(...)[m].decoded`` holds
    at those channels; every other channel is 0 there). M = ``output_maxima`` (sigmoid outputs
    are > 0, so every frame keeps exactly M), or C with chans = 0..C-1 when it is 0.
    """
    arr = _check_thetas(thetas, config, "thetas")
    packed = pack_patterns(patterns, config.n_channels, offsets=offsets)
    n, N, C = arr.shape[0], packed.n_frames, config.n_channels
    M = config.output_maxima or C
    chans = np.empty((n, N, M), dtype=np.int8)
    vals = np.empty((n, N, M), dtype=np.float64)
    _kernel_run(arr, config, packed, np.empty((n, N), dtype=np.int64), np.empty((n, 0, C)),
                np.empty((n, 0, config.latent_dim)), chans, vals)
    return chans, vals


def _pack_indices(indices, codebook_size: int, offsets) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(indices, np.ndarray) and indices.ndim == 1:
        flat = indices
        off = [0, flat.size] if offsets is None else offsets
    elif offsets is not None:
        raise ParameterError("offsets are only allowed with one flat index array")
    else:
        if isinstance(indices, np.ndarray):
            raise ParameterError(f"indices have shape {indices.shape}; expected a 1-D array or a "
                                 "list of them")
        items = [np.asarray(a) for a in indices]
        if not items or any(a.ndim != 1 for a in items):
            raise ParameterError("indices must be a 1-D array or a non-empty list of 1-D arrays")
        flat = np.concatenate(items) if len(items) > 1 else items[0]
        off = np.concatenate([[0], np.cumsum([a.size for a in items])])
    if flat.size and flat.dtype.kind not in "iu":
        raise ParameterError(f"indices have dtype {flat.dtype}; expected integers")
    flat = np.ascontiguousarray(flat, dtype=np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= codebook_size):
        raise ParameterError(f"indices range {flat.min()}..{flat.max()}; the codebook has "
                             f"{codebook_size} entries (0..{codebook_size - 1})")
    return flat, _check_offsets(off, flat.size, "indices")


def decode(theta: np.ndarray, config: FraeConfig, indices, *, offsets=None) -> np.ndarray:
    """Decoder only: codebook indices -> decoded pattern (N, C), states reset per item.

    ``indices``: one 1-D int array (one item, or several with ``offsets``) or a list of them.
    Equals ``forward(...).decoded`` exactly for the indices that forward produced.
    """
    net = _net(_one_theta(theta, config), config)
    flat, off = _pack_indices(indices, config.codebook_size, offsets)
    out = np.empty((flat.size, config.n_channels), dtype=np.float64)
    items, _, unit_ptr = _units(off, 1)
    with numba.parallel_chunksize(1):
        _config_kernels(config).decode(flat, off, items, unit_ptr, *net.decoder(),
                                       config.output_maxima, out)
    return out


# --------------------------------------------------------------------------- streaming
class Encoder:
    """Zero-delay streaming encoder (research §5): one pattern frame in, one index out.

    Runs its own copy of the decoder GRU, so ``h`` equals the :class:`Decoder`'s state after the
    same indices. States start at zero; :meth:`reset` starts a new item. Each step runs the
    batched kernel's lane code with one lane in use (lane 0), so it is exactly :func:`forward`.
    """

    def __init__(self, theta: np.ndarray, config: FraeConfig) -> None:
        self.config = config
        self._net = _net(_one_theta(theta, config), config).one()
        self._step = _config_kernels(config).enc_step
        self._lanes = _LaneArrays(*_lane_arrays(config.n_channels, config.enc_hidden,
                                                config.dec_hidden, config.latent_dim))

    @property
    def s(self) -> np.ndarray:
        """Encoder GRU state s_t (a copy, (enc_hidden,))."""
        return self._lanes.s[:, 0].copy()

    @property
    def h(self) -> np.ndarray:
        """The encoder's copy of the decoder state h_t (a copy, (dec_hidden,))."""
        return self._lanes.HX[:self.config.dec_hidden, 0].copy()

    @property
    def latent(self) -> np.ndarray:
        """Latent z_t of the last step (a copy)."""
        return self._lanes.z[:, 0].copy()

    def reset(self) -> None:
        self._lanes.s[:] = 0.0
        self._lanes.HX[:] = 0.0

    def step(self, frame: np.ndarray) -> int:
        """Encode one pattern frame (C,) -> codebook index."""
        x = np.asarray(frame)
        C = self.config.n_channels
        if x.shape != (C,) or x.dtype.kind not in "fiu":
            raise ParameterError(f"frame is a {x.dtype} array of shape {x.shape}; expected ({C},) "
                                 "floats")
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise ParameterError("frame has non-finite values")
        lanes = self._lanes
        lanes.HX[self.config.dec_hidden:, 0] = x
        self._step(*lanes[:11], *self._net[:11])
        return int(lanes.best[0])


class Decoder:
    """Streaming decoder: one index in, one decoded frame (C,) out. :meth:`reset` per item.

    Runs the batched decoder's lane code with one lane in use, so it is exactly :func:`decode`.
    """

    def __init__(self, theta: np.ndarray, config: FraeConfig) -> None:
        self.config = config
        self._dec = _net(_one_theta(theta, config), config).decoder()
        self._step = _config_kernels(config).dec_step
        self._lanes = _LaneArrays(*_lane_arrays(config.n_channels, 1, config.dec_hidden,
                                                config.latent_dim))

    @property
    def h(self) -> np.ndarray:
        """Decoder GRU state h_t (a copy, (dec_hidden,))."""
        return self._lanes.HX[:self.config.dec_hidden, 0].copy()

    def reset(self) -> None:
        self._lanes.HX[:] = 0.0

    def step(self, index: int) -> np.ndarray:
        """Decode one codebook index -> decoded frame (C,) float64 (a new array)."""
        K = self.config.codebook_size
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < K:
            raise ParameterError(f"index {index!r}; expected an integer in 0..{K - 1}")
        ln = self._lanes
        ln.best[0] = index
        n_max = self.config.output_maxima
        self._step(ln.best, ln.HX, ln.ghd, ln.gd, ln.cw, ln.rz, ln.Y, ln.cnt, *self._dec, n_max)
        y = ln.Y[:, 0].copy()
        if 0 < n_max < self.config.n_channels:
            y[ln.cnt[:, 0] >= n_max] = 0.0
        return y
