"""The model file: one ``.npz`` holding a model's flat ``theta``, its layout, config and hash.

:func:`save_model` writes one uncompressed ``.npz`` (a zip of ``.npy`` members, readable by
``numpy.load``) holding ``theta`` (float64, ``(size,)``), optionally ``mask`` (bool,
``(size,)``, stored as given) and ``header``: a 0-d unicode array with the JSON object::

    {"format": "pa-ci-model", "format_version": 1, "pa_ci_version": "...",
     "layout": Layout.to_dict(), "config": {...}, "meta": {...}, "model_hash": "..."}

The JSON has sorted keys and no timestamps, and the zip entries carry a fixed date, so the
same model gives byte-identical files. :func:`load_model` turns every problem with a file into
one :class:`~pa_ci.errors.ModelFileError` line that names the file; its reading limits
(:data:`MAX_MEMBER_BYTES`, :data:`MAX_HEADER_BYTES`, :data:`MAX_ABS_PARAMETER`) refuse a crafted
file before anything large is allocated. :func:`model_hash` is the identity the header records
(and streams and exports carry). The :class:`~pa_ci.codec.layout.Layout` itself lives in
:mod:`pa_ci.codec.layout`.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._files import atomic_path
from ..errors import ModelFileError, ParameterError
from .layout import Layout

__all__ = ["model_hash", "ModelFile", "save_model", "load_model", "MODEL_FORMAT",
           "MODEL_FORMAT_VERSION", "MODEL_FILENAME", "MAX_MEMBER_BYTES", "MAX_HEADER_BYTES",
           "MAX_ABS_PARAMETER"]

#: Model file format name and the version this module writes and reads.
MODEL_FORMAT = "pa-ci-model"
MODEL_FORMAT_VERSION = 1
#: File a model folder holds (``load_model(folder)`` reads ``folder/model.npz``).
MODEL_FILENAME = "model.npz"
#: Date stamped on every zip entry, so that files do not depend on the clock (zip's epoch).
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace; numpy scalars/arrays become Python values."""
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, (Path, os.PathLike)):
            return os.fspath(o)
        raise TypeError(f"{type(o).__name__} is not JSON-serialisable")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=default)


