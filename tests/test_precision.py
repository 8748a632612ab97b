"""The float32 training precision: the FRAE pass in float32 against a NumPy float32 twin, its exp,
and that every reported VSTOI stays the float64 codec's."""
from __future__ import annotations

import json

import numpy as np
import pytest
from numba import njit

from pa_ci.codec._exp import _exp
from pa_ci.codec.frae import FraeConfig, forward, forward_maxima, frae_layout, init_params
from pa_ci.errors import ParameterError, TrainingError
from pa_ci.train.objective import VstoiObjective
from pa_ci.train.training import TrainOptions
from naive.codec import twin_forward
from test_frae import sparse_patterns


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from pa_ci.data.dataset import build_dataset, default_config
    return build_dataset(default_config(tiny=True), cache_dir=tmp_path_factory.mktemp("cache"))


@njit(cache=True)
def _exp_into(x, out):
    for i in range(x.shape[0]):
        out[i] = _exp(x[i])


def test_float32_exp_within_two_ulp_and_float32_typed():
    x = np.linspace(-87.0, 87.0, 400_001).astype(np.float32)
    got = np.empty_like(x)
    _exp_into(x, got)
    assert got.dtype == np.float32
    exact = np.exp(x.astype(np.float64))
    ulps = np.abs(got.astype(np.float64) - exact) / np.spacing(exact.astype(np.float32))
    assert ulps.max() <= 2.0
    # clamped outside [-87, 87] like the float64 exp outside [-88, 88]: finite, no inf or 0
    out = np.empty(2, np.float32)
    _exp_into(np.array([-200.0, 200.0], np.float32), out)
    assert out[0] > 0 and np.isfinite(out[1])


def _items_and_theta(cfg, seed=3):
    rng = np.random.default_rng(seed)
    theta = init_params(cfg, seed=11) * 2.0
    items = sparse_patterns(rng, [40, 1, 25, 0, 33], C=cfg.n_channels,
                            n_sel=min(8, cfg.n_channels))
    z = forward(theta, cfg, items, return_latents=True).latents  # varied indices
    frae_layout(cfg).view(theta, "codebook")[:] = z[rng.choice(len(z), cfg.codebook_size, False)]
    return theta, items


@pytest.mark.parametrize("cfg", [FraeConfig(), FraeConfig(output_maxima=0)],
                         ids=["maxima8", "maxima0"])
def test_float32_pass_matches_numpy_float32_twin(cfg):
    theta, items = _items_and_theta(cfg)
    ch32, va32 = forward_maxima(theta[None], cfg, items, precision="float32")
    ch64, va64 = forward_maxima(theta[None], cfg, items)
    idx, dec, _ = twin_forward(theta, cfg, items, dtype=np.float32)
    dense = np.concatenate([d for d in dec if len(d)])
    M = cfg.output_maxima or cfg.n_channels
    keep = np.sort(np.argsort(-dense.astype(np.float64), axis=1, kind="stable")[:, :M], axis=1)
    np.testing.assert_array_equal(ch32[0], keep)
    # float32 arithmetic (exp within 2 ulp of NumPy's float32 exp): a few float32 ulps of the
    # twin, and visibly not the float64 codec's values
    np.testing.assert_allclose(va32[0], np.take_along_axis(dense, keep, axis=1), rtol=0, atol=2e-6)
    assert np.max(np.abs(va32 - va64)) > 1e-9
    np.testing.assert_allclose(va32, va64, rtol=0, atol=1e-4)


def test_precision_is_checked():
    cfg = FraeConfig()
    theta, items = _items_and_theta(cfg)
    with pytest.raises(ParameterError, match="precision"):
        forward_maxima(theta[None], cfg, items, precision="float16")
    with pytest.raises(ParameterError, match="precision"):
        TrainOptions(precision="double")
    assert "precision" not in TrainOptions().to_dict()  # float64 runs keep their old record
    assert TrainOptions.from_dict(TrainOptions(precision="float32").to_dict()).precision == "float32"


def test_float32_objective_reports_float64_evaluations(tiny_dataset):
    items = tiny_dataset.train
    cfg = FraeConfig()
    theta = init_params(cfg, seed=2)
    o32 = VstoiObjective(items, cfg, precision="float32")
    o64 = VstoiObjective(items, cfg)
    np.testing.assert_array_equal(o32.evaluate(theta), o64.evaluate(theta))
    y32, y64 = o32(theta[None])[0], o64(theta[None])[0]
    assert y32 != y64 and abs(y32 - y64) < 0.01


def test_train_float32_records_precision_and_float64_figures(tiny_dataset, tmp_path):
    from pa_ci.codec.model_file import load_model
    from pa_ci.train.training import train
    cfg = FraeConfig()
    opts = TrainOptions(iters=3, warm_start_steps=0, precision="float32", checkpoint_every=1)
    theta = init_params(cfg, seed=4)
    path = train(tmp_path / "run", tiny_dataset.train, config=cfg, options=opts,
                 init_theta=theta, init_name="seeded")
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["train"]["precision"] == "float32"
    model = load_model(path)
    o64 = VstoiObjective(tiny_dataset.train, cfg)
    assert model.meta["train_vstoi"] == pytest.approx(float(o64.evaluate(model.theta).mean()),
                                                      abs=1e-15)
    assert model.meta["vstoi_initial"] == pytest.approx(float(o64.evaluate(theta).mean()),
                                                        abs=1e-15)
    with pytest.raises(TrainingError, match="another train"):  # a resume keeps the precision
        train(tmp_path / "run", tiny_dataset.train, config=cfg,
              options=TrainOptions(iters=3, warm_start_steps=0, checkpoint_every=1),
              init_theta=theta, init_name="seeded", resume=True)
