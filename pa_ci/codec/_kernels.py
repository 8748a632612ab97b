"""The FRAE's compiled lane kernels: one frame step of encoder, quantiser and decoder on SIMD lanes.

The maths is that of :mod:`pa_ci.codec.frae` (research §3, one frame t)::

    s_t = GRU_enc([x_t ; h_{t-1}], s_{t-1}),  z_t = W_lat s_t + b_lat,  i_t = argmin_k ||z_t - C_k||^2,
    h_t = GRU_dec(C[i_t], h_{t-1}),           y_t = sigmoid(W_out h_t + b_out), the maxima kept.

The inline helpers (``_enc_lanes``, ``_dec_lanes``, ``_out_lanes``, ``_emit``) run it on the lane
arrays (:class:`_LaneArrays`) with the kernel tensors (:class:`_Net`); :func:`_batch_kernels`
builds the batched work units from them, which :func:`run_units` runs on the threads
(:func:`pa_ci.codec.frae.forward` and :func:`~pa_ci.codec.frae.decode`), and
:mod:`pa_ci.codec.stream` the streaming steps (one lane in use), so both do the same float
operations in the same order.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from functools import lru_cache
from typing import Callable, NamedTuple, Sequence

import numpy as np
import numba
from numba import njit

from ._exp import _JIT, _exp, _like

# Layout and why (the tensors are built by pa_ci.codec.frae._net from theta; see _Net):
# - Items are SIMD lanes. A lane block runs _L items side by side; every state, gate and output
#   array is (units, _L) and every product is out[g, l] = b[g] + sum_k W[g, k] x[k, l], summed in
#   increasing k in a register per lane. The loop over lanes vectorises (512-bit vectors of 8
#   float64), each weight is loaded once per block step, and no sum is reordered: every lane does
#   the arithmetic of a one-item scalar loop, in the same order (the same as the earlier
#   one-item-per-thread kernel, bit for bit).
# - The sizes (C, He, Hd, D, K) are closure constants of the kernels made by _batch_kernels (and
#   pa_ci.codec.stream._step_kernels; one set per config, cached on disk like the rest): with
#   constant trip counts LLVM unrolls the sums over k, so the lane loop is innermost and keeps
#   its accumulators in registers. LLVM's loop vectoriser skips loops with a constant trip count
#   below 16, so _L >= 16; 32 ran faster than 16 (fewer loop overheads per frame) although more
#   lanes idle at the end of a unit (12 % vs 6 % on the default train split).
# - Items are sorted longest first; when a lane's item ends the lane takes the next item of its
#   work unit (states reset; _take_next), so unequal lengths waste lanes only at the end of a
#   unit. A work unit is one theta's share of the items (see pa_ci.codec.frae._units), so
#   n thetas x items run in one call.
# - The encoder input x_t is dense over the lanes: the C pattern rows below the decoder state h
#   in one (Hd + C, _L) array, W_ih's columns reordered to (h, x), so one product covers
#   W_ih [h_{t-1}; x_t] in the earlier order (h terms, then the channels ascending). Adding the
#   zero channels leaves every sum as it is (w * 0 = +-0; only the sign of an exact zero can
#   change, which no later operation sees).
# - exp is pa_ci.codec._exp._exp: arithmetic only (1 ulp from numpy.exp), so the loops vectorise
#   and results do not depend on the platform's libm. error_model="numpy": no zero-division
#   branches (the divisors are >= 1).
# - No array slices inside the frame loop (each costs atomic reference counting); the helpers
#   take the lane arrays and tensors by name from their NamedTuples once, before their loops.
#   Elementwise loops touch few rows each: LLVM vectorises a 32-trip loop only when it needs few
#   run-time overlap checks between the arrays (one loop over all GRU rows stayed scalar).
# - Threads: the work units (forward_unit / decode_unit, nogil) run on a thread pool of
#   numba.get_num_threads() threads (run_units), not in a prange loop. A parallel kernel that
#   calls a unit is a closure over the unit's dispatcher, and Numba's cache key hashes a
#   closure's cells, which pickle differently in every process: those kernels missed the disk
#   cache and compiled at every start (~5 s each). Called from Python, every kernel loads from
#   the cache (pa-ci eval, whole process: 6.2 s -> 2.9 s). A call costs ~5 us; the units are
#   ~100 ms each. (Two other ways out failed: the unit's body written into the prange loop gave
#   wrong results in Numba 0.68, and the unit as a global of the kernel aborted when two
#   configs' cached kernels met in one process.)
# The batched kernels and the streaming steps run the same helpers on the same lane arrays (the
# streaming ones with one lane in use): the same float operations in the same order (no
# fast-math, no contraction to FMA), so they agree exactly.

#: Lanes of a lane block (items side by side); a compile-time constant (see above).
_L = 32


# --------------------------------------------------------------------------- named structures
class _Net(NamedTuple):
    """Kernel tensors, built by :func:`pa_ci.codec.frae._net`: of n thetas (leading axis n) or
    of one (:meth:`one`, ``_net_at``); matrices keep their (outputs, inputs) rows, gate row
    blocks (r, z, n)."""

    We: np.ndarray   # (n, 3He, Hd + C)  encoder W_ih, columns reordered to (h, x)
    be: np.ndarray   # (n, 3He)          encoder b_ih
    Ws: np.ndarray   # (n, 3He, He)      encoder W_hh
    bs: np.ndarray   # (n, 3He)          encoder b_hh
    LW: np.ndarray   # (n, D, He)        latent W
    lb: np.ndarray   # (n, D)            latent b
    cb: np.ndarray   # (n, K, D)         codebook
    Whd: np.ndarray  # (n, 3Hd, Hd)      decoder W_hh
    bhd: np.ndarray  # (n, 3Hd)          decoder b_hh
    Q: np.ndarray    # (n, 3Hd, D)       decoder W_ih
    bq: np.ndarray   # (n, 3Hd)          decoder b_ih
    OW: np.ndarray   # (n, C, Hd)        output W
    ob: np.ndarray   # (n, C)            output b

    def one(self, m: int = 0) -> "_Net":
        """The tensors of theta m (no leading axis)."""
        return _Net(*(a[m] for a in self))


class _LaneArrays(NamedTuple):
    """Lane arrays (made by ``_lane_arrays``), each with _L columns, lane l = one item."""

    s: np.ndarray     # (He, _L)          encoder state s
    HX: np.ndarray    # (Hd + C, _L)      decoder state h, then the frame x
    gi: np.ndarray    # (3He, _L)         encoder input gates
    gs: np.ndarray    # (3He, _L)         encoder state gates
    ghd: np.ndarray   # (3Hd, _L)         decoder state gates
    gd: np.ndarray    # (3Hd, _L)         decoder input gates
    cw: np.ndarray    # (D, _L)           codeword of the index
    rz: np.ndarray    # (2 max(He, Hd), _L) GRU scratch
    z: np.ndarray     # (D, _L)           latent
    best: np.ndarray  # (_L,) int64       index (nearest codeword)
    dist: np.ndarray  # (_L,)             its squared distance
    Y: np.ndarray     # (C, _L)           outputs
    cnt: np.ndarray   # (C, _L)           outputs ranking above each (maxima selection)


class _Outputs(NamedTuple):
    """Where the forward kernel writes, leading axis n (thetas); an output with no rows (axis 1
    of size 0) is not written."""

    indices: np.ndarray  # (n, N) int64
    decoded: np.ndarray  # (n, N, C) float64 dense decoded frames
    latents: np.ndarray  # (n, N, D) float64
    chans: np.ndarray    # (n, N, M) int8 kept channels, ascending
    values: np.ndarray   # (n, N, M) float64 their values

    def one(self, m: int = 0) -> "_Outputs":
        """Where theta m's results go (no leading axis)."""
        return _Outputs(*(a[m] for a in self))


