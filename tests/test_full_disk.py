"""A full disk (ENOSPC) during a run: one clear line naming the file, and what is left is either
nothing or a checkpoint that resumes to the same model as an uninterrupted run.

Needs a small filesystem: a tmpfs mounted by the test (root on Linux); skipped with the reason
where the machine does not allow it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TRAIN = ["train", "--tiny", "--iters", "12", "--warm-start", "2", "--checkpoint-every", "3"]


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or 'mount failed'}); "
                    "the full-disk test needs root on Linux")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _pa_ci(*args: str, cwd: Path):
    return subprocess.run([sys.executable, "-m", "pa_ci", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_train_on_a_full_disk_is_one_line_and_resumes_bit_identically(tmp_path, small_fs):
    r = _pa_ci(*TRAIN, "-o", str(small_fs / "run"), cwd=tmp_path)
    assert r.returncode == 1  # a runtime error
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot write {small_fs / 'run'}/") and \
        last.endswith(": no space left on device"), r.stderr
    assert "unexpected" not in r.stderr
    run = small_fs / "run"
    assert not (run / "model.npz").exists()
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temporaries
    # room again: the run resumes from what the full disk left and ends as an uninterrupted run
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_fs)], check=True)
    r = _pa_ci(*TRAIN, "-o", str(run), "--resume", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _pa_ci(*TRAIN, "-o", str(tmp_path / "full"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with np.load(run / "model.npz") as a, np.load(tmp_path / "full" / "model.npz") as b:
        assert np.array_equal(a["theta"], b["theta"])


@pytest.mark.parametrize("args", [
    ["prune", "--tiny", "--rate", "0.5", "--pa-iters", "2", "--finetune-iters", "2", "-o"],
    ["sweep", "--tiny", "--rates", "0.5", "--scopes", "decoder", "--methods", "magnitude",
     "--finetune-iters", "1", "--out"],
    ["sensitivity", "--tiny", "--range", "0", "0.5", "0.5", "--out"],
])
def test_other_commands_on_a_full_disk_are_one_line(tmp_path, small_fs, args):
    (small_fs / "filler").write_bytes(b"\0" * 40_000)  # leave a few kB
    r = _pa_ci(*args, str(small_fs / "out"), cwd=tmp_path)
    assert r.returncode == 1  # a runtime error
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot write ") and last.endswith("no space left on device"), r.stderr
    assert "unexpected" not in r.stderr
