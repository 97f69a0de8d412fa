"""The platform: the only layer that composes policy, vision/swap (via `FaceBackend`), crypto and the store.

Where things happen (paper §3.3, Fig. 2):

- the *client* of a user is their keyring directory `<data dir>/clients/<name>/` (sealed private keys, own
  embedding, friends' embeddings decrypted locally) plus the code in `Platform.upload` that runs before
  anything is written to the server: detection, identification, and the fakes that must never leave the
  client unfaked (proxy: every face not revealed; rules/explicit: unknown faces and `nobody` owners);
- the *server* is `<data dir>/server/` (database + blobs): users and public keys, the graph, signed rules,
  photos, faces, cached fakes, the audit log and ciphertexts of shared embeddings. Never a plaintext embedding,
  never a private key.

Fail closed everywhere: a fake that cannot be produced or verified becomes an obfuscated block, a face whose
owner is unknown or whose rules are unsigned or forged is faked, and a render that cannot decide fakes.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mfmc.errors import InvalidInputError, MfmcError, StoreError, UnknownUserError
from mfmc.service.backends import DetectedFace, FaceBackend, FakeOutcome
from mfmc.service.imaging import Patch, decode_png, diff_patch, encode_png, load_upload, obfuscate
from mfmc.store import Store, Tx
from mfmc.store import models as m

ACCESS_MODELS = m.ACCESS_MODELS
MARKER = "mfmc-data.json"
PassphraseProvider = Callable[[str], str]


def env_passphrase(name: str) -> str:
    """`MFMC_PASSPHRASE_<NAME>` or `MFMC_PASSPHRASE`, else an interactive prompt; never logged."""
    key = "MFMC_PASSPHRASE_" + "".join(c if c.isalnum() else "_" for c in name.upper())
    for var in (key, "MFMC_PASSPHRASE"):
        value = os.environ.get(var)
        if value:
            return value
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"passphrase for `{name}`: ")
    from mfmc.crypto.errors import MissingKeyError

    raise MissingKeyError(f"no passphrase for the keyring of `{name}`",
                          help=f"set {key} or MFMC_PASSPHRASE, or run in a terminal")


def _seed(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class FaceSummary:
    index: int
    box: tuple[float, float, float, float]
    owner: str | None
    state: str
    tag: str | None = None
    consent: str = "none"


@dataclass(frozen=True)
class UploadResult:
    photo_id: int
    model: str
    faces: tuple[FaceSummary, ...]
    created: bool  # False when the same upload had already been stored (re-running is safe)


@dataclass(frozen=True)
class FaceDecision:
    index: int
    reveal: bool
    reasons: tuple[str, ...]
    owner: str | None
    fake_key: str | None = None  # the cache key of the fake used ("" shared, viewer name per viewer)


@dataclass(frozen=True)
class Rendering:
    photo_id: int
    viewer: str
    image: np.ndarray  # read-only (shared with the render cache); copy it to modify
    decisions: tuple[FaceDecision, ...]
    version: str
    generated: int  # fakes generated for this render (0 = warm: composition only)


@dataclass
class _Policy:
    revision: int
    graph: Any
    policy: Any
    engine: Any
    refused: dict[str, str]  # owner -> why their rules were refused (unsigned, forged, invalid)


class Platform:
    """One data dir: the server (store + blobs) and the users' clients (keyrings)."""

    def __init__(self, data_dir: str | Path | None = None, *, db_url: str | None = None,
                 backend: FaceBackend | None = None, passphrase: PassphraseProvider | None = None,
                 kdf: Any = None, schema: str | None = None, create: bool = False) -> None:
        self.data_dir = Path(data_dir or os.environ.get("MFMC_DATA_DIR") or "mfmc-data")
        marker = self.data_dir / MARKER
        if not marker.exists():
            if not create:
                raise StoreError(f"no mfmc data dir at `{self.data_dir}`",
                                 help="create one with `mfmc init` (or pass --data-dir)")
            self.data_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"format": "mfmc-data", "version": 1}) + "\n")
        self.server_dir = self.data_dir / "server"
        self.clients_dir = self.data_dir / "clients"
        self.clients_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.server_dir, db_url or os.environ.get("MFMC_DB_URL") or None, schema=schema)
        self._backend = backend
        self._passphrase = passphrase or env_passphrase
        self._kdf = kdf
        self._rings: dict[str, Any] = {}
        self._policy: _Policy | None = None
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self._patches: OrderedDict[str, Patch] = OrderedDict()
        self._composed: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()  # (photo, version) -> image
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ plumbing
    @property
    def backend(self) -> FaceBackend:
        if self._backend is None:
            from mfmc.service.backends import VisionBackend

            self._backend = VisionBackend()
        return self._backend

    def close(self) -> None:
        self._rings.clear()
        self.store.close()

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _kdf_params(self) -> Any:
        from mfmc.crypto.keys import KdfParams

        return self._kdf or KdfParams.MODERATE

    def _ring_path(self, name: str) -> Path:
        return self.clients_dir / name

    def keyring(self, name: str) -> Any:
        """The unlocked keyring of `name` (the user's client); cached for this process."""
        from mfmc.crypto.keyring import Keyring

        ring = self._rings.get(name)
        if ring is None:
            ring = Keyring.open(self._ring_path(name), self._passphrase(name))
            self._rings[name] = ring
        return ring

    @staticmethod
    def _public_keys(user: m.User) -> Any:
        from mfmc.crypto.errors import MissingKeyError
        from mfmc.crypto.keys import PublicKeys

        if not user.public_keys:
            raise MissingKeyError(f"`{user.name}` has no public keys on the server")
        return PublicKeys.from_json(user.public_keys)

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

    def _cached_patch(self, tx: Tx, blob: str) -> Patch:
        with self._lock:
            patch = self._patches.get(blob)
            if patch is not None:
                return patch
        patch = Patch.from_bytes(tx.read_blob(blob))
        with self._lock:
            self._patches[blob] = patch
            while len(self._patches) > 4096:
                self._patches.popitem(last=False)
        return patch

    # ------------------------------------------------------------------ users and keys
    def add_user(self, name: str) -> bool:
        """Create the user's client keyring (keys sealed under their passphrase) and register the public keys.

        Idempotent: an existing user is left unchanged and False is returned.
        """
        from mfmc.crypto.keyring import Keyring

        with self.store.read() as tx:
            if tx.find_user(name) is not None:
                return False
        path = self._ring_path(name)
        if (path / "identity.sealed").exists():
            ring = self.keyring(name)  # a previous run crashed after creating the keyring: reuse it
        else:
            from mfmc.store.repository import NAME_RE

            if not NAME_RE.match(name):
                raise UnknownUserError(f"invalid user name `{name}`",
                                       help="use letters, digits, `_`, `.` or `-`, starting with a letter")
            ring = Keyring.create(path, name, self._passphrase(name), kdf=self._kdf_params())
            self._rings[name] = ring
        with self.store.tx() as tx:
            _, created = tx.add_user(name, public_keys=ring.public.to_json(), fingerprint=ring.public.fingerprint)
            tx.audit(name, "user.add")
        return created

    def users(self) -> list[str]:
        with self.store.read() as tx:
            return [u.name for u in tx.users()]

    def _require_users(self, *names: str) -> None:
        with self.store.read() as tx:
            for name in names:
                tx.user(name)

    # ------------------------------------------------------------------ enrollment (client side)
    def enroll(self, name: str, images: Sequence[object]) -> int:
        """Compute the user's embedding on their client from photos of them (largest face of each).

        The embedding stays in the user's keyring; the server only learns that the user is enrolled, and gets
        ciphertexts for the user's friends if the user's rules allow sharing. Returns the faces used.
        """
        self._require_users(name)
        if not images:
            raise InvalidInputError("enroll needs at least one image")
        vectors = []
        for src in images:
            image = load_upload(src)
            faces = [f for f in self.backend.detect(image) if f.embedding is not None]
            if not faces:
                from mfmc.errors import NoFaceError

                label = src if isinstance(src, str | Path) else "an image"
                raise NoFaceError(f"no face found in `{label}`", help="use a photo where the face is clearly visible")
            largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
            vectors.append(np.asarray(largest.embedding, dtype=np.float32))
        ring = self.keyring(name)
        ring.enroll({self.backend.recognizer: np.stack(vectors)})
        with self.store.tx() as tx:
            tx.mark_enrolled(name)
            tx.audit(name, "enroll", detail={"images": len(vectors)})
        self.sync_shares(name)
        return len(vectors)

    # ------------------------------------------------------------------ graph
    def friend(self, a: str, b: str) -> bool:
        with self.store.tx() as tx:
            created = tx.add_friendship(a, b)
            tx.audit(a, "friend", detail={"with": b})
        self.sync_shares(a)
        self.sync_shares(b)
        return created

    def unfriend(self, a: str, b: str) -> bool:
        """Remove the friendship; both ciphertexts are deleted and each ex-friend's client drops its copy."""
        with self.store.tx() as tx:
            removed = tx.remove_friendship(a, b)
            tx.audit(a, "unfriend", detail={"with": b})
        self.sync_shares(a)
        self.sync_shares(b)
        return removed

    def follow(self, follower: str, followee: str) -> bool:
        with self.store.tx() as tx:
            created = tx.add_follow(follower, followee)
            tx.audit(follower, "follow", detail={"followee": followee})
        return created

    def unfollow(self, follower: str, followee: str) -> bool:
        with self.store.tx() as tx:
            removed = tx.remove_follow(follower, followee)
            tx.audit(follower, "unfollow", detail={"followee": followee})
        return removed

    def graph(self) -> Any:
        from mfmc.policy import Graph

        with self.store.read() as tx:
            return Graph(users=[u.name for u in tx.users()], friends=tx.friendships(), follows=tx.follows())

    # ------------------------------------------------------------------ embedding sharing (issue 7)
    def sync_shares(self, owner: str) -> None:
        """Make the server hold exactly the envelopes `owner`'s rules and friendships call for.

        Shares (owner's client seals to each friend) when the owner is enrolled and their level allows it;
        otherwise deletes the envelopes and relays a signed revocation so the ex-recipient's client drops its
        copy. Runs on enroll, friend, unfriend and rules changes.
        """
        from mfmc.crypto.sharing import envelope_header, may_share

        with self.store.read() as tx:
            user = tx.user(owner)
            rules = tx.rules(owner)
            level = rules.level if rules is not None else "nobody"
            friends = set(tx.friends_of(owner))
            existing = {row.recipient: row.ciphertext for row in tx.shared_embeddings_from(owner)}
            keys = {u.name: u for u in tx.users() if u.name in friends}
        wanted = friends if (user.enrolled and may_share(level)) else set()
        stale = sorted(set(existing) - wanted)
        missing = []
        if wanted:
            ring = self.keyring(owner)
            own = ring.own
            for friend in sorted(wanted):
                pub = self._public_keys(keys[friend])
                blob = existing.get(friend)
                if blob is not None and own is not None:
                    head = envelope_header(blob)
                    if head.version == own.version and head.recipient_key == pub.fingerprint:
                        continue
                missing.append((friend, pub))
        if not missing and not stale:
            return
        envelopes = []
        notices = []
        if missing:
            ring = self.keyring(owner)
            envelopes = [(friend, ring.share_with(pub, level=_share_level(level))) for friend, pub in missing]
        if stale:
            ring = self.keyring(owner)
            notices = [(friend, ring.revoke(friend)) for friend in stale]
        with self.store.tx() as tx:
            for friend, blob in envelopes:
                tx.put_shared_embedding(owner, friend, blob)
            for friend, notice in notices:
                tx.delete_shared_embedding(owner, friend)
                tx.post_notice(owner, friend, "revocation", notice)
            tx.audit(owner, "share", detail={"shared": [f for f, _ in envelopes], "revoked": [f for f, _ in notices]})
        if owner in self._rings:  # the owner's client forgets embeddings of users who are no longer friends
            ring = self._rings[owner]
            for other in list(ring.known()):
                if other not in friends:
                    ring.drop(other)

    def client_sync(self, name: str) -> dict[str, list[str]]:
        """On `name`'s client: apply relayed revocations, import envelopes addressed to `name`.

        Envelopes that fail verification are refused (their owner stays unknown, so their face is faked).
        Returns what happened, for the audit log.
        """
        from mfmc.crypto.errors import CryptoError

        ring = self.keyring(name)
        done: dict[str, list[str]] = {"imported": [], "refused": [], "revoked": []}
        with self.store.read() as tx:
            notices = [(n.id, n.sender, n.blob) for n in tx.notices_for(name)]
            envelopes = [(e.owner, e.ciphertext) for e in tx.shared_embeddings_for(name)]
            friends = set(tx.friends_of(name))
            users = {u.name: u for u in tx.users()}
        for _, sender, blob in notices:
            try:
                if ring.apply_revocation(blob):
                    done["revoked"].append(sender)
            except CryptoError:
                done["refused"].append(sender)
        for owner, blob in envelopes:
            if owner not in friends or owner not in users:
                continue
            try:
                ring.import_envelope(blob, self._public_keys(users[owner]))
                done["imported"].append(owner)
            except CryptoError:
                done["refused"].append(owner)
        for other in list(ring.known()):
            if other not in friends:
                ring.drop(other)
        if notices:
            with self.store.tx() as tx:
                for nid, _, _ in notices:
                    tx.delete_notice(nid)
        return done

    # ------------------------------------------------------------------ rules (signed by the owner's client)
    def set_rules(self, text: str, name: str = "<rules>") -> str:
        """Validate a `.mfmc` file, have its owner's client sign it, and store it; returns the owner."""
        from mfmc.crypto.signing import canonical_rules, sign_rules
        from mfmc.policy import PolicySet

        graph = self.graph()
        compiled = PolicySet.from_sources([(text, name)], graph=graph)  # raises RuleError (exit 2)
        owners = [p.owner for p in compiled]
        if len(owners) != 1:
            raise InvalidInputError(f"`{name}` must govern exactly one face", help="one `face NAME` per file")
        owner = owners[0]
        self._require_users(owner)
        level = _level(next(iter(compiled)))
        canonical = canonical_rules(text).decode("utf-8")
        with self.store.read() as tx:
            row = tx.rules(owner)
            version = (row.version + 1) if row is not None else 1
        signature = sign_rules(canonical, self.keyring(owner).keys, version=version)
        with self.store.tx() as tx:
            tx.set_rules(owner, name, canonical, signature=signature, level=level, version=version)
            tx.audit(owner, "rules.set", detail={"file": name, "version": version, "level": level})
        self.sync_shares(owner)
        return owner

    def store_unsigned_rules(self, owner: str, text: str, *, signature: bytes | None = None) -> None:
        """What a compromised server could write: rules it did not get from the owner's client (for tests)."""
        with self.store.tx() as tx:
            row = tx.rules(owner)
            tx.set_rules(owner, "<server>", text, signature=signature, level="public",
                         version=row.version if row else 1)

    def _current_policy(self, tx: Tx) -> _Policy:
        """Policy and engine compiled from the rules whose owner signatures verify; cached by store revision."""
        revision = tx.revision()
        cached = self._policy
        if cached is not None and cached.revision == revision:
            return cached
        from mfmc.crypto.errors import CryptoError
        from mfmc.crypto.signing import verify_rules
        from mfmc.policy import Engine, Graph, PolicySet

        users = {u.name: u for u in tx.users()}
        graph = Graph(users=sorted(users), friends=tx.friendships(), follows=tx.follows())
        sources = []
        refused: dict[str, str] = {}
        for row in tx.all_rules():
            try:
                verify_rules(row.text, row.signature, self._public_keys(users[row.owner]), owner=row.owner,
                             min_version=row.version)
            except (CryptoError, KeyError) as err:
                refused[row.owner] = getattr(err, "message", str(err))
                continue
            sources.append((row.text, row.name))
        try:
            policy = PolicySet.from_sources(sources, graph=graph)
        except MfmcError:
            policy, refused = PolicySet.from_sources([], graph=graph), {**refused, "*": "rules failed to compile"}
        engine = Engine(policy, graph)
        self._policy = _Policy(revision, graph, policy, engine, refused)
        return self._policy

    # ------------------------------------------------------------------ upload (client side, then server)
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
        key = hashlib.sha256(b"\0".join([
            raw, uploader.encode(), model.encode(), (album or "").encode(),
            json.dumps(sorted(map(str, reveal))).encode()])).hexdigest()
        with self.store.read() as tx:
            existing = tx.photo_by_key(key)
            if existing is not None:
                return UploadResult(existing.id or 0, existing.model, _summaries(tx.faces(existing.id or 0)), False)

        # ---- client side: nothing below writes to the server until the final transaction
        faces = self.backend.detect(pixels)
        owners = self._identify(uploader, faces) if (model != "proxy" or any(isinstance(r, str) and not
                                                                                 str(r).isdigit() for r in reveal)) \
            else [None] * len(faces)
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
                nobody = owner is not None and levels.get(owner, "nobody") == "nobody"
                must_fake = nobody or (owner is None and model == "rules")
                client_fake.append(must_fake)
                states.append("client_faked" if must_fake else "server")
                if must_fake:
                    owners[i] = None  # the identity is never associated with the photo (supplement C)
        base = pixels
        reports: dict[int, FakeOutcome] = {}
        for i in range(len(faces)):
            if client_fake[i]:
                outcome = self._make_fake(base, faces, i, seed=_seed(key, i, "client"))
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
                "model": model, "faces": len(rows), "client_faked": sum(client_fake)})
            result = UploadResult(photo.id or 0, model, _summaries(rows), True)
        return result

    def _levels(self) -> dict[str, str]:
        with self.store.read() as tx:
            return {r.owner: r.level for r in tx.all_rules()}

    def _identify(self, uploader: str, faces: list[DetectedFace]) -> list[str | None]:
        """On the uploader's client: match faces to the uploader and to friends whose embeddings it holds."""
        if not faces:
            return []
        try:
            self.client_sync(uploader)
            ring = self.keyring(uploader)
            names, gallery = ring.gallery(self.backend.recognizer)
        except MfmcError:
            return [None] * len(faces)  # no keyring, no identification: every face is unknown (fail closed)
        if not names:
            return [None] * len(faces)
        pairs = []
        for i, face in enumerate(faces):
            if face.embedding is None:
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
        return owners

    def _make_fake(self, image: np.ndarray, faces: list[DetectedFace], index: int, *, seed: int,
                   cache_key: str | None = None) -> FakeOutcome:
        """A fake of face `index`, or an obfuscated block if generation fails or changes nothing (fail closed)."""
        try:
            outcome = self.backend.fake(image, faces, index, seed=seed, cache_key=cache_key)
            if outcome.image.shape != image.shape or not np.any(outcome.image != image):
                raise ValueError("the fake did not change the face")
            if not outcome.verified and outcome.fallback != "obfuscated":
                raise ValueError("the fake did not pass verification")
            return outcome
        except Exception as err:
            others = [f.box for j, f in enumerate(faces) if j != index]
            return FakeOutcome(image=obfuscate(image, faces[index].box, others), verified=False, fallback="obfuscated",
                               report={"error": type(err).__name__})

    # ------------------------------------------------------------------ explicit authorization
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

    # ------------------------------------------------------------------ decisions and rendering
    def _decide(self, pol: _Policy | None, photo: m.Photo, face: m.Face, viewer: str) -> FaceDecision:
        if face.state == "client_faked":
            return FaceDecision(face.index, False, ("faked on the uploader's client (unknown or `nobody`)",), None)
        if photo.model == "proxy":
            return FaceDecision(face.index, True, ("revealed by the uploader (proxy)",), face.owner)
        if photo.model == "explicit":
            if face.tag is not None and face.consent == "granted":
                return FaceDecision(face.index, True, (f"tagged as `{face.tag}` with consent",), face.tag)
            why = "untagged" if face.tag is None else f"tag `{face.tag}` awaits consent" \
                if face.consent == "pending" else f"`{face.tag}` refused consent"
            return FaceDecision(face.index, False, (why,), face.tag, fake_key="")
        assert pol is not None
        from mfmc.policy import Context

        context = Context(uploader=photo.uploader, album=photo.album)
        decision = pol.engine.check(viewer=viewer, owner=face.owner, context=context)
        reasons = tuple(decision.reasons)
        if face.owner in pol.refused:
            reasons += (f"rules of `{face.owner}` refused: {pol.refused[face.owner]}",)
        if decision.reveal:
            return FaceDecision(face.index, True, reasons, face.owner)
        key = viewer if pol.policy.fakes_per_viewer(face.owner) else ""
        return FaceDecision(face.index, False, reasons, face.owner, fake_key=key)

    def decide(self, photo_id: int, viewer: str) -> list[FaceDecision]:
        """Per face of the photo: reveal or fake for `viewer`, with reasons (no pixels)."""
        with self.store.read() as tx:
            tx.user(viewer)
            photo = tx.photo(photo_id)
            pol = self._current_policy(tx) if photo.model == "rules" else None
            return [self._decide(pol, photo, f, viewer) for f in tx.faces(photo_id)]

    def decisions_for(self, photo_id: int, viewers: Sequence[str]) -> dict[str, list[bool]]:
        """Reveal flags per face for many viewers of one photo (one policy compile, no pixels)."""
        with self.store.read() as tx:
            photo = tx.photo(photo_id)
            faces = tx.faces(photo_id)
            pol = self._current_policy(tx) if photo.model == "rules" else None
            return {v: [self._decide(pol, photo, f, v).reveal for f in faces] for v in viewers}

    def render(self, photo_id: int, viewer: str, *, audit: bool = True) -> Rendering:
        """The photo as `viewer` sees it: real faces where allowed, cached verified fakes elsewhere.

        A missing fake is generated once (per photo and face, or per viewer when the owner asks for
        `fakes per_viewer`) and stored; later renders only compose.
        """
        with self.store.read() as tx:
            tx.user(viewer)
            photo = tx.photo(photo_id)
            faces = tx.faces(photo_id)
            pol = self._current_policy(tx) if photo.model == "rules" else None
            decisions = [self._decide(pol, photo, f, viewer) for f in faces]
            fakes = {(r.face_index, r.viewer, r.generation): r for r in tx.fakes(photo_id)}
            base = self._cached_image(tx, photo.image_blob)
        generated = 0
        chosen: dict[int, m.RenderedFake] = {}
        for d, face in zip(decisions, faces, strict=True):
            if d.reveal or d.fake_key is None:
                continue
            row = fakes.get((face.index, d.fake_key, face.generation))
            if row is None:
                row = self._generate_fake(photo, faces, face, d.fake_key, base)
                generated += 1
            chosen[face.index] = row
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
                         detail={"real": [d.index for d in decisions if d.reveal]})
        return Rendering(photo_id, viewer, out, tuple(decisions), version, generated)

    def _generate_fake(self, photo: m.Photo, faces: list[m.Face], face: m.Face, key: str,
                       base: np.ndarray) -> m.RenderedFake:
        detected = [DetectedFace(box=tuple(json.loads(f.box)), score=f.score,  # type: ignore[arg-type]
                                 landmarks5=tuple(tuple(p) for p in json.loads(f.landmarks)))  # type: ignore[misc]
                    for f in faces]
        outcome = self._make_fake(base, detected, face.index,
                                  seed=_seed(photo.upload_key, face.index, key, face.generation),
                                  cache_key=photo.image_blob)
        patch = diff_patch(base, outcome.image)
        assert patch is not None  # _make_fake guarantees a change
        try:
            with self.store.tx() as tx:
                blob = tx.put_blob(patch.to_bytes(), "npz")
                row = tx.add_fake(m.RenderedFake(
                    photo_id=photo.id or 0, face_index=face.index, viewer=key, generation=face.generation,
                    blob=blob, x=patch.x, y=patch.y, verified=outcome.verified, fallback=outcome.fallback,
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

    # ------------------------------------------------------------------ listing
    def photos(self) -> list[m.Photo]:
        with self.store.read() as tx:
            return tx.photos()

    def faces(self, photo_id: int) -> list[FaceSummary]:
        with self.store.read() as tx:
            tx.photo(photo_id)
            return list(_summaries(tx.faces(photo_id)))

    def audit_log(self, photo_id: int | None = None) -> list[m.AuditEntry]:
        with self.store.read() as tx:
            return tx.audit_log(photo_id)


# ---------------------------------------------------------------------- helpers
def _share_level(level: str) -> str:
    return level if level in ("public", "everyone", "friends", "friends_of_friends", "followers", "nobody") \
        else "friends"


def _level(owner_policy: Any) -> str:
    """Sharing level of an owner: `nobody` iff the default is nobody and no statement can reveal."""
    default = str(owner_policy.default)
    if default != "nobody":
        return default
    if any(not rule.hide for rule in owner_policy.rules):
        return "friends"
    return "nobody"


def _raw_bytes(source: object) -> bytes:
    if isinstance(source, np.ndarray):
        return source.tobytes() + str(source.shape).encode()
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()  # type: ignore[arg-type]
    except FileNotFoundError:
        from mfmc.errors import InvalidImageError

        raise InvalidImageError(f"no such image `{source}`") from None
    except OSError as err:
        from mfmc.errors import InvalidImageError

        raise InvalidImageError(f"cannot read `{source}`: {err.strerror}") from None


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


def _summaries(rows: Iterable[m.Face]) -> tuple[FaceSummary, ...]:
    return tuple(FaceSummary(r.index, tuple(json.loads(r.box)), r.owner, r.state, r.tag, r.consent)  # type: ignore[arg-type]
                 for r in rows)
