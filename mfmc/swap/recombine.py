"""Identity supply: pool targets, and identities recombined from several pool people at fake time.

A built-in pool holds few people (docs/pool.md), too few for every face of a group photo to get its own
identity. A *recombined* target takes the outline, skin and hair of one pool person (the base), the eyes of a
second, the brows, nose and mouth of others and the fine skin detail (lines, pores) of another, each warped onto
a composed shape and colour-matched (`mfmc.pool.composite`). The shape is the base's with each part's shape from
its donor, parts rescaled by seeded factors, then moved along the main directions in which the pool's faces
differ (a symmetric PCA of their 68-point shapes, `ShapeModel`; the eyes and mouth are only moved and scaled, so
eye opening and expression stay) — recognizers read that geometry, FaceNet hardly the part scales
(docs/pool.md, *Identity supply*). All donors come from the candidates the query allowed for this source (its
gender, a compatible pose and expression) and share one recorded gender, so a recombination keeps what the
query keeps. Whether a recombination is a *different* person is what the
verifier decides, as for any target: a fake must not match its source nor any other face of the photo.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mfmc.pool.composite import ShapeModel, mean_shape, part_composite
from mfmc.vision.faces import GENDERS

if TYPE_CHECKING:
    from mfmc.pool import TargetPool
    from mfmc.swap.generate import FakeGenerator
    from mfmc.vision.recognition import Recognizer

_log = logging.getLogger(__name__)

ROLES = ("base", "eyes", "nose", "mouth", "brows", "skin")  # a recipe's parts; the first four in every recipe
# seeded part rescaling (x, y) ranges: enough to move the geometry recognizers read, little enough to look normal
SCALE_RANGES = {"eyes": (0.9, 1.12), "nose": (0.85, 1.18), "mouth": (0.85, 1.18), "face": (0.92, 1.08)}
# a pool face is bearded above this beard gap (cheeks minus chin lightness, `mfmc.swap.beard`; the pool's women
# and clean-shaven man measure -5 to 19, the bearded man 32-43, his morph 26): the threshold the swappers use
BEARD_GAP = 22.0


@dataclass(frozen=True)
class Supply:
    """How recombinations are drawn. `shape`: the range of the radius (in standard deviations of the pool's
    shape PCA, `components` leading components) of the seeded shape move, (0, 0) for none; `brows` and `skin`:
    brows and skin detail from donors of their own (else the eye donor's brows, the base's skin); `detail`: how
    much of the skin donor's detail replaces the base's (0-1); `original_texture`: eyes, brows and skin only
    from faces of a person (not the pool's morphs and composites); `match_pose`: of each donor person, the face
    posed most like the base; `same_beard`: nose, mouth and skin donors only as bearded as the base (a
    bearded mouth donor pasted a moustache into a shaven face).

    Measured on the built-in pool (`benchmarks/bench_pool.py --identities`, docs/pool.md): the shape moves and
    the pose-matched, non-derived eye donors add distinct identities; skin detail added none (same count with
    and without, on the same recipes) and aged some faces, so it is off."""

    shape: tuple[float, float] = (2.5, 3.5)
    components: int = 6
    brows: bool = True
    skin: bool = False
    detail: float = 0.0
    detail_parts: tuple[str, ...] = ()
    detail_sigma: float = 0.12
    caricature: float = 1.3
    original_texture: bool = True
    match_pose: bool = True
    same_beard: bool = True

    @property
    def version(self) -> bytes:
        return b"mfmc-recombine-v1\0" if self == LEGACY else b"mfmc-recombine-v2\0"


# the recombinations before the shape model (base, eyes + brows, nose, mouth, part scales): ~8 identities
LEGACY = Supply(shape=(0.0, 0.0), brows=False, skin=False, detail=0.0, original_texture=False, match_pose=False,
                same_beard=False)


@dataclass(frozen=True)
class Target:
    """A target identity for one swap: one pool face (`parts == (id,)`) or a recombination of pool faces
    (`parts` = base, eyes, nose, mouth[, brows, skin] ids; `scales` the seeded part factors, `shape` the seeded
    shape-model coefficients)."""

    id: str
    identity: str
    parts: tuple[str, ...]
    scales: tuple[float, ...] = ()
    shape: tuple[float, ...] = ()

    @classmethod
    def plain(cls, target_id: str, identity: str) -> Target:
        return cls(target_id, identity, (target_id,))

    @property
    def is_plain(self) -> bool:
        return len(self.parts) == 1


class Recombiner:
    """Turns `Target`s into (crop, 68 landmarks) and draws recombination recipes; caches recent crops."""

    def __init__(self, pool: TargetPool, *, cache: int = 48, supply: Supply | None = None) -> None:
        self.pool = pool
        self.supply = Supply() if supply is None else supply
        self._cache: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._size = cache
        self._shapes: ShapeModel | None = None
        self._beards: dict[str, bool] = {}

    def bearded(self, target_id: str) -> bool:
        """Whether a pool face shows facial hair (its beard gap above `BEARD_GAP`); measured once per face."""
        if target_id not in self._beards:
            import cv2

            from mfmc.swap.beard import beard_gap

            img, face = self.pool.target(target_id)
            assert face.landmarks68 is not None
            lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
            gap = beard_gap(lab, np.asarray(face.landmarks68[0], np.float64), (0, 0), np.ones(img.shape[:2], bool))
            self._beards[target_id] = bool(np.isfinite(gap) and gap > BEARD_GAP)
        return self._beards[target_id]

    @property
    def shapes(self) -> ShapeModel:
        """The pool's shape model: frontal (|yaw|, |pitch| <= 15 degrees), closed-mouthed faces, fitted once."""
        if self._shapes is None:
            lms = []
            for i in self.pool.ids:
                e = self.pool.entry(i)
                pose = e.pose or (0.0, 0.0, 0.0)
                if not e.mouth_is_open and abs(pose[0]) <= 15 and abs(pose[1]) <= 15:
                    lms.append(np.asarray(e.landmarks68, np.float64))
            self._shapes = ShapeModel.fit(lms, k=max(1, self.supply.components))
        return self._shapes

    def has(self, target: Target) -> bool:
        """Whether the target's crop is in the memory cache."""
        return target.id in self._cache

    def remember(self, target: Target, image: np.ndarray, landmarks: np.ndarray) -> None:
        """Put a crop made elsewhere (e.g. read from a disk cache) into the memory cache."""
        self._cache[target.id] = (image, np.asarray(landmarks, dtype=np.float64))
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)

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
        for role, pid in zip(ROLES[: len(target.parts)], target.parts, strict=True):
            img, face = self.pool.target(pid)
            assert face.landmarks68 is not None
            faces[role] = (img, np.asarray(face.landmarks68[0], dtype=np.float64))
        parts = {"base": faces["base"], "brows": faces.get("brows", faces["eyes"]), "eyes": faces["eyes"],
                 "nose": faces["nose"], "mouth": faces["mouth"]}
        if "skin" in faces:
            parts["skin"] = faces["skin"]
        base_lm = faces["base"][1]
        mean = mean_shape([lm for _, lm in faces.values()], base_lm)
        keys = ("eyes", "nose_x", "nose_y", "mouth_x", "mouth_y", "face")
        f = dict(zip(keys, target.scales, strict=True))
        scales = {"eyes": (f["eyes"], f["eyes"]), "nose": (f["nose_x"], f["nose_y"]),
                  "mouth": (f["mouth_x"], f["mouth_y"]), "face": (f["face"], 1.0)}
        offset = self.shapes.offset(target.shape, base_lm) if target.shape else None
        img, lm = part_composite(parts, mean, caricature=self.supply.caricature, scales=scales,
                                 shape_offset=offset, detail=self.supply.detail if "skin" in parts else 0.0,
                                 detail_parts=self.supply.detail_parts, detail_sigma=self.supply.detail_sigma)
        return img, lm

    def recipes(self, donors: Sequence[str], n: int, *, seed: int, key: bytes,
                exclude: Iterable[str] = ()) -> list[Target]:
        """Up to `n` seeded recombinations of `donors` (pool ids allowed for this source, best first): the base
        and the eye donor are different people when there are two; every donor has the recorded gender of the
        first donor (others are dropped, logged). Same donors + seed + key + supply, same recipes."""
        if n <= 0 or not donors:
            return []
        gender = self.pool.entry(donors[0]).gender
        same = [pid for pid in donors if self.pool.entry(pid).gender == gender]
        if len(same) < len(donors):
            _log.warning("recombination: %d donors of another gender than %s left out", len(donors) - len(same),
                         gender)
        people: dict[str, str] = {}
        faces: dict[str, list[str]] = {}
        for pid in same:
            people.setdefault(self.pool.identity(pid), pid)  # the best-ranked face of each person
            faces.setdefault(self.pool.identity(pid), []).append(pid)
        names = list(people)
        sup = self.supply

        def face_of(person: str, base: str) -> str:
            """Of the person's sharp faces (pool quality >= 0.9 when there are any: the blurry ones gave smeared
            eyes), the one whose 68 points fit the base face's best (a donor turned away from the base stretched
            its brow tails and hair across the temples)."""
            if not sup.match_pose or person == base or len(faces[person]) < 2:
                return people[person]
            ref = np.asarray(self.pool.entry(people[base]).landmarks68, np.float64)
            sharp = [pid for pid in faces[person] if self.pool.entry(pid).quality >= 0.9] or faces[person]
            return min(sharp, key=lambda pid: _residual(
                np.asarray(self.pool.entry(pid).landmarks68, np.float64), ref))
        # eyes, brows and skin detail only from faces of a person, not from the pool's morphs and composites
        # (their features are averages of misaligned features: smeared eyes, double brow lines)
        originals = [p for p in names if "derived" not in self.pool.entry(people[p]).source]
        texture = originals if sup.original_texture and originals else names
        digest = hashlib.sha256(sup.version + int(seed).to_bytes(16, "little", signed=True) + key)
        rng = np.random.default_rng(np.frombuffer(digest.digest(), dtype=np.uint64))
        skip = set(exclude)
        out: list[Target] = []
        for _ in range(8 * n):
            if len(out) >= n:
                break
            # one person only (the built-in pool has one man): variants of that person's shape, which the
            # verifier keeps only when the recognizers tell them apart from everything else
            if sup.original_texture:
                eyes = str(rng.choice(texture))
                base = str(rng.choice([p for p in names if p != eyes] or names))
            else:
                base, eyes = (str(v) for v in rng.choice(names, 2, replace=len(names) < 2))
            like_base = names
            if sup.same_beard:  # the nose and mouth regions reach the moustache
                like_base = [p for p in names if self.bearded(people[p]) == self.bearded(people[base])] or [base]
            nose, mouth = (str(v) for v in rng.choice(like_base, 2))
            lo_hi = [SCALE_RANGES["eyes"], SCALE_RANGES["nose"], (0.9, 1.1), SCALE_RANGES["mouth"],
                     SCALE_RANGES["mouth"], SCALE_RANGES["face"]]
            scales = tuple(round(float(rng.uniform(a, b)), 3) for a, b in lo_hi)
            roles = [base, eyes, nose, mouth]
            if sup.brows or sup.skin:
                brows = str(rng.choice(texture))
                skin = str(rng.choice([p for p in texture if p in like_base] or [base]))
                roles.append(brows if sup.brows else eyes)
                if sup.skin:
                    roles.append(skin)
            shape: tuple[float, ...] = ()
            if sup.shape[1] > 0:
                z = rng.standard_normal(max(1, sup.components))
                z *= float(rng.uniform(*sup.shape)) / max(float(np.linalg.norm(z)), 1e-9)
                shape = tuple(round(float(v), 3) for v in z)
            who = "|".join(roles)
            tag = hashlib.sha256(repr((scales, shape) if shape else scales).encode()).hexdigest()[:6]
            identity = f"mix:{who}:{tag}"
            if identity in skip or any(t.identity == identity for t in out):
                continue
            parts = (people[base], *(face_of(p, base) for p in roles[1:]))
            out.append(Target(f"mix:{'+'.join(parts)}:{tag}", identity, parts, scales, shape))
        return out


