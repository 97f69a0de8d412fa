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
from mfmc.service.records import FaceDecision, FaceSummary, Rendering, RotationResult, UploadResult

ACCESS_MODELS = ("proxy", "explicit", "rules")
_PLATFORM = {"Platform", "env_passphrase"}


def __getattr__(name: str) -> object:
    """`Platform` (server and clients in one process) is loaded on first use: the server never imports it."""
    if name in _PLATFORM:
        from mfmc.service import platform

        return getattr(platform, name)
    raise AttributeError(f"module 'mfmc.service' has no attribute {name!r}")


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
