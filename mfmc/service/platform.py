"""The platform: the only layer that composes policy, vision/swap (via `FaceBackend`), crypto and the store.

Where things happen (paper §3.3, Fig. 2):

- the *client* of a user is their keyring directory `<data dir>/clients/<name>/` (sealed private keys, own
  embedding, friends' embeddings decrypted locally) plus the code in `Platform.upload` that runs before
  anything is written to the server: detection, identification, and the fakes that must never leave the
  client unfaked (proxy: every face not revealed; rules/explicit: unknown faces and `nobody` owners);
- the *server* is `<data dir>/server/` (database + blobs): users and public keys, the graph, signed rules,
  photos, faces, cached fakes, the audit log and ciphertexts of shared embeddings. Never a plaintext embedding,
  never a private key.

`Platform` is assembled from one module per concern: `base` (data dir, store, clients, fail-closed fakes),
`identity` (users, enrollment, graph, sharing, client sync, key rotation, signed rules), `upload` (client side
of an upload, explicit authorization) and `rendering` (decisions, per-viewer rendering, fake cache).

Fail closed everywhere: a fake that cannot be produced or verified becomes an obfuscated block, a face whose
owner is unknown or whose rules are unsigned or forged is faked, and a render that cannot decide fakes.
"""

from __future__ import annotations

from mfmc.service.base import env_passphrase
from mfmc.service.records import FaceDecision, FaceSummary, Rendering, RotationResult, UploadResult, summaries
from mfmc.service.rendering import RenderingMixin
from mfmc.service.upload import ACCESS_MODELS, UploadMixin
from mfmc.store import models as m

__all__ = [
    "ACCESS_MODELS",
    "FaceDecision",
    "FaceSummary",
    "Platform",
    "Rendering",
    "RotationResult",
    "UploadResult",
    "env_passphrase",
]


class Platform(UploadMixin, RenderingMixin):
    """One data dir: the server (store + blobs) and the users' clients (keyrings)."""

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ listing
    def photos(self) -> list[m.Photo]:
        with self.store.read() as tx:
            return tx.photos()

    def faces(self, photo_id: int) -> list[FaceSummary]:
        with self.store.read() as tx:
            tx.photo(photo_id)
            return list(summaries(tx.faces(photo_id)))

    def audit_log(self, photo_id: int | None = None) -> list[m.AuditEntry]:
        with self.store.read() as tx:
            return tx.audit_log(photo_id)
