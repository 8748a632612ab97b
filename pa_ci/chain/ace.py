"""ACE (Advanced Combination Encoder): audio -> stimulation pattern.

Written from ``specs/signal_chain_research.md`` (research note) §1, with the defaults of
``specs/DECISIONS.md``. The chain, one public function per step:

    check + resample (:func:`front_end`) -> level calibration to 65 dB SPL -> front-end AGC
    (:func:`agc`) -> causal framing (:func:`frames`) -> windowed FFT (:func:`filterbank`)
    -> band envelopes, power or vector sum (:func:`band_envelopes`) -> gain
    -> N-of-M maxima (:func:`select_maxima`) -> loudness growth function (:func:`lgf`).

The stimulation pattern
-----------------------
:func:`ace` returns the pattern that the codec compresses: a ``float32`` array of shape
``(K, M)`` with ``K = ceil(L / hop)`` frames (``L`` = number of samples at ``params.fs``,
``hop = ceil(fs / channel_rate)`` = 18, so 888.9 frames/s) and ``M = 22`` channels. Column 0 is
channel 1 (lowest frequency, most apical; electrode 22). Frame ``k`` is computed from the 128
samples that end at sample ``k * hop + hop - 1`` (causal, zeros before the start and after the
end). Each value is the LGF output in ``[0, 1]`` (a fraction of the electrical dynamic range) of
one of the ``N = 8`` selected channels; channels rejected by maxima selection and selected
channels whose envelope is below the LGF base level are exactly ``0``. So a frame has at most
``N`` non-zero values (exactly ``N`` when the sound is loud enough). Uses of the pattern
(e.g. :mod:`pa_ci.chain.vocoder`) treat ``0`` as "no pulse".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numba
import numpy as np
from scipy.optimize import brentq

from .audio import (CALIBRATION_DB_SPL, REFERENCE_DB_SPL, calibrate, check_samples, resample,
                    rms_from_db_spl)
from ..errors import ParameterError

# --------------------------------------------------------------------------- constants
#: Bins per band for 22 channels, low to high (toolbox ``FFT_band_bins(22)``; research §1.4).
BAND_BINS_22 = (1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4, 5, 5, 6, 7, 8)
#: First FFT bin (0-based) of channel 1: bins 0 (DC) and 1 are never used (research §1.4).
FIRST_BIN = 2

#: Speech level that gives C-level stimulation (toolbox ``Ensure_amplitude_params``; research §1.2 b).
C_DB_SPL = 65.0
#: Peak-to-RMS ratio of speech used to place the AGC knee (toolbox default; research §1.2 b).
SPEECH_CREST_FACTOR_DB = 11.0
#: FE AGC time constants: attack 5 ms, release 75 ms for a 25 dB step (toolbox ``FE_AGC_proc``;
#: research §1.2 b).
AGC_ATTACK_TIME_S = 0.005
AGC_RELEASE_TIME_S = 0.075
AGC_STEP_DB = 25.0
#: ln(50): the attack weight 3.912 / (attack_time * fs) makes a first-order smoother settle to
#: 2 % in the attack time (toolbox ``FE_AGC_proc``; research §1.2 b).
AGC_ATTACK_CONSTANT = 3.912

#: Grid of the vector-sum band responses (toolbox ``num_freq_response_samples``; research §1.5).
VECTOR_SUM_RESPONSE_POINTS = 2048

ENVELOPE_METHODS = ("power", "vector")


def agc_kneepoint(reference_db_spl: float = REFERENCE_DB_SPL) -> float:
    """AGC knee: the peak of speech at C level, 10^(11/20) * rms(65 dB SPL) = 0.079339 (§1.2 b)."""
    return 10.0 ** (SPEECH_CREST_FACTOR_DB / 20.0) * rms_from_db_spl(C_DB_SPL, reference_db_spl)


#: Default AGC knee with full scale = 95 dB SPL (0.079339; research §1.2 b).
AGC_KNEEPOINT = agc_kneepoint()


def periodic_hann(n: int) -> np.ndarray:
    """Periodic (DFT-even) Hann window 0.5 - 0.5 cos(2 pi k / n), k = 0..n-1 (research §1.3)."""
    k = np.arange(n)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * k / n)


def _dtft(h: np.ndarray, omega: float) -> complex:
    """H(omega) = sum_n h[n] exp(-i omega n) (MATLAB ``freqz`` at one frequency)."""
    return complex(np.sum(h * np.exp(-1j * omega * np.arange(h.size))))


# --------------------------------------------------------------------------- LGF alpha
def _lgf_q_diff(log_alpha: float, q: float, base: float, sat: float) -> float:
    """Q(alpha) - q, where Q = 100 (1 - v(sat / sqrt 10)) is the drop in % for -10 dB input."""
    alpha = math.exp(log_alpha)
    r = (sat / math.sqrt(10.0) - base) / (sat - base)
    v = math.log1p(alpha * r) / math.log1p(alpha)
    return 100.0 * (1.0 - v) - q


def lgf_alpha(base: float, sat: float, q: float) -> float:
    """LGF shape alpha for base level, saturation level and Q (research §1.8; toolbox ``LGF_alpha``).

    Q is the percentage drop of the LGF output for an input 10 dB below ``sat``. As in the toolbox,
    log(alpha) is bracketed by stepping 1, 2, ... until Q(alpha) - q turns negative, then the root
    in [k - 1, k] is found (here with Brent's method to machine precision).
    Default levels (0.01, 1, 20) give 340.8338; NMT 4 levels (4/256, 150/256, 20) give 416.2063.
    """
    if not (base > 0 and sat > base and math.isfinite(sat)):
        raise ParameterError(f"LGF levels must satisfy 0 < base < sat, got base={base}, sat={sat}")
    if not (q > 0 and math.isfinite(q)):
        raise ParameterError(f"LGF Q must be a positive percentage, got {q}")
    if _lgf_q_diff(0.0, q, base, sat) <= 0:  # the toolbox bracket starts at alpha = 1
        q_max = _lgf_q_diff(0.0, 0.0, base, sat)
        raise ParameterError(f"LGF Q = {q} is too large for base={base}, sat={sat}; "
                             f"expected 0 < Q < {q_max:.4f} (alpha > 1)")
    log_alpha = 0
    while _lgf_q_diff(float(log_alpha), q, base, sat) >= 0:
        log_alpha += 1
        if log_alpha > 700:  # exp(700) is near the float64 limit
            raise ParameterError(f"LGF Q = {q} is too small; alpha would overflow")
    root = brentq(_lgf_q_diff, log_alpha - 1.0, float(log_alpha), args=(q, base, sat),
                  xtol=1e-15, rtol=4.0 * np.finfo(float).eps, maxiter=200)
    return math.exp(root)


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class AceParams:
    """All ACE parameters; defaults are DECISIONS.md (NMT 5 levels, 900 pps, 8 of 22, power sum).

    Derived values (``hop``, ``centre_frequencies``, ``lgf_alpha``, weights, ...) are computed on
    first use and cached; arrays are read-only. Use :meth:`preset` for named settings and
    ``dataclasses.replace`` to change fields.
    """

    fs: float = 16000                      # Hz; NMT 4 / DECISIONS (research §0, §1.1)
    channel_rate: float = 900.0            # requested pps per channel; paper / DECISIONS (§1.3)
    block_length: int = 128                # FFT length B; toolbox default (§1.3)
    n_maxima: int = 8                      # N of N-of-M; paper / DECISIONS (§1.7)
    band_bins: tuple[int, ...] = BAND_BINS_22  # FFT bins per band; toolbox table (§1.4)
    first_bin: int = FIRST_BIN             # 0-based first bin of channel 1; toolbox (§1.4)
    envelope: str = "power"                # "power" (NMT 4, DECISIONS) or "vector" (NMT 5) (§1.5)
    gain_db: float = 36.0                  # 20 log10(sat / peak of a 59 dB SPL tone); NMT 5 (§1.6)
    lgf_base: float = 0.01                 # sat * 10^(-40 dB / 20); NMT 5 (§1.8)
    lgf_sat: float = 1.0                   # NMT 5 (§1.8)
    lgf_q: float = 20.0                    # toolbox default, both generations (§1.8)
    agc: bool = True                       # NMT 5 front-end AGC; DECISIONS (§1.2 b)
    calibration_db_spl: float | None = CALIBRATION_DB_SPL  # 65 dB SPL; None = raw scale (§1.1)
    reference_db_spl: float = REFERENCE_DB_SPL  # full-scale sine = 95 dB SPL; NMT 5 (§1.1)

    def __post_init__(self) -> None:
        try:
            bins = tuple(int(b) for b in self.band_bins)
            if any(b != float(raw) for b, raw in zip(bins, self.band_bins)):
                raise ValueError
        except (TypeError, ValueError):
            raise ParameterError(f"band_bins must be a sequence of integers, got {self.band_bins!r}") from None
        object.__setattr__(self, "band_bins", bins)
        if not (_is_number(self.fs) and 0 < self.fs < math.inf):
            raise ParameterError(f"fs must be a positive sample rate in Hz, got {self.fs!r}")
        if not (_is_number(self.channel_rate) and 0 < self.channel_rate < math.inf):
            raise ParameterError(f"channel_rate must be positive (pps), got {self.channel_rate!r}")
        if not (isinstance(self.block_length, (int, np.integer)) and self.block_length >= 4
                and self.block_length % 2 == 0):
            raise ParameterError(f"block_length must be an even integer >= 4, got {self.block_length!r}")
        if self.hop > self.block_length:
            raise ParameterError(f"channel_rate {self.channel_rate} gives a hop of {self.hop} samples; "
                                 f"expected at most block_length = {self.block_length}")
        if len(bins) == 0 or min(bins) < 1:
            raise ParameterError(f"band_bins must be positive bin counts, got {bins}")
        if not (isinstance(self.first_bin, (int, np.integer)) and self.first_bin >= 0):
            raise ParameterError(f"first_bin must be a non-negative integer, got {self.first_bin!r}")
        if self.first_bin + sum(bins) > self.block_length // 2 + 1:
            raise ParameterError(f"band_bins use bins {self.first_bin}..{self.first_bin + sum(bins) - 1}; "
                                 f"expected at most bin {self.block_length // 2} for block_length "
                                 f"{self.block_length}")
        if not (isinstance(self.n_maxima, (int, np.integer)) and 1 <= self.n_maxima <= len(bins)):
            raise ParameterError(f"n_maxima must be an integer in 1..{len(bins)}, got {self.n_maxima!r}")
        if not isinstance(self.agc, (bool, np.bool_)):
            raise ParameterError(f"agc must be True or False, got {self.agc!r}")
        if self.envelope not in ENVELOPE_METHODS:
            raise ParameterError(f"envelope must be one of {ENVELOPE_METHODS}, got {self.envelope!r}")
        for name in ("gain_db", "lgf_base", "lgf_sat", "lgf_q", "reference_db_spl"):
            if not (_is_number(getattr(self, name)) and math.isfinite(getattr(self, name))):
                raise ParameterError(f"{name} must be a finite number, got {getattr(self, name)!r}")
        if not (0 < self.lgf_base < self.lgf_sat):
            raise ParameterError(f"LGF levels must satisfy 0 < lgf_base < lgf_sat, "
                                 f"got base={self.lgf_base}, sat={self.lgf_sat}")
        if self.calibration_db_spl is not None and not (_is_number(self.calibration_db_spl)
                                                        and math.isfinite(self.calibration_db_spl)):
            raise ParameterError(f"calibration_db_spl must be a finite level in dB SPL or None, "
                                 f"got {self.calibration_db_spl!r}")
        self.lgf_alpha  # noqa: B018 -- solve now, so a bad Q fails at construction

    # ---- presets
    @classmethod
    def preset(cls, name: str, **changes: Any) -> AceParams:
        """Named settings (research §0, §1.12), optionally with fields changed.

        ``default``: DECISIONS.md. ``nmt4``: NMT 4 chain (no calibration, no AGC, gain 0 dB,
        base 4/256, sat 150/256, Q 20, power sum). ``nmt5``: vector sum, otherwise the default.
        """
        if name not in PRESETS:
            raise ParameterError(f"unknown ACE preset {name!r}; expected one of {sorted(PRESETS)}")
        fields = {**PRESETS[name], **changes}
        return cls(**fields)

    # ---- timing
    @cached_property
    def hop(self) -> int:
        """Block shift S = ceil(fs / channel_rate) samples (18 at 16 kHz, 900 pps; research §1.3)."""
        return int(math.ceil(self.fs / self.channel_rate))

    @property
    def analysis_rate(self) -> float:
        """Frames per second fs / hop (888.89 Hz by default; research §1.3)."""
        return self.fs / self.hop

    # ---- bands
    @property
    def n_channels(self) -> int:
        """M, the number of channels (22)."""
        return len(self.band_bins)

    @property
    def n_bins(self) -> int:
        """FFT bins kept per frame, B/2 + 1 (65)."""
        return self.block_length // 2 + 1

    @property
    def bin_frequency(self) -> float:
        """FFT bin spacing fs / B in Hz (125 Hz)."""
        return self.fs / self.block_length

    @cached_property
    def band_edges(self) -> np.ndarray:
        """M + 1 band edges in Hz, (first_bin - 0.5 + cumulative bins) * fs / B (research §1.4)."""
        cum = np.concatenate(([0], np.cumsum(self.band_bins)))
        return _readonly((self.first_bin - 0.5 + cum) * self.bin_frequency)

    @cached_property
    def centre_frequencies(self) -> np.ndarray:
        """Band centres in Hz, the midpoints of the edges: 250, 375, ..., 7437.5 (research §1.4)."""
        edges = self.band_edges
        return _readonly(edges[:-1] + np.diff(edges) / 2.0)

    @cached_property
    def band_start_bins(self) -> np.ndarray:
        """0-based first FFT bin of each band."""
        return _readonly(self.first_bin + np.concatenate(([0], np.cumsum(self.band_bins)[:-1])))

    # ---- filterbank
    @cached_property
    def window(self) -> np.ndarray:
        """Periodic Hann window of length B (research §1.3)."""
        return _readonly(periodic_hann(self.block_length))

    @cached_property
    def power_sum_gains(self) -> np.ndarray:
        """Per-band power-sum divisors G from the response H of window/2 (research §1.5).

        Width 1: |H(0)|^2 = 1024; width 2: 2 |H(half bin)|^2 = 1475.597;
        width >= 3: |H(0)|^2 + 2 |H(one bin)|^2 = 1536 (for B = 128).
        """
        half = self.window / 2.0
        b = self.block_length
        p1 = abs(_dtft(half, 0.0)) ** 2
        p2 = 2.0 * abs(_dtft(half, np.pi / b)) ** 2
        p3 = abs(_dtft(half, 0.0)) ** 2 + 2.0 * abs(_dtft(half, 2.0 * np.pi / b)) ** 2
        return _readonly(np.array([p1 if w == 1 else p2 if w == 2 else p3 for w in self.band_bins]))

    @cached_property
    def vector_sum_gains(self) -> np.ndarray:
        """Per-band vector-sum divisors: peak |sum_b (-1)^b H(w - w_b)| (research §1.5).

        H is the response of window/2 on a 2048-point grid (zero-padded FFT); width 1 -> 32,
        2 -> 54.325, 3 -> 64, 4 -> 65.190, ... (for B = 128).
        """
        b = self.block_length
        n_grid = b * math.ceil(VECTOR_SUM_RESPONSE_POINTS / b)  # 2048 for B = 128
        h0 = np.fft.fft(self.window / 2.0, n_grid)
        per_bin = n_grid // b
        gains = np.empty(self.n_channels)
        for c, (start, width) in enumerate(zip(self.band_start_bins, self.band_bins)):
            resp = np.zeros(n_grid, dtype=complex)
            for k in range(start, start + width):
                resp += (-1.0) ** k * np.roll(h0, k * per_bin)
            gains[c] = np.max(np.abs(resp))
        return _readonly(gains)

    @cached_property
    def bin_weights(self) -> np.ndarray:
        """(M, n_bins) weights combining FFT bins into bands for ``envelope`` (research §1.5).

        Power sum: 1/G on the band's bins (applied to |X|^2). Vector sum: (-1)^b / gain (applied
        to X). Either way a sine of amplitude a at a band centre gives an envelope close to a.
        """
        w = np.zeros((self.n_channels, self.n_bins))
        for c, (start, width) in enumerate(zip(self.band_start_bins, self.band_bins)):
            idx = np.arange(start, start + width)
            if self.envelope == "power":
                w[c, idx] = 1.0 / self.power_sum_gains[c]
            else:
                w[c, idx] = (-1.0) ** idx / self.vector_sum_gains[c]
        return _readonly(w)

    # ---- amplitude
    @property
    def gain(self) -> float:
        """Linear envelope gain 10^(gain_db / 20) (research §1.6)."""
        return 10.0 ** (self.gain_db / 20.0)

    @cached_property
    def lgf_alpha(self) -> float:
        """LGF alpha solved from (lgf_base, lgf_sat, lgf_q) (research §1.8)."""
        return lgf_alpha(self.lgf_base, self.lgf_sat, self.lgf_q)

    @property
    def agc_kneepoint(self) -> float:
        """AGC knee for this reference level (0.079339 at 95 dB SPL; research §1.2 b)."""
        return agc_kneepoint(self.reference_db_spl)


#: Named parameter sets (research §0, §1.12). Fields not listed keep the DECISIONS.md defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # NMT 4 generation: raw input scale, no front end, Gain_proc 0 dB (UNVERIFIED, §1.6),
    # LGF levels 4/256 and 150/256 (alpha 416.2063), power sum.
    "nmt4": {"calibration_db_spl": None, "agc": False, "gain_db": 0.0,
             "lgf_base": 4.0 / 256.0, "lgf_sat": 150.0 / 256.0, "lgf_q": 20.0, "envelope": "power"},
    # NMT 5 default envelope (vector sum); everything else as DECISIONS.md.
    "nmt5": {"envelope": "vector"},
}


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


@lru_cache(maxsize=1)
def default_params() -> AceParams:
    """The shared DECISIONS.md parameter set (derived values cached once per process)."""
    return AceParams()


# --------------------------------------------------------------------------- front end
@numba.njit(cache=True)
def _agc_gains(x, knee, release_scaler, attack_weight):  # pragma: no cover - compiled
    """Per-sample AGC gain: peak tracker with release, infinite compression, attack smoothing."""
    gains = np.empty(x.size)
    env = 0.0
    gain = 1.0
    for i in range(x.size):
        env = max(abs(x[i]), env * release_scaler)
        raw = 1.0 if env < knee else knee / env
        gain = attack_weight * raw + (1.0 - attack_weight) * gain
        gains[i] = gain
    return gains


def agc(x: np.ndarray, fs: float, *, knee: float = AGC_KNEEPOINT,
        attack_time_s: float = AGC_ATTACK_TIME_S, release_time_s: float = AGC_RELEASE_TIME_S,
        step_db: float = AGC_STEP_DB) -> np.ndarray:
    """Front-end AGC (research §1.2 b; toolbox ``FE_AGC_proc``): returns ``x * g``.

    Envelope e[n] = max(|x[n]|, r e[n-1]) with r = 10^(-step_db / (20 release_time fs));
    raw gain 1 below the knee, knee / e above (infinite compression); gain
    g[n] = w raw[n] + (1 - w) g[n-1] with w = 3.912 / (attack_time fs); e = 0 and g = 1 at start.
    The gain of sample n is applied to sample n.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    release_scaler = 10.0 ** (-step_db / (20.0 * release_time_s * fs))
    attack_weight = AGC_ATTACK_CONSTANT / (attack_time_s * fs)
    return x * _agc_gains(x, float(knee), release_scaler, attack_weight)


