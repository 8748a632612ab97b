"""Speech-in-noise datasets: items of (clean speech, noisy mixture, ACE pattern, reference VSTOI).

How a dataset is made (paper §III-A; defaults from ``specs/DECISIONS.md``, section "Data"):

1. **Speech files**: every audio file under ``speech_dir`` (recursive; suffixes of
   :data:`pa_ci.chain.audio.AUDIO_SUFFIXES` in any case, so a TIMIT copy with NIST SPHERE ``.WAV``
   files works), read as mono, resampled to 16 kHz, cut to ``max_seconds``
   (:mod:`pa_ci.data.mixing`).
2. **Speaker of a file**: a ``MANIFEST.tsv`` that lists it, else a LibriSpeech name, else the
   name of its folder (:func:`pa_ci.data.speakers.speaker_of` has the rules).
3. **Split by speaker**: the sorted speakers are permuted with the seed; the first
   ``round(train_speaker_fraction * speakers)`` (at least 1, at most all but 1) are train
   speakers, the rest test speakers. No speaker is in both splits (:mod:`pa_ci.data.plan`).
4. **Candidates**: each utterance gives ``mixtures_per_utterance`` candidates, each with its own
   noise type (uniform over the noise files plus ``"ccitt"``), SNR (uniform in
   ``snr_range_db``, paper: -5..40 dB) and noise offset (uniform; a noise shorter than the
   speech is tiled). Train items are the first ``n_train`` train candidates after a seeded
   shuffle; test items are all test candidates in file order, or the first ``n_test`` after a
   seeded shuffle when ``n_test`` is given (:mod:`pa_ci.data.plan`).
5. **Mixing** (:func:`pa_ci.data.mixing.make_mixture`): the noise is scaled so that
   ``10 log10(P_speech / P_noise) = SNR`` over the whole utterance, then clean and mixture are
   scaled together so that the mixture is at the ACE presentation level (65 dB SPL).
6. **Pattern and reference**: ``pattern = ace(mixture, 16000, params)``;
   ``reference_vstoi = vstoi(clean, pattern, 16000)``, the VSTOI of the uncoded pattern (the
   ceiling a codec can reach).

Datasets are cached under ``$PA_CI_CACHE`` (default ``~/.cache/pa-ci``) in
``datasets/<key>/`` (``manifest.json`` + ``arrays.npz``; :mod:`pa_ci.data.cache`). The key is a
hash of the audio files' contents (and their relative paths and speakers), the configuration
(without folder paths), the seed, the pa-ci version and the source code of the signal chain and
of the dataset code (every module of ``pa_ci.chain`` and ``pa_ci.data``). A build is written to
a temporary folder and renamed when complete. Audio is stored as float32 (patterns, references
and SNRs were computed from the float64 signals). All randomness comes from
``numpy.random.Generator``s seeded from ``config.seed``.

Commands take such a folder as ``--dataset DIR`` (:func:`find_dataset`: the dataset folder, or a
cache folder holding exactly one) and load it (:func:`open_dataset`), never rebuilding it; runs
and models record :meth:`Dataset.record` (key, path, item counts).

The configuration (:class:`~pa_ci.data.config.DatasetConfig`, :func:`default_config`) is
:mod:`pa_ci.data.config`; both names are importable from here too.
"""
from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..chain.audio import calibration_gain
from ..errors import DataError, ParameterError
from ..progress import ProgressFn
from .cache import _hash_doc, _HashMemo, _key_document, _read, _store, default_cache_dir
# the configuration (pa_ci.data.config); its names are this module's too, as before it moved
from .config import (BUNDLED, BUNDLED_NOISE, BUNDLED_SPEECH, FS, PAPER_SNR_RANGE_DB,  # noqa: F401
                     DatasetConfig, default_config)
from .mixing import _load_noise_arrays, load_speech, make_mixture, noise_segment
from .plan import _inputs, _plan, _Plan
from .speakers import _Utterance


