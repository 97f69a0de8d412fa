"""Synthetic target pool: build, persist, query (paper §3.1, Eq. 1).

```python
from mfmc.pool import TargetPool
pool = TargetPool.default()
candidates = pool.query(faces[i], strategy="random", recognizer="dlib", metric="l2",
                        same_group=True, compatible=True, k=8, seed=0)
image, face = pool.target(candidates[0].id)
```
"""

from mfmc.pool.index import FORMAT_VERSION, PoolEntry, PoolError, PoolFormatError, PoolIndex, RecognizerInfo
from mfmc.pool.pool import Candidate, Probe, TargetPool, default_pool_path
from mfmc.pool.query import IMAGE_METRICS, METRICS, STRATEGIES, Compatibility, QueryMetric, Strategy, target_set

__all__ = [
    "FORMAT_VERSION",
    "IMAGE_METRICS",
    "METRICS",
    "STRATEGIES",
    "Candidate",
    "Compatibility",
    "PoolEntry",
    "PoolError",
    "PoolFormatError",
    "PoolIndex",
    "Probe",
    "QueryMetric",
    "RecognizerInfo",
    "Strategy",
    "TargetPool",
    "default_pool_path",
    "target_set",
]
