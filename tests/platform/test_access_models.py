"""The paper's three access models (§3.3), checked on pixels with the cheap grid backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mfmc.errors import InvalidInputError
from mfmc.service import Platform
from mfmc.service.imaging import decode_png
from mfmc.service.testing import GridBackend, grid_photo
from mfmc.vocabulary import Fallback
from tests.platform.conftest import crop, make_platform, social

NAMES = ["alice", "bob", "carol", "dan"]


def _all_bytes(p: Platform) -> list[tuple[str, bytes]]:
    """Every file under the data dir's server side, and every table row, as bytes."""
    out = [(str(f), f.read_bytes()) for f in p.server_dir.rglob("*") if f.is_file()]
    from sqlalchemy import text

    with p.store.engine.connect() as conn:
        for table in ("users", "photos", "faces", "rendered_fakes", "audit_log", "shared_embeddings", "rule_files"):
            for row in conn.execute(text(f"select * from {table}")):
                out.append((table, repr(tuple(row)).encode()))
    return out


def test_proxy_never_stores_the_original(platform: Platform) -> None:
    social(platform, NAMES, [("alice", "bob")])
    image = grid_photo([0, 1, 2, None], seed=7)
    res = platform.upload(image, "alice", model="proxy", reveal=[1])
    assert [f.state for f in res.faces] == ["client_faked", "revealed_by_proxy", "client_faked", "client_faked"]
    hidden = [crop(image, f.box) for f in res.faces if f.index != 1]
    for where, data in _all_bytes(platform):
        for c in hidden:
            assert c.tobytes() not in data, f"an original face is in {where}"
        if where.endswith(".png"):
            stored = decode_png(data)
            for f in res.faces:
                same = np.array_equal(crop(stored, f.box), crop(image, f.box))
                assert same == (f.index == 1), f"face {f.index} in {where}"
    for viewer in NAMES:
        view = platform.render(res.photo_id, viewer)
        assert [d.reveal for d in view.decisions] == [False, True, False, False]
        assert view.generated == 0  # proxy photos are final: composition only
        assert np.array_equal(crop(view.image, res.faces[1].box), crop(image, res.faces[1].box))


def test_proxy_reveal_by_identified_name(platform: Platform) -> None:
    social(platform, NAMES, [("alice", "bob")])
    image = grid_photo([1, 0, 3], seed=8)
    res = platform.upload(image, "alice", model="proxy", reveal=["bob", "alice"])
    assert [f.state for f in res.faces] == ["revealed_by_proxy", "revealed_by_proxy", "client_faked"]
    with pytest.raises(Exception, match="not identified"):
        platform.upload(image, "alice", model="proxy", reveal=["dan"])


