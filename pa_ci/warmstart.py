"""Cheap warm start of the FRAE on frame MSE before SPSA on VSTOI (frae_spsa_research.md §3.6).

The paper trains its FRAE by SPSA on mean VSTOI, which is slow from a random initialisation.
This module first fits the model to the stimulation patterns by hand-written backpropagation
through time (BPTT) in plain NumPy:

1. **Phase 1, no quantiser** (``q_t = z_t``), ``quantize_after * steps`` Adam steps on
   ``MSE(y, x)``, starting from the output bias at the logit of the per-channel mean of the
   data (``init_output_bias``), i.e. from the best constant output.
2. **Codebook initialisation** (frae_spsa_research.md §3.4): the feedback path makes the latents
   depend on the codebook, so ``kmeans_rounds`` rounds of "run the model over every training
   frame (states 0 at each utterance start) and collect ``z_t`` -> k-means (k-means++ / Lloyd,
   LBG style) -> new codebook". Round 1 collects the latents of the unquantised phase-1 model
   (the operating point the decoder was trained at); later rounds quantise with the codebook of
   the previous round and start Lloyd from it.
3. **Phase 2, with the vector quantiser**: straight-through estimator (VQ-VAE, van den Oord et
   al. 2017). Loss per valid frame

   ``L = MSE(y, x) + commitment * mean||z - sg(q)||^2 + codebook_weight * mean||sg(z) - q||^2``

   (means over frames and latent dimensions), with ``dL/dz += dL/dq`` (straight through) and the
   chosen codewords receiving ``dL/dq`` as well (the exact derivative with the argmin held
   fixed) plus the codebook term. Codewords unused during ``refresh_every`` steps are re-seeded
   from random latents of the current batch, so none stays dead.

Model (the layout of :func:`pa_ci.frae.frae_layout`; PyTorch reset-after GRU, gate blocks r, z, n)::

    s_t = GRU_enc([x_t ; h_{t-1}], s_{t-1});  z_t = W_lat s_t + b_lat
    i_t = argmin_k ||z_t - C_k||^2 (ties: lowest k);  q_t = C[i_t]
    h_t = GRU_dec(q_t, h_{t-1});  y_t = sigmoid(W_out h_t + b_out)

The warm start trains the smooth ``y_t`` towards ``x_t`` (rejected channels are 0); the codec's
top-N selection of the decoded frame is not applied here.

Training approximation: a training chunk is a window of ``chunk_frames`` frames from a random
item (chosen with probability proportional to its length, the start uniform), and the encoder
and decoder states start at 0 at the chunk start, as they do at an utterance start. Mid-utterance
windows therefore begin from a state the codec would not have there. Measured on the default
train split with the warm-started default model: restarting mid-utterance changes y_t by a mean
0.11 at the restart frame, 0.016 after 25 frames and 0.013 after 200 (the quantised loop does
not re-synchronise exactly, but that is small against the RMS reconstruction error of 0.22).
So the approximation costs little, and it lets a batch of chunks be processed as one matrix
per time step. Evaluation (:func:`frame_mse`, the k-means
latents) always runs whole utterances from state 0, exactly like the codec.

Everything is float64 and deterministic from ``WarmStartOptions.seed`` (one
``numpy.random.Generator``).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import ParameterError, TrainingError
from .frae import FraeConfig, PackedPatterns, frae_layout, pack_patterns
from .frae import forward as _frae_forward

Progress = Callable[[int, int, str], None]


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

        need(_is_int(self.steps) and self.steps >= 0, f"steps must be an int >= 0, got {self.steps!r}")
        need(_is_int(self.chunk_frames) and self.chunk_frames >= 1,
             f"chunk_frames must be an int >= 1, got {self.chunk_frames!r}")
        need(_is_int(self.batch_items) and self.batch_items >= 1,
             f"batch_items must be an int >= 1, got {self.batch_items!r}")
        need(_finite(self.learning_rate) and self.learning_rate > 0,
             f"learning_rate must be > 0, got {self.learning_rate!r}")
        need(_finite(self.quantize_after) and 0.0 <= self.quantize_after <= 1.0,
             f"quantize_after must be in [0, 1], got {self.quantize_after!r}")
        need(_finite(self.commitment) and self.commitment >= 0,
             f"commitment must be >= 0, got {self.commitment!r}")
        need(_finite(self.codebook_weight) and self.codebook_weight >= 0,
             f"codebook_weight must be >= 0, got {self.codebook_weight!r}")
        need(_is_int(self.kmeans_rounds) and self.kmeans_rounds >= 1,
             f"kmeans_rounds must be an int >= 1, got {self.kmeans_rounds!r}")
        need(_is_int(self.kmeans_iter) and self.kmeans_iter >= 1,
             f"kmeans_iter must be an int >= 1, got {self.kmeans_iter!r}")
        need(_is_int(self.refresh_every) and self.refresh_every >= 1,
             f"refresh_every must be an int >= 1, got {self.refresh_every!r}")
        need(_finite(self.final_lr_fraction) and 0 < self.final_lr_fraction <= 1,
             f"final_lr_fraction must be in (0, 1], got {self.final_lr_fraction!r}")
        need(_finite(self.clip_norm) and self.clip_norm >= 0,
             f"clip_norm must be >= 0, got {self.clip_norm!r}")
        need(_is_int(self.kmeans_points) and self.kmeans_points >= 1,
             f"kmeans_points must be an int >= 1, got {self.kmeans_points!r}")
        need(isinstance(self.init_output_bias, bool),
             f"init_output_bias must be a bool, got {self.init_output_bias!r}")
        need(_is_int(self.seed) and self.seed >= 0, f"seed must be an int >= 0, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) \
        and math.isfinite(float(v))


# --------------------------------------------------------------------------------------------
# input checks (theta is flat; the layout's views give the named tensors)


def _selector(layout: Any, codebook_rows: np.ndarray) -> np.ndarray:
    """Boolean (p,) mask of the given codebook rows in theta."""
    sel = np.zeros(layout.size, dtype=bool)
    layout.view(sel, "codebook")[codebook_rows] = True
    return sel


def _check_theta(theta: np.ndarray, config: FraeConfig) -> np.ndarray:
    """A float64 copy of theta after shape and finiteness checks."""
    if not isinstance(config, FraeConfig):
        raise ParameterError(f"config must be a FraeConfig, got {type(config).__name__}")
    size = frae_layout(config).size
    arr = np.asarray(theta)
    if arr.ndim != 1 or arr.shape[0] != size or arr.dtype.kind not in "fiu":
        raise ParameterError(f"theta has shape {arr.shape} ({arr.dtype}); the FRAE config needs "
                             f"({size},) floats")
    arr = arr.astype(np.float64, copy=True)
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"theta has {int(np.sum(~np.isfinite(arr)))} non-finite values")
    return arr


def _smooth(config: FraeConfig) -> FraeConfig:
    """The same model with every output kept (y_t before the codec's top-N selection)."""
    return replace(config, output_maxima=0)


def _check_patterns(patterns: Sequence[np.ndarray], n_channels: int) -> list[np.ndarray]:
    if isinstance(patterns, np.ndarray) and patterns.ndim == 2:
        patterns = [patterns]
    out = []
    for i, p in enumerate(patterns):
        a = np.asarray(p, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != n_channels:
            raise ParameterError(f"patterns[{i}]: expected shape (frames, {n_channels}), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ParameterError(f"patterns[{i}]: contains NaN or Inf")
        out.append(a)
    if not out or sum(len(a) for a in out) == 0:
        raise ParameterError("patterns: no frames (need at least one non-empty (frames, C) array)")
    return out


# --------------------------------------------------------------------------------------------
# forward and backward through time (time-major arrays: X (T, B, C), mask M (T, B))


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function as 0.5 tanh(a/2) + 0.5 (overflow-free; several times faster than expit)."""
    return 0.5 * np.tanh(0.5 * a) + 0.5


def _gru_step(x_gates: np.ndarray, h: np.ndarray, W_hhT: np.ndarray, b_hh: np.ndarray, H: int):
    """One reset-after GRU step given the input gate pre-activations ``W_ih x + b_ih``
    (``W_hhT`` is the transposed recurrent matrix, contiguous)."""
    gh = h @ W_hhT + b_hh
    rz = _sigmoid(x_gates[:, :2 * H] + gh[:, :2 * H])
    r, z = rz[:, :H], rz[:, H:]
    ghn = gh[:, 2 * H:]
    n = np.tanh(x_gates[:, 2 * H:] + r * ghn)
    h_new = (1.0 - z) * n + z * h
    return h_new, r, z, n, ghn


def _nearest(lat: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """argmin_k ||lat - C_k||^2 per row (squared differences summed, ties -> lowest k)."""
    d = (lat[:, 0:1] - codebook[:, 0]) ** 2
    for j in range(1, lat.shape[1]):
        d += (lat[:, j:j + 1] - codebook[:, j]) ** 2
    return np.argmin(d, axis=1)


def _forward(P: Mapping[str, np.ndarray], X: np.ndarray, quantize: bool,
             keep: bool = True) -> dict[str, np.ndarray]:
    """Run the FRAE over time-major chunks X (T, B, C) from zero states.

    Returns Y (T, B, C), latents LAT (T, B, D), codes Q, indices IDX (T, B) (-1 without
    quantiser) and, when ``keep``, everything the backward pass needs.
    """
    T, B, C = X.shape
    Wih_e, Whh_e, bih_e, bhh_e = P["enc.gru.W_ih"], P["enc.gru.W_hh"], P["enc.gru.b_ih"], P["enc.gru.b_hh"]
    Wlat, blat, CB = P["enc.latent.W"], P["enc.latent.b"], P["codebook"]
    Wih_d, Whh_d, bih_d, bhh_d = P["dec.gru.W_ih"], P["dec.gru.W_hh"], P["dec.gru.b_ih"], P["dec.gru.b_hh"]
    Wout, bout = P["dec.out.W"], P["dec.out.b"]
    He, Hd, D = Whh_e.shape[1], Whh_d.shape[1], Wlat.shape[0]
    WxT_e, WhT_e = Wih_e[:, :C].T, np.ascontiguousarray(Wih_e[:, C:].T)
    WhhT_e, WhhT_d = np.ascontiguousarray(Whh_e.T), np.ascontiguousarray(Whh_d.T)
    WlatT, WihT_d = np.ascontiguousarray(Wlat.T), np.ascontiguousarray(Wih_d.T)

    GX = X @ WxT_e + bih_e                      # input part of the encoder gates, all frames at once
    S = np.zeros((T + 1, B, He))
    H = np.zeros((T + 1, B, Hd))
    LAT = np.empty((T, B, D))
    Q = np.empty((T, B, D))
    IDX = np.full((T, B), -1, dtype=np.int64)
    if keep:
        Re, Ze, Ne, GHNe = (np.empty((T, B, He)) for _ in range(4))
        Rd, Zd, Nd, GHNd = (np.empty((T, B, Hd)) for _ in range(4))
    s, h = S[0], H[0]
    for t in range(T):
        s, r, z, n, ghn = _gru_step(GX[t] + h @ WhT_e, s, WhhT_e, bhh_e, He)
        lat = s @ WlatT + blat
        if quantize:
            idx = _nearest(lat, CB)
            q = CB[idx]
            IDX[t] = idx
        else:
            q = lat
        if keep:
            Re[t], Ze[t], Ne[t], GHNe[t] = r, z, n, ghn
        h, r, z, n, ghn = _gru_step(q @ WihT_d + bih_d, h, WhhT_d, bhh_d, Hd)
        if keep:
            Rd[t], Zd[t], Nd[t], GHNd[t] = r, z, n, ghn
        S[t + 1], H[t + 1], LAT[t], Q[t] = s, h, lat, q
    Y = _sigmoid(H[1:] @ Wout.T + bout)
    out = {"Y": Y, "LAT": LAT, "Q": Q, "IDX": IDX, "S": S, "H": H}
    if keep:
        out.update(Re=Re, Ze=Ze, Ne=Ne, GHNe=GHNe, Rd=Rd, Zd=Zd, Nd=Nd, GHNd=GHNd)
    return out


def _gru_back(dh: np.ndarray, h_prev: np.ndarray, r: np.ndarray, z: np.ndarray, n: np.ndarray,
              ghn: np.ndarray, H: int, dgi: np.ndarray, dgh: np.ndarray) -> np.ndarray:
    """Backward of one reset-after GRU step: fills dgi, dgh (B, 3H); returns the part of
    dL/dh_prev through the elementwise update (the W_hh part is added by the caller)."""
    dn = dh * (1.0 - z)
    dz = dh * (h_prev - n)
    dan = dn * (1.0 - n * n)
    dgi[:, :H] = dan * ghn * r * (1.0 - r)
    dgi[:, H:2 * H] = dz * z * (1.0 - z)
    dgi[:, 2 * H:] = dan
    dgh[:, :2 * H] = dgi[:, :2 * H]
    dgh[:, 2 * H:] = dan * r
    return dh * z


def _loss_and_grad(P: Mapping[str, np.ndarray], X: np.ndarray, M: np.ndarray, quantize: bool,
                   commitment: float, codebook_weight: float,
                   ) -> tuple[float, dict[str, np.ndarray], dict[str, Any]]:
    """Loss (module docstring) and its BPTT gradient for time-major X (T, B, C), mask M (T, B)."""
    T, B, C = X.shape
    f = _forward(P, X, quantize, keep=True)
    Y, LAT, Q, S, H, IDX = f["Y"], f["LAT"], f["Q"], f["S"], f["H"], f["IDX"]
    Wih_e, Whh_e = P["enc.gru.W_ih"], P["enc.gru.W_hh"]
    Wlat, CB = P["enc.latent.W"], P["codebook"]
    Wih_d, Whh_d, Wout = P["dec.gru.W_ih"], P["dec.gru.W_hh"], P["dec.out.W"]
    He, Hd, D, K = Whh_e.shape[1], Whh_d.shape[1], Wlat.shape[0], CB.shape[0]
    Wh_e = Wih_e[:, C:]
    n_valid = float(M.sum())
    if n_valid <= 0:
        raise ParameterError("loss_and_grad: no valid frames in the chunks")
    M3 = M[:, :, None]

    err = (Y - X) * M3
    mse = float((err * err).sum()) / (n_valid * C)
    if quantize:
        dvq = (LAT - Q) * M3
        vq = float((dvq * dvq).sum()) / (n_valid * D)
    else:
        dvq, vq = None, 0.0
    loss = mse + (commitment + codebook_weight) * vq

    dlogit = err * (2.0 / (n_valid * C)) * Y * (1.0 - Y)                 # (T, B, C)
    dH_out = dlogit @ Wout                                                # (T, B, Hd)
    dGIe, dGHe = np.empty((T, B, 3 * He)), np.empty((T, B, 3 * He))
    dGId, dGHd = np.empty((T, B, 3 * Hd)), np.empty((T, B, 3 * Hd))
    dLAT = np.empty((T, B, D))
    dCODE = np.empty((T, B, D)) if quantize else None
    ds = np.zeros((B, He))
    dh = np.zeros((B, Hd))
    for t in range(T - 1, -1, -1):
        dh = dh + dH_out[t]
        # decoder GRU at t
        dh_prev = _gru_back(dh, H[t], f["Rd"][t], f["Zd"][t], f["Nd"][t], f["GHNd"][t], Hd,
                            dGId[t], dGHd[t])
        dh_prev += dGHd[t] @ Whh_d
        dq = dGId[t] @ Wih_d                                              # (B, D)
        if quantize:
            dLAT[t] = dq + dvq[t] * (2.0 * commitment / (n_valid * D))          # straight through
            dCODE[t] = dq - dvq[t] * (2.0 * codebook_weight / (n_valid * D))
        else:
            dLAT[t] = dq
        ds = ds + dLAT[t] @ Wlat
        # encoder GRU at t
        ds_prev = _gru_back(ds, S[t], f["Re"][t], f["Ze"][t], f["Ne"][t], f["GHNe"][t], He,
                            dGIe[t], dGHe[t])
        ds = ds_prev + dGHe[t] @ Whh_e
        dh = dh_prev + dGIe[t] @ Wh_e                                     # feedback path

    def outer(dg: np.ndarray, a: np.ndarray) -> np.ndarray:
        return dg.reshape(-1, dg.shape[-1]).T @ a.reshape(-1, a.shape[-1])

    g = {
        "enc.gru.W_ih": np.concatenate([outer(dGIe, X), outer(dGIe, H[:-1])], axis=1),
        "enc.gru.W_hh": outer(dGHe, S[:-1]),
        "enc.gru.b_ih": dGIe.sum(axis=(0, 1)),
        "enc.gru.b_hh": dGHe.sum(axis=(0, 1)),
        "enc.latent.W": outer(dLAT, S[1:]),
        "enc.latent.b": dLAT.sum(axis=(0, 1)),
        "dec.gru.W_ih": outer(dGId, Q),
        "dec.gru.W_hh": outer(dGHd, H[:-1]),
        "dec.gru.b_ih": dGId.sum(axis=(0, 1)),
        "dec.gru.b_hh": dGHd.sum(axis=(0, 1)),
        "dec.out.W": outer(dlogit, H[1:]),
        "dec.out.b": dlogit.sum(axis=(0, 1)),
    }
    gC = np.zeros((K, D))
    counts = np.zeros(K, dtype=np.int64)
    if quantize:
        valid = M.reshape(-1) > 0
        idx = IDX.reshape(-1)[valid]
        dc = dCODE.reshape(-1, D)[valid]
        for d in range(D):
            gC[:, d] = np.bincount(idx, weights=dc[:, d], minlength=K)
        counts = np.bincount(idx, minlength=K)
    g["codebook"] = gC
    info = {"mse": mse, "vq": vq, "counts": counts, "LAT": LAT, "M": M}
    return loss, g, info


def _stack_items(patterns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad items into time-major (T, n, C) with a validity mask (T, n); returns X, M, lengths."""
    lengths = np.array([len(p) for p in patterns], dtype=np.int64)
    T, C = int(lengths.max()), patterns[0].shape[1]
    X = np.zeros((T, len(patterns), C))
    for j, p in enumerate(patterns):
        X[:len(p), j] = p
    M = (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64)
    return X, M, lengths


def _run_items(P: Mapping[str, np.ndarray], patterns: list[np.ndarray], quantize: bool,
               batch: int = 128) -> list[dict[str, np.ndarray]]:
    """Whole-utterance forward (states 0 at each item start); per item Y, LAT, IDX."""
    order = np.argsort([-len(p) for p in patterns], kind="stable")   # similar lengths together
    out: list[dict[str, np.ndarray] | None] = [None] * len(patterns)
    for a in range(0, len(order), batch):
        sel = [int(j) for j in order[a:a + batch]]
        items = [patterns[j] for j in sel]
        if max(len(p) for p in items) == 0:
            for j in sel:
                out[j] = {"Y": patterns[j][:0].copy(), "LAT": np.zeros((0, P["codebook"].shape[1])),
                          "IDX": np.zeros(0, dtype=np.int64)}
            continue
        X, _, lengths = _stack_items(items)
        f = _forward(P, X, quantize, keep=False)
        for col, j in enumerate(sel):
            n = int(lengths[col])
            out[j] = {"Y": f["Y"][:n, col].copy(), "LAT": f["LAT"][:n, col].copy(),
                      "IDX": f["IDX"][:n, col].copy()}
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# public API


@dataclass
class NumpyForward:
    """Result of :func:`numpy_forward`: per item the indices (-1 without quantiser), the smooth
    outputs y_t (before any top-N selection) and the latents z_t."""

    indices: list[np.ndarray]
    outputs: list[np.ndarray]
    latents: list[np.ndarray]


def numpy_forward(theta: np.ndarray, config: FraeConfig, patterns: Sequence[np.ndarray], *,
                  quantize: bool = True) -> NumpyForward:
    """The plain NumPy FRAE forward of this module over whole utterances (states 0 at each item
    start); with ``quantize=False`` the quantiser is bypassed (q_t = z_t, phase 1)."""
    theta = _check_theta(theta, config)
    pats = _check_patterns(patterns, config.n_channels)
    res = _run_items(frae_layout(config).views(theta), pats, quantize)
    return NumpyForward([r["IDX"] for r in res], [r["Y"] for r in res], [r["LAT"] for r in res])


def frame_mse(theta: np.ndarray, config: FraeConfig, patterns: Sequence[np.ndarray]) -> float:
    """Mean over all frames and channels of (y_t - x_t)^2 with the vector quantiser, every item
    from zero states, y_t the smooth output before top-N selection (computed by the codec's own
    forward, :func:`pa_ci.frae.forward`, with ``output_maxima = 0``)."""
    theta = _check_theta(theta, config)
    return _evaluate(theta, config, _Data.of(patterns, config))[2]


def loss_and_grad(theta: np.ndarray, config: FraeConfig, chunks: np.ndarray, *, quantize: bool,
                  commitment: float = 0.25, codebook_weight: float = 1.0,
                  mask: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Warm-start loss on chunks (B, T, C) (states 0 at each chunk start) and its exact BPTT
    gradient, flat like theta. With ``quantize`` the gradient is the straight-through one
    (module docstring). ``mask`` (B, T) of 0/1 marks valid frames (default: all)."""
    theta = _check_theta(theta, config)
    layout = frae_layout(config)
    chunks = np.asarray(chunks, dtype=np.float64)
    C = config.n_channels
    if chunks.ndim != 3 or chunks.shape[2] != C or chunks.shape[0] < 1 or chunks.shape[1] < 1:
        raise ParameterError(f"chunks have shape {chunks.shape}; expected (B, T, {C}) with B, T >= 1")
    if mask is None:
        M = np.ones(chunks.shape[:2])
    else:
        M = np.asarray(mask, dtype=np.float64)
        if M.shape != chunks.shape[:2]:
            raise ParameterError(f"mask has shape {M.shape}; expected {chunks.shape[:2]}")
    X = np.ascontiguousarray(chunks.transpose(1, 0, 2))
    loss, g, _ = _loss_and_grad(layout.views(theta), X, np.ascontiguousarray(M.T), quantize,
                                float(commitment), float(codebook_weight))
    return loss, layout.flatten(g)


def init_codebook(theta: np.ndarray, config: FraeConfig, patterns: Sequence[np.ndarray], *,
                  seed: int, rounds: int = 3, n_iter: int = 25) -> np.ndarray:
    """theta (a copy) with its codebook set by k-means of the model's own latents: ``rounds``
    rounds of "collect z_t over all frames -> k-means" (round 1 without quantiser, later rounds
    quantised with the previous codebook, because the feedback makes z depend on it)."""
    options = WarmStartOptions(steps=0, kmeans_rounds=rounds, kmeans_iter=n_iter, seed=seed)
    theta = _check_theta(theta, config)
    _init_codebook(theta, config, _Data.of(patterns, config), options, np.random.default_rng(seed), [])
    return theta


def kmeans(points: np.ndarray, k: int, *, seed: int, n_iter: int = 25,
           init: np.ndarray | None = None) -> np.ndarray:
    """k-means (Lloyd / LBG) of ``points`` (n, D) into ``k`` centroids (k, D), float64.

    Initialisation: k-means++ (Arthur & Vassilvitskii 2007) from ``Generator(seed)``, or the
    given ``init`` centroids. Assignment ties go to the lowest centroid index. A cluster that
    becomes empty is re-seeded with the point farthest from its own centroid (the largest
    contributors to the distortion first), so every centroid owns points as long as the points
    have at least k distinct values. Stops early when the assignment no longer changes.
    """
    P = np.asarray(points, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] < 1:
        raise ParameterError(f"kmeans: points must be a non-empty (n, D) array, got shape {P.shape}")
    if not np.all(np.isfinite(P)):
        raise ParameterError("kmeans: points contain NaN or Inf")
    if not _is_int(k) or k < 1 or k > P.shape[0]:
        raise ParameterError(f"kmeans: k must be an int in 1..{P.shape[0]} (number of points), got {k!r}")
    if not _is_int(n_iter) or n_iter < 0:
        raise ParameterError(f"kmeans: n_iter must be an int >= 0, got {n_iter!r}")
    n = P.shape[0]
    if init is None:
        cent = _kmeanspp(P, int(k), np.random.default_rng(seed))
    else:
        cent = np.array(init, dtype=np.float64)
        if cent.shape != (k, P.shape[1]):
            raise ParameterError(f"kmeans: init must have shape {(k, P.shape[1])}, got {cent.shape}")
    assign = np.full(n, -1, dtype=np.int64)
    for it in range(n_iter + 1):
        new, dist = _assign(P, cent)
        counts = np.bincount(new, minlength=k)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            far = np.argsort(-dist, kind="stable")
            taken = 0
            for e in empty:
                cent[e] = P[far[taken]]
                taken += 1
            new, dist = _assign(P, cent)
            counts = np.bincount(new, minlength=k)
        if it == n_iter or np.array_equal(new, assign):
            break
        assign = new
        for d in range(P.shape[1]):
            sums = np.bincount(assign, weights=P[:, d], minlength=k)
            nz = counts > 0
            cent[nz, d] = sums[nz] / counts[nz]
    return cent


def _assign(P: np.ndarray, cent: np.ndarray, chunk: int = 32768) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid (ties -> lowest index) and squared distance, in chunks of points."""
    n = P.shape[0]
    idx = np.empty(n, dtype=np.int64)
    dist = np.empty(n)
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        d = (P[a:b, 0:1] - cent[:, 0]) ** 2
        for j in range(1, P.shape[1]):
            d += (P[a:b, j:j + 1] - cent[:, j]) ** 2
        i = np.argmin(d, axis=1)
        idx[a:b] = i
        dist[a:b] = d[np.arange(b - a), i]
    return idx, dist


def _kmeanspp(P: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    n = P.shape[0]
    cent = np.empty((k, P.shape[1]))
    cent[0] = P[rng.integers(n)]
    d2 = ((P - cent[0]) ** 2).sum(axis=1)
    for j in range(1, k):
        total = d2.sum()
        if total > 0:
            i = int(np.searchsorted(np.cumsum(d2), rng.random() * total, side="right"))
            i = min(i, n - 1)
        else:                               # all points coincide with chosen centroids
            i = int(rng.integers(n))
        cent[j] = P[i]
        d2 = np.minimum(d2, ((P - cent[j]) ** 2).sum(axis=1))
    return cent


def codebook_usage(indices: np.ndarray, codebook_size: int) -> dict[str, float]:
    """Used codewords, and entropy (bits/frame) / perplexity of the index histogram."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    counts = np.bincount(idx, minlength=codebook_size) if idx.size else np.zeros(codebook_size)
    p = counts[counts > 0] / max(idx.size, 1)
    ent = float(-(p * np.log2(p)).sum()) if idx.size else 0.0
    return {"used": int((counts > 0).sum()), "entropy_bits": ent, "perplexity": float(2.0 ** ent)}


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


@dataclass(frozen=True)
class _Data:
    """Training items: float64 patterns, their frames stacked (N, C), and the codec's packing."""

    patterns: list[np.ndarray]
    frames: np.ndarray
    packed: PackedPatterns

    @classmethod
    def of(cls, patterns: Sequence[np.ndarray], config: FraeConfig) -> _Data:
        pats = _check_patterns(patterns, config.n_channels)
        return cls(pats, np.concatenate(pats, axis=0), pack_patterns(pats, config.n_channels))


def _evaluate(theta: np.ndarray, config: FraeConfig, data: _Data
              ) -> tuple[np.ndarray, np.ndarray, float]:
    """Codec forward with VQ over whole items: latents (N, D), indices (N,), frame MSE."""
    out = _frae_forward(theta, _smooth(config), data.packed, return_latents=True)
    err = out.decoded - data.frames
    return out.latents, out.indices, float(np.mean(err * err))


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
               options: WarmStartOptions | None = None, progress: Progress | None = None,
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
