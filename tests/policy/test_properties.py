"""Differential and property tests: the engine agrees with the reference evaluator on random inputs."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfmc.policy import Context, Engine, Everyone, Graph, Nobody, Only, PolicySet, format_rules, parse_rules
from tests.policy import reference
from tests.policy.strategies import OUTSIDER, USERS, contexts, policies

VIEWERS = [*USERS, OUTSIDER, None]
OWNERS = [*USERS, None]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def build(graph_dict, texts):
    graph = Graph(sorted(graph_dict["users"]), graph_dict["friends"], graph_dict["follows"])
    policy = PolicySet.from_sources([(t, f"{o}.mfmc") for o, t in texts.items()], graph=graph)
    files = {o: parse_rules(t, f"{o}.mfmc") for o, t in texts.items()}
    return Engine(policy, graph), files


@SETTINGS
@given(policies(), contexts)
def test_engine_matches_reference_on_every_decision(case, ctx):
    graph_dict, texts = case
    engine, files = build(graph_dict, texts)
    uploader, album = ctx
    context = Context(uploader=uploader, album=album)
    matrix = engine.decide_many(OWNERS, VIEWERS, context)
    for i, owner in enumerate(OWNERS):
        for j, viewer in enumerate(VIEWERS):
            expected = reference.decide(files, graph_dict, viewer, owner, uploader, album)
            decision = engine.check(viewer, owner, context)
            assert decision.reveal == expected, (owner, viewer, texts.get(owner), decision.reasons)
            assert decision.reasons, "every decision carries a reason"
            assert matrix[i, j] == expected


@SETTINGS
@given(policies(), contexts)
def test_audience_matches_reference(case, ctx):
    graph_dict, texts = case
    engine, files = build(graph_dict, texts)
    uploader, album = ctx
    for owner in USERS:
        result = engine.audience(owner, Context(uploader=uploader, album=album))
        sees = {u for u in USERS if u != owner and reference.decide(files, graph_dict, u, owner, uploader, album)}
        outsider_sees = reference.decide(files, graph_dict, OUTSIDER, owner, uploader, album)
        if outsider_sees:
            assert result == Everyone(frozenset(set(USERS) - sees - {owner}))
        elif sees:
            assert result == Only(frozenset(sees))
        else:
            assert result == Nobody()


@SETTINGS
@given(policies(), contexts)
def test_owner_always_sees_own_face_and_unknown_faces_are_faked(case, ctx):
    engine, _ = build(*case)
    context = Context(*ctx)
    for user in USERS:
        assert engine.check(user, user, context).reveal
        assert not engine.check(user, None, context).reveal


@SETTINGS
@given(policies(), contexts, st.sampled_from(USERS), st.sampled_from([*USERS, "everyone", "friends", "followers"]))
def test_adding_a_hide_never_reveals_more(case, ctx, owner, hidden):
    graph_dict, texts = case
    if hidden == owner:
        return
    before, _ = build(graph_dict, texts)
    texts = dict(texts)
    texts[owner] = texts.get(owner, f"face {owner}\n") + f"hide from {hidden}\n"
    after, _ = build(graph_dict, texts)
    context = Context(*ctx)
    grown = after.decide_many(OWNERS, VIEWERS, context) & ~before.decide_many(OWNERS, VIEWERS, context)
    assert not grown.any()


@SETTINGS
@given(policies(), contexts)
def test_default_nobody_without_reveals_reveals_to_no_one_else(case, ctx):
    graph_dict, texts = case
    texts = {o: "\n".join(line for line in t.splitlines() if not line.startswith(("reveal", "default")))
             + "\ndefault nobody\n" for o, t in texts.items()}
    engine, _ = build(graph_dict, texts)
    for owner in texts:
        assert engine.audience(owner, Context(*ctx)) == Nobody()


@SETTINGS
@given(policies(), contexts)
def test_decisions_are_deterministic(case, ctx):
    engine, _ = build(*case)
    again, _ = build(*case)
    context = Context(*ctx)
    assert (engine.decide_many(OWNERS, VIEWERS, context) == again.decide_many(OWNERS, VIEWERS, context)).all()
    assert [engine.check(v, "u0", context) for v in VIEWERS] == [again.check(v, "u0", context) for v in VIEWERS]


@SETTINGS
@given(policies())
def test_formatter_round_trip(case):
    _, texts = case
    for owner, text in texts.items():
        parsed = parse_rules(text, f"{owner}.mfmc")
        formatted = format_rules(parsed)
        assert parse_rules(formatted, f"{owner}.mfmc") == parsed
        assert format_rules(parse_rules(formatted)) == formatted
