#!/usr/bin/env bash
# The embedded default: installs dependencies, builds hawq-bench, runs the quickstart sweep (the
# shipped ResNet on Fashion-MNIST, uniform vs HAWQ-v1) on 2 MPI ranks and prints its table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh --target hawq-bench
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Two ranks on a 2-core machine: one intra-op thread each (threads_per_rank in the YAML).
mpirun -n 2 --oversubscribe "${BUILD_DIR:-build}/hawq-bench" experiments/quickstart.yaml "$@"
