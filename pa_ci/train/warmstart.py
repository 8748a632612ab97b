"""The warm start of the FRAE on frame MSE before SPSA on VSTOI (frae_spsa_research.md §3.6).

One concept: the driver that fits the model to the stimulation patterns by Adam on the
frame-MSE loss of :mod:`pa_ci.train.bptt`, with the codebook from :mod:`pa_ci.train.kmeans`.
Not an equation of the paper: the paper trains its FRAE by SPSA on mean VSTOI (Eq. 7,
:mod:`pa_ci.train.spsa`), which is slow from a random initialisation; this is the cheap start.

1. **Phase 1, no quantiser** (``q_t = z_t``), ``quantize_after * steps`` Adam steps on
   ``MSE(y, x)``, starting from the output bias at the logit of the per-channel mean of the
   data (``init_output_bias``), i.e. from the best constant output.
2. **Codebook initialisation** (frae_spsa_research.md §3.4): the feedback path makes the latents
   depend on the codebook, so ``kmeans_rounds`` rounds of "run the model over every training
   frame (states 0 at each utterance start) and collect ``z_t`` -> k-means (k-means++ / Lloyd,
   LBG style) -> new codebook". Round 1 collects the latents of the unquantised phase-1 model
   (the operating point the decoder was trained at); later rounds quantise with the codebook of
   the previous round and start Lloyd from it.
3. **Phase 2, with the vector quantiser**: the straight-through VQ-VAE loss of
   :mod:`pa_ci.train.bptt`. Codewords unused during ``refresh_every`` steps are re-seeded
   from random latents of the current batch, so none stays dead.

Training approximation: a training chunk is a window of ``chunk_frames`` frames from a random
item (chosen with probability proportional to its length, the start uniform), and the encoder
and decoder states start at 0 at the chunk start, as they do at an utterance start. Mid-utterance
windows therefore begin from a state the codec would not have there. Measured on the default
train split with the warm-started default model: restarting mid-utterance changes y_t by a mean
0.11 at the restart frame, 0.016 after 25 frames and 0.013 after 200 (the quantised loop does
not re-synchronise exactly, but that is small against the RMS reconstruction error of 0.22).
So the approximation costs little, and it lets a batch of chunks be processed as one matrix
per time step. Evaluation (:func:`pa_ci.train.bptt.frame_mse`, the k-means
latents) always runs whole utterances from state 0, exactly like the codec.

Everything is float64 and deterministic from ``WarmStartOptions.seed`` (one
``numpy.random.Generator``).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import TrainingError
from ..progress import ProgressFn
from ..validate import is_finite_real, is_int
from ..codec.frae import FraeConfig, frae_layout
from .bptt import _check_theta, _Data, _evaluate, _loss_and_grad, _run_items
from .kmeans import _assign, codebook_usage, kmeans

__all__ = ["WarmStartOptions", "warm_start", "init_codebook"]


# --------------------------------------------------------------------------------------------
# options


@dataclass(frozen=True)
class WarmStartOptions:
    """Options of :func:`warm_start`. Defaults tuned on the default train split (100 items,
    341k frames, FRAE config A): frame MSE 0.048-0.049 over seeds 0-4 in about 20 s on 2 cores.

    - ``steps``: Adam steps in total (phase 1 + phase 2); 400 x 32 x 128 frames see every
      training frame about 5 times. 1000 steps gained < 0.002 in frame MSE.
    - ``chunk_frames``: BPTT window (128 frames = 0.14 s at 888.9 frames/s); 256 costs twice
      the time per step and gave the same frame MSE.
    - ``batch_items``: chunks per Adam step.
    - ``learning_rate``: Adam step size, decayed with a half cosine to ``final_lr_fraction`` of
      itself over the run. 0.02 with ``clip_norm`` 0.03 is the fastest stable setting found:
      3e-3 ended at 0.061, 0.01 at 0.052-0.053, 0.03 at 0.071, and 0.02 without clipping got
      stuck at the constant-output MSE (0.10) for one seed out of two.
    - ``clip_norm``: global gradient-norm clip (0 = off). Typical norms are 0.005-0.02 with
      rare BPTT spikes up to 0.5; 0.03 cuts the spikes only.
    - ``quantize_after``: fraction of ``steps`` trained without the quantiser (``q_t = z_t``).
    - ``commitment``: VQ-VAE commitment weight beta (0.25, the VQ-VAE paper's value; 1.0 was
      no better).
    - ``codebook_weight``: weight of the VQ-VAE codebook term ``||sg(z) - q||^2``.
    - ``kmeans_rounds``, ``kmeans_iter``, ``kmeans_points``: rounds of "collect latents ->
      k-means", Lloyd iterations per round, and the size of the random subset of latents
      clustered (all latents are used for the reported distortion).
    - ``refresh_every``: phase-2 steps between dead-codeword checks.
    - ``init_output_bias``: start the output bias at the logit of the per-channel mean of the
      training frames, so y_t starts at the best constant output. Without it the first ~250
      steps only learn that mean (frame MSE 0.075 instead of 0.052 after 400 steps at 0.01).
    - ``seed``: the one seed every random choice derives from.
    """

    steps: int = 400
    chunk_frames: int = 128
    batch_items: int = 32
    learning_rate: float = 0.02
    clip_norm: float = 0.03
    quantize_after: float = 0.5
    commitment: float = 0.25
    codebook_weight: float = 1.0
    kmeans_rounds: int = 3
    kmeans_iter: int = 25
    kmeans_points: int = 100_000
    refresh_every: int = 25
    final_lr_fraction: float = 0.1
    init_output_bias: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise TrainingError(f"warm-start options: {what}")

        need(is_int(self.steps) and self.steps >= 0, f"steps must be an int >= 0, got {self.steps!r}")
        need(is_int(self.chunk_frames) and self.chunk_frames >= 1,
             f"chunk_frames must be an int >= 1, got {self.chunk_frames!r}")
        need(is_int(self.batch_items) and self.batch_items >= 1,
             f"batch_items must be an int >= 1, got {self.batch_items!r}")
        need(is_finite_real(self.learning_rate) and self.learning_rate > 0,
             f"learning_rate must be > 0, got {self.learning_rate!r}")
        need(is_finite_real(self.quantize_after) and 0.0 <= self.quantize_after <= 1.0,
             f"quantize_after must be in [0, 1], got {self.quantize_after!r}")
        need(is_finite_real(self.commitment) and self.commitment >= 0,
             f"commitment must be >= 0, got {self.commitment!r}")
        need(is_finite_real(self.codebook_weight) and self.codebook_weight >= 0,
             f"codebook_weight must be >= 0, got {self.codebook_weight!r}")
        need(is_int(self.kmeans_rounds) and self.kmeans_rounds >= 1,
             f"kmeans_rounds must be an int >= 1, got {self.kmeans_rounds!r}")
        need(is_int(self.kmeans_iter) and self.kmeans_iter >= 1,
             f"kmeans_iter must be an int >= 1, got {self.kmeans_iter!r}")
        need(is_int(self.refresh_every) and self.refresh_every >= 1,
             f"refresh_every must be an int >= 1, got {self.refresh_every!r}")
        need(is_finite_real(self.final_lr_fraction) and 0 < self.final_lr_fraction <= 1,
             f"final_lr_fraction must be in (0, 1], got {self.final_lr_fraction!r}")
        need(is_finite_real(self.clip_norm) and self.clip_norm >= 0,
             f"clip_norm must be >= 0, got {self.clip_norm!r}")
        need(is_int(self.kmeans_points) and self.kmeans_points >= 1,
             f"kmeans_points must be an int >= 1, got {self.kmeans_points!r}")
        need(isinstance(self.init_output_bias, bool),
             f"init_output_bias must be a bool, got {self.init_output_bias!r}")
        need(is_int(self.seed) and self.seed >= 0, f"seed must be an int >= 0, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _selector(layout: Any, codebook_rows: np.ndarray) -> np.ndarray:
    """Boolean (p,) mask of the given codebook rows in theta."""
    sel = np.zeros(layout.size, dtype=bool)
    layout.view(sel, "codebook")[codebook_rows] = True
    return sel


class _Adam:
    """Adam (Kingma & Ba 2015) on a flat vector, beta1 0.9, beta2 0.999, eps 1e-8."""

    def __init__(self, size: int) -> None:
        self.m = np.zeros(size)
        self.v = np.zeros(size)
        self.t = 0

    def step(self, theta: np.ndarray, grad: np.ndarray, lr: float) -> None:
        self.t += 1
        self.m = 0.9 * self.m + 0.1 * grad
        self.v = 0.999 * self.v + 0.001 * grad * grad
        mh = self.m / (1 - 0.9 ** self.t)
        vh = self.v / (1 - 0.999 ** self.t)
        theta -= lr * mh / (np.sqrt(vh) + 1e-8)

    def reset(self, sel: np.ndarray) -> None:
        self.m[sel] = 0.0
        self.v[sel] = 0.0


class _Chunker:
    """Random training windows (time-major) from the concatenated items."""

    def __init__(self, patterns: list[np.ndarray], T: int, B: int, rng: np.random.Generator) -> None:
        self.items = [p for p in patterns if len(p) > 0]
        self.frames = np.concatenate(self.items, axis=0)
        self.lengths = np.array([len(p) for p in self.items], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.prob = self.lengths / self.lengths.sum()
        self.T, self.B, self.rng = T, B, rng

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        item = self.rng.choice(len(self.items), size=self.B, p=self.prob)
        L = self.lengths[item]
        start = (self.rng.random(self.B) * (np.maximum(L - self.T, 0) + 1)).astype(np.int64)
        t = np.arange(self.T)
        rel = start[None, :] + t[:, None]                                     # (T, B)
        M = (rel < L[None, :]).astype(np.float64)
        rows = self.offsets[item][None, :] + np.minimum(rel, L[None, :] - 1)
        X = self.frames[rows] * M[:, :, None]
        return X, M


def _init_codebook(theta: np.ndarray, config: FraeConfig, data: _Data, options: WarmStartOptions,
                   rng: np.random.Generator, history: list[dict[str, Any]]) -> None:
    """kmeans_rounds rounds of: collect latents (feedback depends on the codebook) -> k-means.
    Writes the codebook into theta in place."""
    K = config.codebook_size
    codebook = frae_layout(config).view(theta, "codebook")
    if data.frames.shape[0] < K:
        raise TrainingError(f"warm start: {data.frames.shape[0]} training frames; the k-means "
                            f"codebook needs at least codebook_size = {K}")
    # round 1: the unquantised model's latents (the operating point phase 1 trained at)
    views = frae_layout(config).views(theta)
    lat = np.concatenate([r["LAT"] for r in _run_items(views, data.patterns, quantize=False)])
    init = None
    for r in range(options.kmeans_rounds):
        pts = lat
        if lat.shape[0] > options.kmeans_points:     # a random subset is plenty for K x D centroids
            pts = lat[np.sort(rng.choice(lat.shape[0], options.kmeans_points, replace=False))]
        cb = kmeans(pts, K, seed=int(rng.integers(2 ** 31)), n_iter=options.kmeans_iter, init=init)
        dist = _assign(lat, cb)[1]
        codebook[...] = cb
        lat, idx, mse = _evaluate(theta, config, data)    # the next round's latents
        init = cb
        history.append({"phase": "kmeans", "round": r + 1, "distortion": float(dist.mean()),
                        "frame_mse": mse, **codebook_usage(idx, K)})


def _reseed_dead(codebook: np.ndarray, usage: np.ndarray, latents: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Move every codeword with ``usage == 0`` onto a distinct random latent (in place);
    returns the re-seeded rows (fewer if there are fewer latents than dead codewords)."""
    dead = np.flatnonzero(usage == 0)
    n = min(dead.size, latents.shape[0])
    if n == 0:
        return dead[:0]
    pick = rng.choice(latents.shape[0], size=n, replace=False)
    codebook[dead[:n]] = latents[pick]
    return dead[:n]


