"""Shared pieces of the platform, and `Platform`: the server and the users' clients in one process, over HTTP.

The roles live in `mfmc.server` (the `Server`: store, authorization, renders, fake cache; no private key) and
`mfmc.client` (a `Client` per user: keyring, detection, identification, client-side fakes, signing). This
package keeps what both sides share (`FaceBackend` and the real `VisionBackend`, pixels in `imaging`, result
records) and `Platform`, which wires an embedded (or remote) server to the users' clients for the CLI, the demo
and the tests:

```python
from mfmc.service import Platform
with Platform("mfmc-data", create=True, passphrase=lambda user: "…") as p:
    p.add_user("alice"); p.add_user("bob"); p.friend("alice", "bob")
    p.enroll("alice", ["alice.jpg"])
    p.set_rules(open("alice.mfmc").read(), "alice.mfmc")
    up = p.upload("party.jpg", "bob", model="rules")
    view = p.render(up.photo_id, viewer="carol")     # carol's own view, rendered by the server for her login
    p.rotate_keys("alice")                           # new keys; envelopes re-sealed, rules re-signed
```
"""

from mfmc.service.backends import DetectedFace, FaceBackend, FakeOutcome, VisionBackend
from mfmc.service.records import FaceDecision, FaceSummary, Rendering, RotationResult, UploadResult

ACCESS_MODELS = ("proxy", "explicit", "rules")
_PLATFORM = {"Platform"}


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
]
