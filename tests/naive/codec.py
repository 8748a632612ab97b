"""Plain NumPy twins of the codec (:mod:`pa_ci.codec`), written the obvious way.

FRAE (:mod:`pa_ci.codec.frae`, research §3): the forward pass with items batched as rows and a
Python loop over time (PyTorch's reset-after GRUCell, the VQ by argmin, the maxima by a stable
lexsort); its compact output (``forward_maxima``) from the dense one by a NumPy sort. Bitstream
(:mod:`pa_ci.codec.bitstream`): index packing as joined bit strings.
"""
from __future__ import annotations

import numpy as np

from pa_ci.codec.frae import forward_many, frae_layout


# --- FRAE (pa_ci.codec.frae) ----------------------------------------------------------------------

def _sigmoid(a):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-a))


def _gru(x, h, W_ih, W_hh, b_ih, b_hh):
    """PyTorch GRUCell (reset-after), rows = batch."""
    H = h.shape[1]
    gi = x @ W_ih.T + b_ih
    gh = h @ W_hh.T + b_hh
    r = _sigmoid(gi[:, :H] + gh[:, :H])
    z = _sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h


def _keep_maxima(y, n_max):
    """Keep the n_max largest per row; among equal values the higher channel wins."""
    if n_max == 0:
        return y.copy()
    out = np.zeros_like(y)
    C = y.shape[1]
    for t in range(y.shape[0]):
        order = np.lexsort((np.arange(C), y[t]))  # ascending by (value, channel)
        keep = order[C - n_max:]
        out[t, keep] = y[t, keep]
    return out


def twin_forward(theta, cfg, items, dtype=np.float64):
    """Obvious FRAE forward: items batched (zero states), Python loop over time, in ``dtype``
    (weights, inputs and states; NumPy keeps float32 arithmetic float32)."""
    V = {k: v.astype(dtype) for k, v in frae_layout(cfg).views(theta).items()}
    lengths = np.array([len(x) for x in items])
    n, T = len(items), int(lengths.max(initial=0))
    s = np.zeros((n, cfg.enc_hidden), dtype)
    h = np.zeros((n, cfg.dec_hidden), dtype)
    idx = [np.zeros(k, dtype=np.int64) for k in lengths]
    dec = [np.zeros((k, cfg.n_channels), dtype) for k in lengths]
    lat = [np.zeros((k, cfg.latent_dim), dtype) for k in lengths]
    for t in range(T):
        act = np.flatnonzero(lengths > t)
        x = np.stack([np.asarray(items[i][t], dtype=dtype) for i in act])
        s_new = _gru(np.concatenate([x, h[act]], axis=1), s[act], V["enc.gru.W_ih"],
                     V["enc.gru.W_hh"], V["enc.gru.b_ih"], V["enc.gru.b_hh"])
        z = s_new @ V["enc.latent.W"].T + V["enc.latent.b"]
        dist = ((z[:, None, :] - V["codebook"][None, :, :]) ** 2).sum(axis=2)
        i_t = np.argmin(dist, axis=1)  # first minimum
        h_new = _gru(V["codebook"][i_t], h[act], V["dec.gru.W_ih"], V["dec.gru.W_hh"],
                     V["dec.gru.b_ih"], V["dec.gru.b_hh"])
        y = _keep_maxima(_sigmoid(h_new @ V["dec.out.W"].T + V["dec.out.b"]), cfg.output_maxima)
        s[act], h[act] = s_new, h_new
        for row, i in enumerate(act):
            idx[i][t], dec[i][t], lat[i][t] = i_t[row], y[row], z[row]
    return idx, dec, lat


def numpy_forward_maxima(thetas, config, patterns, precision="float64", out=None):
    """forward_maxima from forward_many's dense output: the m largest entries of each row, in
    ascending channel order (the ``pa_ci.codec.frae.forward_maxima`` contract) by a NumPy sort
    (float64 only; written into ``out`` when given)."""
    assert precision == "float64"
    outs = forward_many(thetas, config, patterns)
    dense = np.stack([o.decoded for o in outs])  # (n, N, C)
    m = config.output_maxima or config.n_channels
    keep = np.sort(np.argsort(-dense, axis=2, kind="stable")[:, :, :m], axis=2)
    chans, vals = keep.astype(np.int8), np.take_along_axis(dense, keep, axis=2)
    if out is None:
        return chans, vals
    out[0][...], out[1][...] = chans, vals
    return out


# --- bitstream (pa_ci.codec.bitstream) ------------------------------------------------------------

def oracle_pack(indices, n_bits: int) -> bytes:
    """Obvious twin of pack_indices: join format(i, '0nb') strings, pad with '0', cut into bytes."""
    s = "".join(format(int(i), f"0{n_bits}b") for i in indices)
    s += "0" * (-len(s) % 8)
    return bytes(int(s[k:k + 8], 2) for k in range(0, len(s), 8))


def oracle_unpack(data: bytes, n_frames: int, n_bits: int) -> list[int]:
    """Obvious twin of unpack_indices: the bytes as one bit string, cut into n_bits pieces."""
    s = "".join(format(b, "08b") for b in data)
    return [int(s[k * n_bits:(k + 1) * n_bits], 2) for k in range(n_frames)]
