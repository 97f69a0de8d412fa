"""Each page checked by axe-core (Deque's accessibility engine, MPL-2.0, installed from npm by `.ci/run` into
build/npm; a test-only tool, never served with the page) against WCAG 2 A/AA rules: labels, names, contrast,
landmarks, alt texts. Skips, saying so, without Chromium or axe-core."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.web.conftest import sign_in, wait_for
from tests.web.scenario import Site

pytestmark = pytest.mark.slow  # drives a real browser (headless Chromium) and runs axe on every page

AXE = Path(__file__).resolve().parents[2] / "build" / "npm" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        pytest.skip(f"axe-core is not installed at {AXE}: npm install --prefix build/npm axe-core@4.14.1")
    return AXE.read_text()


def violations(browser, source: str) -> list[str]:  # type: ignore[no-untyped-def]
    browser.execute_script(source)  # WebDriver evaluates it outside the page's CSP; the page itself loads no code
    found = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
           .then((r) => done(r.violations.map((v) => [v.id, v.nodes.map((n) => n.target.join(" "))])));
    """)
    return [json.dumps(v) for v in found]


def test_every_page_passes_axe(browser, site: Site, axe_source: str, capsys, monkeypatch) -> None:
    browser.set_script_timeout(30)
    sign_in(browser, site, "bob", capsys, monkeypatch)
    wait_for(browser, lambda d: d.find_elements("css selector", "#feed li.card img"))
    assert violations(browser, axe_source) == [], "feed"
    browser.get(f"{site.url}/web/photo.html?id={site.photos['group']}")
    wait_for(browser, lambda d: d.find_elements("css selector", "#mine-list .audience"))
    assert violations(browser, axe_source) == [], "photo"
    browser.get(f"{site.url}/web/rules.html")
    area = wait_for(browser, lambda d: d.find_element("id", "text"))
    wait_for(browser, lambda d: area.get_attribute("value"))
    area.send_keys("revael to alice\n")
    wait_for(browser, lambda d: d.find_elements("css selector", "#errors li"))
    assert violations(browser, axe_source) == [], "rules with an error"
    browser.get(f"{site.url}/web/signin.html")
    assert violations(browser, axe_source) == [], "sign-in"
    # the check can fail: an unlabelled field added to the page is reported
    browser.execute_script("document.querySelector('main').append(document.createElement('input'))")
    assert any(v.startswith('["label"') for v in violations(browser, axe_source))
