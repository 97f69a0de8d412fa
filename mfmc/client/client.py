"""One user's client: their keyring, their face backend, and everything that needs a private key or an embedding.

The client talks to the server only through `Api` (HTTP). It does on the user's device:
- keys: creates the keyring (keys sealed under the passphrase) and registers the public half; logs in by
  signing the server's challenge;
- enrollment: computes the user's embedding locally (largest face of each photo); only "enrolled" is told;
- sharing: decides from the user's *own* rules, fetched from the server and verified under the user's own key
  (never from a server column), whether to seal the embedding to each friend; revokes when not;
- sync: applies relayed revocations and key rotations, imports friends' envelopes;
- rules: validates against the server's graph, signs the next version, sends text + signature;
- upload: detects faces, identifies them against its own and its friends' embeddings, decides from each
  identified owner's verified rules whether their face may leave the client real, fakes the rest, and sends
  only the result (proxy: every face not revealed is faked here);
- viewing: asks for its own render; tags and consent as the uploader or the tagged user.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mfmc.client.api import Api, Json, b64d, b64e
from mfmc.client.matching import AMBIGUITY_MARGIN, match_faces
from mfmc.crypto.errors import CryptoError, KeyringError, MissingKeyError, WrongKeyError
from mfmc.crypto.keyring import Keyring
from mfmc.crypto.keys import KdfParams, KeyPair, PublicKeys, verify_rotation
from mfmc.crypto.sharing import EmbeddingSet, envelope_header, may_share
from mfmc.crypto.signing import canonical_rules, sign_rules, verify_rules
from mfmc.errors import InvalidImageError, InvalidInputError, MfmcError, NoFaceError, UnknownUserError
from mfmc.files import read_regular_file
from mfmc.policy import PolicySet
from mfmc.policy.model import DefaultAudience
from mfmc.service.backends import DetectedFace, FaceBackend, fake_many_or_block, seed_of
from mfmc.service.imaging import decode_png, encode_png, load_upload
from mfmc.service.records import FaceDecision, FaceSummary, FakeUse, RotationResult, UploadResult
from mfmc.store.models import AccessModel, Consent, FaceState
from mfmc.vocabulary import Fallback

PassphraseProvider = Callable[[str], str]
MAX_UPLOAD_BYTES = 256 * 2**20  # as `mfmc.vision.images.MAX_FILE_BYTES` (not imported: vision is heavy)
SyncReport = dict[str, list[str]]
ROTATION = "rotation"
PENDING_ROTATION = "rotation.pending"  # the notice of a rotation the server has not stored yet (crash recovery)


@dataclass(frozen=True)
class ClientRendering:
    photo_id: int
    viewer: str
    image: np.ndarray
    decisions: tuple[FaceDecision, ...]
    version: str
    generated: int

    @property
    def fallbacks(self) -> int:
        return sum(d.fallback is Fallback.BLOCK for d in self.decisions)


def upload_key(raw: bytes, model: str, album: str | None, reveal: Iterable[str | int]) -> str:
    """What makes an upload the same upload (per uploader): the file's bytes, model, album and reveal list."""
    return hashlib.sha256(b"\0".join([
        raw, model.encode(), (album or "").encode(), json.dumps(sorted(map(str, reveal))).encode()])).hexdigest()


def sharing_level(text: str, owner: str) -> str:
    """Sharing level from an owner's rule text: `nobody` iff the default is nobody and nothing can reveal."""
    compiled = PolicySet.from_sources([(text, f"{owner}.mfmc")])
    policy = next(iter(compiled))
    if policy.default is not DefaultAudience.NOBODY:
        return str(policy.default)
    return DefaultAudience.FRIENDS if any(not rule.hide for rule in policy.rules) else DefaultAudience.NOBODY


def summary_of(obj: Json) -> FaceSummary:
    fallback = obj.get("fallback")
    return FaceSummary(int(obj["index"]), tuple(obj["box"]), obj.get("owner"), str(obj["state"]),  # type: ignore[arg-type]
                       obj.get("tag"), str(obj.get("consent", "none")), Fallback(fallback) if fallback else None)