def test_explicit_tags_need_consent_and_untag_refakes(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    social(p, NAMES, [("alice", "bob")])
    image = grid_photo([0, 1, 2], seed=9)
    res = p.upload(image, "alice", model="explicit")
    # identified faces get a pending tag; carol is unknown to alice's client but kept for tagging later
    assert [(f.tag, f.consent, f.state) for f in res.faces] == [
        ("alice", "pending", "server"), ("bob", "pending", "server"), (None, "none", "server")]
    pid = res.photo_id

    def shown(viewer: str = "dan") -> list[bool]:
        view = p.render(pid, viewer)
        flags = [np.array_equal(crop(view.image, f.box), crop(image, f.box)) for f in res.faces]
        assert flags == [d.reveal for d in view.decisions]
        return flags

    assert shown() == [False, False, False]
    assert p.consent(pid, 1, "bob") == "granted"
    assert shown() == [False, True, False]
    p.tag(pid, 2, "carol")
    assert shown() == [False, True, False]  # pending
    with pytest.raises(InvalidInputError, match="not tagged as `dan`"):
        p.consent(pid, 2, "dan")
    p.consent(pid, 2, "carol")
    assert shown() == [False, True, True]
    p.untag(pid, 1, by="bob")
    assert shown() == [False, False, True]
    p.consent(pid, 2, "carol", grant=False)
    assert shown() == [False, False, False]
    q = p.upload(grid_photo([0], seed=1), "alice", model="rules")
    with pytest.raises(InvalidInputError, match="uses the `rules` model"):
        p.tag(q.photo_id, 0, "alice")


def test_untag_generates_a_new_fake(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    social(p, NAMES, [("alice", "bob")])
    image = grid_photo([1, 3], seed=10)
    res = p.upload(image, "alice", model="explicit")
    p.consent(res.photo_id, 0, "bob")
    p.untag(res.photo_id, 0)
    p.render(res.photo_id, "dan")
    with p.store.read() as tx:
        face = tx.face(res.photo_id, 0)
        fakes = [f for f in tx.fakes(res.photo_id) if f.face_index == 0]
    assert face.generation == 1 and [f.generation for f in fakes] == [1]


def test_rules_unknown_and_nobody_faces_are_faked_on_the_client(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    rules = {"carol": "face carol\ndefault nobody\n"}
    social(p, NAMES, [("alice", "bob"), ("alice", "carol")], rules)
    image = grid_photo([0, 1, 2, 3, None], seed=11)
    res = p.upload(image, "alice", model="rules")
    # carol (nobody) never shares her embedding; dan is not alice's friend; the stranger is unknown
    assert [f.owner for f in res.faces] == ["alice", "bob", None, None, None]
    assert [f.state for f in res.faces] == ["server", "server", "client_faked", "client_faked", "client_faked"]
    with p.store.read() as tx:
        base = decode_png(tx.read_blob(tx.photo(res.photo_id).image_blob))
    for f in res.faces[2:]:
        assert not np.array_equal(crop(base, f.box), crop(image, f.box))  # the original left the client faked
    bob = p.render(res.photo_id, "bob")
    assert [d.reveal for d in bob.decisions] == [True, True, False, False, False]
    dan = p.render(res.photo_id, "dan")
    assert [d.reveal for d in dan.decisions] == [False, False, False, False, False]


def test_per_viewer_fakes_and_cache_reuse(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    rules = {"bob": "face bob\ndefault friends\nfakes per_viewer\n"}
    social(p, [*NAMES, "erin"], [("alice", "bob"), ("alice", "carol")], rules)
    res = p.upload(grid_photo([0, 1, 2], seed=12), "alice", model="rules")
    cold = p.render(res.photo_id, "dan")
    assert cold.generated == 3 and not any(d.reveal for d in cold.decisions)
    warm = p.render(res.photo_id, "dan")
    assert warm.generated == 0 and np.array_equal(warm.image, cold.image)
    erin = p.render(res.photo_id, "erin")
    assert erin.generated == 1  # only bob's per-viewer fake is new; the shared fakes are reused
    assert not np.array_equal(crop(erin.image, res.faces[1].box), crop(cold.image, res.faces[1].box))
    assert np.array_equal(crop(erin.image, res.faces[0].box), crop(cold.image, res.faces[0].box))
    with p.store.read() as tx:
        keys = sorted((f.face_index, f.viewer) for f in tx.fakes(res.photo_id))
    assert keys == [(0, ""), (1, "dan"), (1, "erin"), (2, "")]


def test_generation_failure_fails_closed(tmp_path: Path) -> None:
    backend = GridBackend(fail_on={0, 1})
    p = make_platform(tmp_path / "d", backend)
    social(p, NAMES, [("alice", "bob")])
    image = grid_photo([0, 1, 3], seed=13)
    res = p.upload(image, "alice", model="rules")
    # face 2 (dan, unknown) was fine; now every fake for faces 0 and 1 raises
    view = p.render(res.photo_id, "carol")
    for f in res.faces:
        assert not np.array_equal(crop(view.image, f.box), crop(image, f.box))
    with p.store.read() as tx:
        fallbacks = {f.face_index: f.fallback for f in tx.fakes(res.photo_id)}
    assert fallbacks == {0: Fallback.BLOCK, 1: Fallback.BLOCK}
    # each fallback is counted on the result and in the audit log, with the error that caused it
    assert view.fallbacks == 2
    assert [d.fallback for d in view.decisions] == [Fallback.BLOCK, Fallback.BLOCK, Fallback.NONE]
    views = [json.loads(e.detail) for e in p.audit_log(res.photo_id) if e.action == "view"]
    assert views[-1]["fallbacks"] == [0, 1]
    with p.store.read() as tx:
        reports = [json.loads(f.report) for f in tx.fakes(res.photo_id)]
    assert all(r["error"] == "GenerationError: injected generator failure" for r in reports)
    p.close()


def test_client_fallbacks_are_counted_and_audited(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = make_platform(tmp_path / "d", GridBackend(fail_on={1}))
    social(p, NAMES, [("alice", "bob")])
    res = p.upload(grid_photo([0, 3, 5], seed=15), "alice", model="rules")  # dan and a stranger: client fakes
    assert [f.fallback for f in res.faces] == [None, Fallback.BLOCK, Fallback.NONE]
    assert res.fallbacks == 1
    upload = next(json.loads(e.detail) for e in p.audit_log(res.photo_id) if e.action == "upload")
    assert upload["fallbacks"] == {"1": "GenerationError: injected generator failure"}
    assert "face 1: no verified fake" in caplog.text and "injected generator failure" in caplog.text
    p.close()


class _BrokenBackend(GridBackend):
    def fake(self, *args, **kwargs):  # a bug in a swapper is not a reason to quietly block every face
        raise TypeError("swapper bug")


def test_a_bug_in_the_generator_is_not_hidden_behind_a_block(tmp_path: Path) -> None:
    p = make_platform(tmp_path / "d", _BrokenBackend())
    social(p, NAMES, [("alice", "bob")])
    with pytest.raises(TypeError, match="swapper bug"):
        p.upload(grid_photo([0, 3], seed=16), "alice", model="rules")
    assert p.photos() == []
    p.close()


def test_audit_log_records_who_saw_which_version(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    social(p, NAMES, [("alice", "bob")])
    res = p.upload(grid_photo([0, 1], seed=14), "alice")
    v1 = p.render(res.photo_id, "bob").version
    v2 = p.render(res.photo_id, "dan").version
    views = [(e.actor, e.version) for e in p.audit_log(res.photo_id) if e.action == "view"]
    assert views == [("bob", v1), ("dan", v2)] and v1 != v2
