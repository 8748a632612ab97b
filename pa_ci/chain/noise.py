"""Noise for speech-in-noise data: recorded noise folders and generated CCITT noise (ITU-T G.227).

CCITT noise (the paper's fourth noise type) is white Gaussian noise shaped by the *conventional
telephone signal* network of ITU-T Rec. G.227 (11/1988). G.227 defines that network by its
insertion loss, a ratio of two 4th-order polynomials in ``p = j f / 1000`` (``f`` in Hz)::

    loss(f) = 20 log10 | N(p) / D(p) |
    N(p) = 11638 p^4 + 54050 p^3 + 91238 p^2 + 67280 p + 18400
         = (46 p^2 + 90 p + 46) (11 p + 20) (23 p + 20)
    D(p) = p^4 + 130 p^3 + 4001 p^2 + 36040 p + 400
         = (p^2 + 90 p + 1) (p + 20)^2

so the shaping filter is ``H(p) = D(p) / N(p)``: maximum near 600 Hz; re 600 Hz it is
-11.0 dB at 100 Hz, -1.5 dB at 1 kHz, -10.1 dB at 2 kHz, -24.2 dB at 4 kHz and -40.2 dB at 8 kHz.

Source: the coefficients and ``p = j f / 1000`` were transcribed from a secondary source,
github.com/cho45/pseudo-audio-signal (``docs/README.md``, ``docs/03-iir-fir.ipynb``), which
cites https://www.itu.int/rec/T-REC-G.227-198811-I/en and gives both the expanded and the
three-section form. UNVERIFIED against the primary ITU text (not reachable here). The two forms
multiply out to each other exactly (a test checks it), so a typing error in one of them is
unlikely; the frequency normalisation (f / 1000 Hz) is the part that rests on the secondary
source alone (an angular 2 pi f / 1000 would put the maximum near 95 Hz, implausible for a
speech-shaped signal).

Digital realisation: the analog network is mapped with the bilinear transform at an internal rate
of ``8 fs`` (frequency-warping error below 0.3 dB up to 8 kHz at fs = 16 kHz, about 0.05 dB
at most in 300-3400 Hz), then decimated to ``fs`` with a linear-phase FIR (flat to 0.9 fs/2, 80 dB
stop-band), so the returned noise follows the G.227 magnitude from 0 to about 7 kHz at 16 kHz.
"""
from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
from scipy import signal

from .audio import AUDIO_SUFFIXES, read_audio, resample
from ..errors import DataError, ParameterError

#: G.227 insertion-loss numerator N(p), highest power first (see the module docstring).
G227_LOSS_NUMERATOR = (11638.0, 54050.0, 91238.0, 67280.0, 18400.0)
#: G.227 insertion-loss denominator D(p), highest power first.
G227_LOSS_DENOMINATOR = (1.0, 130.0, 4001.0, 36040.0, 400.0)
#: The same network as three cascaded sections (numerator, denominator), highest power first.
G227_SECTIONS = (((46.0, 90.0, 46.0), (1.0, 90.0, 1.0)),
                 ((11.0, 20.0), (1.0, 20.0)),
                 ((23.0, 20.0), (1.0, 20.0)))
#: G.227 frequency normalisation: p = j f / G227_F0_HZ.
G227_F0_HZ = 1000.0

#: Internal oversampling of the bilinear-transformed filter (warping error, module docstring).
OVERSAMPLE = 8
#: RMS of the returned CCITT noise (a level for listening; mixing rescales it anyway).
CCITT_RMS = 0.1
#: Output samples discarded at the start so that filter transients never show.
_WARMUP = 2048


def g227_gain_db(f_hz: np.ndarray | float) -> np.ndarray:
    """Gain of the analog G.227 shaping network in dB (minus the G.227 insertion loss)."""
    p = 1j * np.asarray(f_hz, dtype=np.float64) / G227_F0_HZ
    ratio = np.polyval(G227_LOSS_DENOMINATOR, p) / np.polyval(G227_LOSS_NUMERATOR, p)
    return 20.0 * np.log10(np.abs(ratio))


