#!/bin/bash
# A/B of the attention kernels on a GPU host: builds the committed tree (a
# copy in .base/) and the working tree side by side, runs $CHECK if given
# (e.g. the working tree's attention tests), then times each case of $CASES
# (PATTERN:N:D) with st-bench-attention --only, the two builds alternately,
# $ROUNDS times (default 2).  Before the call, here:
#   rm -rf .base && mkdir .base && git archive HEAD | tar -x -C .base
# and carry .base with .shared and .gpu-debs (docs/gpu-host.md).
#   CASES="fixed:16384:64 strided:65536:64" bash scripts/attn-ab.sh
# EXTRA_TARGETS names more targets to build in both trees.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${OUT:-/tmp/st-out}"; mkdir -p "$out"
flags="$(bash scripts/gpu-host-flags.sh) -DCMAKE_BUILD_TYPE=Release" || { echo "host preparation failed"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
start=$(date +%s)
build() {  # source folder, build folder, log name
  rm -rf "$2"
  # shellcheck disable=SC2086
  cmake -S "$1" -B "$2" $flags > "$out/cmake_$3.log" 2>&1 &&
    cmake --build "$2" --parallel 8 --target st-bench-attention ${EXTRA_TARGETS:-} \
      > "$out/build_$3.log" 2>&1
}
build .base .base/build-gpu base & pa=$!
build . build-gpu new & pb=$!
wait $pa || { echo "base build failed"; tail -20 "$out/build_base.log"; exit 1; }
wait $pb || { echo "new build failed"; tail -30 "$out/build_new.log"; exit 1; }
echo "built in $(( $(date +%s) - start )) s"
[ -n "${CHECK:-}" ] && bash -c "$CHECK" 2>&1 | tail -25
for r in $(seq "${ROUNDS:-2}"); do
  for c in ${CASES:?CASES: PATTERN:N:D ...}; do
    for side in base new; do
      bin=build-gpu/bench/st-bench-attention
      [ $side = base ] && bin=.base/build-gpu/bench/st-bench-attention
      echo "$side $c $(timeout 120 $bin --only "$c" | grep -E '^\| (dense|fixed|strided) ')" | tee -a "$out/ab.txt"
    done
  done
done
