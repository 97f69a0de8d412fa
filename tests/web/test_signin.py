"""Sign-in and session rules of the web page over plain HTTP (no browser): one-time codes, expiry, the cookie's
flags, cross-site refusals, the page's security headers, and `mfmc open`'s errors."""

from __future__ import annotations

import httpx
import pytest

from mfmc.cli.main import main
from mfmc.client.embedded import free_port
from mfmc.server.web.signin import SignIns
from tests.web.conftest import sign_in_link
from tests.web.scenario import PASSPHRASE, Site

WEB = {"X-Mfmc-Web": "1"}


def code_of(link: str) -> str:
    return link.split("#code=", 1)[1]


def test_a_sign_in_code_works_once_and_gives_an_httponly_strict_cookie(site: Site, capsys, monkeypatch) -> None:
    code = code_of(sign_in_link(site, "carol", capsys, monkeypatch))
    with httpx.Client(base_url=site.url) as http:
        first = http.post("/api/auth/session", json={"code": code}, headers=WEB)
        assert first.status_code == 200 and first.json()["user"] == "carol"
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain http on 127.0.0.1; set when served over https
        assert http.get("/api/me").json()["user"] == "carol"  # the cookie is the session
        again = httpx.post(f"{site.url}/api/auth/session", json={"code": code}, headers=WEB)
        assert again.status_code == 401
        assert again.json()["error"]["message"] == "this sign-in link was already used or is not valid"


def test_an_expired_or_made_up_code_is_refused(site: Site) -> None:
    expired = SignIns(site.app.state.auth, code_ttl_s=-1).issue("bob")
    got = httpx.post(f"{site.url}/api/auth/session", json={"code": expired}, headers=WEB)
    assert got.status_code == 401 and got.json()["error"]["message"] == "this sign-in link expired"
    made_up = httpx.post(f"{site.url}/api/auth/session", json={"code": "x" * 32}, headers=WEB)
    assert made_up.status_code == 401
    assert "set-cookie" not in made_up.headers


def test_only_a_key_login_makes_codes_and_only_the_page_changes_things(site: Site, capsys, monkeypatch) -> None:
    code = code_of(sign_in_link(site, "alice", capsys, monkeypatch))
    with httpx.Client(base_url=site.url) as http:
        assert http.post("/api/auth/session", json={"code": code}, headers=WEB).status_code == 200
        # a web session cannot mint itself new sign-in links (only the user's client, by key)
        minted = http.post("/api/auth/signin", headers=WEB)
        assert minted.status_code == 403 and "web session" in minted.json()["error"]["message"]
        # a change with the cookie but from another site, or without the page's header, is refused
        cross = http.post("/api/rules/validate", json={"text": "face alice\n"},
                          headers={**WEB, "Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403 and "cross-site" in cross.json()["error"]["message"]
        bare = http.post("/api/rules/validate", json={"text": "face alice\n"})
        assert bare.status_code == 403
        assert http.post("/api/rules/validate", json={"text": "face alice\n"}, headers=WEB).json()["ok"] is True
        out = http.post("/api/auth/logout", headers=WEB)
        assert "max-age=0" in out.headers["set-cookie"].lower() or "expires=" in out.headers["set-cookie"].lower()
        assert http.get("/api/me").status_code == 401


def test_pages_are_served_with_a_strict_content_security_policy(site: Site) -> None:
    for page in ("/web/", "/web/photo.html", "/web/rules.html", "/web/signin.html", "/web/app.css"):
        got = httpx.get(site.url + page)
        assert got.status_code == 200, page
        csp = got.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert got.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(site.url + "/").headers["location"] == "/web/"


def test_analyze_answers_for_the_actors_face_only(site: Site) -> None:
    bob = site.clients["bob"]
    got = bob.call("POST", "/api/rules/analyze", json={"text": "face bob\ndefault friends\n", "name": "bob.mfmc"})
    assert got["ever"]["users"] == ["alice"]  # bob's only friend
    assert (got["change"]["gains"]["users"], got["change"]["loses"]["users"]) == (["alice"], ["carol"])
    from mfmc.errors import InvalidInputError, MfmcError

    with pytest.raises(InvalidInputError, match="not the face of `bob`"):
        bob.call("POST", "/api/rules/analyze", json={"text": "face alice\ndefault friends\n", "name": "x.mfmc"})
    with pytest.raises(MfmcError, match="unknown keyword `revael`") as invalid:  # a RuleError on the server
        bob.call("POST", "/api/rules/analyze", json={"text": "face bob\nrevael to alice\n", "name": "bob.mfmc"})
    assert invalid.value.exit_code == 2


def test_mfmc_open_fails_with_one_clear_line(site: Site, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MFMC_PASSPHRASE", PASSPHRASE)
    capsys.readouterr()
    code = main(["open", "--as", "erin", "--server", site.url, "--data-dir", str(site.data_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: no client keyring for `erin`")
    code = main(["open", "--as", "bob", "--server", f"http://127.0.0.1:{free_port()}",
                 "--data-dir", str(site.data_dir)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: cannot reach the mfmc server")
    monkeypatch.setenv("MFMC_PASSPHRASE", "wrong")
    code = main(["open", "--as", "bob", "--server", site.url, "--data-dir", str(site.data_dir)])
    assert code == 1 and capsys.readouterr().err.startswith("error: ")


def test_the_web_endpoints_that_act_for_a_user_need_a_login(site: Site) -> None:
    with httpx.Client(base_url=site.url) as http:
        for path, body in (("/api/auth/signin", None), ("/api/rules/analyze", {"text": "face bob\n"})):
            for headers in ({}, {"Authorization": "Bearer bob.9999999999.forged"}):
                got = http.post(path, json=body, headers=headers)
                assert got.status_code == 401, (path, headers, got.text)
                assert got.json()["error"]["type"] == "AuthenticationError"
        # a forged session cookie is no login either
        http.cookies.set("mfmc_session", "bob.9999999999.forged")
        assert http.get("/api/me").status_code == 401
        assert http.post("/api/rules/analyze", json={"text": "face bob\n"}, headers=WEB).status_code == 401
