#!/usr/bin/env python3
"""Plots runs side by side from their metrics.jsonl: the total loss, DINO's teacher entropy and
the online k-NN@20 of the trained network (with the random backbone's and the pixels' as
dashed lines when the run logged them), one panel each, one line per run. Written atomically:

    python3 tools/sweep/plot_runs.py fp32=runs/main bf16=runs/main-bf16 --output docs/precision/runs.png \
        --title "The main job in fp32 and bf16 (seed 0)"
"""
import argparse
import json
import pathlib

PANELS = [
    ("loss", "total loss"),
    ("dino.teacher_entropy", "DINO teacher entropy (nats)"),
    ("knn/top1@20", "online k-NN@20 (%)"),
]


def read_metrics(folder):
    rows = []
    for line in (pathlib.Path(folder) / "metrics.jsonl").read_text().splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def series(rows, key, role):
    """(steps, values) of the first metric whose name ends in `key` with the given role prefix
    ('' for the trained network, 'random/' or 'pixels/' for the baselines)."""
    steps, values = [], []
    for row in rows:
        for name, value in row.items():
            bare = name.split("/", 1)[1] if name.startswith("eval/") else name
            if bare.endswith(key) and bare.startswith(role) and (role or not bare.startswith(("random/", "pixels/"))):
                steps.append(row["step"])
                values.append(100 * value if key.startswith("knn") else value)
                break
    return steps, values


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
        for index, (name, rows) in enumerate(runs):
            steps, values = series(rows, key, "")
            axis.plot(steps, values, marker="o" if key.startswith("knn") else None, color=f"C{index}", label=name)
            if key.startswith("knn") and index == 0:
                for role, style in (("random/", "--"), ("pixels/", ":")):
                    steps, values = series(rows, key, role)
                    if values:
                        axis.plot(steps, values, style, color="grey", label=role.rstrip("/"))
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
