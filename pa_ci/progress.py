"""The one progress callback type of every long-running function."""
from __future__ import annotations

from typing import Any, Callable

#: ``progress(done, total, info)``: called after each unit of work (an SPSA iteration, a warm-start
#: step, a dataset item, a finished sweep run); ``info`` is a short text line for the progress
#: display, or a dict of figures (a sweep's finished run).
ProgressFn = Callable[[int, int, Any], None]
