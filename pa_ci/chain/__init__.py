"""The signal chain (paper §II-B): audio, noise, ACE, the sine vocoder, STOI and VSTOI.

The names of the former module ``pa_ci.chain`` are forwarded from :mod:`pa_ci.chain.files`.
"""
from .._compat import forwarding_getattr

__getattr__ = forwarding_getattr(__name__, __name__ + ".files")
