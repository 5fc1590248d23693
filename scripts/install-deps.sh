#!/bin/bash
# Installs every build and run dependency from Debian's packages.
# Idempotent and quiet when everything is already present.
# The CUDA toolkit (13.0 tested) is a prerequisite and is not installed here.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools libssl-dev
  libboost-program-options-dev
  libgtest-dev
  libopenblas-dev
  zlib1g-dev libpng-dev
  python3-matplotlib
  dataset-fashion-mnist
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
