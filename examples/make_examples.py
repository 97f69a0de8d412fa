"""Rebuild `examples/people/` and `examples/group.jpg` from the `openpeople` package (MIT, synthetic people).

Only the people at positions 5, 7, 8 and 9 of `openpeople.curated.list()` are used: they are reserved for the
examples and the demo and never enter the target pool (which is built from positions 0-4 and 6), so a fake can
never be "swapped" to a person who also appears in an example.

    python examples/make_examples.py        # rewrites the files below; the output is deterministic

- `people/<user>.jpg`: each user's reference photo (their `amateur_selfie`, 480 px), one face each.
- `group.jpg`: a synthetic group photo, the four `studio_portrait`s of alice, bob, carol and dan side by side
  (erin, a user of graph.toml, has no face in it and no reference photo).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
# graph user -> index in openpeople.curated.list() (the reserved positions only; see the module docstring):
# alice P006 (a woman), bob P008 (a man), carol P009 and dan P010 (women)
RESERVED = (5, 7, 8, 9)
USERS = {"alice": 5, "bob": 7, "carol": 8, "dan": 9}
WITH_REFERENCE = ("alice", "bob", "carol", "dan")
GROUP_ORDER = ("alice", "bob", "carol", "dan")
REFERENCE_SIDE = 480
TILE = 256


def _person(index: int):
    import openpeople

    people = openpeople.curated.list()
    if index not in RESERVED:
        raise ValueError(f"examples use only the reserved people at positions {RESERVED}")
    return people[index]


def reference(user: str) -> Image.Image:
    with Image.open(_person(USERS[user]).asset_path("amateur_selfie")) as im:
        im = im.convert("RGB")
        im.thumbnail((REFERENCE_SIDE, REFERENCE_SIDE), Image.Resampling.LANCZOS)
        return im


def portrait(user: str) -> Image.Image:
    with Image.open(_person(USERS[user]).asset_path("studio_portrait")) as im:
        w, h = im.size  # square studio portraits: keep the head and shoulders
        box = (round(0.12 * w), round(0.02 * h), round(0.88 * w), round(0.78 * h))
        return im.convert("RGB").crop(box).resize((TILE, TILE), Image.Resampling.LANCZOS)


def group() -> Image.Image:
    tiles = [portrait(u) for u in GROUP_ORDER]
    out = Image.new("RGB", (TILE * len(tiles), TILE), "white")
    for i, tile in enumerate(tiles):
        out.paste(tile, (i * TILE, 0))
    return out


def main() -> None:
    (HERE / "people").mkdir(exist_ok=True)
    for user in WITH_REFERENCE:
        reference(user).save(HERE / "people" / f"{user}.jpg", quality=88)
    group().save(HERE / "group.jpg", quality=90)
    print(f"wrote {HERE / 'people'} ({len(WITH_REFERENCE)} people) and {HERE / 'group.jpg'}")


if __name__ == "__main__":
    main()
