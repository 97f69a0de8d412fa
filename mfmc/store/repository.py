"""The repository: one `Store` per data dir, units of work (`Store.tx()`) that commit rows and files together.

Files (images, fake patches) are content-addressed under `<server dir>/blobs/`. Inside a unit of work they are
written to a temporary name; just before the database commit they are renamed into place, and if the commit
fails the new files are removed again. So a committed row never names a missing file, and an error mid-upload
leaves no photo behind (at worst an unreferenced blob, which `Store.collect_garbage()` removes).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import Session, SQLModel, create_engine, delete, select

from mfmc.errors import InvalidInputError, NotFoundError, StoreError, UnknownUserError
from mfmc.store import models as m
from mfmc.store.migrations import LATEST, current_version, migrate
from mfmc.vocabulary import check_user_name


def _is_db_id(value: int, *, lowest: int = 1) -> bool:
    """Whether `value` can be a row id at all (a 64-bit signed integer): huge ids are unknown, not a crash."""
    return isinstance(value, int) and lowest <= value < 2**63


def normalize_url(url: str) -> str:
    """Accept `postgresql://…`/`postgres://…` and use the psycopg 3 driver; pass other URLs through."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only: the data dir holds real faces and keys."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as err:
        raise StoreError(f"cannot create `{path}`: {err.strerror}",
                         help="check the permissions of its parent") from None
    return path


def tighten(root: Path) -> int:
    """Make every folder under `root` 0700 and every file 0600 (owner only); returns how many were changed."""
    changed = 0
    for path in [root, *root.rglob("*")]:
        try:
            mode = path.lstat().st_mode
            want = 0o700 if stat.S_ISDIR(mode) else 0o600 if stat.S_ISREG(mode) else None
            if want is not None and stat.S_IMODE(mode) & 0o077:
                path.chmod(stat.S_IMODE(mode) & want)
                changed += 1
        except FileNotFoundError:
            continue
        except OSError as err:
            raise StoreError(f"cannot make `{path}` private: {err.strerror}") from None
    return changed


def _reason(err: SQLAlchemyError) -> str:
    """The database's own words (first line), without the SQL statement SQLAlchemy appends."""
    return (str(err.orig) if isinstance(err, DBAPIError) else str(err)).splitlines()[0]


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # a malformed URL: show none of it (it may hold a password)
        return "<database url>"


class BlobStore:
    """Content-addressed files: `blobs/ab/abcdef….ext`, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}\.[a-z0-9]{1,8}", name):
            raise StoreError(f"invalid blob name `{name}`")
        return self.root / name[:2] / name

    def read(self, name: str) -> bytes:
        """The blob's bytes, verified against the hash in its name: a changed file is never used."""
        try:
            data = self.path(name).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"blob `{name}` is missing from the store",
                             help="the data dir was modified outside mfmc") from None
        except OSError as err:
            raise StoreError(f"cannot read blob `{name}`: {err.strerror or err}") from None
        if hashlib.sha256(data).hexdigest() != name.split(".", 1)[0]:
            raise StoreError(f"blob `{name}` is corrupted: its content does not match its hash",
                             help="the data dir was modified outside mfmc; restore it from a backup")
        return data

    def exists(self, name: str) -> bool:
        return self.path(name).exists()


