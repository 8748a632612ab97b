"""Figures (matplotlib, the optional ``plot`` extra, imported lazily).

So far: the signal-chain figure of one utterance: the input's spectrogram, its ACE stimulation
pattern (an electrodogram: channels over time, colour = LGF magnitude), and the spectrogram of
the sine-vocoded pattern, i.e. what VSTOI compares with the clean speech.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._files import atomic_path
from .errors import PaCiError


def _pyplot() -> Any:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PaCiError("plotting needs matplotlib: pip install 'pa-ci[plot]'") from None
    return plt


def signal_chain_figure(path: str | os.PathLike, audio: np.ndarray, pattern: np.ndarray,
                        vocoded: np.ndarray, fs: float, frame_rate: float,
                        centre_frequencies: np.ndarray, title: str = "") -> None:
    """Write a PNG: input spectrogram, stimulation pattern, vocoded spectrogram (shared time axis)."""
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True, constrained_layout=True)
    spec_kw = dict(NFFT=256, noverlap=192, Fs=fs, cmap="magma", vmin=-120)
    # Exact zeros (silent stretches) would give log10(0): a seeded 1e-9 dither (-180 dB, far
    # below vmin) keeps every bin finite.
    dither = np.random.default_rng(0).standard_normal
    axes[0].specgram(np.asarray(audio) + 1e-9 * dither(len(audio)), **spec_kw)
    axes[0].set(ylabel="Hz", title=f"input{': ' + title if title else ''}")
    k = np.arange(pattern.shape[0] + 1) / frame_rate
    image = axes[1].pcolormesh(k, np.arange(pattern.shape[1] + 1) + 0.5, pattern.T,
                               cmap="viridis", vmin=0, vmax=1, shading="flat")
    ticks = [0, 4, 9, 13, 17, 21]
    axes[1].set_yticks([t + 1 for t in ticks],
                       [f"{t + 1} ({centre_frequencies[t]:.0f} Hz)" for t in ticks])
    axes[1].set(ylabel="channel", title="ACE stimulation pattern (LGF magnitude)")
    fig.colorbar(image, ax=axes[1], pad=0.01)
    axes[2].specgram(np.asarray(vocoded) + 1e-9 * dither(len(vocoded)), **spec_kw)
    axes[2].set(ylabel="Hz", xlabel="time (s)", title="sine-vocoded pattern (what VSTOI hears)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
