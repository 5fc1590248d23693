#!/bin/bash
# One call on a GPU host: prepare it, build, run every test (GPU tests
# included), then the benchmarks named in $BENCH (a shell snippet), printing a
# short summary last.  TARGETS="a b" builds only those targets and runs only
# the tests matching TESTS (a ctest -R regex).  The host has CUDA, NCCL, Open MPI, HDF5 and GoogleTest
# but no package registry: Boost.Program_options comes from ../shared/gpu-host
# (copied to .shared/), and any other missing library from the Debian packages
# kept in .gpu-debs/ (see docs/gpu-host.md).  CUDA_ARCH (default 90a) builds
# for another target, e.g. CUDA_ARCH=90 for the kernels' mma.sync products.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${OUT:-/tmp/st-out}"; mkdir -p "$out"
log="$out/session.log"

flags="$(bash scripts/gpu-host-flags.sh)" || { echo "host preparation failed"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"

start=$(date +%s)
# Always a clean build: the host keeps build-gpu between calls of a warm
# machine, and copied sources may carry times older than its objects.
rm -rf build-gpu
if [ -n "${TARGETS:-}" ]; then
  # Only some targets and the tests matching $TESTS (a ctest -R regex).
  # shellcheck disable=SC2086
  { cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release $flags &&
    cmake --build build-gpu --parallel 16 --target $TARGETS &&
    (cd build-gpu && ctest --output-on-failure -R "${TESTS:-.}"); } > "$log" 2>&1
else
  SKIP_DEPS=1 BUILD_DIR=build-gpu CMAKE_ARGS="$flags" bash scripts/test.sh > "$log" 2>&1
fi
test_rc=$?
echo "tests: rc=$test_rc in $(( $(date +%s) - start )) s"
grep -E "tests passed|tests failed|\(Failed\)|\(Skipped\)|Error|error:" "$log" | tail -25

if [ -n "${BENCH:-}" ]; then
  echo "---- benchmarks"
  bash -c "$BENCH" 2>&1 | tee "$out/bench.log" | tail -60
fi
exit $test_rc
