"""Score a training run's latest state (its model, or its checkpoint while it still runs) on the
default dataset's train and test splits next to the uncoded reference, and append the figures to
``examples/base_model/progress.csv`` (issue: a base model within 0.02 of the ceiling).

    .venv/bin/python examples/base_model/progress.py RUN [--csv examples/base_model/progress.csv]
    .venv/bin/python examples/base_model/progress.py --table     # the README's table from the CSV

RUN is a ``pa-ci train`` run folder, or a model file (e.g. the shipped model; its row has k = 0
and no log figure). The row records the iteration, the run's train VSTOI (log mean of y+ and y-
over the last 50 iterations), the mean VSTOI of theta on both splits, the reference VSTOI of
both splits, the gap to it and the dataset key: nothing is typed in by hand.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from pa_ci.data.dataset import build_dataset, default_config
from pa_ci.codec.frae import FraeConfig
from pa_ci.rst import simple_table
from pa_ci.train.objective import VstoiObjective

HERE = Path(__file__).resolve().parent
FIELDS = ["run", "k", "log_vstoi_last50", "train_vstoi", "test_vstoi", "train_reference",
          "test_reference", "test_gap", "dataset_key", "source"]


def latest_theta(run: Path) -> tuple[np.ndarray, int, str]:
    """theta of the run's model.npz if finished, else of its checkpoint; its iteration k."""
    if (run / "model.npz").exists():
        with np.load(run / "model.npz", allow_pickle=False) as z:
            theta = np.array(z["theta"])
        k = int(json.loads((run / "config.json").read_text())["train"]["iters"])
        return theta, k, "model.npz"
    with np.load(run / "checkpoint.npz", allow_pickle=False) as z:
        header = json.loads(str(z["header"][()]))
        return np.array(z["theta"]), int(header["k"]), "checkpoint.npz"


def table(path: Path) -> str:
    """The README's table: one line per row of the CSV."""
    with open(path, newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: r["k"] != "0")   # model files first
    head = ("run", "k", "train VSTOI", "test VSTOI", "test reference", "gap (target 0.02)")
    cells = [(r["run"], r["k"], f"{float(r['train_vstoi']):.4f}", f"{float(r['test_vstoi']):.4f}",
              f"{float(r['test_reference']):.4f}", f"{float(r['test_gap']):.4f}") for r in rows]
    return simple_table(head, cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?")
    parser.add_argument("--csv", type=Path, default=HERE / "progress.csv")
    parser.add_argument("--table", action="store_true", help="print the CSV as the README's table")
    args = parser.parse_args()
    if args.table:
        print(table(args.csv))
        return
    if args.run is None:
        parser.error("RUN is needed (or --table)")
    if args.run.is_file():       # a model file: its config is in it
        from pa_ci.codec.model_file import load_model
        model = load_model(args.run)
        config, theta, k, source = FraeConfig.from_dict(model.config), model.theta, 0, args.run.name
        rows = []
    else:
        cfg = json.loads((args.run / "config.json").read_text())
        config = FraeConfig.from_dict(cfg["frae"])
        theta, k, source = latest_theta(args.run)
        with open(args.run / "log.csv", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("vstoi") and int(r["k"]) < k]
    last = np.mean([float(r["vstoi"]) for r in rows[-50:]]) if rows else float("nan")
    ds = build_dataset(default_config())
    row = {"run": args.run.stem if args.run.is_file() else args.run.name, "k": k,
           "log_vstoi_last50": round(float(last), 6), "source": source, "dataset_key": ds.key}
    for split in ("train", "test"):
        items = ds.split(split)
        row[f"{split}_vstoi"] = round(float(VstoiObjective(items, config).evaluate(theta).mean()), 6)
        row[f"{split}_reference"] = round(float(np.mean([it.reference_vstoi for it in items])), 6)
    row["test_gap"] = round(row["test_reference"] - row["test_vstoi"], 6)
    new = not args.csv.exists()
    with open(args.csv, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        if new:
            w.writeheader()
        w.writerow(row)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
