"""pystoi's resampler to the STOI rate and its polyphase form, evaluated only where needed.

pystoi 0.4.1 resamples with scipy ``resample_poly`` and the Octave-compatible Kaiser window of
``utils.resample_oct`` (:func:`_octave_filter`; 16 kHz -> 10 kHz: up 5, down 8, 581 taps).
VSTOI needs the 10 kHz signal only on the samples that feed kept STOI frames: the same filter,
rearranged per phase (:func:`_polyphase_table`), is evaluated at those outputs only
(:func:`_resample_runs`), reading the input samples :func:`_read_window` names.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit


@lru_cache(maxsize=None)
def _octave_filter(fs: int, target: int) -> tuple[int, int, int, np.ndarray]:
    """(up, down, half length, taps*up) of pystoi's ``resample_oct(x, target, fs)`` (STOI:
    ``target`` = 10000).

    Octave ``resample`` design (pystoi utils._resample_window_oct): Kaiser-windowed sinc, 60 dB
    rejection, cutoff 1/(2 max(p, q)), roll-off cutoff/10, half length
    ceil((60 - 8) / (28.714 roll-off)), beta = 0.1102 (60 - 8.7); normalised to unit sum, then
    scipy ``resample_poly`` multiplies by ``up``. 16 kHz -> up 5, down 8, 581 taps.
    """
    g = math.gcd(target, fs)
    p, q = target // g, fs // g
    cutoff = 1.0 / (2 * max(p, q))
    roll_off = cutoff / 10
    rejection_db = 60.0  # -20 * log10_rejection, log10_rejection = -3
    half = int(np.ceil((rejection_db - 8) / (28.714 * roll_off)))
    t = np.arange(-half, half + 1)
    ideal = 2 * float(p) * cutoff * np.sinc(2 * cutoff * t)
    beta = 0.1102 * (rejection_db - 8.7)  # Kaiser beta for rejection > 50 dB
    h = np.kaiser(2 * half + 1, beta) * ideal
    h = h / np.sum(h)
    return p, q, half, h * p


def _polyphase_table(up: int, down: int, half: int, h_up: np.ndarray) -> np.ndarray:
    """Taps rearranged so output m is a contiguous dot product (see :func:`_resample_runs`).

    y[m] = sum_i x[i] h_up[m down - i up + half] (scipy resample_poly's alignment). With
    phi = (m down + half) mod up and base = (m down + half - phi) / up, the inputs are
    x[base - nq + 1 + j], j = 0..nq-1, with weight G[phi, j] = h_up[phi + up (nq - 1 - j)]
    (0 beyond the filter).
    """
    ntaps = 2 * half + 1
    nq = -(-ntaps // up)
    G = np.zeros((up, nq))
    for phi in range(up):
        for j in range(nq):
            t = phi + up * (nq - 1 - j)
            if t < ntaps:
                G[phi, j] = h_up[t]
    return G


def _polyphase(fs: int, target: int) -> tuple[np.ndarray, int, int]:
    """(G, down, half) of :func:`_resample_runs` from ``fs`` to ``target`` Hz; the identity
    (one tap 1, down 1, half 0) when the rates are equal."""
    if fs == target:
        return np.ones((1, 1)), 1, 0
    up, down, half, h_up = _octave_filter(fs, target)
    return _polyphase_table(up, down, half, h_up), down, half


def _read_window(runs_out: np.ndarray, fs: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last input sample (unclipped) that :func:`_resample_runs` reads for the
    outputs of each run [start, stop) of ``runs_out`` (R, 2), resampling ``fs`` -> ``target``."""
    up, down, half, _ = _octave_filter(fs, target)
    nq = -(-(2 * half + 1) // up)  # taps per phase of _polyphase_table
    # _resample_runs reads x[floor(t/up) - nq + 1 .. floor(t/up)], t = m down + half,
    # for every output m: the whole read window, zero-padded taps included (they
    # multiply whatever is there, so it must be written: 0 * NaN is NaN).
    a = (runs_out[:, 0] * down + half) // up - nq + 1
    b = ((runs_out[:, 1] - 1) * down + half) // up + 1
    return a, b


@njit(cache=True, fastmath={"reassoc", "contract"})
def _resample_runs(y16p, pad, G, down, half, runs10, y10):
    """pystoi/scipy polyphase resampler evaluated only at the outputs in ``runs10``.

    y10[m] = sum_j G[phi, j] x[base - nq + 1 + j] with phi = (m down + half) mod up (see
    :func:`_polyphase_table`): one contiguous dot product per output. x is read from the
    zero-padded ``y16p`` (offset ``pad``). Outputs m, m + up, m + 2 up, m + 3 up share the filter
    row (their inputs start ``down`` apart), so they are computed together: one load of G per
    four products (the kernel is load-bound).
    """
    up, nq = G.shape
    blk = 4 * up
    for q in range(runs10.shape[0]):
        m = runs10[q, 0]
        stop = runs10[q, 1]
        while m + blk <= stop:
            for j0 in range(up):
                mm = m + j0
                t = mm * down + half
                phi = t % up
                i0 = (t - phi) // up - nq + 1 + pad
                g = G[phi]
                x0 = y16p[i0:i0 + nq]
                x1 = y16p[i0 + down:i0 + down + nq]
                x2 = y16p[i0 + 2 * down:i0 + 2 * down + nq]
                x3 = y16p[i0 + 3 * down:i0 + 3 * down + nq]
                a0 = 0.0
                a1 = 0.0
                a2 = 0.0
                a3 = 0.0
                for j in range(nq):
                    gj = g[j]
                    a0 += gj * x0[j]
                    a1 += gj * x1[j]
                    a2 += gj * x2[j]
                    a3 += gj * x3[j]
                y10[mm] = a0
                y10[mm + up] = a1
                y10[mm + 2 * up] = a2
                y10[mm + 3 * up] = a3
            m += blk
        for mm in range(m, stop):
            t = mm * down + half
            phi = t % up
            i0 = (t - phi) // up - nq + 1 + pad
            g = G[phi]
            x = y16p[i0:i0 + nq]
            acc = 0.0
            for j in range(nq):
                acc += g[j] * x[j]
            y10[mm] = acc
