"""STOI and ESTOI equal to pystoi 0.4.1, and the clean-speech :class:`Reference` they share.

* :func:`stoi` -- a drop-in for ``pystoi.stoi`` 0.4.1 (Taal et al. 2011; ESTOI: Jensen & Taal
  2016). It agrees with pystoi to about 1e-13 on real speech (tests require 1e-6). The pipeline:
  resample to 10 kHz (:mod:`._resample`), remove silent frames (decided on the clean signal),
  256/128 STFT with a 512-point FFT and 15 third-octave bands (Taal et al. Eq. 1,
  :mod:`._fft`), 30-frame segments, then the STOI correlation (Eq. 3-6) or ESTOI's
  row/column-normalised segments (Jensen & Taal Eq. 8-10).
* :class:`Reference` -- everything that depends only on the clean speech (kept-frame starts of
  the 10 kHz signal, clean third-octave envelopes, per-segment clean statistics, the samples the
  processed side needs), computed once. ``Reference(x, fs).stoi(y)`` equals ``stoi(x, y, fs)``.
  VSTOI straight from vocoder envelopes (:meth:`Reference.vstoi_envelopes`, ``ReferenceSet``)
  lives in :mod:`pa_ci.chain.vstoi`.

Differences from pystoi 0.4.1 (all documented choices, none changes a score by more than ~1e-13
on real speech):

* ESTOI is deterministic: pystoi adds ``EPS * randn`` to the segments before its row and column
  normalisations (random effects of ~1e-16); we do not. A row or column that is exactly constant
  (norm 0) normalises to zeros here (pystoi would give a random unit vector from its noise).
* Too few frames: like pystoi we warn (``RuntimeWarning``) and return 1e-5 when fewer than 30 STFT
  frames remain after silent-frame removal. pystoi crashes when the 10 kHz signal has <= 256
  samples (no frame at all); we warn and return 1e-5 there too.
* Unequal shapes raise :class:`~pa_ci.errors.ParameterError` (pystoi raises a bare ``Exception``).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from numba import njit
from scipy.signal import resample_poly

from ._fft import _fft_constants, _frames_band_envelopes
from ._resample import _octave_filter, _read_window
from .audio import check_samples
from ..errors import ParameterError

__all__ = ["stoi", "Reference", "short_signal_message", "FS", "N_FRAME", "NFFT", "NUMBAND", "N_SEGMENT"]

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


# --- small pure-NumPy helpers (run once per reference) ------------------------------------------

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


def _to_10k(x: np.ndarray, fs: int) -> np.ndarray:
    """Resample to 10 kHz exactly as pystoi (scipy ``resample_poly`` with the Octave window)."""
    if fs == FS:
        return x
    up, down, _, h_up = _octave_filter(fs, FS)
    return resample_poly(x, up, down, window=h_up / up)


def _kept_frame_starts(x10: np.ndarray) -> np.ndarray:
    """Starts of the non-silent frames of the clean 10 kHz signal (pystoi remove_silent_frames).

    Frames of 256 at hop 128 with start < len - 256 (the last possible frame is excluded, as in
    Taal's MATLAB code); energy 20 log10(||w x|| + EPS); kept when energy > max - 40 dB (strict).
    Computed with the same NumPy expressions as pystoi so the decisions are bitwise identical.
    """
    starts = np.arange(0, len(x10) - N_FRAME, HOP, dtype=np.int64)
    if starts.size == 0:
        return starts
    frames = np.array([WINDOW * x10[i:i + N_FRAME] for i in starts])
    energies = 20 * np.log10(np.linalg.norm(frames, axis=1) + EPS)
    mask = (np.max(energies) - DYN_RANGE - energies) < 0
    return np.ascontiguousarray(starts[mask])


def _merge_runs(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Merge sorted half-open intervals [start, stop) that overlap or touch; shape (R, 2)."""
    runs: list[list[int]] = []
    for a, b in zip(starts.tolist(), stops.tolist()):
        if b <= a:
            continue
        if runs and a <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], b)
        else:
            runs.append([a, b])
    return np.array(runs, dtype=np.int64).reshape(-1, 2)


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
    frames = np.empty((T, w.shape[0]))
    _stft_frames(y10, ks, w, frames)
    yb = np.empty((lo.shape[0], T))
    _frames_band_envelopes(frames, lo, hi, rev, tw, yb)
    return yb


# --- public API ----------------------------------------------------------------------------------

def _check_fs(fs) -> int:
    try:
        ok = float(fs) == int(fs) and int(fs) > 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ParameterError(f"sample rate must be a positive integer (Hz), got {fs!r}")
    return int(fs)


