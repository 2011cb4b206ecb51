"""ARCHITECTURE.md stays in step with the code: every path its layout block names exists.

The layout block is a tree: an entry is a name at an even indentation of at most eight spaces
(a directory ends in ``/``), nested under the entry above it with two spaces less; its
description follows on the same line, and wrapped description lines are indented further.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "ARCHITECTURE.md"

#: Deepest indentation of an entry; description lines are indented further than this.
MAX_ENTRY_INDENT = 8
_ENTRY = re.compile(r"^(?P<indent> *)(?P<name>[A-Za-z0-9_.-]+/?)(?:\s{2,}\S.*)?$")


def layout_block(text: str) -> list[str]:
    """The lines of the first fenced block under the ``## Layout`` heading."""
    section = text.split("\n## Layout\n", 1)
    assert len(section) == 2, "ARCHITECTURE.md has no '## Layout' section"
    body = section[1].split("\n## ", 1)[0]
    match = re.search(r"^```[^\n]*\n(.*?)^```", body, re.S | re.M)
    assert match, "the Layout section has no fenced block"
    return match.group(1).splitlines()


def layout_paths(lines: list[str]) -> list[str]:
    """Every path the tree names, relative to the repository root (directories end in /)."""
    parents: list[str] = []
    paths = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent > MAX_ENTRY_INDENT:
            continue  # a wrapped description
        match = _ENTRY.match(line)
        assert match and indent % 2 == 0, f"layout line {number} is not an entry: {line!r}"
        depth = indent // 2
        assert depth <= len(parents), f"layout line {number} is indented under no directory"
        parents = parents[:depth]
        if depth:
            assert parents[-1].endswith("/"), f"layout line {number} is nested under a file"
        path = (parents[-1] if depth else "") + match.group("name")
        paths.append(path)
        parents.append(path)
    return paths


def test_every_path_the_layout_names_exists():
    paths = layout_paths(layout_block(DOC.read_text()))
    assert len(paths) > 50, "the layout block was not parsed"
    missing = [
        p for p in paths if not ((ROOT / p).is_dir() if p.endswith("/") else (ROOT / p).is_file())
    ]
    assert missing == [], (
        f"ARCHITECTURE.md's layout names paths that do not exist: {missing}; "
        "update the layout block to the tree"
    )


def test_the_check_sees_a_missing_module_and_a_misplaced_line():
    """The test above can fail: a module that is not there, nested or not, is reported."""
    lines = [
        "webapp/             the app",
        "  bootstrap.py      built once",
        "  gone.py           moved away",
        "                    wrapped description of gone.py",
        "  views/            blueprints",
        "    candidate.py    public pages",
        "tests/              the suite",
    ]
    paths = layout_paths(lines)
    assert paths == [
        "webapp/",
        "webapp/bootstrap.py",
        "webapp/gone.py",
        "webapp/views/",
        "webapp/views/candidate.py",
        "tests/",
    ]
    assert [p for p in paths if not (ROOT / p).exists()] == ["webapp/gone.py"]
    for bad in (["   odd.py   three spaces"], ["  orphan.py  no parent"], ["a.py", "  b.py"]):
        try:
            layout_paths(bad)
        except AssertionError:
            continue
        raise AssertionError(f"accepted a malformed layout: {bad}")
