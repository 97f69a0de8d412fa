"""The server: one object over the store that holds no private key, no passphrase and no plaintext embedding.

Every method that acts for a user takes `actor`, the user the HTTP layer authenticated (a signed challenge), and
enforces who may do what:

- a viewer gets only their own view (`render`, `decide`), and explanations only for faces they own;
- only an owner stores their rules: the text must govern the owner's own face, the signature must verify under
  the owner's current key, and the version must be above every version the server accepted before (a high-water
  mark kept apart from the rule row, so rolling the row back does not lower it);
- only the uploader proposes tags; only the tagged user consents (nobody else can grant it); a face identified
  or tagged as X cannot be tagged as Y until X untags it or refuses;
- friendships need both sides (a request, then the other side's request), follows need the followee's approval;
- envelopes are stored only from their owner, to a current friend, sealed with the owner's current key.

Rules are enforced at render time only when the owner's signature verifies under the current key and the
version is not below the high-water mark; otherwise the owner falls back to `default nobody`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from mfmc.crypto.errors import CryptoError
from mfmc.crypto.keys import PublicKeys, verify_rotation
from mfmc.crypto.sharing import envelope_header
from mfmc.crypto.signing import canonical_rules, verify_rules
from mfmc.errors import (
    InvalidImageError,
    InvalidInputError,
    MfmcError,
    PermissionDeniedError,
    RuleError,
    StoreError,
)
from mfmc.jobs import FakeJob, FakeQueue, InlineQueue
from mfmc.policy import Context, Engine, Graph, PolicySet
from mfmc.server.audit import ViewLog
from mfmc.server.fakes import Compositor, FakeMaker
from mfmc.service.backends import FaceBackend
from mfmc.service.imaging import decode_png
from mfmc.service.records import FaceDecision, FaceSummary, FakeUse, UploadResult, summaries
from mfmc.store import Store, Tx
from mfmc.store import models as m
from mfmc.store.models import AccessModel, Consent, FaceState
from mfmc.vocabulary import Fallback, check_user_name

ROTATION = "rotation"
REVOCATION = "revocation"
FRIEND_REQUEST = "friend.request"
FOLLOW_REQUEST = "follow.request"
RELAYED = (ROTATION, REVOCATION)  # notices clients fetch and acknowledge; requests stay until answered
MAX_FACES = 512


def decode_upload(data: bytes) -> np.ndarray:
    """The uploaded image: a PNG the client produced (lossless, so revealed faces stay pixel-identical)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise InvalidImageError("the uploaded image must be a PNG (the client converts it)")
    try:
        return decode_png(data)
    except StoreError:
        raise InvalidImageError("the uploaded image cannot be decoded") from None


@dataclass
class CompiledPolicy:
    revision: int
    graph: Graph
    policy: PolicySet
    engine: Engine
    refused: dict[str, str]  # owner -> why their rules were refused (unsigned, forged, rolled back, invalid)


@dataclass(frozen=True)
class RuleRecord:
    owner: str
    name: str
    text: str
    signature: bytes | None
    version: int


@dataclass(frozen=True)
class PhotoInfo:
    id: int
    uploader: str
    album: str | None
    model: str
    width: int
    height: int
    faces: int


@dataclass(frozen=True)
class ServerRendering:
    photo_id: int
    viewer: str
    image: np.ndarray  # read-only, shared with the render cache
    decisions: tuple[FaceDecision, ...]
    version: str
    generated: int


