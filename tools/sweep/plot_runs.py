#!/usr/bin/env python3
"""Plots runs side by side from their metrics.jsonl: the total loss, DINO's teacher entropy and
the online k-NN@20 of the trained network (with the first run's random backbone and pixels as
grey lines), one panel each, one line per run. `--dense` adds the online scene retrieval mIoU.
A run given as `label=first+second` is a run in phases (the second started with --init-from the
first): their metrics are joined, the second's steps counted on from the first's last. Written
atomically:

    python3 tools/sweep/plot_runs.py fp32=runs/main bf16=runs/main-bf16 --output docs/precision/runs.png \
        --title "The main job in fp32 and bf16 (seed 0)"
"""
import argparse
import json
import pathlib

from figures import save_atomically

PANELS = [
    ("loss", "total loss"),
    ("dino.teacher_entropy", "DINO teacher entropy (nats)"),
    ("online/knn/top1@20", "online k-NN@20 (%)"),
]
DENSE_PANEL = ("online/dense_retrieval/mIoU", "online scene retrieval mIoU (%)")
BASELINES = [("online_random/", "--", "random backbone"), ("online_pixels/", ":", "pixels")]


def read_metrics(folders):
    """The rows of one run's metrics.jsonl, or of several phases' joined, steps counted on."""
    rows, offset = [], 0
    for folder in folders.split("+"):
        phase = []
        for line in (pathlib.Path(folder) / "metrics.jsonl").read_text().splitlines():
            if line.strip():
                phase.append(json.loads(line))
        rows += [dict(row, step=row["step"] + offset) for row in phase]
        offset = rows[-1]["step"] if rows else offset
    return rows


def series(rows, key):
    """(steps, values) of metric `key` over the rows that logged it (probes in percent)."""
    pairs = [(row["step"], row[key]) for row in rows if key in row]
    scale = 100 if "/" in key else 1
    return [step for step, _ in pairs], [scale * value for _, value in pairs]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="label=run-folder")
    parser.add_argument("--output", required=True, help="the PNG to write")
    parser.add_argument("--title", default="")
    parser.add_argument("--dense", action="store_true", help="add the online scene retrieval panel")
    arguments = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(text.split("=", 1)[0], read_metrics(text.split("=", 1)[1])) for text in arguments.runs]
    panels = PANELS + [DENSE_PANEL] if arguments.dense else PANELS
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8))
    for axis, (key, label) in zip(axes, panels):
        probe = key.startswith("online/")
        for index, (name, rows) in enumerate(runs):
            axis.plot(*series(rows, key), marker="o" if probe else None, color=f"C{index}", label=name)
        if probe:
            for prefix, style, name in BASELINES:
                steps, values = series(runs[0][1], key.replace("online/", prefix))
                if values:
                    axis.plot(steps, values, style, color="grey", label=name)
        axis.set_xlabel("step")
        axis.set_title(label)
        axis.legend(fontsize=8)
    if arguments.title:
        figure.suptitle(arguments.title)
    save_atomically(figure, arguments.output)


if __name__ == "__main__":
    main()
