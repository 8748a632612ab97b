"""The own 512-point real FFT of 256-sample frames and the third-octave band amplitudes of its
bins (Taal et al. 2011 Eq. 1; pystoi ``stft`` + ``OBM``), shared by STOI and VSTOI.

Frames are transformed :data:`_LANES` at a time (SIMD across frames); each 512-point real FFT is
two 128-point complex radix-2 FFTs. The tables come from :func:`_fft_constants` (built once in
:mod:`pa_ci.chain.stoi`).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_LANES = 32            # frames transformed together (SIMD across frames; 32 measured best)


def _fft_constants(nfft: int) -> tuple[np.ndarray, np.ndarray]:
    """Bit-reversal permutation and twiddles for the ``nfft``-point real FFT of a frame of
    ``nfft / 2`` samples (STOI: 512 and 256; a 512-point real FFT of 256 samples = two 128-point
    complex FFTs).

    Row 0/1: cos/-sin(2 pi k/128) (128-point complex FFT); row 2/3: cos/-sin(2 pi n/256) (odd-bin
    pre-twiddle); row 4/5: cos/-sin(2 pi k/512) (real-FFT post-processing).
    """
    n = nfft // 4
    bits = int(math.log2(n))
    rev = np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(n)], dtype=np.int64)
    c = np.zeros((6, nfft // 2 + 1))
    k = np.arange(n)
    c[0, :n], c[1, :n] = np.cos(2 * np.pi * k / n), -np.sin(2 * np.pi * k / n)
    c[2, :n], c[3, :n] = np.cos(2 * np.pi * k / (2 * n)), -np.sin(2 * np.pi * k / (2 * n))
    k = np.arange(nfft // 2 + 1)
    c[4], c[5] = np.cos(2 * np.pi * k / nfft), -np.sin(2 * np.pi * k / nfft)
    return rev, c


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
