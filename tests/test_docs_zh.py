"""The Chinese pages for inspectors and installers keep step with the English ones: each heading of a
``docs/zh-CN`` page names the English heading it translates (``## 安装 <!-- en: Installing -->``), and the
two pages must have the same headings, at the same levels, in the same order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ("gateway-installer.md", "inspector.md")
TRANSLATES = re.compile(r"<!--\s*en:\s*(.*?)\s*-->\s*$")


def headings(text: str) -> list[tuple[int, str]]:
    """(level, text) of each Markdown heading outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        found = re.match(r"^(#{1,6})\s+(.*)$", line)
        if found and not fenced:
            out.append((len(found.group(1)), found.group(2).strip()))
    return out


@pytest.mark.parametrize("page", PAGES)
def test_the_chinese_page_has_the_english_pages_headings(page: str) -> None:
    english = headings((DOCS / page).read_text(encoding="utf-8"))
    chinese = headings((DOCS / "zh-CN" / page).read_text(encoding="utf-8"))
    named = []
    for level, text in chinese:
        found = TRANSLATES.search(text)
        assert found, f"zh-CN/{page}: heading {text!r} does not name the English heading it translates"
        chinese_part = text[: found.start()]
        assert re.search(r"[\u4e00-\u9fff]", chinese_part), f"zh-CN/{page}: {text!r} is not in Chinese"
        named.append((level, found.group(1)))
    assert named == english, f"zh-CN/{page} is out of step with {page}: update the translation"


def test_the_english_pages_point_to_their_translation() -> None:
    for page in PAGES:
        assert f"zh-CN/{page}" in (DOCS / page).read_text(encoding="utf-8"), page
