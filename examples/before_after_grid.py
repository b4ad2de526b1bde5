"""Render a before/after grid for a domain from a dataset's test split (nothing is committed).

    python examples/before_after_grid.py --plugin horse2zebra --data ../shared/datasets/horse2zebra \
        [--weights FILE] [--direction a2b|b2a] [-n 6] [-o grid.jpg]

Top row: the first N test images of the source side; bottom row: their translations.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from cycletools.data.images import list_images, open_image, save_image, split_alpha
from cycletools.pipelines.translator import Translator

TILE = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugin", required=True)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--weights")
    parser.add_argument("--direction", choices=("a2b", "b2a"), default="a2b")
    parser.add_argument("-n", type=int, default=6)
    parser.add_argument("-o", "--output", default="grid.jpg")
    args = parser.parse_args()
    translator = Translator.from_plugin(args.plugin, weights=args.weights)
    side = "A" if args.direction == "a2b" else "B"
    files = list_images(args.data / f"test{side}").files[: args.n]
    grid = Image.new("RGB", (TILE * len(files), 2 * TILE), "white")
    for column, path in enumerate(files):
        image = split_alpha(open_image(path))[0]
        grid.paste(image.resize((TILE, TILE)), (column * TILE, 0))
        grid.paste(translator(image).resize((TILE, TILE)), (column * TILE, TILE))
    save_image(grid, Path(args.output))
    print(f"{args.output}: {len(files)} images, {args.plugin} ({translator.source})")


if __name__ == "__main__":
    main()
