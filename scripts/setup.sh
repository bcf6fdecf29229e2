#!/usr/bin/env bash
# Installs every Debian package hawq-bench needs to build, test and run its embedded defaults.
# Idempotent: packages already present are skipped, and `apt-get update` runs at most once.
# Fails loudly (non-zero exit, named package) when anything cannot be installed.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libtorch-dev libopenblas-dev
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools libyaml-cpp-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsentencepiece-dev sentencepiece
  libglpk-dev nlohmann-json3-dev libcli11-dev zlib1g-dev
  dataset-fashion-mnist bible-kjv
  python3-h5py python3-numpy python3-pil python3-torch python3-torchvision python3-pandas
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    echo "setup.sh: apt-get install failed for: ${missing[*]}" >&2
    exit 1
  fi
fi

# Verify the libraries the build cannot do without, so a broken install fails here and not in CMake.
for f in /usr/share/datasets/fashion-mnist /usr/bin/bible /usr/bin/mpirun; do
  if [ ! -e "$f" ]; then echo "setup.sh: expected $f after install, not found" >&2; exit 1; fi
done

# The KJV train/test split the text dataset and the LLaMA tests read (generated, not committed).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -s "$ROOT/data/kjv/test.txt" ] && [ -f "$ROOT/scripts/prepare_kjv.sh" ]; then
  bash "$ROOT/scripts/prepare_kjv.sh" "$ROOT/data/kjv" >&2
fi
