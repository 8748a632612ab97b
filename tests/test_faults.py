"""Faults in real processes: ``pa-ci prune`` (PA) and ``pa-ci sweep`` are stopped by SIGINT,
SIGTERM or SIGKILL while an SPSA iteration runs, off the checkpoint grid, in each stage (PA
training, fine-tuning), then continued with ``--resume`` (prune) or the same command (sweep);
the results must equal an uninterrupted run's bit for bit: model.npz (theta and mask), every
figure of result.json / results.csv but the wall-clock ``seconds``, and every stage's log.csv
row but its ``seconds``.

The process is watched through its stage's log.csv (one row per finished iteration): when
iteration k's row is there, iteration k + 1 is running and gets the signal. SIGINT / SIGTERM
are deferred to the end of the running iteration (exit 130 / a non-zero status); SIGKILL
leaves the last checkpoint (and maybe a cut-short log row), from which the run resumes.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pa_ci.codec.model_file import load_model

ITERS = 6            # per stage
EVERY = 3            # checkpoint grid: 3 and the stage's end (6)
PRUNE = ["prune", "--tiny", "--rate", "0.5", "--scope", "whole", "--method", "pa",
         "--pa-iters", str(ITERS), "--finetune-iters", str(ITERS), "--checkpoint-every", str(EVERY),
         "--batch-size", "2", "--json"]
SWEEP = ["sweep", "--tiny", "--rates", "0.5", "--scopes", "decoder", "--methods", "magnitude,pa",
         "--pa-iters", "4", "--finetune-iters", "6", "--batch-size", "2", "--json"]


def _env() -> dict:
    return dict(os.environ, NUMBA_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pa_ci", *args], cwd=cwd, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _run(args: list[str], cwd: Path) -> tuple[int, str, str]:
    return _finish(_start(args, cwd))


def _rows(log: Path) -> int:
    """Finished iterations in a log.csv (complete lines after the header)."""
    try:
        text = log.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return 0
    return max(0, text.count("\n") - 1)


def _signal_at(proc: subprocess.Popen, ready, sig: int, delay: float, timeout: float = 240) -> None:
    """Send ``sig`` to ``proc`` ``delay`` seconds after ``ready()`` first holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            time.sleep(delay)
            proc.send_signal(sig)
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process ended (status {proc.returncode}) before the signal was due: "
                        f"{err[-800:]}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"not ready within {timeout} s")


def _logged(log: Path, k: int):
    """Ready once ``log`` shows ``k`` rows (rows reach the disk at checkpoints: k on the grid)."""
    return lambda: _rows(log) >= k


#: After iteration 3's checkpoint shows up, this much later iteration 4 runs (an iteration of
#: the tiny runs takes ~0.2 s; a checkpoint a few ms): the signal lands off the grid.
INSIDE = 0.08


def _stopped(proc: subprocess.Popen, sig: int) -> None:
    code, out, err = _finish(proc)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:  # deferred to the end of the iteration: one error line, a non-zero status
        assert code != 0, err
        assert "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("error: "), err


def _log_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def _result(folder: Path) -> dict:
    d = json.loads((folder / "result.json").read_text())
    d.pop("seconds", None)
    return d


def _same_model(a: Path, b: Path) -> None:
    ma, mb = load_model(a), load_model(b)
    assert np.array_equal(ma.theta, mb.theta), f"{a} and {b}: theta differs"
    assert (ma.mask is None) == (mb.mask is None)
    if ma.mask is not None:
        assert np.array_equal(ma.mask, mb.mask), f"{a} and {b}: mask differs"


def _same_run(ref: Path, got: Path) -> None:
    for name in ("model.npz", "pruned.npz"):
        if (ref / name).exists():
            _same_model(ref / name, got / name)
    assert _result(got) == _result(ref)
    for stage in ("pa", "finetune"):
        if (ref / stage / "log.csv").exists():
            assert _log_rows(got / stage / "log.csv") == _log_rows(ref / stage / "log.csv"), stage
            _same_model(ref / stage / "model.npz", got / stage / "model.npz")
    assert (got / "whole.pacx").read_bytes() == (ref / "whole.pacx").read_bytes()
    assert not [p.name for p in got.rglob(".*")], "temporary or lock files left"


