"""Identity supply: pool targets, and identities recombined from several pool people at fake time.

A built-in pool holds few people (docs/pool.md), too few for every face of a group photo to get its own
identity. A *recombined* target takes the outline, skin and hair of one pool person (the base), brows and eyes of
a second, the nose of a third and the mouth of a fourth, each warped onto a composed shape (the base's with each
part's shape from its donor, parts rescaled by seeded factors) and colour-matched (`mfmc.pool.composite`). All
donors come from the candidates the query allowed for this source (its gender, a compatible pose and expression),
so a recombination keeps what the query keeps. Whether a recombination is a *different* person is what the
verifier decides, as for any target: a fake must not match its source nor any other face of the photo.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mfmc.pool.composite import mean_shape, part_composite

if TYPE_CHECKING:
    from mfmc.pool import TargetPool

ROLES = ("base", "eyes", "nose", "mouth")
# seeded part rescaling (x, y) ranges: enough to move the geometry recognizers read, little enough to look normal
SCALE_RANGES = {"eyes": (0.9, 1.12), "nose": (0.85, 1.18), "mouth": (0.85, 1.18), "face": (0.92, 1.08)}


@dataclass(frozen=True)
class Target:
    """A target identity for one swap: one pool face (`parts == (id,)`) or a recombination of pool faces
    (`parts` = base, eyes, nose, mouth ids; `scales` the seeded part factors)."""

    id: str
    identity: str
    parts: tuple[str, ...]
    scales: tuple[float, ...] = ()

    @classmethod
    def plain(cls, target_id: str, identity: str) -> Target:
        return cls(target_id, identity, (target_id,))

    @property
    def is_plain(self) -> bool:
        return len(self.parts) == 1


class Recombiner:
    """Turns `Target`s into (crop, 68 landmarks) and draws recombination recipes; caches recent crops."""

    def __init__(self, pool: TargetPool, *, cache: int = 48, caricature: float = 1.3) -> None:
        self.pool = pool
        self.caricature = caricature
        self._cache: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._size = cache

    def image(self, target: Target) -> tuple[np.ndarray, np.ndarray]:
        """The target's crop (RGB uint8) and its 68 landmarks in crop coordinates."""
        hit = self._cache.get(target.id)
        if hit is not None:
            self._cache.move_to_end(target.id)
            return hit
        if target.is_plain:
            img, face = self.pool.target(target.id)
            assert face.landmarks68 is not None
            out = (img, np.asarray(face.landmarks68[0], dtype=np.float64))
        else:
            out = self._compose(target)
        self._cache[target.id] = out
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return out

    def _compose(self, target: Target) -> tuple[np.ndarray, np.ndarray]:
        faces = {}
        for role, pid in zip(ROLES, target.parts, strict=True):
            img, face = self.pool.target(pid)
            assert face.landmarks68 is not None
            faces[role] = (img, np.asarray(face.landmarks68[0], dtype=np.float64))
        parts = {"base": faces["base"], "brows": faces["eyes"], "eyes": faces["eyes"],
                 "nose": faces["nose"], "mouth": faces["mouth"]}
        base_lm = faces["base"][1]
        mean = mean_shape([lm for _, lm in faces.values()], base_lm)
        keys = ("eyes", "nose_x", "nose_y", "mouth_x", "mouth_y", "face")
        f = dict(zip(keys, target.scales, strict=True))
        scales = {"eyes": (f["eyes"], f["eyes"]), "nose": (f["nose_x"], f["nose_y"]),
                  "mouth": (f["mouth_x"], f["mouth_y"]), "face": (f["face"], 1.0)}
        img, lm = part_composite(parts, mean, caricature=self.caricature, scales=scales)
        return img, lm

    def recipes(self, donors: Sequence[str], n: int, *, seed: int, key: bytes,
                exclude: Iterable[str] = ()) -> list[Target]:
        """Up to `n` seeded recombinations of `donors` (pool ids allowed for this source, best first): the base
        and the eye donor are different people when there are two. Same donors + seed + key, same recipes."""
        if n <= 0:
            return []
        people: dict[str, str] = {}
        for pid in donors:
            people.setdefault(self.pool.identity(pid), pid)  # the best-ranked face of each person
        names = list(people)
        if not names:
            return []
        digest = hashlib.sha256(b"mfmc-recombine-v1\0" + int(seed).to_bytes(16, "little", signed=True) + key)
        rng = np.random.default_rng(np.frombuffer(digest.digest(), dtype=np.uint64))
        skip = set(exclude)
        out: list[Target] = []
        for _ in range(8 * n):
            if len(out) >= n:
                break
            # one person only (the built-in pool has one man): variants of that person's shape, which the
            # verifier keeps only when the recognizers tell them apart from everything else
            base, eyes = (str(v) for v in rng.choice(names, 2, replace=len(names) < 2))
            nose, mouth = (str(v) for v in rng.choice(names, 2))
            lo_hi = [SCALE_RANGES["eyes"], SCALE_RANGES["nose"], (0.9, 1.1), SCALE_RANGES["mouth"],
                     SCALE_RANGES["mouth"], SCALE_RANGES["face"]]
            scales = tuple(round(float(rng.uniform(a, b)), 3) for a, b in lo_hi)
            who = "|".join((base, eyes, nose, mouth))
            tag = hashlib.sha256(repr(scales).encode()).hexdigest()[:6]
            identity = f"mix:{who}:{tag}"
            if identity in skip or any(t.identity == identity for t in out):
                continue
            parts = tuple(people[p] for p in (base, eyes, nose, mouth))
            out.append(Target(f"mix:{'+'.join(parts)}:{tag}", identity, parts, scales))
        return out


