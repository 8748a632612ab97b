"""The README's library examples, executed as they are written (so they cannot drift).

Every ``.. code-block:: python`` block of README.rst runs, in order, in one namespace (later
examples use the names of earlier ones, as a reader following along would), in a fresh folder
holding ``speech.wav`` (a bundled utterance). The training examples use the tiny dataset and a
few iterations in the README itself.
"""
from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.rst"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, dedented code) of every ``.. code-block:: python`` block of an RST text."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if re.match(r"^\.\. code-block::\s*python\s*$", lines[i]):
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() == "":     # options / blank line
                j += 1
            body = []
            while j < len(lines) and (lines[j].strip() == "" or lines[j].startswith(" ")):
                body.append(lines[j])
                j += 1
            blocks.append((start + 1, textwrap.dedent("\n".join(body)).strip() + "\n"))
            i = j
        else:
            i += 1
    return blocks


def test_the_block_parser_finds_what_rst_renders():
    text = ("Intro\n\n.. code-block:: python\n\n    a = 1\n\n    b = a + 1\nAfter\n\n"
            "::\n\n    not python\n\n.. code-block:: python\n\n    c = 3\n")
    assert python_blocks(text) == [(4, "a = 1\n\nb = a + 1\n"), (15, "c = 3\n")]


def test_readme_library_examples_run(tmp_path, monkeypatch, arctic_file, capsys):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, "the README's library section lost its examples"
    code = "\n".join(b for _, b in blocks)
    for name in ("pa_ci.load(", "pa_ci.prune_model(", "pa_ci.evaluate(", "pa_ci.export_model(",
                 "apply_events("):
        assert name in code
    shutil.copy(arctic_file, tmp_path / "speech.wav")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    for line, block in blocks:
        try:
            exec(compile(block, f"README.rst:{line}", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - say which example broke
            pytest.fail(f"README.rst example at line {line} failed: {type(exc).__name__}: {exc}")
    # What the examples claim, checked on what they made.
    out = capsys.readouterr().out.split()
    assert 0 < float(out[0]) <= 1 and 0 < float(out[1]) <= 1 and 0 < float(out[2]) <= 1
    pruned = namespace["pruned"]
    meta = pruned.model.meta["protocol"]
    assert meta["finetune_total"] == 4 and meta["pa_iters"] == 4 and meta["scope"] == "decoder"
    assert (tmp_path / "decoder.pacx").stat().st_size == namespace["info"].n_bytes == 2879
    assert np.count_nonzero(~pruned.model.mask) == round(0.55 * 980)    # 55 % of 980 decoder weights
    assert namespace["events"] and set(namespace["levels"]) <= set(namespace["names"])
