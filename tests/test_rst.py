"""Every reStructuredText file the project publishes parses without a warning (docutils, the
reference parser, is the oracle; the test is skipped where it is not installed)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

docutils_core = pytest.importorskip("docutils.core")

ROOT = Path(__file__).resolve().parents[1]


def _rst_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "*.rst"], cwd=ROOT, capture_output=True, text=True)
    files = out.stdout.split() if out.returncode == 0 else []
    return files or sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("*.rst")
                           if ".venv" not in p.parts)


def _warnings(text: str, **settings) -> str:
    """What docutils reports (warnings and worse) while parsing ``text``."""
    messages: list[str] = []

    class _Collect:
        def write(self, message: str) -> None:
            messages.append(message)

    docutils_core.publish_doctree(text, settings_overrides={"report_level": 2, "halt_level": 5,
                                                            "warning_stream": _Collect(), **settings})
    return "".join(messages)


@pytest.mark.parametrize("name", _rst_files())
def test_rst_parses_without_warnings(name: str) -> None:
    found = _warnings((ROOT / name).read_text(encoding="utf-8"), file_insertion_enabled=False)
    assert not found.strip(), found


def test_a_broken_table_is_reported() -> None:
    """The check fails on the kind of table it is for (text in a column margin)."""
    bad = "====  ====\na     b\n====  ====\nlonger_than_col  x\n====  ====\n"
    assert "Malformed table" in _warnings(bad)


def test_simple_table_is_the_table_docutils_reads() -> None:
    """pa_ci.rst.simple_table: docutils reads back the header and every cell, in place."""
    from pa_ci.rst import simple_table
    header = ("rate", "method", "VSTOI after pruning")
    rows = [("0.55", "pa", "0.595"), ("0.70", "magnitude", "0.385 (0.38..0.39)"), ("0.85", "pa", "")]
    text = simple_table(header, rows)
    assert not _warnings(text).strip()
    tree = docutils_core.publish_doctree(text, settings_overrides={"report_level": 5})
    tables = [n for n in tree.findall() if n.tagname == "table"]
    assert len(tables) == 1
    read = [tuple(entry.astext() for entry in row.children)
            for row in tables[0].findall() if row.tagname == "row"]
    assert read == [header, *rows]
    assert all(line == line.rstrip() for line in text.splitlines())
    with pytest.raises(ValueError, match="2 cells, the header 3"):
        simple_table(header, [("0.55", "pa")])
