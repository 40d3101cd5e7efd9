#!/usr/bin/env bash
# How a training step's time and peak memory grow with the work, SwiftSSL beside PyTorch where a
# PyTorch model of the same step exists. One process per measurement: one warm-up step, then 3
# timed steps (STEPS); each point is measured once (this is a shape, not a ratio: compare.sh
# gives the ratios with rounds).
#
#   python3 tools/benchmark/official.py fetch     # once: the official DINO code (pinned)
#   tools/benchmark/scaling.sh                    # writes runs/bench/scaling.md
#
# Axes (AXES, default all five):
#   batch-28px   fashion-mnist preset (ViT 192x3 p7, 2x28 + 4x21, dino + selfpatch + koleo), batch
#                16, 32, 64, 128, 256; PyTorch: pytorch_preset_step.py
#   batch-224px  dino preset at ViT-Tiny/16 (2x224 + 8x96, K 65536), batch 4, 8, 16, 32; PyTorch:
#                the official DINO step (official_step.py --method dino)
#   tokens       dino preset at ViT-Tiny/16, batch 4, GLOBAL CROPS ONLY (2 crops of 112, 224, 448
#                px = 49, 196, 784 patches; no local crops, so that the sequence length alone
#                changes; the position table is laid out for the crop size, as ssl-run
#                --global-size does); PyTorch: the official DINO step with the same crops
#   tasks        fashion-mnist preset, batch 64, --tasks dino / dino,selfpatch /
#                dino,selfpatch,moco, and the preset's own dino,selfpatch,koleo for reference
#                (ssl-run's rules: a task of the preset keeps its weight and options, moco takes
#                its defaults: 4096-wide projector and predictor, 256 out); PyTorch:
#                pytorch_preset_step.py --tasks
#   mpi          fashion-mnist preset, --batch-size 64: `ssl-run` as one process (both cores) and
#                under `mpirun -np 2` (one core each, 32 images per process), 5 steps with
#                --log-every 1; step time = the sum of the step's time/* phases in metrics.jsonl
#                (rank 0), mean of steps 2-4, as BENCHMARKS.md's MPI section; communication =
#                time/communication; peak = the largest rank's peak RSS (GNU time). Data
#                loading runs beside the step and is not in its time. No PyTorch peer.
# PyTorch runs fp32 and bf16 autocast (PRECISIONS) on 2 threads (TORCH_THREADS).
#
# Time on a quiet 2-core machine, estimated from BENCHMARKS.md's step times (about 1.1 s per
# fashion-mnist step of 64 images and 1.0 s per dino step of 4 images for SwiftSSL; PyTorch fp32
# taken as 1.3-1.5x, bf16 as 2x): batch-28px 3.5 min, batch-224px 5 min, tokens 1.5 min, tasks
# 2 min, mpi 0.5 min: about 13 minutes, 9 with PRECISIONS=fp32; plus the release builds of
# ssl-bench and ssl-run (about 3 minutes the first time).
#
# Environment: STEPS (3), TORCH_THREADS (2), PRECISIONS ("fp32 bf16"), AXES, SMOKE=1 (1 timed
# step, the smallest point of each axis only, 16 images for tasks and mpi, mpi with 3 steps:
# checks the script, measures nothing useful).
set -euo pipefail
cd "$(dirname "$0")/../.."
steps="${STEPS:-3}"
torch_threads="${TORCH_THREADS:-2}"
precisions="${PRECISIONS:-fp32 bf16}"
axes="${AXES:-batch-28px batch-224px tokens tasks mpi}"
batches_28=(16 32 64 128 256)
batches_224=(4 8 16 32)
sizes=(112 224 448)
task_mixes=(dino dino,selfpatch dino,selfpatch,moco dino,selfpatch,koleo)
task_batch=64
mpi_steps=5
mpi_batch=64
if [ "${SMOKE:-0}" = 1 ]; then
  steps=1; batches_28=(16); batches_224=(4); sizes=(112); task_mixes=(dino); task_batch=16; mpi_steps=3; mpi_batch=16
fi

source tools/benchmark/measure.sh
prepare_measurements scaling
case " $axes " in *" mpi "*) swift build -c release --product ssl-run >/dev/null ;; esac

