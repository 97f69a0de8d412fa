"""Fixtures for the platform tests: a Platform over the cheap grid backend, on SQLite or on PostgreSQL."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np
import pytest

from mfmc.cli.main import main
from mfmc.crypto.keys import KdfParams
from mfmc.service import Platform, backends
from mfmc.service.testing import GridBackend, grid_photo

PG_URLS = [os.environ.get("MFMC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
           "postgresql://root@127.0.0.1:5432/test"]


def _pg_url() -> tuple[str | None, str]:
    try:
        import psycopg
    except ImportError:
        return None, "psycopg is not installed"
    last = "no url"
    for url in PG_URLS:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return url, ""
        except Exception as err:
            last = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    return None, last


_PG = _pg_url()


def pg_url_or_skip() -> str:
    url, why = _PG
    if url is None:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 (database `test`) is unreachable: {why}")
    return url


def passphrase(name: str) -> str:
    return f"test passphrase of {name}"


def make_platform(root: Path, backend: GridBackend | None = None, *, db: str = "sqlite") -> Platform:
    if db == "postgres":
        url = pg_url_or_skip()
        schema = "mfmc_t_" + secrets.token_hex(6)
        p = Platform(root, db_url=url, schema=schema, backend=backend or GridBackend(), passphrase=passphrase,
                     kdf=KdfParams.FAST_INSECURE, create=True)
    else:
        p = Platform(root, backend=backend or GridBackend(), passphrase=passphrase, kdf=KdfParams.FAST_INSECURE,
                     create=True)
    return p


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def platform(tmp_path: Path, db: str):
    p = make_platform(tmp_path / "data", db=db)
    yield p
    p.store.drop_schema()
    p.close()


@pytest.fixture
def sqlite_platform(tmp_path: Path):
    p = make_platform(tmp_path / "data")
    yield p
    p.close()


def social(p: Platform, names: list[str], friends: list[tuple[str, str]], rules: dict[str, str] | None = None,
           *, enroll: bool = True) -> None:
    """Users `names` (person k = palette colour k), enrolled, befriended, with rules (default friends)."""
    for name in names:
        p.add_user(name)
    for a, b in friends:
        p.friend(a, b)
    for name in names:
        text = (rules or {}).get(name, f"face {name}\ndefault friends\n")
        if text:
            p.set_rules(text, f"{name}.mfmc")
    if enroll:
        for k, name in enumerate(names):
            p.enroll(name, [grid_photo([k], seed=100 + k)])


def crop(image: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
    x1, y1, x2, y2 = (int(v) for v in box)
    return image[y1:y2, x1:x2]


def cli_environment(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """The in-process CLI on `root/data` (working directory `root`), grid backend, fast test keys."""
    monkeypatch.setattr(backends, "VisionBackend", lambda *a, **k: GridBackend())
    monkeypatch.setenv("MFMC_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("MFMC_PASSPHRASE", "cli test passphrase")
    monkeypatch.delenv("MFMC_DB_URL", raising=False)
    monkeypatch.chdir(root)
    from mfmc.crypto.keys import KdfParams
    from mfmc.service import platform as platform_mod

    monkeypatch.setattr(platform_mod.Platform, "_kdf_params", lambda self: KdfParams.FAST_INSECURE)


def run_cli(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cli_environment(monkeypatch, tmp_path)
    return run_cli
