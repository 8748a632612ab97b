"""Draft benchmark: mean VSTOI of 100 items, plain path vs the precomputed fast path.

Plain path (per item): NumPy sine vocoder (repeat + sin + sum + peak-normalise), trimmed to the
clean length, then ``pystoi.stoi(clean, vocoded, 16000)``. Fast path: ``ReferenceSet`` built once
(clean side precomputed), then ``ReferenceSet.vstoi_envelopes`` on all items (Numba, parallel).
Also prints a per-stage profile of the fast path and the numbers behind the "exact linear
operator" idea. Run: ``.venv/bin/python tests/bench_vstoi_draft.py`` (not collected by pytest).
"""
from __future__ import annotations

import importlib
import glob
import time

import numba
import numpy as np
import soundfile as sf

S = importlib.import_module("pa_ci.stoi")

FS = 16000
HOP = 18  # ceil(16000 / 900), DECISIONS.md
# Band centres of the 22-channel ACE table (signal_chain_research.md Sec. 1.4)
FREQS = np.array([250, 375, 500, 625, 750, 875, 1000, 1125, 1250, 1437.5, 1687.5, 1937.5,
                  2187.5, 2500, 2875, 3312.5, 3812.5, 4375, 5000, 5687.5, 6500, 7437.5])
N_ITEMS = 100
ITEM_SECONDS = 3.3  # SPSA scenario of the brief: ~3.3 s per item (cut longer files)


def plain_vocoder(E: np.ndarray, freqs=FREQS, hop=HOP, fs=FS) -> np.ndarray:
    env = np.repeat(E, hop, axis=0)
    n = np.arange(1, env.shape[0] + 1)
    y = np.sum(env * np.sin(2 * np.pi * freqs[None, :] * n[:, None] / fs), axis=1)
    return y / np.max(np.abs(y))


def sparse_envelopes(n_frames: int, rng: np.random.Generator, active: int = 8) -> np.ndarray:
    """Random ACE-like envelopes: 8 of 22 channels per frame, values in [0.01, 1]."""
    E = np.zeros((n_frames, FREQS.size))
    idx = np.argsort(rng.random((n_frames, FREQS.size)), axis=1)[:, :active]
    np.put_along_axis(E, idx, rng.uniform(0.01, 1.0, (n_frames, active)), axis=1)
    return E


def load_items(n: int) -> list[np.ndarray]:
    files = sorted(glob.glob("/work/shared/data/speech/cmu_arctic/*.wav"))
    files += sorted(glob.glob("/work/shared/data/speech/librispeech/test-other/*.flac"))
    items = []
    for f in files:
        x, fs = sf.read(f)
        assert fs == FS
        items.append(x[: int(ITEM_SECONDS * FS)])
        if len(items) == n:
            break
    return items


def best_of(f, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times))