# point AXIS POINT SWIFT-COMMAND -- PYTORCH-COMMAND (without --precision; empty: no peer)
point() {
  local axis="$1" at="$2"
  shift 2
  local swift_command=() torch_command=()
  while [ "$1" != "--" ]; do swift_command+=("$1"); shift; done
  shift
  torch_command=("$@")
  measure "$raw" "$log" "axis=$axis point=$at" "${swift_command[@]}"
  if [ ${#torch_command[@]} -gt 0 ]; then
    for precision in $precisions; do
      measure "$raw" "$log" "axis=$axis point=$at" "${torch_command[@]}" --precision "$precision"
    done
  fi
}

torch_common=(--steps "$steps" --threads "$torch_threads")
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for axis in $axes; do
  case "$axis" in
    batch-28px)
      for batch in "${batches_28[@]}"; do
        point "$axis" "$batch" $bench step --preset fashion-mnist --batch "$batch" --steps "$steps" -- \
          "${python[@]}" tools/benchmark/pytorch_preset_step.py --batch "$batch" "${torch_common[@]}"
      done ;;
    batch-224px)
      for batch in "${batches_224[@]}"; do
        point "$axis" "$batch" $bench step --preset dino --batch "$batch" --steps "$steps" -- \
          "${python[@]}" tools/benchmark/official_step.py --method dino --batch "$batch" "${torch_common[@]}"
      done ;;
    tokens)
      for size in "${sizes[@]}"; do
        point "$axis" "${size}px" $bench step --preset dino --batch 4 --global-size "$size" --local-crops 0 --steps "$steps" -- \
          "${python[@]}" tools/benchmark/official_step.py --method dino --batch 4 --global-size "$size" --local-crops 0 "${torch_common[@]}"
      done ;;
    tasks)
      for mix in "${task_mixes[@]}"; do
        point "$axis" "$mix" $bench step --preset fashion-mnist --batch "$task_batch" --tasks "$mix" --steps "$steps" -- \
          "${python[@]}" tools/benchmark/pytorch_preset_step.py --batch "$task_batch" --tasks "$mix" "${torch_common[@]}"
      done ;;
    mpi)
      for ranks in 1 2; do
        folder="$out/mpi-$ranks"
        rm -rf "$folder" && mkdir -p "$folder"  # an existing checkpoint would resume
        run=(.build/release/ssl-run --preset fashion-mnist --batch-size "$mpi_batch" --subset $((mpi_batch * 10))
             --epochs 1 --max-steps "$mpi_steps" --log-every 1 --eval-every 0 --disable-tensorboard --output "$folder")
        # Each rank writes its peak RSS (kB) to peak.<rank>.
        peak='exec /usr/bin/time -f %M -o "$0.${OMPI_COMM_WORLD_RANK:-0}" "$@"'
        echo "== axis=mpi point=$ranks: ${run[*]}" | tee -a "$log"
        status=0
        if [ "$ranks" = 1 ]; then
          sh -c "$peak" "$folder/peak" "${run[@]}" >>"$log" 2>&1 || status=$?
        else
          mpirun --allow-run-as-root --oversubscribe -np "$ranks" sh -c "$peak" "$folder/peak" "${run[@]}" >>"$log" 2>&1 || status=$?
        fi
        if [ "$status" = 0 ] && [ -f "$folder/metrics.jsonl" ]; then
          "${python[@]}" tools/benchmark/summarise.py mpi-result --metrics "$folder/metrics.jsonl" --ranks "$ranks" \
            --batch "$mpi_batch" --skip 2 --peak-kb-files "$folder"/peak.* | sed "s/\$/ axis=mpi point=$ranks cycles=-/" \
            | tee -a "$log" >>"$raw"
        else
          echo "FAILED axis=mpi point=$ranks status=$status" | tee -a "$log" >&2
        fi
      done ;;
    *) echo "unknown axis '$axis'" >&2; exit 2 ;;
  esac
done
minutes=$(( ($(date +%s) - started + 30) / 60 ))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

torch_version=$("${python[@]}" -c "import torch; print(torch.__version__)")
title="## Cost scaling, $(date -u +%Y-%m-%d) ($steps timed steps per point after one warm-up, one measurement per point, $minutes min)

$(machine_line); load average before $load_before, after $load_after; torch $torch_version on $torch_threads threads;
$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources || echo '+changes'). Step time in ms (lower is better), peak
resident memory in MB over the timed steps; the ratio columns are PyTorch's time over SwiftSSL's (above 1: SwiftSSL faster)."
"${python[@]}" tools/benchmark/summarise.py scaling "$raw" --output "$out/scaling.md" --title "$title" \
  --describe "batch-28px=fashion-mnist preset (ViT 192x3 p7, 2x28 + 4x21 crops; dino + selfpatch K 128 + koleo 0.5; DINO K 256), by images per step. PyTorch: pytorch_preset_step.py." \
  --describe "batch-224px=dino preset at ViT-Tiny/16 (2x224 + 8x96 crops, K 65536), by images per step. PyTorch: the official DINO step (facebookresearch/dino, official_step.py)." \
  --describe "tokens=dino preset at ViT-Tiny/16, 4 images, global crops only (2 per image, no local crops), by crop side: 49, 196, 784 patches per crop. PyTorch: the official DINO step with the same crops." \
  --describe "tasks=fashion-mnist preset, $task_batch images, by task mix (--tasks; the preset itself is dino,selfpatch,koleo). PyTorch: pytorch_preset_step.py --tasks." \
  --describe "mpi=fashion-mnist preset, --batch-size $mpi_batch over all processes: ssl-run as one process on both cores (point 1) or mpirun -np 2, one core each (point 2); ms/step = sum of the step's phases (rank 0), mean of steps 2-$((mpi_steps - 1)); communication = the gradient all-reduce (time/communication); peak MB = the largest rank's peak RSS over the whole process (data loading included). No PyTorch peer."
if grep -q '^FAILED' "$log"; then echo "Some measurements failed; see $log." >&2; exit 1; fi
