"""The VSTOI objective (against pystoi), training runs (seed, checkpoints, resume, interrupts)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from pa_ci.chain.ace import default_params
from pa_ci.data.dataset import build_dataset, default_config
from pa_ci.errors import TrainingError
from pa_ci.codec.frae import FraeConfig, forward, init_params
from pa_ci.train.objective import VstoiObjective
from pa_ci.codec.model_file import load_model
from pa_ci.train.spsa import Gains
from pa_ci.train.training import TrainOptions, train
from pa_ci.train.warmstart import init_codebook
from naive.chain import plain_vstoi

P = default_params()
CFG = FraeConfig()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_dataset(default_config(tiny=True), cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def theta(tiny):
    return init_codebook(init_params(CFG, 1), CFG, [it.pattern for it in tiny.train], seed=1)


def test_objective_equals_pystoi_of_the_decoded_patterns(tiny, theta):
    items = tiny.train[:4]
    obj = VstoiObjective(items, CFG)
    scores = obj.evaluate(theta)
    out = forward(theta, CFG, [it.pattern for it in items])
    for i, it in enumerate(items):
        _, decoded = out.item(i)
        assert scores[i] == pytest.approx(plain_vstoi(it.clean.astype(np.float64), decoded), abs=1e-9)
    assert obj(theta[None], 0)[0] == pytest.approx(scores.mean(), abs=1e-15)


def test_objective_rows_are_independent_and_share_items(tiny, theta):
    obj = VstoiObjective(tiny.train, CFG)
    other = theta + 0.05 * np.random.default_rng(0).standard_normal(theta.size)
    both = obj(np.stack([theta, other, theta]), 3)
    assert both[0] == both[2]
    assert both[0] == obj(theta[None], 3)[0]
    assert both[1] == obj(other[None], 3)[0]
    assert both[0] != both[1]


def test_minibatch_is_deterministic_and_scores_its_items(tiny, theta):
    obj = VstoiObjective(tiny.train, CFG, batch_size=3, seed=5)
    assert np.array_equal(obj.batch(7), obj.batch(7))
    assert len(set(obj.batch(7))) == 3
    assert any(not np.array_equal(obj.batch(0), obj.batch(k)) for k in range(1, 6))
    full = obj.evaluate(theta)
    assert obj(theta[None], 7)[0] == pytest.approx(full[obj.batch(7)].mean(), abs=1e-15)


def _opts(**kw) -> TrainOptions:
    base = dict(iters=6, seed=2, warm_start_steps=4, checkpoint_every=2,
                gains=Gains(a=2.0, A=10.0, c=0.02))
    base.update(kw)
    return TrainOptions(**base)


def _theta(path) -> np.ndarray:
    return load_model(path).theta


def test_same_seed_same_model_and_run_folder_contents(tiny, tmp_path):
    p1 = train(tmp_path / "a", tiny.train, options=_opts())
    p2 = train(tmp_path / "b", tiny.train, options=_opts())
    assert np.array_equal(_theta(p1), _theta(p2))
    for name in ("model.npz", "checkpoint.npz"):
        with np.load(tmp_path / "a" / name) as za, np.load(tmp_path / "b" / name) as zb:
            assert za.files == zb.files
            assert all(np.array_equal(za[k], zb[k]) for k in za.files)
    p3 = train(tmp_path / "c", tiny.train, options=_opts(seed=3))
    assert not np.array_equal(_theta(p1), _theta(p3))
    rows = list(csv.DictReader(open(tmp_path / "a" / "log.csv")))
    assert [int(r["k"]) for r in rows] == list(range(6))
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["train"]["iters"] == 6 and cfg["frae"]["codebook_size"] == 64
    meta = load_model(p1).meta
    assert meta["iterations"] == 6 and 0.0 < meta["train_vstoi"] < 1.0


def test_resume_equals_uninterrupted(tiny, tmp_path):
    full = train(tmp_path / "full", tiny.train, options=_opts())
    train(tmp_path / "part", tiny.train, options=_opts(iters=3))
    resumed = train(tmp_path / "part", tiny.train, options=_opts(), resume=True)
    assert np.array_equal(_theta(full), _theta(resumed))
    rows = list(csv.DictReader(open(tmp_path / "part" / "log.csv")))
    assert [int(r["k"]) for r in rows] == list(range(6))


def test_ctrl_c_checkpoints_and_resume_continues_bit_identically(tiny, tmp_path):
    full = train(tmp_path / "full", tiny.train, options=_opts(checkpoint_every=100))
    calls = []

    def interrupt(done, total, info):
        calls.append(info)
        if info.startswith("it 4 "):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "run", tiny.train, options=_opts(checkpoint_every=100), progress=interrupt)
    assert not (tmp_path / "run" / "model.npz").exists()
    with np.load(tmp_path / "run" / "checkpoint.npz") as z:
        assert json.loads(str(z["header"][()]))["k"] == 4
    resumed = train(tmp_path / "run", tiny.train, options=_opts(checkpoint_every=100), resume=True)
    assert np.array_equal(_theta(full), _theta(resumed))


def test_run_folder_guards(tiny, tmp_path):
    train(tmp_path / "r", tiny.train, options=_opts(iters=1, warm_start_steps=0))
    with pytest.raises(TrainingError, match="--resume"):
        train(tmp_path / "r", tiny.train, options=_opts(iters=1, warm_start_steps=0))
    with pytest.raises(TrainingError, match="train.seed"):
        train(tmp_path / "r", tiny.train, options=_opts(iters=2, warm_start_steps=0, seed=9), resume=True)
    (tmp_path / "f").write_text("x")
    with pytest.raises(TrainingError, match="not a folder"):
        train(tmp_path / "f", tiny.train, options=_opts(iters=1))


def test_training_can_start_from_a_given_model(tiny, tmp_path):
    """--init: no warm start, SPSA moves the given parameters."""
    from pa_ci.codec.coder import load_codec
    codec = load_codec()
    p = train(tmp_path / "ft", tiny.train, options=_opts(iters=4, warm_start_steps=0),
              init_theta=codec.theta, init_name="shipped")
    m = load_model(p)
    assert not np.array_equal(m.theta, codec.theta)
    assert m.meta["iterations"] == 4 and np.isfinite(m.meta["train_vstoi"])


def test_sigterm_checkpoints_like_ctrl_c(tiny, tmp_path):
    import os
    import signal

    def terminate(done, total, info):
        if info.startswith("it 3 "):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "run", tiny.train, options=_opts(checkpoint_every=100), progress=terminate)
    with np.load(tmp_path / "run" / "checkpoint.npz") as z:
        assert json.loads(str(z["header"][()]))["k"] == 3
    assert signal.getsignal(signal.SIGTERM) is not None


class _SignalInsideStep:
    """Wraps the objective; sends ``signum`` to this process from inside SPSA iteration ``at``
    (between its random draws and its update, i.e. off any boundary), ``times`` times."""

    def __init__(self, base, signum: int, at: int, times: int = 1) -> None:
        self.base, self.signum, self.at, self.times = base, signum, at, times

    def __call__(self, thetas, k=0):
        import os
        if k == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)
        return self.base(thetas, k)


@pytest.mark.parametrize("signame, at", [("SIGINT", 4), ("SIGTERM", 2)])
def test_signal_inside_an_iteration_resumes_bit_identically(tiny, tmp_path, signame, at):
    """A signal in the middle of a step (off the checkpoint grid of 3): the step finishes, a
    checkpoint is taken at its end, and the resumed run equals the uninterrupted one bit for bit
    (theta and every log row)."""
    import signal
    signum = getattr(signal, signame)
    opts = _opts(checkpoint_every=3)
    full = train(tmp_path / "full", tiny.train, options=opts)
    before = signal.getsignal(signal.SIGINT)  # Python's handler; SIG_IGN under nohup
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "run", tiny.train, options=opts,
              wrap_objective=lambda base: _SignalInsideStep(base, signum, at))
    assert signal.getsignal(signal.SIGINT) is before  # the run restored it
    with np.load(tmp_path / "run" / "checkpoint.npz") as z:
        assert json.loads(str(z["header"][()]))["k"] == at + 1
    resumed = train(tmp_path / "run", tiny.train, options=opts, resume=True)
    assert np.array_equal(_theta(full), _theta(resumed))
    cols = ("k", "a_k", "c_k", "y_plus", "y_minus", "vstoi", "accepted", "step_norm")
    rows = [[r[c] for c in cols] for r in csv.DictReader(open(tmp_path / "run" / "log.csv"))]
    assert rows == [[r[c] for c in cols] for r in csv.DictReader(open(tmp_path / "full" / "log.csv"))]


def test_second_signal_stops_at_once_and_keeps_the_last_checkpoint(tiny, tmp_path):
    import signal
    opts = _opts(checkpoint_every=3)
    full = train(tmp_path / "full", tiny.train, options=opts)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "run", tiny.train, options=opts,
              wrap_objective=lambda base: _SignalInsideStep(base, signal.SIGINT, 4, times=2))
    with np.load(tmp_path / "run" / "checkpoint.npz") as z:
        assert json.loads(str(z["header"][()]))["k"] == 3  # the half-done step 4 was not saved
    resumed = train(tmp_path / "run", tiny.train, options=opts, resume=True)
    assert np.array_equal(_theta(full), _theta(resumed))


def test_calibrated_gains_are_used_recorded_and_resumed(tiny, tmp_path):
    from pa_ci.train.spsa import calibrate
    opts = _opts(iters=4, warm_start_steps=0, calibrate_step=0.01)
    p = train(tmp_path / "cal", tiny.train, options=opts)
    cal = load_model(p).meta["calibrated_gains"]
    assert cal["A"] == pytest.approx(0.4) and cal["c"] == opts.gains.c
    theta0 = init_codebook(init_params(CFG, opts.seed), CFG, [it.pattern for it in tiny.train],
                           seed=opts.seed)
    expected = calibrate(VstoiObjective(tiny.train, CFG), theta0, n_iters=4, target_step=0.01,
                         seed=opts.seed, c=opts.gains.c)
    assert cal == expected.to_dict()

    def interrupt(done, total, info):
        if info.startswith("it 2 "):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # the checkpoint keeps the calibrated gains
        train(tmp_path / "part", tiny.train, options=opts, progress=interrupt)
    resumed = train(tmp_path / "part", tiny.train, options=opts, resume=True)
    assert np.array_equal(_theta(p), _theta(resumed))


def test_iterate_averaging_saves_the_mean_and_resumes(tiny, tmp_path):
    """--average-from: the model is the mean of the iterates (the checkpoint keeps it), a resumed
    run saves the same model, and the last iterate's train VSTOI is in the meta."""
    opts = _opts(average_from=2)
    full = train(tmp_path / "full", tiny.train, options=opts)
    plain = train(tmp_path / "plain", tiny.train, options=_opts())
    with np.load(tmp_path / "full" / "checkpoint.npz") as z:
        assert np.array_equal(z["iterate_mean"], _theta(full))
        assert not np.array_equal(z["theta"], _theta(full))
        assert np.array_equal(z["theta"], _theta(plain))     # the iterates are those of a plain run
    meta = load_model(full).meta["iterate_mean"]
    assert meta["from"] == 2 and meta["iterates"] == 4
    assert meta["train_vstoi_last_iterate"] == pytest.approx(load_model(plain).meta["train_vstoi"])

    def interrupt(done, total, info):
        if info.startswith("it 4 "):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "part", tiny.train, options=opts, progress=interrupt)
    resumed = train(tmp_path / "part", tiny.train, options=opts, resume=True)
    assert np.array_equal(_theta(full), _theta(resumed))
    cfg = json.loads((tmp_path / "plain" / "config.json").read_text())
    assert "average_from" not in cfg["train"]   # runs without it record what they did before
