"""New synthetic identities from parts of synthetic faces (development time only; needs OpenCV).

A *part composite* takes the face outline, skin, hair and background of one synthetic person (the base), the
brows of a second, the eyes of a third, the nose of a fourth and the mouth of a fifth (some roles may share a
donor). Every donor is aligned to the base by a similarity transform on its 68 landmarks; the composite's geometry
is the base's with each part replaced by the donor's part shape, then pushed away from the mean face shape by
`caricature` (1 = none; 1.5-1.8 exaggerates what makes the geometry distinctive, as caricaturists do). Each donor
is warped onto that geometry triangle by triangle, colour-matched to the base in the part's region (Lab mean and
spread) and blended in with a feathered mask, so no seam shows. Optionally the face's texture is pushed away from
the mean texture (`texture`, > 1), low frequencies only, since amplifying fine detail amplifies pores and noise.

Recognizers weight the eyes most: a composite sits ~0.45-0.65 (dlib L2) from its eye donor, further from the
others; the default-pool builder keeps only composites measured >= the same-person threshold from every face.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mfmc.vision.alignment import similarity_fit

JAW = tuple(range(0, 17))
BROWS = tuple(range(17, 27))
NOSE = tuple(range(27, 36))
EYES = tuple(range(36, 48))
MOUTH = tuple(range(48, 68))
ROLES = ("base", "brows", "eyes", "nose", "mouth", "skin")
_PARTS: Mapping[str, tuple[tuple[int, ...], float]] = {  # landmarks, mask dilation (x inter-ocular distance)
    "brows": (BROWS, 0.18), "eyes": (EYES, 0.22), "nose": (NOSE, 0.2), "mouth": (MOUTH, 0.22)}


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2 x 3 least-squares similarity transform (rotation, uniform scale, shift) taking `src` points to `dst`."""
    return similarity_fit(src, dst)


def transform(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts, np.float64) @ m[:, :2].T + m[:, 2]


def mean_shape(shapes: Sequence[np.ndarray], reference: np.ndarray) -> np.ndarray:
    """Mean of 68-point shapes after aligning each to `reference`."""
    return np.mean([transform(similarity(s, reference), s) for s in shapes], axis=0)


