"""Rendering a text table as plain text, GitHub markdown, CSV or LaTeX, and printing several."""
from __future__ import annotations

import csv
import io
import re
from typing import Sequence

from .tables import TextTable

FORMATS = ("plain", "github", "csv", "latex")
LATEX_SPECIALS = re.compile(r"([_%&#{}])")


def latex_escaped(text: str) -> str:
    return LATEX_SPECIALS.sub(r"\\\1", text)


def render_table(table: TextTable, table_format: str) -> str:
    if table_format == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([table.headers] + table.rows)
        return buffer.getvalue().rstrip("\n")
    from tabulate import tabulate

    headers, rows = table.headers, table.rows
    if table_format == "latex":
        # Cells carry $\pm$, so render raw and escape the names ourselves.
        headers = [latex_escaped(header) for header in headers]
        rows = [[latex_escaped(cell) if "$" not in cell else cell for cell in row]
                for row in rows]
    tablefmt = {"plain": "simple", "github": "github", "latex": "latex_raw"}[table_format]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def print_tables(tables: Sequence[TextTable], table_format: str) -> None:
    """Titles as plain lines, or as '# title' rows in CSV when there are several tables."""
    for index, table in enumerate(tables):
        if index:
            print()
        if table_format != "csv":
            print(table.title)
        elif len(tables) > 1:
            print(f"# {table.title}")
        print(render_table(table, table_format))
