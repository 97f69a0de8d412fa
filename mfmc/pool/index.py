"""The on-disk pool format (versioned) and its in-memory form.

A pool is a directory::

    index.json       {"format": "mfmc-pool", "version": 1, "name", "recognizers", "entries", "rejected", ...}
    embeddings.npz   one (N, D) float32 array per recognizer, rows in the order of "entries"
    attributes.npz   parallel arrays: age, gender, pose, expression cues, quality, landmarks in crop coordinates
    aligned.npz      (N, 64, 64, 3) uint8 five-point-aligned faces for the image metrics (read on first use)
    crops/ID.jpg     the stored face crop (face with margin) that `TargetPool.target` returns

`index.json` stays small (no numbers per face beyond what a person wants to read) so loading 10 000 faces takes
tens of milliseconds; everything numeric is in the `.npz` files.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfmc.errors import InvalidInputError, MfmcError
from mfmc.vision.faces import GENDERS

FORMAT = "mfmc-pool"
FORMAT_VERSION = 1

#: Per-face numeric arrays of attributes.npz: name -> (dtype, shape after N, fill for a missing value).
ATTRIBUTES: dict[str, tuple[str, tuple[int, ...], float]] = {
    "age": ("float32", (), np.nan),
    "gender": ("int8", (), -1),
    "pose": ("float32", (3,), np.nan),
    "mouth_open": ("float32", (), np.nan),
    "eye_ratio": ("float32", (), np.nan),
    "face_size": ("float32", (), 0.0),
    "sharpness": ("float32", (), 0.0),
    "det_score": ("float32", (), 0.0),
    "quality": ("float32", (), 0.0),
    "box": ("float32", (4,), np.nan),
    "landmarks5": ("float32", (5, 2), np.nan),
    "landmarks68": ("float32", (68, 2), np.nan),
    "aligned": ("uint8", (64, 64, 3), 0),
}


class PoolFormatError(InvalidInputError):
    """A pool directory that is missing, of another format or version, or inconsistent."""


class PoolError(MfmcError):
    """A pool operation that failed at run time (a crop that cannot be read, a missing backend)."""


@dataclass(frozen=True)
class RecognizerInfo:
    """What a pool knows about one recognizer: embedding size and its same-person threshold."""

    name: str
    dim: int
    threshold: float | None = None
    metric: str = "l2"

    def to_json(self) -> dict[str, Any]:
        return {"dim": self.dim, "threshold": self.threshold, "metric": self.metric}


@dataclass(frozen=True)
class PoolEntry:
    """One synthetic face of a pool, with coordinates in its stored crop."""

    id: str
    sha256: str
    source: Mapping[str, Any]
    crop: str
    age: float | None
    gender: str | None
    pose: tuple[float, float, float] | None
    mouth_open: float
    eye_ratio: float
    face_size: float
    sharpness: float
    det_score: float
    quality: float
    box: np.ndarray
    landmarks5: np.ndarray
    landmarks68: np.ndarray
    embeddings: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def mouth_is_open(self) -> bool:
        from mfmc.pool.cues import MOUTH_OPEN_RATIO

        return bool(np.isfinite(self.mouth_open) and self.mouth_open > MOUTH_OPEN_RATIO)

    @property
    def eyes_closed(self) -> bool:
        from mfmc.pool.cues import EYES_CLOSED_RATIO

        return bool(np.isfinite(self.eye_ratio) and self.eye_ratio < EYES_CLOSED_RATIO)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready summary (no embeddings, no landmarks)."""
        return {
            "id": self.id, "source": dict(self.source), "age": self.age, "gender": self.gender,
            "pose": list(self.pose) if self.pose else None, "mouth_open": self.mouth_is_open,
            "eyes_closed": self.eyes_closed, "face_size": self.face_size, "quality": round(self.quality, 3),
        }


