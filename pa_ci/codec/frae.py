"""FRAE: the zero-delay feedback recurrent autoencoder that codes stimulation patterns.

Written from ``specs/frae_spsa_research.md`` §3 (structure, GRU convention, sizes, VQ) and §5
(streaming API), with the defaults of ``specs/DECISIONS.md`` ("FRAE codec"). One frame t, with
all states zero at the start of every item (utterance or stream)::

    s_t = GRU_enc([x_t ; h_{t-1}], s_{t-1})      encoder; h_{t-1} is the decoder state (feedback)
    z_t = W_lat s_t + b_lat                      linear latent (D values)
    i_t = argmin_k ||z_t - C_k||^2               VQ, ties -> lowest k; i_t is all that is sent
    h_t = GRU_dec(C[i_t], h_{t-1})               decoder (the encoder runs the same copy)
    y_t = sigmoid(W_out h_t + b_out)             22 outputs in (0, 1)
    decoded_t = y_t with only the ``output_maxima`` largest kept, the rest 0

GRUs are in the PyTorch reset-after form with two bias vectors and gate row blocks (r, z, n)
(research §3.2): r = sig(W_ir x + b_ir + W_hr h + b_hr), z = sig(W_iz x + b_iz + W_hz h + b_hz),
n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) n + z h. Maxima ties: among equal
outputs the higher channel wins (the lower one is rejected first, as in ACE's maxima selection,
``pa_ci.chain.ace.select_maxima``); ``output_maxima = 0`` keeps all outputs.

The parameters are one flat float64 vector laid out by :func:`frae_layout` (:mod:`pa_ci.codec.layout`).

This module holds the model (config, layout, initial parameters) and its batched passes
(:func:`forward`, :func:`decode`). They run the compiled lane kernels of
:mod:`pa_ci.codec._kernels`, as do the streaming :class:`~pa_ci.codec.stream.Encoder` and
:class:`~pa_ci.codec.stream.Decoder` (with one lane in use), so streaming gives exactly (``==``)
the indices and decoded frames of :func:`forward` and :func:`decode`. exp is a polynomial in
plain float arithmetic (within 1 ulp of ``numpy.exp``, :mod:`pa_ci.codec._exp`), so the codec's
output does not depend on the platform's math library either.

API for the trainer
-------------------
- :func:`pack_patterns` packs a list of patterns once (sparse rows, offsets, longest-first
  order); :func:`forward` and :func:`forward_many` accept the result, so repeated evaluations on
  the same items (SPSA) neither copy nor re-check the inputs.
- :func:`forward_many` runs ``n`` parameter vectors over the same items in ONE parallel pass
  (work units on the threads: each theta's items in as many groups of equal frame counts
  as keep the threads busy, each group run as SIMD lanes of items, see :mod:`pa_ci.codec._kernels`) and
  returns a list of ``n`` :class:`FraeOutput` (one per theta, e.g. ``[out_plus, out_minus]``),
  each equal to :func:`forward` of its theta.
- :func:`forward_maxima` is the same pass returning only the kept channels and their values
  (``(n, N, output_maxima)`` arrays instead of ``(n, N, C)``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache, partial

import numba
import numpy as np

from ..errors import ParameterError
from .config import (DEFAULT_FRAME_RATE, MAX_CHANNELS, MAX_CODEBOOK_SIZE, MAX_HIDDEN,  # noqa: F401
                     MAX_LATENT_DIM, MAX_PARAMETERS, PRECISIONS, FraeConfig, _parameter_count,
                     check_precision)
from ._kernels import _BatchKernels, _batch_kernels, _Net, _Outputs, run_units
from .layout import Layout

__all__ = ["FraeConfig", "FraeOutput", "PackedPatterns", "frae_layout", "init_params",
           "pack_patterns", "forward", "forward_many", "forward_maxima", "decode",
           "DEFAULT_FRAME_RATE"]


@lru_cache(maxsize=32)
def frae_layout(config: FraeConfig) -> Layout:
    """The flat-parameter layout of a FRAE (names, shapes and order fixed; see module docs).

    Encoder GRU input is ``[x_t ; h_{t-1}]`` (channels first, then the decoder state).
    """
    C, He, Hd = config.n_channels, config.enc_hidden, config.dec_hidden
    D, K = config.latent_dim, config.codebook_size
    return Layout([
        ("enc.gru.W_ih", (3 * He, C + Hd), "encoder", "weight"),
        ("enc.gru.W_hh", (3 * He, He), "encoder", "weight"),
        ("enc.gru.b_ih", (3 * He,), "encoder", "bias"),
        ("enc.gru.b_hh", (3 * He,), "encoder", "bias"),
        ("enc.latent.W", (D, He), "encoder", "weight"),
        ("enc.latent.b", (D,), "encoder", "bias"),
        ("codebook", (K, D), "codebook", "codebook"),
        ("dec.gru.W_ih", (3 * Hd, D), "decoder", "weight"),
        ("dec.gru.W_hh", (3 * Hd, Hd), "decoder", "weight"),
        ("dec.gru.b_ih", (3 * Hd,), "decoder", "bias"),
        ("dec.gru.b_hh", (3 * Hd,), "decoder", "bias"),
        ("dec.out.W", (C, Hd), "decoder", "weight"),
        ("dec.out.b", (C,), "decoder", "bias"),
    ])


#: Codebook initialisation spread: N(0, 0.1^2) (the trainer re-seeds it by k-means).
CODEBOOK_INIT_STD = 0.1


def init_params(config: FraeConfig, seed: int) -> np.ndarray:
    """Deterministic initial theta from ``numpy.random.default_rng(seed)``.

    GRU tensors U(-1/sqrt(H), 1/sqrt(H)) with H their hidden size (PyTorch ``nn.GRU`` default),
    dense layers U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (``nn.Linear``), codebook N(0, 0.1^2);
    drawn tensor by tensor in layout order.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed = {seed!r}; expected a non-negative integer")
    layout = frae_layout(config)
    rng = np.random.default_rng(int(seed))
    bound = {"enc.gru": 1 / math.sqrt(config.enc_hidden), "enc.latent": 1 / math.sqrt(config.enc_hidden),
             "dec.gru": 1 / math.sqrt(config.dec_hidden), "dec.out": 1 / math.sqrt(config.dec_hidden)}
    theta = layout.zeros()
    for spec in layout:
        if spec.kind == "codebook":
            theta[spec.slice] = rng.normal(0.0, CODEBOOK_INIT_STD, spec.size)
        else:
            b = bound[spec.name.rsplit(".", 1)[0]]
            theta[spec.slice] = rng.uniform(-b, b, spec.size)
    return theta


