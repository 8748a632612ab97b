"""``make bench``: one SPSA iteration on the default 100-item train set, plain path vs ours.

One iteration of Eq. 7 = draw Delta, score theta + c Delta and theta - c Delta (FRAE forward of
every item, inverse LGF, vocoder, STOI against the clean speech, mean), update theta.

Plain path (what a careful NumPy user writes): the FRAE batched over the items (zero-padded to
the longest, masks per item) with a Python loop over time, the inverse LGF and sine vocoder in
NumPy, and ``pystoi.stoi`` per item. Ours: :class:`pa_ci.objective.VstoiObjective` (Numba FRAE
over (theta, item) pairs in parallel, fused inverse LGF, ``ReferenceSet`` VSTOI) driven by
:class:`pa_ci.spsa.Spsa`. Both run in this process on the same items and the same theta; the
script prints both times, the ratio and the agreement of the scores, the FRAE forward alone,
the time per iteration and the projected time of the paper's 8000-iteration run. If PyTorch is
installed it also times a PyTorch CPU FRAE (GRUCell loop over time, batched over items).
Not collected by pytest. Run: ``make bench`` or ``.venv/bin/python tests/bench_spsa.py [--json]``.
"""
from __future__ import annotations

import argparse
import json
import time

import numba
import numpy as np
from pystoi import stoi as pystoi_stoi

from bench_vstoi import FS, plain_envelopes, plain_vocoder, timed
from pa_ci.data import build_dataset, default_config
from pa_ci.frae import FraeConfig, forward_many, frae_layout, pack_patterns
from pa_ci.objective import VstoiObjective
from pa_ci.spsa import Gains, Spsa
from pa_ci.codec import load_codec


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _gru(x, h, W_ih, W_hh, b_ih, b_hh):
    """PyTorch reset-after GRU cell on a batch (rows), gate blocks (r, z, n)."""
    gi = x @ W_ih.T + b_ih
    gh = h @ W_hh.T + b_hh
    H = h.shape[1]
    r = _sigmoid(gi[:, :H] + gh[:, :H])
    z = _sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1.0 - z) * n + z * h


def plain_frae(theta: np.ndarray, config: FraeConfig, patterns: list[np.ndarray]) -> list[np.ndarray]:
    """The FRAE batched over items with a Python loop over time (zero-padded, per-item lengths)."""
    v = frae_layout(config).views(theta)
    B, T = len(patterns), max(len(p) for p in patterns)
    X = np.zeros((B, T, config.n_channels))
    for i, p in enumerate(patterns):
        X[i, : len(p)] = p
    s = np.zeros((B, config.enc_hidden))
    h = np.zeros((B, config.dec_hidden))
    out = np.zeros((B, T, config.n_channels))
    C = v["codebook"]
    for t in range(T):
        s = _gru(np.concatenate([X[:, t], h], axis=1), s, v["enc.gru.W_ih"], v["enc.gru.W_hh"],
                 v["enc.gru.b_ih"], v["enc.gru.b_hh"])
        z = s @ v["enc.latent.W"].T + v["enc.latent.b"]
        idx = np.argmin(((z[:, None, :] - C[None]) ** 2).sum(-1), axis=1)
        h = _gru(C[idx], h, v["dec.gru.W_ih"], v["dec.gru.W_hh"], v["dec.gru.b_ih"], v["dec.gru.b_hh"])
        y = _sigmoid(h @ v["dec.out.W"].T + v["dec.out.b"])
        if config.output_maxima:
            # keep the N largest; ties reject the lower channel (stable sort on reversed channels)
            order = np.argsort(-y[:, ::-1], axis=1, kind="stable")[:, : config.output_maxima]
            keep = np.zeros_like(y, dtype=bool)
            np.put_along_axis(keep, config.n_channels - 1 - order, True, axis=1)
            y = np.where(keep, y, 0.0)
        out[:, t] = y
    return [out[i, : len(p)] for i, p in enumerate(patterns)]


def plain_objective(theta, config, cleans, patterns) -> float:
    decoded = plain_frae(theta, config, patterns)
    return float(np.mean([pystoi_stoi(x, plain_vocoder(plain_envelopes(d))[: len(x)], FS)
                          for x, d in zip(cleans, decoded)]))


def plain_spsa_iteration(theta, config, cleans, patterns, gains: Gains, k: int, rng) -> np.ndarray:
    delta = 2.0 * rng.integers(0, 2, size=theta.size) - 1.0  # Rademacher, the same draws as Spsa
    ck = gains.c_k(k)
    y_plus = plain_objective(theta + ck * delta, config, cleans, patterns)
    y_minus = plain_objective(theta - ck * delta, config, cleans, patterns)
    return theta + gains.a_k(k) * (y_plus - y_minus) / (2 * ck) * delta


