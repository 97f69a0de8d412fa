"""The photo as it will be seen: every fake re-checked on the finished photo, with every other patch applied.

Each fake is verified on the original photo with its own patch alone (`FakeGenerator.fake_face`); the output has
every face's patch. Where faces are close (a crowded group photo), a recognizer's crop of one face takes in part
of a neighbour, so the neighbour's fake changes what the recognizer reads: on the real photos of issue 11, with
12 candidates per face, two fakes that had each passed verification matched each other on FaceNet in the
finished photo (seeds 7 and 8; docs/pool.md, *Photo-level assignment*). `audit` re-embeds, on the finished photo,
every swapped face whose surroundings another patch touches (landmarks re-predicted, as anyone would) and says
which break a rule: a fake within a recognizer's bar of its source, of another fake, or of another real face
(with the floors of `FakeGenerator.photo_avoid`). The generator then makes those faces again against what the
finished photo shows (`FakeGenerator.patches`).

Before that, a fake that only a floor let within a recognizer's bar of another real face (the two originals were
already that close) is made again where the photo can do without it (`FakeGenerator._unfloored`: `breaks` finds
it, `collided` the faces that might take its place, `absorb` keeps each face's cost in its report). Then a face
left without a fake because its candidates matched other fakes is made as if it came first, and the fakes it
`clashes` with are made again after it; kept only when every one of them swaps again (`FakeGenerator._exchanged`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mfmc.swap.report import FaceReport
from mfmc.swap.verify import Avoid
from mfmc.vocabulary import Fallback

if TYPE_CHECKING:
    from mfmc.swap.patch import FacePatch
    from mfmc.swap.verify import Verifier
    from mfmc.vision import FacePipeline, Faces

# how far around a face's box a recognizer's crop reaches, in box sides (FaceNet's and dlib's aligned crops take
# in the forehead, hair and cheeks): a patch that meets this region can change what the recognizer reads
REACH = 0.5


def swapped(report: FaceReport) -> bool:
    """Whether the face got a verified swap (not a pixelation or a fill)."""
    return report.fallback in (Fallback.NONE, Fallback.ALPHA)


def touched(boxes: np.ndarray, patches: Sequence[FacePatch], faces: Sequence[int],
            owners: Sequence[int] | None = None) -> list[int]:
    """Of `faces` (indices), those whose box grown by `REACH` meets another face's patch box. `owners`: the face
    index of each patch (by default its position: a patch for every face)."""
    out = []
    whose = list(range(len(patches))) if owners is None else list(owners)
    for i in faces:
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        m = REACH * max(x2 - x1, y2 - y1)
        for j, patch in zip(whose, patches, strict=True):
            if j == i:
                continue
            px1, py1, px2, py2 = patch.box
            if px1 < x2 + m and px2 > x1 - m and py1 < y2 + m and py2 > y1 - m:
                out.append(i)
                break
    return out


def audit(
    pipeline: FacePipeline, verifier: Verifier, image: np.ndarray, faces: Faces,
    pairs: Sequence[tuple[FacePatch, FaceReport]], avoid: Callable[[int, list[FaceReport]], Avoid],
) -> tuple[dict[int, str], list[FaceReport]]:
    """The swapped faces that break a rule in the finished photo (`image` with every patch of `pairs` applied),
    each with the reason, by face index, and the reports of `pairs` (in their order) carrying the fakes'
    embeddings as the finished photo shows them (the verified ones where no other patch touches the face).
    `pairs` may cover only some faces of `faces` (each report's `index` says which: the others stay real).
    `avoid(i, others)`: what face i's fake must avoid given the other fakes' reports
    (`FakeGenerator.photo_avoid`). `faces` must carry the verifiers' embeddings."""
    reports = {r.index: r for _, r in pairs}
    if len(reports) != len(pairs):
        raise ValueError("two patches of the photo are for the same face")
    done = [k for k, r in reports.items() if swapped(r) and r.fake_embeddings]
    again = touched(faces.boxes, [p for p, _ in pairs], done, owners=list(reports))
    final = dict(reports)
    if again:
        out = image
        for patch, _ in pairs:
            out = patch.apply(out)
        probe = faces[again].replace(embeddings={}, landmarks68=None, age=None, gender=None)
        seen = pipeline.analyze(out, probe, attributes=False, recognizers=verifier.names)
        for row, k in enumerate(again):
            embs = {n: np.asarray(seen.embeddings[n][row], np.float32) for n in verifier.names}
            final[k] = dataclasses.replace(reports[k], fake_embeddings=embs)
    bad: dict[int, str] = {}
    for k in again:
        rules = avoid(k, [final[j] for j in done if j != k and j not in bad])
        for n in verifier.names:
            rec, bar = pipeline.recognizers[n], verifier.bar(n)
            emb = final[k].fake_embeddings[n]
            if not float(rec.distance(emb, np.asarray(faces.embeddings[n][k], np.float32))) > bar:
                bad[k] = f"{n} matches its source in the finished photo"
                break
        else:
            n = breaks(pipeline, verifier, final[k].fake_embeddings, rules)
            if n:
                bad[k] = f"{n} matches another face of the finished photo"
    return bad, list(final.values())


def breaks(pipeline: FacePipeline, verifier: Verifier, embeddings: Mapping[str, np.ndarray], rules: Avoid) -> str:
    """The first verifying recognizer by which a fake's `embeddings` come within `rules` (an `Avoid`: each
    row's bar or floor), or ""."""
    for n in verifier.names:
        rows = rules.rows(n)
        if n in embeddings and len(rows):
            d = np.asarray(pipeline.recognizers[n].distance(np.asarray(embeddings[n], np.float32), rows))
            if float(np.min(d / rules.limits(n, verifier.bar(n)))) <= 1.0:
                return n
    return ""


def clashes(pipeline: FacePipeline, verifier: Verifier, fake: FaceReport,
            others: Mapping[int, FaceReport]) -> list[int]:
    """The faces (keys of `others`, their fakes' reports) whose fake `fake` may not stand beside: the same
    target identity, or within a verifying recognizer's bar of it (fakes have no floor)."""
    out = []
    for j, r in others.items():
        if r.identity and r.identity == fake.identity:
            out.append(j)
            continue
        rows = {n: np.asarray(r.fake_embeddings[n], np.float32)[None] for n in verifier.names if n in r.fake_embeddings}
        if breaks(pipeline, verifier, fake.fake_embeddings, Avoid(rows)):
            out.append(j)
    return out


# the methods of candidates made only because no candidate kept the source's expression (`Attempt`): the
# expression retries ("swap-keep") and the expression fallback ("swap-expression", "swap-alpha-expression")
RESCUES = ("-keep", "-expression")


def collided(report: FaceReport, *, fallbacks: bool = True, fakes: bool = False) -> bool:
    """Whether some candidate of the face was rejected for matching another face of the photo (real or fake):
    the face might swap were another fake gone. Without `fallbacks`, only a candidate that had kept the source's
    expression counts (not one of the expression retries or fallback, `RESCUES`: such a face fails first on its
    expression, and making it again rarely gives it a swap). With `fakes`, only a candidate that matched a fake
    (`Attempt.matched_fake`): one that matched real faces alone meets them again when the face is made against
    the real faces only (`FakeGenerator._exchanged`)."""
    return any(a.reason.endswith("matches another face of the photo")
               and (fallbacks or not a.method.endswith(RESCUES)) and (a.matched_fake or not fakes)
               for a in report.attempts)


def absorb(report: FaceReport, before: Sequence[FaceReport], why: str) -> None:
    """Count in `report` what the face's earlier makings (`before`, not kept) cost: their attempts first (a
    swap that passed says `why` it was not kept; their pixelations and fills are left out) and their time."""
    lines = [dataclasses.replace(a, passed=False, reason=why) if a.passed else a
             for r in before for a in r.attempts if a.method not in ("pixelate", "fill")]
    report.attempts[:0] = lines
    for r in before:
        for key, ms in r.timings_ms.items():
            report.timings_ms[key] = report.timings_ms.get(key, 0.0) + ms


def filled(image: np.ndarray, faces: Faces, index: int, reason: str) -> tuple[FacePatch, FaceReport]:
    """Face `index` filled with one colour (no face left to read: verified by construction), for a face none
    of whose fakes holds in the finished photo."""
    from mfmc.swap.obfuscate import face_polygon, fill
    from mfmc.swap.report import Attempt

    box = np.asarray(faces.boxes[index], dtype=np.float64)
    lm = None if faces.landmarks68 is None else np.asarray(faces.landmarks68[index], dtype=np.float64)
    report = FaceReport(index=index, box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                        fallback=Fallback.FILL, verified=True, verified_by="construction", reason=reason)
    report.attempts.append(Attempt("fill", None, None, {}, True, "no face left to recognise"))
    return fill(image, face_polygon(box, lm)), report
