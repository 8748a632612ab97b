"""STOI and ESTOI equal to pystoi 0.4.1, and the clean-speech :class:`Reference` they share.

* :func:`stoi` -- a drop-in for ``pystoi.stoi`` 0.4.1 (Taal et al. 2011; ESTOI: Jensen & Taal
  2016). It agrees with pystoi to about 1e-13 on real speech (tests require 1e-6). The pipeline:
  resample to 10 kHz (:mod:`._resample`), remove silent frames (decided on the clean signal),
  256/128 STFT with a 512-point FFT and 15 third-octave bands (Taal et al. Eq. 1,
  :mod:`._fft`), 30-frame segments, then the STOI correlation (Eq. 3-6) or ESTOI's
  row/column-normalised segments (Jensen & Taal Eq. 8-10).
* :class:`Reference` -- everything that depends only on the clean speech (kept-frame starts of
  the 10 kHz signal, clean third-octave envelopes, per-segment clean statistics, the samples the
  processed side needs), computed once. ``Reference(x, fs).stoi(y)`` equals ``stoi(x, y, fs)``.
  VSTOI straight from vocoder envelopes (:meth:`Reference.vstoi_envelopes`, ``ReferenceSet``)
  lives in :mod:`pa_ci.chain.vstoi`.

Differences from pystoi 0.4.1 (all documented choices, none changes a score by more than ~1e-13
on real speech):

* ESTOI is deterministic: pystoi adds ``EPS * randn`` to the segments before its row and column
  normalisations (random effects of ~1e-16); we do not. A row or column that is exactly constant
  (norm 0) normalises to zeros here (pystoi would give a random unit vector from its noise).
* Too few frames: like pystoi we warn (``RuntimeWarning``) and return 1e-5 when fewer than 30 STFT
  frames remain after silent-frame removal. pystoi crashes when the 10 kHz signal has <= 256
  samples (no frame at all); we warn and return 1e-5 there too.
* Unequal shapes raise :class:`~pa_ci.errors.ParameterError` (pystoi raises a bare ``Exception``).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import resample_poly

from ._resample import _octave_filter, _read_window
from ._stoi_kernels import (  # noqa: F401 - the constants are this module's public names too
    BAND_HI, BAND_LO, BETA, CLIP_FACTOR, DYN_RANGE, EPS, FS, HOP, MINFREQ, N_FRAME, N_SEGMENT, NFFT,
    NUMBAND, TOO_SHORT_SCORE, WINDOW, _FFT_REV, _FFT_TW, _estoi_core, _estoi_x_precompute,
    _stoi_core, _stoi_x_stats, _warn_too_short, _y_side)
from ._vstoi_one import _reference_vstoi
from .audio import check_samples
from ..errors import ParameterError

__all__ = ["stoi", "Reference", "short_signal_message", "FS", "N_FRAME", "NFFT", "NUMBAND", "N_SEGMENT"]

# The constants (pystoi 0.4.1), band tables and Numba kernels are :mod:`._stoi_kernels`; VSTOI of
# one reference (:meth:`Reference.vstoi_envelopes`) is :mod:`._vstoi_one`.


# --- small pure-NumPy helpers (run once per reference) ------------------------------------------

def _to_10k(x: np.ndarray, fs: int) -> np.ndarray:
    """Resample to 10 kHz exactly as pystoi (scipy ``resample_poly`` with the Octave window)."""
    if fs == FS:
        return x
    up, down, _, h_up = _octave_filter(fs, FS)
    return resample_poly(x, up, down, window=h_up / up)


def _kept_frame_starts(x10: np.ndarray) -> np.ndarray:
    """Starts of the non-silent frames of the clean 10 kHz signal (pystoi remove_silent_frames).

    Frames of 256 at hop 128 with start < len - 256 (the last possible frame is excluded, as in
    Taal's MATLAB code); energy 20 log10(||w x|| + EPS); kept when energy > max - 40 dB (strict).
    Computed with the same NumPy expressions as pystoi so the decisions are bitwise identical.
    """
    starts = np.arange(0, len(x10) - N_FRAME, HOP, dtype=np.int64)
    if starts.size == 0:
        return starts
    frames = np.array([WINDOW * x10[i:i + N_FRAME] for i in starts])
    energies = 20 * np.log10(np.linalg.norm(frames, axis=1) + EPS)
    mask = (np.max(energies) - DYN_RANGE - energies) < 0
    return np.ascontiguousarray(starts[mask])


def _merge_runs(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Merge sorted half-open intervals [start, stop) that overlap or touch; shape (R, 2)."""
    runs: list[list[int]] = []
    for a, b in zip(starts.tolist(), stops.tolist()):
        if b <= a:
            continue
        if runs and a <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], b)
        else:
            runs.append([a, b])
    return np.array(runs, dtype=np.int64).reshape(-1, 2)


# --- public API ----------------------------------------------------------------------------------

def _check_fs(fs) -> int:
    try:
        ok = float(fs) == int(fs) and int(fs) > 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ParameterError(f"sample rate must be a positive integer (Hz), got {fs!r}")
    return int(fs)


