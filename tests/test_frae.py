"""FRAE codec: Numba kernels against a plain NumPy twin, streaming == batched, layout, config."""
from __future__ import annotations

import json
import math

import numba
import numpy as np
import pytest

from pa_ci.errors import ParameterError
from pa_ci.codec._exp import _exp_array
from pa_ci.codec._kernels import _L
from pa_ci.codec.frae import (FraeConfig, FraeOutput, PackedPatterns, _units, decode, forward,
                              forward_many, forward_maxima, frae_layout, init_params, pack_patterns)
from pa_ci.codec.stream import Decoder, Encoder
from pa_ci.codec.layout import Layout
from naive.codec import twin_forward


def sparse_patterns(rng, lengths, C=22, n_sel=8):
    """ACE-like patterns: n_sel random channels per frame with values in (0, 1], rest 0."""
    out = []
    for K in lengths:
        x = np.zeros((K, C), dtype=np.float32)
        if K:
            sel = np.argsort(rng.random((K, C)), axis=1)[:, :min(n_sel, C)]
            np.put_along_axis(x, sel, rng.uniform(0.05, 1.0, sel.shape).astype(np.float32), axis=1)
        out.append(x)
    return out


CONFIGS = [
    FraeConfig(),                                                      # default, 8 maxima
    FraeConfig(output_maxima=0),                                       # keep all outputs
    FraeConfig(n_channels=5, enc_hidden=3, dec_hidden=9, latent_dim=3, codebook_size=5,
               output_maxima=2),                                       # odd sizes, He != Hd
    FraeConfig(n_channels=22, enc_hidden=16, dec_hidden=8, latent_dim=1, codebook_size=2,
               output_maxima=22),                                      # no padding, keep all
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "maxima0", "small", "unpadded"])
def test_forward_matches_numpy_twin(cfg):
    rng = np.random.default_rng(7)
    theta = init_params(cfg, seed=11)
    theta *= 2.5  # larger weights: saturating gates
    items = sparse_patterns(rng, [1, 60, 0, 23, 1, 128, 150], C=cfg.n_channels,
                            n_sel=min(8, cfg.n_channels))
    # codewords = some of the latents (as a k-means seeding would do): varied indices
    z = forward(theta, cfg, items, return_latents=True).latents
    frae_layout(cfg).view(theta, "codebook")[:] = z[rng.choice(len(z), cfg.codebook_size, False)]
    out = forward(theta, cfg, items, return_latents=True)
    idx, dec, lat = twin_forward(theta, cfg, items)
    assert isinstance(out, FraeOutput) and out.n_items == len(items)
    assert out.indices.dtype == np.int64 and out.decoded.dtype == np.float64
    for i in range(len(items)):
        got_i, got_d = out.item(i)
        a, b = out.offsets[i], out.offsets[i + 1]
        np.testing.assert_array_equal(got_i, idx[i])
        np.testing.assert_allclose(got_d, dec[i], rtol=0, atol=1e-10)
        np.testing.assert_allclose(out.latents[a:b], lat[i], rtol=0, atol=1e-10)
    assert len(np.unique(out.indices)) > 1  # the test exercises the quantiser
    if cfg.output_maxima:
        assert np.all((out.decoded != 0).sum(axis=1) == cfg.output_maxima)


def test_stacked_input_with_offsets_equals_list_input():
    cfg = FraeConfig()
    theta = init_params(cfg, 1)
    items = sparse_patterns(np.random.default_rng(1), [5, 1, 33])
    a = forward(theta, cfg, items)
    b = forward(theta, cfg, np.concatenate(items), offsets=[0, 5, 6, 39])
    c = forward(theta, cfg, pack_patterns(items, cfg.n_channels))
    for o in (b, c):
        np.testing.assert_array_equal(o.indices, a.indices)
        np.testing.assert_array_equal(o.decoded, a.decoded)
    np.testing.assert_array_equal(a.offsets, [0, 5, 6, 39])
    one = forward(theta, cfg, items[2])  # one (K, C) array = one item
    np.testing.assert_array_equal(one.decoded, a.decoded[6:])


