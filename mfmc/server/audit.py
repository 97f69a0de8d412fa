"""The view log: every render is recorded (viewer, photo, version), written in small batches off the request path.

A render appends to an in-memory batch; a background thread writes the batch in one transaction every
`interval_s` (or at once when `limit` entries wait), and `flush()` writes what is pending synchronously (the
server flushes before answering an audit query and on close). A crash loses at most the last interval's view
records, never a photo, a rule or a decision.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime

from mfmc.errors import MfmcError
from mfmc.store import Store
from mfmc.store import models as m

log = logging.getLogger("mfmc.server")


class ViewLog:
    def __init__(self, store: Store, *, interval_s: float = 0.2, limit: int = 256) -> None:
        self.store = store
        self.interval_s = interval_s
        self.limit = limit
        self._pending: list[tuple[str, int, str, dict[str, object], datetime]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="mfmc-view-log", daemon=True)
        self._thread.start()

    def add(self, viewer: str, photo_id: int, version: str, detail: dict[str, object]) -> None:
        with self._lock:  # rows are built when written: the request path only appends a tuple
            self._pending.append((viewer, photo_id, version, detail, m.utcnow()))
            full = len(self._pending) >= self.limit
        if full:
            self._wake.set()

    def flush(self) -> None:
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                with self.store.tx() as tx:
                    tx.session.add_all([m.AuditEntry(at=at, actor=viewer, action="view", photo_id=photo_id,
                                                     version=version, detail=json.dumps(detail, sort_keys=True))
                                        for viewer, photo_id, version, detail, at in batch])
            except MfmcError as err:  # keep them for the next try; say so
                log.error("view log: %d entries not written yet: %s", len(batch), err.message)
                with self._lock:
                    self._pending[:0] = batch

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()
