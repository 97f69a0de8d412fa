"""dlib's shape predictors (ensembles of regression trees, Kazemi & Sullivan 2014) read into numpy and run here.

Why: `dlib.shape_predictor` needs ~0.45 s of CPU to deserialize the 100 MB 68-point model, and holds the GIL for
all of it, in every process that uses landmarks (`mfmc anonymize`, `render`). Read once by `read_predictor` and
kept in the disk cache (`mfmc.vision.cache`) as plain arrays, the same model loads in a few tens of ms. The
prediction follows dlib's `shape_predictor::operator()` step by step in the same float precision (float32 shape
and leaf sums added tree by tree, the similarity transform in double, pixel positions rounded as dlib rounds
them, intensity = (R + G + B) / 3 in integers), so it gives dlib's points; tests/vision/test_shape_ert.py compares
both on real faces.

File layout (dlib `serialize`): every value is one of dlib's variable-length integers (one header byte: the low
nibble is the byte count, 0x80 = negative; then little-endian bytes), a float is two of them (mantissa,
exponent). The model is: version 1; the initial shape (a float column: -rows, -1, values); the cascades, each a
list of trees, each tree a list of splits (idx1, idx2, threshold) and a list of leaf shapes (float columns);
the anchor landmark of each feature pixel per cascade; its offset (x, y floats) per cascade. Since every value is
such an integer, `tokens` decodes the whole file with numpy, and the layout is checked against the counts it
holds.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Part of the disk cache key: bump it when `read_predictor` would read a file differently.
READER_VERSION = "2"
_SPECIAL_EXPONENT = 32000  # dlib marks inf / -inf / nan with exponents 32000-32002


class ShapeFormatError(ValueError):
    """The file is not a dlib shape predictor this reader understands."""


def _token_starts(data: np.ndarray, seed_gap: int = 65536, warmup: int = 256) -> np.ndarray:
    """Start offsets of every variable-length integer in `data`, which holds nothing else.

    Each integer's length follows from its first byte, so the offsets form one chain from 0; it is followed from
    a seed every `seed_gap` bytes at once (numpy steps all chains together). A chain from a seed inside an integer
    falls into step with the true chain within a few integers, so each chain is trusted only from `warmup` bytes
    after its seed (chain 0 from the start) to as far past the next seed, and the offsets found are checked to be
    one unbroken chain from 0 to the end: a file where that fails is refused, never misread.

    Few long chains (a seed every 64 kB: ~1 500 chains on the 100 MB 68-point model) cost less than many short
    ones (every 1 kB: 2.4 s of CPU against ~0.7 s): each step touches one spot per chain of the file. Each step's
    offsets are written as one row (contiguous: cheap), turned chain by chain once at the end, and the trusted
    part of each chain cut out (offsets grow along a chain), so they come out in order without a pass over a mark
    per byte of the file."""
    n = len(data)
    steps = seed_gap + warmup  # the most steps a chain needs (each step is at least one byte)
    step = (data & 0x0F) + np.uint8(1)  # uint8: a byte per byte of the file, not eight
    step = np.concatenate([step, np.ones(9 * (steps + 64), np.uint8)])  # chains may run past the end
    seeds = np.arange(0, n, seed_gap, dtype=np.int64)
    lo = np.where(seeds == 0, 0, seeds + warmup)  # chain j is trusted over [s_j + warmup, s_j+1 + warmup)
    hi = np.minimum(seeds + seed_gap + warmup, n)
    kind = np.int64 if len(step) >= 2**31 else np.int32
    history = np.empty((steps, len(seeds)), dtype=kind)  # the offsets of step k; pages never written cost nothing
    pos = seeds.astype(kind)
    done = steps
    for k in range(steps):
        history[k] = pos
        if k % 32 == 31 and (pos >= hi).all():  # checked now and then: a few steps too many cost less
            done = k + 1
            break
        pos += step[pos]
    trail = np.ascontiguousarray(history[:done].T)  # chain j's offsets in row j
    del history
    first, end = (trail < lo[:, None]).sum(axis=1), (trail < hi[:, None]).sum(axis=1)
    starts = np.concatenate([row[a:b] for row, a, b in zip(trail, first, end, strict=True)])
    del trail
    if not len(starts) or starts[0] != 0 or int(starts[-1]) + int(step[starts[-1]]) != n:
        raise ShapeFormatError("the file does not parse as a sequence of dlib integers")
    for i in range(0, len(starts) - 1, 1 << 22):  # in chunks: bounded memory
        here = starts[i : i + (1 << 22) + 1]
        if not np.array_equal(here[1:], here[:-1] + step[here[:-1]]):
            raise ShapeFormatError("the integer chain could not be followed (unexpected bytes)")
    return starts


# the low `size` bytes of a little-endian word, per size 0-8
_KEEP = np.array([0] + [(1 << (8 * k)) - 1 for k in range(1, 8)] + [0xFFFFFFFFFFFFFFFF], dtype=np.uint64)


def tokens(raw: bytes) -> np.ndarray:
    """Every dlib variable-length integer of `raw`, decoded, in order (int64)."""
    data = np.frombuffer(raw, dtype=np.uint8)
    if not len(data):
        raise ShapeFormatError("empty file")
    try:
        starts = _token_starts(data)
    except ShapeFormatError:  # a chain that took long to fall into step: follow each one further
        starts = _token_starts(data, warmup=4096)
    padded = np.concatenate([data, np.zeros(9, np.uint8)])
    # the 8 bytes after every byte as one 8-byte item ("S8": numpy gathers those as plain 8-byte copies, 4x
    # faster than unaligned uint64 items), read as little-endian words once gathered
    words = np.ndarray((len(data),), dtype="S8", buffer=padded, offset=1, strides=(1,))
    out = np.empty(len(starts), dtype=np.int64)
    for i in range(0, len(starts), 1 << 22):  # in chunks: bounded memory
        at = starts[i : i + (1 << 22)]
        head = data[at]
        size = head & np.uint8(0x0F)
        if (size > 8).any():
            raise ShapeFormatError("an integer longer than 8 bytes")
        value = words[at].view("<u8")
        value &= _KEEP[size]
        chunk = out[i : i + len(at)]
        chunk[:] = value.view(np.int64)
        np.negative(chunk, out=chunk, where=head >= 0x80)
    return out


@dataclass(frozen=True)
class ShapeModel:
    """A dlib shape predictor as arrays: C cascades of T trees of depth D (S = 2^D - 1 splits, 2^D leaves),
    F feature pixels per cascade, P landmarks."""

    initial: np.ndarray  # (2P,) float32, normalized shape (x0, y0, x1, y1, ...)
    idx1: np.ndarray  # (C, T, S) int32 feature pixel indices
    idx2: np.ndarray  # (C, T, S) int32
    thresh: np.ndarray  # (C, T, S) float32
    leaves: np.ndarray  # (C, T, 2^D, 2P) float32
    anchor: np.ndarray  # (C, F) int32 landmark each feature pixel hangs off
    deltas: np.ndarray  # (C, F, 2) float32 its offset in the normalized shape

    def to_bytes(self) -> bytes:
        """A JSON header line (name -> dtype, shape, offset) and the arrays' bytes, 64-byte aligned: `from_bytes`
        makes read-only views into the bytes, no copy of the 65 MB of leaves."""
        index, parts, offset = {}, [], 0
        for name in self.__dataclass_fields__:
            array = np.ascontiguousarray(getattr(self, name))
            index[name] = (array.dtype.str, list(array.shape), offset)
            parts.append(array.tobytes() + b"\0" * (-array.nbytes % 64))
            offset += len(parts[-1])
        head = json.dumps(index).encode() + b"\n"
        head += b" " * (-len(head) % 64)
        return head + b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> ShapeModel:
        try:
            end = data.index(b"\n") + 1
            index = json.loads(data[:end])
            base = end + (-end % 64)
            arrays = {name: np.frombuffer(data, dtype=np.dtype(dtype), count=int(np.prod(shape)),
                                          offset=base + offset).reshape(shape)
                      for name, (dtype, shape, offset) in index.items()}
            model = cls(**{name: arrays[name] for name in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError) as error:
            raise ShapeFormatError(f"not a cached shape model ({error})") from error
        model.check()
        return model

    def check(self) -> None:
        c, t, s = self.idx1.shape
        p2 = len(self.initial)
        f = self.anchor.shape[1]
        ok = (self.idx2.shape == self.thresh.shape == (c, t, s) and self.leaves.shape == (c, t, s + 1, p2)
              and self.deltas.shape == (c, f, 2) and self.anchor.shape == (c, f) and p2 % 2 == 0
              and ((s + 1) & s) == 0 and self.idx1.max() < f and self.idx2.max() < f and self.anchor.max() < p2 // 2)
        if not ok:
            raise ShapeFormatError("inconsistent shape predictor arrays")


def _floats(values: np.ndarray) -> np.ndarray:
    """(..., 2) mantissa/exponent integers -> float32, as dlib's deserialize computes them."""
    mantissa, exponent = values[..., 0], values[..., 1]
    if (np.abs(exponent) >= _SPECIAL_EXPONENT).any():
        raise ShapeFormatError("infinite or NaN values in the model")
    return np.ldexp(mantissa.astype(np.float64), exponent.astype(np.int32)).astype(np.float32)


