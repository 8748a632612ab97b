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

Batched and streaming use the same compiled helpers (``_enc_step``, ``_dec_step``, ``_outputs``),
so :class:`Encoder`/:class:`Decoder` give exactly (``==``) the indices and decoded frames of
:func:`forward` and :func:`decode`. exp is a polynomial in plain float arithmetic (within 1 ulp
of ``numpy.exp``), so the codec's output does not depend on the platform's math library either.

API for the trainer
-------------------
- :func:`pack_patterns` packs a list of patterns once (sparse rows, offsets, longest-first
  order); :func:`forward` and :func:`forward_many` accept the result, so repeated evaluations on
  the same items (SPSA) neither copy nor re-check the inputs.
- :func:`forward_many` runs ``n`` parameter vectors over the same items in ONE parallel kernel
  call (``prange`` over the ``n * items`` pairs, longest items first, chunk size 1) and returns
  a list of ``n`` :class:`FraeOutput` (one per theta, e.g. ``[out_plus, out_minus]``), each
  equal to :func:`forward` of its theta.
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
           "init_params", "pack_patterns", "forward", "forward_many", "decode", "DEFAULT_FRAME_RATE"]

#: ACE frame rate: fs / hop = 16000 / 18 = 888.9 frames/s (DECISIONS.md "Signal chain").
DEFAULT_FRAME_RATE = 16000 / 18


# --------------------------------------------------------------------------- config
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
            object.__setattr__(self, name, int(v))
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
# How the kernel tensors are laid out (built by _net from theta; see _Net) and why:
# - Matrices are transposed, (inputs, outputs), C-contiguous, so every product is a sequence of
#   contiguous updates acc[g] += W^T[k, g] * v_k in increasing k (two rows per pass). Each output
#   sums in one fixed order, the loop over g vectorises without reordering any sum, and inputs
#   that are exactly 0 (16 of the 22 pattern channels) are skipped through the sparse frames.
# - Gate blocks (r, z, n) are each zero-padded from H to Hp lanes (a multiple of 8). Padded state
#   lanes stay exactly 0 (gates 0.5, candidate tanh(0) = 0) and are never read.
# - The output layer and the maxima selection run on chunks of _CHUNK frames (frames along the
#   inner loops), not frame by frame: see _outputs.
# - exp is _exp below: arithmetic only (1 ulp from numpy.exp), so the loops vectorise and results
#   do not depend on the platform's libm. error_model="numpy": no zero-division branches (the
#   divisors are >= 1).
# - No array slices inside the frame loop (each costs atomic reference counting): helpers take
#   offsets and row numbers instead.
# - The small per-frame helpers (_affine, _add_sparse, _gru_update) are inlined at Numba IR level:
#   about 10 % faster for a few seconds more of one-time compilation.
# The batched kernels and the streaming steps call the same helpers: the same float operations
# in the same order (no fast-math, no contraction to FMA), so they agree exactly.

_JIT = dict(cache=True, error_model="numpy")

#: Padding unit of the lane axes: 8 float64 = one 512-bit vector.
_LANES = 8
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
def _affine(acc, bias, WT, x, n):
    """acc = bias + sum_{k < n} WT[k] x[k], summed in increasing k (two rows per pass)."""
    G = acc.shape[0]
    for g in range(G):
        acc[g] = bias[g]
    k = 0
    while k + 1 < n:
        v0 = x[k]
        v1 = x[k + 1]
        for g in range(G):
            acc[g] = (acc[g] + WT[k, g] * v0) + WT[k + 1, g] * v1
        k += 2
    if k < n:
        v0 = x[k]
        for g in range(G):
            acc[g] += WT[k, g] * v0


@njit(inline="always", **_JIT)
def _add_sparse(acc, WT, cols, vals, lo, hi):
    """acc += sum_q WT[cols[q]] vals[q] for q in lo..hi-1, in increasing q (two rows per pass)."""
    G = acc.shape[0]
    q = lo
    while q + 1 < hi:
        j0 = cols[q]
        j1 = cols[q + 1]
        v0 = vals[q]
        v1 = vals[q + 1]
        for g in range(G):
            acc[g] = (acc[g] + WT[j0, g] * v0) + WT[j1, g] * v1
        q += 2
    if q < hi:
        j0 = cols[q]
        v0 = vals[q]
        for g in range(G):
            acc[g] += WT[j0, g] * v0


