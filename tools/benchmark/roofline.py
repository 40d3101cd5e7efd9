#!/usr/bin/env python3
"""The fp32 ViT forward + backward's products against the sgemm roofline (BENCHMARKS.md).

Each round runs `ssl-bench vit` of every given build (the step's product GFLOP/s), then
`ssl-bench gemm` of the first (each product of the step outside attention alone), alternating
builds and measurements. A round's roofline is those products' FLOPs over their time alone, each
product at the faster library and counted as often as a step runs it: total FLOPs /
sum(FLOPs_i / rate_i). Two rooflines are reported: over every product outside attention, and
over the nine products of the qkv, fc1 and fc2 layers alone (the figure of the eleventh session,
which left out proj and the patch embedding). Prints each round, then per build the medians and
the ratios of medians.

    python3 tools/benchmark/roofline.py [--bench .build/release/ssl-bench ...] [--rounds 5] \\
        [-- --patch 4 --image 28 --batch 64]
"""
import argparse
import re
import statistics
import subprocess


NINE_LAYER_PRODUCTS = ("qkv ", "fc1 ", "fc2 ")


def rooflines(bench: str, workload: list[str]) -> tuple[float, float]:
    """GFLOP/s of the step's products outside attention run alone, weighted by their FLOPs per
    step: over all of them, and over the nine of the qkv, fc1 and fc2 layers."""
    output = subprocess.run([bench, "gemm", *workload], check=True, capture_output=True, text=True).stdout
    sums = {"all": [0.0, 0.0], "nine": [0.0, 0.0]}
    for line in output.splitlines():
        shape = re.search(r"(\d+)x(\d+)x(\d+) x(\d+): ([\d.]+), ([\d.]+)", line)
        if not shape:
            continue
        m, n, k, times = (int(shape.group(i)) for i in (1, 2, 3, 4))
        flops = 2.0 * m * n * k * times
        seconds = flops / max(float(shape.group(5)), float(shape.group(6)))
        for name, include in (("all", True), ("nine", line.strip().startswith(NINE_LAYER_PRODUCTS))):
            if include:
                sums[name][0] += flops
                sums[name][1] += seconds
    return sums["all"][0] / sums["all"][1], sums["nine"][0] / sums["nine"][1]


def step_rate(bench: str, workload: list[str], steps: int) -> float:
    """The ViT step's product GFLOP/s."""
    output = subprocess.run([bench, "vit", *workload, "--steps", str(steps)], check=True, capture_output=True,
                            text=True).stdout
    return float(re.search(r"([\d.]+) GFLOP/s", output).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", action="append", help="an ssl-bench executable (repeat to compare builds)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (at least 5 for a figure)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps of each vit measurement")
    parser.add_argument("workload", nargs="*", default=["--patch", "4", "--image", "28", "--batch", "64"],
                        help="ssl-bench workload options (after --)")
    arguments = parser.parse_args()
    benches = arguments.bench or [".build/release/ssl-bench"]

    rates: dict[str, list[float]] = {bench: [] for bench in benches}
    bounds: dict[str, list[float]] = {"every product": [], "nine products": []}
    for round_index in range(arguments.rounds):
        for bench in benches:
            rates[bench].append(step_rate(bench, arguments.workload, arguments.steps))
        every, nine = rooflines(benches[0], arguments.workload)
        bounds["every product"].append(every)
        bounds["nine products"].append(nine)
        line = ", ".join(f"{bench} {rates[bench][-1]:.1f} ({100 * rates[bench][-1] / every:.1f} %, "
                         f"{100 * rates[bench][-1] / nine:.1f} %)" for bench in benches)
        print(f"round {round_index + 1}: rooflines {every:.1f} (every product) and {nine:.1f} (nine) GFLOP/s; {line}",
              flush=True)
    for bench in benches:
        step = statistics.median(rates[bench])
        for name, values in bounds.items():
            ratios = [rate / bound for rate, bound in zip(rates[bench], values)]
            print(f"{bench}: step median {step:.1f} GFLOP/s, roofline over {name} median "
                  f"{statistics.median(values):.1f}, ratio of medians {100 * step / statistics.median(values):.1f} % "
                  f"(per round {100 * min(ratios):.1f}–{100 * max(ratios):.1f} %, median {100 * statistics.median(ratios):.1f} %)")


if __name__ == "__main__":
    main()
