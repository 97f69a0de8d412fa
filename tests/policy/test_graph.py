"""The social graph file: TOML or JSON with the same keys, clear errors for malformed input."""

import json

import pytest

from mfmc.errors import GraphError, UnknownUserError
from mfmc.policy import Graph

TOML = """
users = ["alice", "bob", "carol", "dan", "erin"]
friends = [["alice", "bob"], ["bob", "carol"]]   # symmetric pairs
follows = [["erin", "alice"]]                      # erin follows alice
"""


def test_toml_and_json_give_the_same_graph(tmp_path):
    (tmp_path / "g.toml").write_text(TOML)
    toml_graph = Graph.load(tmp_path / "g.toml")
    (tmp_path / "g.json").write_text(json.dumps(toml_graph.to_dict()))
    json_graph = Graph.load(tmp_path / "g.json")
    assert toml_graph.to_dict() == json_graph.to_dict()
    assert toml_graph.friends("bob") == {"alice", "carol"}
    assert toml_graph.friends("alice") == {"bob"}  # symmetric
    assert toml_graph.followers("alice") == {"erin"}
    assert toml_graph.followers("erin") == set()  # follows are not symmetric
    assert toml_graph.friends_of_friends("alice") == {"bob", "carol"}  # minus alice herself


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('users = ["a"]\nfriends = [["a", "b"]]\n', "unknown user `b`"),
        ('users = ["a"]\nfriends = [["a", "a"]]\n', "pairs a user with themselves"),
        ('users = ["a", "b"]\nfriends = [["a"]]\n', "must be pairs of user names"),
        ('users = "a"\n', "`users` in"),
        ('users = ["a"]\nfriend = []\n', "unknown key `friend`"),
        ("users = [", "is not valid TOML"),
    ],
)
def test_malformed_graphs(tmp_path, text, message):
    (tmp_path / "g.toml").write_text(text)
    with pytest.raises((GraphError, UnknownUserError), match=message) as info:
        Graph.load(tmp_path / "g.toml")
    assert info.value.exit_code == 2


def test_require_suggests_a_close_name():
    with pytest.raises(UnknownUserError) as info:
        Graph(["alice"]).require("alise")
    assert info.value.help == "did you mean `alice`?"
