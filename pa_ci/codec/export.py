"""Sparse export of one part of a (pruned) FRAE for firmware: a compact binary file and its loader.

A pruned model (float64 ``theta``, many matrix weights exactly 0, paper §II-A) is written as one
little-endian file holding ONLY the tensors of one part, in the order of
:func:`pa_ci.codec.frae.frae_layout`:

- ``decoder``: what a CI receiver needs: ``codebook`` (decoding index i starts from codeword
  C[i]) and ``dec.*``;
- ``encoder``: what the zero-delay streaming encoder reads: ``enc.*``, ``codebook`` and the
  decoder GRU ``dec.gru.*`` (the encoder runs its own copy of the decoder state h_t, the
  feedback of research §3 / :class:`pa_ci.codec.stream.Encoder`); ``dec.out.*`` is not needed;
- ``whole``: every tensor.

Matrix weights (kind ``weight``) are stored sparsely, biases and the codebook densely.
:func:`read_export` rebuilds a float64 theta of the full layout from the file alone (the
tensors not in the part are 0, :attr:`ExportedModel.present` says which entries the file
carries).

File layout (all integers little-endian, byte offsets)
------------------------------------------------------
Header, :data:`HEADER_SIZE` = 52 bytes:

======  ====  ==============  ===================================================================
offset  size  field           meaning
======  ====  ==============  ===================================================================
0       4     magic           ``b"PACX"``
4       1     version         u8: 1 for value types 0..2, 2 for value types 3..4
                              (:data:`FORMAT_VERSION` = 2 is the newest; both are read)
5       1     value_type      u8: 0 = float32, 1 = float16, 2 = int8, 3 = int8-row,
                              4 = int16-row (:data:`VALUE_TYPES`)
6       1     part            u8: 0 = decoder, 1 = encoder, 2 = whole (:data:`PARTS`)
7       1     flags           u8: bit 0 = ``model_hash`` is set; bits 1-7 must be 0
8       2     n_channels      u16, FraeConfig.n_channels (C)
10      2     enc_hidden      u16, FraeConfig.enc_hidden (H_e)
12      2     dec_hidden      u16, FraeConfig.dec_hidden (H_d)
14      2     latent_dim      u16, FraeConfig.latent_dim (D)
16      4     codebook_size   u32, FraeConfig.codebook_size (K, up to 65536 = 16-bit indices)
20      2     output_maxima   u16, FraeConfig.output_maxima
22      2     n_tensors       u16, tensors in the payload (7 decoder, 11 encoder, 13 whole)
24      8     frame_rate      float64, FraeConfig.frame_rate (frames/s; bit rate only)
32      8     model_hash      the 8 bytes of the source model's 16-hex-digit hash
                              (``params.model_hash`` / ``ModelFile.hash``); zeros when unset
40      4     payload_size    u32, bytes after the header
44      4     payload_crc     CRC-32 (``zlib.crc32``) of the payload
48      4     header_crc      CRC-32 of header bytes 0..47 (covers payload_crc too)
======  ====  ==============  ===================================================================

Version 1 is version 2 restricted to value types 0..2: a file of those types is written as
version 1, byte for byte as before version 2 existed, so older readers keep reading it; a
file with a per-row type says version 2, which a version-1 reader refuses by its version
(not by an unknown value type).

Payload: one record per tensor of the part, in layout order, no padding (values are not
aligned: read them with memcpy). ``vb`` = bytes per value (4 float32, 2 float16, 1 int8 and
int8-row, 2 int16-row); values are ``<f4``, ``<f2``, ``i1`` or ``<i2``. A tensor of ``n``
entries is flattened row-major (C order, the order of ``theta``); a weight of shape
(rows, cols) maps ``cols`` inputs to ``rows`` outputs, so a row is one output unit.

1. Scales (quantised types only; value ``q`` means ``q * s``):

   - ``int8``: every tensor: its scale ``s``, float32 (4 bytes);
   - ``int8-row`` / ``int16-row``: a weight: one scale per row, ``rows`` float16 values
     (``<f2``, 2 bytes each; row r's values mean ``q * s_r``); a bias or the codebook: one
     float32 scale for the tensor, as for ``int8``.
2. Weights only: an encoding byte, then

   - ``0`` dense: ``n`` values;
   - ``1`` bitmap: ``ceil(n / 8)`` bytes, entry ``i`` present (non-zero) iff bit ``i % 8``
     (least significant first) of byte ``i // 8`` is set, padding bits 0; then the ``nnz``
     non-zero values in row-major order;
   - ``2`` index list: u16 ``nnz``, ``nnz`` u16 strictly increasing flat indices, then the
     ``nnz`` values (only for tensors of at most 65536 entries).

   The writer takes the smallest of ``n*vb``, ``ceil(n/8) + nnz*vb`` and ``2 + nnz*(2 + vb)``
   bytes (ties: the lowest code), so an unpruned tensor costs no bitmap and a 100 % pruned one
   costs 3 bytes. Stored values of the sparse encodings are never 0.
3. Biases and the codebook: ``n`` values.

Quantisation and its error (the value type applies to every tensor of the part, biases and
codebook included; per entry, w = float64 value, w' = value read back):

- ``float32`` (default): w' = float32(w); |w - w'| <= max(2^-24 |w|, 2^-150) (round to
  nearest). Decoding with the loaded theta equals decoding with the float32-rounded theta
  exactly.
- ``float16``: w' = float16(w); |w - w'| <= max(2^-11 |w|, 2^-25); |w| must be <= 65504.
- ``int8``: per tensor, s = float32(max|w| / 127), q = clip(round_half_even(w / s), -127, 127),
  w' = q s; |w - w'| <= max(s / 2, 127 * 2^-150) (i.e. max|w| / 254 for any normal scale).
- ``int8-row`` (``Q`` = 127) / ``int16-row`` (``Q`` = 32767, Q15-like): a weight's row r has
  s_r = the float16 nearest max_r|w| / Q, rounded up to the next float16 when it is below (so
  |q| <= Q without clipping), q = round_half_even(w / s_r), w' = q s_r; |w - w'| <= s_r / 2
  <= (1 + 2^-10) max_r|w| / (2Q) for a normal float16 scale (max_r|w| >= 2^-14 Q), else
  <= max_r|w| / (2Q) + 2^-25. A row of zeros has s_r = 0. Biases and the codebook: one
  float32 scale per tensor as for ``int8`` with ``Q``. max_r|w| / Q must be <= 65504.
  Per-row scales follow each output unit's own range (the rows of a GRU weight differ by
  gate and unit), which is what keeps VSTOI at 8 bits (``examples/quantisation``).

Weights that quantise to 0 (|w| < 2^-25 for float16, |w| < s/2 for the integer types, float32
underflow) are dropped from the sparse pattern, so the loaded theta's zeros are exactly the
bitmap; :attr:`ExportInfo.flushed_weights` counts them (0 for float32 on any trained model).

Every byte is covered by one of the two CRCs (the frame of magic, version, CRCs and payload is
:mod:`pa_ci.codec.envelope`, shared with the coded streams). A header cannot make the reader allocate more
than the file justifies: its sizes must be a valid :class:`~pa_ci.codec.frae.FraeConfig` (which has
upper limits) and ``payload_size`` at least the least payload of the part's tensors
(:func:`_least_payload`), both checked before theta is allocated. Every problem with a file (missing, truncated,
wrong magic, bad CRC, unknown version / value type / part, inconsistent records, trailing
bytes) is one :class:`~pa_ci.errors.ModelFileError` line naming the file; bad arguments are
:class:`~pa_ci.errors.ParameterError`.
"""
from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError, ParameterError
from .envelope import CRC as _CRC  # noqa: F401 - with _HEAD: how the tests forge headers
from .envelope import Envelope, check_hash, pack_hash, unpack_hash
from .frae import FraeConfig, _one_theta, frae_layout
from .layout import Layout, TensorSpec

