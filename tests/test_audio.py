"""pa_ci.chain.audio: reading, checks, resampling, calibration, atomic writing."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import soundfile as sf

from pa_ci.chain import audio
from pa_ci.errors import AudioError


def _tone(n: int = 1600, fs: int = 16000) -> np.ndarray:
    return 0.25 * np.sin(2 * np.pi * 440 * np.arange(n) / fs)


def test_read_wav_and_flac_round_trip(tmp_path):
    x = _tone()
    for name in ("a.wav", "a.flac"):
        sf.write(tmp_path / name, x, 16000, subtype="PCM_16")
        y, fs = audio.read_audio(tmp_path / name)
        assert fs == 16000 and y.dtype == np.float64 and y.ndim == 1
        np.testing.assert_allclose(y, x, atol=1 / 32768)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        audio.read_audio(tmp_path / "nope.wav")


def test_not_audio(tmp_path):
    p = tmp_path / "text.wav"
    p.write_text("this is not a RIFF file\n")
    with pytest.raises(AudioError, match="cannot be read as audio"):
        audio.read_audio(p)


def test_folder(tmp_path):
    with pytest.raises(AudioError, match="is a folder"):
        audio.read_audio(tmp_path)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros(0), 16000)
    with pytest.raises(AudioError, match="empty"):
        audio.read_audio(p)


def test_all_zero(tmp_path):
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros(100), 16000)
    with pytest.raises(AudioError, match="all zeros"):
        audio.read_audio(p)
    y, _ = audio.read_audio(p, allow_silent=True)
    assert not y.any()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf(tmp_path, bad):
    x = _tone(100)
    x[10] = bad
    with pytest.raises(AudioError, match="NaN or Inf"):
        audio.check_samples(x)
    p = tmp_path / "bad.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf"):
        audio.read_audio(p)


def test_check_samples_shapes():
    with pytest.raises(AudioError, match="not numeric"):
        audio.check_samples(["a", "b"])
    with pytest.raises(AudioError, match="expected mono"):
        audio.check_samples(np.ones((2, 2, 2)))
    out = audio.check_samples([0.1, 0.2])
    assert out.dtype == np.float64 and out.flags.c_contiguous


def test_stereo_uses_channel_0_with_warning(tmp_path):
    left, right = _tone(), 0.5 * _tone()[::-1]
    p = tmp_path / "stereo.wav"
    sf.write(p, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    with pytest.warns(UserWarning, match="2 channels; using channel 0"):
        y, _ = audio.read_audio(p)
    np.testing.assert_allclose(y, left, atol=1e-7)


@pytest.mark.skipif("NIST" not in sf.available_formats(), reason="libsndfile without NIST SPHERE")
def test_nist_sphere(tmp_path):
    x = _tone()
    for name in ("a.sph", "SA1.WAV"):   # TIMIT stores SPHERE files as .WAV
        p = tmp_path / name
        sf.write(p, x, 16000, format="NIST", subtype="PCM_16")
        y, fs = audio.read_audio(p)
        assert fs == 16000
        np.testing.assert_allclose(y, x, atol=1 / 32768)
    assert ".sph" in audio.AUDIO_SUFFIXES


@pytest.mark.parametrize("fs_in,fs_out", [(44100, 16000), (8000, 16000), (48000, 16000), (22050, 16000)])
def test_resample_length(fs_in, fs_out):
    x = np.random.default_rng(0).standard_normal(fs_in)   # 1 s
    y = audio.resample(x, fs_in, fs_out)
    assert y.size == fs_out


def test_resample_keeps_a_tone():
    fs_in, fs_out = 44100, 16000
    t = np.arange(fs_in) / fs_in
    y = audio.resample(np.sin(2 * np.pi * 1000 * t), fs_in, fs_out)
    ref = np.sin(2 * np.pi * 1000 * np.arange(fs_out) / fs_out)
    np.testing.assert_allclose(y[500:-500], ref[500:-500], atol=3e-3)   # Kaiser pass-band ripple


def test_resample_identity_and_errors():
    x = _tone()
    np.testing.assert_array_equal(audio.resample(x, 16000, 16000), x)
    with pytest.raises(AudioError):
        audio.resample(x, 0, 16000)


def test_calibrate_to_65_db_spl():
    y = audio.calibrate(3.0 * _tone(16000))
    rms = math.sqrt(np.mean(y ** 2))
    assert rms == pytest.approx(0.022361, abs=5e-7)       # DECISIONS.md: RMS 0.022361
    assert rms == pytest.approx(10 ** (-30 / 20) / math.sqrt(2), rel=1e-12)
    assert audio.level_db_spl(y) == pytest.approx(65.0, abs=1e-9)
    with pytest.raises(AudioError, match="all-zero"):
        audio.calibrate(np.zeros(10))


def test_level_of_full_scale_sine_is_95_db_spl():
    fs = 16000
    sine = np.sin(2 * np.pi * 1000 * np.arange(fs) / fs)
    assert audio.level_db_spl(sine) == pytest.approx(95.0, abs=1e-6)
    assert audio.level_db_spl(np.zeros(4)) == -math.inf


def test_write_wav_round_trip_and_clipping(tmp_path):
    p = tmp_path / "out.wav"
    x = np.array([0.5, -0.5, 2.0, -2.0])
    audio.write_wav(p, x, 16000)
    y, fs = audio.read_audio(p)
    assert fs == 16000
    np.testing.assert_allclose(y, [0.5, -0.5, 1.0, -1.0], atol=1 / 32768)
    assert [f.name for f in tmp_path.iterdir()] == ["out.wav"]


def test_write_wav_atomic_on_error(tmp_path, monkeypatch):
    target = tmp_path / "out.wav"
    target.write_bytes(b"old content")

    def failing_write(path, data, fs, **kwargs):
        with open(path, "wb") as f:          # a partial file, then a failure
            f.write(b"RIFF partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(audio.sf, "write", failing_write)
    with pytest.raises(RuntimeError, match="disk full"):
        audio.write_wav(target, _tone(), 16000)
    assert target.read_bytes() == b"old content"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out.wav"]
    with pytest.raises(RuntimeError):
        audio.write_wav(tmp_path / "new.wav", _tone(), 16000)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out.wav"]


def test_no_warning_for_mono(tmp_path):
    p = tmp_path / "mono.wav"
    sf.write(p, _tone(), 16000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audio.read_audio(p)


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    """mkstemp creates 0600 files; a finished output has the mode a plain open() would give."""
    from pa_ci._files import current_umask
    audio.write_wav(tmp_path / "x.wav", np.zeros(100), 16000)
    assert (tmp_path / "x.wav").stat().st_mode & 0o777 == 0o666 & ~current_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]