class _BatchKernels(NamedTuple):
    """One config's compiled work-unit kernels (run in parallel by :func:`run_units`)."""

    forward_unit: object
    decode_unit: object


@njit(**_JIT)
def _lane_arrays(C, He, Hd, D, dtype):
    """Zeroed lane arrays (:class:`_LaneArrays`) of float type ``dtype`` (the kernel tensors')."""
    return _LaneArrays(np.zeros((He, _L), dtype), np.zeros((Hd + C, _L), dtype),
                       np.zeros((3 * He, _L), dtype), np.zeros((3 * He, _L), dtype),
                       np.zeros((3 * Hd, _L), dtype), np.zeros((3 * Hd, _L), dtype),
                       np.zeros((D, _L), dtype), np.zeros((2 * max(He, Hd), _L), dtype),
                       np.zeros((D, _L), dtype), np.zeros(_L, dtype=np.int64), np.zeros(_L, dtype),
                       np.zeros((C, _L), dtype), np.zeros((C, _L), dtype))


# --------------------------------------------------------------------------- lane helpers
@njit(inline="always", **_JIT)
def _matvec(out, W, b, x, rows, cols):
    """out[g, l] = b[g] + sum_{k < cols} W[g, k] x[k, l] for g < rows, summed in increasing k."""
    for g in range(rows):
        for l in range(_L):
            a = b[g]
            for k in range(cols):
                a += W[g, k] * x[k, l]
            out[g, l] = a


