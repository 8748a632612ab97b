"""SPSA: simultaneous perturbation stochastic approximation over one flat parameter vector.

The optimiser of the paper (Hinrichs & Ostermann, arXiv 2502.02424, §II-C, Eq. 7)::

    theta_{k+1} = theta_k + s * a_k * (y+ - y-) / (2 c_k) * Delta_k,    y+- = y(theta_k +- c_k Delta_k)

with s = +1 to maximise (the paper maximises mean VSTOI) and s = -1 to minimise, Delta_k
Rademacher (+-1, p = 1/2 each), a_k = a / (A + k + 1)^alpha and c_k = c / (k + 1)^gamma
(Spall 1998; frae_spsa_research.md §7.1-7.2). Dividing by Delta equals multiplying by it.
:func:`sp_gradient` is the gradient estimate of Eq. 7; :class:`Spsa` takes the step.

This module knows nothing about VSTOI or the FRAE: it optimises a black-box objective

    objective(thetas: (n, p) float64 array, k: int) -> (n,) float64 array

which scores several parameter vectors in ONE call, so y+ and y- (and the 2q rows of averaged
gradients) can run as one parallel batch. All rows of one call must be scored on the same items
(common random numbers); ``k`` is the iteration number, so a mini-batch objective picks its items
from (its own seed, k).

Options (frae_spsa_research.md §7.5):

* ``mask`` (bool, True = trainable): pruned or frozen entries are neither perturbed nor updated.
  Their values stay bit-identical in theta and in every evaluation point (they are copied, never
  recomputed, so even a ``-0.0`` survives).
* ``averaging`` q: q independent Deltas per iteration, 2q rows in one objective call, the gradient
  is the mean of the q estimates (Spall's gradient averaging, qiskit's ``resamplings``).
* ``blocking`` tol (loss-based blocking, Spall's ``spsa_withoptions``): after the candidate update
  one more call scores [candidate, current theta] (same k); the step is rejected (theta kept) if
  the candidate is worse by more than tol (maximise: y_new < y_old - tol; minimise:
  y_new > y_old + tol). k advances either way.
* ``clip`` (lo, hi): the trainable entries of theta and of the evaluation points are clipped to
  the box. The gradient uses the nominal 2 c_k (Spall's reference code), not the realised
  difference of clipped points.
* ``average_from`` k0 (iterate averaging, Polyak & Juditsky 1992; Spall 2003 §7.7): the
  optimiser also keeps the mean of the iterates theta_{k+1} of the iterations k >= k0
  (:attr:`Spsa.iterate_mean`), which averages out the random walk that the noisy steps add
  around the optimum. The iterates themselves are unchanged.

Random numbers: ONE ``numpy.random.Generator(PCG64(seed))`` per optimiser. Each iteration draws
``rng.integers(0, 2, size=(q, p))`` for the FULL p (so the stream does not depend on the mask),
maps it to +-1 and then zeroes the untrainable columns. Same seed + same objective gives a
bit-identical theta; :meth:`Spsa.state_dict` / :meth:`Spsa.from_state` resume bit-identically.

:func:`calibrate` is Spall's semi-automatic gain selection (``gainsSPSA``, §7.3-7.4).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

import numpy as np

from ..errors import ParameterError, TrainingError
from ..validate import is_finite_real, is_int, is_real

__all__ = ["Gains", "Objective", "StepRecord", "Spsa", "calibrate", "sp_gradient"]

Objective = Callable[[np.ndarray, int], np.ndarray]
"""objective(thetas (n, p) float64, k) -> (n,) float64; all rows scored on the same items."""


#: Most SPSA iterations one run or stage may ask for (about 12 days at 0.1 s per iteration): a
#: bound against typos such as 10**30 that would run until killed.
MAX_ITERATIONS = 10_000_000

#: Largest gain a or c that Gains accepts (the paper's are 1 and 0.02; far larger steps only
#: overflow the objective's arithmetic).
MAX_GAIN = 1e6

#: Largest gain exponent alpha or gamma that Gains accepts.
MAX_EXPONENT = 10.0


@dataclass(frozen=True)
class Gains:
    """SPSA gain sequences (paper §II-C with its constants; Spall 1998).

    a_k = a / (A + k + 1)^alpha,  c_k = c / (k + 1)^gamma,  k = 0, 1, 2, ...
    """

    a: float = 1.0
    A: float = 10273.0
    alpha: float = 0.602
    c: float = 0.020765
    gamma: float = 0.101

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not is_finite_real(v):
                raise ParameterError(f"spsa.Gains: {f.name} must be a finite real number, got {v!r}")
            object.__setattr__(self, f.name, float(v))
        if self.a <= 0 or self.c <= 0:
            raise ParameterError(f"spsa.Gains: a and c must be > 0, got a={self.a!r}, c={self.c!r}")
        if self.A < 0 or self.alpha <= 0 or self.gamma < 0:
            raise ParameterError(f"spsa.Gains: need A >= 0, alpha > 0, gamma >= 0, got A={self.A!r}, "
                                 f"alpha={self.alpha!r}, gamma={self.gamma!r}")
        # Spall's exponents are 0.602 and 0.101 (asymptotically optimal 1 and 1/6); beyond a few
        # units (A + k + 1)**alpha overflows for long runs and the step is 0 anyway.
        if self.alpha > MAX_EXPONENT or self.gamma > MAX_EXPONENT:
            raise ParameterError(f"spsa.Gains: alpha and gamma must be at most {MAX_EXPONENT:g}, got "
                                 f"alpha={self.alpha!r}, gamma={self.gamma!r}")
        if self.A > 1e15 or self.a > MAX_GAIN or self.c > MAX_GAIN:
            raise ParameterError(f"spsa.Gains: need A <= 1e15 and a, c <= {MAX_GAIN:g}, got "
                                 f"A={self.A!r}, a={self.a!r}, c={self.c!r}")

    def a_k(self, k: int) -> float:
        """Step gain a / (A + k + 1)^alpha."""
        return self.a / (self.A + k + 1) ** self.alpha

    def c_k(self, k: int) -> float:
        """Perturbation size c / (k + 1)^gamma."""
        return self.c / (k + 1) ** self.gamma

    def to_dict(self) -> dict[str, float]:
        """Plain JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Gains:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        if not isinstance(d, dict):
            raise ParameterError(f"spsa.Gains.from_dict: expected a dict, got {type(d).__name__}")
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ParameterError(f"spsa.Gains.from_dict: unknown keys {sorted(unknown)}, "
                                 f"expected a subset of {[f.name for f in fields(cls)]}")
        return cls(**d)


