"""Turn an `Evaluation` into the report: one JSON-ready dict, a Markdown page, and the PNG plots."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mfmc.eval import metrics as m
from mfmc.eval.dataset import identity_pairs
from mfmc.eval.run import Evaluation, FaceRecord, same_person_targets

#: The paper's Table 1 averages over seven recognizers (source vs result; cosine distance, embedding metric).
PAPER = {"source_vs_result": {"furthest": 0.35, "random": 0.39}, "source_vs_target": {"furthest": 0.02,
                                                                                      "random": 0.02}}
MODE_TEXT = {
    "single": "one swap of the first fitting target, no verification (the paper's setting)",
    "verified": "FakeGenerator per face (fake_face): every recognizer verifies, retries, falls back",
    "holdout": "FakeGenerator verifying with {v} only; the other recognizers are held out",
    "given": "results read from --anon DIR",
}


def build(ev: Evaluation, meta: dict[str, Any]) -> dict[str, Any]:
    """The whole report as a JSON-ready dict."""
    recs = ev.recognizers
    configs = sorted({k for f in ev.faces for k in f.results}, key=_config_order)
    thresholds = {r: float(ev.pipe.recognizers[r].threshold) for r in recs}
    report: dict[str, Any] = {
        "meta": {**meta, "photos": len(ev.photos), "faces": len(ev.faces),
                 "identities": len({f.identity for f in ev.faces if f.identity}),
                 "recognizers": {r: {"threshold": thresholds[r], "metric": ev.pipe.recognizers[r].metric,
                                     "dim": int(ev.faces[0].embeddings[r].shape[0]) if ev.faces else None}
                                 for r in recs},
                 "configs": configs,
                 "modes": {c.split("/")[0]: MODE_TEXT[c.split("/")[0]].format(v=ev.opt.holdout_verifier)
                           for c in configs}},
        "calibration": calibration(ev, thresholds),
        "table1": table1(ev, configs, thresholds),
        "reidentification": reidentification(ev, configs, thresholds),
        "quality": quality(ev, configs),
        "pool": pool_distributions(ev, thresholds),
        "similarity_metrics": [{k: v for k, v in s.items() if k != "aligned"} for s in ev.similarity],
        "timings": timings(ev, configs),
        "photos": [{k: v for k, v in p.items()} for p in ev.photos],
        "faces": [face_json(f) for f in ev.faces],
    }
    if ev.kept:
        from mfmc.eval.photos import summarize

        report["kept"] = summarize(ev.kept)
    if ev.transfer:
        from mfmc.eval.photos import transfer_row

        report["leave_one_out"] = {r: transfer_row(len(recs) - 1, s, n) for r, (s, n) in ev.transfer.items()}
    report["headline"] = headline(report, recs)
    return _clean(report)


def _config_order(key: str) -> tuple[int, int]:
    mode, strategy = key.split("/")
    order = ("single", "verified", "holdout", "given")
    return (order.index(mode) if mode in order else 9, 0 if strategy == "furthest" else 1)


def calibration(ev: Evaluation, thresholds: dict[str, float]) -> dict[str, Any]:
    """Genuine / impostor pairs among the source faces of an identity-labelled set, at each threshold."""
    labels = [f.identity for f in ev.faces]
    same, other = identity_pairs(labels)
    out: dict[str, Any] = {"genuine_pairs": len(same), "impostor_pairs": len(other)}
    for r, t in thresholds.items():
        entry: dict[str, Any] = {"threshold": t}
        if len(same) and len(other):
            e = np.stack([f.embeddings[r] for f in ev.faces])
            rec = ev.pipe.recognizers[r]
            gd = rec.distance(e[same[:, 0]], e[same[:, 1]])
            idd = rec.distance(e[other[:, 0]], e[other[:, 1]])
            cands = np.unique(np.round(np.concatenate([gd, idd]), 3))
            bal = [((gd < c).mean() + (idd >= c).mean()) / 2 for c in cands]
            best = int(np.argmax(bal))
            entry.update({
                "true_match_rate": float((gd < t).mean()), "false_match_rate": float((idd < t).mean()),
                "genuine_distance": m.summary(gd), "impostor_distance": m.summary(idd),
                "best_threshold_here": float(cands[best]), "best_balanced_accuracy_here": float(bal[best]),
            })
        out[r] = entry
    return out


def _acc(values: list[float | None], t: float) -> float | None:
    return m.accuracy([v for v in values if v is not None], t)


def table1(ev: Evaluation, configs: list[str], thresholds: dict[str, float]) -> dict[str, Any]:
    """Per mode and recognizer: accuracy source vs target and source vs result per strategy, and the relative
    reduction against the unmodified photo (accuracy 1, the paper's convention)."""
    out: dict[str, Any] = {}
    for key in configs:
        mode, strategy = key.split("/")
        for r, t in thresholds.items():
            rows = [f.results[key] for f in ev.faces if key in f.results]
            st = _acc([x["target_to_source"].get(r) for x in rows if x["target"]], t)
            sr = _acc([x["distance_to_source"].get(r) for x in rows], t)
            cell = out.setdefault(mode, {}).setdefault(r, {"source_vs_target": {}, "source_vs_result": {},
                                                           "relative_reduction": {}, "faces": {}})
            cell["source_vs_target"][strategy] = st
            cell["source_vs_result"][strategy] = sr
            cell["relative_reduction"][strategy] = m.relative_reduction(1.0, sr)
            cell["faces"][strategy] = len(rows)
        avg: dict[str, Any] = {"source_vs_target": {}, "source_vs_result": {}, "relative_reduction": {}}
        for col in ("source_vs_target", "source_vs_result"):
            vals = [out[mode][r][col].get(strategy) for r in thresholds]
            vals = [v for v in vals if v is not None]
            avg[col][strategy] = float(np.mean(vals)) if vals else None
        avg["relative_reduction"][strategy] = m.relative_reduction(1.0, avg["source_vs_result"][strategy])
        prev = out[mode].get("average", {"source_vs_target": {}, "source_vs_result": {}, "relative_reduction": {}})
        for col in avg:
            prev[col].update(avg[col])
        out[mode]["average"] = prev
    return out


def reidentification(ev: Evaluation, configs: list[str], thresholds: dict[str, float]) -> dict[str, Any]:
    """Rank-1 identification against a gallery of the other source faces (labelled sets only).

    A probe is identified when its nearest gallery face (itself excluded) is the same person and closer than
    the threshold. `before` probes with the source faces, each config with its results.
    """
    labels = np.array([f.identity or "" for f in ev.faces])
    counts = {lab: int((labels == lab).sum()) for lab in set(labels.tolist()) if lab}
    usable = np.array([bool(lab) and counts.get(lab, 0) >= 2 for lab in labels])
    out: dict[str, Any] = {"probes": int(usable.sum())}
    if usable.sum() == 0:
        return out
    for r, t in thresholds.items():
        rec = ev.pipe.recognizers[r]
        gallery = np.stack([f.embeddings[r] for f in ev.faces])

        def rate(probes: np.ndarray, rec: Any = rec, gallery: np.ndarray = gallery, t: float = t) -> float:
            d = rec.pairwise(probes, gallery)
            np.fill_diagonal(d, np.inf)
            nearest = d.argmin(axis=1)
            hit = (labels[nearest] == labels) & (d[np.arange(len(d)), nearest] < t)
            return float(hit[usable].mean())

        entry = {"before": rate(gallery)}
        for key in configs:
            if all(key in f.result_embeddings for f in ev.faces):
                after = rate(np.stack([f.result_embeddings[key][r] for f in ev.faces]))
                entry[key] = {"after": after, "relative_reduction": m.relative_reduction(entry["before"], after)}
        out[r] = entry
    return out


def quality(ev: Evaluation, configs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    for key in configs:
        faces = [f for f in ev.faces if key in f.results]
        rows = [f.results[key] for f in faces]
        swapped = [x for x in rows if x["fallback"] in ("none", "alpha", "unknown")]
        q: dict[str, Any] = {
            "faces": len(rows),
            "fallbacks": _counts(x["fallback"] for x in rows),
            "attempts": m.summary(x["attempts"] for x in rows if x["attempts"] is not None),
            "detection_retention": float(np.mean([x["detected"] for x in rows])) if rows else None,
            "changed_outside_masks": _sum_opt(p["configs"].get(key, {}).get("changed_outside_masks")
                                              for p in ev.photos if "configs" in p),
            "swapped_only": {k: m.summary(x[k] for x in swapped) for k in ("psnr", "ssim", "rmse", "landmark_error")},
            "all": {k: m.summary(x[k] for x in rows) for k in ("psnr", "ssim", "rmse", "landmark_error")},
            "embedding_distance": {r: m.summary(x["distance_to_source"][r] for x in rows) for r in ev.recognizers},
            "frechet": {},
        }
        for r in ev.recognizers:
            src = np.stack([f.embeddings[r] for f in faces]) if faces else np.zeros((0, 1))
            res = np.stack([f.result_embeddings[key][r] for f in faces]) if faces else np.zeros((0, 1))
            if len(src) < 2 or r not in ev.pool.index.embeddings:  # a pool stores the recognizers of its build
                continue
            pool_emb = np.asarray(ev.pool.index.embeddings[r])
            sample = pool_emb[rng.choice(len(pool_emb), size=min(len(src), len(pool_emb)), replace=False)]
            known = set(ev.pool.ids)  # recombined targets (`mix:…`) have no stored embedding
            tg = [ev.pool.entry(x["target"]).embeddings.get(r) for x in rows if x["target"] in known]
            q["frechet"][r] = {
                "source_vs_result": _fd(src, res),
                "source_vs_target": _fd(src, np.stack(tg)) if len(tg) >= 2 else None,
                "source_vs_pool_sample": _fd(src, sample),
                "n": len(src),
            }
        out[key] = q
    return out


def _fd(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2 or len(b) < 2:
        return None
    return m.frechet_distance(a, b)


def _counts(values: Iterable[object]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


def _sum_opt(values: Iterable[int | None]) -> int | None:
    vals = list(values)
    return None if not vals or any(v is None for v in vals) else int(sum(vals))


def pool_distributions(ev: Evaluation, thresholds: dict[str, float]) -> dict[str, Any]:
    """Paper Fig. 5: source→pool embedding distances, pool ages and genders."""
    pool = ev.pool
    info = pool.info()
    out: dict[str, Any] = {"name": pool.name, "faces": len(pool), "gender": info["gender"],
                           "age_groups": info["age_groups"], "sources": info["sources"], "distance": {}}
    ages = np.asarray(pool.index.attributes["age"], np.float64)
    ages = ages[np.isfinite(ages)]
    counts, edges = np.histogram(ages, bins=np.arange(0, 101, 5))
    out["age"] = {"summary": m.summary(ages), "histogram": {"edges": edges.tolist(), "counts": counts.tolist()}}
    for r, t in thresholds.items():
        if r not in pool.recognizers or not ev.faces:
            continue
        src = np.stack([f.embeddings[r] for f in ev.faces])
        d = ev.pipe.recognizers[r].pairwise(src, np.asarray(pool.index.embeddings[r]))
        if ev.opt.exclude_same_person:  # targets made from the evaluated person are never used: leave them out
            ids = {t: j for j, t in enumerate(pool.ids)}
            for i, f in enumerate(ev.faces):
                for tid in same_person_targets(pool, f.identity):
                    d[i, ids[tid]] = np.nan
        d = d.ravel()
        d = d[np.isfinite(d)]
        counts, edges = np.histogram(d, bins=40)
        out["distance"][r] = {"threshold": t, "summary": m.summary(d), "below_threshold": float((d < t).mean()),
                              "histogram": {"edges": edges.tolist(), "counts": counts.tolist()}}
    return out


def timings(ev: Evaluation, configs: list[str]) -> dict[str, Any]:
    photos = [p for p in ev.photos if "detect_ms" in p]
    out: dict[str, Any] = {
        "detect_ms_per_photo": m.summary(p["detect_ms"] for p in photos),
        "analyze_ms_per_face": m.summary(p["analyze_ms"] / p["faces"] for p in photos if p["faces"]),
    }
    for key in configs:
        rows = [f.results[key] for f in ev.faces if key in f.results]
        per = {part: m.summary(x["timings_ms"].get(part, 0.0) for x in rows)
               for part in ("query", "swap", "verify", "total")}
        per["generate_ms_per_photo"] = m.summary(p["configs"][key]["generate_ms"] for p in photos
                                                 if key in p.get("configs", {}))
        out[key] = per
    return out


def headline(report: dict[str, Any], recs: list[str]) -> dict[str, Any]:
    rows = {}
    for mode, by_rec in report["table1"].items():
        for r in [*recs, "average"]:
            if r in by_rec:
                rows[f"{mode}/{r}"] = dict(by_rec[r]["source_vs_result"])
    return {"ours_source_vs_result": rows, "paper_average_source_vs_result": PAPER["source_vs_result"]}


def face_json(f: FaceRecord) -> dict[str, Any]:
    return {"photo": f.photo, "index": f.index, "identity": f.identity, "box": [round(v, 1) for v in f.box],
            "age": f.age, "gender": f.gender, "results": f.results}


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 4)
    return value


# -- writing -------------------------------------------------------------------------------------------------
def write(report: dict[str, Any], out: Path, ev: Evaluation, *, plots: bool = True) -> list[Path]:
    """Write report.json, report.md and (when matplotlib is installed) the PNG plots into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    figures: dict[str, str] = {}
    if plots:
        from mfmc.eval import plots as p

        figures = p.all_plots(report, ev, out)
        report["meta"]["plots"] = sorted(figures.values())
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    written.append(out / "report.json")
    (out / "report.md").write_text(markdown(report, figures))
    written.append(out / "report.md")
    return written + [out / f for f in figures.values()]


def _f(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(r: dict[str, Any], figures: dict[str, str]) -> str:
    meta = r["meta"]
    recs = list(meta["recognizers"])
    lines = [
        "# mfmc evaluation report", "",
        f"Input `{meta.get('input')}`: {meta['photos']} photos, {meta['faces']} faces, {meta['identities']} "
        f"labelled identities. Pool `{r['pool']['name']}` ({r['pool']['faces']} faces). Seed {meta.get('seed')}. "
        f"Generated by `{meta.get('command')}`.", "",
        "Configurations:", "",
    ]
    lines += [f"- `{mode}`: {text}" for mode, text in meta["modes"].items()]
    lines += ["", "## Headline: accuracy after (source vs result) vs the paper", "",
              "| configuration | recognizer | furthest | random |", "|---|---|---|---|"]
    for mode, by_rec in r["table1"].items():
        for rec in [*recs, "average"]:
            c = by_rec.get(rec, {}).get("source_vs_result", {})
            given = c.get("given")  # --anon results: strategy unknown, shown in both columns
            lines.append(f"| {mode} | {rec} | {_f(c.get('furthest', given))} | {_f(c.get('random', given))} |")
    p = PAPER["source_vs_result"]
    lines += [f"| paper Table 1 | average of 7 | {p['furthest']:.2f} | {p['random']:.2f} |", ""]
    lines += ["Accuracy = fraction of faces the recognizer calls the same person as the source (distance below "
              "its threshold). In `verified` every recognizer is a verifier, so its accuracy after is ~0 by "
              "construction; only `single` (no verification) and the held-out recognizers of `holdout` "
              "measure how well the swap itself removes identity.", ""]
    lines += ["## Table 1 layout: recognition accuracy", ""]
    for mode, by_rec in r["table1"].items():
        lines += [f"### `{mode}`", "",
                  "| recognizer | src vs target, furthest | src vs target, random | src vs result, furthest "
                  "| src vs result, random | reduction, furthest | reduction, random |",
                  "|---|---|---|---|---|---|---|"]
        for rec in [*recs, "average"]:
            c = by_rec.get(rec)
            if not c:
                continue
            st, sr, red = c["source_vs_target"], c["source_vs_result"], c["relative_reduction"]
            lines.append(
                f"| {rec} | {_f(st.get('furthest'), 3)} | {_f(st.get('random'), 3)}"
                f" | {_f(sr.get('furthest'))} | {_f(sr.get('random'))}"
                f" | {_pct(red.get('furthest'))} | {_pct(red.get('random'))} |")
        lines.append("")
    lines += ["Reduction is relative to the unmodified photo (accuracy 1), the paper's convention "
              "(61 % = 1 − 0.39).", "", "## Thresholds and calibration", ""]
    cal = r["calibration"]
    lines += [f"Genuine pairs among the source faces: {cal['genuine_pairs']}, impostor pairs: "
              f"{cal['impostor_pairs']}.", "",
              "| recognizer | metric | threshold | true match rate here | false match rate here "
              "| best balanced threshold here |", "|---|---|---|---|---|---|"]
    for rec in recs:
        c = cal.get(rec, {})
        lines.append(f"| {rec} | {meta['recognizers'][rec]['metric']} | {_f(c.get('threshold'), 3)} | "
                     f"{_f(c.get('true_match_rate'), 3)} | {_f(c.get('false_match_rate'), 3)} | "
                     f"{_f(c.get('best_threshold_here'), 3)} |")
    lines += ["", "The thresholds are the library's (`Recognizer.threshold`): dlib's is its published operating "
              "point (Euclidean); FaceNet's (cosine distance) was calibrated by `python -m mfmc.vision.calibrate` "
              "on every openpeople face (maximum balanced accuracy), see mfmc/vision/recognition.py. "
              "The columns \"here\" re-measure them on this input's labelled "
              "faces: a high true match rate shows the recognizer does recognise these people, so a low accuracy "
              "after is protection, not a blind recognizer.", ""]
    reid = r["reidentification"]
    if reid.get("probes"):
        lines += ["## Re-identification against other photos of the person", "",
                  f"Rank-1 identification of each face against a gallery of all other source faces "
                  f"({reid['probes']} probes; identified = nearest is the same person and below the threshold).", "",
                  "| recognizer | before | " + " | ".join(meta["configs"]) + " |",
                  "|---|---|" + "---|" * len(meta["configs"])]
        for rec in recs:
            e = reid.get(rec, {})
            cells = [_f(e.get(k, {}).get("after")) for k in meta["configs"]]
            lines.append(f"| {rec} | {_f(e.get('before'))} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Quality of the fakes (paper Fig. 4)", "",
              "PSNR, SSIM and RMSE compare source and result inside the face box (swapped faces only; fallbacks "
              "excluded); landmark error is the mean 68-point distance over the outer-eye-corner distance, "
              "re-predicted on the result. Fréchet distance is computed between Gaussians fitted to embedding "
              "sets in each recognizer's space (e.g. FaceNet-512), **not** FID's Inception space; with fewer "
              "faces than dimensions it is biased upwards, so compare it only with the reference column "
              "(sources vs a random pool sample of the same size).", "",
              "| configuration | faces | fallbacks | PSNR dB | SSIM | RMSE | landmark err | detected after | "
              "pixels changed outside masks |", "|---|---|---|---|---|---|---|---|---|"]
    for key, q in r["quality"].items():
        s = q["swapped_only"]
        fb = ", ".join(f"{k} {v}" for k, v in q["fallbacks"].items())
        lines.append(f"| {key} | {q['faces']} | {fb} | {_mean(s['psnr'], 1)} | {_mean(s['ssim'], 3)} | "
                     f"{_mean(s['rmse'], 1)} | {_mean(s['landmark_error'], 3)} | "
                     f"{_pct(q['detection_retention'])} | {_f(q['changed_outside_masks'])} |")
    lines += ["", "| configuration | recognizer | embedding distance (mean ± sd) | Fréchet src–result | "
              "Fréchet src–target | Fréchet src–pool sample |", "|---|---|---|---|---|---|"]
    for key, q in r["quality"].items():
        for rec in recs:
            e = q["embedding_distance"].get(rec)
            fd = q["frechet"].get(rec, {})
            lines.append(f"| {key} | {rec} | {_mean(e, 3)} ± {_f(e and e['std'], 3)} | "
                         f"{_f(fd.get('source_vs_result'), 3)} | {_f(fd.get('source_vs_target'), 3)} | "
                         f"{_f(fd.get('source_vs_pool_sample'), 3)} |")
    pool = r["pool"]
    lines += ["", "## Pool distributions (paper Fig. 5)", "",
              f"Genders: {', '.join(f'{k} {v}' for k, v in pool['gender'].items())}. Age groups: "
              f"{', '.join(f'{k} {v}' for k, v in pool['age_groups'].items())}. Sources: "
              f"{', '.join(f'{k} {v}' for k, v in pool['sources'].items())}.", ""]
    for rec, d in pool["distance"].items():
        s = d["summary"]
        lines.append(f"- {rec}: source→pool distance mean {s['mean']:.3f}, min {s['min']:.3f}; "
                     f"{d['below_threshold']:.2%} of source–pool pairs are below the threshold {d['threshold']}")
    lines += ["", "## Similarity metric for the target choice (paper Fig. 6)", "",
              "Furthest target per metric (no randomness, same age/gender group, no expression filter); the "
              "cells give the chosen target's embedding distance to the source (dlib / facenet).", ""]
    if r["similarity_metrics"]:
        labels = list(r["similarity_metrics"][0]["metrics"])
        lines += ["| source | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        for s in r["similarity_metrics"]:
            cells = []
            for lab in labels:
                e = s["metrics"].get(lab, {})
                d = e.get("embedding_distance", {})
                cells.append(" / ".join(_f(d.get(rec), 2) for rec in recs) if d else "–")
            lines.append(f"| {s['photo']} #{s['index']} | " + " | ".join(cells) + " |")
        means = []
        for lab in labels:
            ds = [s["metrics"].get(lab, {}).get("embedding_distance", {}) for s in r["similarity_metrics"]]
            means.append(" / ".join(_f(float(np.mean([d[rec] for d in ds if rec in d])) if any(rec in d for d in ds)
                                       else None, 2) for rec in recs))
        lines.append("| **mean** | " + " | ".join(means) + " |")
    lines += kept_markdown(r)
    lines += ["", "## Time", ""]
    t = r["timings"]
    lines.append(f"Detection {_mean(t['detect_ms_per_photo'], 0)} ms per photo; analysis (68 landmarks, pose, "
                 f"age/gender, embeddings) {_mean(t['analyze_ms_per_face'], 0)} ms per face.")
    lines += ["", "| configuration | query ms/face | swap ms/face | verify ms/face | total ms/face | ms/photo |",
              "|---|---|---|---|---|---|"]
    for key in meta["configs"]:
        e = t.get(key, {})
        lines.append(f"| {key} | {_mean(e.get('query'), 0)} | {_mean(e.get('swap'), 0)} | "
                     f"{_mean(e.get('verify'), 0)} | {_mean(e.get('total'), 0)} | "
                     f"{_mean(e.get('generate_ms_per_photo'), 0)} |")
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{name}]({path})" for name, path in figures.items()]
    else:
        lines += ["", "Plots were not drawn (matplotlib is not installed: `pip install matplotlib`)."]
    return "\n".join(lines) + "\n"


def kept_markdown(r: dict[str, Any]) -> list[str]:
    """The `kept` and `loo` sections (issue 11 figures of mfmc.eval.photos), when measured."""
    lines: list[str] = []
    k = r.get("kept")
    if k:
        lines += ["", "## Kept: the shipped generator on whole photos (`kept`)", "",
                  f"{k['faces']} faces, {k['eligible']} of them ≥ 24 px with |yaw| ≤ 60°. Gender and expression "
                  "are judged by the pipeline's classifiers on the faces that became swaps.", "",
                  "| figure | value |", "|---|---|",
                  f"| verified swap (eligible faces) | {_pct(k['swapped'])} |",
                  f"| gender kept | {_pct(k['gender_kept'])} |",
                  f"| expression kept | {_pct(k['expression_kept'])} |",
                  f"| facial hair added | {k['beard_added']} |",
                  f"| faces still detected | {_pct(k['detected'])} |",
                  f"| swapped pairs that match each other | {k['swapped_pairs_matching']} of {k['swapped_pairs']} |",
                  f"| fakes matching another real face | {k['fakes_matching_real']} |",
                  f"| pixels changed > 1 level outside masks | {k['changed_outside']} |",
                  f"| landmark error (inter-ocular) | {_f(k['landmark_error_mean'], 3)} |",
                  f"| fallbacks | {', '.join(f'{n} {c}' for n, c in sorted(k['fallbacks'].items()))} |"]
    loo = r.get("leave_one_out")
    if loo:
        lines += ["", "## Leave-one-out transfer (`loo`)", "",
                  "The generator verifies with every recognizer but one; the one left out counts the swapped fakes "
                  "it still matches to their source.", "",
                  "| left out | verifiers | swapped | re-identified | rate |", "|---|---|---|---|---|"]
        for rec, row in loo.items():
            rate = row["rate"]
            lines.append(f"| {rec} | {row['verifiers']} | {row['swapped']} | {row['reidentified']} | "
                         f"{_pct(rate if isinstance(rate, float) and math.isfinite(rate) else None)} |")
    return lines


def _mean(s: dict[str, Any] | None, digits: int = 2) -> str:
    return "–" if not s else _f(s["mean"], digits)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"
