"""Fail closed in the engine (issue 12 items 4 and 5): every word is resolved at compile time, every public
compile path validates, evaluation is exhaustive, and all decision paths agree — semantics point 6 included."""

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfmc.errors import RuleError
from mfmc.policy import Context, Engine, Graph, PolicySet, compile_file, parse_rules
from mfmc.policy.model import DefaultAudience, FakesMode, Level, OwnerPolicy, Relation, Target
from tests.policy import reference
from tests.policy.strategies import OUTSIDER, USERS, contexts, graphs, rule_files

GRAPH = Graph(["alice", "bob", "carol", "dan", "erin"], [("alice", "bob"), ("alice", "carol")],
              [("erin", "alice")])


def test_compile_file_validates_an_unknown_default():
    with pytest.raises(RuleError, match="unknown default level `frends`"):
        compile_file(parse_rules("face alice\ndefault frends\n", "a.mfmc"))


@pytest.mark.parametrize("text", [
    "face alice\nfakes per_viewr\n",
    "face alice\nhide from alice\n",
    "face alice\nreveal to nobody\n",
    "default friends\n",
])
def test_compile_file_refuses_every_validation_error(text):
    with pytest.raises(RuleError):
        compile_file(parse_rules(text, "a.mfmc"))


def test_compile_file_resolves_words_into_enums():
    policy = compile_file(parse_rules("face alice\ndefault public\nfakes per_viewer\nreveal to followers\n", "a"))
    assert policy.default is DefaultAudience.EVERYONE
    assert policy.fakes is FakesMode.PER_VIEWER
    assert policy.rules[0].target.relation is Relation.FOLLOWERS


def test_hand_built_policies_with_unknown_words_are_refused():
    with pytest.raises(RuleError, match="unknown default level `frends`"):
        OwnerPolicy("alice", "frends", (), {}, FakesMode.PER_PHOTO, "a")  # type: ignore[arg-type]
    with pytest.raises(RuleError, match="unknown relationship"):
        Target(Level.RELATION, relation="frends", label="frends")  # type: ignore[arg-type]
    with pytest.raises(RuleError, match="unknown fakes mode"):
        OwnerPolicy("alice", DefaultAudience.NOBODY, (), {}, "per_viewr", "a")  # type: ignore[arg-type]


def test_a_smuggled_unknown_default_raises_instead_of_revealing():
    policy = PolicySet.from_sources([("face alice\ndefault friends\n", "a.mfmc")], graph=GRAPH)
    owner_policy = policy.get("alice")
    object.__setattr__(owner_policy, "default", "frends")  # bypass the frozen dataclass's checks
    engine = Engine(policy, GRAPH)
    with pytest.raises(RuleError):
        engine.check("bob", "alice")
    with pytest.raises(RuleError):
        engine.decide_many(["alice"], ["bob"])


def test_a_smuggled_unknown_relation_raises_instead_of_revealing():
    policy = PolicySet.from_sources([("face alice\nreveal to friends\n", "a.mfmc")], graph=GRAPH)
    rule = policy.get("alice").rules[0]
    object.__setattr__(rule.target, "relation", "frends")
    with pytest.raises(RuleError):
        Engine(policy, GRAPH).check("bob", "alice")


def test_owner_outside_the_graph_sees_their_face_by_name_and_by_index():
    policy = PolicySet.from_sources([("face zed\ndefault nobody\n", "z.mfmc")], graph=GRAPH)
    engine = Engine(policy, GRAPH)
    viewers = ["zed", "bob", None, "stranger"]
    assert engine.check("zed", "zed").reveal
    assert engine.decide_many(["zed"], viewers).tolist() == [[True, False, False, False]]
    indices = engine.viewer_indices(viewers)
    assert engine.decide_many(["zed"], indices).tolist() == [[True, False, False, False]]
    assert engine.decide_many(["alice"], indices).tolist() == [[False, False, False, False]]


def test_negative_viewer_indices_are_refused():
    engine = Engine(PolicySet({}), GRAPH)
    with pytest.raises(RuleError):
        engine.decide_many(["alice"], np.array([-1]))


# ---- semantics point 6: the owner counts as a member of every audience of their own, in conditions --------

ALICE = "face alice\ndefault friends\nhide from everyone when uploader not in friends\n"


def test_a_photo_the_owner_posted_is_not_hidden_by_uploader_not_in_friends():
    engine = Engine(PolicySet.from_sources([(ALICE, "alice.mfmc")], graph=GRAPH), GRAPH)
    assert engine.check("bob", "alice", Context(uploader="alice")).reveal
    assert engine.decide_many(["alice"], ["bob", "carol", "dan"], Context(uploader="alice")).tolist() \
        == [[True, True, False]]
    assert not engine.check("bob", "alice", Context(uploader="dan")).reveal
    assert not engine.check("bob", "alice", Context(uploader=None)).reveal


@pytest.mark.parametrize("condition", ["uploader in erin", "uploader in fam", "uploader in followers",
                                       "uploader in everyone", "not uploader not in friends_of_friends"])
def test_owner_as_uploader_is_in_every_audience(condition):
    text = f"face alice\ngroup fam = dan\nreveal to dan when {condition}\n"
    engine = Engine(PolicySet.from_sources([(text, "alice.mfmc")], graph=GRAPH), GRAPH)
    assert engine.check("dan", "alice", Context(uploader="alice")).reveal
    assert engine.decide_many(["alice"], ["dan"], Context(uploader="alice"))[0, 0]


def test_owner_outside_the_graph_as_uploader_is_in_their_audiences():
    text = "face zed\nhide from everyone when uploader not in friends\ndefault public\n"
    engine = Engine(PolicySet.from_sources([(text, "zed.mfmc")], graph=GRAPH), GRAPH)
    assert engine.check("bob", "zed", Context(uploader="zed")).reveal
    assert not engine.check("bob", "zed", Context(uploader="bob")).reveal


# ---- all decision paths agree -----------------------------------------------------------------------------


@st.composite
def policies_with_outsider_owner(draw):
    graph = draw(graphs())
    owners = draw(st.lists(st.sampled_from([*USERS, OUTSIDER]), unique=True, max_size=4))
    return graph, {o: draw(rule_files(o)) for o in owners}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies_with_outsider_owner(), contexts, st.lists(st.sampled_from([*USERS, OUTSIDER, "yy", None]),
                                                           min_size=1, max_size=8))
def test_check_decide_many_by_name_and_by_index_agree(case, ctx, viewers):
    graph_dict, texts = case
    graph = Graph(sorted(graph_dict["users"]), graph_dict["friends"], graph_dict["follows"])
    engine = Engine(PolicySet.from_sources([(t, f"{o}.mfmc") for o, t in texts.items()], graph=graph), graph)
    files = {o: parse_rules(t, f"{o}.mfmc") for o, t in texts.items()}
    context = Context(*ctx)
    owners = [*USERS, OUTSIDER, None]
    by_name = engine.decide_many(owners, viewers, context)
    by_index = engine.decide_many(owners, engine.viewer_indices(viewers), context)
    for i, owner in enumerate(owners):
        for j, viewer in enumerate(viewers):
            expected = reference.decide(files, graph_dict, viewer, owner, *ctx)
            assert engine.check(viewer, owner, context).reveal == expected
            assert by_name[i, j] == expected
            assert by_index[i, j] == expected


def test_replace_keeps_checks():
    policy = compile_file(parse_rules("face alice\n", "a"))
    with pytest.raises(RuleError):
        dataclasses.replace(policy, default="everyon")
