"""Write the theta of a ``pa-ci train`` run's checkpoint as a model file, so that a next stage
can start from it with ``pa-ci train --init MODEL`` (e.g. with a smaller step gain).

    .venv/bin/python examples/base_model/checkpoint_model.py RUN -o MODEL.npz

The model's meta records the run folder's name, its iteration k and the checkpoint's gains.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pa_ci.codec.frae import FraeConfig, frae_layout
from pa_ci.codec.model_file import save_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    cfg = json.loads((args.run / "config.json").read_text())
    config = FraeConfig.from_dict(cfg["frae"])
    with np.load(args.run / "checkpoint.npz", allow_pickle=False) as z:
        header = json.loads(str(z["header"][()]))
        theta = np.array(z["theta"])
    meta = {"from_checkpoint": args.run.name, "k": int(header["k"]),
            "gains": cfg["train"]["gains"], "seed": cfg["train"]["seed"],
            "dataset": {"key": cfg["dataset"]["key"], "split": cfg["dataset"]["split"]}}
    path = save_model(args.output, theta, frae_layout(config), config.to_dict(), meta)
    print(json.dumps({"model": str(path), "k": meta["k"]}))


if __name__ == "__main__":
    main()
