"""``make bench``: mean VSTOI of the default 100-item train set, plain path vs ours, in one run.

Plain path (what a careful NumPy user writes, per item): inverse LGF in NumPy, a vectorised
NumPy sine vocoder (repeat + sin + sum + peak-normalise), trimmed to the clean length, then
``pystoi.stoi(clean, vocoded, 16000)``. Our path: ``ReferenceSet`` built once from the clean
speech (it never changes during training), then per evaluation ``vocoder.envelopes`` +
``ReferenceSet.vstoi_envelopes`` (Numba, parallel over items). Both run on the same ACE patterns
(of the noisy mixtures) in the same process; the script prints both times, the ratio, their
agreement, a per-stage profile of our path and the numbers behind the "exact linear operator"
idea. Not collected by pytest. Run: ``make bench`` or ``.venv/bin/python tests/bench_vstoi.py
[--json] [--repeat N]``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import time

import numba
import numpy as np
from pystoi import stoi as pystoi_stoi

from pa_ci.chain.ace import default_params
from pa_ci.data.dataset import build_dataset, default_config
from pa_ci.chain.vocoder import envelopes

S = importlib.import_module("pa_ci.chain.stoi")
SK = importlib.import_module("pa_ci.chain._stoi_kernels")
V = importlib.import_module("pa_ci.chain.vstoi")
VO = importlib.import_module("pa_ci.chain._vstoi_one")
F = importlib.import_module("pa_ci.chain._fft")
R = importlib.import_module("pa_ci.chain._resample")
P = default_params()
FS, HOP, FREQS = int(P.fs), P.hop, np.asarray(P.centre_frequencies)


def plain_envelopes(pattern: np.ndarray) -> np.ndarray:
    """Inverse LGF in plain NumPy (research note §1.8); 0 stays 0."""
    b, s, a = P.lgf_base, P.lgf_sat, P.lgf_alpha
    v = np.clip(pattern.astype(np.float64), 0.0, 1.0)
    return np.where(v > 0, b + (s - b) * ((1.0 + a) ** v - 1.0) / a, 0.0)


def plain_vocoder(env: np.ndarray) -> np.ndarray:
    """The toolbox sine vocoder in plain NumPy: zero-order hold, sines at band centres, n = 1, 2, ..."""
    held = np.repeat(env, HOP, axis=0)
    n = np.arange(1, held.shape[0] + 1)
    y = np.sum(held * np.sin(2 * np.pi * FREQS[None, :] * n[:, None] / FS), axis=1)
    peak = np.max(np.abs(y))
    return y / peak if peak > 0 else y


def plain_mean_vstoi(cleans, patterns) -> tuple[float, np.ndarray]:
    scores = np.array([pystoi_stoi(x, plain_vocoder(plain_envelopes(p))[: len(x)], FS)
                       for x, p in zip(cleans, patterns)])
    return float(scores.mean()), scores


def timed(f, repeat: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times)), result


def profile_stages(refs, Es) -> dict[str, float]:
    """Single-thread time of each stage of our path, summed over the items (seconds)."""
    tot = dict(vocoder=0.0, resampler=0.0, stft_frames=0.0, fft_bands=0.0, stoi_core=0.0)
    for ref, E in zip(refs, Es):
        runs10, runs16 = ref.needed_runs()
        G, down, half = R._polyphase(ref.fs, S.FS)
        st, ct, cs = VO._carrier_tables(FREQS, HOP, FS, E.shape[0])
        pad = G.shape[1] + 1
        y16p, y10 = np.empty(ref.length + 2 * pad), np.empty(ref.length10)
        frames, yb = np.empty((ref.n_frames, S.N_FRAME)), np.empty((S.NUMBAND, ref.n_frames))
        steps = [
            ("vocoder", lambda: VO._vocode_runs(E, st, ct, cs, HOP, ref.length, runs16, pad, y16p)),
            ("resampler", lambda: R._resample_runs(y16p, pad, G, down, half, runs10, y10)),
            ("stft_frames", lambda: SK._stft_frames(y10, ref.kept_starts, S.WINDOW, frames)),
            ("fft_bands", lambda: F._frames_band_envelopes(frames, S.BAND_LO, S.BAND_HI,
                                                           S._FFT_REV, S._FFT_TW, yb)),
            ("stoi_core", lambda: SK._stoi_core(ref.x_bands, yb, *ref.x_stats, S.N_SEGMENT,
                                               S.CLIP_FACTOR)),
        ]
        for name, f in steps:
            t = time.perf_counter()
            for _ in range(3):
                f()
            tot[name] += (time.perf_counter() - t) / 3
    return tot


def operator_lead(ref, n_frames: int) -> dict[str, float]:
    """How many STFT entries one envelope value reaches (the exact-linear-operator idea)."""
    L, T = ref.length, ref.n_frames
    k = int(ref.kept_starts[len(ref.kept_starts) // 2] * 1.6) // HOP  # a frame inside speech
    counts = []
    for c in range(FREQS.size):
        E = np.zeros((n_frames, FREQS.size))
        E[k, c] = 1.0
        y = np.sum(np.repeat(E, HOP, 0) * np.sin(2 * np.pi * FREQS * np.arange(1, n_frames * HOP + 1)[:, None] / FS), 1)[:L]
        frames = np.empty((T, S.N_FRAME))
        SK._stft_frames(S._to_10k(y, FS), ref.kept_starts, S.WINDOW, frames)
        X = np.abs(np.fft.rfft(frames, S.NFFT, axis=1)[:, S.BAND_LO[0]:S.BAND_HI[-1]])
        counts.append(int(np.sum(X > 1e-9 * X.max())))
    per_value = float(np.mean(counts))
    return {"entries_per_value_min": min(counts), "entries_per_value_max": max(counts),
            "bins_in_bands": int(S.BAND_HI[-1] - S.BAND_LO[0]),
            "operator_gb_complex128": n_frames * FREQS.size * per_value * 16 / 1e9,
            "operator_mflop_8_active": n_frames * 8 * per_value * 8 / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=20, help="repeats of our path (best is reported)")
    parser.add_argument("--plain-repeat", type=int, default=2, help="repeats of the plain path")
    args = parser.parse_args()

    dataset = build_dataset(default_config())
    items = dataset.train
    cleans = [it.clean.astype(np.float64) for it in items]
    patterns = [it.pattern for it in items]
    seconds = np.array([len(x) / FS for x in cleans])

    t0 = time.perf_counter()
    refs = [S.Reference(x, FS) for x in cleans]
    rset = V.ReferenceSet(refs)
    t_precompute = time.perf_counter() - t0

    def ours() -> float:
        return float(np.mean(rset.vstoi_envelopes([envelopes(p, P) for p in patterns], FREQS, HOP)))

    ours()  # compile / load the cache
    t_ours, t_ours_median, v_ours = timed(ours, args.repeat)
    t_plain, t_plain_median, (v_plain, plain_scores) = timed(lambda: plain_mean_vstoi(cleans, patterns),
                                                            args.plain_repeat)
    our_scores = rset.vstoi_envelopes([envelopes(p, P) for p in patterns], FREQS, HOP)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    t_one, _, _ = timed(ours, max(3, args.repeat // 4))
    numba.set_num_threads(threads)
    prof = profile_stages(refs, [envelopes(p, P) for p in patterns])
    lead = operator_lead(refs[0], patterns[0].shape[0])

    result = {
        "items": len(items), "audio_seconds_total": float(seconds.sum()),
        "item_seconds_mean": float(seconds.mean()), "numba_threads": threads,
        "plain_s": t_plain, "plain_median_s": t_plain_median,
        "ours_s": t_ours, "ours_median_s": t_ours_median, "ours_1thread_s": t_one,
        "ratio": t_plain / t_ours, "ratio_median": t_plain_median / t_ours_median,
        "precompute_references_s": t_precompute,
        "mean_vstoi_plain": v_plain, "mean_vstoi_ours": v_ours,
        "max_abs_diff_per_item": float(np.max(np.abs(our_scores - plain_scores))),
        "profile_1thread_s": prof, "operator_lead": lead,
    }
    if args.json:
        print(json.dumps(result))
        return
    total = sum(prof.values())
    print(f"mean VSTOI of the default train split: {len(items)} items, {seconds.sum():.0f} s of "
          f"audio ({seconds.mean():.2f} s per item), patterns given; numba threads {threads}")
    print(f"  plain  (NumPy inverse LGF + vocoder, pystoi per item): {t_plain * 1e3:8.1f} ms "
          f"(median {t_plain_median * 1e3:.1f})")
    print(f"  ours   (envelopes + ReferenceSet.vstoi_envelopes):     {t_ours * 1e3:8.1f} ms "
          f"(median {t_ours_median * 1e3:.1f}; 1 thread {t_one * 1e3:.1f})")
    print(f"  ratio  plain / ours: {t_plain / t_ours:.1f}x (medians: {t_plain_median / t_ours_median:.1f}x)")
    print(f"  once per dataset: 100 References + ReferenceSet {t_precompute * 1e3:.0f} ms")
    print(f"  agreement: mean VSTOI {v_ours:.6f} vs {v_plain:.6f}; max |diff| per item "
          f"{result['max_abs_diff_per_item']:.1e}")
    print("  profile of ours (1 thread, summed): " + ", ".join(
        f"{k} {v * 1e3:.1f} ms ({100 * v / total:.0f}%)" for k, v in prof.items()))
    print(f"  exact-operator lead: one envelope value reaches {lead['entries_per_value_min']}.."
          f"{lead['entries_per_value_max']} STFT entries (> 1e-9 of peak; {lead['bins_in_bands']} bins "
          f"in the bands), i.e. a {lead['operator_gb_complex128']:.2f} GB operator per item and "
          f"{lead['operator_mflop_8_active']:.0f} Mflop to apply: slower than resynthesis")


if __name__ == "__main__":
    main()
