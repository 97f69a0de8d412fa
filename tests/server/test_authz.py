"""Authentication and authorization against the real server over HTTP: every rule both ways."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

from mfmc.crypto.auth import sign_challenge
from mfmc.crypto.errors import ForgedSignatureError, StaleVersionError
from mfmc.crypto.signing import canonical_rules, sign_rules
from mfmc.errors import AuthenticationError, PermissionDeniedError
from mfmc.service.testing import grid_photo
from tests.server.conftest import Deployment, befriend

PUBLIC = {("GET", "/api/health"), ("POST", "/api/auth/challenge"), ("POST", "/api/auth/token"),
          ("POST", "/api/users"), ("POST", "/api/users/check"), ("GET", "/api/users/{name}"),
          ("POST", "/api/users/{name}/rotate")}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_every_endpoint_that_acts_for_a_user_needs_a_login(live: Deployment) -> None:
    from mfmc.server.app import create_app

    app = create_app(live.server, audience="mfmc-test")
    routes = [(m, r.path) for r in app.routes if getattr(r, "path", "").startswith("/api/")
              for m in getattr(r, "methods", ()) if m != "HEAD"]
    protected = [(m, p) for m, p in routes if (m, p) not in PUBLIC]
    assert len(protected) >= 25
    with httpx.Client(base_url=live.url) as http:
        for method, path in protected:
            url = path.replace("{photo_id}", "1").replace("{index}", "0")
            for name in ("{other}", "{followee}", "{follower}", "{owner}", "{recipient}", "{name}"):
                url = url.replace(name, "nobody_here")
            for headers in ({}, {"Authorization": "Bearer alice.9999999999.forged"}):
                r = http.request(method, url, headers=headers, json={})
                assert r.status_code == 401, (method, path, r.status_code, r.text)
                body = r.json()["error"]
                assert body["type"] == "AuthenticationError" and "Traceback" not in r.text


def test_login_needs_the_users_own_key(live: Deployment, people) -> None:
    alice, bob = people("alice", "bob", enroll=False, rules="").values()
    with httpx.Client(base_url=live.url) as http:
        got = http.post("/api/auth/challenge", json={"user": alice.user}).json()
        # bob signs alice's challenge with his own key: refused
        forged = sign_challenge(bob.keyring.keys, got["challenge"], audience=got["audience"])
        r = http.post("/api/auth/token", json={"user": alice.user, "challenge": got["challenge"],
                                               "answer": _b64(forged)})
        assert r.status_code == 401
        # a made-up challenge, or one for another audience: refused
        own = sign_challenge(alice.keyring.keys, got["challenge"], audience="another-server")
        r = http.post("/api/auth/token", json={"user": alice.user, "challenge": got["challenge"],
                                               "answer": _b64(own)})
        assert r.status_code == 401
        fake = f"{alice.user}.9999999999.AAAA.BBBB"
        r = http.post("/api/auth/token", json={"user": alice.user, "challenge": fake,
                                               "answer": _b64(sign_challenge(alice.keyring.keys, fake,
                                                                             audience=got["audience"]))})
        assert r.status_code == 401
        # the real answer works, and the token names alice only
        ok = sign_challenge(alice.keyring.keys, got["challenge"], audience=got["audience"])
        token = http.post("/api/auth/token", json={"user": alice.user, "challenge": got["challenge"],
                                                   "answer": _b64(ok)}).json()["token"]
        me = http.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["user"] == alice.user
        _, until, mac = token.split(".")
        r = http.get("/api/me", headers={"Authorization": f"Bearer {bob.user}.{until}.{mac}"})
        assert r.status_code == 401


def test_a_name_keeps_its_keys(live: Deployment, people) -> None:
    alice, bob = people("alice", "bob", enroll=False, rules="").values()
    with httpx.Client(base_url=live.url) as http:
        r = http.post("/api/users", json={"name": alice.user, "public_keys": alice.keyring.public.to_json()})
        assert r.status_code == 200 and r.json()["created"] is False
        # bob's keys under alice's name: the key says bob
        r = http.post("/api/users", json={"name": alice.user, "public_keys": bob.keyring.public.to_json()})
        assert r.status_code == 400


def test_a_viewer_gets_only_their_own_view(live: Deployment, people) -> None:
    users = people("alice", "bob", "carol")
    alice, bob, carol = users.values()
    befriend(alice, bob)
    photo = grid_photo([0, 1, 2], seed=7)
    up = alice.upload(photo, album="party")
    # bob (a friend) sees alice's face; carol (a stranger) does not; each asked for their own view
    assert [d.reveal for d in bob.render(up.photo_id).decisions][:2] == [True, True]
    assert [d.reveal for d in carol.render(up.photo_id).decisions] == [False, False, False]
    assert np.array_equal(bob.render(up.photo_id).image[1:31, 1:31], photo[1:31, 1:31])
    assert not np.array_equal(carol.render(up.photo_id).image[1:31, 1:31], photo[1:31, 1:31])
    # explanations and audiences only for the owner of the face
    assert alice.explain(up.photo_id, 0, carol.user).reveal is False
    assert "only" in alice.audience(up.photo_id, 0)["text"]
    for who in (bob, carol):
        with pytest.raises(PermissionDeniedError):
            who.explain(up.photo_id, 0, carol.user)
        with pytest.raises(PermissionDeniedError):
            who.audience(up.photo_id, 0)
    # face rows with owners: the uploader sees all, others only their own
    assert len(alice.faces(up.photo_id)) == 3
    assert [f.owner for f in bob.faces(up.photo_id)] == [bob.user]
    assert carol.faces(up.photo_id) == []


def test_only_owners_set_their_rules_and_versions_only_go_up(live: Deployment, people) -> None:
    alice, bob = people("alice", "bob", enroll=False).values()
    text = f"face {alice.user}\ndefault public\n"
    version = int(alice.call("GET", f"/api/rules/{alice.user}")["version"])
    assert version == 1
    # bob stores rules for alice's face, signed by bob: refused (as bob, and as a claim of alice's rules)
    with pytest.raises(PermissionDeniedError):
        bob.call("PUT", "/api/rules", json={"owner": bob.user, "name": "x.mfmc", "text": text, "version": 5,
                                            "signature": _b64(sign_rules(text, bob.keyring.keys, version=5))})
    with pytest.raises(PermissionDeniedError):
        bob.call("PUT", "/api/rules", json={"owner": alice.user, "name": "x.mfmc", "text": text, "version": 5,
                                            "signature": _b64(sign_rules(text, bob.keyring.keys, version=5))})
    # alice's text with a signature by bob's key, sent by alice: forged
    with pytest.raises(ForgedSignatureError):
        alice.call("PUT", "/api/rules", json={"owner": alice.user, "name": "a.mfmc", "text": text, "version": 2,
                                              "signature": _b64(sign_rules(text, bob.keyring.keys, version=2))})
    # the owner's signature at the next version: stored
    sig2 = sign_rules(canonical_rules(text).decode(), alice.keyring.keys, version=2)
    alice.call("PUT", "/api/rules", json={"owner": alice.user, "name": "a.mfmc", "text": text, "version": 2,
                                          "signature": _b64(sig2)})
    # replaying version 1 (signed by alice earlier) or version 2 again: refused (rollback / replay)
    old = f"face {alice.user}\ndefault friends\n"
    sig1 = sign_rules(canonical_rules(old).decode(), alice.keyring.keys, version=1)
    for body in ({"text": old, "version": 1, "signature": _b64(sig1)},
                 {"text": text, "version": 2, "signature": _b64(sig2)}):
        with pytest.raises(StaleVersionError):
            alice.call("PUT", "/api/rules", json={"owner": alice.user, "name": "a.mfmc", **body})
    # rolling the row back in the database does not lower the version the server enforces: refused at render
    with live.server.store.tx() as tx:
        tx.set_rules(alice.user, "a.mfmc", canonical_rules(old).decode(), signature=sig1, level="signed", version=1)
        tx.bump_revision()
    with live.server.store.read() as tx:
        refused = live.server.current_policy(tx).refused
    assert "older than 2" in refused[alice.user]


def test_friendship_needs_both_and_follow_needs_approval(live: Deployment, people) -> None:
    alice, bob, carol = people("alice", "bob", "carol", enroll=False, rules="").values()
    assert alice.befriend(bob.user) == "requested"
    assert bob.user not in alice.me()["friends"]
    assert bob.befriend(alice.user) == "friends"
    assert alice.user in bob.me()["friends"]
    assert carol.follow(alice.user) == "requested"
    assert carol.user not in alice.me()["followers"]
    with pytest.raises(PermissionDeniedError):
        alice.approve_follower(bob.user)  # bob never asked
    assert alice.approve_follower(carol.user) == "follows"
    assert carol.user in alice.me()["followers"]
    with pytest.raises(PermissionDeniedError):
        bob.call("POST", f"/api/followers/{carol.user}")  # bob cannot approve a follow of alice


def test_envelopes_only_from_their_owner_to_a_friend(live: Deployment, people) -> None:
    alice, bob, carol = people("alice", "bob", "carol").values()
    befriend(alice, bob)
    sent = alice.call("GET", "/api/envelopes/sent")["envelopes"]
    assert [e["recipient"] for e in sent] == [bob.user]
    envelope = sent[0]["envelope"]
    with pytest.raises(PermissionDeniedError):  # carol stores alice's envelope as if it were hers
        carol.call("PUT", "/api/envelopes", json={"envelope": envelope})
    carol_to_alice = carol.keyring.share_with(alice.keyring.public, level="friends")
    with pytest.raises(PermissionDeniedError):  # not friends
        carol.call("PUT", "/api/envelopes", json={"envelope": _b64(carol_to_alice)})
    assert bob.call("GET", "/api/envelopes")["envelopes"][0]["owner"] == alice.user
    assert all(e["owner"] != alice.user for e in carol.call("GET", "/api/envelopes")["envelopes"])


def test_tags_and_consent(live: Deployment, people) -> None:
    alice, bob, carol, dan = people("alice", "bob", "carol", "dan").values()
    befriend(alice, bob)
    photo = grid_photo([0, 1, 2], seed=8)
    up = alice.upload(photo, model="explicit")  # alice's client identifies alice and bob: pending tags
    assert [(f.tag, f.consent) for f in up.faces] == [(alice.user, "pending"), (bob.user, "pending"), (None, "none")]
    # only the uploader proposes tags
    with pytest.raises(PermissionDeniedError):
        carol.tag(up.photo_id, 2, carol.user)
    assert alice.tag(up.photo_id, 2, carol.user) == "pending"
    # only the tagged user consents; nobody else grants it
    for who in (alice, bob, dan):
        with pytest.raises(PermissionDeniedError):
            who.consent(up.photo_id, 2)
    assert not dan.render(up.photo_id).decisions[2].reveal
    assert carol.consent(up.photo_id, 2) == "granted"
    seen = dan.render(up.photo_id)
    assert seen.decisions[2].reveal and np.array_equal(seen.image[1:31, 65:95], photo[1:31, 65:95])
    # a face identified as bob cannot be tagged as carol until bob refuses or untags
    with pytest.raises(PermissionDeniedError, match="is tagged as") as err:
        alice.tag(up.photo_id, 1, carol.user)
    assert "must refuse or untag" in (err.value.help or "")
    with pytest.raises(PermissionDeniedError):
        carol.untag(up.photo_id, 1)  # neither the uploader nor the tagged user
    assert bob.consent(up.photo_id, 1, grant=False) == "refused"
    assert alice.tag(up.photo_id, 1, dan.user) == "pending"
    # the tagged user revokes: the face is faked again with a new fake
    carol.consent(up.photo_id, 2, grant=False)
    assert not dan.render(up.photo_id).decisions[2].reveal
    tags = dan.call("GET", "/api/tags/requests")["requests"]
    assert [(t["photo"], t["face"]) for t in tags] == [(up.photo_id, 1)]


def test_bad_requests_are_json_errors_without_traces(live: Deployment, people) -> None:
    (alice,) = people("alice", enroll=False, rules="").values()
    token = alice.api.login(alice.keyring.keys)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live.url, headers=auth) as http:
        cases = [
            http.post("/api/photos", content=b"{not json", headers={"content-type": "application/json"}),
            http.post("/api/photos", json={"image": "!!", "faces": [], "client_key": "k"}),
            http.post("/api/photos", json={"image": _b64(b"GIF89a"), "faces": [], "client_key": "k"}),
            http.get("/api/photos/999999/render.png"),
            http.get("/api/photos/not-a-number"),
            http.post(f"/api/friends/{alice.user}"),
        ]
        for r in cases:
            assert 400 <= r.status_code < 500, (r.status_code, r.text)
            assert "Traceback" not in r.text
            err = r.json()["error"]
            assert err["message"] and err["exit_code"] in (1, 2)
        assert cases[3].status_code == 404 and cases[3].json()["error"]["exit_code"] == 2
        checked = http.post("/api/rules/validate", json={"text": "face nobody_known\ndefault frends\n"}).json()
        assert checked["ok"] is False and "did you mean `friends`" in "".join(checked["diagnostics"])


def test_request_size_limit(tmp_path) -> None:
    from tests.server.conftest import deployment

    with deployment(tmp_path / "d", max_body=64 * 1024) as dep, httpx.Client(base_url=dep.url) as http:
        r = http.post("/api/users", content=b"x" * (65 * 1024), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "request body over" in r.json()["error"]["message"]

        def chunks():
            for _ in range(80):
                yield b"y" * 1024

        r = http.post("/api/users", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_a_tampered_blob_is_refused_over_http(live: Deployment, people) -> None:
    (alice,) = people("alice").values()
    up = alice.upload(grid_photo([0, None], seed=9))
    with live.server.store.read() as tx:
        blob = tx.photo(up.photo_id).image_blob
    path = live.server.store.blobs.path(blob)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.chmod(0o600)
    path.write_bytes(bytes(data))
    live.server.compositor.clear()
    r = httpx.get(f"{live.url}/api/photos/{up.photo_id}/render.png",
                  headers={"Authorization": f"Bearer {alice.api.login(alice.keyring.keys)}"})
    assert r.status_code >= 400 and "Traceback" not in r.text
    assert json.loads(r.text)["error"]["type"] == "StoreError"


def test_unreachable_server_is_one_clear_line() -> None:
    from mfmc.client import Api
    from mfmc.errors import ServerUnavailableError

    with pytest.raises(ServerUnavailableError, match="cannot reach the mfmc server") as err:
        Api.connect("http://127.0.0.1:9")
    assert "\n" not in err.value.message and err.value.exit_code == 1


def test_expired_login_is_refused(tmp_path) -> None:
    from mfmc.server.auth import Authenticator
    from tests.server.conftest import deployment

    with deployment(tmp_path / "d") as dep:
        auth = Authenticator(dep.server, audience="mfmc-test", token_ttl_s=-1)
        token = auth.issue("someone", -5)
        with pytest.raises(AuthenticationError, match="expired"):
            auth.user_of(token)


@pytest.mark.postgres
def test_authorization_on_postgresql(tmp_path) -> None:
    """The same rules on the real PostgreSQL: tags, consent, rule rollback, a viewer's own view."""
    from tests.server.conftest import deployment

    with deployment(tmp_path / "d", db="postgres") as dep:
        clients = {n: dep.client(n) for n in ("alice", "bob", "carol")}
        for c in clients.values():
            c.create()
        alice, bob, carol = clients.values()
        for n, c in clients.items():
            c.set_rules(f"face {n}\ndefault friends\n", f"{n}.mfmc")
        for k, c in enumerate(clients.values()):
            c.enroll([grid_photo([k], seed=100 + k)])
        befriend(alice, bob)
        photo = grid_photo([0, 1, 2], seed=8)
        up = alice.upload(photo, model="explicit")
        with pytest.raises(PermissionDeniedError):
            bob.tag(up.photo_id, 2, carol.user)
        alice.tag(up.photo_id, 2, carol.user)
        with pytest.raises(PermissionDeniedError):
            bob.consent(up.photo_id, 2)
        carol.consent(up.photo_id, 2)
        assert [d.reveal for d in bob.render(up.photo_id).decisions] == [False, False, True]
        old = "face alice\ndefault friends\n"
        sig1 = sign_rules(canonical_rules(old).decode(), alice.keyring.keys, version=1)
        with pytest.raises(StaleVersionError):
            alice.call("PUT", "/api/rules", json={"owner": "alice", "name": "a.mfmc", "text": old, "version": 1,
                                                  "signature": _b64(sig1)})


