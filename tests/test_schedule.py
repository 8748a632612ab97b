"""pa_ci.prune.schedule, .pruners, .schedule_run and `pa-ci prune --schedule`: Distiller-style
pruners and YAML schedules."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from naive.prune import naive_agp_sparsity
from pa_ci.codec.coder import SHIPPED_MODEL
from pa_ci.data.dataset import build_dataset, default_config
from pa_ci.errors import TrainingError
from pa_ci.codec.frae import FraeConfig, frae_layout
from pa_ci.train.objective import VstoiObjective
from pa_ci.codec.model_file import load_model
from pa_ci.prune.pruners import PRUNERS, agp_sparsity
from pa_ci.prune.schedule import ScheduleError, load_schedule, parse_schedule
from pa_ci.prune.schedule_run import apply_events, run_schedule

LAYOUT = frae_layout(FraeConfig())
WEIGHTS = [t.name for t in LAYOUT if t.kind == "weight"]
DISTILLER = Path(os.environ.get("PA_CI_SHARED", Path(__file__).resolve().parents[2] / "shared")) \
    / "data" / "distiller"
needs_distiller = pytest.mark.skipif(not DISTILLER.is_dir(), reason=f"no Distiller files at {DISTILLER}")


def schedule(pruners: str, policies: str, extra: str = "") -> str:
    return f"version: 1\npruners:\n{pruners}\npolicies:\n{policies}\n{extra}"


SENS = "  p1:\n    class: SensitivityPruner\n    sensitivities:\n      'dec.gru.W_hh': 0.5\n"


def policy(name: str = "p1", start: int = 0, end: int = 4, freq: int = 2) -> str:
    return (f"  - pruner:\n      instance_name: {name}\n    starting_epoch: {start}\n"
            f"    ending_epoch: {end}\n    frequency: {freq}\n")


@pytest.fixture(scope="module")
def shipped():
    return load_model(SHIPPED_MODEL)


@pytest.fixture(scope="module")
def tiny():
    return build_dataset(default_config(tiny=True))


# ----------------------------------------------------------------------------- semantics
@pytest.mark.parametrize("start,end,freq,expect", [
    (0, 4, 2, (0, 2)), (0, 5, 2, (0, 2, 4)), (3, 4, 1, (3,)), (0, 38, 2, tuple(range(0, 38, 2))),
    (2, 20, 1, tuple(range(2, 20))), (1, 3, 5, (1,))])
def test_policy_epochs_end_is_exclusive(start, end, freq, expect) -> None:
    s = parse_schedule(schedule(SENS, policy("p1", start, end, freq)), LAYOUT)
    assert s.policies[0].epochs == expect
    assert s.pruning_epochs == list(expect)
    assert [e for e in range(end + 2) if s.events(e)] == list(expect)
    assert not s.events(end)          # never at ending_epoch itself


def test_explicit_epochs_and_file_order() -> None:
    text = schedule(SENS + "  p2:\n    class: SparsityLevelParameterPruner\n    levels: {dec.out.W: 0.5}\n",
                    "  - pruner: {instance_name: p2}\n    epochs: [5, 1, 3]\n" + policy("p1", 1, 2, 1))
    s = parse_schedule(text, LAYOUT)
    assert s.policies[0].epochs == (1, 3, 5)
    assert [p.instance for p in s.events(1)] == ["p2", "p1"] and s.pruning_epochs == [1, 3, 5]


def test_agp_formula_reaches_final_exactly_at_last_event() -> None:
    # Distiller's example: start 0, end 38, frequency 2 -> events 0..36, span 36.
    events = list(range(0, 38, 2))
    levels = [agp_sparsity(0.05, 0.8, t, events[0], events[-1]) for t in events]
    assert levels[0] == 0.05 and levels[-1] == 0.8
    assert all(a < b for a, b in zip(levels, levels[1:]))
    span = (38 - 0 - 1) // 2 * 2
    for t, lv in zip(events, levels):     # Zhu & Gupta Eq. 1, written out
        assert lv == pytest.approx(naive_agp_sparsity(0.05, 0.8, t, 0, span), abs=1e-15)
    assert agp_sparsity(0.1, 0.6, 7, 7, 7) == 0.6   # a single event prunes to the final level


def test_agp_pruner_levels_on_the_real_model(shipped) -> None:
    text = schedule("  agp:\n    class: AutomatedGradualPruner\n    initial_sparsity: 0.05\n"
                    "    final_sparsity: 0.7\n    weights: [enc.gru.W_ih, dec.gru.W_hh]\n",
                    policy("agp", 2, 11, 3))           # events 2, 5, 8
    s = parse_schedule(text, LAYOUT)
    theta, keep = shipped.theta.copy(), np.ones(LAYOUT.size, dtype=bool)
    seen = []
    for epoch in range(12):
        before = keep.copy()
        theta, keep, rows = apply_events(s, theta, LAYOUT, keep, epoch)
        assert not np.any(keep & ~before)                       # masks only grow
        assert np.all(theta[~keep] == 0)
        if rows:
            seen.append(epoch)
            level = agp_sparsity(0.05, 0.7, epoch, 2, 8)
            for r in rows:
                n = LAYOUT[r["tensor"]].size
                assert r["nonzero"] == n - round(level * n)
    assert seen == [2, 5, 8]
    for name in ("enc.gru.W_ih", "dec.gru.W_hh"):
        n = LAYOUT[name].size
        assert np.count_nonzero(theta[LAYOUT[name].slice]) == n - round(0.7 * n)   # exactly final
    untouched = [t for t in LAYOUT if t.name not in ("enc.gru.W_ih", "dec.gru.W_hh")]
    for t in untouched:
        assert np.array_equal(theta[t.slice], shipped.theta[t.slice])


def test_level_pruner_counts_and_ties() -> None:
    text = schedule("  lv:\n    class: SparsityLevelParameterPruner\n    levels:\n"
                    "      dec.out.W: 0.25\n      '*': 0.1\n", policy("lv", 0, 1, 1))
    s = parse_schedule(text, LAYOUT)
    assert set(s.pruners["lv"].tensors) == set(WEIGHTS)      # '*': every matrix weight, no biases
    theta = np.ones(LAYOUT.size)                                # all ties
    theta, keep, rows = apply_events(s, theta, LAYOUT, np.ones(LAYOUT.size, dtype=bool), 0)
    w = theta[LAYOUT["dec.out.W"].slice]
    k = round(0.25 * w.size)
    assert np.all(w[:k] == 0) and np.all(w[k:] == 1)            # ties: lower index first
    for t in LAYOUT:
        if t.kind != "weight":
            assert np.all(theta[t.slice] == 1)


def test_sensitivity_pruner_caches_std_of_first_pruning() -> None:
    rng = np.random.default_rng(3)
    theta = rng.standard_normal(LAYOUT.size)
    s = parse_schedule(schedule(SENS, policy("p1", 0, 2, 1)), LAYOUT)
    sl = LAYOUT["dec.gru.W_hh"].slice
    std0 = np.std(theta[sl], ddof=1)
    t1, keep, rows = apply_events(s, theta, LAYOUT, np.ones(LAYOUT.size, dtype=bool), 0)
    assert np.array_equal(keep[sl], np.abs(theta[sl]) > 0.5 * std0)
    assert s.pruners["p1"].std["dec.gru.W_hh"] == pytest.approx(std0)
    # The weights shrink (as if training moved them); the threshold stays 0.5 x std0.
    t1[sl] *= 0.5
    t2, keep2, _ = apply_events(s, t1, LAYOUT, keep, 1)
    assert np.array_equal(keep2[sl], keep[sl] & (np.abs(t1[sl]) > 0.5 * std0))
    assert (~keep2[sl]).sum() > (~keep[sl]).sum()              # the fixed threshold "traps" more
    s.reset()
    assert s.pruners["p1"].std == {}


def test_star_never_prunes_biases_but_they_may_be_named() -> None:
    text = schedule("  p:\n    class: MagnitudeParameterPruner\n    thresholds:\n"
                    "      dec.out.b: 0.5\n      '*': 0.1\n", policy("p", 0, 1, 1))
    s = parse_schedule(text, LAYOUT)
    assert s.pruners["p"].tensors == tuple(t.name for t in LAYOUT
                                           if t.kind == "weight" or t.name == "dec.out.b")


def test_lr_scheduler_factors() -> None:
    extra = ("lr_schedulers:\n  decay: {class: ExponentialLR, gamma: 0.5}\n"
             "  steps: {class: MultiStepLR, milestones: [2], gamma: 0.1}\n")
    pol = policy() + ("  - lr_scheduler: {instance_name: decay}\n    starting_epoch: 1\n"
                      "    ending_epoch: 4\n  - lr_scheduler: {instance_name: steps}\n"
                      "    epochs: [0, 1, 2, 3]\n")
    s = parse_schedule(schedule(SENS, pol, extra), LAYOUT)
    # decay steps at the ends of epochs 1, 2, 3; MultiStepLR (steps at the ends of 0..3) drops
    # x0.1 once 2 steps have been taken, as PyTorch's (bisect_right(milestones, steps)).
    expect = {0: 1.0, 1: 1.0, 2: 0.5 * 0.1, 3: 0.25 * 0.1, 4: 0.125 * 0.1, 5: 0.125 * 0.1}
    for e, f in expect.items():
        assert s.lr_factor(e) == pytest.approx(f)


# ----------------------------------------------------------------------------- errors
def error_of(text: str) -> str:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(text, LAYOUT, "s.yaml")
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


@pytest.mark.parametrize("text,needle,words", [
    (schedule(SENS, policy(freq=0)), "frequency: 0", ["frequency", "integer in 1..100000"]),
    (schedule(SENS, policy(start=4, end=4)), "ending_epoch: 4", ["ending_epoch", "exclusive"]),
    (schedule(SENS, policy(start=5, end=3)), "ending_epoch: 3", ["ending_epoch 3 <= starting_epoch 5"]),
    (schedule(SENS, policy(name="p9")), "instance_name: p9", ["'p9' is not defined"]),
    (schedule(SENS.replace("dec.gru.W_hh", "no.such.tensor"), policy()), "no.such.tensor",
     ["'no.such.tensor'", "dec.gru.W_hh"]),
    (schedule(SENS.replace("sensitivities", "sensitivity"), policy()), "sensitivity:",
     ["unknown key 'sensitivity'"]),
    (schedule(SENS, policy()) + "regularizers: {}\n", "regularizers", ["not supported"]),
    (schedule(SENS, policy()) + "lr_scheduler: {}\n", "lr_scheduler:", ["unknown key 'lr_scheduler'"]),
    (schedule(SENS.replace("SensitivityPruner", "BaiduRNNPruner"), policy()), "BaiduRNNPruner",
     ["does not implement"]),
    (schedule(SENS.replace("SensitivityPruner", "os.system"), policy()), "os.system",
     ["not a pruner class"]),
    (schedule(SENS.replace("0.5", "-1"), policy()), "-1", ["number >= 0"]),
    (schedule(SENS.replace("dec.gru.W_hh", "codebook"), policy()), "codebook", ["codebook cannot"]),
    (schedule(SENS, policy() + "    epochs: [1]\n"), "starting_epoch", ["cannot be combined"]),
    (schedule(SENS, policy().replace("    starting_epoch: 0\n", "")), "- pruner", ["starting_epoch"]),
    (schedule(SENS, policy().replace("instance_name: p1", "instance_name: p1\n      args: {}")),
     "args", ["args"]),
    (schedule(SENS, policy(), "pa_ci: {epochs: 2}\n"), "pa_ci", ["fires at epoch 2"]),
    ("version: 2\n" + schedule(SENS, policy())[11:], "version", ["version 2"]),
    (schedule("  agp:\n    class: AutomatedGradualPruner\n    initial_sparsity: 0.5\n"
              "    final_sparsity: 0.5\n    weights: [dec.out.W]\n", policy("agp")),
     "final_sparsity", ["larger than initial"]),
    (schedule("  agp:\n    class: AutomatedGradualPruner\n    initial_sparsity: 0.1\n"
              "    final_sparsity: 0.5\n    weights: [dec.out.W, rnn.weight_hh_l0]\n", policy("agp")),
     "weights", ["rnn.weight_hh_l0"]),
    (schedule(SENS.replace("class: SensitivityPruner", "class: [a]"), policy()), "class:",
     ["class is ['a']"]),
    (schedule(SENS, policy(name="[p1]")), "instance_name", ["['p1'] is not defined"]),
    (schedule(SENS, policy(), "lr_schedulers:\n  d: {class: {a: 1}, gamma: 1}\n"), "  d:",
     ["class {'a': 1}"]),
    (schedule(SENS, policy()).replace("      'dec.gru.W_hh': 0.5\n",
                                      "      'dec.gru.W_hh': 0.5\n      'dec.gru.W_hh': 0.6\n"),
     "0.6", ["duplicate"]),
])
def test_errors_name_the_line_and_the_problem(text, needle, words) -> None:
    msg = error_of(text)
    m = re.match(r"s\.yaml:(\d+): ", msg)
    assert m, msg
    assert int(m.group(1)) == line_of(text, needle), msg
    for w in words:
        assert w in msg, msg


def test_unused_pruner_is_a_warning_with_its_line() -> None:
    text = schedule(SENS + "  spare:\n    class: SparsityLevelParameterPruner\n    levels: {dec.out.W: 0.5}\n",
                    policy())
    s = parse_schedule(text, LAYOUT, "s.yaml")
    assert s.warnings == [f"s.yaml:{line_of(text, 'spare:')}: 'spare' is defined but no policy uses it"]


def test_registry_is_explicit() -> None:
    assert set(PRUNERS) == {"SensitivityPruner", "SparsityLevelParameterPruner",
                            "AutomatedGradualPruner", "MagnitudeParameterPruner"}


# ----------------------------------------------------------------------------- Distiller's files
@needs_distiller
@pytest.mark.parametrize("name,unknown,needle", [
    ("alexnet.schedule_sensitivity.yaml", "features.module.0.weight", "'features.module.0.weight':"),
    ("word_lang_model.schedule_agp.yaml", "rnn.weight_ih_l0", "[rnn.weight_ih_l0")])
def test_real_distiller_files_are_refused_naming_their_tensors(name, unknown, needle) -> None:
    text = (DISTILLER / name).read_text()
    with pytest.raises(ScheduleError) as info:
        load_schedule(DISTILLER / name, LAYOUT)
    msg = str(info.value)
    assert unknown in msg and msg.startswith(f"{DISTILLER / name}:{line_of(text, needle)}:")


@needs_distiller
def test_real_distiller_baidu_file_is_refused_by_class() -> None:
    with pytest.raises(ScheduleError, match="BaiduRNNPruner.*does not implement"):
        load_schedule(DISTILLER / "word_lang_model.schedule_baidu_rnn.yaml", LAYOUT)


@needs_distiller
def test_real_distiller_files_with_our_tensor_names_load_unchanged(tmp_path) -> None:
    # Only the tensor names change; comments, quoting, lr_schedulers and policies stay as written.
    alex = (DISTILLER / "alexnet.schedule_sensitivity.yaml").read_text()
    ours = dict(zip(["features.module.0.weight", "features.module.3.weight",
                     "features.module.6.weight", "features.module.8.weight",
                     "features.module.10.weight", "classifier.1.weight", "classifier.4.weight",
                     "classifier.6.weight"],
                    WEIGHTS + ["dec.out.b", "dec.gru.b_hh"]))
    for old, new in ours.items():
        alex = alex.replace(f"'{old}'", f"'{new}'")
    (tmp_path / "alex.yaml").write_text(alex)
    s = load_schedule(tmp_path / "alex.yaml", LAYOUT)
    assert s.pruning_epochs == list(range(0, 38, 2))
    assert s.pruners["pruner1"].sensitivities["dec.out.W"] == 0.875
    assert s.lr_factor(24) == 1.0 and s.lr_factor(26) == pytest.approx(0.9 ** 2)

    agp = (DISTILLER / "word_lang_model.schedule_agp.yaml").read_text()
    for old, new in (("rnn.weight_ih_l0", "enc.gru.W_ih"), ("rnn.weight_hh_l0", "enc.gru.W_hh"),
                     ("rnn.weight_ih_l1", "dec.gru.W_ih"), ("rnn.weight_hh_l1", "dec.gru.W_hh"),
                     ("encoder.weight", "dec.out.W")):
        agp = agp.replace(old, new)
    s = parse_schedule(agp, LAYOUT)
    assert [p.epochs for p in s.policies] == [tuple(range(2, 20))] * 2 + [tuple(range(3, 21))]
    assert s.pruners["embedding_pruner"].final_sparsity == 0.9
    assert s.pruning_epochs[-1] == 20


# ----------------------------------------------------------------------------- running
def small_schedule(tmp_path: Path) -> Path:
    text = ("version: 1\npruners:\n  sens:\n    class: SensitivityPruner\n    sensitivities:\n"
            "      dec.gru.W_hh: 0.6\n  agp:\n    class: AutomatedGradualPruner\n"
            "    initial_sparsity: 0.2\n    final_sparsity: 0.5\n    weights: [enc.gru.W_ih]\n"
            "policies:\n  - pruner: {instance_name: sens}\n    starting_epoch: 0\n"
            "    ending_epoch: 2\n    frequency: 1\n  - pruner: {instance_name: agp}\n"
            "    epochs: [0, 2]\npa_ci:\n  iterations_per_epoch: 2\n")
    path = tmp_path / "small.yaml"
    path.write_text(text)
    return path


def test_run_schedule_prunes_fine_tunes_and_resumes(tmp_path, tiny, shipped) -> None:
    sched = load_schedule(small_schedule(tmp_path), shipped.layout)
    run = tmp_path / "run"
    kw = dict(train_items=tiny.train, eval_items=tiny.test, batch_size=2, seed=4)
    r = run_schedule(shipped, sched, run, **kw)
    assert r["epochs"] == 3 and r["iterations_per_epoch"] == 2 and r["pruning_epochs"] == [0, 1, 2]
    assert [p["epochs"] for p in r["policies"]] == [[0, 1], [0, 2]]
    assert r["policies"][0]["ending_epoch"] == 2 and "ending_epoch" not in r["policies"][1]
    final = load_model(run / "model.npz")
    ev = VstoiObjective(tiny.test, FraeConfig())
    assert r["vstoi_final"] == pytest.approx(ev.evaluate(final.theta).mean(), abs=1e-12)
    assert np.all(final.theta[~final.mask] == 0)
    w = LAYOUT["enc.gru.W_ih"]
    assert np.count_nonzero(final.theta[w.slice]) == w.size - round(0.5 * w.size)   # AGP final
    assert r["tensors"]["enc.gru.W_ih"]["nonzero"] == w.size - round(0.5 * w.size)
    # The gain index runs on across epochs: epoch 1 logs k = 2, 3.
    log = (run / "epochs" / "001" / "log.csv").read_text().splitlines()
    assert [ln.split(",")[0] for ln in log[1:]] == ["2", "3"]
    epochs = (run / "epochs.csv").read_text().splitlines()
    assert len(epochs) == 4 and epochs[0].startswith("epoch,")
    assert (run / "schedule.yaml").read_text() == sched.text

    # Interrupt during epoch 1, resume: bit-identical to the uninterrupted run (the events are
    # replayed, so the sensitivity pruner's std is the one of epoch 0).
    run2 = tmp_path / "run2"

    def interrupt(epoch, n, ipe):
        def cb(done, total, info):
            if epoch == 1 and done == 1:
                raise KeyboardInterrupt
        return cb

    with pytest.raises(KeyboardInterrupt):
        run_schedule(shipped, sched, run2, progress=interrupt, **kw)
    assert not (run2 / "model.npz").exists()
    r2 = run_schedule(shipped, sched, run2, resume=True, **kw)
    assert np.array_equal(load_model(run2 / "model.npz").theta, final.theta)
    assert r2["vstoi_final"] == r["vstoi_final"]
    with pytest.raises(TrainingError, match="resume"):
        run_schedule(shipped, sched, run2, **kw)
    with pytest.raises(TrainingError, match="seed"):
        run_schedule(shipped, sched, run2, resume=True, **{**kw, "seed": 5})


def test_zero_iterations_is_one_shot_pruning(tmp_path, tiny, shipped) -> None:
    sched = load_schedule(small_schedule(tmp_path), shipped.layout)
    r = run_schedule(shipped, sched, tmp_path / "run", train_items=tiny.train, eval_items=tiny.test,
                     iterations_per_epoch=0)
    theta, keep = shipped.theta.copy(), np.ones(LAYOUT.size, dtype=bool)
    for e in range(3):
        theta, keep, _ = apply_events(sched, theta, LAYOUT, keep, e)
    assert np.array_equal(load_model(tmp_path / "run" / "model.npz").theta, theta)
    assert not (tmp_path / "run" / "epochs").exists() and r["iterations_per_epoch"] == 0


# ----------------------------------------------------------------------------- CLI
def test_cli_prune_schedule(tmp_path, run_cli) -> None:
    path = small_schedule(tmp_path)
    r = run_cli("prune", "--schedule", path, "--epoch-iters", "1", "--batch-size", "2", "--tiny",
                "-o", tmp_path / "out", "--json")
    assert r.code == 0, r.err
    d = r.json()
    assert d["epochs"] == 3 and d["iterations_per_epoch"] == 1
    assert d["size_bytes"] == (tmp_path / "out" / "whole.pacx").stat().st_size
    r = run_cli("prune", "--schedule", path, "--epoch-iters", "0", "--tiny", "-o", tmp_path / "o2")
    assert r.code == 0, r.err
    assert re.search(r"epoch +2: pruned \d\.\d{4}  VSTOI", r.err)         # per-epoch progress
    assert "after the schedule" in r.out and "enc.gru.W_ih" in r.out


def test_cli_schedule_command_is_prune_schedule(tmp_path, run_cli) -> None:
    path = small_schedule(tmp_path)
    a = run_cli("schedule", path, "--epoch-iters", "0", "--tiny", "-o", tmp_path / "a", "--json")
    b = run_cli("prune", "--schedule", path, "--epoch-iters", "0", "--tiny", "-o", tmp_path / "b",
                "--json")
    assert a.code == 0 and b.code == 0, a.err + b.err
    da, db = a.json(), b.json()
    different = {"seconds", "model", "export", "schedule_file"}
    assert {k: v for k, v in da.items() if k not in different} == \
        {k: v for k, v in db.items() if k not in different}
    assert da["export"] == str(tmp_path / "a" / "whole.pacx") and Path(da["export"]).is_file()
    r = run_cli("schedule", tmp_path / "missing.yaml", "--tiny", "-o", tmp_path / "c")
    assert r.code != 0 and "missing.yaml" in r.err and len(r.err.strip().splitlines()) == 1


def test_cli_prune_schedule_errors(tmp_path, run_cli) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(schedule(SENS.replace("dec.gru.W_hh", "no.such.tensor"), policy()))
    r = run_cli("prune", "--schedule", bad, "-o", tmp_path / "o")
    assert r.code != 0 and "Traceback" not in r.err
    assert r.err.startswith(f"error: {bad}:6:") and "no.such.tensor" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    r = run_cli("prune", "--schedule", tmp_path / "missing.yaml", "-o", tmp_path / "o")
    assert r.code != 0 and "missing.yaml" in r.err and "Traceback" not in r.err
    r = run_cli("prune", "--schedule", bad, "--rate", "0.5", "-o", tmp_path / "o")
    assert r.code != 0 and "--rate" in r.err and "--schedule" in r.err
    r = run_cli("prune", "--rate", "0.5", "--epochs", "3", "-o", tmp_path / "o")
    assert r.code != 0 and "--epochs needs --schedule" in r.err
    (tmp_path / "tab.yaml").write_text("version: 1\npruners:\n\tp: 1\n")
    r = run_cli("prune", "--schedule", tmp_path / "tab.yaml", "-o", tmp_path / "o")
    assert r.code != 0 and "tab.yaml:3" in r.err and "Traceback" not in r.err


def test_cli_result_json_matches_file(tmp_path, run_cli) -> None:
    path = small_schedule(tmp_path)
    r = run_cli("prune", "--schedule", path, "--epoch-iters", "0", "--tiny", "-o", tmp_path / "out",
                "--json")
    assert r.code == 0, r.err
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    d = r.json()
    assert {k: d[k] for k in saved if k != "seconds"} == {k: v for k, v in saved.items() if k != "seconds"}


def test_fuzzed_schedules_parse_or_raise_schedule_error() -> None:
    """Any text gives a Schedule or one ScheduleError line, never another exception."""
    base = schedule(SENS + "  agp:\n    class: AutomatedGradualPruner\n    initial_sparsity: 0.05\n"
                    "    final_sparsity: 0.7\n    weights: [enc.gru.W_ih]\n",
                    policy() + "  - pruner: {instance_name: agp}\n    epochs: [1, 3]\n",
                    "lr_schedulers:\n  d: {class: StepLR, step_size: 2, gamma: 0.5}\n"
                    "pa_ci: {iterations_per_epoch: 10, epochs: 5}\n")
    parse_schedule(base, LAYOUT)
    rng = np.random.default_rng(0)
    tokens = ["[a, b]", "{x: 1}", "-1", "0", "1.5", "true", "null", "'*'", "codebook", "p1", "agp",
              "class", "StepLR", "epochs", ":", "- ", "  ", "\n", "[", "]", "{", "}", "#", "'", "2.0e+3"]
    accepted = 0
    for _ in range(1500):
        text = base
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(text)))
            j = i + int(rng.integers(0, 12))
            text = text[:i] + str(rng.choice(tokens)) + text[j:]
        try:
            parse_schedule(text, LAYOUT, "f.yaml")
            accepted += 1
        except ScheduleError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("f.yaml")
    assert 0 < accepted < 1500
