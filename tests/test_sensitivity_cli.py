"""From analysis to schedule: `pa-ci sensitivity`, proposals for a target sparsity, and the
proposed schedule pruning exactly the proposed levels."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from pa_ci.codec.coder import SHIPPED_MODEL
from pa_ci.errors import ParameterError
from pa_ci.codec.model_file import load_model
from pa_ci.prune.schedule import load_schedule, parse_schedule
from pa_ci.prune.schedule_run import apply_events
from pa_ci.prune.sensitivity import (SensitivityRow, propose_for_sparsity, propose_levels,
                               propose_sensitivities, proposed_sparsity, schedule_yaml)


@pytest.fixture(scope="module")
def shipped():
    return load_model(SHIPPED_MODEL)


def curve(name: str, size: int, metrics: list[float]) -> list[SensitivityRow]:
    levels = [0.0, 0.25, 0.5, 0.75]
    return [SensitivityRow(name, lv, m, size - round(lv * size), size) for lv, m in zip(levels, metrics)]


def test_proposed_schedule_prunes_exactly_the_proposed_levels(shipped) -> None:
    levels = {"enc.gru.W_ih": 0.25, "enc.gru.W_hh": 0.65, "dec.gru.W_hh": 0.55, "dec.out.W": 0.4}
    s_values = propose_sensitivities(shipped.theta, shipped.layout, levels)
    sched = parse_schedule(schedule_yaml(s_values), shipped.layout)
    theta, keep, rows = apply_events(sched, shipped.theta, shipped.layout,
                                     np.ones(shipped.layout.size, dtype=bool), 0)
    assert {r["tensor"] for r in rows} == set(levels)
    for r in rows:
        n = shipped.layout[r["tensor"]].size
        assert r["nonzero"] == n - round(levels[r["tensor"]] * n)


def test_propose_for_sparsity_takes_the_smallest_tolerance() -> None:
    rows = (curve("a", 100, [0.60, 0.60, 0.58, 0.40])       # robust until 0.5
            + curve("b", 300, [0.60, 0.55, 0.50, 0.45]))    # loses 0.05 per step
    assert proposed_sparsity(rows, {"a": 0.5, "b": 0.0}) == 50 / 400
    levels, tol = propose_for_sparsity(rows, 0.1)
    assert levels == {"a": 0.5, "b": 0.0} and tol == pytest.approx(0.02)
    levels, tol = propose_for_sparsity(rows, 0.3)
    assert levels == {"a": 0.5, "b": 0.25} and tol == pytest.approx(0.05)
    assert propose_levels(rows, tol) == levels
    levels, tol = propose_for_sparsity(rows, 0.75)
    assert levels == {"a": 0.75, "b": 0.75}
    with pytest.raises(ParameterError, match="beyond the tested levels"):
        propose_for_sparsity(rows, 0.8)


def test_cli_sensitivity_writes_csv_png_and_a_usable_schedule(tmp_path, run_cli, shipped) -> None:
    out = tmp_path / "sens"
    r = run_cli("sensitivity", "--range", "0", "0.6", "0.3", "--tensors", "dec.out.W,enc.latent.W",
                "--tiny", "--out", out, "--json")
    assert r.code == 0, r.err
    d = r.json()
    rows = list(csv.DictReader(open(out / "sensitivity.csv")))
    assert [(x["tensor"], float(x["sparsity"])) for x in rows] == \
        [(t, lv) for t in ("dec.out.W", "enc.latent.W") for lv in (0.0, 0.3, 0.6)]
    assert all(float(x["metric"]) == pytest.approx(d["reference"], abs=5e-7)
               for x in rows if x["sparsity"] == "0.0")        # 0 % pruned = the model itself
    assert d["split"] == "train" and d["items"] > 0
    assert (out / "sensitivity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" or d["png"] is None
    config = json.loads((out / "config.json").read_text())
    assert config["levels"] == [0.0, 0.3, 0.6] and config["model_hash"] == shipped.hash
    sched = load_schedule(out / "proposed_schedule.yaml", shipped.layout)
    _, _, events = apply_events(sched, shipped.theta, shipped.layout,
                                np.ones(shipped.layout.size, dtype=bool), 0)
    for e in events:
        n = shipped.layout[e["tensor"]].size
        assert e["nonzero"] == n - round(d["proposed_levels"][e["tensor"]] * n)
    # people's output: a table with one line per tensor
    r = run_cli("sensitivity", "--range", "0", "0.3", "0.3", "--tensors", "dec.out.W", "--tiny",
                "--out", tmp_path / "s2", "--target-sparsity", "0.25")
    assert r.code == 0, r.err
    assert "dec.out.W" in r.out and "prune 29.9% of these weights" in r.out


def test_cli_sensitivity_errors(tmp_path, run_cli) -> None:
    r = run_cli("sensitivity", "--tensors", "no.such", "--out", tmp_path / "s")
    assert r.code != 0 and "no.such" in r.err and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1 and not (tmp_path / "s").exists()
    r = run_cli("sensitivity", "--range", "0.5", "0.1", "0.1", "--out", tmp_path / "s")
    assert r.code != 0 and r.err.startswith("error:") and "Traceback" not in r.err
    r = run_cli("sensitivity", "--tolerance", "0.1", "--target-sparsity", "0.5", "--out", tmp_path / "s")
    assert r.code != 0 and "not both" in r.err
