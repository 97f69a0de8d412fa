"""`TargetPool`: load a pool, query it (paper Eq. 1 plus filters), and hand out targets to the swapper."""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mfmc.errors import InvalidInputError
from mfmc.pool import query as q
from mfmc.pool.align import aligned_crop
from mfmc.pool.cues import (
    AGE_GROUP_NAMES,
    age_group,
    age_groups,
    eye_aspect_ratio,
    gender_code,
    mouth_open_ratio,
)
from mfmc.pool.index import PoolEntry, PoolError, PoolIndex
from mfmc.vision.alignment import five_from_68

if TYPE_CHECKING:
    from mfmc.pool.ann import AnnIndex
    from mfmc.vision.faces import Faces

#: Pools larger than this use the approximate backend under `backend="auto"` (when usearch is installed).
ANN_THRESHOLD = 200_000
#: Recognizers tried, in order, when a query names none.
PREFERRED_RECOGNIZERS = ("dlib", "facenet")


@dataclass(frozen=True)
class Probe:
    """What a query needs to know about the real (source) face; build one with `Probe.from_faces`."""

    embeddings: Mapping[str, np.ndarray]
    age: float | None = None
    gender: str | None = None
    pose: tuple[float, float, float] | None = None
    mouth_open: float | None = None
    eye_ratio: float | None = None
    aligned: np.ndarray | None = None
    key: bytes | None = None
    face_size: float | None = None  # longer side of the source's detection box, pixels

    @classmethod
    def from_faces(cls, faces: Faces, image: np.ndarray | None = None, *, index: int = 0,
                   key: bytes | str | None = None) -> Probe:
        """The probe of face `index` of an analyzed `Faces` (and its photo, needed for image metrics)."""
        n = len(faces)
        if not 0 <= index < n:
            raise InvalidInputError(f"face index {index} is out of range for {n} faces")
        emb = {name: np.asarray(v[index], dtype=np.float32) for name, v in (faces.embeddings or {}).items()}
        age = None if faces.age is None else float(faces.age[index])
        gender = None if faces.gender is None else str(faces.gender[index])
        pose = None if faces.pose is None else tuple(float(v) for v in faces.pose[index])
        lm68 = None if faces.landmarks68 is None else np.asarray(faces.landmarks68[index], dtype=np.float64)
        mouth = mouth_open_ratio(lm68) if lm68 is not None else None
        eyes = eye_aspect_ratio(lm68) if lm68 is not None else None
        aligned = None
        if image is not None:
            lm5 = five_from_68(lm68) if lm68 is not None else np.asarray(faces.landmarks5[index])
            aligned = aligned_crop(image, lm5)
        if isinstance(key, str):
            key = key.encode()
        box = np.asarray(faces.boxes[index], dtype=np.float64)
        size = float(max(box[2] - box[0], box[3] - box[1]))
        return cls(emb, age, gender, pose, mouth, eyes, aligned, key, size)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Candidate:
    """One ranked target: `distance` is the dissimilarity used for ranking (larger = more different),
    `value` the raw metric (an embedding distance, SSIM, RMSE or PSNR)."""

    id: str
    rank: int
    distance: float
    value: float
    in_target_set: bool
    strategy: str
    metric: str
    recognizer: str | None


