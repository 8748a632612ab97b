"""The batched FRAE kernels load from Numba's disk cache in a new process (no compile at start-up).

They once were parallel closures over the unit kernels, whose cache key differs in every process
(see the notes of ``pa_ci.codec._kernels``): every command compiled them again, about 5 s each.
The probe runs ``forward`` and ``decode`` in two fresh interpreters: the first may compile and
fill the cache, the second must find every kernel there and compile none.
"""
from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, numpy as np, pa_ci.api
from pa_ci.codec import frae
from pa_ci.codec.frae import _config_kernels
c = pa_ci.api.load()
pat = np.random.default_rng(0).random((50, c.config.n_channels))
o = frae.forward(c.theta, c.config, pat)
frae.decode(c.theta, c.config, o.indices)
print(json.dumps({name: [sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values())]
                  for name, d in _config_kernels(c.config)._asdict().items()}))
"""


def _probe() -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_batched_kernels_load_from_the_disk_cache_in_a_new_process():
    _probe()  # fills the cache if this checkout has not compiled these signatures yet
    stats = _probe()
    assert set(stats) == {"forward_unit", "decode_unit"}
    for name, (hits, misses) in stats.items():
        assert (hits, misses) == (1, 0), f"{name}: {hits} cache hits, {misses} compiles"
