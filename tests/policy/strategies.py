"""Hypothesis strategies: random social graphs, valid rule files (as text) and photo contexts."""

from hypothesis import strategies as st

USERS = ["u0", "u1", "u2", "u3", "u4", "u5"]
OUTSIDER = "zz"  # a viewer the graph does not know
ALBUMS = ["a", "b"]
KEYWORDS = ["friends", "friends_of_friends", "followers", "everyone"]
LEVELS = ["public", "everyone", "friends", "friends_of_friends", "followers", "nobody"]


@st.composite
def graphs(draw):
    pairs = [(a, b) for i, a in enumerate(USERS) for b in USERS[i + 1 :]]
    friends = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=8))
    follows = draw(st.lists(st.sampled_from([(a, b) for a in USERS for b in USERS if a != b]), unique=True,
                            max_size=6))
    return {"users": set(USERS), "friends": friends, "follows": follows}


def _audience_names(owner, groups):
    others = [u for u in USERS if u != owner]
    return st.sampled_from(others + groups + KEYWORDS + ["ghost"])


def _conditions(owner, groups):
    names = st.lists(_audience_names(owner, groups), min_size=1, max_size=2).map(", ".join)
    atoms = st.one_of(
        names.map(lambda n: f"uploader in {n}"),
        names.map(lambda n: f"uploader not in {n}"),
        st.sampled_from(ALBUMS).map(lambda a: f'album == "{a}"'),
        st.sampled_from(ALBUMS).map(lambda a: f'album != "{a}"'),
    )
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            inner.map(lambda c: f"not ({c})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]}) and ({p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]}) or {p[1]}"),
        ),
        max_leaves=4,
    )


@st.composite
def rule_files(draw, owner):
    """The text of a valid `.mfmc` file for `owner`."""
    lines = [f"face {owner}"]
    if draw(st.booleans()):
        lines.append(f"default {draw(st.sampled_from(LEVELS))}")
    groups = []
    for g in range(draw(st.integers(0, 2))):
        members = draw(st.lists(st.sampled_from([u for u in USERS if u != owner] + groups), min_size=1, max_size=3))
        lines.append(f"group g{g} = {', '.join(members)}")
        groups.append(f"g{g}")
    for _ in range(draw(st.integers(0, 6))):
        head = draw(st.sampled_from(["reveal to", "hide from"]))
        names = draw(st.lists(_audience_names(owner, groups), min_size=1, max_size=2, unique=True))
        line = f"{head} {', '.join(names)}"
        if draw(st.booleans()):
            line += f" when {draw(_conditions(owner, groups))}"
        lines.append(line)
    if draw(st.booleans()):
        lines.append(f"fakes {draw(st.sampled_from(['per_viewer', 'per_photo']))}")
    return "\n".join(lines) + "\n"


@st.composite
def policies(draw):
    """(graph dict, {owner: text}) with rules for a random subset of users."""
    graph = draw(graphs())
    owners = draw(st.lists(st.sampled_from(USERS), unique=True, max_size=4))
    return graph, {o: draw(rule_files(o)) for o in owners}


contexts = st.tuples(st.sampled_from([*USERS, OUTSIDER, None]), st.sampled_from([*ALBUMS, "c", None]))
