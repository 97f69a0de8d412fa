"""The web page in a real headless Chromium against the real server: who sees which face (checked on the pixels
the browser shows), the photo page's audience/explain/consent, the rules editor, keyboard use, escaping."""

from __future__ import annotations

import shlex

import numpy as np
import pytest

from mfmc.cli.main import main
from tests.web.conftest import screenshot, shown_pixels, sign_in, wait_for
from tests.web.scenario import ALBUM, CELL, PASSPHRASE, Site

pytestmark = pytest.mark.slow  # drives a real browser (headless Chromium) through whole pages

# From the rules in tests/web/scenario.py (faces alice, bob, carol of the group photo): True = the real face.
EXPECTED = {"alice": [True, False, True], "bob": [True, True, False], "carol": [False, True, True],
            "dave": [False, False, False]}


def faces_real(shown: np.ndarray, original: np.ndarray) -> list[bool]:
    """Per grid face: are the shown pixels of its interior exactly the uploaded ones (real) or not (a fake)?"""
    assert shown.shape == original.shape
    out = []
    for x in range(0, original.shape[1], CELL):
        inner = (slice(1, CELL - 1), slice(x + 1, x + CELL - 1))
        same = np.array_equal(shown[inner], original[inner])
        if not same:  # a fake must be clearly different, not a re-encoding of the real face
            diff = np.abs(shown[inner].astype(int) - original[inner].astype(int)).mean()
            assert diff > 20, f"face at x={x} differs only slightly ({diff:.1f}): neither real nor a fake"
        out.append(same)
    return out


@pytest.mark.parametrize("viewer", ["bob", "carol"])
def test_each_viewer_sees_exactly_the_faces_the_rules_allow(browser, site: Site, viewer: str, capsys,
                                                             monkeypatch) -> None:
    sign_in(browser, site, viewer, capsys, monkeypatch)
    cards = wait_for(browser, lambda d: d.find_elements("css selector", "#feed li.card"))
    assert [int(c.get_attribute("data-photo")) for c in cards] == sorted(site.photos.values(), reverse=True)
    img = browser.find_element("css selector", f'li[data-photo="{site.photos["group"]}"] img')
    assert img.get_attribute("loading") == "lazy"
    assert "uploaded by alice, as you see it (3 faces)" in img.get_attribute("alt")
    assert faces_real(shown_pixels(browser, img), site.originals["group"]) == EXPECTED[viewer]
    if viewer == "bob":
        screenshot(browser, "feed")


def test_signed_out_page_says_how_to_sign_in(browser, site: Site) -> None:
    browser.get(f"{site.url}/web/")
    browser.execute_script("return fetch('/api/auth/logout', {method: 'POST', headers: {'X-Mfmc-Web': '1'}})")
    browser.get(f"{site.url}/web/")
    status = wait_for(browser, lambda d: d.find_element("id", "status").text)
    assert "mfmc open --as NAME" in status
    assert browser.find_elements("css selector", "#feed li") == []


def test_photo_page_shows_audience_and_explains_by_keyboard(browser, site: Site, capsys, monkeypatch) -> None:
    from selenium.webdriver.common.keys import Keys

    sign_in(browser, site, "carol", capsys, monkeypatch)
    browser.get(f"{site.url}/web/photo.html?id={site.photos['group']}")
    face = wait_for(browser, lambda d: d.find_element("id", "face-2"))
    audience = wait_for(browser, lambda d: face.find_element("css selector", ".audience").text)
    assert audience == "Who sees your real face: only alice"  # carol's `default friends`; carol's only friend
    decisions = [li.get_attribute("data-decision") for li in browser.find_elements("css selector", "#decisions li")]
    assert decisions == ["fake", "reveal", "reveal"]
    img = browser.find_element("id", "photo")
    assert "1 replaced by fakes" in img.get_attribute("alt")
    assert faces_real(shown_pixels(browser, img), site.originals["group"]) == EXPECTED["carol"]
    # keyboard only: focus the viewer list, pick bob by typing, Tab to "Explain", press Enter
    select = face.find_element("css selector", "select")
    select.send_keys("bob")
    browser.switch_to.active_element.send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.text == "Explain"
    focused.send_keys(Keys.ENTER)
    out = wait_for(browser, lambda d: face.find_element("css selector", ".explain").text)
    assert out.startswith("bob sees a fake:")
    assert "default" in out  # bob is not carol's friend: the `default friends` line decides
    screenshot(browser, "photo")


def test_tag_request_accepted_in_the_page_reveals_the_face(browser, site: Site, capsys, monkeypatch) -> None:
    from selenium.webdriver.common.keys import Keys

    photo = site.photos["tagged"]
    sign_in(browser, site, "bob", capsys, monkeypatch)
    request = wait_for(browser, lambda d: d.find_element("css selector", "#request-list li"))
    assert f"alice tagged you in photo {photo}, face 0" in request.text
    browser.get(f"{site.url}/web/photo.html?id={photo}")
    accept = wait_for(browser, lambda d: d.find_element("css selector", "#face-0 .consent button.primary"))
    assert faces_real(shown_pixels(browser, browser.find_element("id", "photo")), site.originals["tagged"]) == [False]
    screenshot(browser, "photo-tag-request")
    accept.send_keys(Keys.ENTER)
    wait_for(browser, lambda d: "Consent given" in d.find_element("id", "status").text)
    wait_for(browser, lambda d: d.find_element("css selector", "#decisions li").get_attribute("data-decision")
             == "reveal")
    assert faces_real(shown_pixels(browser, browser.find_element("id", "photo")), site.originals["tagged"]) == [True]
    assert site.clients["bob"].faces(photo)[0].consent == "granted"  # the server recorded it, not just the page


