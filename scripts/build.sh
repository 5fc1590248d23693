#!/bin/bash
# Configures and builds (Release); shared by test.sh and demo.sh.
#   CMAKE_ARGS=...  extra CMake flags, e.g. "-DBoost_DIR=... -G Ninja"
#   BUILD_DIR=...   build folder (default: build)
#   CI=true         warnings become errors
#   TARGETS="a b"   build only these targets (default: everything)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build="${BUILD_DIR:-build}"
flags=(-DCMAKE_BUILD_TYPE=Release)
[ "${CI:-}" = true ] && flags+=(-DST_WERROR=ON)
# CMAKE_ARGS is split on spaces on purpose: it carries several flags.
# shellcheck disable=SC2206
flags+=(${CMAKE_ARGS:-})
if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null && [[ " ${CMAKE_ARGS:-} " != *" -G "* ]]; then
  flags+=(-G Ninja)
fi

cmake -S . -B "$build" "${flags[@]}"
targets=()
# shellcheck disable=SC2206
[ -n "${TARGETS:-}" ] && targets=(--target ${TARGETS})
cmake --build "$build" --parallel "$(nproc)" "${targets[@]}"
