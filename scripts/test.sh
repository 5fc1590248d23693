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
# Tests run two at a time on a 2-core CI machine, each with OpenMP threads:
# threads that spin while they wait would steal the other test's cores.
export OMP_WAIT_POLICY=PASSIVE
ctest --output-on-failure --parallel "$(nproc)" --timeout 1500
