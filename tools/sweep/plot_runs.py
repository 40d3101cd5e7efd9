#!/usr/bin/env python3
"""Plots runs side by side from their metrics.jsonl: the total loss, DINO's teacher entropy and
the online k-NN@20 of the trained network (with the first run's random backbone and pixels as
grey lines), one panel each, one line per run. Written atomically:

    python3 tools/sweep/plot_runs.py fp32=runs/main bf16=runs/main-bf16 --output docs/precision/runs.png \
        --title "The main job in fp32 and bf16 (seed 0)"
"""
import argparse
import json
import pathlib

PANELS = [
    ("loss", "total loss"),
    ("dino.teacher_entropy", "DINO teacher entropy (nats)"),
    ("online/knn/top1@20", "online k-NN@20 (%)"),
]
BASELINES = [("online_random/knn/top1@20", "--", "random backbone"), ("online_pixels/knn/top1@20", ":", "pixels")]


def read_metrics(folder):
    rows = []
    for line in (pathlib.Path(folder) / "metrics.jsonl").read_text().splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def series(rows, key):
    """(steps, values) of metric `key` over the rows that logged it (probes in percent)."""
    pairs = [(row["step"], row[key]) for row in rows if key in row]
    scale = 100 if "knn" in key else 1
    return [step for step, _ in pairs], [scale * value for _, value in pairs]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="label=run-folder")
    parser.add_argument("--output", required=True, help="the PNG to write")
    parser.add_argument("--title", default="")
    arguments = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(text.split("=", 1)[0], read_metrics(text.split("=", 1)[1])) for text in arguments.runs]
    figure, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 3.8))
    for axis, (key, label) in zip(axes, PANELS):
        probe = "knn" in key
        for index, (name, rows) in enumerate(runs):
            axis.plot(*series(rows, key), marker="o" if probe else None, color=f"C{index}", label=name)
        if probe:
            for baseline, style, name in BASELINES:
                steps, values = series(runs[0][1], baseline)
                if values:
                    axis.plot(steps, values, style, color="grey", label=name)
        axis.set_xlabel("step")
        axis.set_title(label)
        axis.legend(fontsize=8)
    if arguments.title:
        figure.suptitle(arguments.title)
    figure.tight_layout()
    output = pathlib.Path(arguments.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.stem + ".tmp.png")
    figure.savefig(temporary, dpi=110)
    temporary.replace(output)


if __name__ == "__main__":
    main()