# --------------------------------------------------------------------------- items, dataset
@dataclass(frozen=True, eq=False)
class Item:
    """One dataset item: clean speech, mixture (both float32 at 16 kHz), ACE pattern (K, 22) of
    the mixture, the reference VSTOI, and where it came from."""

    id: str
    split: str
    speaker: str
    speech_file: str          # path below speech_dir, '/'-separated
    noise: str                # noise type name ("ccitt" for the generated G.227 noise)
    snr_db: float             # drawn SNR; 10 log10(P_clean / P_(mixture - clean))
    noise_offset: int         # first sample of the noise segment (noise tiled when shorter)
    noise_gain: float         # factor applied to the noise segment in the stored mixture
    clean_scale: float        # factor applied to the speech file's samples (mixture at 65 dB SPL)
    clean: np.ndarray = field(repr=False)
    mixture: np.ndarray = field(repr=False)
    pattern: np.ndarray = field(repr=False)
    reference_vstoi: float = math.nan

    @property
    def seconds(self) -> float:
        return self.clean.size / FS

    def metadata(self) -> dict[str, Any]:
        """The item without its arrays (what manifest.json stores)."""
        return {"id": self.id, "split": self.split, "speaker": self.speaker,
                "speech_file": self.speech_file, "noise": self.noise, "snr_db": self.snr_db,
                "noise_offset": self.noise_offset, "noise_gain": self.noise_gain,
                "clean_scale": self.clean_scale, "n_samples": int(self.clean.size),
                "n_frames": int(self.pattern.shape[0]),
                "reference_vstoi": self.reference_vstoi}


@dataclass(eq=False)
class Dataset:
    """A built (or loaded) dataset: ``train`` and ``test`` item lists, its cache ``path`` and ``key``."""

    key: str
    path: Path
    config: DatasetConfig
    train: list[Item]
    test: list[Item]
    noise_types: list[str]
    sources: dict[str, Any] = field(default_factory=dict, repr=False)

    def split(self, name: str) -> list[Item]:
        if name not in ("train", "test"):
            raise ParameterError(f"split must be 'train' or 'test', got {name!r}")
        return self.train if name == "train" else self.test

    def record(self, path: bool = True) -> dict[str, Any]:
        """What runs and models record of the dataset they were trained or scored on: its
        ``key`` (content hash), ``path`` (resolved; left out with ``path=False``, e.g. in model
        files, whose bytes should not depend on where the cache is) and the item counts."""
        out: dict[str, Any] = {"key": self.key}
        if path:
            out["path"] = str(Path(self.path).resolve())
        out.update({"n_train": len(self.train), "n_test": len(self.test)})
        return out

    def summary(self) -> dict[str, Any]:
        """Counts, speakers, seconds of audio and reference VSTOI (mean/min/max) per split."""
        out: dict[str, Any] = {"key": self.key, "n_train": len(self.train), "n_test": len(self.test),
                               "noise_types": list(self.noise_types),
                               "snr_range_db": list(self.config.snr_range_db), "seed": self.config.seed}
        for name in ("train", "test"):
            items = self.split(name)
            ref = np.array([it.reference_vstoi for it in items], dtype=np.float64)
            speakers = sorted({it.speaker for it in items})
            out[name] = {
                "items": len(items), "speakers": len(speakers), "speaker_ids": speakers,
                "seconds": round(float(sum(it.seconds for it in items)), 6),
                "reference_vstoi_mean": float(ref.mean()) if ref.size else math.nan,
                "reference_vstoi_min": float(ref.min()) if ref.size else math.nan,
                "reference_vstoi_max": float(ref.max()) if ref.size else math.nan,
                "noise_counts": {n: sum(it.noise == n for it in items) for n in self.noise_types},
            }
        return out


# --------------------------------------------------------------------------- building
def reference_vstoi(clean: np.ndarray, pattern: np.ndarray, params: Any = None,
                    name: str | None = None) -> float:
    """VSTOI of the uncoded ``pattern`` against ``clean`` (both at 16 kHz): ``stoi.vstoi``.

    Raises :class:`DataError` when the clean speech is too short for STOI (fewer than 30
    non-silent frames), where STOI itself would return its 1e-5 placeholder.
    """
    from ..chain.ace import default_params
    from ..chain.stoi import Reference, short_signal_message
    from ..chain.vstoi import vstoi_of_pattern

    params = params or default_params()
    reference = Reference(clean, FS)
    if not reference.valid:
        raise DataError(f"{name or 'speech'}: {short_signal_message(reference)}; "
                        "use longer speech (max_seconds) or remove the file")
    return float(vstoi_of_pattern(reference, pattern, params))


