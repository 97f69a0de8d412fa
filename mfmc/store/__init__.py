"""The platform store: SQLModel tables and a repository over SQLite (default) or PostgreSQL (by URL).

```python
store = Store(Path("mfmc-data/server"))                     # SQLite file, WAL mode
store = Store(path, "postgresql://postgres@127.0.0.1/test")  # PostgreSQL via psycopg 3
with store.tx() as tx:                                       # rows and files commit together
    tx.add_user("alice")
    name = tx.put_blob(png_bytes, "png")
```
"""

from mfmc.store import models
from mfmc.store.migrations import LATEST as SCHEMA_VERSION
from mfmc.store.migrations import MIGRATIONS
from mfmc.store.models import (
    AuditEntry,
    Face,
    Follow,
    Friendship,
    Notice,
    Photo,
    RenderedFake,
    RuleFile,
    SharedEmbedding,
    User,
)
from mfmc.store.repository import BlobStore, Store, Tx, normalize_url

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AuditEntry",
    "BlobStore",
    "Face",
    "Follow",
    "Friendship",
    "Notice",
    "Photo",
    "RenderedFake",
    "RuleFile",
    "SharedEmbedding",
    "Store",
    "Tx",
    "User",
    "models",
    "normalize_url",
]
