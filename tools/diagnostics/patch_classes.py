#!/usr/bin/env python3
"""Where scene retrieval fails: the background, or the garments' classes?

A diagnostic beside `ssl-run eval`'s dense retrieval (the scenes are `scene_readouts.py`'s numpy
replica of `FashionMNISTScenes`, 200 train / 100 test canvases of 56 px; retrieval as there:
k = 30 cosine neighbours, softmax at temperature 0.02, bilinear upsampling). For the true soft
labels, raw patch pixels and each checkpoint's teacher patch tokens after the final norm it prints:

* retrieval mIoU and the IoU of each class (background first, then Fashion-MNIST classes 0-9);
* foreground recall and precision (a garment pixel predicted as any garment, and the reverse), and
  the class accuracy on the garment pixels predicted as garments;
* the class accuracy of a k-nearest-neighbour vote (k = 10, cosine) among garment patches alone:
  test patches whose soft label is more than half one garment class, against train patches of the
  same kind, with the share of the largest class as chance.

Usage: python3 tools/diagnostics/patch_classes.py CHECKPOINT.h5 [CHECKPOINT.h5 ...]
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

import scene_readouts as scenes

GRID, CANVAS = 8, 56


def retrieval_prediction(train_features, train_labels, test_features, k=30, temperature=0.02):
    memory = F.normalize(torch.tensor(train_features.reshape(-1, train_features.shape[-1])), dim=1)
    soft = torch.tensor(scenes.soft_labels(train_labels, GRID).reshape(-1, 11))
    queries = F.normalize(torch.tensor(test_features.reshape(-1, test_features.shape[-1])), dim=1)
    values, indices = (queries @ memory.T).topk(k, dim=1)
    weights = torch.softmax((values - values[:, :1]) / temperature, dim=1)
    votes = (weights[:, :, None] * soft[indices]).sum(1).reshape(len(test_features), GRID, GRID, 11).permute(0, 3, 1, 2)
    return F.interpolate(votes, size=(CANVAS, CANVAS), mode="bilinear", align_corners=False).argmax(1).numpy()


def garment_patch_accuracy(train_features, train_labels, test_features, test_labels, k=10):
    def garment_rows(labels):
        soft = scenes.soft_labels(labels, GRID).reshape(-1, 11)
        classes = soft.argmax(1)
        return (classes > 0) & (soft.max(1) > 0.5), classes
    train_rows, train_classes = garment_rows(train_labels)
    test_rows, test_classes = garment_rows(test_labels)
    memory = F.normalize(torch.tensor(train_features.reshape(-1, train_features.shape[-1]))[train_rows], dim=1)
    queries = F.normalize(torch.tensor(test_features.reshape(-1, test_features.shape[-1]))[test_rows], dim=1)
    values, indices = (queries @ memory.T).topk(k, dim=1)
    votes = torch.zeros(len(queries), 11).scatter_add_(1, torch.tensor(train_classes[train_rows])[indices], torch.ones_like(values))
    truth = test_classes[test_rows]
    return 100 * float((votes.argmax(1).numpy() == truth).mean()), 100 * np.bincount(truth).max() / len(truth)


def report(name, train_features, train_labels, test_features, test_labels):
    predicted = retrieval_prediction(train_features, train_labels, test_features)
    ious = []
    for c in range(11):
        union = ((predicted == c) | (test_labels == c)).sum()
        ious.append(100 * ((predicted == c) & (test_labels == c)).sum() / union if union else float("nan"))
    garment, predicted_garment = test_labels > 0, predicted > 0
    hits = (garment & predicted_garment).sum()
    accuracy, chance = garment_patch_accuracy(train_features, train_labels, test_features, test_labels)
    print(f"{name}\n  retrieval mIoU {np.nanmean(ious):5.2f}; per class " + " ".join(f"{iou:.1f}" for iou in ious))
    print(f"  garment pixels: recall {100 * hits / garment.sum():.1f}, precision {100 * hits / max(predicted_garment.sum(), 1):.1f}, "
          f"class accuracy where found {100 * ((predicted == test_labels) & garment & predicted_garment).sum() / max(hits, 1):.1f}")
    print(f"  garment patches, 10-NN class vote: {accuracy:.1f} % (largest class {chance:.1f} %)", flush=True)


def main():
    root = scenes.ROOT
    train_images, train_classes = scenes.idx(f"{root}/train-images-idx3-ubyte.gz"), scenes.idx(f"{root}/train-labels-idx1-ubyte.gz")
    test_images, test_classes = scenes.idx(f"{root}/t10k-images-idx3-ubyte.gz"), scenes.idx(f"{root}/t10k-labels-idx1-ubyte.gz")
    train_scenes, train_labels = scenes.scenes(train_images, train_classes, 200)
    test_scenes, test_labels = scenes.scenes(test_images, test_classes, 100)
    train_inputs, test_inputs = scenes.normalise(train_scenes), scenes.normalise(test_scenes)
    print("pixel shares (background, classes 0-9): " + " ".join(f"{100 * (test_labels == c).mean():.1f}" for c in range(11)))
    report("true soft labels", scenes.soft_labels(train_labels, GRID), train_labels, scenes.soft_labels(test_labels, GRID), test_labels)
    report("raw patch pixels", scenes.patch_pixels(train_inputs, 7), train_labels, scenes.patch_pixels(test_inputs, 7), test_labels)
    for checkpoint in sys.argv[1:]:
        model = scenes.ViT(checkpoint)
        report(checkpoint, model(train_inputs)[1][:, 1:].numpy(), train_labels, model(test_inputs)[1][:, 1:].numpy(), test_labels)


if __name__ == "__main__":
    main()
