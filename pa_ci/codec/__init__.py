"""The codec: the flat weight layout and model file, the FRAE, its streams, exports and firmware.

The names of the former module ``pa_ci.codec`` are forwarded from :mod:`pa_ci.codec.coder` and
(its evaluation part) :mod:`pa_ci.train.evaluate`.
"""
from .._compat import forwarding_getattr

__getattr__ = forwarding_getattr(__name__, __name__ + ".coder", "pa_ci.train.evaluate")
