"""Dense landmarks (dlib's 68 points, iBUG order) and head pose.

dlib's shape predictors were trained on rectangles from dlib's HOG detector, which are tighter and lower than
CenterFace boxes. `dlib_rect` converts between the two; the factors were measured on 180 openpeople faces
(emotion sheets, portraits, selfies) that both detectors found: the HOG square is 1.058 × the CenterFace box
width, centred 0.066 × the box height lower (std 0.03 / 0.03 / 0.09).
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import dlib
import numpy as np

from mfmc.vision.faces import Faces
from mfmc.vision.registry import model_path

RECT_SIZE = 1.058  # × box width
RECT_SHIFT = 0.066  # × box height, downwards


def dlib_rect(box: np.ndarray) -> Any:
    """The dlib-style square for a CenterFace-style box."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = RECT_SIZE * (x2 - x1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + RECT_SHIFT * (y2 - y1)
    half = side / 2
    return dlib.rectangle(round(cx - half), round(cy - half), round(cx + half), round(cy + half))


def to_shape(box: np.ndarray, points: np.ndarray) -> Any:
    """A dlib `full_object_detection` from a box and landmark points (68 iBUG points or dlib's 5)."""
    return dlib.full_object_detection(dlib_rect(box), [dlib.point(round(float(x)), round(float(y))) for x, y in points])


class DlibLandmarks68:
    """dlib's 68-point shape predictor (ERT). ~2 ms per face on CPU."""

    name = "dlib68"

    def __init__(self, predictor: Any | None = None) -> None:
        self._predictor = predictor or dlib.shape_predictor(str(model_path("dlib_landmarks68")))
        self._lock = threading.Lock()

    def predict(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        """(N, 68, 2) float32 landmarks in image pixels."""
        out = np.zeros((len(faces), 68, 2), dtype=np.float32)
        with self._lock:
            for i, box in enumerate(faces.boxes):
                shape = self._predictor(image, dlib_rect(box))
                out[i] = [(p.x, p.y) for p in shape.parts()]
        return out


class DlibShapes:
    """dlib face-chip geometry for the dlib recognizer and the age/gender models.

    Reuses the 68 landmarks when present; otherwise runs dlib's small 5-point predictor (eye corners, nose).
    """

    def __init__(self, predictor5: Any | None = None) -> None:
        self._predictor5 = predictor5
        self._lock = threading.Lock()

    def shapes(self, image: np.ndarray, faces: Faces) -> list[Any]:
        if faces.landmarks68 is not None:
            return [to_shape(box, pts) for box, pts in zip(faces.boxes, faces.landmarks68, strict=True)]
        with self._lock:
            if self._predictor5 is None:
                self._predictor5 = dlib.shape_predictor(str(model_path("dlib_landmarks5")))
            return [self._predictor5(image, dlib_rect(box)) for box in faces.boxes]


# A generic head in millimetre-like units, x to the image right, y down, z away from the camera, so that a
# frontal face has the identity rotation. Points: nose tip, chin, eye outer corners, mouth corners.
_MODEL68_IDX = [30, 8, 36, 45, 48, 54]
_MODEL68 = np.array(
    [[0, 0, 0], [0, 330, 65], [-225, -170, 135], [225, -170, 135], [-150, 150, 125], [150, 150, 125]],
    dtype=np.float64,
)
# The same head for the 5 detector landmarks: eye centres, nose tip, mouth corners.
_MODEL5 = np.array(
    [[-165, -170, 135], [165, -170, 135], [0, 0, 0], [-150, 150, 125], [150, 150, 125]], dtype=np.float64
)


def estimate_pose(points: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(N, 3) yaw, pitch, roll in degrees from (N, 68, 2) or (N, 5, 2) landmarks.

    Signs: yaw > 0 when the face turns towards the image's right, pitch > 0 when it tilts up, roll > 0 when
    it is rotated clockwise on screen. Uses solvePnP with a generic 3D head and a pinhole camera whose focal
    length is the image's long side; accuracy is a few degrees for frontal-ish faces, coarser beyond 45°.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3 or points.shape[1] not in (5, 68):
        raise ValueError("estimate_pose expects (N, 68, 2) or (N, 5, 2) landmarks")
    height, width = image_size
    focal = float(max(height, width))
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float64)
    model = _MODEL68 if points.shape[1] == 68 else _MODEL5
    out = np.zeros((len(points), 3), dtype=np.float32)
    for i, pts in enumerate(points):
        image_pts = pts[_MODEL68_IDX] if points.shape[1] == 68 else pts
        # Roll comes straight from the eye line: robust even where the 3D fit is poor.
        left = image_pts[2] if points.shape[1] == 68 else image_pts[0]
        right = image_pts[3] if points.shape[1] == 68 else image_pts[1]
        roll = np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))
        ok, rvec, tvec = cv2.solvePnP(model, image_pts, camera, None, flags=cv2.SOLVEPNP_EPNP)
        if ok and points.shape[1] == 68:
            ok, rvec, tvec = cv2.solvePnP(
                model, image_pts, camera, None, rvec=rvec, tvec=tvec, useExtrinsicGuess=True,
                flags=cv2.SOLVEPNP_ITERATIVE,
            )
        if not ok:
            out[i] = (0.0, 0.0, roll)
            continue
        rotation, _jac = cv2.Rodrigues(rvec)
        angles = cv2.RQDecomp3x3(rotation)[0]  # rotations about x (pitch), y (yaw), z (roll), degrees
        pitch, yaw = _wrap(angles[0]), _wrap(angles[1])
        out[i] = (-yaw, -pitch, roll)
    return out


def _wrap(angle: float) -> float:
    """Fold an Euler angle into [-90, 90] (a face never points away from the camera)."""
    angle = (angle + 180.0) % 360.0 - 180.0
    if angle > 90:
        angle -= 180
    elif angle < -90:
        angle += 180
    return angle
