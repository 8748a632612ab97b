"""pa_ci.experiment.sweep: planning, the results table, resume, process pool / Dask parity, failures, plots.

The runners here are cheap module-level fakes (picklable by reference, so process and Dask workers
can import them): their figures are a deterministic function of the spec, and every call leaves a
marker file in the job's ``calls`` folder (workers in other processes cannot share memory).
"""
from __future__ import annotations

import csv
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pa_ci.errors import ParameterError, TrainingError
from pa_ci.experiment.protocol import RunSpec
from pa_ci.experiment.sweep import (LEADING_COLUMNS, PAPER_RATES, SweepPlan, describe_job, parse_rates,
                         plan_runs, plot_sweep, read_results, run_sweep, summary_table)


# ----------------------------------------------------------------------------- fakes
@dataclass(frozen=True)
class FakeJob:
    calls: str          # folder for the per-call marker files
    tag: str = "a"      # stands for a setting every run shares (model, dataset, ...)


def expected_figures(rate: float, scope: str, method: str, g: str, seed: int) -> dict:
    """The oracle: what the fake runner reports for a run (a toy version of the paper's curves)."""
    power = {"linear": 1.0, "quadratic": 2.0, "cubic": 3.0, "sqrt": 0.5, "-": 1.0}[g]
    damage = 0.3 * rate ** 2 * (1.0 if scope == "whole" else 0.6)
    pa = method == "pa"
    return {
        "vstoi_before": 0.7,
        "vstoi_pa": 0.7 - (0.02 * rate * power if pa else 0.0),
        "vstoi_pruned": 0.7 - damage * (0.5 + 0.01 * power if pa else 1.0) + 0.001 * seed,
        "vstoi_finetuned": 0.7 - 0.3 * damage + 0.001 * seed,
        "nonzero_weights": round(3300 * (1 - rate)),
        "eligible_weights": 3300,
        "zeta_note": f"{scope}/{method}",
        "alpha_list": [1, 2],
    }


def _mark(job: FakeJob, spec) -> None:
    """One file per call; it holds the worker's NUMBA_NUM_THREADS and Numba thread count."""
    import numba
    Path(job.calls, f"{spec.key()}.{uuid.uuid4().hex}").write_text(
        f"{os.environ.get('NUMBA_NUM_THREADS', '')} {numba.get_num_threads()}")


def fake_run(spec, job: FakeJob) -> dict:
    _mark(job, spec)
    g = spec.g if spec.method == "pa" else "-"
    return expected_figures(spec.rate, spec.scope, spec.method, g, spec.seed)


def sleepy_run(spec, job: FakeJob) -> dict:
    """Early specs finish last, so completion order differs from submission order."""
    time.sleep(0.25 if spec.rate < 0.5 and spec.seed == 0 else 0.0)
    return fake_run(spec, job)


def failing_run(spec, job: FakeJob) -> dict:
    if spec.scope == "decoder" and spec.rate == 0.3 and spec.method == "magnitude":
        _mark(job, spec)
        raise ValueError("boom\nsecond line of the traceback text")
    return fake_run(spec, job)


def interrupting_run(spec, job: FakeJob) -> dict:
    if len(os.listdir(job.calls)) >= 3:
        raise KeyboardInterrupt
    return fake_run(spec, job)


def calls(job: FakeJob) -> list[str]:
    return sorted(name.rsplit(".", 1)[0] for name in os.listdir(job.calls))


def make_job(tmp_path: Path, tag: str = "a") -> FakeJob:
    folder = tmp_path / f"calls-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    return FakeJob(str(folder), tag)


def small_specs(**kw) -> list[RunSpec]:
    grid = dict(rates=(0.3, 0.7), scopes=("whole", "decoder"), methods=("pa", "magnitude"),
                gs=("linear",), seeds=(0, 1), pa_iters=5, finetune_iters=7)
    grid.update(kw)
    return plan_runs(**grid)


def csv_text(out: Path) -> str:
    return (out / "results.csv").read_text()


def reference_csv(tmp_path: Path, specs) -> str:
    out = tmp_path / f"ref-{uuid.uuid4().hex[:6]}"
    run_sweep(specs, make_job(tmp_path), out, runner=fake_run)
    return csv_text(out)