def _type_rules(browser, text: str) -> None:  # type: ignore[no-untyped-def]
    area = wait_for(browser, lambda d: d.find_element("id", "text"))
    wait_for(browser, lambda d: area.get_attribute("value"))  # the saved text (or the template) is in
    area.clear()
    area.send_keys(text)


def test_rules_editor_marks_a_typo_at_its_line_with_did_you_mean(browser, site: Site, capsys, monkeypatch) -> None:
    sign_in(browser, site, "dave", capsys, monkeypatch)
    browser.get(f"{site.url}/web/rules.html")
    _type_rules(browser, "face dave\ndefault nobody\nrevael to alice\n")
    item = wait_for(browser, lambda d: d.find_element("css selector", "#errors li"))
    assert item.get_attribute("data-line") == "3"
    assert item.text == "Line 3, column 1: unknown keyword `revael` — did you mean `reveal`?"
    mark = browser.find_element("css selector", "#backdrop mark")
    assert (mark.get_attribute("data-line"), mark.get_attribute("textContent")) == ("3", "revael")
    gutter = [s.get_attribute("data-line") for s in browser.find_elements("css selector", "#gutter .err")]
    assert gutter == ["3"]
    assert browser.find_element("id", "text").get_attribute("aria-invalid") == "true"
    assert not browser.find_element("id", "download").is_enabled()  # invalid text is not offered for signing
    screenshot(browser, "rules-error")
    item.find_element("css selector", "button").click()  # jumps to the error: the caret selects `revael`
    selected = browser.execute_script("const t = document.getElementById('text');"
                                      "return t.value.slice(t.selectionStart, t.selectionEnd)")
    assert selected == "revael"


def test_rules_editor_warns_about_an_unknown_user_name_in_valid_rules(browser, site: Site, capsys,
                                                                     monkeypatch) -> None:
    sign_in(browser, site, "dave", capsys, monkeypatch)
    browser.get(f"{site.url}/web/rules.html")
    _type_rules(browser, "face dave\ndefault nobody\nreveal to bbo\n")
    item = wait_for(browser, lambda d: d.find_element("css selector", "#errors li.warning"))
    assert item.text == "Warning, line 3, column 11: unknown user `bbo` — did you mean `bob`?"
    mark = browser.find_element("css selector", "#backdrop mark.warning")
    assert (mark.get_attribute("data-line"), mark.get_attribute("textContent")) == ("3", "bbo")
    assert browser.find_element("id", "validity").text == "The rules are valid, with 1 warning:"
    assert browser.find_element("id", "aud-ever").text == "nobody (only the owner)"


def test_rules_editor_shows_the_audience_of_a_valid_edit_then_the_saved_version(browser, site: Site, capsys,
                                                                               monkeypatch, tmp_path) -> None:
    sign_in(browser, site, "dave", capsys, monkeypatch)
    browser.get(f"{site.url}/web/rules.html")
    text = "face dave\ndefault nobody\nreveal to alice, bob\n"
    _type_rules(browser, text)
    wait_for(browser, lambda d: d.find_element("id", "validity").text == "The rules are valid.")
    ever = wait_for(browser, lambda d: d.find_element("id", "aud-ever").text)
    assert ever == "only alice, bob"
    change = browser.find_element("id", "aud-change").text
    assert change == "This edit reveals your face to 2 more people (alice, bob)."
    command = browser.find_element("id", "command").text
    assert command == f"MFMC_SERVER={site.url} mfmc rules set dave.mfmc"
    assert browser.find_element("id", "download").is_enabled()
    screenshot(browser, "rules-audience")
    browser.find_element("id", "copy").click()  # starts watching for the version the client will store
    # the user runs exactly that command (their client signs with dave's key) on the text the page offers
    env, *args = shlex.split(command)
    monkeypatch.setenv(*env.split("=", 1))
    monkeypatch.setenv("MFMC_DATA_DIR", str(site.data_dir))
    monkeypatch.setenv("MFMC_PASSPHRASE", PASSPHRASE)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dave.mfmc").write_text(browser.find_element("id", "text").get_attribute("value"))
    assert args[0] == "mfmc" and main(args[1:]) == 0, capsys.readouterr()
    wait_for(browser, lambda d: "version 1" in d.find_element("id", "saved").text)
    wait_for(browser, lambda d: d.find_element("id", "aud-change").text == "No change in who can see your real face.")