def test_pack_patterns_is_sparse_and_round_trips():
    items = sparse_patterns(np.random.default_rng(2), [4, 0, 9])
    packed = pack_patterns(items, 22)
    assert isinstance(packed, PackedPatterns)
    assert packed.n_items == 3 and packed.n_frames == 13
    assert packed.vals.size == 13 * 8  # only the nonzero channels are stored
    np.testing.assert_array_equal(packed.dense(), np.concatenate(items).astype(np.float64))
    np.testing.assert_array_equal(packed.order, [2, 0, 1])  # longest first
    assert pack_patterns(packed, 22) is packed


def test_output_ties_keep_the_higher_channels():
    cfg = FraeConfig()
    layout = frae_layout(cfg)
    theta = init_params(cfg, 0)
    layout.view(theta, "dec.out.W")[:] = 0.0
    layout.view(theta, "dec.out.b")[:] = 0.3  # all 22 outputs equal
    out = forward(theta, cfg, sparse_patterns(np.random.default_rng(0), [4]))
    expected = np.zeros(22)
    expected[14:] = 1.0 / (1.0 + np.exp(-0.3))
    np.testing.assert_allclose(out.decoded, np.tile(expected, (4, 1)), rtol=0, atol=1e-15)


def test_quantiser_ties_take_the_lowest_index():
    cfg = FraeConfig()
    layout = frae_layout(cfg)
    theta = init_params(cfg, 0)
    layout.view(theta, "enc.latent.W")[:] = 0.0
    layout.view(theta, "enc.latent.b")[:] = [0.5, -0.2]  # z_t is constant
    cb = layout.view(theta, "codebook")
    cb[:] = 10.0
    cb[5] = cb[3] = [0.5, -0.25]  # two equally near codewords
    cb[9] = [0.5, -0.26]
    out = forward(theta, cfg, sparse_patterns(np.random.default_rng(0), [6]))
    np.testing.assert_array_equal(out.indices, 3)


def test_streaming_equals_batched_exactly():
    for cfg in (CONFIGS[0], CONFIGS[2]):
        theta = init_params(cfg, 5) * 2.0
        items = sparse_patterns(np.random.default_rng(3), [70, 1, 25], C=cfg.n_channels,
                                n_sel=min(8, cfg.n_channels))
        out = forward(theta, cfg, items)
        enc, dec = Encoder(theta, cfg), Decoder(theta, cfg)
        for i, x in enumerate(items):
            enc.reset()
            dec.reset()
            want_i, want_d = out.item(i)
            for t in range(len(x)):
                k = enc.step(x[t])
                y = dec.step(k)
                assert k == want_i[t]
                assert np.array_equal(y, want_d[t])
                assert np.array_equal(enc.h, dec.h)  # the encoder's copy never drifts
                assert enc.h.shape == (cfg.dec_hidden,) and enc.s.shape == (cfg.enc_hidden,)


def test_streaming_latent_and_reset():
    cfg = FraeConfig()
    theta = init_params(cfg, 2)
    x = sparse_patterns(np.random.default_rng(4), [12])[0]
    out = forward(theta, cfg, x, return_latents=True)
    enc = Encoder(theta, cfg)
    for _ in range(2):  # reset gives the same run again
        enc.reset()
        for t in range(len(x)):
            enc.step(x[t])
            assert np.array_equal(enc.latent, out.latents[t])
    assert not np.any(enc.s == 0)


def test_decode_equals_forward_decoded():
    cfg = FraeConfig()
    theta = init_params(cfg, 9) * 1.5
    items = sparse_patterns(np.random.default_rng(5), [40, 1, 0, 17])
    out = forward(theta, cfg, items)
    assert np.array_equal(decode(theta, cfg, out.indices, offsets=out.offsets), out.decoded)
    per_item = [out.item(i)[0] for i in range(out.n_items)]
    assert np.array_equal(decode(theta, cfg, per_item), out.decoded)
    # without offsets the indices are one item: the states do not reset between items
    joined = decode(theta, cfg, out.indices)
    assert np.array_equal(joined[:40], out.decoded[:40])
    assert not np.array_equal(joined[40:], out.decoded[40:])


def test_forward_many_equals_forward_for_each_theta():
    cfg = FraeConfig()
    thetas = np.stack([init_params(cfg, s) for s in (1, 2, 3)])
    items = sparse_patterns(np.random.default_rng(6), [30, 2, 11])
    outs = forward_many(thetas, cfg, items, return_latents=True)
    assert len(outs) == 3
    for theta, o in zip(thetas, outs):
        ref = forward(theta, cfg, items, return_latents=True)
        assert np.array_equal(o.indices, ref.indices)
        assert np.array_equal(o.decoded, ref.decoded)
        assert np.array_equal(o.latents, ref.latents)
    assert not np.array_equal(outs[0].decoded, outs[1].decoded)


