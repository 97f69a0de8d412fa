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