def front_end(audio: np.ndarray, fs: float, params: AceParams | None = None) -> np.ndarray:
    """Checked mono samples at ``params.fs``, calibrated and AGC-compressed as ``params`` say.

    Steps: :func:`~pa_ci.chain.audio.check_samples` (empty, NaN/Inf, non-numeric -> AudioError),
    resampling to ``params.fs`` (research §1.1), whole-signal calibration to
    ``calibration_db_spl`` (if set; an all-zero signal is then an AudioError), :func:`agc` (if set).
    """
    params = params if params is not None else default_params()
    x = check_samples(audio, allow_silent=params.calibration_db_spl is None)
    if fs != params.fs:
        x = resample(x, fs, params.fs)
    if params.calibration_db_spl is not None:
        x = calibrate(x, params.calibration_db_spl, params.reference_db_spl)
    if params.agc:
        x = agc(x, params.fs, knee=params.agc_kneepoint)
    return x


# --------------------------------------------------------------------------- filterbank
def n_frames(n_samples: int, hop: int) -> int:
    """K = ceil(L / S), the frame count of MATLAB ``buffer(x, B, B - S)`` (research §1.3)."""
    return -(-int(n_samples) // int(hop))


def frames(x: np.ndarray, params: AceParams | None = None) -> np.ndarray:
    """Causal frames (K, B): frame k holds x[k S - (B - S) .. k S + S - 1], zeros outside (§1.3).

    Frame 0 is B - S zeros followed by x[0:S]. The result is a read-only view.
    """
    params = params if params is not None else default_params()
    x = np.asarray(x, dtype=np.float64)
    b, s = params.block_length, params.hop
    k = n_frames(x.size, s)
    padded = np.zeros(b - s + k * s)
    padded[b - s:b - s + x.size] = x
    return np.lib.stride_tricks.sliding_window_view(padded, b)[::s]


def filterbank(x: np.ndarray, params: AceParams | None = None) -> np.ndarray:
    """Complex FFT bins (K, B/2 + 1) of the Hann-windowed causal frames (research §1.3).

    The FFT time origin is the first sample of each frame; no scaling (a sine of amplitude a
    centred on a bin gives |X| = a * sum(window) / 2 = 32 a).
    """
    params = params if params is not None else default_params()
    return _windowed_fft(frames(x, params), params.window)


def _windowed_fft(frame_block: np.ndarray, window: np.ndarray) -> np.ndarray:
    return np.fft.rfft(frame_block * window, axis=1)


def band_envelopes(bins: np.ndarray, params: AceParams | None = None) -> np.ndarray:
    """Band envelopes (K, M) from FFT bins, before gain (research §1.5).

    ``power``: sqrt(sum_b |X_b|^2 / G_c). ``vector``: |sum_b (-1)^b X_b| / gain_c.
    """
    params = params if params is not None else default_params()
    weights = params.bin_weights
    if params.envelope == "power":
        power = bins.real ** 2 + bins.imag ** 2
        return np.sqrt(power @ weights.T)
    return np.abs(bins @ weights.T)


#: Frames per block in :func:`_envelopes_of_samples`: keeps the FFT work in cache (3x faster).
_CHUNK_FRAMES = 512


def _envelopes_of_samples(x: np.ndarray, params: AceParams) -> np.ndarray:
    """:func:`band_envelopes` of :func:`filterbank`, block by block (same numbers, less memory)."""
    all_frames = frames(x, params)
    env = np.empty((all_frames.shape[0], params.n_channels))
    for start in range(0, all_frames.shape[0], _CHUNK_FRAMES):
        stop = start + _CHUNK_FRAMES
        env[start:stop] = band_envelopes(_windowed_fft(all_frames[start:stop], params.window), params)
    return env


# --------------------------------------------------------------------------- maxima
@numba.njit(cache=True)
def _keep_largest(env, n_keep, keep):  # pragma: no cover - compiled
    """keep[k, c] = True when channel c is not among the M - N first of the (value, channel) order.

    Channel c's rank counts the channels j with env[j] < env[c], or env[j] == env[c] and j < c:
    the position a stable ascending sort gives it. The M - N lowest ranks are rejected, which is
    what M - N passes of "reject the first minimum" do (research §1.7).
    """
    n_frames_, m = env.shape
    n_reject = m - n_keep
    for k in range(n_frames_):
        for c in range(m):
            e = env[k, c]
            rank = 0
            for j in range(m):
                ej = env[k, j]
                rank += (ej < e) or (ej == e and j < c)
            keep[k, c] = rank >= n_reject


def select_maxima(env: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask (K, M) of the ``n`` largest envelopes per frame (research §1.7).

    Ties: the lower channel is rejected first (MATLAB ``min`` picks the first minimum), the same
    as a stable ascending argsort rejecting its first M - n entries. An all-zero frame keeps the
    top ``n`` channels (15..22 for 8 of 22). Envelopes must be finite.
    """
    env = np.ascontiguousarray(env, dtype=np.float64)
    if env.ndim != 2:
        raise ParameterError(f"envelopes have shape {env.shape}; expected (frames, channels)")
    if not 1 <= n <= env.shape[1]:
        raise ParameterError(f"n = {n} maxima; expected 1..{env.shape[1]}")
    keep = np.empty(env.shape, dtype=np.bool_)
    _keep_largest(env, int(n), keep)
    return keep


# --------------------------------------------------------------------------- LGF
def lgf(u: np.ndarray, params: AceParams | None = None) -> np.ndarray:
    """Loudness growth function (research §1.8): envelope u -> magnitude v in [0, 1].

    r = min((u - b) / (s - b), 1); v = ln(1 + alpha r) / ln(1 + alpha). Sub-base inputs (u < b)
    give 0 (the toolbox's -1e-10 "no pulse" marker, here stored as 0); NaN stays NaN.
    """
    params = params if params is not None else default_params()
    u = np.asarray(u, dtype=np.float64)
    b, s, alpha = params.lgf_base, params.lgf_sat, params.lgf_alpha
    r = np.clip((u - b) / (s - b), 0.0, 1.0)
    v = np.log1p(alpha * r) / math.log1p(alpha)
    return np.where(u < b, 0.0, v)


def lgf_inverse(v: np.ndarray, params: AceParams | None = None) -> np.ndarray:
    """Inverse LGF (research §1.8): u = b + (s - b) ((1 + alpha)^v - 1) / alpha.

    ``v`` is clipped to [0, 1]; v <= 0 maps to 0 ("0 stays 0", DECISIONS.md), so the map jumps
    from 0 to b at v = 0+.
    """
    params = params if params is not None else default_params()
    v = np.clip(np.asarray(v, dtype=np.float64), 0.0, 1.0)
    b, s, alpha = params.lgf_base, params.lgf_sat, params.lgf_alpha
    u = b + (s - b) * np.expm1(v * math.log1p(alpha)) / alpha
    return np.where(v == 0.0, 0.0, u)


# --------------------------------------------------------------------------- the chain
@dataclass(frozen=True)
class AceStages:
    """Intermediate signals of one :func:`ace_stages` run (for tests, plots and debugging)."""

    samples: np.ndarray    # front-end output at params.fs, float64 (L,)
    bins: np.ndarray       # complex FFT bins (K, B/2 + 1)
    envelopes: np.ndarray  # band envelopes after gain, float64 (K, M)
    selected: np.ndarray   # maxima mask, bool (K, M)
    pattern: np.ndarray    # stimulation pattern, float32 (K, M) (module docstring)


def ace_stages(audio: np.ndarray, fs: float, params: AceParams | None = None) -> AceStages:
    """Run the whole ACE chain and keep every intermediate signal (see :func:`ace`)."""
    params = params if params is not None else default_params()
    x = front_end(audio, fs, params)
    bins = filterbank(x, params)
    env = band_envelopes(bins, params) * params.gain
    selected = select_maxima(env, params.n_maxima)
    return AceStages(samples=x, bins=bins, envelopes=env, selected=selected,
                     pattern=_pattern(env, selected, params))


def ace(audio: np.ndarray, fs: float, params: AceParams | None = None) -> np.ndarray:
    """Stimulation pattern (K, M) float32 of ``audio`` sampled at ``fs`` (module docstring).

    K = ceil(L / hop) with L the length after resampling to ``params.fs``. Raises
    :class:`~pa_ci.errors.AudioError` for empty, NaN/Inf or (when calibrating) all-zero audio.
    Same result as ``ace_stages(...).pattern`` without keeping the FFT bins.
    """
    params = params if params is not None else default_params()
    env = _envelopes_of_samples(front_end(audio, fs, params), params) * params.gain
    return _pattern(env, select_maxima(env, params.n_maxima), params)


def _pattern(env: np.ndarray, selected: np.ndarray, params: AceParams) -> np.ndarray:
    """LGF of the selected gained envelopes as float32; rejected and sub-base entries are 0."""
    return np.where(selected, lgf(env, params), 0.0).astype(np.float32)


__all__ = [
    "AceParams", "AceStages", "PRESETS", "BAND_BINS_22", "ace", "ace_stages", "agc", "agc_kneepoint",
    "band_envelopes", "default_params", "filterbank", "frames", "front_end", "lgf", "lgf_alpha",
    "lgf_inverse", "n_frames", "periodic_hann", "rms_from_db_spl", "select_maxima",
]
