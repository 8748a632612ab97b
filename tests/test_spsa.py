"""SPSA (paper Eq. 7; Spall 1998) against a plain NumPy twin, plus its options and resume.

The twin (naive.train.naive_spsa) re-implements the recursion from the paper/spec in the most
obvious way (loops, one objective row per call) with the documented random draws; the optimiser
must reproduce its iterates bit for bit.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from naive.train import naive_mean_abs_gradient, naive_spsa
from pa_ci.errors import ParameterError, TrainingError
from pa_ci.train.spsa import Gains, Spsa, StepRecord, calibrate, sp_gradient

P = 40


def quadratic(target: np.ndarray, scale: float = 1.0):
    """J(theta) = -scale |theta - target|^2, batched over rows (maximum at target)."""
    def J(X: np.ndarray, k: int) -> np.ndarray:
        return -scale * np.sum((X - target) ** 2, axis=1)
    return J


def noisy_quadratic(target: np.ndarray, sigma: float, seed: int):
    """Quadratic plus independent per-row noise drawn from (seed, k): reproducible, not CRN-free."""
    def J(X: np.ndarray, k: int) -> np.ndarray:
        noise = np.random.default_rng([seed, k]).standard_normal(X.shape[0])
        return -np.sum((X - target) ** 2, axis=1) + sigma * noise
    return J


def iterates(opt: Spsa, n: int) -> list[np.ndarray]:
    out = [opt.theta]
    opt.run(n, callback=lambda rec, o: out.append(o.theta))
    return out


@pytest.fixture
def problem():
    rng = np.random.default_rng(123)
    target = rng.uniform(-1, 1, P)
    theta0 = rng.uniform(-1, 1, P)
    return target, theta0


# --- gains ---------------------------------------------------------------------------------

def test_gain_schedule_paper_constants():
    g = Gains()  # paper §II-C: a=1, A=10273, alpha=0.602, c=0.020765, gamma=0.101
    # reference values computed with decimal at 30 digits
    assert g.a_k(0) == pytest.approx(0.00384532263205192782361281546738, rel=1e-13)
    assert g.c_k(0) == pytest.approx(0.020765, rel=1e-15)
    assert g.a_k(999) == pytest.approx(0.00363640475335886930318677979971, rel=1e-13)
    assert g.c_k(999) == pytest.approx(0.0103355105695876058160984033654, rel=1e-13)


def test_gains_dict_round_trip_and_validation():
    g = Gains(a=0.3, A=12.0, c=0.01)
    assert Gains.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    with pytest.raises(ParameterError):
        Gains(a=0.0)
    with pytest.raises(ParameterError):
        Gains(c=float("nan"))
    with pytest.raises(ParameterError):
        Gains(A=-1.0)
    with pytest.raises(ParameterError):
        Gains.from_dict({"a": 1.0, "b": 2.0})


# --- the recursion -------------------------------------------------------------------------

@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("q", [1, 3])
def test_matches_numpy_twin(problem, maximize, q):
    target, theta0 = problem
    J = quadratic(target, 1.0 if maximize else -1.0)  # always an ascent/descent towards target
    gains = Gains(a=0.05, A=10.0, c=0.05)
    ours = iterates(Spsa(J, theta0, gains=gains, maximize=maximize, seed=7, averaging=q), 30)
    ref = naive_spsa(J, theta0, gains, 7, 30, maximize=maximize, q=q)
    for a, b in zip(ours, ref):
        assert np.array_equal(a, b)
    assert np.linalg.norm(ours[-1] - target) < 0.8 * np.linalg.norm(theta0 - target)  # it moved right


def test_sp_gradient_is_the_eq7_estimate():
    rng = np.random.default_rng(11)
    delta = 2.0 * rng.integers(0, 2, size=(3, 6)) - 1.0
    yp, ym, ck = rng.normal(size=3), rng.normal(size=3), 0.03
    ghat, coef = sp_gradient(yp, ym, ck, delta)
    assert np.array_equal(coef, (yp - ym) / (2 * ck))
    expect = np.mean([(yp[j] - ym[j]) / (2 * ck) * delta[j] for j in range(3)], axis=0)
    np.testing.assert_allclose(ghat, expect, rtol=1e-15, atol=0)


def test_matches_numpy_twin_with_mask(problem):
    target, theta0 = problem
    mask = np.random.default_rng(5).random(P) < 0.6
    J = quadratic(target)
    gains = Gains(a=0.05, A=10.0, c=0.05)
    ours = iterates(Spsa(J, theta0, gains=gains, seed=3, mask=mask, averaging=2), 20)
    ref = naive_spsa(J, theta0, gains, 3, 20, mask=mask, q=2)
    for a, b in zip(ours, ref):
        assert np.array_equal(a, b)


def test_maximize_equals_minimize_negated(problem):
    target, theta0 = problem
    J = noisy_quadratic(target, 0.05, seed=1)
    negJ = lambda X, k: -J(X, k)  # noqa: E731
    gains = Gains(a=0.05, A=10.0, c=0.03)
    a = Spsa(J, theta0, gains=gains, maximize=True, seed=11, averaging=2)
    b = Spsa(negJ, theta0, gains=gains, maximize=False, seed=11, averaging=2)
    for _ in range(25):
        ra, rb = a.step(), b.step()
        assert np.array_equal(a.theta, b.theta)
        assert ra.grad_scale == -rb.grad_scale
    assert not np.array_equal(a.theta, theta0)


def test_converges_on_noisy_quadratic():
    p = 50
    rng = np.random.default_rng(2024)
    target = rng.uniform(-1, 1, p)
    theta0 = np.zeros(p)
    J = noisy_quadratic(target, sigma=0.01, seed=9)
    opt = Spsa(J, theta0, gains=Gains(a=0.1, A=50.0, c=0.05), seed=0)
    recs = opt.run(2000)
    err0 = np.linalg.norm(theta0 - target)
    err = np.linalg.norm(opt.theta - target)
    assert err < 0.05 * err0, (err, err0)
    assert len(recs) == 2000 and [r.k for r in recs[:3]] == [0, 1, 2]
    assert all(r.accepted and math.isnan(r.y_new) for r in recs)


def test_calibrated_gains_converge():
    """calibrate() then run: the gains it returns are usable on a noisy quadratic (p = 50)."""
    p = 50
    rng = np.random.default_rng(77)
    target = rng.uniform(-1, 1, p)
    theta0 = np.zeros(p)
    J = noisy_quadratic(target, sigma=0.01, seed=4)
    gains = calibrate(J, theta0, n_iters=1500, target_step=0.01, c=0.05, n_samples=16, seed=1)
    opt = Spsa(J, theta0, gains=gains, seed=2)
    opt.run(1500)
    assert np.linalg.norm(opt.theta - target) < 0.1 * np.linalg.norm(theta0 - target)


# --- mask ----------------------------------------------------------------------------------

def test_mask_entries_bit_identical_in_points_and_theta():
    p = 60
    rng = np.random.default_rng(8)
    theta0 = rng.normal(size=p)
    mask = rng.random(p) < 0.5
    frozen = np.flatnonzero(~mask)
    theta0[frozen[:5]] = 0.0
    theta0[frozen[5:10]] = -0.0          # a pruned "-0.0" must survive bit for bit
    theta0[frozen[10]] = 1e-300
    bits0 = theta0.view(np.uint64)[~mask].copy()
    target = rng.normal(size=p)
    calls = []

    def J(X, k):
        assert X.dtype == np.float64 and X.shape[1] == p
        assert np.array_equal(X.view(np.uint64)[:, ~mask], np.broadcast_to(bits0, (X.shape[0], bits0.size)))
        calls.append(X.shape[0])
        return -np.sum((X - target) ** 2, axis=1)

    opt = Spsa(J, theta0, gains=Gains(a=0.05, A=10.0, c=0.05), mask=mask, seed=1, averaging=2,
               blocking=0.5, clip=(-5.0, 5.0))
    opt.run(30)
    th = opt.theta
    assert np.array_equal(th.view(np.uint64)[~mask], bits0)
    assert np.all(th[mask] != theta0[mask])   # every trainable entry moved
    assert calls == [4, 2] * 30               # 2q rows, then [candidate, current] for blocking


def test_rng_stream_does_not_depend_on_mask(problem):
    """Delta is drawn for the full p, so a masked run perturbs the kept entries like an unmasked one."""
    target, theta0 = problem
    mask = np.zeros(P, bool)
    mask[::3] = True
    seen = {}

    def recorder(name):
        def J(X, k):
            seen.setdefault(name, []).append(X.copy())
            return -np.sum((X - target) ** 2, axis=1)
        return J

    gains = Gains(a=0.05, A=10.0, c=0.05)
    Spsa(recorder("full"), theta0, gains=gains, seed=4).run(5)
    Spsa(recorder("masked"), theta0, gains=gains, seed=4, mask=mask).run(5)
    for k in range(5):
        # the k-th draw (sign pattern of the + point) agrees on the trainable entries
        d_full = np.sign(seen["full"][k][0] - seen["full"][k][1])
        d_mask = np.sign(seen["masked"][k][0] - seen["masked"][k][1])
        assert np.array_equal(d_full[mask], d_mask[mask])
        assert np.all(d_mask[~mask] == 0)


# --- averaging, blocking, clip -------------------------------------------------------------

@pytest.mark.parametrize("q", [1, 2, 5])
def test_averaging_rows_per_call(problem, q):
    target, theta0 = problem
    rows = []

    def J(X, k):
        rows.append((X.shape[0], k))
        # rows come as (+, -) pairs around theta_k
        mid = 0.5 * (X[0::2] + X[1::2])
        assert np.allclose(mid, mid[0], atol=1e-15)
        return -np.sum((X - target) ** 2, axis=1)

    Spsa(J, theta0, averaging=q, gains=Gains(a=0.05, A=10.0, c=0.05)).run(4)
    assert rows == [(2 * q, k) for k in range(4)]


class Crafted:
    """Gradient calls return the true quadratic; blocking calls return preset [y_cand, y_old]."""

    def __init__(self, target, y_cand, y_old):
        self.target, self.y_cand, self.y_old, self.n = target, y_cand, y_old, 0

    def __call__(self, X, k):
        self.n += 1
        if self.n % 2 == 0:                   # second call of the iteration: blocking
            return np.array([self.y_cand, self.y_old])
        return -np.sum((X - self.target) ** 2, axis=1)


@pytest.mark.parametrize("maximize,y_cand,tol,accepted", [
    (True, 0.8, 0.1, False),    # worse by 0.2 > tol -> reject
    (True, 0.8, 0.3, True),     # worse by 0.2 <= tol -> accept
    (True, 1.2, 0.0, True),     # better -> accept
    (False, 1.2, 0.1, False),   # minimising: higher is worse
    (False, 1.2, 0.3, True),
    (False, 0.8, 0.0, True),
])
def test_blocking_sign_and_tolerance(problem, maximize, y_cand, tol, accepted):
    target, theta0 = problem
    obj = Crafted(target, y_cand, 1.0)
    opt = Spsa(obj, theta0, gains=Gains(a=0.05, A=10.0, c=0.05), maximize=maximize, blocking=tol)
    rec = opt.step()
    assert rec.accepted is accepted
    assert rec.y_new == y_cand and rec.step_norm > 0
    assert opt.k == 1
    assert np.array_equal(opt.theta, theta0) is (not accepted)


def test_blocking_rejects_overshooting_step(problem):
    """A huge a overshoots the quadratic's optimum: real blocking keeps theta_k, without it theta blows up."""
    target, theta0 = problem
    J = quadratic(target)
    gains = Gains(a=50.0, A=0.0, c=0.05)
    blocked = Spsa(J, theta0, gains=gains, blocking=0.0, seed=2)
    recs = blocked.run(5)
    free = Spsa(J, theta0, gains=gains, seed=2)
    free.run(5)
    assert not any(r.accepted for r in recs)
    assert all(r.y_new < J(theta0[None], 0)[0] for r in recs)
    assert np.array_equal(blocked.theta, theta0)
    assert J(free.theta[None], 0)[0] < J(theta0[None], 0)[0]


