"""`fakes per_viewer` (issue 11 item 4): each viewer of a face gets a fake of a different identity.

The server's fake job passes the identities of the photo's stored fakes (the same face's fakes for other viewers,
and the fakes of the other faces this viewer sees) to the backend, which leaves them out. The plumbing is tested
with the cheap grid backend (it records what it was asked to avoid); the real generator's side (leaving the named
identities out and still making a verified fake) with the real models on a photo of a person the pool does not hold.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mfmc.service.testing import GridBackend, grid_photo
from tests.platform.conftest import make_platform, social

NAMES = ["alice", "bob", "carol", "dan", "erin"]


def test_a_per_viewer_fake_avoids_the_identities_of_other_viewers_fakes(tmp_path: Path) -> None:
    backend = GridBackend()
    p = make_platform(tmp_path / "d", backend)
    social(p, NAMES, [("alice", "bob"), ("alice", "carol")], {"bob": "face bob\ndefault friends\nfakes per_viewer\n"})
    res = p.upload(grid_photo([0, 1, 2], seed=12), "alice", model="rules")
    backend.avoided.clear()
    p.render(res.photo_id, "dan")  # three fakes: faces 0 and 2 shared, bob's (face 1) for dan
    with p.store.read() as tx:
        stored = {(f.face_index, f.viewer): json.loads(f.report)["identity"] for f in tx.fakes(res.photo_id)}
    assert set(stored) == {(0, ""), (1, "dan"), (2, "")}
    backend.avoided.clear()
    p.render(res.photo_id, "erin")  # only bob's per-viewer fake is new
    assert len(backend.avoided) == 1
    # erin's fake of bob must not show dan's fake of bob, nor the identities of the shared fakes erin sees
    assert backend.avoided[0] == {stored[(1, "dan")], stored[(0, "")], stored[(2, "")]}
    with p.store.read() as tx:
        erin = next(json.loads(f.report)["identity"] for f in tx.fakes(res.photo_id) if f.viewer == "erin")
    assert erin != stored[(1, "dan")]
    p.close()


@pytest.mark.slow
def test_the_real_backend_leaves_out_the_identities_it_is_given() -> None:
    """On openpeople's P009 (reserved for the examples, never in the pool): two verified swaps of two identities.

    The astronaut used to serve here; since fakes must also keep the source's gender and expression, her face gets
    one identity the checks accept (at full geometry), and with it excluded she is pixelated — per-viewer
    identities run out there first (docs/swap.md)."""
    from mfmc.service.backends import VisionBackend
    from tests.vision.helpers import photo

    image = np.ascontiguousarray(photo("P009", "studio_portrait", 800))
    backend = VisionBackend()
    faces = backend.detect(image)
    assert len(faces) == 1
    first = backend.fake(image, faces, 0, seed=7, cache_key="P009")
    who = first.report["identity"]
    assert first.verified and first.report["fallback"] in ("none", "alpha") and who
    second = backend.fake(image, faces, 0, seed=7, cache_key="P009", avoid_identities=frozenset({who}))
    assert second.verified and second.report["fallback"] in ("none", "alpha")
    assert second.report["identity"] and second.report["identity"] != who
    assert not np.array_equal(first.image, second.image)
