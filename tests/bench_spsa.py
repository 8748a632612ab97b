"""``make bench``: one SPSA iteration on the default 100-item train set, ours vs the plain path.

One iteration of Eq. 7 = draw Delta, score theta + c Delta and theta - c Delta (FRAE forward of
every item, inverse LGF, vocoder, STOI against the clean speech, mean), update theta. A
pruning-aware (PA) iteration scores four parameter vectors (each point and its pruned copy,
Eq. 5).

Everything below is measured side by side in ONE run of this script, on the same items and the
same theta, with medians:

- ours (``Spsa`` over ``VstoiObjective``) at 1 and at 2 Numba threads (>= 5 runs each), the
  FRAE forward alone (1, 2 and 4 thetas) and the VSTOI side alone;
- the plain path at 1 thread (>= 3 runs): the FRAE batched over the items in NumPy with a Python
  loop over time, the inverse LGF and sine vocoder in NumPy, ``pystoi.stoi`` per item. BLAS is
  pinned to one thread for the whole process (environment variables below), so "1 thread" is
  true of both paths and the headline ratio is at equal threads;
- when PyTorch is installed (the ``bench`` extra): a PyTorch CPU FRAE with the same weights as a
  careful user writes it (items sorted by length, the batch shrinking as items end, GRUCell,
  no autograd), at 1 and 2 threads;
- the machine's limit: float64 GEMM GFLOP/s (NumPy matmul 2000 x 2000) at 1 thread here and at
  2 threads in a child process, against the FRAE's arithmetic rate.

The once-per-dataset set-up (dataset load, ``VstoiObjective`` construction: clean references,
packing) is reported apart. The JSON (machine, versions, every figure) is written to
``benchmarks/results/spsa-<UTC time>.json``; ``--json`` also prints it as one object.
Not collected by pytest. Run: ``make bench`` or ``.venv/bin/python tests/bench_spsa.py``.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before NumPy
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
from pystoi import stoi as pystoi_stoi  # noqa: E402

from bench_vstoi import FS, plain_envelopes, plain_vocoder  # noqa: E402
from pa_ci.codec.coder import load_codec  # noqa: E402
from pa_ci.data.dataset import build_dataset, default_config  # noqa: E402
from pa_ci.codec.frae import FraeConfig, forward_many, forward_maxima, frae_layout  # noqa: E402
from pa_ci.train.objective import VstoiObjective  # noqa: E402
from pa_ci.prune.magnitude import eligible_mask  # noqa: E402
from pa_ci.prune.pruning_aware import PruningAwareObjective  # noqa: E402
from pa_ci.train.spsa import Gains, Spsa  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


# ----------------------------------------------------------------------------- plain path
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


# ----------------------------------------------------------------------------- PyTorch
def torch_frae(theta, config: FraeConfig, patterns):
    """A careful PyTorch CPU FRAE (same weights): items sorted by length, the batch shrinking as
    items end (sorted longest first, so the active items are always a prefix), GRUCell, no
    autograd, the maxima selection by ``topk``. Returns a function that runs it once, or None."""
    try:
        import torch
    except ImportError:
        return None
    v = {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in frae_layout(config).views(theta).items()}
    enc = torch.nn.GRUCell(config.n_channels + config.dec_hidden, config.enc_hidden).double()
    dec = torch.nn.GRUCell(config.latent_dim, config.dec_hidden).double()
    with torch.no_grad():
        for cell, pre in ((enc, "enc.gru."), (dec, "dec.gru.")):
            cell.weight_ih.copy_(v[pre + "W_ih"]); cell.weight_hh.copy_(v[pre + "W_hh"])
            cell.bias_ih.copy_(v[pre + "b_ih"]); cell.bias_hh.copy_(v[pre + "b_hh"])
    order = sorted(range(len(patterns)), key=lambda i: -len(patterns[i]))
    lengths = np.array([len(patterns[i]) for i in order])
    B, T = len(patterns), int(lengths[0])
    X = torch.zeros(T, B, config.n_channels, dtype=torch.float64)  # time-major: X[t, :b] contiguous
    for j, i in enumerate(order):
        X[: lengths[j], j] = torch.from_numpy(patterns[i].astype(np.float64))
    active = [int(np.sum(lengths > t)) for t in range(T)]
    Wl, bl, cb = v["enc.latent.W"].T.contiguous(), v["enc.latent.b"], v["codebook"]
    Wo, bo = v["dec.out.W"].T.contiguous(), v["dec.out.b"]
    M = config.output_maxima

    def run():
        with torch.no_grad():
            s = torch.zeros(B, config.enc_hidden, dtype=torch.float64)
            h = torch.zeros(B, config.dec_hidden, dtype=torch.float64)
            out = torch.zeros(T, B, config.n_channels, dtype=torch.float64)
            for t in range(T):
                b = active[t]
                s, h = s[:b], h[:b]
                s = enc(torch.cat([X[t, :b], h], 1), s)
                z = torch.addmm(bl, s, Wl)
                q = cb[torch.cdist(z, cb).argmin(1)]
                h = dec(q, h)
                y = torch.sigmoid(torch.addmm(bo, h, Wo))
                if M:
                    vals, idx = torch.topk(y, M, dim=1)
                    out[t, :b].scatter_(1, idx, vals)
                else:
                    out[t, :b] = y
        return out
    return run


# ----------------------------------------------------------------------------- helpers
def timed(f, repeat: int) -> tuple[float, list[float], object]:
    """(median, all times, last result) of ``repeat`` calls."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), times, result


