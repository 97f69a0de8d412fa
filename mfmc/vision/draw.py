"""Drawing faces onto a copy of a photo (for `mfmc faces --annotate` and for looking at results)."""

from __future__ import annotations

import cv2
import numpy as np

from mfmc.vision.faces import Faces

_POINT_COLOURS = ((255, 64, 64), (64, 64, 255), (64, 255, 64), (255, 200, 0), (255, 0, 255))


def annotate(image: np.ndarray, faces: Faces, *, labels: bool = True) -> np.ndarray:
    """A new image with each face's box, 5 landmarks (68 when known, small) and an index/age/gender label."""
    out = np.ascontiguousarray(image.copy())
    thickness = max(1, round(max(image.shape[:2]) / 600))
    for i in range(len(faces)):
        x1, y1, x2, y2 = (round(float(v)) for v in faces.boxes[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 255, 0), thickness)
        if faces.landmarks68 is not None:
            for x, y in faces.landmarks68[i]:
                cv2.circle(out, (round(float(x)), round(float(y))), thickness, (255, 255, 255), -1)
        for (x, y), colour in zip(faces.landmarks5[i], _POINT_COLOURS, strict=True):
            cv2.circle(out, (round(float(x)), round(float(y))), thickness + 1, colour, -1)
        if labels:
            text = f"{i} {faces.scores[i]:.2f}"
            if faces.age is not None and faces.gender is not None:
                text += f" {faces.gender[i][0]}{faces.age[i]:.0f}"
            scale = 0.4 * thickness
            cv2.putText(out, text, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 255, 0), thickness)
    return out
