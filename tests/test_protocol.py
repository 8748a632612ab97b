"""pa_ci.experiment.protocol and `pa-ci prune` / `pa-ci report`: the paper's protocol on the tiny split."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pa_ci.codec.coder import SHIPPED_MODEL
from pa_ci.data.dataset import build_dataset, default_config
from pa_ci.errors import ParameterError, TrainingError
from pa_ci.codec.frae import FraeConfig, frae_layout
from pa_ci.train.objective import VstoiObjective
from pa_ci.codec.model_file import load_model
from pa_ci.experiment.protocol import JobContext, RunSpec, run_one, run_protocol
from pa_ci.prune.magnitude import eligible_mask, prune

LAYOUT = frae_layout(FraeConfig())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_dataset(default_config(tiny=True))


@pytest.fixture(scope="module")
def shipped():
    return load_model(SHIPPED_MODEL)


def test_runspec_validates_and_keys() -> None:
    spec = RunSpec(0.55, "decoder", "pa", seed=2)
    assert spec.key() == "decoder-pa-linear-r0.55-s2" and spec.finetune_total == 7000
    base = RunSpec(0.55, "decoder", "magnitude", g="cubic")
    assert base.key() == "decoder-magnitude---r0.55-s0" and base.finetune_total == 8000
    assert base.to_dict()["g"] == "-"
    for kwargs, match in (({"rate": 1.5}, "rate"), ({"scope": "nowhere"}, "scope"),
                          ({"method": "random"}, "method"), ({"g": "exp"}, "perturbation"),
                          ({"pa_iters": 0}, "pa-iters"), ({"finetune_iters": -1}, "finetune")):
        args = {"rate": 0.5, "scope": "whole", "method": "pa", **kwargs}
        with pytest.raises(ParameterError, match=match):
            RunSpec(**args)


@pytest.mark.parametrize("method", ["pa", "magnitude"])
def test_protocol_figures_masks_and_resume(tmp_path, tiny, shipped, method) -> None:
    spec = RunSpec(0.55, "decoder", method, pa_iters=3, finetune_iters=2, seed=1)
    run = tmp_path / "run"
    r = run_protocol(shipped, spec, run, train_items=tiny.train, eval_items=tiny.test)
    ev = VstoiObjective(tiny.test, FraeConfig())
    # Figures are the test-split VSTOI of the saved models.
    assert r["vstoi_before"] == pytest.approx(ev.evaluate(shipped.theta).mean(), abs=1e-12)
    pruned = load_model(run / "pruned.npz")
    final = load_model(run / "model.npz")
    assert r["vstoi_pruned"] == pytest.approx(ev.evaluate(pruned.theta).mean(), abs=1e-12)
    assert r["vstoi_finetuned"] == pytest.approx(ev.evaluate(final.theta).mean(), abs=1e-12)
    # The pruned model is magnitude pruning of the model before it (the PA model for "pa").
    start = load_model(run / "pa" / "model.npz").theta if method == "pa" else shipped.theta
    expect, keep = prune(start, LAYOUT, "decoder", 0.55)
    assert np.array_equal(pruned.theta, expect) and np.array_equal(pruned.mask, keep)
    # Fine-tuning kept the mask: pruned weights are still exactly 0, the others moved.
    assert np.array_equal(final.mask, keep) and np.all(final.theta[~keep] == 0)
    assert not np.array_equal(final.theta[keep], pruned.theta[keep])
    elig = eligible_mask(LAYOUT, "decoder")
    assert r["eligible_weights"] == 980 and r["nonzero_weights"] == 980 - 539
    assert r["nonzero_weights"] == np.count_nonzero(final.theta[elig])
    assert r["nonzero_encoder"] == r["weights_encoder"] == 2128    # decoder scope: encoder intact
    assert r["finetune_total"] == (2 if method == "pa" else 5)
    # The PA stage trained on the pruning-aware objective: its y+/y- are not the plain VSTOI.
    if method == "pa":
        assert r["vstoi_pa"] != r["vstoi_before"]
        log = (run / "pa" / "log.csv").read_text().splitlines()
        assert len(log) == 4
    else:
        assert r["vstoi_pa"] == r["vstoi_before"] and not (run / "pa").exists()
    # Resume of a finished run returns its figures; a second start without resume is refused.
    assert run_protocol(shipped, spec, run, train_items=tiny.train, eval_items=tiny.test,
                        resume=True) == json.loads((run / "result.json").read_text())
    with pytest.raises(TrainingError, match="resume"):
        run_protocol(shipped, spec, run, train_items=tiny.train, eval_items=tiny.test)
    other = RunSpec(0.6, "decoder", method, pa_iters=3, finetune_iters=2, seed=1)
    with pytest.raises(TrainingError, match="spec"):
        run_protocol(shipped, other, run, train_items=tiny.train, eval_items=tiny.test, resume=True)


def test_interrupted_stage_resumes_to_the_same_model(tmp_path, tiny, shipped) -> None:
    spec = RunSpec(0.5, "whole", "pa", pa_iters=4, finetune_iters=3, seed=0)
    full = run_protocol(shipped, spec, tmp_path / "full", train_items=tiny.train,
                        eval_items=tiny.test)

    class Stop(Exception):
        pass

    def progress(stage):
        def f(done, total, info):
            if stage == "finetune" and done == 2:
                raise KeyboardInterrupt
        return f

    with pytest.raises(KeyboardInterrupt):
        run_protocol(shipped, spec, tmp_path / "cut", train_items=tiny.train, eval_items=tiny.test,
                     progress=progress)
    assert not (tmp_path / "cut" / "result.json").exists()
    again = run_protocol(shipped, spec, tmp_path / "cut", train_items=tiny.train,
                         eval_items=tiny.test, resume=True)
    a, b = load_model(tmp_path / "full" / "model.npz"), load_model(tmp_path / "cut" / "model.npz")
    assert np.array_equal(a.theta, b.theta)
    assert {k: v for k, v in again.items() if k != "seconds"} == \
        {k: v for k, v in full.items() if k != "seconds"}


def test_run_one_uses_the_job_model(tmp_path, tiny) -> None:
    job = JobContext.from_model_file(SHIPPED_MODEL, tiny=True, work_dir=str(tmp_path))
    spec = RunSpec(0.3, "whole", "magnitude", pa_iters=1, finetune_iters=1)
    r = run_one(spec, job)
    assert (tmp_path / spec.key() / "result.json").exists()
    assert r["nonzero_weights"] == 3108 - round(0.3 * 3108)
    assert job.describe()["model_hash"] == load_model(SHIPPED_MODEL).hash
    assert "finetune_average" not in job.describe() and "vstoi_finetuned_mean" not in r
    avg = JobContext.from_model_file(SHIPPED_MODEL, tiny=True, work_dir=str(tmp_path / "avg"),
                                     finetune_average=1.0)
    assert avg.describe()["finetune_average"] == 1.0       # a sweep records it in sweep.json
    assert "vstoi_finetuned_mean" in run_one(spec, avg)


# ----------------------------------------------------------------------------- CLI
def test_prune_cli_json_and_report(tmp_path, run_cli, tiny) -> None:
    out = tmp_path / "p"
    res = run_cli("prune", "--rate", "0.55", "--scope", "decoder", "--method", "pa",
                  "--pa-iters", "2", "--finetune-iters", "2", "--tiny", "-o", out, "--json")
    assert res.code == 0, res.err
    d = res.json()
    for key in ("vstoi_before", "vstoi_pruned", "vstoi_finetuned", "rate", "scope", "method",
                "nonzero_weights", "eligible_weights", "nonzero_encoder", "nonzero_decoder",
                "size_bytes"):
        assert key in d
    assert d["nonzero_weights"] == 441 and d["size_bytes"] < d["dense_float32_bytes"]
    rep = run_cli("report", out, "--json")
    assert rep.code == 0, rep.err
    rows = {r["name"]: r for r in rep.json()["tensors"]}
    zeros = sum(r["size"] - r["nnz"] for r in rows.values() if r["name"].startswith("dec.")
                and r["kind"] == "weight")
    assert zeros == 539 and rep.json()["parts"]["decoder"]["nonzero_weights"] == 441
    text = run_cli("report", out)
    assert "dec.gru.W_hh" in text.out and "sparse" in text.out


@pytest.mark.parametrize("argv, needle", [
    (["--rate", "1.5", "--scope", "decoder"], "rate"),
    (["--rate", "0.5", "--scope", "nowhere"], "nowhere"),
    (["--scope", "decoder"], "--rate"),
    (["--rate", "0.5", "--method", "pa", "--pa-iters", "0"], "pa-iters"),
])
def test_prune_cli_bad_input_is_one_error_line(tmp_path, run_cli, argv, needle) -> None:
    res = run_cli("prune", *argv, "-o", tmp_path / "x")
    assert res.code != 0
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert not (tmp_path / "x").exists()


def test_prune_cli_refuses_an_existing_run_and_a_bad_model(tmp_path, run_cli) -> None:
    out = tmp_path / "p"
    assert run_cli("prune", "--rate", "0.2", "--method", "magnitude", "--pa-iters", "0",
                   "--finetune-iters", "1", "--tiny", "-o", out).code == 0
    res = run_cli("prune", "--rate", "0.2", "--method", "magnitude", "--tiny", "-o", out)
    assert res.code != 0 and "--resume" in res.err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    res = run_cli("prune", bad, "--rate", "0.2", "-o", tmp_path / "q")
    assert res.code != 0 and res.err.startswith("error:") and "bad.npz" in res.err


def test_export_cli_of_a_pruned_model_decodes_like_the_model(tmp_path, run_cli, shipped) -> None:
    from pa_ci.codec.export import read_export
    from pa_ci.codec.frae import decode, forward
    from pa_ci.codec.model_file import save_model

    cfg = FraeConfig()
    theta, keep = prune(shipped.theta, LAYOUT, "decoder", 0.9)
    model = save_model(tmp_path / "pruned.npz", theta, LAYOUT, cfg.to_dict(), mask=keep)
    res = run_cli("export", model, "-o", tmp_path / "decoder.bin", "--json")
    assert res.code == 0, res.err
    d = res.json()
    assert d["nonzero_weights"] == 980 - 882 and d["n_bytes"] == (tmp_path / "decoder.bin").stat().st_size
    assert d["n_bytes"] < 0.5 * d["dense_float32_bytes"] and d["budget_bytes"] == 32768
    loaded = read_export(tmp_path / "decoder.bin")
    rng = np.random.default_rng(0)
    pattern = np.where(rng.random((300, 22)) < 0.3, rng.random((300, 22)), 0.0)
    indices = forward(theta, cfg, pattern).indices
    ours = decode(loaded.theta, cfg, indices)
    rounded = decode(theta.astype(np.float32).astype(np.float64), cfg, indices)
    assert np.array_equal(ours, rounded)                        # float32 values: exact
    assert np.max(np.abs(ours - decode(theta, cfg, indices))) < 1e-5
    res = run_cli("export", tmp_path / "missing.npz", "-o", tmp_path / "x.bin")
    assert res.code != 0 and res.err.startswith("error:") and not (tmp_path / "x.bin").exists()


def test_train_init_from_a_pruned_model_keeps_it_pruned(tmp_path, run_cli, shipped) -> None:
    from pa_ci.codec.model_file import save_model

    theta, keep = prune(shipped.theta, LAYOUT, "whole", 0.5)
    model = save_model(tmp_path / "pruned.npz", theta, LAYOUT, FraeConfig().to_dict(), mask=keep)
    res = run_cli("train", "--init", model, "--iters", "2", "--tiny", "-o", tmp_path / "run", "--json")
    assert res.code == 0, res.err
    out = load_model(tmp_path / "run")
    assert np.array_equal(out.mask, keep) and np.all(out.theta[~keep] == 0)
    assert not np.array_equal(out.theta[keep], theta[keep])


def test_decode_with_a_decoder_export_like_a_receiver(tmp_path, run_cli, arctic_file, shipped) -> None:
    from pa_ci.codec.model_file import save_model

    stream = tmp_path / "a.frae"
    assert run_cli("encode", arctic_file, "-o", stream).code == 0
    assert run_cli("export", "-o", tmp_path / "dec.pacx").code == 0
    res = run_cli("decode", stream, "--model", tmp_path / "dec.pacx", "-o", tmp_path / "b.npz", "--json")
    assert res.code == 0, res.err
    assert res.json()["export_part"] == "decoder" and res.json()["model_hash"] == shipped.hash
    assert run_cli("decode", stream, "-o", tmp_path / "a.npz").code == 0
    a, b = (np.load(tmp_path / f"{n}.npz")["pattern"] for n in "ab")
    assert np.array_equal(a > 0, b > 0) and np.max(np.abs(a - b)) < 1e-5
    # An export of another model refuses the stream; an encoder export cannot decode.
    theta, keep = prune(shipped.theta, LAYOUT, "decoder", 0.5)
    other = save_model(tmp_path / "other.npz", theta, LAYOUT, FraeConfig().to_dict(), mask=keep)
    assert run_cli("export", other, "-o", tmp_path / "other.pacx").code == 0
    for model, needle in (("other.pacx", "error:"), ("enc.pacx", "encoder part")):
        if model == "enc.pacx":
            assert run_cli("export", "--part", "encoder", "-o", tmp_path / model).code == 0
        res = run_cli("decode", stream, "--model", tmp_path / model, "-o", tmp_path / "x.wav")
        assert res.code != 0 and res.err.startswith("error:") and needle in res.err
        assert not (tmp_path / "x.wav").exists()


def test_finetune_average_adds_the_mean_and_keeps_the_papers_figures(tmp_path, tiny, shipped) -> None:
    """Beyond the paper: the fine-tuning's iterate mean is scored beside the paper's last iterate,
    which stays the run's model and figure (a run without it gives the same ones)."""
    spec = RunSpec(0.5, "whole", "magnitude", pa_iters=0, finetune_iters=4, seed=3)
    plain = run_protocol(shipped, spec, tmp_path / "plain", train_items=tiny.train,
                         eval_items=tiny.test)
    avg = run_protocol(shipped, spec, tmp_path / "avg", train_items=tiny.train,
                       eval_items=tiny.test, finetune_average=0.5)
    for name in ("vstoi_before", "vstoi_pruned", "vstoi_finetuned", "train_vstoi_finetuned"):
        assert avg[name] == plain[name]
    assert np.array_equal(load_model(tmp_path / "avg" / "model.npz").theta,
                          load_model(tmp_path / "plain" / "model.npz").theta)
    mean = load_model(tmp_path / "avg" / "finetune" / "model.npz")
    assert mean.meta["iterate_mean"] == {"from": 2, "iterates": 2,
                                         "train_vstoi_last_iterate": plain["train_vstoi_finetuned"]}
    ev = VstoiObjective(tiny.test, FraeConfig())
    assert avg["vstoi_finetuned_mean"] == pytest.approx(ev.evaluate(mean.theta).mean(), abs=1e-12)
    assert avg["vstoi_finetuned_mean"] != avg["vstoi_finetuned"]
    assert avg["finetune_average"] == 0.5 and "vstoi_finetuned_mean" not in plain
    with pytest.raises(TrainingError, match="differ|resume|settings"):    # not the same run
        run_protocol(shipped, spec, tmp_path / "plain", train_items=tiny.train,
                     eval_items=tiny.test, resume=True, finetune_average=0.5)
    with pytest.raises(ParameterError, match="fraction"):
        run_protocol(shipped, spec, tmp_path / "bad", train_items=tiny.train,
                     eval_items=tiny.test, finetune_average=1.5)
    assert not (tmp_path / "bad").exists()
