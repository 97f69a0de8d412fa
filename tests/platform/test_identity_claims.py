"""Identity claims fail closed (issue 12 item 1): an ambiguous face is faked, a person two faces claim is given to
neither unless one is clearly closer, and enrolling with the face of someone the client knows is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfmc.client.matching import match_faces
from mfmc.errors import InvalidInputError
from mfmc.service import Platform
from mfmc.service.imaging import encode_png
from mfmc.service.testing import grid_photo
from tests.platform.conftest import social

T, MARGIN = 0.6, 0.09


def test_a_clear_match_owns_the_face() -> None:
    assert [m.owner for m in match_faces([{"alice": 0.3, "bob": 0.8}], T, MARGIN)] == ["alice"]
    assert [m.owner for m in match_faces([{"alice": 0.7}, None], T, MARGIN)] == [None, None]


def test_two_known_people_within_reach_make_the_face_unknown() -> None:
    for dists in ({"alice": 0.30, "bob": 0.50}, {"alice": 0.55, "bob": 0.62}):  # both match / within the margin
        (m,) = match_faces([dists], T, MARGIN)
        assert m.owner is None and "ambiguous" in m.note and "alice" in m.note and "bob" in m.note


def test_a_person_claimed_by_two_faces_goes_to_neither_unless_one_is_clearly_closer() -> None:
    clear = match_faces([{"alice": 0.20, "bob": 0.9}, {"alice": 0.45, "bob": 0.9}], T, MARGIN)
    assert [m.owner for m in clear] == ["alice", None]  # the other face is never handed to its second choice
    close = match_faces([{"alice": 0.40}, {"alice": 0.42}], T, MARGIN)
    assert [m.owner for m in close] == [None, None]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b", "c", "d"]),
                                                      st.floats(0, 1.2), max_size=4)), max_size=6))
def test_every_owner_is_the_unique_clear_match(distances: list[dict[str, float] | None]) -> None:
    owners = [m.owner for m in match_faces(distances, T, MARGIN)]
    named = [o for o in owners if o is not None]
    assert len(named) == len(set(named))  # nobody owns two faces of a photo
    for i, owner in enumerate(owners):
        if owner is None:
            continue
        dists = distances[i]
        assert dists is not None and dists[owner] < T
        for other, d in dists.items():  # every other known person is out of reach of this face
            if other != owner:
                assert d >= T and d - dists[owner] >= MARGIN
        for j, theirs in enumerate(distances):  # every other face is clearly farther from the owner
            if j != i and theirs is not None and owner in theirs and theirs[owner] < T:
                assert theirs[owner] - dists[owner] >= MARGIN


def _lookalike_of(k: int, seed: int, shift: int = 6) -> np.ndarray:
    """A grid face of person k whose colour is moved a little: within the recognizer's threshold of k."""
    image = grid_photo([k], seed=seed).astype(np.int16)
    image[1:31, 1:31] += shift
    return np.clip(image, 0, 255).astype(np.uint8)


def test_an_ambiguous_face_is_faked_on_the_client(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    # carol's client knows alice and bob; bob looks like alice (bob and alice are not friends, so bob's
    # client could not tell: his enrollment is accepted)
    social(p, ["alice", "bob", "carol"], [("alice", "carol"), ("bob", "carol")], enroll=False)
    p.enroll("alice", [grid_photo([0], seed=100)])
    p.enroll("carol", [grid_photo([2], seed=102)])
    photo = grid_photo([0, 2], seed=7)
    assert [f.owner for f in p.upload(photo, "carol").faces] == ["alice", "carol"]  # before bob enrolls
    p.enroll("bob", [_lookalike_of(0, seed=101)])
    res = p.upload(grid_photo([0, 2], seed=8), "carol")
    assert [f.owner for f in res.faces] == [None, "carol"]
    assert res.faces[0].state == "client_faked"
    assert "ambiguous" in res.faces[0].note and "alice" in res.faces[0].note and "bob" in res.faces[0].note


def test_enrolling_with_a_known_persons_face_is_refused(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    social(p, ["alice", "bob"], [("alice", "bob")], enroll=False)
    p.enroll("alice", [grid_photo([0], seed=100)])  # alice shares her embedding with her friend bob
    with pytest.raises(InvalidInputError, match="matches `alice`, whom `bob`'s client knows") as err:
        p.enroll("bob", [grid_photo([1], seed=3), _lookalike_of(0, seed=4)])
    assert err.value.exit_code == 2
    assert p.keyring("bob").own is None  # nothing enrolled, nothing shared
    with p.store.read() as tx:
        assert not tx.user("bob").enrolled and tx.shared_embeddings_from("bob") == []
    assert p.enroll("bob", [grid_photo([1], seed=3)]) == 1  # his own face is fine


def test_cli_refuses_a_claim_on_a_friends_face(cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "alice.png").write_bytes(encode_png(grid_photo([0], seed=1)))
    (tmp_path / "claim.png").write_bytes(encode_png(_lookalike_of(0, seed=2, shift=3)))
    (tmp_path / "alice.mfmc").write_text("face alice\ndefault friends\n")
    # alice enrolls before the friendship: her client must still seal her embedding to bob when he accepts
    for args in (["init"], ["user", "add", "alice", "bob"], ["rules", "set", "alice.mfmc"],
                 ["enroll", "alice", "alice.png"], ["friend", "alice", "bob"]):
        assert cli(*args) == 0, args
    capsys.readouterr()
    assert cli("enroll", "bob", "claim.png") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the face in `claim.png` matches `alice`") and "help:" in err
