"""A tiny, obviously correct evaluator of the rule semantics, straight from the design notes.

It reads the parsed AST and raw graph pairs, sharing no code with the engine, so differential tests
(tests/policy/test_properties.py) and the benchmark can check the engine against it.
"""

from mfmc.policy import ast

SPECIFICITY = {"user": 3, "group": 2, "relation": 1, "everyone": 0}


def relation(graph: dict, owner: str, name: str) -> set:
    friends = lambda u: {b for a, b in graph["friends"] if a == u} | {a for a, b in graph["friends"] if b == u}  # noqa: E731
    if name == "friends":
        return friends(owner)
    if name == "followers":
        return {a for a, b in graph["follows"] if b == owner}
    return (friends(owner) | {f2 for f in friends(owner) for f2 in friends(f)}) - {owner}


def kind(name: str, groups: dict) -> str:
    if name in ("everyone", "public"):
        return "everyone"
    if name in ("friends", "friends_of_friends", "followers"):
        return "relation"
    return "group" if name in groups else "user"


def member(graph: dict, owner: str, groups: dict, name: str, user) -> bool:
    k = kind(name, groups)
    if k == "everyone":
        return True
    if user not in graph["users"]:
        return False
    if k == "relation":
        return user in relation(graph, owner, name)
    return user in groups[name] if k == "group" else user == name


def holds(c, graph, owner, groups, uploader, album) -> bool:
    if c is None:
        return True
    if isinstance(c, ast.UploaderIn):  # the owner is in every audience of their own (semantics point 6)
        inside = uploader == owner or any(member(graph, owner, groups, n.value, uploader) for n in c.audience)
        return inside != c.negated
    if isinstance(c, ast.AlbumIs):
        return (album == c.album) != c.negated
    if isinstance(c, ast.Not):
        return not holds(c.operand, graph, owner, groups, uploader, album)
    results = [holds(o, graph, owner, groups, uploader, album) for o in c.operands]
    return all(results) if isinstance(c, ast.And) else any(results)


def decide(files: dict, graph: dict, viewer, owner, uploader=None, album=None) -> bool:
    """files: owner -> RuleFile; graph: {"users": set, "friends": [(a, b)], "follows": [(follower, followee)]}."""
    if owner is None:
        return False
    if viewer == owner:
        return True
    if owner not in files:
        return False
    groups: dict = {}
    for g in files[owner].of_type(ast.GroupDecl):
        groups[g.name.value] = set().union(*(groups.get(m.value, {m.value}) for m in g.members))
    matches = [
        (SPECIFICITY[kind(n.value, groups)], r.effect)
        for r in files[owner].of_type(ast.Rule)
        if holds(r.condition, graph, owner, groups, uploader, album)
        for n in r.audience
        if member(graph, owner, groups, n.value, viewer)
    ]
    if not matches:
        default = next((d.level.value for d in files[owner].of_type(ast.DefaultDecl)), "nobody")
        if default == "nobody":
            return False
        return member(graph, owner, groups, default, viewer)
    top = max(level for level, _ in matches)
    return all(effect is ast.Effect.REVEAL for level, effect in matches if level == top)


def deciding(files: dict, graph: dict, viewer, owner, uploader=None, album=None) -> set:
    """Lines of the statements the decision is taken by (the `default` line when the default audience reveals);
    empty for the owner, ownerless faces and owners without rules."""
    if owner is None or viewer == owner or owner not in files:
        return set()
    groups: dict = {}
    for g in files[owner].of_type(ast.GroupDecl):
        groups[g.name.value] = set().union(*(groups.get(m.value, {m.value}) for m in g.members))
    matches = [
        (SPECIFICITY[kind(n.value, groups)], r.effect, r.span.line)
        for r in files[owner].of_type(ast.Rule)
        if holds(r.condition, graph, owner, groups, uploader, album)
        for n in r.audience
        if member(graph, owner, groups, n.value, viewer)
    ]
    if not matches:
        default = next(iter(files[owner].of_type(ast.DefaultDecl)), None)
        if default is None or default.level.value == "nobody":
            return set()
        return {default.span.line} if member(graph, owner, groups, default.level.value, viewer) else set()
    top = max(level for level, _, _ in matches)
    winners = [(effect, line) for level, effect, line in matches if level == top]
    hides = {line for effect, line in winners if effect is ast.Effect.HIDE}
    return hides or {line for _, line in winners}
