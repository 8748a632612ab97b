"""VSTOI straight from vocoder envelopes: STOI of the clean speech against the sine-vocoded
stimulation pattern, without building the vocoded signal.

Paper §II-B (Hinrichs & Ostermann; Watkins et al. 2018): VSTOI is STOI (Taal et al. 2011,
Eq. 3-6; ESTOI: Jensen & Taal 2016, Eq. 8-10) of the clean speech against the pattern
resynthesised by the toolbox's sine vocoder, both at the ACE rate (16 kHz, DECISIONS.md). The
score equals ``stoi(clean, vocode(pattern)[:L], fs)`` of :mod:`pa_ci.chain.stoi`; the fast path
runs sine-carrier resynthesis (a vocoder of its own, :func:`._vstoi_one._vocode_runs`, or
:func:`_vocode_maxima_runs` from the kept maxima with the inverse LGF fused) only on the input
samples that feed kept 10 kHz frames, the pystoi polyphase resampler on those samples only
(:mod:`._resample`), the frame-vectorised 512-point FFT and band envelopes (:mod:`._fft`) and
the STOI segment loop, all in Numba; :class:`ReferenceSet` runs many items in parallel
(``numba.prange``).

Differences from the vocoded signal scored by pystoi (none changes a score by more than ~1e-13
on real speech):

* VSTOI skips the vocoder's peak normalisation: STOI is invariant to a global gain of the processed
  signal (per-segment scaling and normalised correlations, Taal et al. 2011 Eq. 3-5), up to the
  ``+EPS`` guards (relative effects ~1e-16 / band level). Tests prove the equality numerically.
* The fast path reduces the carrier phase exactly (f n mod fs); a naive ``sin(2 pi f n / fs)``
  rounds its ~1e5 rad argument (~4e-11 sample error). Both agree with pystoi far inside 1e-6.

Wiring VSTOI (DECISIONS.md: clean speech vs vocoded pattern, both at 16 kHz)::

    ref = Reference(clean_16k, 16000)                      # once per item
    ref.vstoi_envelopes(E, centre_frequencies, hop)        # E = vocoder envelopes (K x 22)
    refs = ReferenceSet([ref, ...])                         # once per dataset
    refs.vstoi_envelopes([E_1, E_2, ...], centre_frequencies, hop)   # one score per item

E must cover the clean length (K * hop >= len(clean)); trim the clean signal first if a pattern is
shorter. The ESTOI variant (``extended=True``) is exact too but not tuned (about 3x the STOI core).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numba
import numpy as np
from numba import njit, prange
from numba.typed import List

from ._stoi_kernels import N_SEGMENT, NUMBAND, TOO_SHORT_SCORE
from ._vstoi_one import (_analysis, _Carriers, _carrier_tables, _score_vocoded, _scratch,
                         _vstoi_item)
from .stoi import Reference, _signal
from ..errors import ParameterError

if TYPE_CHECKING:
    from .ace import AceParams

__all__ = ["vstoi", "vstoi_of_pattern", "ReferenceSet"]

# The kernels of one item, their argument groups (:class:`._vstoi_one._Carriers`,
# :class:`._vstoi_one._Analysis`) and Reference.vstoi_envelopes's fast path are :mod:`._vstoi_one`.


# --- the clean side of many items ----------------------------------------------------------------

class _PackedReferences(NamedTuple):
    """The clean side of many :class:`~pa_ci.chain.stoi.Reference` items in flat arrays: item i
    has runs r16_off[i]:r16_off[i+1] (and r10_off), kept frames ks_off[i]:..., band columns
    xs_off[i]:... and segment columns xm_off[i]:... ."""
    lengths: np.ndarray    # (n,) clean length at fs
    lengths10: np.ndarray  # (n,) at 10 kHz
    valid: np.ndarray      # (n,) enough frames for STOI
    order: np.ndarray      # (n,) the items longest first
    runs16: np.ndarray     # (R16, 2) input samples the resampler reads (Reference.needed_runs)
    r16_off: np.ndarray
    runs10: np.ndarray     # (R10, 2) 10 kHz samples that feed the STFT
    r10_off: np.ndarray
    ks: np.ndarray         # kept frame starts (Reference.kept_starts)
    ks_off: np.ndarray
    xb: np.ndarray         # (NUMBAND, sum T_i) clean band envelopes (Reference.x_bands)
    xs_off: np.ndarray
    xnorm: np.ndarray      # (NUMBAND, sum M_i) clean segment statistics (Reference.x_stats)
    xmean: np.ndarray
    xcn: np.ndarray
    xm_off: np.ndarray


# --- Numba kernels -------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _exp_series(y):
    """Degree-10 Taylor polynomial of exp(y) about 0 (Horner); |y| <= 0.2: truncation < 3e-16."""
    return 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6 + y * (1.0 / 24 + y * (1.0 / 120 + y * (
        1.0 / 720 + y * (1.0 / 5040 + y * (1.0 / 40320 + y * (1.0 / 362880
                                                          + y * (1.0 / 3628800))))))))))


@njit(cache=True, fastmath={"contract"})
def _inverse_lgf_values(v, a, b, base, gain, sc, c0, ec, nsq, out):
    """out[u - a] = inverse LGF of v[u], u in [a, b): base + gain ((1 + alpha)^v - 1) with v
    clipped to [0, 1], and 0 for v <= 0 (as :func:`pa_ci.chain.vocoder.envelopes`); NaN/Inf are the
    caller's to check (:func:`_nonfinite_flag`).

    (1 + alpha)^v = exp(v l), l = log1p(alpha), is evaluated as (exp(c0) exp(y))^(2^nsq) with
    y = v l / 2^nsq - c0, c0 = l / 2^(nsq+1), so |y| <= c0 <= 0.2 (:func:`_lgf_series_args`):
    the Taylor series of :func:`_exp_series`, then nsq squarings. Relative error ~1e-14 (2^nsq
    times the series' rounding; ACE's alpha = 340.8 needs nsq = 4). Unlike libm's exp (~5 ns a
    call here) it vectorises (~0.5 ns a value).
    """
    if nsq == 4:  # the ACE case: one fused pass
        for u in range(a, b):
            x = v[u]
            x = min(max(x, 0.0), 1.0)
            p = ec * _exp_series(x * sc - c0)
            p = p * p
            p = p * p
            p = p * p
            p = p * p
            out[u - a] = base + gain * (p - 1.0) if x > 0.0 else 0.0
        return
    for u in range(a, b):
        x = v[u]
        out[u - a] = ec * _exp_series(min(max(x, 0.0), 1.0) * sc - c0)
    for _ in range(nsq):
        for u in range(b - a):
            out[u] = out[u] * out[u]
    for u in range(a, b):
        out[u - a] = base + gain * (out[u - a] - 1.0) if v[u] > 0.0 else 0.0


def _lgf_series_args(params) -> tuple[float, float, float, float, float, int]:
    """(base, gain, sc, c0, exp(c0), nsq) of :func:`_inverse_lgf_values` for ACE ``params``."""
    alpha = float(params.lgf_alpha)
    base = float(params.lgf_base)
    gain = float(params.lgf_sat - params.lgf_base) / alpha
    ell = math.log1p(alpha)
    nsq = max(4, math.ceil(math.log2(ell / 0.4))) if ell > 0 else 4
    sc = ell / 2.0 ** nsq
    c0 = sc / 2
    return base, gain, sc, c0, math.exp(c0), int(nsq)


@njit(cache=True, fastmath={"reassoc", "contract"})
def _nonfinite_flag(v, a, b):
    """sum(v[a:b] * 0): NaN if a value is NaN or Inf, else 0 (a vectorised check)."""
    chk = 0.0
    for u in range(a, b):
        chk += v[u] * 0.0
    return chk


@njit(cache=True, fastmath={"reassoc", "contract"})
def _vocode_maxima_runs(chans, vals, n_ch, base, gain, sc, c0, ec, nsq, sin_th, cos_th, cs, hop,
                        L, runs16, pad, y16p):
    """:func:`._vstoi_one._vocode_runs` from the M kept channels of each frame, inverse LGF
    fused.

    ``chans`` (K, M) integer channels (strictly ascending per frame, in [0, n_ch)), ``vals`` (K, M)
    their pattern magnitudes; the dense pattern is zero elsewhere. Only frames that touch
    ``runs16`` are read and get the inverse LGF (:func:`_inverse_lgf_values`, one vectorised pass
    per run). A frame's hop samples (``cs`` as in :func:`._vstoi_one._vocode_runs`) are the sum
    of its M carriers, four channels per read-modify-write of the output (a frame cut by a run
    boundary goes through a scratch row). Returns 0 if all is well, 1 if a read value is NaN/Inf,
    2 if a read frame's channels are out of range or not strictly ascending (nothing is then
    indexed out of bounds).
    """
    K, M = chans.shape
    vflat = vals.ravel()
    buf = np.empty(hop)
    env = np.empty(0)
    ac = np.empty(M)
    bc = np.empty(M)
    cc = np.empty(M, np.int64)
    chk = 0.0
    for i in range(pad):
        y16p[i] = 0.0
    for i in range(pad + L, y16p.shape[0]):
        y16p[i] = 0.0
    for q in range(runs16.shape[0]):
        a = runs16[q, 0]
        b = runs16[q, 1]
        k0 = a // hop
        k1 = (b - 1) // hop + 1  # K * hop >= L >= b: k1 <= K
        if env.shape[0] < (k1 - k0) * M:
            env = np.empty((k1 - k0) * M)
        chk += _nonfinite_flag(vflat, k0 * M, k1 * M)
        _inverse_lgf_values(vflat, k0 * M, k1 * M, base, gain, sc, c0, ec, nsq, env)
        for k in range(k0, k1):
            prev = -1
            row = (k - k0) * M
            for u in range(M):
                c = np.int64(chans[k, u])
                if c <= prev or c >= n_ch:
                    return 2
                prev = c
                cc[u] = c
                e = env[row + u]
                ac[u] = e * sin_th[k, c]
                bc[u] = e * cos_th[k, c]
            base_i = k * hop
            full = a <= base_i and base_i + hop <= b
            dst = y16p[pad + base_i:pad + base_i + hop] if full else buf
            for r in range(hop):
                dst[r] = 0.0
            u = 0
            while u + 4 <= M:
                c_0 = cs[cc[u], 0]
                s_0 = cs[cc[u], 1]
                c_1 = cs[cc[u + 1], 0]
                s_1 = cs[cc[u + 1], 1]
                c_2 = cs[cc[u + 2], 0]
                s_2 = cs[cc[u + 2], 1]
                c_3 = cs[cc[u + 3], 0]
                s_3 = cs[cc[u + 3], 1]
                a0, b0, a1, b1 = ac[u], bc[u], ac[u + 1], bc[u + 1]
                a2, b2, a3, b3 = ac[u + 2], bc[u + 2], ac[u + 3], bc[u + 3]
                for r in range(hop):
                    dst[r] += (a0 * c_0[r] + b0 * s_0[r] + a1 * c_1[r] + b1 * s_1[r]
                               + a2 * c_2[r] + b2 * s_2[r] + a3 * c_3[r] + b3 * s_3[r])
                u += 4
            while u < M:
                c_0 = cs[cc[u], 0]
                s_0 = cs[cc[u], 1]
                a0, b0 = ac[u], bc[u]
                for r in range(hop):
                    dst[r] += a0 * c_0[r] + b0 * s_0[r]
                u += 1
            if not full:
                for i in range(max(a, base_i), min(b, base_i + hop)):
                    y16p[pad + i] = buf[i - base_i]
    if chk != 0.0:  # NaN: a NaN or Inf value was read
        return 1
    return 0


@njit(cache=True, parallel=True)
def _vstoi_batch(E_list, car, ana, refs, xbar_flat, extended, out):
    """:func:`._vstoi_one._vstoi_item` over all items in parallel. ``E_list`` is a typed list of
    the items' envelope arrays (no copy); the clean-side data are slices of the packed arrays of
    ``refs`` (:class:`_PackedReferences`; item i: kept frames ks_off[i]:ks_off[i+1], band columns
    xs_off[i]:..., segments xm_off[i]:...)."""
    for p in prange(refs.order.shape[0]):
        i = refs.order[p]  # int64 index (prange's own index is unsigned); longest items first
        if not refs.valid[i]:
            out[i] = 1e-5
            continue
        a = refs.xm_off[i]
        b = refs.xm_off[i + 1]
        out[i] = _vstoi_item(
            E_list[i], car, refs.lengths[i], refs.runs16[refs.r16_off[i]:refs.r16_off[i + 1]], ana,
            refs.runs10[refs.r10_off[i]:refs.r10_off[i + 1]], refs.lengths10[i],
            refs.ks[refs.ks_off[i]:refs.ks_off[i + 1]],
            refs.xb[:, refs.xs_off[i]:refs.xs_off[i + 1]], refs.xnorm[:, a:b], refs.xmean[:, a:b],
            refs.xcn[:, a:b], xbar_flat[a:b] if extended else xbar_flat[0:0], extended)


@njit(cache=True, parallel=True)
def _vstoi_maxima_batch(chans, vals, row_off, n_ch, lgf, nsq, car, ana, refs, xbar_flat, extended,
                        out, status, scratch):
    """:func:`_vstoi_batch` from kept maxima: item i is rows row_off[i]:row_off[i+1] of
    ``chans``/``vals`` (R, M); :func:`_vocode_maxima_runs` applies the inverse LGF (``lgf`` =
    base, gain, sc, c0, exp(c0)) to the frames it reads. ``status[i]``: its return code (a
    nonzero code leaves out[i] = NaN). ``scratch``: :class:`._vstoi_one._Scratch`, a row per
    thread."""
    base, gain, sc, c0, ec = lgf[0], lgf[1], lgf[2], lgf[3], lgf[4]
    pad = ana.G.shape[1] + 1
    for p in prange(refs.order.shape[0]):
        i = refs.order[p]
        status[i] = 0
        if not refs.valid[i]:
            out[i] = 1e-5
            continue
        L = refs.lengths[i]
        tid = numba.get_thread_id()
        y16p = scratch.y16p[tid, :L + 2 * pad]
        st = _vocode_maxima_runs(chans[row_off[i]:row_off[i + 1]], vals[row_off[i]:row_off[i + 1]],
                                 n_ch, base, gain, sc, c0, ec, nsq, car.sin_th, car.cos_th, car.cs,
                                 car.hop, L, refs.runs16[refs.r16_off[i]:refs.r16_off[i + 1]], pad,
                                 y16p)
        status[i] = st
        if st != 0:
            out[i] = np.nan
            continue
        a = refs.xm_off[i]
        b = refs.xm_off[i + 1]
        out[i] = _score_vocoded(
            y16p, pad, ana, refs.runs10[refs.r10_off[i]:refs.r10_off[i + 1]], refs.lengths10[i],
            refs.ks[refs.ks_off[i]:refs.ks_off[i + 1]],
            refs.xb[:, refs.xs_off[i]:refs.xs_off[i + 1]], refs.xnorm[:, a:b], refs.xmean[:, a:b],
            refs.xcn[:, a:b], xbar_flat[a:b] if extended else xbar_flat[0:0], extended,
            scratch.y10[tid], scratch.frames[tid], scratch.yb[tid])


# --- public API ----------------------------------------------------------------------------------

class ReferenceSet:
    """Many :class:`Reference` items packed into flat arrays for parallel VSTOI (``numba.prange``).

    All references must share one sample rate. Build once per dataset; call
    :meth:`vstoi_envelopes` as often as needed (SPSA evaluates it twice per iteration).
    """

    def __init__(self, references: Sequence[Reference]) -> None:
        refs = list(references)
        if not refs:
            raise ParameterError("ReferenceSet needs at least one Reference")
        if any(not isinstance(r, Reference) for r in refs):
            raise ParameterError("ReferenceSet takes Reference objects")
        rates = {r.fs for r in refs}
        if len(rates) != 1:
            raise ParameterError(f"all references must share one sample rate, got {sorted(rates)}")
        self.references = refs
        self.fs: int = refs[0].fs
        n = len(refs)
        self.lengths = np.array([r.length for r in refs], dtype=np.int64)

        def offsets(sizes):
            return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

        runs = [r.needed_runs() if r.valid else (np.zeros((0, 2), np.int64),) * 2 for r in refs]
        ks = [r.kept_starts if r.valid else np.zeros(0, np.int64) for r in refs]
        stats = [r.x_stats for r in refs]
        xnorm, xmean, xcn = (
            np.ascontiguousarray(np.concatenate([s[i] for s in stats], axis=1)) for i in range(3))
        self._packed = _PackedReferences(
            lengths=self.lengths,
            lengths10=np.array([r.length10 for r in refs], dtype=np.int64),
            valid=np.array([r.valid for r in refs], dtype=np.bool_),
            # items longest first; with chunk size 1 the threads pick them up dynamically
            order=np.argsort(-self.lengths, kind="stable").astype(np.int64),
            runs16=np.ascontiguousarray(np.concatenate([b for _, b in runs]), dtype=np.int64),
            r16_off=offsets([len(b) for _, b in runs]),
            runs10=np.ascontiguousarray(np.concatenate([a for a, _ in runs]), dtype=np.int64),
            r10_off=offsets([len(a) for a, _ in runs]),
            ks=np.ascontiguousarray(np.concatenate(ks), dtype=np.int64),
            ks_off=offsets([len(k) for k in ks]),
            xb=np.ascontiguousarray(np.concatenate([r.x_bands for r in refs], axis=1)),
            xs_off=offsets([r.x_bands.shape[1] for r in refs]),
            xnorm=xnorm, xmean=xmean, xcn=xcn,
            xm_off=offsets([s[0].shape[1] for s in stats]))
        self._valid = self._packed.valid
        self._xbar: np.ndarray | None = None
        self._analysis = _analysis(self.fs)
        self._tables: dict = {}
        self.n_items = n
        self._scratch_rows = None

    def _scratch(self):
        """The per-thread scratch of the batched kernels (:func:`._vstoi_one._scratch`), made
        on first use with a row for every thread Numba may run (rows never used are never
        touched, so they cost address space only)."""
        if self._scratch_rows is None:
            p = self._packed
            self._scratch_rows = _scratch(numba.config.NUMBA_NUM_THREADS,
                                          int(p.lengths.max()), int(p.lengths10.max()),
                                          int(max(np.diff(p.ks_off).max() - 1, 0)),
                                          self._analysis)
        return self._scratch_rows

    def __len__(self) -> int:
        return self.n_items

    def _estoi_clean(self) -> np.ndarray:
        if self._xbar is None:
            parts = [r.estoi_segments if r.valid else np.zeros((0, NUMBAND, N_SEGMENT))
                     for r in self.references]
            self._xbar = np.ascontiguousarray(np.concatenate(parts))
        return self._xbar

    def _item_list(self, envelopes, n_ch: int, hop: int, offsets) -> List:
        """The items' envelope arrays as a ``numba.typed.List`` of C-contiguous float64 views."""
        if offsets is not None:
            E = np.ascontiguousarray(envelopes, dtype=np.float64)
            off = np.asarray(offsets, dtype=np.int64)
            if E.ndim != 2 or off.shape != (self.n_items + 1,) or off[0] != 0 or off[-1] != len(E) \
                    or np.any(np.diff(off) < 0):
                raise ParameterError("stacked envelopes need a 2-D array and offsets of length "
                                     f"{self.n_items + 1} running from 0 to the number of rows")
            items = [E[off[i]:off[i + 1]] for i in range(self.n_items)]
        else:
            items = [np.ascontiguousarray(e, dtype=np.float64) for e in envelopes]
            if len(items) != self.n_items:
                raise ParameterError(f"expected {self.n_items} envelope arrays, got {len(items)}")
        for i, e in enumerate(items):
            if e.ndim != 2 or e.shape[1] != n_ch:
                raise ParameterError(f"item {i}: envelopes must have shape (frames, {n_ch}) to "
                                     f"match the carrier frequencies, got {e.shape}")
            if e.shape[0] * hop < self.lengths[i]:
                raise ParameterError(f"item {i}: {e.shape[0]} frames x hop {hop} is shorter than "
                                     f"its clean reference ({self.lengths[i]} samples)")
        return List(items)

    def _run_batch(self, E_list, carriers: _Carriers, xbar, extended, out) -> None:
        _vstoi_batch(E_list, carriers, self._analysis, self._packed, xbar, bool(extended), out)

    def vstoi_envelopes(self, envelopes: Sequence[np.ndarray] | np.ndarray,
                        freqs: Sequence[float] | np.ndarray, hop: int, *,
                        offsets: np.ndarray | None = None, extended: bool = False) -> np.ndarray:
        """VSTOI of every item, one score per item (see :meth:`Reference.vstoi_envelopes`).

        ``envelopes``: a sequence of (K_i, C) arrays, or one stacked (sum K_i, C) array with
        ``offsets`` (n_items + 1 row offsets). Neither form is copied (float64 C-contiguous input
        is used as is). Items whose reference is too short score 1e-5 (one ``RuntimeWarning`` per
        call, as pystoi). Raises :class:`ParameterError` when a score is not finite (NaN/Inf in
        the envelopes where they are read).
        """
        f = np.ascontiguousarray(freqs, dtype=np.float64).ravel()
        if int(hop) != hop or hop < 1:
            raise ParameterError(f"hop must be a positive integer, got {hop!r}")
        hop = int(hop)
        E_list = self._item_list(envelopes, f.size, hop, offsets)
        key = (f.tobytes(), hop)
        if key not in self._tables:
            n_k = int(-(-int(self.lengths.max()) // hop))
            self._tables[key] = _carrier_tables(f, hop, self.fs, n_k)
        carriers = _Carriers(*self._tables[key], hop)
        xbar = self._estoi_clean() if extended else np.zeros((0, NUMBAND, N_SEGMENT))
        out = np.empty(self.n_items)
        with numba.parallel_chunksize(1):  # dynamic scheduling, longest items first
            self._run_batch(E_list, carriers, xbar, extended, out)
        return self._checked(out, "envelopes contain")

    def vstoi_maxima(self, chans: np.ndarray, vals: np.ndarray, params: AceParams | None = None, *,
                     offsets: np.ndarray | None = None, extended: bool = False) -> np.ndarray:
        """VSTOI of every item from the kept maxima of a stimulation pattern (compact input).

        ``chans`` / ``vals``: arrays of one shape (..., M), read as R = size / M rows (frames) of
        M entries: ``chans`` the M kept channels of each frame (any integer dtype, int8 is used
        as is; strictly ascending, in [0, n_channels)), ``vals`` their pattern magnitudes (float64
        used as is), the dense (R, n_channels) pattern being zero elsewhere (e.g.
        :func:`pa_ci.codec.frae.forward_maxima` gives (n, N, M)). ``offsets`` (n_items + 1,): item i is
        rows offsets[i]:offsets[i+1] (may be omitted for a single item). ``params``: the
        :class:`~pa_ci.chain.ace.AceParams` giving the carrier centres, hop and loudness growth
        (default ACE).

        Equals ``vstoi_envelopes(envelopes(dense, params), params.centre_frequencies,
        params.hop, offsets=offsets)`` (tested to ~1e-15): the inverse LGF (same clipping to
        [0, 1], 0 stays 0) is fused into the vocoder and applied only to the values of the
        frames the kept STOI frames read, with a vectorised exponential (relative error ~1e-14,
        :func:`_inverse_lgf_values`). Raises :class:`ParameterError` for bad shapes or offsets,
        for channels out of range or not ascending in a frame that is read, and for NaN/Inf
        values that are read (unread frames are not checked).
        """
        if params is None:
            from .ace import default_params
            params = default_params()
        ch = np.asarray(chans)
        va = np.asarray(vals)
        if ch.shape != va.shape or ch.ndim < 1 or ch.shape[-1] < 1:
            raise ParameterError(f"chans and vals must have one shape (..., M), got {ch.shape} "
                                 f"and {va.shape}")
        if ch.dtype.kind not in "iu":
            raise ParameterError(f"chans must be integers (channel numbers), got {ch.dtype}")
        if va.dtype.kind != "f":
            raise ParameterError(f"vals must be floats (pattern magnitudes), got {va.dtype}")
        f = np.ascontiguousarray(params.centre_frequencies, dtype=np.float64).ravel()
        n_ch, M = f.size, ch.shape[-1]
        if M > n_ch:
            raise ParameterError(f"{M} maxima per frame but only {n_ch} channels")
        ch = np.ascontiguousarray(ch).reshape(-1, M)
        va = np.ascontiguousarray(va, dtype=np.float64).reshape(-1, M)
        R = ch.shape[0]
        if offsets is None:
            if self.n_items != 1:
                raise ParameterError(f"offsets (n_items + 1 = {self.n_items + 1} row offsets) "
                                     "are needed for more than one item")
            off = np.array([0, R], dtype=np.int64)
        else:
            off = np.asarray(offsets)
            if off.shape != (self.n_items + 1,) or off.dtype.kind not in "iu" or off[0] != 0 \
                    or off[-1] != R or np.any(np.diff(off) < 0):
                raise ParameterError("maxima need integer offsets of length "
                                     f"{self.n_items + 1} running from 0 to the number of rows "
                                     f"({R})")
            off = np.ascontiguousarray(off, dtype=np.int64)
        hop = int(params.hop)
        short = np.flatnonzero(np.diff(off) * hop < self.lengths)
        if short.size:
            i = int(short[0])
            raise ParameterError(f"item {i}: {off[i + 1] - off[i]} frames x hop {hop} is shorter "
                                 f"than its clean reference ({self.lengths[i]} samples)")
        key = (f.tobytes(), hop)
        if key not in self._tables:
            n_k = int(-(-int(self.lengths.max()) // hop))
            self._tables[key] = _carrier_tables(f, hop, self.fs, n_k)
        carriers = _Carriers(*self._tables[key], hop)
        base, gain, sc, c0, ec, nsq = _lgf_series_args(params)
        lgf = np.array([base, gain, sc, c0, ec])
        xbar = self._estoi_clean() if extended else np.zeros((0, NUMBAND, N_SEGMENT))
        out = np.empty(self.n_items)
        status = np.zeros(self.n_items, dtype=np.int64)
        with numba.parallel_chunksize(1):  # dynamic scheduling, longest items first
            _vstoi_maxima_batch(ch, va, off, n_ch, lgf, nsq, carriers, self._analysis,
                                self._packed, xbar, bool(extended), out, status, self._scratch())
        bad = np.flatnonzero(status == 2)
        if bad.size:
            raise ParameterError(f"item(s) {bad.tolist()[:10]}: a frame's channels are out of "
                                 f"range 0..{n_ch - 1} or not strictly ascending")
        return self._checked(out, "pattern values contain")

    def _checked(self, out: np.ndarray, what: str) -> np.ndarray:
        """``out`` after the checks of both paths: a non-finite score is an error (cheaper than
        scanning every input first; unread frames cannot matter), too-short items a warning."""
        bad = np.flatnonzero(~np.isfinite(out))
        if bad.size:
            raise ParameterError(f"item(s) {bad.tolist()[:10]}: {what} NaN or Inf (or overflow) "
                                 "where they reach the score")
        if not np.all(self._valid):
            warnings.warn(f"{int(np.sum(~self._valid))} item(s) have fewer than {N_SEGMENT} STFT "
                          f"frames after silent-frame removal; they score {TOO_SHORT_SCORE} "
                          "like pystoi", RuntimeWarning, stacklevel=3)
        return out


def vstoi(clean: np.ndarray, pattern: np.ndarray, fs: int, params: AceParams | None = None,
          extended: bool = False) -> float:
    """VSTOI: STOI of the clean speech against the sine-vocoded stimulation ``pattern``.

    Paper §II-B (Hinrichs & Ostermann; Watkins et al. 2018): the pattern is resynthesised by the
    toolbox's sine vocoder (:mod:`pa_ci.chain.vocoder`) and compared with the clean speech by STOI, both
    at the ACE rate ``params.fs`` (16 kHz) and trimmed to the shorter length (DECISIONS.md).
    ``clean`` at ``fs`` is resampled to ``params.fs`` first. Uses the fast path
    (:meth:`Reference.vstoi_envelopes`), equal to ``stoi(clean, vocode(pattern)[:L], 16000)``.
    For many patterns against the same speech, build a :class:`Reference` once instead.
    """
    from .ace import default_params
    from .audio import resample

    params = params or default_params()
    x = resample(_signal(clean, "clean"), fs, params.fs)
    if np.ndim(pattern) == 2:  # the vocoded pattern is K * hop samples long (bad shapes: envelopes says)
        x = x[: np.shape(pattern)[0] * params.hop]
    return vstoi_of_pattern(Reference(x, int(params.fs)), pattern, params, extended=extended)


def vstoi_of_pattern(reference: Reference, pattern: np.ndarray, params: AceParams,
                     extended: bool = False) -> float:
    """VSTOI of a stimulation ``pattern`` against a prepared clean ``reference`` (at ``params.fs``).

    The pattern is turned into the vocoder's envelopes (inverse LGF, :func:`pa_ci.chain.vocoder.envelopes`)
    and scored with :meth:`Reference.vstoi_envelopes` at the band centres and hop of ``params``.
    """
    from .vocoder import envelopes

    return reference.vstoi_envelopes(envelopes(pattern, params), params.centre_frequencies,
                                     params.hop, extended=extended)
