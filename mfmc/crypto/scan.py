"""Leak scanner: does a blob (a database file, a log, a response) contain a private key or an embedding?

Used by the crypto tests and by the platform tests, which scan the server database and its files after a full
scenario. It looks for the common ways a secret ends up in storage: raw bytes (float32/float64, little and big
endian, also partial runs of an embedding), hex, base64 at any alignment, and for embeddings the decimal
renderings that JSON, `str(list)` or numpy printing produce. Findings are labels, never the secret values.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mfmc.crypto.keyring import Keyring
from mfmc.crypto.keys import KeyPair
from mfmc.crypto.sharing import EmbeddingSet

__all__ = ["contains_secret", "find_secrets", "scan_paths"]

_WINDOW = 4  # consecutive components that count as a partial binary leak
_TEXT_HITS = 3  # distinct components of one row whose decimal rendering must appear


def _byte_forms(data: bytes) -> list[tuple[str, bytes]]:
    forms = [("raw", data), ("hex", data.hex().encode()), ("HEX", data.hex().upper().encode())]
    for shift in range(3):
        body = data[shift:]
        body = body[: len(body) - len(body) % 3]
        if len(body) >= 9:
            forms.append(("base64", base64.b64encode(body)))
            forms.append(("base64url", base64.urlsafe_b64encode(body)))
    return forms


def _text_forms(x32: np.float32, x64: float) -> set[str]:
    forms = {
        repr(float(x32)),  # json.dumps(arr.tolist()), str(list)
        str(x32),  # shortest float32
        f"{float(x32):.8f}".rstrip("0"),  # numpy positional printing, round(x, 8)
        f"{float(x32):.7e}",  # numpy scientific printing
        np.format_float_scientific(x32),
        repr(x64),
    }
    return {f for f in forms if len(f.lstrip("-").replace("0.", "", 1).lstrip("0")) >= 6}


def _rows(label: str, value: Any) -> list[tuple[str, np.ndarray]]:
    arr = np.asarray(value)
    arr = arr.reshape(1, -1) if arr.ndim <= 1 else arr.reshape(-1, arr.shape[-1])
    return [(f"{label} row {i}", row) for i, row in enumerate(arr)]


def _expand(secrets: Iterable[Any]) -> tuple[list[tuple[str, bytes]], list[tuple[str, np.ndarray]]]:
    raw: list[tuple[str, bytes]] = []
    arrays: list[tuple[str, np.ndarray]] = []
    for i, secret in enumerate(secrets):
        if isinstance(secret, KeyPair):
            raw.extend((f"{name} of `{secret.user}`", data) for name, data in secret._secret_bytes())
        elif isinstance(secret, EmbeddingSet):
            for label, arr in secret._secret_arrays():
                arrays.extend(_rows(label, arr))
        elif isinstance(secret, Keyring):
            raw.extend((f"{name} of `{secret.user}`", data) for name, data in secret.keys._secret_bytes())
            for emb in [secret.own, *secret.known().values()]:
                if emb is not None:
                    for label, arr in emb._secret_arrays():
                        arrays.extend(_rows(label, arr))
        elif isinstance(secret, np.ndarray):
            arrays.extend(_rows(f"array #{i}", secret))
        elif isinstance(secret, bytes | bytearray | memoryview):
            raw.append((f"secret #{i}", bytes(secret)))
        elif isinstance(secret, str):
            raw.append((f"secret #{i}", secret.encode("utf-8")))
        else:
            raise TypeError(f"cannot scan for a secret of type `{type(secret).__name__}`")
    return raw, arrays


def find_secrets(blob: bytes | str, secrets: Iterable[Any]) -> list[str]:
    """Labels of every secret found in `blob` (e.g. "x25519 private key of `alice` (base64)")."""
    data = blob.encode("utf-8") if isinstance(blob, str) else bytes(blob)
    text = data.decode("latin-1")
    raw, arrays = _expand(secrets)
    found: list[str] = []
    for label, secret in raw:
        for form, pattern in _byte_forms(secret):
            if pattern and pattern in data:
                found.append(f"{label} ({form})")
                break
    for label, row in arrays:
        hit = _array_hit(data, text, row)
        if hit:
            found.append(f"{label} ({hit})")
    return found


def _array_hit(data: bytes, text: str, row: np.ndarray) -> str | None:
    r64 = row.astype(np.float64)
    r32 = row.astype(np.float32)
    for name, encoded in (
        ("float32", r32.astype("<f4")),
        ("float32 big-endian", r32.astype(">f4")),
        ("float64", r64.astype("<f8")),
        ("float64 big-endian", r64.astype(">f8")),
    ):
        full = encoded.tobytes()
        for form, pattern in _byte_forms(full):
            if pattern in data:
                return f"{name} {form}"
        width = min(_WINDOW, len(encoded))
        for start in range(0, len(encoded) - width + 1, width):
            if encoded[start : start + width].tobytes() in data:
                return f"{name} partial"
    hits = 0
    need = min(_TEXT_HITS, len(row))
    for x32, x64 in zip(r32, r64, strict=True):
        if any(form in text for form in _text_forms(x32, float(x64))):
            hits += 1
            if hits >= need:
                return "decimal text"
    return None


def contains_secret(blob: bytes | str, secrets: Iterable[Any]) -> bool:
    """True if any of `secrets` (KeyPair, Keyring, EmbeddingSet, ndarray, bytes, str) appears in `blob`."""
    return bool(find_secrets(blob, secrets))


def scan_paths(paths: Iterable[str | os.PathLike[str]], secrets: Iterable[Any]) -> list[str]:
    """Scan files and folders recursively (a SQLite file and its -wal/-journal); returns "path: label"."""
    secrets = list(secrets)
    findings: list[str] = []
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            findings.extend(f"{path}: {label}" for label in find_secrets(path.read_bytes(), secrets))
    return findings