@njit(inline="always", **_JIT)
def _gru_update(gi, gh, state, rz):
    """Reset-after GRU (research §3.2) from gi = W_i x + b_i and gh = W_h h + b_h, gate blocks
    (r, z, n) of Hp = len(state) lanes: state <- (1 - z) n + z state, in place.
    sigmoid(a) = 1 / (1 + exp(-a)); tanh(a) = 2 / (1 + exp(-2a)) - 1. Scratch rz (>= 2 Hp)."""
    Hp = state.shape[0]
    for j in range(2 * Hp):
        rz[j] = 1.0 / (1.0 + _exp(-(gi[j] + gh[j])))
    for j in range(Hp):
        n = 2.0 / (1.0 + _exp(-2.0 * (gi[2 * Hp + j] + rz[j] * gh[2 * Hp + j]))) - 1.0
        z = rz[Hp + j]
        state[j] = (1.0 - z) * n + z * state[j]


@njit(**_JIT)
def _dec_step(index, h, gd, ghd, rz, cb, QT, bq, HdT, bhd):
    """Decoder GRU: h <- GRU_dec(cb[index], h)."""
    _affine(ghd, bhd, HdT, h, HdT.shape[0])
    G = gd.shape[0]
    for g in range(G):
        gd[g] = bq[g]
    for d in range(QT.shape[0]):
        v = cb[index, d]
        for g in range(G):
            gd[g] += QT[d, g] * v
    _gru_update(gd, ghd, h, rz)


@njit(**_JIT)
def _enc_step(cols, vals, lo, hi, s, h, gi, gh, gd, ghd, rz, z, WxT, HeT, bie, WsT, bhe, LT, lb,
              cb, QT, bq, HdT, bhd):
    """One zero-delay encoder step from the nonzero inputs (cols[lo:hi] ascending, vals) of x_t:
    s_t, z_t, i_t and the decoder-state copy h_t. Returns i_t (first minimum on ties)."""
    _affine(gi, bie, HeT, h, HeT.shape[0])       # gi = b_ih + W_ih[:, C:] h_{t-1}
    _add_sparse(gi, WxT, cols, vals, lo, hi)     #    + W_ih[:, :C] x_t (nonzero channels)
    _affine(gh, bhe, WsT, s, WsT.shape[0])       # gh = b_hh + W_hh s_{t-1}
    _gru_update(gi, gh, s, rz)
    D = z.shape[0]                               # z = W_lat s + b_lat
    for d in range(D):
        z[d] = lb[d]
    for k in range(LT.shape[0]):
        v = s[k]
        for d in range(D):
            z[d] += LT[k, d] * v
    best = 0                                     # i = argmin_k ||z - C_k||^2
    best_dist = np.inf
    for k in range(cb.shape[0]):
        acc = 0.0
        for d in range(D):
            diff = z[d] - cb[k, d]
            acc += diff * diff
        if acc < best_dist:
            best_dist = acc
            best = k
    _dec_step(best, h, gd, ghd, rz, cb, QT, bq, HdT, bhd)
    return best


@njit(**_JIT)
def _outputs(Hs, n, OT, ob, n_max, Y, cnt, out, row0):
    """Output stage for the n frames whose decoder states are the columns of Hs (Hd, >= n):
    out[row0 + t] <- sigmoid(W_out h_t + b_out) with only the n_max largest kept (0 = keep all).

    Frames run along the inner loops (channel-major Y, cnt: (C, >= n)), so the products, the
    sigmoids and the rank counts vectorise over frames; each value's arithmetic is the same for
    any n (the streaming decoder calls this with n = 1). Channel c is kept when fewer than n_max
    channels rank above it in the order (value, channel): among equal values the higher channel
    wins, i.e. the lower one is rejected first (ACE's maxima rule).
    """
    C = Y.shape[0]
    for c in range(C):
        bc = ob[c]
        for t in range(n):
            Y[c, t] = bc
    for k in range(OT.shape[0]):
        for c in range(C):
            w = OT[k, c]
            for t in range(n):
                Y[c, t] += w * Hs[k, t]
    for c in range(C):
        for t in range(n):
            Y[c, t] = 1.0 / (1.0 + _exp(-Y[c, t]))
    if n_max == 0 or n_max >= C:
        for t in range(n):
            for c in range(C):
                out[row0 + t, c] = Y[c, t]
        return
    for c in range(C):
        for t in range(n):
            cnt[c, t] = 0
        for j in range(c):  # lower channels rank above c only when strictly larger
            for t in range(n):
                cnt[c, t] += Y[j, t] > Y[c, t]
        for j in range(c + 1, C):  # higher channels also when equal
            for t in range(n):
                cnt[c, t] += Y[j, t] >= Y[c, t]
    for t in range(n):
        for c in range(C):
            out[row0 + t, c] = Y[c, t] if cnt[c, t] < n_max else 0.0