class Tx:
    """A unit of work over the store: repository methods plus staged files."""

    def __init__(self, store: Store, session: Session, *, writable: bool) -> None:
        self.store = store
        self.session = session
        self.writable = writable
        self._staged: list[tuple[Path, Path]] = []  # (temp, final)

    # ---------------------------------------------------------------- files
    def put_blob(self, data: bytes, ext: str) -> str:
        if not self.writable:
            raise StoreError("internal: blob write in a read-only unit of work")
        name = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        final = self.store.blobs.path(name)
        if final.exists() or any(f == final for _, f in self._staged):
            return name
        private_dir(self.store.blobs.root)
        private_dir(final.parent)
        temp = final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")
        try:  # 0600: blobs hold real faces; on any failure (e.g. a full disk) the partial file is removed
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        except OSError as err:
            raise StoreError(f"cannot write to the store: {err.strerror or err}",
                             help="check free space and that the data dir is writable") from None
        self._staged.append((temp, final))
        return name

    def read_blob(self, name: str) -> bytes:
        for temp, final in self._staged:
            if final.name == name:
                return temp.read_bytes()
        return self.store.blobs.read(name)

    def _publish(self) -> list[Path]:
        created = []
        for temp, final in self._staged:
            if final.exists():
                temp.unlink(missing_ok=True)
            else:
                os.replace(temp, final)
                created.append(final)
        self._staged.clear()
        return created

    def _discard(self) -> None:
        for temp, _ in self._staged:
            temp.unlink(missing_ok=True)
        self._staged.clear()

    # ---------------------------------------------------------------- revision
    def revision(self) -> int:
        row = self.session.get(m.Meta, "revision")
        return int(row.value) if row else 0

    def bump_revision(self) -> None:
        row = self.session.get(m.Meta, "revision")
        if row is None:
            self.session.add(m.Meta(key="revision", value="1"))
        else:
            row.value = str(int(row.value) + 1)
            self.session.add(row)

    # ---------------------------------------------------------------- users
    def add_user(self, name: str, *, public_keys: str | None = None,
                 fingerprint: str | None = None) -> tuple[m.User, bool]:
        """Add a user; return (user, created). An existing user is returned unchanged (idempotent)."""
        check_user_name(name)
        existing = self.find_user(name)
        if existing is not None:
            return existing, False
        self.check_name_free(name)
        user = m.User(name=name, public_keys=public_keys, key_fingerprint=fingerprint)
        self.session.add(user)
        self.session.flush()
        self.bump_revision()
        return user, True

    def find_user(self, name: str) -> m.User | None:
        return self.session.exec(select(m.User).where(m.User.name == name)).first()

    def check_name_free(self, name: str) -> None:
        """Refuse a new user whose name equals an existing one regardless of case (`Alice` vs `alice`)."""
        other = self.session.exec(select(m.User).where(func.lower(m.User.name) == name.lower())).first()
        if other is not None and other.name != name:
            raise InvalidInputError(f"user name `{name}` clashes with the existing user `{other.name}`",
                                    help="user names are unique regardless of case; pick another name")

    def user(self, name: str) -> m.User:
        found = self.find_user(name)
        if found is None:
            names = [u.name for u in self.users()]
            import difflib

            close = difflib.get_close_matches(name, names, n=1)
            raise UnknownUserError(f"unknown user `{name}`",
                                   help=f"did you mean `{close[0]}`?" if close
                                   else "add it with `mfmc user add NAME`")
        return found

    def users(self) -> list[m.User]:
        return list(self.session.exec(select(m.User).order_by(m.User.name)))

    def set_user_keys(self, name: str, *, public_keys: str, fingerprint: str) -> None:
        user = self.user(name)
        user.public_keys, user.key_fingerprint = public_keys, fingerprint
        self.session.add(user)

    def mark_enrolled(self, name: str) -> None:
        user = self.user(name)
        user.enrolled = True
        self.session.add(user)

    # ---------------------------------------------------------------- graph
    def _friendship(self, a: str, b: str) -> tuple[tuple[str, str], m.Friendship | None]:
        self.user(a), self.user(b)
        x, y = sorted((a, b))
        q = select(m.Friendship).where(m.Friendship.user_a == x, m.Friendship.user_b == y)
        return (x, y), self.session.exec(q).first()

    def add_friendship(self, a: str, b: str) -> bool:
        if a == b:
            self.user(a)
            raise UnknownUserError(f"`{a}` cannot befriend themselves")
        (x, y), row = self._friendship(a, b)
        if row is not None:
            return False
        self.session.add(m.Friendship(user_a=x, user_b=y))
        self.bump_revision()
        return True

    def remove_friendship(self, a: str, b: str) -> bool:
        _, row = self._friendship(a, b)
        if row is None:
            return False
        self.session.delete(row)
        self.bump_revision()
        return True

    def friends_of(self, name: str) -> list[str]:
        rows = self.session.exec(
            select(m.Friendship).where((m.Friendship.user_a == name) | (m.Friendship.user_b == name)))
        return sorted(r.user_b if r.user_a == name else r.user_a for r in rows)

    def friendships(self) -> list[tuple[str, str]]:
        return [(r.user_a, r.user_b) for r in self.session.exec(select(m.Friendship))]

    def _follow(self, follower: str, followee: str) -> m.Follow | None:
        q = select(m.Follow).where(m.Follow.follower == follower, m.Follow.followee == followee)
        return self.session.exec(q).first()

    def add_follow(self, follower: str, followee: str) -> bool:
        self.user(follower), self.user(followee)
        if follower == followee:
            raise UnknownUserError(f"`{follower}` cannot follow themselves")
        if self._follow(follower, followee) is not None:
            return False
        self.session.add(m.Follow(follower=follower, followee=followee))
        self.bump_revision()
        return True

    def remove_follow(self, follower: str, followee: str) -> bool:
        row = self._follow(follower, followee)
        if row is None:
            return False
        self.session.delete(row)
        self.bump_revision()
        return True

    def follows(self) -> list[tuple[str, str]]:
        return [(r.follower, r.followee) for r in self.session.exec(select(m.Follow))]

    # ---------------------------------------------------------------- rules
    def set_rules(self, owner: str, name: str, text_: str, *, signature: bytes | None, level: str,
                  version: int = 1) -> None:
        self.user(owner)
        digest = hashlib.sha256(text_.encode()).hexdigest()
        row = self.session.exec(select(m.RuleFile).where(m.RuleFile.owner == owner)).first()
        if row is None:
            row = m.RuleFile(owner=owner, name=name, text=text_, sha256=digest, signature=signature, level=level,
                             version=version)
        else:
            row.name, row.text, row.sha256, row.signature, row.level = name, text_, digest, signature, level
            row.version = version
            row.updated_at = m.utcnow()
        self.session.add(row)
        self.bump_revision()

    def rules(self, owner: str) -> m.RuleFile | None:
        return self.session.exec(select(m.RuleFile).where(m.RuleFile.owner == owner)).first()

    def all_rules(self) -> list[m.RuleFile]:
        return list(self.session.exec(select(m.RuleFile).order_by(m.RuleFile.owner)))

    # ---------------------------------------------------------------- photos and faces
    def photo_by_key(self, upload_key: str) -> m.Photo | None:
        return self.session.exec(select(m.Photo).where(m.Photo.upload_key == upload_key)).first()

    def add_photo(self, photo: m.Photo, faces: list[m.Face]) -> m.Photo:
        self.session.add(photo)
        self.session.flush()
        for face in faces:
            face.photo_id = photo.id  # type: ignore[assignment]
            self.session.add(face)
        self.session.flush()
        return photo

    def photo(self, photo_id: int) -> m.Photo:
        found = self.session.get(m.Photo, photo_id) if _is_db_id(photo_id) else None
        if found is None:
            raise NotFoundError(f"unknown photo `{photo_id}`", help="list photos with `mfmc photos`")
        return found

    def photos(self) -> list[m.Photo]:
        return list(self.session.exec(select(m.Photo).order_by(m.Photo.id)))

    def faces(self, photo_id: int) -> list[m.Face]:
        return list(self.session.exec(select(m.Face).where(m.Face.photo_id == photo_id).order_by(m.Face.index)))

    def face(self, photo_id: int, index: int) -> m.Face:
        self.photo(photo_id)
        found = self.session.exec(select(m.Face).where(m.Face.photo_id == photo_id, m.Face.index == index)).first() \
            if _is_db_id(index, lowest=0) else None
        if found is None:
            raise NotFoundError(f"photo `{photo_id}` has no face `{index}`",
                                help="faces are numbered from 0, left to right as detected")
        return found

    def save(self, row: SQLModel) -> None:
        self.session.add(row)

    # ---------------------------------------------------------------- fakes
    def fake(self, photo_id: int, face_index: int, viewer: str, generation: int) -> m.RenderedFake | None:
        q = select(m.RenderedFake).where(
            m.RenderedFake.photo_id == photo_id, m.RenderedFake.face_index == face_index,
            m.RenderedFake.viewer == viewer, m.RenderedFake.generation == generation)
        return self.session.exec(q).first()

    def fakes(self, photo_id: int) -> list[m.RenderedFake]:
        return list(self.session.exec(select(m.RenderedFake).where(m.RenderedFake.photo_id == photo_id)))

    def add_fake(self, fake: m.RenderedFake) -> m.RenderedFake:
        self.session.add(fake)
        self.session.flush()
        return fake

    def drop_fakes(self, photo_id: int, face_index: int) -> int:
        result = self.session.exec(delete(m.RenderedFake).where(  # type: ignore[call-overload]
            m.RenderedFake.photo_id == photo_id, m.RenderedFake.face_index == face_index))
        return int(result.rowcount or 0)

    # ---------------------------------------------------------------- audit
    def audit(self, actor: str, action: str, *, photo_id: int | None = None, version: str | None = None,
              detail: dict | str = "") -> None:
        text_ = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True)
        self.session.add(m.AuditEntry(actor=actor, action=action, photo_id=photo_id, version=version,
                                      detail=text_))

    def audit_log(self, photo_id: int | None = None) -> list[m.AuditEntry]:
        q = select(m.AuditEntry).order_by(m.AuditEntry.id)
        if photo_id is not None:
            if not _is_db_id(photo_id):
                return []
            q = q.where(m.AuditEntry.photo_id == photo_id)
        return list(self.session.exec(q))

    # ---------------------------------------------------------------- shared embeddings (ciphertexts)
    def put_shared_embedding(self, owner: str, recipient: str, ciphertext: bytes) -> None:
        q = select(m.SharedEmbedding).where(m.SharedEmbedding.owner == owner,
                                            m.SharedEmbedding.recipient == recipient)
        row = self.session.exec(q).first()
        if row is None:
            row = m.SharedEmbedding(owner=owner, recipient=recipient, ciphertext=ciphertext)
        else:
            row.ciphertext, row.created_at = ciphertext, m.utcnow()
        self.session.add(row)

    def shared_embeddings_for(self, recipient: str) -> list[m.SharedEmbedding]:
        return list(self.session.exec(select(m.SharedEmbedding).where(m.SharedEmbedding.recipient == recipient)))

    def shared_embeddings_from(self, owner: str) -> list[m.SharedEmbedding]:
        return list(self.session.exec(select(m.SharedEmbedding).where(m.SharedEmbedding.owner == owner)))

    def delete_shared_embedding(self, owner: str, recipient: str) -> bool:
        result = self.session.exec(delete(m.SharedEmbedding).where(  # type: ignore[call-overload]
            m.SharedEmbedding.owner == owner, m.SharedEmbedding.recipient == recipient))
        return bool(result.rowcount)

    def delete_shared_embeddings_to(self, recipient: str) -> int:
        """Drop every envelope addressed to `recipient` (e.g. sealed to a key they rotated out)."""
        result = self.session.exec(delete(m.SharedEmbedding).where(  # type: ignore[call-overload]
            m.SharedEmbedding.recipient == recipient))
        return int(result.rowcount or 0)

    # ---------------------------------------------------------------- notices between clients
    def post_notice(self, sender: str, recipient: str, kind: str, blob: bytes) -> None:
        self.session.add(m.Notice(sender=sender, recipient=recipient, kind=kind, blob=blob))

    def notices_for(self, recipient: str) -> list[m.Notice]:
        q = select(m.Notice).where(m.Notice.recipient == recipient).order_by(m.Notice.id)
        return list(self.session.exec(q))

    def delete_notice(self, notice_id: int) -> None:
        self.session.exec(delete(m.Notice).where(m.Notice.id == notice_id))  # type: ignore[call-overload]

    def count(self, model: type) -> int:
        return int(self.session.exec(select(func.count()).select_from(model)).one())


