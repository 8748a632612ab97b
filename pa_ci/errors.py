"""One error type per domain, all derived from :class:`PaCiError`.

The command-line interface turns any :class:`PaCiError` into a single ``error: ...`` line on
stderr and exit status 2; library users can catch the specific subclass.
"""
from __future__ import annotations


class PaCiError(Exception):
    """Base class of every error pa-ci raises on purpose (bad input, bad files, bad options)."""


class AudioError(PaCiError):
    """An audio file or array cannot be used: missing, unreadable, empty, silent, NaN/Inf, ..."""


class DataError(PaCiError):
    """A dataset cannot be built or loaded: empty folder, too few speakers, corrupt cache, ..."""


class ParameterError(PaCiError, ValueError):
    """A parameter value is out of its documented range."""


class ModelFileError(PaCiError):
    """A model or checkpoint file cannot be used: missing, corrupt, or its layout does not match."""


class BitstreamError(PaCiError):
    """A coded stream cannot be decoded: not a pa-ci stream, truncated, corrupt, or another model's."""


class TrainingError(PaCiError):
    """Training cannot start or resume: bad options, a run folder that belongs to another run, ..."""


class OutputError(PaCiError, OSError):
    """An output cannot be written: no space left on the device, no permission, read-only, ...

    Also an :class:`OSError` with the original ``errno`` / ``strerror``, so code that catches
    OSError around a write (and words its own message from ``strerror``) keeps working.
    """

    def __init__(self, message: str, errno: int | None = None, strerror: str | None = None) -> None:
        OSError.__init__(self, errno, strerror)
        self.message = message

    def __str__(self) -> str:
        return self.message


class YamlError(PaCiError, ValueError):
    """The text is not in pa-ci's YAML subset; ``str(e)`` is ``"{path}:{line}: {reason}"``."""

    def __init__(self, reason: str, line: int | None = None, path: str | None = None) -> None:
        super().__init__(reason, line, path)
        self.reason, self.line, self.path = reason, line, path

    def __str__(self) -> str:
        if self.path is not None:
            return f"{self.path}:{self.line}: {self.reason}" if self.line is not None \
                else f"{self.path}: {self.reason}"
        return f"line {self.line}: {self.reason}" if self.line is not None else self.reason


class ScheduleError(PaCiError, ValueError):
    """A compression schedule cannot be used; the message names the file and line."""
