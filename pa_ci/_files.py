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

from .errors import OutputError, PaCiError, ParameterError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` when the block succeeds.

    The temporary file keeps the target's suffix (or ``suffix``) so that writers which pick a
    format from the file name (soundfile, numpy) behave as for the target. On any exception
    the temporary file is removed and the target is left untouched.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp",
                                   dir=target.parent)
    except OSError as exc:
        raise write_error(target, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp_path, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(exc, OSError):  # ENOSPC, EACCES, EROFS, ...: one line naming the target
            raise write_error(target, exc) from None
        raise


def write_error(target: str | os.PathLike, exc: OSError) -> OutputError:
    """``cannot write TARGET: <the OS's reason>`` (e.g. "No space left on device")."""
    reason = exc.strerror or type(exc).__name__
    return OutputError(f"cannot write {target}: {reason[:1].lower() + reason[1:]}", exc.errno,
                       exc.strerror)


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


#: The lock file that marks a folder as claimed by a running pa-ci process (see claim_folder).
LOCK_NAME = ".pa-ci.lock"
_HELD: dict[str, list] = {}  # resolved folder -> [fd, depth]: this process's claims (re-entrant)


@contextlib.contextmanager
def claim_folder(folder: str | os.PathLike, what: str, error: type[PaCiError]) -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for this process while the block runs.

    An OS lock (``fcntl.flock``) on ``folder/.pa-ci.lock``, which records the holder's pid: a
    second process that claims the folder gets one ``error`` line naming the folder and that
    process. The kernel drops the lock when its holder exits, so the file of a crashed run is
    stale and the next claim takes it over. Claims nest within one process. On exit the lock
    file is removed, and so is the folder if this claim created it and nothing else was written.
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise error(f"{path}: exists and is not a folder (the output names a {what} folder)")
    key = str(path.resolve())
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield path
        finally:
            _HELD[key][1] -= 1
        return
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"cannot create {path}: {exc.strerror or exc}") from None
    lock = path / LOCK_NAME
    try:
        fd = _lock(lock, path, what, error)
    except PaCiError:
        if created:  # leave nothing behind (our empty lock file, the folder we made)
            with contextlib.suppress(OSError):
                lock.unlink()
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    _HELD[key] = [fd, 1]
    try:
        yield path
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only succeeds when empty: a claim that wrote nothing leaves nothing


def _lock(lock: Path, folder: Path, what: str, error: type[PaCiError]) -> int:
    import fcntl
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise error(f"cannot write {lock}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise error(f"{folder}: in use by another pa-ci {what} (process {holder}); wait for "
                        "it to finish or choose another output folder") from None
        try:  # the holder may have removed the file between our open and flock: retry then
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
    except OSError as exc:
        os.close(fd)
        raise error(str(write_error(lock, exc))) from None
    return fd
