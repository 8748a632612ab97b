"""The signal chain on files: audio file -> ACE pattern -> vocoded audio / VSTOI.

These are the file-level functions behind ``pa-ci vstoi`` and ``pa-ci vocode``; they read and
check the audio, bring it to the ACE rate, and return plain dictionaries the CLI prints.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .ace import AceParams, ace
from .audio import read_audio, resample, write_wav
from ..errors import AudioError
from .stoi import Reference, short_signal_message
from .vocoder import vocode
from .vstoi import vstoi_of_pattern


def load_audio_at(path: str | os.PathLike, fs: int) -> np.ndarray:
    """Read an audio file as mono and bring it to ``fs`` (one-line AudioError if unusable)."""
    x, fs_in = read_audio(path)
    return resample(x, fs_in, fs)


def vstoi_of_files(clean: str | os.PathLike, noisy: str | os.PathLike | None = None,
                   params: AceParams | None = None, extended: bool = False) -> dict[str, Any]:
    """VSTOI of the ACE pattern of ``noisy`` (default: ``clean`` itself) against ``clean``.

    Both files are read as mono and brought to ``params.fs``; a mixture of another length is
    trimmed to the common length (with a warning). Speech too short for STOI (fewer than 30
    non-silent 25.6 ms frames) is an error here rather than pystoi's silent 1e-5. With a noisy
    file, the acoustic STOI of the mixture (no CI processing) is reported too, for comparison.
    ``extended`` uses ESTOI (Jensen & Taal 2016) in place of STOI for both figures.
    """
    params = params or AceParams()
    fs = int(params.fs)
    x = load_audio_at(clean, fs)
    y = x if noisy is None else load_audio_at(noisy, fs)
    if len(y) != len(x):
        warnings.warn(f"{noisy}: {len(y)} samples vs {len(x)} in {clean} at {fs} Hz; "
                      "using the common length", stacklevel=2)
        n = min(len(x), len(y))
        x, y = x[:n], y[:n]
    reference = Reference(x, fs)
    if not reference.valid:
        raise AudioError(f"{clean}: {short_signal_message(reference)}")
    pattern = ace(y, fs, params)
    score = vstoi_of_pattern(reference, pattern, params, extended=extended)
    result = {
        "vstoi": float(score),
        "measure": "ESTOI" if extended else "STOI",
        "clean_file": str(clean),
        "coded_file": str(noisy if noisy is not None else clean),
        "fs": fs,
        "frames": int(pattern.shape[0]),
        "seconds": len(x) / fs,
        "active_channels_mean": float(np.count_nonzero(pattern, axis=1).mean()),
    }
    if noisy is not None:
        result["stoi_input"] = float(reference.stoi(y, extended=extended))
    return result


def vocode_file(source: str | os.PathLike, output: str | os.PathLike,
                params: AceParams | None = None, plot: str | os.PathLike | None = None) -> dict[str, Any]:
    """Code ``source`` with ACE, vocode the pattern and write it to ``output`` (WAV, atomically).

    With ``plot``, also write a PNG of the input, its stimulation pattern and the vocoded audio.
    """
    params = params or AceParams()
    fs = int(params.fs)
    output = Path(output)
    if output.suffix.lower() != ".wav":
        raise AudioError(f"{output}: output must be a .wav file")
    if plot is not None and Path(plot).suffix.lower() != ".png":
        raise AudioError(f"{plot}: the plot must be a .png file")
    x = load_audio_at(source, fs)
    pattern = ace(x, fs, params)
    audio = vocode(pattern, params)[: len(x)]
    if plot is not None:  # before the WAV: a missing matplotlib leaves no output at all
        from ..plots import signal_chain_figure
        signal_chain_figure(plot, x, pattern, audio, fs, params.analysis_rate,
                            params.centre_frequencies, title=Path(source).name)
    write_wav(output, 0.9 * audio, fs)
    result = {"output": str(output), "source": str(source), "fs": fs,
              "frames": int(pattern.shape[0]), "seconds": len(audio) / fs}
    if plot is not None:
        result["plot"] = str(plot)
    return result
