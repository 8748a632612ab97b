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
