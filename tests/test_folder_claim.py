"""Two writers, one folder: a run folder is claimed by an OS lock for the whole run.

A second process that writes into a claimed folder (train, prune, schedule or sweep output) gets
one clear error naming the folder and the holder; a crashed holder (SIGKILL) leaves a stale lock
file that the next claim takes over; a finished claim leaves nothing behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pa_ci._files import LOCK_NAME, claim_folder
from pa_ci.errors import TrainingError

HOLDER = """
import sys, time
from pa_ci._files import claim_folder
from pa_ci.errors import TrainingError
with claim_folder(sys.argv[1], "training run", TrainingError):
    print("claimed", flush=True)
    time.sleep(120)
"""


def _hold(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "claimed"
    return proc


def test_a_second_process_is_refused_with_the_holder_named(tmp_path):
    run = tmp_path / "run"
    holder = _hold(run)
    try:
        with pytest.raises(TrainingError, match=rf"{run}: in use by another pa-ci sweep "
                                                rf"\(process {holder.pid}\)"):
            with claim_folder(run, "sweep", TrainingError):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_a_crashed_holder_leaves_a_stale_lock_that_is_taken_over(tmp_path):
    run = tmp_path / "run"
    holder = _hold(run)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (run / LOCK_NAME).exists()  # stale: nobody holds the flock
    with claim_folder(run, "training run", TrainingError):
        assert (run / LOCK_NAME).read_text() == str(os.getpid())
    assert not (run / LOCK_NAME).exists()


def test_claims_nest_and_leave_nothing(tmp_path):
    run = tmp_path / "new"
    with claim_folder(run, "run", TrainingError):
        with claim_folder(run, "run", TrainingError):
            assert (run / LOCK_NAME).exists()
        assert (run / LOCK_NAME).exists()
    assert not run.exists()  # created by the claim, nothing written: removed
    kept = tmp_path / "kept"
    with claim_folder(kept, "run", TrainingError):
        (kept / "result.json").write_text("{}")
    assert [p.name for p in kept.iterdir()] == ["result.json"]


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(TrainingError, match="exists and is not a folder"):
        with claim_folder(tmp_path / "f", "run", TrainingError):
            pass


@pytest.mark.parametrize("command", [
    ["train", "--tiny", "--iters", "1", "--warm-start", "0"],
    ["sweep", "--tiny", "--rates", "0.5", "--scopes", "decoder", "--methods", "magnitude",
     "--seeds", "0", "--finetune-iters", "1", "--out"],
])
def test_cli_second_writer_gets_one_error_line(tmp_path, command):
    run = tmp_path / "out"
    holder = _hold(run)
    try:
        args = command + [str(run)] if command[-1] == "--out" else command + ["-o", str(run)]
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "pa_ci.cli", *args], capture_output=True,
                           text=True, timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode != 0, r.stdout
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "in use by another pa-ci" in lines[-1], r.stderr
    assert f"process {holder.pid}" in lines[-1]
    assert [p.name for p in run.iterdir()] == [LOCK_NAME]  # the refused writer wrote nothing
    assert time.monotonic() - t0 < 300
