"""The flat parameter vector: one float64 array ``theta`` holds every parameter of a model.

DECISIONS.md ("FRAE codec"): parameters live in ONE flat array with a named layout, so that
pruning, masks and SPSA perturbations (paper Eq. 4-7) are plain array operations on it. A
:class:`Layout` names consecutive slices of ``theta``; each slice (a :class:`TensorSpec`) has a
shape and two tags:

- ``part``: ``encoder``, ``decoder`` or ``codebook`` (pruning scopes ``whole`` / ``decoder``);
- ``kind``: ``weight`` (matrix weights, the only prunable parameters, paper §II-A), ``bias`` or
  ``codebook`` (never pruned).

The layout knows nothing of any model's maths (``pa_ci.codec.frae`` builds its layout) nor of
files (:mod:`pa_ci.codec.model_file` saves and loads a theta with its layout).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import ParameterError

__all__ = ["PARTS", "KINDS", "TensorSpec", "Layout"]

#: Tags of a tensor: which network part it belongs to, and what kind of parameter it is.
PARTS = ("encoder", "decoder", "codebook")
KINDS = ("weight", "bias", "codebook")


# --------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a :class:`Layout`: ``theta[offset:offset + size]`` reshaped to ``shape``."""

    name: str
    shape: tuple[int, ...]
    part: str
    kind: str
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def stop(self) -> int:
        return self.offset + self.size

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.stop)


def _selection(value: str | Iterable[str] | None, allowed: Sequence[str], what: str) -> set[str] | None:
    """``None`` (everything), one name, or several names, checked against ``allowed``."""
    if value is None:
        return None
    names = {value} if isinstance(value, str) else set(value)
    unknown = sorted(n for n in names if n not in allowed)
    if unknown:
        raise ParameterError(f"unknown {what} {', '.join(map(repr, unknown))}; "
                             f"expected one of {', '.join(allowed)}")
    return names


