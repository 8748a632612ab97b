"""The training objective: mean VSTOI of the FRAE's decoded patterns over dataset items.

Paper §II-C: "the function f returns mean VSTOI scores of the decoded stimulation patterns of
the model to be optimized". One :class:`VstoiObjective` holds the items' stacked ACE patterns and
their clean references (built once); calling it with a stack of parameter vectors runs the FRAE
on every (vector, item) pair and scores all of them in parallel, so SPSA's y+ and y- come from
one call on the same items (common random numbers, frae_spsa_research.md §7.5).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..chain.ace import AceParams, default_params
from ..errors import ParameterError
from ..codec import frae as _frae
from ..codec.config import check_precision
from ..codec.frae import FraeConfig, PackedPatterns, forward_many, pack_patterns
from ..chain.stoi import Reference
from ..chain.vstoi import ReferenceSet
from ..chain.vocoder import envelopes

# The compact path: the FRAE's kept maxima (chans int8 (n, N, M), vals float64 (n, N, M)) go
# straight to ReferenceSet.vstoi_maxima, which applies the inverse LGF only where STOI looks;
# without it (older frae), the dense decoded pattern -> envelopes -> vstoi_envelopes.
_forward_maxima = getattr(_frae, "forward_maxima", None)


class VstoiObjective:
    """``f(thetas, k) -> mean VSTOI per row`` over ``items`` (each with ``.clean`` and ``.pattern``).

    ``items``: dataset items (:class:`pa_ci.data.Item`) or any objects with a clean signal at
    ``ace_params.fs`` (``.clean``) and its ACE pattern (``.pattern``, (K, 22), K*hop >= len(clean)).
    ``batch_size``: score a mini-batch of that many items per iteration instead of all of them;
    the batch of iteration ``k`` is drawn from ``Generator((seed, k))``, the same for every row of
    one call. ``extended`` scores ESTOI instead of STOI. ``precision``: the FRAE's arithmetic
    in the forward pass (:data:`pa_ci.codec.config.PRECISIONS`; ``"float32"`` is faster, the
    VSTOI side stays float64).
    """

    def __init__(self, items: Sequence[Any], config: FraeConfig, ace_params: AceParams | None = None,
                 *, batch_size: int | None = None, seed: int = 0, extended: bool = False,
                 precision: str = "float64") -> None:
        items = list(items)
        if not items:
            raise ParameterError("the objective needs at least one item")
        if batch_size is not None and not (1 <= batch_size <= len(items)):
            raise ParameterError(f"batch size must be 1..{len(items)} (the number of items), got {batch_size}")
        self.config = config
        self.ace_params = ace_params or default_params()
        self.batch_size = batch_size
        self.seed = int(seed)
        self.extended = bool(extended)
        self.precision = check_precision(precision)
        self._patterns = [it.pattern for it in items]
        self._packed_all = pack_patterns(self._patterns, config.n_channels)
        self.references = [Reference(np.asarray(it.clean, dtype=np.float64), int(self.ace_params.fs))
                           for it in items]
        self.n_items = len(items)
        self._sets: dict[tuple, ReferenceSet] = {}
        self._freqs = np.asarray(self.ace_params.centre_frequencies, dtype=np.float64)
        self._buffers: tuple[np.ndarray, np.ndarray] | None = None
        self._maxima: tuple[np.ndarray, np.ndarray] | None = None

    # -- item selection ---------------------------------------------------------------------
    def batch(self, k: int) -> np.ndarray:
        """Item indices scored at iteration ``k`` (all items without a batch size)."""
        if self.batch_size is None or self.batch_size == self.n_items:
            return np.arange(self.n_items)
        rng = np.random.default_rng([self.seed, int(k)])
        return np.sort(rng.choice(self.n_items, size=self.batch_size, replace=False))

    def _subset(self, idx: np.ndarray) -> PackedPatterns:
        if idx.size == self.n_items and np.array_equal(idx, np.arange(self.n_items)):
            return self._packed_all
        return pack_patterns([self._patterns[i] for i in idx], self.config.n_channels)

    def _reference_set(self, idx: np.ndarray, n_rows: int) -> ReferenceSet:
        key = (idx.tobytes(), n_rows)
        rs = self._sets.get(key)
        if rs is None:
            if len(self._sets) > 8:  # mini-batches change every iteration: keep the cache small
                self._sets.clear()
            rs = ReferenceSet([self.references[i] for i in idx] * n_rows)
            self._sets[key] = rs
        return rs

    # -- scoring ----------------------------------------------------------------------------
    def scores(self, thetas: np.ndarray, k: int = 0, items: np.ndarray | None = None,
               precision: str | None = None) -> np.ndarray:
        """VSTOI of every (row, item) pair: array (n_rows, n_items_scored); ``precision``
        overrides the objective's own."""
        thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
        idx = self.batch(k) if items is None else np.asarray(items, dtype=np.int64)
        packed = self._subset(idx)
        n_frames, C = packed.n_frames, self.config.n_channels
        shape = (len(thetas), n_frames, C)
        offsets = np.concatenate([packed.offsets[:-1] + m * n_frames for m in range(len(thetas))]
                                 + [[len(thetas) * n_frames]]).astype(np.int64)
        rs = self._reference_set(idx, len(thetas))
        if _forward_maxima is not None:
            M = self.config.output_maxima or C
            if self._maxima is None or self._maxima[0].shape != (len(thetas), n_frames, M):
                self._maxima = (np.empty((len(thetas), n_frames, M), dtype=np.int8),
                                np.empty((len(thetas), n_frames, M)))  # reused across calls
            chans, vals = _forward_maxima(thetas, self.config, packed,
                                          precision=precision or self.precision, out=self._maxima)
            out = rs.vstoi_maxima(chans, vals, self.ace_params, offsets=offsets,
                                  extended=self.extended)
            return out.reshape(len(thetas), idx.size)
        if self._buffers is None or self._buffers[0].shape != shape:  # reused: no 100 MB
            self._buffers = (np.empty(shape), np.empty((shape[0] * n_frames, C)))  # allocations
        decoded, env = self._buffers
        forward_many(thetas, self.config, packed, out=decoded)
        envelopes(decoded.reshape(shape[0] * n_frames, C), self.ace_params, out=env)
        out = rs.vstoi_envelopes(env, self._freqs, int(self.ace_params.hop), offsets=offsets,
                                 extended=self.extended)
        return out.reshape(len(thetas), idx.size)

    def __call__(self, thetas: np.ndarray, k: int = 0) -> np.ndarray:
        """Mean VSTOI per row of ``thetas`` (n, p) on the items of iteration ``k``."""
        return self.scores(thetas, k).mean(axis=1)

    def evaluate(self, theta: np.ndarray) -> np.ndarray:
        """VSTOI of each item (all items, no mini-batch) for one parameter vector, by the
        float64 codec whatever the objective's precision (the figure a model is reported by)."""
        return self.scores(theta[None, :], items=np.arange(self.n_items), precision="float64")[0]
