"""`decisions_for` (many viewers of one photo, the engine's batched path) agrees with `decide` (one viewer, the
scalar check) for every face and viewer: friends, strangers, owners, a face nobody owns, a per-viewer owner."""

from __future__ import annotations

from mfmc.service.testing import grid_photo
from tests.platform.conftest import social


def test_batched_decisions_match_the_scalar_ones(sqlite_platform) -> None:  # type: ignore[no-untyped-def]
    p = sqlite_platform
    names = ["alice", "bob", "carol", "dan", "erin"]
    rules = {"bob": "face bob\ndefault everyone\nhide from carol\n", "dan": "face dan\ndefault nobody\n",
             "erin": "face erin\ndefault friends_of_friends\nfakes per_viewer\n"}
    social(p, names, [("alice", "bob"), ("alice", "carol"), ("carol", "erin"), ("bob", "dan")], rules)
    p.add_user("frank")  # knows nobody
    # faces of alice, bob, carol, dan, erin and one stranger nobody enrolled
    photo = p.upload(grid_photo([0, 1, 2, 3, 4, None], seed=7), "alice", model="rules")
    viewers = [*names, "frank"]
    batched = p.decisions_for(photo.photo_id, viewers)
    for viewer in viewers:
        assert batched[viewer] == [d.reveal for d in p.decide(photo.photo_id, viewer)], viewer
    # the answers are not all alike (the comparison above could not pass by accident)
    flags = [flag for row in batched.values() for flag in row]
    assert any(flags) and not all(flags)
    assert batched["carol"][1] is False and batched["frank"][1] is True  # bob hides from carol, shows everyone else
    assert all(row[5] is False for row in batched.values())  # the unknown face is fake for everyone
