"""ACE from first principles: research note §1 numbers, Numba kernels vs plain twins, framing."""
from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from conftest import speechlike
A = importlib.import_module("pa_ci.chain.ace")
from pa_ci.errors import AudioError, ParameterError
from naive.chain import agc_twin, maxima_twin

FS = 16000
DEFAULT = A.AceParams()
NMT4 = A.AceParams.preset("nmt4")
#: The no-front-end version of the default (envelope-only checks need the raw scale).
RAW = A.AceParams(agc=False, calibration_db_spl=None)

#: Band centres at 16 kHz from the research note's §1.4 table.
CENTRES_HZ = [250, 375, 500, 625, 750, 875, 1000, 1125, 1250, 1437.5, 1687.5, 1937.5, 2187.5,
              2500, 2875, 3312.5, 3812.5, 4375, 5000, 5687.5, 6500, 7437.5]


def tone(freq, amplitude, n, phase=0.7):
    return amplitude * np.sin(2 * np.pi * freq * np.arange(n) / FS + phase)


# --------------------------------------------------------------------------- parameters
def test_default_parameters_match_the_research_note():
    p = DEFAULT
    assert (p.fs, p.block_length, p.n_maxima, p.n_channels, p.envelope) == (16000, 128, 8, 22, "power")
    assert p.hop == 18
    assert p.analysis_rate == pytest.approx(888.888889, abs=1e-6)
    assert sum(p.band_bins) == 62 and p.band_start_bins[0] == 2 and p.band_start_bins[-1] == 56
    np.testing.assert_array_equal(p.centre_frequencies, CENTRES_HZ)
    assert p.band_edges[0] == 187.5 and p.band_edges[-1] == 7937.5
    assert p.centre_frequencies.dtype == np.float64 and not p.centre_frequencies.flags.writeable


def test_window_is_periodic_hann():
    w = DEFAULT.window
    assert w.size == 128 and w[0] == 0.0 and w[64] == 1.0
    assert w.sum() == pytest.approx(64.0, abs=1e-12)
    np.testing.assert_allclose(w[1:], w[1:][::-1], atol=1e-15)  # symmetric about n = B/2


def test_power_sum_divisors_are_computed_from_the_window():
    gains = dict(zip(DEFAULT.band_bins, DEFAULT.power_sum_gains))
    assert gains[1] == pytest.approx(1024.0, abs=1e-3)
    assert gains[2] == pytest.approx(1475.597, abs=1e-3)
    for width in (3, 4, 5, 6, 7, 8):
        assert gains[width] == pytest.approx(1536.0, abs=1e-3)


def test_vector_sum_divisors_match_the_research_note():
    expected = {1: 32, 2: 54.325, 3: 64, 4: 65.190, 5: 64.534, 6: 64.730, 7: 64.631, 8: 64.684}
    gains = dict(zip(DEFAULT.band_bins, A.AceParams.preset("nmt5").vector_sum_gains))
    for width, value in expected.items():
        assert gains[width] == pytest.approx(value, abs=1e-3)


def test_default_gain_is_the_toolbox_derivation():
    # gain = 20 log10(sat / peak of a tone at C - 6 = 59 dB SPL), research §1.6
    peak = math.sqrt(2) * A.rms_from_db_spl(59.0)
    assert 20 * math.log10(DEFAULT.lgf_sat / peak) == pytest.approx(DEFAULT.gain_db, abs=1e-12)
    assert DEFAULT.agc_kneepoint == pytest.approx(0.079339, abs=1e-6)


def test_presets():
    assert A.AceParams.preset("default") == DEFAULT
    assert A.AceParams.preset("nmt5") == A.AceParams(envelope="vector")
    p = NMT4
    assert (p.calibration_db_spl, p.agc, p.gain_db, p.envelope) == (None, False, 0.0, "power")
    assert (p.lgf_base, p.lgf_sat, p.lgf_q) == (4 / 256, 150 / 256, 20.0)
    assert A.AceParams.preset("nmt4", n_maxima=12).n_maxima == 12


@pytest.mark.parametrize("changes, fragment", [
    ({"n_maxima": 0}, "n_maxima must be an integer in 1..22"),
    ({"n_maxima": 23}, "n_maxima must be an integer in 1..22"),
    ({"lgf_sat": 0.01}, "0 < lgf_base < lgf_sat"),
    ({"lgf_base": 0.0}, "0 < lgf_base < lgf_sat"),
    ({"fs": 0}, "fs must be a positive"),
    ({"fs": -16000}, "fs must be a positive"),
    ({"envelope": "rms"}, "envelope must be one of"),
    ({"channel_rate": 100.0}, "expected at most block_length"),
    ({"band_bins": (1,) * 22 + (42,)}, "expected at most bin 64"),
    ({"block_length": 127}, "block_length must be an even integer"),
    ({"lgf_q": 90.0}, "too large"),
    ({"calibration_db_spl": float("nan")}, "calibration_db_spl"),
])
def test_bad_parameters_raise_parameter_error(changes, fragment):
    with pytest.raises(ParameterError, match=fragment):
        A.AceParams(**changes)