def _compute(config: DatasetConfig, params: Any, utts: list[_Utterance], plan: _Plan,
             noises: dict[str, np.ndarray], noise_types: list[str], key: str,
             progress: ProgressFn | None) -> tuple[Dataset, dict[str, np.ndarray]]:
    """The items of ``plan`` (steps 5 and 6 of the module docstring) and the unscaled speech
    of each file they use."""
    from ..chain.ace import ace

    jobs = [("train", c) for c in plan.train] + [("test", c) for c in plan.test]
    total = len(jobs)
    if progress is not None:
        progress(0, total)
    speech_cache: dict[int, np.ndarray] = {}
    out: dict[str, list[Item]] = {"train": [], "test": []}
    ref_sum = 0.0
    for done, (split, c) in enumerate(jobs, start=1):
        utt = utts[c.utt]
        if c.utt not in speech_cache:
            speech_cache[c.utt] = load_speech(utt.path, config.max_seconds)
        s = speech_cache[c.utt]
        noise = noises[c.noise]
        n = s.size
        span = noise.size - n + 1 if noise.size >= n else noise.size
        offset = min(int(c.u_offset * span), span - 1)
        mixture, g = make_mixture(s, noise_segment(noise, offset, n), c.snr_db)
        scale = 1.0
        if params.calibration_db_spl is not None:  # the level ACE would set anyway (DECISIONS.md)
            scale = calibration_gain(mixture, params.calibration_db_spl, params.reference_db_spl)
        clean, mixture = s * scale, mixture * scale
        pattern = ace(mixture, FS, params)
        ref = reference_vstoi(clean, pattern, params, name=utt.rel)
        out[split].append(Item(
            id=c.id(utts), split=split, speaker=utt.speaker, speech_file=utt.rel, noise=c.noise,
            snr_db=c.snr_db, noise_offset=offset, noise_gain=g * scale, clean_scale=scale,
            clean=clean.astype(np.float32), mixture=mixture.astype(np.float32),
            pattern=np.ascontiguousarray(pattern, dtype=np.float32), reference_vstoi=ref))
        ref_sum += ref
        if progress is not None:
            progress(done, total, f"mean reference VSTOI {ref_sum / done:.4f}")
    dataset = Dataset(key=key, path=Path(), config=config, train=out["train"], test=out["test"],
                      noise_types=list(noise_types),
                      sources={"train_speakers": plan.train_speakers, "test_speakers": plan.test_speakers})
    return dataset, {utts[i].rel: x for i, x in speech_cache.items()}


def build_dataset(config: DatasetConfig | None = None, cache_dir: str | os.PathLike | None = None,
                  progress: ProgressFn | None = None) -> Dataset:
    """Build the dataset of ``config`` (default: :func:`default_config`) or load it from the cache.

    ``progress(done, total, info)`` is called as items are computed (info: the running mean
    reference VSTOI as text) (not when loading from the cache).
    Raises :class:`DataError` for empty folders, fewer than 2 speakers or too few items.
    """
    config = config or default_config()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    params = config.ace_params()
    utts, noise_files, noise_types = _inputs(config)
    plan = _plan(config, utts, noise_types)     # fails early on too few speakers / items
    memo = _HashMemo(cache)
    key_doc = _key_document(config, utts, noise_files, memo)
    key = _hash_doc(key_doc)
    root = cache / "datasets"
    final = root / key
    if (final / "manifest.json").exists():
        try:
            memo.save()
            return load_dataset(final)
        except DataError:
            shutil.rmtree(final, ignore_errors=True)   # corrupt: rebuild below
    elif final.exists():
        shutil.rmtree(final, ignore_errors=True)        # no manifest = never completed

    noises = _load_noise_arrays(noise_files, config)
    dataset, speech = _compute(config, params, utts, plan, noises, noise_types, key, progress)
    _store(dataset, speech, final, key_doc)
    memo.save()
    return load_dataset(final)


