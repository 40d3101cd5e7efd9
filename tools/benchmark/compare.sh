#!/usr/bin/env bash
# SwiftSSL against PyTorch on the same training steps, measured so that a noisy machine shows up
# as spread rather than as a wrong ratio: every round measures every workload on every side, one
# process per measurement, SwiftSSL first in odd rounds and last in even rounds; the table gives
# the median and the best of the rounds and the ratio of the medians.
#
#   python3 tools/benchmark/official.py fetch     # once: the official DINO / SelfPatch code (pinned)
#   tools/benchmark/compare.sh [rounds]           # default 5
#
# Workloads (WORKLOADS, default all three):
#   dino                ssl-bench step --preset dino --batch 4          vs official_step.py --method dino
#                       (ViT-Tiny/16, 2x224 + 8x96, K 65536: facebookresearch/dino's modules and step)
#   selfpatch-original  ssl-bench step --preset selfpatch-original      vs official_step.py --method selfpatch
#                       (same sizes, K 65536 / K_p 4096, ca_head aggregation: alinlab/SelfPatch's)
#   fashion-mnist       ssl-bench step --preset fashion-mnist --batch 64 vs pytorch_preset_step.py
#                       (the main job's step: ViT 192x3 p7, 2x28 + 4x21, dino + selfpatch + koleo)
# Sides: swift, swift-bf16 (ssl-bench step --precision bf16: bfloat16 operands in the step's
# products), pytorch-fp32, pytorch-bf16 (torch.autocast("cpu", torch.bfloat16) around forward
# and loss); PyTorch on 2 threads, SwiftSSL on its default (all cores).
#
# Output: runs/bench/compare-raw.txt (one RESULT line per measurement, with round= and cycles=),
# runs/bench/compare-log.txt (everything the benchmarks printed), runs/bench/compare.md (the
# tables, with the machine, the load average before and after, and the versions).
# cycles= is `perf stat -e cycles` of the whole process (start-up, warm-up and timed steps: a
# per-process count that other load does not inflate) where the machine lets perf count cycles,
# "-" otherwise (virtual machines often do not).
#
# Environment: STEPS (timed steps per measurement, 3), TORCH_THREADS (2), PRECISIONS ("fp32 bf16":
# PyTorch's sides), SWIFT_PRECISIONS ("fp32 bf16": SwiftSSL's sides),
# WORKLOADS, DINO_BATCH (4), PRESET_BATCH (64), SMOKE=1 (1 timed step, batches 2 and 8: checks
# the script, measures nothing useful).
#
# Time on a quiet 2-core machine, estimated from BENCHMARKS.md's step times (each measurement is a
# process: start-up, model, one warm-up and 3 timed steps; PyTorch fp32 taken at 1.3x SwiftSSL's
# step time plus 3-4 s to import torch and build the model, bf16 autocast at 2x fp32 since these
# processors have no AMX): per round about 30 s for dino, 45 s for selfpatch-original, 30 s for
# fashion-mnist, so about 2 minutes a round and 10 minutes for 5 rounds, plus the release build
# (about 3 minutes the first time).
#
# The ViT forward + backward and loader rows of BENCHMARKS.md are measured by hand:
# `ssl-bench vit --patch 16 --image 224 --batch 16` against `python3 tools/benchmark/pytorch_vit.py
# --patch 16 --image 224 --batch 16` (timm), and `ssl-bench loader` against pytorch_loader.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-5}"
steps="${STEPS:-3}"
torch_threads="${TORCH_THREADS:-2}"
precisions="${PRECISIONS:-fp32 bf16}"
swift_precisions="${SWIFT_PRECISIONS:-fp32 bf16}"
workloads="${WORKLOADS:-dino selfpatch-original fashion-mnist}"
dino_batch="${DINO_BATCH:-4}"
preset_batch="${PRESET_BATCH:-64}"
if [ "${SMOKE:-0}" = 1 ]; then steps=1; dino_batch=2; preset_batch=8; fi
if [ "$rounds" -lt 5 ]; then echo "note: $rounds round(s); medians need at least 5 to mean much" >&2; fi

source tools/benchmark/measure.sh
prepare_measurements compare

# One side of one workload.
run_side() {
  local round="$1" workload="$2" side="$3" precision="${3#pytorch-}"
  local torch_common=(--precision "$precision" --steps "$steps" --threads "$torch_threads" --workload "$workload")
  local fields="round=$round"
  local swift_precision=fp32
  if [ "$side" = swift-bf16 ]; then swift_precision=bf16; side=swift; fi
  local swift_common=(--steps "$steps" --workload "$workload" --precision "$swift_precision")
  case "$workload/$side" in
    dino/swift) measure "$raw" "$log" "$fields" $bench step --preset dino --batch "$dino_batch" "${swift_common[@]}" ;;
    dino/pytorch-*) measure "$raw" "$log" "$fields" "${python[@]}" tools/benchmark/official_step.py --method dino --batch "$dino_batch" "${torch_common[@]}" ;;
    selfpatch-original/swift) measure "$raw" "$log" "$fields" $bench step --preset selfpatch-original --batch "$dino_batch" "${swift_common[@]}" ;;
    selfpatch-original/pytorch-*) measure "$raw" "$log" "$fields" "${python[@]}" tools/benchmark/official_step.py --method selfpatch --batch "$dino_batch" "${torch_common[@]}" ;;
    fashion-mnist/swift) measure "$raw" "$log" "$fields" $bench step --preset fashion-mnist --batch "$preset_batch" "${swift_common[@]}" ;;
    fashion-mnist/pytorch-*) measure "$raw" "$log" "$fields" "${python[@]}" tools/benchmark/pytorch_preset_step.py --batch "$preset_batch" "${torch_common[@]}" ;;
    *) echo "unknown workload '$workload'" >&2; exit 2 ;;
  esac
}

sides=()
for precision in $swift_precisions; do sides+=("$([ "$precision" = fp32 ] && echo swift || echo "swift-$precision")"); done
for precision in $precisions; do sides+=("pytorch-$precision"); done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
for round in $(seq 1 "$rounds"); do
  order=("${sides[@]}")
  if [ $((round % 2)) = 0 ]; then
    order=()
    for ((i = ${#sides[@]} - 1; i >= 0; i--)); do order+=("${sides[$i]}"); done
  fi
  for workload in $workloads; do
    for side in "${order[@]}"; do run_side "$round" "$workload" "$side"; done
  done
done
minutes=$(( ($(date +%s) - started + 30) / 60 ))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

torch_version=$("${python[@]}" -c "import torch; print(torch.__version__)")
title="## SwiftSSL vs PyTorch, $(date -u +%Y-%m-%d) ($rounds rounds, $steps timed steps per measurement, $minutes min)

$(machine_line); load average before $load_before, after $load_after; torch $torch_version on $torch_threads threads;
ssl-bench $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources || echo '+changes'); perf cycles: $([ "$perf_works" = 1 ] && echo counted || echo 'not available (-)')."
"${python[@]}" tools/benchmark/summarise.py compare "$raw" --output "$out/compare.md" --title "$title"
if grep -q '^FAILED' "$log"; then echo "Some measurements failed; see $log." >&2; exit 1; fi
