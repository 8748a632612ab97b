"""The paper's figures (Figs. 1-7, as ``pa-ci sweep`` draws them) from a committed results.csv.

    .venv/bin/python examples/paper_sweep/figures.py [examples/paper_sweep]

The full-scale runs go on in a separate clone whose environment may lack matplotlib; their
results.csv is copied here after each finished run, and this redraws the PNGs beside it (the
``plot`` extra). A figure whose runs are not in yet is skipped.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pa_ci.experiment.sweep import _read_csv, plot_sweep


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    rows = list(_read_csv(folder / "results.csv").values())
    written = plot_sweep(rows, folder)
    if not written:
        raise SystemExit("error: no figure written (matplotlib missing: pip install -e '.[plot]')")
    for p in written:
        print(p)


if __name__ == "__main__":
    main()
