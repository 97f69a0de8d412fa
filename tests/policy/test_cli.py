"""The `mfmc rules` commands: the contract of design notes §3, exit codes 0 / 2."""

import json
import shutil
from pathlib import Path

from mfmc.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
RULES, GRAPH = ROOT / "rules", ROOT / "examples" / "graph.toml"


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_shipped_rules(capsys):
    code, out, _ = run(capsys, "rules", "check", RULES, "--graph", GRAPH)
    assert code == 0
    assert out.startswith("ok: ")


def test_check_invalid_file_exits_2_with_position(tmp_path, capsys):
    (tmp_path / "bad.mfmc").write_text("face alice\nrevael to bob\n")
    code, _, err = run(capsys, "rules", "check", tmp_path)
    assert code == 2
    assert err.splitlines()[0] == f"{tmp_path / 'bad.mfmc'}:2:1: error: unknown keyword `revael`"
    assert "Traceback" not in err


def test_explain_json_contract(capsys):
    code, out, _ = run(capsys, "rules", "explain", "--rules", RULES, "--graph", GRAPH, "--face", "alice",
                       "--viewer", "carol", "--uploader", "bob", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["decision"] == "reveal"
    assert data["reasons"] and all(isinstance(r, str) for r in data["reasons"])


def test_explain_text(capsys):
    code, out, _ = run(capsys, "rules", "explain", "--rules", RULES, "--graph", GRAPH, "--face", "alice",
                       "--viewer", "bob")
    assert code == 0
    assert out.splitlines()[0] == "fake"


def test_explain_unknown_face_exits_2(capsys):
    code, _, err = run(capsys, "rules", "explain", "--rules", RULES, "--graph", GRAPH, "--face", "alise",
                       "--viewer", "bob")
    assert code == 2
    assert "unknown user `alise`" in err and "did you mean `alice`?" in err


def test_audience(capsys):
    code, out, _ = run(capsys, "rules", "audience", "--rules", RULES, "--graph", GRAPH, "--face", "bob", "--json")
    assert code == 0
    assert json.loads(out) == {"audience": "everyone", "except": []}
    code, out, _ = run(capsys, "rules", "audience", "--rules", RULES, "--graph", GRAPH, "--face", "dan")
    assert out.strip() == "nobody (only the owner)"


def test_missing_graph_file_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "rules", "audience", "--rules", RULES, "--graph", tmp_path / "nope.toml",
                       "--face", "bob")
    assert code == 2
    assert "cannot read graph" in err


def test_fmt_prints_canonical_form_and_check_mode(tmp_path, capsys):
    path = tmp_path / "a.mfmc"
    path.write_text("face   alice # me\n\n\n\nreveal to   bob,carol when not(album==\"x\")\n")
    code, out, _ = run(capsys, "rules", "fmt", path)
    assert code == 0
    assert out == 'face alice  # me\n\nreveal to bob, carol when not album == "x"\n'
    assert run(capsys, "rules", "fmt", "--check", path)[0] == 1
    assert run(capsys, "rules", "fmt", "--write", path)[0] == 0
    assert run(capsys, "rules", "fmt", "--check", path)[0] == 0


def test_shipped_rules_are_formatted(tmp_path, capsys):
    shutil.copytree(RULES, tmp_path / "rules")
    code, out, _ = run(capsys, "rules", "fmt", tmp_path / "rules" / "bob.mfmc")
    assert code == 0 and out.startswith("# Bob")


# ---- analyze and diff (issue 16) --------------------------------------------------------------------------

EDITED_ALICE = """face alice
default friends
hide from everyone when uploader not in friends
reveal to friends_of_friends when album == "wedding"
"""


def test_analyze_json_shipped_rules(capsys):
    code, out, _ = run(capsys, "rules", "analyze", "--rules", RULES, "--graph", GRAPH, "--face", "alice", "--json")
    assert code == 0
    # bob is always hidden by name, carol and dan are family, so `default friends` and the friends_of_friends
    # reveal never decide anything: alice's face goes to family and erin, whatever the photo.
    assert json.loads(out) == {
        "ever": {"audience": "only", "users": ["carol", "dan", "erin"]},
        "always": {"audience": "only", "users": ["carol", "dan", "erin"]},
        "dead": [{"line": 4, "text": "default friends"},
                 {"line": 12, "text": 'reveal to friends_of_friends when album == "wedding"'}],
    }