@njit(inline="always", **_JIT)
def _gru(gi, gh, state, rz, H):
    """Reset-after GRU (research §3.2) from gi = W_i x + b_i and gh = W_h h + b_h (gate row blocks
    r, z, n of H rows): state[:H] <- (1 - z) n + z state, in place; scratch rz (>= 2H rows).
    sigmoid(a) = 1 / (1 + exp(-a)), tanh(a) = 2 / (1 + exp(-2a)) - 1, in the arrays' float
    type (constants too: a float literal alone would be float64)."""
    one = _like(rz[0, 0], 1.0)
    two = _like(rz[0, 0], 2.0)
    for j in range(2 * H):
        for l in range(_L):
            rz[j, l] = one / (one + _exp(-(gi[j, l] + gh[j, l])))
    for j in range(H):
        for l in range(_L):  # n, reusing rz's r row (r is not needed again)
            a = gi[2 * H + j, l] + rz[j, l] * gh[2 * H + j, l]
            rz[j, l] = two / (one + _exp(-two * a)) - one
        for l in range(_L):
            z = rz[H + j, l]
            state[j, l] = (one - z) * rz[j, l] + z * state[j, l]


@njit(inline="always", **_JIT)
def _dec_lanes(ln, net, Hd, D):
    """Decoder GRU on every lane: h = HX[:Hd] <- GRU_dec(cb[best[l]], h)."""
    HX, ghd, gd, cw, rz, best, cb = ln.HX, ln.ghd, ln.gd, ln.cw, ln.rz, ln.best, net.cb
    _matvec(ghd, net.Whd, net.bhd, HX, 3 * Hd, Hd)
    for d in range(D):
        for l in range(_L):
            cw[d, l] = cb[best[l], d]
    _matvec(gd, net.Q, net.bq, cw, 3 * Hd, D)
    _gru(gd, ghd, HX, rz, Hd)


@njit(inline="always", **_JIT)
def _enc_lanes(ln, net, C, He, Hd, D, K):
    """One zero-delay encoder step on every lane from x_t in HX[Hd:] and h_{t-1} in HX[:Hd]:
    s_t, z_t, best = i_t (first minimum on ties) and the decoder-state copy h_t in HX[:Hd]."""
    s, HX, gi, gs, rz, z, best, dist = ln.s, ln.HX, ln.gi, ln.gs, ln.rz, ln.z, ln.best, ln.dist
    cb = net.cb
    _matvec(gi, net.We, net.be, HX, 3 * He, Hd + C)     # b_ih + W_ih [h_{t-1}; x_t]
    _matvec(gs, net.Ws, net.bs, s, 3 * He, He)          # b_hh + W_hh s_{t-1}
    _gru(gi, gs, s, rz, He)
    _matvec(z, net.LW, net.lb, s, D, He)                # z = W_lat s + b_lat
    for l in range(_L):
        best[l] = 0
        dist[l] = np.inf
    zero = _like(dist[0], 0.0)
    for k in range(K):                                  # i = argmin_k ||z - C_k||^2
        for l in range(_L):
            acc = zero
            for d in range(D):
                diff = z[d, l] - cb[k, d]
                acc += diff * diff
            nearer = acc < dist[l]   # selects, not branches: the lane loop vectorises
            dist[l] = acc if nearer else dist[l]
            best[l] = k if nearer else best[l]
    _dec_lanes(ln, net, Hd, D)