#: Frames per output-stage call in the batched kernels (its buffers stay in L1).
_CHUNK = 64


class _Scratch(NamedTuple):
    """Work arrays of the kernels (see _scratch)."""

    gi: np.ndarray
    gh: np.ndarray
    gd: np.ndarray
    ghd: np.ndarray
    rz: np.ndarray
    z: np.ndarray
    Hs: np.ndarray
    Y: np.ndarray
    cnt: np.ndarray


@njit(**_JIT)
def _scratch(Ge, Gd, D, Hd, C, chunk):
    """gi, gh (Ge), gd, ghd (Gd), rz (2 max(Hp)), z (D), Hs (Hd, chunk), Y, cnt (C, chunk)."""
    return (np.empty(Ge), np.empty(Ge), np.empty(Gd), np.empty(Gd),
            np.empty(2 * max(Ge, Gd) // 3), np.empty(D), np.empty((Hd, chunk)),
            np.empty((C, chunk)), np.empty((C, chunk), dtype=np.int64))


@njit(**_JIT)
def _encoder_step(cols, vals, s, h, gi, gh, gd, ghd, rz, z, WxT, HeT, bie, WsT, bhe, LT, lb, cb,
                  QT, bq, HdT, bhd):
    """Streaming encoder step: updates s and h, returns the index (as _run_item does)."""
    return _enc_step(cols, vals, 0, cols.shape[0], s, h, gi, gh, gd, ghd, rz, z, WxT, HeT, bie,
                     WsT, bhe, LT, lb, cb, QT, bq, HdT, bhd)


@njit(**_JIT)
def _decoder_step(index, h, gd, ghd, rz, Hs, Y, cnt, out, cb, QT, bq, HdT, bhd, OT, ob, n_max):
    """Streaming decoder step h_{t-1} -> h_t from the index; the decoded frame goes to out[0]."""
    _dec_step(index, h, gd, ghd, rz, cb, QT, bq, HdT, bhd)
    for k in range(OT.shape[0]):
        Hs[k, 0] = h[k]
    _outputs(Hs, 1, OT, ob, n_max, Y, cnt, out, 0)


@njit(**_JIT)
def _run_item(frame_ptr, cols, vals, a, b, WxT, HeT, bie, WsT, bhe, LT, lb, cb, QT, bq, HdT, bhd,
              OT, ob, n_max, idx_out, dec_out, lat_out):
    """Encoder + decoder over frames a..b-1 from zero states into rows 0..b-a-1 of idx_out,
    dec_out and (unless it has no rows) lat_out. Outputs are computed every _CHUNK frames."""
    Ge = WsT.shape[1]
    Gd = QT.shape[1]
    Hd = OT.shape[0]
    s = np.zeros(Ge // 3)
    h = np.zeros(Gd // 3)
    gi, gh, gd, ghd, rz, z, Hs, Y, cnt = _scratch(Ge, Gd, lb.shape[0], Hd, ob.shape[0], _CHUNK)
    want_lat = lat_out.shape[0] > 0
    fill = 0
    for t in range(a, b):
        index = _enc_step(cols, vals, frame_ptr[t], frame_ptr[t + 1], s, h, gi, gh, gd, ghd, rz,
                          z, WxT, HeT, bie, WsT, bhe, LT, lb, cb, QT, bq, HdT, bhd)
        idx_out[t - a] = index
        if want_lat:
            for d in range(z.shape[0]):
                lat_out[t - a, d] = z[d]
        for k in range(Hd):
            Hs[k, fill] = h[k]
        fill += 1
        if fill == _CHUNK or t == b - 1:
            _outputs(Hs, fill, OT, ob, n_max, Y, cnt, dec_out, t - a + 1 - fill)
            fill = 0


@njit(parallel=True, **_JIT)
def _forward_items(frame_ptr, cols, vals, offsets, order, WxT, HeT, bie, WsT, bhe, LT, lb, cb, QT,
                   bq, HdT, bhd, OT, ob, n_max, idx_out, dec_out, lat_out):
    """_run_item over the (theta m, item i) pairs in parallel; pair q = m * n_items + i, in the
    order given (longest items first). Tensors carry a leading theta axis; outputs are
    (n_thetas, N, ...); lat_out is (n, 0, D) when latents are not wanted."""
    n_items = offsets.shape[0] - 1
    for p in prange(order.shape[0]):
        q = order[p]
        m = q // n_items
        i = q - m * n_items
        a = offsets[i]
        b = offsets[i + 1]
        _run_item(frame_ptr, cols, vals, a, b, WxT[m], HeT[m], bie[m], WsT[m], bhe[m], LT[m],
                  lb[m], cb[m], QT[m], bq[m], HdT[m], bhd[m], OT[m], ob[m], n_max,
                  idx_out[m, a:b], dec_out[m, a:b], lat_out[m, a:b])


@njit(**_JIT)
def _decode_item(indices, a, b, cb, QT, bq, HdT, bhd, OT, ob, n_max, out):
    """Decoder only over indices a..b-1 from a zero state into out[a:b]."""
    Gd = QT.shape[1]
    Hd = OT.shape[0]
    h = np.zeros(Gd // 3)
    _, _, gd, ghd, rz, _, Hs, Y, cnt = _scratch(0, Gd, 0, Hd, ob.shape[0], _CHUNK)
    fill = 0
    for t in range(a, b):
        _dec_step(indices[t], h, gd, ghd, rz, cb, QT, bq, HdT, bhd)
        for k in range(Hd):
            Hs[k, fill] = h[k]
        fill += 1
        if fill == _CHUNK or t == b - 1:
            _outputs(Hs, fill, OT, ob, n_max, Y, cnt, out, t + 1 - fill)
            fill = 0


@njit(parallel=True, **_JIT)
def _decode_items(indices, offsets, order, cb, QT, bq, HdT, bhd, OT, ob, n_max, out):
    """_decode_item over the items in parallel (longest first)."""
    for p in prange(order.shape[0]):
        i = order[p]
        _decode_item(indices, offsets[i], offsets[i + 1], cb, QT, bq, HdT, bhd, OT, ob, n_max, out)


# --------------------------------------------------------------------------- kernel tensors
class _Net(NamedTuple):
    """Kernel tensors of n thetas (leading axis n), built by :func:`_net`. Ge = 3 Hep and
    Gd = 3 Hdp gate lanes (blocks r, z, n, each padded to a multiple of 8)."""

    WxT: np.ndarray  # (n, C, Ge)   encoder W_ih on x, transposed
    HeT: np.ndarray  # (n, Hd, Ge)  encoder W_ih on h, transposed
    bie: np.ndarray  # (n, Ge)      encoder b_ih
    WsT: np.ndarray  # (n, He, Ge)  encoder W_hh, transposed
    bhe: np.ndarray  # (n, Ge)      encoder b_hh
    LT: np.ndarray   # (n, He, D)   latent W, transposed
    lb: np.ndarray   # (n, D)       latent b
    cb: np.ndarray   # (n, K, D)    codebook
    QT: np.ndarray   # (n, D, Gd)   decoder W_ih, transposed
    bq: np.ndarray   # (n, Gd)      decoder b_ih
    HdT: np.ndarray  # (n, Hd, Gd)  decoder W_hh, transposed
    bhd: np.ndarray  # (n, Gd)      decoder b_hh
    OT: np.ndarray   # (n, Hd, C)   output W, transposed
    ob: np.ndarray   # (n, C)       output b

    def one(self, m: int = 0) -> tuple:
        return tuple(a[m] for a in self)

    def decoder(self, m: int = 0) -> tuple:
        """Theta m's tensors that the decoder takes: cb, QT, bq, HdT, bhd, OT, ob."""
        return self.one(m)[7:]


def _pad(n: int) -> int:
    return -(-n // _LANES) * _LANES


def _gate_cols(w: np.ndarray, H: int) -> np.ndarray:
    """(n, 3H, I) gate-row matrix -> (n, I, 3Hp) transposed, each gate block zero-padded."""
    n, _, inputs = w.shape
    Hp = _pad(H)
    out = np.zeros((n, inputs, 3, Hp))
    out[:, :, :, :H] = w.reshape(n, 3, H, inputs).transpose(0, 3, 1, 2)
    return out.reshape(n, inputs, 3 * Hp)


def _gate_vec(b: np.ndarray, H: int) -> np.ndarray:
    n = b.shape[0]
    out = np.zeros((n, 3, _pad(H)))
    out[:, :, :H] = b.reshape(n, 3, H)
    return out.reshape(n, -1)


def _net(thetas: np.ndarray, config: FraeConfig) -> _Net:
    """Kernel tensors from checked thetas (n, p)."""
    layout = frae_layout(config)
    n = thetas.shape[0]
    C, He, Hd = config.n_channels, config.enc_hidden, config.dec_hidden

    def t(name: str) -> np.ndarray:
        spec = layout[name]
        return thetas[:, spec.slice].reshape((n,) + spec.shape)

    e_wih = t("enc.gru.W_ih")
    parts = _Net(
        WxT=_gate_cols(e_wih[:, :, :C], He), HeT=_gate_cols(e_wih[:, :, C:], He),
        bie=_gate_vec(t("enc.gru.b_ih"), He),
        WsT=_gate_cols(t("enc.gru.W_hh"), He), bhe=_gate_vec(t("enc.gru.b_hh"), He),
        LT=t("enc.latent.W").transpose(0, 2, 1), lb=t("enc.latent.b"), cb=t("codebook"),
        QT=_gate_cols(t("dec.gru.W_ih"), Hd), bq=_gate_vec(t("dec.gru.b_ih"), Hd),
        HdT=_gate_cols(t("dec.gru.W_hh"), Hd), bhd=_gate_vec(t("dec.gru.b_hh"), Hd),
        OT=t("dec.out.W").transpose(0, 2, 1), ob=t("dec.out.b"))
    return _Net(*(np.ascontiguousarray(a, dtype=np.float64) for a in parts))


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


def _frame_csr(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cols = np.flatnonzero(x != 0.0)
    return cols.astype(np.int64), np.ascontiguousarray(x[cols], dtype=np.float64)


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


def _run_forward(thetas: np.ndarray, config: FraeConfig, packed: PackedPatterns,
                 return_latents: bool, out: np.ndarray | None = None) -> list[FraeOutput]:
    net = _net(thetas, config)
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
    n_items = packed.n_items
    # pairs (theta m, item i) -> m * n_items + i; longest items first, the thetas of an item together
    order = (np.arange(n, dtype=np.int64)[None, :] * n_items + packed.order[:, None]).ravel()
    with numba.parallel_chunksize(1):
        _forward_items(packed.frame_ptr, packed.cols, packed.vals, packed.offsets, order, *net,
                       config.output_maxima, idx, dec, lat)
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
    with numba.parallel_chunksize(1):
        _decode_items(flat, off, _length_order(off), *net.decoder(), config.output_maxima, out)
    return out


# --------------------------------------------------------------------------- streaming
class Encoder:
    """Zero-delay streaming encoder (research §5): one pattern frame in, one index out.

    Runs its own copy of the decoder GRU, so ``h`` equals the :class:`Decoder`'s state after the
    same indices. States start at zero; :meth:`reset` starts a new item.
    """

    def __init__(self, theta: np.ndarray, config: FraeConfig) -> None:
        self.config = config
        self._net = _net(_one_theta(theta, config), config).one()
        Ge, Gd = self._net[3].shape[1], self._net[8].shape[1]
        self._s, self._h = np.zeros(Ge // 3), np.zeros(Gd // 3)
        self._scratch = _Scratch(*_scratch(Ge, Gd, config.latent_dim, 0, 0, 0))

    @property
    def s(self) -> np.ndarray:
        """Encoder GRU state s_t (a copy, (enc_hidden,))."""
        return self._s[:self.config.enc_hidden].copy()

    @property
    def h(self) -> np.ndarray:
        """The encoder's copy of the decoder state h_t (a copy, (dec_hidden,))."""
        return self._h[:self.config.dec_hidden].copy()

    @property
    def latent(self) -> np.ndarray:
        """Latent z_t of the last step (a copy)."""
        return self._scratch.z.copy()

    def reset(self) -> None:
        self._s[:] = 0.0
        self._h[:] = 0.0

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
        cols, vals = _frame_csr(x)
        return int(_encoder_step(cols, vals, self._s, self._h, *self._scratch[:6], *self._net[:12]))


class Decoder:
    """Streaming decoder: one index in, one decoded frame (C,) out. :meth:`reset` per item."""

    def __init__(self, theta: np.ndarray, config: FraeConfig) -> None:
        self.config = config
        self._dec = _net(_one_theta(theta, config), config).decoder()
        Gd = self._dec[1].shape[1]
        self._h = np.zeros(Gd // 3)
        self._scratch = _Scratch(*_scratch(0, Gd, 0, config.dec_hidden, config.n_channels, 1))

    @property
    def h(self) -> np.ndarray:
        """Decoder GRU state h_t (a copy, (dec_hidden,))."""
        return self._h[:self.config.dec_hidden].copy()

    def reset(self) -> None:
        self._h[:] = 0.0

    def step(self, index: int) -> np.ndarray:
        """Decode one codebook index -> decoded frame (C,) float64 (a new array)."""
        K = self.config.codebook_size
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < K:
            raise ParameterError(f"index {index!r}; expected an integer in 0..{K - 1}")
        out = np.empty((1, self.config.n_channels))
        sc = self._scratch
        _decoder_step(int(index), self._h, sc.gd, sc.ghd, sc.rz, sc.Hs, sc.Y, sc.cnt, out,
                      *self._dec, self.config.output_maxima)
        return out[0]
