"""Verified fakes on sample group photos: the issue-5 targets, measured.

Group photos are composed from `openpeople` (MIT, synthetic people) head crops, six per photo, cycling through
the ten people with studio portraits, selfies and character-sheet front views; scikit-image's `astronaut`
(public domain) is added when installed. Nothing is committed. The pool is the built-in one when installed
(else `--pool DIR`, e.g. one built with `mfmc pool build`).

Reported per run: share of faces verified by every recognizer, share without the last-resort fill, share
without any fallback, faces still detected in the output, mean landmark error (inter-ocular), pixels changed
by more than 1 level outside the masks, and per-face time split (query, swap, verify, metrics) as wall and
process CPU time. The machine is shared: use `--repeat` and read the best and the median.

    python benchmarks/bench_swap.py [--pool DIR] [--repeat 2] [--photos 3] [--sheet /tmp/swap-sheet.png]
    python benchmarks/bench_swap.py --real [PHOTO ...] [--verifiers dlib,facenet] [--swapper split|warp]
        [--seed N] [--batch K] [--max-attempts N] [--max-candidates N] [--batch-ratio K] [--attributes-ratio K]
        [--recognizer-cost K] [--swap-cost R] [--cpu-stages] [--against OLD_TREE]

`--against OLD_TREE` (e.g. `git archive <commit> | tar -x -C /tmp/old`): this benchmark script importing this
checkout's mfmc and OLD_TREE's (`--tree`), each run a fresh process, alternately (new, old, new, old, ...:
`--repeat` pairs), and the per-stage figures of both side by side: a before/after on a shared, busy machine.
Read process CPU time per face first when the machine is busy (wall time then mostly waits for a core).

`--recognizer-cost K` records the candidates the generator verifies and times each recognizer per chip (the
verification cascade's order, `mfmc.swap.verify.CASCADE`, is chosen on it); per-stage `verify_*` figures split
`verify` into the re-predicted 68 points, the attribute checks and each recognizer of the cascade.

`--swap-cost R` records every swap the generator makes on the photos (seed `--seed`) and replays each R times
in the same process (best of R, warm): process CPU ms per candidate for the whole swap and its stages (the
destination, the warp: its mesh and affine maps, the source's side, the masked blurs, the blend; those a tree
lacks print nan), the swap's best wall ms, and the process CPU of one replay of them all. Run it with `--tree OLD`
as well for a before/after of the swapper alone (same swaps: the generator's decisions do not depend on its speed).

`--cpu-stages` fakes every photo's faces twice in one process and prints the second (warm) pass's process CPU per
face, split by stage and network (each swap, the 68 points, the expression and gender networks and each
recognizer with the rows they were given, the query and ranking, the audit of the finished photo, ...; exclusive):
where a verified fake's CPU goes. Run it with `--tree OLD` as well for a before/after.

`--batch 1` verifies candidates one at a time (the sequential baseline of `FakeGenerator(batch=...)`); the
medians per face and stage (wall, warm) are what the issue-17 target (≤ 100 ms per face) is judged on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

# `--tree DIR`: the mfmc source tree to import (default: this checkout); `--against` runs this script on both
sys.path.insert(0, sys.argv[sys.argv.index("--tree") + 1] if "--tree" in sys.argv
                else str(Path(__file__).resolve().parents[1]))

from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator, changed_outside
from mfmc.swap.verify import Avoid, Verdict, Verifier
from mfmc.vision import FacePipeline, Faces, load_image
from mfmc.vision.registry import package_dir
from mfmc.vision.settings import VisionSettings, configure

PEOPLE = [f"P{i:03d}" for i in range(1, 11)]
# the recognizers whose share of `verify` the comparison prints (absent ones print nan)
RECOGNIZERS = ("dlib", "openface", "facenet", "mobilefacenet")
ASSETS = ["studio_portrait", "amateur_selfie", "character_sheet"]


def _photo(person: str, asset: str) -> np.ndarray:
    root = package_dir("openpeople")
    assert root is not None, "pip install openpeople"
    image = load_image(root / "data" / "curated" / person / "assets" / f"{asset}.jpg")
    s = 1400 / max(image.shape[:2])
    image = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    if asset == "character_sheet":  # the front view, top left
        h, w = image.shape[:2]
        image = image[int(0.07 * h) : int(0.36 * h), int(0.02 * w) : int(0.27 * w)]
    return image


def _head(pipe: FacePipeline, image: np.ndarray) -> np.ndarray:
    faces = pipe.detect(image)
    x1, y1, x2, y2 = faces.boxes[int(np.argmax(faces.areas))]
    s, cx, cy = x2 - x1, (x1 + x2) / 2, (y1 + y2) / 2
    h, w = image.shape[:2]
    top, bottom = int(max(0, cy - 1.5 * s)), int(min(h, cy + 1.7 * s))
    crop = image[top:bottom, int(max(0, cx - 1.3 * s)) : int(min(w, cx + 1.3 * s))]
    return cv2.resize(crop, (360, 420), interpolation=cv2.INTER_AREA)


def group_photos(pipe: FacePipeline, n: int) -> list[tuple[str, np.ndarray]]:
    photos = []
    for g in range(n):
        tiles = [_head(pipe, _photo(PEOPLE[(g * 6 + j) % 10], ASSETS[(g + j) % 3])) for j in range(6)]
        photos.append((f"group{g}", np.vstack([np.hstack(tiles[:3]), np.hstack(tiles[3:])])))
    try:
        from skimage import data

        photos.append(("astronaut", np.ascontiguousarray(data.astronaut())))
    except ImportError:
        pass
    return photos


def run_once(
    gen: FakeGenerator, pipe: FacePipeline, photos: list, sheet: Path | None, seed: int = 0
) -> dict[str, float]:
    rows, tiles = [], []
    for name, image in photos:
        faces = pipe.analyze(image)
        union = np.zeros(image.shape[:2], bool)
        out = image
        c0 = time.process_time()
        pairs = gen.patches(image, faces, seed=seed)  # every face of the photo, unique identities
        cpu = (time.process_time() - c0) * 1000 / max(len(pairs), 1)
        known = set(gen.pool.ids)
        for patch, rep in pairs:
            out = patch.apply(out)
            union |= patch.full_mask()
            rows.append({"photo": name, "rep": rep, "cpu": cpu, "wall": rep.timings_ms.get("total", 0.0)})
            if sheet is not None:
                x1, y1, x2, y2 = (int(v) for v in rep.box)
                m = int(0.35 * (x2 - x1))
                box = (max(0, x1 - m), max(0, y1 - m), x2 + m, y2 + m)
                tgt = gen.pool.crop_image(rep.target) if rep.target in known else np.zeros((8, 8, 3), np.uint8)
                tiles.append((image, out, box, tgt))
        found = pipe.detect(out)
        ious = _best_iou(faces.boxes, found.boxes)
        for r, iou in zip(rows[-len(faces) :], ious, strict=True):
            r["detected"] = iou >= 0.4
            r["outside"] = 0
        rows[-1]["outside"] = changed_outside(image, out, union, tolerance=1) if len(faces) else 0
        if sheet is not None:  # the result crops come from the photo with all its faces replaced
            tiles = [(src, out if src is image else res, box, tgt) for src, res, box, tgt in tiles]
    if sheet is not None:
        _save_sheet(tiles, sheet)
    reps = [r["rep"] for r in rows]
    n = len(reps)
    le = [r.metrics["landmark_error"] for r in reps
          if r.fallback in ("none", "alpha") and "landmark_error" in r.metrics]
    split = {k: statistics.mean(r.timings_ms.get(k, 0.0) for r in reps)
             for k in ("analyze", "query", "rank", "swap", "verify", "metrics")}
    # inside `verify`: the re-predicted 68 points, the gender/expression checks, each recognizer of the cascade
    parts = sorted({k for r in reps for k in r.timings_ms if k.startswith("verify:")})
    split.update({k.replace(":", "_"): statistics.mean(r.timings_ms.get(k, 0.0) for r in reps) for k in parts})
    # medians per face (wall, warm): the issue-17 target is the median face, per stage
    medians = {f"median_{k.replace(':', '_')}_ms": statistics.median(r.timings_ms.get(k, 0.0) for r in reps)
               for k in ("query", "rank", "swap", "verify", *parts, "metrics", "total")}
    return {
        "faces": n,
        "verified": sum(r.verified for r in reps) / n,
        "verified_by_recognizers": sum(r.verified_by == "recognizers" for r in reps) / n,
        "no_last_resort": sum(r.fallback != "fill" for r in reps) / n,
        "no_fallback": sum(r.fallback == "none" for r in reps) / n,
        "alpha": sum(r.fallback == "alpha" for r in reps) / n,
        "obfuscate": sum(r.fallback == "obfuscate" for r in reps) / n,
        "attempts_mean": statistics.mean(len(r.attempts) for r in reps),
        "detected": sum(r["detected"] for r in rows) / n,
        "landmark_error_mean": statistics.mean(le) if le else float("nan"),
        "landmark_error_max": max(le) if le else float("nan"),
        "changed_outside": sum(r["outside"] for r in rows),
        "wall_ms_per_face": statistics.mean(r["wall"] for r in rows),
        "cpu_ms_per_face": statistics.mean(r["cpu"] for r in rows),
        "cpu_ms_per_face_without_metrics": statistics.mean(r["cpu"] for r in rows) - split["metrics"],
        **{f"{k}_ms": v for k, v in split.items()},
        **medians,
        "median_attempts": statistics.median(len(r.attempts) for r in reps),
    }


def batch_ratio(gen: FakeGenerator, pipe: FacePipeline, photos: list, k: int, repeat: int = 3) -> dict[str, float]:
    """Verification of k real candidates of each face (≥ 48 px): one at a time (`verify`) against together
    (`verify_many`, one batched embedding per recognizer), interleaved in one process; same verdicts asserted.
    Recognizers run without early exit, so both sides embed every candidate with every recognizer."""
    from mfmc.swap.recombine import Target
    from mfmc.swap.verify import Verifier

    verifier = Verifier(pipe, recognizers=gen.verifier.names, early_exit=False)
    one_ms, many_ms, n = [], [], 0
    for _, image in photos:
        faces = pipe.analyze(image, recognizers=gen.verifier.names)
        for i in range(len(faces)):
            box = faces.boxes[i]
            if min(box[2] - box[0], box[3] - box[1]) < 48:
                continue
            face = faces[i]
            results = []
            for cand in gen.pool.query(face, k=k, seed=0, same_group="gender"):
                t_img, t_lm = gen.recombiner.image(Target.plain(cand.id, gen.pool.identity(cand.id)))
                results.append(gen.swapper.swap(image, faces.landmarks68[i], t_img, t_lm, alpha=gen.alpha).patch
                               .apply(image))
            if len(results) < 2:
                continue
            source = verifier.source_embeddings(image, face)
            for _ in range(repeat):
                t0 = time.perf_counter()
                alone = [verifier.verify(r, face, source) for r in results]
                t1 = time.perf_counter()
                together = verifier.verify_many(results, face, source)
                t2 = time.perf_counter()
                assert [v.passed for v in alone] == [v.passed for v in together]
                one_ms.append((t1 - t0) * 1000 / len(results))
                many_ms.append((t2 - t1) * 1000 / len(results))
            n += 1
    return {"faces": n, "ms_per_candidate_one_at_a_time": statistics.median(one_ms),
            "ms_per_candidate_batched": statistics.median(many_ms),
            "ratio": statistics.median(one_ms) / statistics.median(many_ms)}


def attributes_ratio(gen: FakeGenerator, pipe: FacePipeline, photos: list, k: int,
                     repeat: int = 3) -> dict[str, float]:
    """The checks before the recognizers for k real candidates of each face (≥ 48 px), as before batching
    against now, interleaved in one process: the 68 points re-predicted one candidate at a time (`predict`)
    against all in one pass (`landmarks_of`), same points asserted; then the attributes (age and gender by
    `estimate`, then `probabilities`, one candidate at a time) against the gender network alone over all
    candidates (`genders_of`) and `probabilities_of`, same labels and classes asserted."""
    from mfmc.swap.recombine import Target
    from mfmc.vision.attributes import genders_of
    from mfmc.vision.expression import probabilities_of
    from mfmc.vision.landmarks import landmarks_of

    attrs, exprs, marks = pipe.attributes, pipe.expressions, pipe.landmarker
    assert attrs is not None and marks is not None
    old_ms, new_ms, lm_old, lm_new, n = [], [], [], [], 0
    for _, image in photos:
        faces = pipe.analyze(image, recognizers=gen.verifier.names)  # the pool query needs embeddings
        for i in range(len(faces)):
            box = faces.boxes[i]
            if min(box[2] - box[0], box[3] - box[1]) < 48:
                continue
            face = faces[i].replace(embeddings={})
            results = []
            for cand in gen.pool.query(faces[i], k=k, seed=0, same_group="gender"):
                t_img, t_lm = gen.recombiner.image(Target.plain(cand.id, gen.pool.identity(cand.id)))
                results.append(gen.swapper.swap(image, faces.landmarks68[i], t_img, t_lm, alpha=gen.alpha).patch
                               .apply(image))
            if len(results) < 2:
                continue
            for _ in range(repeat):
                t0 = time.perf_counter()
                alone = [marks.predict(r, face) for r in results]
                t1 = time.perf_counter()
                together = landmarks_of(marks, [(r, face) for r in results])
                t2 = time.perf_counter()
                assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))
                lm_old.append((t1 - t0) * 1000 / len(results))
                lm_new.append((t2 - t1) * 1000 / len(results))
            items = [(r, face.replace(landmarks68=lm)) for r, lm in zip(results, together, strict=True)]
            for _ in range(repeat):
                t0 = time.perf_counter()
                before = [(attrs.estimate(r, f)[1][0],
                           None if exprs is None else int(np.argmax(exprs.probabilities(r, f)))) for r, f in items]
                t1 = time.perf_counter()
                genders, _ = genders_of(attrs, items)
                classes = [None] * len(items) if exprs is None else np.argmax(probabilities_of(exprs, items), axis=1)
                t2 = time.perf_counter()
                assert [(str(g), None if c is None else int(c)) for g, c in zip(genders, classes, strict=True)] == \
                       [(str(g), c) for g, c in before]
                old_ms.append((t1 - t0) * 1000 / len(items))
                new_ms.append((t2 - t1) * 1000 / len(items))
            n += 1
    return {"faces": n, "candidates_per_face": k, "ms_per_candidate_before": statistics.median(old_ms),
            "ms_per_candidate_batched": statistics.median(new_ms),
            "ratio": statistics.median(old_ms) / statistics.median(new_ms),
            "landmarks_ms_per_candidate_before": statistics.median(lm_old),
            "landmarks_ms_per_candidate_batched": statistics.median(lm_new),
            "landmarks_ratio": statistics.median(lm_old) / statistics.median(lm_new)}


def recognizer_cost(gen: FakeGenerator, pipe: FacePipeline, photos: list, k: int, seed: int = 0,
                    repeat: int = 5) -> dict[str, object]:
    """What the cascade's order is chosen on: every candidate batch the generator verifies on `photos` (its
    own candidates, recorded while it anonymizes them), then per recognizer the wall ms per chip (best of
    `repeat`, warm) at batch 1 and `k`, the re-predicted 68 points and the attribute checks alike, and over the
    candidates the recognizers judged (not rejected on gender or expression) how many each rejects (source or
    photo, no early exit) and how many it alone rejects."""
    from mfmc.vision.attributes import genders_of
    from mfmc.vision.expression import probabilities_of
    from mfmc.vision.landmarks import landmarks_of

    seen: list[tuple[list[np.ndarray], Faces, Mapping[str, np.ndarray], Avoid | None, bool]] = []
    verify_many = gen.verifier.verify_many

    def record(results: Sequence[np.ndarray], face: Faces, source: Mapping[str, np.ndarray],
               avoid: Avoid | None = None, **kw: bool) -> list[Verdict]:
        if kw.get("attributes", True):
            seen.append((list(results), face, source, avoid, kw.get("expression", True)))
        return verify_many(results, face, source, avoid, **kw)  # type: ignore[arg-type]

    gen.verifier.verify_many = record  # type: ignore[method-assign]
    try:
        for _, image in photos:
            gen.patches(image, seed=seed)
    finally:
        gen.verifier.verify_many = verify_many  # type: ignore[method-assign]
    names = list(gen.verifier.names)
    full = Verifier(pipe, recognizers=names, early_exit=False)

    def best(f: Callable[..., object], *args: object) -> float:
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            f(*args)
            ts.append((time.perf_counter() - t0) * 1000)
        return min(ts)

    ms: dict[str, list[float]] = {}
    rejects = {n: 0 for n in names}
    alone = {n: 0 for n in names}
    judged = candidates = 0
    for results, face, source, avoid, expression in seen:
        candidates += len(results)
        probe = face.replace(embeddings={})
        kept = full.verify_many(results, face, source, avoid, expression=expression)
        lms = landmarks_of(pipe.landmarker, [(r, probe) for r in results])
        items = [(r, probe.replace(landmarks68=lm)) for r, lm in zip(results, lms, strict=True)]
        if len(items) >= k:
            chunk = items[:k]
            ms.setdefault("landmarks", []).append(best(landmarks_of, pipe.landmarker,
                                                       [(r, probe) for r, _ in chunk]) / k)
            if pipe.expressions is not None:
                ms.setdefault("expression", []).append(best(probabilities_of, pipe.expressions, chunk) / k)
            if pipe.attributes is not None:
                ms.setdefault("gender", []).append(best(genders_of, pipe.attributes, chunk) / k)
            for n in names:
                embed = pipe.recognizers[n].embed_many
                ms.setdefault(f"{n} b1", []).append(best(embed, chunk[:1]))
                ms.setdefault(f"{n} b{k}", []).append(best(embed, chunk) / k)
        for v in kept:
            if v.rejected:
                continue
            judged += 1
            bad = {n for n in names if not _clears(full, pipe, n, v, avoid)}
            for n in bad:
                rejects[n] += 1
                alone[n] += len(bad) == 1
    return {"candidates": candidates, "judged": judged,
            "ms_per_chip": {key: round(statistics.median(x), 2) for key, x in ms.items()},
            "rejects": rejects, "rejects_alone": alone, "order": names}


def swap_cost(gen: FakeGenerator, photos: list, repeat: int, seed: int = 0) -> dict[str, object]:
    """Every swap `gen` makes on `photos` (recorded while it fakes them), replayed `repeat` times: per candidate,
    the process CPU ms of the swap and of each stage (timed by wrapping the swap modules' functions; absent ones:
    nan), each the best of the replays, averaged over the swaps; the swap's best wall ms; and the process CPU
    seconds of the best replay of them all. On a shared machine read CPU: wall then mostly waits for a core."""
    import mfmc.swap.split as split_module
    import mfmc.swap.warp as warp_module

    seen: list[tuple[Callable[..., object], np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, object]] = []
    swappers = {id(s): s for s in (gen.swapper, gen.escalate, gen.expression_swapper)}
    originals = {k: s.swap for k, s in swappers.items()}

    def recorder(swap: Callable[..., object]) -> Callable[..., object]:
        def record(image: np.ndarray, src: np.ndarray, t_img: np.ndarray, t_lm: np.ndarray, *, alpha: float = 0.5,
                   kept: object = None) -> object:
            seen.append((swap, image, src, t_img, t_lm, alpha, kept))
            return swap(image, src, t_img, t_lm, alpha=alpha, kept=kept)
        return record

    for k, s in swappers.items():
        s.swap = recorder(originals[k])  # type: ignore[method-assign]
    try:
        for _, image in photos:
            gen.patches(image, seed=seed)
    finally:
        for k, s in swappers.items():
            s.swap = originals[k]  # type: ignore[method-assign]
    stages = {"destination": (split_module, "destination"), "warp_target": (split_module, "warp_target"),
              "warp.mesh": (warp_module, "mesh"), "warp.maps": (warp_module, "piecewise_affine_maps"),
              "source_side": (getattr(split_module, "_SourceSide", None), "of"),
              "masked_blurs": (split_module, "masked_blurs" if hasattr(split_module, "masked_blurs")
                               else "masked_blur"),
              "blend_patch": (split_module, "blend_patch")}
    spent = {name: 0.0 for name in stages}

    def timed(name: str, f: Callable[..., object]) -> Callable[..., object]:
        def run(*a: object, **kw: object) -> object:
            t0 = time.process_time()
            try:
                return f(*a, **kw)
            finally:
                spent[name] += time.process_time() - t0
        return run

    patched = []
    for name, (owner, attr) in stages.items():
        f = getattr(owner, attr, None) if owner is not None else None
        if f is None:
            continue
        patched.append((owner, attr, owner.__dict__[attr]))
        setattr(owner, attr, classmethod(timed(name, f.__func__)) if isinstance(owner.__dict__[attr], classmethod)
                else timed(name, f))
    best = {name: [float("inf")] * len(seen) for name in ("swap", "swap_wall", *stages)}
    cpu = []
    try:
        for _ in range(repeat):
            c0 = time.process_time()
            for i, (swap, image, src, t_img, t_lm, alpha, kept) in enumerate(seen):
                for name in spent:
                    spent[name] = 0.0
                t0, w0 = time.process_time(), time.perf_counter()
                swap(image, src, t_img, t_lm, alpha=alpha, kept=kept)
                best["swap_wall"][i] = min(best["swap_wall"][i], time.perf_counter() - w0)
                best["swap"][i] = min(best["swap"][i], time.process_time() - t0)
                for name, v in spent.items():
                    best[name][i] = min(best[name][i], v)
            cpu.append(time.process_time() - c0)
    finally:
        for owner, attr, f in patched:
            setattr(owner, attr, f)
    present = {name for name, (owner, attr) in stages.items()
               if owner is not None and getattr(owner, attr, None) is not None}
    per = {name: (round(1000 * statistics.mean(v), 3) if name.startswith("swap") or name in present
                  else float("nan")) for name, v in best.items()}
    return {"swaps": len(seen), "cpu_ms_per_swap": per, "cpu_s_per_replay": round(min(cpu), 3)}


def cpu_stages(gen: FakeGenerator, pipe: FacePipeline, photos: list, seed: int = 0) -> dict[str, object]:
    """Process CPU per face of `gen.patches` on `photos` (analyzed once; a warm pass first, then the timed one),
    split by what does the work: each swap, each network of the verification (rows embedded or classified), the
    pool query and ranking, what the source wears, the finished photo's audit, the metrics, the photo copies
    with a patch in; "rest" is everything else (the generator's own Python). Each part is exclusive (a part
    timed inside another is not counted twice). CPU, not wall: the figure to read on a shared machine."""
    import mfmc.swap.generate as generate_module
    import mfmc.vision.attributes as attributes_module
    import mfmc.vision.expression as expression_module
    import mfmc.vision.landmarks as landmarks_module

    spent: dict[str, float] = {}
    calls: dict[str, int] = {}
    rows: dict[str, int] = {}
    inside: list[str] = []

    def timed(label: str, f: Callable[..., object], counted: int | None = None) -> Callable[..., object]:
        def run(*args: object, **kwargs: object) -> object:
            t0 = time.process_time()
            inside.append(label)
            try:
                return f(*args, **kwargs)
            finally:
                dt = time.process_time() - t0
                inside.pop()
                spent[label] = spent.get(label, 0.0) + dt
                calls[label] = calls.get(label, 0) + 1
                if counted is not None:
                    items = args[counted]
                    assert isinstance(items, Sequence)
                    rows[label] = rows.get(label, 0) + len(items)
                if inside:  # exclusive: not also the caller's
                    spent[inside[-1]] = spent.get(inside[-1], 0.0) - dt
        return run

    patched: list[tuple[object, str, object]] = []

    def wrap(owner: object, attr: str, label: str, counted: int | None = None) -> None:
        was = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
        patched.append((owner, attr, was))
        setattr(owner, attr, timed(label, getattr(owner, attr), counted))

    for s in {id(s): s for s in (gen.swapper, gen.escalate, gen.expression_swapper)}.values():
        wrap(s, "swap", "swap")
    for name, rec in pipe.recognizers.items():
        wrap(rec, "embed_many", f"recognizer {name}", 0)
    wrap(landmarks_module, "landmarks_of", "68 points", 1)
    wrap(expression_module, "probabilities_of", "expression", 1)
    wrap(attributes_module, "genders_of", "gender", 1)
    wrap(gen.ranker, "plain", "query and rank: plain")
    wrap(gen.ranker, "rest", "query and rank: rest")
    wrap(gen.ranker.catalogue, "image", "target crops")
    wrap(generate_module, "kept_regions", "what the source wears")
    wrap(generate_module.assign, "audit", "audit of the finished photo")
    wrap(generate_module, "fake_metrics", "metrics")
    wrap(generate_module, "pixelate", "pixelate")
    wrap(generate_module.FacePatch, "apply", "photo copies with a patch")
    analyzed = [(image, pipe.analyze(image, min_size=gen.min_face, recognizers=gen.embedded)) for _, image in photos]
    try:
        for image, faces in analyzed:  # warm: models, caches, composed targets
            gen.patches(image, faces, seed=seed)
        spent.clear(), calls.clear(), rows.clear()
        whole = timed("rest", gen.patches)
        n = sum(len(whole(image, faces, seed=seed)) for image, faces in analyzed)
    finally:
        for owner, attr, was in reversed(patched):
            setattr(owner, attr, was)
    total = sum(spent.values())
    print(f"{n} faces, process CPU {1000 * total / max(n, 1):.1f} ms a face")
    for label, v in sorted(spent.items(), key=lambda kv: -kv[1]):
        per = f"{1000 * v / rows[label]:.2f} ms a row ({rows[label]} rows)" if label in rows else \
            f"{1000 * v / calls[label]:.2f} ms a call ({calls[label]} calls)"
        print(f"  {label:<28} {1000 * v / max(n, 1):7.1f} ms a face {100 * v / total:5.1f} %   {per}")
    return {"faces": n, "cpu_ms_per_face": round(1000 * total / max(n, 1), 1),
            **{label: round(1000 * v / max(n, 1), 2) for label, v in spent.items()}}


def _clears(verifier: Verifier, pipe: FacePipeline, name: str, verdict: Verdict, avoid: Avoid | None) -> bool:
    """Whether recognizer `name` passes a fully measured verdict (source and the photo's faces)."""
    rec, bar = pipe.recognizers[name], verifier.bar(name)
    if not verdict.distances[name] > bar:
        return False
    rows = avoid.rows(name) if avoid is not None else np.zeros((0, 0), np.float32)
    if not len(rows):
        return True
    return float(np.min(np.asarray(rec.distance(verdict.embeddings[name], rows)) / avoid.limits(name, bar))) > 1.0


def _best_iou(a: np.ndarray, b: np.ndarray) -> list[float]:
    out = []
    for box in a:
        best = 0.0
        for other in b:
            ix = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
            iy = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
            inter = ix * iy
            union = (box[2] - box[0]) * (box[3] - box[1]) + (other[2] - other[0]) * (other[3] - other[1]) - inter
            best = max(best, inter / union if union > 0 else 0.0)
        out.append(best)
    return out


def _save_sheet(tiles: list, path: Path) -> None:
    """source | target | result rows, two per line."""
    cells = []
    for src, out, (x1, y1, x2, y2), tgt in tiles:
        def fit(a: np.ndarray) -> np.ndarray:
            return cv2.resize(a, (180, 210), interpolation=cv2.INTER_AREA)

        cells.append(np.hstack([fit(src[y1:y2, x1:x2]), fit(tgt), fit(out[y1:y2, x1:x2])]))
    if len(cells) % 2:
        cells.append(np.zeros_like(cells[0]))
    rows = [np.hstack([cells[i], np.full((210, 8, 3), 255, np.uint8), cells[i + 1]]) for i in range(0, len(cells), 2)]
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


def against(old: Path, argv: list[str], repeat: int, new: Path) -> None:
    """This benchmark importing `new` and `old`, alternately, one run per fresh process each."""
    keys = ("median_total_ms", "median_query_ms", "median_swap_ms", "median_verify_ms", "median_metrics_ms",
            "wall_ms_per_face", "cpu_ms_per_face", "query_ms", "rank_ms", "swap_ms", "verify_ms",
            "verify_landmarks_ms", "verify_attributes_ms", *(f"verify_{n}_ms" for n in RECOGNIZERS),
            "attempts_mean", "no_fallback", "verified_by_recognizers")
    runs: dict[str, list[dict[str, float]]] = {"new": [], "old": []}
    for r in range(repeat):
        for which, tree in (("new", new), ("old", old.resolve())):
            done = subprocess.run([sys.executable, __file__, *argv, "--repeat", "1", "--tree", str(tree)],
                                  capture_output=True, text=True, check=True)
            line = next(x for x in done.stdout.splitlines() if x.startswith("run 1: "))
            row = {k: float(v) for k, v in (kv.split("=") for kv in line.removeprefix("run 1: ").split(", "))}
            runs[which].append(row)
            print(f"pair {r + 1} {which}: " + ", ".join(f"{k}={row.get(k, float('nan')):.4g}" for k in keys),
                  flush=True)
    print(f"{'median of runs':<24} {'new':>9} {'old':>9} {'new/old':>8}")
    for k in keys:
        a = statistics.median(x.get(k, float("nan")) for x in runs["new"])
        b = statistics.median(x.get(k, float("nan")) for x in runs["old"])
        print(f"{k:<24} {a:>9.4g} {b:>9.4g} {a / b if b else float('nan'):>8.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=Path, help="pool folder (default: the built-in pool)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--sheet", type=Path, default=Path("/tmp/swap-sheet.png"))
    ap.add_argument("--real", type=Path, nargs="*", default=None, metavar="PHOTO",
                    help="real photos instead of composed groups: those found in installed packages "
                         "(mfmc.eval.photos.KNOWN_PHOTOS, astronaut) plus these files")
    ap.add_argument("--swapper", default=None, help="swapper name (default: the generator's)")
    ap.add_argument("--verifiers", default=None, help="NAME[,NAME…] (default: every recognizer)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=None,
                    help="candidates verified together after the first (default: the generator's)")
    ap.add_argument("--max-attempts", type=int, default=None, help="candidates per face (default: the generator's)")
    ap.add_argument("--max-candidates", type=int, default=None,
                    help="candidates swapped per face at most, attribute rejections included (default: the "
                         "generator's)")
    ap.add_argument("--recognizer-cost", type=int, default=0, metavar="K",
                    help="only time each recognizer per chip (batches of 1 and K) on real candidates and count "
                         "which it rejects (the cascade's order, mfmc.swap.verify.CASCADE), then exit")
    ap.add_argument("--swap-cost", type=int, default=0, metavar="R",
                    help="only replay every swap the generator makes R times and time it per stage, then exit")
    ap.add_argument("--cpu-stages", action="store_true",
                    help="only time one warm pass of every photo's faces by process CPU, split by stage and network "
                         "(exclusive), then exit")
    ap.add_argument("--batch-ratio", type=int, default=0, metavar="K",
                    help="only time verifying K candidates per face one at a time against batched, then exit")
    ap.add_argument("--attributes-ratio", type=int, default=0, metavar="K",
                    help="only time the checks before the recognizers (landmarks, gender, expression) of K real "
                         "candidates per face as "
                         "before batching against batched, then exit")
    ap.add_argument("--tree", type=Path, default=None, help="the mfmc source tree to import (default: this one)")
    ap.add_argument("--against", type=Path, default=None, metavar="OLD_TREE",
                    help="compare with an older source tree, run alternately in fresh processes")
    args = ap.parse_args()
    configure(VisionSettings.from_env(os.environ))  # the MFMC_* settings, read at this edge as the CLI does
    if args.against is not None:
        argv = sys.argv[1:]
        k = argv.index("--against")
        argv = argv[:k] + argv[k + 2 :]
        for flag in ("--repeat", "--tree"):
            if flag in argv:
                k = argv.index(flag)
                argv = argv[:k] + argv[k + 2 :]
        against(args.against, argv, args.repeat, (args.tree or Path(__file__).resolve().parents[1]).resolve())
        return
    pipe = FacePipeline.default()
    pool = TargetPool.load(args.pool) if args.pool else TargetPool.default()
    options: dict[str, int] = {}
    if args.batch is not None:
        options["batch"] = args.batch
    if args.max_attempts is not None:
        options["max_attempts"] = args.max_attempts
    if args.max_candidates is not None:
        options["max_candidates"] = args.max_candidates
    gen = FakeGenerator(pipe, pool, swapper=args.swapper,
                        recognizers=args.verifiers.split(",") if args.verifiers else None, **options)
    if args.real is not None:
        from mfmc.eval.photos import real_photos

        photos = real_photos(args.real)
    else:
        photos = group_photos(pipe, args.photos)
    gen.fake_face(photos[0][1], pipe.analyze(photos[0][1]), 0)  # warm up models and caches
    if args.attributes_ratio:
        print(attributes_ratio(gen, pipe, photos, args.attributes_ratio))
        return
    if args.recognizer_cost:
        print(recognizer_cost(gen, pipe, photos, args.recognizer_cost, seed=args.seed))
        return
    if args.swap_cost:
        print(swap_cost(gen, photos, args.swap_cost, seed=args.seed))
        return
    if args.cpu_stages:
        cpu_stages(gen, pipe, photos, seed=args.seed)
        return
    if args.batch_ratio:
        print(batch_ratio(gen, pipe, photos, args.batch_ratio))
        return
    results = []
    for r in range(args.repeat):
        res = run_once(gen, pipe, photos, args.sheet if r == 0 else None, seed=args.seed)
        results.append(res)
        shown = (f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items())
        print(f"run {r + 1}: " + ", ".join(shown))
    best = min(results, key=lambda d: d["cpu_ms_per_face"])
    print(f"best cpu ms/face {best['cpu_ms_per_face']:.1f} (query {best['query_ms']:.1f}, swap {best['swap_ms']:.1f}, "
          f"verify {best['verify_ms']:.1f}, metrics {best['metrics_ms']:.1f}); sheet: {args.sheet}")
    med = min(results, key=lambda d: d["median_total_ms"])
    print(f"best median wall ms/face {med['median_total_ms']:.1f} (query {med['median_query_ms']:.1f}, swap "
          f"{med['median_swap_ms']:.1f}, verify {med['median_verify_ms']:.1f}, rank {med['median_rank_ms']:.1f}, "
          f"metrics {med['median_metrics_ms']:.1f}; "
          f"median attempts {med['median_attempts']:g}, no fallback {med['no_fallback']:.2f})")


if __name__ == "__main__":
    main()
