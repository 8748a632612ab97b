"""Tests of pa_ci.train.bptt, pa_ci.train.kmeans and pa_ci.train.warmstart (the frame-MSE warm
start before SPSA).

Oracles: a slow, obvious NumPy twin of the warm-start loss (one item and frame at a time,
naive.train.naive_warmstart_loss) whose central finite differences the BPTT gradient must
match; the codec's own Numba forward (pa_ci.codec.frae.forward) that the NumPy forward of bptt
must match; k-means on blobs with known centres; and the frame MSE of the best constant output
for the warm start itself.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from naive.train import naive_warmstart_loss
from pa_ci.train import bptt
from pa_ci.train import kmeans as km
from pa_ci.train import warmstart as ws
from pa_ci.errors import ParameterError, TrainingError
from pa_ci.codec.frae import FraeConfig, frae_layout, init_params
from pa_ci.codec.frae import forward as frae_forward

TINY = FraeConfig(n_channels=5, enc_hidden=3, dec_hidden=4, latent_dim=2, codebook_size=4,
                  output_maxima=0)


def _central_differences(f, theta, eps=1e-6):
    g = np.empty_like(theta)
    for k in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[k] += eps
        tm[k] -= eps
        g[k] = (f(tp) - f(tm)) / (2 * eps)
    return g


def _tiny_problem(seed=1):
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.6, frae_layout(TINY).size)
    chunks = rng.random((3, 6, TINY.n_channels)) * (rng.random((3, 6, TINY.n_channels)) < 0.5)
    mask = np.ones((3, 6))
    mask[1, 4:] = 0.0                      # a chunk that ends early (padding)
    return theta, chunks, mask


def _rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# ------------------------------------------------------------------------------ gradients
def test_gradient_without_quantiser_matches_finite_differences():
    theta, chunks, mask = _tiny_problem()
    loss, grad = bptt.loss_and_grad(theta, TINY, chunks, quantize=False, mask=mask)
    ref, _ = naive_warmstart_loss(theta, TINY, chunks, mask, quantize=False)
    assert loss == pytest.approx(ref, rel=1e-12)
    fd = _central_differences(lambda th: naive_warmstart_loss(th, TINY, chunks, mask, False)[0], theta)
    assert _rel_err(grad, fd) < 1e-6
    layout = frae_layout(TINY)
    assert np.all(layout.view(grad, "codebook") == 0)      # unused without the quantiser
    for name in layout.names:                               # every other tensor gets a gradient
        if name != "codebook":
            assert np.abs(layout.view(grad, name)).max() > 1e-6, name


def test_padded_frames_do_not_matter():
    theta, chunks, mask = _tiny_problem()
    other = chunks.copy()
    other[1, 4:] = 0.9                     # change only the masked frames
    for quantize in (False, True):
        a = bptt.loss_and_grad(theta, TINY, chunks, quantize=quantize, mask=mask)
        b = bptt.loss_and_grad(theta, TINY, other, quantize=quantize, mask=mask)
        assert a[0] == pytest.approx(b[0], rel=1e-13)
        np.testing.assert_allclose(a[1], b[1], rtol=0, atol=1e-15)


@pytest.mark.parametrize("beta, cbw", [(0.25, 1.0), (0.0, 0.0), (1.5, 0.3)])
def test_straight_through_gradient_matches_its_surrogate(beta, cbw):
    theta, chunks, mask = _tiny_problem(seed=2)
    layout = frae_layout(TINY)
    # spread the codewords over the latent range so that several indices are used
    _, (_, z, _) = naive_warmstart_loss(theta, TINY, chunks, mask, quantize=False)
    layout.view(theta, "codebook")[...] = z.reshape(-1, 2)[[0, 5, 9, 13]] + 0.01
    loss, grad = bptt.loss_and_grad(theta, TINY, chunks, quantize=True, mask=mask,
                                  commitment=beta, codebook_weight=cbw)
    ref, frozen = naive_warmstart_loss(theta, TINY, chunks, mask, True, beta, cbw)
    assert loss == pytest.approx(ref, rel=1e-12)
    assert len(np.unique(frozen[0])) >= 3
    surrogate = lambda th: naive_warmstart_loss(th, TINY, chunks, mask, True, beta, cbw, frozen=frozen)[0]
    assert surrogate(theta) == pytest.approx(ref, rel=1e-14)
    fd = _central_differences(surrogate, theta)
    assert _rel_err(grad, fd) < 1e-6
    # only codewords chosen on a valid frame receive a gradient
    chosen = np.unique(frozen[0][mask > 0])
    g_cb = layout.view(grad, "codebook")
    assert np.all(g_cb[np.setdiff1d(np.arange(4), chosen)] == 0)
    assert np.all(np.abs(g_cb[chosen]).max(axis=1) > 0)


def test_straight_through_differs_from_the_frozen_index_gradient():
    """The latent path matters: without straight-through the encoder would get no VQ gradient."""
    theta, chunks, mask = _tiny_problem(seed=3)
    layout = frae_layout(TINY)
    _, (_, z, _) = naive_warmstart_loss(theta, TINY, chunks, mask, quantize=False)
    layout.view(theta, "codebook")[...] = z.reshape(-1, 2)[[0, 5, 9, 13]]
    _, grad = bptt.loss_and_grad(theta, TINY, chunks, quantize=True, mask=mask,
                               commitment=0.0, codebook_weight=0.0)
    assert np.abs(layout.view(grad, "enc.latent.W")).max() > 1e-6


# ------------------------------------------------------------------------------ forward
def _items(rng, lengths, C):
    out = []
    for n in lengths:
        x = rng.random((n, C))
        keep = np.argsort(x, axis=1)[:, -min(8, C):]       # 8-of-C sparse frames like ACE
        p = np.zeros((n, C))
        np.put_along_axis(p, keep, np.take_along_axis(x, keep, axis=1), axis=1)
        out.append(p.astype(np.float32))
    return out


@pytest.mark.parametrize("cfg", [
    FraeConfig(),
    FraeConfig(output_maxima=0),
    FraeConfig(n_channels=9, enc_hidden=5, dec_hidden=7, latent_dim=3, codebook_size=16),
])
def test_numpy_forward_equals_codec_forward(cfg):
    rng = np.random.default_rng(4)
    items = _items(rng, [1, 37, 120, 2, 64], cfg.n_channels)
    theta = init_params(cfg, seed=3)
    # codewords on the model's own latents, so that many indices occur
    lat = np.concatenate(bptt.numpy_forward(theta, cfg, items, quantize=False).latents)
    frae_layout(cfg).view(theta, "codebook")[...] = lat[rng.choice(len(lat), cfg.codebook_size,
                                                                   replace=False)]
    mine = bptt.numpy_forward(theta, cfg, items)
    ref = frae_forward(theta, replace(cfg, output_maxima=0), items, return_latents=True)
    assert len(np.unique(np.concatenate(mine.indices))) >= min(8, cfg.codebook_size // 2)
    for i in range(len(items)):
        a, b = ref.offsets[i], ref.offsets[i + 1]
        np.testing.assert_array_equal(mine.indices[i], ref.indices[a:b])
        np.testing.assert_allclose(mine.outputs[i], ref.decoded[a:b], rtol=0, atol=1e-10)
        np.testing.assert_allclose(mine.latents[i], ref.latents[a:b], rtol=0, atol=1e-10)


def test_numpy_forward_without_quantiser_and_frame_mse():
    cfg = FraeConfig()
    rng = np.random.default_rng(5)
    items = _items(rng, [30, 5, 50], cfg.n_channels)
    theta = init_params(cfg, seed=1)
    plain = bptt.numpy_forward(theta, cfg, items, quantize=False)
    assert all(np.all(i == -1) for i in plain.indices)
    vq = bptt.numpy_forward(theta, cfg, items)
    assert not np.allclose(np.concatenate(plain.outputs), np.concatenate(vq.outputs))
    expected = np.mean(np.concatenate([(y - x) ** 2 for y, x in zip(vq.outputs, items)]))
    assert bptt.frame_mse(theta, cfg, items) == pytest.approx(expected, rel=1e-10)


def test_bad_inputs_raise_parameter_errors():
    cfg = FraeConfig()
    theta = init_params(cfg, 0)
    items = [np.zeros((4, 22))]
    with pytest.raises(ParameterError, match="theta"):
        bptt.frame_mse(theta[:-1], cfg, items)
    with pytest.raises(ParameterError, match="non-finite"):
        bptt.frame_mse(np.where(np.arange(theta.size) == 3, np.nan, theta), cfg, items)
    with pytest.raises(ParameterError, match="patterns"):
        bptt.frame_mse(theta, cfg, [np.zeros((4, 21))])
    with pytest.raises(ParameterError, match="no frames"):
        bptt.frame_mse(theta, cfg, [np.zeros((0, 22))])
    with pytest.raises(ParameterError, match="chunks"):
        bptt.loss_and_grad(theta, cfg, np.zeros((2, 3)), quantize=False)
    with pytest.raises(ParameterError, match="mask"):
        bptt.loss_and_grad(theta, cfg, np.zeros((2, 3, 22)), quantize=False, mask=np.ones((3, 2)))


# ------------------------------------------------------------------------------ k-means
def _blobs(seed=0, n_per=200, std=0.05):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [5, 0], [0, 5], [5, 5], [-5, 2], [2, -6]], dtype=float)
    pts = np.concatenate([c + std * rng.standard_normal((n_per, 2)) for c in centres])
    return centres, pts[rng.permutation(len(pts))]


def test_kmeans_recovers_separated_clusters_deterministically():
    centres, pts = _blobs()
    for seed in range(4):
        c = km.kmeans(pts, 6, seed=seed)
        # every true centre has exactly one centroid near it
        d = np.linalg.norm(c[:, None] - centres[None], axis=2)
        assert sorted(np.argmin(d, axis=1)) == list(range(6))
        assert d.min(axis=1).max() < 0.02
        np.testing.assert_array_equal(c, km.kmeans(pts, 6, seed=seed))


def test_kmeans_never_returns_empty_clusters():
    rng = np.random.default_rng(1)
    pts = rng.standard_normal((300, 2))
    c = km.kmeans(pts, 64, seed=0)
    assert np.all(np.bincount(km._assign(pts, c)[0], minlength=64) > 0)
    # an initialisation with centroids far from every point: they are re-seeded
    init = np.concatenate([pts[:4], np.full((4, 2), 100.0)])
    c = km.kmeans(pts, 8, seed=0, init=init)
    assert np.all(np.abs(c) < 10)
    assert np.all(np.bincount(km._assign(pts, c)[0], minlength=8) > 0)
    # k = n: every point its own centroid
    c = km.kmeans(pts[:10], 10, seed=0)
    np.testing.assert_array_equal(np.sort(c, axis=0), np.sort(pts[:10], axis=0))


def test_kmeans_lowers_the_distortion_of_its_start():
    _, pts = _blobs(std=1.0)
    init = pts[:6].copy()
    d0 = km._assign(pts, init)[1].mean()
    d1 = km._assign(pts, km.kmeans(pts, 6, seed=0, init=init))[1].mean()
    assert d1 < 0.8 * d0


def test_kmeans_rejects_bad_arguments():
    pts = np.zeros((5, 2))
    with pytest.raises(ParameterError):
        km.kmeans(pts, 6, seed=0)
    with pytest.raises(ParameterError):
        km.kmeans(np.full((5, 2), np.nan), 2, seed=0)
    with pytest.raises(ParameterError):
        km.kmeans(pts, 2, seed=0, init=np.zeros((3, 2)))


def test_reseed_dead_codewords():
    rng = np.random.default_rng(0)
    codebook = np.zeros((6, 2))
    usage = np.array([3, 0, 1, 0, 0, 2])
    latents = rng.standard_normal((10, 2))
    dead = ws._reseed_dead(codebook, usage, latents, rng)
    np.testing.assert_array_equal(dead, [1, 3, 4])
    assert np.all(codebook[[0, 2, 5]] == 0)
    rows = [np.flatnonzero((latents == codebook[k]).all(axis=1)) for k in dead]
    assert all(len(r) == 1 for r in rows) and len({int(r[0]) for r in rows}) == 3   # distinct
    assert ws._reseed_dead(codebook, np.ones(6), latents, rng).size == 0


def test_codebook_usage():
    u = km.codebook_usage(np.array([0, 0, 1, 1]), 4)
    assert u["used"] == 2 and u["entropy_bits"] == pytest.approx(1.0)
    assert u["perplexity"] == pytest.approx(2.0)


# ------------------------------------------------------------------------------ warm start
def _synthetic_patterns(n_items=6, n_frames=300, C=22, seed=0):
    """A bump of activity wandering smoothly over the channels, 8 maxima kept (ACE-like)."""
    rng = np.random.default_rng(seed)
    ch = np.arange(C)
    out = []
    for _ in range(n_items):
        t = np.arange(n_frames)
        centre = C / 2 + 7 * np.sin(2 * np.pi * t / rng.uniform(60, 150) + rng.uniform(0, 6))
        level = 0.5 + 0.4 * np.sin(2 * np.pi * t / rng.uniform(40, 90))
        x = level[:, None] * np.exp(-(ch[None] - centre[:, None]) ** 2 / 10)
        x += 0.02 * rng.random(x.shape)
        keep = np.argsort(x, axis=1)[:, -8:]
        p = np.zeros_like(x)
        np.put_along_axis(p, keep, np.take_along_axis(x, keep, axis=1), axis=1)
        out.append(np.clip(p, 0, 1).astype(np.float32))
    return out


FAST = ws.WarmStartOptions(steps=80, chunk_frames=64, batch_items=12,
                           quantize_after=0.5, refresh_every=10, seed=3)


@pytest.fixture(scope="module")
def trained():
    cfg = FraeConfig()
    pats = _synthetic_patterns()
    theta0 = init_params(cfg, 0)
    calls = []
    theta, hist = ws.warm_start(theta0, cfg, pats, FAST, progress=lambda *a: calls.append(a))
    return cfg, pats, theta0, theta, hist, calls


def test_warm_start_lowers_frame_mse_well_below_the_best_constant(trained):
    cfg, pats, theta0, theta, hist, _ = trained
    X = np.concatenate(pats).astype(float)
    constant = np.mean((X - X.mean(axis=0)) ** 2)         # best output that ignores the input
    before, after = bptt.frame_mse(theta0, cfg, pats), bptt.frame_mse(theta, cfg, pats)
    assert after < 0.1 * before           # measured 0.0018-0.0043 vs 0.19 over seeds 0-5
    assert after < 0.25 * constant        # it codes the input: 4-10 % of the best constant
    assert hist[-1]["phase"] == "final" and hist[-1]["frame_mse"] == pytest.approx(after, rel=1e-12)
    assert hist[-1]["used"] >= 32                         # most of the 64 codewords in use


def test_warm_start_history_and_progress(trained):
    cfg, _, theta0, theta, hist, calls = trained
    phases = [h["phase"] for h in hist]
    assert phases == ["mse"] * 40 + ["kmeans"] * 3 + ["vq"] * 40 + ["final"]
    assert [h["step"] for h in hist if "step" in h] == list(range(1, 81))
    assert [c[:2] for c in calls] == [(k, 80) for k in range(1, 81)]
    assert all(isinstance(c[2], str) for c in calls)
    assert all(np.isfinite(h["loss"]) for h in hist if "loss" in h)
    lrs = [h["lr"] for h in hist if "lr" in h]                  # half-cosine decay
    assert lrs[0] == pytest.approx(FAST.learning_rate)
    assert lrs[-1] == pytest.approx(FAST.learning_rate * FAST.final_lr_fraction)
    assert np.all(np.diff(lrs) < 0)
    assert not np.shares_memory(theta, theta0)


def test_warm_start_is_deterministic(trained):
    cfg, pats, theta0, theta, hist, _ = trained
    again, hist2 = ws.warm_start(theta0, cfg, pats, FAST)
    np.testing.assert_array_equal(again, theta)
    strip = lambda hs: [{k: v for k, v in h.items() if k != "seconds"} for h in hs]
    assert strip(hist2) == strip(hist)
    other, _ = ws.warm_start(theta0, cfg, pats, replace(FAST, seed=4, steps=10))
    assert not np.array_equal(other, theta)


def test_zero_steps_only_sets_the_codebook():
    cfg = FraeConfig()
    pats = _synthetic_patterns(n_items=2, n_frames=100)
    theta0 = init_params(cfg, 0)
    opts = ws.WarmStartOptions(steps=0, init_output_bias=False)
    theta, hist = ws.warm_start(theta0, cfg, pats, opts)
    assert [h["phase"] for h in hist] == ["kmeans"] * 3 + ["final"]
    changed = theta != theta0
    cb = frae_layout(cfg).mask(names="codebook")
    assert np.all(changed[cb]) and not np.any(changed[~cb])
    np.testing.assert_array_equal(theta, ws.init_codebook(theta0, cfg, pats, seed=0))
    assert hist[-1]["used"] >= 32
    # the output bias starts at the logit of the per-channel mean (y_t = best constant)
    theta_b, _ = ws.warm_start(theta0, cfg, pats, replace(opts, init_output_bias=True))
    mean = np.clip(np.concatenate(pats).astype(float).mean(axis=0), 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(frae_layout(cfg).view(theta_b, "dec.out.b"),
                               np.log(mean / (1 - mean)), rtol=1e-12)


def test_bad_options_raise_training_errors():
    for bad in ({"steps": -1}, {"learning_rate": 0.0}, {"quantize_after": 1.5},
                {"kmeans_rounds": 0}, {"batch_items": 2.5}, {"commitment": float("nan")}):
        with pytest.raises(TrainingError, match=next(iter(bad))):
            ws.WarmStartOptions(**bad)
    with pytest.raises(TrainingError, match="codebook_size"):
        ws.warm_start(init_params(FraeConfig(), 0), FraeConfig(), [np.zeros((10, 22))],
                      ws.WarmStartOptions(steps=0))
