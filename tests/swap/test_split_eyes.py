"""The split swapper keeps a source's narrow eyes (downcast, smiling) when the target's are open wider: the woman of
insightface's t1.jpg looking down (eye aspect ratio ~0.21) had got a fake with open, staring eyes. Measured here on
openpeople's P007 (not a pool person), whose "sad" tile of the emotion sheet looks down (ratio 0.16)."""

from __future__ import annotations

import numpy as np

from mfmc.pool import TargetPool
from mfmc.swap import landmarks as lmk
from mfmc.swap.split import SplitSwapper
from mfmc.vision import FacePipeline
from tests.swap.conftest import assert_region_kept, inner_mask
from tests.vision.helpers import photo


def test_narrow_eyes_stay_the_sources(pipeline: FacePipeline) -> None:
    """P007's frontal tile with the narrowest eyes that are still open (aspect ratio 0.15-0.25), with three of the
    built-in pool's faces whose eyes are open wider: with the rule the source's eye pixels stay (and the fake
    says so), without it they change; the rest of the face changes either way."""
    image = np.ascontiguousarray(photo("P007", "emotions_sheet", 1600))
    faces = pipeline.analyze(image, recognizers=())
    narrow = sorted((lmk.eye_openness(faces.landmarks68[i]), i) for i in range(len(faces))
                    if 0.15 <= lmk.eye_openness(faces.landmarks68[i]) < 0.25 and abs(float(faces.pose[i][0])) < 15)
    assert narrow, "P007's sheet has a frontal face with narrow eyes"
    src = lmk.as_points(faces.landmarks68[narrow[0][1]])
    pool = TargetPool.default()
    tried = 0
    for target_id in pool.ids:
        crop, face = pool.target(target_id)
        if lmk.eye_openness(face.landmarks68[0]) <= 1.4 * lmk.eye_openness(src):
            continue
        tried += 1
        kept, painted = (SplitSwapper(narrow_eyes=n).swap(image, src, crop, face.landmarks68[0]) for n in (0.25, 0.0))
        eyes = inner_mask(image.shape, [src[lmk.RIGHT_EYE], src[lmk.LEFT_EYE]], 0.6)  # away from the feathered edge
        assert eyes.sum() > 20
        assert_region_kept(image, kept, painted, eyes, "narrow eyes", target_id)
        if tried == 3:
            break
    assert tried
