"""STOI and ESTOI equal to pystoi 0.4.1, and a fast VSTOI that scores vocoder envelopes directly.

Three layers, all computing the same number:

* :func:`stoi` -- a drop-in for ``pystoi.stoi`` 0.4.1 (Taal et al. 2011; ESTOI: Jensen & Taal
  2016). It agrees with pystoi to about 1e-13 on real speech (tests require 1e-6).
* :class:`Reference` -- everything that depends only on the clean speech (kept-frame starts of
  the 10 kHz signal, clean third-octave envelopes, per-segment clean statistics, the samples the
  processed side needs), computed once. ``Reference(x, fs).stoi(y)`` equals ``stoi(x, y, fs)``.
* :meth:`Reference.vstoi_envelopes` / :class:`ReferenceSet` -- VSTOI straight from the vocoder's
  linear envelopes E (K x C): sine-carrier resynthesis only on the input samples that feed kept
  10 kHz frames, the pystoi polyphase resampler on those samples only, a frame-vectorised
  512-point FFT, band envelopes and the STOI segment loop, all in Numba; ``ReferenceSet`` runs
  many items in parallel (``numba.prange``).

Differences from pystoi 0.4.1 (all documented choices, none changes a score by more than ~1e-13
on real speech):

* ESTOI is deterministic: pystoi adds ``EPS * randn`` to the segments before its row and column
  normalisations (random effects of ~1e-16); we do not. A row or column that is exactly constant
  (norm 0) normalises to zeros here (pystoi would give a random unit vector from its noise).
* Too few frames: like pystoi we warn (``RuntimeWarning``) and return 1e-5 when fewer than 30 STFT
  frames remain after silent-frame removal. pystoi crashes when the 10 kHz signal has <= 256
  samples (no frame at all); we warn and return 1e-5 there too.
* Unequal shapes raise :class:`~pa_ci.errors.ParameterError` (pystoi raises a bare ``Exception``).
* VSTOI skips the vocoder's peak normalisation: STOI is invariant to a global gain of the processed
  signal (per-segment scaling and normalised correlations, Taal et al. 2011 Eq. 3-5), up to the
  ``+EPS`` guards (relative effects ~1e-16 / band level). Tests prove the equality numerically.
* The fast path reduces the carrier phase exactly (f n mod fs); a naive ``sin(2 pi f n / fs)``
  rounds its ~1e5 rad argument (~4e-11 sample error). Both agree with pystoi far inside 1e-6.

Wiring VSTOI (DECISIONS.md: clean speech vs vocoded pattern, both at 16 kHz)::

    ref = Reference(clean_16k, 16000)                      # once per item
    ref.vstoi_envelopes(E, centre_frequencies, hop)        # E = vocoder envelopes (K x 22)
    refs = ReferenceSet([ref, ...])                         # once per dataset
    refs.vstoi_envelopes([E_1, E_2, ...], centre_frequencies, hop)   # one score per item

E must cover the clean length (K * hop >= len(clean)); trim the clean signal first if a pattern is
shorter. The ESTOI variant (``extended=True``) is exact too but not tuned (about 3x the STOI core).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from functools import lru_cache

import numba
import numpy as np
from numba import njit, prange
from numba.typed import List
from scipy.signal import resample_poly

from .audio import check_samples
from .errors import ParameterError

__all__ = ["stoi", "vstoi", "vstoi_of_pattern", "Reference", "ReferenceSet", "short_signal_message", "FS", "N_FRAME", "NFFT", "NUMBAND", "N_SEGMENT"]

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

_HALF_FFT = NFFT // 4  # 128: a 512-point real FFT of 256 samples = two 128-point complex FFTs
_LANES = 32            # frames transformed together (SIMD across frames; 32 measured best)


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


@lru_cache(maxsize=None)
def _octave_filter(fs: int) -> tuple[int, int, int, np.ndarray]:
    """(up, down, half length, taps*up) of pystoi's ``resample_oct(x, 10000, fs)``.

    Octave ``resample`` design (pystoi utils._resample_window_oct): Kaiser-windowed sinc, 60 dB
    rejection, cutoff 1/(2 max(p, q)), roll-off cutoff/10, half length
    ceil((60 - 8) / (28.714 roll-off)), beta = 0.1102 (60 - 8.7); normalised to unit sum, then
    scipy ``resample_poly`` multiplies by ``up``. 16 kHz -> up 5, down 8, 581 taps.
    """
    g = math.gcd(FS, fs)
    p, q = FS // g, fs // g
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


def _to_10k(x: np.ndarray, fs: int) -> np.ndarray:
    """Resample to 10 kHz exactly as pystoi (scipy ``resample_poly`` with the Octave window)."""
    if fs == FS:
        return x
    up, down, _, h_up = _octave_filter(fs)
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


def _fft_constants() -> tuple[np.ndarray, np.ndarray]:
    """Bit-reversal permutation and twiddles for the 512-point real FFT of a 256-sample frame.

    Row 0/1: cos/-sin(2 pi k/128) (128-point complex FFT); row 2/3: cos/-sin(2 pi n/256) (odd-bin
    pre-twiddle); row 4/5: cos/-sin(2 pi k/512) (real-FFT post-processing).
    """
    n = _HALF_FFT
    bits = int(math.log2(n))
    rev = np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(n)], dtype=np.int64)
    c = np.zeros((6, NFFT // 2 + 1))
    k = np.arange(n)
    c[0, :n], c[1, :n] = np.cos(2 * np.pi * k / n), -np.sin(2 * np.pi * k / n)
    c[2, :n], c[3, :n] = np.cos(2 * np.pi * k / (2 * n)), -np.sin(2 * np.pi * k / (2 * n))
    k = np.arange(NFFT // 2 + 1)
    c[4], c[5] = np.cos(2 * np.pi * k / NFFT), -np.sin(2 * np.pi * k / NFFT)
    return rev, c


_FFT_REV, _FFT_TW = _fft_constants()


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


@njit(cache=True, fastmath={"reassoc", "contract"})
def _fft128_lanes(re, im, tw):
    """In-place radix-2 DIT complex FFT of length 128 along axis 0, many lanes along axis 1.

    Input in bit-reversed order; W = exp(-2 pi i k / 128) from ``tw`` rows 0 (cos) and 1 (-sin).
    The innermost loop runs over lanes (independent transforms), so it vectorises.
    """
    n = re.shape[0]
    nl = re.shape[1]
    half = 1
    while half < n:
        step = n // (2 * half)
        for start in range(0, n, 2 * half):
            for k in range(half):
                wr = tw[0, k * step]
                wi = tw[1, k * step]
                i = start + k
                j = i + half
                for b in range(nl):
                    xr = re[j, b]
                    xi = im[j, b]
                    tr = wr * xr - wi * xi
                    ti = wr * xi + wi * xr
                    ur = re[i, b]
                    ui = im[i, b]
                    re[j, b] = ur - tr
                    im[j, b] = ui - ti
                    re[i, b] = ur + tr
                    im[i, b] = ui + ti
        half *= 2


@njit(cache=True, fastmath={"reassoc", "contract"})
def _frames_band_envelopes(frames, lo, hi, rev, tw, out):
    """Third-octave band amplitudes sqrt(sum_{lo<=k<hi} |rfft(frame, 512)[k]|^2) -> out[band, t].

    The 512-point real FFT of a 256-sample frame: z[n] = x[2n] + i x[2n+1] (n < 128, zero above),
    Z = FFT256(z) with Z[2p] = FFT128(z)[p] and Z[2p+1] = FFT128(z W256^n)[p]; then
    X[k] = (Z[k] + conj Z[256-k])/2 + W512^k (Z[k] - conj Z[256-k])/(2i). Frames are processed
    _LANES at a time, both 128-point FFTs of a frame in one lane block.
    """
    T = frames.shape[0]
    nb = out.shape[0]
    n = rev.shape[0]
    B = _LANES
    re = np.empty((n, 2 * B))
    im = np.empty((n, 2 * B))
    acc = np.empty(B)
    for t0 in range(0, T, B):
        m = min(B, T - t0)
        for q in range(n):
            r = rev[q]
            c = tw[2, q]
            s = tw[3, q]
            for b in range(m):
                a = frames[t0 + b, 2 * q]
                d = frames[t0 + b, 2 * q + 1]
                re[r, b] = a
                im[r, b] = d
                re[r, B + b] = a * c - d * s
                im[r, B + b] = a * s + d * c
            for b in range(m, B):
                re[r, b] = 0.0
                im[r, b] = 0.0
                re[r, B + b] = 0.0
                im[r, B + b] = 0.0
        _fft128_lanes(re, im, tw)
        for band in range(nb):
            for b in range(B):
                acc[b] = 0.0
            for k in range(lo[band], hi[band]):
                p = k >> 1
                off = 0
                if k & 1:
                    off = B
                    pm = n - 1 - p  # Z[256-k] for odd k = FFT128(z W)[127 - p]
                else:
                    pm = (n - p) % n  # Z[256-k] for even k = FFT128(z)[128 - p]
                wr = tw[4, k]
                wi = tw[5, k]
                for b in range(B):
                    ar = re[p, off + b]
                    ai = im[p, off + b]
                    cr = re[pm, off + b]
                    ci = im[pm, off + b]
                    er = 0.5 * (ar + cr)
                    ei = 0.5 * (ai - ci)
                    orr = 0.5 * (ai + ci)
                    oi = -0.5 * (ar - cr)
                    xr = er + wr * orr - wi * oi
                    xi = ei + wr * oi + wi * orr
                    acc[b] += xr * xr + xi * xi
            for b in range(m):
                out[band, t0 + b] = math.sqrt(acc[b])


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


@njit(cache=True, inline="always")
def _exp_series(y):
    """Degree-10 Taylor polynomial of exp(y) about 0 (Horner); |y| <= 0.2: truncation < 3e-16."""
    return 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6 + y * (1.0 / 24 + y * (1.0 / 120 + y * (
        1.0 / 720 + y * (1.0 / 5040 + y * (1.0 / 40320 + y * (1.0 / 362880
                                                          + y * (1.0 / 3628800))))))))))


@njit(cache=True, fastmath={"contract"})
def _inverse_lgf_values(v, a, b, base, gain, sc, c0, ec, nsq, out):
    """out[u - a] = inverse LGF of v[u], u in [a, b): base + gain ((1 + alpha)^v - 1) with v
    clipped to [0, 1], and 0 for v <= 0 (as :func:`pa_ci.vocoder.envelopes`); NaN/Inf are the
    caller's to check (:func:`_nonfinite_flag`).

    (1 + alpha)^v = exp(v l), l = log1p(alpha), is evaluated as (exp(c0) exp(y))^(2^nsq) with
    y = v l / 2^nsq - c0, c0 = l / 2^(nsq+1), so |y| <= c0 <= 0.2 (:func:`_lgf_series_args`):
    the Taylor series of :func:`_exp_series`, then nsq squarings. Relative error ~1e-14 (2^nsq
    times the series' rounding; ACE's alpha = 340.8 needs nsq = 4). Unlike libm's exp (~5 ns a
    call here) it vectorises (~0.5 ns a value).
    """
    if nsq == 4:  # the ACE case: one fused pass
        for u in range(a, b):
            x = v[u]
            x = min(max(x, 0.0), 1.0)
            p = ec * _exp_series(x * sc - c0)
            p = p * p
            p = p * p
            p = p * p
            p = p * p
            out[u - a] = base + gain * (p - 1.0) if x > 0.0 else 0.0
        return
    for u in range(a, b):
        x = v[u]
        out[u - a] = ec * _exp_series(min(max(x, 0.0), 1.0) * sc - c0)
    for _ in range(nsq):
        for u in range(b - a):
            out[u] = out[u] * out[u]
    for u in range(a, b):
        out[u - a] = base + gain * (out[u - a] - 1.0) if v[u] > 0.0 else 0.0


def _lgf_series_args(params) -> tuple[float, float, float, float, float, int]:
    """(base, gain, sc, c0, exp(c0), nsq) of :func:`_inverse_lgf_values` for ACE ``params``."""
    alpha = float(params.lgf_alpha)
    base = float(params.lgf_base)
    gain = float(params.lgf_sat - params.lgf_base) / alpha
    ell = math.log1p(alpha)
    nsq = max(4, math.ceil(math.log2(ell / 0.4))) if ell > 0 else 4
    sc = ell / 2.0 ** nsq
    c0 = sc / 2
    return base, gain, sc, c0, math.exp(c0), int(nsq)


@njit(cache=True, fastmath={"reassoc", "contract"})
def _nonfinite_flag(v, a, b):
    """sum(v[a:b] * 0): NaN if a value is NaN or Inf, else 0 (a vectorised check)."""
    chk = 0.0
    for u in range(a, b):
        chk += v[u] * 0.0
    return chk


@njit(cache=True, fastmath={"reassoc", "contract"})
def _vocode_maxima_runs(chans, vals, n_ch, base, gain, sc, c0, ec, nsq, sin_th, cos_th, cs, hop,
                        L, runs16, pad, y16p):
    """:func:`_vocode_runs` from the M kept channels of each frame, inverse LGF fused.

    ``chans`` (K, M) integer channels (strictly ascending per frame, in [0, n_ch)), ``vals`` (K, M)
    their pattern magnitudes; the dense pattern is zero elsewhere. Only frames that touch
    ``runs16`` are read and get the inverse LGF (:func:`_inverse_lgf_values`, one vectorised pass
    per run). A frame's hop samples (``cs`` as in :func:`_vocode_runs`) are the sum of its M
    carriers, four channels per read-modify-write of the output (a frame cut by a run boundary
    goes through a scratch row). Returns 0 if all is well, 1 if a read value is NaN/Inf, 2 if a
    read frame's channels are out of range or not strictly ascending (nothing is then indexed
    out of bounds).
    """
    K, M = chans.shape
    vflat = vals.ravel()
    buf = np.empty(hop)
    env = np.empty(0)
    ac = np.empty(M)
    bc = np.empty(M)
    cc = np.empty(M, np.int64)
    chk = 0.0
    for i in range(pad):
        y16p[i] = 0.0
    for i in range(pad + L, y16p.shape[0]):
        y16p[i] = 0.0
    for q in range(runs16.shape[0]):
        a = runs16[q, 0]
        b = runs16[q, 1]
        k0 = a // hop
        k1 = (b - 1) // hop + 1  # K * hop >= L >= b: k1 <= K
        if env.shape[0] < (k1 - k0) * M:
            env = np.empty((k1 - k0) * M)
        chk += _nonfinite_flag(vflat, k0 * M, k1 * M)
        _inverse_lgf_values(vflat, k0 * M, k1 * M, base, gain, sc, c0, ec, nsq, env)
        for k in range(k0, k1):
            prev = -1
            row = (k - k0) * M
            for u in range(M):
                c = np.int64(chans[k, u])
                if c <= prev or c >= n_ch:
                    return 2
                prev = c
                cc[u] = c
                e = env[row + u]
                ac[u] = e * sin_th[k, c]
                bc[u] = e * cos_th[k, c]
            base_i = k * hop
            full = a <= base_i and base_i + hop <= b
            dst = y16p[pad + base_i:pad + base_i + hop] if full else buf
            for r in range(hop):
                dst[r] = 0.0
            u = 0
            while u + 4 <= M:
                c_0 = cs[cc[u], 0]
                s_0 = cs[cc[u], 1]
                c_1 = cs[cc[u + 1], 0]
                s_1 = cs[cc[u + 1], 1]
                c_2 = cs[cc[u + 2], 0]
                s_2 = cs[cc[u + 2], 1]
                c_3 = cs[cc[u + 3], 0]
                s_3 = cs[cc[u + 3], 1]
                a0, b0, a1, b1 = ac[u], bc[u], ac[u + 1], bc[u + 1]
                a2, b2, a3, b3 = ac[u + 2], bc[u + 2], ac[u + 3], bc[u + 3]
                for r in range(hop):
                    dst[r] += (a0 * c_0[r] + b0 * s_0[r] + a1 * c_1[r] + b1 * s_1[r]
                               + a2 * c_2[r] + b2 * s_2[r] + a3 * c_3[r] + b3 * s_3[r])
                u += 4
            while u < M:
                c_0 = cs[cc[u], 0]
                s_0 = cs[cc[u], 1]
                a0, b0 = ac[u], bc[u]
                for r in range(hop):
                    dst[r] += a0 * c_0[r] + b0 * s_0[r]
                u += 1
            if not full:
                for i in range(max(a, base_i), min(b, base_i + hop)):
                    y16p[pad + i] = buf[i - base_i]
    if chk != 0.0:  # NaN: a NaN or Inf value was read
        return 1
    return 0


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


@njit(cache=True)
def _y_side(y10, ks, w, lo, hi, rev, tw):
    """Processed-side band envelopes (NUMBAND, n_kept - 1) from the 10 kHz signal."""
    T = ks.shape[0] - 1
    frames = np.empty((T, w.shape[0]))
    _stft_frames(y10, ks, w, frames)
    yb = np.empty((lo.shape[0], T))
    _frames_band_envelopes(frames, lo, hi, rev, tw, yb)
    return yb


@njit(cache=True)
def _score_vocoded(y16p, pad, G, down, half, runs10, L10, ks, w, lo, hi, rev, tw, xb, xnorm,
                   xmean, xcn, xbar, nseg, clip, extended):
    """STOI/ESTOI of the vocoded 16 kHz signal in ``y16p`` (valid on the item's runs16):
    resample -> frames -> FFT bands -> STOI core."""
    y10 = np.empty(L10)
    _resample_runs(y16p, pad, G, down, half, runs10, y10)
    yb = _y_side(y10, ks, w, lo, hi, rev, tw)
    if extended:
        return _estoi_core(xbar, yb, nseg)
    return _stoi_core(xb, yb, xnorm, xmean, xcn, nseg, clip)


@njit(cache=True)
def _vstoi_item(E, sin_th, cos_th, cs, hop, L, runs16, G, down, half, runs10, L10, ks,
                w, lo, hi, rev, tw, xb, xnorm, xmean, xcn, xbar, nseg, clip, extended):
    """VSTOI of one item from its envelopes: vocode -> resample -> frames -> FFT bands -> STOI."""
    pad = G.shape[1] + 1
    y16p = np.empty(L + 2 * pad)
    _vocode_runs(E, sin_th, cos_th, cs, hop, L, runs16, pad, y16p)
    return _score_vocoded(y16p, pad, G, down, half, runs10, L10, ks, w, lo, hi, rev, tw, xb,
                          xnorm, xmean, xcn, xbar, nseg, clip, extended)


@njit(cache=True, parallel=True)
def _vstoi_batch(E_list, sin_th, cos_th, cs, hop, lengths, runs16, r16_off, G,
                 down, half, runs10, r10_off, lengths10, ks_flat, ks_off, w, lo, hi, rev, tw,
                 xb_flat, xs_off, xnorm_flat, xmean_flat, xcn_flat, xm_off, xbar_flat, nseg,
                 clip, extended, valid, order, out):
    """:func:`_vstoi_item` over all items in parallel. ``E_list`` is a typed list of the items'
    envelope arrays (no copy); the clean-side data are slices of packed arrays (item i: kept
    frames ks_off[i]:ks_off[i+1], band columns xs_off[i]:..., segments xm_off[i]:...)."""
    for p in prange(order.shape[0]):
        i = order[p]  # int64 index (prange's own index is unsigned); longest items first
        if not valid[i]:
            out[i] = 1e-5
            continue
        out[i] = _vstoi_item(
            E_list[i], sin_th, cos_th, cs, hop, lengths[i],
            runs16[r16_off[i]:r16_off[i + 1]], G, down, half, runs10[r10_off[i]:r10_off[i + 1]],
            lengths10[i], ks_flat[ks_off[i]:ks_off[i + 1]], w, lo, hi, rev, tw,
            xb_flat[:, xs_off[i]:xs_off[i + 1]], xnorm_flat[:, xm_off[i]:xm_off[i + 1]],
            xmean_flat[:, xm_off[i]:xm_off[i + 1]], xcn_flat[:, xm_off[i]:xm_off[i + 1]],
            xbar_flat[xm_off[i]:xm_off[i + 1]] if extended else xbar_flat[0:0],
            nseg, clip, extended)


@njit(cache=True, parallel=True)
def _vstoi_maxima_batch(chans, vals, row_off, n_ch, lgf, nsq, sin_th, cos_th, cs, hop, lengths,
                        runs16, r16_off, G, down, half, runs10, r10_off, lengths10, ks_flat,
                        ks_off, w, lo, hi, rev, tw, xb_flat, xs_off, xnorm_flat, xmean_flat,
                        xcn_flat, xm_off, xbar_flat, nseg, clip, extended, valid, order, out,
                        status):
    """:func:`_vstoi_batch` from kept maxima: item i is rows row_off[i]:row_off[i+1] of
    ``chans``/``vals`` (R, M); :func:`_vocode_maxima_runs` applies the inverse LGF (``lgf`` =
    base, gain, sc, c0, exp(c0)) to the frames it reads. ``status[i]``: its return code (a
    nonzero code leaves out[i] = NaN)."""
    base, gain, sc, c0, ec = lgf[0], lgf[1], lgf[2], lgf[3], lgf[4]
    pad = G.shape[1] + 1
    for p in prange(order.shape[0]):
        i = order[p]
        status[i] = 0
        if not valid[i]:
            out[i] = 1e-5
            continue
        L = lengths[i]
        y16p = np.empty(L + 2 * pad)
        st = _vocode_maxima_runs(chans[row_off[i]:row_off[i + 1]], vals[row_off[i]:row_off[i + 1]],
                                 n_ch, base, gain, sc, c0, ec, nsq, sin_th, cos_th, cs, hop, L,
                                 runs16[r16_off[i]:r16_off[i + 1]], pad, y16p)
        status[i] = st
        if st != 0:
            out[i] = np.nan
            continue
        out[i] = _score_vocoded(
            y16p, pad, G, down, half, runs10[r10_off[i]:r10_off[i + 1]], lengths10[i],
            ks_flat[ks_off[i]:ks_off[i + 1]], w, lo, hi, rev, tw,
            xb_flat[:, xs_off[i]:xs_off[i + 1]], xnorm_flat[:, xm_off[i]:xm_off[i + 1]],
            xmean_flat[:, xm_off[i]:xm_off[i + 1]], xcn_flat[:, xm_off[i]:xm_off[i + 1]],
            xbar_flat[xm_off[i]:xm_off[i + 1]] if extended else xbar_flat[0:0],
            nseg, clip, extended)


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


def _warn_too_short(n_frames: int) -> None:
    warnings.warn(f"only {n_frames} STFT frames remain after silent-frame removal (STOI needs "
                  f"{N_SEGMENT}); returning {TOO_SHORT_SCORE} like pystoi. Check the signals.",
                  RuntimeWarning, stacklevel=3)


def short_signal_message(reference: "Reference") -> str:
    """One line saying why ``reference`` is too short for STOI and what is needed."""
    return (f"speech too short for STOI: {reference.n_frames} non-silent 25.6 ms frames after "
            f"silent-frame removal, need at least {N_SEGMENT} (about 0.4 s of speech)")


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
        self._tables: dict = {}
        if self.valid:
            self.x_bands: np.ndarray = _y_side(x10, self.kept_starts, WINDOW, BAND_LO, BAND_HI,
                                               _FFT_REV, _FFT_TW)
            self._x_stats = _stoi_x_stats(self.x_bands, N_SEGMENT)
        else:
            self.x_bands = np.zeros((NUMBAND, 0))
            self._x_stats = (np.zeros((NUMBAND, 0)),) * 3

    # clean-side extras, built on first use
    def _estoi_clean(self) -> np.ndarray:
        if self._estoi_x is None:
            self._estoi_x = _estoi_x_precompute(self.x_bands, N_SEGMENT)
        return self._estoi_x

    def _needed_runs(self) -> tuple[np.ndarray, np.ndarray]:
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
                up, down, half, _ = _octave_filter(self.fs)
                nq = -(-(2 * half + 1) // up)  # taps per phase of _polyphase_table
                # _resample_runs reads x[floor(t/up) - nq + 1 .. floor(t/up)], t = m down + half,
                # for every output m: the whole read window, zero-padded taps included (they
                # multiply whatever is there, so it must be written: 0 * NaN is NaN).
                a = (runs10[:, 0] * down + half) // up - nq + 1
                b = ((runs10[:, 1] - 1) * down + half) // up + 1
                runs16 = _merge_runs(np.clip(a, 0, self.length), np.clip(b, 0, self.length))
            self._runs = (runs10, runs16)
        return self._runs

    def _resampler(self) -> tuple[np.ndarray, int, int]:
        if self.fs == FS:
            return np.ones((1, 1)), 1, 0
        up, down, half, h_up = _octave_filter(self.fs)
        return _polyphase_table(up, down, half, h_up), down, half

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
            return float(_estoi_core(self._estoi_clean(), yb, N_SEGMENT))
        return float(_stoi_core(self.x_bands, yb, *self._x_stats, N_SEGMENT, CLIP_FACTOR))

    def vstoi_envelopes(self, envelopes: np.ndarray, freqs: Sequence[float] | np.ndarray,
                        hop: int, extended: bool = False) -> float:
        """VSTOI: STOI(clean, sine vocoder of ``envelopes`` trimmed to the clean length).

        ``envelopes`` (K, C): linear envelopes (after inverse LGF), frame k held over samples
        k*hop .. k*hop+hop-1 at this reference's rate; ``freqs`` (C,) carrier centres in Hz,
        carrier phase sin(2 pi f n / fs) for n = 1, 2, ... (NMT ``Resynth_audio_proc``). Needs
        K * hop >= clean length. Equals ``stoi(clean, vocoded[:L], fs)`` with or without the
        vocoder's peak normalisation.
        """
        E, f, hop = _check_envelopes(envelopes, freqs, hop, self.length)
        if not self.valid:
            _warn_too_short(self.n_frames)
            return TOO_SHORT_SCORE
        runs10, runs16 = self._needed_runs()
        key = (f.tobytes(), hop)
        n_k = -(-self.length // hop)
        if key not in self._tables:
            self._tables[key] = _carrier_tables(f, hop, self.fs, n_k)
        sin_th, cos_th, cs = self._tables[key]
        G, down, half = self._resampler()
        xbar = self._estoi_clean() if extended else np.zeros((0, NUMBAND, N_SEGMENT))
        score = float(_vstoi_item(E[:n_k], sin_th, cos_th, cs, hop, self.length, runs16, G,
                                 down, half, runs10, self.length10, self.kept_starts, WINDOW,
                                 BAND_LO, BAND_HI, _FFT_REV, _FFT_TW, self.x_bands,
                                 *self._x_stats, xbar, N_SEGMENT, CLIP_FACTOR, bool(extended)))
        if not math.isfinite(score):  # checked on the result: a full scan of E costs more
            raise ParameterError("envelopes contain NaN or Inf (or overflow) where they reach "
                                 "the score")
        return score


class ReferenceSet:
    """Many :class:`Reference` items packed into flat arrays for parallel VSTOI (``numba.prange``).

    All references must share one sample rate. Build once per dataset; call
    :meth:`vstoi_envelopes` as often as needed (SPSA evaluates it twice per iteration).
    """

    def __init__(self, references: Sequence[Reference]) -> None:
        refs = list(references)
        if not refs:
            raise ParameterError("ReferenceSet needs at least one Reference")
        if any(not isinstance(r, Reference) for r in refs):
            raise ParameterError("ReferenceSet takes Reference objects")
        rates = {r.fs for r in refs}
        if len(rates) != 1:
            raise ParameterError(f"all references must share one sample rate, got {sorted(rates)}")
        self.references = refs
        self.fs: int = refs[0].fs
        n = len(refs)
        self.lengths = np.array([r.length for r in refs], dtype=np.int64)
        self._lengths10 = np.array([r.length10 for r in refs], dtype=np.int64)
        self._valid = np.array([r.valid for r in refs], dtype=np.bool_)

        def offsets(sizes):
            return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

        runs = [r._needed_runs() if r.valid else (np.zeros((0, 2), np.int64),) * 2 for r in refs]
        self._runs10 = np.ascontiguousarray(np.concatenate([a for a, _ in runs]), dtype=np.int64)
        self._r10_off = offsets([len(a) for a, _ in runs])
        self._runs16 = np.ascontiguousarray(np.concatenate([b for _, b in runs]), dtype=np.int64)
        self._r16_off = offsets([len(b) for _, b in runs])
        ks = [r.kept_starts if r.valid else np.zeros(0, np.int64) for r in refs]
        self._ks = np.ascontiguousarray(np.concatenate(ks), dtype=np.int64)
        self._ks_off = offsets([len(k) for k in ks])
        self._xb = np.ascontiguousarray(np.concatenate([r.x_bands for r in refs], axis=1))
        self._xs_off = offsets([r.x_bands.shape[1] for r in refs])
        stats = [r._x_stats for r in refs]
        self._xnorm, self._xmean, self._xcn = (
            np.ascontiguousarray(np.concatenate([s[i] for s in stats], axis=1)) for i in range(3))
        self._xm_off = offsets([s[0].shape[1] for s in stats])
        self._xbar: np.ndarray | None = None
        self._G, self._down, self._half = refs[0]._resampler()
        # items longest first; with chunk size 1 the threads pick them up dynamically
        self._order = np.argsort(-self.lengths, kind="stable").astype(np.int64)
        self._tables: dict = {}
        self.n_items = n

    def __len__(self) -> int:
        return self.n_items

    def _estoi_clean(self) -> np.ndarray:
        if self._xbar is None:
            parts = [r._estoi_clean() if r.valid else np.zeros((0, NUMBAND, N_SEGMENT))
                     for r in self.references]
            self._xbar = np.ascontiguousarray(np.concatenate(parts))
        return self._xbar

    def _item_list(self, envelopes, n_ch: int, hop: int, offsets) -> List:
        """The items' envelope arrays as a ``numba.typed.List`` of C-contiguous float64 views."""
        if offsets is not None:
            E = np.ascontiguousarray(envelopes, dtype=np.float64)
            off = np.asarray(offsets, dtype=np.int64)
            if E.ndim != 2 or off.shape != (self.n_items + 1,) or off[0] != 0 or off[-1] != len(E) \
                    or np.any(np.diff(off) < 0):
                raise ParameterError("stacked envelopes need a 2-D array and offsets of length "
                                     f"{self.n_items + 1} running from 0 to the number of rows")
            items = [E[off[i]:off[i + 1]] for i in range(self.n_items)]
        else:
            items = [np.ascontiguousarray(e, dtype=np.float64) for e in envelopes]
            if len(items) != self.n_items:
                raise ParameterError(f"expected {self.n_items} envelope arrays, got {len(items)}")
        for i, e in enumerate(items):
            if e.ndim != 2 or e.shape[1] != n_ch:
                raise ParameterError(f"item {i}: envelopes must have shape (frames, {n_ch}) to "
                                     f"match the carrier frequencies, got {e.shape}")
            if e.shape[0] * hop < self.lengths[i]:
                raise ParameterError(f"item {i}: {e.shape[0]} frames x hop {hop} is shorter than "
                                     f"its clean reference ({self.lengths[i]} samples)")
        return List(items)

    def _run_batch(self, E_list, sin_th, cos_th, cs, hop, xbar, extended, out) -> None:
        _vstoi_batch(E_list, sin_th, cos_th, cs, hop, self.lengths, self._runs16,
                     self._r16_off, self._G, self._down, self._half, self._runs10, self._r10_off,
                     self._lengths10, self._ks, self._ks_off, WINDOW, BAND_LO, BAND_HI, _FFT_REV,
                     _FFT_TW, self._xb, self._xs_off, self._xnorm, self._xmean, self._xcn,
                     self._xm_off, xbar, N_SEGMENT, CLIP_FACTOR, bool(extended), self._valid,
                     self._order, out)

    def vstoi_envelopes(self, envelopes, freqs: Sequence[float] | np.ndarray, hop: int, *,
                        offsets: np.ndarray | None = None, extended: bool = False) -> np.ndarray:
        """VSTOI of every item, one score per item (see :meth:`Reference.vstoi_envelopes`).

        ``envelopes``: a sequence of (K_i, C) arrays, or one stacked (sum K_i, C) array with
        ``offsets`` (n_items + 1 row offsets). Neither form is copied (float64 C-contiguous input
        is used as is). Items whose reference is too short score 1e-5 (one ``RuntimeWarning`` per
        call, as pystoi). Raises :class:`ParameterError` when a score is not finite (NaN/Inf in
        the envelopes where they are read).
        """
        f = np.ascontiguousarray(freqs, dtype=np.float64).ravel()
        if int(hop) != hop or hop < 1:
            raise ParameterError(f"hop must be a positive integer, got {hop!r}")
        hop = int(hop)
        E_list = self._item_list(envelopes, f.size, hop, offsets)
        key = (f.tobytes(), hop)
        if key not in self._tables:
            n_k = int(-(-int(self.lengths.max()) // hop))
            self._tables[key] = _carrier_tables(f, hop, self.fs, n_k)
        sin_th, cos_th, cs = self._tables[key]
        xbar = self._estoi_clean() if extended else np.zeros((0, NUMBAND, N_SEGMENT))
        out = np.empty(self.n_items)
        with numba.parallel_chunksize(1):  # dynamic scheduling, longest items first
            self._run_batch(E_list, sin_th, cos_th, cs, hop, xbar, extended, out)
        bad = np.flatnonzero(~np.isfinite(out))
        if bad.size:  # cheaper than scanning every envelope first; unread frames cannot matter
            raise ParameterError(f"item(s) {bad.tolist()[:10]}: envelopes contain NaN or Inf "
                                 "(or overflow) where they reach the score")
        if not np.all(self._valid):
            warnings.warn(f"{int(np.sum(~self._valid))} item(s) have fewer than {N_SEGMENT} STFT "
                          f"frames after silent-frame removal; they score {TOO_SHORT_SCORE} "
                          "like pystoi", RuntimeWarning, stacklevel=2)
        return out

    def vstoi_maxima(self, chans: np.ndarray, vals: np.ndarray, params=None, *,
                     offsets: np.ndarray | None = None, extended: bool = False) -> np.ndarray:
        """VSTOI of every item from the kept maxima of a stimulation pattern (compact input).

        ``chans`` / ``vals``: arrays of one shape (..., M), read as R = size / M rows (frames) of
        M entries: ``chans`` the M kept channels of each frame (any integer dtype, int8 is used
        as is; strictly ascending, in [0, n_channels)), ``vals`` their pattern magnitudes (float64
        used as is), the dense (R, n_channels) pattern being zero elsewhere (e.g.
        :func:`pa_ci.frae.forward_maxima` gives (n, N, M)). ``offsets`` (n_items + 1,): item i is
        rows offsets[i]:offsets[i+1] (may be omitted for a single item). ``params``: the
        :class:`~pa_ci.ace.AceParams` giving the carrier centres, hop and loudness growth
        (default ACE).

        Equals ``vstoi_envelopes(envelopes(dense, params), params.centre_frequencies,
        params.hop, offsets=offsets)`` (tested to ~1e-15): the inverse LGF (same clipping to
        [0, 1], 0 stays 0) is fused into the vocoder and applied only to the values of the
        frames the kept STOI frames read, with a vectorised exponential (relative error ~1e-14,
        :func:`_inverse_lgf_values`). Raises :class:`ParameterError` for bad shapes or offsets,
        for channels out of range or not ascending in a frame that is read, and for NaN/Inf
        values that are read (unread frames are not checked).
        """
        if params is None:
            from .ace import default_params
            params = default_params()
        ch = np.asarray(chans)
        va = np.asarray(vals)
        if ch.shape != va.shape or ch.ndim < 1 or ch.shape[-1] < 1:
            raise ParameterError(f"chans and vals must have one shape (..., M), got {ch.shape} "
                                 f"and {va.shape}")
        if ch.dtype.kind not in "iu":
            raise ParameterError(f"chans must be integers (channel numbers), got {ch.dtype}")
        if va.dtype.kind != "f":
            raise ParameterError(f"vals must be floats (pattern magnitudes), got {va.dtype}")
        f = np.ascontiguousarray(params.centre_frequencies, dtype=np.float64).ravel()
        n_ch, M = f.size, ch.shape[-1]
        if M > n_ch:
            raise ParameterError(f"{M} maxima per frame but only {n_ch} channels")
        ch = np.ascontiguousarray(ch).reshape(-1, M)
        va = np.ascontiguousarray(va, dtype=np.float64).reshape(-1, M)
        R = ch.shape[0]
        if offsets is None:
            if self.n_items != 1:
                raise ParameterError(f"offsets (n_items + 1 = {self.n_items + 1} row offsets) "
                                     "are needed for more than one item")
            off = np.array([0, R], dtype=np.int64)
        else:
            off = np.asarray(offsets)
            if off.shape != (self.n_items + 1,) or off.dtype.kind not in "iu" or off[0] != 0 \
                    or off[-1] != R or np.any(np.diff(off) < 0):
                raise ParameterError("maxima need integer offsets of length "
                                     f"{self.n_items + 1} running from 0 to the number of rows "
                                     f"({R})")
            off = np.ascontiguousarray(off, dtype=np.int64)
        hop = int(params.hop)
        short = np.flatnonzero(np.diff(off) * hop < self.lengths)
        if short.size:
            i = int(short[0])
            raise ParameterError(f"item {i}: {off[i + 1] - off[i]} frames x hop {hop} is shorter "
                                 f"than its clean reference ({self.lengths[i]} samples)")
        key = (f.tobytes(), hop)
        if key not in self._tables:
            n_k = int(-(-int(self.lengths.max()) // hop))
            self._tables[key] = _carrier_tables(f, hop, self.fs, n_k)
        sin_th, cos_th, cs = self._tables[key]
        base, gain, sc, c0, ec, nsq = _lgf_series_args(params)
        lgf = np.array([base, gain, sc, c0, ec])
        xbar = self._estoi_clean() if extended else np.zeros((0, NUMBAND, N_SEGMENT))
        out = np.empty(self.n_items)
        status = np.zeros(self.n_items, dtype=np.int64)
        with numba.parallel_chunksize(1):  # dynamic scheduling, longest items first
            _vstoi_maxima_batch(ch, va, off, n_ch, lgf, nsq, sin_th, cos_th, cs, hop,
                                self.lengths, self._runs16, self._r16_off, self._G, self._down,
                                self._half, self._runs10, self._r10_off, self._lengths10,
                                self._ks, self._ks_off, WINDOW, BAND_LO, BAND_HI, _FFT_REV,
                                _FFT_TW, self._xb, self._xs_off, self._xnorm, self._xmean,
                                self._xcn, self._xm_off, xbar, N_SEGMENT, CLIP_FACTOR,
                                bool(extended), self._valid, self._order, out, status)
        bad = np.flatnonzero(status == 2)
        if bad.size:
            raise ParameterError(f"item(s) {bad.tolist()[:10]}: a frame's channels are out of "
                                 f"range 0..{n_ch - 1} or not strictly ascending")
        bad = np.flatnonzero(~np.isfinite(out))
        if bad.size:
            raise ParameterError(f"item(s) {bad.tolist()[:10]}: pattern values contain NaN or "
                                 "Inf (or overflow) where they reach the score")
        if not np.all(self._valid):
            warnings.warn(f"{int(np.sum(~self._valid))} item(s) have fewer than {N_SEGMENT} STFT "
                          f"frames after silent-frame removal; they score {TOO_SHORT_SCORE} "
                          "like pystoi", RuntimeWarning, stacklevel=2)
        return out


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


def vstoi(clean: np.ndarray, pattern: np.ndarray, fs: int, params=None, extended: bool = False) -> float:
    """VSTOI: STOI of the clean speech against the sine-vocoded stimulation ``pattern``.

    Paper §II-B (Hinrichs & Ostermann; Watkins et al. 2018): the pattern is resynthesised by the
    toolbox's sine vocoder (:mod:`pa_ci.vocoder`) and compared with the clean speech by STOI, both
    at the ACE rate ``params.fs`` (16 kHz) and trimmed to the shorter length (DECISIONS.md).
    ``clean`` at ``fs`` is resampled to ``params.fs`` first. Uses the fast path
    (:meth:`Reference.vstoi_envelopes`), equal to ``stoi(clean, vocode(pattern)[:L], 16000)``.
    For many patterns against the same speech, build a :class:`Reference` once instead.
    """
    from .ace import default_params
    from .audio import resample

    params = params or default_params()
    x = resample(_signal(clean, "clean"), fs, params.fs)
    if np.ndim(pattern) == 2:  # the vocoded pattern is K * hop samples long (bad shapes: envelopes says)
        x = x[: np.shape(pattern)[0] * params.hop]
    return vstoi_of_pattern(Reference(x, int(params.fs)), pattern, params, extended=extended)


def vstoi_of_pattern(reference: Reference, pattern: np.ndarray, params, extended: bool = False) -> float:
    """VSTOI of a stimulation ``pattern`` against a prepared clean ``reference`` (at ``params.fs``).

    The pattern is turned into the vocoder's envelopes (inverse LGF, :func:`pa_ci.vocoder.envelopes`)
    and scored with :meth:`Reference.vstoi_envelopes` at the band centres and hop of ``params``.
    """
    from .vocoder import envelopes

    return reference.vstoi_envelopes(envelopes(pattern, params), params.centre_frequencies,
                                     params.hop, extended=extended)
