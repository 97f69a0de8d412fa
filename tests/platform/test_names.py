"""User names follow the rule language (issue 12 item 12): every accepted name can be written in a rule file and
means that user; reserved words and names that collide regardless of case are refused, with nothing created."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfmc.errors import InvalidInputError
from mfmc.policy import Graph, PolicySet
from mfmc.service import Platform
from mfmc.vocabulary import RESERVED_NAMES, check_user_name

REFUSED = ["public", "friends", "friends_of_friends", "followers", "nobody", "everyone", "Public", "NOBODY",
           "when", "face", "uploader", "per_viewer", "bob.smith", "bob smith", "1bob", "-bob", "", "b" * 65,
           "bob\n", "böb", "bob/../x"]


@pytest.mark.parametrize("name", REFUSED)
def test_names_the_rules_cannot_express_are_refused(sqlite_platform: Platform, name: str) -> None:
    p = sqlite_platform
    with pytest.raises(InvalidInputError) as err:
        p.add_user(name)
    assert err.value.exit_code == 2 and "`" in err.value.message
    assert p.users() == []
    assert not any(p.clients_dir.iterdir())  # no keyring was created for it
    with p.store.tx() as tx, pytest.raises(InvalidInputError):  # the store refuses it on its own too
        tx.add_user(name)


def test_names_are_unique_regardless_of_case(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    assert p.add_user("alice")
    for clash in ("Alice", "ALICE"):
        with pytest.raises(InvalidInputError, match="clashes with the existing user `alice`"):
            p.add_user(clash)
    assert p.users() == ["alice"]
    assert sorted(x.name for x in p.clients_dir.iterdir()) == ["alice"]
    assert p.add_user("alice") is False  # the same name again is still idempotent


def test_cli_refuses_reserved_and_colliding_names(cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("init") == 0
    assert cli("user", "add", "alice") == 0
    capsys.readouterr()
    assert cli("user", "add", "friends") == 2
    assert capsys.readouterr().err.startswith("error: `friends` is a reserved word")
    assert cli("user", "add", "Alice") == 2
    assert "clashes" in capsys.readouterr().err
    assert cli("user", "add", "bob.smith") == 2
    assert "invalid user name `bob.smith`" in capsys.readouterr().err


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-]{0,70}", fullmatch=True))
def test_every_accepted_name_can_be_named_in_rules(name: str) -> None:
    try:
        check_user_name(name)
    except InvalidInputError:
        assert len(name) > 64 or name.lower() in RESERVED_NAMES
        return
    other = "zz_other" if name != "zz_other" else "zz_other2"
    graph = Graph(users=[name, other], friends=[(name, other)], follows=[])
    policy = PolicySet.from_sources([(f"face {name}\ndefault nobody\nreveal to {other}\n", "r.mfmc")], graph=graph)
    assert [o.owner for o in policy] == [name]
    assert {u for r in next(iter(policy)).rules for u in r.target.users} == {other}


def test_the_database_enforces_case_insensitive_uniqueness(sqlite_platform: Platform) -> None:
    from mfmc.errors import StoreError
    from mfmc.store import User

    p = sqlite_platform
    p.add_user("carol")
    with pytest.raises(StoreError, match="ix_users_name_nocase"), p.store.tx() as tx:
        tx.session.add(User(name="CAROL"))  # even a writer that skips the check is stopped by the database
        tx.session.flush()
    assert p.users() == ["carol"]