def test_clip_box_for_theta_and_points(problem):
    """Clipped points and iterates, equal to the twin; the box binds (optimum partly outside)."""
    target, theta0 = problem
    lo, hi = -0.5, 0.5
    theta0 = np.clip(theta0, lo, hi)
    inner = quadratic(3 * target)

    def J(X, k):
        assert X.min() >= lo and X.max() <= hi
        return inner(X, k)

    gains = Gains(a=0.02, A=20.0, c=0.05)
    ours = iterates(Spsa(J, theta0, gains=gains, clip=(lo, hi), seed=2), 100)
    ref = naive_spsa(J, theta0, gains, 2, 100, clip=(lo, hi))
    for a, b in zip(ours, ref):
        assert np.array_equal(a, b)
    th = ours[-1]
    assert np.sum((th == lo) | (th == hi)) >= 5          # the box was active
    assert inner(th[None], 0)[0] > inner(theta0[None], 0)[0]


# --- reproducibility and resume ------------------------------------------------------------

def test_same_seed_same_theta_different_seed_differs(problem):
    target, theta0 = problem
    J = noisy_quadratic(target, 0.05, seed=3)
    a = Spsa(J, theta0, gains=Gains(a=0.05, A=10.0, c=0.05), seed=5)
    b = Spsa(J, theta0, gains=Gains(a=0.05, A=10.0, c=0.05), seed=5)
    c = Spsa(J, theta0, gains=Gains(a=0.05, A=10.0, c=0.05), seed=6)
    for o in (a, b, c):
        o.run(10)
    assert np.array_equal(a.theta, b.theta)
    assert not np.array_equal(a.theta, c.theta)


