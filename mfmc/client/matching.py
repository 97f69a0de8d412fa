"""Who a face is, failing closed: the client's matching of detected faces against the embeddings it holds.

A face is owned by a person only when the match is unambiguous; everything else stays unknown (and is faked):

- no known person is closer than the recognizer's threshold;
- two known people are both within reach (the runner-up is closer than the threshold, or closer than the best
  match plus `margin`): a look-alike, or someone enrolled with another person's photo, could claim the face;
- another face of the photo is within the threshold of the same person and not clearly farther (by `margin`)
  than this one; the farther face is never handed to its second choice.

`margin` is an absolute distance (callers use `AMBIGUITY_MARGIN × threshold`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

AMBIGUITY_MARGIN = 0.15  # fraction of the recognizer's threshold


@dataclass(frozen=True)
class Match:
    """The owner of one face (None: unknown, so faked) and, when unknown, why."""

    owner: str | None
    note: str = ""


def match_faces(distances: Sequence[Mapping[str, float] | None], threshold: float, margin: float) -> list[Match]:
    """`distances[i]`: the smallest distance from face i to each known person (None: face i has no embedding)."""
    out: list[Match] = []
    within: dict[str, list[tuple[float, int]]] = {}  # person -> every face within the threshold of them
    for i, dists in enumerate(distances):
        for name, d in (dists or {}).items():
            if d < threshold:
                within.setdefault(name, []).append((d, i))
    for i, dists in enumerate(distances):
        if dists is None:
            out.append(Match(None, "unknown: no embedding could be computed for this face"))
            continue
        ranked = sorted(dists.items(), key=lambda kv: (kv[1], kv[0]))
        if not ranked or ranked[0][1] >= threshold:
            out.append(Match(None, f"unknown: matches none of the {len(ranked)} people this client knows"))
            continue
        best, d1 = ranked[0]
        if len(ranked) > 1 and (ranked[1][1] < threshold or ranked[1][1] - d1 < margin):
            out.append(Match(None, f"ambiguous: matches both `{best}` and `{ranked[1][0]}`; faked"))
        elif any(j != i and d - d1 < margin for d, j in within[best]):
            out.append(Match(None, f"ambiguous: several faces of the photo match `{best}`; faked"))
        else:
            out.append(Match(best))
    return out
