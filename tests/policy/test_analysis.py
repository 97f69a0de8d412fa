"""`analyze` and `diff` (issue 16) against brute force over the whole context space with the reference evaluator
— every uploader of the graph, one outside it, none, the owner; every album literal, another album, none — for
every viewer. The reference shares no code with the engine; semantics point 6 is in both."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfmc.policy import Graph, PolicySet, analyze, diff, parse_rules
from mfmc.policy import ast as A
from tests.policy import reference
from tests.policy.strategies import OUTSIDER, USERS, graphs, policies, rule_files

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The brute-force comparisons below enumerate the whole context space for every example: about 1 s each, so they
# are `slow` (the full suite and CI run them; `-m "not slow"` leaves them out).
slow = pytest.mark.slow
VIEWERS = [*USERS, OUTSIDER, None]


def build(graph_dict, texts):
    graph = Graph(sorted(graph_dict["users"]), graph_dict["friends"], graph_dict["follows"])
    policy = PolicySet.from_sources([(t, f"{o}.mfmc") for o, t in texts.items()], graph=graph)
    return graph, policy, {o: parse_rules(t, f"{o}.mfmc") for o, t in texts.items()}


def literals(rule_file) -> set:
    found = set()

    def walk(c):
        match c:
            case A.AlbumIs(album):
                found.add(album)
            case A.Not(operand):
                walk(operand)
            case A.And(operands) | A.Or(operands):
                for o in operands:
                    walk(o)

    for rule in rule_file.of_type(A.Rule):
        walk(rule.condition)
    return found


def space(owner, *rule_files):
    """Every context of the space, by brute force (not by class)."""
    albums = set().union(*(literals(f) for f in rule_files if f is not None))
    uploaders = [*USERS, OUTSIDER, None, *([owner] if owner not in USERS else [])]
    return [(u, a) for u in uploaders for a in [*sorted(albums), "other-album", None]]


def as_audience(seen: dict, owner) -> dict:
    """The `rules audience --json` form of {viewer: bool} over USERS and OUTSIDER."""
    if seen[OUTSIDER]:
        return {"audience": "everyone", "except": sorted(u for u in USERS if u != owner and not seen[u])}
    users = sorted(u for u in USERS if u != owner and seen[u])
    return {"audience": "only", "users": users} if users else {"audience": "nobody"}


def decisions(files, graph_dict, owner, contexts):
    return {(v, c): reference.decide(files, graph_dict, v, owner, *c) for v in VIEWERS for c in contexts}


@slow
@SETTINGS
@given(policies())
def test_ever_and_always_match_brute_force(case):
    graph_dict, texts = case
    graph, policy, files = build(graph_dict, texts)
    for owner in USERS:
        contexts = space(owner, files.get(owner))
        table = decisions(files, graph_dict, owner, contexts)
        result = analyze(policy, graph, owner).to_dict()
        ever = {v: any(table[v, c] for c in contexts) for v in [*USERS, OUTSIDER]}
        always = {v: all(table[v, c] for c in contexts) for v in [*USERS, OUTSIDER]}
        assert result["ever"] == as_audience(ever, owner), texts.get(owner)
        assert result["always"] == as_audience(always, owner), texts.get(owner)


@slow
@SETTINGS
@given(policies())
def test_dead_statements_match_brute_force(case):
    graph_dict, texts = case
    graph, policy, files = build(graph_dict, texts)
    for owner, rule_file in files.items():
        contexts = space(owner, rule_file)
        decided = set().union(*(reference.deciding(files, graph_dict, v, owner, *c) for v in VIEWERS for c in contexts))
        candidates = {r.span.line for r in rule_file.of_type(A.Rule)}
        candidates |= {d.span.line for d in rule_file.of_type(A.DefaultDecl) if d.level.value != "nobody"}
        dead = analyze(policy, graph, owner).dead
        assert [d.line for d in dead] == sorted(candidates - decided), texts[owner]
        lines = texts[owner].splitlines()
        assert all(d.text == lines[d.line - 1] for d in dead)


def without(text: str, lines: set) -> str:
    return "".join(f"{line}\n" for n, line in enumerate(text.splitlines(), 1) if n not in lines)


@slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_redundant_statements_can_all_go_and_the_rest_cannot(case):
    graph_dict, texts = case
    graph, policy, files = build(graph_dict, texts)
    for owner, rule_file in files.items():
        contexts = space(owner, rule_file)
        before = decisions(files, graph_dict, owner, contexts)
        redundant = {d.line for d in analyze(policy, graph, owner).redundant}
        reduced_text = without(texts[owner], redundant)
        reduced = parse_rules(reduced_text, f"{owner}.mfmc")
        assert decisions({**files, owner: reduced}, graph_dict, owner, contexts) == before, texts[owner]
        kept = [r.span.line for r in reduced.of_type(A.Rule)]
        kept += [d.span.line for d in reduced.of_type(A.DefaultDecl) if d.level.value != "nobody"]
        for line in kept:
            smaller = parse_rules(without(reduced_text, {line}), f"{owner}.mfmc")
            assert decisions({**files, owner: smaller}, graph_dict, owner, contexts) != before, (reduced_text, line)


@st.composite
def edits(draw):
    graph = draw(graphs())
    old_owners = draw(st.lists(st.sampled_from(USERS), unique=True, max_size=3))
    new_owners = draw(st.lists(st.sampled_from(USERS), unique=True, max_size=3))
    return graph, {o: draw(rule_files(o)) for o in old_owners}, {o: draw(rule_files(o)) for o in new_owners}


@slow
@SETTINGS
@given(edits())
def test_diff_matches_brute_force(case):
    graph_dict, old_texts, new_texts = case
    graph, old, old_files = build(graph_dict, old_texts)
    _, new, new_files = build(graph_dict, new_texts)
    owners = sorted(set(old_texts) | set(new_texts))
    result = [c.to_dict() for c in diff(old, new, graph)]
    assert [r["face"] for r in result] == owners
    for owner, got in zip(owners, result, strict=True):
        contexts = space(owner, old_files.get(owner), new_files.get(owner))
        was = decisions(old_files, graph_dict, owner, contexts)
        now = decisions(new_files, graph_dict, owner, contexts)
        gains = {v: any(now[v, c] and not was[v, c] for c in contexts) for v in [*USERS, OUTSIDER]}
        loses = {v: any(was[v, c] and not now[v, c] for c in contexts) for v in [*USERS, OUTSIDER]}
        assert got["gains"] == as_audience(gains, owner), (old_texts.get(owner), new_texts.get(owner))
        assert got["loses"] == as_audience(loses, owner), (old_texts.get(owner), new_texts.get(owner))


@slow
@SETTINGS
@given(policies(), st.sampled_from(USERS), st.sampled_from([*USERS, OUTSIDER]))
def test_witness_contexts_really_reveal_and_fake(case, owner, viewer):
    graph_dict, texts = case
    graph, policy, files = build(graph_dict, texts)
    result = analyze(policy, graph, owner, viewer=viewer)
    witness = result.witness
    contexts = space(owner, files.get(owner))
    outcomes = {reference.decide(files, graph_dict, viewer, owner, *c) for c in contexts}
    assert (witness.reveal is not None) == (True in outcomes)
    assert (witness.fake is not None) == (False in outcomes)
    if witness.reveal is not None:
        assert reference.decide(files, graph_dict, viewer, owner, witness.reveal.uploader, witness.reveal.album)
        assert witness.reveal_decision.reveal
    if witness.fake is not None:
        assert not reference.decide(files, graph_dict, viewer, owner, witness.fake.uploader, witness.fake.album)


def test_owner_posted_photo_is_in_ever_for_friends_point_6():
    graph_dict = {"users": set(USERS), "friends": [("u0", "u1")], "follows": []}
    text = "face u0\ndefault friends\nhide from everyone when uploader not in friends\n"
    graph, policy, _ = build(graph_dict, {"u0": text})
    result = analyze(policy, graph, "u0", viewer="u1")
    # u1 sees u0's face when u1 (a friend) or u0 (point 6) uploads, never when a stranger does.
    assert result.to_dict()["ever"] == {"audience": "only", "users": ["u1"]}
    assert result.to_dict()["always"] == {"audience": "nobody"}
    assert result.witness.reveal.uploader in ("u0", "u1")
    assert result.witness.fake.uploader not in ("u0", "u1")
    assert result.dead == ()


# ---- larger graphs: classes over many uploader tests, against brute force with the engine -------------------
# (the engine itself is differential-tested against the reference evaluator in test_properties.py)

BIG = [f"p{i}" for i in range(40)]


@st.composite
def big_cases(draw):
    pairs = [(a, b) for i, a in enumerate(BIG) for b in BIG[i + 1 :]]
    friends = draw(st.lists(st.sampled_from(pairs), unique=True, min_size=20, max_size=90))
    follows = draw(st.lists(st.tuples(st.sampled_from(BIG), st.sampled_from(BIG)).filter(lambda p: p[0] != p[1]),
                            unique=True, max_size=40))
    owner = draw(st.sampled_from(BIG))
    others = [u for u in BIG if u != owner]
    names = st.one_of(st.sampled_from(others), st.sampled_from(["friends", "friends_of_friends", "followers"]))
    lines = [f"face {owner}", f"default {draw(st.sampled_from(['friends', 'followers', 'public', 'nobody']))}"]
    for _ in range(draw(st.integers(1, 12))):  # up to 12 distinct uploader tests: signatures span two bytes
        who = ", ".join(draw(st.lists(names, min_size=1, max_size=5, unique=True)))
        audience = ", ".join(draw(st.lists(names, min_size=1, max_size=3, unique=True)))
        negated = draw(st.booleans())
        album = draw(st.sampled_from(["", ' and album == "x"', ' or album != "y"']))
        effect = draw(st.sampled_from(["reveal to", "hide from"]))
        lines.append(f"{effect} {audience} when uploader {'not in' if negated else 'in'} {who}{album}")
    return (sorted(BIG), friends, follows), owner, "\n".join(lines) + "\n"


@slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(big_cases())
def test_classes_on_larger_graphs_match_brute_force_over_every_uploader(case):
    from mfmc.policy import Context, Engine
    from mfmc.policy.engine import audience_of

    (users, friends, follows), owner, text = case
    graph = Graph(users, friends, follows)
    policy = PolicySet.from_sources([(text, "o.mfmc")], graph=graph)
    engine = Engine(policy, graph)
    vectors = np.stack([engine.reveal_vector(owner, Context(u, a))
                        for u in [*users, "stranger", None] for a in ["x", "y", "other", None]])
    ever = audience_of(vectors.any(axis=0), graph.users, owner)
    always = audience_of(vectors.all(axis=0), graph.users, owner)
    result = analyze(policy, graph, owner)
    assert (result.ever, result.always) == (ever, always), text
    assert len({c.uploader for c in result.contexts}) <= len(users) + 1
