"""PNG figures of the report, drawn with matplotlib (Agg backend, small files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mfmc.errors import ModelNotFoundError

if TYPE_CHECKING:
    from mfmc.eval.run import Evaluation

DPI = 80


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ModelNotFoundError("plots need matplotlib, which is not installed",
                                 help="pip install matplotlib, or pass `--no-plots`") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def all_plots(report: dict[str, Any], ev: Evaluation, out: Path) -> dict[str, str]:
    """Draw every figure into `out`; returns {title: file name}."""
    figures = {
        "Accuracy after, per recognizer and configuration (Table 1)": accuracy_plot(report, out / "accuracy.png"),
        "Quality per fake (Fig. 4)": quality_plot(report, out / "quality.png"),
        "Pool distributions (Fig. 5)": pool_plot(report, out / "pool.png"),
        "Furthest target per similarity metric (Fig. 6)": similarity_sheet(report, ev, out / "similarity.png"),
        "Samples: source, target, result": samples_sheet(ev, out / "samples.png"),
    }
    return {k: v for k, v in figures.items() if v}


def _save(fig: Any, path: Path) -> str:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    _plt().close(fig)
    return path.name


def accuracy_plot(report: dict[str, Any], path: Path) -> str:
    plt = _plt()
    recs = list(report["meta"]["recognizers"])
    configs = report["meta"]["configs"]
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(configs), 3.4))
    width = 0.8 / max(len(recs), 1)
    x = np.arange(len(configs))
    for j, rec in enumerate(recs):
        vals = []
        for key in configs:
            mode, strategy = key.split("/")
            v = report["table1"].get(mode, {}).get(rec, {}).get("source_vs_result", {}).get(strategy)
            vals.append(np.nan if v is None else v)
        xs = x + (j - (len(recs) - 1) / 2) * width
        ax.bar(xs, vals, width, label=rec)
        for xi, v in zip(xs, vals, strict=True):  # zero bars are invisible: print every value
            if np.isfinite(v):
                ax.text(xi, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=6)
    ax.axhline(0.39, color="k", ls="--", lw=1, label="paper avg, random (0.39)")
    ax.axhline(0.35, color="gray", ls=":", lw=1, label="paper avg, furthest (0.35)")
    ax.set_xticks(x, [c.replace("/", "\n") for c in configs], fontsize=8)
    ax.set_ylabel("accuracy, source vs result")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("Recognition accuracy after anonymization (lower is better)", fontsize=9)
    return _save(fig, path)


def quality_plot(report: dict[str, Any], path: Path) -> str:
    plt = _plt()
    recs = list(report["meta"]["recognizers"])
    configs = report["meta"]["configs"]
    panels = [("psnr", "PSNR in face box (dB)"), ("ssim", "SSIM in face box"), ("rmse", "RMSE in face box"),
              ("landmark_error", "landmark error / inter-ocular")]
    panels += [(f"d:{r}", f"{r} distance to source") for r in recs]
    cols = 3
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.6 * rows))
    axes = np.atleast_1d(axes).ravel()
    faces = report["faces"]
    for ax, (key, title) in zip(axes, panels, strict=False):
        data = []
        for c in configs:
            if key.startswith("d:"):
                v = [f["results"][c]["distance_to_source"].get(key[2:]) for f in faces if c in f["results"]]
            else:
                v = [f["results"][c].get(key) for f in faces if c in f["results"]
                     and f["results"][c]["fallback"] in ("none", "alpha", "unknown")]
            data.append([x for x in v if x is not None] or [np.nan])
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(configs) + 1), [c.replace("/", "\n") for c in configs], fontsize=6)
        ax.set_title(title, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        if key.startswith("d:"):
            thr = report["meta"]["recognizers"][key[2:]]["threshold"]
            ax.axhline(thr, color="r", ls="--", lw=1)
    for ax in axes[len(panels):]:
        ax.axis("off")
    fig.suptitle("Per-fake quality (swapped faces; red: same-person threshold)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def pool_plot(report: dict[str, Any], path: Path) -> str:
    plt = _plt()
    pool = report["pool"]
    dists = list(pool["distance"].items())
    fig, axes = plt.subplots(1, len(dists) + 2, figsize=(3.2 * (len(dists) + 2), 2.8))
    for ax, (rec, d) in zip(axes, dists, strict=False):
        e = np.asarray(d["histogram"]["edges"])
        ax.bar(e[:-1], d["histogram"]["counts"], width=np.diff(e), align="edge", color="#4a78b4")
        ax.axvline(d["threshold"], color="r", ls="--", lw=1)
        ax.set_title(f"source→pool {rec} distance", fontsize=8)
        ax.set_xlabel(f"distance (threshold {d['threshold']})", fontsize=7)
        ax.tick_params(labelsize=7)
    ax = axes[len(dists)]
    e = np.asarray(pool["age"]["histogram"]["edges"])
    ax.bar(e[:-1], pool["age"]["histogram"]["counts"], width=np.diff(e), align="edge", color="#6a9a58")
    ax.set_title("pool age (estimated)", fontsize=8)
    ax.set_xlabel("years", fontsize=7)
    ax.tick_params(labelsize=7)
    ax = axes[-1]
    g = pool["gender"]
    ax.bar(list(g), list(g.values()), color=["#c0607a", "#4a78b4", "#999999"][: len(g)])
    ax.set_title(f"pool gender ({pool['faces']} faces)", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _thumb(img: np.ndarray | None, size: int = 72) -> np.ndarray:
    import cv2

    if img is None:
        return np.full((size, size, 3), 235, np.uint8)
    return cv2.resize(np.asarray(img), (size, size), interpolation=cv2.INTER_AREA)


def similarity_sheet(report: dict[str, Any], ev: Evaluation, path: Path) -> str | None:
    if not ev.similarity:
        return None
    plt = _plt()
    labels = list(ev.similarity[0]["metrics"])
    recs = list(report["meta"]["recognizers"])
    rows, cols = len(labels) + 1, len(ev.similarity)
    fig, axes = plt.subplots(rows, cols, figsize=(1.25 * cols + 0.8, 1.35 * rows), squeeze=False)
    for j, s in enumerate(ev.similarity):
        axes[0, j].imshow(_thumb(s["aligned"]))
        axes[0, j].set_title(f"{s['photo'].split('/')[0]} #{s['index']}", fontsize=6)
        for i, lab in enumerate(labels, 1):
            e = s["metrics"].get(lab, {})
            tid = e.get("target")
            axes[i, j].imshow(_thumb(ev.pool.crop_image(tid) if tid else None))
            d = e.get("embedding_distance", {})
            axes[i, j].set_title(" / ".join(f"{d[r]:.2f}" for r in recs if r in d), fontsize=6)
    for i, lab in enumerate(["source", *labels]):
        axes[i, 0].set_ylabel(lab, fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Furthest target per metric; numbers: " + " / ".join(recs) + " distance to the source",
                 fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def samples_sheet(ev: Evaluation, path: Path) -> str | None:
    keys = [k for k in ev.samples if ev.samples[k]]
    if not keys:
        return None
    plt = _plt()
    key = next((k for k in ("holdout/random", "verified/random", "single/random") if k in keys), keys[0])
    shown = [k for k in ("single/random", key) if k in keys] if key != "single/random" else [key]
    n = max(len(ev.samples[k]) for k in shown)
    rows = 1 + 2 * len(shown)
    fig, axes = plt.subplots(rows, n, figsize=(1.2 * n + 0.8, 1.3 * rows), squeeze=False)
    labels = ["source"]
    for k in shown:
        labels += [f"target\n{k}", f"result\n{k}"]
    for j in range(n):
        s0 = ev.samples[shown[0]][j] if j < len(ev.samples[shown[0]]) else {}
        axes[0, j].imshow(_thumb(s0.get("source")))
        for b, k in enumerate(shown):
            s = ev.samples[k][j] if j < len(ev.samples[k]) else {}
            axes[1 + 2 * b, j].imshow(_thumb(s.get("target")))
            axes[2 + 2 * b, j].imshow(_thumb(s.get("result")))
    for i, lab in enumerate(labels):
        axes[i, 0].set_ylabel(lab, fontsize=6)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path)