def gemm_gflops(n: int = 2000, repeat: int = 5) -> float:
    """float64 GEMM rate of NumPy's BLAS in this process (2 n^3 flops per product)."""
    a = np.random.default_rng(0).standard_normal((n, n))
    b = a.T.copy()
    a @ b
    med, _, _ = timed(lambda: a @ b, repeat)
    return 2 * n ** 3 / med / 1e9


def gemm_gflops_child(threads: int) -> float:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    code = ("import sys; sys.path.insert(0, %r); import bench_spsa; print(bench_spsa.gemm_gflops())"
            % str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def frae_macs_per_frame(config: FraeConfig, active_inputs: float) -> float:
    """Multiply-adds per frame of the FRAE (research §3), with ``active_inputs`` nonzero pattern
    channels: encoder GRU (input [x; h], recurrent), latent, VQ distances, decoder GRU, output."""
    C, He, Hd, D, K = (config.n_channels, config.enc_hidden, config.dec_hidden,
                       config.latent_dim, config.codebook_size)
    return (3 * He * (active_inputs + Hd) + 3 * He * He + D * He + K * D
            + 3 * Hd * D + 3 * Hd * Hd + C * Hd)


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "numba": numba.__version__}
    for mod in ("scipy", "pystoi", "torch"):
        try:
            versions[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            versions[mod] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=ROOT, capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = None, None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "numba_max_threads": numba.config.NUMBA_NUM_THREADS, "versions": versions,
            "commit": commit, "dirty_worktree": dirty}


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--repeat", type=int, default=7, help="runs of each of our figures (>= 5)")
    parser.add_argument("--plain-repeat", type=int, default=3, help="runs of the plain path (>= 3)")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args()
    repeat, plain_repeat = max(5, args.repeat), max(3, args.plain_repeat)
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else \
        (lambda *a: print(*a, flush=True))

    t0 = time.perf_counter()
    dataset = build_dataset(default_config())
    items = dataset.train
    t_dataset = time.perf_counter() - t0
    cleans = [it.clean.astype(np.float64) for it in items]
    patterns = [it.pattern.astype(np.float64) for it in items]
    codec = load_codec()
    theta0, config = codec.theta.copy(), codec.config
    gains = Gains()
    frames = sum(len(p) for p in patterns)
    active_inputs = float(np.mean([np.count_nonzero(p, axis=1).mean() for p in patterns]))
    macs = frae_macs_per_frame(config, active_inputs)

    t0 = time.perf_counter()
    objective = VstoiObjective(items, config)
    t_setup = time.perf_counter() - t0
    eligible = eligible_mask(frae_layout(config), "whole")
    pa = PruningAwareObjective(objective, eligible, 0.7, n_max=1000)
    objective32 = VstoiObjective(items, config, precision="float32")  # --precision float32
    pa32 = PruningAwareObjective(objective32, eligible, 0.7, n_max=1000)
    thetas2 = np.stack([theta0, theta0 + 1e-3])
    thetas4 = np.concatenate([thetas2, thetas2 - 2e-3])
    say(f"set-up: dataset {t_dataset:.2f} s (cached), objective {t_setup:.2f} s; "
        f"{len(items)} items, {frames} frames")

    ours: dict[str, dict] = {}
    for threads in (1, 2):
        if threads > numba.config.NUMBA_NUM_THREADS:
            continue
        numba.set_num_threads(threads)
        Spsa(objective, theta0, gains=gains, seed=0).step()  # compile / load caches, buffers
        Spsa(pa, theta0, gains=gains, seed=0).step()
        Spsa(objective32, theta0, gains=gains, seed=0).step()
        Spsa(pa32, theta0, gains=gains, seed=0).step()

        def iteration(obj=objective):
            s = Spsa(obj, theta0, gains=gains, seed=0)
            s.step()
            return s.theta
        r = {}
        r["iteration_s"], r["iteration_runs_s"], theta_ours = timed(iteration, repeat)
        r["pa_iteration_s"], r["pa_iteration_runs_s"], _ = timed(lambda: iteration(pa), repeat)
        r["float32_iteration_s"], r["float32_iteration_runs_s"], _ = timed(
            lambda: iteration(objective32), repeat)
        r["float32_pa_iteration_s"], _, _ = timed(lambda: iteration(pa32), repeat)
        r["float32_frae_forward_1theta_s"], _, _ = timed(
            lambda: forward_maxima(theta0[None], config, objective._packed_all, precision="float32"),
            repeat)
        r["frae_forward_maxima_1theta_s"], _, _ = timed(
            lambda: forward_maxima(theta0[None], config, objective._packed_all), repeat)
        for n, th in ((1, theta0[None]), (2, thetas2), (4, thetas4)):
            r[f"frae_forward_{n}theta_s"], _, _ = timed(
                lambda th=th: forward_many(th, config, objective._packed_all), repeat)
        r["objective_2theta_s"], _, _ = timed(lambda: objective(thetas2, 0), repeat)
        # the VSTOI side: the objective minus its own FRAE pass (kept maxima into reused buffers)
        buffers = (np.empty((2, frames, config.output_maxima), np.int8),
                   np.empty((2, frames, config.output_maxima)))
        r["frae_forward_maxima_2theta_s"], _, _ = timed(
            lambda: forward_maxima(thetas2, config, objective._packed_all, out=buffers), repeat)
        r["vstoi_side_per_theta_s"] = (r["objective_2theta_s"]
                                       - r["frae_forward_maxima_2theta_s"]) / 2
        r["frae_gflops"] = 2 * macs * frames / (r["frae_forward_1theta_s"]) / 1e9
        ours[str(threads)] = r
        say(f"ours, {threads} thread(s): iteration {r['iteration_s'] * 1e3:.1f} ms, PA iteration "
            f"{r['pa_iteration_s'] * 1e3:.1f} ms, FRAE forward {r['frae_forward_1theta_s'] * 1e3:.1f} ms "
            f"per theta ({r['frae_forward_2theta_s'] * 1e3:.1f} ms for 2, "
            f"{r['frae_forward_4theta_s'] * 1e3:.1f} ms for 4), VSTOI side "
            f"{r['vstoi_side_per_theta_s'] * 1e3:.1f} ms per theta; float32 precision: iteration "
            f"{r['float32_iteration_s'] * 1e3:.1f} ms, PA iteration "
            f"{r['float32_pa_iteration_s'] * 1e3:.1f} ms")
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    say(f"plain path, 1 thread ({plain_repeat} runs of ~10 s) ...")
    plain = {}
    plain["iteration_s"], plain["iteration_runs_s"], theta_plain = timed(lambda: plain_spsa_iteration(
        theta0.copy(), config, cleans, patterns, gains, 0, np.random.Generator(np.random.PCG64(0))),
        plain_repeat)
    plain["frae_forward_1theta_s"], _, _ = timed(lambda: plain_frae(theta0, config, patterns), plain_repeat)
    y_plain = plain_objective(theta0, config, cleans, patterns)
    y_ours = float(objective(theta0[None, :], 0)[0])

    torch_res = None
    run_torch = torch_frae(theta0, config, patterns)
    if run_torch is not None:
        import torch
        torch_res = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            run_torch()
            torch_res[f"frae_forward_{threads}thread_s"], _, _ = timed(run_torch, plain_repeat)
        say(f"PyTorch FRAE: {torch_res['frae_forward_1thread_s']:.3f} s (1 thread), "
            f"{torch_res['frae_forward_2thread_s']:.3f} s (2 threads)")

    gemm = {"1": gemm_gflops()}
    try:
        gemm["2"] = gemm_gflops_child(2)
    except (OSError, subprocess.CalledProcessError, ValueError):
        gemm["2"] = None

    best = ours[max(ours)]
    one = ours["1"]
    t_pa, t_it = best["pa_iteration_s"], best["iteration_s"]
    result = {
        "benchmark": "spsa_iteration", "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "machine": machine(),
        "items": len(items), "frames_total": int(frames),
        "audio_seconds_total": float(sum(len(x) for x in cleans) / FS),
        "repeats": {"ours": repeat, "plain": plain_repeat}, "statistic": "median",
        "setup_once_per_dataset_s": {"dataset_load": t_dataset, "objective": t_setup},
        "ours": ours, "plain_1thread": plain, "torch": torch_res,
        "gemm_gflops": gemm,
        "frae_macs_per_frame": macs, "mean_active_input_channels": active_inputs,
        "ratios": {
            "plain_over_ours_iteration_1thread": plain["iteration_s"] / one["iteration_s"],
            "plain1_over_ours2_iteration": plain["iteration_s"] / best["iteration_s"],
            "scaling_iteration_2_over_1": one["iteration_s"] / best["iteration_s"],
            "scaling_frae_2_over_1": one["frae_forward_1theta_s"] / best["frae_forward_1theta_s"],
            "plain_over_ours_frae_1thread": plain["frae_forward_1theta_s"] / one["frae_forward_1theta_s"],
            "torch_over_ours_frae_1thread": (torch_res["frae_forward_1thread_s"] / one["frae_forward_1theta_s"]
                                             if torch_res else None),
            "torch_over_ours_frae_2thread": (torch_res["frae_forward_2thread_s"] / best["frae_forward_1theta_s"]
                                             if torch_res else None),
            "frae_fraction_of_gemm_peak": (best["frae_gflops"] / gemm[max(ours)]
                                           if gemm.get(max(ours)) else None),
        },
        "agreement": {"mean_vstoi_ours": y_ours, "mean_vstoi_plain": y_plain,
                      "abs_diff": abs(y_ours - y_plain),
                      "max_abs_theta_diff_after_step": float(np.max(np.abs(theta_ours - theta_plain)))},
        "projected": {
            "paper_pa_run_h": (1000 * t_pa + 7000 * t_it) / 3600,
            "paper_pa_run_float32_h": (1000 * best["float32_pa_iteration_s"]
                                       + 7000 * best["float32_iteration_s"]) / 3600,
            "paper_baseline_run_float32_h": 8000 * best["float32_iteration_s"] / 3600,
            "paper_baseline_run_h": 8000 * t_it / 3600,
            "paper_sweep_19_rates_2_scopes_2_methods_h": 19 * 2 * ((1000 * t_pa + 7000 * t_it)
                                                                 + 8000 * t_it) / 3600,
            "plain_paper_baseline_run_h": 8000 * plain["iteration_s"] / 3600,
        },
    }
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"spsa-{stamp}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(path)
        say(f"wrote {path.relative_to(ROOT)}")
    if args.json:
        print(json.dumps(result))
        return
    r, p = result["ratios"], result["projected"]
    print(f"\none SPSA iteration (Eq. 7), default train split: {len(items)} items, {frames} frames, "
          f"{result['audio_seconds_total']:.0f} s of audio; medians of {repeat} (ours), {plain_repeat} (plain)")
    print(f"  plain path, 1 thread:  {plain['iteration_s']:8.2f} s")
    for th, o in ours.items():
        print(f"  ours, {th} thread(s):    {o['iteration_s'] * 1e3:8.1f} ms   PA iteration (4 thetas) "
              f"{o['pa_iteration_s'] * 1e3:.1f} ms;  --precision float32: "
              f"{o['float32_iteration_s'] * 1e3:.1f} ms / {o['float32_pa_iteration_s'] * 1e3:.1f} ms")
    print(f"  ratio at 1 thread (plain / ours): {r['plain_over_ours_iteration_1thread']:.0f}x;  "
          f"plain (1) / ours (2): {r['plain1_over_ours2_iteration']:.0f}x;  "
          f"2-thread scaling {r['scaling_iteration_2_over_1']:.2f}x")
    print(f"  FRAE forward per theta: ours {one['frae_forward_1theta_s'] * 1e3:.1f} ms (1 thread), "
          f"{best['frae_forward_1theta_s'] * 1e3:.1f} ms (2 threads; scaling {r['scaling_frae_2_over_1']:.2f}x); "
          f"plain NumPy {plain['frae_forward_1theta_s']:.2f} s" +
          (f"; PyTorch {torch_res['frae_forward_1thread_s']:.2f} s / {torch_res['frae_forward_2thread_s']:.2f} s "
           f"({r['torch_over_ours_frae_1thread']:.0f}x / {r['torch_over_ours_frae_2thread']:.0f}x)"
           if torch_res else "; PyTorch not installed"))
    print(f"  VSTOI side per theta: {one['vstoi_side_per_theta_s'] * 1e3:.1f} ms (1 thread), "
          f"{best['vstoi_side_per_theta_s'] * 1e3:.1f} ms (2 threads)")
    print(f"  machine limit: GEMM {gemm['1']:.0f} GFLOP/s (1 thread), "
          f"{gemm['2'] or float('nan'):.0f} GFLOP/s (2); FRAE ({macs:.0f} multiply-adds per frame) runs at "
          f"{best['frae_gflops']:.1f} GFLOP/s = {100 * (r['frae_fraction_of_gemm_peak'] or float('nan')):.0f} % of it")
    print(f"  agreement: mean VSTOI {y_ours:.9f} (ours) vs {y_plain:.9f} (plain); max |theta diff| "
          f"after one step {result['agreement']['max_abs_theta_diff_after_step']:.1e}")
    print(f"  projected: the paper's PA run (1000 PA + 7000 fine-tuning) {p['paper_pa_run_h'] * 60:.0f} min, "
          f"baseline (8000) {p['paper_baseline_run_h'] * 60:.0f} min, the 19-rate x 2-scope x 2-method "
          f"sweep {p['paper_sweep_19_rates_2_scopes_2_methods_h']:.1f} h (plain path: "
          f"{p['plain_paper_baseline_run_h']:.0f} h per baseline run)")
    print(f"  once per dataset: dataset load {t_dataset * 1e3:.0f} ms, objective set-up {t_setup * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
