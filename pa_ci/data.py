"""Speech-in-noise datasets: items of (clean speech, noisy mixture, ACE pattern, reference VSTOI).

How a dataset is made (defaults from ``specs/DECISIONS.md``, section "Data"):

1. **Speech files**: every audio file under ``speech_dir`` (recursive; suffixes of
   :data:`pa_ci.audio.AUDIO_SUFFIXES` in any case, so a TIMIT copy with NIST SPHERE ``.WAV``
   files works), read as mono, resampled to 16 kHz, cut to ``max_seconds``.
2. **Speaker of a file** (:func:`speaker_of`), first rule that applies:
   a. a ``MANIFEST.tsv`` (tab-separated, columns ``file`` and ``speaker_id``) in the file's folder
      or any folder above it that lists the file (``file`` relative to the manifest's folder);
      the nearest such manifest wins, and ``speaker_id`` values ``""``/``"-"`` do not count;
   b. a LibriSpeech name ``SPEAKER-CHAPTER-UTTERANCE.ext`` gives ``librispeech-SPEAKER``
      (the convention of the shared manifests);
   c. otherwise the name of the folder holding the file (TIMIT: ``.../DR1/FCJF0/SA1.WAV`` ->
      ``FCJF0``). Files directly in one folder therefore count as one speaker.
3. **Split by speaker**: the sorted speakers are permuted with the seed; the first
   ``round(train_speaker_fraction * speakers)`` (at least 1, at most all but 1) are train
   speakers, the rest test speakers. No speaker is in both splits.
4. **Candidates**: each utterance gives ``mixtures_per_utterance`` candidates, each with its own
   noise type (uniform over the noise files plus ``"ccitt"``), SNR (uniform in
   ``snr_range_db``, paper: -5..40 dB) and noise offset (uniform; a noise shorter than the
   speech is tiled). Train items are the first ``n_train`` train candidates after a seeded
   shuffle; test items are all test candidates in file order, or the first ``n_test`` after a
   seeded shuffle when ``n_test`` is given.
5. **Mixing** (:func:`make_mixture`): the noise is scaled so that
   ``10 log10(P_speech / P_noise) = SNR`` over the whole utterance, then clean and mixture are
   scaled together so that the mixture is at the ACE presentation level (65 dB SPL).
6. **Pattern and reference**: ``pattern = ace(mixture, 16000, params)``;
   ``reference_vstoi = vstoi(clean, pattern, 16000)``, the VSTOI of the uncoded pattern (the
   ceiling a codec can reach).

Datasets are cached under ``$PA_CI_CACHE`` (default ``~/.cache/pa-ci``) in
``datasets/<key>/`` (``manifest.json`` + ``arrays.npz``). The key is a hash of the audio files'
contents (and their relative paths and speakers), the configuration (without folder paths), the
seed, the pa-ci version and the source code of the signal chain (audio, noise, data, ace,
vocoder, stoi). A build is written to a temporary folder and renamed when complete. Audio is
stored as float32 (patterns, references and SNRs were computed from the float64 signals).
All randomness comes from ``numpy.random.Generator``s seeded from ``config.seed``.

Commands take such a folder as ``--dataset DIR`` (:func:`find_dataset`: the dataset folder, or a
cache folder holding exactly one) and load it (:func:`open_dataset`), never rebuilding it; runs
and models record :meth:`Dataset.record` (key, path, item counts).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from . import __version__
from ._files import current_umask, write_text_atomic
from .audio import AUDIO_SUFFIXES, calibration_gain, read_audio, resample
from .errors import AudioError, DataError, ParameterError
from .noise import audio_files, ccitt_noise, noise_name

#: Sample rate of everything in a dataset (the ACE rate, DECISIONS.md).
FS = 16000
#: Bumped when the on-disk layout or the meaning of a field changes.
DATA_FORMAT_VERSION = 1
#: The bundled default data (a subset of the shared collection; see bundled/SOURCES.md).
BUNDLED = Path(__file__).resolve().parent / "bundled"
BUNDLED_SPEECH = BUNDLED / "speech"
BUNDLED_NOISE = BUNDLED / "noise"
#: Name of the generated ITU-T G.227 noise type.
CCITT_NAME = "ccitt"
#: Length of the generated CCITT noise from which segments are cut (tiled if shorter).
CCITT_SECONDS = 30.0
#: SNR range of the paper (§II-E: "-5 dB to 40 dB").
PAPER_SNR_RANGE_DB = (-5.0, 40.0)
#: Modules whose source is part of the cache key (the signal chain a dataset depends on).
CHAIN_MODULES = ("audio", "noise", "data", "ace", "vocoder", "stoi")
MANIFEST_NAME = "MANIFEST.tsv"
_LIBRISPEECH_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_STALE_TMP_SECONDS = 24 * 3600.0

Progress = Callable[..., Any]  # progress(done, total[, info])


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class DatasetConfig:
    """Everything that defines a dataset; ``dataclasses.replace`` makes variants.

    ``ace`` is an :class:`~pa_ci.ace.AceParams`, a preset name (``AceParams.preset``) or None
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
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ParameterError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not (isinstance(self.n_train, (int, np.integer)) and self.n_train >= 1):
            raise ParameterError(f"n_train must be a positive integer, got {self.n_train!r}")
        if self.n_test is not None and not (isinstance(self.n_test, (int, np.integer)) and self.n_test >= 1):
            raise ParameterError(f"n_test must be a positive integer or None, got {self.n_test!r}")
        if len(lo_hi) != 2 or not all(math.isfinite(v) for v in lo_hi) or lo_hi[0] > lo_hi[1]:
            raise ParameterError(f"snr_range_db must be (low, high) with low <= high, got {self.snr_range_db!r}")
        if not (isinstance(self.mixtures_per_utterance, (int, np.integer)) and self.mixtures_per_utterance >= 1):
            raise ParameterError("mixtures_per_utterance must be a positive integer, "
                                 f"got {self.mixtures_per_utterance!r}")
        if self.max_seconds is not None and not (math.isfinite(self.max_seconds) and self.max_seconds > 0):
            raise ParameterError(f"max_seconds must be positive or None, got {self.max_seconds!r}")
        if not 0.0 < float(self.train_speaker_fraction) < 1.0:
            raise ParameterError("train_speaker_fraction must be between 0 and 1 (exclusive), "
                                 f"got {self.train_speaker_fraction!r}")

    def ace_params(self):  # -> AceParams (lazy import: ace is a heavier module)
        """The :class:`~pa_ci.ace.AceParams` this configuration uses (16 kHz required)."""
        from .ace import AceParams
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
            from .ace import AceParams
            d["ace"] = AceParams(**d["ace"])
        return cls(**d)


