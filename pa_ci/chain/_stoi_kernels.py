"""The STOI constants and Numba kernels (pystoi 0.4.1 pipeline, Taal et al. 2011; ESTOI: Jensen &
Taal 2016) that :mod:`pa_ci.chain.stoi` and :mod:`pa_ci.chain.vstoi` share.

One concept: the computation from 10 kHz samples of kept frames to a STOI/ESTOI score, for a
clean side prepared once: the constants of pystoi, the third-octave band bins and FFT tables,
the STFT of the silent-frame-removed signal, the band envelopes, the clean-side segment
statistics and the STOI/ESTOI segment loops. The clean :class:`~pa_ci.chain.stoi.Reference` and
the public functions live in :mod:`pa_ci.chain.stoi`, which re-exports these names.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from numba import njit

from ._fft import _fft_constants, _frames_band_envelopes


# --- constants (pystoi 0.4.1 stoi.py, = Taal et al. 2011 Sec. III / MATLAB stoi.m) -------------
FS = 10000             # internal sample rate (Hz), pystoi FS
N_FRAME = 256          # frame length (samples at 10 kHz, 25.6 ms), pystoi N_FRAME
HOP = N_FRAME // 2     # 50 % overlap: pystoi silent-frame hop int(N_FRAME/2), stft overlap=2
NFFT = 512             # zero-padded FFT size, pystoi NFFT
NUMBAND = 15           # third-octave bands, pystoi NUMBAND
MINFREQ = 150.0        # centre of the lowest band (Hz), pystoi MINFREQ
N_SEGMENT = 30         # frames per intermediate-intelligibility segment (384 ms), pystoi N
BETA = -15.0           # lower signal-to-distortion bound (dB), pystoi BETA
DYN_RANGE = 40.0       # silent-frame dynamic range (dB), pystoi DYN_RANGE
EPS = float(np.finfo(np.float64).eps)  # pystoi utils.EPS
CLIP_FACTOR = 1.0 + 10.0 ** (-BETA / 20.0)  # pystoi: x * (1 + 10**(-BETA/20)), Taal 2011 Eq. 3
TOO_SHORT_SCORE = 1e-5  # pystoi's return value when fewer than N_SEGMENT frames remain
# MATLAB hanning(256) = 0.5 - 0.5 cos(2 pi n / 257), n = 1..256; built exactly as pystoi does.
WINDOW = np.hanning(N_FRAME + 2)[1:-1]


# --- band bins and FFT tables --------------------------------------------------------------------

def _third_octave_bins(fs: int = FS, nfft: int = NFFT, num_bands: int = NUMBAND,
                       min_freq: float = MINFREQ) -> tuple[np.ndarray, np.ndarray]:
    """Bin ranges [lo, hi) of the third-octave bands (pystoi ``utils.thirdoct``).

    Edges ``min_freq * 2**((2k -+ 1)/6)`` snapped to the nearest FFT bin (first bin on ties, as
    ``np.argmin``); a band sums |X|^2 over bins lo..hi-1 (upper edge bin excluded).
    """
    f = np.linspace(0, fs, nfft + 1)[: nfft // 2 + 1]
    k = np.arange(num_bands, dtype=float)
    lo_f = min_freq * np.power(2.0, (2 * k - 1) / 6)
    hi_f = min_freq * np.power(2.0, (2 * k + 1) / 6)
    lo = np.array([np.argmin(np.square(f - v)) for v in lo_f], dtype=np.int64)
    hi = np.array([np.argmin(np.square(f - v)) for v in hi_f], dtype=np.int64)
    return lo, hi


BAND_LO, BAND_HI = _third_octave_bins()

_FFT_REV, _FFT_TW = _fft_constants(NFFT)  # tables of the own FFT (:mod:`._fft`)


# --- Numba kernels -------------------------------------------------------------------------------

@njit(cache=True)
def _stft_frames(y10, ks, w, frames):
    """Windowed STFT frames of the silent-frame-removed signal (pystoi rebuild + ``stft``).

    The rebuilt signal is the overlap-add (hop 128) of the windowed kept frames; pystoi's STFT
    then takes frames j = 0..n_kept-2 (the last is excluded again). Rebuilt segment s is
    w[:128] y[ks[s]:] + w[128:] y[ks[s-1]+128:], so frame j only needs kept frames j-1, j, j+1.
    ``frames`` has shape (n_kept - 1, 256).
    """
    half = w.shape[0] // 2
    for j in range(frames.shape[0]):
        a = ks[j]
        b = ks[j + 1]
        for u in range(half):
            v = w[u] * y10[a + u]
            if j >= 1:
                v += w[half + u] * y10[ks[j - 1] + half + u]
            frames[j, u] = w[u] * v
            v2 = w[u] * y10[b + u] + w[half + u] * y10[a + half + u]
            frames[j, half + u] = w[half + u] * v2


@njit(cache=True)
def _stoi_x_stats(xb, nseg):
    """Per band and segment: ||x_seg||, mean(x_seg), ||x_seg - mean|| + EPS (clean side of STOI)."""
    J, T = xb.shape
    M = T - nseg + 1
    xnorm = np.empty((J, M))
    xmean = np.empty((J, M))
    xcn = np.empty((J, M))
    for j in range(J):
        for m in range(M):
            s = 0.0
            s2 = 0.0
            for t in range(nseg):
                v = xb[j, m + t]
                s += v
                s2 += v * v
            mu = s / nseg
            c2 = 0.0
            for t in range(nseg):
                v = xb[j, m + t] - mu
                c2 += v * v
            xnorm[j, m] = math.sqrt(s2)
            xmean[j, m] = mu
            xcn[j, m] = math.sqrt(c2) + EPS
    return xnorm, xmean, xcn


@njit(cache=True)
def _stoi_core(xb, yb, xnorm, xmean, xcn, nseg, clip):
    """STOI d (Taal et al. 2011 Eq. 3-6, pystoi): mean over bands j and segments m of the
    correlation of the centred clean segment with the scaled (alpha = ||x|| / (||y|| + EPS)),
    clipped (min(alpha y, x (1 + 10^(-BETA/20)))) and centred processed segment.

    Segments are taken 8 at a time with their sums in scalar registers (the compiler packs the
    8 into one vector), each sum over the segment's frames in order, and added to the total in
    segment order: bitwise the same as one segment at a time (:func:`_stoi_core_plain`, the
    remainder), without reassociation.
    """
    J, T = yb.shape
    M = T - nseg + 1
    nblk = M // 8
    total = 0.0
    for j in range(J):
        y = yb[j]
        x = xb[j]
        xn = xnorm[j]
        xm = xmean[j]
        for mb in range(nblk):
            m0 = mb * 8
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            s4 = 0.0
            s5 = 0.0
            s6 = 0.0
            s7 = 0.0
            for t in range(nseg):
                o = m0 + t
                s0 += y[o + 0] * y[o + 0]
                s1 += y[o + 1] * y[o + 1]
                s2 += y[o + 2] * y[o + 2]
                s3 += y[o + 3] * y[o + 3]
                s4 += y[o + 4] * y[o + 4]
                s5 += y[o + 5] * y[o + 5]
                s6 += y[o + 6] * y[o + 6]
                s7 += y[o + 7] * y[o + 7]
            a0 = xn[m0 + 0] / (math.sqrt(s0) + EPS)
            a1 = xn[m0 + 1] / (math.sqrt(s1) + EPS)
            a2 = xn[m0 + 2] / (math.sqrt(s2) + EPS)
            a3 = xn[m0 + 3] / (math.sqrt(s3) + EPS)
            a4 = xn[m0 + 4] / (math.sqrt(s4) + EPS)
            a5 = xn[m0 + 5] / (math.sqrt(s5) + EPS)
            a6 = xn[m0 + 6] / (math.sqrt(s6) + EPS)
            a7 = xn[m0 + 7] / (math.sqrt(s7) + EPS)
            u0 = 0.0
            u1 = 0.0
            u2 = 0.0
            u3 = 0.0
            u4 = 0.0
            u5 = 0.0
            u6 = 0.0
            u7 = 0.0
            for t in range(nseg):
                o = m0 + t
                u0 += min(a0 * y[o + 0], x[o + 0] * clip)
                u1 += min(a1 * y[o + 1], x[o + 1] * clip)
                u2 += min(a2 * y[o + 2], x[o + 2] * clip)
                u3 += min(a3 * y[o + 3], x[o + 3] * clip)
                u4 += min(a4 * y[o + 4], x[o + 4] * clip)
                u5 += min(a5 * y[o + 5], x[o + 5] * clip)
                u6 += min(a6 * y[o + 6], x[o + 6] * clip)
                u7 += min(a7 * y[o + 7], x[o + 7] * clip)
            u0 = u0 / nseg
            u1 = u1 / nseg
            u2 = u2 / nseg
            u3 = u3 / nseg
            u4 = u4 / nseg
            u5 = u5 / nseg
            u6 = u6 / nseg
            u7 = u7 / nseg
            q0 = 0.0
            q1 = 0.0
            q2 = 0.0
            q3 = 0.0
            q4 = 0.0
            q5 = 0.0
            q6 = 0.0
            q7 = 0.0
            d0 = 0.0
            d1 = 0.0
            d2 = 0.0
            d3 = 0.0
            d4 = 0.0
            d5 = 0.0
            d6 = 0.0
            d7 = 0.0
            for t in range(nseg):
                o = m0 + t
                v = min(a0 * y[o + 0], x[o + 0] * clip) - u0
                q0 += v * v
                d0 += v * (x[o + 0] - xm[m0 + 0])
                v = min(a1 * y[o + 1], x[o + 1] * clip) - u1
                q1 += v * v
                d1 += v * (x[o + 1] - xm[m0 + 1])
                v = min(a2 * y[o + 2], x[o + 2] * clip) - u2
                q2 += v * v
                d2 += v * (x[o + 2] - xm[m0 + 2])
                v = min(a3 * y[o + 3], x[o + 3] * clip) - u3
                q3 += v * v
                d3 += v * (x[o + 3] - xm[m0 + 3])
                v = min(a4 * y[o + 4], x[o + 4] * clip) - u4
                q4 += v * v
                d4 += v * (x[o + 4] - xm[m0 + 4])
                v = min(a5 * y[o + 5], x[o + 5] * clip) - u5
                q5 += v * v
                d5 += v * (x[o + 5] - xm[m0 + 5])
                v = min(a6 * y[o + 6], x[o + 6] * clip) - u6
                q6 += v * v
                d6 += v * (x[o + 6] - xm[m0 + 6])
                v = min(a7 * y[o + 7], x[o + 7] * clip) - u7
                q7 += v * v
                d7 += v * (x[o + 7] - xm[m0 + 7])
            total += d0 / ((math.sqrt(q0) + EPS) * xcn[j, m0 + 0])
            total += d1 / ((math.sqrt(q1) + EPS) * xcn[j, m0 + 1])
            total += d2 / ((math.sqrt(q2) + EPS) * xcn[j, m0 + 2])
            total += d3 / ((math.sqrt(q3) + EPS) * xcn[j, m0 + 3])
            total += d4 / ((math.sqrt(q4) + EPS) * xcn[j, m0 + 4])
            total += d5 / ((math.sqrt(q5) + EPS) * xcn[j, m0 + 5])
            total += d6 / ((math.sqrt(q6) + EPS) * xcn[j, m0 + 6])
            total += d7 / ((math.sqrt(q7) + EPS) * xcn[j, m0 + 7])
        for m in range(nblk * 8, M):
            s2 = 0.0
            for t in range(nseg):
                v = y[m + t]
                s2 += v * v
            alpha = xn[m] / (math.sqrt(s2) + EPS)
            mu = 0.0
            for t in range(nseg):
                mu += min(alpha * y[m + t], x[m + t] * clip)
            mu = mu / nseg
            ss = 0.0
            dot = 0.0
            for t in range(nseg):
                v = min(alpha * y[m + t], x[m + t] * clip) - mu
                ss += v * v
                dot += v * (x[m + t] - xm[m])
            total += dot / ((math.sqrt(ss) + EPS) * xcn[j, m])
    return total / (J * M)


@njit(cache=True)
def _stoi_core_plain(xb, yb, xnorm, xmean, xcn, nseg, clip):
    """STOI d (Taal et al. 2011 Eq. 3-6, pystoi): mean over bands j and segments m of the
    correlation of the centred clean segment with the scaled (alpha = ||x|| / (||y|| + EPS)),
    clipped (min(alpha y, x (1 + 10^(-BETA/20)))) and centred processed segment.

    Loops run over segments innermost (contiguous, vectorised, no reassociation needed). The
    reference for :func:`_stoi_core` (tests).
    """
    J, T = yb.shape
    M = T - nseg + 1
    s2 = np.empty(M)
    alpha = np.empty(M)
    mu = np.empty(M)
    ss = np.empty(M)
    dot = np.empty(M)
    total = 0.0
    for j in range(J):
        y = yb[j]
        x = xb[j]
        xn = xnorm[j]
        xm = xmean[j]
        for m in range(M):
            s2[m] = 0.0
            mu[m] = 0.0
            ss[m] = 0.0
            dot[m] = 0.0
        for t in range(nseg):
            for m in range(M):
                v = y[m + t]
                s2[m] += v * v
        for m in range(M):
            alpha[m] = xn[m] / (math.sqrt(s2[m]) + EPS)
        for t in range(nseg):
            for m in range(M):
                mu[m] += min(alpha[m] * y[m + t], x[m + t] * clip)
        for m in range(M):
            mu[m] = mu[m] / nseg
        for t in range(nseg):
            for m in range(M):
                v = min(alpha[m] * y[m + t], x[m + t] * clip) - mu[m]
                ss[m] += v * v
                dot[m] += v * (x[m + t] - xm[m])
        for m in range(M):
            total += dot[m] / ((math.sqrt(ss[m]) + EPS) * xcn[j, m])
    return total / (J * M)


@njit(cache=True)
def _centre_normalise_rows(src, out):
    """out[j] = (src[j] - mean(src[j])) / norm(...); a zero-norm row stays zero. ``out`` may be ``src``."""
    rows, cols = src.shape
    for j in range(rows):
        s = 0.0
        for t in range(cols):
            s += src[j, t]
        mu = s / cols
        s2 = 0.0
        for t in range(cols):
            v = src[j, t] - mu
            out[j, t] = v
            s2 += v * v
        inv = 1.0 / math.sqrt(s2) if s2 > 0.0 else 0.0
        for t in range(cols):
            out[j, t] *= inv


@njit(cache=True)
def _row_col_normalise(seg, out):
    """ESTOI segment normalisation (Jensen & Taal 2016 Sec. III; pystoi row_col_normalize without
    its EPS*randn noise): centre and unit-normalise each band over time, then each frame over
    bands. A zero-norm row/column stays zero."""
    _centre_normalise_rows(seg, out)
    _centre_normalise_rows(out.T, out.T)


@njit(cache=True)
def _estoi_x_precompute(xb, nseg):
    """Row/column-normalised clean segments, shape (M, J, nseg)."""
    J, T = xb.shape
    M = T - nseg + 1
    out = np.empty((M, J, nseg))
    for m in range(M):
        _row_col_normalise(xb[:, m:m + nseg], out[m])
    return out


@njit(cache=True)
def _estoi_core(xbar, yb, nseg):
    """ESTOI d (Jensen & Taal 2016 Eq. 8-10, pystoi): mean over segments of
    sum(xbar * ybar) / nseg with both segments row-then-column normalised."""
    J, T = yb.shape
    M = T - nseg + 1
    tmp = np.empty((J, nseg))
    total = 0.0
    for m in range(M):
        _row_col_normalise(yb[:, m:m + nseg], tmp)
        s = 0.0
        for j in range(J):
            for t in range(nseg):
                s += xbar[m, j, t] * tmp[j, t]
        total += s / nseg
    return total / M


@njit(cache=True)
def _y_side(y10, ks, w, lo, hi, rev, tw):
    """Processed-side band envelopes (NUMBAND, n_kept - 1) from the 10 kHz signal."""
    T = ks.shape[0] - 1
    yb = np.empty((lo.shape[0], T))
    _y_side_into(y10, ks, w, lo, hi, rev, tw, np.empty((T, w.shape[0])), yb)
    return yb


@njit(cache=True)
def _y_side_into(y10, ks, w, lo, hi, rev, tw, frames, yb):
    """:func:`_y_side` into ``yb`` (NUMBAND, n_kept - 1), with ``frames`` (n_kept - 1, 256) as
    the STFT frames' scratch (no allocation: repeated calls reuse their memory)."""
    _stft_frames(y10, ks, w, frames)
    _frames_band_envelopes(frames, lo, hi, rev, tw, yb)


# --- too few frames ------------------------------------------------------------------------------

def _warn_too_short(n_frames: int, stacklevel: int = 3) -> None:
    """pystoi's warning when fewer than :data:`N_SEGMENT` frames remain (the score is then
    :data:`TOO_SHORT_SCORE`); ``stacklevel`` 3 names the caller of the public function."""
    warnings.warn(f"only {n_frames} STFT frames remain after silent-frame removal (STOI needs "
                  f"{N_SEGMENT}); returning {TOO_SHORT_SCORE} like pystoi. Check the signals.",
                  RuntimeWarning, stacklevel=stacklevel)