@njit(inline="always", **_JIT)
def _out_lanes(ln, net, n_max, C, Hd):
    """Output stage on every lane: Y = sigmoid(W_out h + b_out) (C, _L) and, when maxima are
    selected, cnt[c, l] (a float) = how many channels rank above c in the order (value, channel):
    c is kept when cnt < n_max (among equal values the higher channel wins, ACE's maxima rule)."""
    Y, cnt = ln.Y, ln.cnt
    zero = _like(Y[0, 0], 0.0)
    one = _like(Y[0, 0], 1.0)
    _matvec(Y, net.OW, net.ob, ln.HX, C, Hd)
    for c in range(C):
        for l in range(_L):
            Y[c, l] = one / (one + _exp(-Y[c, l]))
    if n_max == 0 or n_max >= C:
        return
    for c in range(C):
        for l in range(_L):
            y = Y[c, l]
            a = zero  # a float count: adds in registers, the compares become masks
            for j in range(C):  # larger channels, or equal and higher ones (ACE's tie rule)
                a += one if Y[j, l] > y or (j > c and Y[j, l] == y) else zero
            cnt[c, l] = a


@njit(inline="always", **_JIT)
def _emit(ln, l, n_max, f, dec_out, ch_out, val_out, C):
    """Lane l's decoded frame into row f of dec_out (dense) and/or of ch_out, val_out (the kept
    channels ascending and their values); an output with no rows is not written."""
    Y, cnt = ln.Y, ln.cnt
    keep_all = n_max == 0 or n_max >= C
    if dec_out.shape[0] > 0:
        for c in range(C):
            dec_out[f, c] = Y[c, l] if keep_all or cnt[c, l] < n_max else 0.0
    if ch_out.shape[0] > 0:
        j = 0
        for c in range(C):  # j < width: NaN outputs (an overflowing theta) rank above nothing
            if (keep_all or cnt[c, l] < n_max) and j < ch_out.shape[1]:
                ch_out[f, j] = c
                val_out[f, j] = Y[c, l]
                j += 1


@njit(inline="always", **_JIT)
def _take_next(offsets, items, nxt, i1, pos, end, l):
    """Lane l takes the next item of items[nxt:i1] that has frames: pos[l], end[l] = its frame
    range. Returns (the new nxt, whether the lane took an item); without one it is left as is."""
    while nxt < i1 and offsets[items[nxt]] == offsets[items[nxt] + 1]:
        nxt += 1                     # empty items have no frames to compute
    if nxt < i1:
        pos[l] = offsets[items[nxt]]
        end[l] = offsets[items[nxt] + 1]
        return nxt + 1, True
    return nxt, False


@njit(inline="always", **_JIT)
def _start_lanes(offsets, items, i0, i1):
    """The first items of items[i0:i1] on the lanes: pos, end (each lane's next frame and the end
    of its item; pos == end: idle), the next item to take and the number of busy lanes."""
    pos = np.zeros(_L, dtype=np.int64)
    end = np.zeros(_L, dtype=np.int64)
    nxt = i0
    active = 0
    for l in range(_L):
        nxt, took = _take_next(offsets, items, nxt, i1, pos, end, l)
        if took:
            active += 1
    return pos, end, nxt, active


@njit(inline="always", **_JIT)
def _next_frame(ln, l, offsets, items, nxt, i1, pos, end, active, He, Hd):
    """Lane l moves on one frame; when its item is done its states reset (s and h) and it takes
    the next item of items[nxt:i1]. Returns (the new nxt, the number of busy lanes)."""
    pos[l] += 1
    if pos[l] == end[l]:
        for k in range(He):
            ln.s[k, l] = 0.0
        for k in range(Hd):
            ln.HX[k, l] = 0.0
        nxt, took = _take_next(offsets, items, nxt, i1, pos, end, l)
        if not took:
            active -= 1
    return nxt, active


