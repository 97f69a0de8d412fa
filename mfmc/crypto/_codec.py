"""Strict encodings shared by the crypto modules.

Every blob mfmc.crypto produces is canonical JSON (sorted keys, no spaces, ASCII) with canonical base64, and
every parser re-encodes what it read and compares: any changed byte is either an authentication failure or a
non-canonical encoding, never a silently accepted variant.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mfmc.crypto.errors import KeyringError, TamperedError

T = TypeVar("T")


def dumps(obj: Any) -> bytes:
    """Canonical JSON bytes: the only encoding we sign, seal or accept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def loads(blob: bytes | str, what: str, error: Callable[[str], Exception] | None = None) -> dict[str, Any]:
    """Parse canonical JSON or raise (default `TamperedError`); non-canonical input counts as tampered."""
    make = error or (lambda msg: TamperedError(msg, help="it was modified in storage or in transit"))
    raw = blob.encode() if isinstance(blob, str) else bytes(blob)
    try:
        obj = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise make(f"{what} is malformed") from None
    if not isinstance(obj, dict):
        raise make(f"{what} is malformed")
    try:
        canonical = dumps(obj)
    except ValueError:
        raise make(f"{what} is malformed") from None
    if canonical != raw:
        raise make(f"{what} is not in canonical form")
    return obj


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: object, what: str, error: Callable[[str], Exception] | None = None) -> bytes:
    """Decode canonical base64 only (rejects e.g. `QR==` for `QQ==`, which decode alike)."""
    make = error or (lambda msg: TamperedError(msg, help="it was modified in storage or in transit"))
    if not isinstance(text, str):
        raise make(f"{what} is malformed")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise make(f"{what} is malformed") from None
    if b64e(data) != text:
        raise make(f"{what} is not in canonical form")
    return data


def require(
    obj: dict[str, Any], key: str, kind: type[T], what: str, error: Callable[[str], Exception] | None = None
) -> T:
    """Fetch a typed field (bool is not an int here) or raise as malformed."""
    make = error or (lambda msg: TamperedError(msg, help="it was modified in storage or in transit"))
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise make(f"{what} is malformed")
    return value


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` with mode 0600 so that readers see the old or the new file, never a mix."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise KeyringError(f"cannot write `{path}`: {err.strerror or err}",
                           help="check free space and that the folder is writable") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError):  # a full or read-only disk: one clear error, the old file is intact
            raise KeyringError(f"cannot write `{path}`: {err.strerror or err}",
                               help="check free space and that the folder is writable") from None
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
