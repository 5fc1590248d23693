#!/bin/bash
# Installs the dependencies, configures, builds (Release) and runs every test.
#   SKIP_DEPS=1     skip the package install (a GPU host without a registry)
#   CMAKE_ARGS=...  extra CMake flags, e.g. "-DBoost_DIR=... -G Ninja"
#   BUILD_DIR=...   build folder (default: build)
#   CI=true         warnings become errors
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "${SKIP_DEPS:-0}" = 1 ] || bash scripts/install-deps.sh

bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --parallel "$(nproc)" --timeout 1500
