#!/bin/bash
# Installs the dependencies, configures, builds (Release) and runs every test.
#   SKIP_DEPS=1     skip the package install (a GPU host without a registry)
#   CMAKE_ARGS=...  extra CMake flags, e.g. "-DBoost_DIR=... -G Ninja"
#   BUILD_DIR=...   build folder (default: build)
#   CI=true         warnings become errors
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "${SKIP_DEPS:-0}" = 1 ] || bash scripts/install-deps.sh

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
cmake --build "$build" --parallel "$(nproc)"
cd "$build"
ctest --output-on-failure --parallel "$(nproc)" --timeout 1500