# --------------------------------------------------------------------------- batched kernels
@lru_cache(maxsize=None)
def _batch_kernels(C: int, He: int, Hd: int, D: int, K: int) -> _BatchKernels:
    """The compiled batched kernels for one set of sizes (closure constants; see the notes)."""

    @njit(nogil=True, **_JIT)
    def forward_unit(frame_ptr, cols, vals, offsets, items, i0, i1, net, n_max, out):
        """Encoder + decoder over the items items[i0:i1] (longest first) on _L lanes, each item
        from zero states; frame f's results go to row f of the outputs (those with rows)."""
        ln = _lane_arrays(C, He, Hd, D, net.We.dtype)
        HX, z, best = ln.HX, ln.z, ln.best
        idx_out, dec_out, lat_out = out.indices, out.decoded, out.latents
        ch_out, val_out = out.chans, out.values
        pos, end, nxt, active = _start_lanes(offsets, items, i0, i1)
        want_lat = lat_out.shape[0] > 0
        while active > 0:
            for c in range(C):
                for l in range(_L):
                    HX[Hd + c, l] = 0.0
            for l in range(_L):
                if pos[l] < end[l]:
                    f = pos[l]
                    for q in range(frame_ptr[f], frame_ptr[f + 1]):
                        HX[Hd + cols[q], l] = vals[q]
            _enc_lanes(ln, net, C, He, Hd, D, K)
            _out_lanes(ln, net, n_max, C, Hd)
            for l in range(_L):
                if pos[l] == end[l]:
                    continue
                f = pos[l]
                idx_out[f] = best[l]
                if want_lat:
                    for d in range(D):
                        lat_out[f, d] = z[d, l]
                _emit(ln, l, n_max, f, dec_out, ch_out, val_out, C)
                nxt, active = _next_frame(ln, l, offsets, items, nxt, i1, pos, end, active, He, Hd)

    @njit(nogil=True, **_JIT)
    def decode_unit(indices, offsets, items, i0, i1, net, n_max, out):
        """Decoder only over items[i0:i1] on _L lanes (as forward_unit) into out."""
        ln = _lane_arrays(C, He, Hd, D, net.We.dtype)
        best = ln.best
        pos, end, nxt, active = _start_lanes(offsets, items, i0, i1)
        none = np.empty((0, C), dtype=np.int8)
        while active > 0:
            for l in range(_L):
                best[l] = indices[pos[l]] if pos[l] < end[l] else 0
            _dec_lanes(ln, net, Hd, D)
            _out_lanes(ln, net, n_max, C, Hd)
            for l in range(_L):
                if pos[l] == end[l]:
                    continue
                f = pos[l]
                _emit(ln, l, n_max, f, out, none, out, C)
                nxt, active = _next_frame(ln, l, offsets, items, nxt, i1, pos, end, active, He, Hd)

    return _BatchKernels(forward_unit, decode_unit)


# --------------------------------------------------------------------------- parallel units
_POOLS: dict[int, ThreadPoolExecutor] = {}


def run_units(calls: Sequence[Callable[[], None]]) -> None:
    """Run the work units' kernel calls (each a ``forward_unit`` or ``decode_unit`` call, which
    release the GIL) on ``numba.get_num_threads()`` threads, the next unit to the next free thread;
    return when all are done (the first error, if any, is raised)."""
    threads = min(numba.get_num_threads(), len(calls))
    if threads <= 1:
        for call in calls:
            call()
        return
    pool = _POOLS.get(threads)
    if pool is None:
        pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="pa-ci-frae")
    futures = [pool.submit(call) for call in calls]
    try:
        for future in futures:
            future.result()
    except BaseException:  # Ctrl-C while waiting: a running kernel cannot be stopped, so let it
        for future in futures:  # end before the caller reuses (or frees) its output buffers
            future.cancel()
        wait(futures)
        raise
