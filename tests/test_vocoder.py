"""Sine vocoder (research §2): synthesis kernel vs a plain twin, holds, carriers, bad patterns."""
from __future__ import annotations

import importlib
import numpy as np
import pytest

from conftest import speechlike
A = importlib.import_module("pa_ci.chain.ace")
from pa_ci.chain import vocoder as V
from pa_ci.errors import ParameterError
from naive.chain import synthesis_twin

P = A.AceParams()
NMT4 = A.AceParams.preset("nmt4")


def single_channel_pattern(channel, value=0.7, frames=200):
    pattern = np.zeros((frames, 22), dtype=np.float32)
    pattern[:, channel] = value
    return pattern


def test_synthesis_kernel_matches_twin():
    rng = np.random.default_rng(5)
    env = rng.random((150, 22)) * (rng.random((150, 22)) < 0.4)  # sparse, like a pattern
    env[:, 3] = 0.0  # one silent channel is skipped
    for hop, fs, freqs in [(18, 16000.0, P.centre_frequencies), (7, 8000.0, rng.uniform(50, 3900, 22))]:
        out = np.zeros(env.shape[0] * hop)
        V._synthesize(env, np.ascontiguousarray(freqs), hop, fs, out)
        np.testing.assert_allclose(out, synthesis_twin(env, freqs, hop, fs), rtol=0, atol=1e-11)


def test_vocode_equals_twin_of_inverse_lgf():
    pattern = A.ace(speechlike(0.5), 16000)
    env = A.lgf_inverse(pattern.astype(np.float64), P)
    env[pattern == 0] = 0.0
    expected = synthesis_twin(env, P.centre_frequencies, P.hop, P.fs)
    np.testing.assert_allclose(V.vocode(pattern, normalise=False), expected, atol=1e-11)


def test_vocoded_speech_length_finite_and_normalised():
    pattern = A.ace(speechlike(1.0), 16000)
    out = V.vocode(pattern, P)
    assert out.shape == (pattern.shape[0] * 18,) and out.dtype == np.float64
    assert np.all(np.isfinite(out))
    assert np.max(np.abs(out)) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("channel", [0, 9, 21])
def test_single_channel_gives_a_sine_at_its_centre(channel):
    pattern = single_channel_pattern(channel)
    out = V.vocode(pattern, normalise=False)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size), 8 * out.size))
    peak_hz = np.argmax(spectrum) * 16000 / (8 * out.size)
    assert peak_hz == pytest.approx(P.centre_frequencies[channel], abs=16000 / out.size)
    u = A.lgf_inverse(0.7, P)
    n = np.arange(1, out.size + 1)  # time starts at 1/fs
    np.testing.assert_allclose(out, u * np.sin(2 * np.pi * P.centre_frequencies[channel] * n / 16000),
                               atol=1e-12)


def test_zero_order_hold_fills_the_frames_own_samples():
    pattern = np.zeros((10, 22))
    pattern[3, 0] = 1.0
    out = V.vocode(pattern, normalise=False)
    nonzero = np.flatnonzero(out)
    assert nonzero.min() >= 3 * 18 and nonzero.max() <= 4 * 18 - 1
    held = V.zero_order_hold(np.arange(3.0)[:, None], 4)
    np.testing.assert_array_equal(held[:, 0], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])


def test_envelopes_invert_the_lgf_and_keep_zero():
    pattern = np.zeros((4, 22))
    pattern[1] = 1.0
    pattern[2] = 0.5
    pattern[3, :2] = [1.2, -0.1]  # clipped to [0, 1]
    for params in (P, NMT4):
        env = V.envelopes(pattern, params)
        assert env.dtype == np.float64 and env.shape == (4, 22)
        assert np.all(env[0] == 0)
        np.testing.assert_allclose(env[1], params.lgf_sat, rtol=1e-14)
        np.testing.assert_allclose(A.lgf(env[2], params), 0.5, rtol=1e-12)
        assert env[3, 0] == pytest.approx(params.lgf_sat) and env[3, 1] == 0.0


def test_all_zero_pattern_vocodes_to_zeros():
    out = V.vocode(np.zeros((5, 22), dtype=np.float32))
    assert out.shape == (90,) and not np.any(out) and np.all(np.isfinite(out))


def test_carriers_start_at_n_equals_one():
    c = V.carriers(5, P)
    assert c.shape == (5, 22)
    np.testing.assert_allclose(c[0], np.sin(2 * np.pi * P.centre_frequencies / 16000), rtol=1e-15)


@pytest.mark.parametrize("pattern, fragment", [
    (np.zeros(22), r"shape \(22,\); expected \(frames, 22\)"),
    (np.zeros((5, 21)), r"shape \(5, 21\); expected \(frames, 22\)"),
    (np.zeros((0, 22)), "no frames"),
    (np.full((3, 22), np.nan), "NaN or Inf; expected finite"),
    (np.array([["a"] * 22]), "not numeric"),
])
def test_bad_patterns_raise_parameter_error(pattern, fragment):
    with pytest.raises(ParameterError, match=fragment):
        V.vocode(pattern)
    with pytest.raises(ParameterError, match=fragment):
        V.envelopes(pattern)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_compiled_envelopes_equal_the_numpy_twin(dtype):
    """The fused kernel equals lgf_inverse(check_pattern(p)) on random sparse patterns."""
    rng = np.random.default_rng(5)
    for params in (P, NMT4):
        raw = rng.uniform(-0.2, 1.2, (300, 22)) * (rng.random((300, 22)) < 0.4)
        pattern = (raw > 0.5).astype(dtype) if dtype is np.int64 else raw.astype(dtype)
        expected = A.lgf_inverse(V.check_pattern(pattern, params), params)
        np.testing.assert_allclose(V.envelopes(pattern, params), expected, rtol=1e-13, atol=0)


def test_envelopes_reject_non_finite_and_non_numeric():
    for bad in (np.array([[np.nan] * 22]), np.array([[np.inf] * 22], dtype=np.float32)):
        with pytest.raises(ParameterError, match="NaN or Inf"):
            V.envelopes(bad)
    with pytest.raises(ParameterError, match="not numeric"):
        V.envelopes(np.array([["a"] * 22]))


def test_envelopes_into_a_given_buffer():
    from pa_ci.errors import ParameterError
    from pa_ci.chain.vocoder import envelopes
    rng = np.random.default_rng(3)
    p = np.where(rng.random((50, 22)) < 0.4, rng.random((50, 22)), 0.0)
    out = np.full((50, 22), np.nan)
    assert envelopes(p, out=out) is out
    assert np.array_equal(out, envelopes(p))
    with pytest.raises(ParameterError, match="C-contiguous float64"):
        envelopes(p, out=np.empty((50, 22), dtype=np.float32))
    with pytest.raises(ParameterError, match="shape"):
        envelopes(p, out=np.empty((49, 22)))
