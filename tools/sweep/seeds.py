#!/usr/bin/env python3
"""Trains each configuration of a sweep file with several seeds, probes every run offline and
tabulates the probes as mean ± standard deviation over the seeds.

The sweep file has the format of sweep.py (`common: flags`, then `name: flags` per
configuration). Every run trains into `<runs>/<name>-seed<s>` and is then probed with
`ssl-run eval` (trained teacher, random backbone, raw pixels; k-NN, scene retrieval, linear
segmentation). A run whose folder already holds its probes is not run again, so an
interrupted study continues where it stopped; nor is a run already recorded in the output's
JSON with the same flags, so arms added to a finished study train alone. Written atomically into `--output`:
`<stem>.md` (the table), `<stem>.json` (every run's figures) and `<stem>.png` (the plot;
needs matplotlib):

    python3 tools/sweep/seeds.py tools/sweep/claim.sweep --seeds 0,1,2 --runs runs/claim --output docs/claim
"""
import argparse
import json
import pathlib
import shlex
import statistics
import sys
import time

from sweep import read_sweep, run_logged

PROBES = [
    ("knn/top1@20", "k-NN@20 (%)"),
    ("dense_retrieval/mIoU", "scene retrieval mIoU (%)"),
    ("dense_linear/mIoU", "scene linear mIoU (%)"),
]


def write_atomically(path, text):
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)


def write_record(path, common, configurations, seeds, results):
    """Every run's figures so far, with the flags they were run with."""
    write_atomically(path, json.dumps(
        {"common": common, "configurations": dict(configurations), "seeds": seeds,
         "runs": {name: {str(seed): metrics for seed, metrics in by_seed.items()} for name, by_seed in results.items()}},
        indent=1) + "\n")


def recorded_run(recorded, common, name, flags, seed):
    """The metrics of this run in a previous output JSON, when it was recorded with the same
    common flags and the same configuration flags; otherwise None."""
    if not recorded or recorded.get("common") != common:
        return None
    if recorded.get("configurations", {}).get(name) != flags:
        return None
    metrics = recorded.get("runs", {}).get(name, {}).get(str(seed))
    return metrics if metrics and "trained/knn/top1@20" in metrics else None


def run_once(ssl_run, common, flags, seed, folder, log_path):
    """Trains and probes one run; returns its summary metrics, or None when a step failed."""
    summary = folder / "summary.json"
    if summary.exists():
        metrics = json.loads(summary.read_text()).get("metrics", {})
        if "trained/knn/top1@20" in metrics:
            return metrics
    commands = [
        [ssl_run, *common, *flags, "--seed", str(seed), "--eval-every", "0", "--output", str(folder)],
        [ssl_run, "eval", "--checkpoint", str(folder / "checkpoint.h5")],
    ]
    for command in commands:
        print(f"  {shlex.join(command)}", file=sys.stderr, flush=True)
        if run_logged(command, log_path) != 0:
            print(f"  failed; see {log_path}", file=sys.stderr)
            return None
    return json.loads(summary.read_text())["metrics"]


def describe(values):
    if not values:
        return "–"
    mean = statistics.mean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.2f} ± {100 * spread:.2f}"


def table(results, configurations, seeds):
    header = "| configuration | " + " | ".join(label for _, label in PROBES) + " | seeds |"
    lines = [header, "|---" * (len(PROBES) + 2) + "|"]
    for name, flags in configurations:
        runs = [results[name][seed] for seed in seeds if results[name].get(seed)]
        cells = [describe([run[f"trained/{key}"] for run in runs]) for key, _ in PROBES]
        lines.append(f"| {name} (`{' '.join(flags) or 'common'}`) | " + " | ".join(cells) + f" | {len(runs)} |")
    for network in ("random", "pixels"):
        runs = [run for name, _ in configurations for run in results[name].values() if run]
        cells = [describe([run[f"{network}/{key}"] for run in runs]) for key, _ in PROBES]
        label = "random backbone (each run's)" if network == "random" else "raw pixels"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {len(runs)} |")
    return "\n".join(lines)


def plot(results, configurations, seeds, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; no plot", file=sys.stderr)
        return
    figure, axes = plt.subplots(1, len(PROBES), figsize=(4.2 * len(PROBES), 3.6))
    names = [name for name, _ in configurations]
    for axis, (key, label) in zip(axes, PROBES):
        for position, name in enumerate(names):
            values = [100 * results[name][seed][f"trained/{key}"] for seed in seeds if results[name].get(seed)]
            axis.scatter([position] * len(values), values, color="tab:blue", s=18, zorder=3)
            if values:
                axis.errorbar(position + 0.18, statistics.mean(values),
                              yerr=statistics.stdev(values) if len(values) > 1 else 0,
                              fmt="o", color="black", capsize=4, zorder=3)
        baselines = {network: [100 * run[f"{network}/{key}"] for name in names for run in results[name].values() if run]
                     for network in ("random", "pixels")}
        for network, style in (("random", "--"), ("pixels", ":")):
            if baselines[network]:
                axis.axhline(statistics.mean(baselines[network]), linestyle=style, color="gray", label=network)
        axis.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        axis.set_title(label, fontsize=10)
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    temporary = path.with_name(path.stem + ".tmp.png")
    figure.savefig(temporary, dpi=110)
    temporary.replace(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", help="the sweep file")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--runs", default="runs/seeds", help="folder for the runs")
    parser.add_argument("--output", default=None, help="folder for the table, figures and plot (default: --runs)")
    parser.add_argument("--ssl-run", default=".build/release/ssl-run", help="the ssl-run executable")
    parser.add_argument("--table-only", action="store_true", help="tabulate what has run; train nothing")
    arguments = parser.parse_args()

    seeds = [int(seed) for seed in arguments.seeds.split(",")]
    common, configurations = read_sweep(arguments.sweep)
    runs = pathlib.Path(arguments.runs)
    output = pathlib.Path(arguments.output or arguments.runs)
    runs.mkdir(parents=True, exist_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    stem = pathlib.Path(arguments.sweep).stem
    results = {name: {} for name, _ in configurations}
    recorded_path = output / f"{stem}.json"
    recorded = json.loads(recorded_path.read_text()) if recorded_path.exists() else None
    # Seed-major order, so that an interrupted study has every configuration on the same seeds.
    for seed in seeds:
        for name, flags in configurations:
            folder = runs / f"{name}-seed{seed}"
            previous = recorded_run(recorded, common, name, flags, seed)
            if previous is not None:
                results[name][seed] = previous
                continue
            if arguments.table_only:
                summary = folder / "summary.json"
                metrics = json.loads(summary.read_text()).get("metrics", {}) if summary.exists() else {}
                results[name][seed] = metrics if "trained/knn/top1@20" in metrics else None
                continue
            print(f"{name}, seed {seed}", file=sys.stderr, flush=True)
            started = time.monotonic()
            results[name][seed] = run_once(arguments.ssl_run, common, flags, seed, folder, runs / f"{name}-seed{seed}.log")
            print(f"  {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
            write_record(output / f"{stem}.json", common, configurations, seeds, results)
    write_record(output / f"{stem}.json", common, configurations, seeds, results)
    text = table(results, configurations, seeds)
    print(text)
    write_atomically(output / f"{stem}.md", text + "\n")
    plot(results, configurations, seeds, output / f"{stem}.png")


if __name__ == "__main__":
    main()
