"""The swappers' faster steps give what the steps they replaced gave, bit for bit (issue 17: cost per candidate).

Each reference below is the code as it was before (600b484), run on the astronaut (a real photo) swapped with the
built-in pool's women: the triangulation's vertex lookup, the dense affine maps, the grey-scale test, the blend,
the masked blurs sharing one blurred mask, and the split swapper's per-source cache (`_SourceSide`).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mfmc.swap import landmarks as lmk
from mfmc.swap.blend import GREY_CHROMA, blend_patch, grey_scale, region_box
from mfmc.swap.pose import destination
from mfmc.swap.split import SplitSwapper, masked_blur, masked_blurs
from mfmc.swap.warp import lab_of, mesh, warp_target
from mfmc.vision.mesh import _vertex_ids, folded, piecewise_affine_maps, triangulate
from tests.swap.conftest import Astronaut


def _old_triangulate(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    lo, hi = pts.min(0) - 2.0, pts.max(0) + 2.0
    subdiv = cv2.Subdiv2D((int(np.floor(lo[0])), int(np.floor(lo[1])),
                           int(np.ceil(hi[0] - lo[0])) + 2, int(np.ceil(hi[1] - lo[1])) + 2))
    subdiv.insert([(float(x), float(y)) for x, y in pts])
    tri = np.asarray(subdiv.getTriangleList(), dtype=np.float64).reshape(-1, 3, 2)
    tri = tri[np.all((tri >= lo - 1.0) & (tri <= hi + 1.0), axis=(1, 2))]
    d = np.linalg.norm(tri.reshape(-1, 1, 2) - pts[None], axis=2)
    idx = d.argmin(1).reshape(-1, 3)
    keep = (idx[:, 0] != idx[:, 1]) & (idx[:, 1] != idx[:, 2]) & (idx[:, 0] != idx[:, 2])
    return idx[keep]


def _old_maps(dst: np.ndarray, src: np.ndarray, triangles: np.ndarray, box: tuple[int, int, int, int]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x1, y1, x2, y2 = box
    h, w = y2 - y1, x2 - x1
    ids = np.zeros((h, w), dtype=np.int32)
    local = dst - np.array([x1, y1], dtype=np.float64)
    d = np.concatenate([local[triangles], np.ones((len(triangles), 3, 1))], axis=2)
    s = src[triangles]
    ok = (np.abs(np.linalg.det(d)) > 1e-6) & (folded(dst, src, triangles) == 0)
    affines = np.zeros((len(triangles), 2, 3), dtype=np.float64)
    affines[ok] = np.transpose(np.linalg.solve(d[ok], s[ok]), (0, 2, 1))
    for k in np.flatnonzero(ok):
        pts = np.round(local[triangles[k]] * 16).astype(np.int32)
        cv2.fillConvexPoly(ids, pts, int(k) + 1, lineType=cv2.LINE_8, shift=4)
    a = affines[np.maximum(ids - 1, 0)].astype(np.float32)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return (a[..., 0, 0] * gx + a[..., 0, 1] * gy + a[..., 0, 2],
            a[..., 1, 0] * gx + a[..., 1, 1] * gy + a[..., 1, 2], ids > 0)


def _old_masked_blur(lab: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    m = mask.astype(np.float32)
    h, w = m.shape
    per = (lambda a: a) if lab.ndim == 2 else (lambda a: a[..., None])
    f = min(1.0, 6.0 / max(sigma, 1e-6))
    if f < 1.0:
        size = (max(2, round(w * f)), max(2, round(h * f)))
        small_lab = cv2.resize(lab * per(m), size, interpolation=cv2.INTER_AREA)
        small_m = cv2.resize(m, size, interpolation=cv2.INTER_AREA)
        num = cv2.resize(cv2.GaussianBlur(small_lab, (0, 0), sigma * f), (w, h), interpolation=cv2.INTER_LINEAR)
        den = cv2.resize(cv2.GaussianBlur(small_m, (0, 0), sigma * f), (w, h), interpolation=cv2.INTER_LINEAR)
        return num / np.maximum(per(den), 1e-4)
    num = cv2.GaussianBlur(lab * per(m), (0, 0), sigma)
    return num / np.maximum(per(cv2.GaussianBlur(m, (0, 0), sigma)), 1e-4)


def _destinations(astronaut: Astronaut) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(target crop, target points, destination at alpha 0.5 and 1) for each of the pool's women."""
    out = []
    for target_id in astronaut.women:
        crop, face = astronaut.pool.target(target_id)
        tgt = lmk.as_points(face.landmarks68[0])
        for alpha in (0.5, 1.0):
            out.append((crop, tgt, destination(astronaut.points, tgt, alpha)))
    return out


