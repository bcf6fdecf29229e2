#!/usr/bin/env bash
# The test command: installs dependencies, builds everything (library, CLI, tests, benchmarks,
# CUDA kernels where nvcc exists) and runs the whole CTest suite. Non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
# Open MPI refuses to start as root unless told; CI runs as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure --timeout 1500 -j 1