def test_a_wrong_passphrase_stores_nothing(live: Deployment, people) -> None:
    from mfmc.client import Client
    from mfmc.crypto.errors import WrongPassphraseError
    from mfmc.crypto.keys import KdfParams
    from mfmc.service.testing import GridBackend

    alice, bob = people("alice", "bob").values()
    before = (len(live.server.photos()), alice.me()["friends"])
    wrong = Client(alice.api, alice.user, alice.ring_dir, backend=GridBackend(), passphrase=lambda _n: "wrong",
                   kdf=KdfParams.FAST_INSECURE)
    for action in (lambda: wrong.upload(grid_photo([0, None], seed=3)), lambda: wrong.befriend(bob.user),
                   lambda: wrong.enroll([grid_photo([0], seed=5)]), lambda: wrong.set_rules("x", "x.mfmc")):
        with pytest.raises(WrongPassphraseError) as err:
            action()
        assert err.value.exit_code == 1
    assert (len(live.server.photos()), alice.me()["friends"]) == before
    assert ("friend.request", alice.user) not in live.server.requests_for(bob.user)


def test_keys_change_only_by_a_notice_signed_with_the_current_key(live: Deployment, people) -> None:
    alice, bob = people("alice", "bob", enroll=False, rules="").values()
    before = live.server.public_keys(alice.user)
    _, forged = bob.keyring.keys.rotate()  # bob's key signs a "rotation" of bob, sent as alice's
    r = httpx.post(f"{live.url}/api/users/{alice.user}/rotate", json={"notice": _b64(forged), "rules": None})
    assert r.status_code in (400, 403, 422) and "Traceback" not in r.text
    assert live.server.public_keys(alice.user) == before
    res = alice.rotate_keys()  # alice's client: a notice signed by her current key
    assert live.server.public_keys(alice.user).fingerprint == res.new_fingerprint != before.fingerprint
    # a notice is good once: replayed after it was applied, the key that signed it is no longer the server's
    _, notice = bob.keyring.keys.rotate()  # (the new private key is thrown away: bob is only a prop here)
    r = httpx.post(f"{live.url}/api/users/{bob.user}/rotate", json={"notice": _b64(notice), "rules": None})
    assert r.status_code == 200
    r = httpx.post(f"{live.url}/api/users/{bob.user}/rotate", json={"notice": _b64(notice), "rules": None})
    assert r.status_code in (400, 403, 422)
