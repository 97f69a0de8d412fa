"""Dense landmarks (dlib's 68 points, iBUG order) and head pose.

dlib's shape predictors were trained on rectangles from dlib's HOG detector, which are tighter and lower than
CenterFace boxes. `dlib_rect` converts between the two; the factors were measured on 180 openpeople faces
(emotion sheets, portraits, selfies) that both detectors found: the HOG square is 1.058 × the CenterFace box
width, centred 0.066 × the box height lower (std 0.03 / 0.03 / 0.09).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dlib
import numpy as np

from mfmc.vision import shape_ert
from mfmc.vision.alignment import five_from_68
from mfmc.vision.faces import Faces
from mfmc.vision.orientation import predict_upright, upright_turn
from mfmc.vision.protocols import Landmarker
from mfmc.vision.registry import model_path
from mfmc.vision.shape_ert import ShapePredictor

_log = logging.getLogger(__name__)

RECT_SIZE = 1.058  # × box width
RECT_SHIFT = 0.066  # × box height, downwards
# A CenterFace box more than MAX_ASPECT times taller than wide has lost its width (a face cut by the photo's edge:
# 01.jpg #8, h/w 2.68; openpeople portraits cut 30-40 % into the face at the left edge, 1.96-2.31), and a square
# that small put the 68 points of a whole face on part of hers; its width is taken as the height over
# TYPICAL_ASPECT instead, the median h/w of the other 35 faces of the issue-11 photos (5-95 %: 1.17-1.65).
MAX_ASPECT = 2.0
TYPICAL_ASPECT = 1.37


def face_width(box: np.ndarray) -> float:
    """The face width a box stands for: its own width, or height / TYPICAL_ASPECT for a box more than MAX_ASPECT
    times taller than wide (see above)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    width, height = x2 - x1, y2 - y1
    return height / TYPICAL_ASPECT if height > MAX_ASPECT * width else width


def dlib_rect(box: np.ndarray) -> Any:
    """The dlib-style square for a CenterFace-style box (`face_width` wide, × RECT_SIZE)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = RECT_SIZE * face_width(box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + RECT_SHIFT * (y2 - y1)
    half = side / 2
    return dlib.rectangle(round(cx - half), round(cy - half), round(cx + half), round(cy + half))


def predict_points(predictor: Any, image: np.ndarray, box: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
    """A dlib shape predictor's points (K, 2) for one face, run on an upright crop when the face lies on its side
    or upside down (its 5 detector points say which way): dlib's predictors only know upright faces. `predictor`
    is a `shape_ert.ShapePredictor` or dlib's own `shape_predictor` (same points)."""

    def run(img: np.ndarray, b: np.ndarray) -> np.ndarray:
        rect = dlib_rect(b)
        if isinstance(predictor, ShapePredictor):
            return predictor(img, (rect.left(), rect.top(), rect.right(), rect.bottom()))
        return np.array([(p.x, p.y) for p in predictor(img, rect).parts()], dtype=np.float32)

    return predict_upright(run, image, box, upright_turn(landmarks5))


def shape_predictor(name: str) -> Any:
    """The registered dlib shape predictor `name` (`dlib_landmarks68`, `dlib_landmarks5`), run by numpy from the
    disk cache (`mfmc.vision.shape_ert`: same points, loads in tens of ms instead of ~0.5 s of GIL-holding dlib
    deserialization); dlib's own predictor when the file cannot be read that way (logged)."""
    from mfmc.vision.registry import MODELS

    path = model_path(name)
    if not shape_ert.cacheable(path, content_hash=MODELS[name].sha256):
        _log.info("%s: no writable model cache (MFMC_CACHE_DIR); using dlib's shape_predictor", name)
        return dlib.shape_predictor(str(path))
    try:
        return shape_ert.load(path, content_hash=MODELS[name].sha256)
    except Exception as error:  # any failure must not cost the landmarks: dlib reads every valid file
        _log.warning("%s: numpy reader failed (%s); using dlib's shape_predictor", name, error)
        return dlib.shape_predictor(str(path))


def to_shape(box: np.ndarray, points: np.ndarray) -> Any:
    """A dlib `full_object_detection` from a box and landmark points (68 iBUG points or dlib's 5)."""
    return dlib.full_object_detection(dlib_rect(box), [dlib.point(round(float(x)), round(float(y))) for x, y in points])


