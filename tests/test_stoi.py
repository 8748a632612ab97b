"""STOI/ESTOI vs pystoi 0.4.1 on real speech + noise, and each Numba kernel vs a NumPy twin.

Contract (DECISIONS.md): |ours - pystoi| <= 1e-6 on real speech at 16 kHz and 10 kHz, STOI and
ESTOI. Observed agreement is ~1e-14; ``test_agreement_is_tight`` guards that.
"""
from __future__ import annotations

import importlib
import functools
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

import pystoi  # the oracle (test extra, pinned): a missing oracle must fail, not skip
from pystoi import utils as pystoi_utils  # noqa: E402

S = importlib.import_module("pa_ci.chain.stoi")  # noqa: E402
SK = importlib.import_module("pa_ci.chain._stoi_kernels")  # noqa: E402
F = importlib.import_module("pa_ci.chain._fft")  # noqa: E402
R = importlib.import_module("pa_ci.chain._resample")  # noqa: E402
from pa_ci.errors import AudioError, ParameterError  # noqa: E402
from naive.chain import band_twin, bit_reverse, estoi_twin, row_col_twin, stoi_twin  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "pa_ci" / "bundled"  # bundled copies: never skipped
# (speech, noise): test-other and cmu_arctic only (train-clean-100 is held out).
PAIRS = [
    ("speech/cmu_arctic/cmu_arctic_us_aew_a0001.wav", "noise/city_traffic.flac"),
    ("speech/cmu_arctic/cmu_arctic_us_axb_a0004.wav", "noise/babble_librispeech_8talker.flac"),
    ("speech/librispeech/test-other/1688-142285-0009.flac", "noise/kitchen_doing_the_dishes.flac"),
    ("speech/librispeech/test-other/1998-15444-0007.flac", "noise/restaurant_ambience.flac"),
]
SNRS = [-5, 5, 20]
TOL = 1e-6  # DECISIONS.md: agreement with pystoi 0.4.1



@functools.lru_cache(maxsize=None)
def _read(rel: str) -> np.ndarray:
    x, fs = sf.read(str(DATA / rel), dtype="float64")
    assert fs == 16000
    return x


@functools.lru_cache(maxsize=None)
def mixture(pair: int, snr: float, fs: int) -> tuple[np.ndarray, np.ndarray]:
    """Clean speech and speech + noise at ``snr`` dB (noise segment at a fixed offset)."""
    speech_rel, noise_rel = PAIRS[pair]
    x = _read(speech_rel)
    n = _read(noise_rel)[16000:16000 + x.size]
    y = x + n * np.sqrt(np.sum(x ** 2) / np.sum(n ** 2) / 10 ** (snr / 10))
    if fs == 10000:
        x, y = resample_poly(x, 5, 8), resample_poly(y, 5, 8)
    return x, y


_DIFFS: list[float] = []


@pytest.mark.parametrize("fs", [16000, 10000])
@pytest.mark.parametrize("snr", SNRS)
@pytest.mark.parametrize("pair", range(len(PAIRS)))
def test_stoi_matches_pystoi(pair, snr, fs):
    x, y = mixture(pair, snr, fs)
    for extended in (False, True):
        ours = S.stoi(x, y, fs, extended=extended)
        ref = pystoi.stoi(x, y, fs, extended=extended)
        _DIFFS.append(abs(ours - ref))
        assert abs(ours - ref) <= TOL, (extended, ours, ref)
        assert isinstance(ours, float)


def test_agreement_is_tight():
    """Regression guard: the agreement observed when this was written is ~1e-14."""
    if not _DIFFS:
        for fs in (16000, 10000):
            x, y = mixture(0, 5, fs)
            for extended in (False, True):
                _DIFFS.append(abs(S.stoi(x, y, fs, extended) - pystoi.stoi(x, y, fs, extended)))
    assert max(_DIFFS) < 1e-11


@pytest.mark.parametrize("fs", [16000, 10000])
def test_reference_stoi_equals_stoi(fs):
    x, y = mixture(2, 5, fs)
    ref = S.Reference(x, fs)
    for extended in (False, True):
        assert ref.stoi(y, extended) == S.stoi(x, y, fs, extended)
    # the clean side is reusable: a second processed signal against the same reference
    x2, y2 = mixture(2, -5, fs)
    assert ref.stoi(y2) == S.stoi(x, y2, fs)


