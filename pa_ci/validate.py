"""Checks of the values every layer takes: integers, reals, rates and flat weight vectors.

One place for them, so that every module words the same mistake the same way and raises
:class:`~pa_ci.errors.ParameterError` (the CLI's exit status 2).
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .errors import ParameterError


def is_int(value: Any) -> bool:
    """True for a Python or NumPy integer (not a bool)."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """True for a Python or NumPy real number (not a bool), finite or not."""
    return isinstance(value, (numbers.Real, np.floating, np.integer)) \
        and not isinstance(value, (bool, np.bool_))


def is_finite_real(value: Any) -> bool:
    """True for a real number (:func:`is_real`) that is finite."""
    if not is_real(value):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:   # an integer beyond the float range
        return False


def number_or_nan(value: Any) -> float:
    """``float(value)``, or NaN for what is not a number (a results table's empty cell)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def check_rate(rate: Any) -> float:
    """A pruning rate (fraction of the eligible weights set to zero) must be a real number in
    [0, 1]; return it as float."""
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise ParameterError(f"pruning rate {rate!r}: expected a number in [0, 1]") from None
    if not (0.0 <= r <= 1.0) or isinstance(rate, bool):
        raise ParameterError(f"pruning rate {rate!r}: expected a number in [0, 1] "
                             "(the fraction of eligible weights set to zero)")
    return r


def check_theta(theta: Any, size: int | None = None, *, name: str = "theta", where: str = "",
                array_only: bool = False, copy: bool = False) -> np.ndarray:
    """A flat weight vector as float64: 1-D, non-empty, of ``size`` entries when given, real
    (not bool) and finite. ``array_only`` refuses lists; ``copy`` returns a private copy;
    ``where`` (e.g. ``"Spsa"``) prefixes the message."""
    prefix = f"{where}: " if where else ""
    if array_only and not isinstance(theta, np.ndarray):
        expected = f"({size},)" if size is not None else "(p,)"
        raise ParameterError(f"{prefix}{name} must be a numpy array of shape {expected}, "
                             f"got {type(theta).__name__}")
    arr = np.asarray(theta)
    if arr.ndim != 1 or arr.size == 0 or (size is not None and arr.shape != (size,)):
        expected = f"({size},)" if size is not None else "a non-empty 1-D array"
        raise ParameterError(f"{prefix}{name} has shape {arr.shape}; expected {expected}")
    if arr.dtype.kind not in "fiu":
        raise ParameterError(f"{prefix}{name} has dtype {arr.dtype}; expected float64")
    arr = np.array(arr, dtype=np.float64) if copy else np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{prefix}{name} has {int(np.sum(~np.isfinite(arr)))} non-finite values")
    return arr