@dataclass(frozen=True)
class UploadFace:
    """What the uploader's client sends per face: geometry, and the identity it established (if any)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]
    owner: str | None
    state: str
    fake_verified: bool | None = None
    fake_fallback: str | None = None
    fake_error: str | None = None  # why the client's generator failed (kept in the audit log)


def _view_detail(decisions: Sequence[FaceDecision]) -> dict[str, object]:
    return {"real": [d.index for d in decisions if d.reveal],
            "fallbacks": [d.index for d in decisions if d.fallback is Fallback.BLOCK]}


def _hwm_key(owner: str) -> str:
    return "rules.hwm." + hashlib.sha256(owner.encode()).hexdigest()[:40]


class Server:
    """The platform's server role over one `Store` (SQLite or PostgreSQL) and its blob directory."""

    def __init__(self, store: Store, backend: FaceBackend, *, queue: FakeQueue | None = None) -> None:
        self.store = store
        self.maker = FakeMaker(store, backend)
        self.compositor = Compositor(self.maker)
        self.queue: FakeQueue = queue or InlineQueue(self.maker)
        self.views = ViewLog(store)
        self._policy: CompiledPolicy | None = None
        self._lock = threading.Lock()
        # warm renders: (viewer, photo) -> (store revision, rendering); any change of graph, rules, tags or keys
        # bumps the revision, and a cached rendering only names fakes that exist
        self._rendered: OrderedDict[tuple[str, int], tuple[int, ServerRendering]] = OrderedDict()

    def close(self) -> None:
        self.views.close()
        self.queue.close()
        self.store.close()

    # ------------------------------------------------------------------ users and keys
    def users(self) -> list[str]:
        with self.store.read() as tx:
            return [u.name for u in tx.users()]

    def register(self, name: str, public_keys: str) -> bool:
        """Register `name` with its public keys (trust on first use). The same keys again: no change (False);
        other keys for an existing name are refused (only a signed rotation replaces them)."""
        try:
            keys = PublicKeys.from_json(public_keys)
        except CryptoError as err:
            raise InvalidInputError(f"invalid public keys: {err.message}") from None
        if keys.user != name:
            raise InvalidInputError(f"the public keys are for `{keys.user}`, not `{name}`")
        check_user_name(name)  # the rule language's identifier syntax, no reserved word (exit 2)
        with self.store.tx() as tx:
            existing = tx.find_user(name)
            if existing is not None:
                if existing.public_keys != keys.to_json():
                    raise PermissionDeniedError(f"user `{name}` already exists with other keys",
                                                help="pick another name; keys change only by `mfmc keys rotate`")
                return False
            _, created = tx.add_user(name, public_keys=keys.to_json(), fingerprint=keys.fingerprint)
            tx.audit(name, "user.add")
        return created

    def check_name_free(self, name: str) -> None:
        """Refuse a name that cannot be registered (syntax, reserved word, taken regardless of case)."""
        check_user_name(name)
        with self.store.read() as tx:
            if tx.find_user(name) is None:
                tx.check_name_free(name)

    def public_keys(self, name: str) -> PublicKeys:
        with self.store.read() as tx:
            return self._keys_of(tx.user(name))

    @staticmethod
    def _keys_of(user: m.User) -> PublicKeys:
        if not user.public_keys:
            raise StoreError(f"`{user.name}` has no public keys on the server")
        return PublicKeys.from_json(user.public_keys)

    def set_enrolled(self, actor: str) -> None:
        with self.store.tx() as tx:
            tx.mark_enrolled(actor)
            tx.audit(actor, "enroll")

    def is_enrolled(self, name: str) -> bool:
        with self.store.read() as tx:
            return tx.user(name).enrolled

    def rotate_keys(self, actor: str, notice: bytes, rules: RuleRecord | None) -> None:
        """Store `actor`'s new public keys from a rotation notice signed by the current key; relay the notice to
        every other user; drop envelopes sealed to the old key; store the re-signed rules (if given)."""
        with self.store.tx() as tx:
            old = self._keys_of(tx.user(actor))
            new = verify_rotation(notice, old)
            if rules is not None:
                self._check_rules(tx, actor, rules, new)
            tx.set_user_keys(actor, public_keys=new.to_json(), fingerprint=new.fingerprint)
            if rules is not None:
                self._store_rules(tx, actor, rules)
            for other in tx.users():
                if other.name != actor:
                    tx.post_notice(actor, other.name, ROTATION, notice)
            tx.delete_shared_embeddings_to(actor)
            tx.bump_revision()
            tx.audit(actor, "keys.rotate", detail={"old": old.fingerprint, "new": new.fingerprint})

    # ------------------------------------------------------------------ graph
    def graph(self) -> Graph:
        with self.store.read() as tx:
            return Graph(users=[u.name for u in tx.users()], friends=tx.friendships(), follows=tx.follows())

    def graph_lists(self) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
        """Users, friendships (a, b) and follows (follower, followee), as stored."""
        with self.store.read() as tx:
            return [u.name for u in tx.users()], tx.friendships(), tx.follows()

    def friends_of(self, name: str) -> list[str]:
        with self.store.read() as tx:
            tx.user(name)
            return tx.friends_of(name)

    def _pending(self, tx: Tx, sender: str, recipient: str, kind: str) -> list[m.Notice]:
        return [n for n in tx.notices_for(recipient) if n.sender == sender and n.kind == kind]

    def request_friend(self, actor: str, other: str) -> str:
        """`actor` asks `other`; if `other` asked `actor` before, they become friends. Returns the state."""
        with self.store.tx() as tx:
            tx.user(other)
            if actor == other:
                raise InvalidInputError(f"`{actor}` cannot befriend themselves")
            if other in tx.friends_of(actor):
                return "already friends"
            theirs = self._pending(tx, other, actor, FRIEND_REQUEST)
            if theirs:
                for n in theirs:
                    tx.delete_notice(n.id or 0)
                tx.add_friendship(actor, other)
                tx.audit(actor, "friend", detail={"with": other})
                return "friends"
            if not self._pending(tx, actor, other, FRIEND_REQUEST):
                tx.post_notice(actor, other, FRIEND_REQUEST, b"")
                tx.audit(actor, "friend.request", detail={"to": other})
            return "requested"

    def unfriend(self, actor: str, other: str) -> bool:
        with self.store.tx() as tx:
            for n in self._pending(tx, actor, other, FRIEND_REQUEST) + self._pending(tx, other, actor, FRIEND_REQUEST):
                tx.delete_notice(n.id or 0)
            changed = tx.remove_friendship(actor, other)
            tx.audit(actor, "unfriend", detail={"with": other})
            return changed

    def request_follow(self, actor: str, followee: str) -> str:
        with self.store.tx() as tx:
            tx.user(followee)
            if actor == followee:
                raise InvalidInputError(f"`{actor}` cannot follow themselves")
            if (actor, followee) in tx.follows():
                return "already follows"
            if not self._pending(tx, actor, followee, FOLLOW_REQUEST):
                tx.post_notice(actor, followee, FOLLOW_REQUEST, b"")
                tx.audit(actor, "follow.request", detail={"to": followee})
            return "requested"

    def approve_follower(self, actor: str, follower: str) -> str:
        """`actor` (the followee) accepts `follower`'s pending request."""
        with self.store.tx() as tx:
            tx.user(follower)
            pending = self._pending(tx, follower, actor, FOLLOW_REQUEST)
            if (follower, actor) in tx.follows():
                return "already follows"
            if not pending:
                raise PermissionDeniedError(f"`{follower}` has not asked to follow `{actor}`",
                                            help=f"`{follower}` asks first (`mfmc follow {follower} {actor}`)")
            for n in pending:
                tx.delete_notice(n.id or 0)
            tx.add_follow(follower, actor)
            tx.audit(actor, "follow", detail={"follower": follower})
            return "follows"

    def unfollow(self, actor: str, follower: str, followee: str) -> bool:
        if actor not in (follower, followee):
            raise PermissionDeniedError(f"`{actor}` cannot end a follow between `{follower}` and `{followee}`")
        with self.store.tx() as tx:
            for n in self._pending(tx, follower, followee, FOLLOW_REQUEST):
                tx.delete_notice(n.id or 0)
            changed = tx.remove_follow(follower, followee)
            tx.audit(actor, "unfollow", detail={"follower": follower, "followee": followee})
            return changed

    def requests_for(self, actor: str) -> list[tuple[str, str]]:
        """Pending friend and follow requests addressed to `actor`: (kind, sender)."""
        with self.store.read() as tx:
            return [(n.kind, n.sender) for n in tx.notices_for(actor) if n.kind in (FRIEND_REQUEST, FOLLOW_REQUEST)]

    # ------------------------------------------------------------------ rules
    def _rules_hwm(self, tx: Tx, owner: str) -> int:
        row = tx.session.get(m.Meta, _hwm_key(owner))
        return int(row.value) if row is not None else 0

    def _check_rules(self, tx: Tx, actor: str, rules: RuleRecord, keys: PublicKeys) -> None:
        if rules.owner != actor:
            raise PermissionDeniedError(f"`{actor}` cannot set the rules of `{rules.owner}`")
        graph = Graph(users=[u.name for u in tx.users()], friends=tx.friendships(), follows=tx.follows())
        compiled = PolicySet.from_sources([(rules.text, rules.name)], graph=graph)  # RuleError: exit 2
        owners = [p.owner for p in compiled]
        if owners != [actor]:
            raise PermissionDeniedError(f"`{rules.name}` governs {', '.join(f'`{o}`' for o in owners) or 'no face'}"
                                        f", not the face of `{actor}`", help="each user sets only their own rules")
        hwm = self._rules_hwm(tx, actor)
        verify_rules(rules.text, rules.signature, keys, owner=actor, min_version=hwm + 1)

    def _store_rules(self, tx: Tx, actor: str, rules: RuleRecord) -> None:
        tx.set_rules(actor, rules.name, canonical_rules(rules.text).decode("utf-8"), signature=rules.signature,
                     level="signed", version=rules.version)
        key = _hwm_key(actor)
        row = tx.session.get(m.Meta, key)
        if row is None:
            tx.session.add(m.Meta(key=key, value=str(rules.version)))
        else:
            row.value = str(rules.version)
            tx.session.add(row)

    def put_rules(self, actor: str, rules: RuleRecord) -> int:
        """Store `actor`'s signed rules: own face only, valid, signature by the current key, version above every
        version stored before (rollback and replay refused). Returns the version."""
        with self.store.tx() as tx:
            keys = self._keys_of(tx.user(actor))
            self._check_rules(tx, actor, rules, keys)
            self._store_rules(tx, actor, rules)
            tx.audit(actor, "rules.set", detail={"file": rules.name, "version": rules.version})
        return rules.version

    def rules(self, actor: str, owner: str) -> RuleRecord | None:
        """The signed rules of `owner`, for the owner and their friends (whose clients verify them)."""
        with self.store.read() as tx:
            tx.user(owner)
            if actor != owner and actor not in tx.friends_of(owner):
                raise PermissionDeniedError(f"`{actor}` cannot read the rules of `{owner}`",
                                            help="only the owner and their friends can")
            row = tx.rules(owner)
            if row is None:
                return None
            return RuleRecord(row.owner, row.name, row.text, row.signature, row.version)

    def rules_version(self, owner: str) -> int:
        """The highest rule version accepted for `owner` (0 if none); a client signs the next one."""
        with self.store.read() as tx:
            tx.user(owner)
            return self._rules_hwm(tx, owner)

    def validate_rules(self, text: str, name: str = "<rules>") -> list[str]:
        """Diagnostics of a rule file against the current graph ([] when valid); nothing is stored."""
        try:
            PolicySet.from_sources([(text, name)], graph=self.graph())
        except RuleError as err:
            return [d.render() for d in err.diagnostics] or [err.message]
        return []

    # ------------------------------------------------------------------ envelopes and notices
    def put_envelope(self, actor: str, blob: bytes) -> str:
        """Store an envelope from `actor` to a current friend, sealed with `actor`'s and the friend's current
        keys (checked on the public header; only the recipient's client can open it). Returns the recipient."""
        try:
            head = envelope_header(blob)
        except CryptoError as err:
            raise InvalidInputError(f"invalid envelope: {err.message}") from None
        with self.store.tx() as tx:
            if head.owner != actor:
                raise PermissionDeniedError(f"`{actor}` cannot store an envelope from `{head.owner}`")
            if head.recipient not in tx.friends_of(actor):
                raise PermissionDeniedError(f"`{head.recipient}` is not a friend of `{actor}`")
            if head.owner_key != self._keys_of(tx.user(actor)).fingerprint:
                raise PermissionDeniedError("the envelope is sealed with another key than the owner's current one")
            if head.recipient_key != self._keys_of(tx.user(head.recipient)).fingerprint:
                raise PermissionDeniedError(f"the envelope is sealed to an old key of `{head.recipient}`")
            tx.put_shared_embedding(actor, head.recipient, blob)
            tx.audit(actor, "share", detail={"to": head.recipient})
        return head.recipient

    def revoke(self, actor: str, recipient: str, notice: bytes) -> None:
        """Delete `actor`'s envelope to `recipient` and relay `actor`'s signed revocation notice to them."""
        with self.store.tx() as tx:
            tx.user(recipient)
            tx.delete_shared_embedding(actor, recipient)
            tx.post_notice(actor, recipient, REVOCATION, notice)
            tx.audit(actor, "revoke", detail={"to": recipient})

    def envelopes_for(self, actor: str) -> list[tuple[str, bytes]]:
        with self.store.read() as tx:
            return [(e.owner, e.ciphertext) for e in tx.shared_embeddings_for(actor)]

    def envelopes_from(self, actor: str) -> list[tuple[str, bytes]]:
        """`actor`'s own envelopes (their client checks which are current by the header)."""
        with self.store.read() as tx:
            return [(e.recipient, e.ciphertext) for e in tx.shared_embeddings_from(actor)]

    def notices_for(self, actor: str) -> list[tuple[int, str, str, bytes]]:
        with self.store.read() as tx:
            return [(n.id or 0, n.sender, n.kind, n.blob) for n in tx.notices_for(actor) if n.kind in RELAYED]

    def ack_notices(self, actor: str, ids: Sequence[int]) -> None:
        with self.store.tx() as tx:
            mine = {n.id for n in tx.notices_for(actor) if n.kind in RELAYED}
            for nid in ids:
                if nid in mine:
                    tx.delete_notice(nid)

    # ------------------------------------------------------------------ photos
    def upload(self, actor: str, image_png: bytes, *, model: str, album: str | None, faces: Sequence[UploadFace],
               client_key: str) -> UploadResult:
        """Store a photo the uploader's client prepared (faces that had to be faked are already faked)."""
        if model not in tuple(AccessModel):
            raise InvalidInputError(f"unknown access model `{model}`", help="use proxy, explicit or rules")
        if len(faces) > MAX_FACES:
            raise InvalidInputError(f"too many faces ({len(faces)}; at most {MAX_FACES})")
        image = decode_upload(image_png)
        key = hashlib.sha256(f"{actor}\0{client_key}".encode()).hexdigest()
        with self.store.read() as tx:
            existing = tx.photo_by_key(key)
            if existing is not None:
                return UploadResult(existing.id or 0, existing.model, summaries(tx.faces(existing.id or 0)), False)
        rows: list[m.Face] = []
        h, w = image.shape[:2]
        with self.store.tx() as tx:
            tx.user(actor)
            for i, face in enumerate(faces):
                if face.state not in tuple(FaceState):
                    raise InvalidInputError(f"face {i}: unknown state `{face.state}`")
                if face.fake_fallback is not None and face.fake_fallback not in tuple(Fallback):
                    raise InvalidInputError(f"face {i}: unknown fallback `{face.fake_fallback}`")
                x1, y1, x2, y2 = face.box
                if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
                    raise InvalidInputError(f"face {i}: box {list(face.box)} is outside the {w}x{h} image")
                if face.owner is not None:
                    tx.user(face.owner)
                row = m.Face(photo_id=0, index=i, box=json.dumps([round(float(v), 2) for v in face.box]),
                             score=float(face.score), landmarks=json.dumps([list(p) for p in face.landmarks]),
                             state=face.state, fake_verified=face.fake_verified, fake_fallback=face.fake_fallback)
                if face.state == FaceState.CLIENT_FAKED:
                    pass  # never associated with an identity (supplement C)
                elif model == AccessModel.EXPLICIT and face.owner is not None:
                    row.tag, row.consent = face.owner, Consent.PENDING  # the uploader proposes; the user consents
                elif model != AccessModel.EXPLICIT:
                    row.owner = face.owner
                rows.append(row)
            blob = tx.put_blob(image_png, "png")
            photo = m.Photo(uploader=actor, album=album, model=model, image_blob=blob, width=int(w), height=int(h),
                            upload_key=key)
            tx.add_photo(photo, rows)
            tx.bump_revision()
            tx.audit(actor, "upload", photo_id=photo.id, detail={
                "model": model, "faces": len(rows),
                "client_faked": sum(r.state == FaceState.CLIENT_FAKED for r in rows),
                "fallbacks": {i: (f.fake_error or "")[:200] for i, f in enumerate(faces)
                              if f.fake_fallback == Fallback.BLOCK}})
            result = UploadResult(photo.id or 0, model, summaries(rows), True)
        return result

    def photos(self) -> list[PhotoInfo]:
        with self.store.read() as tx:
            return [PhotoInfo(p.id or 0, p.uploader, p.album, p.model, p.width, p.height, len(tx.faces(p.id or 0)))
                    for p in tx.photos()]

    def faces(self, actor: str, photo_id: int) -> list[FaceSummary]:
        """Face rows with owners and tags: for the uploader, or faces owned or tagged as `actor`."""
        with self.store.read() as tx:
            photo = tx.photo(photo_id)
            rows = tx.faces(photo_id)
        if actor == photo.uploader:
            return list(summaries(rows))
        return [s for s in summaries(rows) if actor in (s.owner, s.tag)]

    # ------------------------------------------------------------------ tags and consent (explicit model)
    def _explicit_face(self, tx: Tx, photo_id: int, index: int) -> tuple[m.Photo, m.Face]:
        photo = tx.photo(photo_id)
        if photo.model != AccessModel.EXPLICIT:
            raise InvalidInputError(f"photo `{photo_id}` uses the `{photo.model}` model",
                                    help="tags and consent apply to photos uploaded with `--model explicit`")
        return photo, tx.face(photo_id, index)

    def tag(self, actor: str, photo_id: int, index: int, user: str) -> str:
        """The uploader tags face `index` as `user`; it stays fake until `user` consents."""
        with self.store.tx() as tx:
            tx.user(user)
            photo, face = self._explicit_face(tx, photo_id, index)
            if actor != photo.uploader:
                raise PermissionDeniedError(f"only the uploader `{photo.uploader}` can tag faces of photo `{photo_id}`",
                                            help=f"ask `{photo.uploader}` to tag it")
            if face.tag == user:
                return face.consent
            if face.tag is not None and face.consent != Consent.REFUSED:
                raise PermissionDeniedError(
                    f"face {index} of photo `{photo_id}` is tagged as `{face.tag}`",
                    help=f"`{face.tag}` must refuse or untag it before it can be tagged as `{user}`")
            self._refake(tx, face)
            face.tag, face.consent = user, Consent.PENDING
            tx.save(face)
            tx.bump_revision()
            tx.audit(actor, "tag", photo_id=photo_id, detail={"face": index, "user": user})
            return face.consent

    def consent(self, actor: str, photo_id: int, index: int, *, grant: bool = True) -> str:
        """The tagged user (only them) grants (reveal) or refuses/revokes (re-fake) consent."""
        with self.store.tx() as tx:
            _, face = self._explicit_face(tx, photo_id, index)
            if face.tag != actor:
                raise PermissionDeniedError(f"face {index} of photo `{photo_id}` is not tagged as `{actor}`",
                                            help="only the tagged user can consent")
            if not grant and face.consent == Consent.GRANTED:
                self._refake(tx, face)
            face.consent = Consent.GRANTED if grant else Consent.REFUSED
            tx.save(face)
            tx.bump_revision()
            tx.audit(actor, "consent" if grant else "consent.refuse", photo_id=photo_id, detail={"face": index})
            return face.consent

    def untag(self, actor: str, photo_id: int, index: int) -> None:
        """The uploader or the tagged user removes the tag; the face gets a freshly generated fake."""
        with self.store.tx() as tx:
            photo, face = self._explicit_face(tx, photo_id, index)
            if actor not in (face.tag, photo.uploader):
                raise PermissionDeniedError(f"`{actor}` cannot untag face {index} of photo `{photo_id}`",
                                            help="the uploader or the tagged user can untag")
            self._refake(tx, face)
            face.tag, face.consent = None, Consent.NONE
            tx.save(face)
            tx.bump_revision()
            tx.audit(actor, "untag", photo_id=photo_id, detail={"face": index})

    @staticmethod
    def _refake(tx: Tx, face: m.Face) -> None:
        face.generation += 1
        tx.drop_fakes(face.photo_id, face.index)

    # ------------------------------------------------------------------ decisions
    def current_policy(self, tx: Tx) -> CompiledPolicy:
        """Engine compiled from the rules whose signatures verify (current key, version >= high-water mark)."""
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
                verify_rules(row.text, row.signature, self._keys_of(users[row.owner]), owner=row.owner,
                             min_version=max(1, self._rules_hwm(tx, row.owner)))
            except (CryptoError, StoreError) as err:
                refused[row.owner] = err.message
                continue
            sources.append((row.text, row.name))
            owner_of[row.name] = row.owner
        try:
            policy = PolicySet.from_sources(sources, graph=graph)
        except RuleError as err:  # only the owners whose files fail lose their rules (fail closed for them)
            failed = {d.span.path for d in err.diagnostics if d.is_error}
            refused.update({owner_of[n]: "rules no longer compile" for n in failed if n in owner_of})
            try:
                policy = PolicySet.from_sources([s for s in sources if s[1] not in failed], graph=graph)
            except MfmcError:
                policy, refused = PolicySet.from_sources([], graph=graph), {**refused, "*": "rules failed to compile"}
        compiled = CompiledPolicy(revision, graph, policy, Engine(policy, graph), refused)
        self._policy = compiled
        return compiled

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
            why = ("untagged" if face.tag is None else f"tag `{face.tag}` awaits consent"
                   if face.consent == Consent.PENDING else f"`{face.tag}` refused consent")
            return FaceDecision(face.index, False, (why,), face.tag, fake=FakeUse.SHARED)
        assert pol is not None
        decision = pol.engine.check(viewer=viewer, owner=face.owner,
                                    context=Context(uploader=photo.uploader, album=photo.album))
        reasons = tuple(decision.reasons)
        if face.owner in pol.refused:
            reasons += (f"rules of `{face.owner}` refused: {pol.refused[face.owner]}",)
        if decision.reveal:
            return FaceDecision(face.index, True, reasons, face.owner)
        use = FakeUse.PER_VIEWER if pol.policy.fakes_per_viewer(face.owner) else FakeUse.SHARED
        return FaceDecision(face.index, False, reasons, face.owner, fake=use)

    def decide(self, viewer: str, photo_id: int) -> list[FaceDecision]:
        """`viewer`'s own decisions for every face of the photo (no pixels)."""
        with self.store.read() as tx:
            tx.user(viewer)
            photo = tx.photo(photo_id)
            pol = self.current_policy(tx) if photo.model == AccessModel.RULES else None
            faces = tx.faces(photo_id)
            decisions = [self._decide(pol, photo, f, viewer) for f in faces]
            made = {(r.face_index, r.viewer, r.generation): r for r in tx.fakes(photo_id)}
        for k, (d, face) in enumerate(zip(decisions, faces, strict=True)):  # how the fakes shown were made
            if not d.reveal and d.fake is not FakeUse.NONE:
                row = made.get((face.index, d.fake.cache_viewer(viewer), face.generation))
                if row is not None:
                    decisions[k] = replace(d, fallback=Fallback(row.fallback) if row.fallback else Fallback.NONE)
        return decisions

    def decisions_for(self, photo_id: int, viewers: Sequence[str]) -> dict[str, list[bool]]:
        """Reveal flags per face for many viewers (operator/benchmark use: not exposed over HTTP)."""
        with self.store.read() as tx:
            photo = tx.photo(photo_id)
            faces = tx.faces(photo_id)
            pol = self.current_policy(tx) if photo.model == AccessModel.RULES else None
        if pol is None:
            return {v: [self._decide(pol, photo, f, v).reveal for f in faces] for v in viewers}
        # Rules model: the engine's batched path decides every face for every viewer at once (the same answers
        # as `_decide`'s scalar `check`); faces faked on the uploader's client stay fake for everyone.
        viewers = list(viewers)
        reveal = pol.engine.decide_many([f.owner for f in faces], viewers,
                                        Context(uploader=photo.uploader, album=photo.album))
        reveal[[f.state == FaceState.CLIENT_FAKED for f in faces]] = False
        return dict(zip(viewers, reveal.T.tolist(), strict=True))

    def _owned_face(self, tx: Tx, actor: str, photo_id: int, index: int) -> tuple[m.Photo, m.Face]:
        photo = tx.photo(photo_id)
        face = tx.face(photo_id, index)
        if actor not in (face.owner, face.tag):
            raise PermissionDeniedError(f"face {index} of photo `{photo_id}` is not the face of `{actor}`",
                                        help="only the owner of a face can ask who sees it")
        return photo, face

    def explain(self, actor: str, photo_id: int, index: int, viewer: str) -> FaceDecision:
        """For the owner of face `index`: the decision for `viewer`, with reasons."""
        with self.store.read() as tx:
            photo, face = self._owned_face(tx, actor, photo_id, index)
            tx.user(viewer)
            pol = self.current_policy(tx) if photo.model == AccessModel.RULES else None
            return self._decide(pol, photo, face, viewer)

    def audience(self, actor: str, photo_id: int, index: int) -> dict[str, object]:
        """For the owner of face `index`: who sees it real (`everyone except …`, `only …`, `nobody`)."""
        with self.store.read() as tx:
            photo, face = self._owned_face(tx, actor, photo_id, index)
            if photo.model != AccessModel.RULES or face.state == FaceState.CLIENT_FAKED:
                viewers = [u.name for u in tx.users()]
                pol = self.current_policy(tx) if photo.model == AccessModel.RULES else None
                real = [v for v in viewers if self._decide(pol, photo, face, v).reveal]
                return {"kind": "only", "users": real, "text": f"only {', '.join(real)}" if real else "nobody"}
            pol = self.current_policy(tx)
            result = pol.engine.audience(actor, Context(uploader=photo.uploader, album=photo.album))
            return {**result.to_dict(), "text": result.describe()}

    # ------------------------------------------------------------------ rendering
    def render(self, viewer: str, photo_id: int, *, audit: bool = True) -> ServerRendering:
        """The photo as `viewer` sees it: real faces where allowed, cached verified fakes elsewhere. Missing
        fakes are made by the fake queue (in-process, or `mfmc worker`s over Redis) before composing."""
        with self.store.read() as tx:
            revision = tx.revision()
            with self._lock:
                hit = self._rendered.get((viewer, photo_id))
            if hit is not None and hit[0] == revision:  # warm: nothing changed since this viewer's last render
                out = replace(hit[1], generated=0)
                if audit:
                    self.views.add(viewer, photo_id, out.version, _view_detail(out.decisions))
                return out
            tx.user(viewer)
            photo = tx.photo(photo_id)
            faces = tx.faces(photo_id)
            pol = self.current_policy(tx) if photo.model == AccessModel.RULES else None
            decisions = [self._decide(pol, photo, f, viewer) for f in faces]
            fakes = {(r.face_index, r.viewer, r.generation): r for r in tx.fakes(photo_id)}
        needed: dict[int, FakeJob] = {}
        for d, face in zip(decisions, faces, strict=True):
            if not d.reveal and d.fake is not FakeUse.NONE:
                needed[face.index] = FakeJob(photo_id, face.index, d.fake.cache_viewer(viewer), face.generation)
        missing = [job for job in needed.values() if (job.face_index, job.viewer, job.generation) not in fakes]
        if missing:
            self.queue.run(missing)
            with self.store.read() as tx:
                fakes = {(r.face_index, r.viewer, r.generation): r for r in tx.fakes(photo_id)}
        chosen = []
        for job in needed.values():
            row = fakes.get((job.face_index, job.viewer, job.generation))
            if row is None:
                raise StoreError(f"the fake of face {job.face_index} of photo `{photo_id}` is not ready",
                                 help="retry; check that `mfmc worker` is running")
            chosen.append(row)
            if row.fallback:
                decisions[job.face_index] = replace(decisions[job.face_index], fallback=Fallback(row.fallback))
        version = hashlib.sha256(json.dumps(
            [photo.image_blob[:16]] + [[d.index, "real" if d.reveal else (
                fakes[(d.index, needed[d.index].viewer, needed[d.index].generation)].blob[:16]
                if d.index in needed else "base")] for d in decisions]).encode()).hexdigest()[:16]
        image = self.compositor.compose(photo, chosen, version)
        out = ServerRendering(photo_id, viewer, image, tuple(decisions), version, len(missing))
        with self._lock:
            self._rendered[(viewer, photo_id)] = (revision, out)
            while len(self._rendered) > 4096:
                self._rendered.popitem(last=False)
        if audit:
            self.views.add(viewer, photo_id, version, _view_detail(out.decisions))
        return out

    def clear_caches(self, what: str = "all") -> None:
        """Drop warm renders (`views`), and composed images (`composed`), or also decoded images and patches
        (`all`): for benchmarks and for operators after editing the store by hand."""
        with self._lock:
            self._rendered.clear()
        if what == "composed":
            self.compositor.clear_composed()
        elif what == "all":
            self.compositor.clear()

    def render_png(self, viewer: str, photo_id: int) -> tuple[ServerRendering, bytes]:
        out = self.render(viewer, photo_id)
        return out, self.compositor.png(photo_id, out.version, out.image)

    # ------------------------------------------------------------------ audit
    def audit_log(self, actor: str, photo_id: int | None = None) -> list[m.AuditEntry]:
        """What `actor` did, and what happened to photos they uploaded or faces they own or are tagged in."""
        self.views.flush()
        with self.store.read() as tx:
            entries = tx.audit_log(photo_id)
            mine: set[int] = set()
            for photo in tx.photos():
                pid = photo.id or 0
                if photo.uploader == actor or any(actor in (f.owner, f.tag) for f in tx.faces(pid)):
                    mine.add(pid)
        return [e for e in entries if e.actor == actor or (e.photo_id is not None and e.photo_id in mine)]