def read_predictor(path: str | Path) -> ShapeModel:
    """A dlib shape predictor file (e.g. shape_predictor_68_face_landmarks.dat) as a `ShapeModel`."""
    tok = tokens(Path(path).read_bytes())
    pos = 0

    def take(count: int) -> np.ndarray:
        nonlocal pos
        if pos + count > len(tok):
            raise ShapeFormatError("the file ends early")
        out = tok[pos : pos + count]
        pos += count
        return out

    def expect(value: int, what: str) -> None:
        got = int(take(1)[0])
        if got != value:
            raise ShapeFormatError(f"{what}: expected {value}, found {got}")

    expect(1, "version")
    rows = -int(take(1)[0])
    expect(-1, "initial shape columns")
    if rows <= 0 or rows % 2:
        raise ShapeFormatError(f"initial shape of {rows} values")
    initial = _floats(take(2 * rows).reshape(rows, 2))
    cascades = int(take(1)[0])
    trees, splits = int(tok[pos]), int(tok[pos + 1])
    leaves = splits + 1
    if cascades <= 0 or trees <= 0 or splits <= 0 or (leaves & splits):
        raise ShapeFormatError(f"{cascades} cascades of {trees} trees with {splits} splits")
    # one tree: splits count, splits x (idx1, idx2, mantissa, exponent), leaf count, leaves x (-rows, -1, 2*rows)
    tree_len = 1 + 4 * splits + 1 + leaves * (2 + 2 * rows)
    block = take(cascades * (1 + trees * tree_len)).reshape(cascades, 1 + trees * tree_len)
    if (block[:, 0] != trees).any():
        raise ShapeFormatError("cascades of different sizes")
    forest = block[:, 1:].reshape(cascades, trees, tree_len)
    split_part = forest[:, :, 1 : 1 + 4 * splits].reshape(cascades, trees, splits, 4)
    leaf_part = forest[:, :, 2 + 4 * splits :].reshape(cascades, trees, leaves, 2 + 2 * rows)
    if ((forest[:, :, 0] != splits).any() or (forest[:, :, 1 + 4 * splits] != leaves).any()
            or (leaf_part[..., 0] != -rows).any() or (leaf_part[..., 1] != -1).any()):
        raise ShapeFormatError("trees of different shapes")
    expect(cascades, "anchor lists")
    features = int(tok[pos])
    anchor = take(cascades * (1 + features)).reshape(cascades, 1 + features)
    expect(cascades, "offset lists")
    deltas = take(cascades * (1 + 4 * features)).reshape(cascades, 1 + 4 * features)
    if (anchor[:, 0] != features).any() or (deltas[:, 0] != features).any():
        raise ShapeFormatError("cascades with different feature pixel counts")
    if pos != len(tok):
        raise ShapeFormatError(f"{len(tok) - pos} values left over at the end")
    model = ShapeModel(
        initial=initial,
        idx1=split_part[..., 0].astype(np.int32),
        idx2=split_part[..., 1].astype(np.int32),
        thresh=_floats(split_part[..., 2:4]),
        leaves=_floats(leaf_part[..., 2:].reshape(cascades, trees, leaves, rows, 2)),
        anchor=anchor[:, 1:].astype(np.int32),
        deltas=_floats(deltas[:, 1:].reshape(cascades, features, 2, 2)),
    )
    model.check()
    return model


