"""Server settings: read once at the edge (`mfmc serve`, `mfmc worker`, the CLI's embedded server)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from mfmc.errors import StoreError
from mfmc.files import DATA_DIR_MARKER
from mfmc.server.core import Server
from mfmc.service.backends import DeferredBackend, FaceBackend, VisionBackend
from mfmc.store import Store
from mfmc.store.repository import private_dir

MARKER = DATA_DIR_MARKER  # `mfmc.files` refuses outputs below a folder holding it


@dataclass(frozen=True)
class ServerSettings:
    data_dir: Path  # holds `server/` (SQLite database unless db_url, and the blob store)
    db_url: str | None = None  # PostgreSQL by URL
    schema: str | None = None  # PostgreSQL schema (tests)
    redis_url: str | None = None  # fake jobs on Redis for `mfmc worker`s; None: made in the server process
    queue: str = "mfmc-fakes"  # the Redis queue's name (one per deployment)
    backend: str = "vision"  # "vision" (real models) or "grid" (cheap deterministic backend for tests/benchmarks)
    audience: str = "mfmc"  # names this deployment inside login signatures
    token_ttl_s: int = 900
    max_body_mb: int = 32
    job_lease_s: float = 30.0
    job_timeout_s: float = 120.0
    create: bool = False

    @property
    def server_dir(self) -> Path:
        return self.data_dir / "server"

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "data_dir": str(self.data_dir)})

    @classmethod
    def from_json(cls, text: str) -> ServerSettings:
        obj = json.loads(text)
        return cls(**{**obj, "data_dir": Path(obj["data_dir"])})


def make_backend(name: str) -> FaceBackend:
    if name == "grid":
        from mfmc.service.testing import GridBackend

        return GridBackend()
    if name.startswith("grid:") and name[5:].isdigit():
        from mfmc.service.testing import CostlyGrid

        return CostlyGrid(int(name[5:]))
    if name == "vision":
        return VisionBackend()
    raise StoreError(f"unknown face backend `{name}`",
                     help="use `vision` (default), or `grid` / `grid:MS` (tests, benchmarks)")


def lazy_backend(name: str) -> FaceBackend:
    """The backend `name` (`make_backend`), built on its first use: the real one loads models, so a server or
    worker builds it on its first fake, not when it starts."""
    return DeferredBackend(partial(make_backend, name))


def open_store(settings: ServerSettings) -> Store:
    """The data dir's store. With `create`, a missing data dir is made (0700) and a missing database created,
    but only while no client keyrings exist beside it: a lost database is never silently recreated."""
    marker = settings.data_dir / MARKER
    if not marker.exists():
        if not settings.create:
            raise StoreError(f"no mfmc data dir at `{settings.data_dir}`",
                             help="create one with `mfmc init` (or pass --data-dir)")
        private_dir(settings.data_dir)  # real faces and sealed keys live here
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"format": "mfmc-data", "version": 1}) + "\n")
    clients = settings.data_dir / "clients"
    fresh = settings.create and not (clients.is_dir() and any(clients.iterdir()))
    return Store(settings.server_dir, settings.db_url, schema=settings.schema, create=fresh)


def open_server(settings: ServerSettings, *, backend: FaceBackend | None = None) -> Server:
    """A `Server` for the settings: the store, the face backend (lazy) and the fake queue (Redis or in-process)."""
    store = open_store(settings)
    server = Server(store, backend or lazy_backend(settings.backend))
    if settings.redis_url:
        from mfmc.jobs.redis_queue import RedisQueue

        server.queue = RedisQueue(settings.redis_url, server.maker, lease_s=settings.job_lease_s,
                                  timeout_s=settings.job_timeout_s, queue=settings.queue)
    return server