@pytest.fixture(scope="module")
def prune_reference(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("prune_ref")
    code, _, err = _run(PRUNE + ["-o", "run"], cwd)
    assert code == 0, err
    return cwd / "run"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_prune_interrupted_in_each_stage_resumes_bit_identically(prune_reference, tmp_path, sig):
    run = tmp_path / "run"
    # 1: stopped inside PA iteration 4 (the checkpoint grid is 3, 6)
    proc = _start(PRUNE + ["-o", "run"], tmp_path)
    _signal_at(proc, _logged(run / "pa" / "log.csv", EVERY), sig, INSIDE)
    _stopped(proc, sig)
    assert _rows(run / "finetune" / "log.csv") == 0
    # 2: resumed, stopped inside fine-tuning iteration 4
    proc = _start(PRUNE + ["-o", "run", "--resume"], tmp_path)
    _signal_at(proc, _logged(run / "finetune" / "log.csv", EVERY), sig, INSIDE)
    _stopped(proc, sig)
    assert _log_rows(run / "pa" / "log.csv") == _log_rows(prune_reference / "pa" / "log.csv")
    # 3: resumed to the end
    code, out, err = _run(PRUNE + ["-o", "run", "--resume"], tmp_path)
    assert code == 0, err
    _same_run(prune_reference, run)


# ----------------------------------------------------------------------------- sweep
def _sweep_rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as fh:
        rows = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def _stage_started(out: Path, method: str, stage: str):
    """Ready once ``stage`` of the sweep's run of ``method`` has its first checkpoint (k = 0,
    written before iteration 1; the sweep's checkpoint grid is 25, beyond these stages)."""
    name = f"decoder-{method}-{'-' if method == 'magnitude' else 'linear'}-r0.5-s0"
    return lambda: (out / "runs" / name / stage / "checkpoint.npz").exists()


@pytest.fixture(scope="module")
def sweep_reference(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("sweep_ref")
    code, _, err = _run(SWEEP + ["--out", "sw"], cwd)
    assert code == 0, err
    return cwd / "sw"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_sweep_interrupted_resumes_bit_identically(sweep_reference, tmp_path, sig):
    out = tmp_path / "sw"
    # stopped inside the magnitude run's fine-tuning (no checkpoint yet), then inside the pa
    # run's PA stage and its fine-tuning; each time the same command continues the sweep
    for method, stage, delay in (("magnitude", "finetune", 0.5), ("pa", "pa", 0.3),
                                 ("pa", "finetune", 0.5)):
        proc = _start(SWEEP + ["--out", "sw"], tmp_path)
        _signal_at(proc, _stage_started(out, method, stage), sig, delay)
        _stopped(proc, sig)
    code, _, err = _run(SWEEP + ["--out", "sw"], tmp_path)
    assert code == 0, err
    assert _sweep_rows(out) == _sweep_rows(sweep_reference)
    ref_runs = sorted(p.name for p in (sweep_reference / "runs").iterdir())
    assert sorted(p.name for p in (out / "runs").iterdir()) == ref_runs
    for name in ref_runs:
        for model in sorted((sweep_reference / "runs" / name).rglob("*.npz")):
            rel = model.relative_to(sweep_reference)
            if model.name != "checkpoint.npz":
                _same_model(model, out / rel)


# ----------------------------------------------------------------------------- the last check
def test_a_signal_after_the_last_check_is_not_lost(tmp_path, monkeypatch):
    """Deterministic form of a race the process tests hit: the signal lands in the window
    between the last iteration's check and the end of the deferral."""
    from pa_ci.train import training
    from pa_ci.data.dataset import build_dataset, default_config
    from pa_ci.train.spsa import Gains

    tiny = build_dataset(default_config(tiny=True))
    opts = training.TrainOptions(iters=2, seed=0, warm_start_steps=0, checkpoint_every=5,
                                 batch_size=2, gains=Gains(a=2.0, A=10.0, c=0.02))
    check = training._Interrupts.check
    calls = []

    def check_then_signal(self) -> None:
        check(self)
        calls.append(1)
        if len(calls) == opts.iters:  # after the last check: the stage is done, the run is not
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(training._Interrupts, "check", check_then_signal)
    with pytest.raises(KeyboardInterrupt):
        training.train(tmp_path / "run", tiny.train, options=opts)
