"""Plain NumPy twins of :mod:`pa_ci.train`: the warm-start loss frame by frame, SPSA (paper
Eq. 7) with one objective row per call, and the mean |g| of Spall's gain calibration, each
written in the most obvious way (loops) from the documented formulas and random draws."""
from __future__ import annotations

import numpy as np

from pa_ci.codec.frae import frae_layout
from pa_ci.train.spsa import Gains


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def _gru(W_ih, W_hh, b_ih, b_hh, x, h):
    H = h.size
    gi = W_ih @ x + b_ih
    gh = W_hh @ h + b_hh
    r = _sig(gi[:H] + gh[:H])
    z = _sig(gi[H:2 * H] + gh[H:2 * H])
    n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
    return (1 - z) * n + z * h


def naive_warmstart_loss(theta, cfg, chunks, mask, quantize, beta=0.25, cbw=1.0, frozen=None):
    """MSE + beta mean||z - sg(q)||^2 + cbw mean||sg(z) - q||^2, frame by frame.

    ``frozen`` = (idx, z0, q0) recorded at theta0: the straight-through surrogate keeps the
    indices and uses q = C[i] + z - z0 (value C[i] at theta0; dq/dz = I and dq/dC[i] = I),
    sg(q) = q0 and sg(z) = z0. Its gradient at theta0 is the straight-through gradient.
    Returns (loss, record) with record = (idx, z, q) of this evaluation.
    """
    P = frae_layout(cfg).views(np.array(theta, dtype=float))
    B, T, C = chunks.shape
    D = cfg.latent_dim
    idx_rec = np.full((B, T), -1)
    z_rec = np.zeros((B, T, D))
    q_rec = np.zeros((B, T, D))
    sse = commit = code = 0.0
    for b in range(B):
        s = np.zeros(cfg.enc_hidden)
        h = np.zeros(cfg.dec_hidden)
        for t in range(T):
            x = chunks[b, t]
            s = _gru(P["enc.gru.W_ih"], P["enc.gru.W_hh"], P["enc.gru.b_ih"], P["enc.gru.b_hh"],
                     np.concatenate([x, h]), s)
            z = P["enc.latent.W"] @ s + P["enc.latent.b"]
            if quantize:
                if frozen is None:
                    d = ((z - P["codebook"]) ** 2).sum(axis=1)
                    i = int(np.argmin(d))
                    q = P["codebook"][i]
                    q_sg, z_sg = q, z
                else:
                    i = frozen[0][b, t]
                    q = P["codebook"][i] + z - frozen[1][b, t]
                    q_sg, z_sg = frozen[2][b, t], frozen[1][b, t]
                commit += mask[b, t] * np.sum((z - q_sg) ** 2)
                code += mask[b, t] * np.sum((z_sg - P["codebook"][i]) ** 2)
                idx_rec[b, t] = i
            else:
                q = z
            z_rec[b, t], q_rec[b, t] = z, q
            h = _gru(P["dec.gru.W_ih"], P["dec.gru.W_hh"], P["dec.gru.b_ih"], P["dec.gru.b_hh"], q, h)
            y = _sig(P["dec.out.W"] @ h + P["dec.out.b"])
            sse += mask[b, t] * np.sum((y - x) ** 2)
    n = mask.sum()
    loss = sse / (n * C) + (beta * commit + cbw * code) / (n * D)
    return loss, (idx_rec, z_rec, q_rec)


def naive_spsa(J, theta0, gains: Gains, seed: int, n: int, *, maximize=True, mask=None, q=1, clip=None):
    """Obvious NumPy SPSA: theta += s a_k mean_j[(y+_j - y-_j) / (2 c_k) Delta_j]. All iterates.

    With ``clip`` (and no mask) the evaluation points and the iterates are clipped to the box and
    the nominal 2 c_k is kept (Spall's reference code).
    """
    box = (lambda v: v) if clip is None else (lambda v: np.clip(v, *clip))  # noqa: E731
    rng = np.random.default_rng(seed)  # == Generator(PCG64(seed))
    p = theta0.size
    s = 1.0 if maximize else -1.0
    th = theta0.copy()
    out = [th.copy()]
    for k in range(n):
        ak = gains.a / (gains.A + k + 1) ** gains.alpha
        ck = gains.c / (k + 1) ** gains.gamma
        D = 2.0 * rng.integers(0, 2, size=(q, p)) - 1.0  # drawn for the full p
        if mask is not None:
            D[:, ~mask] = 0.0
        ests = []
        for j in range(q):
            yp = J(box(th + ck * D[j])[None, :], k)[0]
            ym = J(box(th - ck * D[j])[None, :], k)[0]
            ests.append((yp - ym) / (2 * ck) * D[j])
        ghat = np.mean(np.array(ests), axis=0)
        th = box(th + s * ak * ghat)
        out.append(th.copy())
    return out


def naive_mean_abs_gradient(J, theta0, c, q, n, mask, seed):
    """mean|g| of Spall's gainsSPSA: ``n`` SP gradient estimates at theta0, each the mean over
    q Deltas (drawn from ``default_rng(seed)`` for the full p, untrainable columns 0); the sum of
    their |g| averaged over the trainable components, divided by n."""
    p = theta0.size
    draws = np.random.default_rng(seed)
    gbar = np.zeros(p)
    for _ in range(n):
        D = 2.0 * draws.integers(0, 2, size=(q, p)) - 1.0
        D[:, ~mask] = 0.0
        ghat = np.mean([(J((theta0 + c * d)[None], 0)[0] - J((theta0 - c * d)[None], 0)[0]) / (2 * c) * d
                        for d in D], axis=0)
        gbar += np.abs(ghat)
    return np.mean(gbar[mask]) / n
