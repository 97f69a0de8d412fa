"""Versioned schema: ordered migration functions recorded in the `schema_version` table.

Each migration runs in its own transaction (PostgreSQL has transactional DDL; on SQLite the `create ... if not
exists` statements make a rerun after a crash safe). A database newer than this code is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Index, inspect
from sqlmodel import SQLModel

from mfmc.errors import StoreError
from mfmc.store import models as m

Migration = tuple[int, str, Callable[[Connection], None]]


def _tables(*classes: type[SQLModel]) -> list:
    return [cls.__table__ for cls in classes]  # type: ignore[attr-defined]


def _v1_initial(conn: Connection) -> None:
    SQLModel.metadata.create_all(
        conn,
        tables=_tables(m.Meta, m.User, m.Friendship, m.Follow, m.RuleFile, m.Photo, m.Face, m.RenderedFake,
                       m.AuditEntry),
        checkfirst=True,
    )


def _v2_encrypted_sharing(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn, tables=_tables(m.SharedEmbedding, m.Notice), checkfirst=True)
    audit = m.AuditEntry.__table__  # type: ignore[attr-defined]
    existing = {ix["name"] for ix in inspect(conn).get_indexes("audit_log")}
    if "ix_audit_photo_actor" not in existing:
        Index("ix_audit_photo_actor", audit.c.photo_id, audit.c.actor).create(conn)


def _v3_vocabulary(conn: Connection) -> None:
    """The service's fail-closed block was recorded as `obfuscated` (too close to the swap's `obfuscate`); user
    names are unique regardless of case (keyring folders live on case-insensitive disks too)."""
    conn.exec_driver_sql("update faces set fake_fallback = 'block' where fake_fallback = 'obfuscated'")
    conn.exec_driver_sql("update rendered_fakes set fallback = 'block' where fallback = 'obfuscated'")
    conn.exec_driver_sql("update rendered_fakes set fallback = 'none' where fallback is null")
    conn.exec_driver_sql("create unique index if not exists ix_users_name_nocase on users (lower(name))")


MIGRATIONS: list[Migration] = [
    (1, "initial schema: users, graph, rules, photos, faces, fakes, audit", _v1_initial),
    (2, "ciphertexts of shared embeddings, client notices; audit index", _v2_encrypted_sharing),
    (3, "fallback vocabulary (`block`); case-insensitive unique user names", _v3_vocabulary),
]
LATEST = MIGRATIONS[-1][0]


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    row = conn.exec_driver_sql("select max(version) from schema_version").scalar()
    return int(row or 0)


def migrate(engine) -> int:
    """Bring the schema to LATEST; return the version found before migrating."""
    with engine.begin() as conn:
        SQLModel.metadata.create_all(conn, tables=_tables(m.SchemaVersion), checkfirst=True)
        found = current_version(conn)
    if found > LATEST:
        raise StoreError(
            f"the store has schema version {found}, newer than this mfmc ({LATEST})",
            help="upgrade mfmc before opening this data dir",
        )
    for version, description, step in MIGRATIONS:
        if version <= found:
            continue
        with engine.begin() as conn:
            step(conn)
            conn.execute(m.SchemaVersion.__table__.insert().values(  # type: ignore[attr-defined]
                version=version, description=description, applied_at=m.utcnow()))
    return found
