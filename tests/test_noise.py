"""pa_ci.chain.noise: CCITT (ITU-T G.227) noise and noise folders."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from pa_ci.chain import noise
from pa_ci.errors import DataError, ParameterError

FS = 16000


def test_g227_sections_multiply_out_to_the_polynomials():
    # The two transcriptions of the G.227 network (expanded and three sections) must agree.
    num, den = np.array([1.0]), np.array([1.0])
    for n, d in noise.G227_SECTIONS:
        num, den = np.polymul(num, n), np.polymul(den, d)
    np.testing.assert_array_equal(num, noise.G227_LOSS_NUMERATOR)
    np.testing.assert_array_equal(den, noise.G227_LOSS_DENOMINATOR)


def test_g227_analog_shape():
    f = np.linspace(50, 8000, 2000)
    g = noise.g227_gain_db(f)
    peak = f[np.argmax(g)]
    assert 550 < peak < 700                         # maximum near 600 Hz
    rel = noise.g227_gain_db(np.array([100.0, 1000.0, 2000.0, 4000.0, 8000.0])) - noise.g227_gain_db(600.0)
    # Levels re 600 Hz (values of the G.227 formula; a regression check of the transcription).
    np.testing.assert_allclose(rel, [-11.01, -1.52, -10.09, -24.21, -40.19], atol=0.01)


def test_digital_chain_matches_the_analog_network():
    f = np.array([50, 100, 200, 300, 500, 600, 800, 1000, 1500, 2000, 3000, 3400, 4000, 5000,
                  6000, 7000], dtype=float)
    err = noise.g227_digital_gain_db(f, FS) - noise.g227_gain_db(f)
    assert np.max(np.abs(err[f <= 3400])) < 0.06    # telephone band: bilinear warping only
    assert np.max(np.abs(err)) < 0.35               # up to 7 kHz: plus the decimator's edge


def test_ccitt_noise_spectrum_follows_g227():
    x = noise.ccitt_noise(40 * FS, FS, np.random.default_rng(123))
    fw, p = signal.welch(x, FS, nperseg=2048)
    level = 10 * np.log10(p)
    f_test = np.array([100, 200, 400, 600, 1000, 1500, 2000, 3000, 4000, 5000, 6000], dtype=float)

    def measured(f0: float) -> float:   # average over +-3 bins around f0 (Welch variance)
        i = int(np.argmin(np.abs(fw - f0)))
        return float(np.mean(level[i - 3:i + 4]))

    got = np.array([measured(f) for f in f_test]) - measured(600.0)
    want = noise.g227_gain_db(f_test) - noise.g227_gain_db(600.0)
    np.testing.assert_allclose(got, want, atol=0.6)


def test_ccitt_noise_is_deterministic_from_the_seed():
    a = noise.ccitt_noise(5000, FS, np.random.default_rng(7))
    b = noise.ccitt_noise(5000, FS, np.random.default_rng(7))
    c = noise.ccitt_noise(5000, FS, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.shape == (5000,) and a.dtype == np.float64
    assert np.sqrt(np.mean(a ** 2)) == pytest.approx(noise.CCITT_RMS, rel=1e-12)
    assert np.sqrt(np.mean(noise.ccitt_noise(100, FS, np.random.default_rng(0), rms=1.0) ** 2)) == \
        pytest.approx(1.0)


def test_ccitt_noise_starts_stationary():
    # The warm-up hides filter transients: the first 100 ms are as loud as the rest.
    x = noise.ccitt_noise(4 * FS, FS, np.random.default_rng(3))
    first = np.sqrt(np.mean(x[:1600] ** 2))
    assert first == pytest.approx(noise.CCITT_RMS, rel=0.2)


def test_ccitt_noise_other_rate():
    x = noise.ccitt_noise(8000, 8000, np.random.default_rng(0))
    assert x.shape == (8000,) and np.all(np.isfinite(x))


@pytest.mark.parametrize("args", [(0, FS), (1.5, FS), (10, 0), (10, 100.5)])
def test_ccitt_noise_rejects_bad_arguments(args):
    with pytest.raises(ParameterError):
        noise.ccitt_noise(*args, np.random.default_rng(0))


def test_ccitt_noise_needs_a_generator():
    with pytest.raises(ParameterError, match="Generator"):
        noise.ccitt_noise(10, FS, 42)


def test_load_noises_bundled(bundled_speech):
    noises = noise.load_noises(bundled_speech.parent / "noise")
    assert sorted(noises) == ["babble_librispeech_8talker", "city_traffic", "kitchen_doing_the_dishes",
                              "restaurant_ambience", "street_bus_tram_people_potsdam",
                              "street_cars_potsdam", "train"]
    for name, x in noises.items():
        assert x.dtype == np.float64 and x.ndim == 1
        assert 7 * FS <= x.size <= 20 * FS, name


def test_load_noises_resamples_and_names_subfolders(tmp_path):
    (tmp_path / "sub").mkdir()
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "hum.wav", 0.1 * rng.standard_normal(8000), 8000)        # 1 s at 8 kHz
    sf.write(tmp_path / "sub" / "fan.FLAC", 0.1 * rng.standard_normal(44100), 44100)
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / ".hidden.wav").write_bytes(b"")
    noises = noise.load_noises(tmp_path)
    assert sorted(noises) == ["hum", "sub/fan"]
    assert noises["hum"].size == FS and noises["sub/fan"].size == FS


def test_load_noises_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        noise.load_noises(tmp_path / "missing")
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no audio files"):
        noise.load_noises(tmp_path)
