"""The platform service: access models, upload, tagging, per-viewer rendering with a fake cache, audit log.

```python
from mfmc.service import Platform
with Platform("mfmc-data", create=True) as p:
    p.add_user("alice"); p.add_user("bob"); p.friend("alice", "bob")
    p.enroll("alice", ["alice.jpg"])
    p.set_rules(open("alice.mfmc").read(), "alice.mfmc")
    up = p.upload("party.jpg", "bob", model="rules")
    view = p.render(up.photo_id, viewer="carol")     # Rendering(image, decisions, version, generated)
    p.rotate_keys("alice")                           # new keys; envelopes re-sealed, rules re-signed
```
"""

from mfmc.service.backends import DetectedFace, FaceBackend, FakeOutcome, VisionBackend
from mfmc.service.platform import (
    ACCESS_MODELS,
    FaceDecision,
    FaceSummary,
    Platform,
    Rendering,
    RotationResult,
    UploadResult,
    env_passphrase,
)

__all__ = [
    "ACCESS_MODELS",
    "DetectedFace",
    "FaceBackend",
    "FaceDecision",
    "FaceSummary",
    "FakeOutcome",
    "Platform",
    "Rendering",
    "RotationResult",
    "UploadResult",
    "VisionBackend",
    "env_passphrase",
]
