"""The real-photo figures of issue 11 (`mfmc.eval.photos`): what counts, over which faces."""

from __future__ import annotations

import numpy as np
import pytest

from mfmc.eval.judges import Judges, judges_missing
from mfmc.eval.photos import (
    FaceOutcome,
    PhotoOutcome,
    contact_sheet,
    evaluate_photo,
    parse_bar,
    real_photos,
    summarize,
)


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


def test_summary_reports_the_outside_judges_beside_the_pipelines_figures() -> None:
    faces = [_face(i) for i in range(4)]
    # the judge: sure of sources 0-2 (P(male) 0.05, 0.9, 0.1), unsure of 3; fake 1 reads female, fake 2 female
    # though unsure (kept: its likelier class is the source's)
    for f, before, after in zip(faces, (0.05, 0.9, 0.1, 0.5), (0.02, 0.1, 0.4, 0.9), strict=True):
        f.judge_male_before, f.judge_male_after = before, after
    for f, before, after in zip(faces, ("happy", "sad", "neutral", "angry"), ("happy", "sad", "happy", "angry"),
                                strict=True):
        f.judge_expression_before, f.judge_expression_after = before, after
    photo = PhotoOutcome("p", faces, pairs=6, pairs_matching=[], fakes_matching_real=[], changed_outside=0,
                         output=np.zeros((2, 2, 3), np.uint8))
    s = summarize([photo])
    assert s["gender_kept"] == 1.0  # the pipeline's own classifier: unchanged
    assert s["judge_gender_judged"] == 3 and s["judge_gender_unsure"] == 1
    assert abs(s["gender_kept_judge"] - 2 / 3) < 1e-9
    assert s["judge_expression_judged"] == 4 and s["expression_kept_judge"] == 0.75
    without = summarize([PhotoOutcome("p", [_face(0)], 0, [], [], 0, np.zeros((2, 2, 3), np.uint8))])
    assert without["gender_kept_judge"] is None and without["expression_kept_judge"] is None


@pytest.mark.slow
@pytest.mark.skipif(judges_missing() is not None, reason=str(judges_missing()))
def test_judges_wired_into_a_real_photos_evaluation() -> None:
    """skimage's astronaut (a real photo, one smiling woman): the judges read the source before the swap (female,
    happy, as a person sees her) and the output after, at the same face."""
    from mfmc.pool import TargetPool
    from mfmc.swap import FakeGenerator
    from mfmc.vision import FacePipeline

    photos = dict(real_photos())
    if "skimage:astronaut" not in photos:
        pytest.skip("scikit-image is not installed: pip install scikit-image")
    image = photos["skimage:astronaut"]
    pipe = FacePipeline.default()
    judges = Judges.load()
    outcome = evaluate_photo(FakeGenerator(pipe, TargetPool.default()), pipe, "astronaut", image, seed=7,
                             judges=judges)
    (face,) = outcome.faces
    # measured P(male) 0.41: read as a woman but not surely (short hair), so her gender kept is not judged
    assert face.judge_male_before is not None and face.judge_male_before < 0.5
    assert face.judge_expression_before == "happy"
    assert face.judge_male_after is not None and face.judge_expression_after is not None
    s = summarize([outcome])
    assert s["judge_expression_judged"] == int(face.swapped)
    if face.swapped:
        kept = face.gender_kept_judge
        assert s["gender_kept_judge"] == (None if kept is None else float(kept))
        assert s["judge_gender_unsure"] == int(not face.judge_gender_sure)


def test_outside_recognizers_count_apart_from_the_verifiers_and_over_the_swaps_only() -> None:
    """An outside recognizer's re-identifications (`--outside`, e.g. faceres) are not source matches of the
    verifiers: they count in `outside_matches_by`, over the faces that became swaps."""
    faces = [_face(0), _face(1), _face(2, fallback="fill")]
    faces[0].matches_outside = ["faceres"]
    faces[2].matches_outside = ["faceres"]  # a fill: no fake to re-identify
    faces[1].matches_own_source = ["dlib"]
    s = summarize([PhotoOutcome("p", faces, 3, [], [], 0, np.zeros((2, 2, 3), np.uint8))])
    assert s["outside_matches_by"] == {"faceres": 1}
    assert s["source_matches"] == 1 and s["source_matches_by"] == {"dlib": 1}


def test_parse_bar_reads_margins_per_recognizer_and_the_mean_ratio() -> None:
    assert parse_bar("") == (None, 0.0)
    assert parse_bar("0.1") == (0.1, 0.0)
    assert parse_bar("dlib=0.065, facenet=0.078,mean=1.3") == ({"dlib": 0.065, "facenet": 0.078}, 1.3)
    assert parse_bar("mean=1.2") == (None, 1.2)
    with pytest.raises(ValueError):
        parse_bar("dlib=wide")
