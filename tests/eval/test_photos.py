"""The real-photo figures of issue 11 (`mfmc.eval.photos`): what counts, over which faces."""

from __future__ import annotations

import numpy as np

from mfmc.eval.photos import FaceOutcome, PhotoOutcome, contact_sheet, summarize


def _face(i: int, *, size: float = 60, yaw: float = 0, fallback: str = "none", before: str = "female",
          after: str = "female") -> FaceOutcome:
    return FaceOutcome(photo="p", index=i, size=size, yaw=yaw, fallback=fallback, reason="", attempts=1,
                       swapped=fallback in ("none", "alpha"), detected=True, gender_before=before,
                       gender_after=after, expression_before="happy", expression_after="happy" if i else "neutral",
                       landmark_error=0.03 if fallback in ("none", "alpha") else None, ms=100.0 + i)


def test_summary_counts_only_eligible_faces_and_swapped_pairs() -> None:
    faces = [_face(0), _face(1, after="male"), _face(2, fallback="obfuscate"), _face(3, size=10, fallback="obfuscate"),
             _face(4, yaw=75, fallback="obfuscate")]
    photo = PhotoOutcome("p", faces, pairs=10, pairs_matching=[(0, 1, "dlib", 0.4), (2, 3, "dlib", 0.1)],
                         fakes_matching_real=[], changed_outside=0, output=np.zeros((2, 2, 3), np.uint8))
    s = summarize([photo])
    assert s["eligible"] == 3  # ≥ 24 px and |yaw| ≤ 60°
    assert abs(s["swapped"] - 2 / 3) < 1e-9
    assert s["gender_kept"] == 0.5  # judged on swapped faces only: a pixel block has no gender
    assert s["expression_kept"] == 0.5
    assert s["pairs_matching"] == 2 and s["swapped_pairs"] == 1 and s["swapped_pairs_matching"] == 1
    assert s["fallbacks"] == {"none": 2, "obfuscate": 3}
    assert s["detected_swapped"] == 1.0  # of the swapped faces only


def test_faces_still_detected_are_counted_over_the_swaps() -> None:
    faces = [_face(0), _face(1), _face(2, fallback="fill")]
    faces[1].detected = False
    faces[2].detected = False  # a fill is no face: not held against the swaps
    photo = PhotoOutcome("p", faces, pairs=3, pairs_matching=[], fakes_matching_real=[], changed_outside=0,
                         output=np.zeros((2, 2, 3), np.uint8))
    s = summarize([photo])
    assert s["detected_swapped"] == 0.5 and abs(s["detected"] - 1 / 3) < 1e-9


def test_contact_sheet_stacks_rows_of_equal_height() -> None:
    a = np.zeros((100, 150, 3), np.uint8)
    b = np.full((50, 50, 3), 200, np.uint8)
    sheet = contact_sheet([[a, b], [b, a]], ["before", "after"], height=40)
    assert sheet.dtype == np.uint8 and sheet.shape[0] == 24 + 2 * (40 + 6)