@pytest.mark.parametrize("opts", [
    {},
    {"mask": "half", "averaging": 2, "blocking": 0.01, "clip": (-2.0, 2.0), "maximize": False},
])
def test_resume_is_bit_identical(problem, tmp_path, opts):
    target, theta0 = problem
    opts = dict(opts)
    if opts.get("mask") == "half":
        opts["mask"] = np.arange(P) % 2 == 0
    sign = -1.0 if opts.get("maximize") is False else 1.0
    J = noisy_quadratic(target, 0.05, seed=3)
    Js = lambda X, k: sign * J(X, k)  # noqa: E731
    gains = Gains(a=0.05, A=10.0, c=0.05)

    whole = Spsa(Js, theta0, gains=gains, seed=9, **opts)
    recs_whole = whole.run(10)

    first = Spsa(Js, theta0, gains=gains, seed=9, **opts)
    recs = first.run(4)
    st = first.state_dict()
    # the caller's storage: arrays in .npz, the rest as JSON
    arrays = {"theta": st["theta"]} | ({} if st["mask"] is None else {"mask": st["mask"]})
    np.savez(tmp_path / "s.npz", **arrays)
    meta = json.loads(json.dumps({k: v for k, v in st.items() if k not in ("theta", "mask")}))
    with np.load(tmp_path / "s.npz") as z:
        state = {"theta": z["theta"], "mask": z["mask"] if "mask" in z else None, **meta}
    second = Spsa.from_state(Js, state)
    assert second.k == 4
    recs += second.run(6)

    assert np.array_equal(second.theta, whole.theta)
    assert [_key(r) for r in recs] == [_key(r) for r in recs_whole]
    assert [r.k for r in recs] == list(range(10))


