"""Training-free swappers: a dense piecewise-affine (Delaunay) warp of the target face onto the source geometry,
then either a LAB colour transfer (`warp`, the first swapper) or a frequency split (`split`, the default: the
source's coarse shading under the target's fine detail), blended with a feathered alpha inside the face outline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mfmc.swap import landmarks as lmk
from mfmc.swap.accessories import Kept, kept_regions
from mfmc.swap.base import SwapResult, register_swapper
from mfmc.swap.beard import bearded_target, lower_face
from mfmc.swap.blend import blend_patch, cut_holes, feather, polygon_mask, region_box, transfer_colour
from mfmc.swap.pose import camera_depth, destination, source_pose
from mfmc.vision.detection import median
from mfmc.vision.mesh import piecewise_affine_maps, triangulate

# degrees of the source's yaw (`source_pose`) from which the warp's triangles are the target's own mesh drawn far
# side first (`mesh`), not a Delaunay triangulation of the destination points
MESH_YAW = 35.0


def mesh(dst_ext: np.ndarray, target_ext: np.ndarray) -> np.ndarray:
    """The warp's triangles (K, 3) over the extended points (`lmk.extended`: the 68, then the forehead's).

    Near frontal: Delaunay triangles of the destination `dst_ext`. From MESH_YAW on, the destination's far half
    is squeezed behind the nose: a Delaunay triangulation of it joins far-side points to near-side ones, and
    those triangles drag the target's far eye across the near cheek. There the triangles are the target's own
    (a frontal face: a mesh of its surface), ordered by the generic head's depth at the source's pose, far
    side first, so the near side is drawn over what it hides; triangles that turn their back to the camera
    fold over and are left out (`piecewise_affine_maps`)."""
    dst68 = lmk.as_points(dst_ext[:68])
    pose = source_pose(dst68)
    if abs(pose[0]) < MESH_YAW:
        return triangulate(dst_ext)
    tri = triangulate(target_ext)
    depth = camera_depth(dst68, pose)
    depth = np.concatenate([depth, depth[lmk.BROWS]])  # the forehead points: the brows' depth
    return tri[np.argsort(depth[tri].mean(1), kind="stable")]


@dataclass(frozen=True)
class WarpedTarget:
    """The target warped onto a destination geometry, cut to the region around both faces.

    `image` and `mask` are region-sized (`box` in the photo); `mask` (uint8 0/1) is the source's face outline
    where the warp covers it; `scale` is √ of the mask's area, the face's size in pixels."""

    box: tuple[int, int, int, int]
    image: np.ndarray
    mask: np.ndarray
    scale: float
    outline: np.ndarray  # the outline within the warp's coverage, before the skin test (for the beard test)
    lab: np.ndarray | None = None  # `image` in float LAB (`lab_of`) when the skin test computed it, else None

    @property
    def size(self) -> tuple[int, int]:
        x1, y1, x2, y2 = self.box
        return y2 - y1, x2 - x1


def warp_target(image: np.ndarray, source: np.ndarray, target: np.ndarray, destination: np.ndarray,
                target_image: np.ndarray, forehead: float, *, skin_only: bool = True) -> WarpedTarget:
    """Warp `target_image` (its 68 `target` landmarks) onto the 68 `destination` points, each set extended by
    `forehead`, per Delaunay triangle; mask the `source` face outline within the warp's coverage, less (with
    `skin_only`) the outer band's pixels where the warped target is not skin (`skin`)."""
    dst = lmk.extended(destination, forehead)
    src_ext = lmk.extended(source, forehead)
    tgt_ext = lmk.extended(target, forehead)
    box = region_box(np.vstack([dst, src_ext]), image.shape[:2])
    x1, y1, x2, y2 = box
    map_x, map_y, covered = piecewise_affine_maps(dst, tgt_ext, mesh(dst, tgt_ext), box)
    warped = cv2.remap(target_image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    outline = polygon_mask(lmk.outline(src_ext), (y2 - y1, x2 - x1), (x1, y1)) & covered.astype(np.uint8)
    lab = lab_of(warped) if skin_only else None
    mask = outline & skin(warped, destination, (x1, y1), lab=lab) if skin_only else outline
    return WarpedTarget(box, warped, mask, float(np.sqrt(max(int(mask.sum()), 1))), outline, lab)


def lab_of(rgb: np.ndarray) -> np.ndarray:
    """An RGB uint8 image in float32 LAB (L 0-100), as the swappers read it."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


# how far a warped target pixel of the face's outer band may be from the target's own skin (LAB) and still be
# taken: darker by more than SKIN_DARKER in L, or further than SKIN_CHROMA in (a, b), is hair or background
SKIN_DARKER = 22.0
SKIN_CHROMA = 16.0
# the target's skin reference: under the eyes and over the nostrils (lower lids and nose base)
_SKIN_REF = np.array([36, 41, 40, 39, 42, 47, 46, 45, 35, 33, 31])


def skin(warped: np.ndarray, points: np.ndarray, offset: tuple[int, int], *, lab: np.ndarray | None = None
         ) -> np.ndarray:
    """uint8 0/1: where the warped target shows skin. In the band between the inner features (brows, eyes,
    nose, mouth: their convex hull, grown) and the outline, a target's hair, beard or background — a frontal
    target's temples and cheek edge, stretched onto a turned source's near side — would be pasted in; there the
    source keeps its own pixels. `points`: the 68 points of the warp's destination (photo coordinates). `lab`:
    `warped` already in LAB (`lab_of`), when the caller has it."""
    h, w = warped.shape[:2]
    if lab is None:
        lab = lab_of(warped)
    ref_mask = polygon_mask(cv2.convexHull(points[_SKIN_REF].astype(np.float32))[:, 0], (h, w), offset)
    if int(ref_mask.sum()) < 8:
        return np.ones((h, w), np.uint8)
    ref = np.array([median(channel) for channel in lab[ref_mask.astype(bool)].T], np.float32)  # not np.median: numpy.ma
    far = (lab[..., 0] < ref[0] - SKIN_DARKER) | (np.hypot(lab[..., 1] - ref[1], lab[..., 2] - ref[2]) > SKIN_CHROMA)
    inner = polygon_mask(cv2.convexHull(points[lmk.INNER].astype(np.float32))[:, 0], (h, w), offset)
    grow = max(1, round(0.04 * lmk.interocular(points)))
    inner = cv2.dilate(inner, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    other = (far & (inner == 0)).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    other = cv2.morphologyEx(other, cv2.MORPH_OPEN, k)  # specks of shadow stay
    return (1 - cv2.dilate(other, k)).astype(np.uint8)


@register_swapper("warp")
class WarpSwapper:
    """Dense-landmark swap with no learned model (design notes §6).

    forehead: how far above the brows the mask reaches (× brow-to-chin distance). feather: width of the alpha
    ramp (× square root of the face area). keep_open_mouth / keep_open_eyes: leave the source's teeth and eyes
    when the source shows them but the target cannot (a closed target mouth or eye stretched open looks hollow).
    """

    name = "warp"

    def __init__(
        self,
        *,
        forehead: float = 0.22,
        feather: float = 0.07,
        keep_open_mouth: bool = True,
        keep_open_eyes: bool = True,
        colour: bool = True,
        keep_source_hair: bool = True,
        keep_expression: bool = False,
    ) -> None:
        self.forehead = forehead
        self.feather = feather
        self.keep_open_mouth = keep_open_mouth
        self.keep_open_eyes = keep_open_eyes
        self.colour = colour
        self.keep_source_hair = keep_source_hair
        self.keep_expression = keep_expression

    def swap(
        self,
        image: np.ndarray,
        source_landmarks: np.ndarray,
        target_image: np.ndarray,
        target_landmarks: np.ndarray,
        *,
        alpha: float = 0.0,
        kept: Sequence[Kept] | None = None,
    ) -> SwapResult:
        src = lmk.as_points(source_landmarks)
        tgt = lmk.as_points(target_landmarks)
        alpha = float(np.clip(alpha, 0.0, 1.0))
        dst68 = destination(src, tgt, alpha, expression=self.keep_expression)
        # the plain warp keeps its whole outline (its beard test cuts the lower face instead of the skin test)
        region = warp_target(image, src, tgt, dst68, target_image, self.forehead, skin_only=False)
        x1, y1, x2, y2 = box = region.box
        size, mask, scale, warped = region.size, region.mask, region.scale, region.image
        alpha_map = feather(mask, self.feather * scale)

        notes: list[str] = []
        holes: list[np.ndarray] = []
        if self.keep_open_mouth and lmk.mouth_openness(src) > 0.12:
            holes.append(src[lmk.INNER_MOUTH])
            notes.append("kept the source's open mouth")
        if self.keep_open_eyes and lmk.eye_openness(src) > 0.2 and lmk.eye_openness(tgt) < 0.15:
            holes += [src[lmk.RIGHT_EYE], src[lmk.LEFT_EYE]]
            notes.append("kept the source's open eyes (target eyes closed)")
        for worn in kept_regions(image, src) if kept is None else kept:  # glasses, a face mask: kept
            holes += worn.polygons
            notes.append(worn.reason)
        alpha_map = cut_holes(alpha_map, holes, (x1, y1), 0.02 * scale)

        inner = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=2)
        if self.colour:
            warped = transfer_colour(warped, image[y1:y2, x1:x2], inner.astype(np.float32))
        if self.keep_source_hair:
            t_lab = cv2.cvtColor(warped.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
            s_lab = cv2.cvtColor(image[y1:y2, x1:x2].astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
            whole = cv2.erode(region.outline, np.ones((3, 3), np.uint8), iterations=2).astype(bool)
            if bearded_target(t_lab, s_lab, dst68, src, (x1, y1), whole):
                alpha_map = alpha_map * (1.0 - lower_face(dst68, size, (x1, y1), scale))
                notes.append("target has facial hair the source lacks: kept the source's lower face")
        return SwapResult(blend_patch(image, warped, alpha_map, box), tuple(notes))
