"""float32 against float64 training precision (``--precision``), on the paper's fine-tuning.

Runs (or, when their folders exist, reads) magnitude pruning of the base model at whole 0.70
followed by ITERS fine-tuning iterations, once per precision and seed, all else equal, and writes
``results.csv`` beside this file; ``--table`` prints the README's table from that CSV.

    .venv/bin/python examples/float32_training/compare.py [--runs DIR] [--iters 300] [--seeds 1,2]
    .venv/bin/python examples/float32_training/compare.py --table

Every VSTOI is the float64 codec's (the float32 precision changes only the SPSA objective's
forward pass); ``seconds`` is the run's wall time as its result.json records it.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

from pa_ci.rst import simple_table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODEL = ROOT / "examples" / "base_model" / "base-avg" / "model.npz"
FIELDS = ["precision", "seed", "finetune_iters", "vstoi_pruned", "vstoi_finetuned",
          "train_vstoi_finetuned", "seconds", "model_hash", "dataset_key"]


def run(folder: Path, precision: str, seed: int, iters: int) -> dict:
    if not (folder / "result.json").exists():
        subprocess.run([sys.executable, "-m", "pa_ci", "prune", str(MODEL), "--rate", "0.7",
                        "--scope", "whole", "--method", "magnitude", "--finetune-iters", str(iters),
                        "--seed", str(seed), "--precision", precision, "-o", str(folder), "--json"],
                       check=True, stdout=subprocess.DEVNULL)
    r = json.loads((folder / "result.json").read_text())
    recorded = json.loads((folder / "run.json").read_text()).get("precision", "float64")
    if recorded != precision:
        raise SystemExit(f"error: {folder}: a {recorded} run, expected {precision}")
    return {"precision": recorded, "seed": seed, "finetune_iters": r["finetune_total"],
            "vstoi_pruned": r["vstoi_pruned"], "vstoi_finetuned": r["vstoi_finetuned"],
            "train_vstoi_finetuned": r["train_vstoi_finetuned"], "seconds": r["seconds"],
            "model_hash": r["model_hash"], "dataset_key": r["dataset"]["key"]}


def table(rows: list[dict]) -> str:
    by = {(r["precision"], r["seed"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows}, key=int)
    head = ("seed", "fine-tuning its", "float64: test", "float32: test", "difference",
            "float64: train", "float32: train", "float64: s", "float32: s")
    out = []
    for s in seeds:
        a, b = by[("float64", s)], by[("float32", s)]
        out.append((s, a["finetune_iters"], f"{float(a['vstoi_finetuned']):.5f}",
                    f"{float(b['vstoi_finetuned']):.5f}",
                    f"{float(b['vstoi_finetuned']) - float(a['vstoi_finetuned']):+.5f}",
                    f"{float(a['train_vstoi_finetuned']):.5f}",
                    f"{float(b['train_vstoi_finetuned']):.5f}",
                    f"{float(a['seconds']):.0f}", f"{float(b['seconds']):.0f}"))
    return simple_table(head, [tuple(map(str, row)) for row in out])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=HERE / "runs", help="folder of the run folders")
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--table", action="store_true", help="print the table from results.csv")
    a = p.parse_args()
    csv_path = HERE / "results.csv"
    if a.table:
        with open(csv_path, newline="") as fh:
            print(table(list(csv.DictReader(fh))))
        return
    rows = [run(a.runs / f"ft-{prec}-s{s}", prec, int(s), a.iters)
            for s in a.seeds.split(",") for prec in ("float32", "float64")]
    tmp = csv_path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(csv_path)
    print(table([{k: str(v) for k, v in r.items()} for r in rows]))


if __name__ == "__main__":
    main()
