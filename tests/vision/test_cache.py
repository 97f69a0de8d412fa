"""The disk cache of derived model files (`mfmc.vision.cache`): the dlib ONNX graph and model file hashes.

A stale entry (the source changed) is never used, deleting the cache is safe, and a corrupt entry is ignored and
rebuilt, never trusted: each check below fails if the cache hands back what it should not.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from mfmc.vision import cache, dlib_onnx, registry, runtime
from mfmc.vision.registry import model_path


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setattr(cache, "_state", {"dir": folder})
    return folder


def _entries(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"{name}-*.bin"))


def _flip_byte(path: Path, offset_from_end: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x01
    path.write_bytes(bytes(data))


def test_hash_is_cached_and_follows_the_file(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "weights.dat"
    source.write_bytes(b"version one")
    first = registry.cached_sha256(source)
    assert first == hashlib.sha256(b"version one").hexdigest()
    assert len(_entries(cache_dir, "sha256")) == 1

    hashed: list[Path] = []
    real = registry.sha256_of
    monkeypatch.setattr(registry, "sha256_of", lambda p: hashed.append(p) or real(p))
    assert registry.cached_sha256(source) == first and hashed == []  # read from the cache

    # stale: new content (new size and mtime) is hashed afresh, never answered from the old entry
    source.write_bytes(b"version two, longer")
    assert registry.cached_sha256(source) == hashlib.sha256(b"version two, longer").hexdigest()
    assert hashed == [source]
    # same size, different mtime: also a new key
    source.write_bytes(b"version two, LONGER")
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    assert registry.cached_sha256(source) == hashlib.sha256(b"version two, LONGER").hexdigest()
    assert len(hashed) == 2


def test_corrupt_hash_entry_is_ignored_and_rebuilt(cache_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "weights.dat"
    source.write_bytes(b"content")
    truth = hashlib.sha256(b"content").hexdigest()
    registry.cached_sha256(source)
    (entry,) = _entries(cache_dir, "sha256")
    # an entry claiming another digest (one hex digit changed) fails its checksum: rebuilt, not trusted
    raw = entry.read_bytes()
    entry.write_bytes(raw[:-1] + (b"0" if raw[-1:] != b"0" else b"1"))
    assert registry.cached_sha256(source) == truth
    assert entry.read_bytes() == raw  # replaced by a good one
    # a well-framed entry that is not a digest is rebuilt too
    cache._write(entry, b"hello")
    assert registry.cached_sha256(source) == truth
    entry.write_bytes(b"")  # truncated
    assert registry.cached_sha256(source) == truth
    shutil.rmtree(cache_dir)  # deleting the cache is safe
    assert registry.cached_sha256(source) == truth


def test_model_path_detects_an_altered_model_despite_the_cache(cache_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from mfmc.errors import ModelNotFoundError

    good = tmp_path / "m.bin"
    good.write_bytes(b"model")
    registry.check_sha256(good, hashlib.sha256(b"model").hexdigest(), "m")
    monkeypatch.setattr(registry, "_verified", {})  # a new process
    good.write_bytes(b"MODEL!")  # altered: new size, new mtime
    with pytest.raises(ModelNotFoundError, match="does not match"):
        registry.check_sha256(good, hashlib.sha256(b"model").hexdigest(), "m")


@pytest.mark.slow
def test_dlib_graph_cached_stale_and_corrupt_entries_rebuilt(cache_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """The converted graph and onnxruntime's optimized form of it (`runtime.cached_cpu_session`) are cached; a
    later process opens the optimized graph (same descriptors on real and random chips, bit for bit); a damaged
    entry of either is never used."""
    source = tmp_path / "dlib_resnet.dat"
    shutil.copyfile(model_path("dlib_resnet"), source)
    chips = np.random.default_rng(0).integers(0, 255, (3, 150, 150, 3), dtype=np.uint8)
    chips[0] = cv2.resize(_astronaut_face(), (150, 150), interpolation=cv2.INTER_AREA)
    reference = dlib_onnx.DlibOnnxNet(source)(chips)
    graphs = [p for p in _entries(cache_dir, "dlib_resnet") if "-ort-" not in p.name]
    assert len(graphs) == 1 and len(_entries(cache_dir, "dlib_resnet-ort")) == 1
    entry, optimized = graphs[0], _entries(cache_dir, "dlib_resnet-ort")[0]

    conversions: list[int] = []
    opened: list[bool] = []  # per session: whether onnxruntime optimized the graph itself
    real, real_session = dlib_onnx.convert, runtime.create_session
    monkeypatch.setattr(dlib_onnx, "convert", lambda p: conversions.append(1) or real(p))

    def session(*args: object, optimize: bool = True, **kwargs: object) -> object:
        opened.append(optimize)
        return real_session(*args, optimize=optimize, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runtime, "create_session", session)
    np.testing.assert_array_equal(dlib_onnx.DlibOnnxNet(source)(chips), reference)
    assert conversions == [] and opened == [False]  # the cached optimized graph was opened as it is

    _flip_byte(optimized, 5000)  # a damaged optimized graph: the cached graph is optimized again
    np.testing.assert_array_equal(dlib_onnx.DlibOnnxNet(source)(chips), reference)
    assert conversions == [] and opened == [False, True]
    np.testing.assert_array_equal(dlib_onnx.DlibOnnxNet(source)(chips), reference)
    assert opened == [False, True, False]  # and saved again

    # its weights lie apart (mapped into memory by onnxruntime): one flipped bit there runs, so the recorded
    # CRC-32 must catch it; a missing or truncated weights file is rebuilt too
    weights = optimized.with_suffix(runtime.WEIGHTS)
    assert weights.stat().st_size > 20_000_000 > optimized.stat().st_size
    for damage in (lambda: _flip_byte(weights, 5000), lambda: weights.write_bytes(weights.read_bytes()[:-4096]),
                   weights.unlink):
        damage()
        with caplog.at_level(logging.WARNING, logger="mfmc.vision.runtime"):
            np.testing.assert_array_equal(dlib_onnx.DlibOnnxNet(source)(chips), reference)
        assert opened[-1] is True and f"optimized graph `{optimized}` unusable" in caplog.text
        caplog.clear()
        np.testing.assert_array_equal(dlib_onnx.DlibOnnxNet(source)(chips), reference)
        assert opened[-1] is False and caplog.text == ""  # saved again, whole
    assert conversions == []

    # one flipped bit inside the weights still parses as ONNX and runs: the checksum must catch it
    _flip_byte(entry, 5000)
    optimized.unlink()
    np.testing.assert_array_equal(dlib_onnx.DlibOnnxNet(source)(chips), reference)
    assert conversions == [1]
    np.testing.assert_array_equal(dlib_onnx.DlibOnnxNet(source)(chips), reference)  # the rebuilt entry is good
    assert conversions == [1]

    # stale: the weights file changed (mtime): a new key, converted again; the old entry is never read
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    dlib_onnx.DlibOnnxNet(source)
    assert conversions == [1, 1]
    shutil.rmtree(cache_dir)  # deleting is safe
    np.testing.assert_array_equal(dlib_onnx.DlibOnnxNet(source)(chips), reference)
    assert len(conversions) == 3
    set_cache = cache._state  # without a cache folder: nothing saved, same descriptors
    monkeypatch.setattr(cache, "_state", {"dir": None})
    np.testing.assert_array_equal(dlib_onnx.DlibOnnxNet(source)(chips), reference)
    assert set_cache["dir"] is not None and len(conversions) == 4


def _astronaut_face() -> np.ndarray:
    """The astronaut's face (a real photo, public domain), or a real openpeople portrait's."""
    try:
        from skimage import data

        return np.ascontiguousarray(data.astronaut()[20:220, 150:330])
    except ImportError:
        from tests.vision.helpers import photo

        image = photo("P001", "studio_portrait", 640)
        return image[image.shape[0] // 5 : image.shape[0] // 2, image.shape[1] // 3 : 2 * image.shape[1] // 3]
