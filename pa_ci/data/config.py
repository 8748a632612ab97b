"""The configuration of a dataset (paper §III-A): :class:`DatasetConfig`, everything that defines a
dataset, and :func:`default_config`, the default dataset on the bundled data.

With the constants a configuration refers to: the sample rate of a dataset (:data:`FS`, the ACE
rate), the bundled speech and noise folders and the paper's SNR range. The bottom module of
:mod:`pa_ci.data`: the plan, the mixing, the cache and :mod:`pa_ci.data.dataset` (which
re-exports these names) read a configuration; it imports none of them.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..validate import is_finite_real, is_int

#: Sample rate of everything in a dataset (the ACE rate, DECISIONS.md).
FS = 16000
#: The bundled default data (a subset of the shared collection; see bundled/SOURCES.md).
BUNDLED = Path(__file__).resolve().parent.parent / "bundled"
BUNDLED_SPEECH = BUNDLED / "speech"
BUNDLED_NOISE = BUNDLED / "noise"
#: SNR range of the paper (§II-E: "-5 dB to 40 dB").
PAPER_SNR_RANGE_DB = (-5.0, 40.0)


# --------------------------------------------------------------------------- JSON values
def _jsonable(obj: Any) -> Any:
    """``obj`` made JSON-ready: dicts, lists, tuples, arrays, NumPy scalars and paths converted
    (the configuration's ACE parameters, the manifest's records)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class DatasetConfig:
    """Everything that defines a dataset; ``dataclasses.replace`` makes variants.

    ``ace`` is an :class:`~pa_ci.chain.ace.AceParams`, a preset name (``AceParams.preset``) or None
    (the defaults). ``n_test`` None means all candidates of the test speakers.
    """

    speech_dir: str | os.PathLike = BUNDLED_SPEECH
    noise_dir: str | os.PathLike = BUNDLED_NOISE
    seed: int = 0
    n_train: int = 100                       # paper: 100 train patterns; DECISIONS.md
    n_test: int | None = None                # DECISIONS.md: "the rest test"
    snr_range_db: tuple[float, float] = PAPER_SNR_RANGE_DB
    mixtures_per_utterance: int = 4
    max_seconds: float | None = None
    include_ccitt: bool = True
    train_speaker_fraction: float = 0.5
    ace: Any = None

    def __post_init__(self) -> None:
        lo_hi = tuple(float(v) for v in self.snr_range_db)
        object.__setattr__(self, "snr_range_db", lo_hi)
        if not is_int(self.seed) or self.seed < 0:
            raise ParameterError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not (is_int(self.n_train) and self.n_train >= 1):
            raise ParameterError(f"n_train must be a positive integer, got {self.n_train!r}")
        if self.n_test is not None and not (is_int(self.n_test) and self.n_test >= 1):
            raise ParameterError(f"n_test must be a positive integer or None, got {self.n_test!r}")
        if len(lo_hi) != 2 or not all(math.isfinite(v) for v in lo_hi) or lo_hi[0] > lo_hi[1]:
            raise ParameterError(f"snr_range_db must be (low, high) with low <= high, got {self.snr_range_db!r}")
        if not (is_int(self.mixtures_per_utterance) and self.mixtures_per_utterance >= 1):
            raise ParameterError("mixtures_per_utterance must be a positive integer, "
                                 f"got {self.mixtures_per_utterance!r}")
        if self.max_seconds is not None and not (is_finite_real(self.max_seconds) and self.max_seconds > 0):
            raise ParameterError(f"max_seconds must be positive or None, got {self.max_seconds!r}")
        if not 0.0 < float(self.train_speaker_fraction) < 1.0:
            raise ParameterError("train_speaker_fraction must be between 0 and 1 (exclusive), "
                                 f"got {self.train_speaker_fraction!r}")

    def ace_params(self):  # -> AceParams (lazy import: ace is a heavier module)
        """The :class:`~pa_ci.chain.ace.AceParams` this configuration uses (16 kHz required)."""
        from ..chain.ace import AceParams
        if self.ace is None:
            params = AceParams()
        elif isinstance(self.ace, str):
            params = AceParams.preset(self.ace)
        elif isinstance(self.ace, AceParams):
            params = self.ace
        elif isinstance(self.ace, dict):
            params = AceParams(**self.ace)
        else:
            raise ParameterError(f"ace must be AceParams, a preset name or None, got {type(self.ace).__name__}")
        if float(params.fs) != FS:
            raise ParameterError(f"datasets are made at {FS} Hz; the ACE parameters have fs = {params.fs}")
        return params

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings, ACE parameters as a field dict)."""
        return {
            "speech_dir": str(self.speech_dir), "noise_dir": str(self.noise_dir),
            "seed": int(self.seed), "n_train": int(self.n_train),
            "n_test": None if self.n_test is None else int(self.n_test),
            "snr_range_db": list(self.snr_range_db),
            "mixtures_per_utterance": int(self.mixtures_per_utterance),
            "max_seconds": self.max_seconds, "include_ccitt": bool(self.include_ccitt),
            "train_speaker_fraction": float(self.train_speaker_fraction),
            "ace": _jsonable(dataclasses.asdict(self.ace_params())),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["snr_range_db"] = tuple(d["snr_range_db"])
        if isinstance(d.get("ace"), dict):
            from ..chain.ace import AceParams
            d["ace"] = AceParams(**d["ace"])
        return cls(**d)


def default_config(tiny: bool = False) -> DatasetConfig:
    """The default dataset on the bundled data (100 train items, the rest test); ``tiny``: 8 train,
    8 test, first 4 s of each utterance (for tests and the demo)."""
    if tiny:
        return DatasetConfig(n_train=8, n_test=8, max_seconds=4.0)
    return DatasetConfig()
