"""The analyze / diff examples of docs/rules.md are real: each command is run and its output compared."""

import re
import shlex
from pathlib import Path

import pytest

from mfmc.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")


def examples():
    """(command, expected output) for every `mfmc rules analyze|diff` line of a console block."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", DOC, re.S):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line.startswith(("$ mfmc rules analyze", "$ mfmc rules diff")):
                end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("$ ")), len(lines))
                found.append((line[2:], "\n".join(lines[i + 1 : end])))
    return found


EDIT = re.search(r"cat > /tmp/edit/alice.mfmc <<'EOF'\n(.*?)EOF\n", DOC, re.S).group(1)


@pytest.mark.parametrize(("command", "expected"), examples())
def test_console_example(command, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    (tmp_path / "edit").mkdir()
    (tmp_path / "edit" / "alice.mfmc").write_text(EDIT)
    args = [a.replace("/tmp/edit", str(tmp_path / "edit")) for a in shlex.split(command)[1:]]
    assert main(args) == 0
    out = capsys.readouterr().out.rstrip("\n")
    assert out == expected.replace("/tmp/edit", str(tmp_path / "edit"))


def test_library_example(monkeypatch):
    monkeypatch.chdir(ROOT)
    code = re.search(r"Library \(what a rules editor calls.*?```python\n(.*?)```", DOC, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/rules.md", "exec"), namespace)  # our own documentation
    change = namespace["change"]
    assert (change.gained, change.lost, change.strangers_gain) == (1, 1, False)
    assert change.to_dict()["gains"] == {"audience": "only", "users": ["bob"]}
    assert namespace["analyze"](namespace["old"], namespace["graph"], "alice").ever.describe() \
        == "only carol, dan, erin"
