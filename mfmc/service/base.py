"""State and plumbing shared by the platform's parts: the data dir, the store, the face backend, the clients.

`Platform` (in `mfmc.service.platform`) is this base plus three concerns, each in its own module:
`identity` (users, keys, enrollment, sharing, rotation, signed rules), `upload` (the client side of an upload
and the explicit-authorization model) and `rendering` (decisions, per-viewer rendering, the fake cache).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mfmc.crypto.errors import MissingKeyError
from mfmc.crypto.keyring import Keyring
from mfmc.crypto.keys import KdfParams, PublicKeys
from mfmc.errors import GenerationError, MfmcError, StoreError
from mfmc.policy import Graph
from mfmc.service.backends import DetectedFace, FaceBackend, FakeOutcome
from mfmc.service.imaging import obfuscate
from mfmc.store import Store
from mfmc.store import models as m
from mfmc.store.repository import private_dir
from mfmc.vocabulary import Fallback

if TYPE_CHECKING:
    from mfmc.swap.patch import FacePatch

log = logging.getLogger(__name__)
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
    raise MissingKeyError(f"no passphrase for the keyring of `{name}`",
                          help=f"set {key} or MFMC_PASSPHRASE, or run in a terminal")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def seed_of(*parts: object) -> int:
    """A deterministic 32-bit seed for fakes (same upload, face and viewer -> same fake)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass
class CompiledPolicy:
    revision: int
    graph: Any
    policy: Any
    engine: Any
    refused: dict[str, str]  # owner -> why their rules were refused (unsigned, forged, invalid)


class PlatformBase:
    """One data dir: the server (store + blobs) and the users' clients (keyrings)."""

    def __init__(self, data_dir: str | Path | None = None, *, db_url: str | None = None,
                 backend: FaceBackend | None = None, passphrase: PassphraseProvider | None = None,
                 kdf: KdfParams | None = None, schema: str | None = None, create: bool = False) -> None:
        self.data_dir = Path(data_dir or os.environ.get("MFMC_DATA_DIR") or "mfmc-data")
        marker = self.data_dir / MARKER
        if not marker.exists():
            if not create:
                raise StoreError(f"no mfmc data dir at `{self.data_dir}`",
                                 help="create one with `mfmc init` (or pass --data-dir)")
            private_dir(self.data_dir)  # 0700: real faces and sealed keys live here
            _write_private(marker, json.dumps({"format": "mfmc-data", "version": 1}) + "\n")
        self.server_dir = self.data_dir / "server"
        self.clients_dir = self.data_dir / "clients"
        private_dir(self.clients_dir)
        # Only a data dir without keyrings may get a new database: a missing or empty one next to existing
        # keyrings (or blobs) is refused, never silently recreated.
        fresh = create and not any(self.clients_dir.iterdir())
        self.store = Store(self.server_dir, db_url or os.environ.get("MFMC_DB_URL") or None, schema=schema,
                           create=fresh)
        self._backend = backend
        self._passphrase: PassphraseProvider = passphrase or env_passphrase
        self._kdf = kdf
        self._rings: dict[str, Keyring] = {}
        self._policy: CompiledPolicy | None = None
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self._patches: OrderedDict[str, FacePatch] = OrderedDict()
        self._composed: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()  # (photo, version) -> image
        self._lock = threading.RLock()

    @property
    def backend(self) -> FaceBackend:
        if self._backend is None:
            from mfmc.service.backends import VisionBackend  # heavy: only when a real photo is processed

            self._backend = VisionBackend()
        return self._backend

    def close(self) -> None:
        self._rings.clear()
        self.store.close()

    def _kdf_params(self) -> KdfParams:
        return self._kdf or KdfParams.MODERATE

    def _ring_path(self, name: str) -> Path:
        return self.clients_dir / name

    def keyring(self, name: str) -> Keyring:
        """The unlocked keyring of `name` (the user's client); cached for this process."""
        ring = self._rings.get(name)
        if ring is None:
            ring = Keyring.open(self._ring_path(name), self._passphrase(name))
            self._rings[name] = ring
        return ring

    @staticmethod
    def _public_keys(user: m.User) -> PublicKeys:
        if not user.public_keys:
            raise MissingKeyError(f"`{user.name}` has no public keys on the server",
                                  help=f"add `{user.name}` again with `mfmc user add {user.name}`")
        return PublicKeys.from_json(user.public_keys)

    def users(self) -> list[str]:
        with self.store.read() as tx:
            return [u.name for u in tx.users()]

    def _require_users(self, *names: str) -> None:
        with self.store.read() as tx:
            for name in names:
                tx.user(name)

    def graph(self) -> Graph:
        with self.store.read() as tx:
            return Graph(users=[u.name for u in tx.users()], friends=tx.friendships(), follows=tx.follows())

    def _make_fake(self, image: np.ndarray, faces: list[DetectedFace], index: int, *, seed: int,
                   cache_key: str | None = None) -> FakeOutcome:
        """A fake of face `index`, or a hatched block if generation fails or changes nothing (fail closed).

        Only `MfmcError`s (e.g. `GenerationError`, a missing model) fall back; each fallback is logged with its
        error, kept in the outcome's report and counted by the caller (audit log, CLI summary). Anything else
        is a bug and propagates: the command fails and nothing is stored.
        """
        try:
            outcome = self.backend.fake(image, faces, index, seed=seed, cache_key=cache_key)
            if outcome.image.shape != image.shape or not np.any(outcome.image != image):
                raise GenerationError("the fake did not change the face")
            if not outcome.verified:
                raise GenerationError(f"the fake did not pass verification (fallback `{outcome.fallback}`)")
            return outcome
        except MfmcError as err:
            why = f"{type(err).__name__}: {err.message}"
            log.warning("face %d: no verified fake, using a block instead (%s)", index, why)
            others = [f.box for j, f in enumerate(faces) if j != index]
            return FakeOutcome(image=obfuscate(image, faces[index].box, others), verified=False,
                               fallback=Fallback.BLOCK, report={"error": why})
