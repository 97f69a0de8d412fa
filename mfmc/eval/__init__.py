"""The paper's measurements (§4: Table 1, Figs. 4–6) on a folder of photos.

```python
from mfmc.eval import Evaluation, EvalOptions, discover, build_report, write_report
ev = Evaluation(FacePipeline.default(), TargetPool.default(), EvalOptions(strategies=("random",)))
ev.run(discover(Path("photos")))
report = build_report(ev, meta={})
write_report(report, Path("report"), ev)
```
"""

from mfmc.eval.dataset import Photo, discover, openpeople_set
from mfmc.eval.metrics import accuracy, frechet_distance, iou, psnr, relative_reduction, rmse, ssim
from mfmc.eval.report import build as build_report
from mfmc.eval.report import write as write_report
from mfmc.eval.run import MODES, STRATEGIES, EvalOptions, Evaluation

__all__ = [
    "MODES",
    "STRATEGIES",
    "EvalOptions",
    "Evaluation",
    "Photo",
    "accuracy",
    "build_report",
    "discover",
    "frechet_distance",
    "iou",
    "openpeople_set",
    "psnr",
    "relative_reduction",
    "rmse",
    "ssim",
    "write_report",
]
