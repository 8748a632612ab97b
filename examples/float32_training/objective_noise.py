"""What float32 does to the SPSA objective: the shipped model's mean train VSTOI in both
precisions, the share of frames whose kept channels differ, and y+ - y- of random SPSA
perturbations in both; written to ``objective_noise.json`` beside this file.

    .venv/bin/python examples/float32_training/objective_noise.py [--perturbations 12]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pa_ci.codec.coder import load_codec
from pa_ci.codec.frae import forward_maxima
from pa_ci.data.dataset import build_dataset, default_config
from pa_ci.train.objective import VstoiObjective
from pa_ci.train.spsa import Gains

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--perturbations", type=int, default=12)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    ds = build_dataset(default_config())
    codec = load_codec()
    cfg, theta = codec.config, codec.theta
    o64 = VstoiObjective(ds.train, cfg)
    o32 = VstoiObjective(ds.train, cfg, precision="float32")
    ch64, _ = forward_maxima(theta[None], cfg, o64._packed_all)
    ch32, _ = forward_maxima(theta[None], cfg, o64._packed_all, precision="float32")
    c = Gains().c
    rng = np.random.default_rng(a.seed)
    d64, d32 = [], []
    for _ in range(a.perturbations):
        delta = rng.choice([-1.0, 1.0], theta.size) * c   # c_0 of the paper's gains
        pair = np.stack([theta + delta, theta - delta])
        y64, y32 = o64(pair), o32(pair)
        d64.append(y64[0] - y64[1])
        d32.append(y32[0] - y32[1])
    d64, d32 = np.array(d64), np.array(d32)
    out = {"model_hash": codec.hash, "dataset_key": ds.record()["key"], "c": c,
           "mean_train_vstoi": {"float64": float(o64(theta[None])[0]),
                                "float32": float(o32(theta[None])[0])},
           "frames_with_other_kept_channels": float(np.mean(np.any(ch64 != ch32, axis=2))),
           "perturbations": a.perturbations, "seed": a.seed,
           "y_diff_float64": d64.tolist(), "y_diff_float32": d32.tolist(),
           "correlation": float(np.corrcoef(d64, d32)[0, 1]),
           "rms_difference": float(np.sqrt(np.mean((d64 - d32) ** 2))),
           "rms_float64": float(np.sqrt(np.mean(d64 ** 2)))}
    path = HERE / "objective_noise.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    tmp.replace(path)
    print(json.dumps({k: out[k] for k in ("mean_train_vstoi", "frames_with_other_kept_channels",
                                          "correlation", "rms_difference", "rms_float64")}))


if __name__ == "__main__":
    main()