def _similarity_m(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(N, 2, 2) float32: the scale x rotation part of the least-squares similarity transform from the points
    `src` (P, 2) to each shape of `dst` (N, P, 2) (Umeyama), computed in double as dlib's
    `find_similarity_transform` does.

    In 2-D it has a closed form, no SVD: with the covariance [[p, q], [r, s]] split into its similarity part
    [[a, -b], [b, a]] (a = (p + s) / 2, b = (r - q) / 2) and the rest, the singular values are |A| + |B| and
    ||A| - |B|| (|A| = √(a² + b²)); Umeyama's rotation is A / |A| and its scale the singular values' sum (the
    smaller one negated when the determinant |A|² - |B|² is negative), 2|A|, over the source's variance: so
    scale x rotation = 2A / variance, whichever the determinant's sign. (The degenerate A = 0 gives 0 either
    way.) Same float32 values as through numpy's SVD on face shapes (tests/vision/test_shape_ert.py)."""
    a = src.astype(np.float64)
    b = dst.astype(np.float64)
    da = a - a.mean(0)
    db = b - b.mean(1, keepdims=True)
    sigma = (da * da).sum() / len(a)
    cov = np.einsum("npi,pj->nij", db, da) / len(a)
    trace = cov[:, 0, 0] + cov[:, 1, 1]
    skew = cov[:, 1, 0] - cov[:, 0, 1]
    m = np.stack([trace, -skew, skew, trace], axis=-1).reshape(-1, 2, 2)
    return (m / sigma).astype(np.float32)


