"""The envelope of pa-ci's binary files: magic, version, CRC-checked header, CRC-checked payload.

Both binary formats, coded streams (:mod:`pa_ci.codec.bitstream`, magic ``b"PACI"``) and sparse
exports (:mod:`pa_ci.codec.export`, ``b"PACX"``), are one fixed little-endian header followed
by a payload::

    magic (4 bytes) | version (u8) | the format's fields | payload_crc (u32) | header_crc (u32) | payload

``payload_crc`` is the CRC-32 (``zlib.crc32``) of the payload and ``header_crc`` that of every
header byte before it (so it covers ``payload_crc`` too): every byte of a file is covered by one
of the two CRCs. A source model's 16-hex-digit hash (:func:`pa_ci.codec.model_file.model_hash`)
is stored as its 8 bytes.

An :class:`Envelope` writes and reads that frame for one format and words every problem as one
line of the format's error type starting with the file's name; the format checks its own fields
in between (:meth:`Envelope.open` the header, then :meth:`Envelope.payload` the payload).
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .._files import atomic_path, check_preamble
from ..errors import PaCiError, ParameterError

__all__ = ["Envelope", "CRC", "check_hash", "pack_hash", "unpack_hash"]

#: The header CRC that closes every header (u32, little-endian).
CRC = struct.Struct("<I")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Envelope:
    """The frame of one binary format: ``kind`` ("stream", "export") names it in messages,
    ``magic`` (4 bytes) starts it, ``fields`` is the :mod:`struct` format of the header fields
    between the version byte and ``payload_crc``, ``versions`` the versions read, and ``error``
    the error type of a bad file."""

    kind: str
    magic: bytes
    fields: str
    versions: tuple[int, ...]
    error: type[PaCiError]

    @cached_property
    def head(self) -> struct.Struct:
        """The header up to and including ``payload_crc``: magic, version, fields, payload_crc."""
        return struct.Struct("<4sB" + self.fields + "I")

    @property
    def header_size(self) -> int:
        """Bytes of the whole header (``head`` and ``header_crc``)."""
        return self.head.size + CRC.size

    @property
    def what(self) -> str:
        return f"pa-ci {self.kind}"

    def seal(self, version: int, fields: tuple, payload: bytes) -> bytes:
        """The file: header (``fields`` in the order of :attr:`fields`, then both CRCs) + payload."""
        head = self.head.pack(self.magic, version, *fields, zlib.crc32(payload))
        return head + CRC.pack(zlib.crc32(head)) + payload

    def open(self, data: object, name: str) -> tuple[bytes, tuple]:
        """``(data, (version, fields..., payload_crc))`` of a file whose length, magic, version
        and header CRC are checked, in that order; the format checks its fields next."""
        data = check_preamble(data, name, self.magic, self.header_size, self.what, self.error)
        fields = self.head.unpack_from(data)[1:]
        version = fields[0]
        if version not in self.versions:
            raise self.error(f"{name}: {self.kind} format version {version} is not supported "
                             f"(this pa-ci reads {self._versions_read()})")
        (header_crc,) = CRC.unpack_from(data, self.head.size)
        if zlib.crc32(data[:self.head.size]) != header_crc:
            raise self.error(f"{name}: corrupt header (CRC mismatch)")
        return data, fields

    def payload(self, data: bytes, name: str, size: int, crc: int) -> bytes:
        """The payload of ``data`` after checking it is ``size`` bytes (truncated / trailing
        bytes) with CRC-32 ``crc``."""
        got = len(data) - self.header_size
        if got < size:
            raise self.error(f"{name}: truncated: {got} bytes of payload, expected {size}")
        if got > size:
            raise self.error(f"{name}: {got - size} trailing bytes after the {size}-byte "
                             f"payload; expected end of file")
        payload = data[self.header_size:]
        if zlib.crc32(payload) != crc:
            raise self.error(f"{name}: corrupt payload (CRC mismatch)")
        return payload

    def write(self, path: str | os.PathLike, data: bytes) -> Path:
        """Write ``data`` to ``path`` atomically (missing folders are created); a file-system
        failure is one error line and leaves neither a partial nor a temporary file."""
        path = Path(path)
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
        except OSError as exc:
            raise self.error(f"{path}: cannot write the {self.kind}: "
                             f"{exc.strerror or exc.__class__.__name__}") from None
        return path

    def read(self, path: str | os.PathLike) -> bytes:
        """The bytes of the file ``path``; missing, a folder or unreadable: one error line."""
        path = Path(path)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise self.error(f"{path}: no such file; expected a {self.what}") from None
        except IsADirectoryError:
            raise self.error(f"{path}: is a folder; expected a {self.what} file") from None
        except OSError as exc:
            raise self.error(f"{path}: cannot be read: "
                             f"{exc.strerror or exc.__class__.__name__}") from None

    def _versions_read(self) -> str:
        *first, last = self.versions
        return f"versions {', '.join(map(str, first))} and {last}" if first else f"version {last}"


def check_hash(value: object, what: str = "model_hash", *, optional: bool = False) -> str:
    """A model hash of 16 hexadecimal digits, in lower case (``optional``: "" = unset, too)."""
    if not (isinstance(value, str) and ((optional and value == "") or (
            len(value) == 16 and all(c in _HEX_DIGITS for c in value)))):
        raise ParameterError(f"{what} = {value!r}; expected 16 hexadecimal digits"
                             + (" or ''" if optional else ""))
    return value.lower()


def pack_hash(model_hash: str) -> bytes:
    """The 8 header bytes of a checked hash (:func:`check_hash`); zeros for "" (unset)."""
    return bytes.fromhex(model_hash) if model_hash else bytes(8)


def unpack_hash(raw: bytes) -> str:
    """The 16 hex digits (lower case) of 8 header bytes."""
    return raw.hex()
