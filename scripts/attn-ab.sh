#!/bin/bash
# A/B of the attention kernels on a GPU host: builds the committed tree (a
# copy in .base/, if there), the working tree and any other trees named in
# $VARIANTS side by side, runs $CHECK if given (e.g. the working tree's attention
# tests), then times each case of $CASES (PATTERN:N:D) with
# st-bench-attention --only, the builds in turn, $ROUNDS times (default 2).
# Before the call, here:
#   rm -rf .base && mkdir .base && git archive HEAD | tar -x -C .base
# (and for a variant, e.g. a branch: mkdir .var-a && git archive BRANCH |
# tar -x -C .var-a, with /.var-a/ in .git/info/exclude), and carry .base
# and the variants with .shared and .gpu-debs (docs/gpu-host.md).
#   CASES="fixed:16384:64 strided:65536:64" VARIANTS=".var-a" bash scripts/attn-ab.sh
# EXTRA_TARGETS names more targets to build in every tree.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${OUT:-/tmp/st-out}"; mkdir -p "$out"
flags="$(bash scripts/gpu-host-flags.sh) -DCMAKE_BUILD_TYPE=Release" || { echo "host preparation failed"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
start=$(date +%s)
trees="$([ -d .base ] && echo .base) . ${VARIANTS:-}"  # .base: when there
jobs=$(( $(nproc) / $(echo $trees | wc -w) )); [ $jobs -lt 2 ] && jobs=2  # the host's cores, shared
name() { [ "$1" = . ] && echo new || echo "${1#.}"; }
build() {  # source folder
  local log; log=$(name "$1")
  rm -rf "$1/build-gpu"
  # shellcheck disable=SC2086
  cmake -S "$1" -B "$1/build-gpu" $flags > "$out/cmake_$log.log" 2>&1 &&
    cmake --build "$1/build-gpu" --parallel $jobs --target st-bench-attention ${EXTRA_TARGETS:-} \
      > "$out/build_$log.log" 2>&1
}
for t in $trees; do build "$t" & done
wait
failed=0
for t in $trees; do
  [ -x "$t/build-gpu/bench/st-bench-attention" ] ||
    { echo "$(name "$t") build failed"; tail -20 "$out/build_$(name "$t").log"; failed=1; }
done
[ $failed = 0 ] || exit 1
echo "built in $(( $(date +%s) - start )) s"
[ -n "${CHECK:-}" ] && bash -c "$CHECK" 2>&1 | tail -25
for r in $(seq "${ROUNDS:-2}"); do
  for c in ${CASES:?CASES: PATTERN:N:D ...}; do
    for t in $trees; do
      row=$(timeout 120 "$t/build-gpu/bench/st-bench-attention" --only "$c" | grep -E '^\| (dense|fixed|strided) ')
      echo "$(name "$t") $c $row" | tee -a "$out/ab.txt"
    done
  done
done
