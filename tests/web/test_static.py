"""The page's files themselves: nothing loaded from elsewhere, no HTML built from strings, labelled controls and
images with alt texts (the browser tests check the alt texts the scripts fill in)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mfmc.server.web.routes import STATIC

PAGES = sorted(STATIC.glob("*.html"))
SCRIPTS = sorted(STATIC.glob("*.js"))


def test_the_page_has_its_files() -> None:
    assert {p.name for p in PAGES} == {"index.html", "photo.html", "rules.html", "signin.html"}
    assert {p.name for p in SCRIPTS} == {"common.js", "feed.js", "photo.js", "rules.js", "signin.js"}


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_never_turn_strings_into_html(path: Path) -> None:
    code = path.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in code, f"{path.name} uses {sink}"


@pytest.mark.parametrize("path", [*PAGES, *SCRIPTS, STATIC / "app.css"], ids=lambda p: p.name)
def test_nothing_is_loaded_from_another_site(path: Path) -> None:
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", path.read_text(), re.I), path.name


class _Controls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.labelled: set[str] = set()
        self.controls: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.labelled.add(str(a["for"]))
        if tag in ("input", "textarea", "select", "img"):
            self.controls.append((tag, a))
        if (tag == "script" and not a.get("src")) or "style" in a or any(k.startswith("on") for k in a):
            self.inline.append(tag)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_label_their_controls_and_have_no_inline_code(path: Path) -> None:
    parsed = _Controls()
    parsed.feed(path.read_text())
    for tag, attrs in parsed.controls:
        if tag == "img":
            assert "alt" in attrs, f"{path.name}: <img> without alt"
        else:
            assert attrs.get("id") in parsed.labelled or attrs.get("aria-label"), f"{path.name}: unlabelled <{tag}>"
    assert parsed.inline == [], f"{path.name}: inline script/style/handler (the CSP forbids them)"
    assert '<html lang="en">' in path.read_text()
