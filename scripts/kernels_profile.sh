#!/usr/bin/env bash
# On a GPU machine: the diagnostics behind docs/KERNELS.md "Where the time of a small GEMV goes".
#   1. mma_rate: issue rate of mma.sync m16n8k16 (f16 -> f32) per SM sub-partition;
#   2. Nsight Compute on the default M = 1 GEMV of an N x K uniform 4-bit matrix (gemv_profile):
#      details page, warp-stall samples per instruction (summarised by scripts/ncu_stalls.py);
#   3. the scoreboards of the default GEMV's global loads in its SASS (scripts/sass_scoreboards.py);
#   4. kernels_bench --read-patterns: plain reads of the same bytes in the GEMV's access pattern
#      (register ring and cp.async ring, 2..12 units in flight per warp), beside the kernel and the
#      grid-stride read floor, for 11008x4096 and 28672x8192.
# STEPS (default "mma ncu sass patterns") picks the steps.
# Results go to ${OUT:-results/kernels_profile}: build.log (with ncu's own output), mma_rate.txt,
# ncu_details.txt, ncu_sass.csv, ncu_stalls.txt, sass_scoreboards.txt, read_patterns.txt. ncu needs hardware counters
# (it runs with --clock-control none: the clocks are left as they are).
# Usage: bash scripts/kernels_profile.sh [N K]
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/results/kernels_profile}
BUILD=${BUILD:-/tmp/kb_profile}
N=${1:-11008}
K=${2:-4096}
STEPS=" ${STEPS:-mma ncu sass patterns} "
mkdir -p "$OUT"
rc=0
echo "== build (kernels with -lineinfo into $BUILD)"
GEN=()
command -v ninja > /dev/null && GEN=(-G Ninja)
if ! cmake -S "$ROOT/kernels" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90a-real}" -DCMAKE_CUDA_FLAGS=-lineinfo > "$OUT/build.log" 2>&1 ||
   ! cmake --build "$BUILD" -j "$(nproc)" --target mma_rate gemv_profile kernels_bench >> "$OUT/build.log" 2>&1; then
  tail -30 "$OUT/build.log"
  echo "BUILD FAILED"
  exit 1
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader

if [[ $STEPS == *" mma "* ]]; then
  echo "== mma_rate"
  "$BUILD/mma_rate" | tee "$OUT/mma_rate.txt" || rc=1
fi

if [[ $STEPS == *" ncu "* ]]; then
  echo "== Nsight Compute: default M = 1 GEMV, ${N}x${K} uniform 4-bit"
  REP=$(mktemp -d)/gemv
  if ncu --clock-control none --kernel-name regex:gemv_sk --launch-skip 4 --launch-count 1 --set full \
         --import-source yes --warp-sampling-interval 0 -o "$REP" "$BUILD/gemv_profile" "$N" "$K" >> "$OUT/build.log" 2>&1; then
    ncu --import "$REP.ncu-rep" --page details > "$OUT/ncu_details.txt" 2>&1
    ncu --import "$REP.ncu-rep" --page source --csv --print-source sass > "$OUT/ncu_sass.csv" 2>&1
    grep -E "^ +(Duration|DRAM Throughput|Registers Per Thread|Achieved Occupancy|Active Warps Per Scheduler|Eligible Warps Per Scheduler|Issued Warp Per Scheduler|No Eligible|Warp Cycles Per Issued Instruction) " \
      "$OUT/ncu_details.txt"
    python3 "$ROOT/scripts/ncu_stalls.py" "$OUT/ncu_sass.csv" 12 | tee "$OUT/ncu_stalls.txt" || rc=1
  else
    tail -5 "$OUT/build.log"
    echo "ncu could not profile (no hardware counters on this machine?)"
    rc=1
  fi
fi

if [[ $STEPS == *" sass "* ]]; then
  echo "== scoreboards of the default GEMV's loads (4-bit, one unit per batch, four batches, x per warp)"
  OBJ=$(find "$BUILD" -name 'gemm.cu.o' | head -1)
  cuobjdump -sass "$OBJ" | python3 "$ROOT/scripts/sass_scoreboards.py" 'gemv_sk_kernelILi4ELi1ELb1ELi4ELb1E' \
    > "$OUT/sass_scoreboards.txt" || rc=1
  grep -E "SB[0-9]: set by" "$OUT/sass_scoreboards.txt"
fi

if [[ $STEPS == *" patterns "* ]]; then
  echo "== read patterns"
  "$BUILD/kernels_bench" --out "$(mktemp -d)" --no-e2e --read-patterns --variants u4 --ms 1 \
    --shapes 11008x4096,28672x8192 > "$OUT/read_patterns.txt" 2>&1 || rc=1
  grep -E "^  (u4|read_floor) |read pattern" "$OUT/read_patterns.txt"
fi
exit $rc
