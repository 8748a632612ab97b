"""Shared fixtures: paths to the bundled data and a runner for the ``pa-ci`` entry point."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "pa_ci" / "bundled"


@pytest.fixture(scope="session")
def bundled_speech() -> Path:
    return BUNDLED / "speech"


@pytest.fixture(scope="session")
def arctic_file() -> Path:
    return BUNDLED / "speech" / "cmu_arctic" / "cmu_arctic_us_aew_a0001.wav"


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> dict:
        lines = [ln for ln in self.out.splitlines() if ln.strip()]
        assert len(lines) == 1, f"expected one JSON line on stdout, got {self.out!r}"
        return json.loads(lines[0])


@pytest.fixture
def run_cli(capsys):
    """Call ``pa_ci.cli.main(argv)`` in-process; return exit code, stdout and stderr."""
    from pa_ci.cli import main

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def speechlike(seconds: float = 2.0, fs: int = 16000, seed: int = 0) -> np.ndarray:
    """A deterministic speech-like test signal: harmonic bursts with pauses (not real speech)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / fs
    voiced = sum(np.sin(k * phase) / k for k in range(1, 25))
    gate = (np.sin(2 * np.pi * 2.3 * t) > -0.3).astype(float)
    return 0.1 * voiced * gate + 0.002 * rng.standard_normal(t.size)
