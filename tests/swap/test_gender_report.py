"""The report says how a gender-uncertain source's fakes were checked (issue 11 item 2)."""

from __future__ import annotations

import numpy as np

from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator
from mfmc.vision import FacePipeline
from tests.swap.conftest import VERIFIERS
from tests.vision.helpers import photo


def test_an_uncertain_source_is_checked_and_the_report_says_how(pipeline: FacePipeline, pool: TargetPool) -> None:
    """openpeople P006's portrait: a woman the classifier reads at p(female) ~0.57, below the 0.8 of a sure
    read. Under the default `lean` rule her fakes are checked to read female, and the report says so; with
    `uncertain="unchecked"` they are not, and the report says that instead."""
    image = np.ascontiguousarray(photo("P006", "studio_portrait", 640))
    faces = pipeline.analyze(image, recognizers=VERIFIERS)
    assert len(faces) == 1 and 0.2 < float(faces.gender_score[0]) < 0.8 and faces.gender[0] == "female"
    _, report = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, measure=False).fake_face(image, faces, 0, seed=0)
    assert report.gender_checked
    assert any(n.startswith("gender uncertain (p(female) ") and "must read female (lean)" in n for n in report.notes)
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, measure=False, uncertain_gender="unchecked")
    _, report = gen.fake_face(image, faces, 0, seed=0)
    assert not report.gender_checked and any(n.startswith("gender not checked") for n in report.notes)
