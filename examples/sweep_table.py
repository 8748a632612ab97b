"""Print the table of a `pa-ci sweep` folder: PA vs magnitude pruning, seed mean and spread.

    python examples/sweep_table.py examples/pruning_sweep            # reStructuredText table
    python examples/sweep_table.py examples/pruning_sweep --plot     # and re-draw the figures

For every (scope, rate), PA with g = x: the PA model's VSTOI after PA training (before pruning), VSTOI right after pruning and after fine-tuning, mean over seeds with
the min..max range, for magnitude pruning (the paper's baseline) and PA training (its proposal),
and the PA - magnitude difference of the seed means. The magnitude figure right after pruning
does not depend on the seed (no training before pruning), so its range is one value.
Where the sweep ran several perturbation functions g, a second table compares them.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pa_ci.experiment.sweep import plot_sweep, read_results, summary_table
from pa_ci.rst import simple_table


def _spread(mean: float | None, lo: float | None, hi: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.3f} ({lo:.3f}..{hi:.3f})" if hi - lo > 5e-4 else f"{mean:.3f}"


def _cell(entry: dict, name: str) -> str:
    return _spread(*(entry[f"{name}_{s}"] for s in ("mean", "min", "max")))


def _pa_trained(rows: list[dict]) -> dict[tuple, list[float]]:
    """(scope, rate, g) -> VSTOI of the PA models after PA training, before pruning."""
    out: dict[tuple, list[float]] = {}
    for r in rows:
        if r["method"] == "pa":
            out.setdefault((r["scope"], r["rate"], r["g"]), []).append(r["vstoi_pa"])
    return out


def table(folder: Path, g: str = "linear") -> str:
    """Magnitude vs PA with perturbation function ``g``, per scope and rate."""
    rows = [r for r in read_results(folder / "results.csv") if r["g"] in (g, "-")]
    before = {r["vstoi_before"] for r in rows}
    entries = summary_table(rows)
    by = {(e["scope"], e["rate"], e["method"]): e for e in entries}
    trained = _pa_trained(rows)
    header = ("scope", "rate", "PA: before pruning", "magnitude: pruned", "PA: pruned", "PA - mag.",
              "magnitude: fine-tuned", "PA: fine-tuned", "PA - mag.", "seeds")
    lines = []
    for scope in sorted({e["scope"] for e in entries}, reverse=True):
        for rate in sorted({e["rate"] for e in entries if e["scope"] == scope}):
            m, p = by.get((scope, rate, "magnitude")), by.get((scope, rate, "pa"))
            if p is None:
                continue
            v = trained[(scope, rate, g)]
            mag = (lambda name: _cell(m, name)) if m is not None else (lambda name: "not yet")
            gain = (lambda name: f"{p[name]:+.3f}") if m is not None else (lambda name: "-")
            lines.append((scope, f"{rate:.2f}", _spread(sum(v) / len(v), min(v), max(v)),
                          mag("vstoi_pruned"), _cell(p, "vstoi_pruned"), gain("pruned_gain"),
                          mag("vstoi_finetuned"), _cell(p, "vstoi_finetuned"),
                          gain("finetuned_gain"), str(p["n"] if m is None else min(m["n"], p["n"]))))
    out = [f"unpruned model: test VSTOI {', '.join(f'{b:.3f}' for b in sorted(before))}; "
           f"PA with g = {g}", ""]
    return "\n".join(out + [simple_table(header, lines) if lines else "(no rate has a PA run yet)"])


def g_table(folder: Path) -> str:
    """PA with each perturbation function g (Eq. 6) where the sweep has more than one."""
    rows = read_results(folder / "results.csv")
    entries = [e for e in summary_table(rows) if e["method"] == "pa"]
    trained = _pa_trained(rows)
    places = {(e["scope"], e["rate"]) for e in entries}
    several = sorted((p for p in places if sum(1 for e in entries
                                               if (e["scope"], e["rate"]) == p) > 1), reverse=True)
    header = ("scope", "rate", "g", "PA: before pruning", "PA: pruned", "PA - mag.",
              "PA: fine-tuned", "PA - mag.", "seeds")
    lines = []
    for scope, rate in sorted(several, key=lambda p: (-ord(p[0][0]), p[1])):
        order = ("linear", "quadratic", "cubic", "sqrt")  # aggressive last: x^3 < x^2 < x < sqrt(x)
        for e in sorted(entries, key=lambda e: order.index(e["g"]) if e["g"] in order else 9):
            if (e["scope"], e["rate"]) != (scope, rate):
                continue
            v = trained[(scope, rate, e["g"])]
            gain = lambda x: "-" if x is None else f"{x:+.3f}"  # noqa: E731
            lines.append((scope, f"{rate:.2f}", e["g"], _spread(sum(v) / len(v), min(v), max(v)),
                          _cell(e, "vstoi_pruned"), gain(e["pruned_gain"]),
                          _cell(e, "vstoi_finetuned"), gain(e["finetuned_gain"]), str(e["n"])))
    return simple_table(header, lines) if lines else ""


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/pruning_sweep")
    print(table(folder))
    extra = g_table(folder)
    if extra:
        print("\nperturbation functions g (Eq. 6):\n")
        print(extra)
    if "--plot" in sys.argv[2:]:
        for path in plot_sweep(read_results(folder / "results.csv"), folder):
            print(f"wrote {path}")
