"""The coded bitstream: one codebook index per frame, packed at ``n_bits`` bits, behind a header.

The FRAE codec sends one index per 18-sample frame (DECISIONS.md: 6 bit x 888.9 frames/s =
5.33 kbit/s nominal). A stream file is a fixed 42-byte header followed by the indices packed
MSB-first, ``n_bits`` bits each, with the last byte zero-padded, so the payload is exactly
``ceil(n_frames * n_bits / 8)`` bytes.

Header (little-endian, byte offsets):

======  ====  ==============  ===================================================================
offset  size  field           meaning
======  ====  ==============  ===================================================================
0       4     magic           ``b"PACI"``
4       1     version         format version, u8 (:data:`FORMAT_VERSION` = 1)
5       1     n_bits          bits per index, u8, 1..16
6       2     flags           reserved, u16, must be 0
8       8     model_hash      the 8 bytes of the model's 16-hex-digit hash (``params.model_hash``)
16      4     sample_rate     u32, sampling rate of the audio the frames stand for (16000)
20      2     hop             u16, samples per frame (18)
22      4     n_frames        u32, number of indices; must equal ``ceil(n_samples / hop)``
26      8     n_samples       u64, length of the original audio (to trim the decoded audio)
34      4     payload_crc     CRC-32 (``zlib.crc32``) of the payload bytes
38      4     header_crc      CRC-32 of header bytes 0..37 (so it covers ``payload_crc`` too)
======  ====  ==============  ===================================================================

Every byte of a file is covered by one of the two CRCs, so any single changed byte is detected
(the frame of magic, version, CRCs and payload is :mod:`pa_ci.codec.envelope`, shared with the
sparse exports).
:func:`from_bytes` / :func:`read_stream` raise :class:`~pa_ci.errors.BitstreamError` with a
one-line message naming the source and what is wrong; building or writing an invalid
:class:`Stream` raises :class:`~pa_ci.errors.ParameterError`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BitstreamError, ParameterError
from .envelope import CRC as _CRC  # noqa: F401 - with _HEAD: how the tests forge headers
from .envelope import Envelope, check_hash, pack_hash, unpack_hash

#: First four bytes of every stream file.
MAGIC = b"PACI"
#: Layout version written by this module (the only one it reads).
FORMAT_VERSION = 1
#: Largest supported index width; 16 bits covers codebooks of up to 65536 codewords.
MAX_BITS = 16

#: The stream file's frame; its fields: n_bits, flags, model_hash, sample_rate, hop, n_frames,
#: n_samples.
_FILE = Envelope("stream", MAGIC, "BH8sIHIQ", (FORMAT_VERSION,), BitstreamError)
_HEAD = _FILE.head  # everything up to and including payload_crc ("<4sBBH8sIHIQI")
#: Size of the fixed header in bytes (42).
HEADER_SIZE = _FILE.header_size

_U16, _U32, _U64 = 2**16 - 1, 2**32 - 1, 2**64 - 1


def _n_frames(n_samples: int, hop: int) -> int:
    """K = ceil(L / S), the frame count of the ACE front end (``pa_ci.chain.ace.n_frames``)."""
    return -(-int(n_samples) // int(hop))


def payload_size(n_frames: int, n_bits: int) -> int:
    """Bytes of packed payload: ``ceil(n_frames * n_bits / 8)``."""
    return -(-int(n_frames) * int(n_bits) // 8)


def stream_size(n_frames: int, n_bits: int) -> int:
    """Bytes of a whole stream file: :data:`HEADER_SIZE` + :func:`payload_size`."""
    return HEADER_SIZE + payload_size(n_frames, n_bits)


def _check_n_bits(n_bits: object) -> int:
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) \
            or not 1 <= int(n_bits) <= MAX_BITS:
        raise ParameterError(f"n_bits = {n_bits!r}; expected an integer in 1..{MAX_BITS}")
    return int(n_bits)


def _check_indices(indices: object, n_bits: int) -> np.ndarray:
    """``indices`` as a 1-D int64 array of values in ``0 .. 2**n_bits - 1``, or ParameterError."""
    a = np.asarray(indices)
    if a.ndim != 1:
        raise ParameterError(f"indices have shape {a.shape}; expected a 1-D array of frame indices")
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if a.dtype.kind not in "iu":
        raise ParameterError(f"indices have dtype {a.dtype}; expected integers")
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= 1 << n_bits:
        bad = lo if lo < 0 else hi
        raise ParameterError(f"index {bad} does not fit in {n_bits} bits; "
                             f"expected 0..{(1 << n_bits) - 1}")
    return a.astype(np.int64)


def _check_uint(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not lo <= int(value) <= hi:
        raise ParameterError(f"{name} = {value!r}; expected an integer in {lo}..{hi}")
    return int(value)


@dataclass(frozen=True, eq=False)
class Stream:
    """One coded utterance: the frame indices and what is needed to decode and trim them.

    Validated on construction (:class:`ParameterError`); ``indices`` is stored as a read-only
    int64 copy. Two streams are equal when all fields are equal.
    """

    indices: np.ndarray  #: (n_frames,) int64 codebook indices
    n_bits: int  #: bits per index, 1..16
    model_hash: str  #: 16 hex digits identifying the model (``pa_ci.codec.model_file.model_hash``)
    n_samples: int  #: length of the original audio at ``sample_rate``
    sample_rate: int = 16000  #: Hz
    hop: int = 18  #: samples per frame

    def __post_init__(self) -> None:
        n_bits = _check_n_bits(self.n_bits)
        indices = _check_indices(self.indices, n_bits).copy()
        indices.flags.writeable = False
        object.__setattr__(self, "n_bits", n_bits)
        object.__setattr__(self, "indices", indices)
        object.__setattr__(self, "model_hash", check_hash(self.model_hash))
        object.__setattr__(self, "sample_rate",
                           _check_uint("sample_rate", self.sample_rate, 1, _U32))
        object.__setattr__(self, "hop", _check_uint("hop", self.hop, 1, _U16))
        object.__setattr__(self, "n_samples", _check_uint("n_samples", self.n_samples, 0, _U64))
        if indices.size > _U32:
            raise ParameterError(f"{indices.size} frames; a stream holds at most {_U32}")
        expected = _n_frames(self.n_samples, self.hop)
        if indices.size != expected:
            raise ParameterError(f"{indices.size} indices for {self.n_samples} samples at hop "
                                 f"{self.hop}; expected ceil(n_samples / hop) = {expected}")

    @property
    def n_frames(self) -> int:
        """Number of frames (indices)."""
        return int(self.indices.size)

    @property
    def frame_rate(self) -> float:
        """Frames per second, ``sample_rate / hop`` (888.9 Hz for 16 kHz, hop 18)."""
        return self.sample_rate / self.hop

    @property
    def nominal_bitrate_bps(self) -> float:
        """``n_bits * frame_rate`` bit/s, header excluded (5333.3 for 6 bits)."""
        return self.n_bits * self.frame_rate

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stream):
            return NotImplemented
        return (self.n_bits, self.model_hash, self.n_samples, self.sample_rate, self.hop) == \
            (other.n_bits, other.model_hash, other.n_samples, other.sample_rate, other.hop) \
            and np.array_equal(self.indices, other.indices)


def pack_indices(indices: np.ndarray, n_bits: int) -> bytes:
    """Pack indices MSB-first at ``n_bits`` bits each; the last byte is zero-padded.

    Index ``k`` occupies bits ``k*n_bits .. (k+1)*n_bits - 1`` of the byte string read as one
    big-endian bit sequence. Raises :class:`ParameterError` for indices that do not fit.
    """
    n_bits = _check_n_bits(n_bits)
    a = _check_indices(indices, n_bits)
    bits = np.empty((a.size, n_bits), dtype=np.uint8)  # one column at a time: n*n_bits bytes
    for j in range(n_bits):
        bits[:, j] = (a >> (n_bits - 1 - j)) & 1
    return np.packbits(bits.reshape(-1)).tobytes()


def unpack_indices(data: bytes, n_frames: int, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack_indices`: ``n_frames`` int64 indices from exactly
    ``ceil(n_frames * n_bits / 8)`` bytes (:class:`ParameterError` for any other length)."""
    n_bits = _check_n_bits(n_bits)
    n_frames = _check_uint("n_frames", n_frames, 0, _U64)
    need = payload_size(n_frames, n_bits)
    if len(data) != need:
        raise ParameterError(f"{len(data)} bytes for {n_frames} indices of {n_bits} bits; "
                             f"expected {need}")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8),
                         count=n_frames * n_bits).reshape(n_frames, n_bits)
    out = np.zeros(n_frames, dtype=np.int64)
    for j in range(n_bits):
        out |= bits[:, j].astype(np.int64) << (n_bits - 1 - j)
    return out