def warm_start(theta0: np.ndarray, config: FraeConfig, patterns: Sequence[np.ndarray],
               options: WarmStartOptions | None = None, progress: ProgressFn | None = None,
               ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Fit theta to the patterns by BPTT on frame MSE: phase 1 without VQ, k-means codebook,
    phase 2 with a straight-through VQ (module docstring). Returns the new theta (a copy) and a
    history of dicts: ``phase`` "mse"/"vq" per Adam step (step, loss, mse, vq, lr, grad_norm;
    in phase 2 also ``used`` codewords of the batch and ``reseeded``), "kmeans" per codebook
    round (distortion, frame_mse, used, entropy_bits, perplexity), and a last "final" entry
    (frame_mse over all patterns with VQ, codebook usage, seconds). ``progress(step, total,
    info)`` after each Adam step. Deterministic for a given ``options.seed``.
    """
    options = options or WarmStartOptions()
    if not isinstance(options, WarmStartOptions):
        raise TrainingError(f"warm start: options must be WarmStartOptions, got {type(options).__name__}")
    t0 = time.perf_counter()
    theta = _check_theta(theta0, config)
    layout = frae_layout(config)
    data = _Data.of(patterns, config)
    P = layout.views(theta)                  # views: writes go into theta
    K = config.codebook_size
    rng = np.random.default_rng(options.seed)
    chunker = _Chunker(data.patterns, options.chunk_frames, options.batch_items, rng)
    adam = _Adam(layout.size)
    n1 = int(round(options.quantize_after * options.steps))
    history: list[dict[str, Any]] = []
    lr_min = options.learning_rate * options.final_lr_fraction
    usage = np.zeros(K, dtype=np.int64)
    if options.init_output_bias:                # start at y = per-channel mean of the data
        mean = np.clip(data.frames.mean(axis=0), 1e-3, 1 - 1e-3)
        P["dec.out.b"][...] = np.log(mean / (1 - mean))

    for step in range(options.steps + 1):
        if step == n1:                              # end of phase 1 (also when steps == 0)
            _init_codebook(theta, config, data, options, rng, history)
            adam.reset(_selector(layout, np.ones(K, dtype=bool)))
            usage[:] = 0
        if step == options.steps:
            break
        quantize = step >= n1
        X, M = chunker.draw()
        loss, g, info = _loss_and_grad(P, X, M, quantize, options.commitment, options.codebook_weight)
        if not math.isfinite(loss):
            raise TrainingError(f"warm start: loss became {loss} at step {step + 1}; "
                                f"lower learning_rate (now {options.learning_rate})")
        grad = layout.flatten(g)
        norm = float(np.sqrt(grad @ grad))
        if options.clip_norm > 0 and norm > options.clip_norm:
            grad *= options.clip_norm / norm
        frac = step / max(options.steps - 1, 1)
        lr = lr_min + 0.5 * (options.learning_rate - lr_min) * (1 + math.cos(math.pi * frac))
        adam.step(theta, grad, lr)
        entry: dict[str, Any] = {"phase": "vq" if quantize else "mse", "step": step + 1,
                                 "loss": loss, "mse": info["mse"], "vq": info["vq"], "lr": lr,
                                 "grad_norm": norm}
        if quantize:
            usage += info["counts"]
            entry["used"] = int((info["counts"] > 0).sum())
            entry["reseeded"] = 0
            if (step + 1 - n1) % options.refresh_every == 0:
                dead = _reseed_dead(P["codebook"], usage, info["LAT"][info["M"] > 0], rng)
                if dead.size:
                    adam.reset(_selector(layout, dead))
                    entry["reseeded"] = int(dead.size)
                usage[:] = 0
        history.append(entry)
        if progress is not None:
            extra = f" used {entry['used']}/{K}" if quantize else ""
            progress(step + 1, options.steps,
                     f"{entry['phase']} loss {loss:.5f} mse {info['mse']:.5f}{extra}")

    _, idx, mse = _evaluate(theta, config, data)
    history.append({"phase": "final", "frame_mse": mse, **codebook_usage(idx, K),
                    "seconds": time.perf_counter() - t0})
    return theta, history


def init_codebook(theta: np.ndarray, config: FraeConfig, patterns: Sequence[np.ndarray], *,
                  seed: int, rounds: int = 3, n_iter: int = 25) -> np.ndarray:
    """theta (a copy) with its codebook set by k-means of the model's own latents: ``rounds``
    rounds of "collect z_t over all frames -> k-means" (round 1 without quantiser, later rounds
    quantised with the previous codebook, because the feedback makes z depend on it)."""
    options = WarmStartOptions(steps=0, kmeans_rounds=rounds, kmeans_iter=n_iter, seed=seed)
    theta = _check_theta(theta, config)
    _init_codebook(theta, config, _Data.of(patterns, config), options, np.random.default_rng(seed), [])
    return theta
