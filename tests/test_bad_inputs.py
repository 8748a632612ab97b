"""Bad inputs found by hand and by fault injection: each is one ``error:`` line, a non-zero exit,
and no new file or folder (everything is validated before anything is created or computed)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 240):
    return subprocess.run([sys.executable, "-m", "pa_ci", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _schedule(tmp: Path, body: bytes) -> str:
    path = tmp / "schedule.yaml"
    path.write_bytes(body)
    return str(path)


GOOD = b"""version: 1
pruners:
  p1:
    class: SparsityLevelParameterPruner
    levels: {dec.out.W: 0.5}
policies:
  - pruner: {instance_name: p1}
    starting_epoch: 0
    ending_epoch: %s
    frequency: 1
"""

CASES = {
    "train seed -1": ["train", "--tiny", "-o", "out", "--seed", "-1"],
    "train blocking nan": ["train", "--tiny", "-o", "out", "--blocking", "nan"],
    "train calibrate inf": ["train", "--tiny", "-o", "out", "--calibrate", "inf"],
    "train iters 1e30": ["train", "--tiny", "-o", "out", "--iters", str(10 ** 30)],
    "train batch 1e9": ["train", "--tiny", "-o", "out", "--batch-size", str(10 ** 9)],
    "prune seed -1": ["prune", "--tiny", "--rate", "0.5", "-o", "out", "--seed", "-1"],
    "prune lambda inf": ["prune", "--tiny", "--rate", "0.5", "-o", "out", "--lambda", "inf"],
    "prune batch 1e9": ["prune", "--tiny", "--rate", "0.5", "-o", "out", "--batch-size", str(10 ** 9)],
    "prune pa-iters 2^63": ["prune", "--tiny", "--rate", "0.5", "-o", "out", "--pa-iters", str(2 ** 63)],
    "schedule epochs 1e12": ["prune", "--tiny", "--schedule", "{good}", "-o", "out", "--epochs", str(10 ** 12)],
    "schedule ending_epoch 1e30": ["prune", "--tiny", "--schedule", "{huge}", "-o", "out"],
    "schedule latin-1": ["prune", "--tiny", "--schedule", "{latin}", "-o", "out"],
    "schedule utf-16": ["prune", "--tiny", "--schedule", "{utf16}", "-o", "out"],
    "sweep rates step 1e-12": ["sweep", "--tiny", "--rates", "0.1..0.5:1e-12", "--out", "out"],
    "sweep scheduler no port": ["sweep", "--tiny", "--rates", "0.5", "--scheduler", "tcp://host:notaport", "--out", "out"],
    "sweep scheduler garbage": ["sweep", "--tiny", "--rates", "0.5", "--scheduler", "garbage", "--out", "out"],
    "sensitivity tolerance nan": ["sensitivity", "--tiny", "--tolerance", "nan", "--out", "out"],
    "sensitivity target nan": ["sensitivity", "--tiny", "--target-sparsity", "nan", "--out", "out"],
}


#: Exit status 2 is a usage error (a value out of range); 1 a runtime error (here: a schedule file
#: that cannot be used).
STATUS = {"schedule ending_epoch 1e30": 1, "schedule latin-1": 1, "schedule utf-16": 1}

SCHEDULES = {"good": GOOD % b"2", "huge": GOOD % str(10 ** 30).encode(),
             "latin": GOOD.replace(b"p1", "pr\u00fcner".encode("latin-1")),
             "utf16": GOOD.decode().encode("utf-16")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_error_line_and_leaves_nothing(tmp_path, name):
    args = []
    for a in CASES[name]:
        if a.startswith("{") and a.endswith("}"):  # a schedule file with this content
            a = _schedule(tmp_path, SCHEDULES[a[1:-1]])
        args.append(a)
    before = _files(tmp_path)
    r = _run(args, tmp_path)
    assert r.returncode == STATUS.get(name, 2), (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) >= 1 and lines[-1].startswith("error: "), r.stderr
    assert "unexpected" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not any(line.startswith("error: ") for line in lines[:-1])
    assert _files(tmp_path) == before  # nothing created


@pytest.mark.parametrize("value", ["0", "abc", "-2"])
def test_bad_numba_threads_variable_is_one_error_line(tmp_path, value):
    r = _run(["eval", "--tiny"], tmp_path, env=dict(os.environ, NUMBA_NUM_THREADS=value))
    assert r.returncode == 2  # a usage error
    assert r.stderr.strip().splitlines() == [
        f"error: environment variable NUMBA_NUM_THREADS={value!r}; expected a positive integer "
        "(threads for the compiled kernels) or unset it"]


def test_corrupt_log_on_resume_names_the_file(tmp_path):
    r = _run(["train", "--tiny", "-o", "run", "--iters", "2", "--warm-start", "0"], tmp_path)
    assert r.returncode == 0, r.stderr
    (tmp_path / "run" / "model.npz").unlink()
    (tmp_path / "run" / "log.csv").write_bytes(os.urandom(300))
    r = _run(["train", "--tiny", "-o", "run", "--iters", "4", "--warm-start", "0", "--resume"], tmp_path)
    assert r.returncode == 1  # a runtime error
    assert "log.csv: not a pa-ci training log" in r.stderr and "unexpected" not in r.stderr
