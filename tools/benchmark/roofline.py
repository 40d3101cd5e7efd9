#!/usr/bin/env python3
"""The fp32 ViT forward + backward's products against the sgemm roofline (BENCHMARKS.md).

Each round runs `ssl-bench vit` of every given build (the step's product GFLOP/s), then
`ssl-bench gemm` of the first (each of the nine layer products alone), alternating builds
and measurements. A round's roofline is the products' FLOPs over their time alone, each
product at the faster library: total FLOPs / sum(FLOPs_i / rate_i). Prints each round, then
per build the medians and the ratio of medians.

    python3 tools/benchmark/roofline.py [--bench .build/release/ssl-bench ...] [--rounds 5] \\
        [-- --patch 4 --image 28 --batch 64]
"""
import argparse
import re
import statistics
import subprocess


def roofline(bench: str, workload: list[str]) -> float:
    """GFLOP/s of the nine layer products run alone, weighted by their FLOPs."""
    output = subprocess.run([bench, "gemm", *workload], check=True, capture_output=True, text=True).stdout
    flops_over_rate, total_flops = 0.0, 0.0
    for line in output.splitlines():
        shape = re.search(r"(\d+)x(\d+)x(\d+): ([\d.]+), ([\d.]+)", line)
        if not shape:
            continue
        m, n, k = (int(shape.group(i)) for i in (1, 2, 3))
        flops = 2.0 * m * n * k
        total_flops += flops
        flops_over_rate += flops / max(float(shape.group(4)), float(shape.group(5)))
    return total_flops / flops_over_rate


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
    rooflines: list[float] = []
    for round_index in range(arguments.rounds):
        for bench in benches:
            rates[bench].append(step_rate(bench, arguments.workload, arguments.steps))
        rooflines.append(roofline(benches[0], arguments.workload))
        line = ", ".join(f"{bench} {rates[bench][-1]:.1f} ({100 * rates[bench][-1] / rooflines[-1]:.1f} %)"
                         for bench in benches)
        print(f"round {round_index + 1}: roofline {rooflines[-1]:.1f} GFLOP/s; {line}", flush=True)
    for bench in benches:
        ratios = [rate / bound for rate, bound in zip(rates[bench], rooflines)]
        print(f"{bench}: step median {statistics.median(rates[bench]):.1f} GFLOP/s, roofline median "
              f"{statistics.median(rooflines):.1f}, ratio of medians "
              f"{100 * statistics.median(rates[bench]) / statistics.median(rooflines):.1f} % "
              f"(per round {100 * min(ratios):.1f}–{100 * max(ratios):.1f} %, median {100 * statistics.median(ratios):.1f} %)")


if __name__ == "__main__":
    main()
