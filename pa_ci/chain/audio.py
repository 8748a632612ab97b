"""Audio input: reading files, mono, resampling, level calibration, and the checks that go with them.

Everything downstream assumes mono float64 samples at the ACE rate (16 kHz by default). Bad
input raises :class:`~pa_ci.errors.AudioError` with a one-line message that names the file
(when there is one) and says what was expected.
"""
from __future__ import annotations

import math
import os
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from .._files import atomic_path
from ..errors import AudioError

#: Full-scale sine = 95 dB SPL (Nucleus toolbox v5 ``Audio_proc`` convention).
REFERENCE_DB_SPL = 95.0
#: Default presentation level of the whole input signal (DECISIONS.md, toolbox v5 default).
CALIBRATION_DB_SPL = 65.0

#: File name endings read by :func:`read_audio` (soundfile/libsndfile reads NIST SPHERE too).
AUDIO_SUFFIXES = (".wav", ".flac", ".sph", ".nist", ".ogg", ".aiff", ".aif")

#: Sampling rates accepted from a file or by :func:`resample` (Hz). Speech is recorded at
#: 8 kHz (telephone) up to 192 kHz (studio); 768 kHz is the highest rate common hardware
#: offers. A header claiming 1 Hz would make resampling to 16 kHz allocate 16000 samples per
#: stored sample (gigabytes from a small file); one clear error instead.
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768_000


def _label(name: str | os.PathLike | None) -> str:
    return f"{name}: " if name is not None else ""


def check_samples(x: np.ndarray, name: str | os.PathLike | None = None, *,
                  allow_silent: bool = False) -> np.ndarray:
    """Return ``x`` as a 1-D float64 array, or raise :class:`AudioError` saying what is wrong.

    Rejected: non-numeric data, more than 2 dimensions, no samples, NaN/Inf samples and (unless
    ``allow_silent``) all-zero signals. A 2-D array is taken as (samples, channels); its first
    channel is used, with a warning (DECISIONS.md: multi-channel input uses channel 0).
    """
    where = _label(name)
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise AudioError(f"{where}samples are not numeric; expected a 1-D array of floats") from None
    if x.ndim == 2:
        if x.shape[1] > 1:
            warnings.warn(f"{where}{x.shape[1]} channels; using channel 0 only", stacklevel=2)
        x = x[:, 0]
    if x.ndim != 1:
        raise AudioError(f"{where}audio has shape {x.shape}; expected mono samples (1-D)")
    if x.size == 0:
        raise AudioError(f"{where}audio is empty; expected at least one sample")
    if not np.all(np.isfinite(x)):
        raise AudioError(f"{where}audio contains NaN or Inf samples; expected finite values")
    if not allow_silent and not np.any(x):
        raise AudioError(f"{where}audio is all zeros; expected a non-silent signal")
    return np.ascontiguousarray(x)


def read_audio(path: str | os.PathLike, *, allow_silent: bool = False) -> tuple[np.ndarray, int]:
    """Read an audio file (WAV, FLAC, NIST SPHERE, ...) as mono float64 in [-1, 1] and its rate."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file; expected an audio file (WAV, FLAC, NIST SPHERE)")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder; expected an audio file (WAV, FLAC, NIST SPHERE)")
    try:
        x, fs = sf.read(str(path), dtype="float64", always_2d=False)
    except Exception as exc:  # libsndfile reports unreadable/unknown formats in many ways
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(f"{path}: cannot be read as audio ({detail}); "
                         "expected a WAV, FLAC or NIST SPHERE file") from None
    if not MIN_SAMPLE_RATE <= fs <= MAX_SAMPLE_RATE:
        raise AudioError(f"{path}: sampling rate {fs} Hz in the file header; expected "
                         f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz")
    return check_samples(x, path, allow_silent=allow_silent), int(fs)


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample ``x`` from ``fs_in`` to ``fs_out`` with scipy's polyphase filter (DECISIONS.md).

    The rational factor is found exactly for integer rates; returns ``x`` unchanged when the
    rates are equal.
    """
    for fs in (fs_in, fs_out):
        if not (isinstance(fs, (int, float, np.integer, np.floating)) and math.isfinite(fs)
                and MIN_SAMPLE_RATE <= fs <= MAX_SAMPLE_RATE):
            raise AudioError(f"sample rates must be in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz, "
                             f"got {fs_in} -> {fs_out}")
    if fs_in == fs_out:
        return np.asarray(x, dtype=np.float64)
    ratio = Fraction(fs_out).limit_denominator(100000) / Fraction(fs_in).limit_denominator(100000)
    return resample_poly(np.asarray(x, dtype=np.float64), ratio.numerator, ratio.denominator)


def level_db_spl(x: np.ndarray, reference_db_spl: float = REFERENCE_DB_SPL) -> float:
    """Level in dB SPL when a full-scale sine is ``reference_db_spl`` (toolbox v5 convention).

    level = 20 log10(rms(x)) + reference + 20 log10(sqrt 2).
    """
    rms = float(np.sqrt(np.mean(np.square(x))))
    if rms == 0.0:
        return -math.inf
    return 20.0 * math.log10(rms) + reference_db_spl + 20.0 * math.log10(math.sqrt(2.0))


def rms_from_db_spl(db_spl: float, reference_db_spl: float = REFERENCE_DB_SPL) -> float:
    """RMS of a signal at ``db_spl`` when a full-scale sine is ``reference_db_spl`` (toolbox v5)."""
    return 10.0 ** ((db_spl - reference_db_spl) / 20.0) / math.sqrt(2.0)


def calibration_gain(x: np.ndarray, db_spl: float = CALIBRATION_DB_SPL,
                     reference_db_spl: float = REFERENCE_DB_SPL) -> float:
    """The factor that brings the whole signal ``x`` to ``db_spl`` (see :func:`calibrate`)."""
    rms = float(np.sqrt(np.mean(np.square(x))))
    if rms == 0.0:
        raise AudioError("cannot calibrate an all-zero signal; expected a non-silent signal")
    return rms_from_db_spl(db_spl, reference_db_spl) / rms


def calibrate(x: np.ndarray, db_spl: float = CALIBRATION_DB_SPL,
              reference_db_spl: float = REFERENCE_DB_SPL) -> np.ndarray:
    """Scale the whole signal to ``db_spl`` (65 dB SPL: RMS 0.022361 with full scale = 95 dB SPL)."""
    return np.asarray(x, dtype=np.float64) * calibration_gain(x, db_spl, reference_db_spl)


def write_wav(path: str | os.PathLike, x: np.ndarray, fs: int, subtype: str = "PCM_16") -> None:
    """Write mono audio atomically (temp file + rename); clips to [-1, 1] for integer formats."""
    x = np.asarray(x, dtype=np.float64)
    if subtype.startswith("PCM"):
        x = np.clip(x, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), x, int(fs), subtype=subtype, format="WAV")
