"""Verified fakes: swappers, verification, retry and fallback (paper §3.2).

```python
from mfmc.swap import FakeGenerator, FacePatch
gen = FakeGenerator(pipeline, pool)              # `split` swapper, every recognizer verifies, unique per photo
patch, report = gen.fake_face(image, faces, index, seed=0)
new_image = patch.apply(image)                   # pixels outside patch.mask unchanged
new_image, reports = gen.anonymize(image, seed=0)
```
"""

from mfmc.swap.base import Swapper, SwapResult, create_swapper, register_swapper, swapper_names
from mfmc.swap.generate import FakeGenerator, RealFaces
from mfmc.swap.metrics import changed_outside, fake_metrics, landmark_error, psnr, ssim
from mfmc.swap.onnx_swapper import ArcFaceEncoder, OnnxSwapper
from mfmc.swap.patch import FacePatch
from mfmc.swap.report import Attempt, FaceReport
from mfmc.swap.split import SplitSwapper
from mfmc.swap.verify import Avoid, Verdict, Verifier
from mfmc.swap.warp import WarpSwapper

__all__ = [
    "ArcFaceEncoder",
    "Attempt",
    "Avoid",
    "FacePatch",
    "FaceReport",
    "FakeGenerator",
    "OnnxSwapper",
    "RealFaces",
    "SplitSwapper",
    "SwapResult",
    "Swapper",
    "Verdict",
    "Verifier",
    "WarpSwapper",
    "changed_outside",
    "create_swapper",
    "fake_metrics",
    "landmark_error",
    "psnr",
    "register_swapper",
    "ssim",
    "swapper_names",
]