@dataclass
class StepRecord:
    """What one iteration did (log it every iteration, frae_spsa_research.md §7.6).

    y_plus / y_minus are the means over the q pairs; grad_scale is the mean of
    (y+ - y-) / (2 c_k) over the pairs; step_norm is the L2 norm of the candidate update (also
    when blocking rejected it); theta_norm is the L2 norm of theta after the iteration; y_new is
    the objective at the candidate (nan unless blocking measured it).
    """

    k: int
    a_k: float
    c_k: float
    y_plus: float
    y_minus: float
    grad_scale: float
    accepted: bool
    y_new: float
    step_norm: float
    theta_norm: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (floats may be nan)."""
        return asdict(self)


def _as_theta(theta0: Any, where: str) -> np.ndarray:
    arr = np.asarray(theta0)
    if arr.ndim != 1 or arr.size == 0:
        raise ParameterError(f"{where}: theta must be a non-empty 1-D array, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)) \
            or arr.dtype == np.bool_:
        raise ParameterError(f"{where}: theta must be real floats, got dtype {arr.dtype}")
    arr = np.array(arr, dtype=np.float64)  # always a private copy
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{where}: theta has {int(np.sum(~np.isfinite(arr)))} non-finite entries")
    return arr


def _as_mask(mask: Any, p: int, where: str) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise ParameterError(f"{where}: mask must be a bool array (True = trainable), got dtype {m.dtype}")
    if m.shape != (p,):
        raise ParameterError(f"{where}: mask shape {m.shape} does not match theta shape ({p},)")
    if not m.any():
        raise ParameterError(f"{where}: mask selects no trainable entry")
    return m.copy()


def _as_averaging(q: Any, where: str) -> int:
    if not is_int(q) or q < 1:
        raise ParameterError(f"{where}: averaging must be an integer >= 1, got {q!r}")
    return int(q)


def _as_seed(seed: Any, where: str) -> int:
    if not is_int(seed) or seed < 0:
        raise ParameterError(f"{where}: seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def _draw_deltas(rng: np.random.Generator, q: int, p: int, mask: np.ndarray | None) -> np.ndarray:
    """q Rademacher rows over the full p (stream independent of the mask), untrainable columns 0."""
    delta = 2.0 * rng.integers(0, 2, size=(q, p)) - 1.0
    if mask is not None:
        delta[:, ~mask] = 0.0
    return delta


def _points(theta: np.ndarray, idx: np.ndarray | slice, ck: float, delta: np.ndarray,
            clip: tuple[float, float] | None) -> np.ndarray:
    """Rows theta + ck Delta_j, theta - ck Delta_j (interleaved); untrainable entries copied."""
    q = delta.shape[0]
    x = np.repeat(theta[None, :], 2 * q, axis=0)
    d = ck * delta[:, idx]
    x[0::2, idx] = theta[idx] + d
    x[1::2, idx] = theta[idx] - d
    if clip is not None:
        x[:, idx] = np.clip(x[:, idx], clip[0], clip[1])
    return x


def sp_gradient(y_plus: np.ndarray, y_minus: np.ndarray, c_k: float,
                delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The simultaneous-perturbation gradient estimate of paper Eq. 7, averaged over q Deltas.

    ``y_plus``, ``y_minus`` (q,) are y(theta_k + c_k Delta_j) and y(theta_k - c_k Delta_j) for
    the rows Delta_j of ``delta`` (q, n). Returns ``(g_hat, coef)`` with coef_j =
    (y+_j - y-_j) / (2 c_k) and g_hat = mean_j coef_j Delta_j (n,), so that Eq. 7 is
    theta_{k+1} = theta_k + s a_k g_hat (s = +1 to maximise, -1 to minimise).
    """
    coef = (y_plus - y_minus) / (2.0 * c_k)                 # (q,) = (y+ - y-) / (2 c_k)
    return (coef[:, None] * delta).mean(axis=0), coef      # mean of the q SP gradients


