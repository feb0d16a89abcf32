#!/usr/bin/env bash
# Builds (incrementally) and runs the whole test suite. Needs scripts/setup.sh to have run once.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${MNEMO_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja ${MNEMO_CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$BUILD_DIR" -j"$(nproc)"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" "$@"
