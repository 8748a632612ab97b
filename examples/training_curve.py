"""Plot training runs' VSTOI against the SPSA iteration (from their ``log.csv``).

    .venv/bin/python examples/training_curve.py RUN [RUN ...] --out examples/shipped_training.png

Several runs are drawn one after the other (a run started with ``--init`` from the previous
one's model continues its iteration count). A RUN may also be a CSV that ``--csv`` wrote: its
runs are drawn as they were joined, with their iteration counts as written.
The log holds, per iteration k, y+ and y- (mean train VSTOI at theta_k +- c_k Delta_k, paper
Eq. 7); their mean is a close estimate of the VSTOI of theta_k. The curve is smoothed over 50
iterations. ``--reference`` draws the uncoded reference VSTOI of the train split as a line.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np


def _logs(run: Path):
    """(name, log rows, gains label) of a run folder, or of each run in a joined CSV (its rows'
    k made relative again, so that the caller's offset continues them)."""
    if run.is_file():
        with open(run, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for name in dict.fromkeys(r["run"] for r in rows):
            own = [r for r in rows if r["run"] == name]
            k0 = int(own[0]["k"])
            yield name, [dict(r, k=str(int(r["k"]) - k0)) for r in own], ""
        return
    with open(run / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    g = json.loads((run / "config.json").read_text())["train"]["gains"]
    yield run.name, rows, f": a={g['a']:g}, A={g['A']:g}, c={g['c']:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders written by pa-ci train (or a CSV written by --csv)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--reference", type=float, default=None,
                        help="uncoded reference VSTOI of the train split (a horizontal line)")
    parser.add_argument("--csv", type=Path, default=None, help="also write the joined log here")
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    offset, joined, first, last = 0, [], None, None
    for i, (name, rows, gains) in enumerate(r for run in args.runs for r in _logs(run)):
        k = np.array([int(r["k"]) for r in rows]) + offset
        v = np.array([float(r["vstoi"]) for r in rows])
        w = min(50, len(v))
        smooth = np.convolve(v, np.ones(w) / w, mode="valid")
        first = smooth[0] if first is None else first
        last = smooth[-1]
        ax.plot(k, v, color="0.8", lw=0.5)
        ax.plot(k[w - 1:], smooth, color=f"C{i % 10}", label=f"{name}{gains} ({w}-it. mean)")
        joined += [dict(r, k=str(int(r["k"]) + offset), run=name) for r in rows]
        offset = int(k[-1]) + 1
    if args.reference is not None:
        ax.axhline(args.reference, color="C3", ls="--", label="uncoded ACE reference")
    ax.set(xlabel="SPSA iteration k", ylabel="mean train VSTOI (y+ + y-) / 2",
           title="FRAE training by SPSA on mean VSTOI (paper Eq. 7)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    if args.csv is not None:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["run"] + [f for f in joined[0] if f != "run"],
                                    lineterminator="\n")
            writer.writeheader()
            writer.writerows(joined)
    print(f"wrote {args.out}: {offset} iterations, VSTOI {first:.4f} -> {last:.4f} (smoothed)")


if __name__ == "__main__":
    main()