def test_unknown_preset():
    with pytest.raises(ParameterError, match="expected one of"):
        A.AceParams.preset("nmt7")


# --------------------------------------------------------------------------- LGF
def test_lgf_alpha_for_both_generations():
    assert DEFAULT.lgf_alpha == pytest.approx(340.8338167924, abs=1e-4)
    assert NMT4.lgf_alpha == pytest.approx(416.2063475874, abs=1e-4)


@pytest.mark.parametrize("q, alpha", [(10, 184143.2), (15, 3220.22), (25, 116.936), (30, 47.567)])
def test_lgf_alpha_other_q(q, alpha):
    assert A.lgf_alpha(4 / 256, 150 / 256, q) == pytest.approx(alpha, rel=1e-5)


def test_lgf_check_values_nmt4():
    s, b = NMT4.lgf_sat, NMT4.lgf_base
    u = np.array([b / 2, b, s / math.sqrt(10), s / 10, s * 10 ** -1.5, s, 2 * s])
    v = A.lgf(u, NMT4)
    np.testing.assert_allclose(v, [0, 0, 0.8, 0.57625, 0.18855, 1, 1], atol=1e-5)
    assert v[2] == pytest.approx(0.8, abs=1e-12)  # the definition of Q = 20


def test_lgf_inverse_round_trip_and_zero():
    for p in (DEFAULT, NMT4):
        u = np.geomspace(p.lgf_base * (1 + 1e-9), p.lgf_sat, 200)
        np.testing.assert_allclose(A.lgf_inverse(A.lgf(u, p), p), u, rtol=1e-12)
        inv = A.lgf_inverse(np.array([0.0, -1e-10, 1.0, 1.5, 1e-12]), p)
        assert inv[0] == 0.0 and inv[1] == 0.0
        assert inv[2] == pytest.approx(p.lgf_sat, rel=1e-14) and inv[3] == inv[2]
        assert inv[4] == pytest.approx(p.lgf_base, rel=1e-6)


@pytest.mark.parametrize("q", [0.0, -5.0, 75.0])
def test_lgf_alpha_rejects_impossible_q(q):
    with pytest.raises(ParameterError, match="LGF Q"):
        A.lgf_alpha(0.01, 1.0, q)


# --------------------------------------------------------------------------- AGC
def test_agc_kernel_matches_twin():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(6000) * np.repeat([0.01, 0.3, 0.02, 1.0, 0.001, 0.1], 1000)
    np.testing.assert_allclose(A.agc(x, FS), agc_twin(x, FS, A.AGC_KNEEPOINT), rtol=1e-13, atol=0)
    np.testing.assert_allclose(A.agc(x, 8000, knee=0.2), agc_twin(x, 8000, 0.2), rtol=1e-13, atol=0)


def test_agc_leaves_quiet_signals_alone_and_compresses_loud_ones():
    quiet = tone(1000, 0.9 * A.AGC_KNEEPOINT, 4000)
    np.testing.assert_array_equal(A.agc(quiet, FS), quiet)
    loud = A.agc(tone(1000, 0.5, 8000), FS)
    assert np.max(np.abs(loud[4000:])) == pytest.approx(A.AGC_KNEEPOINT, rel=0.02)


# --------------------------------------------------------------------------- framing
@pytest.mark.parametrize("n", [1, 17, 18, 19, 110, 127, 128, 129, 1000, 16366])
def test_frame_count_is_ceil_l_over_hop(n):
    x = np.random.default_rng(n).standard_normal(n)
    assert A.frames(x, RAW).shape == (math.ceil(n / 18), 128)
    assert A.ace(x, FS).shape == (math.ceil(n / 18), 22)
    assert A.n_frames(n, 18) == math.ceil(n / 18)
    assert A.n_frames(16366, 18) == 910  # the toolbox run on asa.wav in research §1.12


def test_frames_are_causal_with_zero_initial_conditions():
    x = np.arange(1.0, 401.0)
    fr = A.frames(x, RAW)
    np.testing.assert_array_equal(fr[0], np.concatenate([np.zeros(110), x[:18]]))
    for k in range(fr.shape[0]):
        idx = np.arange(k * 18 - 110, k * 18 + 18)
        expected = np.where((idx >= 0) & (idx < x.size), x[np.clip(idx, 0, x.size - 1)], 0.0)
        np.testing.assert_array_equal(fr[k], expected)


@pytest.mark.parametrize("n", [0, 5, 17, 18, 200, 399])
def test_impulse_only_reaches_frames_whose_window_covers_it(n):
    x = np.zeros(400)
    x[n] = 1.0
    bins = A.filterbank(x, RAW)
    assert bins.shape == (23, 65)
    for k in range(bins.shape[0]):
        offset = n - (k * 18 - 110)  # position of the impulse inside frame k
        if 0 < offset < 128:
            assert np.all(np.abs(bins[k]) > 0), k
        elif not 0 <= offset < 128:
            assert np.all(bins[k] == 0), k


