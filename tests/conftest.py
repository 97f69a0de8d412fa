"""Session-wide fixtures shared by every test package."""

from __future__ import annotations

import pytest

from mfmc.vision import FacePipeline


@pytest.fixture(scope="session")
def embedded_pipeline() -> FacePipeline:
    """The embedded models, loaded once per test session: the process-wide `FacePipeline.default()` (which the
    CLI, file mode and the platform's vision backend use in-process) when that is the embedded one, so that the
    models are not loaded again for each package or module; otherwise (an InsightFace pack installed on this
    machine) a separate embedded pipeline, since the tests are written for the embedded models."""
    default = FacePipeline.default()
    return default if default.backend == "embedded" else FacePipeline.embedded()
