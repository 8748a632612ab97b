"""The FRAE's sizes (research §3.3, config A) and their limits: :class:`FraeConfig`.

Kept apart from the kernels (:mod:`pa_ci.codec.frae`) so that the command line takes its
defaults from here without loading Numba.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Mapping

import numpy as np

from ..errors import ParameterError

__all__ = ["FraeConfig", "DEFAULT_FRAME_RATE", "MAX_CHANNELS", "MAX_HIDDEN", "MAX_LATENT_DIM",
           "MAX_CODEBOOK_SIZE", "MAX_PARAMETERS"]

#: ACE frame rate: fs / hop = 16000 / 18 = 888.9 frames/s (DECISIONS.md "Signal chain").
DEFAULT_FRAME_RATE = 16000 / 18


# --------------------------------------------------------------------------- config
# Upper limits of the FRAE sizes. The paper's models are tiny (config A: 22 channels, 14 + 14
# hidden units, 3300 network weights, 64 codewords) because they must fit the 32-300 kB of
# on-chip memory of a CI processor (paper §I). The limits are orders of magnitude above that,
# so every research use fits, yet a typo (--enc-hidden 100000) or a crafted file header
# (hidden size 65535, codebook 2**32) is one clear error instead of an attempt to allocate
# tens or hundreds of GiB.
#: Largest ``n_channels``: a CI electrode array has 12-24 contacts; 256 leaves room for any
#: current or research array.
MAX_CHANNELS = 256
#: Largest ``enc_hidden`` / ``dec_hidden`` (a 4096-unit GRU already has ~50 million weights).
MAX_HIDDEN = 4096
#: Largest ``latent_dim`` (the paper uses 2; the codebook holds K x D values).
MAX_LATENT_DIM = 256
#: Largest ``codebook_size``: a stream stores an index in at most 16 bits
#: (:data:`pa_ci.codec.bitstream.MAX_BITS`), so K <= 2**16.
MAX_CODEBOOK_SIZE = 2**16
#: Largest parameter count (network + codebook): 2**24 float64 values = 128 MiB per theta
#: (SPSA holds a few thetas at once); the paper's models have ~3500.
MAX_PARAMETERS = 2**24

#: Arithmetic precisions of the training objective's FRAE pass (``--precision``; see
#: :func:`pa_ci.codec.frae.forward_maxima`). Here, not in frae, so the CLI can list them
#: without importing the compiled kernels.
PRECISIONS = ("float64", "float32")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a :class:`ParameterError`."""
    if precision not in PRECISIONS:
        raise ParameterError(f"precision is {precision!r}; expected one of {', '.join(PRECISIONS)}")
    return precision


_CONFIG_LIMITS = {"n_channels": MAX_CHANNELS, "enc_hidden": MAX_HIDDEN, "dec_hidden": MAX_HIDDEN,
                  "latent_dim": MAX_LATENT_DIM, "codebook_size": MAX_CODEBOOK_SIZE}
_CONFIG_LIMITS_WHY = {
    "n_channels": "channels of an electrode array",
    "enc_hidden": "GRU units; the paper's models have 14",
    "dec_hidden": "GRU units; the paper's models have 14",
    "latent_dim": "latent values per frame; the paper's models have 2",
    "codebook_size": "codewords; a stream index has at most 16 bits",
}


def _parameter_count(C: int, He: int, Hd: int, D: int, K: int) -> int:
    """Entries of :func:`frae_layout` for these sizes (computed without building the layout)."""
    enc = 3 * He * (C + Hd) + 3 * He * He + 6 * He + D * He + D
    dec = 3 * Hd * D + 3 * Hd * Hd + 6 * Hd + C * Hd + C
    return enc + dec + K * D


@dataclass(frozen=True)
class FraeConfig:
    """Sizes of the FRAE (research §3.3, config A; defaults: 3300 network weights + 128 codebook).

    ``n_channels`` C (pattern width), ``enc_hidden`` H_e, ``dec_hidden`` H_d, ``latent_dim`` D,
    ``codebook_size`` K (index alphabet), ``output_maxima`` (0 = keep all outputs), ``frame_rate``
    (frames/s, for the bit rate only).
    """

    n_channels: int = 22
    enc_hidden: int = 14
    dec_hidden: int = 14
    latent_dim: int = 2
    codebook_size: int = 64
    output_maxima: int = 8
    frame_rate: float = DEFAULT_FRAME_RATE

    def __post_init__(self) -> None:
        for name, low in (("n_channels", 1), ("enc_hidden", 1), ("dec_hidden", 1),
                          ("latent_dim", 1), ("codebook_size", 2), ("output_maxima", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ParameterError(f"FraeConfig.{name} = {v!r}; expected an integer >= {low}")
            top = _CONFIG_LIMITS.get(name)
            if top is not None and v > top:
                raise ParameterError(f"FraeConfig.{name} = {v!r}; expected at most {top} "
                                     f"({_CONFIG_LIMITS_WHY[name]})")
            object.__setattr__(self, name, int(v))
        n = _parameter_count(self.n_channels, self.enc_hidden, self.dec_hidden,
                             self.latent_dim, self.codebook_size)
        if n > MAX_PARAMETERS:
            raise ParameterError(f"FraeConfig has {n} parameters; expected at most "
                                 f"{MAX_PARAMETERS} (the codec targets processors with 32-300 kB "
                                 "of memory; this limit keeps every theta below 128 MiB)")
        if self.output_maxima > self.n_channels:
            raise ParameterError(f"FraeConfig.output_maxima = {self.output_maxima}; expected "
                                 f"0..n_channels ({self.n_channels})")
        fr = self.frame_rate
        if isinstance(fr, bool) or not isinstance(fr, (int, float, np.integer, np.floating)) \
                or not math.isfinite(fr) or fr <= 0:
            raise ParameterError(f"FraeConfig.frame_rate = {fr!r}; expected a positive number "
                                 "(frames/s)")
        object.__setattr__(self, "frame_rate", float(fr))

    @property
    def n_bits(self) -> int:
        """Bits per frame of a fixed-rate index: ceil(log2(codebook_size)) (research §3.5)."""
        return (self.codebook_size - 1).bit_length()

    @property
    def bitrate_bps(self) -> float:
        """Nominal bit rate: n_bits x frame_rate (6 x 888.9 = 5333 bit/s by default)."""
        return self.n_bits * self.frame_rate

    def to_dict(self) -> dict:
        """JSON-able dict of all fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "FraeConfig":
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys are an error."""
        if not isinstance(d, Mapping):
            raise ParameterError(f"FRAE config must be a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ParameterError(f"unknown FRAE config keys {', '.join(map(repr, unknown))}; "
                                 f"expected some of {', '.join(sorted(known))}")
        return cls(**dict(d))
