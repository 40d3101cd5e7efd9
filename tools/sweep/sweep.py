#!/usr/bin/env python3
"""Runs short training configurations one after another and tabulates their probes.

A sweep file lists configurations, one per line, as `name: ssl-run flags`; a line
`common: flags` gives flags every configuration starts with, and `#` starts a comment:

    common: --preset fashion-mnist --subset 3200 --epochs 4
    baseline:
    momentum-0.99: --teacher-momentum 0.99

Each configuration trains into `<runs>/<name>` with the online probe after every epoch (its
random-backbone and raw-pixel baselines beside it); a configuration whose folder already
holds a finished run is not run again, so an interrupted sweep continues where it stopped.
The table (Markdown) goes to standard output and to `<runs>/sweep.md`:

    python3 tools/sweep/sweep.py tools/sweep/main-job.sweep --runs runs/sweep
"""
import argparse
import json
import pathlib
import shlex
import subprocess
import sys
import time


def read_sweep(path):
    common, configurations = [], []
    for number, raw in enumerate(pathlib.Path(path).read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, separator, flags = line.partition(":")
        if not separator or not name.strip():
            sys.exit(f"{path}:{number}: expected 'name: flags', got '{raw}'")
        if name.strip() == "common":
            common = shlex.split(flags)
        else:
            configurations.append((name.strip(), shlex.split(flags)))
    names = [name for name, _ in configurations]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        sys.exit(f"{path}: configurations named twice: {', '.join(sorted(duplicates))}")
    return common, configurations


def run_logged(command, log_path):
    """Runs `command`, appending its output to `log_path` and echoing it to standard error
    (ssl-run's progress lines: a line every 30 s when not on a terminal). Returns the exit status."""
    with open(log_path, "a") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        for line in process.stdout:
            log.write(line)
            log.flush()
            sys.stderr.write("    " + line)
        return process.wait()


def records(folder):
    path = folder / "metrics.jsonl"
    if not path.exists():
        return []
    result = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            result.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"warning: {path}:{number} is not a JSON record; skipped", file=sys.stderr)
    return result


def online_probes(folder, key):
    """(step, value) of every online probe of `key` (e.g. online/knn/top1@20)."""
    return [(record["step"], record[key]) for record in records(folder) if key in record]


def table(runs, configurations, key):
    lines = [f"| configuration | flags | {key} by step (random, pixels) | final | img/s | collapse warnings |",
             "|---|---|---|---|---|---|"]
    for name, flags in configurations:
        folder = runs / name
        probes = online_probes(folder, key)
        baseline_key = key.replace("online/", "online_random/", 1)
        pixels_key = key.replace("online/", "online_pixels/", 1)
        baselines = [record for record in records(folder) if baseline_key in record or pixels_key in record]
        random_value = next((r[baseline_key] for r in baselines if baseline_key in r), None)
        pixel_value = next((r[pixels_key] for r in baselines if pixels_key in r), None)
        curve = ", ".join(f"{step}: {100 * value:.1f}" for step, value in probes) or "–"
        reference = ", ".join(f"{label} {100 * value:.1f}" for label, value in
                              (("random", random_value), ("pixels", pixel_value)) if value is not None)
        final = f"{100 * probes[-1][1]:.1f}" if probes else "–"
        status = (folder / "sweep-status.json")
        speed = "–"
        warnings = "–"
        if status.exists():
            info = json.loads(status.read_text())
            speed = f"{info['images_per_second']:.1f}"
            warnings = str(info["collapse_warnings"])
        lines.append(f"| {name} | `{' '.join(flags) or '(common)'}` | {curve}" + (f" ({reference})" if reference else "")
                     + f" | {final} | {speed} | {warnings} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", help="the sweep file")
    parser.add_argument("--runs", default="runs/sweep", help="folder for the runs and the table")
    parser.add_argument("--ssl-run", default=".build/release/ssl-run", help="the ssl-run executable")
    parser.add_argument("--metric", default="online/knn/top1@20", help="the online probe to tabulate")
    parser.add_argument("--only", nargs="*", help="run only these configurations")
    parser.add_argument("--table-only", action="store_true", help="tabulate what has run; train nothing")
    arguments = parser.parse_args()

    common, configurations = read_sweep(arguments.sweep)
    runs = pathlib.Path(arguments.runs)
    runs.mkdir(parents=True, exist_ok=True)
    if not arguments.table_only:
        for index, (name, flags) in enumerate(configurations, start=1):
            if arguments.only and name not in arguments.only:
                continue
            folder = runs / name
            if (folder / "sweep-status.json").exists():
                continue
            command = [arguments.ssl_run, *common, *flags, "--output", str(folder)]
            print(f"[{index}/{len(configurations)}] {name}: {shlex.join(command)}", file=sys.stderr, flush=True)
            started = time.monotonic()
            status = run_logged(command, runs / f"{name}.log")
            seconds = time.monotonic() - started
            if status != 0:
                print(f"  {name} failed with exit status {status}; see {runs / (name + '.log')}", file=sys.stderr)
                continue
            log_text = (runs / f"{name}.log").read_text(errors="replace")
            config = json.loads((folder / "config.json").read_text())
            final_step = max((record.get("step", 0) for record in records(folder)), default=0)
            status = {
                "seconds": seconds,
                "images_per_second": final_step * config["batchSize"] / seconds if seconds > 0 else 0,
                "collapse_warnings": log_text.count("Warning: "),
            }
            temporary = folder / "sweep-status.json.tmp"
            temporary.write_text(json.dumps(status) + "\n")
            temporary.replace(folder / "sweep-status.json")
    text = table(runs, configurations, arguments.metric)
    print(text)
    (runs / "sweep.md.tmp").write_text(text + "\n")
    (runs / "sweep.md.tmp").replace(runs / "sweep.md")


if __name__ == "__main__":
    main()
