"""Decisions and per-viewer rendering: the policy compiled from verified rules, and the fake cache.

The engine is compiled from the rules whose owner signature verifies under the owner's *current* public key
(so rules signed with a rotated-out key are refused) and cached by store revision. `render` decides every face,
generates a missing fake once per (photo, face, generation[, viewer]) and otherwise only composes cached patches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from mfmc.crypto.errors import CryptoError
from mfmc.crypto.signing import verify_rules
from mfmc.errors import MfmcError, RuleError, StoreError
from mfmc.policy import Context, Engine, Graph, PolicySet
from mfmc.service.backends import DetectedFace
from mfmc.service.base import CompiledPolicy, PlatformBase, seed_of
from mfmc.service.imaging import decode_png, diff_patch, patch_from_bytes
from mfmc.service.records import FaceDecision, FakeUse, Rendering
from mfmc.store import Tx
from mfmc.store import models as m
from mfmc.store.models import AccessModel, Consent, FaceState
from mfmc.vocabulary import Fallback

if TYPE_CHECKING:
    from mfmc.swap.patch import FacePatch


class RenderingMixin(PlatformBase):
    """`decide`, `decisions_for` and `render`."""

    def _current_policy(self, tx: Tx) -> CompiledPolicy:
        """Policy and engine compiled from the rules whose owner signatures verify; cached by store revision."""
        revision = tx.revision()
        cached = self._policy
        if cached is not None and cached.revision == revision:
            return cached

        users = {u.name: u for u in tx.users()}
        graph = Graph(users=sorted(users), friends=tx.friendships(), follows=tx.follows())
        sources: list[tuple[str, str]] = []
        owner_of: dict[str, str] = {}
        refused: dict[str, str] = {}
        for row in tx.all_rules():
            try:
                verify_rules(row.text, row.signature, self._public_keys(users[row.owner]), owner=row.owner,
                             min_version=row.version)
            except (CryptoError, KeyError) as err:
                refused[row.owner] = getattr(err, "message", str(err))
                continue
            sources.append((row.text, row.name))
            owner_of[row.name] = row.owner
        try:
            policy = PolicySet.from_sources(sources, graph=graph)
        except RuleError as err:
            # Only the owners whose files fail (e.g. after a graph change) lose their rules: fail closed for them.
            failed = {d.span.path for d in err.diagnostics if d.is_error}
            refused.update({owner_of[n]: "rules no longer compile" for n in failed if n in owner_of})
            try:
                policy = PolicySet.from_sources([s for s in sources if s[1] not in failed], graph=graph)
            except MfmcError:
                policy, refused = PolicySet.from_sources([], graph=graph), {**refused, "*": "rules failed to compile"}
        engine = Engine(policy, graph)
        self._policy = CompiledPolicy(revision, graph, policy, engine, refused)
        return self._policy

    def _cached_image(self, tx: Tx, blob: str) -> np.ndarray:
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

    def _cached_patch(self, tx: Tx, blob: str) -> FacePatch:
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

    def _decide(self, pol: CompiledPolicy | None, photo: m.Photo, face: m.Face, viewer: str) -> FaceDecision:
        if face.state == FaceState.CLIENT_FAKED:
            fallback = Fallback(face.fake_fallback) if face.fake_fallback else None
            return FaceDecision(face.index, False, ("faked on the uploader's client (unknown or `nobody`)",), None,
                                fallback=fallback)
        if photo.model == AccessModel.PROXY:
            return FaceDecision(face.index, True, ("revealed by the uploader (proxy)",), face.owner)
        if photo.model == AccessModel.EXPLICIT:
            if face.tag is not None and face.consent == Consent.GRANTED:
                return FaceDecision(face.index, True, (f"tagged as `{face.tag}` with consent",), face.tag)
            why = "untagged" if face.tag is None else f"tag `{face.tag}` awaits consent" \
                if face.consent == Consent.PENDING else f"`{face.tag}` refused consent"
            return FaceDecision(face.index, False, (why,), face.tag, fake=FakeUse.SHARED)
        assert pol is not None
        context = Context(uploader=photo.uploader, album=photo.album)
        decision = pol.engine.check(viewer=viewer, owner=face.owner, context=context)
        reasons = tuple(decision.reasons)
        if face.owner in pol.refused:
            reasons += (f"rules of `{face.owner}` refused: {pol.refused[face.owner]}",)
        if decision.reveal:
            return FaceDecision(face.index, True, reasons, face.owner)
        use = FakeUse.PER_VIEWER if pol.policy.fakes_per_viewer(face.owner) else FakeUse.SHARED
        return FaceDecision(face.index, False, reasons, face.owner, fake=use)

    def decide(self, photo_id: int, viewer: str) -> list[FaceDecision]:
        """Per face of the photo: reveal or fake for `viewer`, with reasons (no pixels)."""
        with self.store.read() as tx:
            tx.user(viewer)
            photo = tx.photo(photo_id)
            pol = self._current_policy(tx) if photo.model == AccessModel.RULES else None
            return [self._decide(pol, photo, f, viewer) for f in tx.faces(photo_id)]

    def decisions_for(self, photo_id: int, viewers: Sequence[str]) -> dict[str, list[bool]]:
        """Reveal flags per face for many viewers of one photo (one policy compile, no pixels)."""
        with self.store.read() as tx:
            photo = tx.photo(photo_id)
            faces = tx.faces(photo_id)
            pol = self._current_policy(tx) if photo.model == AccessModel.RULES else None
        if pol is None:
            return {v: [self._decide(pol, photo, f, v).reveal for f in faces] for v in viewers}
        # Rules model: the engine's batched path decides every face for every viewer at once (the same answers
        # as `_decide`'s scalar `check`); faces faked on the uploader's client stay fake for everyone.
        viewers = list(viewers)
        reveal = pol.engine.decide_many([f.owner for f in faces], viewers,
                                        Context(uploader=photo.uploader, album=photo.album))
        reveal[[f.state == FaceState.CLIENT_FAKED for f in faces]] = False
        return dict(zip(viewers, reveal.T.tolist(), strict=True))

    def render(self, photo_id: int, viewer: str, *, audit: bool = True) -> Rendering:
        """The photo as `viewer` sees it: real faces where allowed, cached verified fakes elsewhere.

        A missing fake is generated once (per photo and face, or per viewer when the owner asks for
        `fakes per_viewer`) and stored; later renders only compose.
        """
        with self.store.read() as tx:
            tx.user(viewer)
            photo = tx.photo(photo_id)
            faces = tx.faces(photo_id)
            pol = self._current_policy(tx) if photo.model == AccessModel.RULES else None
            decisions = [self._decide(pol, photo, f, viewer) for f in faces]
            fakes = {(r.face_index, r.viewer, r.generation): r for r in tx.fakes(photo_id)}
            base = self._cached_image(tx, photo.image_blob)
        generated = 0
        chosen: dict[int, m.RenderedFake] = {}
        for k, (d, face) in enumerate(zip(decisions, faces, strict=True)):
            if d.reveal or d.fake is FakeUse.NONE:
                continue
            key = d.fake.cache_viewer(viewer)
            row = fakes.get((face.index, key, face.generation))
            if row is None:
                row = self._generate_fake(photo, faces, face, key, base)
                generated += 1
            chosen[face.index] = row
            decisions[k] = replace(d, fallback=Fallback(row.fallback) if row.fallback else Fallback.NONE)
        version = hashlib.sha256(json.dumps(
            [photo.image_blob[:16]] + [[d.index, "real" if d.reveal else (
                chosen[d.index].blob[:16] if d.index in chosen else "base")] for d in decisions]).encode()
        ).hexdigest()[:16]
        with self._lock:
            out = self._composed.get((photo_id, version))
            if out is not None:
                self._composed.move_to_end((photo_id, version))
        if out is None:
            out = np.array(base, copy=True)
            with self.store.read() as tx:
                for row in chosen.values():
                    self._cached_patch(tx, row.blob).paste(out)
            out.flags.writeable = False
            with self._lock:
                self._composed[(photo_id, version)] = out
                while len(self._composed) > 8:
                    self._composed.popitem(last=False)
        if audit:
            with self.store.tx() as tx:
                tx.audit(viewer, "view", photo_id=photo_id, version=version,
                         detail={"real": [d.index for d in decisions if d.reveal],
                                 "fallbacks": [d.index for d in decisions if d.fallback is Fallback.BLOCK]})
        return Rendering(photo_id, viewer, out, tuple(decisions), version, generated)

    def _generate_fake(self, photo: m.Photo, faces: list[m.Face], face: m.Face, key: str,
                       base: np.ndarray) -> m.RenderedFake:
        detected = [DetectedFace(box=tuple(json.loads(f.box)), score=f.score,  # type: ignore[arg-type]
                                 landmarks5=tuple(tuple(p) for p in json.loads(f.landmarks)))  # type: ignore[misc]
                    for f in faces]
        outcome = self._make_fake(base, detected, face.index,
                                  seed=seed_of(photo.upload_key, face.index, key, face.generation),
                                  cache_key=photo.image_blob)
        patch = diff_patch(base, outcome.image)
        assert patch is not None  # _make_fake guarantees a change
        try:
            with self.store.tx() as tx:
                blob = tx.put_blob(patch.to_bytes(), "npz")
                row = tx.add_fake(m.RenderedFake(
                    photo_id=photo.id or 0, face_index=face.index, viewer=key, generation=face.generation,
                    blob=blob, x=patch.box[0], y=patch.box[1], verified=outcome.verified, fallback=outcome.fallback,
                    report=json.dumps(outcome.report, default=str)))
        except StoreError:  # another renderer stored the same fake first: use theirs
            with self.store.read() as tx:
                found = tx.fake(photo.id or 0, face.index, key, face.generation)
            if found is None:
                raise
            return found
        with self._lock:
            self._patches[blob] = patch
        return row
