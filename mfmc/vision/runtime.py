"""ONNX Runtime sessions with execution providers chosen from what is actually available."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Fastest first; anything onnxruntime reports that is not listed goes after these, CPU last.
PREFERRED_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "ROCMExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "OpenVINOExecutionProvider",
)
# Reported by some wheels but never useful for local inference.
IGNORED_PROVIDERS = frozenset({"AzureExecutionProvider"})


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def choose_providers(available: list[str] | None = None, *, allow_gpu: bool | None = None,
                     tensorrt: bool | None = None) -> list[str]:
    """Order providers: accelerators first (unless `allow_gpu` is False), CPU always last as a fallback.

    TensorRT is skipped unless `tensorrt`: it compiles engines for minutes on first use. Both default to the
    process's `VisionSettings` (`MFMC_DEVICE=cpu`, `MFMC_TENSORRT=1` at the CLI or server).
    """
    from mfmc.vision.settings import current

    available = available_providers() if available is None else list(available)
    settings = current()
    allow_gpu = settings.allow_gpu if allow_gpu is None else allow_gpu
    tensorrt = settings.tensorrt if tensorrt is None else tensorrt
    chosen = []
    if allow_gpu:
        for name in PREFERRED_PROVIDERS:
            if name == "TensorrtExecutionProvider" and not tensorrt:
                continue
            if name in available:
                chosen.append(name)
    chosen.append("CPUExecutionProvider")
    return chosen


def create_session(model: str | Path | bytes, *, providers: list[str] | None = None,
                   threads: int | None = None) -> Any:
    """An `onnxruntime.InferenceSession` with quiet logging and the chosen providers."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # some shipped graphs warn about every initializer
    if threads:
        options.intra_op_num_threads = threads
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=providers or choose_providers())
