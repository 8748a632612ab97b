"""Print the table of a `pa-ci sweep` folder: PA vs magnitude pruning, seed mean and spread.

    python examples/sweep_table.py examples/pruning_sweep            # reStructuredText table
    python examples/sweep_table.py examples/pruning_sweep --plot     # and re-draw the figures

For every (scope, rate): the PA model's VSTOI after PA training (before pruning), VSTOI right after pruning and after fine-tuning, mean over seeds with
the min..max range, for magnitude pruning (the paper's baseline) and PA training (its proposal),
and the PA - magnitude difference of the seed means. The magnitude figure right after pruning
does not depend on the seed (no training before pruning), so its range is one value.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pa_ci.sweep import plot_sweep, read_results, summary_table


def _spread(mean: float | None, lo: float | None, hi: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.3f} ({lo:.3f}..{hi:.3f})" if hi - lo > 5e-4 else f"{mean:.3f}"


def _cell(entry: dict, name: str) -> str:
    return _spread(*(entry[f"{name}_{s}"] for s in ("mean", "min", "max")))


def table(folder: Path) -> str:
    rows = read_results(folder / "results.csv")
    before = {r["vstoi_before"] for r in rows}
    entries = summary_table(rows)
    by = {(e["scope"], e["rate"], e["method"]): e for e in entries}
    pa_trained: dict[tuple, list[float]] = {}
    for r in rows:
        if r["method"] == "pa":
            pa_trained.setdefault((r["scope"], r["rate"]), []).append(r["vstoi_pa"])
    header = ("scope", "rate", "PA: before pruning", "magnitude: pruned", "PA: pruned", "PA - mag.",
              "magnitude: fine-tuned", "PA: fine-tuned", "PA - mag.", "seeds")
    lines = []
    for scope in sorted({e["scope"] for e in entries}, reverse=True):
        for rate in sorted({e["rate"] for e in entries if e["scope"] == scope}):
            m, p = by.get((scope, rate, "magnitude")), by.get((scope, rate, "pa"))
            if m is None or p is None:
                continue
            v = pa_trained[(scope, rate)]
            lines.append((scope, f"{rate:.2f}", _spread(sum(v) / len(v), min(v), max(v)),
                          _cell(m, "vstoi_pruned"), _cell(p, "vstoi_pruned"),
                          f"{p['pruned_gain']:+.3f}", _cell(m, "vstoi_finetuned"),
                          _cell(p, "vstoi_finetuned"), f"{p['finetuned_gain']:+.3f}",
                          str(min(m["n"], p["n"]))))
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(header)]
    rule = "  ".join("=" * w for w in widths)
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [f"unpruned model: test VSTOI {', '.join(f'{b:.3f}' for b in sorted(before))}", "",
           rule, fmt(header), rule, *(fmt(r) for r in lines), rule]
    return "\n".join(out)


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/pruning_sweep")
    print(table(folder))
    if "--plot" in sys.argv[2:]:
        for path in plot_sweep(read_results(folder / "results.csv"), folder):
            print(f"wrote {path}")