def test_results_do_not_depend_on_thread_count():
    cfg = FraeConfig()
    theta = init_params(cfg, 4)
    items = sparse_patterns(np.random.default_rng(8), [50, 3, 20, 20, 7])
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = forward(theta, cfg, items)
    finally:
        numba.set_num_threads(before)
    many = forward(theta, cfg, items)
    assert np.array_equal(one.indices, many.indices) and np.array_equal(one.decoded, many.decoded)


def test_kernel_exp_is_within_one_ulp_of_numpy():
    x = np.concatenate([np.linspace(-88, 88, 20001), np.random.default_rng(0).uniform(-2, 2, 5000),
                        [0.0, -0.0, 1e-300, 0.5 * math.log(2), -0.5 * math.log(2)]])
    out = np.empty_like(x)
    _exp_array(x, out)
    ref = np.exp(x)
    assert np.max(np.abs(out - ref) / np.spacing(ref)) <= 1.0
    clamp = np.empty(2)
    _exp_array(np.array([-1000.0, 1000.0]), clamp)
    np.testing.assert_allclose(clamp, np.exp([-88.0, 88.0]), rtol=1e-15)


# --------------------------------------------------------------------------- layout and config
def test_default_parameter_counts():
    layout = frae_layout(FraeConfig())
    assert isinstance(layout, Layout)
    assert layout.size == 3428
    assert layout.count(parts=("encoder", "decoder")) == 3300
    assert layout.count(kinds="weight") == 1512 + 588 + 28 + 84 + 588 + 308 == 3108
    assert layout.count(parts="codebook") == layout.count(kinds="codebook") == 128
    assert layout.count(parts="encoder") == 2184 + 30
    assert layout.count(parts="decoder") == 756 + 330


def test_layout_names_shapes_and_formula():
    cfg = FraeConfig(n_channels=10, enc_hidden=5, dec_hidden=7, latent_dim=3, codebook_size=16,
                     output_maxima=4)
    layout = frae_layout(cfg)
    assert layout.names == ("enc.gru.W_ih", "enc.gru.W_hh", "enc.gru.b_ih", "enc.gru.b_hh",
                            "enc.latent.W", "enc.latent.b", "codebook", "dec.gru.W_ih",
                            "dec.gru.W_hh", "dec.gru.b_ih", "dec.gru.b_hh", "dec.out.W",
                            "dec.out.b")
    assert layout["enc.gru.W_ih"].shape == (15, 17)
    assert layout["dec.gru.W_hh"].shape == (21, 7)
    assert layout["dec.out.W"].shape == (10, 7)
    C, He, Hd, D, K = 10, 5, 7, 3, 16  # research §3.3 formulas
    assert layout.count(parts="encoder") == 3 * He * (C + Hd + He + 2) + He * D + D
    assert layout.count(parts="decoder") == 3 * Hd * (D + Hd + 2) + Hd * C + C
    assert layout.count(parts="codebook") == K * D


def test_init_params_deterministic_and_in_range():
    cfg = FraeConfig()
    a, b, c = init_params(cfg, 42), init_params(cfg, 42), init_params(cfg, 43)
    assert a.dtype == np.float64 and np.array_equal(a, b) and not np.array_equal(a, c)
    V = frae_layout(cfg).views(a)
    bound = 1 / math.sqrt(14)
    for name in ("enc.gru.W_ih", "enc.gru.b_hh", "enc.latent.W", "dec.gru.W_hh", "dec.out.b"):
        assert np.abs(V[name]).max() <= bound and np.abs(V[name]).max() > 0.8 * bound
    assert 0.07 < V["codebook"].std() < 0.13
    with pytest.raises(ParameterError):
        init_params(cfg, -1)


