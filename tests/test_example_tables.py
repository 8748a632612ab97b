"""The tables of the examples' READMEs are what their scripts print from the committed CSVs.

Each README states the command that makes its table; this runs it and looks for its output in
the README, so a figure edited by hand, or a CSV changed without its table, fails here.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (README, script and its arguments): the commands the READMEs give.
TABLES = [
    ("examples/pruning_sweep/README.rst", ["examples/sweep_table.py", "examples/pruning_sweep"]),
    ("examples/pruning_sweep/README.rst",
     ["examples/paper_sweep/claims.py", "examples/pruning_sweep/results.csv",
      "--pa-iters", "150", "--finetune-iters", "150", "--batch-size", "25"]),
    ("examples/base_model/README.rst", ["examples/base_model/progress.py", "--table"]),
    ("examples/paper_sweep/README.rst", ["examples/sweep_table.py", "examples/paper_sweep"]),
    ("README.rst", ["examples/sweep_table.py", "examples/paper_sweep"]),
    ("README.rst", ["examples/shipped_model.py", "--table"]),
    ("examples/demo/README.rst", ["examples/sweep_table.py", "examples/demo"]),
    ("examples/sensitivity_schedule/README.rst",
     ["examples/sensitivity_schedule/table.py", "examples/sensitivity_schedule/summary.json"]),
    ("examples/sensitivity_schedule/README.rst",
     ["examples/sensitivity_schedule/table.py", "examples/sensitivity_schedule/summary-0.70.json"]),
    ("examples/paper_sweep/README.rst",
     ["examples/paper_sweep/claims.py", "examples/paper_sweep/results.csv"]),
    ("examples/float32_training/README.rst", ["examples/float32_training/compare.py", "--table"]),
    ("examples/paper_sweep/README.rst", ["examples/paper_sweep/compare_protocols.py"]),
]


# (README, script and its arguments): output the README shows whole as an indented literal block.
LITERAL_BLOCKS = [
    ("README.rst", ["examples/quantisation/run.py", "--table"]),
    ("README.rst", ["examples/firmware/table.py"]),
]


def _tables(text: str) -> list[str]:
    """The reStructuredText simple tables of a text (from its first rule to its closing one)."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].startswith("==") and set(lines[i]) <= {"=", " "}:
            j, rules = i, 0
            while j < len(lines) and lines[j].strip():
                rules += lines[j].startswith("==") and set(lines[j]) <= {"=", " "}
                j += 1
                if rules == 3:
                    break
            out.append("\n".join(lines[i:j]))
            i = j
        else:
            i += 1
    return out


@pytest.mark.parametrize("readme, command", TABLES, ids=lambda x: x if isinstance(x, str) else x[0])
def test_readme_table_is_the_scripts_output(readme, command):
    printed = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    tables = _tables(printed)
    assert tables, f"{command[0]} printed no table"
    text = (ROOT / readme).read_text(encoding="utf-8")
    for table in tables:
        assert table in text, f"{readme} does not hold this table of {' '.join(command)}:\n{table}"


@pytest.mark.parametrize("readme, command", LITERAL_BLOCKS, ids=lambda x: x if isinstance(x, str) else x[0])
def test_readme_literal_block_is_the_scripts_output(readme, command):
    printed = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.rstrip("\n")
    block = "\n".join(("    " + line).rstrip() for line in printed.split("\n"))
    text = "\n".join(line.rstrip() for line in (ROOT / readme).read_text(encoding="utf-8").split("\n"))
    assert block in text, f"{readme} does not show the output of {' '.join(command)}:\n{block}"


def test_claims_table_changes_with_the_csv(tmp_path):
    """The claims script reads its figures from the CSV (a changed row changes the table)."""
    src = ROOT / "examples/pruning_sweep/results.csv"
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        if r["scope"] == "whole" and r["method"] == "pa":   # PA now far below the baseline
            r["vstoi_pruned"] = "0.1"
    with open(tmp_path / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    args = ["--pa-iters", "150", "--finetune-iters", "150", "--batch-size", "25"]
    before = subprocess.run([sys.executable, "examples/paper_sweep/claims.py", str(src), *args],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    after = subprocess.run([sys.executable, "examples/paper_sweep/claims.py",
                            str(tmp_path / "results.csv"), *args],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout
    first = [line for line in after.splitlines() if line.startswith("PA beats") and "(whole)" in line]
    assert before != after and first and first[0].rstrip().endswith("no")


@pytest.mark.parametrize("shift, verdict", [(0.01, "wins"), (-0.01, "loses")])
def test_protocol_comparison_verdict_follows_the_csvs(tmp_path, shift, verdict):
    """compare_protocols.py pairs the two arms by seed and reads its verdict from the CSVs."""
    src = ROOT / "examples/paper_sweep/results.csv"
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    seed1 = next(r for r in rows if (r["scope"], r["rate"], r["method"], r["seed"])
                 == ("whole", "0.7", "pa", "1"))
    paper = [{**seed1, "seed": str(s), "vstoi_finetuned": str(0.5 + s / 100)} for s in (1, 2, 3)]
    longer = [{**r, "pa_iters": "3000", "finetune_iters": "5000",
               "vstoi_finetuned": str(float(r["vstoi_finetuned"]) + shift * (1 + k))}
              for k, r in enumerate(paper)]
    for name, data in (("paper.csv", paper), ("longer.csv", longer[:2])):
        with open(tmp_path / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(data)
    argv = [sys.executable, "examples/paper_sweep/compare_protocols.py", "--json",
            "--paper", str(tmp_path / "paper.csv"), "--longer", str(tmp_path / "longer.csv")]
    two = json.loads(subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    assert two["verdict"] == "waiting" and len(two["finetuned_difference"]) == 2
    with open(tmp_path / "longer.csv", "a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(rows[0])).writerow(longer[2])
    three = json.loads(subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    assert three["verdict"] == verdict
    assert abs(three["mean_difference"] - 2 * shift) < 1e-9
