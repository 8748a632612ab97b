"""pa_ci.prune.magnitude: magnitude masks (Eq. 2-4); pa_ci.prune.pruning_aware: perturbation
functions (Eq. 6), the PA objective (Eq. 5)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from naive.prune import naive_pruned
from pa_ci.errors import ParameterError
from pa_ci.codec.frae import FraeConfig, frae_layout, init_params
from pa_ci.prune.magnitude import (eligible_mask, magnitude_mask, n_pruned, part_counts, part_totals,
                                   prune, pruned_indices, pruning_direction, sparsity_table)
from pa_ci.prune.pruning_aware import PERTURBATIONS, PruningAwareObjective, perturbation_scale

CFG = FraeConfig()
LAYOUT = frae_layout(CFG)
SMALL = FraeConfig(n_channels=4, enc_hidden=2, dec_hidden=3, latent_dim=2, codebook_size=4,
                   output_maxima=0)
SMALL_LAYOUT = frae_layout(SMALL)


# Values drawn from a small set, so ties are frequent; the same magnitudes with both signs.
small_values = st.sampled_from([0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 0.25, 2.0, -3.0, 1e-9])
thetas = st.lists(small_values, min_size=SMALL_LAYOUT.size, max_size=SMALL_LAYOUT.size).map(
    lambda v: np.array(v, dtype=np.float64))
rates = st.floats(0.0, 1.0, allow_nan=False)
scopes = st.sampled_from(["whole", "decoder", "encoder"])


def test_eligible_is_matrix_weights_of_the_scope() -> None:
    whole = eligible_mask(LAYOUT, "whole")
    dec = eligible_mask(LAYOUT, "decoder")
    enc = eligible_mask(LAYOUT, "encoder")
    assert whole.sum() == 3108 and dec.sum() == 980 and enc.sum() == 2128
    assert np.array_equal(whole, dec | enc) and not np.any(dec & enc)
    for spec in LAYOUT.tensors:
        sl = spec.slice
        assert whole[sl].all() == (spec.kind == "weight")
        assert dec[sl].all() == (spec.kind == "weight" and spec.name.startswith("dec."))
        assert not whole[sl].any() or spec.kind == "weight"   # never biases or the codebook


def test_n_pruned_rounds_and_rejects_bad_rates() -> None:
    assert n_pruned(0.55, 980) == 539 and n_pruned(0.05, 3108) == 155 and n_pruned(1.0, 7) == 7
    for bad in (1.5, -0.1, float("nan"), "x"):
        with pytest.raises(ParameterError, match="rate"):
            n_pruned(bad, 10)
    with pytest.raises(ParameterError, match="scope"):
        eligible_mask(LAYOUT, "nowhere")


@settings(max_examples=200, deadline=None)
@given(theta=thetas, rate=rates, scope=scopes)
def test_magnitude_mask_matches_naive_reference(theta, rate, scope) -> None:
    eligible = eligible_mask(SMALL_LAYOUT, scope)
    k = n_pruned(rate, eligible.sum())
    keep = magnitude_mask(theta, SMALL_LAYOUT, scope, rate)
    assert set(np.flatnonzero(~keep)) == naive_pruned(theta, k, eligible)
    assert (~keep).sum() == k                      # exactly k pruned
    assert keep[~eligible].all()                   # scope respected


@settings(max_examples=200, deadline=None)
@given(theta=thetas, r1=rates, r2=rates, scope=scopes)
def test_masks_nest_as_the_rate_grows(theta, r1, r2, scope) -> None:
    lo, hi = sorted((r1, r2))
    keep_lo = magnitude_mask(theta, SMALL_LAYOUT, scope, lo)
    keep_hi = magnitude_mask(theta, SMALL_LAYOUT, scope, hi)
    assert np.all(keep_hi <= keep_lo)              # pruned at lo => pruned at hi


@settings(max_examples=100, deadline=None)
@given(theta=thetas, rate=rates, scope=scopes)
def test_prune_is_w_plus_direction_and_leaves_the_rest(theta, rate, scope) -> None:
    pruned, keep = prune(theta, SMALL_LAYOUT, scope, rate)
    dw = pruning_direction(theta, ~keep)           # Eq. 4
    assert np.array_equal(theta + dw, pruned)      # Eq. 3
    assert np.all(pruned[~keep] == 0) and not np.signbit(pruned[~keep]).any()
    assert np.array_equal(pruned[keep].view(np.int64), theta[keep].view(np.int64))  # bit-exact


def test_ties_are_broken_by_index() -> None:
    theta = np.ones(SMALL_LAYOUT.size)
    eligible = eligible_mask(SMALL_LAYOUT, "whole")
    got = pruned_indices(theta, eligible, 5)
    assert list(got) == list(np.flatnonzero(eligible)[:5])
    theta[np.flatnonzero(eligible)[3]] = -1.0      # same magnitude, other sign: still a tie
    assert list(pruned_indices(theta, eligible, 5)) == list(got)


def test_exact_count_on_the_real_layout() -> None:
    theta = init_params(CFG, 3)
    for scope, n in (("whole", 3108), ("decoder", 980)):
        for rate in np.round(np.arange(0.05, 0.96, 0.05), 2):
            pruned, keep = prune(theta, LAYOUT, scope, rate)
            assert (~keep).sum() == round(rate * n)
            assert np.count_nonzero(pruned[eligible_mask(LAYOUT, scope)]) == n - round(rate * n)


def test_perturbation_functions_eq6() -> None:
    xs = np.linspace(0, 1, 11)
    expect = {"linear": xs, "quadratic": xs ** 2, "cubic": xs ** 3, "sqrt": np.sqrt(xs)}
    for name, g in PERTURBATIONS.items():
        got = np.array([g(x) for x in xs])
        assert np.allclose(got, expect[name], rtol=0, atol=1e-15)
        assert got[0] == 0 and got[-1] == 1
    assert perturbation_scale("quadratic", 500, 1000) == 0.25
    assert perturbation_scale("linear", 2000, 1000) == 1.0
    with pytest.raises(ParameterError, match="perturbation"):
        perturbation_scale("exp", 1, 10)


class CountingObjective:
    """f(w) = -sum((w - target)^2): smooth, so the PA terms have known values."""

    def __init__(self, target: np.ndarray) -> None:
        self.target = target
        self.calls: list[int] = []

    def __call__(self, thetas: np.ndarray, k: int) -> np.ndarray:
        self.calls.append(len(thetas))
        return -np.sum((thetas - self.target) ** 2, axis=1)


@pytest.mark.parametrize("g", sorted(PERTURBATIONS))
@pytest.mark.parametrize("maximize", [True, False])
def test_pa_objective_equals_eq5_computed_naively(g, maximize) -> None:
    rng = np.random.default_rng(0)
    p = SMALL_LAYOUT.size
    eligible = eligible_mask(SMALL_LAYOUT, "whole")
    base = CountingObjective(rng.normal(size=p))
    pa = PruningAwareObjective(base, eligible, 0.6, g=g, n_max=10, lam=0.7, maximize=maximize)
    thetas = rng.normal(size=(4, p))
    for k in (0, 4, 9, 20):
        got = pa(thetas, k)
        assert base.calls[-1] == 8                  # rows and perturbed rows in ONE call
        n = min(k + 1, 10)
        scale = PERTURBATIONS[g](n / 10)
        expect = []
        for w in thetas:
            idx = sorted(naive_pruned(w, round(0.6 * eligible.sum()), eligible))
            w_pert = w.copy()
            w_pert[idx] -= scale * w[idx]           # w + g(n/n_max) dw_magn (Eq. 4, 6)
            f, f_p = base(w[None], k)[0], base(w_pert[None], k)[0]
            s = 1.0 if maximize else -1.0
            expect.append(f - s * 0.7 * abs(f - f_p))   # Eq. 5 (maximize: -L_PA with L = -f)
        assert np.allclose(got, expect, rtol=1e-12, atol=1e-12)


def test_pa_objective_last_iteration_prunes_fully_and_lambda_zero_is_the_base() -> None:
    eligible = eligible_mask(SMALL_LAYOUT, "decoder")
    theta = np.random.default_rng(1).normal(size=(1, SMALL_LAYOUT.size))
    pa = PruningAwareObjective(lambda t, k: t.sum(axis=1), eligible, 0.5, n_max=7)
    pert = pa.perturbed(theta, 6)[0]
    pruned, keep = prune(theta[0], SMALL_LAYOUT, "decoder", 0.5)
    assert np.array_equal(pert, pruned)             # g(1) = 1: exactly the pruned network
    assert np.array_equal(pa.perturbed(theta, -1)[0], theta[0])   # g(0) = 0: no perturbation
    plain = PruningAwareObjective(lambda t, k: t.sum(axis=1), eligible, 0.5, n_max=7, lam=0.0)
    assert plain(theta, 3)[0] == theta.sum()
    pa(theta, 6)
    assert math.isclose(pa.last_perturbed, pruned.sum(), rel_tol=1e-12)
    assert math.isclose(pa.last_base, theta.sum(), rel_tol=1e-12)


def test_pa_objective_rejects_bad_settings() -> None:
    elig = eligible_mask(SMALL_LAYOUT, "whole")
    for kwargs, match in (({"g": "exp"}, "perturbation"), ({"n_max": 0}, "n_max"),
                          ({"lam": -1.0}, "lambda")):
        with pytest.raises(ParameterError, match=match):
            PruningAwareObjective(lambda t, k: t.sum(axis=1), elig, 0.5, **kwargs)
    with pytest.raises(ParameterError, match="rate"):
        PruningAwareObjective(lambda t, k: t.sum(axis=1), elig, 1.5)


def test_sparsity_table_counts() -> None:
    theta, _ = prune(init_params(CFG, 0), LAYOUT, "decoder", 0.5)
    rows = {r["name"]: r for r in sparsity_table(theta, LAYOUT)}
    dec = [r for r in rows.values() if r["part"] == "decoder" and r["kind"] == "weight"]
    assert sum(r["size"] - r["nnz"] for r in dec) == 490
    assert rows["dec.gru.b_ih"]["sparsity"] == 0.0 and rows["enc.gru.W_ih"]["nnz"] == rows["enc.gru.W_ih"]["size"]
    w = theta[LAYOUT["dec.out.W"].slice]
    assert rows["dec.out.W"]["std"] == pytest.approx(w.std()) and rows["dec.out.W"]["mean_abs"] == pytest.approx(np.abs(w).mean())


def test_part_counts_are_the_per_part_totals_of_the_sparsity_table() -> None:
    theta, _ = prune(init_params(CFG, 0), LAYOUT, "decoder", 0.5)
    rows = sparsity_table(theta, LAYOUT)
    counts = part_counts(theta, CFG)
    for part in ("encoder", "decoder"):
        w = [r for r in rows if r["part"] == part and r["kind"] == "weight"]
        assert counts[f"weights_{part}"] == sum(r["size"] for r in w)
        assert counts[f"nonzero_{part}"] == sum(r["nnz"] for r in w)
    assert counts == {"weights_encoder": 2128, "nonzero_encoder": 2128,
                      "weights_decoder": 980, "nonzero_decoder": 490}


def test_part_totals_agree_with_part_counts_and_the_layout() -> None:
    theta, _ = prune(init_params(CFG, 0), LAYOUT, "whole", 0.7)
    totals = part_totals(sparsity_table(theta, LAYOUT))
    counts = part_counts(theta, CFG)
    assert set(totals) == {"encoder", "decoder"}        # the codebook has no matrix weights
    for part in ("encoder", "decoder"):
        t = totals[part]
        assert t["weights"] == counts[f"weights_{part}"]
        assert t["nonzero_weights"] == counts[f"nonzero_{part}"]
        assert t["sparsity"] == pytest.approx(1 - t["nonzero_weights"] / t["weights"])
    assert totals["encoder"]["nonzero_weights"] + totals["decoder"]["nonzero_weights"] == \
        int(np.count_nonzero(theta[eligible_mask(LAYOUT, "whole")]))