def _key(r: StepRecord) -> tuple:
    """Record as a tuple with nan made comparable."""
    return tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in r.to_dict().values())


def test_state_dict_is_a_copy(problem):
    target, theta0 = problem
    opt = Spsa(quadratic(target), theta0)
    st = opt.state_dict()
    st["theta"][:] = 99.0
    assert not np.any(opt.theta == 99.0)
    t = opt.theta
    t[:] = 5.0
    assert not np.any(opt.theta == 5.0)
    theta0[0] = 123.0            # the optimiser copied theta0 too
    assert opt.theta[0] != 123.0


def test_from_state_rejects_bad_state(problem):
    target, theta0 = problem
    st = Spsa(quadratic(target), theta0).state_dict()
    with pytest.raises(TrainingError):
        Spsa.from_state(quadratic(target), {"theta": theta0})
    bad = dict(st, rng_state={"bit_generator": "Nope"})
    with pytest.raises(TrainingError):
        Spsa.from_state(quadratic(target), bad)
    bad = dict(st, options=dict(st["options"], averaging=0))
    with pytest.raises(TrainingError):
        Spsa.from_state(quadratic(target), bad)


def test_callback_stops_early(problem):
    target, theta0 = problem
    opt = Spsa(quadratic(target), theta0)
    seen: list[StepRecord] = []
    recs = opt.run(50, callback=lambda r, o: (seen.append(r), r.k == 6)[1])
    assert len(recs) == 7 and opt.k == 7 and seen == recs