__all__ = ["MAGIC", "FORMAT_VERSION", "HEADER_SIZE", "PARTS", "VALUE_TYPES", "ROW_TYPES",
           "ENCODINGS", "MEMORY_BUDGET_BYTES", "ExportInfo", "ExportedModel", "StoredTensor",
           "part_mask", "stored_tensors", "export_bytes", "write_export", "from_bytes", "read_export"]

#: First four bytes of every export file.
MAGIC = b"PACX"
#: Newest format version (written for the per-row value types; version 1 for the others).
#: Both 1 and 2 are read.
FORMAT_VERSION = 2
#: Parts that can be exported (the index is the header's part code).
PARTS = ("decoder", "encoder", "whole")
#: Value types (the index is the header's value type code).
VALUE_TYPES = ("float32", "float16", "int8", "int8-row", "int16-row")
#: Value types with one scale per weight row (format version 2) -> their largest |q|.
ROW_TYPES = {"int8-row": 127, "int16-row": 32767}
#: Weight encodings (the index is the record's encoding byte).
ENCODINGS = ("dense", "bitmap", "list")
#: Memory budget of the target: hearing-aid / CI processors "offer tiny amounts of on-chip
#: memory of around 32 kB to 300 kB" (paper §I, Hinrichs & Ostermann, arXiv 2502.02424); the
#: low end is what an exported part should fit in.
MEMORY_BUDGET_BYTES = 32 * 1024

