"""Plain NumPy twins of the signal chain (:mod:`pa_ci.chain`), written the obvious way.

ACE: the front-end AGC sample by sample and the maxima selection by a stable argsort (research
§1.2 b, §1.7). Vocoder: zero-order hold + one sine per band centre, n = 1, 2, ... (research §2).
STOI/ESTOI on band envelopes: NumPy's FFT with pystoi's third-octave matrix (Taal et al. 2011
Eq. 1), the STOI correlation (Eq. 3-6), ESTOI's row/column normalisation (Jensen & Taal 2016).
VSTOI: inverse LGF + vocoder in NumPy, then ``pystoi.stoi`` (the oracle).
"""
from __future__ import annotations

import functools

import numpy as np
from pystoi import stoi as pystoi_stoi
from pystoi import utils as pystoi_utils

from pa_ci.chain.ace import default_params, lgf_inverse
from pa_ci.chain.stoi import N_SEGMENT

ACE = default_params()
FS = 16000
HOP = 18  # ceil(16000 / 900) (DECISIONS.md)
# 22-band centre frequencies (signal_chain_research.md Sec. 1.4)
FREQS = np.array([250, 375, 500, 625, 750, 875, 1000, 1125, 1250, 1437.5, 1687.5, 1937.5,
                  2187.5, 2500, 2875, 3312.5, 3812.5, 4375, 5000, 5687.5, 6500, 7437.5])


# --- ACE (pa_ci.chain.ace) ------------------------------------------------------------------------

def agc_twin(x, fs, knee):
    """FE AGC written out sample by sample from research §1.2 b."""
    release = 10.0 ** (-25.0 / (20.0 * 0.075 * fs))
    attack = 3.912 / (0.005 * fs)
    env, gain, out = 0.0, 1.0, []
    for sample in x:
        env = max(abs(sample), env * release)
        raw = 1.0 if env < knee else knee / env
        gain = attack * raw + (1.0 - attack) * gain
        out.append(sample * gain)
    return np.array(out)


def maxima_twin(env, n):
    """Stable ascending argsort per frame; the first M - n channels are rejected (§1.7)."""
    keep = np.ones(env.shape, dtype=bool)
    for k, row in enumerate(env):
        order = np.argsort(row, kind="stable")
        keep[k, order[: row.size - n]] = False
    return keep


# --- vocoder (pa_ci.chain.vocoder, the vocoders of pa_ci.chain.vstoi) -----------------------------

def synthesis_twin(env, freqs, hop, fs):
    """sum_c repeat(env[:, c], hop) * sin(2 pi f_c n / fs), n = 1, 2, ... written out."""
    n = np.arange(1, env.shape[0] * hop + 1)
    out = np.zeros(n.size)
    for c, f in enumerate(freqs):
        out += np.repeat(env[:, c], hop) * np.sin(2 * np.pi * f * n / fs)
    return out


def plain_vocoder(E, freqs=FREQS, hop=HOP, fs=FS, normalise=True):
    """Oracle: repeat + sin + sum (+ peak-normalise), the obvious way."""
    env = np.repeat(E, hop, axis=0)
    n = np.arange(1, env.shape[0] + 1)
    y = np.sum(env * np.sin(2 * np.pi * np.asarray(freqs)[None, :] * n[:, None] / fs), axis=1)
    return y / np.max(np.abs(y)) if normalise else y


def exact_phase_vocoder(E, freqs=FREQS, hop=HOP, fs=FS):
    """:func:`plain_vocoder` without peak normalisation, with the carrier phase reduced exactly:
    f n is exact in float64 and fmod is exact."""
    n = np.arange(1, E.shape[0] * hop + 1)[:, None]
    return np.sum(np.repeat(E, hop, axis=0) * np.sin(2 * np.pi * (np.fmod(freqs * n, fs) / fs)),
                  axis=1)


def lgf_twin(v, params=ACE):
    """Inverse LGF in NumPy (clip to [0, 1], 0 stays 0), the twin of _inverse_lgf_values."""
    x = np.clip(v, 0.0, 1.0)
    return np.where(x > 0, lgf_inverse(x, params), 0.0)


# --- STOI / ESTOI (pa_ci.chain.stoi, pa_ci.chain._fft) --------------------------------------------

def bit_reverse(n):
    bits = int(np.log2(n))
    return np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(n)])


def band_twin(frames):
    """NumPy twin: rfft(512) -> |X|^2 -> pystoi's OBM -> sqrt, shape (15, T)."""
    obm, _ = pystoi_utils.thirdoct(10000, 512, 15, 150)
    spec = np.fft.rfft(frames, n=512, axis=1).T
    return np.sqrt(obm @ np.abs(spec) ** 2)


def stoi_twin(xb, yb):
    """NumPy twin of pystoi's STOI math on band envelopes (Taal et al. 2011 Eq. 3-6)."""
    N = N_SEGMENT
    xs = np.array([xb[:, m - N:m] for m in range(N, xb.shape[1] + 1)])
    ys = np.array([yb[:, m - N:m] for m in range(N, xb.shape[1] + 1)])
    eps = np.finfo(float).eps
    norm = functools.partial(np.linalg.norm, axis=2, keepdims=True)
    a = norm(xs) / (norm(ys) + eps)
    yp = np.minimum(ys * a, xs * (1 + 10 ** (15 / 20)))
    yp = yp - yp.mean(axis=2, keepdims=True)
    xs = xs - xs.mean(axis=2, keepdims=True)
    yp /= np.linalg.norm(yp, axis=2, keepdims=True) + eps
    xs /= np.linalg.norm(xs, axis=2, keepdims=True) + eps
    return np.sum(yp * xs) / (xs.shape[0] * xs.shape[1])


def row_col_twin(seg):
    """pystoi row_col_normalize without its EPS*randn noise (zero norm -> zeros)."""
    def norm(v, axis):
        v = v - v.mean(axis=axis, keepdims=True)
        n = np.sqrt(np.sum(v ** 2, axis=axis, keepdims=True))
        return np.divide(v, n, out=np.zeros_like(v), where=n > 0)
    return norm(norm(seg, -1), -2)


def estoi_twin(xb, yb):
    N = N_SEGMENT
    xs = np.array([xb[:, m - N:m] for m in range(N, xb.shape[1] + 1)])
    ys = np.array([yb[:, m - N:m] for m in range(N, xb.shape[1] + 1)])
    return np.sum(row_col_twin(xs) * row_col_twin(ys) / N) / xs.shape[0]


# --- VSTOI (pa_ci.chain.vstoi) ----------------------------------------------------------------

def plain_vstoi(clean: np.ndarray, pattern: np.ndarray) -> float:
    """Obvious path: inverse LGF + sine vocoder in NumPy, then pystoi (the oracle)."""
    P = ACE
    b, s, a = P.lgf_base, P.lgf_sat, P.lgf_alpha
    v = np.clip(pattern, 0.0, 1.0)
    env = np.where(v > 0, b + (s - b) * ((1.0 + a) ** v - 1.0) / a, 0.0)
    held = np.repeat(env, P.hop, axis=0)
    n = np.arange(1, held.shape[0] + 1)
    y = np.sum(held * np.sin(2 * np.pi * np.asarray(P.centre_frequencies)[None] * n[:, None] / P.fs), 1)
    return pystoi_stoi(clean, y[: len(clean)], int(P.fs))
