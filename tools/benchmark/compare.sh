#!/usr/bin/env bash
# Measures SwiftSSL (ssl-bench, release) and PyTorch on the same work in one session,
# alternating the two so that both see the same machine state. Prints one line per
# measurement; BENCHMARKS.md records the results.
#
#   pip install -r tools/reference/requirements.txt
#   tools/benchmark/compare.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-2}"
swift build -c release --product ssl-bench >/dev/null
bench=.build/release/ssl-bench
for round in $(seq 1 "$rounds"); do
  echo "== round $round"
  $bench vit --patch 16 --image 224 --batch 16
  python3 tools/benchmark/pytorch_vit.py --patch 16 --image 224 --batch 16
  $bench vit --patch 4 --image 32 --batch 64
  python3 tools/benchmark/pytorch_vit.py --patch 4 --image 32 --batch 64
  $bench step --preset dino
  python3 tools/benchmark/pytorch_step.py --method dino --batch 4 --steps 3
  $bench step --preset selfpatch-original
  python3 tools/benchmark/pytorch_step.py --method selfpatch --batch 4 --steps 3
  $bench loader
  python3 tools/benchmark/pytorch_loader.py
done
$bench gemm --patch 16 --image 224 --batch 16
