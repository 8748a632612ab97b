"""Speech in noise at an SNR (paper §II-E, §III-A): the signals a dataset mixes and the mixing.

Speech and noise files are read as mono and resampled to :data:`FS` (16 kHz); speech is cut to
``max_seconds``; the generated ITU-T G.227 ("ccitt") noise is :data:`CCITT_SECONDS` long. A
noise segment starts at the item's offset and wraps around (a noise shorter than the speech is
tiled). :func:`make_mixture` scales the noise so that ``10 log10(P_speech / P_noise) = SNR``
over the whole utterance; the dataset then scales clean and mixture together to the ACE
presentation level (65 dB SPL).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
import numpy as np

from ..chain.audio import read_audio, resample
from ..chain.noise import ccitt_noise
from ..errors import AudioError, ParameterError
from .config import FS, DatasetConfig
from .plan import CCITT_NAME, _inputs, _streams

#: Length of the generated CCITT noise from which segments are cut (tiled if shorter).
CCITT_SECONDS = 30.0


def noise_segment(noise: np.ndarray, offset: int, n: int) -> np.ndarray:
    """``n`` samples of ``noise`` from ``offset`` on, wrapping around (tiling) at its end."""
    idx = (int(offset) + np.arange(n)) % noise.size
    return noise[idx]


def make_mixture(speech: np.ndarray, noise_seg: np.ndarray, snr_db: float) -> tuple[np.ndarray, float]:
    """``speech + g * noise_seg`` with g such that 10 log10(P_speech / P_(g noise)) = ``snr_db``;
    returns (mixture, g). Both inputs float64 of equal length."""
    s = np.asarray(speech, dtype=np.float64)
    v = np.asarray(noise_seg, dtype=np.float64)
    if s.shape != v.shape:
        raise ParameterError(f"speech and noise segment lengths differ: {s.shape} vs {v.shape}")
    p_s, p_v = float(np.mean(s * s)), float(np.mean(v * v))
    if p_s == 0.0 or p_v == 0.0:
        raise AudioError("cannot mix at an SNR: the speech or the noise segment is all zeros")
    g = math.sqrt(p_s / (p_v * 10.0 ** (snr_db / 10.0)))
    return s + g * v, g


def snr_db(clean: np.ndarray, mixture: np.ndarray) -> float:
    """10 log10(P_clean / P_(mixture - clean)) in dB (float64 arithmetic)."""
    c = np.asarray(clean, dtype=np.float64)
    d = np.asarray(mixture, dtype=np.float64) - c
    return 10.0 * math.log10(float(np.sum(c * c)) / float(np.sum(d * d)))


def _load_noise_arrays(noise_files: list[tuple[str, Path]], config: DatasetConfig) -> dict[str, np.ndarray]:
    """Noise type -> signal at :data:`FS` of ``noise_files``, plus the generated CCITT noise."""
    noises = {}
    for name, path in noise_files:
        x, rate = read_audio(path)
        noises[name] = resample(x, rate, FS) if rate != FS else x
    if config.include_ccitt:
        noises[CCITT_NAME] = ccitt_noise(int(CCITT_SECONDS * FS), FS, _streams(config.seed)["ccitt"])
    return noises


def dataset_noises(config: DatasetConfig) -> dict[str, np.ndarray]:
    """The noise signals (float64, 16 kHz) the dataset of ``config`` cuts its segments from,
    including the generated CCITT noise: with an item's ``noise_offset`` and ``noise_gain``
    they reproduce its mixture."""
    _, noise_files, _ = _inputs(config)
    return _load_noise_arrays(noise_files, config)


def load_speech(path: str | os.PathLike, max_seconds: float | None = None) -> np.ndarray:
    """A speech file as float64 mono at 16 kHz, cut to ``max_seconds``."""
    x, rate = read_audio(path)
    x = resample(x, rate, FS) if rate != FS else x
    if max_seconds is not None:
        x = x[: int(round(max_seconds * FS))]
    return x
