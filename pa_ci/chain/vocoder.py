"""Sine vocoder: stimulation pattern -> audio (what VSTOI listens to).

Written from ``specs/signal_chain_research.md`` §2 (the toolbox's ``Resynth_audio_proc``) and
DECISIONS.md "Vocoder (VSTOI)". Steps: pattern magnitudes -> inverse LGF, 0 stays 0
(:func:`envelopes`) -> zero-order hold to ``fs``, frame k fills samples k*hop .. k*hop+hop-1
(:func:`zero_order_hold`) -> sum over channels of envelope * sin(2 pi f_c n / fs) with
n = 1, 2, ... and f_c the band centres (:func:`carriers`) -> divide by the peak.
The pattern representation is described once, in :mod:`pa_ci.chain.ace`.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from .ace import AceParams, default_params
from ..errors import ParameterError


def _pattern_array(pattern: np.ndarray, m: int) -> np.ndarray:
    """``pattern`` as a 2-D numeric array with ``m`` columns and >= 1 frame, or ParameterError."""
    p = np.asarray(pattern)
    if p.dtype.kind not in "fiub":
        raise ParameterError(f"pattern is not numeric; expected a (frames, {m}) array of floats")
    if p.ndim != 2 or p.shape[1] != m:
        raise ParameterError(f"pattern has shape {p.shape}; expected (frames, {m})")
    if p.shape[0] == 0:
        raise ParameterError(f"pattern has no frames; expected shape (frames >= 1, {m})")
    return p


_NOT_FINITE = "pattern contains NaN or Inf; expected finite values in [0, 1]"


def check_pattern(pattern: np.ndarray, params: AceParams | None = None) -> np.ndarray:
    """``pattern`` as float64 (K, M) clipped to [0, 1], or :class:`ParameterError` if unusable.

    Expected: a numeric 2-D array with ``params.n_channels`` (22) columns, at least one frame, and
    finite values. Values outside [0, 1] (e.g. a decoder's small overshoot or the toolbox's
    -1e-10 "no pulse" marker) are clipped, not rejected.
    """
    params = params if params is not None else default_params()
    p = _pattern_array(pattern, params.n_channels).astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise ParameterError(_NOT_FINITE)
    return np.clip(p, 0.0, 1.0)


@numba.njit(cache=True)
def _inverse_lgf(pattern, base, span, log1p_alpha, alpha, out):  # pragma: no cover - compiled
    """out = inverse LGF of the clipped pattern, 0 stays 0; False if a value is NaN or Inf.

    Fuses :func:`check_pattern` and :func:`pa_ci.chain.ace.lgf_inverse` (its NumPy twin). Per frame, a
    branch-free pass collects the active channels, so that only those (N = 8 of 22) pay for the
    exponential and no branch mispredicts on the sparse pattern.
    """
    rows, cols = pattern.shape
    finite = True
    active = np.empty(cols, dtype=np.int64)
    for k in range(rows):
        n = 0
        for c in range(cols):
            v = np.float64(pattern[k, c])
            finite &= np.isfinite(v)
            out[k, c] = 0.0
            active[n] = c
            n += v > 0.0
        for j in range(n):
            c = active[j]
            # exp(.) - 1 rather than expm1: the argument is >= 0, so the absolute error stays
            # below 1e-18 next to the base level 0.01, and exp is faster.
            v = min(np.float64(pattern[k, c]), 1.0)
            out[k, c] = base + span * (np.exp(v * log1p_alpha) - 1.0) / alpha
    return finite


def envelopes(pattern: np.ndarray, params: AceParams | None = None,
              out: np.ndarray | None = None) -> np.ndarray:
    """Linear envelopes (K, M) float64 that drive the vocoder: inverse LGF, 0 stays 0 (§1.8, §2).

    Same checks and clipping as :func:`check_pattern`; equal to
    ``lgf_inverse(check_pattern(pattern))`` (tested), computed in one compiled pass. ``out``: a
    float64 C-contiguous array of the pattern's shape to write into (SPSA reuses one buffer
    instead of allocating ~100 MB per evaluation).
    """
    params = params if params is not None else default_params()
    p = _pattern_array(pattern, params.n_channels)
    if p.dtype.kind != "f":
        p = p.astype(np.float64)
    if out is None:
        out = np.empty(p.shape, dtype=np.float64)
    elif out.shape != p.shape or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ParameterError(f"out must be a C-contiguous float64 array of shape {p.shape}, got "
                             f"{out.dtype} {out.shape}")
    alpha = float(params.lgf_alpha)
    if not _inverse_lgf(p, float(params.lgf_base), float(params.lgf_sat - params.lgf_base),
                        math.log1p(alpha), alpha, out):
        raise ParameterError(_NOT_FINITE)
    return out


def zero_order_hold(env: np.ndarray, hop: int) -> np.ndarray:
    """Upsample frames to samples by repetition: row k fills rows k*hop .. k*hop+hop-1 (§2 step 1)."""
    return np.repeat(np.asarray(env), int(hop), axis=0)


def carriers(n_samples: int, params: AceParams | None = None) -> np.ndarray:
    """Sine carriers (n_samples, M): sin(2 pi f_c n / fs) for n = 1 .. n_samples (§2 step 2)."""
    params = params if params is not None else default_params()
    n = np.arange(1, int(n_samples) + 1, dtype=np.float64)
    return np.sin(2.0 * np.pi * np.outer(n, params.centre_frequencies) / params.fs)


@numba.njit(cache=True)
def _synthesize(env, freqs, hop, fs, out):  # pragma: no cover - compiled
    """out[k*hop + j] += env[k, c] * sin(2 pi f_c (k*hop + j + 1) / fs), skipping zero envelopes."""
    n_frames, n_channels = env.shape
    for c in range(n_channels):
        step = 2.0 * np.pi * freqs[c] / fs
        for k in range(n_frames):
            e = env[k, c]
            if e == 0.0:
                continue
            first = k * hop
            for j in range(hop):
                n = first + j
                out[n] += e * np.sin(step * (n + 1))


def vocode(pattern: np.ndarray, params: AceParams | None = None, normalise: bool = True) -> np.ndarray:
    """Audio (K * hop,) float64 at ``params.fs`` from a stimulation pattern (research §2).

    With ``normalise`` the output is divided by its peak |value| (an all-zero pattern gives
    zeros, not NaN). Raises :class:`ParameterError` for a pattern :func:`check_pattern` rejects.
    """
    params = params if params is not None else default_params()
    env = envelopes(pattern, params)
    out = np.zeros(env.shape[0] * params.hop)
    freqs = np.ascontiguousarray(params.centre_frequencies, dtype=np.float64)
    _synthesize(np.ascontiguousarray(env), freqs, int(params.hop), float(params.fs), out)
    if normalise:
        peak = np.max(np.abs(out))
        if peak > 0.0:
            out /= peak
    return out


__all__ = ["carriers", "check_pattern", "envelopes", "vocode", "zero_order_hold"]