def test_the_triangulation_finds_the_same_vertices(astronaut: Astronaut) -> None:
    """The warp's triangles (the destination's and the targets' extended points) are the same index triples as
    with the nearest-point search; nearly coincident points take that search, and give the same too."""
    sets = [lmk.extended(astronaut.points, 0.22)]
    for _, tgt, dst in _destinations(astronaut):
        sets += [lmk.extended(dst, 0.22), lmk.extended(tgt, 0.22)]
    for pts in sets:
        assert np.array_equal(triangulate(pts), _old_triangulate(pts))
    close = sets[0].copy()
    close[30] = close[29] + 1e-4  # two points 1e-4 px apart: the lookup stands aside
    assert np.array_equal(triangulate(close), _old_triangulate(close))
    vertices = np.asarray(close[[5, 29, 30, 31]], dtype=np.float32).astype(np.float64)
    near = np.linalg.norm(vertices[:, None] - close[None], axis=2).argmin(1)
    assert np.array_equal(_vertex_ids(vertices, close), near)


def test_the_affine_maps_are_the_same(astronaut: Astronaut) -> None:
    """The dense maps and coverage of each woman warped onto the astronaut, as the per-pixel (h, w, 2, 3) gather
    gave them, float32 bit for bit."""
    src_ext = lmk.extended(astronaut.points, 0.22)
    for _, tgt, dst in _destinations(astronaut):
        d, t = lmk.extended(dst, 0.22), lmk.extended(tgt, 0.22)
        box = region_box(np.vstack([d, src_ext]), astronaut.image.shape[:2])
        tri = mesh(d, t)
        for new, old in zip(piecewise_affine_maps(d, t, tri, box), _old_maps(d, t, tri, box), strict=True):
            assert new.dtype == old.dtype and np.array_equal(new, old)


def test_the_grey_scale_test_decides_as_before(astronaut: Astronaut) -> None:
    """On the astronaut's face region in colour, in grey, and tinted to a mean chroma within 0.005 of the bar on
    either side (where the quick double mean hands over to the float32 one), the same decision as the float32
    mean of the gathered a, b values."""
    lab = lab_of(astronaut.image[60:260, 120:300])
    rng = np.random.default_rng(0)
    masks = [np.ones(lab.shape[:2], bool), rng.random(lab.shape[:2]) > 0.4, np.zeros(lab.shape[:2], bool)]
    grey = lab.copy()
    grey[..., 1:] = 0.0
    cases = [lab, grey]
    for target in (GREY_CHROMA - 0.005, GREY_CHROMA + 0.005, GREY_CHROMA - 0.5, GREY_CHROMA + 0.5):
        tinted = grey.copy()
        tinted[..., 1:] = rng.normal(0.0, 1.0, tinted[..., 1:].shape).astype(np.float32)
        scale = target / float(np.abs(tinted[..., 1:]).mean())
        tinted[..., 1:] *= np.float32(scale)
        cases.append(tinted)
    decisions = []
    for case in cases:
        for sel in masks:
            ab = case[..., 1:][sel]
            old = bool(ab.size) and float(np.abs(ab).mean()) < GREY_CHROMA
            assert grey_scale(case, sel) == old
            decisions.append(old)
    assert True in decisions and False in decisions


