"""The README and docs/ name only what exists: every link and anchor, repository path and command (no Spark)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from carousel.cli import _parsers

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`\n]+)`")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_REPO_FOLDERS = ("src/", "tests/", "docs/", "benchmarks/", "scripts/", "notebooks/", "resources/", ".ci/", ".github/")
_REPO_PATH = re.compile(r"^(?:" + "|".join(re.escape(folder) for folder in _REPO_FOLDERS) + r")[\w./-]*$")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text())
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def broken_links(page: Path) -> list[str]:
    """The links of `page` whose file or heading does not exist."""
    broken = []
    for target in _LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    return broken


def missing_paths(page: Path) -> list[str]:
    """The repository paths `page` names in code spans (`src/...`, `tests/...`, ...) that do not exist."""
    named = {span.rstrip(".,:;") for span in _CODE.findall(page.read_text()) if _REPO_PATH.match(span)}
    return sorted(path for path in named if not (REPO / path.split("::")[0]).exists())


def _make_targets() -> set[str]:
    return {line.split(":")[0] for line in (REPO / "Makefile").read_text().splitlines() if re.match(r"^[\w.-]+:", line)}


def unknown_commands(page: Path) -> list[str]:
    """The `carousel <command>`, `make <target>` and `python -m <module>` that `page` names and do not exist.

    A command is a code span, or a line of a code block, that starts with it.
    """
    _, commands = _parsers()
    targets = _make_targets()
    text = page.read_text()
    lines = _CODE.findall(text) + [line for block in _FENCE.findall(text) for line in block.splitlines()]
    unknown = []
    for line in (line.strip() for line in lines):
        if match := re.match(r"carousel ([a-z][a-z-]+)", line):
            if match.group(1) not in commands:
                unknown.append(f"carousel {match.group(1)}")
        elif match := re.match(r"make ([a-z][\w-]*)", line):
            if match.group(1) not in targets:
                unknown.append(f"make {match.group(1)}")
        for module in re.findall(r"python -m ([\w.]+)", line):
            if module != "pytest" and importlib.util.find_spec(module) is None:
                unknown.append(f"python -m {module}")
    return sorted(set(unknown))


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_every_link_path_and_command_exists(page):
    assert broken_links(page) == []
    assert missing_paths(page) == []
    assert unknown_commands(page) == []


def test_the_checks_see_what_is_missing(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# A title\n\n[ok](#a-title) [gone](#no-such-heading) [file](nothing.md)\n"
        "`src/carousel/engine/build.py` `src/carousel/no_such.py`\n"
        "`carousel pipeline` `carousel bake` `make run` `make bake`\n"
    )
    assert broken_links(page) == ["#no-such-heading", "nothing.md"]
    assert missing_paths(page) == ["src/carousel/no_such.py"]
    assert unknown_commands(page) == ["carousel bake", "make bake"]


def test_the_readme_fits_a_newcomers_read():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250
