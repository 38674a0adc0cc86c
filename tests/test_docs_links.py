"""README.md and docs/: links that resolve, a short README, and a page for every config key.

The README is the how-to and docs/ the reference (issue 21, item 6); these checks keep the two
joined: every relative link (and image) of README.md and docs/**/*.md names a file that exists,
an anchor names a heading of its target, every docs page is reachable from the README, and
docs/config.md names every key the trainer really defines under TRAINER.DAPT_INIT.
"""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 300

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
# [text](target) and ![alt](target), with an optional "title"; text may hold one level of [].
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _prose(text: str) -> str:
    # Links inside code (fenced blocks, `spans`) are not links: a shell line such as
    # `[[ -f x ]]` or an example of link syntax must not count.
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """The link targets of a markdown text, outside code."""
    return _LINK.findall(_prose(text))


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a markdown text (repeats get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for _, title in _HEADING.findall(_FENCE.sub("", text)):
        slug = github_slug(title)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    """The relative links of one markdown file that name no file, or no heading of it."""
    problems = []
    for target in links(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.is_file():
            problems.append(f"{path.name}: {target} (no file {dest})")
        elif anchor and dest.suffix == ".md" and \
                anchor not in anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{path.name}: {target} (no heading #{anchor} in {dest.name})")
    return problems


def test_the_checker_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text("# Page\n\n## Config keys: `TRAINER.DAPT_INIT`\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Doc\n[ok](page.md#config-keys-trainerdapt_init) [self](#doc) [web](https://x.org/a)\n"
        "[gone](nowhere.md) ![img](missing.png) [bad](page.md#no-such-heading)\n"
        "`[code](not-a-link.md)`\n```\n[fenced](not-a-link-either.md)\n```\n")
    problems = broken_links(doc)
    assert len(problems) == 3, problems
    assert "nowhere.md" in problems[0] and "missing.png" in problems[1]
    assert "#no-such-heading" in problems[2]


def test_github_slugs_of_headings_with_code_and_punctuation() -> None:
    assert github_slug("Results: `parse_test_res.py`") == "results-parse_test_respy"
    assert github_slug("Quick start: from clone to a trial study on a CPU") == \
        "quick-start-from-clone-to-a-trial-study-on-a-cpu"
    assert anchors("# A\n## B\n## B\n") == {"a", "b", "b-1"}


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move reference to docs/"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve()
              for t in links(README.read_text(encoding="utf-8")) if t.partition("#")[0]}
    pages = {p.resolve() for p in DOCS.glob("*.md")}
    assert len(pages) >= 8
    assert pages - linked == set()


def test_readme_test_command_is_the_one_ci_runs() -> None:
    # .ci/run "runs the README's test command": the same pytest arguments, whatever the
    # interpreter's name (python3 in CI, python in a virtual environment).
    ci = [shlex.split(line) for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if re.match(r"^\s*python3? -m pytest\b", line)]
    assert len(ci) == 1
    readme = [shlex.split(line) for line in README.read_text(encoding="utf-8").splitlines()
              if re.match(r"^python3? -m pytest\b", line)]
    assert [ci[0][1:]] == [cmd[1:] for cmd in readme]


def test_docs_config_names_every_trainer_key() -> None:
    from yacs.config import CfgNode

    from trainers.dapt_init.config import add_dapt_init_config

    # The real keys: the trainer's own function fills a config with TRAINER and DATASET nodes,
    # as the toolbox's default config has them.
    cfg = CfgNode()
    cfg.TRAINER = CfgNode()
    cfg.DATASET = CfgNode()
    add_dapt_init_config(cfg)
    keys = list(cfg.TRAINER.DAPT_INIT.keys())
    assert len(keys) >= 10 and "INIT_METHOD" in keys
    page = (DOCS / "config.md").read_text(encoding="utf-8")
    # Each key's row in the table: | `KEY` | default | what it does |
    rows = {m.group(1): m.group(2) for m in
            re.finditer(r"^\| `([A-Z0-9_]+)` \| [^|]+ \| (.+) \|$", page, re.M)}
    missing = [k for k in keys if k not in rows]
    assert missing == [], f"docs/config.md has no row for TRAINER.DAPT_INIT.{missing}"
    assert all(len(rows[k].strip()) >= 10 for k in keys), "a key's row says nothing"
    assert "`DATASET.SUBSAMPLE_CLASSES`" in page


def code_map() -> list[str]:
    """The paths the README's "Map of the code" names, one a line (first word of each line)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Map of the code", 1)[1]
    block = _FENCE.search(section)
    assert block is not None, "README's Map of the code has no code block"
    return [line.split()[0] for line in block.group(0).splitlines()[1:-1] if line.strip()]


def test_code_map_names_existing_paths_and_every_top_level_folder() -> None:
    named = code_map()
    assert [p for p in named if not (ROOT / p).exists()] == []
    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                                 text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"no git checkout to list the tracked folders: {error}")
    folders = {p.split("/")[0] for p in tracked if "/" in p and not p.startswith(".")}
    covered = {p.split("/")[0] for p in named}
    assert folders - covered == set(), "a top-level folder is missing from the README's map"