def _signal(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be a 1-D signal, got shape {arr.shape}")
    return check_samples(arr, name, allow_silent=True)


def _warn_too_short(n_frames: int, stacklevel: int = 3) -> None:
    warnings.warn(f"only {n_frames} STFT frames remain after silent-frame removal (STOI needs "
                  f"{N_SEGMENT}); returning {TOO_SHORT_SCORE} like pystoi. Check the signals.",
                  RuntimeWarning, stacklevel=stacklevel)


def short_signal_message(reference: "Reference") -> str:
    """One line saying why ``reference`` is too short for STOI and what is needed."""
    return (f"speech too short for STOI: {reference.n_frames} non-silent 25.6 ms frames after "
            f"silent-frame removal, need at least {N_SEGMENT} (about 0.4 s of speech)")


class Reference:
    """The clean side of STOI/ESTOI, computed once (Taal et al. 2011; pystoi 0.4.1 pipeline).

    Holds the 10 kHz clean signal, the starts of its kept (non-silent) frames, its third-octave
    envelopes and per-segment statistics. ``Reference(x, fs).stoi(y)`` equals ``stoi(x, y, fs)``;
    :meth:`vstoi_envelopes` scores vocoder envelopes without building the vocoded signal.
    """

    def __init__(self, clean: np.ndarray, fs: int) -> None:
        x = _signal(clean, "clean")
        self.fs: int = _check_fs(fs)
        self.length: int = int(x.size)
        x10 = _to_10k(x, self.fs)
        self.length10: int = int(x10.size)
        self.kept_starts: np.ndarray = _kept_frame_starts(x10)  # 10 kHz sample index per kept frame
        #: STFT frames after silent-frame removal (pystoi: n_kept - 1).
        self.n_frames: int = max(int(self.kept_starts.size) - 1, 0)
        self.valid: bool = self.n_frames >= N_SEGMENT
        self._estoi_x: np.ndarray | None = None
        self._runs: tuple[np.ndarray, np.ndarray] | None = None
        self._tables: dict = {}  # the VSTOI carrier tables per (frequencies, hop), see vstoi_envelopes
        if self.valid:
            self.x_bands: np.ndarray = _y_side(x10, self.kept_starts, WINDOW, BAND_LO, BAND_HI,
                                               _FFT_REV, _FFT_TW)
            self._x_stats = _stoi_x_stats(self.x_bands, N_SEGMENT)
        else:
            self.x_bands = np.zeros((NUMBAND, 0))
            self._x_stats = (np.zeros((NUMBAND, 0)),) * 3

    @property
    def x_stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per band and segment (each NUMBAND x segments): ||x_seg||, mean(x_seg) and
        ||x_seg - mean|| + EPS of the clean envelopes (the clean side of Taal et al. Eq. 3-6)."""
        return self._x_stats

    # clean-side extras, built on first use
    @property
    def estoi_segments(self) -> np.ndarray:
        """The clean segments row- then column-normalised for ESTOI (Jensen & Taal 2016),
        shape (segments, NUMBAND, N_SEGMENT); built on first use."""
        if self._estoi_x is None:
            self._estoi_x = _estoi_x_precompute(self.x_bands, N_SEGMENT)
        return self._estoi_x

    def needed_runs(self) -> tuple[np.ndarray, np.ndarray]:
        """10 kHz samples that feed the STFT (kept frames; only the first half of the last one)
        and the fs-rate samples the resampler reads for them, as merged [start, stop) runs."""
        if self._runs is None:
            ks = self.kept_starts
            stops = ks + N_FRAME
            stops[-1] = ks[-1] + HOP
            runs10 = _merge_runs(ks, stops)
            if self.fs == FS:
                runs16 = runs10.copy()
            else:
                a, b = _read_window(runs10, self.fs, FS)
                runs16 = _merge_runs(np.clip(a, 0, self.length), np.clip(b, 0, self.length))
            self._runs = (runs10, runs16)
        return self._runs

    def stoi(self, y: np.ndarray, extended: bool = False) -> float:
        """STOI (or ESTOI if ``extended``) of the processed ``y`` against this clean reference."""
        y = _signal(y, "processed")
        if y.shape != (self.length,):
            raise ParameterError(f"clean and processed signals must have the same shape, got "
                                 f"{(self.length,)} and {y.shape}")
        if not self.valid:
            _warn_too_short(self.n_frames)
            return TOO_SHORT_SCORE
        yb = _y_side(_to_10k(y, self.fs), self.kept_starts, WINDOW, BAND_LO, BAND_HI, _FFT_REV,
                     _FFT_TW)
        if extended:
            return float(_estoi_core(self.estoi_segments, yb, N_SEGMENT))
        return float(_stoi_core(self.x_bands, yb, *self._x_stats, N_SEGMENT, CLIP_FACTOR))

    def vstoi_envelopes(self, envelopes: np.ndarray, freqs: Sequence[float] | np.ndarray,
                        hop: int, extended: bool = False) -> float:
        """VSTOI: STOI(clean, sine vocoder of ``envelopes`` trimmed to the clean length).

        ``envelopes`` (K, C): linear envelopes (after inverse LGF), frame k held over samples
        k*hop .. k*hop+hop-1 at this reference's rate; ``freqs`` (C,) carrier centres in Hz,
        carrier phase sin(2 pi f n / fs) for n = 1, 2, ... (NMT ``Resynth_audio_proc``). Needs
        K * hop >= clean length. Equals ``stoi(clean, vocoded[:L], fs)`` with or without the
        vocoder's peak normalisation. The fast path is :mod:`pa_ci.chain.vstoi`.
        """
        from .vstoi import _reference_vstoi  # imported on use: pa_ci.chain.vstoi imports this module

        return _reference_vstoi(self, envelopes, freqs, hop, extended, self._tables)


def stoi(x: np.ndarray, y: np.ndarray, fs: int, extended: bool = False) -> float:
    """Short-Time Objective Intelligibility of ``y`` against clean ``x`` (pystoi 0.4.1 drop-in).

    Taal et al. 2011 (STOI) or, with ``extended=True``, Jensen & Taal 2016 (ESTOI). Resamples to
    10 kHz with pystoi's Octave-compatible filter, removes silent frames (decided on ``x``),
    256/128/512 STFT, 15 third-octave bands from 150 Hz, 30-frame segments. Returns 1e-5 with a
    ``RuntimeWarning`` when fewer than 30 frames remain (as pystoi). Deterministic (pystoi's ESTOI
    adds ~1e-16 random noise). Raises :class:`ParameterError` when the shapes differ.
    """
    xa, ya = np.asarray(x), np.asarray(y)
    if xa.shape != ya.shape:
        raise ParameterError(f"x and y must have the same shape, got {xa.shape} and {ya.shape}")
    return Reference(xa, fs).stoi(ya, extended=extended)