def decision_of(obj: Json) -> FaceDecision:
    fallback = obj.get("fallback")
    return FaceDecision(int(obj["index"]), obj["decision"] == "reveal", tuple(obj.get("reasons", ())),
                        obj.get("owner"), fake=FakeUse(obj.get("fake", FakeUse.NONE)),
                        fallback=Fallback(fallback) if fallback else None)


class Client:
    """The device of one user: `Client(api, "alice", keyring_dir, backend=..., passphrase=...)`."""

    def __init__(self, api: Api, user: str, ring_dir: Path, *, backend: FaceBackend | Callable[[], FaceBackend],
                 passphrase: PassphraseProvider, kdf: KdfParams = KdfParams.MODERATE) -> None:
        self.api = api
        self.user = user
        self.ring_dir = Path(ring_dir)
        self._backend = backend
        self._passphrase = passphrase
        self._kdf = kdf
        self._ring: Keyring | None = None

    # ------------------------------------------------------------------ plumbing
    @property
    def backend(self) -> FaceBackend:
        if callable(self._backend) and not hasattr(self._backend, "detect"):
            self._backend = self._backend()
        return self._backend  # type: ignore[return-value]

    @property
    def keyring(self) -> Keyring:
        """The unlocked keyring (wrong passphrase: `WrongPassphraseError`, exit 1, nothing changed)."""
        if self._ring is None:
            if not (self.ring_dir / "identity.sealed").exists():
                self.api.public("GET", f"/api/users/{self.user}")  # an unknown user: one clear line (exit 2)
                raise MissingKeyError(f"no keyring at `{self.ring_dir}` (the client of `{self.user}`)",
                                      help=f"run the command where `{self.user}`'s client lives")
            self._ring = Keyring.open(self.ring_dir, self._passphrase(self.user))
        return self._ring

    def _keys(self) -> KeyPair:
        return self.keyring.keys

    def call(self, method: str, path: str, *, json: Json | None = None, params: Json | None = None) -> Json:
        return self.api.call(self._keys, method, path, json=json, params=params).json()

    def _server_keys(self, name: str) -> PublicKeys:
        return PublicKeys.from_json(self.call("GET", f"/api/users/{name}/keys")["public_keys"])

    # ------------------------------------------------------------------ account
    def create(self) -> bool:
        """Create the keyring (if new) and register the public keys. Idempotent: False if already registered."""
        if (self.ring_dir / "identity.sealed").exists():
            ring = self.keyring  # a previous run crashed after creating the keyring: reuse it
        else:
            from mfmc.vocabulary import check_user_name

            check_user_name(self.user)
            self.api.public("POST", "/api/users/check", json={"user": self.user})  # before any keyring exists
            ring = Keyring.create(self.ring_dir, self.user, self._passphrase(self.user), kdf=self._kdf)
            self._ring = ring
        return bool(self.api.public("POST", "/api/users", json={
            "name": self.user, "public_keys": ring.public.to_json()}).json()["created"])

    def me(self) -> Json:
        return self.call("GET", "/api/me")

    def enroll(self, images: Sequence[object]) -> int:
        """Compute the embedding on this client from photos of the user (largest face of each).

        Refused when a photo's face matches a person this client already knows (a friend whose embedding it
        holds): enrolling with someone else's photo would claim their faces (see docs/threat-model.md).
        """
        if not images:
            raise InvalidInputError("enroll needs at least one image")
        ring = self.keyring  # wrong passphrase fails here, before anything is computed or sent
        self.sync()  # the friends' embeddings this client may hold, to refuse a claim on one of them
        vectors = []
        for src in images:
            image = load_upload(src)
            faces = [f for f in self.backend.detect(image) if f.embedding is not None]
            if not faces:
                label = src if isinstance(src, str | Path) else "an image"
                raise NoFaceError(f"no face found in `{label}`", help="use a photo where the face is clearly visible")
            largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
            vectors.append(np.asarray(largest.embedding, dtype=np.float32))
            self._refuse_known_face(vectors[-1], src)
        ring.enroll({self.backend.recognizer: np.stack(vectors)})
        self.call("POST", "/api/me/enrolled")
        self.sync_shares()
        return len(vectors)

    # ------------------------------------------------------------------ graph
    def befriend(self, other: str) -> str:
        """Ask `other` (or accept their request); shares follow the user's own rules."""
        self.keyring  # noqa: B018 - unlock first: a wrong passphrase changes nothing on the server
        state = str(self.call("POST", f"/api/friends/{other}")["state"])
        if state == "friends":
            self.sync_shares()
        return state

    def unfriend(self, other: str) -> bool:
        self.keyring  # noqa: B018
        changed = bool(self.call("DELETE", f"/api/friends/{other}")["changed"])
        self.sync_shares()
        return changed

    def follow(self, followee: str) -> str:
        return str(self.call("POST", f"/api/follows/{followee}")["state"])

    def approve_follower(self, follower: str) -> str:
        return str(self.call("POST", f"/api/followers/{follower}")["state"])

    def unfollow(self, followee: str) -> bool:
        return bool(self.call("DELETE", f"/api/follows/{followee}")["changed"])

    def remove_follower(self, follower: str) -> bool:
        return bool(self.call("DELETE", f"/api/followers/{follower}")["changed"])

    def graph(self) -> Json:
        return self.call("GET", "/api/graph")

    # ------------------------------------------------------------------ rules
    def verified_rules(self, owner: str, keys: PublicKeys) -> str | None:
        """`owner`'s rule text if its signature verifies under `keys` at the highest version the server
        accepted; None if there are none. A forged or rolled-back file raises (`CryptoError`)."""
        got = self.call("GET", f"/api/rules/{owner}")
        rules = got.get("rules")
        if rules is None:
            return None
        verify_rules(rules["text"], b64d(rules["signature"]), keys, owner=owner,
                     min_version=max(1, int(got.get("version") or 1)))
        return str(rules["text"])

    def own_level(self) -> str:
        """The user's sharing level from their own rules, verified under their own key (never a server column)."""
        try:
            text = self.verified_rules(self.user, self.keyring.public)
        except CryptoError:
            return "nobody"  # rules the client cannot verify never open sharing (fail closed)
        return "nobody" if text is None else sharing_level(text, self.user)

    def set_rules(self, text: str, name: str = "<rules>") -> str:
        """Validate against the server's graph, sign the next version on this client, store; returns the owner."""
        from mfmc.policy import Graph

        g = self.graph()
        graph = Graph(users=g["users"], friends=[tuple(p) for p in g["friends"]],
                      follows=[tuple(p) for p in g["follows"]])
        compiled = PolicySet.from_sources([(text, name)], graph=graph)  # raises RuleError (exit 2)
        owners = [p.owner for p in compiled]
        if len(owners) != 1:
            raise InvalidInputError(f"`{name}` must govern exactly one face", help="one `face NAME` per file")
        if owners[0] != self.user:
            raise InvalidInputError(f"`{name}` governs the face of `{owners[0]}`, not `{self.user}`")
        canonical = canonical_rules(text).decode("utf-8")
        version = int(self.call("GET", f"/api/rules/{self.user}")["version"]) + 1
        signature = sign_rules(canonical, self.keyring.keys, version=version)
        self.call("PUT", "/api/rules", json={"owner": self.user, "name": name, "text": canonical,
                                             "signature": b64e(signature), "version": version})
        self.sync_shares()
        return self.user

    # ------------------------------------------------------------------ sharing
    def sync_shares(self) -> None:
        """Make the server hold exactly the envelopes the user's own verified rules and friendships call for."""
        ring = self.keyring
        state = self.call("GET", "/api/me/sharing")
        keys = {f["name"]: PublicKeys.from_json(f["public_keys"]) for f in state["friends"]}
        friends = set(keys)
        level = self._level_from(state["rules"], int(state["version"]))
        wanted = friends if (state["enrolled"] and ring.own is not None and may_share(level)) else set()
        sent = {e["recipient"]: b64d(e["envelope"]) for e in state["sent"]}
        missing = [(f, keys[f]) for f in sorted(wanted) if not _is_current(sent.get(f), ring.own, ring.public, keys[f])]
        stale = sorted(set(sent) - wanted)
        if missing:  # a friend's relayed key rotation must move the pin before sealing to their new key
            self._apply_notices(self.call("GET", "/api/notices")["notices"], _report(), [])
        for _friend, pub in missing:
            try:
                envelope = ring.share_with(pub, level=level)
            except WrongKeyError:
                continue  # the server's key differs from the pinned one without a signed rotation: not shared
            self.call("PUT", "/api/envelopes", json={"envelope": b64e(envelope)})
        for friend in stale:
            self.call("POST", f"/api/envelopes/{friend}/revoke", json={"notice": b64e(ring.revoke(friend))})
        for other in list(ring.known()):  # forget users who are no longer friends
            if other not in friends:
                ring.drop(other)

    def _level_from(self, rules: Json | None, version: int) -> str:
        """The user's sharing level from their own rules, verified under their own key (fail closed: nobody)."""
        if rules is None:
            return "nobody"
        try:
            verify_rules(rules["text"], b64d(rules["signature"]), self.keyring.public, owner=self.user,
                         min_version=max(1, version))
        except CryptoError:
            return "nobody"  # rules the client cannot verify never open sharing
        return sharing_level(rules["text"], self.user)

    def sync(self, *, strict: bool = False) -> SyncReport:
        """Apply relayed notices, import envelopes; refused ones are reported (and raised with `strict`)."""
        ring = self.keyring
        done = _report()
        errors: list[CryptoError] = []
        inbox = self.call("GET", "/api/me/inbox")
        self._apply_notices(inbox["notices"], done, errors)
        keys = {f["name"]: f["public_keys"] for f in inbox["friends"]}
        for item in inbox["envelopes"]:
            owner = item["owner"]
            if owner not in keys:
                continue
            try:
                ring.import_envelope(b64d(item["envelope"]), PublicKeys.from_json(keys[owner]))
                done["imported"].append(owner)
            except CryptoError as err:
                done["refused"].append(owner)
                errors.append(err)
        for other in list(ring.known()):
            if other not in keys:
                ring.drop(other)
        self.sync_shares()  # e.g. a friendship the other side accepted since: share with them now
        if strict and errors:
            raise errors[0]
        return done

    def _apply_notices(self, notices: list[Json], done: SyncReport, errors: list[CryptoError]) -> None:
        if not notices:
            return
        ring = self.keyring
        for n in notices:
            blob, sender, kind = b64d(n["blob"]), n["sender"], n["kind"]
            try:
                if kind == ROTATION:
                    ring.accept_rotation(blob)
                    done["rotated"].append(sender)
                elif ring.apply_revocation(blob):
                    done["revoked"].append(sender)
            except MissingKeyError as err:
                if kind != ROTATION:  # a rotation of someone never pinned: trusted on first use later
                    done["refused"].append(sender)
                    errors.append(err)
            except CryptoError as err:
                done["refused"].append(sender)
                errors.append(err)
        self.call("POST", "/api/notices/ack", json={"ids": [int(n["id"]) for n in notices]})

    # ------------------------------------------------------------------ key rotation
    def rotate_keys(self) -> RotationResult:
        """Replace the key pair here, then have the server store the new public keys (see docs/platform.md)."""
        old = self._server_keys(self.user)
        ring = self.keyring
        pending = self.ring_dir / PENDING_ROTATION
        if pending.exists() and old == ring.public:
            pending.unlink()  # that rotation reached the server; this is a new one
        if pending.exists():
            notice = pending.read_bytes()
            if verify_rotation(notice, old) != ring.public:
                raise KeyringError(f"the unfinished key rotation of `{self.user}` does not match their keyring",
                                   help="restore the keyring from a backup")
        elif old != ring.public:
            raise WrongKeyError(f"the server holds another public key for `{self.user}` than their client",
                                help="compare fingerprints out of band; the server's copy may have been replaced")
        else:
            notice = ring.rotate_keys(self._passphrase(self.user), kdf=self._kdf)
            _write_atomic(pending, notice)
        new = ring.public
        rules_body = None
        got = self.call("GET", f"/api/rules/{self.user}") if pending.exists() else {"rules": None}
        rules = got.get("rules")
        version = None
        if rules is not None:
            try:
                verify_rules(rules["text"], b64d(rules["signature"]), old, owner=self.user,
                             min_version=max(1, int(got["version"])))
            except CryptoError:
                pass  # refused rules stay refused: the client never signs text the server may have altered
            else:
                version = int(got["version"]) + 1
                signature = sign_rules(rules["text"], ring.keys, version=version)
                rules_body = {"owner": self.user, "name": rules["name"], "text": rules["text"],
                              "signature": b64e(signature), "version": version}
        # no login: the notice, signed by the key the server holds, is the proof (a replay no longer matches)
        self.api.public("POST", f"/api/users/{self.user}/rotate", json={"notice": b64e(notice), "rules": rules_body})
        pending.unlink(missing_ok=True)
        self.sync_shares()
        reshared = tuple(sorted(e["recipient"] for e in self.call("GET", "/api/envelopes/sent")["envelopes"]))
        return RotationResult(self.user, old.fingerprint, new.fingerprint, reshared, version, (), ())

    def _refuse_known_face(self, embedding: np.ndarray, src: object) -> None:
        """Enrollment fails closed: a face within reach of another person this client knows is refused."""
        names, gallery = self.keyring.gallery(self.backend.recognizer)
        others = [k for k, name in enumerate(names) if name != self.user]
        if not others:
            return
        dist = self.backend.distance(embedding, gallery[others])
        reach = float(self.backend.threshold) * (1 + AMBIGUITY_MARGIN)
        k = int(np.argmin(dist))
        if float(dist[k]) < reach:
            label = src if isinstance(src, str | Path) else "an enrollment photo"
            raise InvalidInputError(f"the face in `{label}` matches `{names[others[k]]}`, whom `{self.user}`'s "
                                    "client knows: enrolling it would claim their faces",
                                    help="enroll with photos of yourself; if you are look-alikes, the owner of "
                                         "the face must confirm (see docs/threat-model.md)")

    # ------------------------------------------------------------------ upload
    def identify(self, faces: list[DetectedFace]) -> tuple[list[str | None], list[str]]:
        """Match faces to the user and to friends whose embeddings this client holds (greedy, one face each).

        Returns the owner of each face (None: unknown) and, for unknown faces, why."""
        if not faces:
            return [], []
        self.sync()
        names, gallery = self.keyring.gallery(self.backend.recognizer)
        if not names:
            why = (f"unknown: `{self.user}`'s client holds no embeddings (neither `{self.user}` nor a friend who "
                   "shares is enrolled: `mfmc enroll`)")
            return [None] * len(faces), [why] * len(faces)
        held = sorted(set(names))
        notes = [f"unknown: matches none of the {len(held)} people `{self.user}`'s client knows "
                 f"({', '.join(held)}); friends are known once enrolled with rules that are not `nobody`"] * len(faces)
        per_face: list[dict[str, float] | None] = []
        for i, face in enumerate(faces):
            if face.embedding is None:
                notes[i] = "unknown: no embedding could be computed for this face (too small or turned away)"
                per_face.append(None)
                continue
            dist = self.backend.distance(np.asarray(face.embedding, dtype=np.float32), gallery)
            best: dict[str, float] = {}
            for name, d in zip(names, dist.tolist(), strict=True):
                best[name] = min(best.get(name, np.inf), float(d))
            per_face.append(best)
        # fail closed: a face two known people could claim, or a person two faces claim, stays unknown (faked)
        threshold = float(self.backend.threshold)
        matches = match_faces(per_face, threshold, AMBIGUITY_MARGIN * threshold)
        for i, found in enumerate(matches):
            if found.owner is not None or found.note.startswith("ambiguous"):
                notes[i] = found.note
        return [found.owner for found in matches], notes

    def _owner_level(self, owner: str) -> str | None:
        """The sharing level of an identified owner from their rules, verified under the key this client trusts
        for them (own key, or the pinned key of a friend); None when they have no rules yet."""
        keys = self.keyring.public if owner == self.user else self.keyring.pinned(owner)
        if keys is None:
            return "nobody"
        try:
            text = self.verified_rules(owner, keys)
        except MfmcError as err:  # unverifiable or unreadable rules: fake the face on this client (fail closed)
            logging.getLogger(__name__).warning("rules of `%s` cannot be verified (%s: %s); their face is faked",
                                                owner, type(err).__name__, err.message)
            return "nobody"
        return None if text is None else sharing_level(text, owner)

    def upload(self, image: object, *, model: str = "rules", reveal: Iterable[str | int] = (),
               album: str | None = None) -> UploadResult:
        """Prepare the photo on this client (identify, fake what must not leave it real), then send it."""
        if model not in tuple(AccessModel):
            raise InvalidInputError(f"unknown access model `{model}`", help="use proxy, explicit or rules")
        reveal = list(reveal)
        if reveal and model != AccessModel.PROXY:
            raise InvalidInputError("`--reveal` only applies to the proxy model",
                                    help="with explicit use tags and consent; with rules the owners decide")
        raw = _raw_bytes(image)
        pixels = load_upload(image)
        self.keyring  # noqa: B018 - a wrong or missing passphrase stops the upload here: nothing is sent
        key = upload_key(raw, model, album, reveal)
        faces = self.backend.detect(pixels)
        by_name = any(isinstance(r, str) and not str(r).isdigit() for r in reveal)
        if model != AccessModel.PROXY or by_name:
            owners, notes = self.identify(faces)
        else:
            owners, notes = [None] * len(faces), [""] * len(faces)
        client_fake: list[bool] = []
        states: list[str] = []
        if model == AccessModel.PROXY:
            keep = _resolve_reveal(reveal, owners, len(faces))
            client_fake = [i not in keep for i in range(len(faces))]
            states = [FaceState.REVEALED_BY_PROXY if i in keep else FaceState.CLIENT_FAKED for i in range(len(faces))]
            owners = [owners[i] if i in keep else None for i in range(len(faces))]
        else:
            levels = {o: self._owner_level(o) for o in set(owners) if o is not None}
            for i, owner in enumerate(owners):
                # An explicit `nobody` is faked on the client; an owner without rules keeps their face (the
                # engine's `default nobody` then shows it to them alone), so no owner silently loses it.
                nobody = owner is not None and levels[owner] == "nobody"
                if nobody:
                    notes[i] = f"`{owner}`'s rules say `nobody`: faked on the uploader's client"
                elif owner is not None and levels[owner] is None:
                    notes[i] = f"`{owner}` has no rules yet: only `{owner}` sees this face"
                must_fake = nobody or (owner is None and model == AccessModel.RULES)
                client_fake.append(must_fake)
                states.append(FaceState.CLIENT_FAKED if must_fake else FaceState.SERVER)
                if must_fake:
                    owners[i] = None  # the identity is never associated with the photo (supplement C)
        # the faces that never leave this client real are faked together under the photo's rules, as by
        # `mfmc anonymize` (one analysis per photo; failing closed per face: `fake_many_or_block`)
        todo = [i for i in range(len(faces)) if client_fake[i]]
        base, reports = fake_many_or_block(self.backend, pixels, faces, todo,
                                           seeds={i: seed_of(key, i, "client") for i in todo})
        rows = []
        for i, face in enumerate(faces):
            rec = face.record()
            rows.append({"box": rec["box"], "score": rec["score"], "landmarks": rec["landmarks"], "owner": owners[i],
                         "state": str(states[i]),
                         "fake_verified": reports[i].verified if i in reports else None,
                         "fake_fallback": str(reports[i].fallback) if i in reports else None,
                         "fake_error": str(reports[i].report.get("error", ""))[:200] or None if i in reports else None})
        del pixels  # the original goes no further (proxy: every unrevealed face is faked in `base`)
        got = self.call("POST", "/api/photos", json={"image": b64e(encode_png(base)), "model": str(model),
                                                     "album": album, "faces": rows, "client_key": key})
        summaries = tuple(summary_of(f) for f in got["faces"])
        if got["created"]:
            summaries = tuple(replace(f, note=n) for f, n in zip(summaries, notes, strict=True))
        return UploadResult(int(got["photo"]), str(got["model"]), summaries, bool(got["created"]))

    # ------------------------------------------------------------------ photos, views, tags
    def photos(self) -> list[Json]:
        return list(self.call("GET", "/api/photos")["photos"])

    def view(self, photo_id: int) -> Json:
        return self.call("GET", f"/api/photos/{photo_id}")

    def faces(self, photo_id: int) -> list[FaceSummary]:
        return [summary_of(f) for f in self.call("GET", f"/api/photos/{photo_id}/faces")["faces"]]

    def render(self, photo_id: int, *, reasons: bool = True) -> ClientRendering:
        """The photo as this user sees it (the server renders only the caller's own view)."""
        response = self.api.call(self._keys, "GET", f"/api/photos/{photo_id}/render.png")
        image = decode_png(response.content)
        flags = json.loads(response.headers.get("x-mfmc-decisions", "[]"))
        if reasons:
            decisions = tuple(decision_of(d) for d in self.view(photo_id)["faces"])
        else:
            decisions = tuple(FaceDecision(int(i), bool(r), (), None) for i, r in flags)
        return ClientRendering(photo_id, self.user, image, decisions, response.headers.get("x-mfmc-version", ""),
                               int(response.headers.get("x-mfmc-generated", "0")))

    def explain(self, photo_id: int, index: int, viewer: str) -> FaceDecision:
        return decision_of(self.call("GET", f"/api/photos/{photo_id}/faces/{index}/explain",
                                     params={"viewer": viewer}))

    def audience(self, photo_id: int, index: int) -> Json:
        return self.call("GET", f"/api/photos/{photo_id}/faces/{index}/audience")

    def tag(self, photo_id: int, index: int, user: str) -> str:
        return str(self.call("POST", f"/api/photos/{photo_id}/faces/{index}/tag", json={"user": user})["consent"])

    def consent(self, photo_id: int, index: int, *, grant: bool = True) -> str:
        return str(self.call("POST", f"/api/photos/{photo_id}/faces/{index}/consent",
                             json={"grant": grant})["consent"])

    def untag(self, photo_id: int, index: int) -> None:
        self.call("DELETE", f"/api/photos/{photo_id}/faces/{index}/tag")

    def audit(self, photo_id: int | None = None) -> list[Json]:
        return list(self.call("GET", "/api/audit", params={"photo": photo_id} if photo_id is not None else None)
                    ["entries"])


def _write_atomic(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


def _report() -> SyncReport:
    return {"imported": [], "refused": [], "revoked": [], "rotated": []}


def _is_current(blob: bytes | None, own: EmbeddingSet | None, owner: PublicKeys, friend: PublicKeys) -> bool:
    if blob is None or own is None:
        return False
    head = envelope_header(blob)
    return (head.version == own.version and head.owner_key == owner.fingerprint
            and head.recipient_key == friend.fingerprint)


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


__all__ = ["Client", "ClientRendering", "Consent", "sharing_level", "upload_key"]