@pytest.mark.parametrize("fs", [16000, 10000])
def test_short_input_warns_and_returns_1e5_like_pystoi(fs):
    x, y = mixture(0, 5, fs)
    n = int(0.35 * fs)  # < 30 STFT frames after silent-frame removal
    x, y = x[fs // 2:fs // 2 + n], y[fs // 2:fs // 2 + n]
    with pytest.warns(RuntimeWarning):
        expected = pystoi.stoi(x, y, fs)
    for extended in (False, True):
        with pytest.warns(RuntimeWarning, match="returning 1e-05"):
            assert S.stoi(x, y, fs, extended) == expected == 1e-5


def test_no_frame_at_all_warns_instead_of_crashing():
    """pystoi raises on <= 256 samples at 10 kHz (np.max of nothing); we warn and return 1e-5."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(200), rng.standard_normal(200)
    with pytest.warns(RuntimeWarning):
        assert S.stoi(x, y, 10000) == 1e-5


def test_input_errors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(20000)
    with pytest.raises(ParameterError, match="same shape"):
        S.stoi(x, x[:-1], 16000)
    with pytest.raises(ValueError):  # ParameterError is a ValueError, as pystoi callers expect
        S.stoi(x, x[:-1], 16000)
    with pytest.raises(ParameterError, match="sample rate"):
        S.stoi(x, x, 16000.5)
    with pytest.raises(ParameterError, match="1-D"):
        S.stoi(x.reshape(-1, 2), x.reshape(-1, 2), 16000)
    bad = x.copy()
    bad[5] = np.nan
    with pytest.raises(AudioError):
        S.stoi(x, bad, 16000)
    with pytest.raises(ParameterError, match="same shape"):
        S.Reference(x, 16000).stoi(x[:100])


def test_deterministic_and_gain_invariant():
    x, y = mixture(1, 5, 16000)
    for extended in (False, True):
        a = S.stoi(x, y, 16000, extended)
        assert S.stoi(x, y, 16000, extended) == a  # no random noise (pystoi's ESTOI has some)
        assert abs(S.stoi(x, 7.3 * y, 16000, extended) - a) < 1e-12
        assert abs(S.stoi(0.1 * x, y, 16000, extended) - a) < 1e-12


# --- kernels against NumPy twins ------------------------------------------------------------------

@pytest.mark.parametrize("fs", [16000, 8000, 22050, 44100])
def test_resampler_matches_pystoi_resample_oct(fs):
    x = np.random.default_rng(1).standard_normal(fs // 2)
    np.testing.assert_array_equal(S._to_10k(x, fs), pystoi_utils.resample_oct(x, 10000, fs))
    assert R._octave_filter(16000, S.FS)[:3] == (5, 8, 290)  # 581 taps (signal_chain_research.md 4.2)


def test_band_edges_match_pystoi_thirdoct():
    obm, _ = pystoi_utils.thirdoct(10000, 512, 15, 150)
    for j in range(15):
        np.testing.assert_array_equal(np.flatnonzero(obm[j]),
                                      np.arange(S.BAND_LO[j], S.BAND_HI[j]))
    assert (S.BAND_LO[0], S.BAND_HI[-1]) == (7, 219)


@pytest.mark.parametrize("pair", [0, 2])
def test_kept_frames_and_stft_frames_equal_pystoi_bitwise(pair):
    """_kept_frame_starts + _stft_frames == pystoi remove_silent_frames + stft framing."""
    x, y = mixture(pair, 5, 10000)
    x_sil, y_sil = pystoi_utils.remove_silent_frames(x, y, 40, 256, 128)
    w = np.hanning(258)[1:-1]
    ks = S._kept_frame_starts(x)
    for sig, sil in ((x, x_sil), (y, y_sil)):
        twin = np.array([w * sil[i:i + 256] for i in range(0, len(sil) - 256, 128)])
        frames = np.empty((ks.size - 1, 256))
        SK._stft_frames(sig, ks, S.WINDOW, frames)
        np.testing.assert_array_equal(frames, twin)


def test_fft128_lanes_equals_numpy_fft():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((128, 5)) + 1j * rng.standard_normal((128, 5))
    re = np.empty((128, 5))
    im = np.empty((128, 5))
    re[bit_reverse(128)] = z.real
    im[bit_reverse(128)] = z.imag
    F._fft128_lanes(re, im, S._FFT_TW)
    np.testing.assert_allclose(re + 1j * im, np.fft.fft(z, axis=0), rtol=0, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(n_frames=st.integers(1, 70), seed=st.integers(0, 2 ** 31))
def test_band_envelopes_equal_numpy_twin(n_frames, seed):
    frames = np.random.default_rng(seed).standard_normal((n_frames, 256))
    out = np.empty((15, n_frames))
    F._frames_band_envelopes(frames, S.BAND_LO, S.BAND_HI, S._FFT_REV, S._FFT_TW, out)
    twin = band_twin(frames)
    np.testing.assert_allclose(out, twin, rtol=1e-12, atol=1e-12 * twin.max())


def _band_pair(seed, T=80):
    rng = np.random.default_rng(seed)
    xb = np.abs(rng.standard_normal((15, T))) + 0.05
    yb = np.abs(rng.standard_normal((15, T))) * 0.3 + 0.5 * xb
    yb[:, 20:35] *= 20.0  # loud distortion: exercises the -15 dB clipping
    yb[3, 40:75] = 1.5    # constant row: zero-norm guard of the ESTOI normalisation
    return xb, yb


@pytest.mark.parametrize("seed", [0, 1])
def test_stoi_core_equals_numpy_twin(seed):
    xb, yb = _band_pair(seed)
    stats = SK._stoi_x_stats(xb, S.N_SEGMENT)
    got = SK._stoi_core(xb, yb, *stats, S.N_SEGMENT, S.CLIP_FACTOR)
    assert abs(got - stoi_twin(xb, yb)) < 1e-13


@pytest.mark.parametrize("seed", [0, 1])
def test_estoi_core_equals_numpy_twin(seed):
    xb, yb = _band_pair(seed)
    xbar = SK._estoi_x_precompute(xb, S.N_SEGMENT)
    np.testing.assert_allclose(xbar[5], row_col_twin(xb[:, 5:35]), atol=1e-14)
    got = SK._estoi_core(xbar, yb, S.N_SEGMENT)
    assert np.isfinite(got)
    assert abs(got - estoi_twin(xb, yb)) < 1e-13


def test_estoi_matches_pystoi_with_its_noise_off(monkeypatch):
    """With pystoi's EPS*randn replaced by zeros, ESTOI agrees to rounding (not just 1e-6)."""
    x, y = mixture(3, 5, 16000)
    monkeypatch.setattr(np.random, "standard_normal", lambda shape: np.zeros(shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert abs(S.stoi(x, y, 16000, True) - pystoi.stoi(x, y, 16000, True)) < 1e-13


@settings(max_examples=20, deadline=None)
@given(T=st.integers(30, 120), seed=st.integers(0, 2 ** 31))
def test_blocked_stoi_core_equals_plain_bitwise(T, seed):
    """_stoi_core (8 segments at a time in registers) == _stoi_core_plain bitwise, for any number
    of segments (block remainder included), and both == a NumPy twin of Taal et al. Eq. 3-6."""
    rng = np.random.default_rng(seed)
    xb = rng.uniform(0, 2, (S.NUMBAND, T)) ** 3
    yb = np.abs(xb * rng.uniform(0.2, 3, xb.shape) + rng.standard_normal(xb.shape))
    stats = SK._stoi_x_stats(xb, S.N_SEGMENT)
    got = SK._stoi_core(xb, yb, *stats, S.N_SEGMENT, S.CLIP_FACTOR)
    assert got == SK._stoi_core_plain(xb, yb, *stats, S.N_SEGMENT, S.CLIP_FACTOR)
    N = S.N_SEGMENT
    xs = np.lib.stride_tricks.sliding_window_view(xb, N, axis=1)  # (J, M, N)
    ys = np.lib.stride_tricks.sliding_window_view(yb, N, axis=1)
    alpha = np.linalg.norm(xs, axis=2, keepdims=True) / (np.linalg.norm(ys, axis=2, keepdims=True) + S.EPS)
    yp = np.minimum(alpha * ys, xs * S.CLIP_FACTOR)
    yc = yp - yp.mean(axis=2, keepdims=True)
    xc = xs - xs.mean(axis=2, keepdims=True)
    d = np.sum(xc * yc, axis=2) / ((np.linalg.norm(xc, axis=2) + S.EPS) * (np.linalg.norm(yc, axis=2) + S.EPS))
    assert abs(got - d.mean()) < 1e-12
