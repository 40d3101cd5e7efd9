"""Turns the benchmarks' RESULT lines into markdown tables.

Every benchmark ends with one line `RESULT key=value ...` (`ssl-bench step`, official_step.py,
pytorch_preset_step.py); compare.sh and scaling.sh append `round=`, `cycles=` (or `axis=`,
`point=`) and collect the lines in a raw file.

    python3 tools/benchmark/summarise.py compare runs/bench/compare-raw.txt [--output runs/bench/compare.md]
    python3 tools/benchmark/summarise.py scaling runs/bench/scaling-raw.txt [--output runs/bench/scaling.md]
    python3 tools/benchmark/summarise.py mpi-result --metrics runs/bench/mpi-2/metrics.jsonl --ranks 2 \\
        --batch 64 [--skip 2] [--peak-kb-files F ...]     # prints one RESULT line from an ssl-run folder

compare: one table per workload, a row per side (swift, swift-bf16, pytorch-fp32, pytorch-bf16): the number of
measurements, the median and the best of images/s and of peak memory (best = highest rate, lowest
memory), the median cycles when perf could count them, and the ratios of medians Swift/side
(images/s: above 1 = SwiftSSL faster; memory: below 1 = SwiftSSL smaller).
scaling: one table per axis, a row per point, ms/step and peak MB of each side and the ratio of
step times side/Swift (above 1 = SwiftSSL faster), median when a point was measured more than once.
"""
import argparse
import json
import statistics
import sys
from collections import OrderedDict, defaultdict

SIDES = ["swift", "swift-bf16", "pytorch-fp32", "pytorch-bf16"]
SIDE_NAMES = {
    "swift": "SwiftSSL", "swift-bf16": "SwiftSSL bf16", "pytorch-fp32": "PyTorch fp32", "pytorch-bf16": "PyTorch bf16 autocast",
}


def parse(path):
    """The RESULT lines of `path` as dicts, in file order."""
    rows = []
    with open(path) as lines:
        for line in lines:
            if not line.startswith("RESULT "):
                continue
            fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            rows.append(fields)
    return rows


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def values(rows, key):
    return [v for v in (number(r.get(key)) for r in rows) if v is not None]


def median(xs):
    return statistics.median(xs) if xs else None


def show(x, digits=2):
    if x is None:
        return "–"
    if abs(x) >= 1e6:
        return f"{x:.3e}"
    return f"{x:,.{digits}f}"


def ordered_sides(present):
    return [s for s in SIDES if s in present] + sorted(s for s in present if s not in SIDES)


