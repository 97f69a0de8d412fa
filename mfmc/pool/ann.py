"""Approximate nearest- and furthest-neighbour search for large pools (usearch HNSW, optional).

Both directions and both metrics reduce to one nearest-neighbour search in L2 over augmented rows:

- cosine: rows scaled to unit length; nearest to the unit query = closest, nearest to its negation = furthest.
- l2: ``|x - q|^2 = |x|^2 - 2 x.q + |q|^2``, so furthest = maximum inner product of ``x' = [x, |x|^2]`` with
  ``[-2q, 1]`` and closest = maximum with ``[2q, -1]``. A maximum-inner-product search becomes a nearest-neighbour
  search by appending ``sqrt(M^2 - |x'|^2)`` to every row (M = largest |x'|) and 0 to the query.

Results are re-ranked with exact distances by the caller; the index only proposes candidates.
"""

from __future__ import annotations

import numpy as np

from mfmc.pool.index import PoolError


def usearch_available() -> bool:
    try:
        import usearch.index  # noqa: F401
    except ImportError:
        return False
    return True


def _augment_l2(matrix: np.ndarray) -> np.ndarray:
    x = np.asarray(matrix, dtype=np.float64)
    sq = (x * x).sum(1)
    xp = np.hstack([x, sq[:, None]])
    norms = (xp * xp).sum(1)
    pad = np.sqrt(np.maximum(norms.max() - norms, 0.0))
    return np.hstack([xp, pad[:, None]]).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n == 0, 1, n)


class AnnIndex:
    """HNSW index over one recognizer's embeddings for one metric; `search` returns row positions."""

    def __init__(
        self,
        matrix: np.ndarray,
        metric: str,
        *,
        connectivity: int = 16,
        expansion_add: int = 96,
        expansion_search: int = 128,
        threads: int = 0,
    ) -> None:
        try:
            from usearch.index import Index
        except ImportError:
            raise PoolError(
                "approximate search needs the `usearch` package",
                help="install it with `pip install usearch`, or query with backend=`exact`",
            ) from None
        if metric not in ("l2", "cosine"):
            raise PoolError(f"approximate search supports metrics `l2` and `cosine`, not `{metric}`")
        self.metric = metric
        rows = _unit(matrix) if metric == "cosine" else _augment_l2(matrix)
        self.size = rows.shape[0]
        self._index = Index(
            ndim=rows.shape[1], metric="l2sq", dtype="f32", connectivity=connectivity,
            expansion_add=expansion_add, expansion_search=expansion_search,
        )
        if self.size:
            self._index.add(np.arange(self.size, dtype=np.uint64), rows, threads=threads)

    def _query(self, q: np.ndarray, furthest: bool) -> np.ndarray:
        q = np.asarray(q, dtype=np.float64)
        if self.metric == "cosine":
            v = _unit(q).astype(np.float64)
            v = -v if furthest else v
        else:
            v = np.concatenate([-2.0 * q, [1.0]]) if furthest else np.concatenate([2.0 * q, [-1.0]])
            v = np.concatenate([v / max(np.linalg.norm(v), 1e-12), [0.0]])
        return v.astype(np.float32)

    def search(self, query: np.ndarray, k: int, *, furthest: bool = False) -> np.ndarray:
        """Positions of (approximately) the `k` closest or furthest rows, best first."""
        k = int(min(k, self.size))
        if k <= 0:
            return np.zeros(0, dtype=np.intp)
        if self.metric == "l2":
            # the augmented L2 search ranks by the inner product; keep the search width at least k
            self._index.expansion_search = max(self._index.expansion_search, k)
        matches = self._index.search(self._query(query, furthest), k)
        return np.asarray(matches.keys, dtype=np.intp)
