"""Running a per-photo command over a folder: progress bar on stderr, one line per bad photo, none fatal."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mfmc.errors import InvalidImageError, InvalidInputError

T = TypeVar("T")


def over_folder(folder: Path, label: str, work: Callable[[Path, str], T]) -> tuple[dict[str, T | dict[str, Any]], int]:
    """Call `work(path, name)` for every photo under `folder` (`name` is relative to it).

    Returns the results by name (a photo that cannot be read gets `{"error": message}`) and the count of such
    photos; the progress bar shows only on a terminal.
    """
    from rich.console import Console
    from rich.progress import Progress

    from mfmc.vision.images import IMAGE_SUFFIXES, image_files

    files = image_files(folder)
    if not files:
        raise InvalidInputError(f"no images in `{folder}`", help=f"looked for {' '.join(sorted(IMAGE_SUFFIXES))}")
    results: dict[str, T | dict[str, Any]] = {}
    failed = 0
    with Progress(transient=True, disable=not sys.stderr.isatty(), console=Console(stderr=True)) as progress:
        task = progress.add_task(label, total=len(files))
        for path in files:
            name = str(path.relative_to(folder))
            try:
                results[name] = work(path, name)
            except InvalidImageError as err:
                failed += 1
                results[name] = {"error": err.message}
                print(err.render().replace("error: ", f"error: {name}: ", 1), file=sys.stderr)
            progress.advance(task)
    return results, failed
