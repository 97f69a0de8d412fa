"""Upload (the uploader's client first, then one server transaction) and the explicit-authorization model.

Everything up to the final transaction runs on the uploader's client: detection, identification against the
embeddings its keyring holds, and the fakes that must never leave the client unfaked (proxy: every face not
revealed; rules/explicit: unknown faces and `nobody` owners). The server then stores the image and rows at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mfmc.errors import InvalidImageError, InvalidInputError, MfmcError, UnknownUserError
from mfmc.files import read_regular_file
from mfmc.service.backends import DetectedFace, FakeOutcome
from mfmc.service.base import seed_of
from mfmc.service.identity import IdentityMixin
from mfmc.service.imaging import encode_png, load_upload
from mfmc.service.records import UploadResult, summaries
from mfmc.store import Tx
from mfmc.store import models as m
from mfmc.vocabulary import Fallback

ACCESS_MODELS = m.ACCESS_MODELS
MAX_UPLOAD_BYTES = 256 * 2**20  # as `mfmc.vision.images.MAX_FILE_BYTES` (not imported: vision is heavy)


class UploadMixin(IdentityMixin):
    """`upload`, and `tag` / `consent` / `untag` for photos uploaded with the explicit model."""

    def upload(self, image: object, uploader: str, *, model: str = "rules", reveal: Iterable[str | int] = (),
               album: str | None = None) -> UploadResult:
        """Upload a photo as `uploader` under one access model.

        proxy: faces in `reveal` (indices or identified user names) stay real, all others are faked on the
        client; the original is never written. explicit: identified faces get a tag awaiting consent; the
        original is stored so consent can reveal and untagging can re-fake. rules: decided per viewer at render
        time. In every model unknown faces and faces of `nobody` owners are faked before the photo leaves the
        client (explicit keeps unknown faces for later tagging, as the paper's platform keeps every real face).
        """
        if model not in ACCESS_MODELS:
            raise InvalidInputError(f"unknown access model `{model}`", help="use proxy, explicit or rules")
        reveal = list(reveal)
        if reveal and model != "proxy":
            raise InvalidInputError("`--reveal` only applies to the proxy model",
                                    help="with explicit use tags and consent; with rules the owners decide")
        self._require_users(uploader)
        raw = _raw_bytes(image)
        pixels = load_upload(image)
        key = upload_key(raw, uploader, model, album, reveal)
        with self.store.read() as tx:
            existing = tx.photo_by_key(key)
            if existing is not None:
                return UploadResult(existing.id or 0, existing.model, summaries(tx.faces(existing.id or 0)), False)

        # ---- client side: nothing below writes to the server until the final transaction
        faces = self.backend.detect(pixels)
        owners, notes = self._identify(uploader, faces) if (model != "proxy" or any(
            isinstance(r, str) and not str(r).isdigit() for r in reveal)) else ([None] * len(faces), [""] * len(faces))
        levels = self._levels()
        client_fake: list[bool] = []
        states: list[str] = []
        if model == "proxy":
            keep = _resolve_reveal(reveal, owners, len(faces))
            client_fake = [i not in keep for i in range(len(faces))]
            states = ["revealed_by_proxy" if i in keep else "client_faked" for i in range(len(faces))]
            owners = [owners[i] if i in keep else None for i in range(len(faces))]
        else:
            for i, owner in enumerate(owners):
                # An explicit `nobody` is faked on the client; an owner without rules keeps their face (the
                # engine's `default nobody` then shows it to them alone), so no owner silently loses it.
                nobody = owner is not None and levels.get(owner) == "nobody"
                must_fake = nobody or (owner is None and model == "rules")
                if nobody:
                    notes[i] = f"`{owner}`'s rules say `nobody`: faked on the uploader's client"
                elif owner is not None and owner not in levels:
                    notes[i] = f"`{owner}` has no rules yet: only `{owner}` sees this face"
                client_fake.append(must_fake)
                states.append("client_faked" if must_fake else "server")
                if must_fake:
                    owners[i] = None  # the identity is never associated with the photo (supplement C)
        base = pixels
        reports: dict[int, FakeOutcome] = {}
        for i in range(len(faces)):
            if client_fake[i]:
                outcome = self._make_fake(base, faces, i, seed=seed_of(key, i, "client"))
                reports[i] = outcome
                base = outcome.image
        rows = []
        for i, face in enumerate(faces):
            rec = face.record()
            row = m.Face(photo_id=0, index=i, box=json.dumps(rec["box"]), score=rec["score"],
                         landmarks=json.dumps(rec["landmarks"]), state=states[i])
            if model == "rules":
                row.owner = owners[i]
            elif model == "explicit" and owners[i] is not None:
                row.tag, row.consent = owners[i], "pending"
            elif model == "proxy":
                row.owner = owners[i]
            if i in reports:
                row.fake_verified, row.fake_fallback = reports[i].verified, reports[i].fallback
            rows.append(row)
        del pixels  # the original goes no further for proxy (base has every unrevealed face faked)

        # ---- server side: one transaction for the image file and all rows
        with self.store.tx() as tx:
            blob = tx.put_blob(encode_png(base), "png")
            photo = m.Photo(uploader=uploader, album=album, model=model, image_blob=blob,
                            width=int(base.shape[1]), height=int(base.shape[0]), upload_key=key)
            tx.add_photo(photo, rows)
            tx.bump_revision()
            tx.audit(uploader, "upload", photo_id=photo.id, detail={
                "model": model, "faces": len(rows), "client_faked": sum(client_fake),
                "fallbacks": {i: r.report.get("error", "") for i, r in reports.items()
                              if r.fallback is Fallback.BLOCK}})
            result = UploadResult(photo.id or 0, model, tuple(
                dataclasses.replace(f, note=n) for f, n in zip(summaries(rows), notes, strict=True)), True)
        return result

    def find_photo(self, ref: str | int) -> int:
        """The id of an uploaded photo from its id or from the image file that was uploaded.

        A file is matched by content: its bytes give the upload key of each stored photo's uploader, model and
        album (photos uploaded with a `--reveal` list are found by id only).
        """
        text = str(ref).strip()
        with self.store.read() as tx:
            if text.isdigit():
                return tx.photo(int(text)).id or 0
            raw = _raw_bytes(text)
            found = [ph.id or 0 for ph in tx.photos()
                     if ph.upload_key == upload_key(raw, ph.uploader, ph.model, ph.album, ())]
        if not found:
            raise InvalidInputError(f"no uploaded photo has the content of `{text}`",
                                    help="upload it first (`mfmc upload`), or give its id (`mfmc photos`)")
        if len(found) > 1:
            raise InvalidInputError(f"`{text}` was uploaded {len(found)} times (photos "
                                    f"{', '.join(map(str, found))})", help="give the photo's id")
        return found[0]

    def _levels(self) -> dict[str, str]:
        with self.store.read() as tx:
            return {r.owner: r.level for r in tx.all_rules()}

    def _identify(self, uploader: str, faces: list[DetectedFace]) -> tuple[list[str | None], list[str]]:
        """On the uploader's client: match faces to the uploader and to friends whose embeddings it holds.

        Returns the owner of each face (None: unknown) and, for unknown faces, why."""
        if not faces:
            return [], []
        try:
            self.client_sync(uploader)
            ring = self.keyring(uploader)
            names, gallery = ring.gallery(self.backend.recognizer)
        except MfmcError as err:  # no keyring, no identification: every face is unknown (fail closed)
            return [None] * len(faces), [f"unknown: `{uploader}`'s client cannot identify faces ({err.message})"] \
                * len(faces)
        if not names:
            why = (f"unknown: `{uploader}`'s client holds no embeddings (neither `{uploader}` nor a friend who "
                   "shares is enrolled: `mfmc enroll`)")
            return [None] * len(faces), [why] * len(faces)
        held = sorted(set(names))
        notes = [f"unknown: matches none of the {len(held)} people `{uploader}`'s client knows "
                 f"({', '.join(held)}); friends are known once enrolled with rules that are not `nobody`"] * len(faces)
        pairs = []
        for i, face in enumerate(faces):
            if face.embedding is None:
                notes[i] = "unknown: no embedding could be computed for this face (too small or turned away)"
                continue
            dist = self.backend.distance(np.asarray(face.embedding, dtype=np.float32), gallery)
            best: dict[str, float] = {}
            for name, d in zip(names, dist.tolist(), strict=True):
                best[name] = min(best.get(name, np.inf), float(d))
            pairs.extend((d, i, name) for name, d in best.items() if d < self.backend.threshold)
        owners: list[str | None] = [None] * len(faces)
        taken: set[str] = set()
        for _d, i, name in sorted(pairs):
            if owners[i] is None and name not in taken:
                owners[i], _ = name, taken.add(name)
                notes[i] = ""
            elif owners[i] is None:
                notes[i] = f"unknown: `{name}` matches another face of the photo better"
        return owners, notes

    def _explicit_face(self, tx: Tx, photo_id: int, index: int) -> tuple[m.Photo, m.Face]:
        photo = tx.photo(photo_id)
        if photo.model != "explicit":
            raise InvalidInputError(f"photo `{photo_id}` uses the `{photo.model}` model",
                                    help="tags and consent apply to photos uploaded with `--model explicit`")
        return photo, tx.face(photo_id, index)

    def tag(self, photo_id: int, index: int, user: str, *, by: str | None = None) -> str:
        """Tag face `index` as `user`; it stays fake until `user` consents. Returns the consent state."""
        with self.store.tx() as tx:
            tx.user(user)
            photo, face = self._explicit_face(tx, photo_id, index)
            actor = by or photo.uploader
            tx.user(actor)
            if face.tag is not None and face.tag != user and face.consent == "granted":
                self._refake(tx, face)
            face.tag = user
            face.consent = "granted" if actor == user else "pending"
            tx.save(face)
            tx.bump_revision()
            tx.audit(actor, "tag", photo_id=photo_id, detail={"face": index, "user": user})
            return face.consent

    def consent(self, photo_id: int, index: int, user: str, *, grant: bool = True) -> str:
        """The tagged user grants (reveal) or refuses/revokes (re-fake) consent for their tag."""
        with self.store.tx() as tx:
            tx.user(user)
            _, face = self._explicit_face(tx, photo_id, index)
            if face.tag != user:
                raise InvalidInputError(f"face {index} of photo `{photo_id}` is not tagged as `{user}`",
                                        help="only the tagged user can consent")
            if not grant and face.consent == "granted":
                self._refake(tx, face)
            face.consent = "granted" if grant else "refused"
            tx.save(face)
            tx.bump_revision()
            tx.audit(user, "consent" if grant else "consent.refuse", photo_id=photo_id, detail={"face": index})
            return face.consent

    def untag(self, photo_id: int, index: int, *, by: str | None = None) -> None:
        """Remove the tag; the face is faked again with a freshly generated fake."""
        with self.store.tx() as tx:
            photo, face = self._explicit_face(tx, photo_id, index)
            actor = by or face.tag or photo.uploader
            tx.user(actor)
            if face.tag is not None and actor not in (face.tag, photo.uploader):
                raise InvalidInputError(f"`{actor}` cannot untag face {index} of photo `{photo_id}`",
                                        help="the uploader or the tagged user can untag")
            self._refake(tx, face)
            face.tag, face.consent = None, "none"
            tx.save(face)
            tx.bump_revision()
            tx.audit(actor, "untag", photo_id=photo_id, detail={"face": index})

    @staticmethod
    def _refake(tx: Tx, face: m.Face) -> None:
        face.generation += 1
        tx.drop_fakes(face.photo_id, face.index)


def upload_key(raw: bytes, uploader: str, model: str, album: str | None, reveal: Iterable[str | int]) -> str:
    """What makes an upload the same upload: the file's bytes, uploader, model, album and reveal list."""
    return hashlib.sha256(b"\0".join([
        raw, uploader.encode(), model.encode(), (album or "").encode(),
        json.dumps(sorted(map(str, reveal))).encode()])).hexdigest()


def _raw_bytes(source: object) -> bytes:
    if isinstance(source, np.ndarray):
        return source.tobytes() + str(source.shape).encode()
    if isinstance(source, bytes):
        return source
    # regular files only: `/dev/zero` or a FIFO is refused before a byte is read
    return read_regular_file(Path(source), max_bytes=MAX_UPLOAD_BYTES, error=InvalidImageError)  # type: ignore[arg-type]


def _resolve_reveal(reveal: list[str | int], owners: list[str | None], n: int) -> set[int]:
    keep: set[int] = set()
    for item in reveal:
        text = str(item)
        if text.isdigit():
            idx = int(text)
            if not 0 <= idx < n:
                raise InvalidInputError(f"face `{idx}` does not exist", help=f"the photo has {n} faces (0-{n - 1})")
            keep.add(idx)
        elif text in owners:
            keep.add(owners.index(text))
        else:
            raise UnknownUserError(f"`{text}` was not identified in the photo",
                                   help="reveal by face index (see `mfmc faces IMAGE`) or enroll the user")
    return keep