def to_bytes(stream: Stream) -> bytes:
    """The complete stream file: header (see the module docstring) + packed payload."""
    if not isinstance(stream, Stream):
        raise ParameterError(f"expected a Stream, got {type(stream).__name__}")
    payload = pack_indices(stream.indices, stream.n_bits)
    return _FILE.seal(FORMAT_VERSION, (stream.n_bits, 0, pack_hash(stream.model_hash),
                                       stream.sample_rate, stream.hop, stream.n_frames,
                                       stream.n_samples), payload)


def from_bytes(data: bytes, *, source: str = "<bytes>",
               expected_model_hash: str | None = None) -> Stream:
    """Parse and validate a stream file's bytes; :class:`BitstreamError` names ``source``.

    Checked in order: length of the header, magic, version, header CRC, flags, n_bits,
    sample_rate/hop, ``n_frames == ceil(n_samples / hop)``, payload length (truncated /
    trailing bytes), payload CRC, zero padding bits, and finally ``expected_model_hash``.
    """
    if expected_model_hash is not None:
        expected_model_hash = check_hash(expected_model_hash, "expected_model_hash")
    data, (_, n_bits, flags, hash_bytes, sample_rate, hop, n_frames, n_samples,
           payload_crc) = _FILE.open(data, source)
    if flags != 0:
        raise BitstreamError(f"{source}: unsupported header flags 0x{flags:04x}; expected 0")
    if not 1 <= n_bits <= MAX_BITS:
        raise BitstreamError(f"{source}: n_bits = {n_bits} in the header; expected 1..{MAX_BITS}")
    if sample_rate == 0 or hop == 0:
        raise BitstreamError(f"{source}: sample_rate {sample_rate}, hop {hop} in the header; "
                             f"expected both > 0")
    if n_frames != _n_frames(n_samples, hop):
        raise BitstreamError(f"{source}: {n_frames} frames for {n_samples} samples at hop {hop}; "
                             f"expected ceil(n_samples / hop) = {_n_frames(n_samples, hop)}")
    need = payload_size(n_frames, n_bits)
    payload = _FILE.payload(data, source, need, payload_crc)
    pad = need * 8 - n_frames * n_bits
    if pad and payload[-1] & ((1 << pad) - 1):
        raise BitstreamError(f"{source}: non-zero padding bits after the last index; "
                             f"expected zeros")
    model_hash = unpack_hash(hash_bytes)
    if expected_model_hash is not None and model_hash != expected_model_hash:
        raise BitstreamError(f"{source}: coded with model {model_hash}, this model is "
                             f"{expected_model_hash}: decode with the model that encoded it "
                             f"(--model)")
    return Stream(indices=unpack_indices(payload, n_frames, n_bits), n_bits=n_bits,
                  model_hash=model_hash, n_samples=n_samples, sample_rate=sample_rate, hop=hop)


