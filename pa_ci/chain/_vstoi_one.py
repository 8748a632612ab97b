"""VSTOI of one clean :class:`~pa_ci.chain.stoi.Reference` from vocoder envelopes: the fast path
behind :meth:`Reference.vstoi_envelopes <pa_ci.chain.stoi.Reference.vstoi_envelopes>`.

One concept: envelopes -> sine-carrier vocoder on the needed input samples only
(:func:`_vocode_runs`) -> the pystoi resampler on those samples (:mod:`._resample`) -> band
envelopes and the STOI/ESTOI segment loop (:mod:`._stoi_kernels`), in Numba (the kernels and
their argument groups :class:`_Carriers` and :class:`_Analysis`). The reference is read through
its attributes only, so this module does not import :mod:`pa_ci.chain.stoi`, which calls it;
:mod:`pa_ci.chain.vstoi` batches the same kernels over many items (``ReferenceSet``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numba import njit

from ._resample import _polyphase, _resample_runs
from ._stoi_kernels import (BAND_HI, BAND_LO, CLIP_FACTOR, FS, N_SEGMENT, NUMBAND, TOO_SHORT_SCORE,
                            WINDOW, _FFT_REV, _FFT_TW, _estoi_core, _stoi_core, _warn_too_short,
                            _y_side_into)
from ..errors import ParameterError


# --- the kernels' argument groups ----------------------------------------------------------------

class _Carriers(NamedTuple):
    """The vocoder's carrier phase tables (:func:`_carrier_tables`) for one hop."""
    sin_th: np.ndarray  # (K, C) sin of the frame-start phases 2 pi f_c k hop / fs
    cos_th: np.ndarray  # (K, C) their cos
    cs: np.ndarray      # (C, 2, hop) cos/sin of 2 pi f_c (r + 1) / fs
    hop: int


class _Analysis(NamedTuple):
    """What every item shares from the vocoded signal to the score: the polyphase resampler to
    10 kHz (:func:`._resample._polyphase`), the STFT window, band bins, FFT tables and the STOI
    segment length and clipping factor."""
    G: np.ndarray       # (up, taps per phase) polyphase filter
    down: int
    half: int
    w: np.ndarray       # stoi.WINDOW
    lo: np.ndarray      # stoi.BAND_LO
    hi: np.ndarray      # stoi.BAND_HI
    rev: np.ndarray     # FFT bit reversal
    tw: np.ndarray      # FFT twiddles
    nseg: int           # stoi.N_SEGMENT
    clip: float         # stoi.CLIP_FACTOR


def _analysis(fs: int) -> _Analysis:
    """The :class:`_Analysis` of signals at ``fs`` Hz."""
    G, down, half = _polyphase(fs, FS)
    return _Analysis(G, down, half, WINDOW, BAND_LO, BAND_HI, _FFT_REV, _FFT_TW, N_SEGMENT,
                     CLIP_FACTOR)


# --- Numba kernels -------------------------------------------------------------------------------

