# Shared by compare.sh and scaling.sh (sourced, not run): the Python command, the official
# checkouts, perf, and `measure`, which runs one benchmark process and keeps its RESULT line.

# Debian's OpenBLAS (numpy) does not know recent processors and falls back to slow generic
# kernels; ssl-bench and ssl-run pick theirs themselves, so only Python gets the variable.
python_environment=()
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then
  python_environment=(OPENBLAS_CORETYPE=SkylakeX)
fi
python=(env "${python_environment[@]}" python3)

# require_torch: torch importable, official checkouts at their pins (fetched from GitHub if not).
require_torch() {
  "${python[@]}" -c "import torch" 2>/dev/null || {
    echo "torch is not installed: pip install -r tools/reference/requirements.txt" >&2
    exit 1
  }
  if ! "${python[@]}" tools/benchmark/official.py check 2>/dev/null; then
    echo "Fetching the official DINO and SelfPatch code at the pinned commits..." >&2
    "${python[@]}" tools/benchmark/official.py fetch
  fi
}

# prepare_measurements NAME: empties runs/bench/NAME-raw.txt and NAME-log.txt (as $raw and $log),
# checks torch and the official checkouts, and builds ssl-bench (as $bench).
prepare_measurements() {
  out=runs/bench
  mkdir -p "$out"
  raw="$out/$1-raw.txt"
  log="$out/$1-log.txt"
  : > "$raw"
  : > "$log"
  require_torch
  swift build -c release --product ssl-bench >/dev/null
  bench=.build/release/ssl-bench
}

# perf_works=1 when `perf stat -e cycles` counts cycles here (often not in virtual machines).
perf_works=0
if perf stat -x, -e cycles -o /dev/stdout true 2>/dev/null | grep -Eq '^[0-9]+,'; then perf_works=1; fi

# measure RAW LOG "EXTRA FIELDS" command...: runs the command (under perf when it works), shows
# and logs its output, and appends its last RESULT line plus EXTRA FIELDS and cycles=<n|-> to RAW;
# a failure is logged as a FAILED line (and returns 0, so that the other measurements go on).
measure() {
  local raw="$1" log="$2" extra="$3"
  shift 3
  local output perf_file cycles=- status=0 result
  output=$(mktemp)
  perf_file=$(mktemp)
  echo "== $extra: $*" | tee -a "$log"
  if [ "$perf_works" = 1 ]; then
    perf stat -x, -e cycles -o "$perf_file" -- "$@" >"$output" 2>&1 || status=$?
    # Hybrid processors report one line per core type (cpu_core/cycles/, cpu_atom/cycles/): summed.
    cycles=$(awk -F, '$3 ~ /cycles/ && $1 ~ /^[0-9]+$/ {sum += $1; seen = 1} END {if (seen) printf "%.0f\n", sum; else print "-"}' "$perf_file")
  else
    "$@" >"$output" 2>&1 || status=$?
  fi
  grep -v '^RESULT ' "$output" | tee -a "$log" | grep -Ev 'Warning|warn\(|WeightNorm.apply' || true
  result=$(grep '^RESULT ' "$output" | tail -1 || true)
  if [ "$status" != 0 ] || [ -z "$result" ]; then
    echo "FAILED $extra status=$status" | tee -a "$log" >&2
  else
    echo "$result $extra cycles=$cycles" | tee -a "$log" >>"$raw"
  fi
  rm -f "$output" "$perf_file"
}

# machine_line: processor, cores, load average now.
machine_line() {
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
}
