#!/bin/bash
# Prepares a GPU host whose image lacks Boost.Program_options and some
# Debian libraries (docs/gpu-host.md): Boost from .shared/gpu-host, the
# packages kept in .gpu-debs/ unpacked under /opt/st-debs.  Prints the CMake
# flags that build there (Ninja; CUDA_ARCH, default 90a, picks the target).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
flags="$(bash .shared/gpu-host/setup.sh) -G Ninja -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-90a}"
if [ -d .gpu-debs ]; then
  prefix=/opt/st-debs
  for deb in .gpu-debs/*.deb; do dpkg -x "$deb" "$prefix"; done
  echo "$prefix/usr/lib/x86_64-linux-gnu/openblas-pthread" > /etc/ld.so.conf.d/st-debs.conf
  echo "$prefix/usr/lib/x86_64-linux-gnu" >> /etc/ld.so.conf.d/st-debs.conf
  ldconfig
  flags="$flags -DCMAKE_PREFIX_PATH=$prefix/usr"
fi
echo "$flags"