def test_config_validation_bits_and_dict_round_trip():
    cfg = FraeConfig()
    assert cfg.n_bits == 6 and cfg.bitrate_bps == pytest.approx(6 * 16000 / 18)
    assert FraeConfig(codebook_size=65).n_bits == 7 and FraeConfig(codebook_size=2).n_bits == 1
    d = cfg.to_dict()
    json.dumps(d)
    assert FraeConfig.from_dict(d) == cfg
    assert FraeConfig.from_dict(json.loads(json.dumps(d))) == cfg
    assert FraeConfig.from_dict({"codebook_size": 32}).codebook_size == 32
    with pytest.raises(ParameterError, match="unknown FRAE config keys 'hidden'"):
        FraeConfig.from_dict({"hidden": 3})
    for bad in (dict(codebook_size=1), dict(enc_hidden=0), dict(output_maxima=23),
                dict(output_maxima=-1), dict(latent_dim=2.5), dict(n_channels=True),
                dict(frame_rate=0.0), dict(frame_rate=float("nan"))):
        with pytest.raises(ParameterError):
            FraeConfig(**bad)


def test_input_checks():
    cfg = FraeConfig()
    theta = init_params(cfg, 0)
    good = sparse_patterns(np.random.default_rng(0), [3])
    bad_inputs = [
        lambda: forward(theta[:-1], cfg, good),
        lambda: forward(np.stack([theta, theta]), cfg, good),
        lambda: forward(np.where(np.arange(theta.size) == 5, np.nan, theta), cfg, good),
        lambda: forward(theta, cfg, [np.zeros((3, 21))]),
        lambda: forward(theta, cfg, [np.full((3, 22), np.inf)]),
        lambda: forward(theta, cfg, []),
        lambda: forward(theta, cfg, np.zeros((6, 22)), offsets=[0, 7]),
        lambda: forward(theta, cfg, np.zeros((6, 22)), offsets=[0, 4, 2, 6]),
        lambda: forward_many(theta, cfg, good),
        lambda: decode(theta, cfg, np.array([0, 64])),
        lambda: decode(theta, cfg, np.array([-1])),
        lambda: decode(theta, cfg, np.array([0.5])),
        lambda: Encoder(theta, cfg).step(np.zeros(21)),
        lambda: Encoder(theta, cfg).step(np.full(22, np.nan)),
        lambda: Decoder(theta, cfg).step(64),
        lambda: Decoder(theta, cfg).step(True),
    ]
    for k, call in enumerate(bad_inputs):
        with pytest.raises(ParameterError):
            call()


def test_forward_many_into_a_given_buffer():
    cfg = FraeConfig()
    rng = np.random.default_rng(11)
    pats = [np.where(rng.random((n, 22)) < 0.35, rng.random((n, 22)), 0.0) for n in (40, 7, 90)]
    thetas = np.stack([init_params(cfg, 1), init_params(cfg, 2)])
    buf = np.full((2, 137, 22), np.nan)
    outs = forward_many(thetas, cfg, pats, out=buf)
    ref = forward_many(thetas, cfg, pats)
    for m in range(2):
        assert outs[m].decoded.base is buf
        assert np.array_equal(buf[m], ref[m].decoded)
        assert np.array_equal(outs[m].indices, ref[m].indices)
    with pytest.raises(ParameterError, match="C-contiguous float64"):
        forward_many(thetas, cfg, pats, out=np.empty((2, 136, 22)))


# --------------------------------------------------------------------------- lane kernels
def _many_items(rng, n, C=22, n_sel=8, longest=160):
    """More items than lanes, unequal lengths, some empty ones in between."""
    lengths = rng.integers(0, longest, n)
    lengths[::9] = 0
    lengths[1] = 1
    return sparse_patterns(rng, lengths, C=C, n_sel=n_sel)


def _with_threads(k, call):
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(k)
        return call()
    finally:
        numba.set_num_threads(before)


