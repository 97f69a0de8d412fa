"""Vision settings are read at the edge (`VisionSettings.from_env`, called by the CLI) and handed down: every
MFMC_* variable maps to its field with the documented default, bad values are refused, the library itself
reads no environment variable, and the CLI wires the model cache folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mfmc.vision
from mfmc.errors import InvalidInputError
from mfmc.vision import cache, settings
from mfmc.vision.settings import DEFAULT_CACHE_DIR, DEFAULT_INSIGHTFACE_ROOT, VisionSettings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_when_nothing_is_set() -> None:
    s = VisionSettings.from_env({})
    assert s == VisionSettings()
    assert (s.backend, s.allow_gpu, s.tensorrt, s.dlib_backend, s.verify_model_hashes) == (
        "auto", True, False, "auto", True)
    assert s.insightface_root == DEFAULT_INSIGHTFACE_ROOT and s.insightface_pack is None
    assert s.cache_dir == DEFAULT_CACHE_DIR
    # empty values count as unset
    assert VisionSettings.from_env({"MFMC_BACKEND": "", "MFMC_CACHE_DIR": " ", "MFMC_DEVICE": ""}) == s


def test_each_variable_maps_to_its_field(tmp_path: Path) -> None:
    s = VisionSettings.from_env({
        "MFMC_BACKEND": "Embedded", "MFMC_DEVICE": "CPU", "MFMC_TENSORRT": "1", "MFMC_DLIB_BACKEND": "dlib",
        "MFMC_SKIP_MODEL_HASH": "1", "MFMC_INSIGHTFACE_ROOT": str(tmp_path), "MFMC_INSIGHTFACE_PACK": "antelopev2",
        "MFMC_CACHE_DIR": str(tmp_path / "c"), "MFMC_SWAP_MODEL": str(tmp_path / "m.onnx"),
        "MFMC_SWAP_ENCODER": str(tmp_path / "e.onnx"),
    })
    assert s == VisionSettings(backend="embedded", allow_gpu=False, tensorrt=True, dlib_backend="dlib",
                               verify_model_hashes=False, insightface_root=tmp_path, insightface_pack="antelopev2",
                               cache_dir=tmp_path / "c", swap_model=tmp_path / "m.onnx",
                               swap_encoder=tmp_path / "e.onnx")
    assert VisionSettings.from_env({"MFMC_CACHE_DIR": "off"}).cache_dir is None
    # only the exact values switch things: as before, MFMC_TENSORRT=yes or MFMC_SKIP_MODEL_HASH=true do not
    assert not VisionSettings.from_env({"MFMC_TENSORRT": "yes"}).tensorrt
    assert VisionSettings.from_env({"MFMC_SKIP_MODEL_HASH": "true"}).verify_model_hashes
    assert VisionSettings.from_env({"MFMC_DEVICE": "cuda"}).allow_gpu


def test_bad_values_are_refused_with_the_variable_named() -> None:
    with pytest.raises(InvalidInputError, match="unknown backend `gpu`") as err:
        VisionSettings.from_env({"MFMC_BACKEND": "gpu"})
    assert "MFMC_BACKEND" in str(err.value.help)
    with pytest.raises(InvalidInputError, match="unknown dlib recognizer backend `tf`"):
        VisionSettings.from_env({"MFMC_DLIB_BACKEND": "tf"})


def test_configure_sets_the_process_settings_and_the_cache_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "_state", dict(settings._state))
    monkeypatch.setattr(cache, "_state", dict(cache._state))
    chosen = VisionSettings(allow_gpu=False, cache_dir=tmp_path)
    settings.configure(chosen)
    assert settings.current() is chosen and cache.cache_dir() == tmp_path
    settings.configure(VisionSettings(cache_dir=None))
    assert cache.cache_dir() is None


def test_the_library_reads_no_environment_variable() -> None:
    package = Path(mfmc.vision.__file__).parents[1]
    # the edges that read them: the CLI, the ASGI app, `python -m mfmc.eval.photos` (and settings.py's docs)
    edges = {"vision/settings.py", "server/asgi.py", "eval/photos.py"}
    offenders = [f"{rel}:{n}" for path in sorted(package.rglob("*.py"))
                 if not (rel := path.relative_to(package).as_posix()).startswith("cli/") and rel not in edges
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"os\.environ|getenv\(|environ\[", line) and not line.lstrip().startswith("#")]
    assert offenders == []
    package = Path(mfmc.vision.__file__).parent
    # settings.py documents `os.environ` but is handed the mapping: it does not even import `os`
    assert not re.search(r"^\s*(import os\b|from os\b)", (package / "settings.py").read_text(), re.MULTILINE)


def test_the_cli_puts_the_model_cache_where_mfmc_cache_dir_says(tmp_path: Path) -> None:
    """A fresh `mfmc faces` process hashes the detector's model file through the disk cache: the entry lands in
    MFMC_CACHE_DIR (the CLI wires the variable), and nothing is cached with MFMC_CACHE_DIR=off."""
    from PIL import Image

    from tests.vision.helpers import photo

    image = tmp_path / "p.png"
    Image.fromarray(photo("P001", "studio_portrait", 320)).save(image)
    folder = tmp_path / "models"
    env = {**os.environ, "MFMC_CACHE_DIR": str(folder)}
    cmd = [sys.executable, "-m", "mfmc.cli.main", "faces", str(image), "--no-attributes", "--json"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 1  # the portrait's one face
    assert sorted(p.name.split("-")[0] for p in folder.glob("*.bin")) == ["sha256"]
    off = tmp_path / "off-run"
    off.mkdir()
    env = {**os.environ, "MFMC_CACHE_DIR": "off", "HOME": str(off)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(off.rglob("*.bin")) == []


def test_doctor_reports_the_model_cache_the_cli_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from mfmc.cli.main import main

    monkeypatch.setattr(settings, "_state", dict(settings._state))  # main() configures the process: undo after
    monkeypatch.setattr(cache, "_state", dict(cache._state))
    monkeypatch.setenv("MFMC_CACHE_DIR", str(tmp_path / "models"))
    assert main(["doctor", "--json", "--no-verify"]) == 0
    assert json.loads(capsys.readouterr().out)["model_cache"] == str(tmp_path / "models")
    assert cache.cache_dir() == tmp_path / "models"
    monkeypatch.setenv("MFMC_CACHE_DIR", "off")
    assert main(["doctor", "--no-verify"]) == 0
    assert "model cache: off" in capsys.readouterr().out
    assert cache.cache_dir() is None


def test_a_bad_variable_stops_model_commands_only(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from mfmc.cli.main import main

    monkeypatch.setattr(settings, "_state", dict(settings._state))
    monkeypatch.setattr(cache, "_state", dict(cache._state))
    monkeypatch.setenv("MFMC_BACKEND", "gpu")
    assert main(["rules", "check", str(ROOT / "rules")]) == 0  # no model involved: runs as before
    assert main(["faces", "--help"]) == 0
    capsys.readouterr()
    assert main(["doctor", "--no-verify"]) == 2
    err = capsys.readouterr().err
    assert "unknown backend `gpu`" in err and "MFMC_BACKEND" in err