def _round(values: np.ndarray) -> np.ndarray:
    """dlib's conversion of a floating point vector to an integer point: round half up."""
    return np.floor(values + 0.5).astype(np.int64)


class ShapePredictor:
    """`predictor(image, (left, top, right, bottom))` -> (P, 2) float32 points, as dlib's shape predictor with
    that rectangle gives them (integer pixel positions); `predict_many` does several rectangles of one image at
    once. The image is RGB uint8 (H, W, 3) or grey (H, W)."""

    def __init__(self, model: ShapeModel) -> None:
        self.model = model
        cascades, trees, splits = model.idx1.shape
        self._splits = splits
        self._trees = trees
        self._depth = int(np.log2(splits + 1))
        # per cascade, flat (trees x splits) split arrays and (trees x leaves, 2P) leaf rows
        self._idx1 = model.idx1.reshape(cascades, -1)
        self._idx2 = model.idx2.reshape(cascades, -1)
        self._thresh = model.thresh.reshape(cascades, -1)
        self._leaves = model.leaves.reshape(cascades, trees * (splits + 1), -1)

    def __call__(self, image: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
        return self.predict_many(image, np.asarray([rect], dtype=np.float64))[0]

    def predict_many(self, image: np.ndarray, rects: np.ndarray) -> np.ndarray:
        """(N, P, 2) float32 points for (N, 4) rectangles (left, top, right, bottom; dlib's inclusive corners)."""
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        return self.predict_images([image], np.zeros(len(rects), np.int64), rects)

    def predict_images(self, images: list[np.ndarray], owner: np.ndarray, rects: np.ndarray) -> np.ndarray:
        """(N, P, 2) float32 points for (N, 4) rectangles, rectangle i in `images[owner[i]]` (e.g. the same face in
        several candidate fakes): one pass for all, each row as `predict_many` gives it alone.

        Per cascade: the feature pixels' intensities, every split of every tree decided at once (two flat
        gathers), each tree walked down those decisions, and the leaves added tree after tree. Flat gathers and
        a sum over the outer axis, not fancy indexing and a sum over a middle one: ~2x faster at 1-7 rows
        (benchmarks/bench_swap.py --attributes-ratio), the same float operations in the same order."""
        m = self.model
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        owner = np.asarray(owner, dtype=np.int64).reshape(-1)
        n = len(rects)
        if len(owner) != n:
            raise ValueError(f"one image index per rectangle: {len(owner)} for {n}")
        sizes = np.array([im.shape[:2] for im in images], dtype=np.int64).reshape(-1, 2)
        height, width = sizes[owner, 0][:, None], sizes[owner, 1][:, None]
        # per image: its rows, and its pixels as one flat (pixels, channels) view (a copy only if not contiguous)
        groups = [(np.flatnonzero(owner == k), np.ascontiguousarray(im).reshape(im.shape[0] * im.shape[1], -1),
                   im.ndim == 3) for k, im in enumerate(images) if (owner == k).any()]
        scale = (rects[:, 2:] - rects[:, :2])[:, None, :]  # dlib's unnormalizing_tform: (0,0),(1,0),(1,1) -> corners
        offset = rects[:, None, :2]
        reference = m.initial.reshape(-1, 2)
        shape = np.repeat(m.initial[None], n, axis=0)  # (N, 2P) float32
        trees, splits = self._trees, self._splits
        features = m.anchor.shape[1]
        sums = np.empty((trees + 1, n, shape.shape[1]), np.float32)  # the shape, then each tree's leaf
        row_base = np.arange(n)[:, None] * features  # row i's feature values in the flat (N * F) array
        # row i's split decisions start at i * trees * splits, tree t's at t * splits; its leaves at t * (splits + 1)
        tree_base = (np.arange(n)[:, None] * trees + np.arange(trees)[None]) * splits
        leaf_base = np.arange(trees)[None] * (splits + 1) - splits
        for c in range(len(self._idx1)):
            current = shape.reshape(n, -1, 2)
            tform = _similarity_m(reference, current)  # (N, 2, 2) float32
            dx, dy = m.deltas[c, :, 0], m.deltas[c, :, 1]
            anchored = current[:, m.anchor[c]]  # (N, F, 2)
            # dlib: tform * delta in float, plus the anchor landmark, then mapped to pixels in double
            normalized = np.stack([tform[:, 0, 0, None] * dx + tform[:, 0, 1, None] * dy,
                                   tform[:, 1, 0, None] * dx + tform[:, 1, 1, None] * dy], axis=-1) + anchored
            pixel = _round(normalized.astype(np.float64) * scale + offset)  # (N, F, 2)
            px, py = pixel[..., 0], pixel[..., 1]
            inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
            where = np.where(inside, py * width + px, 0)  # outside: pixel 0 is read, then its value zeroed
            values = np.empty((n, features), np.float32)
            for rows, flat, colour in groups:
                found = flat.take(where[rows], axis=0)  # (rows, F, channels)
                if colour:  # dlib's get_pixel_intensity of an rgb_pixel: (r + g + b) / 3 in integers
                    values[rows] = found.sum(axis=-1, dtype=np.int32) // 3
                else:
                    values[rows] = found[..., 0]
            values[~inside] = 0.0
            # every split's decision, 1 = right: the pixel difference is not above the threshold
            flat_values = values.reshape(-1)
            left = flat_values.take(row_base + self._idx1[c]) - flat_values.take(row_base + self._idx2[c])
            right = (left <= self._thresh[c]).reshape(-1)
            node = np.zeros((n, trees), np.int64)
            for _ in range(self._depth):
                node = 2 * node + 1 + right[tree_base + node]
            # dlib adds the trees' leaves to the float32 shape one after the other: same order and rounding
            # (a reduction over the outer axis of a C-ordered array adds row after row)
            sums[0] = shape
            # mode "clip" (indices are in range): numpy buffers `out` under the default "raise" (2.4x slower)
            np.take(self._leaves[c], (leaf_base + node).T, axis=0, out=sums[1:], mode="clip")
            shape = np.add.reduce(sums, axis=0, dtype=np.float32)
        points = _round(shape.reshape(n, -1, 2).astype(np.float64) * scale + offset)
        return points.astype(np.float32)


_loaded: dict[Path, ShapePredictor] = {}
_lock = threading.Lock()


def cacheable(path: str | Path, *, content_hash: str = "") -> bool:
    """Whether `load` can keep its arrays for the next process: the disk cache is on and holds them already or
    its folder can be written. Without that every process would read the file afresh (seconds; dlib: ~0.5 s)."""
    import os

    from mfmc.vision.cache import entry_path

    entry = entry_path("shape_ert", Path(path).resolve(), version=READER_VERSION, content_hash=content_hash)
    if entry is None:
        return False
    if entry.is_file():
        return True
    folder = entry.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK)


def load(path: str | Path, *, content_hash: str = "") -> ShapePredictor:
    """The predictor of the dlib file `path`, once per process: read from the disk cache, or read from the file
    (a few seconds) and cached."""
    from mfmc.vision.cache import load_or_build

    key = Path(path).resolve()
    with _lock:
        if key not in _loaded:
            model = load_or_build("shape_ert", key, version=READER_VERSION, content_hash=content_hash,
                                  build=lambda: read_predictor(key).to_bytes(), use=ShapeModel.from_bytes)
            _loaded[key] = ShapePredictor(model)
        return _loaded[key]
