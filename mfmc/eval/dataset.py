"""Evaluation inputs: any folder of photos, identity-labelled when laid out as one sub-folder per person.

    python -m mfmc.eval OUT_DIR [--people N] [--max-side 1024]

writes an identity-labelled set made from the `openpeople` package (MIT, 10 synthetic people): per person a
studio portrait, a selfie and the first row of the expression sheet (4 faces of that person in one photo).
Nothing is downloaded, and the images are generated on demand, never committed.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mfmc.errors import InvalidInputError, ModelNotFoundError
from mfmc.vision.images import IMAGE_SUFFIXES, image_files


@dataclass(frozen=True)
class Photo:
    """One input photo: its path, its name relative to the evaluated folder, and its person (None if unknown)."""

    path: Path
    name: str
    identity: str | None


def discover(folder: Path, limit: int | None = None) -> list[Photo]:
    """Photos under `folder`; a photo inside a sub-folder is labelled with that sub-folder's name.

    Labelled photos are ordered round-robin over people (first photo of each person, then the second, …) so
    that `limit` keeps as many identities as possible; photos directly in `folder` come last, unlabelled.
    """
    if not folder.is_dir():
        raise InvalidInputError(f"`{folder}` is not a folder", help="pass a folder of photos (one sub-folder per "
                                "person for identity labels)")
    files = image_files(folder)
    by_person: dict[str, list[Photo]] = {}
    loose: list[Photo] = []
    for p in files:
        rel = p.relative_to(folder)
        if len(rel.parts) > 1:
            by_person.setdefault(rel.parts[0], []).append(Photo(p, rel.as_posix(), rel.parts[0]))
        else:
            loose.append(Photo(p, rel.as_posix(), None))
    ordered: list[Photo] = []
    depth = max((len(v) for v in by_person.values()), default=0)
    for i in range(depth):
        ordered += [v[i] for _, v in sorted(by_person.items()) if i < len(v)]
    ordered += loose
    if not ordered:
        raise InvalidInputError(f"no photos in `{folder}`", help=f"looked for {' '.join(sorted(IMAGE_SUFFIXES))}")
    if limit is not None:
        if limit < 1:
            raise InvalidInputError(f"`--limit` must be at least 1, got {limit}")
        ordered = ordered[:limit]
    return ordered


def openpeople_root() -> Path:
    """The curated people of the installed `openpeople` package."""
    spec = importlib.util.find_spec("openpeople")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError("the `openpeople` package is not installed",
                                 help="pip install openpeople==0.1.2 (a dev dependency of mfmc)")
    root = Path(next(iter(spec.submodule_search_locations))) / "data" / "curated"
    if not root.is_dir():
        raise ModelNotFoundError(f"`{root}` is missing from the openpeople package",
                                 help="reinstall openpeople==0.1.2")
    return root


def openpeople_set(out: Path, *, people: int | None = None, max_side: int = 1024) -> list[Path]:
    """Write the identity-labelled set `out/PERSON/{portrait,selfie,expressions}.jpg`; returns the files.

    The expression sheet is a 4 × 4 grid of labelled cells; its first row (neutral, happy, sad, angry) is cut
    out as one photo with four faces of the same person.
    """
    from PIL import Image

    root = openpeople_root()
    persons = sorted(p for p in root.iterdir() if (p / "assets").is_dir())[: people or None]
    written: list[Path] = []
    for person in persons:
        folder = out / person.name
        folder.mkdir(parents=True, exist_ok=True)
        assets = person / "assets"
        for src, name in (("studio_portrait", "portrait"), ("amateur_selfie", "selfie"),
                          ("emotions_sheet", "expressions")):
            path = assets / f"{src}.jpg"
            if not path.is_file():
                continue
            with Image.open(path) as im:
                img = im.convert("RGB")
            if name == "expressions":  # the first row of the 4 × 4 grid, under the sheet's title strip
                w, h = img.size
                img = img.crop((0, int(0.05 * h), w, int(0.05 * h + 0.235 * h)))
            side = 2 * max_side if name == "expressions" else max_side  # a wide strip: keep faces ≥ 100 px
            img.thumbnail((side, side), Image.Resampling.LANCZOS)
            target = folder / f"{name}.jpg"
            img.save(target, quality=92)
            written.append(target)
    return written


def identity_pairs(labels: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of faces with known labels: same person, different people."""
    same, other = [], []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            if labels[i] is None or labels[j] is None:
                continue
            (same if labels[i] == labels[j] else other).append((i, j))
    return np.asarray(same, dtype=np.intp).reshape(-1, 2), np.asarray(other, dtype=np.intp).reshape(-1, 2)
