"""Write a gradual (AGP) schedule that ends at the per-tensor levels `pa-ci sensitivity` proposed.

    python examples/sensitivity_schedule/derive_agp.py ANALYSIS_DIR OUT.yaml [--events N]

ANALYSIS_DIR is the --out folder of `pa-ci sensitivity ... --json > ANALYSIS_DIR/result.json`
(reads its result.json). One AutomatedGradualPruner per tensor, 0.05 -> the proposed level over
N pruning events at epochs 0..N-1 (Zhu & Gupta's cubic ramp), in Distiller's format. Also prints
the global pruning rate with the same number of pruned weights, for `pa-ci prune --rate`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pa_ci._files import write_text_atomic
from pa_ci.codec.coder import load_codec
from pa_ci.prune.magnitude import eligible_mask, n_pruned


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("analysis", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--events", type=int, default=4)
    args = ap.parse_args()
    result = json.loads((args.analysis / "result.json").read_text())
    levels = result["proposed_levels"]
    layout = load_codec().model.layout
    lines = [f"# AGP to the levels proposed by {args.analysis} (tolerance {result['tolerance']:.4f}),",
             f"# {args.events} pruning events at epochs 0..{args.events - 1}.",
             "version: 1", "pruners:"]
    for name, level in levels.items():
        if level > 0.05:
            lines += [f"  agp_{name.replace('.', '_')}:", "    class: AutomatedGradualPruner",
                      "    initial_sparsity: 0.05", f"    final_sparsity: {level:g}",
                      f"    weights: ['{name}']"]
    lines.append("policies:")
    for name, level in levels.items():
        if level > 0.05:
            lines += [f"  - pruner: {{instance_name: agp_{name.replace('.', '_')}}}",
                      "    starting_epoch: 0", f"    ending_epoch: {args.events}", "    frequency: 1"]
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    pruned = sum(n_pruned(lv, layout[t].size) for t, lv in levels.items())
    eligible = int(eligible_mask(layout, "whole").sum())
    rate = pruned / eligible
    assert n_pruned(rate, eligible) == pruned
    print(json.dumps({"schedule": str(args.out), "pruned": pruned, "eligible": eligible, "rate": rate}))


if __name__ == "__main__":
    main()
