"""Session fixtures for mfmc.vision tests: the embedded pipeline (loaded once) and analysed portraits.

No photo is committed: see helpers.py for where test photos come from.
"""

from __future__ import annotations

import numpy as np
import pytest

from mfmc.vision import FacePipeline, Faces
from tests.vision.helpers import LABELLED_ASSETS, LABELLED_SIDE, PEOPLE, photo


@pytest.fixture(scope="session")
def pipeline(embedded_pipeline: FacePipeline) -> FacePipeline:
    return embedded_pipeline


@pytest.fixture(scope="session")
def portrait_faces(pipeline: FacePipeline) -> dict[str, tuple[np.ndarray, Faces]]:
    """Each person's studio portrait with its single detected face (analysed)."""
    out = {}
    for person in PEOPLE:
        image = photo(person, "studio_portrait", 640)
        faces = pipeline.analyze(image)
        assert len(faces) == 1, f"{person}: expected one face in the portrait, got {len(faces)}"
        out[person] = (image, faces)
    return out


@pytest.fixture(scope="session")
def labelled_photos(pipeline: FacePipeline) -> dict[tuple[str, str], tuple[np.ndarray, Faces]]:
    """(person, asset) -> the photo at 1024 px and all its faces, analysed once for the session: landmarks, pose,
    age, gender (+ score), expression when its classifier is installed; no embeddings (tests that need them embed
    these faces with the recognizer they check). Shared by the gender, expression and recognizer-calibration
    tests, which used to analyse the same photos each on their own."""
    out = {}
    for person in PEOPLE:
        for asset in LABELLED_ASSETS:
            image = photo(person, asset, LABELLED_SIDE)
            out[person, asset] = (image, pipeline.analyze(image, recognizers=()))
    return out
