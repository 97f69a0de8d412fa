"""The split swapper keeps a closed source mouth's lips when the target's mouth is open: the target's teeth, warped
onto a closed half-smile, made a broad toothy grin that every expression check passed (01.jpg's girl with the pool's
P001, Tom_Hanks_54745.png, multi_face.jpg #2: docs/swap.md). Measured here on openpeople's P006 (not a pool person),
whose studio portrait has a closed mouth."""

from __future__ import annotations

import numpy as np

from mfmc.pool import TargetPool
from mfmc.swap import landmarks as lmk
from mfmc.swap.split import SplitSwapper
from mfmc.vision import FacePipeline
from tests.swap.conftest import assert_region_kept, inner_mask
from tests.vision.helpers import photo


def test_a_closed_mouth_stays_closed(pipeline: FacePipeline) -> None:
    """With three of the built-in pool's open-mouthed faces the source's mouth pixels stay (and the fake says so);
    without the rule the target's open mouth is painted in; a closed-mouthed target's mouth is the fake's."""
    image = np.ascontiguousarray(photo("P006", "studio_portrait", 640))
    faces = pipeline.analyze(image, recognizers=())
    src = lmk.as_points(faces.landmarks68[0])
    assert lmk.mouth_openness(src) < 0.08, lmk.mouth_openness(src)
    lips = inner_mask(image.shape, [src[lmk.OUTER_MOUTH]], 0.7)
    assert lips.sum() > 100
    pool = TargetPool.default()
    opened = [t for t in pool.ids if lmk.mouth_openness(pool.target(t)[1].landmarks68[0]) > lmk.OPEN_MOUTH]
    closed = [t for t in pool.ids if lmk.mouth_openness(pool.target(t)[1].landmarks68[0]) < 0.05]
    assert len(opened) >= 3 and closed
    for target_id in opened[:3]:
        crop, face = pool.target(target_id)
        kept, painted = (SplitSwapper(keep_closed_mouth=k).swap(image, src, crop, face.landmarks68[0])
                         for k in (True, False))
        assert_region_kept(image, kept, painted, lips, "closed mouth", target_id)
    crop, face = pool.target(closed[0])
    plain = SplitSwapper().swap(image, src, crop, face.landmarks68[0])
    assert not any("closed mouth" in n for n in plain.notes)
    assert (np.abs(plain.patch.apply(image).astype(np.int16) - image).max(-1)[lips].mean()) > 6.0