#: The export file's frame; its fields: value_type, part, flags, n_channels, enc_hidden,
#: dec_hidden, latent_dim, codebook_size, output_maxima, n_tensors, frame_rate, model_hash,
#: payload_size.
_FILE = Envelope("export", MAGIC, "BBBHHHHIHHd8sI", (1, FORMAT_VERSION), ModelFileError)
_HEAD = _FILE.head  # up to and including payload_crc ("<4sBBBBHHHHIHHd8sII")
#: Size of the fixed header in bytes (52).
HEADER_SIZE = _FILE.header_size

_PART_TENSORS = {  # part -> predicate on a TensorSpec: does the part carry this tensor?
    "decoder": lambda s: s.part in ("decoder", "codebook"),
    "encoder": lambda s: s.part in ("encoder", "codebook") or s.name.startswith("dec.gru."),
    "whole": lambda s: True,
}
_DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "int8": np.dtype("i1"),
           "int8-row": np.dtype("i1"), "int16-row": np.dtype("<i2")}
#: Largest |q| of the integer value types (the one-per-tensor scales use it too).
_QMAX = {"int8": 127, **ROW_TYPES}
_U16, _U32 = 2**16 - 1, 2**32 - 1
_FLAG_HASH = 1


# --------------------------------------------------------------------------- results
@dataclass
class ExportInfo:
    """What :func:`write_export` wrote: sizes and counts of one exported part.

    ``n_weights``: matrix weights in the part; ``nonzero_weights``: those stored (non-zero after
    quantisation); ``flushed_weights``: non-zero weights that quantised to 0; ``n_dense``:
    biases + codebook entries; ``max_abs_error``: max |theta - loaded theta| over the part;
    ``dense_float32_bytes``: the part's values stored densely as float32 (4 bytes per
    parameter, no header), for comparison with ``n_bytes`` (the whole file).
    """

    path: Path
    part: str
    values: str
    n_bytes: int
    n_weights: int
    nonzero_weights: int
    n_dense: int
    max_abs_error: float
    dense_float32_bytes: int
    flushed_weights: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (``path`` as a string)."""
        return {"path": str(self.path), "part": self.part, "values": self.values,
                "n_bytes": self.n_bytes, "n_weights": self.n_weights,
                "nonzero_weights": self.nonzero_weights, "flushed_weights": self.flushed_weights,
                "n_dense": self.n_dense, "max_abs_error": self.max_abs_error,
                "dense_float32_bytes": self.dense_float32_bytes,
                "budget_bytes": MEMORY_BUDGET_BYTES}


@dataclass(eq=False)
class ExportedModel:
    """A loaded export: the FRAE ``config``, ``part``, ``values`` type, source ``model_hash``
    ("" when unset), ``theta`` (float64, full layout, tensors not in the part are 0),
    ``present`` (bool, full layout: the entries the file carries) and the encoding chosen for
    each weight tensor (``encodings``: name -> "dense" / "bitmap" / "list")."""

    config: FraeConfig
    part: str
    values: str
    model_hash: str
    theta: np.ndarray
    present: np.ndarray
    encodings: dict[str, str] = field(default_factory=dict)

    @property
    def layout(self) -> Layout:
        return frae_layout(self.config)


# --------------------------------------------------------------------------- helpers
def _choice(value: object, allowed: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ParameterError(f"{what} {value!r}; expected one of {', '.join(allowed)}")
    return value


def _part_specs(layout: Layout, part: str) -> list[TensorSpec]:
    keep = _PART_TENSORS[part]
    return [s for s in layout.tensors if keep(s)]


def part_mask(config: FraeConfig, part: str) -> np.ndarray:
    """Bool mask over the layout of ``config``: True on the entries that ``part`` carries."""
    part = _choice(part, PARTS, "part")
    layout = frae_layout(config)
    out = np.zeros(layout.size, dtype=bool)
    for s in _part_specs(layout, part):
        out[s.slice] = True
    return out


def _row_scales(w: np.ndarray, qmax: int, name: str) -> np.ndarray:
    """float16 per-row scales of a (rows, cols) tensor: max_r|w| / qmax rounded up to a float16."""
    m = np.max(np.abs(w), axis=1) if w.shape[1] else np.zeros(w.shape[0])
    s = m / qmax
    if np.any(s > 65504):
        raise ParameterError(f"tensor {name} has a row with max |w| = {float(m.max()):.3g}; too "
                             f"large for a float16 row scale (at most {65504 * qmax:.3g})")
    s16 = s.astype(np.float16)
    low = s16.astype(np.float64) < s
    s16[low] = np.nextafter(s16[low], np.float16(np.inf))
    return s16


def _quantise(w: np.ndarray, values: str, name: str,
              shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, bytes, np.ndarray | None]:
    """(stored values, scale bytes, per-entry float64 scale or None) of one flat float64 tensor.

    ``shape`` (rows, cols) is given for a weight tensor: the per-row types scale it by row.
    ParameterError on overflow."""
    dtype = _DTYPES[values]
    if values in ROW_TYPES and shape is not None:
        qmax = ROW_TYPES[values]
        s16 = _row_scales(w.reshape(shape), qmax, name)
        per = np.repeat(s16.astype(np.float64), shape[1])
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(per > 0, np.rint(w / np.where(per > 0, per, 1.0)), 0.0)
        return np.clip(q, -qmax, qmax).astype(dtype), s16.astype("<f2").tobytes(), per
    if values in _QMAX:
        qmax = _QMAX[values]
        m = float(np.max(np.abs(w))) if w.size else 0.0
        with np.errstate(over="ignore"):
            s = np.float32(m / qmax)
        if not np.isfinite(s):
            raise ParameterError(f"tensor {name} has max |w| = {m:.3g}; too large for an {values} "
                                 "scale stored as float32")
        head = struct.pack("<f", s)
        if s == 0:
            return np.zeros(w.size, dtype=dtype), head, np.zeros(w.size)
        q = np.clip(np.rint(w / np.float64(s)), -qmax, qmax).astype(dtype)
        return q, head, np.full(w.size, float(s))
    with np.errstate(over="ignore"):
        v = w.astype(dtype)
    if not np.all(np.isfinite(v)):
        limit = float(np.finfo(dtype).max)
        raise ParameterError(f"tensor {name} has values beyond ±{limit:.6g}; they do not fit in "
                             f"{values}")
    return v, b"", None


def _weight_record(v: np.ndarray, vb: int) -> bytes:
    """Encoding byte + body of one weight tensor's stored values ``v`` (smallest encoding)."""
    n = v.size
    nz = np.flatnonzero(v != 0)
    costs = [n * vb, -(-n // 8) + nz.size * vb]
    if n <= _U16 + 1:
        costs.append(2 + nz.size * (2 + vb))
    code = int(np.argmin(costs))  # first minimum: ties -> lowest code
    if code == 0:
        return bytes([0]) + v.tobytes()
    vals = v[nz].tobytes()
    if code == 1:
        bits = np.zeros(n, dtype=bool)
        bits[nz] = True
        return bytes([1]) + np.packbits(bits, bitorder="little").tobytes() + vals
    return bytes([2]) + struct.pack("<H", nz.size) + nz.astype("<u2").tobytes() + vals


def _check_theta(theta: object, config: FraeConfig) -> np.ndarray:
    """A numpy array (not a list: an export is written from a model) checked as the FRAE does."""
    if not isinstance(theta, np.ndarray):
        raise ParameterError(f"theta must be a numpy array of shape ({frae_layout(config).size},), "
                             f"got {type(theta).__name__}")
    return _one_theta(theta, config)[0]


# --------------------------------------------------------------------------- writing
@dataclass
class StoredTensor:
    """One tensor as an export stores it: ``q`` (its shape; float32 values, or integers),
    ``scale`` (None for float types; a float for one scale per tensor; a (rows,) float64 array
    of row scales) and ``dequantised`` (float64, what :func:`read_export` returns)."""

    name: str
    kind: str
    q: np.ndarray
    scale: float | np.ndarray | None
    dequantised: np.ndarray


def stored_tensors(theta: np.ndarray, config: FraeConfig, *, part: str = "decoder",
                   values: str = "float32") -> dict[str, StoredTensor]:
    """The tensors of ``part`` exactly as :func:`export_bytes` quantises them (name -> tensor),
    in layout order; for code generators (:mod:`pa_ci.codec.firmware`) that must hold the file's values."""
    part = _choice(part, PARTS, "part")
    values = _choice(values, VALUE_TYPES, "value type")
    theta = _check_theta(theta, config)
    out: dict[str, StoredTensor] = {}
    for s in _part_specs(frae_layout(config), part):
        shape = s.shape if s.kind == "weight" else None
        v, _, per = _quantise(theta[s.slice], values, s.name, shape)
        if per is None:
            scale, deq = None, v.astype(np.float64)
        else:
            deq = v.astype(np.float64) * per
            if values in ROW_TYPES and shape is not None:
                scale = per.reshape(s.shape)[:, 0].copy() if s.shape[1] else np.zeros(s.shape[0])
            else:
                scale = float(per[0]) if per.size else 0.0
        out[s.name] = StoredTensor(s.name, s.kind, v.reshape(s.shape), scale,
                                   deq.reshape(s.shape))
    return out


def export_bytes(theta: np.ndarray, config: FraeConfig, *, part: str = "decoder",
                 values: str = "float32", model_hash: str = "") -> bytes:
    """The export file (layout in the module docstring) of ``part`` of ``theta``.

    ``values``: float32, float16, int8 (one scale per tensor), int8-row or int16-row (one
    scale per weight row; format version 2); ``model_hash``: the source model's 16 hex digits
    (``ModelFile.hash``) or "" (unset). Same inputs give identical bytes.
    """
    part = _choice(part, PARTS, "part")
    values = _choice(values, VALUE_TYPES, "value type")
    if not isinstance(config, FraeConfig):
        raise ParameterError(f"config must be a FraeConfig, got {type(config).__name__}")
    model_hash = check_hash(model_hash, optional=True)
    for name in ("n_channels", "enc_hidden", "dec_hidden", "latent_dim", "output_maxima"):
        if getattr(config, name) > _U16:
            raise ParameterError(f"FraeConfig.{name} = {getattr(config, name)}; the export "
                                 f"format holds at most {_U16}")
    if config.codebook_size > _U32:
        raise ParameterError(f"FraeConfig.codebook_size = {config.codebook_size}; the export "
                             f"format holds at most {_U32}")
    layout = frae_layout(config)
    theta = _check_theta(theta, config)
    vb = _DTYPES[values].itemsize
    chunks = []
    specs = _part_specs(layout, part)
    for s in specs:
        v, head, _ = _quantise(theta[s.slice], values, s.name,
                               s.shape if s.kind == "weight" else None)
        chunks.append(head)
        chunks.append(_weight_record(v, vb) if s.kind == "weight" else v.tobytes())
    payload = b"".join(chunks)
    if len(payload) > _U32:
        raise ParameterError(f"the {part} part needs {len(payload)} bytes; the export format "
                             f"holds at most {_U32}")
    version = 2 if values in ROW_TYPES else 1
    return _FILE.seal(version, (VALUE_TYPES.index(values), PARTS.index(part),
                                _FLAG_HASH if model_hash else 0, config.n_channels,
                                config.enc_hidden, config.dec_hidden, config.latent_dim,
                                config.codebook_size, config.output_maxima, len(specs),
                                config.frame_rate, pack_hash(model_hash), len(payload)), payload)


def write_export(path: str | os.PathLike, theta: np.ndarray, config: FraeConfig, *,
                 part: str = "decoder", values: str = "float32",
                 model_hash: str = "") -> ExportInfo:
    """Write :func:`export_bytes` to ``path`` atomically (folders are created); return the
    figures of what was written. A file-system failure is a ModelFileError; nothing partial
    is left behind."""
    path = Path(path)
    data = export_bytes(theta, config, part=part, values=values, model_hash=model_hash)
    loaded = from_bytes(data, str(path))  # what a reader gets: the honest error figures
    _FILE.write(path, data)
    layout = frae_layout(config)
    theta = np.asarray(theta, dtype=np.float64)
    specs = _part_specs(layout, part)
    wmask = np.zeros(layout.size, dtype=bool)
    for s in specs:
        if s.kind == "weight":
            wmask[s.slice] = True
    present = loaded.present
    n_weights = int(wmask.sum())
    return ExportInfo(
        path=path, part=part, values=values, n_bytes=len(data), n_weights=n_weights,
        nonzero_weights=int(np.count_nonzero(loaded.theta[wmask])),
        flushed_weights=int(np.count_nonzero((theta != 0) & (loaded.theta == 0) & wmask)),
        n_dense=int(present.sum()) - n_weights,
        max_abs_error=float(np.max(np.abs(theta[present] - loaded.theta[present]), initial=0.0)),
        dense_float32_bytes=4 * int(present.sum()))


# --------------------------------------------------------------------------- reading
class _Reader:
    """Sequential reads from the payload; running out is a ModelFileError naming the tensor."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.pos, self.name = data, 0, name

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelFileError(f"{self.name}: payload ends inside {what}; expected {n} more "
                                 f"bytes at offset {HEADER_SIZE + self.pos}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def array(self, dtype: np.dtype, count: int, what: str) -> np.ndarray:
        return np.frombuffer(self.take(count * dtype.itemsize, what), dtype=dtype, count=count)


def _least_payload(specs: list[TensorSpec], values: str) -> int:
    """The fewest payload bytes any valid file of these tensors and value type has.

    Per tensor: its scales, then for a weight the encoding byte and the cheapest empty body
    (an index list of no entries, 2 bytes, only for tensors of at most 65536 entries; else a
    bitmap of ``ceil(n / 8)`` bytes; or ``n`` dense values when cheaper), for a bias or the
    codebook its ``n`` values. So the theta a reader allocates (8 bytes per layout entry) is
    bounded by a fixed multiple of the file's length, whatever its header declares."""
    vb = _DTYPES[values].itemsize
    total = 0
    for s in specs:
        if values in ROW_TYPES and s.kind == "weight":
            total += 2 * s.shape[0]
        elif values in _QMAX:
            total += 4
        if s.kind == "weight":
            body = min(s.size * vb, -(-s.size // 8))
            if s.size <= _U16 + 1:
                body = min(body, 2)
            total += 1 + body
        else:
            total += s.size * vb
    return total


def from_bytes(data: bytes, name: str = "<bytes>") -> ExportedModel:
    """Parse and validate an export file's bytes; every problem is one ModelFileError line
    starting with ``name``. Needs nothing but the bytes (no model file)."""
    data, (version, vtype, part_code, flags, C, He, Hd, D, K, maxima, n_tensors, frame_rate,
           hash_bytes, payload_size, payload_crc) = _FILE.open(data, name)
    n_types = 3 if version == 1 else len(VALUE_TYPES)
    if vtype >= n_types:
        raise ModelFileError(f"{name}: unknown value type code {vtype} for format version "
                             f"{version}; expected 0..{n_types - 1} "
                             f"({', '.join(VALUE_TYPES[:n_types])})")
    if part_code >= len(PARTS):
        raise ModelFileError(f"{name}: unknown part code {part_code}; expected 0..2 "
                             f"({', '.join(PARTS)})")
    if flags & ~_FLAG_HASH:
        raise ModelFileError(f"{name}: unsupported header flags 0x{flags:02x}; expected 0 or 1")
    try:
        config = FraeConfig(n_channels=C, enc_hidden=He, dec_hidden=Hd, latent_dim=D,
                            codebook_size=K, output_maxima=maxima, frame_rate=frame_rate)
    except ParameterError as exc:
        raise ModelFileError(f"{name}: header holds no valid FRAE config ({exc})") from None
    values, part = VALUE_TYPES[vtype], PARTS[part_code]
    layout = frae_layout(config)
    specs = _part_specs(layout, part)
    if n_tensors != len(specs):
        raise ModelFileError(f"{name}: header says {n_tensors} tensors; the {part} part of this "
                             f"config has {len(specs)}")
    least = _least_payload(specs, values)
    if payload_size < least:  # checked before theta (layout-sized) is allocated
        raise ModelFileError(f"{name}: header says {payload_size} bytes of payload; the {part} "
                             f"part of this config ({layout.size} parameters, {values}) needs at "
                             f"least {least}")
    payload = _FILE.payload(data, name, payload_size, payload_crc)

    dtype = _DTYPES[values]
    rd = _Reader(payload, name)
    theta = layout.zeros()
    present = np.zeros(layout.size, dtype=bool)
    encodings: dict[str, str] = {}
    qmax = _QMAX.get(values)
    for s in specs:
        scale: float | np.ndarray = 1.0
        rows = values in ROW_TYPES and s.kind == "weight"
        if rows:
            s16 = rd.array(np.dtype("<f2"), s.shape[0], f"the row scales of {s.name}")
            if not (np.all(np.isfinite(s16)) and np.all(s16 >= 0)):
                raise ModelFileError(f"{name}: tensor {s.name} has a row scale that is negative "
                                     "or not finite; expected finite numbers >= 0")
            scale = np.repeat(s16.astype(np.float64), s.shape[1])
        elif qmax is not None:
            scale = float(np.frombuffer(rd.take(4, f"the scale of {s.name}"), "<f4")[0])
            if not (math.isfinite(scale) and scale >= 0):
                raise ModelFileError(f"{name}: tensor {s.name} has {values} scale {scale}; "
                                     "expected a finite number >= 0")
        if s.kind == "weight":
            code = rd.take(1, f"the encoding byte of {s.name}")[0]
            if code >= len(ENCODINGS):
                raise ModelFileError(f"{name}: tensor {s.name} has encoding {code}; expected 0..2 "
                                     f"({', '.join(ENCODINGS)})")
            encodings[s.name] = ENCODINGS[code]
            if code == 0:
                idx, v = None, rd.array(dtype, s.size, f"the values of {s.name}")
            elif code == 1:
                nb = -(-s.size // 8)
                bits = np.unpackbits(np.frombuffer(rd.take(nb, f"the bitmap of {s.name}"),
                                                   np.uint8), bitorder="little")
                if bits[s.size:].any():
                    raise ModelFileError(f"{name}: tensor {s.name} has non-zero bitmap padding "
                                         "bits; expected zeros")
                idx = np.flatnonzero(bits[:s.size])
                v = rd.array(dtype, idx.size, f"the values of {s.name}")
            else:
                if s.size > _U16 + 1:
                    raise ModelFileError(f"{name}: tensor {s.name} ({s.size} entries) uses an "
                                         "index list; expected a bitmap (u16 indices)")
                (nnz,) = struct.unpack("<H", rd.take(2, f"the index count of {s.name}"))
                idx = rd.array(np.dtype("<u2"), nnz, f"the indices of {s.name}").astype(np.int64)
                if nnz > s.size or (nnz and (idx[-1] >= s.size or np.any(np.diff(idx) <= 0))):
                    raise ModelFileError(f"{name}: tensor {s.name} has bad indices; expected "
                                         f"strictly increasing values in 0..{s.size - 1}")
                v = rd.array(dtype, nnz, f"the values of {s.name}")
            if idx is not None and np.any(v == 0):
                raise ModelFileError(f"{name}: tensor {s.name} stores a 0 as a non-zero weight; "
                                     "expected only non-zero values")
        else:
            idx, v = None, rd.array(dtype, s.size, f"the values of {s.name}")
        if qmax is not None:
            if np.any(v < -qmax):
                raise ModelFileError(f"{name}: tensor {s.name} has {values} value {-qmax - 1}; "
                                     f"expected {-qmax}..{qmax}")
            if rows:
                scale = scale if idx is None else scale[idx]
                if np.any((scale == 0) & (v != 0)):
                    raise ModelFileError(f"{name}: tensor {s.name} stores non-zero values in a "
                                         "row whose scale is 0; expected no values there")
            w = v.astype(np.float64) * scale
        else:
            if not np.all(np.isfinite(v)):
                raise ModelFileError(f"{name}: tensor {s.name} has non-finite values")
            w = v.astype(np.float64)
        block = theta[s.slice]
        if idx is None:
            block[:] = w
        else:
            block[idx] = w
        present[s.slice] = True
    if rd.pos != len(payload):
        raise ModelFileError(f"{name}: {len(payload) - rd.pos} bytes left after the last tensor; "
                             "expected end of payload")
    model_hash = unpack_hash(hash_bytes) if flags & _FLAG_HASH else ""
    return ExportedModel(config=config, part=part, values=values, model_hash=model_hash,
                         theta=theta, present=present, encodings=encodings)


def read_export(path: str | os.PathLike) -> ExportedModel:
    """Read and validate an export file (:func:`from_bytes`); missing/unreadable: ModelFileError."""
    path = Path(path)
    return from_bytes(_FILE.read(path), str(path))