@njit(cache=True, fastmath={"reassoc", "contract"})
def _vocode_runs(E, sin_th, cos_th, cs, hop, L, runs16, pad, y16p):
    """Sine-carrier vocoder (zero-order hold, NMT ``Resynth_audio_proc``), only on ``runs16``.

    y[i] = sum_c E[i // hop, c] sin(w_c (i + 1)) for i < L, written to y16p[pad + i]. With
    k = i // hop and r = i - k hop: sin(w_c (k hop + r + 1)) = sin(th_kc) cos(w_c (r + 1))
    + cos(th_kc) sin(w_c (r + 1)), th_kc = w_c k hop: tables ``sin_th``/``cos_th`` (K, C) and
    ``cs`` (C, 2, hop) = cos/sin(w_c (r + 1)). Only the nonzero envelopes of a frame are visited
    (ACE patterns have 8 of 22). The margins y16p[:pad] and y16p[pad + L:] are zeroed (scipy pads
    with zeros; the vocoded signal is trimmed to L). No peak normalisation (STOI is gain
    invariant).
    """
    C = E.shape[1]
    K = E.shape[0]
    active = np.empty(C, np.int64)
    buf = np.empty(hop)
    for i in range(pad):
        y16p[i] = 0.0
    for i in range(pad + L, y16p.shape[0]):
        y16p[i] = 0.0
    for q in range(runs16.shape[0]):
        a = runs16[q, 0]
        b = runs16[q, 1]
        for k in range(a // hop, (b - 1) // hop + 1):
            for r in range(hop):
                buf[r] = 0.0
            if k < K:
                n = 0
                for c in range(C):  # branch-free list of the active channels
                    active[n] = c
                    n += E[k, c] != 0.0
                for u in range(n):
                    c = active[u]
                    e = E[k, c]
                    ac = e * sin_th[k, c]
                    bc = e * cos_th[k, c]
                    row_c = cs[c, 0]
                    row_s = cs[c, 1]
                    for r in range(hop):
                        buf[r] += ac * row_c[r] + bc * row_s[r]
            base = k * hop
            for i in range(max(a, base), min(b, base + hop)):
                y16p[pad + i] = buf[i - base]


@njit(cache=True)
def _score_vocoded(y16p, pad, ana, runs10, L10, ks, xb, xnorm, xmean, xcn, xbar, extended,
                   y10, frames, yb):
    """STOI/ESTOI of the vocoded 16 kHz signal in ``y16p`` (valid on the item's runs16):
    resample -> frames -> FFT bands -> STOI core (``ana``: :class:`_Analysis`). ``y10`` (>= L10),
    ``frames`` (>= n_kept - 1 rows of 256) and ``yb`` (>= NUMBAND x (n_kept - 1) values) are
    scratch (:func:`_scratch`): no allocation per item."""
    T = ks.shape[0] - 1
    y10 = y10[:L10]
    _resample_runs(y16p, pad, ana.G, ana.down, ana.half, runs10, y10)
    yb = yb[:NUMBAND * T].reshape((NUMBAND, T))
    _y_side_into(y10, ks, ana.w, ana.lo, ana.hi, ana.rev, ana.tw, frames[:T], yb)
    if extended:
        return _estoi_core(xbar, yb, ana.nseg)
    return _stoi_core(xb, yb, xnorm, xmean, xcn, ana.nseg, ana.clip)


@njit(cache=True)
def _vstoi_item(E, car, L, runs16, ana, runs10, L10, ks, xb, xnorm, xmean, xcn, xbar, extended):
    """VSTOI of one item from its envelopes: vocode -> resample -> frames -> FFT bands -> STOI
    (``car``: :class:`_Carriers`, ``ana``: :class:`_Analysis`)."""
    pad = ana.G.shape[1] + 1
    y16p = np.empty(L + 2 * pad)
    _vocode_runs(E, car.sin_th, car.cos_th, car.cs, car.hop, L, runs16, pad, y16p)
    T = ks.shape[0] - 1
    return _score_vocoded(y16p, pad, ana, runs10, L10, ks, xb, xnorm, xmean, xcn, xbar, extended,
                          np.empty(L10), np.empty((T, ana.w.shape[0])), np.empty(NUMBAND * T))


class _Scratch(NamedTuple):
    """Per-thread scratch rows of the batched VSTOI kernels (:func:`_scratch`): row
    ``numba.get_thread_id()`` of each, long enough for the longest item. Allocated once per
    :class:`~pa_ci.chain.vstoi.ReferenceSet`, so the pages are faulted in once, not per item
    and call (fresh ~MB arrays per item cost ~15 % of a 2-thread SPSA iteration)."""
    y16p: np.ndarray    # (threads, max L + 2 pad) vocoded signal, zero-padded
    y10: np.ndarray     # (threads, max L10) resampled signal
    frames: np.ndarray  # (threads, max T, 256) STFT frames
    yb: np.ndarray      # (threads, NUMBAND max T) band envelopes


def _scratch(threads: int, max_len: int, max_len10: int, max_frames: int,
             ana: _Analysis) -> _Scratch:
    """:class:`_Scratch` for ``threads`` threads and items of at most these sizes (``ana``: the
    items' :class:`_Analysis`, whose filter sets the zero padding)."""
    pad = ana.G.shape[1] + 1
    return _Scratch(np.empty((threads, max_len + 2 * pad)), np.empty((threads, max_len10)),
                    np.empty((threads, max_frames, WINDOW.shape[0])),
                    np.empty((threads, NUMBAND * max_frames)))


# --- the fast path of Reference.vstoi_envelopes --------------------------------------------------

def _carrier_tables(freqs: np.ndarray, hop: int, fs: int, n_frames: int):
    """Phase tables of the vocoder's carriers sin(2 pi f_c n / fs), n = 1, 2, ...

    sin/cos of the frame-start phase 2 pi f_c k hop / fs (n_frames, C), reduced modulo fs before
    scaling, and cos/sin of 2 pi f_c (r+1) / fs for r < hop, (C, hop).
    """
    k = np.arange(n_frames, dtype=np.float64)[:, None] * hop
    th = 2 * np.pi * (np.fmod(k * freqs[None, :], fs) / fs)
    r = np.arange(1, hop + 1, dtype=np.float64)[None, :]
    ph = 2 * np.pi * (np.fmod(freqs[:, None] * r, fs) / fs)
    cs = np.ascontiguousarray(np.stack([np.cos(ph), np.sin(ph)], axis=1))
    return np.ascontiguousarray(np.sin(th)), np.ascontiguousarray(np.cos(th)), cs


def _check_envelopes(E, freqs, hop, length: int) -> tuple[np.ndarray, np.ndarray, int]:
    E = np.ascontiguousarray(E, dtype=np.float64)
    freqs = np.ascontiguousarray(freqs, dtype=np.float64).ravel()
    if E.ndim != 2 or E.shape[1] != freqs.size:
        raise ParameterError(f"envelopes must have shape (frames, {freqs.size}) to match the "
                             f"carrier frequencies, got {E.shape}")
    if int(hop) != hop or hop < 1:
        raise ParameterError(f"hop must be a positive integer, got {hop!r}")
    hop = int(hop)
    if E.shape[0] * hop < length:
        raise ParameterError(f"{E.shape[0]} frames x hop {hop} = {E.shape[0] * hop} samples is "
                             f"shorter than the clean reference ({length} samples)")
    return E, freqs, hop


# ``Reference`` is pa_ci.chain.stoi.Reference, named only: stoi imports this module
def _reference_vstoi(reference: "Reference", envelopes: np.ndarray,  # noqa: F821
                     freqs: Sequence[float] | np.ndarray, hop: int, extended: bool,
                     tables: dict) -> float:
    """:meth:`Reference.vstoi_envelopes <pa_ci.chain.stoi.Reference.vstoi_envelopes>`;
    ``tables`` is the reference's own cache of carrier tables."""
    E, f, hop = _check_envelopes(envelopes, freqs, hop, reference.length)
    if not reference.valid:
        _warn_too_short(reference.n_frames, stacklevel=4)  # the caller of vstoi_envelopes
        return TOO_SHORT_SCORE
    runs10, runs16 = reference.needed_runs()
    key = (f.tobytes(), hop)
    n_k = -(-reference.length // hop)
    if key not in tables:
        tables[key] = _carrier_tables(f, hop, reference.fs, n_k)
    carriers = _Carriers(*tables[key], hop)
    ana = _analysis(reference.fs)
    xbar = reference.estoi_segments if extended else np.zeros((0, NUMBAND, N_SEGMENT))
    score = float(_vstoi_item(E[:n_k], carriers, reference.length, runs16, ana, runs10,
                              reference.length10, reference.kept_starts, reference.x_bands,
                              *reference.x_stats, xbar, bool(extended)))
    if not math.isfinite(score):  # checked on the result: a full scan of E costs more
        raise ParameterError("envelopes contain NaN or Inf (or overflow) where they reach "
                             "the score")
    return score
