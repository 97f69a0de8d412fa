"""`split`: the default swapper — the target's structure on the source's look (design notes §6b).

The target is warped onto a destination geometry that takes `alpha` of the target's identity-bearing shape
(brows, eyes, nose and mouth: their shapes and placement, similarity-aligned so pose stays the source's). Then,
in LAB and inside the inner-face mask, the result is split by frequency: the *source's* coarse part (a masked
Gaussian, σ = `sigma` × √mask area — skin tone, lighting and expression shading) plus the *target's* fine detail
(lightness at full weight, colour at `colour_detail`). Escalation (alpha > 0.5) moves more of the target in: more
geometry and a coarser split (σ grows to `sigma_max` at alpha 1), so the closest misses get more target first.
With `keep_look` (the default) the coarser split adds only the target's *lightness* between the base and the
coarse scale (its mid-scale shading), less its lighting (a plane fitted over the face) and faded to nothing over
a rim inside the outline: the skin tone, lighting and edge stay the source's (the whole coarse split had made the
escalation's fakes paler, flat-lit patches with an edge at the outline and a second chin line).

Kept from the source: its open mouth's interior, its eyes when their state (open/closed) differs from the
target's or when they are narrow (downcast, smiling) and the target's open wider, its lower face when the warped
target shows facial hair the source lacks (the beard test below), and its hair over the forehead (a fringe:
where the source is not skin above the brows).
The target's brows are toned down to the source's brow darkness (their fine detail scaled over a band along the
brows, shape kept): pool targets' heavy, drawn-on brows had made women's fakes read masculine.
At the escalation the target's eye sockets are toned the same way (`socket_floor`: their darkening scaled to the
source's mean socket shading): a dark target's sockets had made grey rings around a light face's eyes.
A target crop enlarged more than 1.4x onto the photo gets the photo's grain (noise as fine and as strong as the
source's own finest band): stretched pool crops had left a soft, airbrushed inner face in crisp photos.
The skin tone is the source's (`skin_tone`): a kept face mask or glasses (and then the source's hair) are left out of
the coarse parts, and where the warped target shows hair, a scarf or background its colour detail is dropped (the
source's skin colour there, its lightness kept): a white mask had lit a lighter band above itself, and a target's
headscarf at the temple had come in as a grey-blue band (t1.jpg #4).
The alpha ramps down smoothly over the forehead (no hard band at the hairline) and is exactly zero outside the
face outline, so no pixel outside the patch mask changes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mfmc.swap import landmarks as lmk
from mfmc.swap.accessories import Kept, kept_regions
from mfmc.swap.base import SwapResult, register_swapper
from mfmc.swap.beard import beard_gap, bearded_target, lower_face, shading_lift
from mfmc.swap.blend import blend_patch, cut_holes, feather, grey_scale, polygon_mask
from mfmc.swap.pose import destination, turned
from mfmc.swap.warp import lab_of, skin, warp_target
from mfmc.vision.detection import median

__all__ = ["SplitSwapper", "beard_gap", "masked_blur"]

def masked_blur(lab: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised masked Gaussian: the local mean of `lab` over pixels inside `mask` only.

    Large σ (the coarse part is σ = 0.25-2 × √area: 20-400 px) runs on a copy shrunk to σ ≈ 6 px and is scaled
    back: the result is smooth anyway, and a 400 px kernel at full size cost seconds per face."""
    return masked_blurs([lab], mask, sigma)[0]