def torch_frae_seconds(theta, config, patterns, repeat: int = 2) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(numba.get_num_threads())
    v = {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in frae_layout(config).views(theta).items()}
    enc = torch.nn.GRUCell(config.n_channels + config.dec_hidden, config.enc_hidden).double()
    dec = torch.nn.GRUCell(config.latent_dim, config.dec_hidden).double()
    with torch.no_grad():
        for cell, pre in ((enc, "enc.gru."), (dec, "dec.gru.")):
            cell.weight_ih.copy_(v[pre + "W_ih"]); cell.weight_hh.copy_(v[pre + "W_hh"])
            cell.bias_ih.copy_(v[pre + "b_ih"]); cell.bias_hh.copy_(v[pre + "b_hh"])
    B, T = len(patterns), max(len(p) for p in patterns)
    X = torch.zeros(B, T, config.n_channels, dtype=torch.float64)
    for i, p in enumerate(patterns):
        X[i, : len(p)] = torch.from_numpy(p.astype(np.float64))

    def run():
        with torch.no_grad():
            s = torch.zeros(B, config.enc_hidden, dtype=torch.float64)
            h = torch.zeros(B, config.dec_hidden, dtype=torch.float64)
            for t in range(T):
                s = enc(torch.cat([X[:, t], h], 1), s)
                z = s @ v["enc.latent.W"].T + v["enc.latent.b"]
                q = v["codebook"][torch.cdist(z, v["codebook"]).argmin(1)]
                h = dec(q, h)
                torch.sigmoid(h @ v["dec.out.W"].T + v["dec.out.b"])
    return timed(run, repeat)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=5, help="repeats of our iteration (best is reported)")
    args = parser.parse_args()

    dataset = build_dataset(default_config())
    items = dataset.train
    cleans = [it.clean.astype(np.float64) for it in items]
    patterns = [it.pattern.astype(np.float64) for it in items]
    codec = load_codec()
    theta0, config = codec.theta.copy(), codec.config
    gains = Gains()
    frames = sum(len(p) for p in patterns)

    t0 = time.perf_counter()
    objective = VstoiObjective(items, config)
    t_setup = time.perf_counter() - t0
    spsa = Spsa(objective, theta0, gains=gains, seed=0)
    spsa.step()  # compile / load caches

    def ours():
        s = Spsa(objective, theta0, gains=gains, seed=0)
        s.step()
        return s.theta
    t_ours, t_ours_med, theta_ours = timed(ours, args.repeat)

    t_plain, _, theta_plain = timed(lambda: plain_spsa_iteration(
        theta0.copy(), config, cleans, patterns, gains, 0, np.random.Generator(np.random.PCG64(0))), 1)

    # agreement of the objective itself on theta0 (same items, same theta)
    y_ours = float(objective(theta0[None, :], 0)[0])
    t_plain_obj, _, y_plain = timed(lambda: plain_objective(theta0, config, cleans, patterns), 1)

    stacked = np.ascontiguousarray(np.concatenate(patterns))
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in patterns])]).astype(np.int64)
    packed = pack_patterns(stacked, config.n_channels, offsets=offsets)  # once per dataset
    forward_many(theta0[None, :], config, packed)
    t_fwd1, _, _ = timed(lambda: forward_many(theta0[None, :], config, packed), 10)
    t_fwd2, _, _ = timed(lambda: forward_many(np.stack([theta0, theta0]), config, packed), 10)
    t_plain_fwd, _, _ = timed(lambda: plain_frae(theta0, config, patterns), 1)
    t_torch = torch_frae_seconds(theta0, config, patterns)

    result = {
        "items": len(items), "frames_total": int(frames),
        "audio_seconds_total": float(sum(len(x) for x in cleans) / FS),
        "numba_threads": numba.get_num_threads(),
        "plain_iteration_s": t_plain, "ours_iteration_s": t_ours, "ours_iteration_median_s": t_ours_med,
        "ratio": t_plain / t_ours,
        "paper_8000_iterations_hours_ours": 8000 * t_ours / 3600,
        "paper_8000_iterations_hours_plain": 8000 * t_plain / 3600,
        "objective_setup_s": t_setup,
        "mean_vstoi_ours": y_ours, "mean_vstoi_plain": y_plain,
        "max_abs_theta_diff_after_step": float(np.max(np.abs(theta_ours - theta_plain))),
        "frae_forward_1theta_s": t_fwd1, "frae_forward_2theta_s": t_fwd2,
        "frae_forward_plain_numpy_s": t_plain_fwd, "frae_forward_torch_s": t_torch,
        "torch_ratio": (t_torch / t_fwd1) if t_torch else None,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"one SPSA iteration (Eq. 7) on the default train split: {len(items)} items, {frames} frames, "
          f"{result['audio_seconds_total']:.0f} s of audio; numba threads {result['numba_threads']}")
    print(f"  plain (NumPy FRAE batched, loop over time; NumPy vocoder; pystoi per item): {t_plain:7.2f} s")
    print(f"  ours  (Spsa + VstoiObjective):                                       {t_ours * 1e3:7.1f} ms "
          f"(median {t_ours_med * 1e3:.1f})")
    print(f"  ratio plain / ours: {t_plain / t_ours:.1f}x;  the paper's 8000 iterations: "
          f"{result['paper_8000_iterations_hours_ours'] * 60:.0f} min ours vs "
          f"{result['paper_8000_iterations_hours_plain']:.1f} h plain")
    print(f"  agreement: mean VSTOI of theta0 {y_ours:.6f} (ours) vs {y_plain:.6f} (plain); "
          f"max |theta diff| after one step {result['max_abs_theta_diff_after_step']:.1e}")
    print(f"  FRAE forward alone: {t_fwd1 * 1e3:.1f} ms (1 theta), {t_fwd2 * 1e3:.1f} ms (2 thetas), "
          f"plain NumPy {t_plain_fwd:.2f} s" + (f", PyTorch GRUCell loop {t_torch:.2f} s "
                                                f"({t_torch / t_fwd1:.1f}x)" if t_torch else
                                                ", PyTorch not installed"))
    print(f"  once per dataset: objective set-up (references) {t_setup * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
