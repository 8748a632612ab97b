"""pa-ci: pruning-aware training of zero-delay recurrent codecs for CI stimulation patterns.

Signal chain (Hinrichs & Ostermann, arXiv 2502.02424, §II-B)::

    audio --ace--> stimulation pattern (K x 22) --vocode--> audio --stoi vs clean--> VSTOI

The names below are the public entry points. Note that ``pa_ci.ace`` and ``pa_ci.stoi`` are the
*functions*; their modules are imported as ``from pa_ci.ace import AceParams`` etc.
"""
from __future__ import annotations

__version__ = "0.1.0"

import sys
import types

from .errors import AudioError, DataError, PaCiError, ParameterError  # noqa: E402

#: Public names that live in NumPy/SciPy/Numba-heavy modules, imported on first use (PEP 562),
#: so that ``import pa_ci`` and ``pa-ci --help`` start in a fraction of a second.
_LAZY = {"ace": "ace", "AceParams": "ace", "vocode": "vocoder", "stoi": "stoi", "vstoi": "stoi",
         "Reference": "stoi"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pa_ci' has no attribute {name!r}")
    from importlib import import_module
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """``pa_ci.ace`` and ``pa_ci.stoi`` stay the functions after their submodules are imported
    (the import system would bind the submodule to the package attribute of the same name)."""

    def __setattr__(self, name: str, value) -> None:
        if name in ("ace", "stoi") and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = ["ace", "AceParams", "vocode", "stoi", "vstoi", "Reference",
           "PaCiError", "AudioError", "DataError", "ParameterError", "__version__"]
