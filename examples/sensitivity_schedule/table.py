"""Summarise examples/sensitivity_schedule/run.sh: one RST table, mean (min..max) over seeds.

    python examples/sensitivity_schedule/table.py OUT [--json] [--plot PNG]
    python examples/sensitivity_schedule/table.py SUMMARY.json     # the table from a --json output

OUT is run.sh's output folder; ``--json`` prints the summary the README's table comes from (kept
here as ``summary.json`` / ``summary-0.70.json``), and given such a file the script prints the
table from it.

The plot shows mean test VSTOI over the 300 SPSA iterations of each method: the schedules after
their pruning event(s) and after every epoch of 50 iterations, global magnitude right after
pruning (iteration 0) and at the end, PA right after pruning (iteration 150) and at the end.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

from pa_ci.rst import simple_table


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    m = statistics.fmean(values)
    return f"{m:.3f}" if len(values) == 1 else f"{m:.3f} ({min(values):.3f}..{max(values):.3f})"


def schedule_runs(out: Path, name: str) -> list[dict]:
    runs = []
    for folder in sorted(p for p in out.glob(f"{name}-s*") if p.is_dir()):
        if not (folder / "result.json").exists():
            continue
        r = json.loads((folder / "result.json").read_text())
        epochs = list(csv.DictReader(open(folder / "epochs.csv")))
        last_event = max(int(e["epoch"]) for e in epochs if e["vstoi_pruned"])
        r["after_last_event"] = float(epochs[last_event]["vstoi_pruned"])
        r["first_event_epochs"] = last_event
        r["sparsity"] = 1 - r["nonzero_weights"] / r["eligible_weights"]
        runs.append(r)
    return runs


def epoch_curve(out: Path, name: str) -> tuple[list[int], list[float]]:
    """Mean over seeds of: VSTOI after the first pruning event, then after each epoch."""
    curves = []
    for folder in sorted(p for p in out.glob(f"{name}-s*") if p.is_dir()):
        epochs = list(csv.DictReader(open(folder / "epochs.csv")))
        ipe = json.loads((folder / "result.json").read_text())["iterations_per_epoch"]
        curves.append([float(epochs[0]["vstoi_pruned"])] + [float(e["vstoi"]) for e in epochs])
    xs = [0] + [ipe * (i + 1) for i in range(len(curves[0]) - 1)]
    return xs, [statistics.fmean(c) for c in zip(*curves)]


def plot(out: Path, rows: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, label in (("sensitivity", "sensitivity schedule (one event)"),
                        ("agp", "AGP schedule (events at 0, 50, 100, 150)")):
        xs, ys = epoch_curve(out, name)
        ax.plot(xs, ys, marker="o", label=label)
    for key, x0, label in (("global magnitude", 0, "global magnitude"),
                           ("global PA (Eq. 5, g = x)", 150, "global PA (150 PA iterations first)")):
        r = rows[key]
        ax.plot([x0, 300], [statistics.fmean(r["pruned"]), statistics.fmean(r["final"])],
                marker="s", linestyle="--", label=label)
    before = statistics.fmean(next(iter(rows.values()))["before"])
    ax.axhline(before, color="k", linewidth=0.8, linestyle=":", label="unpruned")
    ax.set_xlabel("SPSA iteration (mini-batches of 25 train items)")
    ax.set_ylabel("test VSTOI (mean of 3 seeds)")
    sparsity = next(r["sparsity"] for r in rows.values() if "sparsity" in r)
    ax.set_title(f"{sparsity:.1%} of the matrix weights pruned: per-tensor schedules vs global")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    if args.out.is_file():
        print_table(json.loads(args.out.read_text()))
        return
    rows = {}
    for name, label in (("sensitivity", "sensitivity schedule (one event)"),
                        ("agp", "AGP schedule (4 events)")):
        runs = schedule_runs(args.out, name)
        if runs:
            rows[label] = {"n": len(runs), "nonzero": sorted({r["nonzero_weights"] for r in runs}),
                           "encoder": sorted({r["nonzero_encoder"] for r in runs}),
                           "decoder": sorted({r["nonzero_decoder"] for r in runs}),
                           "pruned": [r["after_last_event"] for r in runs],
                           "final": [r["vstoi_final"] for r in runs],
                           "before": [r["vstoi_before"] for r in runs],
                           "sparsity": runs[0]["sparsity"]}
    results = args.out / "global" / "results.csv"
    if results.exists():
        for method, label in (("magnitude", "global magnitude"), ("pa", "global PA (Eq. 5, g = x)")):
            runs = [r for r in csv.DictReader(open(results)) if r["method"] == method]
            if runs:
                rows[label] = {"n": len(runs), "nonzero": sorted({int(r["nonzero_weights"]) for r in runs}),
                               "encoder": sorted({int(r["nonzero_encoder"]) for r in runs}),
                               "decoder": sorted({int(r["nonzero_decoder"]) for r in runs}),
                               "pruned": [float(r["vstoi_pruned"]) for r in runs],
                               "final": [float(r["vstoi_finetuned"]) for r in runs],
                               "before": [float(r["vstoi_before"]) for r in runs]}
    if args.plot is not None:
        plot(args.out, rows, args.plot)
    if args.json:
        print(json.dumps(rows))
        return
    print_table(rows)


def print_table(rows: dict) -> None:
    head = ("method", "seeds", "non-zero weights (enc / dec)", "VSTOI after the last pruning",
            "VSTOI after 300 iterations")
    body = []
    for label, r in rows.items():
        nz = "/".join(map(str, r["nonzero"]))
        parts = f"{'/'.join(map(str, r['encoder']))} / {'/'.join(map(str, r['decoder']))}"
        body.append((label, str(r["n"]), f"{nz} ({parts})", fmt(r["pruned"]), fmt(r["final"])))
    print(simple_table(head, body))
    before = sorted({round(v, 4) for r in rows.values() for v in r["before"]})
    print(f"\nunpruned model: test VSTOI {', '.join(map(str, before))}")


if __name__ == "__main__":
    main()
