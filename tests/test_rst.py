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


@pytest.mark.parametrize("name", _rst_files())
def test_rst_parses_without_warnings(name: str) -> None:
    messages: list[str] = []

    class _Collect:
        def write(self, text: str) -> None:
            messages.append(text)

    docutils_core.publish_doctree((ROOT / name).read_text(encoding="utf-8"), source_path=name,
                                  settings_overrides={"report_level": 2, "halt_level": 5,
                                                      "warning_stream": _Collect(),
                                                      "file_insertion_enabled": False})
    assert not "".join(messages).strip(), "".join(messages)


def test_a_broken_table_is_reported(tmp_path) -> None:
    """The check fails on the kind of table it is for (text in a column margin)."""
    messages: list[str] = []

    class _Collect:
        def write(self, text: str) -> None:
            messages.append(text)

    bad = "====  ====\na     b\n====  ====\nlonger_than_col  x\n====  ====\n"
    docutils_core.publish_doctree(bad, settings_overrides={"report_level": 2, "halt_level": 5,
                                                           "warning_stream": _Collect()})
    assert "Malformed table" in "".join(messages)
