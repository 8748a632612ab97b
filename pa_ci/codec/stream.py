"""The streaming FRAE codec (research §5): one frame in, one index out, and back, with zero delay.

:class:`Encoder` turns one stimulation-pattern frame x_t into the codebook index i_t (it runs its
own copy of the decoder state h_t, the feedback of research §3); :class:`Decoder` turns i_t into
the decoded frame. Each step runs the lane code of the batched kernels
(:mod:`pa_ci.codec._kernels`) with one lane in use, so a stream gives exactly (``==``) the
indices and frames of :func:`pa_ci.codec.frae.forward` and :func:`pa_ci.codec.frae.decode`.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numba import njit

from ..errors import ParameterError
from ._exp import _JIT
from ._kernels import _dec_lanes, _enc_lanes, _lane_arrays, _out_lanes
from .frae import FraeConfig, _net, _one_theta

__all__ = ["Encoder", "Decoder"]


class _StepKernels(NamedTuple):
    enc_step: object
    dec_step: object


@lru_cache(maxsize=None)
def _step_kernels(C: int, He: int, Hd: int, D: int, K: int) -> _StepKernels:
    """The compiled streaming steps for one set of sizes (closure constants, as the batched
    kernels: pa_ci.codec._kernels)."""

    @njit(**_JIT)
    def enc_step(ln, net):
        """Streaming encoder step on the lane arrays (the batched kernel runs the same code)."""
        _enc_lanes(ln, net, C, He, Hd, D, K)

    @njit(**_JIT)
    def dec_step(ln, net, n_max):
        """Streaming decoder step and output stage on the lane arrays."""
        _dec_lanes(ln, net, Hd, D)
        _out_lanes(ln, net, n_max, C, Hd)

    return _StepKernels(enc_step, dec_step)


def _config_steps(config: FraeConfig) -> _StepKernels:
    return _step_kernels(config.n_channels, config.enc_hidden, config.dec_hidden,
                         config.latent_dim, config.codebook_size)


class Encoder:
    """Zero-delay streaming encoder (research §5): one pattern frame in, one index out.

    Runs its own copy of the decoder GRU, so ``h`` equals the :class:`Decoder`'s state after the
    same indices. States start at zero; :meth:`reset` starts a new item. Each step runs the
    batched kernel's lane code with one lane in use (lane 0), so it is exactly
    :func:`pa_ci.codec.frae.forward`.
    """

    def __init__(self, theta: np.ndarray, config: FraeConfig) -> None:
        self.config = config
        self._net = _net(_one_theta(theta, config), config).one()
        self._step = _config_steps(config).enc_step
        self._lanes = _lane_arrays(config.n_channels, config.enc_hidden, config.dec_hidden,
                                   config.latent_dim, np.dtype(np.float64))

    @property
    def s(self) -> np.ndarray:
        """Encoder GRU state s_t (a copy, (enc_hidden,))."""
        return self._lanes.s[:, 0].copy()

    @property
    def h(self) -> np.ndarray:
        """The encoder's copy of the decoder state h_t (a copy, (dec_hidden,))."""
        return self._lanes.HX[:self.config.dec_hidden, 0].copy()

    @property
    def latent(self) -> np.ndarray:
        """Latent z_t of the last step (a copy)."""
        return self._lanes.z[:, 0].copy()

    def reset(self) -> None:
        """Zero the states: the next frame starts a new item."""
        self._lanes.s[:] = 0.0
        self._lanes.HX[:] = 0.0

    def step(self, frame: np.ndarray) -> int:
        """Encode one pattern frame (C,) -> codebook index."""
        x = np.asarray(frame)
        C = self.config.n_channels
        if x.shape != (C,) or x.dtype.kind not in "fiu":
            raise ParameterError(f"frame is a {x.dtype} array of shape {x.shape}; expected ({C},) "
                                 "floats")
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise ParameterError("frame has non-finite values")
        lanes = self._lanes
        lanes.HX[self.config.dec_hidden:, 0] = x
        self._step(lanes, self._net)
        return int(lanes.best[0])


class Decoder:
    """Streaming decoder: one index in, one decoded frame (C,) out. :meth:`reset` per item.

    Runs the batched decoder's lane code with one lane in use, so it is exactly
    :func:`pa_ci.codec.frae.decode`.
    """

    def __init__(self, theta: np.ndarray, config: FraeConfig) -> None:
        self.config = config
        self._net = _net(_one_theta(theta, config), config).one()
        self._step = _config_steps(config).dec_step
        self._lanes = _lane_arrays(config.n_channels, 1, config.dec_hidden, config.latent_dim,
                                   np.dtype(np.float64))

    @property
    def h(self) -> np.ndarray:
        """Decoder GRU state h_t (a copy, (dec_hidden,))."""
        return self._lanes.HX[:self.config.dec_hidden, 0].copy()

    def reset(self) -> None:
        """Zero the state: the next index starts a new item."""
        self._lanes.HX[:] = 0.0

    def step(self, index: int) -> np.ndarray:
        """Decode one codebook index -> decoded frame (C,) float64 (a new array)."""
        K = self.config.codebook_size
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < K:
            raise ParameterError(f"index {index!r}; expected an integer in 0..{K - 1}")
        ln = self._lanes
        ln.best[0] = index
        n_max = self.config.output_maxima
        self._step(ln, self._net, n_max)
        y = ln.Y[:, 0].copy()
        if 0 < n_max < self.config.n_channels:
            y[ln.cnt[:, 0] >= n_max] = 0.0
        return y