def _residual(lm: np.ndarray, ref: np.ndarray) -> float:
    """Mean distance of `lm`, similarity-aligned to `ref`, from `ref`, in inter-ocular distances."""
    from mfmc.pool.composite import similarity, transform

    iod = float(np.linalg.norm(ref[36:42].mean(0) - ref[42:48].mean(0))) or 1.0
    return float(np.linalg.norm(transform(similarity(lm, ref), lm) - ref, axis=1).mean()) / iod


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


def _people(pool: TargetPool, ids: Iterable[str]) -> dict[str, str]:
    """The first face of each identity (`TargetPool.identity`) among the pool faces `ids`, by identity."""
    people: dict[str, str] = {}
    for i in ids:
        people.setdefault(pool.identity(i), i)
    return people


class _Distinct:
    """Mutually distinct identities, kept greedily: a face (its embedding per recognizer) joins when every
    recognizer of `recognizers` puts it farther than that recognizer's threshold from every face kept."""

    def __init__(self, recognizers: Mapping[str, Recognizer]) -> None:
        self.recognizers = dict(recognizers)
        self.kept: dict[str, list[np.ndarray]] = {m: [] for m in self.recognizers}

    def offer(self, embeddings: Mapping[str, np.ndarray]) -> bool:
        """Keep the face when it is distinct from every face kept; whether it was kept."""
        for m, r in self.recognizers.items():
            kept = self.kept[m]
            if kept and float(np.min(r.distance(embeddings[m], np.asarray(kept)))) <= float(r.threshold):
                return False
        for m in self.kept:
            self.kept[m].append(embeddings[m])
        return True

    def __len__(self) -> int:
        return len(next(iter(self.kept.values()), []))