def write_stream(path: str | os.PathLike, stream: Stream) -> Path:
    """Write ``stream`` to ``path`` atomically (missing folders are created); return the path.

    An invalid stream raises :class:`ParameterError` before anything is written; a file system
    failure raises :class:`BitstreamError` and leaves neither a partial nor a temporary file.
    """
    return _FILE.write(path, to_bytes(stream))


def read_stream(path: str | os.PathLike, *, expected_model_hash: str | None = None) -> Stream:
    """Read and validate a stream file (:func:`from_bytes`); missing/unreadable: BitstreamError."""
    path = Path(path)
    return from_bytes(_FILE.read(path), source=str(path), expected_model_hash=expected_model_hash)


def index_entropy(indices: np.ndarray, codebook_size: int) -> float:
    """Empirical entropy of the index histogram, bits/frame: ``-sum p_k log2 p_k`` (0 if empty).

    The rate an ideal memoryless entropy coder would reach on these indices (DECISIONS.md).
    """
    codebook_size = _check_uint("codebook_size", codebook_size, 1, _U32)
    a = np.asarray(indices)
    if a.ndim != 1:
        raise ParameterError(f"indices have shape {a.shape}; expected a 1-D array")
    if a.size == 0:
        return 0.0
    if a.dtype.kind not in "iu":
        raise ParameterError(f"indices have dtype {a.dtype}; expected integers")
    if int(a.min()) < 0 or int(a.max()) >= codebook_size:
        raise ParameterError(f"indices span {int(a.min())}..{int(a.max())}; "
                             f"expected 0..{codebook_size - 1}")
    counts = np.bincount(a.astype(np.int64), minlength=codebook_size)
    p = counts[counts > 0] / a.size
    return float(max(0.0, -np.sum(p * np.log2(p))))


def measured_bitrate_bps(n_bytes_file: int, n_frames: int, frame_rate: float) -> float:
    """Rate of a whole file, header included: ``8 * n_bytes_file / (n_frames / frame_rate)``."""
    n_bytes_file = _check_uint("n_bytes_file", n_bytes_file, 0, _U64)
    n_frames = _check_uint("n_frames", n_frames, 1, _U64)
    if not (isinstance(frame_rate, (int, float, np.floating, np.integer))
            and math.isfinite(frame_rate) and frame_rate > 0):
        raise ParameterError(f"frame_rate = {frame_rate!r}; expected a finite number > 0")
    return 8.0 * n_bytes_file * float(frame_rate) / n_frames


__all__ = ["FORMAT_VERSION", "HEADER_SIZE", "MAGIC", "MAX_BITS", "Stream", "from_bytes",
           "index_entropy", "measured_bitrate_bps", "pack_indices", "payload_size", "read_stream",
           "stream_size", "to_bytes", "unpack_indices", "write_stream"]
