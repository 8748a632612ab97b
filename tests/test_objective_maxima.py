"""VstoiObjective on the compact path (FRAE kept maxima -> ReferenceSet.vstoi_maxima) equals the
dense path (decoded pattern -> envelopes -> vstoi_envelopes).

The maxima are made here with NumPy from ``forward_many``'s dense output (the m largest entries of
each row in ascending channel order, the ``pa_ci.codec.frae.forward_maxima`` contract), so the test does
not depend on the FRAE's own compact kernel.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from conftest import speechlike
from pa_ci.train import objective as O
from pa_ci.chain.ace import ace
from pa_ci.codec.frae import FraeConfig, init_params
from naive.codec import numpy_forward_maxima


@pytest.fixture(scope="module")
def items():
    out = []
    for i, seconds in enumerate((1.5, 2.2, 1.1)):
        x = speechlike(seconds, seed=i)
        out.append(SimpleNamespace(clean=x, pattern=ace(x, 16000)))
    return out


@pytest.mark.parametrize("extended", [False, True])
@pytest.mark.parametrize("maxima", [8, 0])
def test_compact_objective_equals_dense(items, monkeypatch, extended, maxima):
    config = FraeConfig(output_maxima=maxima)
    thetas = np.stack([init_params(config, seed) for seed in (1, 2)])
    monkeypatch.setattr(O, "_forward_maxima", None)
    dense = O.VstoiObjective(items, config, extended=extended).scores(thetas)
    monkeypatch.setattr(O, "_forward_maxima", numpy_forward_maxima)
    compact_obj = O.VstoiObjective(items, config, extended=extended)
    compact = compact_obj.scores(thetas)
    assert compact.shape == (2, len(items))
    np.testing.assert_allclose(compact, dense, rtol=0, atol=1e-13)
    # mini-batches and evaluate() go through the same path
    np.testing.assert_allclose(compact_obj.evaluate(thetas[1]), dense[1], rtol=0, atol=1e-13)
    np.testing.assert_allclose(compact_obj.scores(thetas, items=np.array([2, 0])),
                               dense[:, [2, 0]], rtol=0, atol=1e-13)
