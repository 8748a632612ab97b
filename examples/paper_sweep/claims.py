"""The paper's claims (arXiv 2502.02424, §III) one by one: the paper's figure beside ours.

    python examples/paper_sweep/claims.py examples/paper_sweep/results.csv          # RST table
    python examples/paper_sweep/claims.py examples/paper_sweep/results.csv --json   # one object

Only the rows of the paper's protocol count (by default 1000 PA + 7000 fine-tuning iterations,
the baseline fine-tuning the same total, every SPSA evaluation on the whole train split);
``--pa-iters``, ``--finetune-iters`` and ``--batch-size`` select another protocol (e.g. the
reduced sweep's 150 / 150 / 25). Each figure is a mean over the seeds a (scope, rate, method)
has; a claim whose rows are missing says "not run". Nothing here is typed in from a run: the
paper's numbers are quoted from its text (the line is given), ours come from the CSV.

Pruning loss (the paper's term, §III): VSTOI right after pruning minus VSTOI of the model that
was pruned (after PA training for PA, the pretrained model for magnitude pruning); negative
numbers are losses.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Any

from pa_ci.rst import simple_table

#: The paper's figures, each with where it stands in ../shared/specs/paper_pruning_aware_loss.md.
PAPER = {
    "beats_from": 0.45,        # l. 25 and 204: "substantial gains ... for pruning rates above 45 %"
    "pa_loss_upto_075": -0.016,  # l. 183: "limited to -0.016 up to a pruning rate of 75 %"
    "pa_loss_085": -0.085,     # l. 183: "at most -0.085 at a pruning rate of 85 % (whole-model)"
    "mag_loss_085": -0.23,     # l. 183: "compared to -0.23 for the baseline method"
    "ft_gap_max": 0.039,       # l. 177: "The largest difference ... 0.039 ... at 85 %"
    "ft_gap_max_rate": 0.85,
    "dec_ft_upto": 0.80,       # l. 179: "up to a pruning rate of 80 %, VSTOI scores are almost identical"
    "dec_ft_diff": 0.0017,     # l. 179: baseline ahead by "at most 0.0017" (65-75 %)
}


def _float(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def read_rows(path: Path, pa_iters: int, finetune_iters: int, batch_size: int | None) -> list[dict]:
    """The rows of one protocol: its iterations and its batch size (None: the whole train split)."""
    want_batch = ("", "None") if batch_size is None else (str(batch_size),)
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f)
                if r.get("pa_iters") == str(pa_iters) and r.get("finetune_iters") == str(finetune_iters)
                and r.get("batch_size", "") in want_batch and r.get("g", "-") in ("linear", "-")]


def seed_means(rows: list[dict]) -> dict[tuple[str, float, str], dict[str, float]]:
    """(scope, rate, method) -> mean over seeds of each VSTOI column, and the seed count."""
    groups: dict[tuple[str, float, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["scope"], round(float(r["rate"]), 2), r["method"])].append(r)
    out = {}
    for key, rs in groups.items():
        cols = ("vstoi_before", "vstoi_pa", "vstoi_pruned", "vstoi_finetuned")
        out[key] = {c: mean(_float(r[c]) for r in rs) for c in cols}
        out[key]["seeds"] = len(rs)
    return out


def _pairs(m: dict, scope: str, rates=None) -> list[tuple[float, dict, dict]]:
    """(rate, pa, magnitude) for every rate of ``scope`` that has both methods."""
    got = sorted({k[1] for k in m if k[0] == scope})
    return [(q, m[(scope, q, "pa")], m[(scope, q, "magnitude")]) for q in got
            if (scope, q, "pa") in m and (scope, q, "magnitude") in m and (rates is None or rates(q))]


def claims(m: dict) -> list[dict[str, Any]]:
    """Each claim: its text, the paper's figure, ours, whether it holds (None: not run)."""
    out = []

    def add(claim: str, paper: str, ours: str | None, holds: bool | None) -> None:
        out.append({"claim": claim, "paper": paper, "ours": ours or "not run", "holds": holds})

    for scope in ("whole", "decoder"):
        ps = _pairs(m, scope, lambda q: q >= PAPER["beats_from"] - 1e-9)
        d = [(q, pa["vstoi_pruned"] - mg["vstoi_pruned"]) for q, pa, mg in ps]
        add(f"PA beats magnitude right after pruning at rates >= 0.45 ({scope})",
            "yes (Figs. 2-4)",
            ", ".join(f"{q:.2f}: {x:+.3f}" for q, x in d) if d else None,
            all(x > 0 for _, x in d) if d else None)
    ps = [(q, pa) for q, pa, _ in _pairs(m, "whole", lambda q: q <= 0.75 + 1e-9)]
    loss = [(q, pa["vstoi_pruned"] - pa["vstoi_pa"]) for q, pa in ps]
    worst = min(loss, key=lambda t: t[1]) if loss else None
    add("PA's pruning loss (pruned - after PA training) up to 0.75 (whole)",
        f">= {PAPER['pa_loss_upto_075']}",
        f"worst {worst[1]:+.3f} at {worst[0]:.2f}" if worst else None,
        worst[1] >= PAPER["pa_loss_upto_075"] if worst else None)
    at = _pairs(m, "whole", lambda q: abs(q - 0.85) < 1e-9)
    if at:
        _, pa, mg = at[0]
        pl, ml = pa["vstoi_pruned"] - pa["vstoi_pa"], mg["vstoi_pruned"] - mg["vstoi_before"]
        add("pruning loss at 0.85 (whole): PA vs magnitude",
            f"{PAPER['pa_loss_085']} vs {PAPER['mag_loss_085']} (holds: PA's >= -0.085)",
            f"{pl:+.3f} vs {ml:+.3f}", pl >= PAPER["pa_loss_085"])
    else:
        add("pruning loss at 0.85 (whole): PA vs magnitude",
            f"{PAPER['pa_loss_085']} vs {PAPER['mag_loss_085']} (holds: PA's >= -0.085)", None, None)
    drops = [(s, q, v["vstoi_pa"] - v["vstoi_before"]) for (s, q, meth), v in sorted(m.items())
             if meth == "pa"]
    add("PA training lowers VSTOI before pruning (Fig. 6)", "yes, the largest part of the loss",
        ", ".join(f"{s} {q:.2f}: {x:+.3f}" for s, q, x in drops) if drops else None,
        all(x < 0 for *_, x in drops) if drops else None)
    ps = _pairs(m, "whole")
    if ps:
        gaps = [(q, pa["vstoi_finetuned"] - mg["vstoi_finetuned"],
                 pa["vstoi_pruned"] - mg["vstoi_pruned"]) for q, pa, mg in ps]
        narrows = all(abs(ft) < abs(pr) for _, ft, pr in gaps)
        q_max, ft_max, _ = max(gaps, key=lambda t: t[1])
        add("after fine-tuning the gap narrows (whole)", "yes",
            ", ".join(f"{q:.2f}: {pr:+.3f} -> {ft:+.3f}" for q, ft, pr in gaps), narrows)
        add("largest fine-tuned gap PA - magnitude (whole)",
            f"{PAPER['ft_gap_max']:+.3f} at {PAPER['ft_gap_max_rate']:.2f}",
            f"{ft_max:+.3f} at {q_max:.2f}", None)
    else:
        add("after fine-tuning the gap narrows (whole)", "yes", None, None)
        add("largest fine-tuned gap PA - magnitude (whole)",
            f"{PAPER['ft_gap_max']:+.3f} at {PAPER['ft_gap_max_rate']:.2f}", None, None)
    ps = _pairs(m, "decoder", lambda q: q <= PAPER["dec_ft_upto"] + 1e-9)
    d = [(q, pa["vstoi_finetuned"] - mg["vstoi_finetuned"]) for q, pa, mg in ps]
    big = max((abs(x) for _, x in d), default=None)
    add("decoder-only: almost identical after fine-tuning up to 0.80",
        f"abs(PA - magnitude) <= {PAPER['dec_ft_diff']} where magnitude leads (holds: abs(ours) <= 0.005)",
        ", ".join(f"{q:.2f}: {x:+.4f}" for q, x in d) if d else None,
        None if big is None else big <= 0.005)
    return out


def rst_table(rows: list[dict[str, Any]]) -> str:
    """The claims as one reStructuredText table."""
    head = ("claim", "paper", "ours", "holds")
    cells = [(r["claim"], r["paper"], r["ours"],
              "-" if r["holds"] is None else ("yes" if r["holds"] else "no")) for r in rows]
    return simple_table(head, cells)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", type=Path)
    ap.add_argument("--pa-iters", type=int, default=1000)
    ap.add_argument("--finetune-iters", type=int, default=7000)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args(argv)
    if not a.csv.is_file():
        print(f"error: {a.csv}: no such results file; expected a `pa-ci sweep` results.csv",
              file=sys.stderr)
        return 1
    rows = read_rows(a.csv, a.pa_iters, a.finetune_iters, a.batch_size)
    result = claims(seed_means(rows))
    if a.json:
        print(json.dumps({"csv": str(a.csv), "rows": len(rows), "claims": result}))
    else:
        print(rst_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
