"""The command line: --json output, one-line errors without tracebacks, no partial outputs."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from conftest import speechlike


def assert_one_error_line(result, *fragments: str) -> None:
    assert result.code != 0
    assert "Traceback" not in result.err
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, result.err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_vstoi_json_on_bundled_file(run_cli, arctic_file):
    result = run_cli("vstoi", arctic_file, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert 0.45 < data["vstoi"] <= 1.0
    assert data["frames"] > 0


def test_vstoi_text_and_noisy_mixture_scores_lower(run_cli, arctic_file, tmp_path):
    x, fs = sf.read(arctic_file)
    rng = np.random.default_rng(1)
    noisy = x + rng.standard_normal(len(x)) * np.sqrt(np.mean(x**2))  # 0 dB SNR
    sf.write(tmp_path / "noisy.wav", noisy / np.abs(noisy).max() * 0.9, fs)
    clean = run_cli("vstoi", arctic_file, "--json").json()["vstoi"]
    mixed = run_cli("vstoi", arctic_file, "--noisy", tmp_path / "noisy.wav", "--json").json()
    assert mixed["vstoi"] < clean
    assert fs == 16000
    from pystoi import stoi as pystoi_stoi
    expected = pystoi_stoi(x, sf.read(tmp_path / "noisy.wav")[0], fs)
    assert mixed["stoi_input"] == pytest.approx(expected, abs=1e-6)
    ext = run_cli("vstoi", arctic_file, "--extended", "--json").json()
    assert ext["measure"] == "ESTOI" and 0 < ext["vstoi"] < 1 and ext["vstoi"] != clean
    text = run_cli("vstoi", arctic_file)
    assert text.code == 0 and text.out.startswith("VSTOI ")


def test_vstoi_bad_inputs_give_one_error_line(run_cli, tmp_path):
    (tmp_path / "bad.wav").write_text("not audio")
    sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    sf.write(tmp_path / "zeros.wav", np.zeros(16000), 16000)
    sf.write(tmp_path / "nan.wav", np.full(16000, np.nan), 16000, subtype="FLOAT")
    sf.write(tmp_path / "short.wav", speechlike(0.25), 16000)
    cases = {
        tmp_path / "missing.wav": "no such file",
        tmp_path / "bad.wav": "cannot be read as audio",
        tmp_path / "empty.wav": "empty",
        tmp_path / "zeros.wav": "all zeros",
        tmp_path / "nan.wav": "NaN",
        tmp_path / "short.wav": "too short",
        tmp_path: "folder",
    }
    for path, fragment in cases.items():
        result = run_cli("vstoi", path, "--json")
        assert_one_error_line(result, str(path), fragment)
        assert result.out == ""


def test_stereo_and_other_rates_are_accepted_with_a_warning(run_cli, tmp_path):
    x = speechlike(2.0, fs=22050)
    sf.write(tmp_path / "stereo.wav", np.stack([x, 0.5 * x], axis=1), 22050)
    result = run_cli("vstoi", tmp_path / "stereo.wav", "--json")
    assert result.code == 0, result.err
    assert "warning:" in result.err and "channel 0" in result.err
    assert 0 < result.json()["vstoi"] <= 1


def test_vocode_writes_a_16k_wav_and_nothing_on_error(run_cli, arctic_file, tmp_path):
    out = tmp_path / "v.wav"
    result = run_cli("vocode", arctic_file, "-o", out)
    assert result.code == 0, result.err
    y, fs = sf.read(out)
    x, _ = sf.read(arctic_file)
    assert fs == 16000 and len(y) == len(x) and np.all(np.isfinite(y))
    bad = run_cli("vocode", tmp_path / "missing.wav", "-o", tmp_path / "w.wav")
    assert_one_error_line(bad, "no such file")
    wrong = run_cli("vocode", arctic_file, "-o", tmp_path / "w.mp3")
    assert_one_error_line(wrong, ".wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.wav"]


def test_usage_errors_are_one_line(run_cli):
    assert_one_error_line(run_cli("vstoi"), "CLEAN")
    assert_one_error_line(run_cli("no-such-command"))
    assert run_cli("--help").code == 0


def test_dataset_build_tiny_json_and_cache_reuse(run_cli, tmp_path):
    first = run_cli("dataset", "build", "--tiny", "--out", tmp_path / "cache", "--json")
    assert first.code == 0, first.err
    summary = first.json()
    assert summary["train"]["items"] == 8 and summary["test"]["items"] == 8
    assert 0 < summary["train"]["reference_vstoi_mean"] <= 1
    assert "dataset:" in first.err  # progress on stderr, not stdout
    again = run_cli("dataset", "build", "--tiny", "--out", tmp_path / "cache", "--json")
    assert again.code == 0 and again.json()["path"] == summary["path"]
    text = run_cli("dataset", "build", "--tiny", "--out", tmp_path / "cache")
    assert "reference VSTOI mean" in text.out


def test_dataset_build_bad_folders_give_one_error_line(run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("dataset", "build", "--speech", tmp_path / "empty", "--out", tmp_path / "c")
    assert_one_error_line(result, str(tmp_path / "empty"))
    missing = run_cli("dataset", "build", "--noise", tmp_path / "nope", "--out", tmp_path / "c")
    assert_one_error_line(missing, str(tmp_path / "nope"))
    assert not any((tmp_path / "c").rglob("*.npz"))


def test_vocode_plot_writes_a_png(run_cli, arctic_file, tmp_path):
    pytest.importorskip("matplotlib")
    result = run_cli("vocode", arctic_file, "-o", tmp_path / "v.wav", "--plot", tmp_path / "v.png", "--json")
    assert result.code == 0, result.err
    assert "warning" not in result.err
    assert result.json()["plot"] == str(tmp_path / "v.png")
    assert (tmp_path / "v.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = run_cli("vocode", arctic_file, "-o", tmp_path / "w.wav", "--plot", tmp_path / "w.pdf")
    assert_one_error_line(bad, ".png")
    assert not (tmp_path / "w.wav").exists()
