"""A small on-disk cache for things derived from model files (e.g. ONNX graphs converted from shipped weights).

Entries are keyed by what they are derived from: a name, the converter's version, and the source file's
recorded sha256, size and modification time. Changing or reinstalling the file, or a new converter version,
gives a new key; stale entries are simply never read again. Everything here is safe to delete at any time.
Each entry stores its payload's length and CRC-32: a corrupt or truncated entry is ignored and rebuilt, never used.
A cache that cannot be read or written (read-only home, full disk) costs only the rebuild: it is logged at
debug level and never fails the caller. An entry the caller cannot use (`use` raises) is rebuilt once.

The folder is `~/.cache/mfmc/models` unless the application's edge (CLI, server) configures another
(`mfmc.vision.settings.configure`, MFMC_CACHE_DIR) or calls `set_cache_dir`; None turns the disk cache off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from mfmc.vision import settings

_log = logging.getLogger(__name__)

T = TypeVar("T")

_state: dict[str, Path | None] = {"dir": settings.current().cache_dir}  # `configure` updates it
_lock = threading.Lock()


def set_cache_dir(path: str | Path | None) -> None:
    """Where derived model files go; None disables the disk cache (everything is then built in memory)."""
    _state["dir"] = None if path is None else Path(path)


def cache_dir() -> Path | None:
    return _state["dir"]


def entry_path(name: str, source: Path, *, version: str, content_hash: str = "") -> Path | None:
    """The cache file for `name` derived from `source` (None when the cache is off or the source is missing)."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        stat = Path(source).stat()
    except OSError:
        return None
    key = "\n".join((name, version, content_hash, str(Path(source).resolve()), str(stat.st_size),
                     str(stat.st_mtime_ns)))
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return folder / f"{name}-{digest}.bin"


def load_or_build(
    name: str,
    source: Path,
    *,
    version: str,
    build: Callable[[], bytes],
    use: Callable[[bytes], T],
    content_hash: str = "",
) -> T:
    """`use(bytes)` of the cached entry for `source`, or of `build()` (then stored for the next process).

    `use` turns the bytes into what the caller needs (e.g. an inference session); if it fails on a cached
    entry, the entry is rebuilt and replaced once.
    """
    path = entry_path(name, source, version=version, content_hash=content_hash)
    if path is not None:
        data = _read(path)
        if data is not None:
            try:
                return use(data)
            except Exception as error:  # a truncated or foreign entry: rebuild it below
                _log.warning("cache entry `%s` unusable (%s); rebuilding it", path, error)
    data = build()
    result = use(data)
    if path is not None:
        _write(path, data)
    return result


def read_entry(path: Path) -> bytes | None:
    """The payload of the entry at `path` (from `entry_path`), or None when it is missing or corrupt."""
    return _read(path)


def write_entry(path: Path, data: bytes) -> None:
    """Store `data` at `path` (from `entry_path`), atomically; an unwritable folder is logged at debug level."""
    _write(path, data)


_MAGIC = b"mfmc-cache-1\n"
_HEAD = len(_MAGIC) + 12  # then the payload's length (8 bytes) and CRC-32 (4 bytes), little-endian


def _frame(data: bytes) -> bytes:
    return _MAGIC + len(data).to_bytes(8, "little") + zlib.crc32(data).to_bytes(4, "little")


def _read(path: Path) -> bytes | None:
    """The payload of an entry, or None when it is missing, unreadable or corrupt: each entry carries its
    payload's length and CRC-32, so a truncated or damaged file is never used (it is rebuilt and replaced). The
    check guards against accidents (a full disk, a crash mid-write elsewhere, bit rot), not against someone who
    can write the cache folder: they could as well change the model files themselves."""
    try:
        with path.open("rb") as handle:  # head and payload read apart: no copy of a 100 MB payload
            head = handle.read(_HEAD)
            payload = handle.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        _log.debug("cache: cannot read `%s`: %s", path, error)
        return None
    if head != _frame(payload):
        _log.warning("cache entry `%s` is corrupt; rebuilding it", path)
        return None
    return payload


def _write(path: Path, data: bytes) -> None:
    """Atomic: written to a temporary file in the same folder, then renamed (readers never see half a file)."""
    with _lock:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(_frame(data))
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as error:
            _log.debug("cache: cannot write `%s`: %s", path, error)
