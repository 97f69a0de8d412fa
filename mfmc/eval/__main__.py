"""`python -m mfmc.eval OUT_DIR`: write the identity-labelled openpeople evaluation set (see mfmc.eval.dataset)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mfmc.eval.dataset import openpeople_set


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Write the identity-labelled openpeople evaluation set.")
    ap.add_argument("out", type=Path)
    ap.add_argument("--people", type=int, default=None, help="only the first N people")
    ap.add_argument("--max-side", type=int, default=1024)
    args = ap.parse_args(argv)
    files = openpeople_set(args.out, people=args.people, max_side=args.max_side)
    print(f"wrote {len(files)} photos of {len({f.parent.name for f in files})} people under {args.out}")


if __name__ == "__main__":
    main()