# --------------------------------------------------------------------------- kernel inputs
def _units(offsets: np.ndarray, n_thetas: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Work units of the parallel pass (:func:`pa_ci.codec._kernels.run_units`): each theta's
    items split into G groups of about equal frame counts (longest item to the lightest group),
    G such that n_thetas x G is a multiple of the thread count. Returns items (per unit, longest
    first, concatenated), unit_theta and unit_ptr (unit u = items[unit_ptr[u]:unit_ptr[u + 1]]
    of theta unit_theta[u])."""
    threads = numba.get_num_threads()
    G = threads // math.gcd(n_thetas, threads)
    lengths = np.diff(offsets)
    order = _length_order(offsets)
    if G == 1:
        groups = [order]
    else:
        load = [0] * G
        members: list[list[int]] = [[] for _ in range(G)]
        for i in order:
            g = min(range(G), key=load.__getitem__)
            members[g].append(int(i))
            load[g] += int(lengths[i])
        groups = [np.asarray(m, dtype=np.int64) for m in members]
    sizes = [len(g) for g in groups]
    one = np.concatenate(groups).astype(np.int64)
    items = np.tile(one, n_thetas)
    unit_theta = np.repeat(np.arange(n_thetas, dtype=np.int64), G)
    unit_ptr = np.concatenate([[0], np.cumsum(np.tile(sizes, n_thetas))]).astype(np.int64)
    return items, unit_theta, unit_ptr


def _net(thetas: np.ndarray, config: FraeConfig, dtype=np.float64) -> _Net:
    """Kernel tensors (:class:`pa_ci.codec._kernels._Net`) from checked thetas (n, p), in
    ``dtype`` (the kernels compute in the tensors' float type)."""
    layout = frae_layout(config)
    n = thetas.shape[0]
    C = config.n_channels

    def t(name: str) -> np.ndarray:
        spec = layout[name]
        return thetas[:, spec.slice].reshape((n,) + spec.shape)

    e_wih = t("enc.gru.W_ih")
    parts = _Net(
        We=np.concatenate([e_wih[:, :, C:], e_wih[:, :, :C]], axis=2), be=t("enc.gru.b_ih"),
        Ws=t("enc.gru.W_hh"), bs=t("enc.gru.b_hh"), LW=t("enc.latent.W"), lb=t("enc.latent.b"),
        cb=t("codebook"), Whd=t("dec.gru.W_hh"), bhd=t("dec.gru.b_hh"), Q=t("dec.gru.W_ih"),
        bq=t("dec.gru.b_ih"), OW=t("dec.out.W"), ob=t("dec.out.b"))
    return _Net(*(np.ascontiguousarray(a, dtype=dtype) for a in parts))


def _config_kernels(config: FraeConfig) -> _BatchKernels:
    return _batch_kernels(config.n_channels, config.enc_hidden, config.dec_hidden,
                          config.latent_dim, config.codebook_size)


def _check_thetas(thetas, config: FraeConfig, name: str = "theta") -> np.ndarray:
    """(n, p) float64 C-contiguous, finite, p = layout size."""
    size = frae_layout(config).size
    arr = np.asarray(thetas)
    if arr.ndim != 2 or arr.shape[1] != size or arr.shape[0] < 1:
        raise ParameterError(f"{name} has shape {np.shape(thetas)}; the FRAE config needs "
                             f"(n, {size}) with n >= 1")
    if arr.dtype.kind not in "fiu":
        raise ParameterError(f"{name} has dtype {arr.dtype}; expected float64")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} has {int(np.sum(~np.isfinite(arr)))} non-finite values")
    return arr


def _one_theta(theta, config: FraeConfig) -> np.ndarray:
    """A single checked theta (p,) as a (1, p) array."""
    size = frae_layout(config).size
    if np.ndim(theta) != 1 or np.shape(theta)[0] != size:
        raise ParameterError(f"theta has shape {np.shape(theta)}; the FRAE config needs ({size},)")
    return _check_thetas(np.asarray(theta)[None], config)


# --------------------------------------------------------------------------- inputs / outputs
@dataclass(frozen=True, eq=False)
class PackedPatterns:
    """Items packed once for repeated forward passes (make it with :func:`pack_patterns`).

    Frames are stored sparse (CSR, the nonzero channels of each frame): frame t has channels
    ``cols[frame_ptr[t]:frame_ptr[t+1]]`` (ascending) with values ``vals[...]`` (float64).
    ``offsets`` (n_items + 1,) int64: item i = frames offsets[i]..offsets[i+1]-1; ``order``:
    items by decreasing length (ties by index), the parallel schedule.
    """

    frame_ptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    offsets: np.ndarray
    order: np.ndarray
    n_channels: int

    @property
    def n_items(self) -> int:
        return self.offsets.size - 1

    @property
    def n_frames(self) -> int:
        return self.frame_ptr.size - 1

    def dense(self) -> np.ndarray:
        """The frames as a dense (N, C) float64 array."""
        out = np.zeros((self.n_frames, self.n_channels))
        rows = np.repeat(np.arange(self.n_frames), np.diff(self.frame_ptr))
        out[rows, self.cols] = self.vals
        return out


def _check_offsets(offsets, n: int, what: str) -> np.ndarray:
    off = np.asarray(offsets)
    if off.ndim != 1 or off.size < 2 or off.dtype.kind not in "iu":
        raise ParameterError(f"offsets must be a 1-D integer array of n_items + 1 >= 2 values, "
                             f"got {off.dtype} {off.shape}")
    off = off.astype(np.int64)
    if off[0] != 0 or off[-1] != n or np.any(np.diff(off) < 0):
        raise ParameterError(f"offsets must rise from 0 to the number of {what} ({n}); got "
                             f"{off[0]}..{off[-1]}, {'not ' if np.any(np.diff(off) < 0) else ''}"
                             "monotonic")
    return off


def _length_order(offsets: np.ndarray) -> np.ndarray:
    return np.argsort(-np.diff(offsets), kind="stable").astype(np.int64)


def _csr_rows(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nz = frames != 0.0
    frame_ptr = np.zeros(frames.shape[0] + 1, dtype=np.int64)
    np.cumsum(nz.sum(axis=1), out=frame_ptr[1:])
    rows, cols = np.nonzero(nz)  # row-major: ascending channels within a frame
    return frame_ptr, cols.astype(np.int64), np.ascontiguousarray(frames[rows, cols])


def pack_patterns(patterns, n_channels: int | None = None, *, offsets=None) -> PackedPatterns:
    """Pack patterns for :func:`forward`: a list of (K_i, C) arrays, a 3-D (items, K, C) array,
    one (K, C) array (one item), or a stacked (N, C) array with ``offsets``.

    Any real dtype (values normally in [0, 1]); must be finite. ``n_channels`` (C) is checked
    when given. A :class:`PackedPatterns` is returned as it is (after the channel check).
    """
    if isinstance(patterns, PackedPatterns):
        if offsets is not None:
            raise ParameterError("offsets cannot be given with packed patterns")
        if n_channels is not None and patterns.n_channels != n_channels:
            raise ParameterError(f"packed patterns have {patterns.n_channels} channels; the FRAE "
                                 f"config has {n_channels}")
        return patterns
    if isinstance(patterns, np.ndarray) and patterns.ndim == 2:
        stacked = patterns
    elif offsets is not None:
        raise ParameterError("offsets are only allowed with one stacked (N, C) pattern array")
    else:
        if isinstance(patterns, np.ndarray) and patterns.ndim != 3:
            raise ParameterError(f"patterns have shape {patterns.shape}; expected (frames, "
                                 "channels), (items, frames, channels) or a list of (frames, channels)")
        items = [np.asarray(p) for p in patterns]
        if not items:
            raise ParameterError("no patterns given; expected at least one item")
        for k, p in enumerate(items):
            if p.ndim != 2:
                raise ParameterError(f"pattern {k} has shape {p.shape}; expected (frames, channels)")
        widths = sorted({p.shape[1] for p in items})
        if len(widths) > 1:
            raise ParameterError(f"patterns have different channel counts {widths}")
        stacked = np.concatenate(items, axis=0) if len(items) > 1 else items[0]
        offsets = np.concatenate([[0], np.cumsum([p.shape[0] for p in items])])
    if stacked.dtype.kind not in "fiu":
        raise ParameterError(f"patterns have dtype {stacked.dtype}; expected floats in [0, 1]")
    if n_channels is not None and stacked.shape[1] != n_channels:
        raise ParameterError(f"patterns have {stacked.shape[1]} channels; the FRAE config has "
                             f"{n_channels}")
    frames = np.asarray(stacked, dtype=np.float64)
    if not np.all(np.isfinite(frames)):
        raise ParameterError(f"patterns have {int(np.sum(~np.isfinite(frames)))} non-finite values")
    off = _check_offsets([0, frames.shape[0]] if offsets is None else offsets, frames.shape[0],
                         "frames")
    frame_ptr, cols, vals = _csr_rows(frames)
    return PackedPatterns(frame_ptr, cols, vals, off, _length_order(off), int(frames.shape[1]))


@dataclass
class FraeOutput:
    """Result of a forward pass over n_items items with N frames in total.

    ``indices`` (N,) int64 codebook indices; ``decoded`` (N, C) float64 decoded pattern;
    ``offsets`` (n_items + 1,) int64 (item i = rows offsets[i]:offsets[i+1]); ``latents`` (N, D)
    float64 pre-quantisation latents z_t, or None when not requested.
    """

    indices: np.ndarray
    decoded: np.ndarray
    offsets: np.ndarray
    latents: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return self.offsets.size - 1

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, decoded) of item i (views)."""
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.indices[a:b], self.decoded[a:b]


def _kernel_run(thetas: np.ndarray, config: FraeConfig, packed: PackedPatterns,
                out: _Outputs, dtype=np.float64) -> None:
    """Run the forward work units on the threads; outputs with no rows (axis 1 of size 0) are
    skipped."""
    items, unit_theta, unit_ptr = _units(packed.offsets, thetas.shape[0])
    unit = _config_kernels(config).forward_unit
    net = _net(thetas, config, dtype)
    run_units([partial(unit, packed.frame_ptr, packed.cols, packed.vals, packed.offsets, items,
                       unit_ptr[u], unit_ptr[u + 1], net.one(m), config.output_maxima, out.one(m))
               for u, m in enumerate(unit_theta.tolist())])


def _run_forward(thetas: np.ndarray, config: FraeConfig, packed: PackedPatterns,
                 return_latents: bool, out: np.ndarray | None = None) -> list[FraeOutput]:
    n, N = thetas.shape[0], packed.n_frames
    C, D = config.n_channels, config.latent_dim
    idx = np.empty((n, N), dtype=np.int64)
    if out is None:
        dec = np.empty((n, N, C), dtype=np.float64)
    elif out.shape != (n, N, C) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ParameterError(f"out must be a C-contiguous float64 array of shape {(n, N, C)}, "
                             f"got {out.dtype} {out.shape}")
    else:
        dec = out
    lat = np.empty((n, N if return_latents else 0, D), dtype=np.float64)
    _kernel_run(thetas, config, packed, _Outputs(indices=idx, decoded=dec, latents=lat,
                                                 chans=np.empty((n, 0, 0), dtype=np.int8),
                                                 values=np.empty((n, 0, 0))))
    return [FraeOutput(idx[m], dec[m], packed.offsets, lat[m] if return_latents else None)
            for m in range(n)]


def forward(theta: np.ndarray, config: FraeConfig, patterns, *, offsets=None,
            return_latents: bool = False) -> FraeOutput:
    """Encode and decode every item (states reset per item): indices and decoded patterns.

    ``patterns``: anything :func:`pack_patterns` accepts (a list of (K_i, C) arrays, a stacked
    (N, C) array with ``offsets``, or a :class:`PackedPatterns`). Items run in parallel.
    """
    thetas = _one_theta(theta, config)
    packed = pack_patterns(patterns, config.n_channels, offsets=offsets)
    return _run_forward(thetas, config, packed, return_latents)[0]


def forward_many(thetas: np.ndarray, config: FraeConfig, patterns, *, offsets=None,
                 return_latents: bool = False, out: np.ndarray | None = None) -> list[FraeOutput]:
    """:func:`forward` for n parameter vectors ``thetas`` (n, p) over the same items in ONE
    parallel pass; returns n outputs (in the order of ``thetas``) sharing ``offsets``.

    For SPSA: ``out_plus, out_minus = forward_many(np.stack([theta_plus, theta_minus]), ...)``.
    Each output equals :func:`forward` of its theta exactly. ``out``: an (n, N, C) float64
    C-contiguous array to write the decoded patterns into (output m's ``decoded`` is ``out[m]``);
    SPSA reuses one instead of allocating ~100 MB per evaluation.
    """
    arr = _check_thetas(thetas, config, "thetas")
    packed = pack_patterns(patterns, config.n_channels, offsets=offsets)
    return _run_forward(arr, config, packed, return_latents, out)


def forward_maxima(thetas: np.ndarray, config: FraeConfig, patterns, *, offsets=None,
                   precision: str = "float64",
                   out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`forward_many`'s decoded patterns in compact form: ``(chans, vals)``.

    ``chans`` (n, N, M) int8: the M kept channels of each frame in ascending order; ``vals``
    (n, N, M) float64: their decoded values (the numbers ``forward_many(...)[m].decoded`` holds
    at those channels; every other channel is 0 there). M = ``output_maxima`` (sigmoid outputs
    are > 0, so every frame keeps exactly M), or C with chans = 0..C-1 when it is 0.

    ``precision="float32"`` runs the whole pass (weights, states, exp, VQ, maxima) in float32:
    twice the SIMD lanes per vector, for the training objective only. Its encoder and decoder
    still run the same float operations on the same values (the encoder's decoder copy is the
    decoder), but its indices are not those of the float64 codec (:func:`forward`, the
    streaming :mod:`pa_ci.codec.stream`), which stay float64.

    ``out``: ``(chans, vals)`` arrays of those shapes and dtypes (C-contiguous) to write into;
    SPSA reuses one pair instead of faulting in ~40 MB of fresh pages per evaluation.
    """
    check_precision(precision)
    arr = _check_thetas(thetas, config, "thetas")
    packed = pack_patterns(patterns, config.n_channels, offsets=offsets)
    n, N, C = arr.shape[0], packed.n_frames, config.n_channels
    M = config.output_maxima or C
    if out is None:
        chans = np.empty((n, N, M), dtype=np.int8)
        vals = np.empty((n, N, M), dtype=np.float64)
    else:
        chans, vals = out
        for a, dt in ((chans, np.int8), (vals, np.float64)):
            if a.shape != (n, N, M) or a.dtype != dt or not a.flags.c_contiguous:
                raise ParameterError(f"out must be C-contiguous int8 and float64 arrays of shape "
                                     f"{(n, N, M)}, got {a.dtype} {a.shape}")
    _kernel_run(arr, config, packed, _Outputs(indices=np.empty((n, N), dtype=np.int64),
                                              decoded=np.empty((n, 0, C)),
                                              latents=np.empty((n, 0, config.latent_dim)),
                                              chans=chans, values=vals),
                np.dtype(precision))
    return chans, vals


def _pack_indices(indices, codebook_size: int, offsets) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(indices, np.ndarray) and indices.ndim == 1:
        flat = indices
        off = [0, flat.size] if offsets is None else offsets
    elif offsets is not None:
        raise ParameterError("offsets are only allowed with one flat index array")
    else:
        if isinstance(indices, np.ndarray):
            raise ParameterError(f"indices have shape {indices.shape}; expected a 1-D array or a "
                                 "list of them")
        items = [np.asarray(a) for a in indices]
        if not items or any(a.ndim != 1 for a in items):
            raise ParameterError("indices must be a 1-D array or a non-empty list of 1-D arrays")
        flat = np.concatenate(items) if len(items) > 1 else items[0]
        off = np.concatenate([[0], np.cumsum([a.size for a in items])])
    if flat.size and flat.dtype.kind not in "iu":
        raise ParameterError(f"indices have dtype {flat.dtype}; expected integers")
    flat = np.ascontiguousarray(flat, dtype=np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= codebook_size):
        raise ParameterError(f"indices range {flat.min()}..{flat.max()}; the codebook has "
                             f"{codebook_size} entries (0..{codebook_size - 1})")
    return flat, _check_offsets(off, flat.size, "indices")


def decode(theta: np.ndarray, config: FraeConfig, indices, *, offsets=None) -> np.ndarray:
    """Decoder only: codebook indices -> decoded pattern (N, C), states reset per item.

    ``indices``: one 1-D int array (one item, or several with ``offsets``) or a list of them.
    Equals ``forward(...).decoded`` exactly for the indices that forward produced.
    """
    net = _net(_one_theta(theta, config), config).one()
    flat, off = _pack_indices(indices, config.codebook_size, offsets)
    out = np.empty((flat.size, config.n_channels), dtype=np.float64)
    items, _, unit_ptr = _units(off, 1)
    unit = _config_kernels(config).decode_unit
    run_units([partial(unit, flat, off, items, unit_ptr[u], unit_ptr[u + 1], net,
                       config.output_maxima, out) for u in range(unit_ptr.size - 1)])
    return out