def compare_tables(rows):
    by_workload = OrderedDict()
    for row in rows:
        by_workload.setdefault(row.get("workload", "?"), defaultdict(list))[row.get("side", "?")].append(row)
    out = []
    for workload, sides in by_workload.items():
        first = next(iter(sides.values()))[0]
        out.append(f"### {workload} (batch {first.get('batch', '?')})\n")
        out.append("| side | threads | n | images/s median | images/s best | peak MB median | peak MB best | cycles median "
                   "| Swift/side images/s (medians) | Swift/side peak MB (medians) |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        swift = sides.get("swift", [])
        swift_rate, swift_memory = median(values(swift, "images_per_second")), median(values(swift, "peak_mb"))
        for side in ordered_sides(sides):
            measured = sides[side]
            rate, memory = values(measured, "images_per_second"), values(measured, "peak_mb")
            cycles = values(measured, "cycles")
            rate_ratio = memory_ratio = None
            if side != "swift" and swift_rate and median(rate):
                rate_ratio = swift_rate / median(rate)
            if side != "swift" and swift_memory and median(memory):
                memory_ratio = swift_memory / median(memory)
            threads = ",".join(sorted({r.get("threads", "?") for r in measured}))
            out.append(f"| {SIDE_NAMES.get(side, side)} | {threads} | {len(measured)} | {show(median(rate), 3)} | "
                       f"{show(max(rate) if rate else None, 3)} | {show(median(memory), 0)} | "
                       f"{show(min(memory) if memory else None, 0)} | {show(median(cycles), 0)} | "
                       f"{'**' + show(rate_ratio) + '×**' if rate_ratio else ''} | "
                       f"{'**' + show(memory_ratio) + '×**' if memory_ratio else ''} |")
        extras = sorted({f"{k}={v}" for r in sum(sides.values(), []) for k, v in r.items()
                         if k in ("torch", "official", "stubs", "tasks") and v not in ("-", "")})
        if extras:
            out.append(f"\n({', '.join(extras)})")
        out.append("")
    return "\n".join(out)


def scaling_tables(rows, descriptions=None):
    descriptions = descriptions or {}
    by_axis = OrderedDict()
    for row in rows:
        axis = by_axis.setdefault(row.get("axis", row.get("workload", "?")), OrderedDict())
        axis.setdefault(row.get("point", row.get("batch", "?")), defaultdict(list))[row.get("side", "?")].append(row)
    out = []
    for axis, points in by_axis.items():
        sides = ordered_sides({s for p in points.values() for s in p})
        extra = [k for k in ("communication_ms",) if any(k in r for p in points.values() for rs in p.values() for r in rs)]
        out.append(f"### {axis}\n")
        if axis in descriptions:
            out.append(descriptions[axis] + "\n")
        header = ["point"]
        for side in sides:
            header += [f"{SIDE_NAMES.get(side, side)} ms/step", f"{SIDE_NAMES.get(side, side)} peak MB"]
            if side != "swift" and "swift" in sides:
                header.append(f"{SIDE_NAMES.get(side, side)} / SwiftSSL time")
        header += [k.replace("_ms", " ms").replace("_", " ") for k in extra]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        for point, measured in points.items():
            cells = [point]
            swift_ms = median(values(measured.get("swift", []), "ms_per_step"))
            for side in sides:
                ms, memory = median(values(measured.get(side, []), "ms_per_step")), median(values(measured.get(side, []), "peak_mb"))
                failed = side in measured and not values(measured[side], "ms_per_step")
                cells += ["failed" if failed else show(ms, 0), show(memory, 0)]
                if side != "swift" and "swift" in sides:
                    cells.append(show(ms / swift_ms) + "×" if ms and swift_ms else "")
            for key in extra:
                cells.append(show(median(values(measured.get("swift", []), key)), 1))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def mpi_result(arguments):
    """One RESULT line from an ssl-run folder's metrics.jsonl: the mean over the logged steps after
    the first `skip` of the sum of the step's phases (`time/*`, rank 0's clock) and of
    `time/communication`; peak MB the largest of the ranks' peak RSS files (kilobytes, GNU time %M)."""
    steps = []
    with open(arguments.metrics) as lines:
        for line in lines:
            record = json.loads(line)
            phases = {k: v for k, v in record.items() if k.startswith("time/")}
            if phases:
                steps.append((record["step"], phases))
    timed = [phases for step, phases in steps if step >= arguments.skip]
    if not timed:
        sys.exit(f"{arguments.metrics}: no logged step from step {arguments.skip} on (log every step: --log-every 1)")
    seconds = statistics.mean(sum(p.values()) for p in timed)
    communication = statistics.mean(p.get("time/communication", 0.0) for p in timed)
    peaks = []
    for path in arguments.peak_kb_files or []:
        try:
            with open(path) as file:
                peaks += [int(t) for t in file.read().split() if t.isdigit()]
        except OSError:
            pass
    fields = OrderedDict(workload="mpi", side="swift", batch=arguments.batch, ranks=arguments.ranks,
                         images_per_second=f"{arguments.batch / seconds:.3f}", ms_per_step=f"{seconds * 1000:.1f}",
                         communication_ms=f"{communication * 1000:.1f}",
                         peak_mb=f"{max(peaks) * 1024 / 1e6:.1f}" if peaks else "-", steps_averaged=len(timed))
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("compare", "scaling"):
        table = sub.add_parser(name)
        table.add_argument("raw")
        table.add_argument("--output")
        table.add_argument("--title", default="")
        if name == "scaling":
            table.add_argument("--describe", action="append", default=[], metavar="AXIS=TEXT",
                               help="a sentence printed above the axis's table")
    mpi = sub.add_parser("mpi-result")
    mpi.add_argument("--metrics", required=True)
    mpi.add_argument("--ranks", type=int, required=True)
    mpi.add_argument("--batch", type=int, required=True)
    mpi.add_argument("--skip", type=int, default=2, help="logged steps to leave out at the start (warm-up)")
    mpi.add_argument("--peak-kb-files", nargs="*")
    arguments = parser.parse_args()
    if arguments.command == "mpi-result":
        mpi_result(arguments)
        return
    rows = parse(arguments.raw)
    if not rows:
        sys.exit(f"{arguments.raw}: no RESULT lines")
    if arguments.command == "compare":
        text = compare_tables(rows)
    else:
        text = scaling_tables(rows, dict(d.split("=", 1) for d in arguments.describe))
    if arguments.title:
        text = f"{arguments.title}\n\n{text}"
    if arguments.output:
        with open(arguments.output, "w") as file:
            file.write(text)
    print(text)


if __name__ == "__main__":
    main()
