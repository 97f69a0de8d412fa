"""Which targets the generator tries for a face, and in which order (`Ranker`); the recombined identities it
draws on, composed and embedded once (`MixCatalogue`).

Targets are ranked by predicted reach: a training-free swap moves the embedding only part of the way to the
target (design notes §6), so a target whose own distance to the source, times that reach, does not clear a
recognizer's bar rarely passes. Plain pool targets carry stored embeddings; recombined ones are embedded from
their composed crop. Recombinations are drawn once per pool and gender (`MixCatalogue`, `size` recipes
over the pool's closed-mouthed, neutral faces of that gender) — not per face, so a photo or a folder of photos
pays their composition and embedding once, and the next process reads them from the disk cache
(`mfmc.vision.cache`, keyed by the pool's index file, the recipe supply, gender and recognizer names;
safe to delete). A pool folder may also hold its catalogue (`CATALOGUE_FILE`, written by `write_catalogue`;
the built-in pool ships one, made by scripts/build_default_pool.py): the recipes, 68 points and embeddings,
keyed by the sha256 of the pool's index files (`catalogue_key`), read instead of composing anything; a rebuilt
pool or another recipe supply never uses it, and only a recognizer it lacks is embedded (and cached) at first use.
Among the targets predicted to clear every bar the seed draws the order (`seeded`: another viewer of a
`fakes per_viewer` face in file mode tries another person first).
Only the *order* of candidates comes from these embeddings: every fake is verified on its own
pixels, so a stale entry could cost attempts, never a leak.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mfmc.swap import landmarks as lmk
from mfmc.swap.recombine import Recombiner, Target
from mfmc.swap.verify import Avoid, Verifier

if TYPE_CHECKING:
    from mfmc.pool import Candidate, TargetPool
    from mfmc.vision import FacePipeline, Faces

log = logging.getLogger(__name__)

# A training-free swap moves the embedding only part of the way to the target (design notes §6): on the
# benchmark's 52 attempts (docs/swap.md) the result-to-source distance was 0.85 x the target-to-source one
# on dlib (0.71-0.93) and 0.78 x on FaceNet (0.45-0.95). A target whose own distance times this reach does
# not clear a recognizer's bar rarely passes, so such targets go last. Other recognizers: SWAP_REACH.
SWAP_REACH = 0.85
REACH = {"dlib": 0.85, "facenet": 0.78}
# recombined identities drawn per pool and gender (not per seed: the server and the clients seed every face and
# viewer apart, and a catalogue per seed had cost 24 compositions and ~2.4 MB of disk cache per face)
MIX_CATALOGUE = 24
_MIX_VERSION = "mfmc-mix-catalogue-4"
# a pool folder's own catalogue (`write_catalogue`): read before the disk cache, never written at fake time
CATALOGUE_FILE = "mixes.npz"
# the pool files a catalogue derives from (recipes: the index's people, genders, sources; composition and
# 68 points: the attributes' landmarks, poses and qualities); their sha256 keys a shipped catalogue
_POOL_FILES = ("index.json", "attributes.npz")
# a recombined crop is softer than a pool photo (its parts are resampled and blended: obama.jpg's 145 px
# inter-ocular face got a visibly blurred inner face at 2.3x a composite's 62 px); faces larger than this
# factor of a composite's inter-ocular distance get pool faces only (plain crops held up at 2.6x: biden.jpg)
MIX_MAX_SCALE = 1.5
# when no pool face fits the source's shape within `max_shape_residual`: the closest ones, up to this factor of
# the bound, within SHAPE_SLACK of the closest (docs/swap.md)
SHAPE_WIDEN = 1.5
SHAPE_SLACK = 0.02


@dataclass(frozen=True)
class Mix:
    """A recombined target of the catalogue: its 68 points (crop coordinates) and embeddings per recognizer."""

    target: Target
    landmarks: np.ndarray
    embeddings: dict[str, np.ndarray]


class MixCatalogue:
    """Recombined targets of one pool, `size` per gender: recipes over the pool's closed-mouthed, neutral
    faces of the gender (`Recombiner.recipes`, best-quality, most frontal face of each person as the base), each
    composed and embedded (one batched call per recognizer) the first time the gender is asked for, then
    kept in memory and on disk. The composed crops are cached on disk too, each read when the swap needs it."""

    def __init__(self, pipeline: FacePipeline, recombiner: Recombiner, names: Sequence[str],
                 size: int = MIX_CATALOGUE) -> None:
        self.pipeline = pipeline
        self.recombiner = recombiner
        self.names = list(names)
        self.size = max(0, int(size))
        self._mixes: dict[str | None, list[Mix]] = {}
        self.built = 0  # recipes composed and embedded by this process (the rest came from the disk cache)
        self.embedded = 0  # embeddings computed by this process (recipes x recognizers)
        self._shipped: dict[str, np.ndarray] | None = None

    @property
    def pool(self) -> TargetPool:
        return self.recombiner.pool

    def mixes(self, gender: str | None) -> list[Mix]:
        """The catalogue of `gender` (built, or read from the disk cache, on first use)."""
        if gender not in self._mixes:
            self._mixes[gender] = self._load(gender)
        return self._mixes[gender]

    def recipes(self, gender: str | None) -> list[Target]:
        donors = [i for i in self.pool.ids if self.pool.entry(i).gender == gender]
        # closed-mouthed, neutral donors: a recombination's mouth, eyes and brows are its donors', and an open
        # "surprise" mouth or a grin pasted into a closed-mouthed source looked grotesque (openpeople's sheets);
        # the swappers keep an open-mouthed source's own mouth interior
        calm = [i for i in donors
                if not self.pool.entry(i).mouth_is_open and self.pool.expression(i) in (None, "neutral")]
        if len({self.pool.identity(i) for i in calm}) >= 2:
            donors = calm
        # the base of a recipe is a person's first face among the donors: the sharpest, most frontal one
        donors.sort(key=lambda i: (-round(self.pool.entry(i).quality, 2),
                                   abs((self.pool.entry(i).pose or (0.0, 0.0, 0.0))[0]), i))
        return self.recombiner.recipes(donors, self.size, seed=0, key=b"catalogue:" + str(gender).encode())

    def _load(self, gender: str | None) -> list[Mix]:
        """The catalogue from the pool folder's own (`CATALOGUE_FILE`, when it has every recognizer), else
        from the disk cache (recipes, 68 points, embeddings), else drawn (or the pool folder's recipes), composed,
        embedded with the recognizers missing and stored. Drawing alone reads every person's crop once (the beard
        test of `Recombiner.recipes`)."""
        if not self.size:
            return []
        shipped = self.shipped(gender)
        if shipped is not None and all(n in shipped[2] for n in self.names):
            targets, lms, embs = shipped
            return [Mix(t, lms[k], {n: embs[n][k] for n in self.names}) for k, t in enumerate(targets)]
        path = self._entry("mixes", json.dumps([gender, self.size, sorted(self.names)]))
        cached = _read_npz(path)
        if cached is not None and "recipes" in cached and all(f"emb_{n}" in cached for n in self.names):
            targets = _targets(str(cached["recipes"]))
            lms, embs = cached["landmarks"], {n: cached[f"emb_{n}"] for n in self.names}
        else:
            if shipped is not None:  # its recipes and points; only the recognizers it lacks are embedded
                targets, lms, have = shipped
                embs = {n: have[n] for n in self.names if n in have}
                embs.update(self._embed(targets, [n for n in self.names if n not in have]))
            else:
                targets = self.recipes(gender)
                if not targets:
                    return []
                lms, embs = self._build(targets)
            _write_npz(path, {"recipes": np.array(_recipes_json(targets)), "landmarks": lms,
                              **{f"emb_{n}": embs[n] for n in self.names}})
        return [Mix(t, lms[k], {n: e[k] for n, e in embs.items()}) for k, t in enumerate(targets)]

    def shipped(self, gender: str | None) -> tuple[list[Target], np.ndarray, dict[str, np.ndarray]] | None:
        """The pool folder's own catalogue of `gender` (recipes, 68 points, embeddings of the recognizers it
        has, of this pipeline's dimensions), or None when the folder has none or one of another pool, recipe
        supply or size (`catalogue_key`)."""
        if self._shipped is None:
            self._shipped = {}
            root = self.pool.index.root
            if root is not None and (Path(root) / CATALOGUE_FILE).is_file():
                try:
                    with np.load(Path(root) / CATALOGUE_FILE, allow_pickle=False) as z:
                        data = {k: z[k] for k in z.files}
                except (OSError, ValueError, zipfile.BadZipFile) as err:
                    log.warning("mix catalogue `%s` unusable (%s)", Path(root) / CATALOGUE_FILE, err)
                    data = {}
                key = catalogue_key(self.pool, self.recombiner, self.size)
                if "key" in data and str(data["key"]) == key:
                    self._shipped = data
                elif data:
                    log.info("mix catalogue `%s` is another pool's or recipe supply's: not used",
                             Path(root) / CATALOGUE_FILE)
        prefix = f"{gender}/"
        if prefix + "recipes" not in self._shipped:
            return None
        targets = _targets(str(self._shipped[prefix + "recipes"]))
        lms = self._shipped[prefix + "landmarks"]
        embs = {}
        for name, rec in self.pipeline.recognizers.items():
            e = self._shipped.get(f"{prefix}emb_{name}")
            if e is not None and e.shape == (len(targets), rec.dim):
                embs[name] = e
        return targets, lms, embs

    def _build(self, targets: list[Target]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        images = [self.image(t) for t in targets]
        embs = self._embed(images, self.names)
        self.built += len(targets)
        return np.stack([np.asarray(lm, np.float32) for _, lm in images]), embs

    def _embed(self, images: Sequence[tuple[np.ndarray, np.ndarray]] | Sequence[Target],
               names: Sequence[str]) -> dict[str, np.ndarray]:
        """Embeddings with `names` (one batched call per recognizer) of composed crops and their 68 points, or
        of targets (composed here, or read from the crop cache)."""
        from mfmc.vision import Faces as FacesType
        from mfmc.vision.alignment import five_from_68

        if not names:
            return {}
        items: list[tuple[np.ndarray, Faces]] = []
        for t in images:
            img, lm = self.image(t) if isinstance(t, Target) else t
            lm = np.asarray(lm, np.float32)
            box = np.array([[lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()]], np.float32)
            items.append((img, FacesType(boxes=box, scores=np.ones(1, np.float32),
                                         landmarks5=five_from_68(lm)[None].astype(np.float32),
                                         landmarks68=lm[None])))
        self.embedded += len(items) * len(names)
        return {n: np.asarray(self.pipeline.recognizers[n].embed_many(items), np.float32) for n in names}

    def image(self, target: Target) -> tuple[np.ndarray, np.ndarray]:
        """A target's crop and 68 points: the recombiner's memory cache, else the disk cache, else composed."""
        if target.is_plain or self.recombiner.has(target):
            return self.recombiner.image(target)
        path = self._entry("mix-crop", repr((target.parts, target.scales, target.shape)))
        hit = _read_npz(path)
        if hit is not None and "crop" in hit and "landmarks" in hit:
            out = (np.ascontiguousarray(hit["crop"]), np.asarray(hit["landmarks"], np.float64))
            self.recombiner.remember(target, *out)
            return out
        img, lm = self.recombiner.image(target)
        _write_npz(path, {"crop": img, "landmarks": np.asarray(lm, np.float64)})
        return img, lm

    def _entry(self, name: str, what: str) -> Path | None:
        from mfmc.vision import cache

        root = self.pool.index.root
        if root is None:
            return None
        digest = hashlib.sha256(f"{what}\n{self.recombiner.supply!r}".encode()).hexdigest()
        return cache.entry_path(name, Path(root) / "index.json", version=_MIX_VERSION, content_hash=digest)


def _targets(recipes: str) -> list[Target]:
    return [Target(r["id"], r["identity"], tuple(r["parts"]), tuple(r["scales"]), tuple(r["shape"]))
            for r in json.loads(recipes)]


def _recipes_json(targets: Sequence[Target]) -> str:
    return json.dumps([{"id": t.id, "identity": t.identity, "parts": list(t.parts), "scales": list(t.scales),
                        "shape": list(t.shape)} for t in targets])


def catalogue_key(pool: TargetPool, recombiner: Recombiner, size: int) -> str:
    """What a pool folder's catalogue is valid for: the catalogue version, the sha256 of the pool's index and
    attributes files (a rebuilt pool has other ones), the recipe supply and the catalogue's size."""
    root = pool.index.root
    digest = hashlib.sha256(f"{_MIX_VERSION}\n{recombiner.supply!r}\n{int(size)}\n".encode())
    for name in _POOL_FILES:
        try:
            digest.update(name.encode() + b"\0" + hashlib.sha256((Path(root) / name).read_bytes()).digest())
        except (OSError, TypeError):  # no folder, or a file missing: nothing can match
            return ""
    return digest.hexdigest()