@functools.lru_cache(maxsize=8)
def _g227_design(fs: int) -> tuple[np.ndarray, np.ndarray]:
    """(sos at OVERSAMPLE*fs, decimation FIR) for output rate ``fs``."""
    fs_internal = OVERSAMPLE * fs
    w0 = 2.0 * math.pi * G227_F0_HZ          # s = w0 * p
    zeros = np.roots(G227_LOSS_DENOMINATOR) * w0
    poles = np.roots(G227_LOSS_NUMERATOR) * w0
    gain = G227_LOSS_DENOMINATOR[0] / G227_LOSS_NUMERATOR[0]
    zd, pd, kd = signal.bilinear_zpk(zeros, poles, gain, fs_internal)
    sos = signal.zpk2sos(zd, pd, kd)
    # Anti-alias FIR: pass band to 0.45 fs, stop band from 0.55 fs (nothing aliases below
    # 0.45 fs), Kaiser design for 80 dB.
    numtaps, beta = signal.kaiserord(80.0, (0.10 * fs) / (fs_internal / 2.0))
    numtaps |= 1
    fir = signal.firwin(numtaps, 0.5 * fs, window=("kaiser", beta), fs=fs_internal)
    return sos, fir


def g227_digital_gain_db(f_hz: np.ndarray | float, fs: int = 16000) -> np.ndarray:
    """Gain in dB of the digital chain :func:`ccitt_noise` uses (before its RMS scaling)."""
    sos, fir = _g227_design(int(fs))
    f = np.atleast_1d(np.asarray(f_hz, dtype=np.float64))
    _, h_iir = signal.sosfreqz(sos, worN=f, fs=OVERSAMPLE * fs)
    _, h_fir = signal.freqz(fir, worN=f, fs=OVERSAMPLE * fs)
    return 20.0 * np.log10(np.abs(h_iir * h_fir))


def ccitt_noise(n_samples: int, fs: int, rng: np.random.Generator, *,
                rms: float = CCITT_RMS) -> np.ndarray:
    """CCITT speech-shaped noise: white Gaussian noise through the ITU-T G.227 network.

    Returns ``n_samples`` float64 samples at ``fs``, scaled to RMS ``rms``. All randomness
    comes from ``rng``, so the same generator state gives the same noise.
    """
    if int(n_samples) != n_samples or n_samples < 1:
        raise ParameterError(f"n_samples must be a positive integer, got {n_samples!r}")
    if int(fs) != fs or fs < 1000:
        raise ParameterError(f"fs must be an integer rate >= 1000 Hz, got {fs!r}")
    if not isinstance(rng, np.random.Generator):
        raise ParameterError("rng must be a numpy.random.Generator (np.random.default_rng(seed))")
    n_samples, fs = int(n_samples), int(fs)
    sos, fir = _g227_design(fs)
    n_out = n_samples + _WARMUP
    white = rng.standard_normal(n_out * OVERSAMPLE + fir.size)
    shaped = signal.sosfilt(sos, white)
    y = signal.upfirdn(fir, shaped, down=OVERSAMPLE)[_WARMUP:_WARMUP + n_samples]
    return y * (rms / float(np.sqrt(np.mean(np.square(y)))))


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder`` (recursive, sorted; suffixes of ``audio.AUDIO_SUFFIXES``,
    any case; hidden files and folders skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; expected a folder of audio files")
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def noise_name(path: Path, folder: Path) -> str:
    """Name of a noise type: its path below ``folder`` without the suffix (``babble``, ``sub/x``)."""
    return path.relative_to(folder).with_suffix("").as_posix()


def load_noises(folder: str | os.PathLike, fs: int = 16000) -> dict[str, np.ndarray]:
    """Read every audio file under ``folder`` as mono float64 at ``fs``: name -> samples.

    Names are the file paths below ``folder`` without suffix (:func:`noise_name`). Raises
    :class:`DataError` when the folder is missing or holds no audio files.
    """
    folder = Path(folder)
    files = audio_files(folder)
    if not files:
        raise DataError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}); "
                        "expected noise recordings")
    noises = {}
    for path in files:
        x, rate = read_audio(path)
        noises[noise_name(path, folder)] = resample(x, rate, fs) if rate != fs else x
    return noises