def identity_supply(pipeline: object, pool: TargetPool, n: int, *, seed: int = 0,
                    recognizers: Sequence[str] | None = None, supply: Supply | None = None) -> SupplyReport:
    """Greedy count of mutually distinct identities: one face per pool person first, then `n` recombinations
    per gender, each kept only when every recognizer puts it farther than its threshold from everything kept.
    `supply`: how the recombinations are drawn (default `Supply()`; `LEGACY` for the part-only recipes).

    Each candidate is rendered as the generator renders a target (its crop), detected and embedded like any
    photo face. `pipeline` is a `FacePipeline`.
    """
    import time

    from mfmc.vision import FacePipeline

    assert isinstance(pipeline, FacePipeline)
    names = list(pipeline.recognizers) if recognizers is None else list(recognizers)
    rec = Recombiner(pool, cache=1, supply=supply)
    t0 = time.perf_counter()
    candidates, distinct, plain = {}, {}, {}
    for gender in GENDERS:
        ids = [i for i in pool.ids if pool.entry(i).gender == gender]
        people = _people(pool, ids)
        kept = _Distinct({m: pipeline.recognizers[m] for m in names})
        count = 0

        def consider(image: np.ndarray, kept: _Distinct = kept) -> bool:
            faces = pipeline.detect(image)
            if not len(faces):
                return False
            faces = pipeline.analyze(image, faces[int(np.argmax(faces.areas))], attributes=False, recognizers=names)
            return kept.offer({m: faces.embeddings[m][0] for m in names})

        for pid in people.values():
            count += 1
            consider(rec.image(Target.plain(pid, pool.identity(pid)))[0])
        plain[gender] = len(kept)
        # each person's first face leads (the base), the person's other faces are there for pose-matched parts
        donors = list(people.values()) + [i for i in ids if i not in set(people.values())]
        for target in rec.recipes(donors, n, seed=seed, key=gender.encode()):
            count += 1
            consider(rec.image(target)[0])
        candidates[gender] = count
        distinct[gender] = len(kept)
    return SupplyReport(candidates, distinct, plain, time.perf_counter() - t0)