class PoolIndex:
    """Parallel arrays of a pool plus its JSON records; `save` / `load` implement the on-disk format."""

    def __init__(
        self,
        name: str,
        recognizers: Mapping[str, RecognizerInfo],
        records: list[dict[str, Any]] | None = None,
        embeddings: Mapping[str, np.ndarray] | None = None,
        attributes: Mapping[str, np.ndarray] | None = None,
        rejected: list[dict[str, Any]] | None = None,
        root: Path | None = None,
        meta: Mapping[str, Any] | None = None,
        *,
        aligned_file: Path | None = None,
    ) -> None:
        self.name = name
        self.recognizers = dict(recognizers)
        self.records = list(records or [])
        n = len(self.records)
        self.embeddings = {
            r: np.ascontiguousarray(
                (embeddings or {}).get(r, np.zeros((n, info.dim), np.float32)), dtype=np.float32
            )
            for r, info in self.recognizers.items()
        }
        self.attributes: dict[str, np.ndarray] = _Attributes(aligned_file, n)
        for key, (dtype, shape, fill) in ATTRIBUTES.items():
            given = (attributes or {}).get(key)
            if key == "aligned" and given is None:
                continue  # read from disk (or zero-filled) on first use: only the image metrics need it
            self.attributes[key] = (
                np.asarray(given, dtype=dtype) if given is not None else np.full((n, *shape), fill, dtype=dtype)
            )
        self.rejected = list(rejected or [])
        self.root = root
        self.meta = dict(meta or {})
        self._validate()

    # -- shape -----------------------------------------------------------------------------------
    def _validate(self) -> None:
        n = len(self.records)
        for r, e in self.embeddings.items():
            if e.ndim != 2 or e.shape[0] != n or e.shape[1] != self.recognizers[r].dim:
                raise PoolFormatError(
                    f"embeddings of `{r}` have shape {e.shape}, expected ({n}, {self.recognizers[r].dim})"
                )
        for key, a in self.attributes.items():
            if a.shape[:1] != (n,):
                raise PoolFormatError(f"attribute `{key}` has {a.shape[0]} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.records)

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.records]

    def position(self) -> dict[str, int]:
        return {r["id"]: i for i, r in enumerate(self.records)}

    def entry(self, i: int) -> PoolEntry:
        rec = self.records[i]
        a = self.attributes
        age = float(a["age"][i])
        g = int(a["gender"][i])
        pose = a["pose"][i]
        return PoolEntry(
            id=rec["id"], sha256=rec.get("sha256", ""), source=rec.get("source", {}), crop=rec.get("crop", ""),
            age=age if np.isfinite(age) else None, gender=GENDERS[g] if g in (0, 1) else None,
            pose=tuple(float(v) for v in pose) if np.all(np.isfinite(pose)) else None,  # type: ignore[arg-type]
            mouth_open=float(a["mouth_open"][i]), eye_ratio=float(a["eye_ratio"][i]),
            face_size=float(a["face_size"][i]), sharpness=float(a["sharpness"][i]),
            det_score=float(a["det_score"][i]), quality=float(a["quality"][i]),
            box=a["box"][i].copy(), landmarks5=a["landmarks5"][i].copy(), landmarks68=a["landmarks68"][i].copy(),
            embeddings={r: e[i].copy() for r, e in self.embeddings.items()},
        )

    # -- growth (used by the builder) ------------------------------------------------------------------
    def extend(
        self,
        records: list[dict[str, Any]],
        embeddings: Mapping[str, np.ndarray],
        attributes: Mapping[str, np.ndarray],
    ) -> None:
        """Append rows; every recognizer and attribute must be given for all new rows."""
        m = len(records)
        if m == 0:
            return
        for r in self.recognizers:
            self.embeddings[r] = np.concatenate([self.embeddings[r], np.asarray(embeddings[r], np.float32)])
        for key, (dtype, _shape, _fill) in ATTRIBUTES.items():
            self.attributes[key] = np.concatenate([self.attributes[key], np.asarray(attributes[key], dtype)])
        self.records.extend(records)
        self._validate()

    # -- persistence -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write `index.json`, `embeddings.npz`, `attributes.npz` into `path` atomically (crops are separate)."""
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        doc = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "count": len(self.records),
            "recognizers": {r: info.to_json() for r, info in self.recognizers.items()},
            "meta": self.meta,
            "entries": self.records,
            "rejected": self.rejected,
        }
        _atomic_write(root / "embeddings.npz", lambda f: np.savez(f, **self.embeddings))
        aligned = np.ascontiguousarray(self.attributes["aligned"])
        small = {k: v for k, v in self.attributes.items() if k != "aligned"}
        _atomic_write(root / "attributes.npz", lambda f: np.savez_compressed(f, **small))
        _atomic_write(root / "aligned.npz", lambda f: np.savez_compressed(f, aligned=aligned))
        _atomic_write(root / "index.json", lambda f: f.write(json.dumps(doc, indent=1).encode()))
        self.root = root
        return root

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PoolIndex:
        root = Path(path)
        index_file = root / "index.json"
        if not index_file.is_file():
            raise PoolFormatError(
                f"`{root}` is not a target pool: `index.json` is missing",
                help="build one with `mfmc pool build DIR`",
            )
        try:
            doc = json.loads(index_file.read_text())
        except (OSError, ValueError) as err:
            raise PoolFormatError(f"cannot read `{index_file}`: {err}") from None
        if doc.get("format") != FORMAT:
            raise PoolFormatError(f"`{index_file}` is not an mfmc pool index")
        if doc.get("version") != FORMAT_VERSION:
            raise PoolFormatError(
                f"pool `{root}` has format version {doc.get('version')}, this mfmc reads version {FORMAT_VERSION}",
                help="rebuild it with `mfmc pool build`",
            )
        recognizers = {
            r: RecognizerInfo(r, int(v["dim"]), v.get("threshold"), v.get("metric", "l2"))
            for r, v in doc.get("recognizers", {}).items()
        }
        try:
            with np.load(root / "embeddings.npz") as z:
                embeddings = {r: z[r] for r in recognizers}
            with np.load(root / "attributes.npz") as z:
                attributes = {k: z[k] for k in ATTRIBUTES if k in z.files}
        except (OSError, KeyError, ValueError) as err:
            raise PoolFormatError(
                f"pool `{root}` is damaged: {err}", help="rebuild it with `mfmc pool build`"
            ) from None
        return cls(
            doc.get("name", root.name), recognizers, doc.get("entries", []), embeddings, attributes,
            doc.get("rejected", []), root, doc.get("meta", {}), aligned_file=root / "aligned.npz",
        )


class _Attributes(dict):  # type: ignore[type-arg]
    """The attribute arrays; "aligned" is loaded from its file when first looked up."""

    def __init__(self, aligned_file: Path | None, n: int) -> None:
        super().__init__()
        self._file = aligned_file
        self._n = n

    def __missing__(self, key: str) -> np.ndarray:
        if key != "aligned":
            raise KeyError(key)
        dtype, shape, fill = ATTRIBUTES["aligned"]
        value = np.full((self._n, *shape), fill, dtype=dtype)
        if self._file is not None and self._file.is_file():
            try:
                with np.load(self._file) as z:
                    value = z["aligned"]
            except (OSError, KeyError, ValueError) as err:
                raise PoolFormatError(f"pool file `{self._file}` is damaged: {err}",
                                      help="rebuild it with `mfmc pool build`") from None
        self[key] = value
        return value


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def vision_api() -> tuple[Any, Any]:
    """`(Faces, load_image)` from `mfmc.vision` (imported late: the pool format itself needs no models)."""
    try:
        from mfmc.vision import Faces, load_image
    except ImportError:  # a vision package without its public re-exports
        from mfmc.vision.faces import Faces
        from mfmc.vision.images import load_image
    return Faces, load_image
