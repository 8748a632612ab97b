"""pa-ci: pruning-aware training of zero-delay recurrent codecs for CI stimulation patterns.

Signal chain (Hinrichs & Ostermann, arXiv 2502.02424, §II-B)::

    audio --ace--> stimulation pattern (K x 22) --vocode--> audio --stoi vs clean--> VSTOI

The names below are the public entry points. Note that ``pa_ci.ace`` and ``pa_ci.stoi`` are the
*functions*; their modules are imported as ``from pa_ci.ace import AceParams`` etc.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import AudioError, DataError, PaCiError, ParameterError  # noqa: E402
from .ace import AceParams, ace  # noqa: E402
from .vocoder import vocode  # noqa: E402
from .stoi import Reference, stoi, vstoi  # noqa: E402

__all__ = ["ace", "AceParams", "vocode", "stoi", "vstoi", "Reference",
           "PaCiError", "AudioError", "DataError", "ParameterError", "__version__"]
