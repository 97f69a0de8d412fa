"""Fixtures: three users' keyrings (cheap argon2id parameters), each with an enrolled embedding."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfmc.crypto import Keyring
from tests.crypto.helpers import FAST, vectors


@pytest.fixture
def ring(tmp_path: Path):
    def make(user: str, passphrase: str | None = None) -> Keyring:
        return Keyring.create(tmp_path / user, user, passphrase or f"{user} passphrase", kdf=FAST)

    return make


@pytest.fixture
def alice(ring) -> Keyring:
    r = ring("alice")
    r.enroll(vectors(1))
    return r


@pytest.fixture
def bob(ring) -> Keyring:
    r = ring("bob")
    r.enroll(vectors(2))
    return r


@pytest.fixture
def carol(ring) -> Keyring:
    r = ring("carol")
    r.enroll(vectors(3))
    return r
