"""Session fixtures for mfmc.swap tests: a group photo of four people who are not in the small target pool
(`pipeline`, `pool_dir` and `pool` are the root conftest's, shared with tests/client), the astronaut.

No photo is committed: everything comes from the installed `openpeople` package (MIT, synthetic people).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.swap import landmarks as lmk
from mfmc.swap.base import SwapResult
from mfmc.vision import FacePipeline, Faces
from tests.vision.helpers import photo

SOURCE_PEOPLE = ["P007", "P008", "P009", "P010"]
# The swap-property tests verify with the two recognizers the pools store embeddings of. The vision layer may
# add more families (openface, faceverifyai when installed); with all of them verifying, most training-free
# swaps on these photos fail and end pixelated (measured in docs/swap.md) — still verified, never leaked.
VERIFIERS = ["dlib", "facenet"]


@dataclass(frozen=True)
class Group:
    image: np.ndarray
    faces: Faces


def inner_mask(shape: tuple[int, ...], polygons: list[np.ndarray], factor: float) -> np.ndarray:
    """Each polygon shrunk to `factor` of itself about its centre (away from a feathered edge), as a bool mask."""
    mask = np.zeros(shape[:2], np.uint8)
    for poly in polygons:
        centre = poly.mean(0)
        cv2.fillConvexPoly(mask, np.round(centre + factor * (poly - centre)).astype(np.int32), 1)
    return mask.astype(bool)


def assert_region_kept(image: np.ndarray, kept: SwapResult, painted: SwapResult, region: np.ndarray, note: str,
                       label: str) -> None:
    """A swapper rule that keeps the source's pixels in `region`: with it (`kept`) they change by less than 2
    levels on average and the fake's notes say `note`; without it (`painted`) by more than 6; the face itself is
    the fake's (more than 5 levels on average over the patch's box)."""
    diff_kept, diff_painted = (np.abs(r.patch.apply(image).astype(np.int16) - image).max(-1) for r in (kept, painted))
    assert diff_kept[region].mean() < 2.0, (label, float(diff_kept[region].mean()))
    assert diff_painted[region].mean() > 6.0, (label, float(diff_painted[region].mean()))
    assert any(note in n for n in kept.notes)
    x1, y1, x2, y2 = kept.patch.box
    assert diff_kept[y1:y2, x1:x2].mean() > 5.0  # the face itself is the fake's


def compose(tiles: list[np.ndarray], size: tuple[int, int] = (300, 350), cols: int = 2) -> np.ndarray:
    w, h = size
    cells = [cv2.resize(t, (w, h), interpolation=cv2.INTER_AREA) for t in tiles]
    rows = [np.hstack(cells[i : i + cols]) for i in range(0, len(cells), cols)]
    return np.ascontiguousarray(np.vstack(rows))


def _head(pipeline: FacePipeline, image: np.ndarray) -> np.ndarray:
    """A head-and-shoulders crop around the largest face of a photo."""
    faces = pipeline.detect(image)
    x1, y1, x2, y2 = faces.boxes[int(np.argmax(faces.areas))]
    s = x2 - x1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = image.shape[:2]
    top, bottom = int(max(0, cy - 1.3 * s)), int(min(h, cy + 1.6 * s))
    return image[top:bottom, int(max(0, cx - 1.2 * s)) : int(min(w, cx + 1.2 * s))]


@pytest.fixture(scope="session")
def group(pipeline: FacePipeline) -> Group:
    """Four people (two studio portraits, two selfies, one smiling with teeth) in a 2×2 group photo."""
    assets = ["studio_portrait", "amateur_selfie", "amateur_selfie", "studio_portrait"]
    tiles = [_head(pipeline, photo(p, a, 1024)) for p, a in zip(SOURCE_PEOPLE, assets, strict=True)]
    image = compose(tiles)
    faces = pipeline.analyze(image)
    assert len(faces) == 4
    return Group(image, faces)


@dataclass(frozen=True)
class Astronaut:
    """scikit-image's astronaut (a real, crisp photo), her 68 points, and the built-in pool with its first three
    faces the gender classifier read female at p > 0.9: the split swapper's tests swap her with them."""

    image: np.ndarray
    points: np.ndarray
    pool: TargetPool
    women: list[str]


@pytest.fixture(scope="session")
def astronaut(pipeline: FacePipeline) -> Astronaut:
    data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) ships the astronaut photo")
    image = np.ascontiguousarray(data.astronaut())
    points = lmk.as_points(pipeline.analyze(image, recognizers=()).landmarks68[0])
    pool = TargetPool.default()
    women = [t for t in pool.ids if (pool.classifier_female(t) or 0.0) > 0.9][:3]
    assert women
    return Astronaut(image, points, pool, women)


def head_crop(image: np.ndarray, box: np.ndarray, size: tuple[int, int], *, up: float, down: float,
              side: float) -> np.ndarray:
    """The head around a detected `box`, `up`/`down`/`side` face widths from its centre, resized to `size`."""
    x1, y1, x2, y2 = box
    s, cx, cy = x2 - x1, (x1 + x2) / 2, (y1 + y2) / 2
    h, w = image.shape[:2]
    top, bottom = int(max(0, cy - up * s)), int(min(h, cy + down * s))
    crop = image[top:bottom, int(max(0, cx - side * s)) : int(min(w, cx + side * s))]
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)


def assert_apart(pipeline: FacePipeline, faces: Faces, finished: np.ndarray, swapped: list[int]) -> None:
    """The `finished` photo as anyone would read it at `faces`' boxes (the original's faces, with the verifiers'
    embeddings): no swapped face matches any real face of the original, nor another swapped face."""
    probe = faces.replace(embeddings={}, landmarks68=None, age=None, gender=None)
    after = pipeline.analyze(finished, probe, attributes=False, recognizers=VERIFIERS)
    for n in VERIFIERS:
        rec = pipeline.recognizers[n]
        for i in swapped:
            for j in range(len(faces)):
                real = float(rec.distance(after.embeddings[n][i], faces.embeddings[n][j]))
                assert real > rec.threshold, (n, i, j, real)
                if j != i and j in swapped:
                    fake = float(rec.distance(after.embeddings[n][i], after.embeddings[n][j]))
                    assert fake > rec.threshold, (n, i, j, fake)