# --- calibrate (Spall's gainsSPSA) ---------------------------------------------------------

def test_calibrate_first_step_on_linear_objective():
    """J = theta[0]: every SP gradient component has |g_i| = 1, so a = target (A+1)^alpha exactly
    and the first step moves every trainable entry by target_step."""
    p = 30
    theta0 = np.linspace(-1, 1, p)
    J = lambda X, k: X[:, 0].copy()  # noqa: E731
    g = calibrate(J, theta0, n_iters=500, target_step=0.003, averaging=1, c=0.01, seed=4)
    assert g.A == pytest.approx(50.0, rel=1e-15)          # A = 0.1 N
    assert g.c == 0.01 and g.alpha == 0.602 and g.gamma == 0.101
    assert g.a == pytest.approx(0.003 * 51.0 ** 0.602, rel=1e-12)
    opt = Spsa(J, theta0, gains=g, seed=1)
    opt.step()
    assert np.allclose(np.abs(opt.theta - theta0), 0.003, rtol=1e-9, atol=0)


def test_calibrate_generic_linear_formula():
    """J = w . theta with q = 2: mean|g| recomputed from the same draws (twin of gainsSPSA)."""
    p, q, n, c, N, step = 25, 2, 6, 0.02, 300, 0.01
    rng = np.random.default_rng(0)
    w = rng.normal(size=p)
    theta0 = rng.normal(size=p)
    mask = rng.random(p) < 0.7
    J = lambda X, k: X @ w  # noqa: E731
    g = calibrate(J, theta0, n_iters=N, target_step=step, averaging=q, n_samples=n, c=c, mask=mask, seed=5)
    meang = naive_mean_abs_gradient(J, theta0, c, q, n, mask, seed=5)
    assert g.A == pytest.approx(0.1 * N)
    assert g.a == pytest.approx(step * (0.1 * N + 1) ** 0.602 / meang, rel=1e-10)


def test_calibrate_c_from_noise():
    p = 10
    theta0 = np.zeros(p)
    lin = lambda X, k: X.sum(axis=1)  # noqa: E731
    assert calibrate(lin, theta0, n_iters=100, target_step=0.01, noise_sigma=0.06, averaging=4).c == \
        pytest.approx(0.03)
    assert calibrate(lin, theta0, n_iters=100, target_step=0.01, noise_sigma=0.0).c == 1e-4  # Spall's floor
    assert calibrate(lin, theta0, n_iters=100, target_step=0.01).c == 1e-4  # noise-free measured

    # measured: noise depends on k only (one value per call); std over n_samples calls, ddof 1
    vals = np.array([0.3, -0.1, 0.5, 0.0, 0.2, -0.4, 0.1, 0.6])
    noisy = lambda X, k: X.sum(axis=1) + vals[k]  # noqa: E731
    g = calibrate(noisy, theta0, n_iters=100, target_step=0.01, n_samples=8, averaging=2)
    assert g.c == pytest.approx(np.std(vals, ddof=1) / math.sqrt(2), rel=1e-12)


def test_calibrate_flat_objective_is_an_error():
    with pytest.raises(TrainingError, match="did not change"):
        calibrate(lambda X, k: np.zeros(X.shape[0]), np.zeros(5), n_iters=10, target_step=0.1, c=0.1)


