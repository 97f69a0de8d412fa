"""Pool build / load / query timings with synthetic embeddings (no images, no models).

    python benchmarks/bench_pool.py                 # 1k, 10k, 100k exact; 1M with ANN (usearch) if installed
    python benchmarks/bench_pool.py --sizes 1000 10000 --repeat 3 --no-ann
    python benchmarks/bench_pool.py --identities 300   # distinct identities: shape-model supply vs legacy

For each size: time to assemble the index, save and load it, and the median query time over random probes for
the exact numpy backend (`closest`, `furthest`, `random` = Eq. 1) and for a brute-force baseline written the
obvious way (full distance vector, full argsort) in the same run; with `--ann`, the usearch backend at the
largest size, with recall of the top candidate against exact search.

With `--identities N`: the greedy count of mutually distinct identities (every recognizer of `--recognizers`
at its threshold) of the pool's people plus N recombinations per gender, for the recombination supply
(`mfmc.swap.recombine.Supply()`) and, in the same run, the part-only recipes it replaced (`LEGACY`) as the
baseline (`--supply new|legacy|both`).

With `--identities N --fakes PHOTO...` (and `--recognizers dlib,facenet,openface,mobilefacenet` for the
generator's four verifiers): the distinct *fakes* of each photo's largest face instead
(`mfmc.swap.recombine.fake_supply`): the pool's people of its gender plus N recombinations swapped onto it, how
many leave the source and how many of those the recognizers tell apart (`--full`: as the generator's escalation
swaps, full geometry). With `--identities N --collisions PHOTO...`: how often two faces' fakes match, by how
their targets relate (same target, same base person, other bases, base and eye people all different;
`fake_collisions`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

from mfmc.pool import Probe, TargetPool
from mfmc.pool.synthetic import random_index


def brute_force(matrix: np.ndarray, q: np.ndarray, strategy: str, k: int, rng: np.random.Generator) -> np.ndarray:
    d = np.linalg.norm(matrix - q, axis=1)
    order = np.argsort(d)
    if strategy == "closest":
        return order[:k]
    if strategy == "furthest":
        return order[::-1][:k]
    inside = np.flatnonzero(d > d.max() - d.std())
    return rng.permutation(inside)[:k]


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_size(n: int, dim: int, queries: int, repeat: int) -> dict:
    t = time.perf_counter()
    idx = random_index(n, dims={"dlib": dim}, seed=1)
    build_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        idx.save(tmp)
        save_s = time.perf_counter() - t
        load_s = timed(lambda: TargetPool.load(tmp), repeat)
    pool = TargetPool(idx, backend="exact")
    rng = np.random.default_rng(7)
    probes = [Probe({"dlib": rng.standard_normal(dim).astype(np.float32)}) for _ in range(queries)]
    row = {"n": n, "build_s": build_s, "save_s": save_s, "load_s": load_s}
    matrix = idx.embeddings["dlib"]
    for strategy in ("closest", "furthest", "random"):
        pool.query(probes[0], strategy=strategy, same_group=False, compatible=False)  # warm caches
        ours = [timed(lambda p=p, s=strategy: pool.query(p, strategy=s, same_group=False, compatible=False, k=8),
                      repeat) for p in probes]
        base = [timed(lambda p=p, s=strategy: brute_force(matrix, p.embeddings["dlib"], s, 8, rng), repeat)
                for p in probes]
        row[f"{strategy}_ms"] = 1000 * statistics.median(ours)
        row[f"{strategy}_brute_ms"] = 1000 * statistics.median(base)
    filtered = [timed(lambda p=p: pool.query(Probe(p.embeddings, age=30, gender="female", pose=(0, 0, 0),
                                                   mouth_open=0.0, eye_ratio=0.3), k=8), repeat) for p in probes]
    row["random_filtered_ms"] = 1000 * statistics.median(filtered)
    return row


def bench_ann(n: int, dim: int, queries: int) -> dict:
    idx = random_index(n, dims={"dlib": dim}, seed=2)
    exact = TargetPool(idx, backend="exact")
    ann = TargetPool(idx, backend="ann")
    t = time.perf_counter()
    ann.ann_index("dlib", "l2")
    build_s = time.perf_counter() - t
    rng = np.random.default_rng(9)
    probes = [Probe({"dlib": rng.standard_normal(dim).astype(np.float32)}) for _ in range(queries)]
    row = {"n": n, "ann_build_s": build_s}
    for strategy in ("closest", "furthest", "random"):
        ours, base, hits, in_t = [], [], 0, 0
        for p in probes:
            t = time.perf_counter()
            got = ann.query(p, strategy=strategy, same_group=False, compatible=False, k=8)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            ref = exact.query(p, strategy=strategy, same_group=False, compatible=False, k=8)
            base.append(time.perf_counter() - t)
            hits += got[0].id == ref[0].id
            if strategy == "random":  # is the ANN pick inside the exact Eq. 1 set?
                d = np.linalg.norm(idx.embeddings["dlib"] - p.embeddings["dlib"], axis=1)
                in_t += d[exact._pos[got[0].id]] > d.max() - d.std()
        row[f"{strategy}_ann_ms"] = 1000 * statistics.median(ours)
        row[f"{strategy}_exact_ms"] = 1000 * statistics.median(base)
        row[f"{strategy}_top1_agree"] = hits / len(probes)
        if strategy == "random":
            row["random_pick_in_exact_T"] = in_t / len(probes)
    return row


def fake_collisions(photo: np.ndarray, n: int, recognizers: list[str]) -> dict[str, tuple[int, int]]:
    """How often two faces' fakes of a photo match (some recognizer within its threshold), by how their targets
    relate: every face swapped (first pass) with one face of each of the pool's own people of its gender (no
    morphs) and `n` recombinations of the catalogue's draw; pairs of fakes of two faces counted as matching / all,
    for the same target, two recombinations on the same base person, other bases, base and eye people all
    different, and the real faces' pairs."""
    import itertools

    from mfmc.pool import TargetPool
    from mfmc.swap.generate import FakeGenerator
    from mfmc.swap.ranking import MixCatalogue
    from mfmc.swap.recombine import Recombiner, Target
    from mfmc.vision import FacePipeline

    pipeline, pool = FacePipeline.default(), TargetPool.default()
    gen = FakeGenerator(pipeline, pool, recognizers=recognizers)
    rs = pipeline.recognizers
    faces = pipeline.analyze(photo, recognizers=recognizers)
    rec = Recombiner(pool, cache=64)
    fakes: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for k in range(len(faces)):
        face = faces[k]
        gender = str(face.gender[0])
        people: dict[str, str] = {}
        for i in pool.ids:
            if pool.entry(i).gender == gender and "derived" not in pool.entry(i).source:
                people.setdefault(pool.identity(i), i)
        targets = [Target.plain(i, who) for who, i in people.items()]
        targets += MixCatalogue(pipeline, rec, recognizers, size=n).recipes(gender)
        lm = np.asarray(face.landmarks68[0], np.float64)
        for t in targets:
            t_img, t_lm = rec.image(t)
            out = gen.swapper.swap(photo, lm, t_img, t_lm, alpha=gen.alpha).patch.apply(photo)
            got = pipeline.analyze(out, face, attributes=False, recognizers=recognizers)
            fakes[(k, t.identity)] = {m: got.embeddings[m][0] for m in recognizers}

    def match(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
        return any(float(rs[m].distance(a[m], b[m])) <= float(rs[m].threshold) for m in recognizers)

    def main(identity: str) -> list[str]:  # base and eye people
        return identity.split(":")[1].split("|")[:2] if identity.startswith("mix:") else [identity]

    out: dict[str, list[int]] = {k: [0, 0] for k in ("same target", "same base", "other base",
                                                     "other base and eyes", "real faces")}
    for (a, ta), (b, tb) in itertools.combinations(fakes, 2):
        if a == b:
            continue
        kinds = ["same target"] if ta == tb else ["same base" if main(ta)[0] == main(tb)[0] else "other base"]
        if ta != tb and not set(main(ta)) & set(main(tb)):
            kinds.append("other base and eyes")
        hit = match(fakes[(a, ta)], fakes[(b, tb)])
        for kind in kinds:
            out[kind][0] += hit
            out[kind][1] += 1
    for a, b in itertools.combinations(range(len(faces)), 2):
        out["real faces"][0] += match({m: faces.embeddings[m][a] for m in recognizers},
                                      {m: faces.embeddings[m][b] for m in recognizers})
        out["real faces"][1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--ann-size", type=int, default=1_000_000)
    ap.add_argument("--no-ann", action="store_true")
    ap.add_argument("--identities", type=int, default=0, metavar="N",
                    help="instead: count mutually distinct identities of the built-in pool plus N recombinations "
                         "per gender (greedy, every recognizer)")
    ap.add_argument("--pool", type=str, default=None, help="pool folder for --identities (default: built-in)")
    ap.add_argument("--recognizers", type=str, default="dlib,facenet",
                    help="recognizers that must all tell identities apart, for --identities")
    ap.add_argument("--supply", choices=("new", "legacy", "both"), default="both",
                    help="recombination supply for --identities: the current one, the legacy part-only recipes, "
                         "or both in one run (default)")
    ap.add_argument("--full", action="store_true", help="for --fakes: swap as the generator's escalation does "
                    "(full geometry, coarse split) instead of its first pass")
    ap.add_argument("--fakes", nargs="+", default=None, metavar="PHOTO",
                    help="with --identities N: count distinct fakes of each photo's largest face instead "
                         "(`fake_supply`): the pool's people plus N recombinations swapped onto it")
    ap.add_argument("--collisions", nargs="+", default=None, metavar="PHOTO",
                    help="with --identities N: how often two faces' fakes match, by how their targets relate "
                         "(`fake_collisions`; the pool's people plus N recombinations per face)")
    args = ap.parse_args()
    if args.identities and args.collisions:
        from pathlib import Path

        from mfmc.vision import load_image

        for path in args.collisions:
            for kind, (hit, total) in fake_collisions(load_image(Path(path)), args.identities,
                                                      args.recognizers.split(",")).items():
                print(f"{Path(path).name}: {kind}: {hit} of {total} pairs match"
                      f"{f' ({hit / total:.0%})' if total else ''}", flush=True)
        return
    if args.identities and args.fakes:
        from pathlib import Path

        from mfmc.pool import TargetPool
        from mfmc.swap.generate import FakeGenerator
        from mfmc.swap.recombine import LEGACY, Supply, fake_supply
        from mfmc.vision import FacePipeline, load_image

        pool = TargetPool.load(args.pool) if args.pool else TargetPool.default()
        gen = FakeGenerator(FacePipeline.default(), pool, recognizers=args.recognizers.split(","))
        names = ["new", "legacy"] if args.supply == "both" else [args.supply]
        for path in args.fakes:
            for name in names:
                r = fake_supply(gen, load_image(Path(path)), args.identities,
                                supply=Supply() if name == "new" else LEGACY, full=args.full)
                print(f"[{name}] {Path(path).name} ({r.gender}, alpha {r.alpha:g}): {r.targets} targets, "
                      f"{r.leaving} fakes leave the source, {r.distinct} distinct ({args.recognizers}; "
                      f"{r.seconds:.0f} s)", flush=True)
        return
    if args.identities:
        from mfmc.pool import TargetPool
        from mfmc.swap.recombine import LEGACY, Supply, identity_supply
        from mfmc.vision import FacePipeline

        pool = TargetPool.load(args.pool) if args.pool else TargetPool.default()
        pipeline = FacePipeline.default()
        supplies = {"new": Supply(), "legacy": LEGACY}
        names = ["new", "legacy"] if args.supply == "both" else [args.supply]
        totals = {}
        for name in names:
            rep = identity_supply(pipeline, pool, args.identities, recognizers=args.recognizers.split(","),
                                  supply=supplies[name])
            totals[name] = rep.total
            print(f"[{name}] pool {pool.name}: {len(pool)} faces; candidates per gender {rep.candidates}")
            print(f"[{name}] distinct identities (greedy, {args.recognizers} each at its threshold): plain people "
                  f"{rep.plain}, with recombinations {rep.distinct}, total {rep.total} ({rep.seconds:.0f} s)")
        if len(totals) == 2 and totals["legacy"]:
            print(f"new / legacy: {totals['new'] / totals['legacy']:.2f}x")
        return
    print(f"exact backend, {args.dim}-D, median of {args.repeat} runs x {args.queries} probes (ms per query)")
    print(f"{'n':>8} {'load s':>7} {'closest':>8} {'brute':>7} {'furthest':>8} {'brute':>7} {'random':>7} "
          f"{'brute':>7} {'ratio':>6} {'filtered':>8}")
    for n in args.sizes:
        r = bench_size(n, args.dim, args.queries, args.repeat)
        print(f"{n:>8} {r['load_s']:>7.3f} {r['closest_ms']:>8.2f} {r['closest_brute_ms']:>7.2f} "
              f"{r['furthest_ms']:>8.2f} {r['furthest_brute_ms']:>7.2f} {r['random_ms']:>7.2f} "
              f"{r['random_brute_ms']:>7.2f} {r['random_brute_ms'] / r['random_ms']:>6.1f} "
              f"{r['random_filtered_ms']:>8.2f}")
    if not args.no_ann:
        from mfmc.pool.ann import usearch_available

        if not usearch_available():
            print("ann: skipped (pip install usearch)")
            return
        r = bench_ann(args.ann_size, args.dim, args.queries)
        print(f"ann (usearch HNSW) at {r['n']}: index built in {r['ann_build_s']:.1f} s")
        for s in ("closest", "furthest", "random"):
            extra = f", pick in exact T(S) {r['random_pick_in_exact_T']:.0%}" if s == "random" else ""
            print(f"  {s:>8}: ann {r[f'{s}_ann_ms']:.2f} ms vs exact {r[f'{s}_exact_ms']:.2f} ms "
                  f"(x{r[f'{s}_exact_ms'] / r[f'{s}_ann_ms']:.1f}), top-1 agrees {r[f'{s}_top1_agree']:.0%}{extra}")


if __name__ == "__main__":
    main()
