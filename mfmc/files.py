"""User-given files: read only regular files, bounded, checked before a byte is read; write outputs safely.

`/dev/zero`, a named pipe, a socket or a folder passed where a photo, a rule file or a graph file is expected is
refused at once (a FIFO would block forever, a device would be read until memory runs out). The file is opened
non-blocking and checked with `fstat` on the open descriptor, so what is checked is what is read.

Outputs are checked before any work (`check_output`: an image suffix, an existing writable folder, never the
input, never inside the data dir) and written atomically (`write_file_atomic`: no partial file on failure).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from mfmc.errors import InvalidInputError, MfmcError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def require_regular_file(path: str | os.PathLike[str], *,
                         error: type[InvalidInputError] = InvalidInputError) -> Path:
    """`path` if it names an existing regular file (symlinks followed); `error` (exit 2) otherwise."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise error(f"`{p}` does not exist") from None
    except OSError as err:
        raise error(f"cannot read `{p}`", help=err.strerror) from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"`{p}` is {_kind(st.st_mode)}, not a regular file", help="give the path of a file")
    return p


def read_regular_file(path: str | os.PathLike[str], *, max_bytes: int,
                      error: type[InvalidInputError] = InvalidInputError) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; `error` (exit 2) for anything else.

    Opened with `O_NONBLOCK` (a FIFO cannot hang the open) and checked on the descriptor before reading.
    """
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise error(f"`{p}` does not exist") from None
    except IsADirectoryError:
        raise error(f"`{p}` is a folder, not a regular file", help="give the path of a file") from None
    except OSError as err:
        raise error(f"cannot read `{p}`", help=err.strerror) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"`{p}` is {_kind(st.st_mode)}, not a regular file", help="give the path of a file")
        if st.st_size > max_bytes:
            raise error(f"`{p}` is too large ({st.st_size:,} bytes)", help=f"the limit is {max_bytes:,} bytes")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    except OSError as err:
        raise error(f"cannot read `{p}`", help=err.strerror) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise error(f"`{p}` is too large (it grew while being read)", help=f"the limit is {max_bytes:,} bytes")
    return data


# ---------------------------------------------------------------- outputs

#: Image formats mfmc writes, by suffix (the suffix chooses the format; anything else is refused).
IMAGE_OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                        ".tif": "TIFF", ".tiff": "TIFF"}


#: The file that marks an mfmc data dir (written by `mfmc init`); outputs are never written below one.
DATA_DIR_MARKER = "mfmc-data.json"


def _inside_data_dir(resolved: Path, protected: tuple[str | os.PathLike[str], ...]) -> Path | None:
    """The data dir `resolved` lies in: one of `protected`, or any folder above it holding the marker."""
    for folder in protected:
        f = Path(folder)
        if f.exists() and resolved.is_relative_to(f.resolve()):
            return f
    return next((d for d in resolved.parents if (d / DATA_DIR_MARKER).is_file()), None)


def check_output(path: str | os.PathLike[str], *, inputs: tuple[str | os.PathLike[str], ...] = (),
                 protected: tuple[str | os.PathLike[str], ...] = (), image: bool = True) -> Path:
    """Refuse (exit 2) an output path before any work: not an image suffix, a missing or unwritable folder,
    a folder where a file is expected, one of the `inputs`, or anything inside a `protected` folder (the data
    dir: its blobs are content-addressed and must never be overwritten)."""
    p = Path(path)
    if image and p.suffix.lower() not in IMAGE_OUTPUT_FORMATS:
        raise InvalidInputError(f"`{p}` does not end in an image format",
                                help=f"use one of: {', '.join(IMAGE_OUTPUT_FORMATS)}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidInputError(f"the output folder `{parent}` does not exist", help="create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInputError(f"the output folder `{parent}` is not writable")
    if p.exists() and not p.is_file():
        raise InvalidInputError(f"`{p}` exists and is not a regular file", help="choose a file name")
    resolved = p.resolve()
    for src in inputs:
        s = Path(src)
        if s.exists() and (resolved == s.resolve() or (p.exists() and os.path.samefile(p, s))):
            raise InvalidInputError(f"`{p}` is the input file; writing it would destroy the original",
                                    help="write the result to another file")
    data_dir = _inside_data_dir(resolved, protected)
    if data_dir is not None:
        raise InvalidInputError(f"`{p}` is inside the data dir `{data_dir}`",
                                help="the data dir belongs to mfmc; write the result elsewhere")
    return p


def check_output_folder(path: str | os.PathLike[str], *, inputs: tuple[str | os.PathLike[str], ...] = (),
                        protected: tuple[str | os.PathLike[str], ...] = ()) -> Path:
    """Like `check_output` for a folder of results: not an input folder (results would replace the originals)
    and not inside a `protected` folder; created later by the writer if missing."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InvalidInputError(f"`{p}` exists and is not a folder", help="for a folder of photos, -o is a folder")
    resolved = p.resolve()
    for src in inputs:
        if resolved == Path(src).resolve():
            raise InvalidInputError(f"`{p}` is the input folder; the results would replace the originals",
                                    help="write the results to another folder")
    data_dir = _inside_data_dir(resolved, protected)
    if data_dir is not None or (resolved / DATA_DIR_MARKER).is_file():
        raise InvalidInputError(f"`{p}` is inside the data dir `{data_dir or p}`",
                                help="the data dir belongs to mfmc; write the results elsewhere")
    return p


def write_file_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` under a temporary name beside `path`, then rename it into place.

    On any failure (a full or read-only disk, a missing folder) the temporary file is removed, so no partial
    image with real faces is left behind, and a clear error is raised: `InvalidInputError` (exit 2) for a path
    the user can fix, `MfmcError` (exit 1) for the disk.
    """
    p = Path(path)
    temp = p.with_name(f".{p.name}.{secrets.token_hex(6)}.tmp")
    try:
        try:
            with open(temp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, p)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
        raise InvalidInputError(f"cannot write `{p}`", help=err.strerror) from None
    except OSError as err:
        raise MfmcError(f"cannot write `{p}`: {err.strerror or err}",
                        help="check free space and that the disk is writable") from None
    return p
