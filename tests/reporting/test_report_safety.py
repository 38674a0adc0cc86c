"""Issue 25 on the report side. Family 1: text from folder names and records is escaped by
construction in report.md (rendered by python-markdown: no tag, link or emphasis comes out),
table1.tex and parse_test_res.py --format latex (no TeX special survives). Family 4: --out
refuses a user's folder untouched, replaces only a report of ours, and writes atomically."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import markdown
import pytest

from reporting.document import Paragraph, Table, render_markdown
from reporting.output import MARKER, OutputError, ReportFolder, write_atomically
from results.render import latex_escaped

REPO = Path(__file__).resolve().parents[2]

HOSTILE = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[click](javascript:alert(1))",
    "![x](http://evil/x.png)", "**bold** _it_ ~~gone~~", "`code` ``two``", "a|b|c",
    "line\nbreak # heading", "<http://auto.link>", "&lt;already&gt;", "$x^2$ math",
    "\\*escaped\\*", "<!-- comment -->", "seed1</td><td>", "# not a heading",
    "- not a list", "1. not numbered", "+ plus", "2) two", "> not a quote", "<details open>", "x\r\ny", "tab\there", "\u202eRTL",
    "ü漢字 emoji 🙂", "[ref]: http://x", "<a href='x'>a</a>", "\\", "***", "|---|",
    "<style>body{display:none}</style>", "javascript:alert(1)", "{{template}}", "%(x)s",
]


def rendered_html(text: str) -> str:
    return markdown.markdown(render_markdown("t", [Paragraph(text), Table(["h"], [[text]])]),
                             extensions=["tables"])


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_shows_text_never_markup(text: str) -> None:
    page = rendered_html(text)
    tags = set(re.findall(r"<\s*([a-zA-Z0-9]+)", page))
    assert tags <= {"h1", "p", "table", "thead", "tbody", "tr", "th", "td", "strong", "em"}
    assert "<strong>" not in page.split("<table>")[0].replace("<strong>t</strong>", "")
    assert not re.search(r"<[^>]*(href|src|on\w+)=", page)
    # The table keeps one column: a '|' in the text never splits a cell.
    assert page.count("<td") == 1


TEX_SPECIAL = re.compile(r"[\\^~_%&#${}<>|]")


@pytest.mark.parametrize("text", HOSTILE + ["^^5c", "^^5cinput{/etc/passwd}", "\\input{x}",
                                            "100%", "a_b", "#1", "{}", "~", "x^^M", "\\\\"])
def test_latex_leaves_no_special_character(text: str) -> None:
    escaped = latex_escaped(text)
    # remove what the escaper writes; any TeX special left over would be the input's own
    rest = re.sub(r"\\(textbackslash|textasciicircum|textasciitilde|textless|textgreater|"
                  r"textbar)\{\}|\\[_%&#${}]|\$\\pm\$|\$\^\\dagger\$", "", escaped)
    assert not TEX_SPECIAL.search(rest), (text, escaped, rest)
    assert "^^" not in escaped and "\n" not in escaped


def test_latex_keeps_plus_minus_of_cells() -> None:
    assert latex_escaped(r"51.00 $\pm$ 1.00 (3)") == r"51.00 $\pm$ 1.00 (3)"
    assert latex_escaped("51.00 \u00b1 1.00 \u2020") == r"51.00 $\pm$ 1.00 $^\dagger$"


def test_parse_test_res_latex_escapes_a_hostile_folder(tmp_path: Path) -> None:
    run = tmp_path / "out" / "eurosat" / "DAPT_Init" / "diff" / "vit_b16_1shots_x^^5cy" / "seed1"
    run.mkdir(parents=True)
    (run / "log.txt").write_text("=> result\n* total: 10\n* accuracy: 50.0%\n"
                                 "* error: 50.0%\n* macro_f1: 50.0%\nElapsed: 0:00:01\n")
    done = subprocess.run([sys.executable, str(REPO / "parse_test_res.py"),
                           str(run.parent.parent), "--format", "latex"],
                          capture_output=True, text=True)
    assert "^^5c" not in done.stdout + done.stderr.replace(str(tmp_path), "")


# ------------------------------------------------------------------------------ family 4
def test_refuses_a_users_folder_untouched(tmp_path: Path) -> None:
    mine = tmp_path / "paper"
    mine.mkdir()
    (mine / "table1.tex").write_text("my hand-edited table")
    (mine / "report.md").write_text("my notes")
    with pytest.raises(OutputError, match="is not empty and holds no earlier report"):
        ReportFolder(mine).claim()
    assert (mine / "table1.tex").read_text() == "my hand-edited table"
    assert sorted(p.name for p in mine.iterdir()) == ["report.md", "table1.tex"]


@pytest.mark.parametrize("marker", ["", "{}", "[]", '{"format": "other"}', "\x00\xff",
                                    '{"format": "dapt_init.report/0"}'])
def test_a_foreign_or_broken_marker_is_not_ours(tmp_path: Path, marker: str) -> None:
    (tmp_path / MARKER).write_text(marker)
    (tmp_path / "report.md").write_text("keep")
    with pytest.raises(OutputError):
        ReportFolder(tmp_path).claim()
    assert (tmp_path / "report.md").read_text() == "keep"


def test_a_report_of_ours_is_replaced_and_stale_figures_go(tmp_path: Path) -> None:
    out = tmp_path / "r"
    first = ReportFolder(out)
    first.claim()
    for name in ("report.md", "tsne.png"):
        first.write(name, "old " + name)
    first.finish()
    (out / "my_notes.txt").write_text("mine")  # a user's file beside ours is left alone
    second = ReportFolder(out)
    second.claim()
    second.write("report.md", "new")
    second.finish()
    assert (out / "report.md").read_text() == "new" and not (out / "tsne.png").exists()
    assert (out / "my_notes.txt").read_text() == "mine"
    assert json.loads((out / MARKER).read_text())["files"] == ["report.md"]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "figure.png"
    target.write_bytes(b"old figure")

    class Exploding(bytes):
        pass

    # a failure inside the write (here: fsync on a closed descriptor) leaves the old file
    real_fsync = os.fsync
    os.fsync = lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device"))
    try:
        with pytest.raises(OSError):
            write_atomically(target, b"new figure")
    finally:
        os.fsync = real_fsync
    assert target.read_bytes() == b"old figure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]  # no temp left


def test_symlinked_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text("another tree's file")
    out = tmp_path / "r"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"format": "dapt_init.report/1", "files": []}))
    (out / "report.md").symlink_to(elsewhere)
    folder = ReportFolder(out)
    folder.claim()
    folder.write("report.md", "ours")
    assert elsewhere.read_text() == "another tree's file"
    assert (out / "report.md").read_text() == "ours" and not (out / "report.md").is_symlink()


def test_cli_refusal_is_one_error_line_with_status_2(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    out = tmp_path / "paper"
    out.mkdir()
    (out / "table1.tex").write_text("mine")
    done = subprocess.run([sys.executable, str(REPO / "tools/report.py"), str(tmp_path / "runs"),
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: --out ") and "table1.tex" in done.stderr
    assert (out / "table1.tex").read_text() == "mine"


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_text("x"), "exists and is not a folder"),
    (lambda p: p.symlink_to(p), "symbolic link to nothing"),
    (lambda p: p.symlink_to(p.parent / "gone"), "symbolic link to nothing"),
    (lambda p: (p.parent / "file").write_text("x"), "is not a folder; give a folder whose"),
])
def test_bad_out_paths_refused_before_any_work(tmp_path: Path, make, words: str) -> None:
    out = tmp_path / "out"
    make(out)
    target = tmp_path / "file" / "sub" if "whose" in words else out
    with pytest.raises(OutputError, match=words):
        ReportFolder(target).check()


def test_marker_cannot_name_files_outside_the_folder(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    out = tmp_path / "r"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"format": "dapt_init.report/1",
                                          "files": ["../victim.txt", str(victim), "..", "."]}))
    folder = ReportFolder(out)
    folder.claim()
    folder.finish()
    assert victim.read_text() == "keep"
