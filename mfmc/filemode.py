"""File mode: a photo as one viewer sees it, from rule files, a graph file and reference photos (no platform).

```python
from mfmc.filemode import People, render_view
people = People.load("examples/people", pipeline)            # DIR/<user>.<ext> or DIR/<user>/*.jpg
view = render_view(image, "bob", engine, people, pipeline=pipeline, generator=generator,
                   context=Context(uploader="carol"))
view.image; [f.to_dict() for f in view.faces]                 # box, owner, decision, reasons, fallback
```

Identification: every face of the photo is embedded by each recognizer in `IDENTIFY_WITH` and compared with the
reference faces. A face gets an owner only when every recognizer agrees: the person's closest reference is under
each recognizer's calibrated same-person threshold, the person is each recognizer's nearest, and the face is the
person's nearest face in the photo. No match, recognizers that disagree, or a person who matches another face of
the photo better leave the face unknown, and an unknown face is faked for every viewer (fail closed).
Decisions come from `mfmc.policy.Engine`; faked faces are verified fakes from `mfmc.swap.FakeGenerator` (or
its verified fallbacks); revealed faces are left pixel-identical.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mfmc.errors import GenerationError, InvalidInputError, ModelNotFoundError, NoFaceError, UnknownUserError
from mfmc.policy import Context, Decision, Engine
from mfmc.swap import FakeGenerator, assign
from mfmc.swap.patch import FacePatch
from mfmc.swap.report import FaceReport
from mfmc.vision import FacePipeline, Faces, load_image
from mfmc.vision.images import IMAGE_SUFFIXES, image_files
from mfmc.vocabulary import Fallback

log = logging.getLogger(__name__)

#: The recognizers that must agree before a face is given an owner (the two calibrated families).
IDENTIFY_WITH = ("dlib", "facenet")
#: Faces smaller than this (pixels, shorter box side) are never identified: recognizers are unreliable there.
MIN_IDENTIFY = 20


@dataclass(frozen=True)
class Identity:
    """Who a face is (`owner`, None when unknown) and why."""

    owner: str | None
    reason: str
    distances: Mapping[str, float]  # per recognizer: distance to the owner's closest reference (empty if unknown)


class People:
    """Reference embeddings per user: `user -> recognizer -> (k, D)` for k reference photos."""

    def __init__(self, references: Mapping[str, Mapping[str, np.ndarray]], pipeline: FacePipeline,
                 recognizers: Sequence[str] = IDENTIFY_WITH) -> None:
        self.references = {user: dict(by_rec) for user, by_rec in references.items()}
        self.pipeline = pipeline
        self.recognizers = tuple(recognizers)

    @property
    def users(self) -> list[str]:
        return sorted(self.references)

    @classmethod
    def load(cls, folder: str | Path, pipeline: FacePipeline, recognizers: Sequence[str] = IDENTIFY_WITH) -> People:
        """Read `folder/<user>.<ext>` (one face) and `folder/<user>/` (several photos, one face each)."""
        root = Path(folder)
        if not root.is_dir():
            raise InvalidInputError(f"people folder `{root}` does not exist",
                                    help="give a folder of reference photos: DIR/<user>.jpg or DIR/<user>/*.jpg")
        _require_recognizers(pipeline, recognizers)
        photos: dict[str, list[Path]] = {}
        for entry in sorted(root.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                found = image_files(entry)
                if not found:
                    raise InvalidInputError(f"people folder `{entry}` holds no photos",
                                            help="put one or more photos of the user in it")
                photos.setdefault(entry.name, []).extend(found)
            elif entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
                photos.setdefault(entry.stem, []).append(entry)
        if not photos:
            raise InvalidInputError(f"people folder `{root}` holds no reference photos",
                                    help="add DIR/<user>.jpg (one face) or DIR/<user>/ (several photos)")
        references: dict[str, dict[str, np.ndarray]] = {}
        for user, paths in photos.items():
            vectors: dict[str, list[np.ndarray]] = {name: [] for name in recognizers}
            for path in paths:
                image = load_image(path)
                faces = pipeline.detect(image)
                if len(faces) == 0:
                    raise NoFaceError(f"no face found in reference photo `{path}`",
                                      help="a reference photo must show exactly one face, clearly visible")
                if len(faces) > 1:
                    raise InvalidInputError(f"reference photo `{path}` shows {len(faces)} faces",
                                            help="a reference photo must show exactly one face: crop it")
                faces = pipeline.analyze(image, faces, landmarks=False, attributes=False, recognizers=recognizers)
                for name in recognizers:
                    vectors[name].append(np.asarray(faces.embeddings[name][0], dtype=np.float32))
            references[user] = {name: np.stack(vs) for name, vs in vectors.items()}
        return cls(references, pipeline, recognizers)

    def identify(self, faces: Faces) -> list[Identity]:
        """One `Identity` per face of `faces` (which must carry embeddings for every recognizer used).

        Face i belongs to user u only if, for every recognizer, u's closest reference is under the threshold,
        u is the closest user to face i, and face i is the closest face of the photo to u. Anything less
        (no match, recognizers that disagree, a person who matches another face better) leaves it unknown.
        """
        users = self.users
        count = len(faces)
        if not users or count == 0:
            return [Identity(None, "no reference photos to match", {}) for _ in range(count)]
        # dist[name][i, u]: distance of face i to user u's closest reference photo
        dist = {name: np.array([[float(np.min(self.pipeline.recognizers[name].distance(
            faces.embeddings[name][i], self.references[u][name]))) for u in users] for i in range(count)])
            for name in self.recognizers}
        bars = {name: float(self.pipeline.recognizers[name].threshold) for name in self.recognizers}
        out = []
        sides = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
        for i in range(count):
            if sides[i] < MIN_IDENTIFY:
                out.append(Identity(None, f"too small to identify ({sides[i]:.0f} px < {MIN_IDENTIFY} px)", {}))
                continue
            nearest = {name: int(np.argmin(d[i])) for name, d in dist.items()}
            under = [u for k, u in enumerate(users) if all(dist[n][i, k] < bars[n] for n in self.recognizers)]
            if not under:
                out.append(Identity(None, "matches no reference photo", {}))
                continue
            if len(set(nearest.values())) > 1:
                said = ", ".join(f"{n}: `{users[k]}`" for n, k in nearest.items())
                out.append(Identity(None, f"ambiguous: the recognizers disagree ({said})", {}))
                continue
            k = next(iter(nearest.values()))  # within every threshold: someone is, and k is nearest on each
            user = users[k]
            better = {int(np.argmin(d[:, k])) for d in dist.values()} - {i}
            if better:
                out.append(Identity(None, f"ambiguous: `{user}` matches face {min(better)} of the photo better", {}))
                continue
            dists = {n: float(dist[n][i, k]) for n in self.recognizers}
            detail = ", ".join(f"{n} {d:.2f} < {bars[n]:g}" for n, d in dists.items())
            others = [u for u in under if u != user]
            extra = f"; also within the thresholds of {', '.join(f'`{u}`' for u in others)}" if others else ""
            out.append(Identity(user, f"identified as `{user}` ({detail}){extra}", dists))
        return out


@dataclass(frozen=True)
class FaceView:
    """One face of a rendered view: where it is, whose it is, what the viewer gets and why."""

    index: int
    box: tuple[float, float, float, float]
    identity: Identity
    decision: Decision
    fallback: Fallback | None = None  # for faked faces: how the fake was made (`none`: a verified swap)
    verified: bool | None = None
    fallback_reason: str = ""  # why the generator fell back (empty for a swap that passed at once)

    @property
    def owner(self) -> str | None:
        return self.identity.owner

    @property
    def reveal(self) -> bool:
        return self.decision.reveal

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "box": [round(v, 1) for v in self.box], "owner": self.owner,
                "decision": self.decision.value,
                "reasons": [self.identity.reason, *self.decision.reasons],
                "fallback": None if self.fallback is None else self.fallback.value, "verified": self.verified,
                "fallback_reason": self.fallback_reason}


@dataclass(frozen=True)
class View:
    """A photo as one viewer sees it."""

    viewer: str
    image: np.ndarray
    faces: tuple[FaceView, ...]

    @property
    def revealed(self) -> list[int]:
        return [f.index for f in self.faces if f.reveal]


def render_view(image: np.ndarray, viewer: str, engine: Engine, people: People, *, generator: FakeGenerator,
                context: Context | None = None, seed: int = 0) -> View:
    """Detect and identify the faces of `image`, decide each for `viewer`, and fake every face not revealed.

    The faked faces obey the rules of `mfmc anonymize` (`FakeGenerator.patches` with `only`): each fake avoids
    the photo's other faces, real (revealed or not) and faked, and is re-checked on the finished view. A fake's
    seed depends only on the photo's face and (for owners with `fakes per_viewer`) the viewer. A `fakes
    per_viewer` face's fake takes an identity from the viewer's share only (`share`): the face's candidate
    identities dealt out among the graph's users who get a fake of it, so no two viewers rendering with the same
    `seed` see one identity. A viewer whose share holds no passing target gets a second making of the photo in
    which that face takes any of its candidates (its identity may then repeat another viewer's: its
    `fallback_reason` says so), kept when it swaps more faces; else the face's verified fallback.
    """
    engine.graph.require(viewer)
    for user in people.users:
        if user not in engine.graph:
            raise UnknownUserError(f"`{user}` has a reference photo but is not a user of the graph",
                                   help="rename the photo after a graph user, or add the user to the graph")
    context = context or Context()
    if context.uploader is not None:
        engine.graph.require(context.uploader)
    pipeline = people.pipeline
    faces = pipeline.detect(image)
    if len(faces) == 0:
        return View(viewer, image.copy(), ())
    order = np.argsort(faces.boxes[:, 0], kind="stable")  # left to right: stable face indices
    faces = pipeline.analyze(image, faces[order], landmarks=False, attributes=False, recognizers=people.recognizers)
    identities = people.identify(faces)
    decisions = [engine.check(viewer, ident.owner, context) for ident in identities]
    fake_idx = [i for i, d in enumerate(decisions) if not d.reveal]
    out = image.copy()
    made: dict[int, tuple[Fallback, bool, str]] = {}
    if fake_idx:
        # the photo-level rules of `mfmc anonymize` (FakeGenerator.patches): a fake matches no other face of the
        # photo, real (revealed or not) or faked, no two fakes share a target identity, a fake only a floor let
        # near another real face is made again, and every fake is re-checked on the finished photo
        seeds: dict[int, int] = {}
        shares: dict[int, Share] = {}
        for i in fake_idx:
            owner = identities[i].owner
            per_viewer = owner is not None and engine.policy.fakes_per_viewer(owner)
            seeds[i] = _seed(seed, i, viewer if per_viewer else "")
            if per_viewer:
                viewers = [u for u in engine.graph.users if not engine.check(u, owner, context).reveal]
                shares[i] = share(generator, image, faces, i, viewer, viewers, seed)
        supply = generator.ranker.identities() if shares else frozenset()
        skip = {i: supply - set(s.identities) for i, s in shares.items() if s.viewers > 1}
        with generator.photo(image):  # the second making reuses the first's swaps and measures
            pairs = generator.patches(image, faces, only=fake_idx, seeds=seeds, skip=skip)
            # a face whose share held no passing target is made again from all its candidates, in a second making
            # of the photo (so that the photo-level rules hold as one), kept when it swaps more faces; its identity
            # may then repeat another viewer's, and its reason says so
            released = [r.index for _, r in pairs if r.index in skip and not assign.swapped(r)
                        and shares[r.index].total > len(shares[r.index].identities)]
            free: set[int] = set()  # the faces the making shown made from all their candidates
            if released:
                within = {i: ids for i, ids in skip.items() if i not in released}
                again = generator.patches(image, faces, only=fake_idx, seeds=seeds, skip=within)
                if _swaps(again) > _swaps(pairs):
                    pairs, free = again, set(released)
        for patch, report in pairs:
            i = report.index
            if i in skip and i not in free and assign.swapped(report) and report.identity not in shares[i].identities:
                raise GenerationError(f"face {i}'s fake (`{report.identity}`) is not of the viewer's share")  # never
            out = patch.apply(out)
            fallback = Fallback(report.fallback)
            why = "" if fallback is Fallback.NONE else report.reason
            if i in released:
                why = shares[i].made_again(why, kept=i in free, swapped=assign.swapped(report))
                log.info("face %d for %s: %s", i, viewer, why)
            elif why and i in skip:
                why += f" ({shares[i].describe()})"
            made[i] = (fallback, bool(report.verified), why)
    views = []
    for i, (ident, decision) in enumerate(zip(identities, decisions, strict=True)):
        fallback, verified, why = made.get(i, (None, None, ""))
        box = tuple(float(v) for v in faces.boxes[i])
        views.append(FaceView(i, box, ident, decision, fallback, verified, why))  # type: ignore[arg-type]
    return View(viewer, out, tuple(views))


@dataclass(frozen=True)
class Share:
    """A `fakes per_viewer` face's candidate identities that one viewer's fakes may take: the `position`-th of
    every `viewers`-th of the face's `total` candidates in rank order."""

    identities: tuple[str, ...]
    position: int
    viewers: int
    total: int

    def describe(self) -> str:
        return (f"fakes per_viewer: this viewer's share is {len(self.identities)} of the face's {self.total} "
                f"candidate identities, dealt among the {self.viewers} viewers who get a fake of it")

    def made_again(self, reason: str, *, kept: bool, swapped: bool) -> str:
        """The reason of a face whose share held no passing target, made again from all its candidates
        (`render_view`): `kept` whether that making was kept, `swapped` whether the face swapped; `reason`, the
        generator's, for a fallback."""
        first = (f"fakes per_viewer: the share of viewer {self.position + 1}/{self.viewers} ({len(self.identities)} "
                 f"of the face's {self.total} candidate identities) had no passing target")
        then = ("the identity may repeat another viewer's" if kept and swapped else "no fake of it held" if kept
                else "the photo swapped no more faces, so the making within the shares is kept")
        said = f"{first}; made again from all {self.total}: {then}"
        return f"{reason} ({said})" if reason else said


def share(generator: FakeGenerator, image: np.ndarray, faces: Faces, index: int, viewer: str,
          viewers: Sequence[str], seed: int) -> Share:
    """`viewer`'s share of face `index`'s candidate identities among `viewers` (those who get a fake of it).

    Stateless and the same in every viewer's render: the candidates are the generator's ranked identities for
    the face drawn with the photo's seed and nothing used (`FakeGenerator.ranked_identities`), the viewers are
    ordered by a draw from (seed, face, user), and the viewer at position p takes candidates p, p + n, p + 2n, …
    of n viewers: disjoint shares, each with some of the best-ranked. A lone viewer takes them all."""
    order = sorted(viewers, key=lambda u: (_seed(seed, index, u), u))
    if viewer not in order:
        raise InvalidInputError(f"`{viewer}` does not get a fake of face {index}")
    p, n = order.index(viewer), len(order)
    ranked = generator.ranked_identities(image, faces, index, seed=_seed(seed, index, ""))
    return Share(tuple(ranked[p::n]), p, n, len(ranked))


def _swaps(pairs: Sequence[tuple[FacePatch, FaceReport]]) -> int:
    return sum(assign.swapped(r) for _, r in pairs)


def _seed(base: int, index: int, key: str) -> int:
    return (base * 1_000_003 + zlib.crc32(f"{index}:{key}".encode())) % (2**31)


def _require_recognizers(pipeline: FacePipeline, names: Sequence[str]) -> None:
    missing = [n for n in names if n not in pipeline.recognizers]
    if missing:
        raise ModelNotFoundError(f"identification needs the recognizers {', '.join(f'`{n}`' for n in missing)}",
                                 help="run `mfmc doctor` to see which models are installed")