def test_analyze_json_ever_differs_from_always_with_viewer(tmp_path, capsys):
    (tmp_path / "alice.mfmc").write_text(EDITED_ALICE)
    code, out, _ = run(capsys, "rules", "analyze", "--rules", tmp_path, "--graph", GRAPH, "--face", "alice",
                       "--viewer", "dan", "--json")
    assert code == 0
    assert json.loads(out) == {
        "ever": {"audience": "only", "users": ["bob", "carol", "dan"]},
        "always": {"audience": "nobody"},
        "dead": [],
        "viewer": {"viewer": "dan", "reveal_in": {"uploader": None, "album": "wedding"},
                   "fake_in": {"uploader": None, "album": None}},
    }


def test_analyze_text_explains_a_viewer(tmp_path, capsys):
    (tmp_path / "alice.mfmc").write_text(EDITED_ALICE)
    code, out, _ = run(capsys, "rules", "analyze", "--rules", tmp_path, "--graph", GRAPH, "--face", "alice",
                       "--viewer", "dan")
    assert code == 0
    lines = out.splitlines()
    assert "  ever:   bob, carol, dan" in lines
    assert "  always: no one but the owner" in lines
    assert "  `dan` sees the real face in some contexts only:" in lines
    assert '    reveal when no uploader, album "wedding":' in lines
    assert any("`reveal to friends_of_friends when album == \"wedding\"` applies" in line for line in lines)
    assert "    fake when no uploader, no album (or one the rules do not name):" in lines


def test_analyze_unknown_face_exits_2(capsys):
    code, _, err = run(capsys, "rules", "analyze", "--rules", RULES, "--graph", GRAPH, "--face", "alise")
    assert code == 2
    assert "unknown user `alise`" in err


def test_diff_one_owner_is_one_object(tmp_path, capsys):
    (tmp_path / "alice.mfmc").write_text(EDITED_ALICE)
    code, out, _ = run(capsys, "rules", "diff", RULES / "alice.mfmc", tmp_path / "alice.mfmc", "--graph", GRAPH,
                       "--json")
    assert code == 0
    assert json.loads(out) == {"face": "alice", "gains": {"audience": "only", "users": ["bob"]},
                               "loses": {"audience": "only", "users": ["carol", "dan", "erin"]}}


def test_diff_folders_is_a_list(tmp_path, capsys):
    shutil.copytree(RULES, tmp_path / "new")
    (tmp_path / "new" / "alice.mfmc").write_text(EDITED_ALICE)
    (tmp_path / "new" / "dan.mfmc").unlink()  # no rules: default nobody, as before
    (tmp_path / "new" / "carol.mfmc").write_text("face carol\ndefault public\nhide from grace\n")
    code, out, _ = run(capsys, "rules", "diff", RULES, tmp_path / "new", "--graph", GRAPH, "--json")
    assert code == 0
    nobody = {"audience": "nobody"}
    assert json.loads(out) == [
        {"face": "alice", "gains": {"audience": "only", "users": ["bob"]},
         "loses": {"audience": "only", "users": ["carol", "dan", "erin"]}},
        {"face": "bob", "gains": nobody, "loses": nobody},
        {"face": "carol", "gains": {"audience": "everyone", "except": ["alice", "bob", "dan", "grace"]},
         "loses": nobody},
        {"face": "dan", "gains": nobody, "loses": nobody},
    ]
    code, out, _ = run(capsys, "rules", "diff", RULES, tmp_path / "new", "--graph", GRAPH)
    assert code == 0
    assert "bob: no change" in out.splitlines()
    assert "  gains: everyone except alice, bob, dan, grace (viewers outside the graph too)" in out.splitlines()


def test_diff_invalid_new_rules_exit_2(tmp_path, capsys):
    (tmp_path / "alice.mfmc").write_text("face alice\ndefault frends\n")
    code, _, err = run(capsys, "rules", "diff", RULES, tmp_path, "--graph", GRAPH)
    assert code == 2
    assert "unknown default level `frends`" in err


def test_analyze_viewer_outside_the_graph_is_named_with_a_hint(tmp_path, capsys):
    (tmp_path / "alice.mfmc").write_text(EDITED_ALICE)
    code, out, _ = run(capsys, "rules", "analyze", "--rules", tmp_path, "--graph", GRAPH, "--face", "alice",
                       "--viewer", "frnak")
    assert code == 0
    assert "  note: `frnak` is not in the graph: answered for any viewer outside it (did you mean `frank`?)" \
        in out.splitlines()
    assert "  `frnak` never sees the real face" in out.splitlines()
