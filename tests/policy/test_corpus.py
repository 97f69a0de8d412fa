"""Hand-written cases, each derived from one sentence of the semantics in the design notes §2."""

import pytest

from mfmc.policy import Context, Engine, Graph, PolicySet

GRAPH = Graph(
    users=["alice", "bob", "carol", "dan", "erin", "frank", "grace"],
    friends=[("alice", "bob"), ("alice", "carol"), ("bob", "carol"), ("carol", "dan"), ("dan", "frank")],
    follows=[("erin", "alice"), ("grace", "bob")],
)
ALICE = """
face alice
default friends
group family = carol, dan
reveal to family
reveal to erin
hide from bob
hide from everyone when uploader not in friends
reveal to friends_of_friends when album == "wedding"
fakes per_viewer
"""
RULES = {
    "alice": ALICE,
    "bob": "face bob\ndefault public\n",
    "carol": "face carol\ndefault friends\n",
    "dan": "face dan\ndefault nobody\n",
    "frank": "face frank\ndefault followers\nreveal to everyone when album == \"public\"\nhide from grace\n",
}
ENGINE = Engine(PolicySet.from_sources([(t, f"{o}.mfmc") for o, t in RULES.items()], graph=GRAPH), GRAPH)

CASES = [
    # (owner, viewer, uploader, album, expected, why)
    ("alice", "alice", None, None, True, "the owner always sees their own face"),
    (None, "alice", "alice", None, False, "faces with no known owner are fake for everyone"),
    ("grace", "bob", "bob", None, False, "an owner with no rules defaults to nobody"),
    ("bob", "zed", None, None, True, "default public reveals even to viewers unknown to the graph"),
    ("bob", None, None, None, True, "default public reveals to anonymous viewers"),
    ("carol", "bob", None, None, True, "default friends: bob is carol's friend"),
    ("carol", "frank", None, None, False, "default friends: frank is not carol's friend"),
    ("dan", "carol", "carol", None, False, "default nobody: even a friend sees a fake"),
    ("alice", "bob", "carol", None, False, "a named hide beats the friends default"),
    ("alice", "carol", "frank", None, True, "group reveal beats an everyone hide (more specific)"),
    ("alice", "erin", "frank", None, True, "a named reveal beats an everyone hide"),
    ("alice", "frank", "bob", "wedding", False, "frank is not a friend of a friend of alice"),
    ("alice", "dan", "bob", "wedding", True, "dan is in family (group) and a friend of a friend"),
    ("alice", "zed", "bob", "wedding", False, "unknown viewers are only ever in everyone"),
    ("alice", "carol", "bob", None, True, "carol is a friend and family"),
    ("alice", "bob", "bob", "wedding", False, "bob: named hide beats the relationship reveal"),
    ("frank", "dan", None, None, False, "default followers: dan is a friend but not a follower"),
    ("frank", "zed", None, "public", True, "reveal to everyone applies to unknown viewers"),
    ("frank", "grace", None, "public", False, "named hide beats reveal to everyone"),
    ("frank", "erin", None, "other", False, "condition false and no default match"),
]


@pytest.mark.parametrize(("owner", "viewer", "uploader", "album", "expected", "why"), CASES,
                         ids=[c[-1] for c in CASES])
def test_corpus(owner, viewer, uploader, album, expected, why):
    context = Context(uploader=uploader, album=album)
    assert ENGINE.check(viewer, owner, context).reveal is expected
    assert bool(ENGINE.decide_many([owner], [viewer], context)[0, 0]) is expected


def test_hide_beats_reveal_at_equal_specificity():
    policy = PolicySet.from_sources([("face alice\nreveal to bob\nhide from bob when album == \"x\"\n", "a")],
                                    graph=GRAPH)
    engine = Engine(policy, GRAPH)
    assert engine.check("bob", "alice", Context(album="y")).reveal
    decision = engine.check("bob", "alice", Context(album="x"))
    assert not decision.reveal
    assert any("hide wins" in r for r in decision.reasons)


def test_reasons_name_the_statement_and_its_place():
    decision = ENGINE.check("bob", "alice", Context(uploader="carol"))
    assert decision.reasons[0].startswith("alice.mfmc:7:1: `hide from bob`")


def test_audience_forms():
    assert ENGINE.audience("bob").describe() == "everyone"
    assert ENGINE.audience("dan").describe() == "nobody (only the owner)"
    assert ENGINE.audience("alice", Context(uploader="frank")).describe() == "only carol, dan, erin"
    assert ENGINE.audience("frank", Context(album="public")).describe() == "everyone except grace"


def test_fakes_per_viewer_flag():
    assert ENGINE.policy.fakes_per_viewer("alice")
    assert not ENGINE.policy.fakes_per_viewer("bob")
    assert not ENGINE.policy.fakes_per_viewer(None)
