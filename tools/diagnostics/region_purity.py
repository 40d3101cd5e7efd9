#!/usr/bin/env python3
"""Do the `regiondino` task's k-means regions follow the garments? A diagnostic, not a probe of record.

Each scene of the numpy replica (`scene_readouts.scenes`, 56 px) is shown whole at the training
crop size (28 px by default, a 4 x 4 grid at patch 7; 56 for runs with `--global-size 56`), as the
largest global crop shows it. The teacher's
patch tokens after the final norm are grouped as `RegionDistillationTask` groups them (cosine
k-means, farthest-point seeding from the patch least similar to the mean token, 10 Lloyd
iterations, 4 regions). Each patch takes the class covering most of its pixels (background
included); a region's purity is the share of its patches whose class is the region's most
common one, over all patches and over the garment patches alone. Printed beside the same k-means on each patch's raw pixels and on random regions
of the same sizes.

Usage: python3 tools/diagnostics/region_purity.py CHECKPOINT [scenes, default 500] [crop size, default 28]
"""

import os, sys
import numpy as np, torch, torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from scene_readouts import ROOT, ViT, idx, normalise, scenes, soft_labels  # noqa: E402


def kmeans(tokens, regions=4, iterations=10):
    """The task's clustering of one image's tokens `[patches, dim]`: labels per patch."""
    x = tokens / np.maximum(np.linalg.norm(tokens, axis=1, keepdims=True), 1e-12)
    centers = [x[np.argmin(x @ x.sum(0))]]
    nearest = x @ centers[0]
    while len(centers) < min(regions, len(x)):
        centers.append(x[np.argmin(nearest)])
        nearest = np.maximum(nearest, x @ centers[-1])
    centers = np.stack(centers)
    for _ in range(iterations):
        labels = np.argmax(x @ centers.T, 1)
        for c in range(len(centers)):
            members = x[labels == c]
            if len(members):
                total = members.sum(0)
                centers[c] = total / max(np.linalg.norm(total), 1e-12)
    return labels


def purity(assignments, classes, garments_only=False):
    """The share of patches whose class is their region's most common class (among garment
    patches only, with `garments_only`: does a region hold one kind of garment?)."""
    agree = total = 0
    for labels, truth in zip(assignments, classes):
        for region in np.unique(labels):
            members = truth[labels == region]
            if garments_only:
                members = members[members > 0]
            if len(members):
                agree += np.bincount(members).max()
                total += len(members)
    return agree / total


def main():
    checkpoint = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 28
    images, labels = idx(f"{ROOT}/train-images-idx3-ubyte.gz"), idx(f"{ROOT}/train-labels-idx1-ubyte.gz")
    pixels, pixel_labels = scenes(images, labels, count)
    model = ViT(checkpoint)
    if size % model.patch:
        sys.exit(f"region_purity.py: the crop size {size} is not a multiple of the checkpoint's patch size {model.patch}; give one that is.")
    grid = size // model.patch
    x = F.interpolate(normalise(pixels), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    tokens = model(x)[1][:, 1:].numpy()
    classes = soft_labels(pixel_labels, grid).argmax(-1)
    patch_pixels = x.reshape(count, 3, grid, model.patch, grid, model.patch).permute(0, 2, 4, 1, 3, 5).reshape(count, grid * grid, -1).numpy()
    rng = np.random.default_rng(0)
    teacher = [kmeans(t) for t in tokens]
    groupings = {
        "teacher patch tokens": teacher,
        "raw patch pixels": [kmeans(p - p.mean(1, keepdims=True)) for p in patch_pixels],
        "random, same sizes": [rng.permutation(t) for t in teacher],
    }
    print(f"{count} scenes at {size} px ({grid}x{grid} patches); purity of 4 k-means regions, all patches | garment patches only:")
    for name, grouping in groupings.items():
        print(f"  {name:22s} {purity(grouping, classes):.3f} | {purity(grouping, classes, garments_only=True):.3f}")
    print(f"  patches whose class is background: {(classes == 0).mean():.3f}")


if __name__ == "__main__":
    main()
