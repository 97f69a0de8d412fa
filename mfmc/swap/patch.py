"""`FacePatch`: the small, cacheable result of faking one face (a region box, its pixels and a mask)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from mfmc.errors import InvalidInputError

_FORMAT = 1


@dataclass(frozen=True, eq=False)
class FacePatch:
    """New pixels for one face: `pixels` replace the image inside `box` wherever `mask` is true.

    `box` is (x1, y1, x2, y2) in image pixels, `pixels` is (y2-y1, x2-x1, 3) uint8 and `mask` the same height and
    width, bool. `image_shape` is the (height, width) of the photo the patch was made for. Nothing outside the
    mask is ever written, so a patch cannot change a pixel outside the face it replaces.
    """

    box: tuple[int, int, int, int]
    pixels: np.ndarray
    mask: np.ndarray
    image_shape: tuple[int, int]

    def __post_init__(self) -> None:
        x1, y1, x2, y2 = self.box
        h, w = self.image_shape
        if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
            raise ValueError(f"patch box {self.box} does not fit an image of {w}×{h} px")
        if self.pixels.shape != (y2 - y1, x2 - x1, 3) or self.pixels.dtype != np.uint8:
            raise ValueError(f"patch pixels must be uint8 {(y2 - y1, x2 - x1, 3)}, got {self.pixels.shape}")
        if self.mask.shape != (y2 - y1, x2 - x1) or self.mask.dtype != bool:
            raise ValueError(f"patch mask must be bool {(y2 - y1, x2 - x1)}, got {self.mask.shape}")

    @property
    def area(self) -> int:
        """Number of pixels the patch writes."""
        return int(self.mask.sum())

    def full_mask(self) -> np.ndarray:
        """The mask as an (H, W) bool array over the whole image."""
        out = np.zeros(self.image_shape, dtype=bool)
        x1, y1, x2, y2 = self.box
        out[y1:y2, x1:x2] = self.mask
        return out

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Return a copy of `image` with the patch written in; the input is not modified."""
        if image.shape[:2] != tuple(self.image_shape) or image.ndim != 3 or image.shape[2] != 3:
            raise InvalidInputError(
                f"patch was made for a {self.image_shape[1]}×{self.image_shape[0]} RGB image, "
                f"got shape `{image.shape}`"
            )
        out = image.copy()
        self.paste(out)
        return out

    def paste(self, out: np.ndarray) -> None:
        """Write the patch into `out` in place (the caller owns `out`; used to compose cached fakes)."""
        if out.shape[:2] != tuple(self.image_shape):
            raise InvalidInputError(f"patch was made for a {self.image_shape[1]}×{self.image_shape[0]} image, "
                                    f"got shape `{out.shape}`")
        x1, y1, x2, y2 = self.box
        region = out[y1:y2, x1:x2]
        if self.mask.all():
            region[...] = self.pixels
        else:
            np.copyto(region, self.pixels, where=self.mask[..., None])

    @classmethod
    def from_diff(cls, base: np.ndarray, new: np.ndarray) -> FacePatch | None:
        """The pixels where `new` differs from `base` (same shape), or None when nothing changed."""
        if base.shape != new.shape:
            raise InvalidInputError(f"a fake must keep the image size: `{base.shape}` became `{new.shape}`")
        changed = np.any(base != new, axis=2)
        ys, xs = np.nonzero(changed)
        if len(ys) == 0:
            return None
        y1, y2, x1, x2 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        return cls(box=(x1, y1, x2, y2), pixels=new[y1:y2, x1:x2].copy(), mask=changed[y1:y2, x1:x2].copy(),
                   image_shape=(int(base.shape[0]), int(base.shape[1])))

    def to_bytes(self) -> bytes:
        """Compact npz: only the masked pixels and a bit-packed mask are stored."""
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            format=np.array([_FORMAT]),
            box=np.array(self.box, dtype=np.int64),
            image_shape=np.array(self.image_shape, dtype=np.int64),
            mask=np.packbits(self.mask, axis=None),
            values=self.pixels[self.mask],
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> FacePatch:
        """Inverse of `to_bytes`; raises InvalidInputError on anything else."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                if int(npz["format"][0]) != _FORMAT:
                    raise InvalidInputError(f"unsupported face patch format `{int(npz['format'][0])}`")
                box = tuple(int(v) for v in npz["box"])
                shape = tuple(int(v) for v in npz["image_shape"])
                h, w = box[3] - box[1], box[2] - box[0]
                mask = np.unpackbits(npz["mask"], count=h * w).reshape(h, w).astype(bool)
                pixels = np.zeros((h, w, 3), dtype=np.uint8)
                pixels[mask] = npz["values"]
        except InvalidInputError:
            raise
        except Exception as err:  # zip, key and shape errors all mean the bytes are not a patch
            raise InvalidInputError(f"not a face patch: {err}") from None
        return cls(box=box, pixels=pixels, mask=mask, image_shape=shape)  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FacePatch):
            return NotImplemented
        return (
            self.box == other.box
            and tuple(self.image_shape) == tuple(other.image_shape)
            and np.array_equal(self.mask, other.mask)
            and np.array_equal(self.pixels[self.mask], other.pixels[other.mask])
        )

    __hash__ = None  # type: ignore[assignment]
