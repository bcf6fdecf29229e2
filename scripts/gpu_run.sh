#!/usr/bin/env bash
# On a GPU machine: build hawq-bench against the CUDA LibTorch of its Python and run an experiment
# on the GPUs, one MPI rank per GPU (device: cuda; each rank takes the GPU of its node-local rank).
#
#   bash scripts/gpu_run.sh [--ranks N] [--build DIR] <experiment.yaml> [hawq-bench options...]
#
# --ranks  MPI ranks (default: the number of GPUs nvidia-smi lists)
# --build  build folder (default build-gpu; reused when present)
# Everything after the experiment goes to hawq-bench (e.g. --out results/x_gpu.h5 --set ...).
#
# What the GPU image lacks can be supplied in .gpu/ at the project root (not committed):
#   .gpu/include  headers of header-only dependencies (nlohmann/json.hpp, CLI/CLI.hpp, glpk.h)
#   .gpu/lib      shared libraries to link and load (libglpk.so and its dependencies)
#   .gpu/tokens   a token cache (HAWQ_CACHE_DIR) so text datasets need no hawq-tokenize there
# Without GLPK the `hardware` allocator (hawq_v3) is not built and experiments naming it stop at
# validation with a clear error.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-gpu
RANKS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ranks) RANKS="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || { echo "gpu_run.sh: missing the experiment YAML (see --help)" >&2; exit 2; }
EXP="$1"; shift
[[ -n "$RANKS" ]] || RANKS=$(nvidia-smi -L | grep -c '^GPU')

TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
CUDA_ARCH=${CUDA_ARCH:-90a}
EXTRA=()
if [[ -d "$ROOT/.gpu/include" ]]; then EXTRA+=(-DCMAKE_INCLUDE_PATH="$ROOT/.gpu/include"); fi
if [[ -d "$ROOT/.gpu/lib" ]]; then
  EXTRA+=(-DCMAKE_LIBRARY_PATH="$ROOT/.gpu/lib")
  export LD_LIBRARY_PATH="$ROOT/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [[ -d "$ROOT/.gpu/tokens" ]]; then export HAWQ_CACHE_DIR="$ROOT/.gpu"; fi

echo "== configure ($BUILD; LibTorch from $TORCH_PREFIX)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
  -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DHAWQ_BUILD_TESTS=OFF -DHAWQ_BUILD_BENCH=OFF -DHAWQ_WITH_KERNELS=OFF \
  "${EXTRA[@]}" > "$BUILD.configure.log" 2>&1 || { tail -40 "$BUILD.configure.log"; exit 1; }
grep -E "GLPK|Torch|CUDA" "$BUILD.configure.log" | head -5 || true
echo "== build hawq-bench"
start=$(date +%s)
cmake --build "$BUILD" --target hawq-bench -j "$(nproc)" -- -k 0 > "$BUILD.build.log" 2>&1 ||
  { grep -E "error|Error" -A4 "$BUILD.build.log" | head -60; exit 1; }
echo "built in $(( $(date +%s) - start )) s: $("$BUILD/hawq-bench" --version)"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}" HAWQ_CACHE_DIR="${HAWQ_CACHE_DIR:-}"
# Keep NVLink multicast off (shared machines); harmless elsewhere.
export NCCL_NVLS_ENABLE=0
echo "== mpirun -n $RANKS hawq-bench $EXP --set device=cuda $*"
cd "$ROOT"
start=$(date +%s)
rc=0
mpirun -n "$RANKS" --oversubscribe --bind-to none -x LD_LIBRARY_PATH -x HAWQ_CACHE_DIR \
  "$BUILD/hawq-bench" "$EXP" --set device=cuda "$@" || rc=$?
echo "== finished in $(( $(date +%s) - start )) s, exit code $rc"
exit $rc