def profile_stages(refs, Es) -> dict[str, float]:
    """Single-thread time of each fast-path stage summed over all items (seconds)."""
    tot = dict(vocoder=0.0, resampler=0.0, stft_frames=0.0, fft_bands=0.0, stoi_core=0.0)
    for ref, E in zip(refs, Es):
        runs10, runs16 = ref._needed_runs()
        G, down, half = ref._resampler()
        K = -(-ref.length // HOP)
        st, ct, cs = S._carrier_tables(FREQS, HOP, FS, K)
        pad = G.shape[1] + 1
        y16p = np.empty(ref.length + 2 * pad)
        y10 = np.empty(ref.length10)
        frames = np.empty((ref.n_frames, 256))
        yb = np.empty((S.NUMBAND, ref.n_frames))
        steps = [
            ("vocoder", lambda: S._vocode_runs(E, st, ct, cs, HOP, ref.length, runs16, pad, y16p)),
            ("resampler", lambda: S._resample_runs(y16p, pad, G, down, half, runs10, y10)),
            ("stft_frames", lambda: S._stft_frames(y10, ref.kept_starts, S.WINDOW, frames)),
            ("fft_bands", lambda: S._frames_band_envelopes(frames, S.BAND_LO, S.BAND_HI,
                                                           S._FFT_REV, S._FFT_TW, yb)),
            ("stoi_core", lambda: S._stoi_core(ref.x_bands, yb, *ref._x_stats, S.N_SEGMENT,
                                               S.CLIP_FACTOR)),
        ]
        for name, f in steps:
            t = time.perf_counter()
            for _ in range(3):
                f()
            tot[name] += (time.perf_counter() - t) / 3
    return tot


def operator_lead(ref: S.Reference) -> None:
    """How many STFT entries one envelope value reaches (exact-linear-operator idea)."""
    L, K, T = ref.length, -(-ref.length // HOP), ref.n_frames
    k = int(ref.kept_starts[len(ref.kept_starts) // 2] * 1.6) // HOP  # a frame inside speech
    counts = []
    for c in range(FREQS.size):
        E = np.zeros((K, FREQS.size))
        E[k, c] = 1.0
        n = np.arange(1, K * HOP + 1)
        y = np.sum(np.repeat(E, HOP, 0) * np.sin(2 * np.pi * FREQS * n[:, None] / FS), 1)[:L]
        frames = np.empty((T, 256))
        S._stft_frames(S._to_10k(y, FS), ref.kept_starts, S.WINDOW, frames)
        X = np.abs(np.fft.rfft(frames, 512, axis=1)[:, S.BAND_LO[0]:S.BAND_HI[-1]])
        counts.append(int(np.sum(X > 1e-9 * X.max())))
    per_value = float(np.mean(counts))
    n_values = K * FREQS.size
    print(f"operator lead: one envelope value reaches {min(counts)}..{max(counts)} (mean "
          f"{per_value:.0f}) complex STFT entries above 1e-9 of its peak (of {T} frames x "
          f"{S.BAND_HI[-1] - S.BAND_LO[0]} bins); per item {n_values} values -> "
          f"{n_values * per_value * 16 / 1e9:.2f} GB complex128 operator, applying it with 8/22 "
          f"active = {K * 8 * per_value * 8 / 1e6:.0f} Mflop vs resynthesis ~12 Mflop")


def main() -> None:
    rng = np.random.default_rng(2024)
    xs = load_items(N_ITEMS)
    Es = [sparse_envelopes(-(-len(x) // HOP), rng) for x in xs]
    dur = np.array([len(x) / FS for x in xs])
    print(f"{len(xs)} items, {dur.mean():.2f} s mean ({dur.min():.2f}..{dur.max():.2f} s), "
          f"numba threads {numba.get_num_threads()}")

    # warm up / compile
    S.ReferenceSet([S.Reference(xs[0], FS)]).vstoi_envelopes([Es[0]], FREQS, HOP)

    t = time.perf_counter()
    plain = np.array([__import__("pystoi").stoi(x, plain_vocoder(E)[: len(x)], FS)
                      for x, E in zip(xs, Es)])
    t_plain = time.perf_counter() - t
    t = time.perf_counter()
    refs = [S.Reference(x, FS) for x in xs]
    rset = S.ReferenceSet(refs)
    t_pre = time.perf_counter() - t

    fast = rset.vstoi_envelopes(Es, FREQS, HOP)
    t_fast, t_fast_med = best_of(lambda: rset.vstoi_envelopes(Es, FREQS, HOP), 20)
    E_flat = np.concatenate(Es)
    off = np.concatenate([[0], np.cumsum([len(E) for E in Es])])
    t_packed, t_packed_med = best_of(
        lambda: rset.vstoi_envelopes(E_flat, FREQS, HOP, offsets=off), 20)
    numba.set_num_threads(1)
    t_one, _ = best_of(lambda: rset.vstoi_envelopes(E_flat, FREQS, HOP, offsets=off), 10)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    print(f"plain (NumPy vocoder + pystoi, per item): {t_plain * 1e3:8.1f} ms")
    print(f"fast  (ReferenceSet, list of E):          {t_fast * 1e3:8.1f} ms best, "
          f"{t_fast_med * 1e3:.1f} ms median  -> {t_plain / t_fast:.0f}x")
    print(f"fast  (packed E + offsets):               {t_packed * 1e3:8.1f} ms best, "
          f"{t_packed_med * 1e3:.1f} ms median -> {t_plain / t_packed:.0f}x")
    print(f"fast  (packed, 1 thread):                 {t_one * 1e3:8.1f} ms best")
    print(f"precompute (100 References + ReferenceSet, once): {t_pre * 1e3:.0f} ms")
    print(f"max |fast - plain| = {np.max(np.abs(fast - plain)):.2e}, mean VSTOI "
          f"{fast.mean():.6f} vs {plain.mean():.6f}")

    prof = profile_stages(refs, Es)
    total = sum(prof.values())
    print("profile (1 thread, summed over items): " + ", ".join(
        f"{k} {v * 1e3:.1f} ms ({100 * v / total:.0f}%)" for k, v in prof.items()))
    operator_lead(refs[0])


if __name__ == "__main__":
    main()
