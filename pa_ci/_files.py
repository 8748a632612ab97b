"""Atomic file writing: write to a temporary name in the target folder, then rename.

A reader never sees a half-written file, and an interrupted writer leaves no partial output.
:func:`check_preamble` is the common start of our binary-format readers (stream, export).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import PaCiError, ParameterError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` when the block succeeds.

    The temporary file keeps the target's suffix (or ``suffix``) so that writers which pick a
    format from the file name (soundfile, numpy) behave as for the target. On any exception
    the temporary file is removed and the target is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def current_umask() -> int:
    """The process umask (read without changing it for longer than two calls)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_preamble(data: object, name: str, magic: bytes, header_size: int, what: str,
                   error: type[PaCiError]) -> bytes:
    """Bytes of a binary file that is not empty, holds a whole header and starts with ``magic``.

    Every problem is one ``error`` line starting with ``name`` (``what``: "pa-ci stream", ...).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ParameterError(f"{name}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    n = len(data)
    if n == 0:
        raise error(f"{name}: empty file; expected a {what}")
    if n < header_size and data[:len(magic)] == magic[:n]:
        raise error(f"{name}: truncated: {n} bytes, shorter than the {header_size}-byte {what} header")
    if data[:len(magic)] != magic:
        raise error(f"{name}: not a {what} (starts with {data[:len(magic)]!r}, expected {magic!r})")
    return data
