"""Fast VSTOI (Reference.vstoi_envelopes, ReferenceSet) against the plain path.

Oracle: a plain NumPy vocoder (zero-order hold 'repeat' + sines sin(2 pi f n / fs), n = 1, 2, ...,
summed, peak-normalised; signal_chain_research.md Sec. 2), trimmed to the clean length L, scored by
``pystoi.stoi(clean, vocoded[:L], fs)``. Contract: |fast - oracle| <= 1e-6 (observed ~1e-13).
"""
from __future__ import annotations

import importlib
import functools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

import pystoi  # the oracle (test extra, pinned): a missing oracle must fail, not skip
from pystoi import utils as pystoi_utils  # noqa: E402

S = importlib.import_module("pa_ci.chain.stoi")  # noqa: E402
SK = importlib.import_module("pa_ci.chain._stoi_kernels")  # noqa: E402
V = importlib.import_module("pa_ci.chain.vstoi")  # noqa: E402
VO = importlib.import_module("pa_ci.chain._vstoi_one")  # noqa: E402
R = importlib.import_module("pa_ci.chain._resample")  # noqa: E402
from pa_ci.errors import ParameterError  # noqa: E402
from naive.chain import FREQS, FS, HOP, exact_phase_vocoder, lgf_twin, plain_vocoder  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "pa_ci" / "bundled"  # bundled copies: never skipped
SPEECH = [  # test-other and cmu_arctic only (train-clean-100 is held out)
    "speech/cmu_arctic/cmu_arctic_us_aew_a0001.wav",
    "speech/librispeech/test-other/1688-142285-0002.flac",
    "speech/librispeech/test-other/1998-15444-0008.flac",
]
TOL = 1e-6
# FS = 16000, HOP = 18 and the 22 band centres FREQS come with the twins (naive.chain)


def sparse_envelopes(n_frames, seed, active=8, n_ch=22):
    """ACE-like random envelopes: ``active`` of ``n_ch`` channels per frame, values in [0.01, 1]."""
    rng = np.random.default_rng(seed)
    E = np.zeros((n_frames, n_ch))
    idx = np.argsort(rng.random((n_frames, n_ch)), axis=1)[:, :active]
    np.put_along_axis(E, idx, rng.uniform(0.01, 1.0, (n_frames, active)), axis=1)
    return E