def default_config(tiny: bool = False) -> DatasetConfig:
    """The default dataset on the bundled data (100 train items, the rest test); ``tiny``: 8 train,
    8 test, first 4 s of each utterance (for tests and the demo)."""
    if tiny:
        return DatasetConfig(n_train=8, n_test=8, max_seconds=4.0)
    return DatasetConfig()


def default_cache_dir() -> Path:
    """``$PA_CI_CACHE`` or ``~/.cache/pa-ci``."""
    env = os.environ.get("PA_CI_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pa-ci"


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


# --------------------------------------------------------------------------- speakers
class _Manifests:
    """Reads MANIFEST.tsv files once each: folder -> {relative file: speaker_id}."""

    def __init__(self) -> None:
        self._by_dir: dict[Path, dict[str, str] | None] = {}

    def lookup(self, folder: Path) -> dict[str, str] | None:
        if folder not in self._by_dir:
            path = folder / MANIFEST_NAME
            table = None
            if path.is_file():
                try:
                    with path.open(newline="", encoding="utf-8") as f:
                        reader = csv.DictReader(f, delimiter="\t")
                        if reader.fieldnames and {"file", "speaker_id"} <= set(reader.fieldnames):
                            table = {row["file"].strip(): (row["speaker_id"] or "").strip()
                                     for row in reader if row.get("file")}
                except (OSError, UnicodeDecodeError, csv.Error) as exc:
                    raise DataError(f"{path}: cannot be read as a tab-separated manifest ({exc})") from None
            self._by_dir[folder] = table
        return self._by_dir[folder]


def speaker_of(path: str | os.PathLike, manifests: _Manifests | None = None) -> str:
    """Speaker id of a speech file by the rules of the module docstring (manifest, LibriSpeech
    name, folder name)."""
    path = Path(path).absolute()
    manifests = manifests or _Manifests()
    for folder in path.parents:
        table = manifests.lookup(folder)
        if table:
            speaker = table.get(path.relative_to(folder).as_posix(), "")
            if speaker and speaker != "-":
                return speaker
    match = _LIBRISPEECH_NAME.match(path.stem)
    if match:
        return f"librispeech-{int(match.group(1))}"
    return path.parent.name


@dataclass(frozen=True)
class _Utterance:
    path: Path
    rel: str
    speaker: str


def scan_speech(speech_dir: str | os.PathLike) -> list[_Utterance]:
    """Speech files under ``speech_dir`` with their speakers, sorted by relative path."""
    root = Path(speech_dir)
    files = audio_files(root)
    if not files:
        raise DataError(f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}); expected speech recordings")
    manifests = _Manifests()
    return [_Utterance(p, p.relative_to(root).as_posix(), speaker_of(p, manifests)) for p in files]