# --------------------------------------------------------------------------- loading
def load_dataset(path: str | os.PathLike) -> Dataset:
    """Load a dataset folder (``manifest.json`` + ``arrays.npz``); :class:`DataError` if it is
    missing, incomplete, of another format version or corrupt (checksum or shape mismatch)."""
    folder = Path(path)
    try:
        manifest, arr = _read(folder)
        config = DatasetConfig.from_dict(manifest["config"])
        records = manifest["items"]
        items: dict[str, list[Item]] = {"train": [], "test": []}
        co, mo, po = arr["clean_offsets"], arr["mixture_offsets"], arr["pattern_offsets"]
        if len(mo) != len(records) + 1 or len(po) != len(records) + 1:
            raise DataError(f"{folder}: {len(records)} items but {len(mo) - 1} stored mixtures; corrupt")
        for i, rec in enumerate(records):
            ci = int(rec["clean_index"])
            scale = float(rec["clean_scale"])
            clean = (arr["clean"][co[ci]:co[ci + 1]].astype(np.float64) * scale).astype(np.float32)
            mixture = arr["mixture"][mo[i]:mo[i + 1]]
            pattern = arr["pattern"][po[i]:po[i + 1]]
            if clean.size != rec["n_samples"] or mixture.size != rec["n_samples"] or \
                    pattern.shape[0] != rec["n_frames"]:
                raise DataError(f"{folder}: item {rec['id']} has inconsistent array sizes; corrupt")
            for a in (clean, mixture, pattern):
                a.flags.writeable = False
            items[rec["split"]].append(Item(
                id=rec["id"], split=rec["split"], speaker=rec["speaker"], speech_file=rec["speech_file"],
                noise=rec["noise"], snr_db=float(rec["snr_db"]), noise_offset=int(rec["noise_offset"]),
                noise_gain=float(rec["noise_gain"]), clean_scale=scale, clean=clean, mixture=mixture,
                pattern=pattern,
                reference_vstoi=float(rec["reference_vstoi"])))
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{folder}: cannot load the dataset ({detail}); it is corrupt, rebuild it") from None
    return Dataset(key=str(manifest["key"]), path=folder, config=config, train=items["train"],
                   test=items["test"], noise_types=list(manifest["noise_types"]),
                   sources=manifest.get("speakers", {}))


def find_dataset(path: str | os.PathLike) -> Path:
    """The dataset folder ``path`` names: a dataset folder itself (it has ``manifest.json``) or a
    cache folder (``pa-ci dataset build --out``) holding exactly one dataset under ``datasets/``.

    :class:`DataError` (one line naming ``path``) for a missing path, a file, a folder that is
    neither, and a cache folder with several datasets (they are listed: name one of them).
    """
    folder = Path(path)
    expected = ("expected a dataset folder (with manifest.json) or the --out folder of "
                "`pa-ci dataset build`")
    if not folder.exists():
        raise DataError(f"{folder}: no such folder; {expected}")
    if not folder.is_dir():
        raise DataError(f"{folder}: is a file, not a folder; {expected}")
    if (folder / "manifest.json").is_file():
        return folder
    root = folder / "datasets"
    found = sorted(p for p in root.iterdir() if not p.name.startswith(".")
                   and (p / "manifest.json").is_file()) if root.is_dir() else []
    if not found:
        raise DataError(f"{folder}: not a dataset (no manifest.json, no datasets/*/manifest.json); "
                        f"{expected}")
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise DataError(f"{folder}: holds {len(found)} datasets ({names}); give the folder of "
                        "the one to use")
    return found[0]


def open_dataset(path: str | os.PathLike, key: str | None = None) -> Dataset:
    """Load the dataset ``path`` names (:func:`find_dataset`; never rebuilt). With ``key``, the
    dataset must have that key (a run that resumes, a sweep worker): else :class:`DataError`."""
    dataset = load_dataset(find_dataset(path))
    if key is not None and dataset.key != key:
        raise DataError(f"{dataset.path}: holds dataset {dataset.key}, not dataset {key} (the one "
                        "this run uses); give the folder of that dataset")
    return dataset


def planned_record(config: DatasetConfig | None = None,
                   cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """:meth:`Dataset.record` (without the path) of the dataset :func:`build_dataset` would make
    for ``config``, without computing it: the files are read, hashed and split only."""
    config = config or default_config()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    utts, noise_files, noise_types = _inputs(config)
    plan = _plan(config, utts, noise_types)
    memo = _HashMemo(cache)
    key = _hash_doc(_key_document(config, utts, noise_files, memo))
    memo.save()
    return {"key": key, "n_train": len(plan.train), "n_test": len(plan.test)}


def iter_items(dataset: Dataset, splits: Iterable[str] = ("train", "test")) -> Iterable[Item]:
    """All items of the given splits, in order."""
    for name in splits:
        yield from dataset.split(name)