def write_catalogue(catalogue: MixCatalogue, genders: Sequence[str | None], path: Path | None = None) -> Path:
    """Draw, compose and embed the catalogue of every gender in `genders` with the catalogue's recognizers (crops
    read from the disk cache when it is on: scripts/build_default_pool.py turns it off) and write it into the pool
    folder (`CATALOGUE_FILE`, or `path`), deterministically: the same pool, code and models give the same bytes
    (zip entries in a fixed order with a fixed date)."""
    root = catalogue.pool.index.root
    if root is None:
        raise ValueError("the pool has no folder to write its catalogue into")
    arrays: dict[str, np.ndarray] = {"key": np.array(catalogue_key(catalogue.pool, catalogue.recombiner,
                                                                   catalogue.size))}
    for gender in genders:
        targets = catalogue.recipes(gender)
        if not targets:
            continue
        lms, embs = catalogue._build(targets)
        arrays[f"{gender}/recipes"] = np.array(_recipes_json(targets))
        arrays[f"{gender}/landmarks"] = lms
        for name in sorted(embs):
            arrays[f"{gender}/emb_{name}"] = embs[name]
    out = Path(root) / CATALOGUE_FILE if path is None else Path(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.array(arrays[name], order="C"), allow_pickle=False)  # 0-d kept
            zf.writestr(info, member.getvalue())
    out.write_bytes(buf.getvalue())
    return out