def masked_blurs(labs: Sequence[np.ndarray], mask: np.ndarray, sigma: float) -> list[np.ndarray]:
    """`masked_blur` of each of `labs` (the source's and the target's) under one `mask` and `sigma`: the
    blurred mask (the normalising denominator) is computed once for all, each result as `masked_blur` gives it."""
    m = mask.astype(np.float32)
    h, w = m.shape
    f = min(1.0, 6.0 / max(sigma, 1e-6))
    size = (max(2, round(w * f)), max(2, round(h * f)))
    if f < 1.0:
        den = cv2.resize(cv2.GaussianBlur(cv2.resize(m, size, interpolation=cv2.INTER_AREA), (0, 0), sigma * f),
                         (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        den = cv2.GaussianBlur(m, (0, 0), sigma)
    out = []
    for lab in labs:
        per = (lambda a: a) if lab.ndim == 2 else (lambda a: a[..., None])  # one channel (2-D) or several
        if f < 1.0:
            small_lab = cv2.resize(lab * per(m), size, interpolation=cv2.INTER_AREA)
            num = cv2.resize(cv2.GaussianBlur(small_lab, (0, 0), sigma * f), (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            num = cv2.GaussianBlur(lab * per(m), (0, 0), sigma)
        out.append(num / np.maximum(per(den), 1e-4))
    return out


def detail_gain(source_detail: np.ndarray, target_detail: np.ndarray, floor: float) -> float:
    """How much of the target's fine detail (lightness) to keep: the ratio of the source's to the target's detail
    contrast (standard deviations over the inner face), at most 1 and at least `floor`."""
    ratio = float(np.std(source_detail)) / max(float(np.std(target_detail)), 1e-6)
    return float(np.clip(ratio, min(floor, 1.0), 1.0))


# the brow band: a stroke along each brow's five points, `BROW_WIDTH` x the eye-corner distance thick; its
# darkness is the mean of its darkest `BROW_SHARE` of pixels in the fine (detail) lightness
BROW_WIDTH = 0.12
BROW_SHARE = 0.4
# the eye sockets' band (`socket_band`): down to `SOCKET_BELOW` x the eye-corner distance under the lower lids,
# feathered over `SOCKET_FEATHER` x that distance
SOCKET_BELOW = 0.25
SOCKET_FEATHER = 0.08
EYE_GROW = 0.04


def brow_band(pts: np.ndarray, size: tuple[int, int], offset: tuple[int, int]) -> np.ndarray:
    """A (h, w) bool mask: a stroke along each brow (points 17-21, 22-26) of `pts`, in a region at `offset`."""
    band = np.zeros(size, np.uint8)
    width = max(1, round(BROW_WIDTH * lmk.interocular(pts)))
    for brow in (lmk.BROWS[:5], lmk.BROWS[5:]):
        line = np.round(pts[brow] - np.asarray(offset, np.float64)).astype(np.int32)
        cv2.polylines(band, [line], False, 1, width)
    return band.astype(bool)


def brow_darkness(detail: np.ndarray, band: np.ndarray) -> float:
    """The brow band's darkness in a fine-detail lightness: the mean of its darkest `BROW_SHARE` (negative = darker
    than the face's coarse shading there); nan when the band is empty."""
    values = np.sort(detail[band])
    if values.size < 4:
        return float("nan")
    return float(values[: max(1, round(BROW_SHARE * values.size))].mean())


def socket_band(pts: np.ndarray, size: tuple[int, int], offset: tuple[int, int]) -> np.ndarray:
    """A (h, w) float32 weight over each eye socket of `pts`, in a region at `offset`: the hull of a brow, its eye
    and its lower lid moved down `SOCKET_BELOW` x the eye-corner distance (the socket and the shading under the
    eye), less the eye itself and the brow stroke (`brow_band`: toned on their own), blurred over
    `SOCKET_FEATHER` x that distance."""
    band = np.zeros(size, np.uint8)
    d = lmk.interocular(pts)
    at = np.asarray(offset, np.float64)
    eyes = []
    for brow, eye in ((lmk.BROWS[:5], lmk.RIGHT_EYE), (lmk.BROWS[5:], lmk.LEFT_EYE)):
        below = pts[eye[3:]] + np.array([0.0, SOCKET_BELOW * d])  # the lower lid (and a corner), moved down
        cv2.fillConvexPoly(band, cv2.convexHull(np.round(np.vstack([pts[brow], pts[eye], below]) - at)
                                                .astype(np.int32)), 1)
        eyes.append(np.round(pts[eye] - at).astype(np.int32))
    cv2.fillPoly(band, eyes, 0)
    band[brow_band(pts, size, offset)] = 0
    return cv2.GaussianBlur(band.astype(np.float32), (0, 0), max(1.0, SOCKET_FEATHER * d))


def eye_weight(pts: np.ndarray, size: tuple[int, int], offset: tuple[int, int]) -> np.ndarray:
    """A (h, w) float32 weight, 1 over both eyes of `pts` (their six points, grown by `EYE_GROW` x the eye-corner
    distance: the lids' lash line), blurred over `SOCKET_FEATHER` x that distance, in a region at `offset`."""
    band = np.zeros(size, np.uint8)
    d = lmk.interocular(pts)
    at = np.asarray(offset, np.float64)
    cv2.fillPoly(band, [np.round(pts[eye] - at).astype(np.int32) for eye in (lmk.RIGHT_EYE, lmk.LEFT_EYE)], 1)
    grow = max(1, round(EYE_GROW * d))
    band = cv2.dilate(band, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return cv2.GaussianBlur(band.astype(np.float32), (0, 0), max(1.0, SOCKET_FEATHER * d))


def socket_darkness(shading: np.ndarray, weight: np.ndarray, inner: np.ndarray) -> float:
    """The eye sockets' darkness in a shading (lightness against the face's coarse level): its mean over the
    sockets (`socket_band` weight above 0.5, inside `inner`); nan when they are empty. The mean, not the darkest
    share as for brows: the source's own lash line and lid crease are as dark as the target's, what differs is
    how dark the whole socket is."""
    sel = (weight > 0.5) & inner
    return float(shading[sel].mean()) if sel.sum() >= 4 else float("nan")


def brow_gain(source_dark: float, target_dark: float, floor: float) -> float:
    """How much of the target's fine detail to keep over its brows: the source's brow darkness over the target's,
    when the target's brows are darker (never up, at least `floor`; 1 when either is unmeasured)."""
    if not (np.isfinite(source_dark) and np.isfinite(target_dark)) or target_dark >= min(source_dark, 0.0):
        return 1.0
    return float(np.clip(min(source_dark, 0.0) / target_dark, min(floor, 1.0), 1.0))


@register_swapper("split")
class SplitSwapper:
    """Frequency-split swap: target fine detail over the source's coarse shading (see the module docstring)."""

    name = "split"

    def __init__(
        self,
        *,
        forehead: float = 0.22,
        feather: float = 0.07,
        base_alpha: float = 0.5,
        sigma: float = 0.25,
        sigma_max: float = 0.6,
        colour_detail: float = 0.6,
        detail_gain_min: float = 0.6,
        beard_gap: float = 22.0,
        beard_margin: float = 12.0,
        keep_expression: bool = False,
        keep_smile: bool = False,
        keep_closed_mouth: bool = True,
        lift_chin: bool = True,
        upscaled: float = 1.4,
        grain: bool = True,
        keep_fringe: bool = True,
        narrow_eyes: float = 0.25,
        eye_ratio: float = 1.4,
        brow_floor: float = 0.4,
        keep_look: bool = True,
        rim: float = 0.15,
        socket_floor: float = 0.4,
        eye_colour: bool = False,
        skin_tone: bool = True,
    ) -> None:
        self.forehead = forehead
        self.feather = feather
        self.base_alpha = base_alpha
        self.sigma = sigma
        self.sigma_max = sigma_max
        self.colour_detail = colour_detail
        # the target's fine detail is scaled to the source photo's own detail contrast (never up, never below
        # this): a crisp, made-up pool face pasted at full contrast into a soft or plain-faced photo read as
        # drawn-on brows and painted eye shadow (issue 11's real photos)
        self.detail_gain_min = detail_gain_min
        self.beard_gap = beard_gap
        self.beard_margin = beard_margin
        self.keep_expression = keep_expression
        self.keep_smile = keep_smile
        # a closed source mouth keeps its lips when the target's mouth is open: the target's teeth, warped onto
        # them, made a closed half-smile a toothy grin that every expression check passed (01.jpg, Tom_Hanks)
        self.keep_closed_mouth = keep_closed_mouth
        self.lift_chin = lift_chin
        # a target crop enlarged more than `upscaled` times onto the photo (its eye-corner distance against the
        # source's) has lost its finest detail: a soft, airbrushed inner face in a crisp photo (obama.jpg: 2.3x).
        # With `grain`, photo grain as fine and as strong as the source's own is added there (`_grain`)
        self.upscaled = upscaled
        self.grain = grain
        # the source's hair over its forehead (a fringe) stays: the target's forehead skin had been painted into
        # bangs (p3.jpg's masked woman: skin-coloured patches in her fringe, and every fake read "happy")
        self.keep_fringe = keep_fringe
        # the source's eyes stay when they are narrow (eye aspect ratio below `narrow_eyes`: downcast, smiling or
        # half-closed) and the target's are open wider (`eye_ratio` times or more): a woman looking down had got
        # a fake with open staring eyes (t1.jpg); the warp moves the aperture only half-way (alpha)
        self.narrow_eyes = narrow_eyes
        self.eye_ratio = eye_ratio
        # the target's brows no darker than the source's: their fine detail over the brow band scaled down to the
        # source's brow darkness (shape kept, at least `brow_floor` of it; 1.0: off). Pool targets' heavy,
        # drawn-on brows had made women's fakes read masculine (t1.jpg #2, 0-f1-su-ph, multi_face)
        self.brow_floor = brow_floor
        # above the base split (escalation: alpha > base_alpha), the coarse split brings in only the target's
        # mid-scale lightness (`_mid_band`), not its colour, lighting or jaw rim: with the whole coarse split the
        # closest misses' fakes were paler, flat-lit face-shaped patches with an edge at the outline and a doubled
        # chin line (multi_face.jpg #4). `rim`: the band inside the outline (x √area) over which it fades out
        self.keep_look = keep_look
        self.rim = rim
        # at the escalation, the target's eye sockets no darker than the source's: the darkening (negative part)
        # of its fine detail and mid band over the sockets (`socket_band`) scaled by the source's mean socket shading
        # over the target's (at least `socket_floor` of it; 1.0: off). A dark target's sockets in lightness alone
        # had put grey rings around a light face's eyes (the astronaut, README's showcase)
        self.socket_floor = socket_floor
        # at the escalation, the eyes' mean colour detail the source's (`eye_weight`); off: measured -1 swap of 33
        # (a crowd effect in t1.jpg), though it turns the astronaut's grey-blue eyes half-way back to brown
        self.eye_colour = eye_colour
        # the fake's colour is the source's skin tone where it is not the target's skin: a kept face mask or
        # glasses are left out of the coarse parts, and where the warped target shows hair, a scarf or background
        # (`warp.skin`, outside its inner features) its colour detail is dropped (its lightness stays: taking the
        # source's there cost verified swaps). False: the coarse parts over the whole inner face, as before
        self.skin_tone = skin_tone
        # what a swap reads of the source alone, per region box (`_source_side`): every candidate of a face
        # recomputed it, and the box repeats across a face's candidates (it spans the source's outline and the
        # destination's points)
        self._sides: OrderedDict[tuple[tuple[int, int, int, int], bytes], _SourceSide] = OrderedDict()
        self._sides_lock = threading.Lock()

    def _source_side(self, image: np.ndarray, src: np.ndarray, box: tuple[int, int, int, int]) -> _SourceSide:
        """The source's side of a swap in region `box` (`_SourceSide`), computed once per source and box and
        reused while the region's pixels are the same (compared on every use: a cached entry never stands in
        for other pixels)."""
        x1, y1, x2, y2 = box
        crop = image[y1:y2, x1:x2]
        key = (box, np.ascontiguousarray(src, dtype=np.float64).tobytes())
        with self._sides_lock:
            side = self._sides.get(key)
            if side is not None:
                self._sides.move_to_end(key)
        if side is not None and (side.fringe is not None or not self.keep_fringe) \
                and np.array_equal(side.crop, crop):
            return side
        side = _SourceSide.of(crop, src, box, fringe=self.keep_fringe)
        with self._sides_lock:
            self._sides[key] = side
            self._sides.move_to_end(key)
            while len(self._sides) > SOURCE_SIDES:
                self._sides.popitem(last=False)
        return side

    def sigma_factor(self, alpha: float) -> float:
        extra = max(0.0, alpha - self.base_alpha) / max(1.0 - self.base_alpha, 1e-6)
        return self.sigma + (self.sigma_max - self.sigma) * min(extra, 1.0)

    def _mid_band(self, s_lab: np.ndarray, t_lab: np.ndarray, s_base: np.ndarray, t_base: np.ndarray,
                  inner: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """The target's and the source's lightness between the base scale and a coarser one at `sigma`, each less
        its lighting (`lighting`: a plane over the face), over `inner` (the inner face, less what the source wears
        and the fake keeps); the escalation adds the first in place of the second, faded to 0 over `rim` inside
        the outline (no seam, no second jaw line)."""
        t_blur, s_blur = masked_blurs([np.ascontiguousarray(t_lab[..., 0]), np.ascontiguousarray(s_lab[..., 0])],
                                      inner, sigma)
        t_mid, s_mid = t_base[..., 0] - t_blur, s_base[..., 0] - s_blur
        return t_mid - lighting(t_mid, inner), s_mid - lighting(s_mid, inner)

    def swap(
        self,
        image: np.ndarray,
        source_landmarks: np.ndarray,
        target_image: np.ndarray,
        target_landmarks: np.ndarray,
        *,
        alpha: float = 0.5,
        kept: Sequence[Kept] | None = None,
    ) -> SwapResult:
        src = lmk.as_points(source_landmarks)
        tgt = lmk.as_points(target_landmarks)
        alpha = float(np.clip(alpha, 0.0, 1.0))
        dst68 = destination(src, tgt, alpha, expression=self.keep_expression)
        # the target's hair or background in its outer band stays out where a turned source stretches it (at a
        # frontal pose the band is narrow, and cutting it cost verified swaps: docs/swap.md)
        region = warp_target(image, src, tgt, dst68, target_image, self.forehead, skin_only=turned(src))
        box = region.box
        x1, y1 = box[0], box[1]
        size, mask, scale, warped = region.size, region.mask, region.scale, region.image
        inner = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=2).astype(bool)
        side = self._source_side(image, src, box)
        s_lab = side.lab
        t_lab = lab_of(warped) if region.lab is None else region.lab  # the skin test's, when it ran

        notes: list[str] = []
        # beard test on the warped target against the source
        whole = cv2.erode(region.outline, np.ones((3, 3), np.uint8), iterations=2).astype(bool)
        bearded = bearded_target(t_lab, s_lab, dst68, src, (x1, y1), whole, gap=self.beard_gap,
                                 margin=self.beard_margin)

        sigma = max(1.0, self.sigma_factor(alpha) * scale)
        base = max(1.0, self.sigma * scale) if self.keep_look else sigma
        worn = tuple(kept_regions(image, src) if kept is None else kept)  # glasses, a face mask: kept below
        sel = inner  # where the coarse parts (skin tone, lighting) are measured
        other = None  # where the warped target shows hair, a scarf or background: the source's colour there
        if self.skin_tone:
            # a kept face mask or glasses left out of the coarse parts, and then the source's hair too (a fringe over
            # the little skin a mask leaves): a white mask had lit the skin tone above it (a lighter band with a
            # hard edge along the mask's top, p3.jpg, test2.jpg)
            held = _worn_mask(worn, size, (x1, y1), WORN_GROW * scale)
            if held.any():
                bare = inner & ~held & (skin(side.crop, src, (x1, y1), lab=s_lab) == 1)
                sel = bare if bare.sum() >= MIN_BARE * inner.sum() else sel
            # a turned source's mask already leaves the target's non-skin out (`warp_target`)
            other = None if turned(src) else inner & (skin(warped, dst68, (x1, y1), lab=t_lab) == 0)
        s_coarse, t_coarse = masked_blurs([s_lab, t_lab], sel, base)
        s_detail = s_lab - s_coarse  # the source's own fine detail (read by several tonings below)
        detail = t_lab - t_coarse
        detail *= detail_gain(s_detail[..., 0][sel], detail[..., 0][sel], self.detail_gain_min)
        detail *= np.array([1.0, self.colour_detail, self.colour_detail], np.float32)  # a, b only (x 1 is exact)
        # the escalation's coarser split (`keep_look`): only the target's lightness between the base and the coarse
        # scale comes in (its mid-scale shading: eye sockets, cheekbones), less its lighting (a plane over the
        # face) and faded out over a rim inside the outline; colour, lighting and the rim stay the source's
        band = None
        if sigma > base:
            t_mid, s_mid = self._mid_band(s_lab, t_lab, s_coarse, t_coarse, sel, sigma)
            fade = feather(mask, self.rim * scale)
            if self.socket_floor < 1.0:
                # the sockets' shading (fine detail and mid band) no darker than the source's own there: a dark
                # target's sockets in lightness alone read as grey rings on a light face (the astronaut)
                t_sock, s_sock = socket_band(dst68, size, (x1, y1)), socket_band(src, size, (x1, y1))
                gain = brow_gain(socket_darkness(s_detail[..., 0] + s_mid * fade, s_sock, inner),
                                 socket_darkness(detail[..., 0] + t_mid * fade, t_sock, inner), self.socket_floor)
                if gain < 1.0:
                    lift = 1.0 - (1.0 - gain) * t_sock
                    detail[..., 0] = np.where(detail[..., 0] < 0.0, detail[..., 0] * lift, detail[..., 0])
                    t_mid = np.where(t_mid < 0.0, t_mid * lift, t_mid)
                    notes.append(f"the target's eye sockets toned to the source's darkness (x{gain:.2f})")
            band = (t_mid - s_mid) * fade
        if self.brow_floor < 1.0:
            t_band = brow_band(dst68, size, (x1, y1)) & inner
            gain = brow_gain(brow_darkness(s_detail[..., 0], brow_band(src, size, (x1, y1)) & inner),
                             brow_darkness(detail[..., 0], t_band), self.brow_floor)
            if gain < 1.0:
                stroke = t_band.astype(np.float32)  # not `band` (the escalation's mid band, added below)
                weight = np.maximum(stroke, cv2.GaussianBlur(stroke, (0, 0), max(1.0, 0.02 * scale)))  # 1 on it
                detail *= (1.0 - (1.0 - gain) * weight)[..., None]
                notes.append(f"the target's brows toned to the source's darkness (x{gain:.2f})")
        if self.eye_colour and band is not None:
            # at the escalation, the eyes' mean colour detail is the source's (the target's iris and white kept
            # around it): a dark, warm-skinned target's eyes are much less coloured than its skin, and that gap on
            # a light face made grey-blue eyes (the astronaut)
            t_eyes, s_eyes = eye_weight(dst68, size, (x1, y1)), eye_weight(src, size, (x1, y1)) > 0.5
            core = (t_eyes > 0.5) & inner
            if core.sum() >= 4 and (s_eyes & inner).sum() >= 4:
                shift = s_detail[..., 1:][s_eyes & inner].mean(0) - detail[..., 1:][core].mean(0)
                detail[..., 1:] += t_eyes[..., None] * shift
        if grey_scale(s_lab, inner):
            detail[..., 1:] = 0.0
            notes.append("grey-scale photo: the fake takes no colour from the target")
        lower = None
        if bearded:
            # the source's own lower face instead of the target's (no facial hair added)
            lower = lower_face(dst68, size, (x1, y1), scale)[..., None]
            detail = detail * (1.0 - lower) + s_detail * lower
            notes.append("target has facial hair the source lacks: kept the source's lower face")
        out_lab = s_coarse + detail
        if band is not None:
            out_lab[..., 0] += band if lower is None else band * (1.0 - lower[..., 0])
        zoom = lmk.interocular(src) / max(lmk.interocular(tgt), 1e-6)
        if self.grain and zoom > self.upscaled:
            grain = _grain(s_lab[..., 0], inner, 0.5 * zoom, box)
            out_lab[..., 0] += grain if lower is None else grain * (1.0 - lower[..., 0])
            notes.append(f"target enlarged {zoom:.1f}x: photo grain added")
        # a clean-shaven target's own shading under the mouth, carried onto a brighter chin, reads as grey stubble
        # (strongest at the escalation's coarse split): the chin's lightness lifted back near the source's
        lift = None if bearded or not self.lift_chin else shading_lift(out_lab, s_lab, dst68, src, (x1, y1), inner,
                                                                        scale)
        if lift is not None:
            out_lab[..., 0] += lift
            notes.append("lifted the chin's shading back to the source's (no stubble added)")
        if other is not None and other.any():
            cut = other.astype(np.float32)
            cut = np.maximum(cut, cv2.GaussianBlur(cut, (0, 0), max(1.0, 0.02 * scale)))[..., None]  # 1 on it
            out_lab[..., 1:] = out_lab[..., 1:] * (1.0 - cut) + s_coarse[..., 1:] * cut
            notes.append("the source's skin colour where the target shows hair or background")
        out_lab[..., 0] = np.clip(out_lab[..., 0], 0.0, 100.0)
        rgb = cv2.cvtColor(out_lab.astype(np.float32), cv2.COLOR_LAB2RGB)
        result = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)

        ramp = side.ramp
        alpha_map = feather(mask, self.feather * scale) * ramp
        if self.keep_fringe:
            fringe = side.fringe
            assert fringe is not None
            if side.has_fringe:
                alpha_map *= 1.0 - cv2.GaussianBlur(fringe, (0, 0), max(1.0, 0.02 * scale))
                notes.append("kept the source's hair over its forehead")
        holes: list[np.ndarray] = []
        if self.keep_smile and lmk.smile(src) > lmk.SMILE:
            holes.append(src[lmk.OUTER_MOUTH])
            notes.append("kept the source's smiling mouth")
        elif lmk.mouth_openness(src) > lmk.OPEN_MOUTH:
            holes.append(src[lmk.INNER_MOUTH])
            notes.append("kept the source's open mouth")
        elif self.keep_closed_mouth and lmk.mouth_openness(tgt) > lmk.OPEN_MOUTH:
            # the target's teeth or dark mouth interior, warped onto a closed mouth, read as a grin or a gape that
            # the source does not make (and the 68 points re-predicted on it move less than the tolerance): the
            # source's closed lips stay (docs/swap.md "Teeth")
            lips = np.vstack([src[lmk.OUTER_MOUTH], dst68[lmk.OUTER_MOUTH]]).astype(np.float32)
            holes.append(cv2.convexHull(lips)[:, 0])  # the target's lips, where the warp put them, go too
            notes.append("kept the source's closed mouth (the target's is open)")
        src_eyes, tgt_eyes = lmk.eye_openness(src), lmk.eye_openness(tgt)
        narrow = src_eyes < self.narrow_eyes and tgt_eyes > self.eye_ratio * src_eyes
        if (src_eyes > 0.2 and tgt_eyes < 0.15) or (src_eyes < 0.15 and tgt_eyes > 0.2) or narrow:
            holes += [src[lmk.RIGHT_EYE], src[lmk.LEFT_EYE]]
            notes.append("kept the source's narrow eyes (the target's are open wider)" if narrow and src_eyes >= 0.15
                         else "kept the source's eyes (eye state differs from the target's)")
        for item in worn:
            holes += item.polygons
            notes.append(item.reason)
        alpha_map = cut_holes(alpha_map, holes, (x1, y1), 0.02 * scale)
        return SwapResult(blend_patch(image, result, alpha_map, box), tuple(notes))


# the share of the inner face that must be left, a kept mask or glasses and the hair out, for the coarse parts to be
# measured over it alone (`skin_tone`)
MIN_BARE = 0.1
# how far (x √mask area) around a kept mask or glasses the coarse parts leave out: its edge and the shadow along it
WORN_GROW = 0.02

# source sides a swapper keeps (`SplitSwapper._source_side`): a face's candidates share 1-4 region boxes
SOURCE_SIDES = 8


@dataclass(frozen=True, eq=False)
class _SourceSide:
    """What a split swap reads of the source alone in its region: the pixels (a copy, to check a reuse), their
    LAB, the forehead ramp and the fringe (where the source is not skin above the brows; with `fringe`). Read
    only: the arrays are never written."""

    crop: np.ndarray
    lab: np.ndarray
    ramp: np.ndarray
    fringe: np.ndarray | None
    has_fringe: bool

    @classmethod
    def of(cls, crop: np.ndarray, src: np.ndarray, box: tuple[int, int, int, int], *, fringe: bool) -> _SourceSide:
        x1, y1, x2, y2 = box
        lab = lab_of(crop)
        ramp = _forehead_ramp(src, (y2 - y1, x2 - x1), (x1, y1))
        hair = (1 - skin(crop, src, (x1, y1), lab=lab)).astype(np.float32) * (ramp < 1.0) if fringe else None
        side = cls(crop.copy(), lab, ramp, hair, bool(hair is not None and hair.any()))
        for a in (side.crop, side.lab, side.ramp, side.fringe):
            if a is not None:
                a.flags.writeable = False
        return side


def _worn_mask(worn: Sequence[Kept], size: tuple[int, int], offset: tuple[int, int], grow: float) -> np.ndarray:
    """A (h, w) bool mask of what the source wears and the fake keeps (`kept_regions`' polygons), grown by `grow`
    px (at least 2): all False when nothing is worn."""
    held = np.zeros(size, np.uint8)
    for item in worn:
        for poly in item.polygons:
            held |= polygon_mask(np.asarray(poly, np.float64), size, offset)
    if held.any():
        k = max(2, round(grow))
        held = cv2.dilate(held, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    return held.astype(bool)


def lighting(values: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """The plane a + b x + c y that best fits `values` over the pixels under `sel` (least squares), evaluated
    everywhere: a face's lighting gradient; 0 where fewer than 3 pixels are selected."""
    h, w = values.shape
    x = np.arange(w, dtype=np.float64)[None, :]
    y = np.arange(h, dtype=np.float64)[:, None]
    m = sel.astype(np.float64)
    v = np.where(sel, values, 0.0).astype(np.float64)
    # the normal equations from sums over the selection (no per-pixel design matrix)
    mx, my = m * x, m * y
    n, sx, sy = m.sum(), mx.sum(), my.sum()
    normal = np.array([[n, sx, sy], [sx, (mx * x).sum(), (mx * y).sum()], [sy, (mx * y).sum(), (my * y).sum()]])
    rhs = np.array([v.sum(), (v * x).sum(), (v * y).sum()])
    if n < 3 or abs(np.linalg.det(normal)) < 1e-9:
        return np.zeros_like(values, dtype=np.float32)
    a, b, c = np.linalg.solve(normal, rhs)
    return (a + b * x + c * y).astype(np.float32)


def _grain(lightness: np.ndarray, inner: np.ndarray, sigma: float, box: tuple[int, int, int, int]) -> np.ndarray:
    """Photo grain for an enlarged target: band-passed noise (finer than `sigma` px, seeded by the `box`) as
    strong as the source's own band finer than `sigma` over its inner face (a robust spread: the median absolute
    value, so the source's eye and brow edges do not count) — the photo's grain, with none of its content (the
    source's pores and creases are not copied)."""
    fine = lightness - cv2.GaussianBlur(lightness, (0, 0), sigma)
    spread = 1.4826 * median(np.abs(fine[inner])) if inner.any() else 0.0
    rng = np.random.default_rng(list(box))
    noise = rng.standard_normal(lightness.shape).astype(np.float32)
    noise -= cv2.GaussianBlur(noise, (0, 0), sigma)
    return noise * (spread / max(float(noise.std()), 1e-6))


def _forehead_ramp(src: np.ndarray, size: tuple[int, int], offset: tuple[int, int]) -> np.ndarray:
    """1 below the brows, falling smoothly to 0 at the top of the forehead region (no band at the hairline)."""
    brows = src[lmk.BROWS].mean(0)
    up = brows - src[8]
    length = max(float(np.linalg.norm(up)), 1e-6)
    up /= length
    h, w = size
    gx = np.arange(w, dtype=np.float32)[None, :]  # a row and a column, broadcast: the same values per pixel
    gy = np.arange(h, dtype=np.float32)[:, None]
    # height above the brow line along the face's vertical axis, over the forehead height (0.22 × brow-chin)
    height = ((gx + offset[0] - brows[0]) * up[0] + (gy + offset[1] - brows[1]) * up[1]) / (0.22 * length)
    t = np.clip(1.0 - height, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)
