"""Write `Tests/Fixtures/knn.h5`: DINO's weighted k-NN on synthetic features (spec §2.8, §6.3 item 19).

Usage (from the repository root):

    python3 tools/reference/make_knn_fixture.py            # writes Tests/Fixtures/knn.h5
    python3 tools/reference/make_knn_fixture.py --out /tmp/knn.h5

Features: 10 class centres ~ N(0, 1) in 32-d, samples = centre + N(0, NOISE²), 1,000 train and
200 test, float32, seed 0. `knn_classifier` below follows DINO's k-NN protocol (spec §2.8) operation for operation
(retrieval by `torch.mm` + `topk`, weights exp(sim / T), scatter to one-hot, per-class sums,
`sort`, top-1 / top-5), except that it takes the chunk size as an argument instead of
hard-coding 100 chunks (DINO's ⌊N_test / 100⌋ rows per chunk; with 200 test rows that is 2;
the script checks that a single chunk gives the same result).

The script asserts that the result does not depend on float32 rounding or tie-breaking, so an
independent implementation must reproduce the counts exactly:
- for every test row and k, the k-th and (k+1)-th similarities differ by more than 2e-6 (float32
  similarities of unit 32-d vectors are exact to a few 1e-7)
  (the neighbour set is well defined);
- the rank of the true class is the same under every tie-breaking of equal class scores and
  its score differs from every other class score by more than 1e-4 relative (or both are 0).

Datasets (float32 unless noted):
- `train_features` (1000, 32), `test_features` (200, 32): raw features (not normalised; the
  classifier L2-normalises them as DINO's eval_knn does before calling knn_classifier);
- `train_labels` (1000,), `test_labels` (200,) int64;
- `k{K}/top1`, `k{K}/top5` (float64, percent, as DINO prints them), `k{K}/top1_correct`,
  `k{K}/top5_correct` (int64 counts), `k{K}/neighbors` (200, K) int64 train indices by
  descending similarity, `k{K}/class_scores` (200, 10) summed weights, for K in 10, 20.
Root attributes: `temperature` 0.07, `num_classes` 10, `noise`, `seed`, `torch_version`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True

TRAIN, TEST, CLASSES, DIM = 1000, 200, 10, 32
NOISE = 2.2
TEMPERATURE = 0.07
KS = (10, 20)
SEED = 0


@torch.no_grad()
def knn_classifier(train_features, train_labels, test_features, test_labels, k, T, num_classes, rows_per_chunk):
    """Weighted k-NN of spec §2.8, step for step as DINO's eval_knn does it.

    Per chunk of test rows: similarities = test · trainᵀ (`torch.mm`), `topk(k)` sorted, labels of
    the neighbours by `gather`, a one-hot matrix of them by `scatter_`, weights exp(sim / T),
    class scores = Σ_neighbours one-hot · weight, classes ranked by `sort(descending)`; a row
    counts for top-1 when the true class ranks first and for top-5 when it is among the first
    min(5, k). Returns (top-1 %, top-5 %, neighbour indices, class scores).
    """
    train_columns = train_features.t()
    count = test_labels.shape[0]
    hits_top1, hits_top5 = 0, 0
    neighbour_blocks, score_blocks = [], []
    for start in range(0, count, rows_per_chunk):
        stop = min(start + rows_per_chunk, count)
        queries, truth = test_features[start:stop], test_labels[start:stop]
        rows = stop - start
        similarity = torch.mm(queries, train_columns)
        nearest, positions = similarity.topk(k, dim=1, largest=True, sorted=True)
        neighbour_labels = torch.gather(train_labels.view(1, -1).expand(rows, -1), 1, positions)
        one_hot = torch.zeros(rows * k, num_classes).scatter_(1, neighbour_labels.reshape(-1, 1), 1)
        weights = (nearest / T).exp()
        scores = (one_hot.view(rows, k, num_classes) * weights.view(rows, k, 1)).sum(dim=1)
        ranking = scores.sort(dim=1, descending=True).indices
        matches = ranking == truth.view(-1, 1)
        hits_top1 += int(matches[:, :1].sum())
        hits_top5 += int(matches[:, : min(5, k)].sum())
        neighbour_blocks.append(positions)
        score_blocks.append(scores)
    return (hits_top1 * 100.0 / count, hits_top5 * 100.0 / count,
            torch.cat(neighbour_blocks), torch.cat(score_blocks))


def check_well_defined(similarity: np.ndarray, scores: np.ndarray, labels: np.ndarray, k: int) -> None:
    """Asserts that neighbour sets and the rank of every true class are free of near-ties."""
    ordered = -np.sort(-similarity, axis=1)
    gaps = ordered[:, k - 1] - ordered[:, k]
    assert gaps.min() > 2e-6, f"k={k}: neighbour gap {gaps.min()}"
    for row, target in enumerate(labels):
        own = scores[row, target]
        for other in range(scores.shape[1]):
            if other == target:
                continue
            value = scores[row, other]
            if own == 0 and value == 0:
                # Both unscored: the tie only matters when the true class could land in the top 5.
                positive = int((scores[row] > 0).sum())
                assert positive >= 5, f"k={k} row {row}: unscored true class ties inside the top 5"
                continue
            assert abs(value - own) > 1e-4 * max(abs(own), abs(value)), f"k={k} row {row}: near-tie"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[2]
    parser.add_argument("--out", type=Path, default=root / "Tests" / "Fixtures" / "knn.h5")
    args = parser.parse_args()

    torch.set_num_threads(1)
    generator = np.random.default_rng(SEED)
    centres = generator.standard_normal((CLASSES, DIM))
    train_labels = np.arange(TRAIN) % CLASSES
    test_labels = np.arange(TEST) % CLASSES
    generator.shuffle(train_labels)
    generator.shuffle(test_labels)
    train = (centres[train_labels] + NOISE * generator.standard_normal((TRAIN, DIM))).astype(np.float32)
    test = (centres[test_labels] + NOISE * generator.standard_normal((TEST, DIM))).astype(np.float32)

    train_t = F.normalize(torch.from_numpy(train), dim=1, p=2)
    test_t = F.normalize(torch.from_numpy(test), dim=1, p=2)
    train_labels_t = torch.from_numpy(train_labels).long()
    test_labels_t = torch.from_numpy(test_labels).long()
    similarity = (test_t.double() @ train_t.double().t()).numpy()

    with h5py.File(args.out, "w", libver=("v110", "v110")) as file:
        file.attrs["temperature"] = TEMPERATURE
        file.attrs["num_classes"] = CLASSES
        file.attrs["noise"] = NOISE
        file.attrs["seed"] = SEED
        file.attrs["torch_version"] = np.bytes_(torch.__version__)
        file.create_dataset("train_features", data=train)
        file.create_dataset("test_features", data=test)
        file.create_dataset("train_labels", data=train_labels.astype(np.int64))
        file.create_dataset("test_labels", data=test_labels.astype(np.int64))
        for k in KS:
            top1, top5, neighbours, scores = knn_classifier(
                train_t, train_labels_t, test_t, test_labels_t, k, TEMPERATURE, CLASSES, TEST // 100)
            # DINO's 100-chunk layout and a single chunk agree: chunking is only a memory bound.
            same1, same5, _, _ = knn_classifier(
                train_t, train_labels_t, test_t, test_labels_t, k, TEMPERATURE, CLASSES, TEST)
            assert (same1, same5) == (top1, top5)
            check_well_defined(similarity, scores.double().numpy(), test_labels, k)
            group = file.create_group(f"k{k}")
            group.create_dataset("top1", data=np.float64(top1))
            group.create_dataset("top5", data=np.float64(top5))
            group.create_dataset("top1_correct", data=np.int64(round(top1 * TEST / 100)))
            group.create_dataset("top5_correct", data=np.int64(round(top5 * TEST / 100)))
            group.create_dataset("neighbors", data=neighbours.numpy().astype(np.int64))
            group.create_dataset("class_scores", data=scores.numpy().astype(np.float32))
            print(f"k={k}: top1 {top1:.2f}% top5 {top5:.2f}%")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