def _read_npz(path: Path | None) -> dict[str, np.ndarray] | None:
    from mfmc.vision import cache

    data = None if path is None else cache.read_entry(path)
    if data is None:
        return None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:  # a foreign or damaged entry: rebuilt and replaced
        log.warning("mix cache entry `%s` unusable (%s); rebuilding it", path, err)
        return None


def _write_npz(path: Path | None, arrays: Mapping[str, np.ndarray]) -> None:
    from mfmc.vision import cache

    if path is None:
        return
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    cache.write_entry(path, buf.getvalue())


@dataclass
class FaceScores:
    """What ranking faces computed that depends only on a face and a pool face, for ranking them again (the
    generator keeps one per photo it is making, `generate._Memo`: a face made again against other faces reads its
    shape residuals and predicted reach from here). Keyed by everything each depends on: the face's 68 points for
    a residual, its embeddings for a reach; the same floats as computing them again."""

    residuals: dict[tuple[bytes, str], float] = dataclasses.field(default_factory=dict)
    promises: dict[tuple[bytes, str], float] = dataclasses.field(default_factory=dict)


def _embeddings_key(face: Faces) -> bytes:
    """The bytes of a face's embeddings (by recognizer name), for `FaceScores` keys."""
    out = b""
    for name in sorted(face.embeddings):
        emb = np.ascontiguousarray(face.embeddings[name][0])
        out += name.encode() + b"\0" + str(emb.dtype).encode() + b"\0" + emb.tobytes()
    return out


