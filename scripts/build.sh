#!/usr/bin/env bash
# Installs missing dependencies, configures and builds into ${BUILD_DIR:-build}.
# Extra arguments go to cmake's configure step (e.g. -DBAGNET_SHARED_DIR=/path/to/shared).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
