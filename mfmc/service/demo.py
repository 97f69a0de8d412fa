"""`mfmc demo`: the paper's Fig. 1 on synthetic people, end to end through the real platform.

Users A-E. A, B and C are synthetic people from the `openpeople` package (MIT; generated, no real individuals):
positions 5, 7 and 8 of `openpeople.curated.list()` (P006, a woman; P008, a man; P009, a woman). Positions 5, 7,
8 and 9 are reserved for the demo and the examples and never enter the target pool (built from positions 0-4 and
6), so no demo face can be swapped to a demo person. The fourth reserved person, P010 (position 9), is left out:
dlib puts every frontal photo of her within 0.42-0.56 of P006's portrait (threshold 0.6), so an uploader who knows both
rightly names neither (mfmc.client.matching) and both would be faked for everyone. A, B and C each enroll with a
casual full-length photo of themselves; D and E enroll no face. A is friends with B, C and D; B and C are not
friends; E is friends with nobody and follows A. Everyone's rules say `default friends`. A uploads a group photo
of A, B and C (their studio portraits side by side) under the rules model; every user then views it: each sees
their own face and their friends' real faces and verified fakes elsewhere (A: A, B, C; B: A, B; C: A, C; D: A),
E sees only fakes. Writes `original.png`, one `what-<viewer>-sees.png` per viewer and a labelled
`contact-sheet.png`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mfmc.errors import ModelNotFoundError

USERS = ["A", "B", "C", "D", "E"]
IN_PHOTO = USERS[:3]  # A-C: enrolled, each one of the reserved people; D and E enroll no face
FRIENDS = [("A", "B"), ("A", "C"), ("A", "D")]
FOLLOWS = [("E", "A")]
# openpeople.curated.list() positions reserved for the demo and examples (P006 F, P008 M, P009 F, P010 F); the pool
# uses 0-4 and 6. The demo shows the first three: P010 and P006 are look-alikes to every recognizer (see above).
RESERVED = (5, 7, 8, 9)
DEMO_PEOPLE = RESERVED[:len(IN_PHOTO)]
TILE = 320
ENROLL_ASSET = "amateur_posture"  # a casual full-length photo; faces ~90-110 px at 1280 px
DEMO_PASSPHRASE = "mfmc demo: not a secret"


@dataclass(frozen=True)
class DemoResult:
    photo_id: int
    views: dict[str, Path]
    sheet: Path
    revealed: dict[str, list[str]]  # viewer -> owners whose real face they see
    seconds: float


def _people() -> list:
    try:
        import openpeople
    except ImportError:
        raise ModelNotFoundError("the demo needs the `openpeople` sample people",
                                 help="pip install openpeople") from None
    people = openpeople.curated.list()
    if len(people) <= max(DEMO_PEOPLE):
        raise ModelNotFoundError("`openpeople` ships too few people for the demo")
    return [people[i] for i in DEMO_PEOPLE]


def _load(person, asset: str, size: int | None = None, max_side: int | None = None) -> np.ndarray:
    with Image.open(person.asset_path(asset)) as im:
        im = im.convert("RGB")
        if size is not None:
            im = im.resize((size, size), Image.Resampling.LANCZOS)
        elif max_side is not None and max(im.size) > max_side:
            scale = max_side / max(im.size)
            im = im.resize((round(im.size[0] * scale), round(im.size[1] * scale)), Image.Resampling.LANCZOS)
        return np.asarray(im)


def group_photo(people: list) -> np.ndarray:
    """A-C's studio portraits side by side (a synthetic group photo)."""
    return np.concatenate([_load(p, "studio_portrait", size=TILE) for p in people[:len(IN_PHOTO)]], axis=1)


