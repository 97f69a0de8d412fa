"""`Platform`: one data dir's server and its users' clients in one process, wired together over HTTP.

The roles are separate objects: a `mfmc.server.Server` (the store behind the HTTP API; it holds no private key,
passphrase or plaintext embedding) and one `mfmc.client.Client` per user (keyring, detection, identification,
client-side fakes, signing), which talks to the server only through HTTP requests. `Platform` is the convenience
the CLI, the demo and the tests use: it runs the server in this process (an in-process ASGI transport, no
socket) or connects to a remote one (`server_url`), and acts as whichever user a call names. Each method says
which user's client acts; that user's keyring is unlocked with the passphrase provider.

```python
with Platform("mfmc-data", create=True, passphrase=lambda user: "…") as p:
    p.add_user("alice"); p.add_user("bob"); p.friend("alice", "bob")   # both clients: request + accept
    p.enroll("alice", ["alice.jpg"])
    p.set_rules(open("alice.mfmc").read(), "alice.mfmc")               # signed by alice's client
    up = p.upload("party.jpg", "bob", model="rules")                   # bob's client, then one POST
    view = p.render(up.photo_id, viewer="carol")                       # carol's own view, over HTTP
```
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from mfmc.client.api import Api
from mfmc.client.client import Client, _raw_bytes, upload_key
from mfmc.crypto.errors import MissingKeyError
from mfmc.crypto.keyring import Keyring
from mfmc.crypto.keys import KdfParams
from mfmc.errors import InvalidInputError, MfmcError, StoreError
from mfmc.policy import Graph, PolicySet
from mfmc.service.backends import DeferredBackend, FaceBackend
from mfmc.service.records import FaceDecision, FaceSummary, Rendering, RotationResult, UploadResult
from mfmc.store import models as m

PassphraseProvider = Callable[[str], str]

__all__ = ["FaceDecision", "FaceSummary", "Platform", "Rendering", "RotationResult", "UploadResult",
           "no_passphrase"]


def no_passphrase(name: str) -> str:
    raise MissingKeyError(f"no passphrase for the keyring of `{name}`",
                          help=f"set MFMC_PASSPHRASE_{name.upper()} or MFMC_PASSPHRASE, or run in a terminal")


class Platform:
    """A data dir (`<data>/clients/<user>/` keyrings) and a server: embedded (default) or at `server_url`."""

    def __init__(self, data_dir: str | Path, *, db_url: str | None = None, backend: FaceBackend | None = None,
                 passphrase: PassphraseProvider | None = None, kdf: KdfParams | None = None,
                 schema: str | None = None, create: bool = False, server_url: str | None = None,
                 redis_url: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.clients_dir = self.data_dir / "clients"
        self.server_dir = self.data_dir / "server"
        self._backend = backend
        self._passphrase: PassphraseProvider = passphrase or no_passphrase
        self._kdf = kdf
        self._clients: dict[str, Client] = {}
        self.server = None
        if server_url:
            self.api = Api.connect(server_url)
        else:
            from mfmc.client.embedded import embedded_api
            from mfmc.server.app import create_app
            from mfmc.server.settings import ServerSettings, open_server

            settings = ServerSettings(data_dir=self.data_dir, db_url=db_url, schema=schema, redis_url=redis_url,
                                      create=create)
            self.server = open_server(settings, backend=DeferredBackend(lambda: self.backend))  # the clients' one
            self.api = embedded_api(create_app(self.server))
        from mfmc.store.repository import private_dir

        if create or self.data_dir.exists():
            private_dir(self.clients_dir)

    # ------------------------------------------------------------------ plumbing
    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._clients.clear()
        self.api.close()
        if self.server is not None:
            self.server.close()

    @property
    def store(self):  # -> mfmc.store.Store (embedded server only: tests and operator tools)
        if self.server is None:
            raise StoreError("the store is on the remote server", help="run this on the server's machine")
        return self.server.store

    @property
    def backend(self) -> FaceBackend:
        if self._backend is None:
            from mfmc.service import backends  # heavy: only when a real photo is processed

            self._backend = backends.VisionBackend()
        return self._backend

    def _kdf_params(self) -> KdfParams:
        return self._kdf or KdfParams.MODERATE

    def client(self, name: str) -> Client:
        """The client of `name` (their keyring under `<data>/clients/<name>/`)."""
        found = self._clients.get(name)
        if found is None:
            found = Client(self.api, name, self.clients_dir / name, backend=lambda: self.backend,
                           passphrase=self._passphrase, kdf=self._kdf_params())
            self._clients[name] = found
        return found

    def keyring(self, name: str) -> Keyring:
        return self.client(name).keyring

    def _operator(self) -> Client:
        """Any registered user's client that can log in (listing calls need a login, not a particular user)."""
        for name in sorted(self._clients):
            if self._clients[name]._ring is not None:
                return self._clients[name]
        for path in sorted(self.clients_dir.iterdir()) if self.clients_dir.is_dir() else []:
            try:
                client = self.client(path.name)
                client.keyring  # noqa: B018
                return client
            except MfmcError:
                continue
        raise MissingKeyError("no user's keyring can be unlocked here", help="set MFMC_PASSPHRASE")

    # ------------------------------------------------------------------ users, enrollment, graph
    def add_user(self, name: str) -> bool:
        """Create `name`'s keyring on their client and register the public keys (idempotent: False if known)."""
        return self.client(name).create()

    def users(self) -> list[str]:
        if self.server is not None:
            return self.server.users()
        return list(self._operator().call("GET", "/api/users")["users"])

    def graph(self) -> Graph:
        g = self._operator().graph() if self.server is None else None
        if g is None:
            users, friends, follows = self.server.graph_lists()  # type: ignore[union-attr]
            return Graph(users=users, friends=friends, follows=follows)
        return Graph(users=g["users"], friends=[tuple(p) for p in g["friends"]],
                     follows=[tuple(p) for p in g["follows"]])

    def enroll(self, name: str, images: Sequence[object]) -> int:
        return self.client(name).enroll(images)

    def friend(self, a: str, b: str) -> bool:
        """`a`'s client asks, `b`'s client accepts (both keyrings are unlocked: a wrong passphrase changes
        nothing). True if they became friends now."""
        ca, cb = self.client(a), self.client(b)
        ca.keyring, cb.keyring  # noqa: B018
        if ca.befriend(b) == "already friends":
            return False
        accepted = cb.befriend(a) == "friends"
        ca.sync_shares()  # `a` asked before `b` accepted: `a`'s client seals its embedding to `b` now
        return accepted

    def unfriend(self, a: str, b: str) -> bool:
        """`a` ends the friendship; both clients revoke the embeddings they shared (both keyrings are unlocked
        first: a wrong passphrase changes nothing)."""
        ca, cb = self.client(a), self.client(b)
        ca.keyring, cb.keyring  # noqa: B018
        changed = ca.unfriend(b)
        cb.sync_shares()
        return changed

    def follow(self, follower: str, followee: str) -> bool:
        """`follower` asks, `followee` approves."""
        if self.client(follower).follow(followee) == "already follows":
            return False
        return self.client(followee).approve_follower(follower) == "follows"

    def unfollow(self, follower: str, followee: str) -> bool:
        return self.client(follower).unfollow(followee)

    # ------------------------------------------------------------------ sharing and keys
    def sync_shares(self, owner: str) -> None:
        self.client(owner).sync_shares()

    def client_sync(self, name: str, *, strict: bool = False) -> dict[str, list[str]]:
        return self.client(name).sync(strict=strict)

    def rotate_keys(self, name: str) -> RotationResult:
        """`name`'s client rotates; then every friend whose keyring can be unlocked here syncs at once."""
        res = self.client(name).rotate_keys()
        synced: list[str] = []
        waiting: list[str] = []
        for friend in self.client(name).me()["friends"]:
            try:
                self.client(friend).sync()
                synced.append(friend)
            except MfmcError:  # e.g. their keyring cannot be unlocked here; they catch up on their next sync
                waiting.append(friend)
        return RotationResult(res.user, res.old_fingerprint, res.new_fingerprint, res.reshared, res.rules_version,
                              tuple(synced), tuple(waiting))

    # ------------------------------------------------------------------ rules
    def set_rules(self, text: str, name: str = "<rules>") -> str:
        """Sign and store a rule file with its owner's client (the file's `face` line names the owner)."""
        owners = [p.owner for p in PolicySet.from_sources([(text, name)], graph=self.graph())]
        if len(owners) != 1:
            raise InvalidInputError(f"`{name}` must govern exactly one face", help="one `face NAME` per file")
        return self.client(owners[0]).set_rules(text, name)

    def set_rules_many(self, sources: Sequence[tuple[str, str]]) -> list[str]:
        """Several `(text, file name)` rule files, all or none: every file is compiled first (every error of
        every file; one owner in two files names both files), every owner's keyring is unlocked (a wrong or
        missing passphrase raises), and only then does each owner's client sign and store its file."""
        if not sources:
            raise InvalidInputError("no rule files given")
        by_file = {p.path: p.owner for p in PolicySet.from_sources(list(sources), graph=self.graph())}
        owners = []
        for _, name in sources:
            if name not in by_file:
                raise InvalidInputError(f"`{name}` must govern exactly one face", help="one `face NAME` per file")
            owners.append(by_file[name])
        for owner in owners:
            self.client(owner).keyring  # noqa: B018 - unlock every client before anything is stored
        return [self.client(owner).set_rules(text, name) for owner, (text, name) in zip(owners, sources, strict=True)]

    def store_unsigned_rules(self, owner: str, text: str, *, signature: bytes | None = None) -> None:
        """What a compromised server could write: rules it did not get from the owner's client (for tests)."""
        with self.store.tx() as tx:
            row = tx.rules(owner)
            tx.set_rules(owner, "<server>", text, signature=signature, level="public",
                         version=row.version if row else 1)

    # ------------------------------------------------------------------ photos
    def upload(self, image: object, uploader: str, *, model: str = "rules", reveal: Iterable[str | int] = (),
               album: str | None = None) -> UploadResult:
        return self.client(uploader).upload(image, model=model, reveal=reveal, album=album)

    def _uploader(self, photo_id: int) -> str:
        if self.server is not None:
            with self.store.read() as tx:
                return tx.photo(photo_id).uploader
        for p in self._operator().photos():
            if int(p["id"]) == photo_id:
                return str(p["uploader"])
        raise StoreError(f"unknown photo `{photo_id}`", help="list photos with `mfmc photos`")

    def tag(self, photo_id: int, index: int, user: str, *, by: str | None = None) -> str:
        """Tag as `by` (default: the uploader, the only one allowed)."""
        return self.client(by or self._uploader(photo_id)).tag(photo_id, index, user)

    def consent(self, photo_id: int, index: int, user: str, *, grant: bool = True) -> str:
        """`user`'s client grants or refuses (only the tagged user may)."""
        return self.client(user).consent(photo_id, index, grant=grant)

    def untag(self, photo_id: int, index: int, *, by: str | None = None) -> None:
        self.client(by or self._uploader(photo_id)).untag(photo_id, index)

    def render(self, photo_id: int, viewer: str, *, audit: bool = True) -> Rendering:
        """`viewer`'s own view, rendered by the server for `viewer`'s login."""
        out = self.client(viewer).render(photo_id)
        return Rendering(photo_id, viewer, out.image, out.decisions, out.version, out.generated)

    def decide(self, photo_id: int, viewer: str) -> list[FaceDecision]:
        from mfmc.client.client import decision_of

        return [decision_of(d) for d in self.client(viewer).view(photo_id)["faces"]]

    def decisions_for(self, photo_id: int, viewers: Sequence[str]) -> dict[str, list[bool]]:
        """Operator view (embedded server only): reveal flags for many viewers at once."""
        if self.server is None:
            raise StoreError("deciding for other viewers needs the server's machine")
        return self.server.decisions_for(photo_id, viewers)

    def photos(self) -> list:  # PhotoInfo records (id, uploader, album, model, width, height, faces)
        if self.server is not None:
            return self.server.photos()
        from mfmc.server.core import PhotoInfo

        return [PhotoInfo(int(p["id"]), p["uploader"], p["album"], p["model"], int(p["width"]), int(p["height"]),
                          int(p["faces"])) for p in self._operator().photos()]

    def faces(self, photo_id: int) -> list[FaceSummary]:
        return self.client(self._uploader(photo_id)).faces(photo_id)

    def find_photo(self, ref: str | int) -> int:
        """The id of an uploaded photo from its id or from the image file that was uploaded (by content)."""
        text = str(ref).strip()
        if text.isdigit():
            photo_id = int(text)
            self._uploader(photo_id)
            return photo_id
        if self.server is None:
            raise InvalidInputError("with --server, give the photo's id", help="list photos with `mfmc photos`")
        raw = _raw_bytes(text)
        with self.store.read() as tx:
            found = [ph.id or 0 for ph in tx.photos() if ph.upload_key == hashlib.sha256(
                f"{ph.uploader}\0{upload_key(raw, ph.model, ph.album, ())}".encode()).hexdigest()]
        if not found:
            raise InvalidInputError(f"no uploaded photo has the content of `{text}`",
                                    help="upload it first (`mfmc upload`), or give its id (`mfmc photos`)")
        if len(found) > 1:
            raise InvalidInputError(f"`{text}` was uploaded {len(found)} times (photos "
                                    f"{', '.join(map(str, found))})", help="give the photo's id")
        return found[0]

    def audit_log(self, photo_id: int | None = None) -> list[m.AuditEntry]:
        """The whole audit log (operator view, embedded server only); users see theirs with `Client.audit`."""
        if self.server is not None:
            self.server.views.flush()
        with self.store.read() as tx:
            return tx.audit_log(photo_id)

    # ------------------------------------------------------------------ caches (benchmarks)
    def clear_caches(self, what: str = "all") -> None:
        """Embedded server: drop warm renders (`views`), composed images (`composed`) or every cache (`all`)."""
        if self.server is not None:
            self.server.clear_caches(what)