def speech_envelopes(x, hop=HOP, fs=FS, freqs=FREQS, active=8):
    """Envelopes from the speech's own band energies: 128-point Hann FFT every ``hop`` samples,
    power summed between the midpoints of the carrier frequencies, sqrt, 8 maxima per frame,
    scaled to a peak of 1, values under 0.01 dropped (a crude ACE)."""
    n_frames = -(-x.size // hop)
    xp = np.concatenate([np.zeros(127), x, np.zeros(hop)])
    frames = np.lib.stride_tricks.sliding_window_view(xp, 128)[::hop][:n_frames]
    power = np.abs(np.fft.rfft(frames * np.hanning(128), axis=1)) ** 2
    f = np.fft.rfftfreq(128, 1 / fs)
    edges = np.concatenate([[freqs[0] - 62.5], (freqs[1:] + freqs[:-1]) / 2, [fs / 2]])
    E = np.stack([power[:, (f >= lo) & (f < hi)].sum(axis=1)
                  for lo, hi in zip(edges[:-1], edges[1:])], axis=1) ** 0.5
    keep = np.argsort(-E, axis=1)[:, :active]
    mask = np.zeros_like(E, dtype=bool)
    np.put_along_axis(mask, keep, True, axis=1)
    E = np.where(mask, E, 0.0) / E.max()
    return np.where(E >= 0.01, E, 0.0)


@functools.lru_cache(maxsize=None)
def speech(i: int) -> np.ndarray:
    x, fs = sf.read(str(DATA / SPEECH[i]), dtype="float64")
    assert fs == FS
    return x


@functools.lru_cache(maxsize=None)
def reference(i: int) -> S.Reference:
    return S.Reference(speech(i), FS)


def envelopes(i: int, kind: str) -> np.ndarray:
    x = speech(i)
    return sparse_envelopes(-(-x.size // HOP), seed=i) if kind == "sparse" else speech_envelopes(x)


@pytest.mark.parametrize("extended", [False, True])
@pytest.mark.parametrize("kind", ["sparse", "speech"])
@pytest.mark.parametrize("item", range(len(SPEECH)))
def test_fast_vstoi_matches_plain_vocoder_and_pystoi(item, kind, extended):
    x, E = speech(item), envelopes(item, kind)
    oracle = pystoi.stoi(x, plain_vocoder(E)[: x.size], FS, extended=extended)
    fast = reference(item).vstoi_envelopes(E, FREQS, HOP, extended=extended)
    assert abs(fast - oracle) <= TOL, (fast, oracle)
    assert abs(fast - oracle) < 1e-11  # observed ~1e-13: guard against silent regressions


def test_peak_normalisation_does_not_matter():
    """STOI is gain invariant, so skipping the vocoder's peak normalisation is exact (to ~1e-15)."""
    x, E = speech(0), envelopes(0, "speech")
    y = plain_vocoder(E, normalise=False)[: x.size]
    for extended in (False, True):
        with_norm = pystoi.stoi(x, y / np.max(np.abs(y)), FS, extended=extended)
        without = S.stoi(x, y, FS, extended=extended)
        assert abs(with_norm - without) < 1e-12
        fast = [reference(0).vstoi_envelopes(g * E, FREQS, HOP, extended) for g in (1e-3, 1, 1e3)]
        assert max(fast) - min(fast) < 1e-12
        assert abs(fast[1] - with_norm) < 1e-11


def test_dense_envelopes_and_long_pattern():
    """All 22 channels active, and more frames than needed (K hop > L): trimmed like the oracle."""
    x = speech(1)
    E = np.random.default_rng(5).uniform(0.0, 1.0, (-(-x.size // HOP) + 7, 22))
    fast = reference(1).vstoi_envelopes(E, FREQS, HOP)
    assert abs(fast - pystoi.stoi(x, plain_vocoder(E)[: x.size], FS)) < 1e-11


def test_reference_set_equals_items_and_both_input_forms():
    refs = [reference(i) for i in range(len(SPEECH))]
    short = S.Reference(speech(0)[8000:8000 + 6000], FS)  # < 30 frames: scores 1e-5
    refs.insert(1, short)
    Es = [sparse_envelopes(-(-r.length // HOP), seed=10 + i) for i, r in enumerate(refs)]
    rset = V.ReferenceSet(refs)
    assert len(rset) == 4
    for extended in (False, True):
        with pytest.warns(RuntimeWarning, match="1 item"):
            got = rset.vstoi_envelopes(Es, FREQS, HOP, extended=extended)
        with pytest.warns(RuntimeWarning):
            items = [r.vstoi_envelopes(E, FREQS, HOP, extended) for r, E in zip(refs, Es)]
        np.testing.assert_array_equal(got, items)
        assert got[1] == 1e-5
        off = np.concatenate([[0], np.cumsum([len(E) for E in Es])])
        with pytest.warns(RuntimeWarning):
            packed = rset.vstoi_envelopes(np.concatenate(Es), FREQS, HOP, offsets=off,
                                          extended=extended)
        np.testing.assert_array_equal(packed, got)


def test_vocode_runs_equals_plain_vocoder():
    ref = reference(0)
    E = envelopes(0, "sparse")
    _, runs16 = ref.needed_runs()
    st_, ct_, cs = VO._carrier_tables(FREQS, HOP, FS, E.shape[0])
    pad = 100
    y16p = np.full(ref.length + 2 * pad, np.nan)
    VO._vocode_runs(E, st_, ct_, cs, HOP, ref.length, runs16, pad, y16p)
    # Twin with the carrier phase reduced exactly: f n is exact in float64 and fmod is exact.
    twin = exact_phase_vocoder(E)[: ref.length]
    covered = np.zeros(ref.length, dtype=bool)
    for a, b in runs16:
        covered[a:b] = True
    got = y16p[pad:pad + ref.length]
    np.testing.assert_allclose(got[covered], twin[covered], rtol=0, atol=1e-13)
    # The naive oracle's sin(2 pi f n / fs) rounds its ~1e5 rad argument: ~4e-11 off.
    naive = plain_vocoder(E, normalise=False)[: ref.length]
    np.testing.assert_allclose(got[covered], naive[covered], rtol=0, atol=1e-9)
    assert np.all(y16p[:pad] == 0) and np.all(y16p[pad + ref.length:] == 0)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2000, 9000), fs=st.sampled_from([16000, 8000, 22050]),
       a=st.floats(0, 0.5), b=st.floats(0.5, 1), seed=st.integers(0, 2 ** 31))
def test_resample_runs_equals_pystoi_resample_oct(n, fs, a, b, seed):
    """The polyphase kernel at any output range equals scipy/pystoi's resample_oct there."""
    x = np.random.default_rng(seed).standard_normal(n)
    full = pystoi_utils.resample_oct(x, 10000, fs)
    up, down, half, h_up = R._octave_filter(fs, S.FS)
    G = R._polyphase_table(up, down, half, h_up)
    pad = G.shape[1] + 1
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    m0, m1 = int(a * full.size), int(b * full.size)
    out = np.full(full.size, np.nan)
    R._resample_runs(xp, pad, G, down, half, np.array([[m0, m1]]), out)
    np.testing.assert_allclose(out[m0:m1], full[m0:m1], rtol=0, atol=1e-13)
    assert np.all(np.isnan(out[:m0])) and np.all(np.isnan(out[m1:]))


def test_only_needed_samples_are_read():
    """Samples outside the needed runs are never read: NaN there leaves the STOI bands finite."""
    ref = reference(2)
    runs10, _ = ref.needed_runs()
    y10 = np.random.default_rng(3).standard_normal(ref.length10)
    masked = np.full_like(y10, np.nan)
    for a, b in runs10:
        masked[a:b] = y10[a:b]
    full = SK._y_side(y10, ref.kept_starts, S.WINDOW, S.BAND_LO, S.BAND_HI, S._FFT_REV, S._FFT_TW)
    part = SK._y_side(masked, ref.kept_starts, S.WINDOW, S.BAND_LO, S.BAND_HI, S._FFT_REV,
                     S._FFT_TW)
    np.testing.assert_array_equal(part, full)


@pytest.mark.parametrize("fs, hop", [(8000, 9), (10000, 12)])
def test_other_reference_rates(fs, hop):
    """Generic polyphase path (8 kHz: up 5 / down 4) and no resampling at all (10 kHz)."""
    x = pystoi_utils.resample_oct(speech(0), fs, FS)
    freqs = FREQS[FREQS < fs / 2]
    E = sparse_envelopes(-(-x.size // hop), seed=7, n_ch=freqs.size)
    oracle = pystoi.stoi(x, plain_vocoder(E, freqs, hop, fs)[: x.size], fs)
    assert abs(S.Reference(x, fs).vstoi_envelopes(E, freqs, hop) - oracle) < 1e-11


def test_envelope_errors():
    ref = reference(0)
    K = -(-ref.length // HOP)
    with pytest.raises(ParameterError, match="shorter"):
        ref.vstoi_envelopes(np.ones((K - 1, 22)), FREQS, HOP)
    with pytest.raises(ParameterError, match="shape"):
        ref.vstoi_envelopes(np.ones((K, 21)), FREQS, HOP)
    with pytest.raises(ParameterError, match="hop"):
        ref.vstoi_envelopes(np.ones((K, 22)), FREQS, 0)
    rset = V.ReferenceSet([ref])
    with pytest.raises(ParameterError, match="expected 1"):
        rset.vstoi_envelopes([], FREQS, HOP)
    with pytest.raises(ParameterError, match="offsets"):
        rset.vstoi_envelopes(np.ones((K, 22)), FREQS, HOP, offsets=[0, K + 1])
    with pytest.raises(ParameterError, match="shorter"):
        rset.vstoi_envelopes([np.ones((K - 1, 22))], FREQS, HOP)
    with pytest.raises(ParameterError, match="one sample rate"):
        V.ReferenceSet([ref, S.Reference(speech(0)[::2], 8000)])
    with pytest.raises(ParameterError):
        V.ReferenceSet([])


def test_non_finite_envelopes_raise():
    ref = reference(0)
    K = -(-ref.length // HOP)
    E = np.ones((K, 22))
    E[K // 2, 3] = np.nan  # mid-signal: inside kept speech
    with pytest.raises(ParameterError, match="NaN"):
        ref.vstoi_envelopes(E, FREQS, HOP)
    with pytest.raises(ParameterError, match=r"item\(s\) \[0\]"):
        V.ReferenceSet([ref]).vstoi_envelopes([E], FREQS, HOP)


@pytest.mark.parametrize("fs", [16000, 8000, 22050])
def test_resampler_reads_only_samples_the_vocoder_wrote(fs):
    """Regression: every sample the resampler reads (zero-padded taps too) is written first.

    The work buffers are ``np.empty``; memory that happens to hold NaN must not reach a score
    (0 * NaN = NaN), so the buffer is pre-filled with NaN here.
    """
    clean = speech(0) if fs == FS else pystoi_utils.resample_oct(speech(0), fs, FS)
    ref = S.Reference(clean, fs)
    hop = HOP if fs == FS else 9
    K = -(-ref.length // hop)
    E = np.random.default_rng(3).uniform(0.01, 1.0, (K, FREQS.size))
    runs10, runs16 = ref.needed_runs()
    G, down, half = R._polyphase(ref.fs, S.FS)
    st_, ct_, cs = VO._carrier_tables(FREQS, hop, fs, K)
    pad = G.shape[1] + 1
    y16p = np.full(ref.length + 2 * pad, np.nan)
    VO._vocode_runs(E, st_, ct_, cs, hop, ref.length, runs16, pad, y16p)
    y10 = np.full(ref.length10, np.nan)
    R._resample_runs(y16p, pad, G, down, half, runs10, y10)
    needed = np.concatenate([np.arange(a, b) for a, b in runs10])
    assert np.all(np.isfinite(y10[needed]))


# --- compact input: the kept maxima of a pattern (ReferenceSet.vstoi_maxima) ----------------------

from pa_ci.chain.ace import default_params  # noqa: E402
from pa_ci.chain.vocoder import envelopes as dense_envelopes  # noqa: E402

ACE = default_params()


def maxima_of(dense, m=8):
    """(chans, vals) of a dense pattern with <= m nonzero values a row: the m largest entries of
    each row (ties by channel), in ascending channel order (the forward_maxima contract)."""
    keep = np.sort(np.argsort(-dense, axis=1, kind="stable")[:, :m], axis=1)
    return keep.astype(np.int8), np.take_along_axis(dense, keep, axis=1)


def random_pattern(n_frames, seed, m=8):
    """Decoder-like pattern: m channels a frame with magnitudes in (0, 1), some exactly 1."""
    rng = np.random.default_rng(seed)
    P = np.zeros((n_frames, 22))
    idx = np.argsort(rng.random((n_frames, 22)), axis=1)[:, :m]
    v = rng.uniform(0.0, 1.0, (n_frames, m))
    v[rng.random(v.shape) < 0.02] = 1.0
    np.put_along_axis(P, idx, v, axis=1)
    return P


@pytest.mark.parametrize("alpha", [None, 20.0, 5000.0, 1e6])
def test_inverse_lgf_values_matches_numpy_twin(alpha):
    """The vectorised exp (series + squarings) against NumPy's exp: relative error ~1e-14."""
    from types import SimpleNamespace
    params = ACE if alpha is None else SimpleNamespace(lgf_alpha=alpha, lgf_base=0.01, lgf_sat=1.0)
    v = np.concatenate([np.linspace(-0.2, 1.3, 20001), [0.0, 1.0, 1e-300, 5e-324, -0.0]])
    args = V._lgf_series_args(params)
    out = np.full(v.size + 3, np.nan)
    V._inverse_lgf_values(v, 2, v.size, *args, out)
    x = np.clip(v[2:], 0.0, 1.0)
    twin = np.where(x > 0, params.lgf_base + (params.lgf_sat - params.lgf_base)
                    * np.expm1(x * np.log1p(params.lgf_alpha)) / params.lgf_alpha, 0.0)
    got = out[:v.size - 2]
    np.testing.assert_allclose(got, twin, rtol=3e-14 if alpha is None else 2e-13, atol=0)
    assert np.all(got[x == 0] == 0) and np.all(np.isnan(out[v.size - 2:]))
    if alpha is None:
        np.testing.assert_allclose(got, lgf_twin(v[2:]), rtol=3e-14, atol=0)


def test_vocode_maxima_runs_equals_plain_twin():
    ref = reference(0)
    K = -(-ref.length // HOP)
    dense = random_pattern(K, seed=2)
    chans, vals = maxima_of(dense)
    _, runs16 = ref.needed_runs()
    st_, ct_, cs = VO._carrier_tables(FREQS, HOP, FS, K)
    pad = 100
    y16p = np.full(ref.length + 2 * pad, np.nan)
    status = V._vocode_maxima_runs(chans, vals, 22, *V._lgf_series_args(ACE), st_, ct_, cs, HOP,
                                   ref.length, runs16, pad, y16p)
    assert status == 0
    E = lgf_twin(dense)
    twin = exact_phase_vocoder(E)[: ref.length]
    covered = np.zeros(ref.length, dtype=bool)
    for a, b in runs16:
        covered[a:b] = True
    got = y16p[pad:pad + ref.length]
    np.testing.assert_allclose(got[covered], twin[covered], rtol=0, atol=1e-13)
    assert np.all(y16p[:pad] == 0) and np.all(y16p[pad + ref.length:] == 0)


@pytest.mark.parametrize("extended", [False, True])
def test_vstoi_maxima_equals_dense_path_and_pystoi(extended):
    """Same scores as envelopes + vstoi_envelopes (to ~1e-15) and as pystoi (<= 1e-11), with a
    too-short item, int8 and int64 channels, and (n, N, M) input for two "thetas"."""
    refs = [reference(i) for i in range(len(SPEECH))]
    refs.insert(1, S.Reference(speech(0)[8000:8000 + 6000], FS))  # < 30 frames: scores 1e-5
    n_rows = 2
    dense = [random_pattern(-(-r.length // HOP) + (i % 2), seed=20 + i)
             for i, r in enumerate(refs * n_rows)]
    rset = V.ReferenceSet(refs * n_rows)
    off = np.concatenate([[0], np.cumsum([len(p) for p in dense])])
    stacked = np.concatenate(dense)
    with pytest.warns(RuntimeWarning):
        want = rset.vstoi_envelopes(dense_envelopes(stacked, ACE), FREQS, HOP, offsets=off,
                                    extended=extended)
    chans, vals = maxima_of(stacked)
    N = stacked.shape[0] // n_rows if stacked.shape[0] % n_rows == 0 else None
    for ch in (chans, chans.astype(np.int64)):
        with pytest.warns(RuntimeWarning, match="2 item"):
            got = rset.vstoi_maxima(ch, vals, ACE, offsets=off, extended=extended)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)
    if N is not None:  # the (n, N, M) layout of forward_maxima
        with pytest.warns(RuntimeWarning):
            got3 = rset.vstoi_maxima(chans.reshape(n_rows, N, 8), vals.reshape(n_rows, N, 8),
                                     ACE, offsets=off, extended=extended)
        np.testing.assert_array_equal(got3, got)
    assert got[1] == 1e-5
    for i in (0, 2):  # against the oracle
        x = speech(0 if i == 0 else 1)
        y = plain_vocoder(lgf_twin(dense[i]))[: x.size]
        assert abs(got[i] - pystoi.stoi(x, y, FS, extended=extended)) < 1e-11


def test_vstoi_maxima_single_item_and_fewer_maxima():
    """One item needs no offsets; M = 4 (any M <= 22) works; dense rows with < M nonzeros too."""
    ref = reference(2)
    dense = random_pattern(-(-ref.length // HOP), seed=4, m=4)
    dense[::7] = 0.0  # silent frames: the kept 'maxima' are zeros
    rset = V.ReferenceSet([ref])
    want = rset.vstoi_envelopes([dense_envelopes(dense, ACE)], FREQS, HOP)
    for m in (4, 8, 22):
        got = rset.vstoi_maxima(*maxima_of(dense, m), ACE)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


def test_vstoi_maxima_errors():
    ref = reference(0)
    K = -(-ref.length // HOP)
    chans, vals = maxima_of(random_pattern(K, seed=1))
    rset = V.ReferenceSet([ref])
    with pytest.raises(ParameterError, match="one shape"):
        rset.vstoi_maxima(chans, vals[:, :7], ACE)
    with pytest.raises(ParameterError, match="integers"):
        rset.vstoi_maxima(chans.astype(float), vals, ACE)
    with pytest.raises(ParameterError, match="floats"):
        rset.vstoi_maxima(chans, chans, ACE)
    with pytest.raises(ParameterError, match="shorter"):
        rset.vstoi_maxima(chans[:-2], vals[:-2], ACE)
    with pytest.raises(ParameterError, match="offsets"):
        rset.vstoi_maxima(chans, vals, ACE, offsets=[0, K + 1])
    with pytest.raises(ParameterError, match="offsets"):
        V.ReferenceSet([ref, ref]).vstoi_maxima(chans, vals, ACE)
    mid = K // 2  # inside kept speech
    bad = chans.copy()
    bad[mid, 3] = bad[mid, 2]  # repeated channel
    with pytest.raises(ParameterError, match="ascending"):
        rset.vstoi_maxima(bad, vals, ACE)
    bad = chans.copy()
    bad[mid, 7] = 22  # out of range
    with pytest.raises(ParameterError, match="out of"):
        rset.vstoi_maxima(bad, vals, ACE)
    bad[mid, 7] = -1
    with pytest.raises(ParameterError, match="out of"):
        rset.vstoi_maxima(bad, vals, ACE)
    for v in (np.nan, np.inf):
        vv = vals.copy()
        vv[mid, 1] = v
        with pytest.raises(ParameterError, match="NaN"):
            rset.vstoi_maxima(chans, vv, ACE)