# --- validation ----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    {"theta0": np.zeros((2, 3))},
    {"theta0": np.array([])},
    {"theta0": np.array([1.0, np.nan])},
    {"theta0": np.array(["a", "b"])},
    {"theta0": np.array([True, False])},
    {"mask": np.ones(3, bool)},
    {"mask": np.ones(4, int)},
    {"mask": np.zeros(4, bool)},
    {"averaging": 0},
    {"averaging": 1.5},
    {"blocking": -0.1},
    {"blocking": float("inf")},
    {"clip": (1.0, 0.0)},
    {"clip": (0.5, 2.0)},        # theta0 (zeros) outside the box
    {"seed": -1},
    {"gains": {"a": 1}},
])
def test_bad_parameters_raise_parameter_error(kwargs):
    args = {"theta0": np.zeros(4)} | kwargs
    theta0 = args.pop("theta0")
    with pytest.raises(ParameterError) as exc:
        Spsa(lambda X, k: -np.sum(X ** 2, axis=1), theta0, **args)
    assert "\n" not in str(exc.value) and "spsa" in str(exc.value)


@pytest.mark.parametrize("bad", [
    lambda X, k: np.zeros(X.shape[0] + 1),
    lambda X, k: np.zeros((X.shape[0], 1)),
    lambda X, k: np.full(X.shape[0], np.nan),
])
def test_bad_objective_output_is_training_error(bad):
    with pytest.raises(TrainingError) as exc:
        Spsa(bad, np.zeros(4)).step()
    assert "\n" not in str(exc.value)


def test_calibrate_bad_parameters():
    J = lambda X, k: X.sum(axis=1)  # noqa: E731
    for kw in ({"n_iters": 0, "target_step": 0.1}, {"n_iters": 10, "target_step": 0.0},
               {"n_iters": 10, "target_step": 0.1, "c": 0.0},
               {"n_iters": 10, "target_step": 0.1, "n_samples": 1}):
        with pytest.raises(ParameterError):
            calibrate(J, np.zeros(3), **kw)


# --- iterate averaging ----------------------------------------------------------------------

def test_iterate_mean_is_the_mean_of_the_iterates_and_leaves_them_alone(problem):
    target, theta0 = problem
    J = noisy_quadratic(target, 0.05, seed=3)
    mask = np.arange(P) % 3 != 0
    gains = Gains(a=0.05, A=10.0, c=0.05)
    plain = Spsa(J, theta0, gains=gains, seed=4, mask=mask)
    avg = Spsa(J, theta0, gains=gains, seed=4, mask=mask, average_from=3)
    iterates = []
    for _ in range(10):
        plain.step()
        avg.step()
        iterates.append(avg.theta)
        assert np.array_equal(plain.theta, avg.theta)      # averaging does not steer the run
        if avg.k <= 3:
            assert avg.iterate_mean is None and avg.n_averaged == 0
    assert avg.n_averaged == 7
    expected = np.mean(iterates[3:], axis=0)                # theta_4 .. theta_10
    assert np.allclose(avg.iterate_mean, expected, rtol=0, atol=1e-13)
    assert np.array_equal(avg.iterate_mean[~mask], theta0[~mask])   # frozen entries exactly
    assert not np.allclose(avg.iterate_mean, avg.theta)


def test_iterate_mean_survives_a_resume_bit_identically(problem, tmp_path):
    target, theta0 = problem
    J = noisy_quadratic(target, 0.05, seed=3)
    gains = Gains(a=0.05, A=10.0, c=0.05)
    whole = Spsa(J, theta0, gains=gains, seed=4, average_from=2)
    whole.run(9)
    first = Spsa(J, theta0, gains=gains, seed=4, average_from=2)
    first.run(5)
    st = first.state_dict()
    np.savez(tmp_path / "s.npz", theta=st["theta"], iterate_mean=st["iterate_mean"])
    meta = json.loads(json.dumps({k: v for k, v in st.items() if k not in ("theta", "iterate_mean")}))
    with np.load(tmp_path / "s.npz") as z:
        second = Spsa.from_state(J, {**meta, "theta": z["theta"], "iterate_mean": z["iterate_mean"]})
    second.run(4)
    assert second.n_averaged == whole.n_averaged == 7
    assert np.array_equal(second.iterate_mean, whole.iterate_mean)
    with pytest.raises(TrainingError, match="iterate_mean"):
        Spsa.from_state(J, {**meta, "theta": st["theta"], "iterate_mean": st["iterate_mean"][:3]})
    with pytest.raises(ParameterError, match="average_from"):
        Spsa(J, theta0, average_from=-1)