# ----------------------------------------------------------------------------- planning
def test_plan_is_the_cross_product_with_one_magnitude_run_per_point():
    specs = plan_runs(rates=(0.2, 0.5, 0.8), scopes=("whole", "decoder"),
                      methods=("pa", "magnitude"), gs=("linear", "cubic"), seeds=(0, 1),
                      pa_iters=3, finetune_iters=4)
    # pa: 3 rates x 2 scopes x 2 g x 2 seeds; magnitude does not depend on g: 3 x 2 x 2.
    assert len(specs) == 24 + 12
    assert len({s.key() for s in specs}) == len(specs)
    assert all(isinstance(s, RunSpec) for s in specs)
    assert {s.g for s in specs if s.method == "magnitude"} == {"-"}
    assert {(s.pa_iters, s.finetune_iters) for s in specs} == {(3, 4)}
    expected = [(seed, scope, method, g, rate)
                for seed in (0, 1) for scope in ("whole", "decoder")
                for method in ("pa", "magnitude")
                for g in (("linear", "cubic") if method == "pa" else ("-",))
                for rate in (0.2, 0.5, 0.8)]
    assert [(s.seed, s.scope, s.method, s.g, s.rate) for s in specs] == expected
    assert [s.key() for s in specs] == [s.key() for s in plan_runs(
        rates=(0.2, 0.5, 0.8), scopes=("whole", "decoder"), methods=("pa", "magnitude"),
        gs=("linear", "cubic"), seeds=(0, 1), pa_iters=3, finetune_iters=4)]
    # Duplicates in the inputs collapse; floats like 3 x 0.05 are rounded.
    plan = SweepPlan(rates=(0.15000000000000002, 0.15), seeds=(1, 1))
    assert plan.rates == (0.15,) and plan.seeds == (1,)
    assert len(SweepPlan().specs()) == 19 * 2 * 2  # the paper's grid, one seed, g = x


@pytest.mark.parametrize("kw, needle", [
    (dict(rates=(0.5, 1.0)), "(0, 1)"),
    (dict(rates=(0.0,)), "(0, 1)"),
    (dict(scopes=("middle",)), "'middle'"),
    (dict(methods=("random",)), "'random'"),
    (dict(gs=("exp",)), "'exp'"),
    (dict(seeds=(-1,)), "seeds"),
    (dict(seeds=(1.5,)), "seeds"),
    (dict(pa_iters=-1), "pa_iters"),
    (dict(finetune_iters=2.5), "finetune_iters"),
    (dict(scopes=()), "scopes"),
])
def test_plan_rejects_bad_grids_with_one_line(kw, needle):
    with pytest.raises(ParameterError) as info:
        small_specs(**kw)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_parse_rates_both_syntaxes_and_the_paper_default():
    assert parse_rates() == parse_rates("") == PAPER_RATES
    assert len(PAPER_RATES) == 19 and PAPER_RATES[0] == 0.05 and PAPER_RATES[-1] == 0.95
    assert PAPER_RATES[2] == 0.15 and PAPER_RATES[13] == 0.7  # not 0.15000000000000002
    assert parse_rates("0.05..0.95:0.05") == PAPER_RATES
    assert parse_rates("0.3,0.7") == (0.3, 0.7)
    assert parse_rates(" 0.7, 0.3,0.3 ") == (0.3, 0.7)
    assert parse_rates("0.5") == (0.5,)
    assert parse_rates("0.1..0.55:0.1") == (0.1, 0.2, 0.3, 0.4, 0.5)
    assert parse_rates("0.25..0.25:0.1") == (0.25,)
    for bad in ("0..0.5:0.1", "abc", "0.1..0.5", "0.5..0.1:0.1", "0.1..0.5:0", "0.3,1.2", "0.3,,"):
        with pytest.raises(ParameterError) as info:
            parse_rates(bad)
        assert repr(bad) in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------------------------- the table