class Layout:
    """Named slices of one flat parameter vector, packed in the given order without gaps.

    ``Layout([(name, shape, part, kind), ...])``; ``part`` in :data:`PARTS`, ``kind`` in
    :data:`KINDS`. Immutable; equal when the tensor specs are equal.
    """

    __slots__ = ("tensors", "size", "names", "_by_name")

    def __init__(self, tensors: Sequence[tuple[str, tuple[int, ...], str, str]]) -> None:
        specs: list[TensorSpec] = []
        by_name: dict[str, TensorSpec] = {}
        offset = 0
        for entry in tensors:
            try:
                name, shape, part, kind = entry
            except (TypeError, ValueError):
                raise ParameterError(f"layout entry {entry!r}; expected (name, shape, part, kind)")
            if not isinstance(name, str) or not name:
                raise ParameterError(f"layout tensor name {name!r}; expected a non-empty string")
            if name in by_name:
                raise ParameterError(f"layout tensor {name!r} appears twice")
            if isinstance(shape, (int, np.integer)):
                shape = (shape,)
            try:
                shape_t = tuple(int(d) for d in shape)
                ok = all(int(d) == d and not isinstance(d, bool) for d in shape) and len(shape_t) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok or any(d < 1 for d in shape_t):
                raise ParameterError(f"layout tensor {name!r} has shape {shape!r}; "
                                     "expected a tuple of positive integers")
            if part not in PARTS:
                raise ParameterError(f"layout tensor {name!r} has part {part!r}; "
                                     f"expected one of {', '.join(PARTS)}")
            if kind not in KINDS:
                raise ParameterError(f"layout tensor {name!r} has kind {kind!r}; "
                                     f"expected one of {', '.join(KINDS)}")
            spec = TensorSpec(name, shape_t, part, kind, offset)
            specs.append(spec)
            by_name[name] = spec
            offset = spec.stop
        object.__setattr__(self, "tensors", tuple(specs))
        object.__setattr__(self, "size", offset)
        object.__setattr__(self, "names", tuple(s.name for s in specs))
        object.__setattr__(self, "_by_name", by_name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Layout is immutable")

    # --- container protocol
    def __getitem__(self, name: str) -> TensorSpec:
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise ParameterError(f"unknown tensor {name!r}; the layout has "
                                 f"{', '.join(self.names)}") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._by_name

    def __iter__(self) -> Iterator[TensorSpec]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Layout):
            return NotImplemented
        return self.tensors == other.tensors

    def __hash__(self) -> int:
        return hash(self.tensors)

    def __repr__(self) -> str:
        return f"Layout({len(self)} tensors, size {self.size})"

    # --- views on theta
    def _check_theta(self, theta: np.ndarray) -> np.ndarray:
        if not isinstance(theta, np.ndarray):
            raise ParameterError(f"theta must be a numpy array of shape ({self.size},), "
                                 f"got {type(theta).__name__}")
        if theta.shape != (self.size,):
            raise ParameterError(f"theta has shape {theta.shape}; the layout needs ({self.size},)")
        return theta

    def view(self, theta: np.ndarray, name: str) -> np.ndarray:
        """Tensor ``name`` of ``theta`` as a reshaped view: writes to it change ``theta``.

        Works for any dtype (e.g. a boolean mask laid out like ``theta``).
        """
        spec = self[name]
        return self._check_theta(theta)[spec.slice].reshape(spec.shape)

    def views(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """All tensors of ``theta`` as views, in layout order."""
        self._check_theta(theta)
        return {s.name: theta[s.slice].reshape(s.shape) for s in self.tensors}

    def mask(self, parts: str | Iterable[str] | None = None, kinds: str | Iterable[str] | None = None,
             names: str | Iterable[str] | None = None) -> np.ndarray:
        """Boolean ``(size,)``: True on the tensors whose part, kind and name are all selected.

        Each selector is ``None`` (all), one string or several; unknown values are an error.
        """
        parts_s = _selection(parts, PARTS, "part")
        kinds_s = _selection(kinds, KINDS, "kind")
        names_s = _selection(names, self.names, "tensor")
        out = np.zeros(self.size, dtype=bool)
        for s in self._selected(parts_s, kinds_s, names_s):
            out[s.slice] = True
        return out

    def _selected(self, parts_s, kinds_s, names_s=None) -> list[TensorSpec]:
        return [s for s in self.tensors
                if (parts_s is None or s.part in parts_s) and (kinds_s is None or s.kind in kinds_s)
                and (names_s is None or s.name in names_s)]

    def count(self, parts: str | Iterable[str] | None = None,
              kinds: str | Iterable[str] | None = None) -> int:
        """Number of parameters in the selected parts and kinds (``None`` = all)."""
        return sum(s.size for s in self._selected(_selection(parts, PARTS, "part"),
                                                  _selection(kinds, KINDS, "kind")))

    def flatten(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Pack ``{name: array}`` (every tensor, exact shapes, nothing else) into a new float64 theta."""
        extra = sorted(set(arrays) - set(self.names))
        if extra:
            raise ParameterError(f"unknown tensors {', '.join(map(repr, extra))}; the layout has "
                                 f"{', '.join(self.names)}")
        theta = self.zeros()
        for s in self.tensors:
            if s.name not in arrays:
                raise ParameterError(f"tensor {s.name!r} is missing (shape {s.shape})")
            a = np.asarray(arrays[s.name])
            if a.shape != s.shape:
                raise ParameterError(f"tensor {s.name!r} has shape {a.shape}; expected {s.shape}")
            theta[s.slice] = a.ravel()
        return theta

    def zeros(self) -> np.ndarray:
        """A float64 theta of zeros."""
        return np.zeros(self.size, dtype=np.float64)

    # --- serialisation
    def to_dict(self) -> dict:
        """JSON-able description: ``{"tensors": [{"name", "shape", "part", "kind"}, ...]}``."""
        return {"tensors": [{"name": s.name, "shape": list(s.shape), "part": s.part, "kind": s.kind}
                            for s in self.tensors]}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Layout":
        """Inverse of :meth:`to_dict` (ParameterError on a malformed description)."""
        try:
            entries = d["tensors"]
            if not isinstance(entries, list):
                raise TypeError
            tensors = []
            for e in entries:
                if not isinstance(e.get("shape"), list) or set(e) != {"name", "shape", "part", "kind"}:
                    raise TypeError
                tensors.append((e["name"], tuple(e["shape"]), e["part"], e["kind"]))
        except (KeyError, TypeError, AttributeError):
            raise ParameterError('layout description is malformed; expected {"tensors": [{"name", '
                                 '"shape", "part", "kind"}, ...]}') from None
        return cls(tensors)

    def describe(self) -> list[dict]:
        """One row per tensor: name, shape, part, kind, offset, size (for ``pa-ci report``)."""
        return [{"name": s.name, "shape": s.shape, "part": s.part, "kind": s.kind,
                 "offset": s.offset, "size": s.size} for s in self.tensors]

    def difference(self, other: "Layout") -> str | None:
        """``None`` when equal, else one phrase naming the first tensor of ``self`` that differs
        from ``other`` (the expected layout), e.g. ``"dec.out.W has shape (22, 12), expected (22, 14)"``."""
        if self == other:
            return None
        mine, theirs = self._by_name, other._by_name
        for s in other.tensors:
            if s.name not in mine:
                return f"tensor {s.name} is missing (expected shape {s.shape})"
            m = mine[s.name]
            if m.shape != s.shape:
                return f"{s.name} has shape {m.shape}, expected {s.shape}"
            if (m.part, m.kind) != (s.part, s.kind):
                return f"{s.name} is {m.part}/{m.kind}, expected {s.part}/{s.kind}"
        for s in self.tensors:
            if s.name not in theirs:
                return f"unexpected tensor {s.name} (shape {s.shape})"
        return f"tensors are in another order ({', '.join(self.names)}), expected {', '.join(other.names)}"
