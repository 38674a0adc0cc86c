"""Rendering a text table as plain text, GitHub markdown, CSV or LaTeX, and printing several."""
from __future__ import annotations

import csv
import io
import re
from typing import Sequence

from .tables import TextTable

FORMATS = ("plain", "github", "csv", "latex")
LATEX_SPECIALS = re.compile(r"([\\_%&#{}$^~<>|])")
PLUS_MINUS = r"$\pm$"  # the one TeX fragment results/tables.py puts into cells
# Every character TeX treats specially, mapped to a command that prints it. Mapping one
# character at a time (never replace-after-replace) means no escape is itself re-escaped, and
# with ^ and \ both escaped no ^^5c (TeX's code for a backslash) can reach TeX.
LATEX_TEXT = {
    "\\": r"\textbackslash{}", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}",
    "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$", "{": r"\{", "}": r"\}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    "\u00b1": r"$\pm$", "\u2020": r"$^\dagger$", "\n": " ", "\r": " ", "\t": " ",
}


def latex_escaped(text: str) -> str:
    """Text as TeX prints it verbatim; the ``$\\pm$`` our own cells carry stays a plus-minus."""
    return PLUS_MINUS.join("".join(LATEX_TEXT.get(char, char) for char in part)
                           for part in str(text).split(PLUS_MINUS))


def render_table(table: TextTable, table_format: str) -> str:
    if table_format == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([table.headers] + table.rows)
        return buffer.getvalue().rstrip("\n")
    from tabulate import tabulate

    headers, rows = table.headers, table.rows
    if table_format == "latex":
        # Cells carry $\pm$, so render raw and escape everything else ourselves.
        headers = [latex_escaped(header) for header in headers]
        rows = [[latex_escaped(cell) for cell in row] for row in rows]
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