def _frame_points(w: int, h: int) -> np.ndarray:
    xs, ys = [0, w // 2, w - 1], [0, h // 2, h - 1]
    return np.array([(x, y) for y in ys for x in xs if not (x == w // 2 and y == h // 2)], np.float64)


def warp(image: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Piecewise-affine warp of `image` taking 68 landmarks `src` to `dst` (frame corners stay put): one dense
    `cv2.remap` over the triangles of `mfmc.vision.mesh` (a per-triangle `warpAffine` cost ~40 ms per call);
    folded-over triangles are inpainted from their surroundings."""
    import cv2

    from mfmc.vision.mesh import piecewise_affine_maps, triangulate

    h, w = image.shape[:2]
    frame = _frame_points(w, h)
    ps, pd = np.vstack([src, frame]), np.vstack([dst, frame])
    map_x, map_y, covered = piecewise_affine_maps(pd, ps, triangulate(pd), (0, 0, w, h))
    out = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if not covered.all():
        # triangles that fold over (a part much moved against its neighbours) stay uncovered: filled from
        # around them, since black holes there showed as dotted lines at brow tails and eye corners
        out = cv2.inpaint(np.ascontiguousarray(out), (~covered).astype(np.uint8), 3, cv2.INPAINT_TELEA)
    return out


def _inter_ocular(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))


def _hull_mask(shape: tuple[int, ...], pts: np.ndarray, dilate: int, blur: int) -> np.ndarray:
    import cv2

    m = np.zeros(shape[:2], np.float32)
    hull = cv2.convexHull(np.asarray(pts, np.float32)).reshape(-1, 2)
    cv2.fillConvexPoly(m, np.rint(hull).astype(np.int32), 1.0)
    if dilate > 1:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (dilate, dilate)))
    k = max(3, blur | 1)
    return cv2.GaussianBlur(m, (k, k), 0)


def _match_colour(src: np.ndarray, ref: np.ndarray, weight: np.ndarray) -> np.ndarray:
    import cv2

    s = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    r = cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float32)
    sel = weight > 0.5
    if sel.sum() < 16:
        return src
    gain = np.clip((r[sel].std(0) + 1e-3) / (s[sel].std(0) + 1e-3), 0.7, 1.4)
    out = (s - s[sel].mean(0)) * gain + r[sel].mean(0)
    return cv2.cvtColor(np.clip(np.rint(out), 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def face_mask(lm: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Feathered mask of the face: jaw line and brows raised by a quarter of the inter-ocular distance."""
    iod = _inter_ocular(lm)
    return _hull_mask(shape, np.vstack([lm[0:17], lm[17:27] - [0, 0.25 * iod]]), 0, int(0.3 * iod))


# 68-point left-right mirror (iBUG order): point i of a mirrored face is point MIRROR68[i] of the face, x flipped
MIRROR68 = np.array(list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
                    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40] + [54, 53, 52, 51, 50, 49, 48]
                    + [59, 58, 57, 56, 55] + [64, 63, 62, 61, 60] + [67, 66, 65])
_RIGID = (tuple(range(36, 42)), tuple(range(42, 48)), MOUTH)  # moved and scaled only, never reshaped


def _mirror(shape: np.ndarray, cx: float) -> np.ndarray:
    out = np.asarray(shape, np.float64)[MIRROR68].copy()
    out[:, 0] = 2 * cx - out[:, 0]
    return out


class ShapeModel:
    """Left-right symmetric PCA of aligned 68-point face shapes: the directions in which faces differ.

    `fit` aligns every shape to an upright reference by a similarity transform, averages each with its mirror
    image (so head turn and roll, which are asymmetric, drop out; only symmetric shape differences remain) and
    keeps the leading principal components with their standard deviations. `offset` turns coefficients (in
    standard deviations) into a landmark displacement in the frame of a face; the eyes and the mouth are only
    moved and scaled by it, never reshaped, so a face keeps its eye opening and mouth expression.
    """

    def __init__(self, mean: np.ndarray, components: np.ndarray, sd: np.ndarray) -> None:
        self.mean = np.asarray(mean, np.float64)
        self.components = np.asarray(components, np.float64)
        self.sd = np.asarray(sd, np.float64)

    @classmethod
    def fit(cls, shapes: Sequence[np.ndarray], k: int = 8) -> ShapeModel:
        if len(shapes) < 3:
            raise ValueError(f"a shape model needs at least 3 shapes, got {len(shapes)}")
        first = np.asarray(shapes[0], np.float64)
        ref = np.mean([transform(similarity(s, first), s) for s in shapes], axis=0)
        for _ in range(2):  # upright (eye line horizontal), symmetric, unit inter-ocular distance
            left, right = ref[36:42].mean(0), ref[42:48].mean(0)
            v = right - left
            ang, iod = float(np.arctan2(v[1], v[0])), float(np.hypot(*v))
            rot = np.array([[np.cos(-ang), -np.sin(-ang)], [np.sin(-ang), np.cos(-ang)]]) / iod
            ref = (ref - ref.mean(0)) @ rot.T
            ref = 0.5 * (ref + _mirror(ref, 0.0))
            ref = np.mean([transform(similarity(s, ref), s) for s in shapes], axis=0)
        aligned = [transform(similarity(s, ref), s) for s in shapes]
        cx = float(ref.mean(0)[0])
        sym = np.array([0.5 * (a + _mirror(a, cx)) for a in aligned]).reshape(len(aligned), -1)
        mean = sym.mean(0)
        _, sv, vt = np.linalg.svd(sym - mean, full_matrices=False)
        k = max(1, min(k, len(sym) - 1))
        return cls(mean.reshape(68, 2), vt[:k], sv[:k] / np.sqrt(len(sym)))

    @property
    def k(self) -> int:
        return len(self.sd)

    def offset(self, coeffs: Sequence[float], onto: np.ndarray) -> np.ndarray:
        """(68, 2) displacement for `coeffs` (standard deviations of the first components) in `onto`'s frame."""
        c = np.zeros(self.k)
        c[: min(len(coeffs), self.k)] = np.asarray(coeffs, np.float64)[: self.k]
        d = ((c * self.sd) @ self.components).reshape(68, 2)
        d = d @ similarity(self.mean, onto)[:, :2].T
        base = np.asarray(onto, np.float64)
        for g in _RIGID:  # translation + uniform scale about the part's centre: the least-squares fit
            idx = list(g)
            p = base[idx] - base[idx].mean(0)
            t = d[idx].mean(0)
            s = float((p * (d[idx] - t)).sum()) / max(float((p * p).sum()), 1e-9)
            d[idx] = t + s * p
        return d


def _high_pass(image: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    x = image.astype(np.float32)
    return x - cv2.GaussianBlur(x, (0, 0), sigma)


def skin_mask(lm: np.ndarray, shape: tuple[int, ...], include: Sequence[str] = ()) -> np.ndarray:
    """Feathered mask of the skin between the parts (the face less brows, eyes, nose and mouth, except the
    parts named in `include`), fading out from the bottom of the nose to the upper lip (a donor's stubble must
    not reach a shaven face, nor its mouth a mouth)."""
    iod = _inter_ocular(lm)
    m = face_mask(lm, shape)
    for role, (idx, dil) in _PARTS.items():
        if role not in include:
            m = m * (1.0 - _hull_mask(shape, lm[list(idx)], int(dil * iod), int(0.25 * iod)))
    top, bottom = float(lm[33, 1]), float(lm[51, 1])
    ys = np.arange(shape[0], dtype=np.float32)[:, None]
    ramp = np.clip((bottom - ys) / max(bottom - top, 1.0), 0.0, 1.0)
    return m * ramp


def part_composite(parts: Mapping[str, tuple[np.ndarray, np.ndarray]], mean: np.ndarray, *,
                   caricature: float = 1.0, texture: float = 1.0,
                   scales: Mapping[str, tuple[float, float]] | None = None,
                   mean_texture: tuple[np.ndarray, np.ndarray] | None = None,
                   shape_offset: np.ndarray | None = None,
                   detail: float = 0.0, detail_sigma: float = 0.12,
                   detail_parts: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Compose a face from `parts` (role in `ROLES` -> (RGB image, 68 landmarks); a missing role falls back to
    the base). `mean`: the mean 68-point shape; `mean_texture`: (image, its landmarks), needed when `texture`
    != 1. `scales`: part (`brows`, `eyes`, `nose`, `mouth`, or `face` for the whole shape) -> (x, y) factors,
    each eye / brow scaled about its own centre, applied after the caricature. `shape_offset`: a (68, 2)
    displacement added last (`ShapeModel.offset` in the base's frame). `detail` (0-1) with a `skin` part:
    that donor's skin detail (finer than `detail_sigma` x the inter-ocular distance: pores, lines, creases,
    never its colour or shading) replaces the composite's in the skin between the parts and in the parts
    named in `detail_parts` (`skin_mask`).
    Returns the image (the base's size) and its landmarks."""
    import cv2

    base_img, base_lm = parts["base"]
    base_lm = np.asarray(base_lm, np.float64)
    target = base_lm.copy()
    for role, (idx, _) in _PARTS.items():
        if role in parts:
            lm = np.asarray(parts[role][1], np.float64)
            target[list(idx)] = transform(similarity(lm, base_lm), lm)[list(idx)]
    if caricature != 1.0:
        ms = transform(similarity(mean, target), mean)
        centre = target.mean(0)
        target = ms + caricature * (target - ms)
        target += centre - target.mean(0)
    for part, (sx, sy) in (scales or {}).items():
        idx = tuple(range(68)) if part == "face" else _PARTS[part][0]
        groups = [idx[: len(idx) // 2], idx[len(idx) // 2:]] if part in ("brows", "eyes") else [idx]
        for g in groups:
            c = target[list(g)].mean(0)
            target[list(g)] = c + (target[list(g)] - c) * [sx, sy]
    if shape_offset is not None:
        target = target + np.asarray(shape_offset, np.float64)
    out = warp(base_img, base_lm, target)
    iod = _inter_ocular(target)
    acc = out.astype(np.float32)
    # an eye donor's region reaches up to its brows: with brows of another donor, the eyes stop short of them
    # (else the eye donor's brow showed as a second brow line)
    brow_core = None
    if "brows" in parts and "eyes" in parts and parts["brows"][0] is not parts["eyes"][0]:
        brow_core = np.maximum(*(_hull_mask(out.shape, target[list(half)], int(0.12 * iod), int(0.1 * iod))
                                 for half in (BROWS[:5], BROWS[5:])))
    for role, (idx, dil) in _PARTS.items():
        if role not in parts or parts[role][0] is base_img:
            continue
        img, lm = parts[role]
        part = warp(img, np.asarray(lm, np.float64), target)
        weight = _hull_mask(out.shape, target[list(idx)], int(dil * iod), int(0.25 * iod))
        if role == "eyes" and brow_core is not None:
            weight = weight * (1.0 - np.clip(2.0 * brow_core, 0.0, 1.0))
        part = _match_colour(part, np.clip(acc, 0, 255).astype(np.uint8), weight)
        acc = acc * (1 - weight[..., None]) + part.astype(np.float32) * weight[..., None]
    if detail > 0 and "skin" in parts:
        img, lm = parts["skin"]
        donor = warp(img, np.asarray(lm, np.float64), target)
        sigma = detail_sigma * iod
        weight = detail * skin_mask(target, out.shape, detail_parts)[..., None]
        acc = acc + weight * (_high_pass(donor, sigma) - _high_pass(np.clip(acc, 0, 255), sigma))
    if texture != 1.0 and mean_texture is not None:
        mt = warp(mean_texture[0], np.asarray(mean_texture[1], np.float64), target).astype(np.float32)
        sigma = 0.08 * iod
        diff = cv2.GaussianBlur(acc - mt, (0, 0), sigma)
        acc = acc + (texture - 1.0) * face_mask(target, out.shape)[..., None] * diff
    return np.clip(np.rint(acc), 0, 255).astype(np.uint8), target
