"""What `mfmc doctor` reports: models found and verified, licenses, providers, the recognizers (verifier names),
the expression classifier, optional backends. Builds no model."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from mfmc.vision.registry import MODELS, locate, sha256_of
from mfmc.vision.runtime import available_providers, choose_providers
from mfmc.vision.settings import VisionSettings, current

PACKAGES = ("onnxruntime", "onnxruntime-gpu", "opencv-python-headless", "dlib-bin", "numpy", "pillow", "onnx")


def report(*, verify: bool = True, settings: VisionSettings | None = None) -> dict[str, Any]:
    """What is installed and what would be used under `settings` (default: the process's `VisionSettings`)."""
    from mfmc.vision.backends import insightface
    from mfmc.vision.expression import MODEL as EXPRESSION_MODEL
    from mfmc.vision.expression import expression_missing
    from mfmc.vision.recognition import EVALUATION_RECOGNIZERS, OPTIONAL_RECOGNIZERS, optional_model_missing

    models = []
    ok = True
    for spec in MODELS.values():
        path = locate(spec.name)
        sha_ok = None if (path is None or not verify) else sha256_of(path) == spec.sha256
        ok &= (path is not None or spec.optional) and sha_ok is not False
        models.append({
            "name": spec.name,
            "task": spec.task,
            "found": path is not None,
            "path": str(path) if path else None,
            "sha256_ok": sha_ok,
            "package": spec.distribution,
            "license": spec.license,
            "commercial_use": spec.commercial_use,
            "optional": spec.optional,
            "install": spec.install_command,
        })
    recognizers = [{"name": "dlib", "model": "dlib_resnet", "available": True, "missing": None, "verifier": True},
                   {"name": "facenet", "model": "facenet", "available": True, "missing": None, "verifier": True}]
    for group, verifier in ((OPTIONAL_RECOGNIZERS, True), (EVALUATION_RECOGNIZERS, False)):
        for name, cls in group.items():
            missing = optional_model_missing(cls.model)
            recognizers.append({"name": name, "model": cls.model, "available": missing is None, "missing": missing,
                                "verifier": verifier})
    expression_absent = expression_missing()
    settings = settings or current()
    pack = insightface.find_pack(settings=settings)
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    backend = settings.backend
    return {
        "ok": ok,
        "backend": f"{backend} -> " + (f"insightface:{pack.name}" if pack and backend != "embedded" else "embedded"),
        "model_cache": str(settings.cache_dir) if settings.cache_dir else None,  # MFMC_CACHE_DIR; None: off
        "model_path": [str(p) for p in settings.model_path],  # MFMC_MODEL_PATH: node_modules of npm models
        "providers": {"available": available_providers(),
                      "chosen": choose_providers(allow_gpu=settings.allow_gpu, tensorrt=settings.tensorrt)},
        "models": models,
        # the names `mfmc anonymize --verifiers` accepts are those with verifier=True and available=True
        # (InsightFace's `arcface` joins them when a pack is found); verifier=False: evaluation only
        "recognizers": recognizers,
        "expression": {"model": EXPRESSION_MODEL, "available": expression_absent is None,
                       "missing": expression_absent},
        "insightface": {
            "root": str(insightface.root(settings)),
            "pack": pack.name if pack else None,
            "files": [p.name for p in (pack.detector, pack.recognizer, pack.genderage) if p] if pack else [],
            "license": "InsightFace packs: non-commercial research use only (per the InsightFace project)",
        },
        "packages": packages,
    }