class DlibLandmarks68:
    """dlib's 68-point shape predictor (ERT), run by `shape_ert` (~6 ms per face on CPU; dlib's own: ~3 ms, but
    ~0.5 s to load)."""

    name = "dlib68"

    def __init__(self, predictor: Any | None = None, *, refit_turned: bool = True) -> None:
        self._predictor = predictor or shape_predictor("dlib_landmarks68")
        self._lock = threading.Lock()
        self.refit_turned = refit_turned

    def _refitted(self, image: np.ndarray, faces: Faces, out: np.ndarray) -> np.ndarray:
        """`out` (N, 68, 2) with the points of each face that disagree with the detector's 5 on the turn by more
        than SHAPE_DISAGREEMENT (dlib's cascade stayed near its frontal start on a head turned 35-60°) replaced
        by the refit from a turned start (`mfmc.vision.turned.turned_landmarks`) where that one agrees; the others
        as predicted. The same rule for a source and for the fakes the verifier re-reads."""
        if not self.refit_turned or not isinstance(self._predictor, ShapePredictor):
            return out
        for i, (box, five) in enumerate(zip(faces.boxes, faces.landmarks5, strict=True)):
            five64 = np.asarray(five, dtype=np.float64)
            if not shape_disagreement(out[i], five64) > SHAPE_DISAGREEMENT or upright_turn(five64) != 0:
                continue
            # imported here: mfmc.vision.turned imports this module (its predictor, pose and disagreement)
            from mfmc.vision.turned import turned_landmarks

            refit = turned_landmarks(image, box, five64, self._predictor)
            if refit is not None:
                out[i] = refit
        return out

    def predict(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        """(N, 68, 2) float32 landmarks in image pixels (upright faces in one batch with the numpy predictor)."""
        out = np.zeros((len(faces), 68, 2), dtype=np.float32)
        with self._lock:
            upright = np.array([upright_turn(five) == 0 for five in faces.landmarks5], dtype=bool)
            if isinstance(self._predictor, ShapePredictor) and upright.any():
                rects = [dlib_rect(box) for box in faces.boxes[upright]]
                out[upright] = self._predictor.predict_many(
                    image, np.array([(r.left(), r.top(), r.right(), r.bottom()) for r in rects], dtype=np.float64))
            else:
                upright[:] = False
            for i in np.flatnonzero(~upright):
                out[i] = predict_points(self._predictor, image, faces.boxes[i], faces.landmarks5[i])
        return self._refitted(image, faces, out)


    def predict_many(self, items: list[tuple[np.ndarray, Faces]]) -> list[np.ndarray]:
        """`predict` for the faces of several images (e.g. candidate fakes of one face), one (N_i, 68, 2) array
        per item: the upright faces of all images in one numpy pass, each as `predict` gives it alone."""
        if not isinstance(self._predictor, ShapePredictor):
            return [self.predict(image, faces) for image, faces in items]
        outs = [np.zeros((len(faces), 68, 2), dtype=np.float32) for _, faces in items]
        with self._lock:
            images, owner, rects, where = [], [], [], []
            for k, (image, faces) in enumerate(items):
                images.append(image)
                for i, (box, five) in enumerate(zip(faces.boxes, faces.landmarks5, strict=True)):
                    if upright_turn(five) == 0:
                        r = dlib_rect(box)
                        owner.append(k)
                        rects.append((r.left(), r.top(), r.right(), r.bottom()))
                        where.append((k, i))
                    else:
                        outs[k][i] = predict_points(self._predictor, image, box, five)
            if rects:
                points = self._predictor.predict_images(images, np.array(owner), np.array(rects, dtype=np.float64))
                for (k, i), p in zip(where, points, strict=True):
                    outs[k][i] = p
        return [self._refitted(image, faces, out) for (image, faces), out in zip(items, outs, strict=True)]


def landmarks_of(landmarker: Landmarker, items: list[tuple[np.ndarray, Faces]]) -> list[np.ndarray]:
    """(N_i, 68, 2) landmarks per item (image, faces): one batch with `DlibLandmarks68`, per image otherwise."""
    if isinstance(landmarker, DlibLandmarks68):
        return landmarker.predict_many(items)
    return [np.asarray(landmarker.predict(image, faces), dtype=np.float32) for image, faces in items]


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
                self._predictor5 = shape_predictor("dlib_landmarks5")
            return [to_shape(box, predict_points(self._predictor5, image, box, five))
                    for box, five in zip(faces.boxes, faces.landmarks5, strict=True)]


# Head pose from landmark geometry (no camera model).
#
# An earlier version fitted a generic 3D head with solvePnP and a pinhole camera centred on the photo. That
# is biased wherever a face is not at the photo's centre (a frontal face pasted near the edge of a composed
# group photo read as 30-50 degrees of yaw: the fit explains the offset by turning the head) and it trusted
# dlib's 68 points, which are meaningless on profiles (a 90-degree view read as -7.6 degrees). Here the pose
# comes from ratios that only depend on the face's own shape, under scaled orthography:
#
# - yaw: horizontal offset of the nose tip from the centre of the eyes and mouth, over the eye distance, both
#   measured along the eye line. A generic head (eye centres at x = +-165, depth 135; mouth corners at depth
#   125; nose tip at depth 0) turned by theta gives offset / eye distance = YAW_GAIN * tan(theta).
# - pitch: where the nose tip sits between the eye line and the mouth line, against the same head.
#
# The 5 detector points (CenterFace / SCRFD) stay meaningful on turned heads, the 68-point shape does not, so
# the detector points decide when the face is turned (|yaw| >= PROFILE_YAW); below that both are averaged.
# Validated on openpeople (tests/vision/test_pose.py): frontal portraits, selfies and character-sheet front
# views within 10 degrees, the sheets' side views beyond 45 degrees, and mirroring flips the sign.
_EYE_X, _EYE_Z, _MOUTH_Y, _MOUTH_Z, _EYE_Y = 165.0, 135.0, 150.0, 125.0, -170.0
YAW_GAIN = (_EYE_Z + _MOUTH_Z) / 2.0 / (2.0 * _EYE_X)  # offset over eye distance per unit tan(yaw)
PROFILE_YAW = 35.0  # degrees: beyond this, dlib's 68 points are not trusted for pose


def pose_from_five(points: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees from 5 points (image-left eye, image-right eye, nose tip, mouth left,
    mouth right) under scaled orthography of a generic head; see the comment above for the model."""
    p = np.asarray(points, dtype=np.float64).reshape(5, 2)
    eyes_mid = (p[0] + p[1]) / 2.0
    axis = p[1] - p[0]
    eye_dist = float(np.hypot(*axis))
    roll = float(np.degrees(np.arctan2(axis[1], axis[0])))
    if not np.isfinite(eye_dist) or eye_dist < 1e-6:
        return np.array([np.nan, np.nan, roll if np.isfinite(roll) else np.nan])
    u = axis / eye_dist  # along the eye line, towards the image right
    v = np.array([-u[1], u[0]])  # perpendicular, towards the chin
    mouth_mid = (p[3] + p[4]) / 2.0
    centre = (eyes_mid + mouth_mid) / 2.0
    offset = float((p[2] - centre) @ u) / eye_dist
    yaw = float(np.degrees(np.arctan(offset / YAW_GAIN)))
    # pitch: nose position t between the eye line (0) and the mouth line (1); the generic head gives
    # t = (-EYE_Y*c - EYE_Z*s) / ((MOUTH_Y - EYE_Y)*c + (MOUTH_Z - EYE_Z)*s) with c, s = cos, sin(pitch)
    # (pitch > 0: face up, the nose rises towards the eyes); solved for tan(pitch). The eye distance is
    # foreshortened by cos(yaw), so heights are measured against the eye-to-mouth distance instead.
    span = float((mouth_mid - eyes_mid) @ v)
    if span <= 1e-6:
        return np.array([yaw, np.nan, roll])
    t = float((p[2] - eyes_mid) @ v) / span
    tan_p = (-_EYE_Y - t * (_MOUTH_Y - _EYE_Y)) / (_EYE_Z + t * (_MOUTH_Z - _EYE_Z))
    pitch = float(np.degrees(np.arctan(tan_p)))
    return np.array([yaw, pitch, roll])


# degrees: when the detector's 5 points and the 68-point shape disagree on the yaw by more than this, the 68
# points did not follow the head (dlib's shape model falls back to a near-frontal face on a strongly turned one,
# its nose drawn on the cheek): nothing built on them (a warp, a pose) can be trusted. On the issue-11 photos
# the two agree within 16 degrees on every face but four, which differ by 54-83 degrees.
SHAPE_DISAGREEMENT = 30.0


def shape_disagreement(points68: np.ndarray, points5: np.ndarray) -> float:
    """|yaw of the 68-point shape - yaw of the detector's 5 points| in degrees (`pose_from_five` of each); NaN
    when either is degenerate."""
    dense = pose_from_five(five_from_68(points68))[0]
    coarse = pose_from_five(points5)[0]
    return float(abs(dense - coarse))


def estimate_pose(
    points: np.ndarray, image_size: tuple[int, int] | None = None, *, landmarks5: np.ndarray | None = None
) -> np.ndarray:
    """(N, 3) yaw, pitch, roll in degrees from (N, 68, 2) or (N, 5, 2) landmarks.

    Signs: yaw > 0 when the face turns towards the image's right (the nose moves right), pitch > 0 when it
    tilts up, roll > 0 when it is rotated clockwise on screen. `landmarks5` (N, 5, 2), the detector's points,
    cross-check 68-point input: a face they show turned by PROFILE_YAW or more takes its yaw and pitch from
    them alone. Independent of where the face sits in the photo (`image_size` is accepted for compatibility
    and unused). Accuracy: a few degrees near frontal, about 10 degrees beyond 45 (a generic head).
    """
    del image_size
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3 or points.shape[1] not in (5, 68):
        raise ValueError("estimate_pose expects (N, 68, 2) or (N, 5, 2) landmarks")
    five = None
    if landmarks5 is not None:
        five = np.asarray(landmarks5, dtype=np.float64)
        if five.shape != (len(points), 5, 2):
            raise ValueError("landmarks5 must be (N, 5, 2) for N faces")
    out = np.zeros((len(points), 3), dtype=np.float32)
    for i, pts in enumerate(points):
        if pts.shape[0] == 5:
            out[i] = pose_from_five(pts)
            continue
        dense = pose_from_five(five_from_68(pts))
        if five is None:
            out[i] = dense
            continue
        coarse = pose_from_five(five[i])
        if not np.isfinite(coarse[0]) or abs(coarse[0]) < PROFILE_YAW:
            yaw = np.nanmean([dense[0], coarse[0]]) if np.isfinite(dense[0]) else coarse[0]
            out[i] = (yaw, dense[1], dense[2])
        else:  # a turned head: the 68-point shape is unreliable there
            out[i] = coarse
    return out