def test_the_blend_is_the_same(astronaut: Astronaut) -> None:
    """The patch of a feathered alpha (with exact zeros, and a tiny negative value copied back) over a swapped
    region: the same pixels and mask as when the pixels outside the mask were always copied back."""
    image = astronaut.image
    box = (120, 60, 300, 260)
    x1, y1, x2, y2 = box
    rng = np.random.default_rng(1)
    new = rng.integers(0, 256, (y2 - y1, x2 - x1, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0 : y2 - y1, 0 : x2 - x1]
    alpha = np.clip(1.2 - np.hypot(yy - 100, xx - 90) / 80.0, 0.0, 1.0).astype(np.float32)
    for a in (alpha, np.where(alpha == 0.0, np.float32(-1e-3), alpha)):
        patch = blend_patch(image, new, a, box)
        old = image[y1:y2, x1:x2].astype(np.float32)
        mixed = np.clip(old + (new.astype(np.float32) - old) * a[..., None] + 0.5, 0, 255).astype(np.uint8)
        mixed[~(a > 0)] = image[y1:y2, x1:x2][~(a > 0)]
        assert np.array_equal(patch.pixels, mixed) and np.array_equal(patch.mask, a > 0)


def test_the_masked_blurs_share_the_mask(astronaut: Astronaut) -> None:
    """The source's and the target's coarse parts blurred together, at the base and the escalation's scales,
    are each what one masked blur at a time gave."""
    crop, tgt, dst = _destinations(astronaut)[0]
    region = warp_target(astronaut.image, astronaut.points, tgt, dst, crop, 0.22, skin_only=False)
    x1, y1, x2, y2 = region.box
    s_lab, t_lab = lab_of(astronaut.image[y1:y2, x1:x2]), lab_of(region.image)
    inner = cv2.erode(region.mask, np.ones((3, 3), np.uint8), iterations=2).astype(bool)
    for sigma in (0.25 * region.scale, 2.0 * region.scale, 3.0):
        pair = masked_blurs([s_lab, t_lab], inner, sigma)
        lightness = masked_blurs([np.ascontiguousarray(t_lab[..., 0]), np.ascontiguousarray(s_lab[..., 0])],
                                 inner, sigma)
        assert np.array_equal(pair[0], _old_masked_blur(s_lab, inner, sigma))
        assert np.array_equal(pair[1], _old_masked_blur(t_lab, inner, sigma))
        assert np.array_equal(lightness[0], _old_masked_blur(np.ascontiguousarray(t_lab[..., 0]), inner, sigma))
        assert np.array_equal(masked_blur(s_lab, inner, sigma), pair[0])


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_the_source_side_is_reused_only_for_the_same_pixels(astronaut: Astronaut, alpha: float) -> None:
    """One swapper swapping the astronaut with each woman twice (its source cache warm) gives every patch a fresh
    swapper gives; a photo with other pixels in the same place (brighter) gets a fresh swapper's patches too,
    not the cached source's."""
    image, src = astronaut.image, astronaut.points
    brighter = np.clip(image.astype(np.int16) + 25, 0, 255).astype(np.uint8)
    kept = SplitSwapper(sigma_max=2.0)
    for target_id in astronaut.women * 2:
        crop, face = astronaut.pool.target(target_id)
        for photo in (image, brighter):
            got = kept.swap(photo, src, crop, face.landmarks68[0], alpha=alpha)
            fresh = SplitSwapper(sigma_max=2.0).swap(photo, src, crop, face.landmarks68[0], alpha=alpha)
            assert got.notes == fresh.notes
            assert got.patch.box == fresh.patch.box
            assert np.array_equal(got.patch.pixels, fresh.patch.pixels)
            assert np.array_equal(got.patch.mask, fresh.patch.mask)
    assert 0 < len(kept._sides) <= 8