@dataclass
class Ranked:
    """A face's candidates: pool faces predicted to clear every bar (`promising`, tried first), the other pool
    faces (`rest`) and the ids of every pool face the query allowed (`donors`: what recombinations may use)."""

    promising: list[Target]
    rest: list[Target]
    donors: list[str]
    notes: list[str] = dataclasses.field(default_factory=list)


class Ranker:
    """The generator's choice and order of targets for one face (see `FakeGenerator`)."""

    def __init__(self, pipeline: FacePipeline, pool: TargetPool, verifier: Verifier, recombiner: Recombiner, *,
                 strategy: str, candidates: int, max_attempts: int, max_shape_residual: float,
                 match_expression: bool, expression_first: bool, rank_mixes: bool,
                 mixes: int = MIX_CATALOGUE) -> None:
        self.pipeline = pipeline
        self.pool = pool
        self.verifier = verifier
        self.strategy = strategy
        self.candidates = candidates
        self.max_attempts = max_attempts
        self.max_shape_residual = max_shape_residual
        self.match_expression = match_expression
        self.expression_first = expression_first
        self.rank_mixes = rank_mixes
        self.catalogue = MixCatalogue(pipeline, recombiner, verifier.names, size=mixes)

    def plain(self, face: Faces, seed: int, avoid: Avoid, scores: FaceScores | None = None) -> Ranked:
        """Pool targets: promising ones (ranked), then the others. `scores`: residuals and reaches computed
        before (read and filled; the same result as without).

        Widening steps, never to another gender (a woman given a male target reads male after any blending,
        design notes §6b): the pool's own filters; without the age group; without its expression filters (the
        swap keeps an open mouth or the eyes itself); without its quality and resolution floors. The pose
        filter is widened only to 40° of yaw as the last step (any pose for a source turned ≥ 25°), and our
        landmark check drops whatever shape mismatch the pose estimate misses. Identities in `avoid.targets`
        (used for another face of the photo) are left out.
        """
        from mfmc.pool import Compatibility

        any_expression = Compatibility(match_mouth=False, avoid_closed_eyes=False)
        any_quality = dataclasses.replace(any_expression, min_quality=None, min_resolution=None)
        wide_pose = dataclasses.replace(any_quality, max_yaw=40.0, max_pitch=30.0)
        # the swap turns a target to the source's pose (mfmc.swap.pose): frontal targets for sources up to 60° of
        # yaw and 30° of pitch (pool targets are within 30° themselves)
        any_pose = dataclasses.replace(any_quality, max_yaw=90.0, max_pitch=60.0)
        turned_yaw = 25.0  # degrees: frontal sources keep the query they had (another step reorders targets)
        # (what the report says, the query's same_group, its compatibility)
        steps: list[tuple[str, bool | str, Compatibility | None]] = [
            ("", True, None),
            ("any age group", "gender", None),
            ("any expression", "gender", any_expression),
            ("any quality", "gender", any_quality),
            ("wider pose", "gender", wide_pose),
        ]
        yaw = float(face.pose[0][0]) if face.pose is not None else float("nan")
        if np.isfinite(yaw) and abs(yaw) >= turned_yaw:
            steps.append(("any pose (turned to the source's)", "gender", any_pose))
        lm = np.asarray(face.landmarks68[0], dtype=np.float64)
        known = FaceScores() if scores is None else scores
        lm_key, emb_key = lm.tobytes(), _embeddings_key(face)

        def promise(target_id: str) -> float:
            key = (emb_key, target_id)
            if key not in known.promises:
                known.promises[key] = self.promise(face, target_id)
            return known.promises[key]

        def residual(target_id: str) -> float:  # once per pool face: the widened shape check reads them again
            key = (lm_key, target_id)
            if key not in known.residuals:
                known.residuals[key] = self.residual(lm, target_id)
            return known.residuals[key]

        seen: dict[str, Candidate] = {}
        good: list[Candidate] = []
        fitting_all: list[Candidate] = []
        used = set(avoid.targets)
        notes: list[str] = []
        for label, same_group, compatibility in steps:
            found = self.pool.query(face, strategy=self.strategy, k=4 * self.candidates, seed=seed,
                                    same_group=same_group, compatibility=compatibility)
            new = [c for c in found if c.id not in seen]
            for c in new:
                seen[c.id] = c
            fitting = [c for c in new if self.pool.identity(c.id) not in used
                       and residual(c.id) <= self.max_shape_residual]
            fitting_all += fitting
            promising = [c for c in fitting if promise(c.id) >= 1.0]
            good += promising
            if label and promising:
                notes.append(f"pool query widened: {label}")
            if len({self.pool.identity(c.id) for c in good}) >= self.max_attempts:
                break
        if not fitting_all and seen:
            # no pool face fits the source's shape within the bound (an unusual face shape, a mask or a pitch
            # that bends the 68 points): the closest shapes, if they are near the bound, rather than no swap
            free = [c for c in seen.values() if self.pool.identity(c.id) not in used]
            best = min((residual(c.id) for c in free), default=float("inf"))
            if best <= self.max_shape_residual * SHAPE_WIDEN:
                fitting_all = [c for c in free if residual(c.id) <= best + SHAPE_SLACK]
                good = [c for c in fitting_all if promise(c.id) >= 1.0]
                notes.append(f"shape check widened to {best + SHAPE_SLACK:.3f}: no pool face within "
                             f"{self.max_shape_residual:.3f} of the source's shape")
        # one target per identity (several faces of one person rarely change the verdict), best first; of a
        # person's faces, one labelled with the source's expression class when there is one
        wanted = None if face.expression is None or not self.match_expression else str(face.expression[0])
        by_identity: dict[str, Candidate] = {}
        for c in good + sorted(fitting_all, key=lambda c: -promise(c.id)):
            who = self.pool.identity(c.id)
            have = by_identity.get(who)
            if have is None or (wanted is not None and self.pool.expression(have.id) != wanted
                                and self.pool.expression(c.id) == wanted):
                by_identity[who] = c
        plain = [Target.plain(c.id, self.pool.identity(c.id)) for c in by_identity.values()]
        if wanted is not None and self.expression_first:
            # the source's expression class first (a target labelled otherwise imports its expression);
            # unlabelled targets (portraits, selfies: mostly neutral or smiling) in between
            def mismatch(t: Target) -> int:
                label = self.pool.expression(t.parts[0])
                return 0 if label == wanted else 1 if label is None else 2

            plain.sort(key=mismatch)
        # those predicted to clear every bar in an order drawn from the seed (`seeded`): file mode is stateless,
        # and another viewer's seed must be able to pick another person (the expression-first order above then
        # holds for the others only; measured in docs/swap.md, "Per-viewer fakes in file mode")
        return Ranked(seeded([t for t in plain if promise(t.parts[0]) >= 1.0], seed, face, b"plain"),
                      [t for t in plain if promise(t.parts[0]) < 1.0], [c.id for c in fitting_all], notes)

    def rest(self, face: Faces, seed: int, avoid: Avoid, ranked: Ranked) -> tuple[list[Target], str]:
        """After the promising pool faces: the recombined identities of the source's gender that fit its shape
        and are not used in the photo — predicted to clear every bar first, in a seeded order — then everything else
        (the other pool faces, the other recombinations) by predicted reach; and a note for the report.
        Without `rank_mixes`: the recombinations in a seeded order, then the other pool faces."""
        if not ranked.donors or not self.catalogue.size:
            return list(ranked.rest), ""
        lm = np.asarray(face.landmarks68[0], dtype=np.float64)
        gender = self.pool.entry(ranked.donors[0]).gender
        used = set(avoid.targets)
        size = lmk.interocular(lm)
        mixes = [m for m in self.catalogue.mixes(gender)
                 if m.target.identity not in used and self.shape_fits(lm, m.landmarks)
                 and size <= MIX_MAX_SCALE * lmk.interocular(m.landmarks)]
        if not self.rank_mixes:
            rng = np.random.default_rng(np.frombuffer(hashlib.sha256(
                int(seed).to_bytes(16, "little", signed=True) + face_key(face)).digest(), dtype=np.uint64))
            order = [mixes[k].target for k in rng.permutation(len(mixes))]
            return order + list(ranked.rest), ""
        score = {m.target.id: self.reach(face, m.embeddings) for m in mixes}
        for t in ranked.rest:
            score[t.id] = self.promise(face, t.parts[0])
        good = seeded([m.target for m in mixes if score[m.target.id] >= 1.0], seed, face, b"mixes")
        other = sorted([*ranked.rest, *(m.target for m in mixes if score[m.target.id] < 1.0)],
                       key=lambda t: -score[t.id])
        note = (f"recombined targets ranked: {len(good)} of {len(mixes)} predicted to clear the bars" if mixes
                else "no recombined target: the face is larger than their detail holds" if size > 0 and all(
                    size > MIX_MAX_SCALE * lmk.interocular(m.landmarks) for m in self.catalogue.mixes(gender))
                else "")
        return good + other, note

    def identities(self) -> frozenset[str]:
        """Every identity a target can have: the pool's people and the recombined identities of each of its
        genders (what `Avoid.targets` must hold to leave all but some out)."""
        genders = dict.fromkeys(self.pool.entry(i).gender for i in self.pool.ids)
        mixes = {m.target.identity for g in genders for m in self.catalogue.mixes(g)}
        return frozenset({self.pool.identity(i) for i in self.pool.ids} | mixes)

    def residual(self, lm: np.ndarray, target_id: str) -> float:
        from mfmc.swap import pose

        return pose.shape_residual(lm, np.asarray(self.pool.entry(target_id).landmarks68, dtype=np.float64))

    def targets(self, face: Faces, seed: int, avoid: Avoid) -> list[Target]:
        """Every target in the order the generator would try them (`plain` then `rest`)."""
        ranked = self.plain(face, seed, avoid)
        return ranked.promising + self.rest(face, seed, avoid, ranked)[0]

    def shape_fits(self, lm: np.ndarray, target: np.ndarray) -> bool:
        """Whether a target's landmarks, posed and similarity-aligned to the source's, differ little enough for a
        warp to look like a face (turned heads onto frontal faces look grotesque)."""
        from mfmc.swap import pose

        return pose.shape_residual(lm, np.asarray(target, np.float64)) <= self.max_shape_residual

    def promise(self, face: Faces, target_id: str) -> float:
        """Predicted min over recognizers of (result distance / bar) for a pool face: its own distance to the
        source times the swap's measured reach (REACH). Below 1 a swap rarely passes; such targets go last.
        An entry without stored embeddings is not reranked (inf)."""
        return self.reach(face, self.pool.entry(target_id).embeddings)

    def reach(self, face: Faces, target: Mapping[str, np.ndarray]) -> float:
        """Min over the verifiers both sides have of (target-to-source distance × REACH / bar); inf for none."""
        score = float("inf")
        for name in self.verifier.names:
            if name in target and name in face.embeddings:
                d = float(self.pipeline.recognizers[name].distance(target[name], face.embeddings[name][0]))
                score = min(score, d * REACH.get(name, SWAP_REACH) / self.verifier.bar(name))
        return score


def seeded(targets: Sequence[Target], seed: int, face: Faces, tag: bytes) -> list[Target]:
    """`targets` in an order drawn from (seed, face, tag): another seed (another viewer of a `fakes per_viewer`
    face in file mode, which keeps no record of the other viewers' fakes) tries another of them first."""
    digest = hashlib.sha256(b"mfmc-seeded-order-v1\0" + tag + b"\0" + int(seed).to_bytes(16, "little", signed=True)
                            + face_key(face)).digest()
    rng = np.random.default_rng(np.frombuffer(digest, dtype=np.uint64))
    return [targets[k] for k in rng.permutation(len(targets))]


def face_key(face: Faces) -> bytes:
    """Bytes fixing the draws of one face: its box, rounded (the same photo face gives the same draws)."""
    return np.round(np.asarray(face.boxes[0], dtype=np.float64)).astype("<i4").tobytes()
