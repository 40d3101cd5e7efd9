#!/usr/bin/env python3
"""Probes checkpoints between a first phase and a second phase started from it, and plots image
k-NN@20 against scene retrieval mIoU, one line per pair and profile.

For every pair `label=FIRST+SECOND` (run folders) and every point of the grid, runs
`ssl-run interpolate FIRST/checkpoint.h5 SECOND/checkpoint.h5 --weight W --profile P` into
`--work/<label>-<P>-<W>/checkpoint.h5` and `ssl-run eval` on it, unless that folder already has
a summary.json. W = 0 and W = 1 are the phases themselves. Prints a table and writes the plot
atomically:

    python3 tools/sweep/interpolation_frontier.py "seed 0=runs/long2-seed0-base+runs/long2-seed0" \\
        --ssl-run .build/release/ssl-run --output docs/hour/interpolation.png
"""
import argparse
import json
import pathlib

from figures import save_atomically
import subprocess

GRID = [("uniform", weight) for weight in (0.0, 0.5, 0.75, 0.9, 1.0)] + [
    ("depth", weight) for weight in (0.7, 0.8)
]
KNN, RETRIEVAL, LINEAR = "trained/knn/top1@20", "trained/dense_retrieval/mIoU", "trained/dense_linear/mIoU"


def probe(ssl_run, first, second, profile, weight, folder):
    """The trained network's metrics of the checkpoint `weight` of the way from first to second."""
    summary = folder / "summary.json"
    if not summary.exists():
        folder.mkdir(parents=True, exist_ok=True)
        checkpoint = folder / "checkpoint.h5"
        subprocess.run([ssl_run, "interpolate", f"{first}/checkpoint.h5", f"{second}/checkpoint.h5",
                        "--weight", str(weight), "--profile", profile, "--output", str(checkpoint)],
                       check=True, stdout=subprocess.DEVNULL)
        with open(folder / "eval.txt", "w") as log:
            subprocess.run([ssl_run, "eval", "--checkpoint", str(checkpoint)], check=True, stdout=log, stderr=log)
        checkpoint.unlink()
    return json.loads(summary.read_text())["metrics"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="+", help="label=FIRST+SECOND run folders")
    parser.add_argument("--ssl-run", default=".build/release/ssl-run")
    parser.add_argument("--work", default="runs/interpolation", help="folder of the probed checkpoints")
    parser.add_argument("--output", required=True)
    parser.add_argument("--knn-aim", type=float, default=82.0)
    parser.add_argument("--retrieval-aim", type=float, default=17.84)
    arguments = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(10, 5.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    print(f"{'run':<28} {'profile':<8} {'W':>5} {'k-NN@20':>8} {'retrieval':>9} {'linear':>7}")
    for index, pair in enumerate(arguments.pairs):
        label, folders = pair.split("=", 1)
        first, second = folders.split("+")
        color = colors[index % len(colors)]
        points = {}
        for profile, weight in GRID:
            slug = label.replace(" ", "-")
            metrics = probe(arguments.ssl_run, first, second, profile, weight,
                            pathlib.Path(arguments.work) / f"{slug}-{profile}-{weight:g}")
            points[(profile, weight)] = (100 * metrics[RETRIEVAL], 100 * metrics[KNN])
            print(f"{label:<28} {profile:<8} {weight:>5g} {100 * metrics[KNN]:>8.2f} "
                  f"{100 * metrics[RETRIEVAL]:>9.2f} {100 * metrics[LINEAR]:>7.2f}")
        uniform = [points[key] for key in GRID if key[0] == "uniform"]
        axis.plot([x for x, _ in uniform], [y for _, y in uniform], "-o", color=color, markersize=4,
                  label=f"{label}: uniform weight 0 → 1")
        for (profile, weight), marker in [(("depth", 0.7), "^"), (("depth", 0.8), "*")]:
            x, y = points[(profile, weight)]
            axis.plot([x], [y], marker, color=color, markersize=11 if marker == "*" else 8,
                      label=f"{label}: depth profile from {weight:g}")
        for (profile, weight), text in [(("uniform", 0.0), "first phase"), (("uniform", 1.0), "second phase")]:
            x, y = points[(profile, weight)]
            axis.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=color)
    axis.axhline(arguments.knn_aim, color="grey", linestyle=":", linewidth=1)
    axis.axvline(arguments.retrieval_aim, color="grey", linestyle=":", linewidth=1)
    axis.set_xlabel("scene retrieval mIoU (%)")
    axis.set_ylabel("k-NN@20 (%)")
    axis.set_title("Checkpoints between the two phases (dotted: the aims)")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    save_atomically(figure, arguments.output)


if __name__ == "__main__":
    main()