def contact_sheet(images: dict[str, np.ndarray], uploader: str = "A") -> Image.Image:
    """One row of labelled thumbnails: "what A sees", "what B sees", …"""
    thumbs = []
    for viewer, img in images.items():
        im = Image.fromarray(img)
        im.thumbnail((480, 480))
        thumbs.append((viewer, im))
    w, h = max(t.size[0] for _, t in thumbs), max(t.size[1] for _, t in thumbs)
    cols = 3
    rows = -(-len(thumbs) // cols)
    pad, label = 12, 30
    sheet = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + label + pad) + pad + label), "white")
    draw = ImageDraw.Draw(sheet)
    try:
        font = ImageFont.load_default(size=20)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    draw.text((pad, 6), f"{uploader} uploaded this group photo; each viewer sees real faces only of friends",
              fill="black", font=font)
    for i, (viewer, im) in enumerate(thumbs):
        r, c = divmod(i, cols)
        x, y = pad + c * (w + pad), label + pad + r * (h + label + pad)
        draw.text((x, y), f"what {viewer} sees", fill="black", font=font)
        sheet.paste(im, (x, y + label))
    return sheet


def run_demo(out: str | Path = "mfmc-demo", *, seed: int = 0, data_dir: str | Path | None = None,
             backend=None, log: Callable[[str], None] | None = None) -> DemoResult:
    """Build the Fig. 1 scenario in a fresh data dir and write the per-viewer images and the contact sheet."""
    from mfmc.crypto.keys import KdfParams
    from mfmc.service.platform import Platform

    say = log or (lambda _msg: None)
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    people = _people()
    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mfmc-demo-")
        data_dir = Path(tmp.name) / "data"
    try:
        with Platform(data_dir, backend=backend, passphrase=lambda _name: DEMO_PASSPHRASE,
                      kdf=KdfParams.FAST_INSECURE, create=True) as p:
            say(f"users {USERS[0]}-{USERS[-1]} (keyrings), enrollment from a photo of each of "
                f"{IN_PHOTO[0]}-{IN_PHOTO[-1]}; {' and '.join(USERS[len(IN_PHOTO):])} enroll no face")
            for name in USERS:
                p.add_user(name)
            for name, person in zip(IN_PHOTO, people, strict=True):
                # Not the selfies: with them B's face is within dlib's threshold of C's selfie too, and the
                # client rightly refuses to name an ambiguous face (mfmc.client.matching).
                p.enroll(name, [_load(person, ENROLL_ASSET, max_side=1280)])
            for a, b in FRIENDS:
                p.friend(a, b)
            for a, b in FOLLOWS:
                p.follow(a, b)
            for name in USERS:
                p.set_rules(f"face {name}\ndefault friends\n", f"{name}.mfmc")
            say("A uploads the group photo (rules model)")
            photo = group_photo(people)
            Image.fromarray(photo).save(out / "original.png")
            up = p.upload(photo, "A", model="rules", album="fig1")
            found = [f.owner or "?" for f in up.faces]
            say(f"identified on A's client: {', '.join(found)}")
            views: dict[str, Path] = {}
            images: dict[str, np.ndarray] = {}
            revealed: dict[str, list[str]] = {}
            for viewer in USERS:
                view = p.render(up.photo_id, viewer)
                path = out / f"what-{viewer}-sees.png"
                Image.fromarray(view.image).save(path)
                views[viewer], images[viewer] = path, view.image
                revealed[viewer] = sorted(d.owner or "?" for d in view.decisions if d.reveal)
                say(f"what {viewer} sees: real {', '.join(revealed[viewer]) or 'none'}"
                    f" ({view.generated} fake{'' if view.generated == 1 else 's'} generated)")
            sheet = out / "contact-sheet.png"
            contact_sheet(images).save(sheet)
            with p.store.read() as tx:
                fallbacks = [f.fallback for f in tx.fakes(up.photo_id)]
                fallbacks += [f.fake_fallback for f in tx.faces(up.photo_id) if f.state == "client_faked"]
            failed = sum(fb == "block" for fb in fallbacks)
            if failed:
                say(f"warning: {failed} of {len(fallbacks)} faces were obfuscated: no verified fake could be made "
                    "(fail closed); `mfmc doctor` shows what is missing")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return DemoResult(up.photo_id, views, sheet, revealed, time.perf_counter() - start)
