"""The main README's table of the shipped model: ``pa-ci eval --json`` on both splits, kept in
``examples/shipped_model.json``, and the table printed from that file.

    .venv/bin/python examples/shipped_model.py            # runs pa-ci eval twice, writes the JSON
    .venv/bin/python examples/shipped_model.py --table    # the README's table from the JSON

Every figure of the table is a field of the JSON that ``pa-ci eval`` printed; nothing is typed in.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from pa_ci._files import write_text_atomic
from pa_ci.rst import simple_table

HERE = Path(__file__).resolve().parent
JSON = HERE / "shipped_model.json"


def evaluate(split: str) -> dict:
    """What ``pa-ci eval --split SPLIT --json`` prints for the shipped model (default dataset)."""
    out = subprocess.run([sys.executable, "-m", "pa_ci", "eval", "--split", split, "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def table(figures: dict) -> str:
    """The README's two-column table (test split; the train split in brackets)."""
    test, train = figures["test"], figures["train"]
    rows = [
        ("VSTOI of the coded patterns", f"{test['vstoi']:.4f} (train {train['vstoi']:.4f})"),
        ("reference (uncoded ACE)",
         f"{test['reference_vstoi']:.4f} (train {train['reference_vstoi']:.4f})"),
        ("gap to the reference", f"{test['vstoi_gap']:.4f} (train {train['vstoi_gap']:.4f})"),
        ("bit rate", f"{test['bitrate_bps']:.0f} bit/s nominal, {test['measured_bitrate_bps']:.0f}"
                     " bit/s measured (stream headers included)"),
        ("index entropy", f"{test['index_entropy_bits']:.2f} bit/frame: "
                          f"{test['entropy_bitrate_bps']:.0f} bit/s with an ideal entropy coder "
                          f"({test['codewords_used']} of 64 codewords used)"),
    ]
    return simple_table(("figure", "shipped model (test split; default train split)"), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="print the table from the JSON")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(JSON.read_text())))
        return
    figures = {"command": "pa-ci eval --split SPLIT --json",
               "test": evaluate("test"), "train": evaluate("train")}
    write_text_atomic(JSON, json.dumps(figures, indent=1) + "\n")
    print(table(figures))


if __name__ == "__main__":
    main()