@dataclass
class SupplyReport:
    """How many mutually distinct identities the generator can draw on, per gender (greedy, all recognizers)."""

    candidates: dict[str, int]
    distinct: dict[str, int]
    plain: dict[str, int]
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.distinct.values())


def identity_supply(pipeline: object, pool: TargetPool, n: int, *, seed: int = 0,
                    recognizers: Sequence[str] | None = None) -> SupplyReport:
    """Greedy count of mutually distinct identities: one face per pool person first, then `n` recombinations
    per gender, each kept only when every recognizer puts it farther than its threshold from everything kept.

    Each candidate is rendered as the generator renders a target (its crop), detected and embedded like any
    photo face. `pipeline` is a `FacePipeline`.
    """
    import time

    from mfmc.vision import FacePipeline

    assert isinstance(pipeline, FacePipeline)
    names = list(pipeline.recognizers) if recognizers is None else list(recognizers)
    rec = Recombiner(pool, cache=1)
    t0 = time.perf_counter()
    candidates, distinct, plain = {}, {}, {}
    for gender in ("female", "male"):
        ids = [i for i in pool.ids if pool.entry(i).gender == gender]
        people: dict[str, str] = {}
        for i in ids:
            people.setdefault(pool.identity(i), i)
        kept: dict[str, list[np.ndarray]] = {m: [] for m in names}
        count = 0

        def consider(image: np.ndarray, kept: dict[str, list[np.ndarray]] = kept) -> bool:
            faces = pipeline.detect(image)
            if not len(faces):
                return False
            faces = pipeline.analyze(image, faces[int(np.argmax(faces.areas))], attributes=False, recognizers=names)
            emb = {m: faces.embeddings[m][0] for m in names}
            for m in names:
                r = pipeline.recognizers[m]
                if kept[m] and float(np.min(r.distance(emb[m], np.asarray(kept[m])))) <= float(r.threshold):
                    return False
            for m in names:
                kept[m].append(emb[m])
            return True

        for pid in people.values():
            count += 1
            consider(rec.image(Target.plain(pid, pool.identity(pid)))[0])
        plain[gender] = len(kept[names[0]]) if names else 0
        for target in rec.recipes(list(people.values()), n, seed=seed, key=gender.encode()):
            count += 1
            consider(rec.image(target)[0])
        candidates[gender] = count
        distinct[gender] = len(kept[names[0]]) if names else 0
    return SupplyReport(candidates, distinct, plain, time.perf_counter() - t0)
