#!/usr/bin/env python3
"""Writes a small image folder of a different kind than Fashion-MNIST, for checking that the
default recipe learns on a user's own few thousand images: scikit-learn's 1,797 handwritten
digits (8×8, 10 classes), enlarged to 32×32 and coloured (a random hue for the digit and
another for the background, seeded), as PNG files in one subfolder per class, every fifth image
under `test/`, the others under `train/`:

    pip install scikit-learn pillow && python3 tools/sweep/make_digits_folder.py runs/digits32
    ssl-run --preset fashion-mnist --global-size 32 --local-size 16 --data runs/digits32/train --epochs 7 --output runs/digits
    ssl-run eval --checkpoint runs/digits/checkpoint.h5 --data runs/digits32/train --test-data runs/digits32/test
"""
import colorsys
import pathlib
import random
import sys

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def main():
    folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "runs/digits32")
    digits = load_digits()
    generator = random.Random(0)
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target)):
        ink = pixels / 16.0
        large = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize((32, 32), Image.BICUBIC)) / 255.0
        foreground = np.array(colorsys.hsv_to_rgb(generator.random(), 0.5 + 0.5 * generator.random(), 1.0))
        background = np.array(colorsys.hsv_to_rgb(generator.random(), generator.random(), 0.2 + 0.4 * generator.random()))
        image = large[..., None] * foreground + (1 - large[..., None]) * background
        target = folder / ("test" if index % 5 == 0 else "train") / str(label)
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255).round().astype(np.uint8)).save(target / f"{index:04d}.png")
    print(f"wrote {len(digits.images)} images to {folder}")


if __name__ == "__main__":
    main()
