"""pa_ci.prune.sensitivity: per-tensor sensitivity analysis (Distiller §2.5) and its proposals."""
from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from naive.prune import naive_mask, naive_pruned
from pa_ci.codec.coder import SHIPPED_MODEL
from pa_ci.errors import PaCiError, ParameterError
from pa_ci.codec.layout import Layout
from pa_ci.codec.model_file import load_model
from pa_ci.prune.sensitivity import (CSV_HEADER, SensitivityRow, analyze, level_mask, plot,
                               propose_levels, propose_sensitivities, read_csv, schedule_yaml,
                               sparsity_levels, tensor_std, threshold_mask, write_csv)

SMALL = Layout([("a.W", (3, 4), "encoder", "weight"), ("a.b", (3,), "encoder", "bias"),
                ("b.W", (2, 5), "decoder", "weight")])


@pytest.fixture(scope="module")
def shipped():
    return load_model(SHIPPED_MODEL)


# --------------------------------------------------------------------------- level_mask
@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([-2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0, 3.0]),
                min_size=SMALL.size, max_size=SMALL.size),
       st.sampled_from(["a.W", "a.b", "b.W"]), st.floats(0.0, 1.0))
def test_level_mask_matches_naive_oracle_with_ties_and_zeros(values, name, level) -> None:
    theta = np.array(values)
    keep = level_mask(theta, SMALL, name, level)
    assert keep.dtype == bool and keep.shape == (SMALL.size,)
    assert np.array_equal(keep, naive_mask(theta, SMALL, name, level))
    spec = SMALL[name]
    outside = np.ones(SMALL.size, dtype=bool)
    outside[spec.slice] = False
    assert keep[outside].all()                                   # only the named tensor changes
    assert (~keep).sum() == round(level * spec.size)             # exact count, Python round


def test_level_mask_counts_nesting_and_zeros_first(shipped) -> None:
    theta, layout = shipped.theta.copy(), shipped.layout
    spec = layout["dec.gru.W_hh"]
    w = theta[spec.slice]
    w[[5, 100, 400]] = 0.0                                      # pre-zeroed: pruned first
    prev = np.ones(layout.size, dtype=bool)
    for level in sparsity_levels(0.0, 1.0, 0.05):
        keep = level_mask(theta, layout, "dec.gru.W_hh", level)
        assert (~keep).sum() == round(level * spec.size)
        assert np.all(prev >= keep)                              # masks nest as the level grows
        if level >= 0.01:
            assert not keep[spec.offset + np.array([5, 100, 400])].any()
        prev = keep
    # Python's round (banker's): 0.5 * 84 = 42 exactly; 0.125 * 84 = 10.5 -> 10
    assert (~level_mask(theta, layout, "dec.gru.W_ih", 0.125)).sum() == 10


def test_level_mask_errors() -> None:
    theta = np.arange(SMALL.size, dtype=float)
    with pytest.raises(ParameterError, match=r"'nope'.*a\.W, a\.b, b\.W"):
        level_mask(theta, SMALL, "nope", 0.5)
    for bad in (-0.1, 1.5, "x", float("nan")):
        with pytest.raises(ParameterError, match="rate"):
            level_mask(theta, SMALL, "a.W", bad)
    with pytest.raises(ParameterError, match="shape"):
        level_mask(theta[:-1], SMALL, "a.W", 0.5)


# --------------------------------------------------------------------------- sparsity_levels
def test_sparsity_levels_include_stop_on_grid() -> None:
    assert sparsity_levels(0, 0.9, 0.3) == [0.0, 0.3, 0.6, 0.9]
    lv = sparsity_levels(0.0, 0.95, 0.05)
    assert len(lv) == 20 and lv[-1] == 0.95 and lv[6] == 0.3 and lv[0] == 0.0
    assert lv == [round(i * 0.05, 10) for i in range(20)]
    assert sparsity_levels(0.0, 0.9, 0.4) == [0.0, 0.4, 0.8]      # off-grid stop: like arange
    assert sparsity_levels(0.5, 0.5, 0.1) == [0.5]
    assert sparsity_levels(0.1, 1.0, 0.1)[-1] == 1.0
    assert len(sparsity_levels(0.1, 1.0, 0.1)) == 10


