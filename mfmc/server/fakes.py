"""Server-side fakes: generation of one fake (a job), the fake cache, and composition of per-viewer renders.

A fake is made once per `FakeJob` key (photo, face, viewer key, generation), stored as a content-addressed patch
blob plus a `RenderedFake` row in one unit of work, and reused by every later render. Making a fake is
idempotent: a job whose row exists does nothing, and two workers racing on one key store one row (the unique
constraint; the loser returns the winner's row). A worker killed mid-job has committed nothing, so running the
job again (another worker, or the server re-enqueueing it) loses nothing.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mfmc.errors import StoreError
from mfmc.jobs import FakeJob
from mfmc.service.backends import DetectedFace, FaceBackend, fake_or_block, seed_of
from mfmc.service.imaging import decode_png, diff_patch, encode_png, patch_from_bytes
from mfmc.store import Store, Tx
from mfmc.store import models as m

if TYPE_CHECKING:
    from mfmc.swap.patch import FacePatch


class FakeMaker:
    """Makes and stores fakes; shared by the server (in-process queue) and `mfmc worker` processes."""

    def __init__(self, store: Store, backend: FaceBackend) -> None:
        self.store = store
        self.backend = backend
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def find(self, job: FakeJob) -> m.RenderedFake | None:
        with self.store.read() as tx:
            return tx.fake(job.photo_id, job.face_index, job.viewer, job.generation)

    def missing(self, jobs: Sequence[FakeJob]) -> list[FakeJob]:
        """The jobs whose fake is not stored yet (one query per photo)."""
        have: set[tuple[int, int, str, int]] = set()
        with self.store.read() as tx:
            for photo_id in {j.photo_id for j in jobs}:
                have.update((r.photo_id, r.face_index, r.viewer, r.generation) for r in tx.fakes(photo_id))
        return [j for j in jobs if (j.photo_id, j.face_index, j.viewer, j.generation) not in have]

    def base_image(self, tx: Tx, blob: str) -> np.ndarray:
        with self._lock:
            img = self._images.get(blob)
            if img is not None:
                self._images.move_to_end(blob)
                return img
        img = decode_png(tx.read_blob(blob))
        with self._lock:
            self._images[blob] = img
            while len(self._images) > 16:
                self._images.popitem(last=False)
        return img

    def make(self, job: FakeJob) -> m.RenderedFake:
        """The stored fake for `job`, generating it if needed (idempotent)."""
        found = self.find(job)
        if found is not None:
            return found
        with self.store.read() as tx:
            photo = tx.photo(job.photo_id)
            faces = tx.faces(job.photo_id)
            base = self.base_image(tx, photo.image_blob)
            taken = taken_identities(tx.fakes(job.photo_id), job)
        face = next((f for f in faces if f.index == job.face_index), None)
        if face is None:
            raise StoreError(f"photo `{job.photo_id}` has no face `{job.face_index}`")
        if face.generation != job.generation:  # the face was re-faked since: the job is obsolete
            raise StoreError(f"face {job.face_index} of photo `{job.photo_id}` changed while its fake was queued",
                             help="render again")
        detected = [DetectedFace(box=tuple(json.loads(f.box)), score=f.score,  # type: ignore[arg-type]
                                 landmarks5=tuple(tuple(p) for p in json.loads(f.landmarks)))  # type: ignore[misc]
                    for f in faces]
        outcome = fake_or_block(self.backend, base, detected, job.face_index,
                                seed=seed_of(photo.upload_key, job.face_index, job.viewer, job.generation),
                                cache_key=photo.image_blob, avoid_identities=taken)
        patch = diff_patch(base, outcome.image)
        if patch is None:  # fake_or_block guarantees a change; refuse to store a fake that reveals the face
            raise StoreError("internal: a fake left the face unchanged")
        try:
            with self.store.tx() as tx:
                blob = tx.put_blob(patch.to_bytes(), "npz")
                return tx.add_fake(m.RenderedFake(
                    photo_id=job.photo_id, face_index=job.face_index, viewer=job.viewer,
                    generation=job.generation, blob=blob, x=patch.box[0], y=patch.box[1], verified=outcome.verified,
                    fallback=outcome.fallback, report=json.dumps(outcome.report, default=str)))
        except StoreError:  # another worker stored the same fake first: use theirs
            found = self.find(job)
            if found is None:
                raise
            return found


def taken_identities(stored: Sequence[m.RenderedFake], job: FakeJob) -> frozenset[str]:
    """Identities a new fake must not show (issue 11, `fakes per_viewer`): those of the stored fakes of the same
    face for other viewers, and of the other faces' fakes this viewer sees (shared or its own). Reports carry
    `identity` (mfmc.swap.FaceReport); blocks and fakes of other generations carry none that counts."""
    out: set[str] = set()
    for f in stored:
        same_face = f.face_index == job.face_index
        if same_face and (f.viewer == job.viewer or f.generation != job.generation):
            continue
        if not same_face and f.viewer not in ("", job.viewer):
            continue
        try:
            who = json.loads(f.report or "{}").get("identity")
        except (ValueError, AttributeError):
            continue
        if isinstance(who, str) and who:
            out.add(who)
    return frozenset(out)


class Compositor:
    """Per-viewer images from the stored base image and cached fake patches (warm renders: numpy copies)."""

    def __init__(self, maker: FakeMaker) -> None:
        self.maker = maker
        self._patches: OrderedDict[str, FacePatch] = OrderedDict()
        self._composed: OrderedDict[tuple[int, str], tuple[np.ndarray, bytes | None]] = OrderedDict()
        self._lock = threading.Lock()

    def clear_composed(self) -> None:
        with self._lock:
            self._composed.clear()

    def clear(self) -> None:
        with self._lock:
            self._patches.clear()
            self._composed.clear()
        with self.maker._lock:
            self.maker._images.clear()

    def _patch(self, tx: Tx, blob: str) -> FacePatch:
        with self._lock:
            patch = self._patches.get(blob)
            if patch is not None:
                return patch
        patch = patch_from_bytes(tx.read_blob(blob))
        with self._lock:
            self._patches[blob] = patch
            while len(self._patches) > 4096:
                self._patches.popitem(last=False)
        return patch

    def compose(self, photo: m.Photo, chosen: list[m.RenderedFake], version: str) -> np.ndarray:
        key = (photo.id or 0, version)
        with self._lock:
            hit = self._composed.get(key)
            if hit is not None:
                self._composed.move_to_end(key)
                return hit[0]
        with self.maker.store.read() as tx:
            out = np.array(self.maker.base_image(tx, photo.image_blob), copy=True)
            for row in chosen:
                self._patch(tx, row.blob).paste(out)
        out.flags.writeable = False
        with self._lock:
            self._composed[key] = (out, None)
            while len(self._composed) > 32:
                self._composed.popitem(last=False)
        return out

    def png(self, photo_id: int, version: str, image: np.ndarray) -> bytes:
        """The PNG of a composed render, encoded once per version."""
        key = (photo_id, version)
        with self._lock:
            hit = self._composed.get(key)
            if hit is not None and hit[1] is not None:
                return hit[1]
        data = encode_png(image)
        with self._lock:
            if key in self._composed:
                self._composed[key] = (self._composed[key][0], data)
        return data