@dataclass
class FakeSupplyReport:
    """Of the fakes of one face made from every pool person of its gender and `n` recombinations: how many leave
    the source (`leaving`: every recognizer beyond the verifier's bar) and how many of those are mutually distinct
    identities (`distinct`: greedy, every recognizer beyond its threshold from every fake kept)."""

    gender: str
    alpha: float
    targets: int
    leaving: int
    distinct: int
    seconds: float


def fake_supply(generator: FakeGenerator, photo: np.ndarray, n: int, *, supply: Supply | None = None,
                full: bool = False) -> FakeSupplyReport:
    """Distinct *fakes* of the photo's largest face, where `identity_supply` counts distinct *targets*: one face
    of every pool person of the face's gender, then `n` recombinations (drawn as the generator's catalogue draws
    them, with `supply`), each swapped onto the face as `generator` swaps (its swapper at its alpha; with `full`,
    its escalation at alpha 1, as for its closest misses) and embedded at its place (68 points re-predicted) by
    every verifying recognizer. Gender and expression are not checked. What a photo needs from a supply is fakes
    that leave their source and do not match each other, and a swap keeps the source's coarse look, so distinct
    targets need not make distinct fakes (docs/pool.md, *Distinct fakes*)."""
    import time

    from mfmc.swap.ranking import MixCatalogue

    pipeline, pool = generator.pipeline, generator.pool
    names = list(generator.verifier.names)
    t0 = time.perf_counter()
    faces = pipeline.analyze(photo, recognizers=names)
    if not len(faces):
        raise ValueError("no face in the photo")
    face = faces[int(np.argmax(faces.areas))]
    gender = str(face.gender[0]) if face.gender is not None else "female"
    lm = np.asarray(face.landmarks68[0], np.float64)
    rec = Recombiner(pool, cache=1, supply=supply)
    people = _people(pool, (i for i in pool.ids if pool.entry(i).gender == gender))
    targets = [Target.plain(i, who) for who, i in people.items()]
    targets += MixCatalogue(pipeline, rec, names, size=n).recipes(gender)
    swapper, alpha = (generator.escalate, 1.0) if full else (generator.swapper, generator.alpha)
    rs = pipeline.recognizers
    kept = _Distinct({m: rs[m] for m in names})
    leaving = 0
    for t in targets:
        t_img, t_lm = rec.image(t)
        fake = swapper.swap(photo, lm, t_img, t_lm, alpha=alpha).patch.apply(photo)
        got = pipeline.analyze(fake, face, attributes=False, recognizers=names)
        emb = {m: got.embeddings[m][0] for m in names}
        if any(float(rs[m].distance(emb[m], face.embeddings[m][0])) <= generator.verifier.bar(m) for m in names):
            continue
        leaving += 1
        kept.offer(emb)
    return FakeSupplyReport(gender, alpha, len(targets), leaving, len(kept), time.perf_counter() - t0)
