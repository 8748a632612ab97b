"""The plan of a dataset (paper §III-A): its input files, the speaker-disjoint split and the
drawn candidates that become its items, every draw from streams seeded by ``config.seed``.

* **Inputs** (:func:`_inputs`): the speech files with their speakers
  (:func:`pa_ci.data.speakers.scan_speech`) and the noise files, whose names are the noise types,
  plus ``"ccitt"`` (the generated ITU-T G.227 noise) unless ``include_ccitt`` is False.
* **Split by speaker**: the sorted speakers are permuted with the seed; the first
  ``round(train_speaker_fraction * speakers)`` (at least 1, at most all but 1) are train
  speakers, the rest test speakers. No speaker is in both splits.
* **Candidates**: each utterance gives ``mixtures_per_utterance`` candidates, each with its own
  noise type (uniform over the noise types), SNR (uniform in ``snr_range_db``, paper: -5..40 dB)
  and noise offset (uniform). Train items are the first ``n_train`` train candidates after a
  seeded shuffle; test items are all test candidates in file order, or the first ``n_test``
  after a seeded shuffle when ``n_test`` is given.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..chain.audio import AUDIO_SUFFIXES
from ..chain.noise import audio_files, noise_name
from ..errors import DataError
from .config import DatasetConfig
from .speakers import _Utterance, scan_speech

#: Name of the generated ITU-T G.227 noise type.
CCITT_NAME = "ccitt"


def _inputs(config: DatasetConfig) -> tuple[list[_Utterance], list[tuple[str, Path]], list[str]]:
    """(utterances, (noise type, noise file) pairs, noise types) of ``config``'s folders."""
    utts = scan_speech(config.speech_dir)
    noise_root = Path(config.noise_dir)
    files = audio_files(noise_root)
    if not files:
        raise DataError(f"{noise_root}: no audio files ({', '.join(AUDIO_SUFFIXES)}); expected noise recordings")
    noise_files = [(noise_name(p, noise_root), p) for p in files]
    names = [n for n, _ in noise_files]
    if config.include_ccitt:
        if CCITT_NAME in names:
            raise DataError(f"{noise_root}: a noise file is named '{CCITT_NAME}', the name of the generated "
                            "G.227 noise; rename it or set include_ccitt=False")
        names.append(CCITT_NAME)
    return utts, noise_files, names


@dataclass(frozen=True)
class _Candidate:
    """A drawn (utterance, mixture index, noise type, SNR, noise offset): a possible item."""

    utt: int          # index into the utterance list
    mix: int          # mixture index within the utterance
    noise: str
    snr_db: float
    u_offset: float   # uniform [0, 1): offset = floor(u * range)

    def id(self, utts: list[_Utterance]) -> str:
        return f"{Path(utts[self.utt].rel).with_suffix('').as_posix()}#{self.mix}"


@dataclass(frozen=True)
class _Plan:
    """The split: the speakers of each split and the candidates that become its items."""

    train_speakers: list[str]
    test_speakers: list[str]
    train: list[_Candidate]
    test: list[_Candidate]


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """The independent random streams of a dataset, all from ``seed``."""
    names = ("split", "draws", "train_order", "test_order", "ccitt")
    children = np.random.SeedSequence(int(seed)).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children)}


def _plan(config: DatasetConfig, utts: list[_Utterance], noise_types: list[str]) -> _Plan:
    """The split and the candidates of ``config`` (see the module docstring)."""
    speakers = sorted({u.speaker for u in utts})
    if len(speakers) < 2:
        raise DataError(f"{config.speech_dir}: {len(speakers)} speaker(s) found; a speaker-disjoint "
                        "split needs at least 2 (speaker rule: MANIFEST.tsv, LibriSpeech name, folder name)")
    rng = _streams(config.seed)
    perm = rng["split"].permutation(len(speakers))
    n_train_spk = min(max(int(round(config.train_speaker_fraction * len(speakers))), 1), len(speakers) - 1)
    train_spk = sorted(speakers[i] for i in perm[:n_train_spk])
    test_spk = sorted(speakers[i] for i in perm[n_train_spk:])
    lo, hi = config.snr_range_db
    candidates = []
    for i in range(len(utts)):
        for m in range(config.mixtures_per_utterance):
            noise = noise_types[int(rng["draws"].integers(len(noise_types)))]
            snr = float(rng["draws"].uniform(lo, hi)) if hi > lo else lo
            candidates.append(_Candidate(i, m, noise, snr, float(rng["draws"].random())))
    train_set = set(train_spk)
    train_c = [c for c in candidates if utts[c.utt].speaker in train_set]
    test_c = [c for c in candidates if utts[c.utt].speaker not in train_set]
    if len(train_c) < config.n_train:
        n_utt = len({c.utt for c in train_c})
        raise DataError(f"the {len(train_spk)} train speakers supply {len(train_c)} items "
                        f"({n_utt} utterances x {config.mixtures_per_utterance} mixtures), "
                        f"fewer than n_train = {config.n_train}; lower n_train or raise "
                        "mixtures_per_utterance")
    train = [train_c[i] for i in rng["train_order"].permutation(len(train_c))[:config.n_train]]
    if config.n_test is None:
        test = test_c
    else:
        if len(test_c) < config.n_test:
            raise DataError(f"the {len(test_spk)} test speakers supply {len(test_c)} items, "
                            f"fewer than n_test = {config.n_test}")
        test = [test_c[i] for i in rng["test_order"].permutation(len(test_c))[:config.n_test]]
    return _Plan(train_spk, test_spk, train, test)
