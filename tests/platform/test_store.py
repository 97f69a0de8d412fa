"""The store on SQLite and PostgreSQL: versioned schema, transactions that cover files, idempotent writes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from mfmc.errors import StoreError, UnknownUserError
from mfmc.service import Platform
from mfmc.store import MIGRATIONS, SCHEMA_VERSION, Store
from mfmc.store import models as m


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_schema_is_versioned_and_reopening_migrates_nothing(platform: Platform) -> None:
    store = platform.store
    with store.engine.connect() as conn:
        rows = conn.execute(text("select version from schema_version order by version")).scalars().all()
    assert rows == [v for v, _, _ in MIGRATIONS] and rows[-1] == SCHEMA_VERSION
    again = Store(store.server_dir, store.url, schema=store.schema)
    assert again.found_version == SCHEMA_VERSION
    again.close()


def test_a_newer_schema_is_refused(platform: Platform) -> None:
    store = platform.store
    with store.engine.begin() as conn:
        conn.execute(text("insert into schema_version (version, description, applied_at) "
                          "values (999, 'future', current_timestamp)"))
    with pytest.raises(StoreError, match="newer than this mfmc"):
        Store(store.server_dir, store.url, schema=store.schema)


def test_users_and_graph_are_idempotent(platform: Platform) -> None:
    assert platform.add_user("alice") is True
    assert platform.add_user("alice") is False
    platform.add_user("bob")
    assert platform.friend("alice", "bob") is True
    assert platform.friend("bob", "alice") is False
    assert platform.follow("bob", "alice") is True
    graph = platform.graph()
    assert graph.friends("alice") == frozenset({"bob"})
    assert graph.followers("alice") == frozenset({"bob"})
    assert platform.unfriend("alice", "bob") is True
    assert platform.graph().friends("alice") == frozenset()
    with pytest.raises(UnknownUserError, match="unknown user `carol`"):
        platform.friend("alice", "carol")


def test_server_stores_public_keys_only(platform: Platform) -> None:
    platform.add_user("alice")
    with platform.store.read() as tx:
        user = tx.user("alice")
    assert user.public_keys and user.key_fingerprint
    assert "secret" not in user.public_keys and "private" not in user.public_keys


def test_a_failed_unit_of_work_leaves_no_rows_and_no_files(platform: Platform) -> None:
    store = platform.store
    before = _files(store.server_dir / "blobs") if (store.server_dir / "blobs").exists() else set()
    with pytest.raises(RuntimeError), store.tx() as tx:
        tx.add_user("zed")
        tx.put_blob(b"not really a png", "png")
        raise RuntimeError("crash mid-way")
    with store.read() as tx:
        assert tx.find_user("zed") is None
    after = _files(store.server_dir / "blobs") if (store.server_dir / "blobs").exists() else set()
    assert after == before


def test_a_failed_commit_removes_the_files_it_published(platform: Platform) -> None:
    store = platform.store
    platform.add_user("alice")
    with pytest.raises(StoreError), store.tx() as tx:
        name = tx.put_blob(b"blob of a doomed photo", "png")
        tx.session.add(m.User(name="alice"))  # unique violation at flush/commit
    assert not store.blobs.exists(name)


def test_concurrent_readers_and_a_writer(platform: Platform) -> None:
    for i in range(5):
        platform.add_user(f"u{i}")
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(30):
                with platform.store.read() as tx:
                    assert len(tx.users()) >= 5
        except BaseException as err:
            errors.append(err)

    def writer() -> None:
        try:
            for i in range(15):
                with platform.store.tx() as tx:
                    tx.audit("u0", "ping", detail={"i": i})
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with platform.store.read() as tx:
        assert sum(1 for e in tx.audit_log() if e.action == "ping") == 15


def test_sqlite_uses_wal(sqlite_platform: Platform) -> None:
    with sqlite_platform.store.engine.connect() as conn:
        assert conn.exec_driver_sql("pragma journal_mode").scalar() == "wal"


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot"):
        Store(tmp_path, "postgresql://nobody@127.0.0.1:1/none")