# --------------------------------------------------------------------------- envelopes
@pytest.mark.parametrize("envelope, widths, tol", [
    ("power", (1, 2, 3, 5, 7), 1e-4),   # band centre on a bin (odd) or half way (2): exact
    ("power", (4, 6, 8), 1e-3),         # the +-1.5 bin leakage of even widths
    ("vector", (1, 2, 3, 4, 5, 6, 7, 8), 2e-2),  # normalised to the peak, not the centre
])
def test_tone_at_band_centre_has_unity_gain(envelope, widths, tol):
    p = A.AceParams(envelope=envelope, agc=False, calibration_db_spl=None)
    amplitude = 0.3
    for c, width in enumerate(p.band_bins):
        if width not in widths:
            continue
        x = tone(p.centre_frequencies[c], amplitude, 4000)
        env = A.band_envelopes(A.filterbank(x, p), p)[10:-2, c]  # steady frames only
        np.testing.assert_allclose(env, amplitude, rtol=tol, err_msg=f"channel {c + 1}")


def test_1437_hz_tone_peaks_in_channel_10():
    pattern = A.ace(tone(1437.5, 0.1, 8000), FS)
    steady = pattern[10:-2]
    assert np.all(np.argmax(steady, axis=1) == 9)
    assert np.all(steady[:, 9] == 1.0)


# --------------------------------------------------------------------------- maxima
def test_select_maxima_matches_stable_argsort_twin():
    rng = np.random.default_rng(7)
    env = rng.random((300, 22))
    ties = rng.integers(0, 3, (300, 22)).astype(float)  # many ties
    for e in (env, ties, np.zeros((3, 22))):
        for n in (1, 8, 12, 22):
            np.testing.assert_array_equal(A.select_maxima(e, n), maxima_twin(e, n))


def test_all_zero_frame_keeps_channels_15_to_22():
    keep = A.select_maxima(np.zeros((1, 22)), 8)
    assert list(np.flatnonzero(keep[0]) + 1) == list(range(15, 23))


def test_silent_stretch_selects_channels_15_to_22_with_nmt4():
    x = np.concatenate([tone(1000, 0.3, 2000), np.zeros(2000), tone(3000, 0.3, 2000)])
    stages = A.ace_stages(x, FS, NMT4)
    silent = [k for k in range(stages.envelopes.shape[0]) if 2000 <= k * 18 - 110 and k * 18 + 17 < 4000]
    assert len(silent) > 90
    for k in silent:
        assert np.all(stages.envelopes[k] == 0)
        assert list(np.flatnonzero(stages.selected[k]) + 1) == list(range(15, 23))
        assert np.all(stages.pattern[k] == 0)  # selected but below base: no pulse


def test_select_maxima_rejects_bad_n():
    with pytest.raises(ParameterError, match="expected 1..22"):
        A.select_maxima(np.zeros((2, 22)), 0)


# --------------------------------------------------------------------------- the chain
def test_loud_noise_gives_exactly_n_channels_per_frame():
    x = np.random.default_rng(0).standard_normal(16000)
    pattern = A.ace(x, FS)
    assert pattern.shape == (math.ceil(16000 / 18), 22) and pattern.dtype == np.float32
    assert np.all((pattern >= 0) & (pattern <= 1))
    assert np.all(np.count_nonzero(pattern[8:], axis=1) == 8)
    assert np.all(np.count_nonzero(pattern, axis=1) <= 8)


def test_speechlike_pattern_properties():
    x = speechlike(2.0)
    pattern = A.ace(x, FS)
    assert pattern.shape == (math.ceil(x.size / 18), 22)
    assert np.all((pattern >= 0) & (pattern <= 1))
    counts = np.count_nonzero(pattern, axis=1)
    assert counts.max() == 8 and np.mean(counts == 8) > 0.5
    np.testing.assert_array_equal(A.ace_stages(x, FS).pattern, pattern)


@pytest.mark.parametrize("preset", ["nmt4", "nmt5"])
def test_presets_run(preset):
    pattern = A.ace(speechlike(1.0), FS, A.AceParams.preset(preset))
    assert pattern.shape == (math.ceil(16000 / 18), 22)
    assert np.all(np.count_nonzero(pattern, axis=1) <= 8) and pattern.max() > 0


def test_other_sample_rates_are_resampled():
    x = speechlike(1.0, fs=32000)
    assert A.ace(x, 32000).shape == (math.ceil(16000 / 18), 22)


def test_level_calibration_makes_the_scale_irrelevant():
    x = speechlike(1.0)
    np.testing.assert_allclose(A.ace(x, FS), A.ace(7.3 * x, FS), atol=1e-6)


def test_nmt4_accepts_silence():
    pattern = A.ace(np.zeros(1000), FS, NMT4)
    assert pattern.shape == (56, 22) and not pattern.any()


@pytest.mark.parametrize("audio, fragment", [
    (np.array([]), "empty"),
    (np.array([0.1, np.nan, 0.2]), "NaN"),
    (np.array([0.1, np.inf]), "NaN or Inf"),
    (np.zeros(100), "all zeros"),
    (np.zeros((3, 3, 3)), "expected mono"),
])
def test_bad_audio_raises_audio_error(audio, fragment):
    with pytest.raises(AudioError, match=fragment):
        A.ace(audio, FS)
