"""What `FacePipeline` needs from each of its parts: small structural types, so that a part can come from any
backend (embedded, InsightFace) or be a stand-in in tests. Recognizers are `mfmc.vision.recognition.Recognizer`s."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from mfmc.vision.faces import Faces


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> Faces:
        """Boxes, scores and 5 landmarks of every face in an RGB uint8 image."""
        ...


class Landmarker(Protocol):
    def predict(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        """(N, 68, 2) float32 landmarks (iBUG order) in image pixels."""
        ...


class AttributeEstimator(Protocol):
    def estimate(self, image: np.ndarray, faces: Faces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(age years (N,), gender labels (N,), probability of "female" (N,))."""
        ...


class ExpressionModel(Protocol):
    def classify(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        """(N,) expression names (`mfmc.vision.faces.Expression` values)."""
        ...

    def probabilities(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        """(N, C) class probabilities."""
        ...