def model_hash(theta: np.ndarray, layout: Layout) -> str:
    """First 16 hex digits of sha256(canonical layout JSON + theta as little-endian float64 bytes).

    Identifies a model (e.g. in a bitstream header); any change of a single weight changes it.
    """
    theta = layout._check_theta(np.asarray(theta))
    h = hashlib.sha256(_canonical_json(layout.to_dict()).encode("ascii"))
    h.update(np.ascontiguousarray(theta, dtype="<f8").tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- model files
@dataclass
class ModelFile:
    """A loaded model: ``theta`` (float64), its ``layout``, the model ``config`` and ``meta``
    dicts as saved, the optional ``mask`` (bool, ``(size,)``) and the ``path`` it was read from."""

    theta: np.ndarray
    layout: Layout
    config: dict
    meta: dict
    mask: np.ndarray | None
    path: Path

    @property
    def hash(self) -> str:
        """:func:`model_hash` of this model."""
        return model_hash(self.theta, self.layout)


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def save_model(path: str | os.PathLike, theta: np.ndarray, layout: Layout, config: dict,
               meta: dict | None = None, mask: np.ndarray | None = None) -> Path:
    """Write a model file (format in the module docstring) atomically; return its path.

    ``.npz`` is appended to ``path`` when missing. ``config`` and ``meta`` must be
    JSON-serialisable dicts (numpy scalars are converted). Same inputs give identical bytes.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    theta = layout._check_theta(np.asarray(theta))
    if theta.dtype.kind not in "fiu":
        raise ParameterError(f"theta has dtype {theta.dtype}; expected float64")
    theta = np.ascontiguousarray(theta, dtype="<f8")
    if not np.all(np.isfinite(theta)):
        raise ParameterError(f"theta has {int(np.sum(~np.isfinite(theta)))} non-finite values; "
                             f"refusing to write {path}")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != (layout.size,):
            raise ParameterError(f"mask has dtype {mask.dtype} and shape {mask.shape}; "
                                 f"expected bool ({layout.size},)")
    if not isinstance(config, Mapping):
        raise ParameterError(f"config must be a dict, got {type(config).__name__}")
    meta = {} if meta is None else meta
    if not isinstance(meta, Mapping):
        raise ParameterError(f"meta must be a dict, got {type(meta).__name__}")
    from .. import __version__
    header = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
              "pa_ci_version": __version__, "layout": layout.to_dict(), "config": dict(config),
              "meta": dict(meta), "model_hash": model_hash(theta, layout)}
    try:
        text = _canonical_json(header)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"model config/meta cannot be written as JSON: {exc}") from None
    members = [("header.npy", np.array(text)), ("theta.npy", theta)]
    if mask is not None:
        members.append(("mask.npy", np.ascontiguousarray(mask)))
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, arr in members:
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.external_attr = 0o644 << 16
                zf.writestr(info, _npy_bytes(arr))
    return path


_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, IndexError, TypeError, MemoryError,
                OverflowError, UnicodeError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                RuntimeError)


#: Largest member of a model file that :func:`load_model` reads, in bytes (as the zip entry
#: declares it, before anything is decompressed): theta and mask of the largest FRAE
#: (``pa_ci.codec.frae.MAX_PARAMETERS`` = 2**24 float64 values, 128 MiB) plus room for the .npy
#: header. A crafted or corrupted entry declaring more is refused before any allocation.
MAX_MEMBER_BYTES = 8 * 2**24 + 2**16
#: Largest |parameter| :func:`load_model` accepts. Trained parameters are O(1) (the shipped
#: model's largest is below 10); a finite value near 1e308 makes the model's float64
#: arithmetic overflow to inf and NaN (inf - inf), which no consumer of a model expects.
MAX_ABS_PARAMETER = 1e100
#: Largest ``header.npy`` (the JSON header is a few kB; this leaves room for long ``meta``).
MAX_HEADER_BYTES = 2**24


def _read_member(zf: zipfile.ZipFile, name: str, where: str) -> np.ndarray:
    """One ``.npy`` member, its declared sizes checked before anything is allocated: the zip
    entry's size against :data:`MAX_MEMBER_BYTES`, the array header's shape x itemsize
    against the bytes the member really holds."""
    limit = MAX_HEADER_BYTES if name == "header.npy" else MAX_MEMBER_BYTES
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ModelFileError(f"{where}: model file has no {name}") from None
    if info.file_size > limit:
        raise ModelFileError(f"{where}: {name} declares {info.file_size} bytes; a model file "
                             f"member holds at most {limit}")
    try:
        data = zf.read(name)  # checks the CRC-32; never more than the declared file_size
        fp = io.BytesIO(data)
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise ValueError(f".npy format version {version[0]}.{version[1]}; expected 1.0 or 2.0")
        if dtype.hasobject:
            raise ValueError(f"dtype {dtype} holds Python objects; expected numbers")
        need = math.prod(shape) * dtype.itemsize
        have = len(data) - fp.tell()
        if need != have:
            raise ValueError(f"its header declares shape {shape} of {dtype} ({need} bytes); "
                             f"the member holds {have} bytes of data")
        fp.seek(0)
        arr = np.lib.format.read_array(fp, allow_pickle=False)
    except _READ_ERRORS as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(f"{where}: cannot read {name}: {detail}") from None
    return arr


def load_model(path: str | os.PathLike, expected_layout: Layout | None = None) -> ModelFile:
    """Read a model file (or ``folder/model.npz``) written by :func:`save_model`.

    Every problem is one :class:`~pa_ci.errors.ModelFileError` line naming the file: missing,
    not an npz, no/bad header, another format or version, theta of the wrong length or with
    non-finite values, a mask of the wrong shape/dtype, a corrupted theta (hash), or (when
    ``expected_layout`` is given) a layout that differs from it, naming the first tensor that
    differs.
    """
    p = Path(path)
    if p.is_dir():
        if not (p / MODEL_FILENAME).is_file():
            raise ModelFileError(f"{p}: folder has no {MODEL_FILENAME}")
        p = p / MODEL_FILENAME
    where = str(p)
    if not p.exists():
        raise ModelFileError(f"{where}: no such model file")
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ModelFileError(f"{where}: not a pa-ci model file (.npz): {exc}") from None
    except _READ_ERRORS as exc:
        raise ModelFileError(f"{where}: cannot read the model file: {exc}") from None
    with zf:
        names = set(zf.namelist())
        if "header.npy" not in names:
            raise ModelFileError(f"{where}: not a pa-ci model file (no header)")
        if "theta.npy" not in names:
            raise ModelFileError(f"{where}: model file has no theta")
        hdr = _read_member(zf, "header.npy", where)
        theta = _read_member(zf, "theta.npy", where)
        mask = _read_member(zf, "mask.npy", where) if "mask.npy" in names else None

    if hdr.dtype.kind != "U" or hdr.ndim != 0:
        raise ModelFileError(f"{where}: header is a {hdr.dtype} array of shape {hdr.shape}; "
                             "expected a JSON string")
    try:
        header = json.loads(str(hdr[()]))
    except ValueError as exc:
        raise ModelFileError(f"{where}: header is not valid JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
        fmt = header.get("format") if isinstance(header, dict) else None
        raise ModelFileError(f"{where}: format is {fmt!r}; expected {MODEL_FORMAT!r}")
    version = header.get("format_version")
    if version != MODEL_FORMAT_VERSION:
        raise ModelFileError(f"{where}: format_version {version!r}; this pa-ci reads "
                             f"{MODEL_FORMAT_VERSION}")
    try:
        layout = Layout.from_dict(header.get("layout"))
    except (ParameterError, AttributeError, TypeError) as exc:
        raise ModelFileError(f"{where}: bad layout in header: {exc}") from None
    config, meta = header.get("config"), header.get("meta", {})
    if not isinstance(config, dict) or not isinstance(meta, dict):
        raise ModelFileError(f"{where}: header config/meta must be JSON objects")

    if theta.ndim != 1 or theta.dtype.kind != "f":
        raise ModelFileError(f"{where}: theta is a {theta.dtype} array of shape {theta.shape}; "
                             "expected a 1-D float64 array")
    if theta.size != layout.size:
        raise ModelFileError(f"{where}: theta has {theta.size} values, the layout needs {layout.size}")
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    if not np.all(np.isfinite(theta)):
        raise ModelFileError(f"{where}: theta has {int(np.sum(~np.isfinite(theta)))} "
                             "non-finite values")
    big = int(np.count_nonzero(np.abs(theta) > MAX_ABS_PARAMETER))
    if big:
        raise ModelFileError(f"{where}: theta has {big} values beyond ±{MAX_ABS_PARAMETER:g}; "
                             "expected a trained model's parameters (file corrupted or crafted)")
    if mask is not None and (mask.dtype != np.bool_ or mask.shape != (layout.size,)):
        raise ModelFileError(f"{where}: mask is a {mask.dtype} array of shape {mask.shape}; "
                             f"expected bool ({layout.size},)")
    recorded = header.get("model_hash")
    if recorded is not None and recorded != model_hash(theta, layout):
        raise ModelFileError(f"{where}: theta does not match the model_hash in its header "
                             "(file corrupted or edited)")
    if expected_layout is not None:
        diff = layout.difference(expected_layout)
        if diff is not None:
            raise ModelFileError(f"{where}: layout does not match the config: {diff}")
    return ModelFile(theta=theta, layout=layout, config=config, meta=meta, mask=mask, path=p)
