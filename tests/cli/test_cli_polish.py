"""The CLI's surface: `--version`, help on every argument and option, help screens without type noise, the
README's command table, lazy command registration."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from mfmc import __version__
from mfmc.cli.main import COMMANDS, _polish, build_app, main

ROOT = Path(__file__).resolve().parents[2]


def _tree():
    command = typer.main.get_command(build_app())
    _polish(command)
    return command


def _walk(command, path=()):
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


ALL = [" ".join(path) for path, _ in _walk(_tree())]


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mfmc {__version__}"


def test_every_argument_and_option_has_help():
    missing = [f"{' '.join(path)} {param.name}" for path, cmd in _walk(_tree()) for param in cmd.params
               if not (param.help or "").strip()]
    assert missing == []


@pytest.mark.parametrize("path", ALL)
def test_help_screen_has_no_type_noise(path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    code = main([*path.split(), "--help"])
    out = capsys.readouterr().out
    assert code == 0
    assert "<bool>" not in out
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage


def test_readme_command_table_lists_every_command():
    readme = (ROOT / "README.md").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `mfmc"))
    named = set(re.findall(r"`mfmc ([a-z]+(?: [a-z]+)?)", table)) | set(re.findall(r"`([a-z]+)`", table))
    leaves = [" ".join(path) for path, cmd in _walk(_tree()) if path and not getattr(cmd, "commands", None)]
    missing = [c for c in leaves if c not in named and c.split()[-1] not in named]
    assert missing == []


def test_a_named_command_imports_only_its_module():
    code = ("import sys; from mfmc.cli.main import main; main(['rules', 'check', 'rules/']); "
            "print(sorted(m for m in sys.modules if m.startswith('mfmc.cli.') or m in "
            "('mfmc.vision.pipeline', 'mfmc.vision.images', 'mfmc.swap', 'mfmc.pool', 'mfmc.service', 'mfmc.store', "
            "'cv2', 'onnxruntime', 'dlib')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    loaded = out.strip().splitlines()[-1]
    # `mfmc.vision` itself is light (its names load on first use; the CLI reads `mfmc.vision.settings`)
    for heavy in ("mfmc.vision.pipeline", "mfmc.vision.images", "mfmc.swap", "mfmc.pool", "mfmc.service",
                  "mfmc.store", "cv2", "onnxruntime", "dlib", "mfmc.cli.faces", "mfmc.cli.render"):
        assert f"'{heavy}'" not in loaded, loaded
    assert set(COMMANDS) >= {"rules", "render", "faces", "anonymize", "graph"}


def test_a_platform_command_imports_only_the_platform_commands():
    code = ("import sys, io, contextlib; from mfmc.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()): main(['user', 'list', '--help'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('mfmc.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    loaded = out.strip().splitlines()[-1]
    assert "'mfmc.cli.platform'" in loaded
    for other in ("mfmc.cli.rules", "mfmc.cli.render", "mfmc.cli.faces", "mfmc.cli.pool", "mfmc.cli.eval"):
        assert f"'{other}'" not in loaded, loaded


def test_an_unknown_command_still_gets_a_suggestion(capsys):
    assert main(["rulez"]) == 2
    assert "rules" in capsys.readouterr().err