def _evaluate(objective: Objective, x: np.ndarray, k: int, where: str) -> np.ndarray:
    y = np.asarray(objective(x, k), dtype=np.float64)
    if y.shape != (x.shape[0],):
        raise TrainingError(f"{where}: objective returned shape {y.shape} for {x.shape[0]} rows, "
                            f"expected ({x.shape[0]},)")
    if not np.all(np.isfinite(y)):
        raise TrainingError(f"{where}: objective returned non-finite values {y.tolist()} at k={k}")
    return y


class Spsa:
    """SPSA optimiser (paper Eq. 7) over a flat float64 theta; see the module docstring.

    ``theta`` is the current iterate (a copy is returned), ``k`` the number of iterations done.
    Pruned entries (``mask`` False) are neither perturbed nor updated.
    """

    def __init__(self, objective: Objective, theta0: np.ndarray, *, gains: Gains = Gains(),
                 maximize: bool = True, mask: np.ndarray | None = None, seed: int = 0,
                 averaging: int = 1, blocking: float | None = None,
                 clip: tuple[float, float] | None = None, average_from: int | None = None) -> None:
        where = "spsa.Spsa"
        if not callable(objective):
            raise ParameterError(f"{where}: objective must be callable, got {type(objective).__name__}")
        if not isinstance(gains, Gains):
            raise ParameterError(f"{where}: gains must be a spsa.Gains, got {type(gains).__name__}")
        if not isinstance(maximize, (bool, np.bool_)):
            raise ParameterError(f"{where}: maximize must be a bool, got {maximize!r}")
        self._objective = objective
        self._theta = _as_theta(theta0, where)
        p = self._theta.size
        self._mask = _as_mask(mask, p, where)
        self._idx: np.ndarray | slice = slice(None) if self._mask is None else np.flatnonzero(self._mask)
        self.gains = gains
        self.maximize = bool(maximize)
        self.seed = _as_seed(seed, where)
        self.averaging = _as_averaging(averaging, where)
        if blocking is not None and (not is_finite_real(blocking) or blocking < 0):
            raise ParameterError(f"{where}: blocking must be None or a finite tolerance >= 0, got {blocking!r}")
        self.blocking = None if blocking is None else float(blocking)
        self.clip = self._check_clip(clip, where)
        if self.clip is not None:
            t = self._theta[self._idx]
            if np.any(t < self.clip[0]) or np.any(t > self.clip[1]):
                raise ParameterError(f"{where}: trainable theta0 entries lie outside clip box {self.clip}")
        if average_from is not None and (not is_int(average_from) or average_from < 0):
            raise ParameterError(f"{where}: average_from must be None or an iteration >= 0, "
                                 f"got {average_from!r}")
        self.average_from = None if average_from is None else int(average_from)
        self._mean: np.ndarray | None = None
        self.n_averaged = 0
        self._rng = np.random.Generator(np.random.PCG64(self.seed))
        self.k = 0

    @staticmethod
    def _check_clip(clip: Any, where: str) -> tuple[float, float] | None:
        if clip is None:
            return None
        try:
            lo, hi = clip
        except (TypeError, ValueError):
            raise ParameterError(f"{where}: clip must be None or a pair (lo, hi), got {clip!r}") from None
        if not (is_real(lo) and is_real(hi)) or math.isnan(lo) or math.isnan(hi) or not lo < hi:
            raise ParameterError(f"{where}: clip must be a pair of reals with lo < hi, got {clip!r}")
        return (float(lo), float(hi))

    @property
    def theta(self) -> np.ndarray:
        """Copy of the current iterate."""
        return self._theta.copy()

    @property
    def iterate_mean(self) -> np.ndarray | None:
        """Copy of the mean of the iterates after the iterations k >= ``average_from`` (None
        before the first of them, or without ``average_from``)."""
        return None if self._mean is None else self._mean.copy()

    @property
    def mask(self) -> np.ndarray | None:
        """Copy of the trainable mask (None = all trainable)."""
        return None if self._mask is None else self._mask.copy()

    def step(self) -> StepRecord:
        """One SPSA iteration (2q objective rows, plus 2 more if blocking)."""
        k = self.k
        g = self.gains
        ak, ck = g.a_k(k), g.c_k(k)
        q = self.averaging
        idx = self._idx
        theta = self._theta
        delta = _draw_deltas(self._rng, q, theta.size, self._mask)
        x = _points(theta, idx, ck, delta, self.clip)
        y = _evaluate(self._objective, x, k, f"spsa.Spsa.step k={k}")
        yp, ym = y[0::2], y[1::2]
        ghat, coef = sp_gradient(yp, ym, ck, delta[:, idx])   # Eq. 7
        s = 1.0 if self.maximize else -1.0
        cand_t = theta[idx] + (s * ak) * ghat
        if self.clip is not None:
            cand_t = np.clip(cand_t, self.clip[0], self.clip[1])
        if not np.all(np.isfinite(cand_t)):
            raise ParameterError(f"spsa.Spsa.step k={k}: the update would make the parameters "
                                 f"non-finite (a_k = {ak:.3g}, c_k = {ck:.3g}); expected smaller "
                                 "gains a / c")
        step_norm = float(np.linalg.norm(cand_t - theta[idx]))
        accepted, y_new = True, math.nan
        if self.blocking is not None:
            cand = theta.copy()
            cand[idx] = cand_t
            yy = _evaluate(self._objective, np.stack([cand, theta]), k, f"spsa.Spsa.step k={k} (blocking)")
            y_new, y_old = float(yy[0]), float(yy[1])
            if self.maximize:
                accepted = not (y_new < y_old - self.blocking)
            else:
                accepted = not (y_new > y_old + self.blocking)
        if accepted:
            theta[idx] = cand_t
        if self.average_from is not None and k >= self.average_from:
            self.n_averaged += 1
            if self._mean is None:
                self._mean = theta.copy()
            else:   # running mean; untrainable entries stay exactly as in theta
                self._mean[idx] += (theta[idx] - self._mean[idx]) / self.n_averaged
        self.k = k + 1
        return StepRecord(k=k, a_k=ak, c_k=ck, y_plus=float(yp.mean()), y_minus=float(ym.mean()),
                          grad_scale=float(coef.mean()), accepted=accepted, y_new=y_new,
                          step_norm=step_norm, theta_norm=float(np.linalg.norm(theta)))

    def run(self, n_iters: int,
            callback: Callable[[StepRecord, Spsa], bool | None] | None = None) -> list[StepRecord]:
        """Run ``n_iters`` iterations; ``callback(record, self)`` returning True stops early."""
        if not is_int(n_iters) or n_iters < 0:
            raise ParameterError(f"spsa.Spsa.run: n_iters must be an integer >= 0, got {n_iters!r}")
        records: list[StepRecord] = []
        for _ in range(int(n_iters)):
            rec = self.step()
            records.append(rec)
            if callback is not None and callback(rec, self) is True:
                break
        return records

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit-identically.

        ``theta``, ``mask`` and ``iterate_mean`` are arrays (or None; store them in .npz); the
        rest is JSON-able.
        """
        return {
            "theta": self._theta.copy(),
            "mask": self.mask,
            "k": int(self.k),
            "rng_state": self._rng.bit_generator.state,
            "gains": self.gains.to_dict(),
            "options": {"maximize": self.maximize, "averaging": self.averaging,
                        "blocking": self.blocking, "seed": self.seed,
                        "clip": None if self.clip is None else list(self.clip),
                        "average_from": self.average_from},
            "iterate_mean": self.iterate_mean,
            "n_averaged": int(self.n_averaged),
        }

    @classmethod
    def from_state(cls, objective: Objective, state: dict[str, Any]) -> Spsa:
        """Rebuild an optimiser from :meth:`state_dict` (e.g. after a JSON/npz round trip)."""
        where = "spsa.Spsa.from_state"
        need = {"theta", "mask", "k", "rng_state", "gains", "options"}
        if not isinstance(state, dict) or not need <= set(state):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise TrainingError(f"{where}: state must be a dict with keys {sorted(need)}, got {got}")
        opts = state["options"]
        if not isinstance(opts, dict):
            raise TrainingError(f"{where}: options must be a dict, got {type(opts).__name__}")
        try:
            clip = opts.get("clip")
            obj = cls(objective, state["theta"], gains=Gains.from_dict(state["gains"]),
                      maximize=opts.get("maximize", True), mask=state["mask"], seed=opts.get("seed", 0),
                      averaging=opts.get("averaging", 1), blocking=opts.get("blocking"),
                      clip=None if clip is None else tuple(clip),
                      average_from=opts.get("average_from"))
        except ParameterError as exc:
            raise TrainingError(f"{where}: bad state: {exc}") from None
        k = state["k"]
        if not is_int(k) or k < 0:
            raise TrainingError(f"{where}: k must be an integer >= 0, got {k!r}")
        obj.k = int(k)
        mean, n_avg = state.get("iterate_mean"), state.get("n_averaged", 0)
        if mean is not None:
            mean = np.asarray(mean, dtype=np.float64)
            if mean.shape != obj._theta.shape or not is_int(n_avg) or n_avg < 1:
                raise TrainingError(f"{where}: iterate_mean must match theta's shape "
                                    f"{obj._theta.shape} with n_averaged >= 1, got {mean.shape} "
                                    f"and {n_avg!r}")
            obj._mean, obj.n_averaged = mean.copy(), int(n_avg)
        rs = state["rng_state"]
        bg_name = rs.get("bit_generator") if isinstance(rs, dict) else None
        bg_cls = getattr(np.random, bg_name, None) if isinstance(bg_name, str) else None
        if bg_cls is None or not isinstance(bg_cls, type) or not issubclass(bg_cls, np.random.BitGenerator):
            raise TrainingError(f"{where}: rng_state has no known bit_generator, got {bg_name!r}")
        bg = bg_cls()
        try:
            bg.state = rs
        except (TypeError, ValueError, KeyError) as exc:
            raise TrainingError(f"{where}: rng_state cannot be restored: {exc}") from None
        obj._rng = np.random.Generator(bg)
        return obj


def calibrate(objective: Objective, theta0: np.ndarray, *, n_iters: int, target_step: float,
              averaging: int = 1, n_samples: int = 8, mask: np.ndarray | None = None, seed: int = 0,
              c: float | None = None, noise_sigma: float | None = None, alpha: float = 0.602,
              gamma: float = 0.101) -> Gains:
    """Spall's semi-automatic gains (``gainsSPSA``; frae_spsa_research.md §7.3-7.4).

    1. A = 0.1 n_iters (Spall: 0.1 x loss evaluations / (2q) = 0.1 x iterations).
    2. c: given, else max(sigma / sqrt(q), 1e-4) with sigma = ``noise_sigma`` or, if None, the
       sample std (ddof 1) of y(theta0) over ``n_samples`` calls at k = 0 .. n_samples-1 (one row
       each, so a mini-batch objective shows its batch-to-batch noise). A noise-free objective
       gives c = 1e-4, which is usually too small for a quantised model: pass ``c`` then.
    3. ``n_samples`` SP gradient estimates at theta0 (estimate j: one call at k = j with 2q rows,
       perturbation c, averaged over q); mean|g| = mean over trainable components and estimates
       of |g_j| (Spall's NL = 2 q n_samples loss evaluations).
    4. a = target_step (A + 1)^alpha / mean|g|, so the first step a_0 |g| is about target_step
       per trainable weight.

    Deltas come from ``Generator(PCG64(seed))`` exactly as in :class:`Spsa`. The sign of the
    objective (maximise or minimise) does not matter here.
    """
    where = "spsa.calibrate"
    if not callable(objective):
        raise ParameterError(f"{where}: objective must be callable, got {type(objective).__name__}")
    theta = _as_theta(theta0, where)
    m = _as_mask(mask, theta.size, where)
    idx: np.ndarray | slice = slice(None) if m is None else np.flatnonzero(m)
    q = _as_averaging(averaging, where)
    seed = _as_seed(seed, where)
    if not is_int(n_iters) or n_iters < 1:
        raise ParameterError(f"{where}: n_iters must be an integer >= 1, got {n_iters!r}")
    if not is_int(n_samples) or n_samples < 1:
        raise ParameterError(f"{where}: n_samples must be an integer >= 1, got {n_samples!r}")
    if not is_finite_real(target_step) or target_step <= 0:
        raise ParameterError(f"{where}: target_step must be a finite number > 0, got {target_step!r}")
    for name, v in (("c", c), ("noise_sigma", noise_sigma)):
        if v is not None and (not is_finite_real(v) or v < 0 or (name == "c" and v == 0)):
            raise ParameterError(f"{where}: {name} must be None or a finite number "
                                 f"{'> 0' if name == 'c' else '>= 0'}, got {v!r}")
    A = 0.1 * float(n_iters)
    if c is None:
        if noise_sigma is None:
            if n_samples < 2:
                raise ParameterError(f"{where}: measuring the noise needs n_samples >= 2, got {n_samples}")
            ys = np.array([_evaluate(objective, theta[None, :], j, f"{where} (noise)")[0]
                           for j in range(int(n_samples))])
            noise_sigma = float(np.std(ys, ddof=1))
        c = max(float(noise_sigma) / math.sqrt(q), 1e-4)
    c = float(c)
    rng = np.random.Generator(np.random.PCG64(seed))
    gbar = np.zeros(theta[idx].size)
    for j in range(int(n_samples)):
        delta = _draw_deltas(rng, q, theta.size, m)
        y = _evaluate(objective, _points(theta, idx, c, delta, None), j, f"{where} (gradient)")
        gbar += np.abs(sp_gradient(y[0::2], y[1::2], c, delta[:, idx])[0])
    mean_g = float(np.mean(gbar)) / int(n_samples)
    if not mean_g > 0:
        raise TrainingError(f"{where}: objective did not change under +-c perturbations at theta0 "
                            f"(c={c:g}); cannot set a, pass a larger c")
    a = float(target_step) * (A + 1.0) ** alpha / mean_g
    return Gains(a=a, A=A, alpha=alpha, c=c, gamma=gamma)