def test_lanes_refill_matches_numpy_twin():
    """2.5 x _L items: lanes take new items as theirs end (states reset), empty items skipped."""
    cfg = FraeConfig()
    rng = np.random.default_rng(21)
    items = _many_items(rng, int(2.5 * _L))
    theta = init_params(cfg, 3) * 2.0
    frae_layout(cfg).view(theta, "codebook")[:] = rng.normal(0, 0.5, (cfg.codebook_size, 2))
    out = forward(theta, cfg, items, return_latents=True)
    idx, dec, lat = twin_forward(theta, cfg, items)
    np.testing.assert_array_equal(out.indices, np.concatenate(idx))
    np.testing.assert_allclose(out.decoded, np.concatenate(dec), rtol=0, atol=1e-10)
    np.testing.assert_allclose(out.latents, np.concatenate(lat), rtol=0, atol=1e-10)
    assert len(np.unique(out.indices)) > 1


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "maxima0", "small", "unpadded"])
def test_forward_maxima_equals_dense_forward_many(cfg):
    rng = np.random.default_rng(22)
    items = _many_items(rng, _L + 5, C=cfg.n_channels, n_sel=min(8, cfg.n_channels), longest=90)
    thetas = np.stack([init_params(cfg, s) * 2.0 for s in (1, 2, 3)])
    dense = np.stack([o.decoded for o in forward_many(thetas, cfg, items)])
    chans, vals = forward_maxima(thetas, cfg, items)
    n, N, C = dense.shape
    M = cfg.output_maxima or C
    assert chans.shape == vals.shape == (n, N, M)
    assert chans.dtype == np.int8 and vals.dtype == np.float64
    assert np.all(np.diff(chans.astype(int), axis=2) > 0)  # ascending, distinct
    np.testing.assert_array_equal(np.take_along_axis(dense, chans.astype(np.int64), axis=2), vals)
    rebuilt = np.zeros_like(dense)
    np.put_along_axis(rebuilt, chans.astype(np.int64), vals, axis=2)
    np.testing.assert_array_equal(rebuilt, dense)  # and nothing else is kept
    if cfg.output_maxima == 0:
        np.testing.assert_array_equal(chans, np.broadcast_to(np.arange(C), chans.shape))


def test_forward_maxima_ties_and_checks():
    cfg = FraeConfig()
    layout = frae_layout(cfg)
    theta = init_params(cfg, 0)
    layout.view(theta, "dec.out.W")[:] = 0.0
    layout.view(theta, "dec.out.b")[:] = 0.3  # all 22 outputs equal: the 8 highest channels win
    chans, vals = forward_maxima(theta[None], cfg, sparse_patterns(np.random.default_rng(0), [5]))
    np.testing.assert_array_equal(chans, np.broadcast_to(np.arange(14, 22), (1, 5, 8)))
    np.testing.assert_allclose(vals, 1.0 / (1.0 + np.exp(-0.3)), rtol=0, atol=1e-15)
    with pytest.raises(ParameterError):
        forward_maxima(theta, cfg, [np.zeros((3, 22))])  # 1-D theta: thetas must be (n, p)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_thread_count_and_work_units_do_not_change_results(n):
    cfg = FraeConfig()
    rng = np.random.default_rng(23)
    items = pack_patterns(_many_items(rng, 2 * _L + 3), 22)
    thetas = np.stack([init_params(cfg, s) * 1.5 for s in range(n)])
    runs = [_with_threads(k, lambda: forward_many(thetas, cfg, items, return_latents=True))
            for k in (1, 2)]
    for a, b in zip(*runs):
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.decoded, b.decoded)
        assert np.array_equal(a.latents, b.latents)
    for m in range(n):  # each theta as if alone
        ref = forward(thetas[m], cfg, items)
        assert np.array_equal(runs[1][m].decoded, ref.decoded)
    dec = _with_threads(1, lambda: decode(thetas[0], cfg, runs[0][0].indices,
                                          offsets=items.offsets))
    assert np.array_equal(dec, runs[0][0].decoded)


def test_units_balance_frames_and_cover_every_item_once():
    rng = np.random.default_rng(24)
    offsets = np.concatenate([[0], np.cumsum(rng.integers(0, 500, 37))])
    lengths = np.diff(offsets)
    for n, threads in ((1, 2), (2, 2), (3, 2), (4, 2), (1, 1), (3, 1)):
        if threads > numba.config.NUMBA_NUM_THREADS:
            continue
        items, unit_theta, unit_ptr = _with_threads(threads, lambda: _units(offsets, n))
        # as few units per theta as keep every thread busy: n x G a multiple of the threads
        G = len(unit_theta) // n
        assert len(unit_theta) == n * G and (n * G) % threads == 0 and G <= threads
        for m in range(n):
            units = np.flatnonzero(unit_theta == m)
            got = np.concatenate([items[unit_ptr[u]:unit_ptr[u + 1]] for u in units])
            np.testing.assert_array_equal(np.sort(got), np.arange(37))
            loads = [lengths[items[unit_ptr[u]:unit_ptr[u + 1]]].sum() for u in units]
            assert max(loads) - min(loads) <= lengths.max()
            for u in units:  # longest first within a unit
                assert np.all(np.diff(lengths[items[unit_ptr[u]:unit_ptr[u + 1]]]) <= 0)