@pytest.mark.parametrize("args,match", [((0.5, 0.2, 0.1), "above stop"), ((0, 0.9, 0), "step"),
                                        ((0, 0.9, -0.1), "step"), ((-0.1, 0.5, 0.1), r"\[0, 1\]"),
                                        ((0, 1.2, 0.1), r"\[0, 1\]"), ((0, "x", 0.1), "stop"),
                                        ((0, 1, float("nan")), "step"), ((0, 1, 1e-9), "levels")])
def test_sparsity_levels_errors(args, match) -> None:
    with pytest.raises(ParameterError, match=match):
        sparsity_levels(*args)


# --------------------------------------------------------------------------- analyze
def random_theta(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(SMALL.size)


def test_analyze_with_a_hand_computable_metric() -> None:
    theta = random_theta()
    theta0 = theta.copy()
    levels = sparsity_levels(0, 1, 0.1)                          # 11 levels: chunks of 8 + 3
    calls: list[int] = []

    def metric(th: np.ndarray) -> float:
        return float(-np.sum((th - theta0) ** 2))

    def batch(ths: np.ndarray) -> np.ndarray:
        calls.append(len(ths))
        return -np.sum((ths - theta0) ** 2, axis=1)

    progress: list[tuple[int, int]] = []
    rows = analyze(theta, SMALL, None, levels, batch_metric=batch,
                   progress=lambda d, t, info: progress.append((d, t)))
    assert np.array_equal(theta, theta0)                         # not modified
    assert [r.tensor for r in rows] == ["a.W"] * 11 + ["b.W"] * 11  # default: weights, layout order
    assert calls == [8, 3, 8, 3]
    assert progress == [(8, 22), (11, 22), (19, 22), (22, 22)]
    for r in rows:
        spec = SMALL[r.tensor]
        vals = [float(x) for x in theta[spec.slice]]
        k = round(r.sparsity * spec.size)
        gone = naive_pruned(vals, k)
        assert r.metric == pytest.approx(-sum(vals[i] ** 2 for i in gone), abs=1e-12)
        assert r.nonzero == spec.size - k and r.size == spec.size
    assert [r.sparsity for r in rows[:11]] == levels
    # The one-vector metric gives the same rows; batch_metric wins when both are given.
    assert analyze(theta, SMALL, metric, levels) == rows
    assert analyze(theta, SMALL, lambda th: 1.0, levels, batch_metric=batch) == rows


def test_analyze_prunes_only_the_named_tensor() -> None:
    theta = random_theta(1)
    seen = []

    def metric(th: np.ndarray) -> float:
        seen.append(th.copy())
        zeros = np.count_nonzero(th[SMALL["b.W"].slice] == 0)
        th[:] = 7.0                                              # scribbling on it is harmless
        return float(zeros)

    rows = analyze(theta, SMALL, metric, [0.0, 0.5, 0.3], tensors=["b.W", "a.b"])
    assert [(r.tensor, r.sparsity, r.metric) for r in rows] == [
        ("b.W", 0.0, 0.0), ("b.W", 0.5, 5.0), ("b.W", 0.3, 3.0),
        ("a.b", 0.0, 0.0), ("a.b", 0.5, 0.0), ("a.b", 0.3, 0.0)]
    assert [r.nonzero for r in rows] == [10, 5, 7, 3, 1, 2]       # round(1.5) = 2, round(0.9) = 1
    for th, r in zip(seen, rows):
        assert np.array_equal(th, np.where(level_mask(theta, SMALL, r.tensor, r.sparsity), theta, 0.0))
    assert analyze(theta, SMALL, metric, [0.5], tensors="b.W")[0].metric == 5.0


def test_analyze_errors() -> None:
    theta = random_theta()
    ok = lambda th: 1.0  # noqa: E731
    with pytest.raises(ParameterError, match=r"'dec\.nope'.*a\.W, a\.b, b\.W"):
        analyze(theta, SMALL, ok, [0.5], tensors=["a.W", "dec.nope"])
    with pytest.raises(ParameterError, match=r"tensor b\.W .*sparsity 0\.5 .*nan"):
        analyze(theta, SMALL, lambda th: float("nan") if np.count_nonzero(
            th[SMALL["b.W"].slice] == 0) == 5 else 0.5, [0.0, 0.5])
    with pytest.raises(ParameterError, match=r"tensor a\.W .*sparsity 0\.2"):
        analyze(theta, SMALL, None, [0.2], batch_metric=lambda ths: np.full(len(ths), np.inf))
    with pytest.raises(ParameterError, match=r"tensor a\.W .*'bad'"):
        analyze(theta, SMALL, lambda th: "bad", [0.2])
    with pytest.raises(ParameterError, match="shape"):
        analyze(theta, SMALL, None, [0.2, 0.4], batch_metric=lambda ths: np.zeros(1))
    with pytest.raises(ParameterError, match="twice"):
        analyze(theta, SMALL, ok, [0.2, 0.2])
    with pytest.raises(ParameterError, match="at least one"):
        analyze(theta, SMALL, ok, [])
    with pytest.raises(ParameterError, match="rate"):
        analyze(theta, SMALL, ok, [1.2])
    with pytest.raises(ParameterError, match="metric"):
        analyze(theta, SMALL, None, [0.2])


# --------------------------------------------------------------------------- CSV and figure
ROWS = [SensitivityRow("enc.gru.W_ih", 0.0, 0.612345, 1512, 1512),
        SensitivityRow("enc.gru.W_ih", 0.3, 0.6, 1058, 1512),
        SensitivityRow("dec.out.W", 0.0, 0.612345, 308, 308),
        SensitivityRow("dec.out.W", 0.95, -0.05, 15, 308)]


def test_csv_round_trip(tmp_path) -> None:
    path = tmp_path / "sens" / "sensitivity.csv"
    write_csv(ROWS, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "tensor,sparsity,metric,nonzero,size" == ",".join(CSV_HEADER)
    assert lines[2] == "enc.gru.W_ih,0.3,0.600000,1058,1512"
    assert lines[4] == "dec.out.W,0.95,-0.050000,15,308"
    assert read_csv(path) == ROWS
    assert sorted(p.name for p in path.parent.iterdir()) == ["sensitivity.csv"]
    rows = [SensitivityRow("x", 0.1 + 0.2, 1 / 3, 1, 2)]     # float drift survives the trip
    write_csv(rows, path)
    back = read_csv(path)[0]
    assert back.sparsity == 0.1 + 0.2 and back.metric == 0.333333


@pytest.mark.parametrize("text,match", [("a,b\n", "header"), ("", "header"),
                                        ("tensor,sparsity,metric,nonzero,size\nx,0.5,0.1,3\n", "line 2"),
                                        ("tensor,sparsity,metric,nonzero,size\nx,1.5,0.1,3,4\n", "line 2"),
                                        ("tensor,sparsity,metric,nonzero,size\nx,0.5,nan,3,4\n", "line 2"),
                                        ("tensor,sparsity,metric,nonzero,size\nx,0.5,0.1,5,4\n", "line 2")])
def test_read_csv_errors(tmp_path, text, match) -> None:
    path = tmp_path / "s.csv"
    path.write_text(text)
    with pytest.raises(PaCiError, match=match):
        read_csv(path)
    with pytest.raises(PaCiError, match="no such"):
        read_csv(tmp_path / "missing.csv")


def test_plot_writes_a_png(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "sensitivity.png"
    plot(ROWS, path, reference=0.612345)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    plot(ROWS, path, metric_name="loss")                       # overwrite, no reference
    assert [p.name for p in tmp_path.iterdir()] == ["sensitivity.png"]
    with pytest.raises(ParameterError, match="no sensitivity rows"):
        plot([], tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


# --------------------------------------------------------------------------- proposals
def curve(name: str, pts: list[tuple[float, float]]) -> list[SensitivityRow]:
    return [SensitivityRow(name, s, m, 0, 10) for s, m in pts]


def test_propose_levels() -> None:
    rows = (curve("flat", [(0.6, 0.79), (0.0, 0.80), (0.3, 0.80), (0.9, 0.785)])      # unsorted
            + curve("bumpy", [(0.0, 0.80), (0.2, 0.79), (0.4, 0.70), (0.6, 0.79)])    # non-monotone
            + curve("fragile", [(0.0, 0.80), (0.1, 0.5)]))
    assert propose_levels(rows, 0.02) == {"flat": 0.9, "bumpy": 0.2, "fragile": 0.0}
    assert propose_levels(rows, 0.0) == {"flat": 0.3, "bumpy": 0.0, "fragile": 0.0}
    assert propose_levels(rows, 1.0) == {"flat": 0.9, "bumpy": 0.6, "fragile": 0.1}
    # An explicit reference replaces the sparsity-0 rows.
    assert propose_levels(rows, 0.0, reference=0.79) == {"flat": 0.6, "bumpy": 0.2, "fragile": 0.0}
    assert propose_levels(rows, 0.0, reference=0.81) == {"flat": 0.0, "bumpy": 0.0, "fragile": 0.0}
    no_zero = curve("t", [(0.5, 0.7), (0.7, 0.69)])
    with pytest.raises(ParameterError, match="sparsity 0"):
        propose_levels(no_zero, 0.05)
    assert propose_levels(no_zero, 0.05, reference=0.72) == {"t": 0.7}
    assert propose_levels(no_zero, 0.005, reference=0.72) == {"t": 0.0}
    for bad in (-0.1, float("nan"), "x"):
        with pytest.raises(ParameterError, match="tolerance"):
            propose_levels(rows, bad)
    with pytest.raises(ParameterError, match="two rows"):
        propose_levels(curve("t", [(0.0, 0.8), (0.0, 0.7)]), 0.1)


def test_tensor_std_is_the_sample_std(shipped) -> None:
    for name in ("enc.latent.W", "dec.gru.W_ih"):
        vals = [float(x) for x in shipped.layout.view(shipped.theta, name).ravel()]
        assert tensor_std(shipped.theta, shipped.layout, name) == pytest.approx(statistics.stdev(vals),
                                                                               rel=1e-12)
    with pytest.raises(ParameterError, match="at least 2"):
        tensor_std(np.ones(2), Layout([("x", (1,), "encoder", "weight"),
                                       ("y", (1,), "encoder", "weight")]), "x")


@pytest.mark.parametrize("name", ["enc.gru.W_ih", "enc.latent.W", "dec.gru.W_ih", "dec.out.W"])
def test_propose_sensitivities_prune_exactly_the_level(shipped, name) -> None:
    theta, layout = shipped.theta, shipped.layout
    w = np.abs(layout.view(theta, name).ravel())
    sd = statistics.stdev(float(x) for x in layout.view(theta, name).ravel())
    levels = [0.0, 0.1, 0.25, 0.37, 0.5, 0.73, 0.9, 1.0]
    for level in levels:
        s = propose_sensitivities(theta, layout, {name: level})[name]
        k = round(level * w.size)
        assert s >= 0 and np.count_nonzero(w <= s * tensor_std(theta, layout, name)) == k
        assert np.count_nonzero(w <= s * sd) == k                   # independent std oracle
        keep = threshold_mask(theta, layout, name, s)
        # no ties in the shipped weights: the threshold prunes the magnitude-pruning set
        assert np.array_equal(keep, level_mask(theta, layout, name, level))
        assert len(repr(s)) <= 12                                   # a short decimal
    sens = propose_sensitivities(theta, layout, {name: 0.5, "dec.gru.W_hh": 0.2})
    assert set(sens) == {name, "dec.gru.W_hh"}
    with pytest.raises(ParameterError, match="unknown tensor"):
        propose_sensitivities(theta, layout, {"nope": 0.5})
    with pytest.raises(ParameterError, match="rate"):
        propose_sensitivities(theta, layout, {name: 2.0})


def test_propose_sensitivities_with_zeros_and_ties() -> None:
    theta = np.array([0.0, 0.0, 1.0, 1.0, 2.0, 3.0, -3.0, 4.0])
    lay = Layout([("w", (8,), "encoder", "weight")])
    sd = tensor_std(theta, lay, "w")
    for level, expect in ((0.0, 2), (0.25, 2), (0.375, 4), (0.5, 4), (0.625, 5), (0.75, 7), (1.0, 8)):
        s = propose_sensitivities(theta, lay, {"w": level})["w"]
        assert np.count_nonzero(np.abs(theta) <= s * sd) == expect, level   # ties all go
    with pytest.raises(ParameterError, match="std"):
        propose_sensitivities(np.full(8, 2.0), lay, {"w": 0.5})


def test_schedule_yaml_loads_to_the_distiller_structure(shipped) -> None:
    yaml = pytest.importorskip("yaml")
    sens = propose_sensitivities(shipped.theta, shipped.layout,
                                 {n: 0.3 + 0.1 * i for i, n in enumerate(
                                     ["enc.gru.W_ih", "enc.gru.W_hh", "dec.out.W"])})
    sens["it's.W"] = 1 / 3                                            # quote escaping, long value
    text = schedule_yaml(sens, starting_epoch=2, ending_epoch=10, frequency=4,
                         comment="pa-ci sensitivity --tolerance 0.01\nreference VSTOI 0.61")
    assert text.startswith("# pa-ci sensitivity --tolerance 0.01\n# reference VSTOI 0.61\n")
    assert "'enc.gru.W_ih': " in text and "'it''s.W': 0.3333333333333333" in text
    doc = yaml.safe_load(text)
    assert doc == {"version": 1,
                   "pruners": {"sensitivity_pruner": {"class": "SensitivityPruner",
                                                      "sensitivities": sens}},
                   "policies": [{"pruner": {"instance_name": "sensitivity_pruner"},
                                 "starting_epoch": 2, "ending_epoch": 10, "frequency": 4}]}
    printed = {ln.split("'")[1]: ln.split(": ")[1] for ln in text.splitlines() if ln.startswith("      '")}
    short = [n for n in ("enc.gru.W_ih", "enc.gru.W_hh", "dec.out.W") if round(sens[n], 4) == sens[n]]
    assert short and all(printed[n] == f"{sens[n]:.4f}" for n in short)   # 4 decimals when exact
    small = yaml.safe_load(schedule_yaml({"a": 0.5, "b": 2e-5}, pruner_name="p1"))
    assert small["pruners"]["p1"]["sensitivities"] == {"a": 0.5, "b": 2e-5}
    assert yaml.safe_load(schedule_yaml({}))["pruners"]["sensitivity_pruner"]["sensitivities"] == {}
    for kwargs, match in (({"frequency": 3, "ending_epoch": 2}, "frequency"),
                          ({"starting_epoch": 3, "ending_epoch": 3}, "ending epoch"),
                          ({"pruner_name": "a b"}, "pruner name"), ({"frequency": 0}, "frequency")):
        with pytest.raises(ParameterError, match=match):
            schedule_yaml({"a": 0.5}, **kwargs)
    with pytest.raises(ParameterError, match="finite s"):
        schedule_yaml({"a": -0.5})
    with pytest.raises(ParameterError, match="finite s"):
        schedule_yaml({"a": math.inf})


# --------------------------------------------------------------------------- real metric
def test_analyze_with_the_real_vstoi_objective(shipped) -> None:
    from pa_ci.data.dataset import build_dataset, default_config
    from pa_ci.codec.frae import FraeConfig
    from pa_ci.train.objective import VstoiObjective

    items = build_dataset(default_config(tiny=True)).test[:3]
    obj = VstoiObjective(items, FraeConfig.from_dict(shipped.config))
    theta = shipped.theta.copy()
    rows = analyze(theta, shipped.layout, None, [0.0, 0.5], tensors=["dec.out.W"],
                   batch_metric=obj)
    assert np.array_equal(theta, shipped.theta)
    assert [(r.tensor, r.sparsity, r.nonzero, r.size) for r in rows] == [
        ("dec.out.W", 0.0, 308, 308), ("dec.out.W", 0.5, 154, 308)]
    assert rows[0].metric == obj.evaluate(theta).mean()              # exactly the unpruned VSTOI
    pruned = np.where(level_mask(theta, shipped.layout, "dec.out.W", 0.5), theta, 0.0)
    assert rows[1].metric == pytest.approx(obj.evaluate(pruned).mean(), abs=1e-12)
    assert all(math.isfinite(r.metric) for r in rows) and rows[1].metric != rows[0].metric
