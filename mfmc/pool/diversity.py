"""How many distinct people a pool holds, at a recognizer's same-person threshold.

Two counts bracket the answer: *connected components* of the graph "distance < threshold" (chains merge, so this
undercounts) and *greedy leaders* (each face joins the first earlier leader it matches, else it leads a new
identity; overcounts slightly). Both are exact computations over all pairs (fine up to ~20 000 faces).
"""

from __future__ import annotations

import numpy as np


def pairwise(emb: np.ndarray, metric: str = "l2") -> np.ndarray:
    x = np.asarray(emb, dtype=np.float64)
    if metric == "cosine":
        u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return 1.0 - u @ u.T
    sq = (x * x).sum(1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))


def components(emb: np.ndarray, threshold: float, metric: str = "l2") -> np.ndarray:
    """Label per face: faces joined by any chain of same-person pairs share a label (0..C-1)."""
    n = emb.shape[0]
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    if n:
        d = pairwise(emb, metric)
        for i, j in zip(*np.nonzero(np.triu(d < threshold, 1)), strict=True):
            ri, rj = find(int(i)), find(int(j))
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n)], dtype=np.intp)
    return np.unique(roots, return_inverse=True)[1] if n else roots


def greedy_leaders(emb: np.ndarray, threshold: float, metric: str = "l2") -> np.ndarray:
    """Label per face from leader clustering in input order."""
    n = emb.shape[0]
    labels = np.full(n, -1, dtype=np.intp)
    if n == 0:
        return labels
    d = pairwise(emb, metric)
    leaders: list[int] = []
    for i in range(n):
        if leaders:
            dl = d[i, leaders]
            j = int(np.argmin(dl))
            if dl[j] < threshold:
                labels[i] = labels[leaders[j]]
                continue
        labels[i] = len(leaders)
        leaders.append(i)
    return labels


def identity_report(emb: np.ndarray, threshold: float, metric: str = "l2") -> dict[str, float | int]:
    """Distinct identities (both counts) and the distance distribution of a pool's embeddings."""
    comp = components(emb, threshold, metric)
    lead = greedy_leaders(emb, threshold, metric)
    n = emb.shape[0]
    d = pairwise(emb, metric)[np.triu_indices(n, 1)] if n > 1 else np.zeros(0)
    return {
        "faces": int(n),
        "threshold": float(threshold),
        "components": int(comp.max() + 1) if n else 0,
        "greedy": int(lead.max() + 1) if n else 0,
        "largest_component": int(np.bincount(comp).max()) if n else 0,
        "pairs_same_person": float((d < threshold).mean()) if d.size else 0.0,
        "distance_median": float(np.median(d)) if d.size else 0.0,
    }
