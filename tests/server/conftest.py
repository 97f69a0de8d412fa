"""Fixtures for the server tests: a real `mfmc.server` behind uvicorn on a free 127.0.0.1 port, clients over HTTP.

The cheap deterministic grid backend stands in for the real models (the server's own code is what is tested).
PostgreSQL and Redis are the real services at 127.0.0.1:5432 / :6379; tests that need them skip with the reason
when a targeted connection check fails.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mfmc.client import Api, Client
from mfmc.client.embedded import serve_in_thread
from mfmc.crypto.keys import KdfParams
from mfmc.server.app import create_app
from mfmc.server.core import Server
from mfmc.server.settings import ServerSettings, open_server
from mfmc.service.testing import GridBackend, grid_photo
from tests.platform.conftest import pg_url_or_skip

REDIS_URL = "redis://127.0.0.1:6379/15"


def passphrase(name: str) -> str:
    return f"server test passphrase of {name}"


def redis_or_skip() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as err:
        pytest.skip(f"Redis at 127.0.0.1:6379 is unreachable: {err}")
    return REDIS_URL


@dataclass
class Deployment:
    """A running server (its object, for checks on the store) and its URL."""

    server: Server
    url: str
    data_dir: Path

    def api(self) -> Api:
        return Api.connect(self.url)

    def client(self, name: str, *, api: Api | None = None, backend: GridBackend | None = None) -> Client:
        return Client(api or self.api(), name, self.data_dir / "clients" / name, backend=backend or GridBackend(),
                      passphrase=passphrase, kdf=KdfParams.FAST_INSECURE)


@contextlib.contextmanager
def deployment(root: Path, *, db: str = "sqlite", redis_url: str | None = None, lease_s: float = 30.0,
               backend: GridBackend | None = None, max_body: int = 32 * 1024 * 1024,
               queue: str = "mfmc-fakes") -> Iterator[Deployment]:
    url = schema = None
    if db == "postgres":
        url, schema = pg_url_or_skip(), "mfmc_s_" + secrets.token_hex(6)
    settings = ServerSettings(data_dir=root, db_url=url, schema=schema, redis_url=redis_url, backend="grid",
                              job_lease_s=lease_s, job_timeout_s=60, create=True, queue=queue)
    server = open_server(settings, backend=backend or GridBackend())
    try:
        with serve_in_thread(create_app(server, audience="mfmc-test", max_body=max_body)) as base:
            yield Deployment(server, base, root)
    finally:
        server.store.drop_schema()
        server.close()


@pytest.fixture(scope="session")
def live() -> Iterator[Deployment]:
    """One server for the session (SQLite), shared by tests that use their own user names."""
    with tempfile.TemporaryDirectory(prefix="mfmc-server-") as tmp, deployment(Path(tmp) / "data") as dep:
        yield dep


_counter = iter(range(1_000_000))


@pytest.fixture
def people(live: Deployment):
    """Fresh users on the session server: `people("alice", "bob")` -> clients named alice_<n>, bob_<n>."""

    def make(*names: str, enroll: bool = True, rules: str = "default friends") -> dict[str, Client]:
        n = next(_counter)
        api = live.api()
        out = {}
        for k, name in enumerate(names):
            c = live.client(f"{name}_{n}", api=api)
            c.create()
            if rules:
                c.set_rules(f"face {c.user}\n{rules}\n", f"{c.user}.mfmc")
            if enroll:
                c.enroll([grid_photo([k], seed=100 + k)])
            out[name] = c
        return out

    return make


def befriend(a: Client, b: Client) -> None:
    """`a` asks, `b` accepts (and shares); `a`'s client shares on its next sync."""
    a.befriend(b.user)
    b.befriend(a.user)
    a.sync()
