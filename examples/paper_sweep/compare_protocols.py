"""Issue item 4: the paper's protocol against a longer PA phase at whole 0.70, seed by seed.

    python examples/paper_sweep/compare_protocols.py               # reStructuredText table
    python examples/paper_sweep/compare_protocols.py --json        # one JSON object

Both arms train 8000 SPSA iterations in all from the same base model, the same gains and g:
the paper's protocol (1000 PA + 7000 fine-tuning, ``examples/paper_sweep/results.csv``) and the
longer PA phase (3000 PA + 5000 fine-tuning, ``examples/paper_sweep/longer_pa/results.csv``,
made by ``queue.sh``). Per seed: test VSTOI after PA training, right after pruning and after
fine-tuning, and the paired difference (longer - paper) of the fine-tuned VSTOI, which decides.

The verdict was fixed before any run of the longer arm was in: with 3 seeds, "wins" if every
seed's paired difference is above 0, "loses" if every one is below 0, otherwise "no clear
difference"; "waiting" while a seed of either arm is missing.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

from pa_ci.rst import simple_table

HERE = Path(__file__).resolve().parent
PAPER = HERE / "results.csv"
LONGER = HERE / "longer_pa" / "results.csv"
SEEDS = (1, 2, 3)
SCOPE, RATE = "whole", 0.7
STAGES = ("vstoi_pa", "vstoi_pruned", "vstoi_finetuned")


def _rows(path: Path, pa_iters: int, finetune_iters: int) -> dict[int, dict]:
    """seed -> row of the PA runs at whole 0.70, g = linear, with these iterations."""
    if not path.exists():
        return {}
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if (r["scope"], r["method"], r["g"]) == (SCOPE, "pa", "linear") \
                    and abs(float(r["rate"]) - RATE) < 1e-9 \
                    and (int(r["pa_iters"]), int(r["finetune_iters"])) == (pa_iters, finetune_iters):
                out[int(r["seed"])] = {k: float(r[k]) for k in (*STAGES, "seconds")}
    return out


def compare(paper_csv: Path = PAPER, longer_csv: Path = LONGER) -> dict:
    paper, longer = _rows(paper_csv, 1000, 7000), _rows(longer_csv, 3000, 5000)
    diffs = {s: longer[s]["vstoi_finetuned"] - paper[s]["vstoi_finetuned"]
             for s in SEEDS if s in paper and s in longer}
    if len(diffs) < len(SEEDS):
        verdict = "waiting"
    elif all(d > 0 for d in diffs.values()):
        verdict = "wins"
    elif all(d < 0 for d in diffs.values()):
        verdict = "loses"
    else:
        verdict = "no clear difference"
    return {"scope": SCOPE, "rate": RATE, "paper": paper, "longer_pa": longer,
            "finetuned_difference": diffs,
            "mean_difference": statistics.fmean(diffs.values()) if diffs else None,
            "verdict": verdict}


def _f(x: float | None) -> str:
    return "not yet" if x is None else f"{x:.3f}"


def table(result: dict) -> str:
    header = ("seed", "paper: after PA", "paper: pruned", "paper: fine-tuned",
              "longer: after PA", "longer: pruned", "longer: fine-tuned", "longer - paper")
    lines = []
    for s in SEEDS:
        p, q = result["paper"].get(s, {}), result["longer_pa"].get(s, {})
        d = result["finetuned_difference"].get(s)
        lines.append((str(s), *(_f(p.get(k)) for k in STAGES), *(_f(q.get(k)) for k in STAGES),
                      "-" if d is None else f"{d:+.3f}"))
    mean = result["mean_difference"]
    return "\n".join([simple_table(header, lines), "",
                      f"mean paired difference (fine-tuned): "
                      f"{'-' if mean is None else f'{mean:+.4f}'} over {len(result['finetuned_difference'])} "
                      f"seed(s); verdict: {result['verdict']}"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper", type=Path, default=PAPER, help="results.csv of the paper's protocol")
    ap.add_argument("--longer", type=Path, default=LONGER, help="results.csv of the longer PA phase")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if not args.paper.exists():
        print(f"error: {args.paper}: no such results.csv; expected a pa-ci sweep folder's",
              file=sys.stderr)
        return 1
    result = compare(args.paper, args.longer)
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
