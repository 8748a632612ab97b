"""The protocol's PA stage really optimises Eq. 5/6: the y+ / y- it logs at its first SPSA
iteration equal Eq. 5 recomputed, from scratch, at the two points SPSA evaluated, with the
configured g, n_max (the PA iterations) and lambda. Replacing the pruning-aware objective by the
plain mean VSTOI inside the protocol (or ignoring g, n_max or lambda) makes this test fail."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from pa_ci.codec.coder import SHIPPED_MODEL
from pa_ci.codec.frae import FraeConfig, frae_layout
from pa_ci.codec.model_file import load_model
from pa_ci.data.dataset import build_dataset, default_config
from pa_ci.experiment.protocol import RunSpec, run_protocol
from pa_ci.train.objective import VstoiObjective

LAYOUT = frae_layout(FraeConfig())
G = {"linear": lambda x: x, "quadratic": lambda x: x * x}


def eq5_by_hand(f, theta: np.ndarray, eligible: np.ndarray, rate: float, g: str, n: int,
                n_max: int, lam: float) -> float:
    """f(w) - lam |f(w) - f(w + g(n/n_max) dw_magn(w))| with dw_magn found by sorting |w|."""
    cand = np.flatnonzero(eligible)
    k = int(round(rate * cand.size))                   # DECISIONS.md: k = round(rate x eligible)
    order = sorted(cand, key=lambda i: (abs(theta[i]), i))   # smallest |w|, ties by index
    dw = np.zeros_like(theta)
    dw[order[:k]] = -theta[order[:k]]
    base = f(theta)
    return base - lam * abs(base - f(theta + G[g](n / n_max) * dw))


@pytest.mark.parametrize("g,lam,pa_iters", [("quadratic", 2.0, 4), ("linear", 1.0, 2)])
def test_first_pa_iteration_logs_eq5(tmp_path, monkeypatch, g, lam, pa_iters) -> None:
    tiny = build_dataset(default_config(tiny=True))
    shipped = load_model(SHIPPED_MODEL)
    seen: list[np.ndarray] = []
    real_call = VstoiObjective.__call__

    def spy(self, thetas, k=0):
        # the first SPSA evaluation on the train items (a 1-row call scores the start point):
        # the y+ and y- points come first, their pruned copies after them
        if self._patterns[0] is tiny.train[0].pattern and k == 0 and len(thetas) > 1 and not seen:
            seen.append(np.array(thetas[:2]))
        return real_call(self, thetas, k)

    monkeypatch.setattr(VstoiObjective, "__call__", spy)
    spec = RunSpec(0.7, "whole", "pa", g=g, lam=lam, pa_iters=pa_iters, finetune_iters=0, seed=5)
    run_protocol(shipped, spec, tmp_path / "run", train_items=tiny.train, eval_items=tiny.test)
    with open(tmp_path / "run" / "pa" / "log.csv", newline="") as fh:
        first = next(csv.DictReader(fh))
    assert int(first["k"]) == 0 and seen
    plain = VstoiObjective(tiny.train, FraeConfig())
    f = lambda th: float(plain.evaluate(th).mean())   # noqa: E731
    eligible = np.zeros(LAYOUT.size, dtype=bool)
    for tensor in LAYOUT:                               # scope whole: every matrix weight
        if tensor.kind == "weight":
            eligible[tensor.slice] = True
    theta_plus, theta_minus = seen[0]
    for logged, theta in ((first["y_plus"], theta_plus), (first["y_minus"], theta_minus)):
        expected = eq5_by_hand(f, theta, eligible, 0.7, g, 1, pa_iters, lam)
        assert float(logged) == pytest.approx(expected, abs=2e-6)
        assert abs(expected - f(theta)) > 1e-4     # Eq. 5 is far from the plain VSTOI here