class Store:
    """The server side of the platform: a database (SQLite file by default) plus a blob directory."""

    def __init__(self, server_dir: Path, url: str | None = None, *, schema: str | None = None,
                 create: bool = False) -> None:
        """Open the store; with `create` (only `mfmc init` and tests), make a new one.

        Without `create`, a missing or empty database is refused (never silently recreated while keyrings and
        blobs remain). A malformed URL is invalid input (exit 2); a database that cannot be opened or read is a
        `StoreError` (exit 1). Folders are created 0700 and files 0600: they hold real faces.
        """
        self.server_dir = Path(server_dir)
        self.blobs = BlobStore(self.server_dir / "blobs")
        self.url = normalize_url(url) if url else f"sqlite:///{self.server_dir / 'mfmc.db'}"
        self.schema = schema
        self._check_url()
        if create:
            private_dir(self.server_dir)
        elif not self.server_dir.is_dir():
            raise StoreError(f"the server folder `{self.server_dir}` is missing",
                             help="restore the data dir from a backup")
        if self.is_sqlite:
            self._check_sqlite_file(create)
        self.engine = self._make_engine()
        try:
            if not create:
                with self.engine.connect() as conn:
                    if current_version(conn) == 0:
                        raise StoreError(f"the database `{_redact(self.url)}` is empty",
                                         help="restore it from a backup; `mfmc init` creates a new data dir")
            self.found_version = migrate(self.engine)
        except SQLAlchemyError as err:
            self.engine.dispose()
            raise StoreError(f"cannot open the database `{_redact(self.url)}`: {_reason(err)}",
                             help="check --db / MFMC_DB_URL, and that the database file is intact") from None
        except StoreError:
            self.engine.dispose()
            raise

    def _check_url(self) -> None:
        try:
            url = make_url(self.url)
            if url.port is not None and not 0 < url.port < 65536:
                raise ValueError("port out of range")
        except (ArgumentError, ValueError):
            raise InvalidInputError(f"malformed database URL `{_redact(self.url)}`",
                                    help="use postgresql://user@host/db (or no --db for the SQLite file)") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise InvalidInputError(f"unsupported database `{url.get_backend_name()}`",
                                    help="use postgresql://user@host/db, or no --db for the SQLite file")

    def _check_sqlite_file(self, create: bool) -> None:
        path = make_url(self.url).database
        if not path or path == ":memory:":
            return
        db = Path(path)
        if db.exists():
            if not db.is_file():
                raise StoreError(f"the database `{db}` is not a file")
            if db.stat().st_size == 0 and not create:  # refused before SQLite would turn it into a database
                raise StoreError(f"the database `{db}` is empty",
                                 help="restore it from a backup; `mfmc init` creates a new data dir")
            return
        if not create:
            raise StoreError(f"the database `{db}` is missing",
                             help="restore it from a backup; `mfmc init` creates a new data dir")
        if self.blobs.root.exists() and any(p.is_file() for p in self.blobs.root.rglob("*")):
            raise StoreError(f"the database `{db}` is missing but the store still holds images",
                             help="restore the database from a backup, or move the data dir aside")
        try:  # created 0600 before SQLite opens it (its -wal and -shm files copy these permissions)
            os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as err:
            raise StoreError(f"cannot create the database `{db}`: {err.strerror}") from None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def _make_engine(self) -> Engine:
        if self.is_sqlite:
            engine = create_engine(self.url, connect_args={"timeout": 30, "check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn, _record) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("pragma journal_mode=wal")  # readers never block the writer
                cur.execute("pragma synchronous=normal")
                cur.execute("pragma foreign_keys=on")
                cur.execute("pragma busy_timeout=30000")
                cur.close()

            return engine
        args: dict[str, Any] = {}
        if self.schema:
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.schema):
                raise StoreError(f"invalid schema name `{self.schema}`")
            args["options"] = f"-csearch_path={self.schema}"
        try:
            engine = create_engine(self.url, connect_args=args, pool_pre_ping=True)
            if self.schema:
                with engine.begin() as conn:
                    conn.execute(text(f'create schema if not exists "{self.schema}"'))
        except (OperationalError, ImportError) as err:
            why = err.orig if isinstance(err, OperationalError) else err
            raise StoreError(f"cannot connect to `{_redact(self.url)}`: {why}",
                             help="check --db / MFMC_DB_URL") from None
        return engine

    @property
    def version(self) -> int:
        return LATEST

    @contextlib.contextmanager
    def tx(self) -> Iterator[Tx]:
        """A writing unit of work: commit rows and publish files together, or neither."""
        session = Session(self.engine, expire_on_commit=False)
        unit = Tx(self, session, writable=True)
        try:
            yield unit
            session.flush()
            created = unit._publish()
            try:
                session.commit()
            except BaseException:
                for path in created:
                    path.unlink(missing_ok=True)
                raise
        except IntegrityError as err:
            session.rollback()
            unit._discard()
            raise StoreError(f"conflicting change: {err.orig}", help="retry the command") from None
        except SQLAlchemyError as err:
            session.rollback()
            unit._discard()
            raise StoreError(f"database error: {_reason(err)}",
                             help="check free space and that the database is writable") from None
        except OSError as err:  # publishing a file failed (read-only or full disk): nothing was committed
            session.rollback()
            unit._discard()
            raise StoreError(f"cannot write to the store: {err.strerror or err}",
                             help="check free space and that the data dir is writable") from None
        except BaseException:
            session.rollback()
            unit._discard()
            raise
        finally:
            session.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only unit of work (never commits)."""
        session = Session(self.engine, expire_on_commit=False)
        try:
            yield Tx(self, session, writable=False)
        finally:
            session.close()  # releases the connection (rolled back) and detaches rows with their loaded values

    def make_private(self) -> int:
        """Folders 0700, files 0600 under the server dir (older data dirs had umask modes); returns the count
        changed. `mfmc init` runs it."""
        return tighten(self.server_dir) if self.server_dir.is_dir() else 0

    def collect_garbage(self, *, min_age_s: float = 3600.0) -> int:
        """Remove blobs and temp files no row refers to; return how many files were removed.

        Only files older than `min_age_s` are touched: a younger one may belong to a unit of work that is
        publishing right now (its file is renamed into place just before its rows commit).
        """
        if not self.blobs.root.exists():
            return 0
        with self.read() as tx:
            used = {p.image_blob for p in tx.session.exec(select(m.Photo))}
            used |= {f.blob for f in tx.session.exec(select(m.RenderedFake))}
        cutoff = time.time() - min_age_s
        removed = 0
        for path in self.blobs.root.rglob("*"):
            try:
                if path.is_file() and path.name not in used and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def drop_schema(self) -> None:
        """Tests: remove the PostgreSQL schema this store lives in."""
        if self.schema and not self.is_sqlite:
            with self.engine.begin() as conn:
                conn.execute(text(f'drop schema if exists "{self.schema}" cascade'))
        self.engine.dispose()

    def close(self) -> None:
        self.engine.dispose()
