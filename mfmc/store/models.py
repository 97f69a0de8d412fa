"""SQLModel tables of the platform store (the server side of the paper's Fig. 2).

What is deliberately absent: plaintext face embeddings and private keys. Embeddings only reach the server as
ciphertexts addressed to one friend (`SharedEmbedding`); private keys never leave a client's keyring.
Images live as content-addressed files beside the database; rows hold their names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


class AccessModel(StrEnum):
    """How a photo's faces are decided (paper §3.3): by the uploader, by tags and consent, or by owners' rules."""

    PROXY = "proxy"
    EXPLICIT = "explicit"
    RULES = "rules"


class Consent(StrEnum):
    """The state of an explicit-model tag."""

    NONE = "none"
    PENDING = "pending"
    GRANTED = "granted"
    REFUSED = "refused"


class FaceState(StrEnum):
    """Where a face's pixels stand in the stored image."""

    SERVER = "server"  # real in the stored image; decided at render time
    CLIENT_FAKED = "client_faked"  # faked on the uploader's client before upload (unknown or `nobody`)
    REVEALED_BY_PROXY = "revealed_by_proxy"  # proxy model: the uploader kept it real


ACCESS_MODELS = tuple(AccessModel)


def utcnow() -> datetime:
    return datetime.now(UTC)


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"

    version: int = Field(primary_key=True)
    description: str
    applied_at: datetime = Field(default_factory=utcnow)


class Meta(SQLModel, table=True):
    """Small key/value facts: `revision` counts changes of the graph and rules (engine cache key)."""

    __tablename__ = "meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    public_keys: str | None = None  # `mfmc.crypto.PublicKeys.to_json()`: X25519 + Ed25519 public halves only
    key_fingerprint: str | None = Field(default=None, max_length=64)
    enrolled: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Friendship(SQLModel, table=True):
    """An undirected edge, stored once with `user_a < user_b`."""

    __tablename__ = "friendships"
    __table_args__ = (UniqueConstraint("user_a", "user_b"),)

    id: int | None = Field(default=None, primary_key=True)
    user_a: str = Field(foreign_key="users.name", index=True)
    user_b: str = Field(foreign_key="users.name", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Follow(SQLModel, table=True):
    __tablename__ = "follows"
    __table_args__ = (UniqueConstraint("follower", "followee"),)

    id: int | None = Field(default=None, primary_key=True)
    follower: str = Field(foreign_key="users.name", index=True)
    followee: str = Field(foreign_key="users.name", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class RuleFile(SQLModel, table=True):
    """One `.mfmc` file per owner: its text, its hash and the owner's signature over the text."""

    __tablename__ = "rule_files"

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(foreign_key="users.name", index=True, unique=True)
    name: str
    text: str
    sha256: str = Field(max_length=64)
    signature: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    version: int = 1  # the signed version; a lower one is refused (rollback)
    level: str = Field(default="nobody", max_length=24)  # sharing level: "nobody" when nothing can reveal
    updated_at: datetime = Field(default_factory=utcnow)


class Photo(SQLModel, table=True):
    __tablename__ = "photos"

    id: int | None = Field(default=None, primary_key=True)
    uploader: str = Field(foreign_key="users.name", index=True)
    album: str | None = None
    model: str = Field(max_length=16)  # proxy | explicit | rules
    image_blob: str  # proxy: the final image; explicit: the original; rules: original minus client fakes
    width: int
    height: int
    upload_key: str = Field(index=True, unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Face(SQLModel, table=True):
    __tablename__ = "faces"
    __table_args__ = (UniqueConstraint("photo_id", "index"),)

    id: int | None = Field(default=None, primary_key=True)
    photo_id: int = Field(foreign_key="photos.id", index=True)
    index: int
    box: str  # JSON [x1, y1, x2, y2] in pixels
    score: float = 0.0
    landmarks: str = "[]"  # JSON 5x[x, y]
    owner: str | None = Field(default=None, foreign_key="users.name")  # rules model: identified owner
    state: str = Field(default="server", max_length=20)
    tag: str | None = Field(default=None, foreign_key="users.name")  # explicit model
    consent: str = Field(default="none", max_length=10)
    generation: int = 0  # bumped when a face must be re-faked (untag)
    fake_verified: bool | None = None  # client-side fakes: did verification pass
    fake_fallback: str | None = None  # client-side fakes: a `mfmc.vocabulary.Fallback` ("block": no verified fake)


class RenderedFake(SQLModel, table=True):
    """A verified fake (or fail-closed obfuscation) for one face, shared or per viewer ("" = shared)."""

    __tablename__ = "rendered_fakes"
    __table_args__ = (UniqueConstraint("photo_id", "face_index", "viewer", "generation"),)

    id: int | None = Field(default=None, primary_key=True)
    photo_id: int = Field(foreign_key="photos.id", index=True)
    face_index: int
    viewer: str = ""
    generation: int = 0
    blob: str
    x: int
    y: int
    verified: bool
    fallback: str | None = None
    report: str = "{}"
    created_at: datetime = Field(default_factory=utcnow)


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    actor: str
    action: str = Field(max_length=24)
    photo_id: int | None = None
    version: str | None = None  # for renders: which faces were real, which fake ids were composed
    detail: str = ""


class SharedEmbedding(SQLModel, table=True):
    """An owner's embedding encrypted to one friend's public key; the server cannot read it."""

    __tablename__ = "shared_embeddings"
    __table_args__ = (UniqueConstraint("owner", "recipient"),)

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(foreign_key="users.name", index=True)
    recipient: str = Field(foreign_key="users.name", index=True)
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Notice(SQLModel, table=True):
    """A signed message from one client to another, relayed by the server (e.g. an embedding revocation)."""

    __tablename__ = "notices"

    id: int | None = Field(default=None, primary_key=True)
    recipient: str = Field(foreign_key="users.name", index=True)
    sender: str = Field(foreign_key="users.name")
    kind: str = Field(max_length=24)
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
