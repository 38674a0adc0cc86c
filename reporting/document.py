"""A report as a list of blocks, written once and rendered twice: one self-contained HTML file
(figures inline as base64 PNG, no external resource, so it opens offline from disk) and
Markdown with the figures as PNG files beside it."""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

from .output import ReportFolder


@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Paragraph:
    text: str
    banner: bool = False  # a warning shown above everything (boxed in HTML, bold in Markdown)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]
    anchor: str = ""  # id of the <table>: the browser test finds the main table by it
    caption: str = ""


@dataclass
class Figure:
    name: str  # file name beside report.md
    png: bytes
    caption: str


@dataclass
class Items:
    items: list[str] = field(default_factory=list)


Block = Union[Heading, Paragraph, Table, Figure, Items]

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f2} caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0}
img{max-width:100%;border:1px solid #eee} figure{margin:1em 0}
figcaption{font-size:13px;color:#555}
.banner{background:#fff3cd;border:2px solid #c98a00;padding:0.7em 1em;font-weight:600}
"""


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
        return f"<h{block.level}{anchor}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        cls = ' class="banner" role="alert"' if block.banner else ""
        return f"<p{cls}>{html.escape(block.text)}</p>"
    if isinstance(block, Items):
        return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
        caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in block.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
                       + "</tr>" for row in block.rows)
        return (f"<table{anchor}>{caption}<thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")
    data = base64.b64encode(block.png).decode("ascii")
    return (f'<figure><img class="figure" alt="{html.escape(block.caption)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(block.caption)}'
            "</figcaption></figure>")


def render_html(title: str, blocks: Sequence[Block]) -> str:
    body = "\n".join(_html_block(b) for b in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


# Markdown renders raw HTML and turns punctuation into links, emphasis, code and math: every
# character that can start such a construct is written as an entity or a backslash escape
# (CommonMark escapes any ASCII punctuation), so text from folder names and records is shown,
# never interpreted. Line breaks become spaces: no text can open a block of its own.
MD_TEXT = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\n": " ", "\r": " ", "\t": " ",
           **{char: "\\" + char for char in "\\`*_[]|~#$"}}


def md_text(value: Any) -> str:
    """Any value as literal Markdown inline text (table cell, paragraph, heading, caption)."""
    text = "".join(MD_TEXT.get(char, char) for char in str(value))
    # A list marker or numbered item at the start would open a block: escape it too.
    return re.sub(r"^(\s*)([-+](?=\s|$)|\d+(?=[.)](?:\s|$)))", lambda m: m.group(1) + "\\" + m.group(2)
                  if not m.group(2).isdigit() else m.group(1) + m.group(2) + "\\", text)


def _md_cell(value: Any) -> str:
    return md_text(value)


def _md_block(block: Block) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + md_text(block.text)
    if isinstance(block, Paragraph):
        return f"**{md_text(block.text)}**" if block.banner else md_text(block.text)
    if isinstance(block, Items):
        return "\n".join(f"- {md_text(i)}" for i in block.items)
    if isinstance(block, Table):
        lines = [f"**{md_text(block.caption)}**", ""] if block.caption else []
        lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
        lines.append("|" + "---|" * len(block.headers))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    caption = md_text(block.caption)
    return f"![{caption}]({block.name})\n\n*{caption}*"


def render_markdown(title: str, blocks: Sequence[Block]) -> str:
    return f"# {md_text(title)}\n\n" + "\n\n".join(_md_block(b) for b in blocks) + "\n"


def write_report(out: "ReportFolder", title: str, blocks: Sequence[Block]) -> list[Path]:
    """report.html, report.md and the figures as PNG files, each atomically; returns them."""
    written = [out.write(block.name, block.png) for block in blocks if isinstance(block, Figure)]
    written.append(out.write("report.html", render_html(title, blocks)))
    written.append(out.write("report.md", render_markdown(title, blocks)))
    return written
