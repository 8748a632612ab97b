"""The dataset cache: the key of a dataset and its folder on disk.

The key is a hash of the audio files' contents (and their relative paths and speakers), the
configuration (without folder paths), the pa-ci version, the format version and the source code
of the signal chain and the dataset code (every ``.py`` file of :data:`CHAIN_PACKAGES`), so a
change to any of them makes a new dataset. File hashes are remembered in
``<cache>/file_hashes.json`` while a file's size, inode and times are unchanged.

A dataset lives in ``<cache>/datasets/<key>/`` (``manifest.json`` + ``arrays.npz``); it is
written to a temporary folder and renamed when complete (:func:`_store`), and
:func:`_read` checks the format version and the arrays' checksum. Audio is stored as float32,
the unscaled speech once per file.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._files import current_umask, write_text_atomic
from ..errors import DataError
from .config import FS, DatasetConfig, _jsonable, default_config
from .plan import _inputs
from .speakers import _Utterance

#: Bumped when the on-disk layout or the meaning of a field changes.
DATA_FORMAT_VERSION = 1
#: Subpackages whose modules' source is part of the cache key: the signal chain a dataset
#: depends on and the dataset code itself (every ``.py`` file in them, by path under ``pa_ci``).
CHAIN_PACKAGES = ("chain", "data")
_STALE_TMP_SECONDS = 24 * 3600.0


def default_cache_dir() -> Path:
    """``$PA_CI_CACHE`` or ``~/.cache/pa-ci``."""
    env = os.environ.get("PA_CI_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pa-ci"


# --------------------------------------------------------------------------- the key
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


def _chain_code_hashes() -> dict[str, str]:
    """sha256 of every module of :data:`CHAIN_PACKAGES`, keyed by its path under ``pa_ci``."""
    root = Path(__file__).resolve().parent.parent
    out: dict[str, str] = {}
    for package in CHAIN_PACKAGES:
        files = sorted((root / package).glob("*.py"))
        if not files:  # an installation without the sources: refuse rather than key on nothing
            raise DataError(f"{root / package}: no module sources to hash for the dataset cache key")
        for f in files:
            out[f"{package}/{f.name}"] = _sha256_file(f)
    return out


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
    """The cache key :func:`~pa_ci.data.dataset.build_dataset` would use for ``config`` (default:
    :func:`~pa_ci.data.dataset.default_config`; reads and hashes the files)."""
    if not config:
        config = default_config()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    utts, noise_files, _ = _inputs(config)
    memo = _HashMemo(cache)
    doc = _key_document(config, utts, noise_files, memo)
    memo.save()
    return _hash_doc(doc)


def _hash_doc(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()[:32]


# --------------------------------------------------------------------------- on disk
def _pack(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([a.shape[0] for a in arrays])
    flat = np.concatenate(arrays, axis=0) if arrays else np.zeros(0, dtype=np.float32)
    return flat, offsets


# ``Dataset`` (pa_ci.data.dataset.Dataset) is named, not imported: dataset imports this module
def _write(dataset: "Dataset",  # noqa: F821
           speech: dict[str, np.ndarray], folder: Path, key_doc: dict[str, Any]) -> None:
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


def _read(folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The manifest and the arrays of the dataset folder ``folder``: :class:`DataError` if it is
    missing, incomplete, of another format version or fails its checksum; the OSError,
    ValueError, KeyError ... of a corrupt folder pass (the caller words them)."""
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        raise DataError(f"{folder}: no manifest.json; expected a dataset folder written by build_dataset")
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
    return manifest, arr


def _store(dataset: "Dataset",  # noqa: F821 - see _write
           speech: dict[str, np.ndarray], final: Path, key_doc: dict[str, Any]) -> None:
    """Write ``dataset`` (:func:`_write`) to a temporary folder next to ``final`` and rename it
    to ``final`` when complete; a failure leaves no folder behind, and an OSError becomes a
    :class:`DataError`."""
    root = final.parent
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmp(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{dataset.key}-", dir=root))
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


def _relax_permissions(folder: Path) -> None:
    """mkdtemp/mkstemp create owner-only entries; give the finished dataset the usual umask modes."""
    umask = current_umask()
    with contextlib.suppress(OSError):
        os.chmod(folder, 0o777 & ~umask)
        for f in folder.iterdir():
            os.chmod(f, 0o666 & ~umask)


def _remove_stale_tmp(root: Path) -> None:
    """Remove the temporary folders of builds that died more than a day ago."""
    now = time.time()
    for tmp in root.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(tmp, ignore_errors=True)
