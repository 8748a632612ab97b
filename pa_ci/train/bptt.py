"""The warm start's frame-MSE loss of the FRAE and its exact gradient by backpropagation through time.

One concept: the loss the warm start (:mod:`pa_ci.train.warmstart`) minimises, with its
hand-written BPTT gradient in plain NumPy. It is not a loss of the paper: the paper trains by
SPSA on mean VSTOI (Eq. 7, :mod:`pa_ci.train.spsa`); this is the cheap start before that
(frae_spsa_research.md §3.6).

Model (the layout of :func:`pa_ci.codec.frae.frae_layout`; PyTorch reset-after GRU, gate blocks r, z, n)::

    s_t = GRU_enc([x_t ; h_{t-1}], s_{t-1});  z_t = W_lat s_t + b_lat
    i_t = argmin_k ||z_t - C_k||^2 (ties: lowest k);  q_t = C[i_t]
    h_t = GRU_dec(q_t, h_{t-1});  y_t = sigmoid(W_out h_t + b_out)

Without the quantiser (``quantize=False``, warm-start phase 1) ``q_t = z_t``. With it, the loss
per valid frame is the VQ-VAE one (van den Oord et al. 2017)

   ``L = MSE(y, x) + commitment * mean||z - sg(q)||^2 + codebook_weight * mean||sg(z) - q||^2``

(means over frames and latent dimensions), with ``dL/dz += dL/dq`` (straight through) and the
chosen codewords receiving ``dL/dq`` as well (the exact derivative with the argmin held fixed)
plus the codebook term.

The smooth ``y_t`` is trained towards ``x_t`` (rejected channels are 0); the codec's top-N
selection of the decoded frame is not applied here. Training chunks start from zero states;
evaluation (:func:`frame_mse`, :func:`numpy_forward`) always runs whole utterances from state 0,
exactly like the codec. Everything is float64.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ParameterError
from ..validate import check_theta
from ..codec.frae import FraeConfig, PackedPatterns, frae_layout, pack_patterns
from ..codec.frae import forward as _frae_forward

__all__ = ["NumpyForward", "numpy_forward", "frame_mse", "loss_and_grad"]


# --------------------------------------------------------------------------------------------
# input checks (theta is flat; the layout's views give the named tensors)


def _check_theta(theta: np.ndarray, config: FraeConfig) -> np.ndarray:
    """A float64 copy of theta after shape and finiteness checks."""
    if not isinstance(config, FraeConfig):
        raise ParameterError(f"config must be a FraeConfig, got {type(config).__name__}")
    size = frae_layout(config).size
    arr = np.asarray(theta)
    if arr.ndim != 1 or arr.shape[0] != size or arr.dtype.kind not in "fiu":
        raise ParameterError(f"theta has shape {arr.shape} ({arr.dtype}); the FRAE config needs "
                             f"({size},) floats")
    return check_theta(arr, size, copy=True)


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
    forward, :func:`pa_ci.codec.frae.forward`, with ``output_maxima = 0``)."""
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