def test_user_content_is_shown_as_text_never_as_markup(browser, site: Site, capsys, monkeypatch) -> None:
    sign_in(browser, site, "carol", capsys, monkeypatch)
    card = wait_for(browser, lambda d: d.find_element("css selector", f'li[data-photo="{site.photos["album"]}"]'))
    assert ALBUM in card.find_element("css selector", "figcaption").text
    assert card.find_elements("css selector", "figcaption b") == []
    assert ALBUM in card.find_element("css selector", "img").get_attribute("alt")


def test_keyboard_order_skip_link_then_navigation_then_photos(browser, site: Site, capsys, monkeypatch) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    sign_in(browser, site, "bob", capsys, monkeypatch)
    wait_for(browser, lambda d: d.find_elements("css selector", "#feed li.card a"))
    browser.execute_script("document.activeElement && document.activeElement.blur()")
    order = []
    for _ in range(5):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        active = browser.switch_to.active_element
        order.append(active.text.split("\n")[0] or active.get_attribute("href"))
    assert order[:4] == ["Skip to content", "My feed", "My rules", "Sign out"]
    if browser.find_element("id", "requests").is_displayed():  # bob's tag request (until he answers it)
        assert order[4] == f"photo {site.photos['tagged']}, face 0"
    else:
        assert order[4].startswith(f"Photo {max(site.photos.values())} · by carol")
    outline = browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # focus is visible


def test_a_link_opened_where_the_sign_in_page_already_is_still_signs_in(browser, site: Site, capsys,
                                                                        monkeypatch) -> None:
    browser.get(f"{site.url}/web/signin.html")  # the new link differs only in its fragment: no page load
    sign_in(browser, site, "alice", capsys, monkeypatch)
    assert "#" not in browser.current_url  # the code left the address bar


def test_the_feed_pages_and_more_photos_continues_at_the_first_new_one(browser, site: Site, capsys,
                                                                       monkeypatch) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    sign_in(browser, site, "bob", capsys, monkeypatch)
    browser.set_window_size(1100, 1000)  # everything in view, no scrolling: pages come only by "More photos"
    try:
        browser.get(f"{site.url}/web/?per=2")
        wait_for(browser, lambda d: len(d.find_elements("css selector", "#feed li.card")) == 2)
        more = browser.find_element("id", "more")
        assert more.is_displayed() and browser.find_element("id", "count").text == "2 of 4 photos shown."
        browser.execute_script("arguments[0].focus()", more)
        ActionChains(browser).send_keys(Keys.ENTER).perform()
        wait_for(browser, lambda d: len(d.find_elements("css selector", "#feed li.card")) == 4)
        focused = browser.switch_to.active_element
        assert focused.get_attribute("href").endswith(f"photo.html?id={sorted(site.photos.values())[1]}")
        assert not browser.find_element("id", "more").is_displayed()
        browser.set_window_size(1100, 500)
        browser.get(f"{site.url}/web/?per=1")  # scrolling loads the next page before the end
        wait_for(browser, lambda d: len(d.find_elements("css selector", "#feed li.card")) == 1)
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        wait_for(browser, lambda d: len(d.find_elements("css selector", "#feed li.card")) >= 2)
    finally:
        browser.set_window_size(1100, 900)


def test_pages_run_without_console_errors_or_policy_violations(browser, site: Site, capsys, monkeypatch) -> None:
    sign_in(browser, site, "carol", capsys, monkeypatch)
    wait_for(browser, lambda d: d.find_elements("css selector", "#feed li.card img"))
    browser.get_log("browser")  # what came before (other tests' pages) is not this test's
    pages = [("/web/", "#feed li.card"), (f"/web/photo.html?id={site.photos['group']}", "#mine-list .audience"),
             ("/web/rules.html", "#aud-ever")]
    for path, ready in pages:
        browser.get(site.url + path)
        wait_for(browser, lambda d, css=ready: d.find_elements("css selector", css))
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []


def test_uploader_tags_a_face_and_the_tagged_user_refuses_it(browser, site: Site, capsys, monkeypatch) -> None:
    photo = site.photos["untagged"]
    sign_in(browser, site, "alice", capsys, monkeypatch)
    browser.get(f"{site.url}/web/photo.html?id={photo}")
    select = wait_for(browser, lambda d: d.find_element("id", "tag-0"))
    assert browser.find_element("id", "mine-h").text == "Faces in your photo"
    select.send_keys("dave")
    select.submit()
    wait_for(browser, lambda d: "Tagged as dave (waiting for their consent" in d.find_element("id", "face-0").text)
    screenshot(browser, "photo-uploader-tags")
    sign_in(browser, site, "dave", capsys, monkeypatch)
    browser.get(f"{site.url}/web/photo.html?id={photo}")
    refuse = wait_for(browser, lambda d: d.find_element(
        "xpath", "//*[@id='face-0']//*[contains(@class, 'consent')]//button[normalize-space()='Refuse']"))
    refuse.click()
    wait_for(browser, lambda d: "consent refused" in d.find_element("id", "status").text)
    wait_for(browser, lambda d: "You refused this tag." in d.find_element("id", "face-0").text)
    assert faces_real(shown_pixels(browser, browser.find_element("id", "photo")), site.originals["untagged"]) == [False]
    assert site.clients["dave"].faces(photo)[0].consent == "refused"
