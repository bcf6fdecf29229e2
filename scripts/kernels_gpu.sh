#!/usr/bin/env bash
# On a GPU machine: build the kernels standalone, run the CPU self-test, the GPU unit test, the
# benchmark against cuBLAS fp16 and the PyTorch int4pack peer. Results go to ${OUT:-results/kernels}:
#   run.log (everything printed), build.log (with ptxas register/spill reports), sass.txt (SASS of
#   the M<=8 aligned kernel), kernels.csv, kernels.json, latency.yaml, int4pack_peer.csv.
# Usage: bash scripts/kernels_gpu.sh [extra kernels_bench args, e.g. --quick]
# Exit code: 0 when every test and correctness check passed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/results/kernels}
BUILD=${BUILD:-/tmp/kb}
ARCH=${CUDA_ARCH:-90a-real}
mkdir -p "$OUT"
LOG="$OUT/run.log"
: > "$LOG"
say() { echo "$@" | tee -a "$LOG"; }
rc=0

say "== $(date -u +%Y-%m-%dT%H:%M:%SZ) $(hostname)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit \
  --format=csv 2>&1 | tee -a "$LOG"
nvcc --version 2>&1 | tail -2 | tee -a "$LOG"

say "== build (cmake -S kernels -B $BUILD -G Ninja -DCMAKE_CUDA_ARCHITECTURES=$ARCH)"
GEN=()
command -v ninja > /dev/null && GEN=(-G Ninja)
if ! cmake -S "$ROOT/kernels" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DHAWQ_KERNELS_PTXAS_VERBOSE=ON > "$OUT/build.log" 2>&1 ||
   ! cmake --build "$BUILD" -j "$(nproc)" >> "$OUT/build.log" 2>&1; then
  grep -E "error|Error" -A3 "$OUT/build.log" | head -80
  say "BUILD FAILED"
  exit 1
fi
grep -E "registers|spill" "$OUT/build.log" | sed -E 's/ptxas info *: //' | sort | uniq -c | tail -12 | tee -a "$LOG"
if command -v cuobjdump > /dev/null; then
  obj=$(find "$BUILD" -name 'gemm.cu.o' | head -1)
  cuobjdump -sass "$obj" 2>/dev/null |
    awk '/Function : /{p = ($0 ~ /mixed_gemm_kernelILi1ELi4ELb1E/)} p' > "$OUT/sass.txt"
  say "SASS of the M<=8 aligned kernel: $(wc -l < "$OUT/sass.txt") lines; instruction mix:"
  grep -oE '^ +/\*[0-9a-f]+\*/ +[A-Z][A-Z0-9_.]+' "$OUT/sass.txt" | awk '{print $2}' | sed 's/\..*//' |
    sort | uniq -c | sort -rn | head -14 | tr '\n' ' ' | tee -a "$LOG"
  echo | tee -a "$LOG"
fi

say "== kernels_ref_test"
"$BUILD/kernels_ref_test" 2>&1 | tail -2 | tee -a "$LOG"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1

say "== kernels_test"
"$BUILD/kernels_test" 2>&1 | tee -a "$LOG" | grep -E "FAIL|checks|SKIP|device" | head -40
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
  rc=1
  say "== compute-sanitizer memcheck (kernels_test --quick)"
  compute-sanitizer --tool memcheck --print-limit 10 "$BUILD/kernels_test" --quick 2>&1 | tail -40 | tee -a "$LOG"
fi

# The end-to-end decode step also runs the HAWQ-V3 allocations computed from the committed latency
# table (bench/kernels/llama7b_allocation): configs/hardware/h100_llama7b_*.txt.
ALLOC=()
for f in "$ROOT"/configs/hardware/h100_llama7b_*.txt; do [ -f "$f" ] && ALLOC+=(--allocation "$f"); done
say "== kernels_bench ${ALLOC[*]} $*"
"$BUILD/kernels_bench" --out "$OUT" "${ALLOC[@]}" "$@" 2>&1 | tee -a "$LOG"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1

say "== int4pack peer"
QUICK=()
for a in "$@"; do [ "$a" = "--quick" ] && QUICK=(--quick); done
PYTHONUNBUFFERED=1 python3 "$ROOT/bench/kernels/int4pack_peer.py" --out "$OUT" "${QUICK[@]}" 2>&1 | tee -a "$LOG"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1

say "== done rc=$rc"
exit $rc