# --------------------------------------------------------------------------- mixing
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


# --------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class _Candidate:
    utt: int          # index into the utterance list
    mix: int          # mixture index within the utterance
    noise: str
    snr_db: float
    u_offset: float   # uniform [0, 1): offset = floor(u * range)

    def id(self, utts: list[_Utterance]) -> str:
        return f"{Path(utts[self.utt].rel).with_suffix('').as_posix()}#{self.mix}"


@dataclass(frozen=True)
class _Plan:
    train_speakers: list[str]
    test_speakers: list[str]
    train: list[_Candidate]
    test: list[_Candidate]


def _streams(seed: int) -> dict[str, np.random.Generator]:
    names = ("split", "draws", "train_order", "test_order", "ccitt")
    children = np.random.SeedSequence(int(seed)).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children)}


def _plan(config: DatasetConfig, utts: list[_Utterance], noise_types: list[str]) -> _Plan:
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


# --------------------------------------------------------------------------- hashing / key
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _HashMemo:
    """Content hashes of files, remembered across runs in ``<cache>/file_hashes.json`` and reused
    only while path, size, inode, mtime and ctime (ns) are all unchanged."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / "file_hashes.json"
        self.changed = False
        try:
            self.table = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(self.table, dict):
                self.table = {}
        except (OSError, ValueError):
            self.table = {}

    def sha256(self, path: Path) -> str:
        st = path.stat()
        stamp = [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
        key = str(path.resolve())
        entry = self.table.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
            return entry["sha256"]
        digest = _sha256_file(path)
        self.table[key] = {"stamp": stamp, "sha256": digest}
        self.changed = True
        return digest

    def save(self) -> None:
        if self.changed:
            with contextlib.suppress(OSError):
                write_text_atomic(self.path, json.dumps(self.table, sort_keys=True))


def _chain_code_hashes() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in CHAIN_MODULES:
        spec = importlib.util.find_spec(f"{__package__}.{name}")
        origin = getattr(spec, "origin", None) if spec is not None else None
        out[name] = _sha256_file(Path(origin)) if origin and Path(origin).is_file() else None
    return out


def _jsonable(obj: Any) -> Any:
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


def _key_document(config: DatasetConfig, utts: list[_Utterance], noise_files: list[tuple[str, Path]],
                  memo: _HashMemo) -> dict[str, Any]:
    cfg = config.to_dict()
    del cfg["speech_dir"], cfg["noise_dir"]   # content, not location, defines a dataset
    return {
        "format": DATA_FORMAT_VERSION, "pa_ci": __version__, "fs": FS, "code": _chain_code_hashes(),
        "config": cfg,
        "speech": [[u.rel, memo.sha256(u.path), u.speaker] for u in utts],
        "noise": [[name, memo.sha256(path)] for name, path in noise_files],
    }


def dataset_key(config: DatasetConfig | None = None, cache_dir: str | os.PathLike | None = None) -> str:
    """The cache key :func:`build_dataset` would use for ``config`` (reads and hashes the files)."""
    config = config or default_config()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    utts, noise_files, _ = _inputs(config)
    memo = _HashMemo(cache)
    doc = _key_document(config, utts, noise_files, memo)
    memo.save()
    return _hash_doc(doc)


def _hash_doc(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()[:32]


def _inputs(config: DatasetConfig) -> tuple[list[_Utterance], list[tuple[str, Path]], list[str]]:
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


# --------------------------------------------------------------------------- building
def build_dataset(config: DatasetConfig | None = None, cache_dir: str | os.PathLike | None = None,
                  progress: Progress | None = None) -> Dataset:
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
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmp(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
        _write(dataset, speech, tmp, key_doc)
        _relax_permissions(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "manifest.json").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)    # another process finished first
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise DataError(f"{root}: cannot write the dataset cache ({exc.strerror or exc}); "
                            "choose another cache folder") from None
        raise
    memo.save()
    return load_dataset(final)


def _relax_permissions(folder: Path) -> None:
    """mkdtemp/mkstemp create owner-only entries; give the finished dataset the usual umask modes."""
    umask = current_umask()
    with contextlib.suppress(OSError):
        os.chmod(folder, 0o777 & ~umask)
        for f in folder.iterdir():
            os.chmod(f, 0o666 & ~umask)


def _remove_stale_tmp(root: Path) -> None:
    now = time.time()
    for tmp in root.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(tmp, ignore_errors=True)


def _load_noise_arrays(noise_files: list[tuple[str, Path]], config: DatasetConfig) -> dict[str, np.ndarray]:
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


def reference_vstoi(clean: np.ndarray, pattern: np.ndarray, params: Any = None,
                    name: str | None = None) -> float:
    """VSTOI of the uncoded ``pattern`` against ``clean`` (both at 16 kHz): ``stoi.vstoi``.

    Raises :class:`DataError` when the clean speech is too short for STOI (fewer than 30
    non-silent frames), where STOI itself would return its 1e-5 placeholder.
    """
    from .ace import default_params
    from .stoi import Reference, short_signal_message, vstoi_of_pattern

    params = params or default_params()
    reference = Reference(clean, FS)
    if not reference.valid:
        raise DataError(f"{name or 'speech'}: {short_signal_message(reference)}; "
                        "use longer speech (max_seconds) or remove the file")
    return float(vstoi_of_pattern(reference, pattern, params))


def _compute(config: DatasetConfig, params: Any, utts: list[_Utterance], plan: _Plan,
             noises: dict[str, np.ndarray], noise_types: list[str], key: str,
             progress: Progress | None) -> tuple[Dataset, dict[str, np.ndarray]]:
    from .ace import ace

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


# --------------------------------------------------------------------------- on-disk format
def _pack(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([a.shape[0] for a in arrays])
    flat = np.concatenate(arrays, axis=0) if arrays else np.zeros(0, dtype=np.float32)
    return flat, offsets


def _write(dataset: Dataset, speech: dict[str, np.ndarray], folder: Path, key_doc: dict[str, Any]) -> None:
    """``speech``: the unscaled float64 speech per file; stored once, items scale it (clean_scale)."""
    items = dataset.train + dataset.test
    clean_index: dict[tuple[str, int], int] = {}
    cleans = []
    for it in items:
        k = (it.speech_file, it.clean.size)
        if k not in clean_index:
            clean_index[k] = len(cleans)
            cleans.append(speech[it.speech_file].astype(np.float32))
    clean_flat, clean_off = _pack(cleans)
    mix_flat, mix_off = _pack([it.mixture for it in items])
    pat_flat, pat_off = _pack([it.pattern for it in items])
    if pat_flat.ndim == 1:
        pat_flat = pat_flat.reshape(0, 22)
    npz = folder / "arrays.npz"
    with npz.open("wb") as f:
        np.savez(f, clean=clean_flat, clean_offsets=clean_off, mixture=mix_flat,
                 mixture_offsets=mix_off, pattern=pat_flat, pattern_offsets=pat_off)
    records = []
    for it in items:
        rec = it.metadata()
        rec["clean_index"] = clean_index[(it.speech_file, it.clean.size)]
        records.append(_jsonable(rec))
    manifest = {
        "format": DATA_FORMAT_VERSION, "key": dataset.key, "pa_ci": __version__, "fs": FS,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": dataset.config.to_dict(), "noise_types": dataset.noise_types,
        "speakers": dataset.sources, "summary": None,
        "arrays": {"file": npz.name, "sha256": _sha256_file(npz), "bytes": npz.stat().st_size},
        "items": records, "key_inputs": key_doc,
    }
    manifest["summary"] = _jsonable(dataclasses.replace(dataset, path=folder).summary())
    write_text_atomic(folder / "manifest.json", json.dumps(manifest, indent=1, allow_nan=True))


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Load a dataset folder (``manifest.json`` + ``arrays.npz``); :class:`DataError` if it is
    missing, incomplete, of another format version or corrupt (checksum or shape mismatch)."""
    folder = Path(path)
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        raise DataError(f"{folder}: no manifest.json; expected a dataset folder written by build_dataset")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        if manifest.get("format") != DATA_FORMAT_VERSION:
            raise DataError(f"{folder}: dataset format {manifest.get('format')!r}, expected "
                            f"{DATA_FORMAT_VERSION}; rebuild it")
        npz = folder / manifest["arrays"]["file"]
        if not npz.is_file():
            raise DataError(f"{npz}: missing; the dataset is incomplete, rebuild it")
        if _sha256_file(npz) != manifest["arrays"]["sha256"]:
            raise DataError(f"{npz}: checksum mismatch; the dataset is corrupt, rebuild it")
        with np.load(npz, allow_pickle=False) as z:
            arr = {k: z[k] for k in ("clean", "clean_offsets", "mixture", "mixture_offsets",
                                     "pattern", "pattern_offsets")}
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