def _signal(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be a 1-D signal, got shape {arr.shape}")
    return check_samples(arr, name, allow_silent=True)


def short_signal_message(reference: "Reference") -> str:
    """One line saying why ``reference`` is too short for STOI and what is needed."""
    return (f"speech too short for STOI: {reference.n_frames} non-silent 25.6 ms frames after "
            f"silent-frame removal, need at least {N_SEGMENT} (about 0.4 s of speech)")


class Reference:
    """The clean side of STOI/ESTOI, computed once (Taal et al. 2011; pystoi 0.4.1 pipeline).

    Holds the 10 kHz clean signal, the starts of its kept (non-silent) frames, its third-octave
    envelopes and per-segment statistics. ``Reference(x, fs).stoi(y)`` equals ``stoi(x, y, fs)``;
    :meth:`vstoi_envelopes` scores vocoder envelopes without building the vocoded signal.
    """

    def __init__(self, clean: np.ndarray, fs: int) -> None:
        x = _signal(clean, "clean")
        self.fs: int = _check_fs(fs)
        self.length: int = int(x.size)
        x10 = _to_10k(x, self.fs)
        self.length10: int = int(x10.size)
        self.kept_starts: np.ndarray = _kept_frame_starts(x10)  # 10 kHz sample index per kept frame
        #: STFT frames after silent-frame removal (pystoi: n_kept - 1).
        self.n_frames: int = max(int(self.kept_starts.size) - 1, 0)
        self.valid: bool = self.n_frames >= N_SEGMENT
        self._estoi_x: np.ndarray | None = None
        self._runs: tuple[np.ndarray, np.ndarray] | None = None
        self._tables: dict = {}  # the VSTOI carrier tables per (frequencies, hop), see vstoi_envelopes
        if self.valid:
            self.x_bands: np.ndarray = _y_side(x10, self.kept_starts, WINDOW, BAND_LO, BAND_HI,
                                               _FFT_REV, _FFT_TW)
            self._x_stats = _stoi_x_stats(self.x_bands, N_SEGMENT)
        else:
            self.x_bands = np.zeros((NUMBAND, 0))
            self._x_stats = (np.zeros((NUMBAND, 0)),) * 3

    @property
    def x_stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per band and segment (each NUMBAND x segments): ||x_seg||, mean(x_seg) and
        ||x_seg - mean|| + EPS of the clean envelopes (the clean side of Taal et al. Eq. 3-6)."""
        return self._x_stats

    # clean-side extras, built on first use
    @property
    def estoi_segments(self) -> np.ndarray:
        """The clean segments row- then column-normalised for ESTOI (Jensen & Taal 2016),
        shape (segments, NUMBAND, N_SEGMENT); built on first use."""
        if self._estoi_x is None:
            self._estoi_x = _estoi_x_precompute(self.x_bands, N_SEGMENT)
        return self._estoi_x

    def needed_runs(self) -> tuple[np.ndarray, np.ndarray]:
        """10 kHz samples that feed the STFT (kept frames; only the first half of the last one)
        and the fs-rate samples the resampler reads for them, as merged [start, stop) runs."""
        if self._runs is None:
            ks = self.kept_starts
            stops = ks + N_FRAME
            stops[-1] = ks[-1] + HOP
            runs10 = _merge_runs(ks, stops)
            if self.fs == FS:
                runs16 = runs10.copy()
            else:
                a, b = _read_window(runs10, self.fs, FS)
                runs16 = _merge_runs(np.clip(a, 0, self.length), np.clip(b, 0, self.length))
            self._runs = (runs10, runs16)
        return self._runs

    def stoi(self, y: np.ndarray, extended: bool = False) -> float:
        """STOI (or ESTOI if ``extended``) of the processed ``y`` against this clean reference."""
        y = _signal(y, "processed")
        if y.shape != (self.length,):
            raise ParameterError(f"clean and processed signals must have the same shape, got "
                                 f"{(self.length,)} and {y.shape}")
        if not self.valid:
            _warn_too_short(self.n_frames)
            return TOO_SHORT_SCORE
        yb = _y_side(_to_10k(y, self.fs), self.kept_starts, WINDOW, BAND_LO, BAND_HI, _FFT_REV,
                     _FFT_TW)
        if extended:
            return float(_estoi_core(self.estoi_segments, yb, N_SEGMENT))
        return float(_stoi_core(self.x_bands, yb, *self._x_stats, N_SEGMENT, CLIP_FACTOR))

    def vstoi_envelopes(self, envelopes: np.ndarray, freqs: Sequence[float] | np.ndarray,
                        hop: int, extended: bool = False) -> float:
        """VSTOI: STOI(clean, sine vocoder of ``envelopes`` trimmed to the clean length).

        ``envelopes`` (K, C): linear envelopes (after inverse LGF), frame k held over samples
        k*hop .. k*hop+hop-1 at this reference's rate; ``freqs`` (C,) carrier centres in Hz,
        carrier phase sin(2 pi f n / fs) for n = 1, 2, ... (NMT ``Resynth_audio_proc``). Needs
        K * hop >= clean length. Equals ``stoi(clean, vocoded[:L], fs)`` with or without the
        vocoder's peak normalisation. The fast path is :mod:`pa_ci.chain.vstoi`.
        """
        return _reference_vstoi(self, envelopes, freqs, hop, extended, self._tables)


def stoi(x: np.ndarray, y: np.ndarray, fs: int, extended: bool = False) -> float:
    """Short-Time Objective Intelligibility of ``y`` against clean ``x`` (pystoi 0.4.1 drop-in).

    Taal et al. 2011 (STOI) or, with ``extended=True``, Jensen & Taal 2016 (ESTOI). Resamples to
    10 kHz with pystoi's Octave-compatible filter, removes silent frames (decided on ``x``),
    256/128/512 STFT, 15 third-octave bands from 150 Hz, 30-frame segments. Returns 1e-5 with a
    ``RuntimeWarning`` when fewer than 30 frames remain (as pystoi). Deterministic (pystoi's ESTOI
    adds ~1e-16 random noise). Raises :class:`ParameterError` when the shapes differ.
    """
    xa, ya = np.asarray(x), np.asarray(y)
    if xa.shape != ya.shape:
        raise ParameterError(f"x and y must have the same shape, got {xa.shape} and {ya.shape}")
    return Reference(xa, fs).stoi(ya, extended=extended)
