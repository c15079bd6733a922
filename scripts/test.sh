#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test (unit, official, cli).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh "$@"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j"$(nproc)"