def test_results_csv_columns_rows_and_rewrite_after_every_run(tmp_path):
    specs = small_specs(seeds=(10, 2))  # "s10" < "s2" as text: rows must sort by number
    out = tmp_path / "sweep"
    job = make_job(tmp_path)
    seen = []

    def progress(done, total, info):
        with open(out / "results.csv", newline="") as f:
            seen.append((done, total, len(list(csv.DictReader(f))), info))

    result = run_sweep(specs, job, out, runner=fake_run, progress=progress)
    assert result.ok and result.skipped == [] and sorted(result.done) == sorted(s.key() for s in specs)
    # results.csv holds every finished run at each progress call: written after every run.
    assert [(d, t, n) for d, t, n, _ in seen] == [(i, len(specs), i) for i in range(1, len(specs) + 1)]
    assert all(set(info) == {"key", "vstoi_pruned", "vstoi_finetuned"} for *_, info in seen)

    with open(out / "results.csv", newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    assert header[:len(LEADING_COLUMNS)] == list(LEADING_COLUMNS)
    extras = header[len(LEADING_COLUMNS):]
    assert extras == sorted(extras)
    assert {"key", "lam", "eligible_weights", "nonzero_weights", "zeta_note", "alpha_list"} <= set(extras)
    assert len(rows) == len(specs)
    order = [(r["scope"], r["method"], r["g"], float(r["rate"]), int(r["seed"])) for r in rows]
    assert order == sorted(order)
    for row in rows:
        want = expected_figures(float(row["rate"]), row["scope"], row["method"], row["g"],
                                int(row["seed"]))
        for name in ("vstoi_before", "vstoi_pa", "vstoi_pruned", "vstoi_finetuned"):
            assert float(row[name]) == want[name]  # exact: floats are written round-trip
        assert int(row["nonzero_weights"]) == want["nonzero_weights"]
        assert json.loads(row["alpha_list"]) == [1, 2]
        assert (row["pa_iters"], row["finetune_iters"]) == ("5", "7")
    assert {r["g"] for r in rows if r["method"] == "magnitude"} == {"-"}
    # read_results / SweepResult.rows give the same rows with numbers parsed.
    assert read_results(out) == result.rows
    assert result.rows[0]["rate"] == 0.3 and result.rows[0]["seed"] == 2 and result.rows[1]["seed"] == 10
    config = json.loads((out / "sweep.json").read_text())
    assert config["grid"]["rates"] == [0.3, 0.7] and config["grid"]["seeds"] == [2, 10]
    assert config["grid"]["gs"] == ["-", "linear"] and config["grid"]["pa_iters"] == [5]
    assert config["job"] == {"calls": job.calls, "tag": "a"}
    assert not (out / "failed.json").exists()


def test_describe_job_uses_describe_and_hashes_bytes():
    @dataclass(frozen=True)
    class Job:
        model_bytes: bytes
        gains: dict
        arr: np.ndarray

    desc = describe_job(Job(b"abc", {"a": 1.0}, np.arange(3)))
    assert desc["model_bytes"] == {"sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                                   "bytes": 3}
    assert desc["gains"] == {"a": 1.0} and desc["arr"]["shape"] == [3]
    assert describe_job(Job(b"abd", {}, np.arange(3)))["model_bytes"] != desc["model_bytes"]

    class Described:
        def describe(self):
            return {"model_hash": "h", "tiny": True}

    assert describe_job(Described()) == {"model_hash": "h", "tiny": True}
    assert describe_job(None) is None
    assert "0x" not in json.dumps(describe_job(object()))  # never a repr with an address


# ----------------------------------------------------------------------------- resume
def test_resume_skips_finished_runs_and_equals_a_fresh_sweep(tmp_path):
    specs = small_specs()
    out = tmp_path / "sweep"
    job = make_job(tmp_path)
    first = run_sweep(specs[:5], job, out, runner=fake_run)
    assert len(first.done) == 5
    second = run_sweep(specs, job, out, runner=fake_run)
    assert sorted(second.skipped) == sorted(s.key() for s in specs[:5])
    assert len(second.done) == len(specs) - 5
    assert calls(job) == sorted(s.key() for s in specs)  # every run exactly once
    assert csv_text(out) == reference_csv(tmp_path, specs)
    third = run_sweep(specs, job, out, runner=fake_run)  # nothing left to do
    assert third.done == [] and len(third.skipped) == len(specs)
    assert len(calls(job)) == len(specs)
    # Adding grid points to a folder is allowed; sweep.json records the union.
    more = small_specs(rates=(0.3, 0.5, 0.7))
    run_sweep(more, job, out, runner=fake_run)
    assert len(calls(job)) == len(more)
    assert json.loads((out / "sweep.json").read_text())["grid"]["rates"] == [0.3, 0.5, 0.7]


def test_interrupt_keeps_finished_rows_and_resume_completes(tmp_path):
    specs = small_specs()
    out = tmp_path / "sweep"
    job = make_job(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(specs, job, out, runner=interrupting_run)
    assert len(read_results(out)) == 3
    run_sweep(specs, job, out, runner=fake_run)
    assert calls(job) == sorted(s.key() for s in specs)
    assert csv_text(out) == reference_csv(tmp_path, specs)


@pytest.mark.parametrize("change, needle", [
    (dict(pa_iters=6), "'pa_iters'"),
    (dict(finetune_iters=70), "'finetune_iters'"),
    (dict(lam=0.5), "'lam'"),
    (dict(tag="b"), "'job.tag'"),
])
def test_resume_with_other_run_settings_is_refused(tmp_path, change, needle):
    specs = small_specs(seeds=(0,))
    out = tmp_path / "sweep"
    job = make_job(tmp_path)
    run_sweep(specs, job, out, runner=fake_run)
    before = csv_text(out), (out / "sweep.json").read_text()
    change = dict(change)
    job2 = FakeJob(job.calls, change.pop("tag", "a"))
    grid = dict(rates=(0.3, 0.7), scopes=("whole", "decoder"), seeds=(0, 1), pa_iters=5,
                finetune_iters=7)
    specs2 = plan_runs(**{**grid, **change})  # also adds seed 1: allowed alone, not with these
    with pytest.raises(TrainingError) as info:
        run_sweep(specs2, job2, out, runner=fake_run)
    message = str(info.value)
    assert needle in message and "sweep.json" in message and "\n" not in message
    assert (csv_text(out), (out / "sweep.json").read_text()) == before
    assert len(calls(job)) == len(specs)


def test_folder_checks(tmp_path):
    job = make_job(tmp_path)
    with pytest.raises(ParameterError, match="more than once"):
        run_sweep(small_specs() * 2, job, tmp_path / "dup", runner=fake_run)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "results.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TrainingError, match="without sweep.json"):
        run_sweep(small_specs(), job, stray, runner=fake_run)
    with pytest.raises(ParameterError, match="workers"):
        run_sweep(small_specs(), job, tmp_path / "w", runner=fake_run, workers=0)


# ----------------------------------------------------------------------------- failures
def test_failed_run_is_recorded_and_the_others_kept(tmp_path):
    specs = small_specs()
    out = tmp_path / "sweep"
    job = make_job(tmp_path)
    infos = []
    result = run_sweep(specs, job, out, runner=failing_run,
                       progress=lambda d, t, info: infos.append(info))
    bad = bad_keys(specs)
    assert len(bad) == 2 and not result.ok
    assert sorted(result.failed) == bad
    assert all(m == "ValueError: boom second line of the traceback text" for m in result.failed.values())
    assert json.loads((out / "failed.json").read_text()) == result.failed
    assert sorted(r["key"] for r in read_results(out)) == sorted(
        s.key() for s in specs if s.key() not in bad)
    assert sorted(i["key"] for i in infos if "error" in i) == bad
    assert len(infos) == len(specs)
    # A rerun retries only the failed runs and clears failed.json.
    again = run_sweep(specs, job, out, runner=fake_run)
    assert again.ok and sorted(again.done) == bad
    assert not (out / "failed.json").exists()
    assert csv_text(out) == reference_csv(tmp_path, specs)


def bad_keys(specs) -> list[str]:
    return sorted(s.key() for s in specs
                  if s.scope == "decoder" and s.rate == 0.3 and s.method == "magnitude")


# ----------------------------------------------------------------------------- process pool
def test_process_pool_gives_the_same_csv_as_in_process(tmp_path):
    specs = small_specs()
    out = tmp_path / "pool"
    job = make_job(tmp_path)
    env_before = os.environ.get("NUMBA_NUM_THREADS")
    result = run_sweep(specs, job, out, runner=sleepy_run, workers=2)
    assert result.ok and len(result.done) == len(specs)
    assert result.done != [s.key() for s in specs]  # completion order differed ...
    assert csv_text(out) == reference_csv(tmp_path, specs)  # ... the table does not
    assert calls(job) == sorted(s.key() for s in specs)
    # Every worker saw NUMBA_NUM_THREADS = cores // workers and ran at most that many threads.
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    want = max(1, cores // 2)
    for marker in Path(job.calls).iterdir():
        env, threads = marker.read_text().split()
        assert int(env) == want and int(threads) <= want
    assert os.environ.get("NUMBA_NUM_THREADS") == env_before  # this process's env is restored


def test_pool_interrupt_then_failures_then_resume(tmp_path):
    specs = small_specs()
    out = tmp_path / "sweep"
    job = make_job(tmp_path)

    def stop(done, total, info):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(specs, job, out, runner=sleepy_run, workers=2, progress=stop)
    assert len(read_results(out)) == 1  # the run that finished first is kept
    result = run_sweep(specs, job, out, runner=failing_run, workers=2)
    assert sorted(result.failed) == bad_keys(specs)
    assert all(m.startswith("ValueError: boom") for m in result.failed.values())
    assert json.loads((out / "failed.json").read_text()) == result.failed
    assert len(read_results(out)) == len(specs) - 2
    again = run_sweep(specs, job, out, runner=fake_run)
    assert again.ok and sorted(again.done) == bad_keys(specs)
    assert not (out / "failed.json").exists()
    assert csv_text(out) == reference_csv(tmp_path, specs)


# ----------------------------------------------------------------------------- dask
@pytest.fixture(scope="module")
def dask_scheduler():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_dask_gives_the_same_csv_and_keeps_failures(tmp_path, dask_scheduler):
    specs = small_specs()
    out = tmp_path / "dask"
    job = make_job(tmp_path)
    result = run_sweep(specs, job, out, runner=failing_run, scheduler=dask_scheduler)
    assert sorted(result.failed) == bad_keys(specs)
    assert all(m.startswith("ValueError: boom") for m in result.failed.values())
    assert len(read_results(out)) == len(specs) - 2
    again = run_sweep(specs, job, out, runner=sleepy_run, scheduler=dask_scheduler)
    assert again.ok and sorted(again.done) == bad_keys(specs)
    assert csv_text(out) == reference_csv(tmp_path, specs)
    assert calls(job) == sorted([s.key() for s in specs] + bad_keys(specs))  # failed ones twice


def test_dask_missing_is_a_parameter_error(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    out = tmp_path / "nodask"
    with pytest.raises(ParameterError, match=r"pa-ci\[dist\]"):
        run_sweep(small_specs(), make_job(tmp_path), out, runner=fake_run,
                  scheduler="tcp://127.0.0.1:1")
    assert not out.exists()


# ----------------------------------------------------------------------------- summaries
def test_summary_table_means_ranges_and_gains(tmp_path):
    specs = small_specs(gs=("linear", "cubic"), seeds=(0, 1, 2))
    rows = run_sweep(specs, make_job(tmp_path), tmp_path / "s", runner=fake_run).rows
    table = summary_table(rows)
    assert len(table) == 2 * 2 * 3  # (scope, rate) x (magnitude, pa-linear, pa-cubic)
    for entry in table:
        vals = [expected_figures(entry["rate"], entry["scope"], entry["method"], entry["g"], s)
                for s in (0, 1, 2)]
        pruned = [v["vstoi_pruned"] for v in vals]
        assert entry["n"] == 3
        assert entry["vstoi_pruned_mean"] == pytest.approx(np.mean(pruned), abs=1e-12)
        assert (entry["vstoi_pruned_min"], entry["vstoi_pruned_max"]) == (min(pruned), max(pruned))
        if entry["method"] == "pa":
            base = [expected_figures(entry["rate"], entry["scope"], "magnitude", "-", s)
                    for s in (0, 1, 2)]
            gain = np.mean(pruned) - np.mean([b["vstoi_pruned"] for b in base])
            assert entry["pruned_gain"] == pytest.approx(gain, abs=1e-12) and gain > 0
            ft = np.mean([v["vstoi_finetuned"] for v in vals]) - np.mean(
                [b["vstoi_finetuned"] for b in base])
            assert entry["finetuned_gain"] == pytest.approx(ft, abs=1e-12)
        else:
            assert "pruned_gain" not in entry
    only_pa = summary_table([r for r in rows if r["method"] == "pa"])
    assert all(e["pruned_gain"] is None for e in only_pa)
    assert summary_table([]) == []


# ----------------------------------------------------------------------------- plots
def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_like_the_paper(tmp_path):
    pytest.importorskip("matplotlib")
    specs = small_specs(gs=("linear", "cubic"))
    rows = run_sweep(specs, make_job(tmp_path), tmp_path / "s", runner=fake_run).rows
    paths = plot_sweep(rows, tmp_path / "figs")
    assert sorted(p.name for p in paths) == sorted([
        "baseline.png", "pruned_whole.png", "pruned_decoder.png", "g_functions.png",
        "before_pruning.png", "finetuned.png"])
    assert all(p.parent == tmp_path / "figs" and _is_png(p) for p in paths)
    # Only the baseline: no PA figures; one g: no g_functions figure; nothing: no figures.
    magnitude = [r for r in rows if r["method"] == "magnitude"]
    names = {p.name for p in plot_sweep(magnitude, tmp_path / "mag")}
    assert names == {"baseline.png", "finetuned.png"}
    linear = [r for r in rows if r["g"] in ("linear", "-")]
    names = {p.name for p in plot_sweep(linear, tmp_path / "lin")}
    assert "g_functions.png" not in names and "pruned_whole.png" in names
    assert plot_sweep([], tmp_path / "none") == []
    assert not (tmp_path / "none").exists()


def test_plots_of_equal_seeds_whose_mean_rounds_above_them(tmp_path):
    # Magnitude pruning before fine-tuning does not depend on the seed; the mean of three equal
    # values can be 1 ulp above them, which once made matplotlib reject a negative error bar.
    pytest.importorskip("matplotlib")
    x = 0.40680892351638775
    assert float(np.mean([x, x, x])) > x
    rows = [{"rate": r, "scope": "decoder", "method": "magnitude", "g": "-", "seed": seed,
             "vstoi_before": 0.6, "vstoi_pa": 0.6, "vstoi_pruned": x,
             "vstoi_finetuned": 0.5} for r in (0.4, 0.85) for seed in (1, 2, 3)]
    names = {p.name for p in plot_sweep(rows, tmp_path)}
    assert "baseline.png" in names


def test_plots_without_matplotlib_return_nothing(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rows = [{"rate": 0.5, "scope": "whole", "method": "magnitude", "g": "-", "seed": 0,
             "vstoi_pruned": 0.6}]
    assert plot_sweep(rows, tmp_path) == []
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- the real protocol
def test_real_protocol_runs_through_the_sweep(tmp_path):
    """Integration: pa_ci.experiment.protocol.run_one (tiny dataset, 1 + 1 iterations) as the runner."""
    from pa_ci.experiment.protocol import JobContext

    model = Path(__file__).resolve().parents[1] / "pa_ci" / "bundled" / "models" / "frae-default.npz"
    job = JobContext.from_model_file(model, tiny=True, batch_size=2)
    specs = plan_runs(rates=(0.5,), scopes=("decoder",), seeds=(0,), pa_iters=1, finetune_iters=1)
    result = run_sweep(specs, job, tmp_path / "real")
    assert result.ok and len(result.rows) == 2
    for row in result.rows:
        assert 0 < row["vstoi_finetuned"] <= 1 and 0 < row["vstoi_pruned"] <= 1
        assert row["nonzero_weights"] <= row["eligible_weights"] - round(0.5 * row["eligible_weights"])
    magnitude, pa = result.rows  # sorted: method "magnitude" < "pa"
    assert magnitude["vstoi_pa"] == magnitude["vstoi_before"] == pa["vstoi_before"]
    assert json.loads((tmp_path / "real" / "sweep.json").read_text())["job"]["tiny"] is True
