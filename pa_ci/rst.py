"""reStructuredText simple tables: the tables the README, the examples and ``make bench`` print.

One writer for all of them, so that every table a README quotes has the same layout and a
script's output can be found in the README verbatim (``tests/test_example_tables.py``).
"""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ["simple_table"]


def simple_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A docutils "simple table": a rule of ``=`` per column (columns two spaces apart) above and
    below the header and below the last row; cells left-aligned, each column as wide as its widest
    cell, trailing spaces cut. Cells are strings; every row has one per header cell."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells, the header {len(header)}: {row!r}")
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    rule = "  ".join("=" * w for w in widths)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([rule, line(header), rule, *map(line, rows), rule])