class TargetPool:
    """A loaded pool of synthetic faces. Thread-safe for queries once built."""

    def __init__(self, index: PoolIndex, *, backend: str = "auto") -> None:
        if backend not in ("auto", "exact", "ann"):
            raise InvalidInputError(f"unknown pool backend `{backend}`", help="use `auto`, `exact` or `ann`")
        self.index = index
        self.backend = backend
        self._pos = index.position()
        self._gender = index.attributes["gender"].astype(np.int8)
        self._agegroup = age_groups(index.attributes["age"])
        self._cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray | None]] = {}
        self._ann: dict[tuple[str, str], AnnIndex] = {}
        self._excluded: tuple[str, ...] = ()  # ids every query leaves out (`excluding`)

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str], *, backend: str = "auto") -> TargetPool:
        """Load a pool directory written by `mfmc pool build` (raises `PoolFormatError`)."""
        return cls(PoolIndex.load(path), backend=backend)

    @classmethod
    def default(cls) -> TargetPool:
        """The built-in pool of synthetic people shipped with mfmc (loaded once, then cached)."""
        return _default_pool()

    def excluding(self, target_ids: Iterable[str]) -> TargetPool:
        """This pool, whose queries also leave `target_ids` out (an evaluation's targets made from the person it
        evaluates); its index, arrays and caches are shared, not copied. Only `query` leaves them out."""
        view = copy.copy(self)
        view._excluded = (*self._excluded, *sorted(target_ids))
        return view

    # -- inspection --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return f"TargetPool(name={self.index.name!r}, faces={len(self)}, recognizers={self.recognizers})"

    @property
    def name(self) -> str:
        return self.index.name

    @property
    def ids(self) -> list[str]:
        return self.index.ids

    @property
    def recognizers(self) -> list[str]:
        return list(self.index.recognizers)

    def entry(self, target_id: str) -> PoolEntry:
        return self.index.entry(self._position(target_id))

    def expression(self, target_id: str) -> str | None:
        """The expression class a pool face was labelled with at build (the built-in pool: the expression
        classifier's class of every crop, e.g. `neutral`, `happy`, `sad`), or None when unlabelled."""
        source = self.index.records[self._position(target_id)].get("source") or {}
        label = source.get("expression") if isinstance(source, Mapping) else None
        return str(label) if label else None

    def classifier_female(self, target_id: str) -> float | None:
        """The gender classifier's probability of "female" for a pool face, recorded at build (the built-in pool:
        `classifier_female`), or None. Its `gender` is the recorded sex; this says how the classifier fakes are
        checked with reads the face (a gender-uncertain source can be given a target it reads uncertain too)."""
        source = self.index.records[self._position(target_id)].get("source") or {}
        value = source.get("classifier_female") if isinstance(source, Mapping) else None
        return None if value is None else float(value)

    def identity(self, target_id: str) -> str:
        """Who a pool face shows: the person its build source names (e.g. `P002`, or `P001+P003+…` for a
        composite), else, for a mirror image (`mirror_of`), the face it mirrors, else the face's own id. Faces of
        one identity must not fake two people of one photo."""
        record = self.index.records[self._position(target_id)]
        source = record.get("source") or {}
        person = source.get("person") if isinstance(source, Mapping) else None
        return str(person) if person else str(record.get("mirror_of") or target_id)

    def _position(self, target_id: str) -> int:
        try:
            return self._pos[target_id]
        except KeyError:
            raise InvalidInputError(f"no face `{target_id}` in pool `{self.name}`") from None

    # -- targets -----------------------------------------------------------------------------------
    def target(self, target_id: str) -> tuple[np.ndarray, Faces]:
        """The stored crop of a target (RGB uint8) and its analyzed `Faces` of length 1 in crop coordinates."""
        i = self._position(target_id)
        e = self.index.entry(i)
        image = self.crop_image(target_id)
        from mfmc.pool.index import vision_api

        face = vision_api()[0](
            boxes=e.box[None].astype(np.float32),
            scores=np.array([e.det_score], np.float32),
            landmarks5=e.landmarks5[None].astype(np.float32),
            landmarks68=e.landmarks68[None].astype(np.float32),
            pose=np.array([e.pose if e.pose else (np.nan,) * 3], np.float32),
            age=np.array([np.nan if e.age is None else e.age], np.float32),
            gender=None if e.gender is None else np.array([e.gender], dtype=object),
            embeddings={r: v[None].astype(np.float32) for r, v in e.embeddings.items()},
        )
        return image, face

    def crop_image(self, target_id: str) -> np.ndarray:
        """The stored crop of a target as RGB uint8."""
        rec = self.index.records[self._position(target_id)]
        if self.index.root is None:
            raise PoolError(f"pool `{self.name}` has no directory to read crops from")
        path = self.index.root / rec["crop"]
        try:
            from PIL import Image

            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as err:
            raise PoolError(f"cannot read the crop of `{target_id}`: {err}",
                            help="rebuild the pool with `mfmc pool build`") from None

    # -- queries -----------------------------------------------------------------------------------
    def query(
        self,
        source: Probe | Faces,
        *,
        strategy: str = "random",
        recognizer: str | None = None,
        metric: str = "l2",
        same_group: bool | str = True,
        compatible: bool = True,
        k: int | None = 8,
        seed: int = 0,
        key: bytes | str | None = None,
        image: np.ndarray | None = None,
        compatibility: q.Compatibility | None = None,
        exclude: Sequence[str] = (),
    ) -> list[Candidate]:
        """Ranked targets for one source face (paper Eq. 1 for `strategy="random"`).

        `source` is a `Faces` of length 1 (analyzed: embeddings, age, gender, pose, 68 landmarks) or a `Probe`.
        `same_group`: True restricts to the source's gender and age group, `"gender"` to its gender only.
        Returns at most `k` candidates, best first; an empty list when the pool is empty or no candidate passes
        the group / compatibility filters (the caller may retry with `compatible=False` or `same_group=False`).
        Same source + seed + key -> same list; `key` (e.g. photo hash + face index) defaults to the source
        embedding, so different photos get different draws. Image metrics (`ssim`, `rmse`, `psnr`) need the
        photo as `image` unless the probe carries an aligned crop.
        """
        if strategy not in q.STRATEGIES:
            raise InvalidInputError(f"unknown query strategy `{strategy}`",
                                    help=f"use one of {', '.join(q.STRATEGIES)}")
        if metric not in q.METRICS:
            raise InvalidInputError(f"unknown query metric `{metric}`", help=f"use one of {', '.join(q.METRICS)}")
        if k is not None and k < 0:
            raise InvalidInputError(f"`k` must be at least 0, got {k}")
        if same_group not in (True, False, "gender"):
            raise InvalidInputError(f"unknown `same_group` value `{same_group}`", help="use True, False or `gender`")
        probe = self._probe(source, image, key)
        rec = self._recognizer(probe, recognizer) if metric in q.EMBEDDING_METRICS else recognizer
        if len(self) == 0 or k == 0:
            return []
        allowed = self._filter(probe, same_group, compatible, compatibility, (*exclude, *self._excluded))
        if probe.key is not None:
            rng_key = probe.key
        elif rec is not None and rec in probe.embeddings:
            rng_key = q.embedding_key(probe.embeddings[rec])
        else:
            rng_key = probe.aligned.tobytes() if probe.aligned is not None else b""
        rng = q.derive_rng(seed, rng_key)
        if metric in q.EMBEDDING_METRICS and self._use_ann():
            assert rec is not None
            return self._query_ann(probe, strategy, rec, metric, allowed, k, rng, compatible, compatibility)
        positions = np.flatnonzero(allowed)
        if positions.size == 0:
            return []
        dist, value = self._dissimilarity(probe, rec, metric, positions)
        bands = self._bands(probe, compatible, compatibility, positions)
        order = q.banded(q.rank(dist, strategy, rng, k if bands is None else None), bands, k)
        in_t = q.target_set(dist)
        return [
            Candidate(self.index.records[positions[j]]["id"], r, float(dist[j]), float(value[j]), bool(in_t[j]),
                      strategy, metric, rec)
            for r, j in enumerate(order)
        ]

    def _probe(self, source: Probe | Faces, image: np.ndarray | None, key: bytes | str | None) -> Probe:
        if isinstance(source, Probe):
            probe = source
            if image is not None and probe.aligned is None:
                raise InvalidInputError("a `Probe` carries no landmarks to align `image` with",
                                        help="build the probe with `Probe.from_faces(faces, image)`")
        else:
            n = len(source)
            if n != 1:
                raise InvalidInputError(f"a pool query takes exactly one source face, got {n}",
                                        help="pass `faces[i]` for the face to replace")
            probe = Probe.from_faces(source, image)
        if key is not None:
            probe = dataclasses.replace(probe, key=key.encode() if isinstance(key, str) else bytes(key))
        return probe

    def _recognizer(self, probe: Probe, recognizer: str | None) -> str:
        if recognizer is not None:
            if recognizer not in self.index.recognizers:
                raise InvalidInputError(
                    f"pool `{self.name}` has no embeddings of recognizer `{recognizer}`",
                    help=f"it has: {', '.join(self.recognizers) or 'none'}",
                )
            if recognizer not in probe.embeddings:
                raise InvalidInputError(f"the source face has no `{recognizer}` embedding",
                                        help="analyze it with `FacePipeline.analyze` first")
            return recognizer
        shared = [r for r in self.recognizers if r in probe.embeddings]
        if not shared:
            raise InvalidInputError(
                "the source face has no embedding of any recognizer in the pool",
                help=f"the pool has: {', '.join(self.recognizers) or 'none'}; analyze the face first",
            )
        return next((r for r in PREFERRED_RECOGNIZERS if r in shared), shared[0])

    def _filter(self, probe: Probe, same_group: bool | str, compatible: bool,
                compatibility: q.Compatibility | None, exclude: Sequence[str]) -> np.ndarray:
        n = len(self)
        allowed = np.ones(n, dtype=bool)
        if same_group:
            g = gender_code(probe.gender)
            if g >= 0:
                allowed &= self._gender == g
            a = age_group(probe.age) if same_group is True else -1
            if a >= 0:
                allowed &= self._agegroup == a
        if compatible:
            rule = compatibility or q.Compatibility()
            at = self.index.attributes
            allowed &= rule.mask(np.asarray(probe.pose) if probe.pose else None, probe.mouth_open,
                                 probe.eye_ratio, at["pose"], at["mouth_open"], at["eye_ratio"],
                                 source_size=probe.face_size, sizes=at["face_size"], quality=at["quality"])
        for target_id in exclude:
            if target_id in self._pos:
                allowed[self._pos[target_id]] = False
        return allowed

    def _matrix(self, rec: str, metric: str) -> tuple[np.ndarray, np.ndarray | None]:
        cached = self._cache.get((rec, metric))
        if cached is None:
            m = self.index.embeddings[rec]
            if metric == "cosine":
                norms = np.linalg.norm(m, axis=1, keepdims=True)
                cached = (np.ascontiguousarray(m / np.where(norms == 0, 1, norms), dtype=np.float32), None)
            else:
                cached = (m, np.einsum("ij,ij->i", m, m, dtype=np.float32))
            self._cache[(rec, metric)] = cached
        return cached

    def _dissimilarity(self, probe: Probe, rec: str | None, metric: str,
                       positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if metric in q.EMBEDDING_METRICS:
            assert rec is not None
            matrix, sq = self._matrix(rec, metric)
            whole = positions.size == matrix.shape[0]
            rows = matrix if whole else matrix[positions]
            if metric == "l2":
                assert sq is not None
                d = q.l2_distances(rows, sq if whole else sq[positions], probe.embeddings[rec])
            else:
                d = q.cosine_distances(rows, probe.embeddings[rec])
            return d, d
        if probe.aligned is None:
            raise InvalidInputError(f"metric `{metric}` compares pixels and needs the source photo",
                                    help="pass `image=` (the photo the face was detected in)")
        crops = self.index.attributes["aligned"][positions]
        if metric == "ssim":
            v = q_ssim(probe.aligned, crops)
            return 1.0 - v, v
        if metric == "rmse":
            v = q_rmse(probe.aligned, crops)
            return v, v
        v = q_psnr(probe.aligned, crops)
        return -v, v

    # -- approximate search ------------------------------------------------------------------------
    def _use_ann(self) -> bool:
        if self.backend == "ann":
            return True
        if self.backend == "exact" or len(self) <= ANN_THRESHOLD:
            return False
        from mfmc.pool.ann import usearch_available

        return usearch_available()

    def ann_index(self, rec: str, metric: str) -> AnnIndex:
        """The (lazily built) approximate index of one recognizer and metric."""
        from mfmc.pool.ann import AnnIndex

        idx = self._ann.get((rec, metric))
        if idx is None:
            idx = self._ann[(rec, metric)] = AnnIndex(self.index.embeddings[rec], metric)
        return idx

    def _bands(self, probe: Probe, compatible: bool, compatibility: q.Compatibility | None,
               positions: np.ndarray) -> np.ndarray | None:
        """The yaw bands of the candidates at `positions` (`Compatibility.yaw_bands`), or None."""
        if not compatible or probe.pose is None:
            return None
        rule = compatibility or q.Compatibility()
        return rule.yaw_bands(np.asarray(probe.pose), np.asarray(self.index.attributes["pose"])[positions])

    def _query_ann(self, probe: Probe, strategy: str, rec: str, metric: str, allowed: np.ndarray,
                   k: int | None, rng: np.random.Generator, compatible: bool = True,
                   compatibility: q.Compatibility | None = None) -> list[Candidate]:
        n_allowed = int(allowed.sum())
        if n_allowed == 0:
            return []
        want = n_allowed if k is None else min(k, n_allowed)
        ann = self.ann_index(rec, metric)
        matrix, sq = self._matrix(rec, metric)
        qv = probe.embeddings[rec]

        def exact(pos: np.ndarray) -> np.ndarray:
            if metric == "l2":
                assert sq is not None
                return q.l2_distances(matrix[pos], sq[pos], qv)
            return q.cosine_distances(matrix[pos], qv)

        # sigma of Eq. 1 from a fixed sample of the allowed faces (exact below 16 384 faces)
        sample = np.flatnonzero(allowed)
        if sample.size > 16384:
            sample = sample[np.random.default_rng(0).choice(sample.size, 16384, replace=False)]
        sigma = float(exact(sample).std())
        oversample = len(self) / n_allowed
        fetch = int(min(len(self), max(64, 2 * want) * oversample))
        while True:
            pos = ann.search(qv, fetch, furthest=strategy != "closest")
            pos = pos[allowed[pos]]
            d = exact(pos)
            if strategy != "random" or pos.size == 0 or fetch >= len(self):
                break
            if d.min() <= d.max() - sigma or fetch >= 65536:  # the fetched set reaches below T(S)'s bound
                break
            fetch = min(len(self), fetch * 4)
        if pos.size == 0:
            return []
        cut = d.max() - sigma
        bands = self._bands(probe, compatible, compatibility, pos)
        order = q.banded(q.rank(d, strategy, rng, want if bands is None else None), bands, want)
        return [
            Candidate(self.index.records[pos[j]]["id"], r, float(d[j]), float(d[j]),
                      bool(d[j] > cut or d[j] == d.max()), strategy, metric, rec)
            for r, j in enumerate(order)
        ]

    # -- summaries -----------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Counts and distributions (for `mfmc pool info`)."""
        at = self.index.attributes
        n = len(self)
        genders = {"female": int((self._gender == 0).sum()), "male": int((self._gender == 1).sum()),
                   "unknown": int((self._gender < 0).sum())}
        groups = {name: int((self._agegroup == i).sum()) for i, name in enumerate(AGE_GROUP_NAMES)}
        groups["unknown"] = int((self._agegroup < 0).sum())
        sources: dict[str, int] = {}
        for r in self.index.records:
            pkg = str(r.get("source", {}).get("package", "?"))
            sources[pkg] = sources.get(pkg, 0) + 1
        ages = at["age"][np.isfinite(at["age"])]
        return {
            "name": self.name, "faces": n, "rejected": len(self.index.rejected),
            "recognizers": {r: info.to_json() for r, info in self.index.recognizers.items()},
            "sources": sources, "gender": genders, "age_groups": groups,
            "age": _summary(ages), "face_size": _summary(at["face_size"]), "quality": _summary(at["quality"]),
            "identities": self.index.meta.get("identities", {}),
            "meta": {k: v for k, v in self.index.meta.items() if k != "identities"},
        }


def _summary(a: np.ndarray) -> dict[str, float] | None:
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return None
    p = np.percentile(a, [0, 50, 100])
    return {"min": round(float(p[0]), 2), "median": round(float(p[1]), 2), "max": round(float(p[2]), 2),
            "mean": round(float(a.mean()), 2)}


def q_ssim(probe: np.ndarray, crops: np.ndarray) -> np.ndarray:
    from mfmc.pool.align import ssim

    return ssim(probe, crops)


def q_rmse(probe: np.ndarray, crops: np.ndarray) -> np.ndarray:
    from mfmc.pool.align import rmse

    return rmse(probe, crops)


def q_psnr(probe: np.ndarray, crops: np.ndarray) -> np.ndarray:
    from mfmc.pool.align import psnr

    return psnr(probe, crops)


def default_pool_path() -> Path:
    """Directory of the built-in pool inside the installed package."""
    return Path(__file__).resolve().parent / "data" / "default"


@functools.lru_cache(maxsize=1)
def _default_pool() -> TargetPool:
    path = default_pool_path()
    if not (path / "index.json").is_file():
        raise PoolError("the built-in target pool is not installed",
                        help="reinstall mfmc, or build a pool with `mfmc pool build DIR`")
    return TargetPool.load(path)
