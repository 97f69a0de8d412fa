"""Session fixtures for mfmc.vision tests: the embedded pipeline (loaded once) and analysed portraits.

No photo is committed: see helpers.py for where test photos come from.
"""

from __future__ import annotations

import numpy as np
import pytest

from mfmc.vision import FacePipeline, Faces
from tests.vision.helpers import PEOPLE, photo


@pytest.fixture(scope="session")
def pipeline() -> FacePipeline:
    return FacePipeline.embedded()


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
