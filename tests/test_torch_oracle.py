"""PyTorch as an independent oracle of our GRU cells (skipped where PyTorch is not installed).

Our GRUs are hand-written (reset-after form, gate blocks r, z, n, two bias vectors: research
§3.2). ``torch.nn.GRUCell`` implements the same cell independently. With the weights of a FRAE
copied into two GRUCells, one pass over a pattern must give the same encoder state s_t, the same
indices and the same decoder state h_t at every frame as our streaming :class:`Encoder` /
:class:`Decoder` (the same states the batched kernels produce: tests/test_frae.py).
"""
from __future__ import annotations

import numpy as np
import pytest

from pa_ci.codec.frae import FraeConfig, frae_layout, init_params
from pa_ci.codec.stream import Decoder, Encoder

torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional oracle: pip install torch)")


def _cells(theta: np.ndarray, config: FraeConfig):
    v = {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in frae_layout(config).views(theta).items()}
    enc = torch.nn.GRUCell(config.n_channels + config.dec_hidden, config.enc_hidden).double()
    dec = torch.nn.GRUCell(config.latent_dim, config.dec_hidden).double()
    with torch.no_grad():
        for cell, pre in ((enc, "enc.gru."), (dec, "dec.gru.")):
            cell.weight_ih.copy_(v[pre + "W_ih"])
            cell.weight_hh.copy_(v[pre + "W_hh"])
            cell.bias_ih.copy_(v[pre + "b_ih"])
            cell.bias_hh.copy_(v[pre + "b_hh"])
    return enc, dec, v


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gru_cells_equal_torch_grucell(seed: int) -> None:
    config = FraeConfig(enc_hidden=7, dec_hidden=9, latent_dim=3, codebook_size=16)
    theta = init_params(config, seed) * 3.0  # larger weights: saturating gates are exercised too
    rng = np.random.default_rng(seed)
    frames = rng.uniform(0.0, 1.0, (60, config.n_channels))
    frames[rng.uniform(size=frames.shape) < 0.6] = 0.0  # sparse like ACE patterns
    enc_ours, dec_ours = Encoder(theta, config), Decoder(theta, config)
    enc_t, dec_t, v = _cells(theta, config)
    s = torch.zeros(1, config.enc_hidden, dtype=torch.float64)
    h = torch.zeros(1, config.dec_hidden, dtype=torch.float64)
    with torch.no_grad():
        for x in frames:
            index = enc_ours.step(x)
            s = enc_t(torch.cat([torch.from_numpy(x)[None], h], 1), s)
            z = s @ v["enc.latent.W"].T + v["enc.latent.b"]
            np.testing.assert_allclose(enc_ours.s, s[0].numpy(), rtol=0, atol=1e-12)
            np.testing.assert_allclose(enc_ours.latent, z[0].numpy(), rtol=0, atol=1e-12)
            assert index == int(((z - v["codebook"]) ** 2).sum(1).argmin())
            h = dec_t(v["codebook"][index][None], h)
            y = torch.sigmoid(h @ v["dec.out.W"].T + v["dec.out.b"])[0].numpy()
            decoded = dec_ours.step(index)
            np.testing.assert_allclose(dec_ours.h, h[0].numpy(), rtol=0, atol=1e-12)
            np.testing.assert_allclose(enc_ours.h, h[0].numpy(), rtol=0, atol=1e-12)
            kept = decoded != 0
            assert kept.sum() == config.output_maxima
            np.testing.assert_allclose(decoded[kept], y[kept], rtol=0, atol=1e-12)
            assert y[kept].min() >= y[~kept].max()
